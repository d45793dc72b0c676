"""SOCKS5 on the proxy's listener and the external (corporate) proxy upstream, with real clients.

- SOCKS5: sandboxed commands (`nono run`, proxy-only) reach an allowed host:port through
  ALL_PROXY=socks5h://… with a plain Python TCP client and with curl; a name off the allowlist,
  metadata endpoints (by address and by name), an unlisted IPv6 literal, BIND and a wrong token are
  refused with the right SOCKS reply codes, and each refusal is an audit event. These run in a
  network namespace the test creates (`unshare -rn`: only lo), so naming 169.254.169.254 can never
  send a packet anywhere.
- External proxy: Debian's tinyproxy on loopback plays the corporate proxy (with Basic auth);
  allowed traffic shows up in its log as CONNECT, bypass hosts do not, denied hosts never reach it,
  and wrong credentials give 502 with the reason and without the password.
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("NONO_BUILD_DIR", ROOT / "build"))
NONO = BUILD / "src" / "cli" / "nono"
CURL = shutil.which("curl") or "/usr/bin/curl"
TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"

# The SOCKS5 client the sandboxed command runs: one request per argument "HOST|ATYP|PORT|USER|PASS|CMD",
# printing the reply code (or "auth:N" / "nomethod") and, on success, the echoed payload.
CLIENT = r'''
import ipaddress, os, socket, struct, sys, urllib.parse
u = urllib.parse.urlsplit(os.environ["ALL_PROXY"])
assert u.scheme == "socks5h", u
for spec in sys.argv[1:]:
    host, atyp, port, user, pw, cmd = spec.split("|")
    user = u.username if user == "-" else user
    pw = u.password if pw == "-" else pw
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    s.sendall(b"\x05\x01\x02")
    if s.recv(2) != b"\x05\x02":
        print("nomethod"); continue
    s.sendall(bytes([1, len(user)]) + user.encode() + bytes([len(pw)]) + pw.encode())
    a = s.recv(2)
    if a[1] != 0:
        print(f"auth:{a[1]}"); continue
    if atyp == "3":
        addr = bytes([len(host)]) + host.encode()
    else:
        addr = ipaddress.ip_address(host).packed
    s.sendall(bytes([5, int(cmd), 0, int(atyp)]) + addr + struct.pack(">H", int(port)))
    rep = b""
    while len(rep) < 10:
        chunk = s.recv(10 - len(rep))
        if not chunk:
            break
        rep += chunk
    if len(rep) < 2 or rep[1] != 0:
        print(f"rep:{rep[1] if len(rep) > 1 else 'eof'}"); continue
    s.sendall(b"ping over socks")
    got = b""
    while len(got) < 15:
        chunk = s.recv(64)
        if not chunk:
            break
        got += chunk
    print("ok:" + got.decode())
'''


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def echo_server():
    """A TCP echo server on 127.0.0.1 (daemon thread); returns its port."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def serve(c):
        with c:
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def http_server(body):
    """An HTTP/1.0 server answering every GET with `body` (daemon thread); returns its port."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            b = (body + self.path).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(b)))
            self.end_headers()
            self.wfile.write(b)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


# --------------------------------------------------------------------------- SOCKS5 (in a netns)

def netns_socks_main():
    """Runs inside `unshare -rn`: servers on lo, nono run with the client; prints one JSON line."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    echo = echo_server()
    web = http_server("hello over socks ")
    with tempfile.TemporaryDirectory() as td:
        log = pathlib.Path(td) / "audit.jsonl"
        grants = ["--allow-domain", f"localhost:{echo}", "--allow-internal", f"localhost:{echo}",
                  "--allow-internal", f"127.0.0.1:{echo}", "--allow-internal", f"localhost:{web}",
                  "--audit-log", str(log)]
        specs = [f"localhost|3|{echo}|-|-|1",        # socks5h: the name, resolved by the proxy
                 f"127.0.0.1|1|{echo}|-|-|1",        # an IPv4 literal, allowed explicitly
                 "denied.example|3|80|-|-|1",        # off the allowlist
                 "169.254.169.254|1|80|-|-|1",       # metadata by address
                 "metadata.google.internal|3|80|-|-|1",  # metadata by name
                 "::1|4|9|-|-|1",                    # an IPv6 literal not on the list
                 # (::1 on the echo port is: --allow-internal localhost:PORT covers 127.0.0.1 and ::1)
                 f"127.0.0.1|1|{echo}|-|-|2",        # BIND
                 f"localhost|3|{echo}|nono|bogus-token-xyz|1"]  # wrong token
        r = subprocess.run([str(NONO), "run", *grants, "--", sys.executable, "-c", CLIENT, *specs],
                           capture_output=True, text=True, timeout=60)
        c = subprocess.run([str(NONO), "run", *grants, "--", "/bin/sh", "-c",
                            f'exec {CURL} -sS --noproxy "" -x "$ALL_PROXY" http://localhost:{web}/x'],
                           capture_output=True, text=True, timeout=60)
        events = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    print(json.dumps({"client": r.stdout.splitlines(), "client_rc": r.returncode,
                      "client_err": r.stderr, "curl": c.stdout, "curl_rc": c.returncode,
                      "curl_err": c.stderr, "events": events}))


