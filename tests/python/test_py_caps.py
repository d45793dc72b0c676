"""CapabilitySet, AccessMode, QueryContext, SandboxState: the policy objects (no enforcement)."""
import errno
import json
import os
import pathlib
import socket

import pytest


def test_access_mode_is_hashable_enum(nono_py):
    A = nono_py.AccessMode
    assert [m.name for m in A] == ["READ", "WRITE", "READ_WRITE"]
    assert len({A.READ, A.WRITE, A.READ_WRITE, A.READ}) == 3
    d = {A.READ: "r", A.WRITE: "w"}
    assert d[A.READ] == "r"
    assert A.READ is A["READ"]
    # nono-py's spellings: repr names the member, str is the human word (f-strings too)
    assert [repr(m) for m in A] == ["AccessMode.READ", "AccessMode.WRITE", "AccessMode.READ_WRITE"]
    assert [str(m) for m in A] == ["read", "write", "read+write"]
    assert f"{A.READ_WRITE}|{A.WRITE:>6}" == "read+write| write"


def test_allow_path_and_fs_capabilities(nono_py, tmp_path):
    A = nono_py.AccessMode
    (tmp_path / "d").mkdir()
    (tmp_path / "f").write_text("x")
    os.symlink(tmp_path / "d", tmp_path / "link")
    caps = nono_py.CapabilitySet()
    assert caps.allow_path(str(tmp_path / "link"), A.READ) is None
    caps.allow_file(tmp_path / "f", A.READ_WRITE)  # os.PathLike accepted
    caps.allow_path(os.fsencode(tmp_path / "d"), A.WRITE)  # bytes accepted
    got = caps.fs_capabilities()
    assert [type(g).__name__ for g in got] == ["FsCapability"] * 3
    assert got[0].original == str(tmp_path / "link")
    assert got[0].resolved == str((tmp_path / "d").resolve())
    assert got[0].access is A.READ and got[0].is_file is False
    assert got[1].resolved == str((tmp_path / "f").resolve()) and got[1].is_file is True
    assert got[1].access is A.READ_WRITE
    assert got[2].access is A.WRITE
    # FsCapability is tuple-like with named fields
    original, resolved, access, is_file = got[1]
    assert (original, access, is_file) == (str(tmp_path / "f"), A.READ_WRITE, True)


def test_grant_errors_map_to_builtin_exceptions(nono_py, tmp_path):
    A = nono_py.AccessMode
    (tmp_path / "f").write_text("x")
    caps = nono_py.CapabilitySet()
    with pytest.raises(FileNotFoundError) as e:
        caps.allow_path(str(tmp_path / "missing"), A.READ)
    assert e.value.errno == errno.ENOENT and "missing" in str(e.value)
    with pytest.raises(FileNotFoundError):
        caps.allow_file(str(tmp_path / "missing"), A.READ)
    with pytest.raises(ValueError):  # a file given to allow_path
        caps.allow_path(str(tmp_path / "f"), A.READ)
    with pytest.raises(ValueError):  # a directory given to allow_file
        caps.allow_file(str(tmp_path), A.READ)
    with pytest.raises(ValueError, match="null"):  # embedded NUL never reaches C
        caps.allow_path(str(tmp_path) + "\0/etc", A.READ)
    with pytest.raises(ValueError):
        caps.allow_file(b"/etc/passwd\0", A.READ)
    with pytest.raises(ValueError):
        caps.allow_path("", A.READ)
    with pytest.raises(TypeError, match="AccessMode"):
        caps.allow_path(str(tmp_path), 1)
    with pytest.raises(TypeError, match="AccessMode"):
        caps.allow_path(str(tmp_path), "r")
    with pytest.raises(TypeError):
        caps.allow_path(42, A.READ)
    assert caps.fs_capabilities() == []  # nothing half-added


