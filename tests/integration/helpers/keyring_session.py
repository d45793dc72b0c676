"""A private desktop secret service for the keyring:// tests: a dbus-daemon on a socket in a temp
dir (never the user's bus), gnome-keyring-daemon started on it and unlocked with a test password on
stdin, items stored with secret-tool. Everything lives under the given directory (HOME, XDG dirs);
stop() ends exactly the processes it started, by pid."""
import os
import shutil
import signal
import subprocess
import time

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir={dir}</listen>
  <auth>EXTERNAL</auth>
  {servicedirs}
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

TOOLS = ("dbus-daemon", "dbus-send", "gnome-keyring-daemon", "secret-tool")


def missing_tools():
    return [t for t in TOOLS if not shutil.which(t)]


def start_session(root, **kw):
    """A KeyringSession under `root`, or the test skipped with the reason (tools missing, or the
    secret service cannot start here)."""
    import pytest
    if missing_tools():
        pytest.skip(f"no {', '.join(missing_tools())} (scripts/deps.sh installs them)")
    try:
        return KeyringSession(root, **kw)
    except (RuntimeError, OSError) as e:
        pytest.skip(f"the secret service cannot start here: {e}")


class KeyringSession:
    """start(secret_service=True): a bus, and unless secret_service is False the keyring on it."""

    def __init__(self, root, secret_service=True):
        self.root = root
        self.pids = []
        home = root / "home"
        rt = root / "run"
        for d in (home, rt, root / "bus"):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf = root / "bus.conf"
        # No <servicedir>: nothing is D-Bus-activated, so "no secret service" stays true when the
        # keyring is not started, and the keyring we unlock is the one that answers.
        conf.write_text(BUS_CONF.format(dir=root / "bus", servicedirs=""))
        self.env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_RUNTIME_DIR": str(rt),
                    "XDG_DATA_HOME": str(home / ".local/share"), "XDG_CONFIG_HOME": str(home / ".config")}
        bus = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--print-address=1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env)
        self.pids.append(bus.pid)
        self.bus = bus
        addr = bus.stdout.readline().strip()  # printed once the bus listens
        if not addr:
            self.stop()
            raise RuntimeError("dbus-daemon did not start")
        self.env["DBUS_SESSION_BUS_ADDRESS"] = addr
        if secret_service:
            self._start_keyring()

    def _owner_pid(self, name):
        r = subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/",
                            "org.freedesktop.DBus.GetConnectionUnixProcessID", f"string:{name}"],
                           capture_output=True, text=True, env=self.env, timeout=10)
        return int(r.stdout.split()[-1]) if r.returncode == 0 and "uint32" in r.stdout else None

    def _start_keyring(self):
        r = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"], input="nono-test-pw",
                           capture_output=True, text=True, env=self.env, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"gnome-keyring-daemon failed: {r.stderr.strip()}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pid = self._owner_pid("org.freedesktop.secrets")
            if pid:
                self.pids.append(pid)
                return
            time.sleep(0.05)
        raise RuntimeError("gnome-keyring-daemon did not register org.freedesktop.secrets")

    def store(self, value, *attrs, label="nono test"):
        subprocess.run(["secret-tool", "store", f"--label={label}", *attrs], input=value, text=True,
                       env=self.env, check=True, timeout=30)

    def store_raw(self, value: bytes, service, username):
        """Store through the Secret Service API itself (python3-dbus, one connection for the plain
        session and the item): secret-tool refuses secrets over 8 KiB."""
        code = (
            "import dbus, sys\n"
            "bus = dbus.SessionBus()\n"
            "svc = bus.get_object('org.freedesktop.secrets', '/org/freedesktop/secrets')\n"
            "_, ses = svc.OpenSession('plain', dbus.String('', variant_level=1),\n"
            "                         dbus_interface='org.freedesktop.Secret.Service')\n"
            "col = bus.get_object('org.freedesktop.secrets', '/org/freedesktop/secrets/aliases/default')\n"
            "attrs = dbus.Dictionary({'service': sys.argv[1], 'username': sys.argv[2]}, signature='ss')\n"
            "props = {'org.freedesktop.Secret.Item.Label': 'raw', 'org.freedesktop.Secret.Item.Attributes': attrs}\n"
            "secret = (ses, dbus.ByteArray(b''), dbus.ByteArray(sys.stdin.buffer.read()), 'text/plain')\n"
            "col.CreateItem(props, secret, True, dbus_interface='org.freedesktop.Secret.Collection')\n")
        subprocess.run(["/usr/bin/python3", "-c", code, service, username], input=value, env=self.env,
                       check=True, capture_output=True, timeout=30)

    def lock_all(self):
        """Lock the login collection (gnome-keyring's Lock needs no prompt; Unlock would)."""
        subprocess.run(["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.secrets",
                        "/org/freedesktop/secrets", "org.freedesktop.Secret.Service.Lock",
                        "array:objpath:/org/freedesktop/secrets/collection/login"],
                       env=self.env, check=True, capture_output=True, timeout=30)

    def stop(self):
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.bus.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.bus.kill()
            self.bus.wait()
        self.pids = []
