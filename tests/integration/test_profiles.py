"""nono run/why --profile and nono profile: the built-in profiles resolved against a home of our
own, user profiles (extends, strict fields, denials), and what a profiled command can really do."""
import json
import shutil
import tempfile

import pytest

from conftest import BUILD, run_nono

BUILTIN = {
    # profile: (directories it must grant read-write under $HOME, a file, its group, a domain)
    "claude-code": ([".claude", ".cache/claude-cli-nodejs"], ".claude.json", "claude_code",
                    "api.anthropic.com"),
    "codex": ([".codex"], None, "codex", "api.openai.com"),
    "gemini-cli": ([".gemini"], None, "gemini_cli", "generativelanguage.googleapis.com"),
    "aider": ([".aider"], ".aider.conf.yml", "aider", "openrouter.ai"),
    "opencode": ([".config/opencode", ".local/share/opencode", ".cache/opencode"], None,
                 "opencode", "opencode.ai"),
}


@pytest.fixture
def home():
    # Not under /tmp: the profiles grant /tmp read-write (the tmp group), and a home inside it
    # would put ~/.ssh inside a grant, which nono refuses.
    (BUILD / "test-homes").mkdir(exist_ok=True)
    h = BUILD / "test-homes" / tempfile.mkdtemp(dir=BUILD / "test-homes")
    yield from _populated(h)
    shutil.rmtree(h, ignore_errors=True)


def _populated(h):
    (h / ".ssh").mkdir(parents=True)
    (h / ".ssh" / "id_ed25519").write_text("PRIVATE")
    (h / ".gitconfig").write_text("[user]\n\tname = T\n")
    yield h


def env_for(home, **extra):
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    env.update(extra)
    return env


def test_profile_list_names_the_builtins(nono, home):
    r = run_nono("profile", "list", env=env_for(home))
    assert r.returncode == 0, r.stderr
    for name in BUILTIN:
        assert f"  {name} " in r.stdout
    assert str(home / ".config/nono/profiles") in r.stdout


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_profile_resolves_with_provenance(nono, home, tmp_path, name):
    dirs, file, group, domain = BUILTIN[name]
    for d in dirs:
        (home / d).mkdir(parents=True, exist_ok=True)
    if file:
        (home / file).write_text("{}")
    work = tmp_path / "project"
    work.mkdir()
    r = run_nono("profile", "show", name, env=env_for(home), cwd=work)
    assert r.returncode == 0, r.stderr
    grants = r.stdout.split("grants:\n")[1].split("skipped")[0]
    for d in dirs:
        assert any(line.split()[:1] == ["read-write"] and str(home / d) in line
                   and line.endswith(f"group {group}") for line in grants.splitlines()), d
    if file:
        assert any(str(home / file) in line and f"group {group}" in line
                   for line in grants.splitlines())
    assert f"read-write dir   {work}" in grants and f"profile {name} (workdir)" in grants
    assert f"{home}/.gitconfig" in grants  # the git group
    denied = r.stdout.split("denied")[1]
    assert f"{home}/.ssh" in denied and "group deny_credentials" in denied
    net = [l for l in r.stdout.splitlines() if l.startswith("network:")][0]
    assert net.startswith("network: proxy-only") and domain in net


