"""Helpers shared by the nono_py tests (a uniquely named module: test files import it directly)."""
import json
import os
import pathlib
import socket
import subprocess
import threading

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = pathlib.Path(os.environ.get("NONO_BUILD_DIR", ROOT / "build"))
PYDIR = BUILD / "python"
PYTHON = "/usr/bin/python3"


def asan_build():
    try:
        opts = json.loads((BUILD / "meson-info" / "intro-buildoptions.json").read_text())
    except (OSError, ValueError):
        return False
    return any(o["name"] == "b_sanitize" and "address" in str(o["value"]) for o in opts)


def asan_loaded():
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


ASAN_BUILD = asan_build()
ASAN_RERUN = ASAN_BUILD and not asan_loaded()  # this process cannot load the extension


def libasan_path():
    return subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True,
                          check=True).stdout.strip()


def child_env():
    """Environment for helper python processes that import nono_py (keeps the ASan preload)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PYDIR), "NONO_BUILD_DIR": str(BUILD)}
    for k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def run_py(code, *, env_extra=None, timeout=120):
    """Run `code` in a fresh /usr/bin/python3 that can import nono_py. Returns CompletedProcess."""
    env = child_env()
    env.update(env_extra or {})
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout)


class LoopbackServer:
    """A tiny HTTP/1.0 server on 127.0.0.1: answers every request with `body`, counts accepts."""

    def __init__(self, body=b"hello from loopback\n"):
        self.body = body
        self.accepts = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepts += 1
            with c:
                c.settimeout(5)
                data = b""
                try:
                    while b"\r\n\r\n" not in data and len(data) < 65536:
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                              % len(self.body) + self.body)
                except OSError:
                    pass

    def close(self):
        self._stop = True
        self.thread.join(5)
        self.sock.close()


class UdpSink:
    """A UDP socket on 127.0.0.1 that records what reaches it."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.setblocking(False)

    def received(self):
        got = []
        while True:
            try:
                got.append(self.sock.recv(65536))
            except BlockingIOError:
                return got

    def close(self):
        self.sock.close()


PROBE_SRC = (HERE / "nono_py_probe.py").read_text()


def run_probe(nono_py, caps, *actions, **kw):
    """sandboxed_exec the probe with `actions`; returns (ExecResult, {action: result dict})."""
    r = nono_py.sandboxed_exec(caps, [PYTHON, "-c", PROBE_SRC, *actions], **kw)
    out = {}
    for line in r.stdout.decode().splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            out[d["action"]] = d
    assert set(out) == set(actions), (r.exit_code, r.stdout, r.stderr)
    return r, out


def make_base_caps(nono_py):
    """Just enough to run /usr/bin/python3 and /bin/sh in a sandboxed child: system dirs read-only."""
    caps = nono_py.CapabilitySet()
    for p in ("/usr", "/etc"):
        caps.allow_path(p, nono_py.AccessMode.READ)
    for p in ("/lib", "/lib64", "/bin"):
        if os.path.isdir(p):
            caps.allow_path(p, nono_py.AccessMode.READ)
    caps.allow_file("/dev/null", nono_py.AccessMode.READ_WRITE)
    return caps


EVENT_KEYS = {"decision", "target", "port", "mode", "reason", "timestamp_unix_ms", "source"}


