"""Escape battery, kernel surfaces beside the network (issue 11): the kernel keyring, netlink
multicast groups and user namespaces. Same protocol as test_escape.py: each probe first ESCAPES
unsandboxed, then is refused in every network mode (allowed included: the keyring and user namespaces
are not network) at the native Landlock ABI and at ABI 3; the VM tier runs this file on 6.1 too.

Keys live in a keyring this test makes and links into the user keyring, so that the baseline's
"clear" and "add" touch only that keyring, never the user's own keys; it is unlinked at the end.
"""
import ctypes
import ctypes.util
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from conftest import NONO  # noqa: E402
from test_escape import CONFIGS, CONFIG_IDS, Servers, probe, result_line, run_plain, \
    run_sandboxed  # noqa: E402

KERNEL_CONFIGS = CONFIGS + [("allowed", None), ("allowed", "3")]
KERNEL_IDS = CONFIG_IDS + ["allowed-abi-native", "allowed-abi3"]

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
SYS_add_key, SYS_keyctl = 248, 250
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_PROCESS_KEYRING = -2
KEYCTL_SETPERM, KEYCTL_UNLINK, KEYCTL_READ, KEYCTL_LINK = 5, 9, 11, 8


def _sys(nr, *args):
    conv = [ctypes.c_char_p(a) if isinstance(a, bytes) else ctypes.c_long(a) for a in args]
    r = _libc.syscall(ctypes.c_long(nr), *conv)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


class Keys:
    """A keyring linked into the user keyring, holding one secret "user" key."""

    def __init__(self):
        self.desc = f"nono-probe-secret-{os.getpid()}"
        self.secret = b"s3cret-" + os.urandom(6).hex().encode()
        self.ring = _sys(SYS_add_key, b"keyring", f"nono-probe-ring-{os.getpid()}".encode(), None
                         if False else b"", 0, KEY_SPEC_USER_KEYRING)
        self.key = _sys(SYS_add_key, b"user", self.desc.encode(), self.secret, len(self.secret),
                        self.ring)
        for k in (self.ring, self.key):  # possessor and user: everything (the setting)
            _sys(SYS_keyctl, KEYCTL_SETPERM, k, 0x3f3f0000)
        # A second link from this process's own keyring: the baseline "clear" unlinks the key
        # from the ring, and a key nothing links to is garbage-collected.
        _sys(SYS_keyctl, KEYCTL_LINK, self.key, KEY_SPEC_PROCESS_KEYRING)

    def read(self):
        buf = ctypes.create_string_buffer(256)
        n = _libc.syscall(ctypes.c_long(SYS_keyctl), ctypes.c_long(KEYCTL_READ),
                          ctypes.c_long(self.key), buf, ctypes.c_long(256))
        return buf.raw[:n] if n >= 0 else None

    def count(self):
        buf = ctypes.create_string_buffer(256)
        n = _libc.syscall(ctypes.c_long(SYS_keyctl), ctypes.c_long(KEYCTL_READ),
                          ctypes.c_long(self.ring), buf, ctypes.c_long(256))
        return n // 4 if n >= 0 else -1

    def reset(self):
        """Put the secret back into the ring (after a baseline clear) and drop probe additions."""
        _libc.syscall(ctypes.c_long(SYS_keyctl), ctypes.c_long(KEYCTL_LINK),
                      ctypes.c_long(self.key), ctypes.c_long(self.ring))

    def close(self):
        _libc.syscall(ctypes.c_long(SYS_keyctl), ctypes.c_long(KEYCTL_UNLINK),
                      ctypes.c_long(self.ring), ctypes.c_long(KEY_SPEC_USER_KEYRING))


@pytest.fixture(scope="module")
def srv():
    s = Servers()
    yield s
    s.close()


@pytest.fixture(scope="module")
def keys():
    try:
        k = Keys()
    except OSError as e:
        pytest.skip(f"no kernel keyring here: {e}")
    yield k
    k.close()


def run_mode(mode, abi, argv, srv, extra=()):
    if mode != "allowed":
        return run_sandboxed(mode, abi, argv, srv, extra)
    cmd = [str(NONO), "run", "--read-file", probe("probe_kernel"), *extra, "--timeout", "60", "--",
           *argv]
    env = {k: v for k, v in os.environ.items() if k != "NONO_MAX_LANDLOCK_ABI"}
    if abi:
        env["NONO_MAX_LANDLOCK_ABI"] = abi
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _probes(keys):
    """id -> (argv, errno expected in every sandboxed mode)."""
    p = probe("probe_kernel")
    return {
        "key-read": ([p, "key_read", keys.desc], "EPERM"),
        "key-add": ([p, "key_add", str(keys.ring)], "EPERM"),
        "key-clear": ([p, "key_clear", str(keys.ring)], "EPERM"),
        "request-key": ([p, "request_key", f"nono-probe-upcall-{os.getpid()}"], "EPERM"),
        "netlink-membership": ([p, "nl_group"], "EPERM"),
        "netlink-bind-groups": ([p, "nl_bind_groups"], "EACCES"),
        "unshare-user": ([p, "unshare_user"], "EPERM"),
        "clone-user": ([p, "clone_user"], "EPERM"),
        "clone3-user": ([p, "clone3_user"], "ENOSYS"),
        "setns": ([p, "setns"], "EPERM"),
    }


PROBE_IDS = ["key-read", "key-add", "key-clear", "request-key", "netlink-membership",
             "netlink-bind-groups", "unshare-user", "clone-user", "clone3-user", "setns"]
# Netlink groups are network: under the network "allowed" mode they stay open by design.
NETWORK_ONLY = {"netlink-membership", "netlink-bind-groups"}