def test_profiled_command_gets_its_grants_and_nothing_else(nono, home, tmp_path):
    (home / ".codex").mkdir()
    work = tmp_path / "project"
    work.mkdir()
    script = ("echo hi > ~/.codex/state && echo wrote-codex; echo x > out && echo wrote-work; "
              "cat ~/.ssh/id_ed25519 || echo ssh-denied; ls ~ || echo home-denied; "
              "echo $HTTPS_PROXY | grep -q '^http://nono:' && echo proxied")
    r = run_nono("run", "--profile", "codex", "--", "/bin/sh", "-c", script, env=env_for(home),
                 cwd=work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["wrote-codex", "wrote-work", "ssh-denied", "home-denied",
                                "proxied"]
    assert (home / ".codex" / "state").read_text() == "hi\n"


def test_profile_in_home_keeps_ssh_out(nono, home):
    """In $HOME the working directory's grant contains ~/.ssh: the required deny_credentials group
    covers it in the command's mount namespace, and the rest of the home stays usable."""
    (home / ".codex").mkdir()
    script = ("cat .ssh/id_ed25519 || echo key-denied; ls .ssh || echo list-denied; "
              "mv .ssh gone || echo move-denied; echo x > note && echo home-writable")
    r = run_nono("run", "--profile", "codex", "--", "/bin/sh", "-c", script, env=env_for(home),
                 cwd=home)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["key-denied", "list-denied", "move-denied", "home-writable"]
    assert (home / ".ssh" / "id_ed25519").read_text() == "PRIVATE"
    r = run_nono("run", "--profile", "codex", "--dry-run", env=env_for(home), cwd=home)
    assert "denied path(s) inside grants covered" in r.stdout
    r = run_nono("why", "--profile", "codex", "--path", str(home / ".ssh" / "id_ed25519"),
                 env=env_for(home), cwd=home)
    assert r.returncode == 1 and "deny path" in r.stdout


def write_profile(home, name, body):
    d = home / ".config" / "nono" / "profiles"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.json").write_text(json.dumps(body))
    return d / f"{name}.json"


def test_user_profile_extends_and_grants(nono, home, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("input")
    write_profile(home, "base", {"filesystem": {"read": [str(data)]},
                                 "environment": {"set": {"FROM_BASE": "1", "OVERRIDE": "base"}}})
    write_profile(home, "mine", {
        "meta": {"name": "mine", "description": "test profile"},
        "extends": "base",
        "groups": ["git"],
        "filesystem": {"allow": ["$WORKDIR"]},
        "network": {"block": True},
        "environment": {"set": {"OVERRIDE": "mine"}},
    })
    work = tmp_path / "w"
    work.mkdir()
    script = (f"cat {data}/in.txt; echo; echo x > {data}/new || echo ro; echo $FROM_BASE $OVERRIDE "
              f"$CLI; echo ok > here && echo wrote")
    r = run_nono("run", "--profile", "mine", "-e", "CLI=c", "--", "/bin/sh", "-c", script,
                 env=env_for(home), cwd=work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["input", "ro", "1 mine c", "wrote"]
    r = run_nono("run", "--profile", "mine", "--dry-run", env=env_for(home), cwd=work)
    assert "network: blocked" in r.stdout and "[profile base]" in r.stdout
    r = run_nono("profile", "show", "mine", env=env_for(home), cwd=work)
    assert "chain: base -> mine" in r.stdout and "description: test profile" in r.stdout
    r = run_nono("why", "--profile", "mine", "--path", str(data / "in.txt"), env=env_for(home),
                 cwd=work)
    assert r.returncode == 0 and "from profile base" in r.stdout, r.stdout
    r = run_nono("why", "--profile", "mine", "--path", str(data / "in.txt"), "--write-access",
                 env=env_for(home), cwd=work)
    assert r.returncode == 1


def test_nono_cli_style_profile_loads(nono, home, tmp_path):
    """The core of the nono CLI's schema: meta, security.groups, filesystem, network, workdir."""
    (home / ".tool").mkdir()
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({
        "meta": {"name": "agent", "version": "1.0.0", "description": "x", "author": "me"},
        "security": {"groups": ["node_runtime", "python_runtime"]},
        "filesystem": {"allow": ["$HOME/.tool"], "read_file": ["$HOME/.gitconfig"]},
        "network": {"block": False},
        "workdir": {"access": "read"},
        "interactive": True,
    }))
    work = tmp_path / "w"
    work.mkdir()
    r = run_nono("run", "--profile", str(path), "--", "/bin/sh", "-c",
                 f"touch {home}/.tool/a && echo tool; touch x || echo ro-work",
                 env=env_for(home), cwd=work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["tool", "ro-work"]


@pytest.mark.parametrize("body, message", [
    ({"filesystem": {"exec": ["/x"]}}, 'filesystem: unknown field "exec"'),
    ({"hooks": {}}, 'profile: unknown field "hooks"'),
    ({"security": {"signal_mode": "isolated"}}, 'security: unknown field "signal_mode"'),
    ({"groups": ["no_such_group"]}, 'no policy group "no_such_group"'),
    ({"workdir": {"access": "all"}}, "workdir.access"),
    ({"network": {"block": "yes"}}, "network.block: expected true or false"),
    ({"environment": {"set": {"LD_PRELOAD": "/x.so"}}}, "loader-control"),
    ({"extends": "loop"}, "leads back to itself"),
    ({"extends": "missing-profile"}, "no profile 'missing-profile'"),
    ({"network": {"block": True, "allow_domain": ["a.example"]}}, "contradicts"),
    ({"filesystem": {"deny": ["relative/secret"]}}, "relative/secret"),
])
def test_bad_profiles_fail_closed(nono, home, tmp_path, body, message):
    write_profile(home, "loop", {"extends": "loop"})
    write_profile(home, "bad", body)
    work = tmp_path / "w"
    work.mkdir()
    r = run_nono("run", "--profile", "bad", "--", "true", env=env_for(home), cwd=work)
    assert r.returncode == 125, r.stdout
    assert message in r.stderr


def test_profile_usage_errors(nono, home):
    assert run_nono("profile", env=env_for(home)).returncode == 125
    assert run_nono("profile", "frobnicate", env=env_for(home)).returncode == 125
    r = run_nono("run", "--profile", "codex", "--profile", "aider", "--", "true",
                 env=env_for(home))
    assert r.returncode == 125 and "twice" in r.stderr
    r = run_nono("profile", "groups", env=env_for(home))
    assert r.returncode == 0 and "(required)" in r.stdout and "claude_code" in r.stdout