def test_network_modes_later_call_wins(nono_py):
    caps = nono_py.CapabilitySet()
    assert caps.is_network_blocked is False and caps.network_mode == "allowed"
    assert "network=allowed" in repr(caps)
    caps.block_network()
    assert caps.is_network_blocked is True and caps.network_mode == "blocked"
    assert "network=blocked" in repr(caps)
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        caps.proxy_only(proxy)
        assert caps.network_mode == "proxy-only" and caps.is_network_blocked is True
        assert caps.proxy_port == proxy.port
        assert "network=proxy-only" in repr(caps) and f"proxy_port={proxy.port}" in repr(caps)
        caps.block_network()
        assert caps.network_mode == "blocked" and caps.proxy_port is None
        caps.proxy_only(proxy)
        assert caps.network_mode == "proxy-only"
    with pytest.raises(ValueError, match="shut down"):
        caps.proxy_only(proxy)
    with pytest.raises(TypeError):
        caps.proxy_only(3128)


def test_unix_socket_grants(nono_py, tmp_path):
    sock_path = tmp_path / "s.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock_path))
    try:
        caps = nono_py.CapabilitySet()
        caps.allow_unix_socket(str(sock_path))
        caps.allow_unix_socket(tmp_path)  # a directory: any socket inside
        assert caps.unix_sockets == [str(sock_path.resolve()), str(tmp_path.resolve())]
        with pytest.raises(FileNotFoundError):
            caps.allow_unix_socket(str(tmp_path / "nope.sock"))
        with pytest.raises(ValueError):
            caps.allow_unix_socket("/tmp/a\0b")
    finally:
        s.close()


def test_deduplicate_and_path_covered(nono_py, tmp_path):
    A = nono_py.AccessMode
    (tmp_path / "sub").mkdir()
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), A.READ)
    caps.allow_path(str(tmp_path / "sub" / ".."), A.WRITE)
    caps.allow_path(str(tmp_path / "sub"), A.READ)
    assert len(caps.fs_capabilities()) == 3
    caps.deduplicate()
    got = caps.fs_capabilities()
    assert [(g.resolved, g.access) for g in got] == [
        (str(tmp_path.resolve()), A.READ_WRITE), (str((tmp_path / "sub").resolve()), A.READ)]
    assert caps.path_covered(str(tmp_path / "sub" / "x" / "y")) is True
    assert caps.path_covered(tmp_path / "sub") is True
    assert caps.path_covered("/etc/passwd") is False
    assert caps.path_covered(str(tmp_path) + "-sibling") is False
    with pytest.raises(ValueError):
        caps.path_covered("/etc\0")


def test_summary_and_repr(nono_py, tmp_path):
    A = nono_py.AccessMode
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), A.READ_WRITE)
    caps.allow_path("/usr", A.READ)
    caps.block_network()
    s = caps.summary()
    assert isinstance(s, str) and "2" in s and "blocked" in s
    assert repr(caps) == "CapabilitySet(fs=2, unix_sockets=0, network=blocked)"
    with pytest.raises(TypeError):
        nono_py.CapabilitySet(1)


def test_query_context(nono_py, tmp_path):
    A = nono_py.AccessMode
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), A.READ)
    q = nono_py.QueryContext(caps)
    r = q.query_path(str(tmp_path / "x"), A.READ)
    assert r["status"] == "allowed" and r["reason"] and r["granted_path"] == str(tmp_path.resolve())
    r = q.query_path(str(tmp_path / "x"), A.WRITE)
    assert r["status"] == "denied" and r["reason"]
    r = q.query_path("/etc/passwd", A.READ)
    assert r["status"] == "denied" and r["granted_path"] is None
    assert q.query_network()["status"] == "allowed"
    # QueryContext is a snapshot: later changes to caps do not leak into it
    caps.block_network()
    assert q.query_network()["status"] == "allowed"
    n = nono_py.QueryContext(caps).query_network()
    assert n["status"] == "denied" and n["mode"] == "blocked" and n["reason"]
    with pytest.raises(ValueError):
        q.query_path("/x\0y", A.READ)
    with pytest.raises(TypeError):
        nono_py.QueryContext(None)


