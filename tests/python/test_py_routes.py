"""Credential routes from Python (nono_py.RouteConfig / InjectMode / ProxyHandle.credential_env_vars):
every injection mode against a local HTTPS upstream (test CA made with `openssl` here), the sandboxed
curl holding only the placeholder while the upstream receives the real secret, and the routed audit
fields (nono-py's NetworkAuditEvent)."""
import base64
import pathlib
import secrets
import sys
import urllib.parse

import pytest

from nono_py_testlib import make_base_caps

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "integration" / "helpers"))
from tls_upstream import TLSUpstream, make_ca  # noqa: E402

SECRET = "user:pa ss/" + secrets.token_hex(8)  # a space and '/' and ':' exercise each mode's encoding


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def up(pki):
    u = TLSUpstream(pki[1], pki[2])
    yield u
    u.stop()


def sandboxed_curl(nono_py, proxy, script):
    caps = make_base_caps(nono_py)
    caps.proxy_only(proxy)
    env = list(proxy.credential_env_vars().items())
    r = nono_py.sandboxed_exec(caps, ["/bin/sh", "-c", script], env=env, timeout_secs=60)
    assert r.exit_code == 0, r.stderr
    return r.stdout.decode()


def header(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


MODES = [
    # (RouteConfig kwargs, the client's curl arguments (placeholder in $TOK), check of the upstream's record)
    (dict(inject_mode="HEADER", inject_header="X-Api-Key", credential_format="{}"),
     '-H "X-Api-Key: $TOK" "$SVC_BASE_URL/echo"',
     lambda rec: header(rec, "X-Api-Key") == [SECRET] and rec["path"] == "/base/echo"),
    (dict(inject_mode="URL_PATH", path_pattern="/bot{}/", path_replacement="/bot{}/"),
     '"$SVC_BASE_URL/bot$TOK/getMe"',
     lambda rec: urllib.parse.unquote(rec["path"]) == f"/base/bot{SECRET}/getMe" and rec["path"].count("/") == 3),
    (dict(inject_mode="QUERY_PARAM", query_param_name="key"),
     '"$SVC_BASE_URL/echo?a=1&key=$TOK&b=2"',
     lambda rec: urllib.parse.parse_qs(urllib.parse.urlsplit(rec["path"]).query) == {
         "a": ["1"], "b": ["2"], "key": [SECRET]}),
    (dict(inject_mode="BASIC_AUTH"),
     '-u "x:$TOK" "$SVC_BASE_URL/echo"',
     lambda rec: header(rec, "Authorization") == ["Basic " + base64.b64encode(SECRET.encode()).decode()]),
]


@pytest.mark.parametrize("kw,client,check", MODES, ids=[m[0]["inject_mode"].lower() for m in MODES])
def test_injection_modes(nono_py, pki, up, kw, client, check):
    kw = dict(kw, inject_mode=getattr(nono_py.InjectMode, kw["inject_mode"]))
    route = nono_py.RouteConfig("/svc", f"https://127.0.0.1:{up.port}/base", credential=SECRET, env_var="TOK",
                                tls_ca=pki[0], **kw)
    assert SECRET not in repr(route)
    cfg = nono_py.ProxyConfig(routes=[route], allow_internal=[f"127.0.0.1:{up.port}"])
    with nono_py.start_proxy(cfg) as p:
        env = p.credential_env_vars()
        assert set(env) == {"SVC_BASE_URL", "TOK"} and env["SVC_BASE_URL"] == f"http://127.0.0.1:{p.port}/svc"
        tok = env["TOK"]
        assert tok.startswith("nono_") and SECRET not in str(env)
        out = sandboxed_curl(nono_py, p, f'curl -sS -g --max-time 20 {client}; echo; env')
        # without the placeholder the request is refused and never reaches the upstream
        denied = sandboxed_curl(nono_py, p, f'TOK=nope; curl -sS -g -o /dev/null -w "%{{http_code}}" --max-time 20 {client}')
        events = p.drain_audit_events()
    assert SECRET not in out and f"TOK={tok}" in out
    assert denied == "401"
    assert len(up.seen) == 1, up.seen
    assert check(up.seen[0]), up.seen[0]
    assert tok not in str(up.seen[0])
    mode = kw["inject_mode"]
    allow = [e for e in events if e["decision"] == "allow" and e["reason"] == "allowed"]
    deny = [e for e in events if e["decision"] == "deny"]
    assert len(allow) == 1 and len(deny) == 1, events
    assert allow[0]["route_id"] == "/svc" and allow[0]["mode"] == "reverse"
    assert allow[0]["injection_mode"] == str(mode) and allow[0]["managed_credential_active"] is True
    assert deny[0]["auth_outcome"] == "failed" and deny[0]["denial_category"] == "authentication_failed"
    assert deny[0]["status"] == 401 and deny[0]["managed_credential_active"] is False
    assert SECRET not in str(events) and tok not in str(events)


def test_env_credential_key_and_endpoint_rules(nono_py, pki, up, monkeypatch):
    monkeypatch.setenv("NONO_PY_ROUTE_SECRET", "sk-" + secrets.token_hex(8))
    secret = "sk-" + secrets.token_hex(8)
    monkeypatch.setenv("NONO_PY_ROUTE_SECRET", secret)
    route = nono_py.RouteConfig("openai", f"https://127.0.0.1:{up.port}", credential_key="env://NONO_PY_ROUTE_SECRET",
                                tls_ca=pki[0], endpoint_rules=[("GET", "/v1/models"), ("POST", "/v1/chat/**")])
    cfg = nono_py.ProxyConfig(routes=[route], allow_internal=[f"127.0.0.1:{up.port}"])
    with nono_py.start_proxy(cfg) as p:
        env = p.credential_env_vars()
        assert set(env) == {"OPENAI_BASE_URL", "NONO_PY_ROUTE_SECRET"}
        out = sandboxed_curl(nono_py, p, 'for m in "GET /v1/models" "POST /v1/chat/completions" "GET /v1/files"; do '
                             'set -- $m; curl -sS -o /dev/null -w "$1 $2 %{http_code}\\n" --max-time 20 -X $1 '
                             '-H "Authorization: Bearer $NONO_PY_ROUTE_SECRET" "$OPENAI_BASE_URL$2"; done')
        events = p.drain_audit_events()
    assert out.splitlines() == ["GET /v1/models 200", "POST /v1/chat/completions 200", "GET /v1/files 403"]
    assert [header(r, "Authorization") for r in up.seen] == [[f"Bearer {secret}"]] * 2
    decisions = sorted((e["path"], e["endpoint_decision"]) for e in events if e.get("endpoint_decision"))
    assert ("/openai/v1/files", "deny") in decisions and ("/openai/v1/models", "allow") in decisions


def test_credential_errors_at_start(nono_py, monkeypatch):
    monkeypatch.delenv("NONO_PY_UNSET_SECRET", raising=False)
    cfg = nono_py.ProxyConfig(routes=[nono_py.RouteConfig("a", "https://a.example",
                                                          credential_key="env://NONO_PY_UNSET_SECRET")])
    with pytest.raises(FileNotFoundError, match="NONO_PY_UNSET_SECRET"):
        nono_py.start_proxy(cfg)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent")  # nor the systemd user bus ($XDG_RUNTIME_DIR/bus)
    cfg = nono_py.ProxyConfig(routes=[nono_py.RouteConfig("a", "https://a.example", credential_key="openai-key")])
    with pytest.raises(RuntimeError, match="secret service"):
        nono_py.start_proxy(cfg)
    with pytest.raises(ValueError, match="CR or LF"):
        nono_py.ProxyConfig(routes=[nono_py.RouteConfig("a", "https://a.example", credential="x\r\ny")])
    with pytest.raises(ValueError, match="another injection mode"):
        nono_py.ProxyConfig(routes=[nono_py.RouteConfig("a", "https://a.example", credential="x",
                                                        path_pattern="/k/{}")])


def test_client_certificate(nono_py, pki, tmp_path):
    """An upstream that requires a client certificate: the route presents tls_client_cert/key; a
    route without them gets 502 with the TLS reason."""
    u = TLSUpstream(pki[1], pki[2], client_ca=pki[0])
    try:
        with_cert = nono_py.RouteConfig("m", f"https://127.0.0.1:{u.port}", credential="sk-mtls", tls_ca=pki[0],
                                        tls_client_cert=pki[1], tls_client_key=pki[2], env_var="MT")
        without = nono_py.RouteConfig("n", f"https://127.0.0.1:{u.port}", credential="sk-mtls", tls_ca=pki[0],
                                      env_var="NT")
        cfg = nono_py.ProxyConfig(routes=[with_cert, without], allow_internal=[f"127.0.0.1:{u.port}"])
        with nono_py.start_proxy(cfg) as p:
            out = sandboxed_curl(nono_py, p, 'curl -sS -o /dev/null -w "%{http_code}\\n" --max-time 20 '
                                 '-H "Authorization: Bearer $MT" "$M_BASE_URL/echo"; '
                                 'curl -sS -i --max-time 20 -H "Authorization: Bearer $NT" "$N_BASE_URL/echo" | head -1')
        lines = out.splitlines()
        assert lines[0] == "200", out
        # TLS 1.3: the server refuses the missing certificate after the handshake, with an alert
        # (named when the proxy reads it; when its write fails first the connection reset may
        # have discarded it)
        assert lines[1].startswith("HTTP/1.1 502 Bad Gateway: upstream 127.0.0.1"), out
        assert "certificate required" in lines[1] or "write failed" in lines[1], out
        assert len(u.seen) == 1 and header(u.seen[0], "Authorization") == ["Bearer sk-mtls"]
        # a key file that does not match: refused when the proxy starts, naming the files
        bad = nono_py.RouteConfig("b", f"https://127.0.0.1:{u.port}", tls_client_cert=pki[1], tls_client_key=str(tmp_path / "none.key"))
        with pytest.raises(ValueError, match="client certificate"):
            nono_py.start_proxy(nono_py.ProxyConfig(routes=[bad]))
    finally:
        u.stop()


def test_intercepted_route(nono_py, pki, up, tmp_path):
    """ProxyConfig(routes=…, intercept_ca_dir=…): a sandboxed curl that talks to the upstream's own
    URL through HTTPS_PROXY, trusting the session CA through CURL_CA_BUNDLE, sends its placeholder
    where the key goes; the upstream receives the real secret, the audit event is the route's."""
    cadir = tmp_path / "ca"
    cadir.mkdir()
    route = nono_py.RouteConfig("/svc", f"https://127.0.0.1:{up.port}/base", credential=SECRET, env_var="TOK",
                                tls_ca=pki[0])
    cfg = nono_py.ProxyConfig(routes=[route], allow_internal=[f"127.0.0.1:{up.port}"], intercept_ca_dir=str(cadir))
    with nono_py.start_proxy(cfg) as p:
        caps = make_base_caps(nono_py)
        caps.allow_path(str(cadir), nono_py.AccessMode.READ)
        caps.proxy_only(p)
        env = list(p.credential_env_vars().items())  # the proxy's variables come with proxy_only
        url = f"https://127.0.0.1:{up.port}/base/echo"
        curl = "env -u NO_PROXY -u no_proxy curl -sS --max-time 20"  # a loopback upstream is in NO_PROXY
        script = (f'{curl} -H "Authorization: Bearer $TOK" {url}; echo; '
                  f'{curl} -o /dev/null -w "%{{http_code}}" {url}')
        r = nono_py.sandboxed_exec(caps, ["/bin/sh", "-c", script], env=env, timeout_secs=60)
        events = p.drain_audit_events()
    out = r.stdout.decode()
    assert r.exit_code == 0, r.stderr
    assert '"path": "/base/echo"' in out and out.rstrip().endswith("401"), out
    assert [header(rec, "Authorization") for rec in up.seen] == [[f"Bearer {SECRET}"]]
    routed = [e for e in events if e.get("route_id") == "/svc" and e["mode"] == "intercept"]
    assert [e["decision"] for e in routed] == ["allow", "deny"], events
    assert routed[0]["managed_credential_active"] is True and routed[1]["denial_category"] == "authentication_failed"
    assert SECRET not in str(events)