def run_in_netns(flag):
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) missing")
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("unprivileged network namespaces are not available here")
    r = subprocess.run(["unshare", "-rn", sys.executable, __file__, flag], capture_output=True,
                       text=True, timeout=180, env=dict(os.environ, NONO_BUILD_DIR=str(BUILD)))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_socks5_from_sandboxed_commands():
    if not NONO.exists():
        pytest.fail(f"{NONO} missing: build first")
    out = run_in_netns("--netns-socks")
    assert out["client_rc"] == 0, out["client_err"]
    assert out["client"] == ["ok:ping over socks", "ok:ping over socks",
                             "rep:2", "rep:2", "rep:2", "rep:2", "rep:7", "auth:1"], out
    assert out["curl_rc"] == 0, out["curl_err"]
    assert out["curl"] == "hello over socks /x"
    socks = [e for e in out["events"] if e["source"] == "proxy" and e["mode"] == "socks5"]
    denied = {(e["target"], e["status"]) for e in socks if e["decision"] == "deny"}
    assert ("denied.example", 403) in denied, socks
    assert ("169.254.169.254", 403) in denied and ("metadata.google.internal", 403) in denied
    assert ("::1", 403) in denied
    assert any(e["status"] == 407 and e["decision"] == "deny" for e in socks), socks
    assert any(e["status"] == 501 for e in socks), socks  # BIND
    allowed = [e for e in socks if e["decision"] == "allow" and e["reason"] == "allowed"]
    assert {e["target"] for e in allowed} >= {"localhost", "127.0.0.1"}, socks
    # a password the client offered never reaches an audit event
    assert all("bogus-token-xyz" not in json.dumps(e) for e in out["events"])


# --------------------------------------------------------------------------- external proxy

