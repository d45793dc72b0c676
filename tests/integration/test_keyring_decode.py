"""keyring://SERVICE/ACCOUNT?decode=go-keyring (issue 14), as the Rust nono accepts it: items
written by Go programs through zalando/go-keyring (gh, …) hold "go-keyring-base64:" + base64 of the
value; the query strips the prefix and decodes. Against the real secret service fixture of
test_keyring.py (gnome-keyring on a private bus); the upstream is a local HTTPS server on loopback.
An unknown query parameter or value is an error when the route is added (never ignored), and a
value that is not go-keyring's form fails closed at start, naming the source, never the value."""
import base64
import pathlib
import secrets
import sys

import pytest

from conftest import run_nono

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "helpers"))
from keyring_session import start_session  # noqa: E402
from tls_fixtures import pki, up  # noqa: E402,F401  (pytest fixtures)

SECRET = "gho_" + secrets.token_hex(16)
RAW = "plain-" + secrets.token_hex(8)
GK = "go-keyring-base64:" + base64.b64encode(SECRET.encode()).decode()


@pytest.fixture(scope="module")
def ks(tmp_path_factory):
    s = start_session(tmp_path_factory.mktemp("keyring"))
    s.store(GK, "service", "gh:github.com", "username", "alice", label="gh")
    s.store(RAW, "service", "gh:github.com", "username", "plain", label="not go-keyring")
    s.store("go-keyring-base64:!!notbase64!!", "service", "gh:github.com", "username", "broken")
    s.store("go-keyring-base64:" + base64.b64encode(b"\xff\xfe").decode(), "service", "gh:github.com",
            "username", "binary")
    yield s
    s.stop()


def route(up, pki, source):
    return ["--route", f"gh=https://127.0.0.1:{up.port}/v1", "--credential", f"gh={source}",
            "--route-ca", f"gh={pki['ca']}", "--allow-internal", f"127.0.0.1:{up.port}"]


def auth(up):
    return [v for k, v in up.seen[-1]["headers"] if k.lower() == "authorization"]


def test_go_keyring_value_is_decoded(ks, up, pki):
    src = "keyring://gh:github.com/alice?decode=go-keyring"
    # the placeholder variable is named after the account, not the query
    r = run_nono("run", *route(up, pki, src), "--", "/bin/sh", "-c",
                 'curl -sS --max-time 20 -H "Authorization: Bearer $ALICE" "$GH_BASE_URL/echo"; echo "T=$ALICE"',
                 env=ks.env)
    assert r.returncode == 0, r.stderr
    assert auth(up) == [f"Bearer {SECRET}"]
    assert SECRET not in r.stdout and GK not in r.stdout and "T=nono_" in r.stdout
    # Without the query the stored value is the secret, as stored.
    r = run_nono("run", *route(up, pki, "keyring://gh:github.com/alice"), "--", "/bin/sh", "-c",
                 'curl -sS --max-time 20 -H "Authorization: Bearer $ALICE" "$GH_BASE_URL/echo"', env=ks.env)
    assert r.returncode == 0, r.stderr
    assert auth(up) == [f"Bearer {GK}"]


@pytest.mark.parametrize("account,msg", [
    ("plain", 'does not start with "go-keyring-base64:" (remove ?decode=go-keyring'),
    ("broken", "not valid base64"),
    ("binary", "does not decode to UTF-8"),
])
def test_a_value_not_in_go_keyring_form_fails_closed(ks, up, pki, account, msg):
    src = f"keyring://gh:github.com/{account}?decode=go-keyring"
    r = run_nono("run", *route(up, pki, src), "--", "/bin/echo", "ran", env=ks.env)
    assert r.returncode == 122 and "ran" not in r.stdout
    assert src in r.stderr and msg in r.stderr, r.stderr
    assert RAW not in r.stderr and "notbase64" not in r.stderr.replace(src, "")


@pytest.mark.parametrize("query,msg", [
    ("?decode=base64", "unknown decode value 'base64' (supported: go-keyring)"),
    ("?decode=go-keyring&x=1", "unknown query parameter 'x' (supported: decode)"),
    ("?format=raw", "unknown query parameter 'format'"),
    ("?decode", "query parameter 'decode' has no value"),
    ("?decode=go-keyring#frag", "no fragment"),
])
def test_unknown_query_is_an_error_not_ignored(up, pki, query, msg):
    # Refused when the route is added: no secret service is needed, and --dry-run says it too.
    src = f"keyring://gh:github.com/alice{query}"
    for extra in ([], ["--dry-run"]):
        r = run_nono("run", *extra, *route(up, pki, src), "--", "/bin/echo", "ran")
        assert r.returncode == 125 and "ran" not in r.stdout, r.stderr
        assert msg in r.stderr, r.stderr