def test_sandbox_state_roundtrip(nono_py, tmp_path):
    A = nono_py.AccessMode
    (tmp_path / "f").write_text("x")
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), A.READ_WRITE)
    caps.allow_file(str(tmp_path / "f"), A.READ)
    caps.block_network()
    st = nono_py.SandboxState.from_caps(caps)
    js = st.to_json()
    doc = json.loads(js)
    assert isinstance(doc, dict)
    back = nono_py.SandboxState.from_json(js).to_caps()
    assert type(back) is nono_py.CapabilitySet and back is not caps
    assert [tuple(g) for g in back.fs_capabilities()] == [tuple(g) for g in caps.fs_capabilities()]
    assert back.network_mode == "blocked"
    assert nono_py.SandboxState.from_json(js.encode()).to_json() == js
    # strict parsing
    with pytest.raises(ValueError):
        nono_py.SandboxState.from_json("{not json")
    bad = dict(doc, surprise=1)
    with pytest.raises(ValueError):
        nono_py.SandboxState.from_json(json.dumps(bad))
    # nono-py's JSON: fs entries {original, resolved, access, is_file, source}, net_blocked
    assert doc["net_blocked"] is True and "network" not in doc
    assert doc["fs"][1] == {"original": str(tmp_path / "f"), "resolved": str(tmp_path / "f"),
                            "access": "read", "is_file": True, "source": "user"}
    assert doc["fs"][0]["access"] == "readwrite"
    # paths are checked by to_caps, not when parsing
    missing = str(tmp_path / "gone")
    js_missing = js.replace(json.dumps(str(tmp_path / "f")), json.dumps(missing))
    assert missing in js_missing
    st_missing = nono_py.SandboxState.from_json(js_missing)
    with pytest.raises(FileNotFoundError):
        st_missing.to_caps()
    with pytest.raises(ValueError):
        nono_py.SandboxState.from_json(js[:-1] + "\0}")
    with pytest.raises(TypeError):
        nono_py.SandboxState()
    with pytest.raises(TypeError):
        nono_py.SandboxState.from_caps("caps")


def test_sandbox_state_proxy_only_keeps_port(nono_py):
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        caps = nono_py.CapabilitySet()
        caps.proxy_only(proxy)
        back = nono_py.SandboxState.from_json(nono_py.SandboxState.from_caps(caps).to_json()).to_caps()
        assert back.network_mode == "proxy-only" and back.proxy_port == proxy.port


def test_module_shape(nono_py):
    m = nono_py._nono
    assert m.__name__ == "nono_py._nono"
    assert pathlib.Path(m.__file__).suffix == ".so"
    for name in nono_py.__all__:
        assert hasattr(nono_py, name), name
    assert nono_py.CapabilitySet.__module__ == "nono_py"
    with pytest.raises(TypeError):
        nono_py.ProxyHandle()


def test_module_instances_are_isolated(nono_py):
    """Multi-phase init with module state: a second instance of the extension has its own types, and
    objects of one instance are refused by the other (no static globals shared between them)."""
    import importlib.machinery
    import importlib.util
    path = nono_py._nono.__file__
    spec = importlib.util.spec_from_file_location(
        "nono_py._nono", path, loader=importlib.machinery.ExtensionFileLoader("nono_py._nono", path))
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    assert other is not nono_py._nono
    assert other.CapabilitySet is not nono_py.CapabilitySet
    assert other.AccessMode is not nono_py.AccessMode
    caps = other.CapabilitySet()
    caps.allow_path("/usr", other.AccessMode.READ)
    assert caps.fs_capabilities()[0].access is other.AccessMode.READ
    with pytest.raises(TypeError):
        caps.allow_path("/etc", nono_py.AccessMode.READ)  # the other instance's enum
    with pytest.raises(TypeError):
        nono_py.sandboxed_exec(caps, ["/bin/true"])
    with pytest.raises(TypeError):
        nono_py.QueryContext(caps)
    r = other.sandboxed_exec(caps, ["/usr/bin/true"])
    assert r.exit_code == 0 and type(r) is other.ExecResult
    del other, caps, r


def test_version_is_the_project_version(nono_py):
    from nono_py_testlib import BUILD
    info = json.loads((BUILD / "meson-info" / "intro-projectinfo.json").read_text())
    assert nono_py.__version__ == info["version"]


