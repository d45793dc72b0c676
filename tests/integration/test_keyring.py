"""keyring:// credential sources (issue 14) against a real secret service: gnome-keyring on a private
dbus-daemon (helpers/keyring_session.py), items stored with secret-tool under the attributes the
Rust nono's `keyring` crate uses (service, username). The routed request must carry the stored
secret to a local HTTPS upstream while the command holds only the placeholder; a missing item, a
locked collection, a bus without a secret service and no bus at all each fail closed with their own
message naming the source, never the secret. nono itself must not load GLib or keep a D-Bus socket
(the lookup runs in a forked helper). All traffic stays on loopback."""
import json
import pathlib
import secrets
import sys

import pytest

from conftest import run_nono

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "helpers"))
from keyring_session import start_session  # noqa: E402
from tls_fixtures import pki, up  # noqa: E402,F401  (pytest fixtures)

SECRET = "sk-keyring-" + secrets.token_hex(12)
OTHER = "sk-other-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def ks(tmp_path_factory):
    s = start_session(tmp_path_factory.mktemp("keyring"))
    s.store(SECRET, "service", "nono", "username", "openai-key", label="nono: openai-key")
    s.store(OTHER, "service", "my-tool", "username", "api", label="my-tool: api")
    s.store_raw(b"k" * 100000, "nono", "huge")  # over the 16 KiB cap and a pipe's buffer
    for target in ("a", "b"):  # two items a service=nono username=twice search finds
        s.store(SECRET, "service", "nono", "username", "twice", "target", target)
    yield s
    s.stop()


def route(up, pki, source, prefix="openai"):
    return ["--route", f"{prefix}=https://127.0.0.1:{up.port}/v1", "--credential", f"{prefix}={source}",
            "--route-ca", f"{prefix}={pki['ca']}", "--allow-internal", f"127.0.0.1:{up.port}"]


# The command: one routed request with the placeholder, then what it can see of nono: its own fds,
# and for each nono ancestor whether GLib/libsecret is mapped, its thread count and its socket fds.
SCRIPT = r'''
curl -sS --max-time 20 -H "Authorization: Bearer $OPENAI_KEY" "$OPENAI_BASE_URL/echo"; echo
echo "TOKEN=$OPENAI_KEY"
echo "FDS=$(ls /proc/self/fd | tr '\n' ' ')"
p=$PPID
while [ "$(cat /proc/$p/comm 2>/dev/null)" = nono ]; do
  echo "NONO pid=$p glib=$(grep -c -E 'libglib|libgio|libsecret' /proc/$p/maps)"
  p=$(awk '/^PPid:/ {print $2}' /proc/$p/status)
done
'''


def test_keyring_secret_is_injected_and_nono_loads_no_glib(ks, up, pki):
    r = run_nono("run", *route(up, pki, "keyring://openai-key"), "--read", "/proc", "--", "/bin/sh", "-c",
                 SCRIPT, env=ks.env)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout and SECRET not in r.stderr
    lines = r.stdout.splitlines()
    assert json.loads(lines[0])["path"] == "/v1/echo"
    token = next(x for x in lines if x.startswith("TOKEN=")).split("=", 1)[1]
    assert token.startswith("nono_") and len(token) == 37
    assert [v for k, v in up.seen[-1]["headers"] if k.lower() == "authorization"] == [f"Bearer {SECRET}"]
    # The command holds stdin/out/err and ls's own directory fd: no D-Bus socket came along.
    fds = next(x for x in lines if x.startswith("FDS=")).split("=", 1)[1].split()
    assert fds == ["0", "1", "2", "3"], fds
    # No nono process in the chain has GLib or libsecret mapped: the lookup ran in a helper child.
    nono = [x for x in lines if x.startswith("NONO ")]
    assert nono, r.stdout
    assert all(x.endswith(" glib=0") for x in nono), nono


def test_service_and_account_form_and_dry_run(ks, up, pki):
    # keyring://SERVICE/ACCOUNT: an item another tool stored under its own service name
    r = run_nono("run", *route(up, pki, "keyring://my-tool/api", prefix="svc"), "--", "/bin/sh", "-c",
                 'curl -sS --max-time 20 -H "Authorization: Bearer $API" "$SVC_BASE_URL/echo"', env=ks.env)
    assert r.returncode == 0, r.stderr
    assert [v for k, v in up.seen[-1]["headers"] if k.lower() == "authorization"] == [f"Bearer {OTHER}"]
    assert OTHER not in r.stdout
    # --dry-run names the source and never looks the secret up
    d = run_nono("run", "--dry-run", *route(up, pki, "keyring://openai-key"), "--", "x", env=ks.env)
    assert d.returncode == 0, d.stderr
    assert "keyring://openai-key" in d.stdout and SECRET not in d.stdout


def test_missing_item_fails_closed(ks, up, pki):
    r = run_nono("run", *route(up, pki, "keyring://no-such-item"), "--", "/bin/echo", "ran", env=ks.env)
    # a proxy that cannot start is a run-time failure (docs/cli.md: 122), as for env:// and file://
    assert r.returncode == 122 and "ran" not in r.stdout
    assert "keyring://no-such-item" in r.stderr and "no item with service=nono username=no-such-item" in r.stderr
    assert "secret-tool store" in r.stderr and SECRET not in r.stderr
    # several items match: which one the user meant is unknown, so none is used
    r = run_nono("run", *route(up, pki, "keyring://twice"), "--", "/bin/echo", "ran", env=ks.env)
    assert r.returncode == 122 and "ran" not in r.stdout
    assert "several items have service=nono username=twice" in r.stderr and SECRET not in r.stderr
    r = run_nono("run", *route(up, pki, "keyring://huge"), "--", "/bin/echo", "ran", env=ks.env)
    assert r.returncode == 122 and "keyring://huge is larger than 16384 bytes" in r.stderr
    r = run_nono("run", *route(up, pki, "keyring://a/b/c"), "--", "/bin/echo", "ran", env=ks.env)
    # a malformed name is refused when the route is added (a usage error, caught by --dry-run too)
    assert r.returncode == 125 and "keyring://SERVICE/ACCOUNT" in r.stderr


def test_no_bus_and_no_secret_service(up, pki, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(tmp_path)}  # no bus socket in it
    r = run_nono("run", *route(up, pki, "keyring://openai-key"), "--", "/bin/echo", "ran", env=env)
    assert r.returncode == 122 and "ran" not in r.stdout
    assert "keyring://openai-key" in r.stderr and "no D-Bus session bus" in r.stderr
    s = start_session(tmp_path / "nokeyring", secret_service=False)
    try:
        r = run_nono("run", *route(up, pki, "keyring://openai-key"), "--", "/bin/echo", "ran", env=s.env)
    finally:
        s.stop()
    assert r.returncode == 122 and "ran" not in r.stdout
    assert "keyring://openai-key" in r.stderr and "no secret service runs on the session bus" in r.stderr


def test_locked_collection(up, pki, tmp_path):
    s = start_session(tmp_path / "locked")
    try:
        s.store(SECRET, "service", "nono", "username", "locked-key")
        s.lock_all()
        r = run_nono("run", *route(up, pki, "keyring://locked-key"), "--", "/bin/echo", "ran", env=s.env)
    finally:
        s.stop()
    assert r.returncode == 122 and "ran" not in r.stdout
    assert "keyring://locked-key" in r.stderr and "collection is locked" in r.stderr and SECRET not in r.stderr
