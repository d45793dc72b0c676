"""Policy groups through nono_py: strict documents, resolution with provenance, the embedded
policy (proved by running real tools under its groups), deny overlaps, proxy settings."""
import errno
import json
import os
import shutil

import pytest

SYSTEM = ["system_read_linux", "system_write_linux"]
PATH_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def doc(groups, **extra):
    return json.dumps({"groups": groups, **extra})


@pytest.mark.parametrize("payload, where", [
    ({"groups": {}, "profiles": {}}, 'policy: unknown field "profiles"'),
    ({"groups": {"g": {"allow": {"execute": ["/x"]}}}}, 'groups.g.allow: unknown field "execute"'),
    ({"groups": {"g": {"deny": {"commands": ["rm"]}}}}, 'groups.g.deny: unknown field "commands"'),
    ({"groups": {"g": {"network": {"allow_domain": ["a.com"], "mode": "x"}}}}, '"mode"'),
    ({"groups": {"g": {"network": {"custom_credentials": {"s": {"prefix": "s"}}}}}},
     'needs "prefix" and "upstream"'),
    ({"meta": {"owner": "x"}, "groups": {}}, 'meta: unknown field "owner"'),
    ({"groups": {"g": {"required": "yes"}}}, "groups.g.required: expected true or false"),
    ({"groups": {"g": {"platform": "windows"}}}, "groups.g.platform"),
    ({"groups": {"g": {"allow": {"read": "/usr"}}}}, "groups.g.allow.read: expected an array"),
    ({"groups": {"g": {"allow": {"read": ["relative/path"]}}}}, "groups.g.allow.read[0]"),
    ({"groups": {"g": {"allow": {"read": ["$SECRET_DIR/x"]}}}}, "groups.g.allow.read[0]"),
    ({"groups": {"g": {"allow": {"read": ["/a\u0000b"]}}}}, "NUL"),
    ({"groups": {"g": {"network": {"block": True, "allow_domain": ["a.com"]}}}}, "contradicts"),
    ({"groups": {"g": {"network": {"max_connections": 0}}}}, "max_connections"),
    ({"groups": {}, "base_groups": ["nope"]}, 'no group "nope"'),
    ({}, '"groups" is missing'),
])
def test_strict_documents_name_the_field(nono_py, payload, where):
    with pytest.raises(ValueError) as e:
        nono_py.load_policy(json.dumps(payload))
    assert where in str(e.value)


def test_duplicate_keys_are_refused(nono_py):
    with pytest.raises(ValueError):
        nono_py.load_policy('{"groups": {"g": {}, "g": {"required": true}}}')


def test_resolution_records_groups_skips_missing_and_is_all_or_nothing(nono_py, tmp_path):
    A = nono_py.AccessMode
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    pol = nono_py.load_policy(doc({
        "a": {"description": "a", "allow": {"read": [str(tmp_path / "d"), str(tmp_path / "gone")],
                                            "readwrite": [str(tmp_path / "f")]}},
        "bad": {"allow": {"read": ["/proc/self/fd/999999/x"]}},
        "never": {"allow": {"read": ["/etc/shadow"]}},
    }, never_grant=["/etc/shadow"]))
    caps = nono_py.CapabilitySet()
    r = pol.resolve_groups(["a", "a"], caps)
    assert r.names == ["a"]
    got = {(g["path"], g["group"], g["access"], g["is_file"], g["skipped"]) for g in r.grants}
    assert got == {(str(tmp_path / "d"), "a", A.READ, False, False),
                   (str(tmp_path / "gone"), "a", A.READ, False, True),
                   (str(tmp_path / "f"), "a", A.READ_WRITE, True, False)}
    assert [(c.resolved, c.is_file) for c in caps.fs_capabilities()] == [
        (str((tmp_path / "d").resolve()), False), (str((tmp_path / "f").resolve()), True)]
    # A failing group leaves the set as it was, also the part resolved before the failure.
    before = caps.fs_capabilities()
    (tmp_path / "d2").mkdir()
    pol2 = nono_py.load_policy(doc({"ok": {"allow": {"read": [str(tmp_path / "d2")]}},
                                    "never": {"allow": {"read": ["/etc/shadow"]}}},
                                   never_grant=["/etc"]))
    with pytest.raises(ValueError, match="never_grant"):
        pol2.resolve_groups(["ok", "never"], caps)
    assert caps.fs_capabilities() == before
    with pytest.raises(ValueError, match='unknown policy group "nope"'):
        pol.resolve_groups(["a", "nope"], caps)
    assert caps.fs_capabilities() == before