def proxy_only_scenario(nono_py, **exec_kw):
    """One proxy-only child probing everything; returns plain data (JSON-able) for check_proxy_only.
    Used in-process and in subprocesses (e.g. under NONO_MAX_LANDLOCK_ABI=3)."""
    import time
    srv, other, udp = LoopbackServer(), LoopbackServer(), UdpSink()
    try:
        cfg = nono_py.ProxyConfig(allow_internal=[f"127.0.0.1:{srv.port}"])
        with nono_py.start_proxy(cfg) as proxy:
            # A listener on the proxy's port but another loopback address: proxy-only pins 127.0.0.1.
            decoy = socket.socket()
            decoy.bind(("127.0.0.2", proxy.port))
            decoy.listen(4)
            decoy.setblocking(False)
            caps = make_base_caps(nono_py)
            caps.proxy_only(proxy)
            acts = {
                "env": "env:HTTP_PROXY",
                "get_ok": f"proxy_get:http://127.0.0.1:{srv.port}/allowed",
                "connect_ok": f"proxy_connect:127.0.0.1:{srv.port}",
                "get_denied_host": "proxy_get:http://blocked.invalid/x",
                "connect_denied_host": "proxy_connect:blocked.invalid:443",
                "get_denied_internal": f"proxy_get:http://127.0.0.1:{other.port}/",
                "tcp_direct": f"tcp:127.0.0.1:{srv.port}",
                "udp_direct": f"udp:127.0.0.1:{udp.port}",
                "tcp_decoy": f"tcp:127.0.0.2:{proxy.port}",
                "unset": "unsetproxy",
                "tcp_direct_after_unset": f"tcp:127.0.0.1:{other.port}",
                "tcp_proxy_port": f"tcp:127.0.0.1:{proxy.port}",
            }
            t0 = int(time.time() * 1000)
            r, out = run_probe(nono_py, caps, *acts.values(), **exec_kw)
            t1 = int(time.time() * 1000)
            events = proxy.drain_audit_events()
            again = proxy.drain_audit_events()
            try:
                decoy_accepted = decoy.accept() is not None
            except BlockingIOError:
                decoy_accepted = False
            decoy.close()
            return {
                "exit_code": r.exit_code, "stderr": r.stderr.decode(errors="replace"),
                "proxy_port": proxy.port, "srv_port": srv.port, "other_port": other.port,
                "out": {k: out[v] for k, v in acts.items()},
                "events": events, "again": again, "t0": t0, "t1": t1,
                "srv_accepts": srv.accepts, "other_accepts": other.accepts,
                "udp_received": len(udp.received()), "decoy_accepted": decoy_accepted,
                "landlock_abi": nono_py.support_info().landlock_abi,
                "enforcement": r.enforcement,
                "report": r.report,
            }
    finally:
        srv.close()
        other.close()
        udp.close()


def check_proxy_only(res):
    import errno
    denied = (errno.EACCES, errno.EPERM)
    o = res["out"]
    assert res["exit_code"] == 0, res["stderr"]
    assert o["env"]["value"] and f":{res['proxy_port']}" in o["env"]["value"]
    # through the proxy: the allowed loopback destination answers, the rest gets 403
    assert o["get_ok"]["status"] == 200 and "hello from loopback" in o["get_ok"]["body"], o["get_ok"]
    assert o["connect_ok"]["status"] == 200 and "hello from loopback" in o["connect_ok"]["body"]
    assert o["get_denied_host"]["status"] == 403, o["get_denied_host"]
    assert o["connect_denied_host"]["status"] == 403, o["connect_denied_host"]
    assert o["get_denied_internal"]["status"] == 403, o["get_denied_internal"]
    # and nothing else: not directly, not by UDP, not on another loopback address, not after
    # deleting the proxy variables
    for k in ("tcp_direct", "udp_direct", "tcp_decoy", "tcp_direct_after_unset"):
        assert o[k]["ok"] is False and o[k]["errno"] in denied, (k, o[k])
    assert "HTTP_PROXY" in o["unset"]["removed"]
    assert o["tcp_proxy_port"]["ok"] is True, o["tcp_proxy_port"]
    assert res["srv_accepts"] == 2  # the two proxied requests, nothing direct
    assert res["other_accepts"] == 0 and res["udp_received"] == 0 and not res["decoy_accepted"]
    # the proxy's decisions are in the audit ring
    ev = res["events"]
    assert ev and all(EVENT_KEYS <= set(e) for e in ev), ev
    assert all(e["decision"] in ("allow", "deny") for e in ev)
    assert all(res["t0"] - 1000 <= e["timestamp_unix_ms"] <= res["t1"] + 1000 for e in ev)
    allows = [e for e in ev if e["decision"] == "allow" and e["source"] == "proxy"]
    denies = [e for e in ev if e["decision"] == "deny" and e["source"] == "proxy"]
    assert {(e["target"], e["port"], e["mode"]) for e in allows} >= {
        ("127.0.0.1", res["srv_port"], "http"), ("127.0.0.1", res["srv_port"], "connect")}, allows
    assert {(e["target"], e["port"], e["mode"]) for e in denies} >= {
        ("blocked.invalid", 80, "http"), ("blocked.invalid", 443, "connect"),
        ("127.0.0.1", res["other_port"], "http")}, denies
    assert all(e["reason"] for e in denies)
    assert res["again"] == []
