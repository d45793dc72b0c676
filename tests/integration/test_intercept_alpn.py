"""ALPN on both TLS legs of a route (issue 14): the proxy speaks HTTP/1.1, so it offers only
`http/1.1` to a route's upstream (routed and intercepted alike), picks `http/1.1` for a client that
offers it with h2 (`curl --http2` works, over HTTP/1.1), and refuses, with the
no_application_protocol alert and an audit line saying why, a client whose ALPN list lacks it
(`openssl s_client -alpn h2`). The upstream (loopback, test CA made at test time) prefers h2 when
offered, so what it agreed on shows what the proxy offered."""
import json
import os
import pathlib
import secrets
import shutil
import sys

import pytest

from conftest import run_nono

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "helpers"))
from tls_fixtures import pki  # noqa: E402,F401  (pytest fixture)
from tls_upstream import TLSUpstream  # noqa: E402

SECRET = "sk-alpn-" + secrets.token_hex(12)
pytestmark = pytest.mark.skipif(not shutil.which("openssl") or not shutil.which("curl"),
                                reason="openssl and curl needed")


@pytest.fixture
def up(pki):
    u = TLSUpstream(pki["cert"], pki["key"], alpn=["h2", "http/1.1"])
    yield u
    u.stop()


def nono(up, pki, log, script):
    env = {"PATH": "/usr/bin:/bin", "NONO_TEST_SECRET": SECRET, "HOME": os.environ.get("HOME", "/root")}
    return run_nono("run", "--route", f"openai=https://127.0.0.1:{up.port}/v1",
                    "--credential", "openai=env://NONO_TEST_SECRET", "--route-ca", f"openai={pki['ca']}",
                    "--allow-internal", f"127.0.0.1:{up.port}", "--intercept", "--audit-log", log,
                    "--", "/bin/sh", "-c", script, env=env, timeout=120)


def test_curl_http2_gets_http11_and_the_upstream_is_offered_http11_only(up, pki, tmp_path):
    u = f"https://127.0.0.1:{up.port}/v1"
    script = f"""
curl -sS -i --http2 --max-time 20 "$OPENAI_BASE_URL/echo/base" -H "Authorization: Bearer $NONO_TEST_SECRET"; echo
env -u NO_PROXY -u no_proxy curl -sS -i --http2 --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "{u}/echo/icpt"; echo
"""
    r = nono(up, pki, tmp_path / "audit.jsonl", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("HTTP/1.1 200 OK") == 2, r.stdout
    assert "HTTP/2" not in r.stdout
    assert [rec["path"] for rec in up.seen] == ["/v1/echo/base", "/v1/echo/icpt"]
    # Both upstream connections agreed on http/1.1 with a server that prefers h2: the proxy
    # offered nothing else (offering nothing would leave None).
    assert [rec["alpn"] for rec in up.seen] == ["http/1.1", "http/1.1"], up.seen


# HTTPS_PROXY is http://nono:TOKEN@127.0.0.1:PORT (the token is hex): s_client takes it apart.
S_CLIENT = r"""
P=${HTTPS_PROXY#http://}; P=${P%/}; CRED=${P%@*}; HP=${P#*@}
echo | openssl s_client -proxy "$HP" -proxy_user "${CRED%%:*}" -proxy_pass "pass:${CRED#*:}" \
    -connect 127.0.0.1:PORT -servername localhost -CAfile "$SSL_CERT_FILE" -alpn ALPN 2>&1
echo "RC=$?"
"""


def test_a_client_offering_only_h2_is_refused_with_the_reason(up, pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    s = S_CLIENT.replace("PORT", str(up.port))
    script = s.replace("ALPN", "h2") + "echo @@SPLIT@@\n" + s.replace("ALPN", "h2,http/1.1")
    r = nono(up, pki, log, script)
    assert r.returncode == 0, r.stderr
    refused, accepted = r.stdout.split("@@SPLIT@@")
    assert "no application protocol" in refused and "RC=1" in refused, refused
    assert "ALPN protocol: http/1.1" in accepted and "RC=0" in accepted, accepted
    assert up.seen == []  # no request was relayed either way
    events = [json.loads(x) for x in log.read_text().splitlines()]
    denied = [e for e in events if e.get("decision") == "deny" and "ALPN" in (e.get("reason") or "")]
    assert len(denied) == 1, events
    assert "lacks http/1.1" in denied[0]["reason"] and denied[0]["target"] == "127.0.0.1"