def test_sandbox_state_reads_nono_py_documents(nono_py, tmp_path):
    """A document as nono-py writes it (no keys of ours) loads; ours add keys only when needed."""
    A = nono_py.AccessMode
    theirs = {"fs": [{"original": str(tmp_path), "resolved": str(tmp_path), "access": "readwrite",
                      "is_file": False}], "net_blocked": False}
    st = nono_py.SandboxState.from_json(json.dumps(theirs))
    assert st.net_blocked is False and repr(st) == "SandboxState(fs=1, net_blocked=False)"
    caps = st.to_caps()
    assert [(c.resolved, c.access, str(c.source)) for c in caps.fs_capabilities()] == [
        (str(tmp_path), A.READ_WRITE, "user")]
    assert caps.network_mode == "allowed"
    for spelled in ("ReadWrite", "read_write", "read-write", "read+write"):
        doc = {"fs": [dict(theirs["fs"][0], access=spelled)], "net_blocked": True}
        back = nono_py.SandboxState.from_json(json.dumps(doc)).to_caps()
        assert back.fs_capabilities()[0].access == A.READ_WRITE and back.is_network_blocked
    for bad in ({}, {"fs": []}, {"net_blocked": True}, dict(theirs, net_blocked="yes"),
                {"fs": [{"resolved": "/tmp"}], "net_blocked": False},
                dict(theirs, network={"mode": "allowed"}, net_blocked=True),
                {"fs": [dict(theirs["fs"][0], access="admin")], "net_blocked": False}):
        with pytest.raises(ValueError):
            nono_py.SandboxState.from_json(json.dumps(bad))
    # a path that now resolves elsewhere is refused, not silently re-pointed
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "moved")
    drift = {"fs": [{"original": "x", "resolved": str(tmp_path / "moved"), "access": "read",
                     "is_file": False}], "net_blocked": True}
    with pytest.raises(ValueError, match="drifted"):
        nono_py.SandboxState.from_json(json.dumps(drift)).to_caps()


def test_sandbox_state_keeps_our_extras(nono_py, tmp_path):
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ)
    caps.platform_rule('(deny file-write* (subpath "/private/x"))')
    with nono_py.start_proxy(nono_py.ProxyConfig(allowed_hosts=["example.com"])) as proxy:
        caps.proxy_only(proxy)
        doc = json.loads(nono_py.SandboxState.from_caps(caps).to_json())
        assert doc["net_blocked"] is True
        assert doc["network"] == {"mode": "proxy-only", "proxy_port": proxy.port,
                                  "proxy_address": "127.0.0.1"}
        assert doc["platform_rules"] == ['(deny file-write* (subpath "/private/x"))']
        back = nono_py.SandboxState.from_json(json.dumps(doc)).to_caps()
        assert back.network_mode == "proxy-only" and back.proxy_port == proxy.port
        assert back.platform_rules == caps.platform_rules


def test_query_reason_tags(nono_py, tmp_path):
    """reason is a stable tag (nono-py's); the prose is in message."""
    A = nono_py.AccessMode
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), A.READ)
    q = nono_py.QueryContext(caps)
    r = q.query_path(str(tmp_path / "x"), A.READ)
    assert (r["status"], r["reason"], r["granted_path"], r["access"]) == (
        "allowed", "granted_path", str(tmp_path), "read")
    assert str(tmp_path) in r["message"]
    r = q.query_path(str(tmp_path / "x"), A.READ_WRITE)
    assert (r["status"], r["reason"], r["granted"], r["requested"]) == (
        "denied", "insufficient_access", "read", "read+write")
    r = q.query_path("/nonexistent-nono/x", A.READ)
    assert (r["status"], r["reason"]) == ("denied", "path_not_granted")
    assert q.query_network()["reason"] == "network_allowed"
    caps.block_network()
    assert nono_py.QueryContext(caps).query_network()["reason"] == "network_blocked"
    with nono_py.start_proxy(nono_py.ProxyConfig(allowed_hosts=["example.com"])) as proxy:
        caps.proxy_only(proxy)
        r = nono_py.QueryContext(caps).query_network()
        assert (r["status"], r["reason"], r["proxy_port"]) == (
            "denied", "network_proxy_only", proxy.port)


@pytest.mark.parametrize("rule", [
    '(allow file-read* (subpath "/"))', "(allow default)", "(allow network*)",
    '(allow file-read* (regex #"^/"))', "(allow file-read*", "allow file-read*", "",
    '(allow file-read* (subpath "/x")) (allow default)', "(permit file-read* (subpath \"/x\"))",
    "(deny file-read* (subpath \"/x\") \u00e9)",
])
def test_platform_rule_refused(nono_py, rule):
    caps = nono_py.CapabilitySet()
    with pytest.raises(ValueError):
        caps.platform_rule(rule)
    assert caps.platform_rules == []


