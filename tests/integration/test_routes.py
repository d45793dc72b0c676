"""Credential routes over TLS with phantom credentials (issue 14), end to end through the CLI
(`nono run` / `nono proxy --route …`) against a local HTTPS upstream whose test CA is made with the
`openssl` command here. The sandboxed clients (curl, Python urllib) only ever hold the per-session
placeholder; the upstream must receive the real secret, and the command's environment and
/proc/self/environ must not contain it. All traffic stays on loopback."""
import json
import os
import pathlib
import secrets
import subprocess
import sys
import time

import pytest

from conftest import NONO, run_nono

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "helpers"))
from tls_upstream import TLSUpstream, make_ca  # noqa: E402

SECRET = "sk-live-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca, cert, key = make_ca(d)
    other_ca, other_cert, other_key = make_ca(d, name="untrusted CA", prefix="other-")
    return {"ca": ca, "cert": cert, "key": key, "other_cert": other_cert, "other_key": other_key}


@pytest.fixture
def up(pki):
    u = TLSUpstream(pki["cert"], pki["key"])
    yield u
    u.stop()


def route_args(up, pki, prefix="openai", base="/v1", ca=True):
    a = ["--route", f"{prefix}=https://127.0.0.1:{up.port}{base}", "--credential", f"{prefix}=env://NONO_TEST_SECRET",
         "--allow-internal", f"127.0.0.1:{up.port}"]
    return a + (["--route-ca", f"{prefix}={pki['ca']}"] if ca else [])


def env_with_secret(**extra):
    return dict({"PATH": "/usr/bin:/bin", "NONO_TEST_SECRET": SECRET}, **extra)