@pytest.mark.parametrize("pid", PROBE_IDS)
def test_kernel_probe_escapes_unsandboxed(keys, pid):
    argv, _ = _probes(keys)[pid]
    r = run_plain(argv)
    line = result_line(r.stdout)
    assert line.startswith("ESCAPED"), (pid, r.returncode, r.stdout, r.stderr)
    if pid == "key-read":
        assert keys.secret.decode() in line
    keys.reset()


@pytest.mark.parametrize("mode,abi", KERNEL_CONFIGS, ids=KERNEL_IDS)
@pytest.mark.parametrize("pid", PROBE_IDS)
def test_kernel_probe_denied(srv, keys, pid, mode, abi):
    if mode == "allowed" and pid in NETWORK_ONLY:
        pytest.skip("netlink groups are refused only when the network is restricted")
    argv, expected = _probes(keys)[pid]
    before = keys.count()
    r = run_mode(mode, abi, argv, srv)
    line = result_line(r.stdout)
    assert line.startswith(f"DENIED {expected} "), (r.returncode, r.stdout, r.stderr)
    # Checked from outside: the secret is intact and the ring holds what it held.
    assert keys.read() == keys.secret
    assert keys.count() == before


def test_request_key_upcall_never_runs(srv, keys, tmp_path):
    """The kernel runs /sbin/request-key as root for a request_key with callout data. In the VM
    guest (a RAM root we may write) a stub records each run: the unsandboxed baseline runs it,
    no sandboxed mode may. On the host only the syscall's refusal is checked (test above)."""
    if os.environ.get("NONO_IN_VM") != "1":
        pytest.skip("installs a stub /sbin/request-key: VM guest only")
    stub, mark = pathlib.Path("/sbin/request-key"), pathlib.Path("/tmp/nono-request-key-ran")
    if stub.exists() and "nono-probe" not in stub.read_text(errors="replace"):
        pytest.skip("a real /sbin/request-key is installed")
    stub.write_text(f"#!/bin/sh\n# nono-probe stub\necho \"$@\" >> {mark}\nexit 1\n")
    stub.chmod(0o755)
    try:
        mark.unlink(missing_ok=True)
        p = probe("probe_kernel")
        run_plain([p, "request_key", f"nono-probe-base-{os.getpid()}"])
        assert mark.exists(), "the baseline upcall did not run the stub: proves nothing"
        mark.unlink()
        for mode, abi in KERNEL_CONFIGS:
            r = run_mode(mode, abi, [p, "request_key", f"nono-probe-{mode}-{os.getpid()}"], srv)
            assert result_line(r.stdout).startswith("DENIED EPERM"), (mode, abi, r.stdout)
            assert not mark.exists(), f"/sbin/request-key ran from {mode} abi={abi}"
    finally:
        stub.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", ["allowed", "blocked"])
def test_unshare_tool_refused(srv, mode):
    base = run_plain(["unshare", "-U", "true"])
    assert base.returncode == 0, base.stderr
    r = run_mode(mode, None, ["unshare", "-U", "true"], srv, extra=["-r", "/usr/bin"])
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, (r.returncode, r.stderr)


@pytest.mark.parametrize("mode", ["allowed", "blocked"])
def test_allow_userns_opts_in(srv, mode):
    p = probe("probe_kernel")
    for pid in ("unshare-user", "clone-user", "clone3-user"):
        argv = [p, pid.replace("-", "_")]
        r = run_mode(mode, None, argv, srv, extra=["--allow-userns"])
        assert result_line(r.stdout).startswith("ESCAPED"), (pid, r.stdout, r.stderr)


@pytest.mark.parametrize("mode,abi", KERNEL_CONFIGS, ids=KERNEL_IDS)
def test_threads_and_spawn_still_work(srv, mode, abi):
    """clone3 → ENOSYS must not break glibc's pthread_create / posix_spawn (they fall back)."""
    r = run_mode(mode, abi, [probe("probe_kernel"), "spawn"], srv)
    assert result_line(r.stdout).startswith("ESCAPED"), (r.stdout, r.stderr)


PY_SPAWN = """
import os, subprocess, threading
t = threading.Thread(target=lambda: None); t.start(); t.join()
pid = os.posix_spawn('/bin/true', ['/bin/true'], {})
assert os.waitpid(pid, 0)[1] == 0
subprocess.run(['/bin/true'], check=True)
print('ok')
"""
NODE_SPAWN = """
const { execFileSync } = require('child_process');
const { Worker } = require('worker_threads');
execFileSync('/bin/true');
new Worker('process.exit(0)', { eval: true }).on('exit', c => console.log(c === 0 ? 'ok' : 'bad'));
"""


@pytest.mark.parametrize("mode", ["allowed", "blocked"])
def test_runtimes_still_start(srv, mode, tmp_path):
    cases = [["/usr/bin/python3", "-c", PY_SPAWN]]
    if os.path.exists("/usr/bin/node"):
        cases.append(["/usr/bin/node", "-e", NODE_SPAWN])
    for argv in cases:
        r = run_mode(mode, None, argv, srv)
        assert r.returncode == 0 and r.stdout.strip().endswith("ok"), (argv[0], r.stdout, r.stderr)


def test_netlink_membership_refusal_is_audited(srv, tmp_path):
    log = tmp_path / "audit.jsonl"
    r = run_mode("blocked", None, [probe("probe_kernel"), "nl_group"], srv,
                 extra=["--audit-log", str(log)])
    assert result_line(r.stdout).startswith("DENIED EPERM"), (r.stdout, r.stderr)
    lines = [ln for ln in log.read_text().splitlines() if "setsockopt" in ln]
    assert lines and "multicast" in lines[0], log.read_text()