def test_home_and_xdg_paths_expand_from_the_environment(nono_py, tmp_path, monkeypatch):
    (tmp_path / ".tool").mkdir()
    (tmp_path / "cfg" / "tool").mkdir(parents=True)
    pol = nono_py.load_policy(doc({"g": {"allow": {"read": ["~/.tool", "$XDG_CONFIG_HOME/tool"]},
                                         "deny": {"access": ["$HOME/.secret"]}}}))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    caps = nono_py.CapabilitySet()
    r = pol.resolve_groups(["g"], caps)
    assert [g["path"] for g in r.grants] == [str(tmp_path / ".tool"), str(tmp_path / "cfg/tool")]
    assert r.deny_paths == [str(tmp_path / ".secret")]
    assert pol.resolve_deny_paths(["g"]) == [str(tmp_path / ".secret")]
    monkeypatch.delenv("HOME")
    with pytest.raises(ValueError, match="HOME"):
        pol.resolve_groups(["g"], nono_py.CapabilitySet())


def test_deny_overlap_names_the_grant(nono_py, tmp_path):
    caps = nono_py.CapabilitySet()
    (tmp_path / "w").mkdir()
    caps.allow_path(str(tmp_path / "w"), nono_py.AccessMode.READ_WRITE)
    nono_py.validate_deny_overlaps([str(tmp_path / "elsewhere")], caps)  # outside: fine
    with pytest.raises(RuntimeError) as e:
        nono_py.validate_deny_overlaps([str(tmp_path / "w" / ".ssh")], caps)
    assert e.value.errno == errno.EOPNOTSUPP
    assert str((tmp_path / "w").resolve()) in str(e.value)
    with pytest.raises(ValueError):
        nono_py.validate_deny_overlaps(["relative"], caps)


def test_proxy_settings_merge_and_conflicts(nono_py):
    pol = nono_py.load_policy(doc({
        "a": {"network": {"allow_domain": ["a.example", "b.example"], "max_connections": 8}},
        "b": {"network": {"allow_proxy": ["b.example", "*.c.example"]}},
        "c": {"network": {"max_connections": 9}},
        "r": {"network": {"custom_credentials": {"svc": {"prefix": "svc",
                                                         "upstream": "https://api.example.com"}}}},
        "off": {"network": {"block": True}},
    }))
    cfg = pol.resolve_proxy_config(["a", "b", "off"])
    assert list(cfg.allowed_hosts) == ["a.example", "b.example", "*.c.example"]
    assert cfg.max_connections == 8
    with pytest.raises(ValueError, match="Conflicting max_connections"):
        pol.resolve_proxy_config(["a", "c"])
    routed = pol.resolve_proxy_config(["r"])
    assert [(r.prefix, r.upstream) for r in routed.routes] == [("svc", "https://api.example.com")]
    caps = nono_py.CapabilitySet()
    res = pol.resolve_groups(["a", "b"], caps)
    assert res.allowed_domains == ["a.example", "b.example", "*.c.example"]
    assert caps.is_network_blocked  # fail closed until proxy-only is set


def test_embedded_policy_groups(nono_py):
    pol = nono_py.load_embedded_policy()
    names = pol.group_names()
    assert names == sorted(names)
    for g in ["deny_credentials", "deny_shell_history", "system_read_linux", "system_write_linux",
              "node_runtime", "python_runtime", "rust_runtime", "go_runtime", "git", "shells",
              "claude_code", "codex", "gemini_cli", "aider", "opencode", "tmp"]:
        assert g in names and pol.group_description(g), g
    required = {g for g in names if pol.is_group_required(g)}
    assert required == {"deny_credentials", "deny_keyrings_linux", "deny_browser_data_linux",
                        "deny_shell_history"}
    with pytest.raises(ValueError, match="required"):
        pol.validate_group_exclusions(["deny_credentials"])
    pol.validate_group_exclusions(["node_runtime"])
    assert set(pol.base_groups()) <= set(names)
    assert json.loads(nono_py.embedded_policy_json())["groups"].keys() == set(names)
    home = os.path.expanduser("~")
    deny = pol.resolve_deny_paths(["deny_credentials"])
    assert os.path.join(home, ".ssh") in deny and os.path.join(home, ".aws") in deny


def run(nono_py, caps, cmd, cwd, env=None):
    return nono_py.sandboxed_exec(caps, cmd, cwd=str(cwd), timeout_secs=60,
                                  env={**PATH_ENV, **(env or {})})


def embedded_caps(nono_py, groups):
    caps = nono_py.CapabilitySet()
    nono_py.load_embedded_policy().resolve_groups(groups, caps)
    return caps


