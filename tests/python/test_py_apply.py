"""apply(caps): sandbox the calling process, in forked children / fresh interpreters (irreversible)."""
import errno
import json
import os

import pytest

from nono_py_testlib import HERE, make_base_caps, run_py

DENIED = (errno.EACCES, errno.EPERM)

# Runs in a fresh interpreter: apply() the caps given as JSON, then try each action.
APPLY_SCRIPT = """
import errno, json, socket, sys, base64
sys.path.insert(0, {here!r})
import nono_py
caps = nono_py.SandboxState.from_json({caps_json!r}).to_caps()
res = {{"apply": nono_py.apply(caps)}}
def attempt(name, fn):
    try:
        res[name] = {{"ok": True, "value": fn()}}
    except OSError as e:
        res[name] = {{"ok": False, "errno": e.errno, "error": f"{{type(e).__name__}}: {{e}}"}}
def read(p):
    with open(p) as f:
        return f.read()
def tcp(port, host="127.0.0.1"):
    with socket.create_connection((host, port), timeout=5):
        return True
def connect_via_proxy(proxy_port, token, target):
    auth = base64.b64encode(f"nono:{{token}}".encode()).decode()
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as s:
        s.sendall(f"CONNECT {{target}} HTTP/1.1\\r\\nHost: {{target}}\\r\\n"
                  f"Proxy-Authorization: Basic {{auth}}\\r\\n\\r\\n".encode())
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            c = s.recv(4096)
            if not c:
                break
            head += c
        status = int(head.split()[1])
        if status != 200:
            return status
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        body = b""
        while True:
            c = s.recv(4096)
            if not c:
                break
            body += c
        return [status, body.decode()]
{actions}
print(json.dumps(res))
"""


def apply_in_subprocess(caps, actions, env_extra=None):
    from nono_py import SandboxState
    code = APPLY_SCRIPT.format(here=str(HERE), caps_json=SandboxState.from_caps(caps).to_json(),
                               actions=actions)
    r = run_py(code, env_extra=env_extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[-1])


def test_apply_in_forked_child(nono_py, tmp_path):
    """os.fork(): the child applies, tries inside and outside its grant, reports through a pipe."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f").write_text("inside")
    (tmp_path / "secret").write_text("outside")
    caps = make_base_caps(nono_py)
    caps.allow_path(str(tmp_path / "in"), nono_py.AccessMode.READ)
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            os.close(rfd)
            res = {"apply": nono_py.apply(caps)}
            with open(tmp_path / "in" / "f") as f:
                res["inside"] = f.read()
            try:
                open(tmp_path / "secret").read()
                res["outside"] = "READ"
            except PermissionError as e:
                res["outside"] = e.errno
            try:
                open(tmp_path / "in" / "new", "w").close()
                res["write"] = "WROTE"
            except PermissionError as e:
                res["write"] = e.errno
            os.write(wfd, json.dumps(res).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd) as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, data
    assert json.loads(data) == {"apply": None, "inside": "inside", "outside": errno.EACCES,
                                "write": errno.EACCES}
    assert not (tmp_path / "in" / "new").exists()
    # the parent is untouched
    assert (tmp_path / "secret").read_text() == "outside"


def test_apply_filesystem(nono_py, tmp_path):
    (tmp_path / "rw").mkdir()
    (tmp_path / "other").write_text("no")
    caps = make_base_caps(nono_py)
    caps.allow_path(str(tmp_path / "rw"), nono_py.AccessMode.READ_WRITE)
    res = apply_in_subprocess(caps, f"""
attempt("write", lambda: open({str(tmp_path / 'rw' / 'x')!r}, "w").write("hi"))
attempt("read_back", lambda: read({str(tmp_path / 'rw' / 'x')!r}))
attempt("other", lambda: read({str(tmp_path / 'other')!r}))
attempt("home", lambda: read("/root/.profile"))
""")
    assert res["apply"] is None
    assert res["write"] == {"ok": True, "value": 2}
    assert res["read_back"]["value"] == "hi"
    assert res["other"]["ok"] is False and res["other"]["errno"] == errno.EACCES
    assert res["other"]["error"].startswith("PermissionError: [Errno 13]")
    assert res["home"]["ok"] is False


def test_apply_block_network(nono_py, loopback_server):
    caps = make_base_caps(nono_py)
    caps.block_network()
    res = apply_in_subprocess(caps, f"""
attempt("tcp", lambda: tcp({loopback_server.port}))
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9)))
""")
    assert res["tcp"]["ok"] is False and res["tcp"]["errno"] in DENIED, res
    assert res["udp"]["ok"] is False and res["udp"]["errno"] in DENIED, res
    assert loopback_server.accepts == 0


@pytest.mark.parametrize("abi", [None, "3"])
def test_apply_proxy_only(nono_py, loopback_server, abi):
    """The proxy runs in this (multi-threaded) process; the fresh interpreter applies proxy-only for its
    port (carried in the SandboxState JSON) and may then reach the proxy and nothing else."""
    cfg = nono_py.ProxyConfig(allow_internal=[f"127.0.0.1:{loopback_server.port}"])
    with nono_py.start_proxy(cfg) as proxy:
        caps = make_base_caps(nono_py)
        caps.proxy_only(proxy)
        token = proxy.url.split(":")[2].split("@")[0]
        res = apply_in_subprocess(caps, f"""
attempt("via_proxy", lambda: connect_via_proxy({proxy.port}, {token!r}, "127.0.0.1:{loopback_server.port}"))
attempt("denied_host", lambda: connect_via_proxy({proxy.port}, {token!r}, "denied.invalid:443"))
attempt("direct", lambda: tcp({loopback_server.port}))
attempt("decoy_addr", lambda: tcp({proxy.port}, "127.0.0.2"))
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9)))
""", env_extra={"NONO_MAX_LANDLOCK_ABI": abi} if abi else None)
        events = proxy.drain_audit_events()
    assert res["via_proxy"]["ok"] and res["via_proxy"]["value"][0] == 200, res
    assert "hello from loopback" in res["via_proxy"]["value"][1]
    assert res["denied_host"] == {"ok": True, "value": 403}
    for k in ("direct", "decoy_addr", "udp"):
        assert res[k]["ok"] is False and res[k]["errno"] in DENIED, (k, res[k])
    assert loopback_server.accepts == 1
    assert ("deny", "denied.invalid") in {(e["decision"], e["target"]) for e in events}


def test_apply_refuses_multithreaded_process(nono_py):
    code = f"""
import sys, threading, time
sys.path.insert(0, {str(HERE)!r})
import nono_py
ev = threading.Event()
t = threading.Thread(target=ev.wait); t.start()
try:
    nono_py.apply(nono_py.CapabilitySet())
except RuntimeError as e:
    print("refused", e.errno)
finally:
    ev.set(); t.join()
"""
    r = run_py(code)
    assert r.stdout.strip() == f"refused {errno.EBUSY}", r.stdout + r.stderr


def test_apply_argument_errors(nono_py):
    with pytest.raises(TypeError):
        nono_py.apply(None)
    with pytest.raises(TypeError):
        nono_py.apply("caps")
