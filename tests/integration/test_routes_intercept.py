"""TLS interception applies the credential routes (issue 14), end to end through the CLI:
`nono run --route … --intercept` with clients that talk to the real upstream URL through the proxy
(HTTPS_PROXY) instead of {PREFIX}_BASE_URL. A local HTTPS upstream on loopback serves with a test
CA made by the `openssl` command at test time (--route-ca names it). The sandboxed clients (curl,
Python urllib and requests — when an interpreter has it —, Node) trust the session CA only through the variables nono sets (SSL_CERT_FILE,
CURL_CA_BUNDLE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE → the bundle) and only ever hold the
per-session placeholder, which they send where the real key would go; the upstream must receive the
real secret.

The upstream is a loopback address, so it needs --allow-internal, which also puts it in NO_PROXY:
the client scripts drop NO_PROXY so that their requests take the proxy, as a public API's would."""
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys

import pytest

from conftest import run_nono

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "helpers"))
from tls_fixtures import pki, up  # noqa: E402,F401  (pytest fixtures)
from tls_upstream import TLSUpstream  # noqa: E402

SECRET = "sk-live-" + secrets.token_hex(12)
NODE = shutil.which("node")
USAGE = 125  # nono's usage exit status
CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(not shutil.which("openssl") or not CURL, reason="openssl and curl needed")


def args(up, pki, *extra, ca=True, intercept=("--intercept",)):
    a = ["--route", f"openai=https://127.0.0.1:{up.port}/v1", "--credential", "openai=env://NONO_TEST_SECRET",
         "--allow-internal", f"127.0.0.1:{up.port}", *intercept, *extra]
    return a + (["--route-ca", f"openai={pki['ca']}"] if ca else [])


def env():
    return {"PATH": "/usr/bin:/bin", "NONO_TEST_SECRET": SECRET, "HOME": os.environ.get("HOME", "/root")}


def header(rec, name):
    return [v for k, v in rec["headers"] if k.lower() == name.lower()]


CURL_AUTH = 'env -u NO_PROXY -u no_proxy curl -sS -i --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" '


