"""The escape battery: hostile probes (tests/escape/probe_*.c, py_probe.py) through the real CLI.

Every probe is first shown to ESCAPE unsandboxed in the same harness (else it proves nothing), then
denied — with the errno asserted — under proxy-only (`nono run --proxy-port P`, the raw mode
without a proxy: P is a plain loopback listener here) and blocked (`--net-block`), each with the
native Landlock ABI and with NONO_MAX_LANDLOCK_ABI=3 (the pre-6.7 path: no Landlock TCP rules, no
scopes). The allowed path (the proxy port on loopback) runs in the same configurations.
Network: loopback only, plus addresses inside a network namespace the metadata test creates.
"""
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import BUILD, NONO  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
PROBES = BUILD / "tests" / "escape"
CONFIGS = [("proxy", None), ("proxy", "3"), ("blocked", None), ("blocked", "3")]
CONFIG_IDS = ["proxy-abi-native", "proxy-abi3", "blocked-abi-native", "blocked-abi3"]


def probe(name):
    p = PROBES / name
    if not p.exists():
        pytest.fail(f"{p} missing: build first")
    return str(p)


class Servers:
    """Loopback targets: the 'proxy' port, another port, UDP receivers, unix listeners."""

    def __init__(self):
        self.stop = False
        self.threads = []
        self.proxy_sock, self.proxy = self._tcp()
        self.other_sock, self.other = self._tcp()
        self.udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp_sock.bind(("127.0.0.1", 0))
        self.udp = self.udp_sock.getsockname()[1]
        self.udp_sock.settimeout(0.2)
        self.tmp = tempfile.mkdtemp(prefix="nono-escape-")
        self.unix_path = os.path.join(self.tmp, "outside.sock")
        self.unix_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix_sock.bind(self.unix_path)
        self.unix_sock.listen(64)
        self.abstract = f"nono-escape-{os.getpid()}"
        self.abs_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abs_sock.bind("\0" + self.abstract)
        self.abs_sock.listen(64)
        for s in (self.proxy_sock, self.other_sock, self.unix_sock, self.abs_sock):
            t = threading.Thread(target=self._accept, args=(s,), daemon=True)
            t.start()
            self.threads.append(t)

    @staticmethod
    def _tcp():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(4096)
        return s, s.getsockname()[1]

    def _accept(self, s):
        s.settimeout(0.5)
        while not self.stop:
            try:
                c, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            c.close()

    def udp_received(self):
        got = []
        while True:
            try:
                got.append(self.udp_sock.recv(2048))
            except (socket.timeout, OSError):
                return got

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(2)
        for s in (self.proxy_sock, self.other_sock, self.udp_sock, self.unix_sock, self.abs_sock):
            s.close()
        try:
            os.unlink(self.unix_path)
            os.rmdir(self.tmp)
        except OSError:
            pass


@pytest.fixture(scope="module")
def srv():
    if not NONO.exists():
        pytest.fail(f"{NONO} missing: build first")
    s = Servers()
    yield s
    s.close()


def result_line(out):
    """The probe's verdict line — also printed, so every attempt's outcome (with its errno) is in
    the log: tests/test_vm.py shows the last line each guest test printed."""
    for line in out.splitlines():
        if line.startswith(("ESCAPED", "DENIED", "COUNT", "READY", "APPLY-FAILED")):
            print(line)
            return line
    print("(no verdict line)")
    return ""


def run_plain(argv, timeout=180):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def run_sandboxed(mode, abi, argv, srv, extra=(), timeout=200):
    cmd = [str(NONO), "run", "-r", str(PROBES), "-r", str(HERE)]
    cmd += ["--proxy-port", str(srv.proxy)] if mode == "proxy" else ["--net-block"]
    cmd += [*extra, "--timeout", "170", "--", *argv]
    env = {k: v for k, v in os.environ.items() if k != "NONO_MAX_LANDLOCK_ABI"}
    if abi:
        env["NONO_MAX_LANDLOCK_ABI"] = abi
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


SIGSYS_CODES = (128 + signal.SIGSYS, -signal.SIGSYS)