def test_platform_rule_recorded_and_reported(nono_py, tmp_path):
    caps = nono_py.CapabilitySet()
    rule = '(deny file-write* (subpath "/Users/me/.ssh"))'
    caps.platform_rule(rule)
    caps.platform_rule('(allow mach-lookup (global-name "com.apple.x"))')
    assert caps.platform_rules == [rule, '(allow mach-lookup (global-name "com.apple.x"))']
    assert "not enforced on Linux" in caps.summary() and rule in caps.summary()
    caps.allow_path("/usr", nono_py.AccessMode.READ)
    caps.allow_path("/lib", nono_py.AccessMode.READ)
    r = nono_py.sandboxed_exec(caps, ["/bin/true"])
    assert r.exit_code == 0 and r.report["platform_rules"] == 2
    assert "platform rules: 2 recorded, NOT ENFORCED on Linux" in r.enforcement


def test_capability_source(nono_py, tmp_path):
    S = nono_py.CapabilitySource
    assert str(S.user()) == "user" and str(S.system()) == "system"
    assert str(S.group("git")) == "group:git" and repr(S.group("git")) == "CapabilitySource(group:git)"
    assert S.group("git") == S.group("git") and len({S.user(), S.user(), S.system()}) == 2
    assert S.group("git").kind == "group" and S.group("git").name == "git"
    with pytest.raises(ValueError):
        S.group("")
    with pytest.raises(TypeError):
        S()
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ)
    assert caps.fs_capabilities()[0].source == S.user()
    # sources written by the library survive the JSON round trip
    doc = json.loads(nono_py.SandboxState.from_caps(caps).to_json())
    doc["fs"][0]["source"] = "group:node"
    back = nono_py.SandboxState.from_json(json.dumps(doc)).to_caps()
    assert back.fs_capabilities()[0].source == S.group("node")
    back.deduplicate()
    assert back.fs_capabilities()[0].source == S.group("node")


def test_summary_lists_paths(nono_py, tmp_path):
    caps = nono_py.CapabilitySet()
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ_WRITE)
    lines = caps.summary().splitlines()
    assert lines[0].startswith("1 path")
    assert lines[1].split() == ["read-write", str(tmp_path), "(dir)"]


def test_namespace_hygiene(nono_py):
    names = dir(nono_py)
    for mod in ("re", "urllib", "ipaddress", "dataclass", "json", "_nono"):
        assert mod not in names
    assert set(nono_py.__all__) <= set(names)


def test_signatures_match_nono_py(nono_py):
    """nono-py's names and parameters (its _nono_py.pyi) for the surface this package owns; ours
    may add keyword parameters after them."""
    import inspect

    def params(f):
        return list(inspect.signature(f).parameters)

    assert params(nono_py.sandboxed_exec)[:5] == ["caps", "command", "cwd", "timeout_secs", "env"]
    assert params(nono_py.apply) == ["caps"]
    for name in ("allow_path", "allow_file"):
        assert params(getattr(nono_py.CapabilitySet, name)) == ["path", "mode"]
    assert params(nono_py.CapabilitySet.platform_rule) == ["rule"]
    assert params(nono_py.CapabilitySet.path_covered) == ["path"]
    assert params(nono_py.QueryContext) == ["caps"]
    assert params(nono_py.QueryContext.query_path) == ["path", "mode"]
    assert params(nono_py.SandboxState.from_json) == ["json"]
    assert params(nono_py.SandboxState.from_caps) == ["caps"]
    assert params(nono_py.CapabilitySource.group) == ["name"]
    for cls, attrs in {
        nono_py.CapabilitySet: ["block_network", "deduplicate", "fs_capabilities", "summary",
                                "is_network_blocked", "proxy_only"],
        nono_py.SandboxState: ["to_json", "to_caps", "net_blocked"],
        nono_py.QueryContext: ["query_network"],
        nono_py.ExecResult: ["stdout", "stderr", "exit_code"],
        nono_py.SupportInfo: ["is_supported", "platform", "details"],
        nono_py.FsCapability: ["original", "resolved", "access", "is_file", "source"],
        nono_py.CapabilitySource: ["user", "system", "group"],
        nono_py.ProxyHandle: ["port", "env_vars", "drain_audit_events", "shutdown"],
    }.items():
        for a in attrs:
            assert hasattr(cls, a), (cls, a)