def test_curl_python_node_get_the_real_credential_injected(up, pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    u = f"https://127.0.0.1:{up.port}/v1"
    node = r"""
const http = require('http'), tls = require('tls');
const p = new URL(process.env.HTTPS_PROXY);
const auth = 'Basic ' + Buffer.from(decodeURIComponent(p.username) + ':' + decodeURIComponent(p.password)).toString('base64');
const target = '127.0.0.1:' + process.argv[1];
http.request({host: p.hostname, port: p.port, method: 'CONNECT', path: target,
              headers: {'Proxy-Authorization': auth, Host: target}})
  .on('connect', (res, socket) => {
    const t = tls.connect({socket, host: '127.0.0.1'}, () => {
      t.write('GET /v1/echo/node HTTP/1.1\r\nHost: ' + target + '\r\nAuthorization: Bearer ' +
              process.env.NONO_TEST_SECRET + '\r\nConnection: close\r\n\r\n');
    });
    let data = '';
    t.on('data', d => data += d);
    t.on('end', () => console.log('NODE ' + data.split('\r\n')[0]));
    t.on('error', e => { console.log('NODE tls ' + e.message); process.exit(1); });
  }).end();
"""
    script = f"""
{CURL_AUTH} "{u}/echo?a=1"; echo
{CURL_AUTH} -X POST --data-binary hello-length "{u}/echo/post"; echo
printf 'chunked-body' | {CURL_AUTH} -H "Transfer-Encoding: chunked" --data-binary @- "{u}/echo/chunked"; echo
{CURL_AUTH} "{u}/sse?n=3"; echo
env -u NO_PROXY -u no_proxy /usr/bin/python3 - <<'PY'
import os, urllib.request
req = urllib.request.Request("{u}/echo/py", headers={{"Authorization": "Bearer " + os.environ["NONO_TEST_SECRET"]}})
print("PY", urllib.request.urlopen(req, timeout=20).read().decode())
PY
{'node -e "$NODE_JS" ' + str(up.port) if NODE else 'echo NODE skipped'}
echo "PLACEHOLDER=$NONO_TEST_SECRET"
"""
    e = env()
    e["NODE_JS"] = node
    r = run_nono("run", *args(up, pki), "--env", "NODE_JS", "--audit-log", log, "--", "/bin/sh", "-c", script,
                 env=e, timeout=120)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout and SECRET not in r.stderr
    placeholder = r.stdout.split("PLACEHOLDER=")[1].split()[0]
    assert placeholder.startswith("nono_") and len(placeholder) == 37
    assert r.stdout.count("HTTP/1.1 200 OK") == 4 + bool(NODE), r.stdout
    assert "data: event 2" in r.stdout
    assert '"body": "hello-length"' in r.stdout and '"body": "chunked-body"' in r.stdout
    assert 'PY {"method": "GET", "path": "/v1/echo/py"' in r.stdout
    if NODE:
        assert "NODE HTTP/1.1 200 OK" in r.stdout, r.stdout
    # The upstream received the real secret in place of the placeholder, every time.
    paths = [rec["path"] for rec in up.seen]
    want = ["/v1/echo?a=1", "/v1/echo/post", "/v1/echo/chunked", "/v1/sse?n=3", "/v1/echo/py"]
    assert paths[:5] == want and paths[5:] == (["/v1/echo/node"] if NODE else []), paths
    for rec in up.seen:
        assert header(rec, "Authorization") == [f"Bearer {SECRET}"], rec
        assert placeholder not in json.dumps(rec)
    # Audit: each decrypted request carries the route's fields; no secret, no placeholder.
    text = log.read_text()
    assert SECRET not in text and placeholder not in text
    reqs = [json.loads(x) for x in text.splitlines() if '"mode":"intercept"' in x.replace(" ", "") and '"method"' in x]
    reqs = [ev for ev in reqs if ev.get("route_id")]
    assert len(reqs) == len(up.seen), text
    for ev in reqs:
        assert ev["decision"] == "allow" and ev["route_id"] == "/openai" and ev["injection_mode"] == "header"
        assert ev["managed_credential_active"] is True and ev["auth_outcome"] == "succeeded"
        assert ev["auth_mechanism"] == "phantom_header"


def test_missing_placeholder_endpoint_rule_and_base_path_are_refused(up, pki, tmp_path):
    u = f"https://127.0.0.1:{up.port}/v1"
    plain = "env -u NO_PROXY -u no_proxy curl -sS -i --max-time 20 "
    script = f"""
{plain} "{u}/models"; echo
{plain} -H "Authorization: Bearer sk-of-my-own" "{u}/models"; echo
{CURL_AUTH} -X DELETE "{u}/models"; echo
{CURL_AUTH} "https://127.0.0.1:{up.port}/admin"; echo
{CURL_AUTH} "{u}/models"; echo
"""
    log = tmp_path / "audit.jsonl"
    r = run_nono("run", *args(up, pki, "--route-endpoint", "openai=GET:/models"), "--audit-log", log, "--",
                 "/bin/sh", "-c", script, env=env(), timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.count("X-Nono-Denial: credential-required") == 2, out
    assert out.count("HTTP/1.1 401") == 2
    assert "X-Nono-Denial: endpoint-denied" in out and "DELETE /models is not among the route's allowed endpoints" in out, out
    assert "/admin is outside the route's base path /v1/" in out
    assert out.count("HTTP/1.1 403") == 2
    assert out.count("HTTP/1.1 200 OK") == 1
    # Only the allowed request reached the upstream (a client's own key never does).
    assert [rec["path"] for rec in up.seen] == ["/v1/models"]
    assert header(up.seen[0], "Authorization") == [f"Bearer {SECRET}"]
    events = [json.loads(x) for x in log.read_text().splitlines()]
    denied = [ev for ev in events if ev.get("route_id") and ev["decision"] == "deny"]
    cats = sorted(ev["denial_category"] for ev in denied)
    assert cats == ["authentication_failed", "authentication_failed", "endpoint_policy", "endpoint_policy"], denied
    assert all(ev["mode"] == "intercept" for ev in denied)


def test_untrusted_upstream_is_502_with_the_reason(up, pki):
    """No --route-ca: the system store does not trust the test CA; the client gets 502 inside TLS
    (its handshake with the session CA's leaf succeeds) and the upstream never sees a request."""
    r = run_nono("run", *args(up, pki, ca=False), "--", "/bin/sh", "-c", CURL_AUTH + f'"https://127.0.0.1:{up.port}/v1/x"',
                 env=env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "HTTP/1.1 502" in r.stdout and "X-Nono-Denial: upstream-tls" in r.stdout, r.stdout
    assert "certificate not trusted" in r.stdout
    assert up.seen == []


def test_host_without_a_route_is_tunnelled_untouched(up, pki):
    """Another allowed host: its own certificate reaches the client (no session-CA leaf) and its
    requests arrive unchanged (the client's header as sent, nothing injected)."""
    other = TLSUpstream(pki["cert"], pki["key"])
    try:
        script = (f'env -u NO_PROXY -u no_proxy curl -sS --max-time 20 --cacert {pki["ca"]} -H "Authorization: Bearer mine" '
                  f'"https://127.0.0.1:{other.port}/plain"; echo')
        r = run_nono("run", *args(up, pki, "--allow-internal", f"127.0.0.1:{other.port}", "--read-file", pki["ca"]),
                     "--", "/bin/sh", "-c", script, env=env(), timeout=60)
        assert r.returncode == 0, r.stderr
        assert '"path": "/plain"' in r.stdout, r.stdout
        assert header(other.seen[0], "Authorization") == ["Bearer mine"]
    finally:
        other.stop()


def test_cli_rules_dry_run_and_ca_dir(up, pki, tmp_path):
    # Interception applies to routes only.
    r = run_nono("run", "--allow-domain", "example.com", "--intercept", "--", "/bin/true")
    assert r.returncode == USAGE and "need a --route" in r.stderr
    r = run_nono("run", *args(up, pki, intercept=("--intercept", "--intercept-ca-dir", str(tmp_path))), "--", "/bin/true")
    assert r.returncode == USAGE and "conflict" in r.stderr
    # A CA directory the command could write is refused.
    r = run_nono("run", *args(up, pki, "--allow", str(tmp_path), intercept=("--intercept-ca-dir", str(tmp_path))),
                 "--", "/bin/true", env=env())
    assert r.returncode == USAGE and "could write this directory" in r.stderr, r.stderr
    # Dry run says so, in text and JSON.
    cadir = tmp_path / "ca"
    cadir.mkdir()
    r = run_nono("run", "--dry-run", *args(up, pki, intercept=("--intercept-ca-dir", str(cadir))), "--", "/bin/true",
                 env=env())
    assert r.returncode == 0 and f"TLS interception" in r.stdout and str(cadir) in r.stdout, r.stdout
    r = run_nono("run", "--dry-run", "--json", *args(up, pki), "--", "/bin/true", env=env())
    assert json.loads(r.stdout)["network"]["intercept_ca_dir"] == "per-session"
    # An explicit directory: the command reads the bundle there and nothing else of the directory
    # (review R1: a grant on the whole directory exposed a secret kept beside it); the files go at
    # exit; the CA's key is never written.
    (cadir / "secret").write_text("TOPSECRET")
    script = ('d="$(dirname "$SSL_CERT_FILE")"; cat "$d/secret" 2>/dev/null; ls "$d" 2>/dev/null && echo LISTED; '
              'grep -c "BEGIN CERTIFICATE" "$SSL_CERT_FILE" >/dev/null && echo READABLE')
    r = run_nono("run", *args(up, pki, intercept=("--intercept-ca-dir", str(cadir))), "--", "/bin/sh", "-c", script,
                 env=env())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["READABLE"], r.stdout
    assert os.listdir(cadir) == ["secret"]


def test_per_session_directory_is_removed(up, pki, tmp_path):
    r = run_nono("run", *args(up, pki), "--", "/bin/sh", "-c", 'echo "$SSL_CERT_FILE"', env=dict(env(), TMPDIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr
    d = pathlib.Path(r.stdout.strip()).parent
    assert d.parent == tmp_path and d.name.startswith("nono-ca-")
    assert not d.exists()


def test_nono_proxy_intercept_prints_the_ca_variables(up, pki, tmp_path):
    p = subprocess.Popen([str(pathlib.Path(os.environ.get("NONO_BUILD_DIR", "build")) / "src/cli/nono"), "proxy",
                          *args(up, pki), "-q"], env=dict(env(), TMPDIR=str(tmp_path)), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        lines = {}
        url = p.stdout.readline().strip()
        while len(lines) < 6:
            k, v = p.stdout.readline().strip().split("=", 1)
            lines[k] = v
        bundle = lines["SSL_CERT_FILE"]
        assert all(lines[k] == bundle for k in ("NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"))
        assert pathlib.Path(bundle).parent.parent == tmp_path
        placeholder = lines["NONO_TEST_SECRET"]
        c = subprocess.run([CURL, "-sS", "--max-time", "20", "--proxy", url, "--cacert", bundle, "-H",
                            f"Authorization: Bearer {placeholder}", f"https://127.0.0.1:{up.port}/v1/echo"],
                           capture_output=True, text=True, timeout=60)
        assert '"path": "/v1/echo"' in c.stdout, (c.stdout, c.stderr)
        assert header(up.seen[0], "Authorization") == [f"Bearer {SECRET}"]
    finally:
        p.terminate()
        p.wait(timeout=30)
    assert not pathlib.Path(bundle).parent.exists()


def requests_python():
    """An interpreter that has `requests` (Debian's python3 does not unless python3-requests is
    installed): its executable and prefix, or None."""
    for exe in ("/usr/bin/python3", shutil.which("python3")):
        if not exe:
            continue
        r = subprocess.run([exe, "-c", "import sys, requests; print(sys.executable); print(sys.prefix)"],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split()
    return None


def test_python_requests_through_interception(up, pki):
    """requests trusts REQUESTS_CA_BUNDLE (the bundle with the session CA) and takes HTTPS_PROXY."""
    found = requests_python()
    if not found:
        pytest.skip("no python3 with the requests module")
    exe, prefix = found
    script = f"""
import os, requests
r = requests.get("https://127.0.0.1:{up.port}/v1/echo/requests", timeout=20,
                 headers={{"Authorization": "Bearer " + os.environ["NONO_TEST_SECRET"]}})
print("REQ", r.status_code, r.json()["path"])
"""
    grants = [] if prefix.startswith("/usr") else ["--read", prefix]
    r = run_nono("run", *args(up, pki, *grants), "--", "/usr/bin/env", "-u", "NO_PROXY", "-u", "no_proxy", exe, "-c",
                 script, env=env(), timeout=60)
    assert r.returncode == 0, r.stderr
    assert "REQ 200 /v1/echo/requests" in r.stdout, r.stdout
    assert header(up.seen[0], "Authorization") == [f"Bearer {SECRET}"]
