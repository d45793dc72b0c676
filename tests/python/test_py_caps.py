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
    assert repr(A.READ_WRITE) == "<AccessMode.READ_WRITE: 3>"


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
    missing = str(tmp_path / "gone")
    js_missing = js.replace(json.dumps(str(tmp_path / "f")), json.dumps(missing))
    assert missing in js_missing
    with pytest.raises(FileNotFoundError):
        nono_py.SandboxState.from_json(js_missing)
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
