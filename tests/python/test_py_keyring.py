"""nono_py.RouteConfig(credential_key="keyring://…" or a bare name) against a real secret service
(gnome-keyring on a private dbus-daemon, tests/integration/helpers/keyring_session.py): the
sandboxed curl holds only the placeholder, the local HTTPS upstream receives the stored secret, a
missing item raises FileNotFoundError naming the source, and the Python process itself never loads
GLib (the lookup runs in a forked helper)."""
import pathlib
import secrets
import sys

import pytest

from nono_py_testlib import make_base_caps

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "integration" / "helpers"))
from keyring_session import start_session  # noqa: E402
from tls_fixtures import pki, up  # noqa: E402,F401  (pytest fixtures)

SECRET = "sk-pykeyring-" + secrets.token_hex(10)


@pytest.fixture(scope="module")
def ks(tmp_path_factory):
    s = start_session(tmp_path_factory.mktemp("keyring"))
    s.store(SECRET, "service", "nono", "username", "py-key")
    yield s
    s.stop()


def mapped_glib():
    with open("/proc/self/maps") as f:
        return [line.split()[-1] for line in f if "libglib" in line or "libsecret" in line]


@pytest.mark.parametrize("key", ["keyring://py-key", "py-key", "keyring://nono/py-key"])
def test_keyring_credential_key(nono_py, ks, pki, up, monkeypatch, key):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", ks.env["DBUS_SESSION_BUS_ADDRESS"])
    glib_before = mapped_glib()
    route = nono_py.RouteConfig("svc", f"https://127.0.0.1:{up.port}", credential_key=key, tls_ca=pki["ca"])
    cfg = nono_py.ProxyConfig(routes=[route], allow_internal=[f"127.0.0.1:{up.port}"])
    with nono_py.start_proxy(cfg) as p:
        env = p.credential_env_vars()
        assert env["PY_KEY"].startswith("nono_") and SECRET not in str(env)
        caps = make_base_caps(nono_py)
        caps.proxy_only(p)
        r = nono_py.sandboxed_exec(caps, ["/bin/sh", "-c", 'curl -sS --max-time 20 -H "Authorization: Bearer '
                                          '$PY_KEY" "$SVC_BASE_URL/echo"'], env=list(env.items()), timeout_secs=60)
        assert r.exit_code == 0, r.stderr
    assert [v for k, v in up.seen[-1]["headers"] if k.lower() == "authorization"] == [f"Bearer {SECRET}"]
    assert SECRET.encode() not in r.stdout + r.stderr
    assert mapped_glib() == glib_before  # the lookup ran in a helper process, not here


def test_keyring_missing_item_and_no_service(nono_py, ks, monkeypatch, tmp_path):
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", ks.env["DBUS_SESSION_BUS_ADDRESS"])
    cfg = nono_py.ProxyConfig(routes=[nono_py.RouteConfig("a", "https://a.example",
                                                          credential_key="keyring://py-missing")])
    with pytest.raises(FileNotFoundError, match="keyring://py-missing.*no item with service=nono"):
        nono_py.start_proxy(cfg)
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="no D-Bus session bus"):
        nono_py.start_proxy(cfg)