def _probes(srv):
    """id -> (argv, expected under proxy-only, expected under blocked). 'SIGSYS' = killed."""
    net, abi = probe("probe_net"), probe("probe_abi")
    py = ["/usr/bin/python3", str(HERE / "py_probe.py")]
    lo, other, udp = "127.0.0.1", str(srv.other), str(srv.udp)
    return {
        # blocked behaves as an empty network namespace: the TCP socket exists, connect fails.
        "tcp-other-port": ([net, "tcp", lo, other], "EACCES connect", "EACCES connect"),
        "udp-sendto": ([net, "udp_sendto", lo, udp], "EACCES", "EACCES"),
        "udp-sendmsg": ([net, "udp_sendmsg", lo, udp], "EACCES", "EACCES"),
        "udp-sendmmsg": ([net, "udp_sendmmsg", lo, udp], "EACCES", "EACCES"),
        "tcp-fastopen": ([net, "fastopen", lo, other], "EACCES", "EACCES"),
        "raw-icmp": ([net, "raw", lo], "EACCES", "EACCES"),
        "packet": ([net, "packet"], "EACCES", "EACCES"),
        "iouring-connect": ([abi, "iouring", lo, other], "ENOSYS", "ENOSYS"),
        "i386-socketcall": ([abi, "socketcall", lo, other], "SIGSYS", "SIGSYS"),
        "i386-connect": ([abi, "i386", lo, other], "SIGSYS", "SIGSYS"),
        "unix-abstract": ([net, "abstract", srv.abstract], "EACCES", "EACCES"),
        "unix-not-granted": ([net, "unix", srv.unix_path], "EACCES", "EACCES"),
        "py-connect": ([*py, "connect", lo, other], "EACCES", "EACCES"),
        "py-urllib": ([*py, "urllib", lo, other], "EACCES", "EACCES"),
        "py-udp": ([*py, "udp", lo, udp], "EACCES", "EACCES"),
        # setsockopt deny list (review F10/F11): the option itself is refused (the TCP socket
        # exists under both modes).
        "sockopt-rthdr": ([net, "rthdr"], "EPERM", "EPERM"),
        "sockopt-bindtodevice": ([net, "bindtodevice"], "EPERM", "EPERM"),
        "sockopt-ipoptions": ([net, "ipoptions"], "EPERM", "EPERM"),
        # listen() on an unbound TCP socket auto-binds an ephemeral port on every address: a
        # listener reachable from outside without any bind() call. Refused at listen; binding
        # the wildcard address first is refused at bind.
        "tcp-listen-autobind": ([net, "listen"], "EACCES listen", "EACCES listen"),
        "tcp6-listen-autobind": ([net, "listen", "6"], "EACCES listen", "EACCES listen"),
        "tcp-bind-any": ([net, "bind_any"], "EACCES bind", "EACCES bind"),
        "tcp6-bind-any": ([net, "bind_any", "6"], "EACCES bind", "EACCES bind"),
    }


PROBE_IDS = ["tcp-other-port", "udp-sendto", "udp-sendmsg", "udp-sendmmsg", "tcp-fastopen",
             "raw-icmp", "packet", "iouring-connect", "i386-socketcall", "i386-connect",
             "unix-abstract", "unix-not-granted", "py-connect", "py-urllib", "py-udp",
             "sockopt-rthdr", "sockopt-bindtodevice", "sockopt-ipoptions",
             "tcp-listen-autobind", "tcp6-listen-autobind", "tcp-bind-any", "tcp6-bind-any"]


@pytest.mark.parametrize("pid", PROBE_IDS)
def test_probe_escapes_unsandboxed(srv, pid):
    argv, _, _ = _probes(srv)[pid]
    srv.udp_received()
    r = run_plain(argv)
    line = result_line(r.stdout)
    if pid == "raw-icmp" and line.startswith("DENIED"):
        pytest.skip("raw sockets need CAP_NET_RAW: run as root")
    if pid == "packet" and line.startswith("DENIED"):
        pytest.skip("packet sockets need CAP_NET_RAW: run as root")
    if pid == "sockopt-ipoptions" and line.startswith("DENIED EPERM"):
        pytest.skip("IP_OPTIONS needs CAP_NET_RAW: run as root")
    if pid.startswith("i386") and r.returncode != 0:
        pytest.skip("no ia32 emulation in this kernel")
    assert line.startswith("ESCAPED"), (pid, r.returncode, r.stdout, r.stderr)
    if pid.startswith(("udp", "py-udp")):
        assert srv.udp_received(), "the datagram did not arrive: the baseline proves nothing"
    if "listen" in pid or "bind-any" in pid:
        assert "accepted a connection" in line, line  # the listener was live


