"""A local HTTPS upstream for the credential-route tests and the route benchmark: a test CA and a
server certificate made with the `openssl` command at test time, and a threaded HTTP/1.1 server
that reports what it received.

    GET  /echo...        JSON {method, path, header_names} of the request as the upstream saw it
                         (header values only in `seen`, server side: an echoed credential would
                         reach the client and prove nothing)
    POST /echo...        the same plus "body" (Content-Length or chunked request bodies)
    GET  /sse?n=N        N server-sent events, chunked, each flushed at once
    GET  /bytes?n=N      N bytes (Content-Length), streamed in 256 KiB writes
Run as a script (python3 tls_upstream.py DIR) it prints "PORT" and serves until stdin closes.
"""
import http.server
import json
import os
import pathlib
import socketserver
import ssl
import subprocess
import sys
import threading
import urllib.parse


def make_ca(d, name="nono test CA", host="127.0.0.1", prefix=""):
    """A CA and a leaf for `host` (IP SAN when it is an address, else DNS) in directory d.
    Returns (ca_pem, cert_pem, key_pem) paths."""
    d = pathlib.Path(d)
    ca_key, ca = d / f"{prefix}ca.key", d / f"{prefix}ca.pem"
    key, csr, cert, ext = d / f"{prefix}leaf.key", d / f"{prefix}leaf.csr", d / f"{prefix}leaf.pem", d / f"{prefix}ext.cnf"
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", ca_key, "-out", ca)
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={host}",
        "-keyout", key, "-out", csr)
    san = f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
        "-extfile", ext, "-out", cert)
    return str(ca), str(cert), str(key)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _json(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n) if n else b""

    def _seen(self, body=None):
        rec = {"method": self.command, "path": self.path, "headers": [[k, v] for k, v in self.headers.items()],
               "peer_port": self.client_address[1]}
        if self.server.alpn_offer:  # the protocol the client's ALPN agreed on (None: it offered none)
            rec["alpn"] = self.connection.selected_alpn_protocol()
        if body is not None:
            rec["body"] = body.decode("latin-1")
        self.server.seen.append(rec)
        return rec

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path.endswith("/sse"):
            self._seen()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(q.get("n", ["3"])[0])):
                ev = f"data: event {i}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if u.path.endswith("/bytes"):
            n = int(q.get("n", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * (256 * 1024)
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        self._json(self._public(self._seen()))

    @staticmethod
    def _public(rec):
        out = {k: v for k, v in rec.items() if k not in ("headers", "peer_port", "alpn")}
        out["header_names"] = [k for k, _ in rec["headers"]]
        return out

    def do_POST(self):
        self._json(self._public(self._seen(self._body())))

    do_PUT = do_POST
    do_DELETE = do_GET


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TLSUpstream:
    """The HTTPS server on 127.0.0.1, an ephemeral port, with cert/key; `seen` lists requests."""

    def __init__(self, cert, key, host="127.0.0.1", client_ca=None, alpn=None):
        self.srv = Server((host, 0), Handler)
        self.srv.seen = []
        self.srv.alpn_offer = alpn
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if alpn:  # e.g. ["h2", "http/1.1"]: the server's preference, so a client offering h2 gets it
            ctx.set_alpn_protocols(alpn)
        if client_ca:  # mutual TLS: a client certificate from this CA is required
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    @property
    def port(self):
        return self.srv.server_address[1]

    @property
    def seen(self):
        return self.srv.seen

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


if __name__ == "__main__":
    ca, cert, key = make_ca(sys.argv[1])
    u = TLSUpstream(cert, key)
    print(u.port, flush=True)
    sys.stdin.read()
    u.stop()
