"""ExternalProxyConfig and ProxyConfig(external_proxy=…): validation through libnono, the secret kept
out of reprs and messages, and traffic really chained through a local tinyproxy (loopback only)."""
import dataclasses
import http.server
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

TINYPROXY = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"


def test_external_proxy_config_validation(nono_py):
    E, P = nono_py.ExternalProxyConfig, nono_py.ProxyConfig
    e = E("http://corp:hunter2@proxy.corp.example:3128", bypass_hosts=["*.internal.example"])
    assert e.address.endswith("proxy.corp.example:3128") and e.bypass_hosts == ("*.internal.example",)
    assert "hunter2" not in repr(e) and "proxy.corp.example:3128" in repr(e)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.address = "x"
    c = P(allowed_hosts=["example.com"], external_proxy=e)
    assert c.external_proxy is e and "hunter2" not in repr(c)
    assert E("proxy.corp.example:3128").bypass_hosts == ()
    with pytest.raises(ValueError, match="only http://") as ei:
        P(allowed_hosts=["example.com"], external_proxy=E("https://u:topsecret@p.example:1"))
    assert "topsecret" not in str(ei.value)
    with pytest.raises(ValueError, match="port"):
        P(allowed_hosts=["example.com"], external_proxy=E("p.example"))
    with pytest.raises(ValueError, match="bypass host"):
        P(allowed_hosts=["example.com"], external_proxy=E("p.example:1", bypass_hosts=["a b"]))
    with pytest.raises(TypeError):
        P(allowed_hosts=["example.com"], external_proxy="http://p.example:1")
    with pytest.raises(TypeError):
        E("p.example:1", bypass_hosts="a.example")


class _Hello(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        b = ("hello " + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_proxy_chains_through_tinyproxy(nono_py, tmp_path):
    if not os.path.exists(TINYPROXY):
        pytest.skip("tinyproxy not installed (scripts/deps.sh installs it)")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    up = srv.server_address[1]
    tp_port, log = _free_port(), tmp_path / "tp.log"
    (tmp_path / "tp.conf").write_text(f'Port {tp_port}\nListen 127.0.0.1\nLogFile "{log}"\n'
                                      "LogLevel Connect\nBasicAuth corp pw1\n")
    tp = subprocess.Popen([TINYPROXY, "-d", "-c", str(tmp_path / "tp.conf")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", tp_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "tinyproxy did not start"
                time.sleep(0.02)
        cfg = nono_py.ProxyConfig(
            allow_internal=[f"127.0.0.1:{up}"],
            external_proxy=nono_py.ExternalProxyConfig(f"http://corp:pw1@127.0.0.1:{tp_port}"))
        with nono_py.start_proxy(cfg) as p:
            env = p.env_vars()
            assert env["ALL_PROXY"].startswith("socks5h://nono:") and "pw1" not in str(env)
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": p.url}))
            assert opener.open(f"http://127.0.0.1:{up}/py", timeout=10).read() == b"hello /py"
            events = p.drain_audit_events()
        assert any(e["mode"] == "external" and e["decision"] == "allow" for e in events), events
        assert "pw1" not in repr(events)
        deadline = time.monotonic() + 10
        while f"CONNECT 127.0.0.1:{up} " not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert f"CONNECT 127.0.0.1:{up} " in log.read_text()
    finally:
        tp.terminate()
        tp.wait(timeout=10)
        srv.shutdown()


def test_intercept_ca_dir_writes_the_bundle_and_sets_the_variables(nono_py, tmp_path):
    with pytest.raises(ValueError, match="absolute"):
        nono_py.ProxyConfig(allowed_hosts=["example.com"], intercept_ca_dir="relative/dir")
    with pytest.raises(FileNotFoundError):
        nono_py.ProxyConfig(allowed_hosts=["example.com"], intercept_ca_dir=str(tmp_path / "missing"))
    cfg = nono_py.ProxyConfig(allowed_hosts=["example.com"], intercept_ca_dir=str(tmp_path))
    with nono_py.start_proxy(cfg) as p:
        bundle = str(tmp_path / "nono-ca-bundle.pem")
        assert p.ca_bundle == bundle
        env = p.env_vars()
        for k in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            assert env[k] == bundle
        text = (tmp_path / "nono-ca.pem").read_text()
        assert "BEGIN CERTIFICATE" in text and "PRIVATE" not in (tmp_path / "nono-ca-bundle.pem").read_text()
    assert sorted(os.listdir(tmp_path)) == []  # removed at shutdown
    with nono_py.start_proxy(nono_py.ProxyConfig(allowed_hosts=["example.com"])) as p:
        assert p.ca_bundle is None and "SSL_CERT_FILE" not in p.env_vars()