@pytest.mark.parametrize("mode,abi", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("pid", PROBE_IDS)
def test_probe_denied(srv, pid, mode, abi):
    argv, exp_proxy, exp_blocked = _probes(srv)[pid]
    expected = exp_proxy if mode == "proxy" else exp_blocked
    srv.udp_received()
    r = run_sandboxed(mode, abi, argv, srv)
    line = result_line(r.stdout)
    if expected == "SIGSYS":
        print(f"KILLED rc={r.returncode} (SIGSYS is {128 + signal.SIGSYS})")
        assert r.returncode in SIGSYS_CODES and not line, (r.returncode, r.stdout, r.stderr)
    else:
        assert line.startswith(f"DENIED {expected} "), (r.returncode, r.stdout, r.stderr)
    if pid.startswith(("udp", "py-udp")):
        assert not srv.udp_received()


def test_x32_reaches_kernel_unsandboxed():
    # This kernel has the x32 ABI off (ENOSYS): the baseline shows the call reaches the kernel.
    r = run_plain([probe("probe_abi"), "x32", "127.0.0.1", "9"])
    assert result_line(r.stdout).startswith(("ESCAPED", "DENIED ENOSYS")), r.stdout


@pytest.mark.parametrize("mode,abi", CONFIGS, ids=CONFIG_IDS)
def test_x32_killed(srv, mode, abi):
    # Under the filter an x32 number never reaches the kernel: the process is killed (SIGSYS).
    r = run_sandboxed(mode, abi, [probe("probe_abi"), "x32", "127.0.0.1", str(srv.other)], srv)
    print(f"KILLED rc={r.returncode} (SIGSYS is {128 + signal.SIGSYS})")
    assert r.returncode in SIGSYS_CODES, (r.returncode, r.stdout, r.stderr)


# ---- an inherited datagram socket (sendmsg's msghdr is beyond BPF): nono refuses to run ----

def test_inherited_udp_stdin(srv):
    argv = [probe("probe_net"), "stdin_sendmsg", "127.0.0.1", str(srv.udp)]
    srv.udp_received()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        r = subprocess.run(argv, stdin=u.fileno(), capture_output=True, text=True, timeout=60)
        assert result_line(r.stdout).startswith("ESCAPED"), (r.stdout, r.stderr)
        assert srv.udp_received()
        for mode, abi in CONFIGS:
            cmd = [str(NONO), "run", "-r", str(PROBES)]
            cmd += ["--proxy-port", str(srv.proxy)] if mode == "proxy" else ["--net-block"]
            env = {k: v for k, v in os.environ.items() if k != "NONO_MAX_LANDLOCK_ABI"}
            if abi:
                env["NONO_MAX_LANDLOCK_ABI"] = abi
            r = subprocess.run(cmd + ["--", *argv], stdin=u.fileno(), capture_output=True,
                               text=True, timeout=60, env=env)
            print(f"{mode}/abi={abi or 'native'}: REFUSED rc={r.returncode} "
                  + (r.stderr.strip().splitlines() or [""])[-1])
            assert r.returncode != 0 and not result_line(r.stdout), (mode, abi, r.stdout)
            assert "stdin is a datagram" in r.stderr, r.stderr
            assert not srv.udp_received()


# ---- the sockaddr race ----

# 20,000 connects on the host; the 6.1 guest under qemu TCG is 10-50x slower: fewer there.
RACE_N = os.environ.get("NONO_ESCAPE_RACE_N", "4000" if os.environ.get("NONO_IN_VM") else "20000")


def test_race_escapes_unsandboxed(srv):
    r = run_plain([probe("probe_race"), "127.0.0.1", str(srv.proxy), str(srv.other), RACE_N])
    line = result_line(r.stdout)
    counts = dict(kv.split("=") for kv in line.split()[1:])
    # A check-then-continue supervisor would see this flipping memory: a good share of
    # connects land on the forbidden port.
    assert int(counts["forbidden"]) > 0, line


@pytest.mark.parametrize("mode,abi", CONFIGS, ids=CONFIG_IDS)
def test_race_denied(srv, mode, abi):
    argv = [probe("probe_race"), "127.0.0.1", str(srv.proxy), str(srv.other), RACE_N]
    r = run_sandboxed(mode, abi, argv, srv)
    line = result_line(r.stdout)
    counts = dict(kv.split("=") for kv in line.split()[1:])
    assert counts["forbidden"] == "0", line
    if mode == "blocked":  # the sockets exist, every connect is refused
        assert counts["allowed"] == "0" and int(counts["denied"]) == int(RACE_N), line
        assert counts["deny_errno"] == "EACCES", line
        return
    assert int(counts["allowed"]) > 0 and int(counts["denied"]) > 0, line
    assert counts["deny_errno"] == "EACCES", line
    assert int(counts["allowed"]) + int(counts["denied"]) == int(RACE_N), line


# ---- the allowed path, many threads ----

@pytest.mark.parametrize("mode,abi", CONFIGS, ids=CONFIG_IDS)
def test_allowed_path_many_threads(srv, mode, abi):
    argv = [probe("probe_many"), "127.0.0.1", str(srv.proxy), "8", "500"]
    r = run_sandboxed(mode, abi, argv, srv)
    line = result_line(r.stdout)
    if mode == "blocked":
        assert line == "COUNT ok=0 failed=4000 first_errno=EACCES", (line, r.stderr)
    else:
        assert line == "COUNT ok=4000 failed=0 first_errno=none", (line, r.stderr)


# ---- attacks on the supervisor itself ----

@pytest.mark.parametrize("how", ["seize", "vm_writev", "pidfd_getfd"])
def test_supervisor_attack_escapes_unsandboxed(how):
    # The probe's parent is a throwaway shell; as root (or same uid) these succeed.
    r = run_plain(["/bin/sh", "-c", f'"$0" {how}; true', probe("probe_ptrace")])
    assert result_line(r.stdout).startswith("ESCAPED"), (r.stdout, r.stderr)


@pytest.mark.parametrize("mode,abi", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("how", ["seize", "vm_writev", "pidfd_getfd"])
def test_supervisor_attack_denied(srv, how, mode, abi):
    # Landlock (any ABI) forbids ptrace access to a process outside the sandbox's domain.
    r = run_sandboxed(mode, abi, [probe("probe_ptrace"), how], srv)
    assert result_line(r.stdout).startswith("DENIED EPERM"), (r.stdout, r.stderr)


# ---- supervisor death: the in-process apply helper, killed from outside ----

def _helper_pids(probe_pid, exe):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == probe_pid:
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv0 = f.read().split(b"\0")[0]
        except OSError:
            continue
        if argv0 == exe.encode():
            out.append(int(d))
    return out


def _gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] in ("Z", "X")
    except OSError:
        return True


def _helper_fds(pid):
    fds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            pass
    return fds


def _run_apply(mode, abi, port, unix_path, kill_helper, check_fds=False):
    exe = probe("probe_apply")
    argv = [exe, mode, str(port)] + ([unix_path] if unix_path else [])
    env = {k: v for k, v in os.environ.items() if k != "NONO_MAX_LANDLOCK_ABI"}
    env["LD_LIBRARY_PATH"] = str(BUILD / "src" / "lib")
    if abi:
        env["NONO_MAX_LANDLOCK_ABI"] = abi
    # A previous probe's helper may still be on its way out (it exits once its target is gone):
    # only a helper that appeared with this probe counts.
    stale = set(_helper_pids(-1, exe))
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        ready = p.stdout.readline()
        assert ready.startswith("READY"), ready
        helpers = [h for h in _helper_pids(p.pid, exe) if h not in stale]
        if mode != "none":
            assert len(helpers) == 1, helpers
        if check_fds:
            # The helper keeps nothing of the caller's (stdio, pipes, files): only its own
            # kernel objects — the seccomp listener, its stop eventfd, pidfds.
            # The helper closes its end of the handoff socketpair right after writing the ack the
            # applying process waits for: allow it a moment (bounded) to get there.
            deadline = time.time() + 5
            while True:
                fds = _helper_fds(helpers[0])
                clean = fds and all(v.startswith("anon_inode:") for v in fds.values())
                if clean or time.time() > deadline:
                    break
                time.sleep(0.01)
            assert clean, fds
            assert any("seccomp notify" in v for v in fds.values()), fds
        if kill_helper:
            os.kill(helpers[0], signal.SIGKILL)
            deadline = time.time() + 10
            while not _gone(helpers[0]) and time.time() < deadline:
                time.sleep(0.01)
        out, _ = p.communicate("go\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return result_line(out)


@pytest.mark.parametrize("abi", [None, "3"], ids=["abi-native", "abi3"])
def test_apply_proxy_only_helper(srv, abi):
    assert _run_apply("none", None, srv.proxy, None, False).startswith("ESCAPED")
    # Helper alive: the proxy port is reachable; helper killed: trapped calls fail with ENOSYS.
    assert _run_apply("proxy", abi, srv.proxy, None, False, check_fds=True).startswith("ESCAPED")
    assert _run_apply("proxy", abi, srv.proxy, None, True).startswith("DENIED ENOSYS connect")


@pytest.mark.parametrize("abi", [None, "3"], ids=["abi-native", "abi3"])
def test_apply_blocked_helper(srv, abi):
    # A granted unix socket is reachable through the helper; with the helper dead: ENOSYS.
    assert _run_apply("blocked", abi, 0, srv.unix_path, False).startswith("ESCAPED")
    assert _run_apply("blocked", abi, 0, srv.unix_path, True).startswith("DENIED ENOSYS connect")


# ---- cloud metadata inside a network namespace this test creates ----

NETNS_SCRIPT = r"""
set -e
ip link set lo up
if ip link add nono-md0 type dummy 2>/dev/null; then DEV=nono-md0; ip link set $DEV up; else DEV=lo; fi
ip addr add 169.254.169.254/32 dev $DEV
ip addr add 169.254.170.2/32 dev $DEV
sysctl -qw net.ipv4.ping_group_range="0 2147483647"
"$PY" - "$PORT" <<'EOF' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.sendall(b"metadata-secret\n"); c.close()
EOF
SRV=$!
for i in $(seq 100); do "$PROBE" tcp 127.0.0.1 $PORT 2>/dev/null | grep -q ^ESCAPED && break; sleep 0.1; done
run() { echo "RESULT $1 $("${@:2}" 2>/dev/null | grep -E '^(ESCAPED|DENIED)' | head -1) rc=$?"; }
run base-169.254.169.254 "$PROBE" tcp 169.254.169.254 $PORT
run base-169.254.170.2 "$PROBE" tcp 169.254.170.2 $PORT
run base-icmp "$PROBE" icmp 169.254.169.254
for abi in 7 3; do
  export NONO_MAX_LANDLOCK_ABI=$abi
  for mode in proxy blocked; do
    if [ $mode = proxy ]; then NET="--proxy-port $PORT"; else NET="--net-block"; fi
    run $mode-$abi-169.254.169.254 "$NONO" run -r "$PDIR" $NET -- "$PROBE" tcp 169.254.169.254 $PORT
    run $mode-$abi-169.254.170.2 "$NONO" run -r "$PDIR" $NET -- "$PROBE" tcp 169.254.170.2 $PORT
    run $mode-$abi-icmp "$NONO" run -r "$PDIR" $NET -- "$PROBE" icmp 169.254.169.254
    run $mode-$abi-loopback "$NONO" run -r "$PDIR" $NET -- "$PROBE" tcp 127.0.0.1 $PORT
  done
done
kill $SRV
"""


def test_metadata_in_netns():
    r = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot create a network namespace here (unshare -n): " + r.stderr.decode())
    env = dict(os.environ, PY="/usr/bin/python3", PORT="8080", PROBE=probe("probe_net"),
               PDIR=str(PROBES), NONO=str(NONO))
    env.pop("NONO_MAX_LANDLOCK_ABI", None)
    r = subprocess.run(["unshare", "-n", "bash", "-c", NETNS_SCRIPT], capture_output=True,
                       text=True, env=env, timeout=240)
    res = {}
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            print(line)
            _, key, rest = line.split(" ", 2)
            res[key] = rest
    assert res, (r.stdout, r.stderr)
    # Unsandboxed the fake metadata server answers on both addresses, and ping sockets work.
    assert res["base-169.254.169.254"].startswith("ESCAPED connected 169.254.169.254:8080 read "
                                                  "'metadata-secret'"), res
    assert res["base-169.254.170.2"].startswith("ESCAPED"), res
    assert res["base-icmp"].startswith("ESCAPED"), res
    for abi in ("7", "3"):
        for mode in ("proxy", "blocked"):
            for target in ("169.254.169.254", "169.254.170.2", "icmp"):
                assert res[f"{mode}-{abi}-{target}"].startswith("DENIED EACCES"), (mode, abi,
                                                                                    target, res)
        # The proxy's port on loopback stays reachable in proxy-only (same port number!).
        assert res[f"proxy-{abi}-loopback"].startswith("ESCAPED"), res
        assert res[f"blocked-{abi}-loopback"].startswith("DENIED EACCES connect"), res
