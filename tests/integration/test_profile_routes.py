"""Credential routes and TLS interception from a profile (issue 14): `network.custom_credentials`,
`network.intercept` and `network.intercept_ca_dir` become the route and interception options, with
the flags' checks. A local HTTPS upstream on loopback (test CA made by `openssl` at test time, the
route's `tls_ca`) must receive the real secret while the sandboxed curl holds only the placeholder."""
import json
import os
import pathlib
import secrets
import shutil
import sys

import pytest

from conftest import run_nono

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "helpers"))
from tls_fixtures import pki, up  # noqa: E402,F401  (pytest fixtures)

SECRET = "sk-prof-" + secrets.token_hex(12)
USAGE = 125
pytestmark = pytest.mark.skipif(not shutil.which("openssl") or not shutil.which("curl"),
                                reason="openssl and curl needed")


def env(**extra):
    return {"PATH": "/usr/bin:/bin", "NONO_TEST_SECRET": SECRET, "HOME": os.environ.get("HOME", "/root"), **extra}


def profile(tmp_path, net, name="p", **doc):
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps({"network": net, **doc}))
    return str(f)


def route(up, pki, **extra):
    return {"openai": {"upstream": f"https://127.0.0.1:{up.port}/v1", "credential_key": "env://NONO_TEST_SECRET",
                       "tls_ca": pki["ca"], **extra}}


def internal(up):
    return ["--allow-internal", f"127.0.0.1:{up.port}"]


def auth(rec):
    return [v for k, v in rec["headers"] if k.lower() == "authorization"]


