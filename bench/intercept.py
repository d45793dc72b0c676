#!/usr/bin/env python3
"""Intercepted CONNECT vs direct TLS: the first request on a new connection (issue 14's target:
intercepted ≤ 2 ms over direct, with cached leaf certificates). Loopback only.

    ninja -C build tests/unit/test_proxy && bench/intercept.py [ROUNDS=300] [REPEATS=3]

A test CA and a localhost server certificate are made with openssl; a small threaded HTTPS/1.1
upstream serves "ok". Each round, interleaved (alternating which goes first):
  direct:       TCP connect + TLS handshake to the upstream + GET + response (to 127.0.0.1, as
                the CONNECT is: no name lookup on either side);
  intercepted:  TCP connect to the proxy + CONNECT/200 + TLS handshake with the proxy's leaf + GET
                through the proxy (which did its own verified handshake with the upstream) + response.
With --curl, both paths use curl and its own time_total instead of Python's ssl client.
The proxy (the library, via the test driver) intercepts 127.0.0.1 with the built-in pass-through;
one warm-up request mints and caches the leaf before timing. Prints the medians and p90s, the ratio
and the time added at the median, per repeat and the median over repeats."""
import os
import pathlib
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("NONO_BUILD_DIR", ROOT / "build"))
DRIVER = BUILD / "tests" / "unit" / "test_proxy"


def pki(d):
    def run(*a):
        subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        "srv.key", "-out", "srv.csr", "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")


def upstream(d):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "srv.pem", d / "srv.key")
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(128)

    def serve(c):
        try:
            with ctx.wrap_socket(c, server_side=True) as t:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = t.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass

    def loop():
        while True:
            c, _ = srv.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


REQ = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def read_all(t):
    data = b""
    while chunk := t.recv(4096):
        data += chunk
    assert data.endswith(b"ok"), data


def direct(port, ctx):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        t.sendall(REQ)
        read_all(t)
    return time.perf_counter() - t0


def intercepted(pport, auth, port, ctx):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", pport))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
              f"Proxy-Authorization: {auth}\r\n\r\n".encode())
    head = s.recv(4096)
    assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n"), head
    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        t.sendall(REQ)
        read_all(t)
    return time.perf_counter() - t0


def curl_time(args):
    """curl's own time_total (from before the connect to the end of the transfer): the client's
    process start-up is not in it."""
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total}", *args],
                       capture_output=True, text=True, check=True)
    return float(r.stdout)


def main():
    import base64
    use_curl = "--curl" in sys.argv
    argv = [a for a in sys.argv[1:] if a != "--curl"]
    rounds = int(argv[0]) if argv else 300
    repeats = int(argv[1]) if len(argv) > 1 else 3
    with tempfile.TemporaryDirectory() as td:
        d = pathlib.Path(td)
        pki(d)
        (d / "ca").mkdir()
        port = upstream(d)
        p = subprocess.Popen([str(DRIVER), "--serve", "--internal", f"127.0.0.1:{port}",
                              "--intercept-ca-dir", str(d / "ca"), "--intercept", "127.0.0.1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, SSL_CERT_FILE=str(d / "ca.pem")))
        pport, token, _ = p.stdout.readline().split()
        auth = "Basic " + base64.b64encode(f"nono:{token}".encode()).decode()
        dctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
        ictx = ssl.create_default_context(cafile=str(d / "ca" / "nono-ca.pem"))
        intercepted(int(pport), auth, port, ictx)  # mints and caches the leaf
        direct(port, dctx)
        d_fn, i_fn = direct, intercepted
        if use_curl:  # the same two paths with curl (a C client) instead of Python's ssl
            url = f"https://127.0.0.1:{port}/"
            purl = f"http://nono:{token}@127.0.0.1:{pport}"
            dargs = ["--cacert", str(d / "ca.pem"), url]
            iargs = ["--cacert", str(d / "ca" / "nono-ca.pem"), "-x", purl, url]
            d_fn = lambda port, ctx: curl_time(dargs)  # noqa: E731
            i_fn = lambda pport, auth, port, ctx: curl_time(iargs)  # noqa: E731
        added = []
        for rep in range(repeats):
            a, b = [], []
            for i in range(rounds):
                if i % 2:
                    a.append(d_fn(port, dctx))
                    b.append(i_fn(int(pport), auth, port, ictx))
                else:
                    b.append(i_fn(int(pport), auth, port, ictx))
                    a.append(d_fn(port, dctx))
            q = lambda v, f: sorted(v)[int(len(v) * f)] * 1e3  # noqa: E731
            da, db = statistics.median(a) * 1e3, statistics.median(b) * 1e3
            added.append(db - da)
            print(f"repeat {rep + 1}: direct p50 {da:.2f} ms p90 {q(a, .9):.2f} | intercepted p50 "
                  f"{db:.2f} ms p90 {q(b, .9):.2f} | ratio {db / da:.2f}x | added p50 {db - da:.2f} ms")
        print(f"median added over {repeats} repeats: {statistics.median(added):.2f} ms "
              f"(target: <= 2 ms)")
        p.stdin.close()
        p.wait(timeout=30)


if __name__ == "__main__":
    main()