def test_python_and_sh_run_under_the_system_groups(nono_py, tmp_path):
    caps = embedded_caps(nono_py, SYSTEM)
    r = run(nono_py, caps, ["/usr/bin/python3", "-c", "import json, ssl; print('py-ok')"], "/")
    assert r.exit_code == 0 and r.stdout == b"py-ok\n", r.stderr
    r = run(nono_py, caps, ["/bin/sh", "-c", "echo sh-ok >/dev/null; ls / >/dev/null; echo done"], "/")
    assert r.exit_code == 0 and r.stdout == b"done\n", r.stderr
    # Nothing beyond the groups: the temporary directory stays out of reach.
    r = run(nono_py, caps, ["/bin/sh", "-c", f"ls {tmp_path}"], "/")
    assert r.exit_code != 0 and b"Permission denied" in r.stderr


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc is not installed")
def test_gcc_needs_the_tmp_group(nono_py, tmp_path):
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("compiled");}\n')
    cmd = ["/bin/sh", "-c", "gcc -o hello hello.c && ./hello"]
    caps = embedded_caps(nono_py, SYSTEM)
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ_WRITE)
    r = run(nono_py, caps, cmd, tmp_path, {"TMPDIR": "/tmp"})
    assert r.exit_code != 0  # gcc writes its intermediate files to /tmp
    caps = embedded_caps(nono_py, SYSTEM + ["tmp"])
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ_WRITE)
    r = run(nono_py, caps, cmd, tmp_path, {"TMPDIR": "/tmp"})
    assert r.exit_code == 0 and r.stdout == b"compiled\n", r.stderr


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_git_reads_its_config_only_with_the_git_group(nono_py, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Sandboxed Tester\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the policy expands ~ from the caller's HOME
    env = {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    cmd = ["/bin/sh", "-c", "git init -q . && git config user.name; ls ~/.ssh"]
    caps = embedded_caps(nono_py, SYSTEM)
    caps.allow_path(str(repo), nono_py.AccessMode.READ_WRITE)
    r = run(nono_py, caps, cmd, repo, env)
    assert b"Sandboxed Tester" not in r.stdout
    caps = embedded_caps(nono_py, SYSTEM + ["git"])
    caps.allow_path(str(repo), nono_py.AccessMode.READ_WRITE)
    r = run(nono_py, caps, cmd, repo, env)
    assert r.stdout.startswith(b"Sandboxed Tester\n"), r.stderr
    assert r.exit_code != 0 and b"Permission denied" in r.stderr  # ~/.ssh stays out of reach
    assert (repo / ".git" / "HEAD").exists()


def test_enforced_deny_paths_in_sandboxed_exec(nono_py, tmp_path):
    """enforce_deny_paths: a denied directory and file inside a read-write grant are out of reach
    for the command (the library covers them in its mount namespace); the rest is usable."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id").write_text("KEY")
    (home / "token").write_text("TOKEN")
    caps = embedded_caps(nono_py, SYSTEM)
    caps.allow_path(str(home), nono_py.AccessMode.READ_WRITE)
    nono_py.enforce_deny_paths(caps, [str(home / ".ssh"), str(home / "token")])
    assert nono_py.deny_paths_of(caps) == [str(home / ".ssh"), str(home / "token")]
    q = nono_py.QueryContext(caps).query_path(str(home / ".ssh" / "id"), nono_py.AccessMode.READ)
    assert q["status"] == "denied"
    script = ("cat .ssh/id || echo key-denied; cat token || echo token-denied; "
              "ls .ssh || echo list-denied; echo ok > note && echo wrote")
    r = run(nono_py, caps, ["/bin/sh", "-c", script], home)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.split() == [b"key-denied", b"token-denied", b"list-denied", b"wrote"]
    # The deny paths survive a SandboxState round trip (never dropped silently).
    again = nono_py.SandboxState.from_json(nono_py.SandboxState.from_caps(caps).to_json()).to_caps()
    assert nono_py.deny_paths_of(again) == nono_py.deny_paths_of(caps)
    with pytest.raises(ValueError):
        nono_py.enforce_deny_paths(caps, ["relative/path"])


def test_apply_refuses_deny_paths_inside_grants(nono_py, tmp_path):
    """nono_apply cannot give the calling process a namespace of its own: it refuses, before
    restricting anything (a subprocess, since apply is irreversible)."""
    import subprocess
    import sys
    from nono_py_testlib import PYDIR
    (tmp_path / "w" / "secret").mkdir(parents=True)
    code = (f"import nono_py\n"
            f"c = nono_py.CapabilitySet()\n"
            f"c.allow_path({str(tmp_path / 'w')!r}, nono_py.AccessMode.READ_WRITE)\n"
            f"nono_py.enforce_deny_paths(c, [{str(tmp_path / 'w' / 'secret')!r}])\n"
            f"try:\n    nono_py.apply(c)\nexcept RuntimeError as e:\n    print('refused', e)\n"
            f"import os\nos.listdir({str(tmp_path / 'w' / 'secret')!r})\nprint('unrestricted')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(PYDIR)})  # LD_PRELOAD under ASan
    assert r.returncode == 0, r.stderr
    assert "refused" in r.stdout and "nono_exec only" in r.stdout and "unrestricted" in r.stdout