def test_profile_route_and_interception_inject_the_secret(up, pki, tmp_path):
    prof = profile(tmp_path, {"custom_credentials": route(up, pki, endpoint_rules=[
        {"method": "GET", "path": "/echo/**"}]), "intercept": True})
    u = f"https://127.0.0.1:{up.port}/v1"
    script = f"""
curl -sS -i --max-time 20 "$OPENAI_BASE_URL/echo/base" -H "Authorization: Bearer $NONO_TEST_SECRET"; echo
env -u NO_PROXY -u no_proxy curl -sS -i --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "{u}/echo/icpt"; echo
env -u NO_PROXY -u no_proxy curl -sS -i --max-time 20 -H "Authorization: Bearer $NONO_TEST_SECRET" "{u}/other"; echo
echo "PLACEHOLDER=$NONO_TEST_SECRET"
"""
    r = run_nono("run", "--profile", prof, *internal(up), "--", "/bin/sh", "-c", script, env=env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout and SECRET not in r.stderr
    placeholder = r.stdout.split("PLACEHOLDER=")[1].split()[0]
    assert placeholder.startswith("nono_")
    assert r.stdout.count("HTTP/1.1 200 OK") == 2, r.stdout
    assert "403" in r.stdout and "endpoint-denied" in r.stdout, r.stdout  # the profile's endpoint rule
    assert [rec["path"] for rec in up.seen] == ["/v1/echo/base", "/v1/echo/icpt"]
    for rec in up.seen:
        assert auth(rec) == [f"Bearer {SECRET}"], rec


def test_profile_checks_are_the_flags_checks(up, pki, tmp_path):
    # Interception needs a route, from the profile or the command line.
    r = run_nono("run", "--profile", profile(tmp_path, {"allow_domain": ["example.com"], "intercept": True}),
                 "--", "/bin/true")
    assert r.returncode == USAGE and "need a --route" in r.stderr, r.stderr
    # A CA directory the command could write (the profile's own grant) is refused.
    cadir = tmp_path / "ca"
    cadir.mkdir()
    prof = profile(tmp_path, {"custom_credentials": route(up, pki), "intercept_ca_dir": str(cadir)},
                   filesystem={"allow": [str(tmp_path)]})
    r = run_nono("run", "--profile", prof, *internal(up), "--", "/bin/true", env=env())
    assert r.returncode == USAGE and "could write this directory" in r.stderr, r.stderr
    # A credential typed as a value, an unknown route field, a relative directory, contradictions.
    bad = [
        ({"custom_credentials": route(up, pki, credential_key="sk-typed-in")}, "never the secret itself"),
        ({"custom_credentials": route(up, pki, inject_header="X-Key")}, 'unknown field "inject_header"'),
        ({"custom_credentials": {"openai": {"credential_key": "env://X"}}}, 'needs "upstream"'),
        ({"custom_credentials": route(up, pki), "intercept_ca_dir": "rel/dir"}, "absolute path"),
        ({"custom_credentials": route(up, pki), "intercept": False, "intercept_ca_dir": str(cadir)}, "contradicts"),
        ({"custom_credentials": route(up, pki), "block": True}, "contradicts"),
        ({"custom_credentials": route(up, pki, endpoint_rules=[{"method": "GET"}])}, "each rule"),
        ({"intercept": "yes"}, "true or false"),
    ]
    for i, (net, msg) in enumerate(bad):
        r = run_nono("run", "--profile", profile(tmp_path, net, name=f"bad{i}"), *internal(up), "--", "/bin/true",
                     env=env())
        assert r.returncode == USAGE and msg in r.stderr, (net, r.stderr)
        assert "sk-typed-in" not in r.stderr


def test_dry_run_shows_the_profile_routes_and_interception(up, pki, tmp_path):
    cadir = tmp_path / "ca"
    cadir.mkdir()
    base = profile(tmp_path, {"custom_credentials": route(up, pki), "intercept": True}, name="base")
    prof = profile(tmp_path, {"intercept_ca_dir": str(cadir)}, name="child", extends=base)
    r = run_nono("run", "--dry-run", "--profile", prof, *internal(up), "--", "/bin/true", env=env())
    assert r.returncode == 0, r.stderr
    assert "TLS interception" in r.stdout and str(cadir) in r.stdout, r.stdout
    assert "env://NONO_TEST_SECRET" in r.stdout and SECRET not in r.stdout
    r = run_nono("run", "--dry-run", "--json", "--profile", prof, *internal(up), "--", "/bin/true", env=env())
    net = json.loads(r.stdout)["network"]
    assert net["intercept_ca_dir"] == str(cadir)
    assert len(net["routes"]) == 1 and "/openai" in net["routes"][0] and SECRET not in r.stdout
    r = run_nono("profile", "show", prof)
    assert r.returncode == 0, r.stderr
    assert f"route: openai=https://127.0.0.1:{up.port}/v1" in r.stdout and "credential: openai=env://NONO_TEST_SECRET" in r.stdout
    assert f"TLS interception: CA in {cadir}" in r.stdout
    # The command line wins: its route of the same prefix replaces the profile's, its
    # interception setting replaces the profile's.
    r = run_nono("run", "--dry-run", "--json", "--profile", prof, *internal(up), "--intercept",
                 "--route", "openai=https://api.example.com", "--", "/bin/true", env=env())
    net = json.loads(r.stdout)["network"]
    assert net["intercept_ca_dir"] == "per-session"
    assert len(net["routes"]) == 1 and "api.example.com" in net["routes"][0] and "env://" not in net["routes"][0]


def test_net_block_on_the_command_line_keeps_the_profile_routes_out(tmp_path):
    # As with the profile's domains: the command line's --net-block wins.
    prof = profile(tmp_path, {"custom_credentials": {"svc": {"upstream": "https://api.example.com"}}})
    r = run_nono("run", "--dry-run", "--json", "--net-block", "--profile", prof, "--", "/bin/true")
    assert r.returncode == 0, r.stderr
    assert "routes" not in json.loads(r.stdout)["network"]


def test_command_line_route_options_replace_the_profiles(up, pki, tmp_path):
    """Review R2: a --credential or --route-endpoint for a prefix the profile defines replaced by
    the profile's own (its secret injected, its endpoint rules added to the command line's)."""
    cli_secret = "sk-cli-" + secrets.token_hex(12)
    prof = profile(tmp_path, {"custom_credentials": route(up, pki, endpoint_rules=[
        {"method": "*", "path": "/**"}])})
    script = """
curl -sS -i --max-time 20 "$OPENAI_BASE_URL/echo/cli/x" -H "Authorization: Bearer $CLI_SECRET"; echo
curl -sS -i --max-time 20 -X POST -d x "$OPENAI_BASE_URL/echo/other" -H "Authorization: Bearer $CLI_SECRET"; echo
"""
    r = run_nono("run", "--profile", prof, *internal(up), "--credential", "openai=env://CLI_SECRET",
                 "--route-endpoint", "openai=GET:/echo/cli/**", "--", "/bin/sh", "-c", script,
                 env=env(CLI_SECRET=cli_secret), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("HTTP/1.1 200 OK") == 1 and "endpoint-denied" in r.stdout, r.stdout
    assert [rec["path"] for rec in up.seen] == ["/v1/echo/cli/x"]
    assert auth(up.seen[0]) == [f"Bearer {cli_secret}"]


def test_extends_diamond_merges_the_shared_base_once(up, pki, tmp_path):
    """Review R3: A extends B and C, both extend D. D merged again after B undid B's override."""
    d = profile(tmp_path, {"custom_credentials": route(up, pki, upstream="https://evil.example.net"),
                           "intercept": True}, name="D")
    b = profile(tmp_path, {"custom_credentials": route(up, pki), "intercept": False}, name="B", extends=d)
    c = profile(tmp_path, {}, name="C", extends=d)
    a = profile(tmp_path, {}, name="A", extends=[b, c])
    r = run_nono("run", "--dry-run", "--json", "--profile", a, *internal(up), "--", "/bin/true", env=env())
    assert r.returncode == 0, r.stderr
    net = json.loads(r.stdout)["network"]
    assert len(net["routes"]) == 1 and f"127.0.0.1:{up.port}" in net["routes"][0], net["routes"]
    assert "intercept_ca_dir" not in net, net
    r = run_nono("profile", "show", a)
    assert r.returncode == 0 and r.stdout.count("evil.example.net") == 0, r.stdout


def test_proxy_url_with_routes_is_refused(up, pki, tmp_path):
    """Review R4: --proxy-url was ignored in silence when a route (or a profile's) needed nono's
    own proxy."""
    url = "http://127.0.0.1:9/"
    for extra in (["--profile", profile(tmp_path, {"custom_credentials": route(up, pki)})],
                  ["--route", f"openai=https://127.0.0.1:{up.port}/v1", "--credential",
                   "openai=env://NONO_TEST_SECRET"]):
        r = run_nono("run", "--proxy-url", url, *extra, "--", "/bin/true", env=env())
        assert r.returncode == USAGE and "--proxy-url names a proxy already running" in r.stderr, r.stderr
