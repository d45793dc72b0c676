"""TLS interception (intercept_ca_dir) with real clients, on loopback only.

A test CA and a server certificate for localhost/127.0.0.1 are made with the openssl command at test
time; a local HTTPS upstream serves with them. The proxy (the library, through the test driver
tests/unit/test_proxy --serve) runs with SSL_CERT_FILE naming the test CA: that is its "system trust
store" for verifying upstreams. Hosts are marked for interception with the driver's --intercept (the
route engine's hook, np_intercept_add_host); the built-in pass-through relays requests unchanged.

Checked: curl, Python urllib and Node (if installed), each configured only by the environment the
library hands a command (nono_proxy_env: SSL_CERT_FILE, CURL_CA_BUNDLE, REQUESTS_CA_BUNDLE,
NODE_EXTRA_CA_CERTS → the bundle), reach the upstream through an intercepted CONNECT; the
certificate they see is a leaf from the session CA while an unrouted host's tunnel shows the real
one; request bodies (length and chunked) pass; each decrypted request is audited; an upstream the
proxy cannot verify gets 502 with the reason (inside TLS) and never a request; the CA's key is never written; the files go at stop.
"""
import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_proxy import Proxy  # noqa: E402  (the driver wrapper)

OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
NODE = shutil.which("node")