def header(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


CLIENTS = r'''
curl -sS --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "$OPENAI_BASE_URL/echo?a=1"; echo
python3 - <<'PY'
import os, urllib.request
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/echo/py",
                             headers={"Authorization": "Bearer " + os.environ["NONO_TEST_SECRET"]})
print(urllib.request.urlopen(req, timeout=20).read().decode())
PY
echo "PLACEHOLDER=$NONO_TEST_SECRET"
echo ENVIRON; tr '\0' '\n' < /proc/self/environ; echo END
'''


def test_sandboxed_curl_and_python_hold_only_the_placeholder(up, pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    r = run_nono("run", *route_args(up, pki), "--read", "/proc", "--audit-log", log, "--", "/bin/sh", "-c",
                 CLIENTS, env=env_with_secret())
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout and SECRET not in r.stderr
    lines = r.stdout.splitlines()
    placeholder = next(x for x in lines if x.startswith("PLACEHOLDER=")).split("=", 1)[1]
    assert placeholder.startswith("nono_") and len(placeholder) == 37
    environ = lines[lines.index("ENVIRON") + 1:lines.index("END")]
    assert f"NONO_TEST_SECRET={placeholder}" in environ
    base = [x for x in environ if x.startswith("OPENAI_BASE_URL=")]
    assert len(base) == 1 and base[0].endswith("/openai") and base[0].startswith("OPENAI_BASE_URL=http://127.0.0.1:")
    # What the upstream received: the real secret, the base path, no placeholder anywhere.
    got = {rec["path"]: rec for rec in up.seen}
    assert set(got) == {"/v1/echo?a=1", "/v1/echo/py"}, got
    for rec in got.values():
        assert header(rec, "Authorization") == [f"Bearer {SECRET}"]
        assert placeholder not in json.dumps(rec)
        assert header(rec, "Host") == [f"127.0.0.1:{up.port}"]
    # Audit: route, injection mode, managed credential, and never the secret or the placeholder.
    text = log.read_text()
    assert SECRET not in text and placeholder not in text
    routed = [json.loads(x) for x in text.splitlines() if '"route_id"' in x]
    allows = [e for e in routed if e["decision"] == "allow" and e["reason"] == "allowed"]
    assert len(allows) == 2, routed
    for e in allows:
        assert e["mode"] == "reverse" and e["route_id"] == "/openai" and e["injection_mode"] == "header"
        assert e["managed_credential_active"] is True and e["auth_outcome"] == "succeeded"
        assert e["auth_mechanism"] == "phantom_header" and e["endpoint_decision"] == ""
        assert e["target"] == "127.0.0.1" and e["port"] == up.port


def test_inherited_environment_loses_the_source_variable(up, pki):
    """--inherit-env: the env:// source variable is removed from nono's environment (and wiped)
    once the proxy holds the secret; the command sees the placeholder under the route's env_var."""
    r = run_nono("run", *route_args(up, pki), "--inherit-env", "--read", "/proc", "--", "/bin/sh", "-c",
                 "tr '\\0' '\\n' < /proc/self/environ; echo; env", env=env_with_secret(KEEP_ME="1"))
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout
    assert "KEEP_ME=1" in r.stdout and "NONO_TEST_SECRET=nono_" in r.stdout


def test_request_without_placeholder_is_refused(up, pki):
    script = r'''
curl -sS -i --max-time 20 "$OPENAI_BASE_URL/echo"; echo
curl -sS -i --max-time 20 -H "Authorization: Bearer wrong" "$OPENAI_BASE_URL/echo"; echo
curl -sS -i --max-time 20 -H "X-Other: $NONO_TEST_SECRET" "$OPENAI_BASE_URL/echo"
'''
    r = run_nono("run", *route_args(up, pki), "--", "/bin/sh", "-c", script, env=env_with_secret())
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("HTTP/1.1 401 Unauthorized") == 3, r.stdout
    assert r.stdout.count("X-Nono-Denial: credential-required") == 3
    assert "placeholder" in r.stdout and SECRET not in r.stdout
    assert up.seen == []


def test_endpoint_rules(up, pki):
    script = r'''
for p in /models /models/gpt-4 /files; do
  curl -sS -o /dev/null -w "GET $p %{http_code}\n" --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "$OPENAI_BASE_URL$p"
done
curl -sS -o /dev/null -w "POST /models %{http_code}\n" --max-time 20 -d x -H "Authorization: Bearer $NONO_TEST_SECRET" "$OPENAI_BASE_URL/models"
curl -sS -o /dev/null -w "dots %{http_code}\n" --path-as-is --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "$OPENAI_BASE_URL/models/../files"
'''
    r = run_nono("run", *route_args(up, pki), "--route-endpoint", "openai=GET:/models",
                 "--route-endpoint", "openai=GET:/models/*", "--", "/bin/sh", "-c", script, env=env_with_secret())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:5] == ["GET /models 200", "GET /models/gpt-4 200", "GET /files 403",
                                         "POST /models 403", "dots 400"], r.stdout
    assert sorted(x["path"] for x in up.seen) == ["/v1/models", "/v1/models/gpt-4"]


def test_untrusted_upstream_certificate_is_502_with_reason(pki):
    """An upstream whose certificate chains to a CA the route does not trust: 502, and the reason
    says so (and no request reached it)."""
    bad = TLSUpstream(pki["other_cert"], pki["other_key"])
    try:
        for ca in (True, False):  # the route's CA, then the system trust store
            r = run_nono("run", *route_args(bad, pki, ca=ca), "--", "/bin/sh", "-c",
                         'curl -sS -i --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "$OPENAI_BASE_URL/echo"',
                         env=env_with_secret())
            assert r.returncode == 0, r.stderr
            first = r.stdout.splitlines()[0]
            assert first.startswith("HTTP/1.1 502 Bad Gateway: TLS to 127.0.0.1"), r.stdout
            assert "certificate not trusted" in first and "X-Nono-Denial: upstream-tls" in r.stdout
            assert ("route's CA" if ca else "system trust store") in first
        assert bad.seen == []
    finally:
        bad.stop()


def test_streaming_sse_and_chunked_upload(up, pki):
    script = r'''
curl -sS -N --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "$OPENAI_BASE_URL/sse?n=5"
printf 'hello chunked world' | curl -sS --max-time 20 -H "Transfer-Encoding: chunked" -H "Authorization: Bearer $NONO_TEST_SECRET" --data-binary @- "$OPENAI_BASE_URL/echo"
'''
    r = run_nono("run", *route_args(up, pki), "--", "/bin/sh", "-c", script, env=env_with_secret())
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("".join(f"data: event {i}\n\n" for i in range(5))), r.stdout
    echo = json.loads(r.stdout.split("\n\n")[-1])
    assert echo["body"] == "hello chunked world" and "Transfer-Encoding" in echo["header_names"]
    assert header(up.seen[-1], "Transfer-Encoding") == ["chunked"]


def test_nono_proxy_keep_alive_and_env_lines(up, pki):
    """`nono proxy --route`: prints the URL and the routes' variables; a kept-alive client makes
    several routed requests on one connection, and the proxy reuses one upstream connection for
    them (no new dial or handshake per request)."""
    p = subprocess.Popen([str(NONO), "proxy", "-q", *route_args(up, pki)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env_with_secret())
    try:
        lines = [p.stdout.readline().strip() for _ in range(3)]
        env = dict(x.split("=", 1) for x in lines[1:])
        assert set(env) == {"OPENAI_BASE_URL", "NONO_TEST_SECRET"} and env["NONO_TEST_SECRET"] != SECRET
        import http.client
        import urllib.parse
        u = urllib.parse.urlsplit(env["OPENAI_BASE_URL"])
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)
        for i in range(3):
            c.request("GET", f"{u.path}/echo/{i}", headers={"Authorization": f"Bearer {env['NONO_TEST_SECRET']}"})
            resp = c.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["path"] == f"/v1/echo/{i}"
        c.close()
        assert len({rec["peer_port"] for rec in up.seen}) == 1, up.seen
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert SECRET not in out + err


def test_dry_run_shows_source_never_value(up, pki):
    r = run_nono("run", "--dry-run", *route_args(up, pki), "--", "x", env=env_with_secret())
    assert r.returncode == 0, r.stderr
    assert "route: /openai -> https://127.0.0.1:" in r.stdout
    assert "credential from env://NONO_TEST_SECRET" in r.stdout and SECRET not in r.stdout
    j = run_nono("run", "--dry-run", "--json", *route_args(up, pki), "--", "x", env=env_with_secret())
    assert j.returncode == 0, j.stderr
    routes = json.loads(j.stdout)["network"]["routes"]
    assert len(routes) == 1 and "env://NONO_TEST_SECRET" in routes[0] and SECRET not in j.stdout


def test_credential_source_errors(up, pki, tmp_path):
    # the variable is not set: a clear error naming it, before any command runs
    r = run_nono("run", *route_args(up, pki), "--", "/bin/echo", "ran", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "ran" not in r.stdout
    assert "env://NONO_TEST_SECRET" in r.stderr and "not set" in r.stderr
    # keyring:// where no secret service runs
    r = run_nono("run", "--route", f"k=https://127.0.0.1:{up.port}", "--credential", "k=keyring://openai",
                 "--allow-internal", f"127.0.0.1:{up.port}", "--", "/bin/echo", "ran", env={"PATH": "/usr/bin:/bin"})
    assert r.returncode != 0 and "secret service" in r.stderr, r.stderr
    # a secret given on the command line is refused without being echoed
    r = run_nono("run", "--route", "k=https://x.example", "--credential", f"k={SECRET}", "--", "x")
    assert r.returncode == 125 and SECRET not in r.stderr and "source" in r.stderr
    # file://: one trailing newline dropped; the file's content never printed
    f = tmp_path / "key"
    f.write_text(SECRET + "\n")
    r = run_nono("run", "--route", f"openai=https://127.0.0.1:{up.port}/v1", "--credential", f"openai=file://{f}",
                 "--route-ca", f"openai={pki['ca']}", "--allow-internal", f"127.0.0.1:{up.port}", "--",
                 "/bin/sh", "-c", 'curl -sS --max-time 20 -H "Authorization: Bearer $KEY" "$OPENAI_BASE_URL/echo"',
                 env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == "/v1/echo" and SECRET not in r.stdout
    assert header(up.seen[-1], "Authorization") == [f"Bearer {SECRET}"]
    # a --credential for a prefix that has no --route
    r = run_nono("run", "--route", "a=https://x.example", "--credential", "b=env://X", "--", "x")
    assert r.returncode == 125 and "no --route" in r.stderr


def two_answers(u, data):
    """Send two pipelined requests on one connection; the bytes of both answers (bounded wait)."""
    import socket
    with socket.create_connection((u.hostname, u.port), timeout=20) as s:
        s.sendall(data)
        got, deadline = b"", time.monotonic() + 20
        while got.count(b"HTTP/1.1 ") < 2 and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got


def test_connection_header_cannot_strip_the_body_framing(up, pki):
    """Review of 2026-12-05 (F1): `Connection: Content-Length` used to drop Content-Length from the
    head sent upstream while the proxy still relayed the body by it, so the body became a second
    request no route check saw (it got the real secret past the endpoint rules). The framing is
    forwarded as relayed: the upstream sees exactly the requests the proxy parsed."""
    p = subprocess.Popen([str(NONO), "proxy", "-q", *route_args(up, pki), "--route-endpoint",
                          "openai=POST:/echo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env_with_secret())
    try:
        lines = [p.stdout.readline().strip() for _ in range(3)]
        env = dict(x.split("=", 1) for x in lines[1:])
        import urllib.parse
        u = urllib.parse.urlsplit(env["OPENAI_BASE_URL"])
        auth = f"Authorization: Bearer {env['NONO_TEST_SECRET']}\r\n"
        smug = b"DELETE /v1/admin HTTP/1.1\r\nHost: x\r\nX-Ignore: "
        for conn in ("Content-Length", "Transfer-Encoding, Content-Length"):
            r1 = (f"POST {u.path}/echo HTTP/1.1\r\nHost: x\r\n{auth}Connection: {conn}\r\n"
                  f"Content-Length: {len(smug)}\r\n\r\n").encode() + smug
            r2 = f"POST {u.path}/echo HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1\r\n\r\nA".encode()
            got = two_answers(u, r1 + r2)
            assert got.count(b"HTTP/1.1 200") == 2, got
            assert SECRET.encode() not in got
        # B3: Transfer-Encoding lines an upstream may read differently (an empty list element, an
        # empty line first) reach it as the one "Transfer-Encoding: chunked" the proxy relays by.
        for te in ("Transfer-Encoding: , chunked\r\n", "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n"):
            body = b"%x\r\n" % len(smug) + smug + b"\r\n0\r\n\r\n"
            r1 = f"POST {u.path}/echo HTTP/1.1\r\nHost: x\r\n{auth}{te}\r\n".encode() + body
            r2 = f"POST {u.path}/echo HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1\r\n\r\nA".encode()
            got = two_answers(u, r1 + r2)
            assert got.count(b"HTTP/1.1 200") == 2, got
            assert SECRET.encode() not in got
    finally:
        p.terminate()
        out, err = p.communicate(timeout=30)
    assert [x["path"] for x in up.seen] == ["/v1/echo"] * 8, up.seen
    assert [x["body"] for x in up.seen] == [smug.decode(), "A"] * 4, up.seen
    assert SECRET not in out + err