class Tinyproxy:
    def __init__(self, tmp, user="corp", password="s3cret"):
        self.port = free_port()
        self.log = tmp / "tinyproxy.log"
        self.log.write_text("")
        conf = tmp / "tinyproxy.conf"
        conf.write_text(f'Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogFile "{self.log}"\n'
                        f"LogLevel Connect\nMaxClients 20\nBasicAuth {user} {password}\n")
        self.p = subprocess.Popen([TINYPROXY, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def connects(self):
        return [line for line in self.log.read_text().splitlines() if "Request" in line and
                "CONNECT" in line]

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=10)


class NonoProxy:
    def __init__(self, *args):
        self.p = subprocess.Popen([str(NONO), "proxy", *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.url = self.p.stdout.readline().strip()
        assert self.url.startswith("http://nono:"), self.p.stderr.read()

    def curl(self, *args):
        return subprocess.run([CURL, "-sS", "-x", self.url, "-o", "/dev/null", "-w", "%{http_code}",
                               *args], capture_output=True, text=True, timeout=30)

    def close(self):
        self.p.terminate()
        self.p.wait(timeout=10)
        return self.p.stderr.read()


@pytest.fixture
def tinyproxy(tmp_path):
    if not os.path.exists(TINYPROXY):
        pytest.skip("tinyproxy not installed (scripts/deps.sh installs it)")
    t = Tinyproxy(tmp_path)
    yield t
    t.close()


def test_external_proxy_chains_allowed_traffic_and_bypass_goes_direct(tinyproxy):
    via, direct, other = http_server("via "), http_server("direct "), http_server("other ")
    ext = f"http://corp:s3cret@127.0.0.1:{tinyproxy.port}"
    p = NonoProxy("--allow-internal", f"127.0.0.1:{via}", "--allow-internal", f"127.0.0.1:{direct}",
                  "--external-proxy", ext, "--bypass", f"127.0.0.1:{direct}")
    try:
        assert p.curl(f"http://127.0.0.1:{via}/plain").stdout == "200"
        assert p.curl("-p", f"http://127.0.0.1:{via}/tunnel").stdout == "200"
        assert p.curl(f"http://127.0.0.1:{direct}/bypass").stdout == "200"
        assert p.curl(f"http://127.0.0.1:{other}/denied").stdout == "403"
        # A SOCKS5 tunnel leaves through the external proxy too.
        socks = "socks5h://" + p.url[len("http://"):]
        r = subprocess.run([CURL, "-sS", "-x", socks, f"http://127.0.0.1:{via}/socks"],
                           capture_output=True, text=True, timeout=30)
        assert r.stdout == "via /socks", r.stderr
    finally:
        err = p.close()
    deadline = time.monotonic() + 10
    while len(tinyproxy.connects()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    seen = tinyproxy.connects()
    assert sum(f"CONNECT 127.0.0.1:{via} " in line for line in seen) == 3, seen
    assert not any(f":{direct} " in line or f":{other} " in line for line in seen), seen
    assert "s3cret" not in err


def test_sandboxed_command_through_external_proxy(tinyproxy):
    via = http_server("via ")
    hp = f"127.0.0.1:{via}"
    r = subprocess.run([str(NONO), "run", "--allow-domain", hp, "--allow-internal", hp,
                        "--external-proxy", f"http://corp:s3cret@127.0.0.1:{tinyproxy.port}", "--",
                        CURL, "-sS", "--noproxy", "", f"http://{hp}/sandboxed"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "via /sandboxed", r.stderr
    deadline = time.monotonic() + 10
    while not tinyproxy.connects() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(f"CONNECT {hp} " in line for line in tinyproxy.connects())


def test_external_proxy_wrong_credentials_is_502_without_the_password(tinyproxy):
    via = http_server("via ")
    p = NonoProxy("--allow-internal", f"127.0.0.1:{via}", "--external-proxy",
                  f"http://corp:not-the-password@127.0.0.1:{tinyproxy.port}")
    try:
        r = subprocess.run([CURL, "-sS", "-i", "-x", p.url, f"http://127.0.0.1:{via}/"],
                           capture_output=True, text=True, timeout=30)
    finally:
        err = p.close()
    status = r.stdout.splitlines()[0]
    assert status.startswith("HTTP/1.1 502") and "refused the tunnel: 401" in status, r.stdout
    assert "not-the-password" not in r.stdout + err


def fake_corporate_proxy():
    """A scripted external proxy: answers CONNECT with its head in two writes, the second one
    carrying a server-first banner right after the head, then echoes. Records the CONNECT lines."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    seen = []

    def serve(c):
        with c:
            head = b""
            while b"\r\n\r\n" not in head:
                d = c.recv(4096)
                if not d:
                    return
                head += d
            seen.append(head.split(b"\r\n")[0].decode())
            c.sendall(b"HTTP/1.1 200 Conn")
            time.sleep(0.05)  # the server's pacing (split head), not a wait before a check
            c.sendall(b"ection established\r\n\r\nBANNER\r\n")
            while d := c.recv(4096):
                c.sendall(d)

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1], seen


def test_external_proxy_split_answer_and_server_first_bytes():
    port, seen = fake_corporate_proxy()
    target = free_port()  # never dialled: the fake proxy "connects"
    p = NonoProxy("--allow-internal", f"127.0.0.1:{target}", "--external-proxy", f"127.0.0.1:{port}")
    try:
        token = p.url.split("nono:", 1)[1].split("@", 1)[0]
        pport = int(p.url.rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", pport), timeout=10)
        s.sendall(b"\x05\x01\x02")
        assert s.recv(2) == b"\x05\x02"
        s.sendall(bytes([1, 4]) + b"nono" + bytes([len(token)]) + token.encode())
        assert s.recv(2) == b"\x01\x00"
        s.sendall(bytes([5, 1, 0, 1, 127, 0, 0, 1]) + target.to_bytes(2, "big"))
        got = b""
        while len(got) < 10 + 8:
            d = s.recv(4096)
            assert d, got
            got += d
        assert got[:2] == b"\x05\x00" and got[10:] == b"BANNER\r\n", got
        s.sendall(b"after")
        assert s.recv(64) == b"after"
        s.close()
    finally:
        p.close()
    assert seen == [f"CONNECT 127.0.0.1:{target} HTTP/1.1"]


def test_external_proxy_options_are_checked():
    r = subprocess.run([str(NONO), "proxy", "--allow-domain", "example.com", "--external-proxy",
                        "https://u:topsecret@proxy.example:8443"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 125 and "only http://" in r.stderr and "topsecret" not in r.stderr
    r = subprocess.run([str(NONO), "proxy", "--allow-domain", "example.com", "--bypass",
                        "example.com"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 125 and "--bypass" in r.stderr and "--external-proxy" in r.stderr
    r = subprocess.run([str(NONO), "proxy", "--allow-domain", "example.com", "--external-proxy",
                        "proxy.example"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 125 and "port" in r.stderr
    r = subprocess.run([str(NONO), "run", "--external-proxy", "http://127.0.0.1:3128", "--",
                        "/bin/true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 125 and "--allow-domain" in r.stderr


def test_dry_run_shows_the_external_proxy_without_credentials():
    args = [str(NONO), "run", "--dry-run", "--allow-domain", "example.com", "--external-proxy",
            "http://corp:hunter2@proxy.corp.example:3128", "--bypass", "*.internal.example"]
    r = subprocess.run([*args, "--", "/bin/true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "external proxy: http://***@proxy.corp.example:3128; bypass: *.internal.example" in r.stdout
    j = subprocess.run([*args, "--json", "--", "/bin/true"], capture_output=True, text=True, timeout=30)
    net = json.loads(j.stdout)["network"]
    assert net["external_proxy"] == "http://***@proxy.corp.example:3128"
    assert net["bypass_hosts"] == ["*.internal.example"]
    assert "hunter2" not in r.stdout + r.stderr + j.stdout + j.stderr


if __name__ == "__main__" and sys.argv[1:] == ["--netns-socks"]:
    netns_socks_main()