def make_pki(d):
    d = pathlib.Path(d)

    def run(*a):
        subprocess.run([OPENSSL, *a], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=nono test upstream CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
    return d


class HttpsUpstream:
    """A small HTTPS/1.1 server: GET answers "secure <path>", POST echoes the body; it records the
    request lines it saw."""

    def __init__(self, pki):
        import http.server
        seen = self.seen = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, body):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                seen.append(("GET", self.path))
                if self.path.startswith("/big/"):
                    self._send(bytes(range(256)) * (int(self.path[5:]) // 256))
                    return
                self._send(f"secure {self.path}".encode())

            def do_POST(self):
                seen.append(("POST", self.path))
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        n = int(self.rfile.readline().split(b";")[0], 16)
                        if n == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(n)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._send(b"echo " + body)

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki / "srv.pem", pki / "srv.key")
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def pki(tmp_path):
    if not OPENSSL:
        pytest.skip("openssl command missing (scripts/deps.sh installs it)")
    return make_pki(tmp_path)


@pytest.fixture
def setup(pki, tmp_path):
    routed, plain = HttpsUpstream(pki), HttpsUpstream(pki)
    cadir = tmp_path / "ca"
    cadir.mkdir()
    p = Proxy("--internal", f"localhost:{routed.port}", "--internal", f"localhost:{plain.port}",
              "--intercept-ca-dir", cadir, "--intercept", f"localhost:{routed.port}",
              env={"SSL_CERT_FILE": str(pki / "ca.pem")})
    env = dict(x.split("=", 1) for x in p.env() if not x.startswith("REFUSED "))
    env.pop("FOO", None)
    # What the command would get, plus PATH/HOME so the clients start; NO_PROXY would send
    # localhost around the proxy.
    cenv = {k: v for k, v in env.items() if k.lower() != "no_proxy"}
    cenv.update(PATH=os.environ.get("PATH", "/usr/bin:/bin"), HOME=str(tmp_path))
    yield p, routed, plain, cadir, cenv
    p.close()
    routed.close()
    plain.close()


def peer_issuer(proxy, port, cafile):
    """CONNECT through the proxy, TLS with `cafile` as the only trust; the leaf's issuer CN."""
    s = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    s.sendall(f"CONNECT localhost:{port} HTTP/1.1\r\nHost: localhost:{port}\r\n"
              f"Proxy-Authorization: {proxy.auth}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    ctx = ssl.create_default_context(cafile=str(cafile))
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        issuer = dict(x[0] for x in t.getpeercert()["issuer"])
        t.sendall(b"GET /peek HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := t.recv(4096):
            data += chunk
    return issuer["commonName"], data


def test_environment_names_the_bundle(setup, pki):
    p, routed, plain, cadir, env = setup
    bundle = str(cadir / "nono-ca-bundle.pem")
    for k in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        assert env[k] == bundle, k
    assert sorted(os.listdir(cadir)) == ["nono-ca-bundle.pem", "nono-ca.pem"]
    text = (cadir / "nono-ca-bundle.pem").read_text()
    ca = (cadir / "nono-ca.pem").read_text()
    # the system roots (here: the proxy's SSL_CERT_FILE) first, then the session CA; no key anywhere
    assert text.startswith((pki / "ca.pem").read_text())
    assert text.rstrip().endswith(ca.rstrip()) and text.count("BEGIN CERTIFICATE") == 2
    assert "PRIVATE KEY" not in text + ca


def test_routed_host_is_intercepted_unrouted_is_not(setup, pki):
    p, routed, plain, cadir, env = setup
    cn, data = peer_issuer(p, routed.port, cadir / "nono-ca.pem")
    assert cn == "nono session CA (TLS interception)" and data.endswith(b"secure /peek")
    cn, data = peer_issuer(p, plain.port, pki / "ca.pem")
    assert cn == "nono test upstream CA" and data.endswith(b"secure /peek")
    events = p.audit(want=4)
    inter = [e for e in events if e["mode"] == "intercept"]
    assert [(e["method"], e["path"], e["decision"]) for e in inter] == [("GET", "/peek", "allow")]
    assert any(e["reason"] == "allowed; TLS intercepted" and e["port"] == routed.port for e in events)
    # A second connection resumes the upstream session the first one got (no chain to verify).
    cn, data = peer_issuer(p, routed.port, cadir / "nono-ca.pem")
    assert data.endswith(b"secure /peek")
    events = p.audit(want=2)
    assert any(e["reason"] == "allowed; TLS intercepted (upstream session resumed)" for e in events), events


@pytest.mark.skipif(not CURL, reason="curl missing")
def test_curl_through_interception(setup):
    p, routed, plain, cadir, env = setup
    base = [CURL, "-sS", "--max-time", "20"]
    r = subprocess.run([*base, f"https://localhost:{routed.port}/curl"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "secure /curl", r.stderr
    r = subprocess.run([*base, "-d", "length body", f"https://localhost:{routed.port}/post"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "echo length body", r.stderr
    r = subprocess.run([*base, "-H", "Transfer-Encoding: chunked", "-d", "chunked body",
                        f"https://localhost:{routed.port}/chunked"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout == "echo chunked body", r.stderr
    # Two requests on one intercepted connection (keep-alive through the decrypted stream).
    r = subprocess.run([*base, f"https://localhost:{routed.port}/one",
                        f"https://localhost:{routed.port}/two"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.stdout == "secure /onesecure /two", r.stderr
    assert ("GET", "/two") in routed.seen and ("POST", "/chunked") in routed.seen
    # Through SOCKS5 (ALL_PROXY, socks5h) the routed host is intercepted the same way.
    r = subprocess.run([*base, "-x", env["ALL_PROXY"], f"https://localhost:{routed.port}/socks"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "secure /socks", r.stderr
    paths = [e["path"] for e in p.audit(want=6) if e["mode"] == "intercept"]
    assert paths == ["/curl", "/post", "/chunked", "/one", "/two", "/socks"], paths


@pytest.mark.skipif(not CURL, reason="curl missing")
def test_large_bodies_both_ways(setup, tmp_path):
    p, routed, plain, cadir, env = setup
    n = 8 * 1024 * 1024
    out = tmp_path / "big"
    r = subprocess.run([CURL, "-sS", "-o", out, f"https://localhost:{routed.port}/big/{n}"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == bytes(range(256)) * (n // 256)
    up = tmp_path / "up"
    up.write_bytes(b"u" * (4 * 1024 * 1024))
    r = subprocess.run([CURL, "-sS", "--data-binary", f"@{up}", f"https://localhost:{routed.port}/up"],
                       env=env, capture_output=True, timeout=120)
    assert r.returncode == 0 and r.stdout == b"echo " + b"u" * (4 * 1024 * 1024), r.stderr
    events = p.audit(want=2)
    closes = [e for e in events if e["reason"] == "closed"]
    assert any(e["bytes_down"] >= n for e in closes), closes


def test_python_urllib_through_interception(setup):
    p, routed, plain, cadir, env = setup
    code = ("import urllib.request, sys; "
            f"print(urllib.request.urlopen('https://localhost:{routed.port}/urllib', timeout=20)"
            ".read().decode())")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "secure /urllib", r.stderr


@pytest.mark.skipif(not NODE, reason="node not installed")
def test_node_through_interception(setup):
    p, routed, plain, cadir, env = setup
    # Node 20 has no proxy-from-environment for https: CONNECT by hand, then tls.connect on the
    # tunnel, trusting only what NODE_EXTRA_CA_CERTS adds to its built-in roots.
    js = r"""
const http = require('http'), tls = require('tls');
const u = new URL(process.env.HTTPS_PROXY);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password)).toString('base64');
const target = 'localhost:' + process.argv[1];
http.request({host: u.hostname, port: u.port, method: 'CONNECT', path: target,
              headers: {'Proxy-Authorization': auth, Host: target}})
  .on('connect', (res, socket) => {
    if (res.statusCode !== 200) { console.log('connect ' + res.statusCode); process.exit(1); }
    const t = tls.connect({socket, servername: 'localhost'}, () => {
      t.write('GET /node HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    t.on('data', d => data += d);
    t.on('end', () => { console.log(data.split('\r\n\r\n')[1]); });
    t.on('error', e => { console.log('tls ' + e.message); process.exit(1); });
  }).end();
"""
    r = subprocess.run([NODE, "-e", js, str(routed.port)], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "secure /node", (r.stdout, r.stderr)


def test_untrusted_upstream_is_502_with_the_reason(pki, tmp_path):
    if not CURL:
        pytest.skip("curl missing")
    up = HttpsUpstream(pki)
    cadir = tmp_path / "ca2"
    cadir.mkdir()
    # The proxy's trust store lacks the test CA this time.
    p = Proxy("--internal", f"localhost:{up.port}", "--intercept-ca-dir", cadir, "--intercept",
              "localhost", env={"SSL_CERT_FILE": "/dev/null"})
    try:
        # The CONNECT is answered at once (both handshakes run side by side); the verdict on the
        # upstream comes inside TLS, as the answer to the first request.
        r = subprocess.run([CURL, "-sS", "-i", "-x", p.url, "--cacert", cadir / "nono-ca-bundle.pem",
                            f"https://localhost:{up.port}/"], capture_output=True, text=True,
                           timeout=60)
        assert "HTTP/1.1 502" in r.stdout and "X-Nono-Denial: upstream-tls" in r.stdout, r.stdout
        assert "certificate not trusted: unable to get local issuer certificate" in r.stdout
        events = p.audit(want=1)
        assert any(e["status"] == 502 and "certificate not trusted" in e["reason"] for e in events)
        assert up.seen == []
    finally:
        p.close()
        up.close()
    assert os.listdir(cadir) == []  # removed when the proxy stopped
