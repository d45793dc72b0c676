"""The nono CLI, for real: grants, network blocking, environment, exit codes, timeouts, fds,
interactive use on a pty, --dry-run and setup --check against this kernel, the docs and --help."""
import ctypes
import errno
import json
import os
import pathlib
import pty
import re
import select
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, START_TIMEOUT_S, run_nono, pid_dead

PY = "/usr/bin/python3"

# A python snippet run inside the sandbox: each op prints "ok" or the errno name.
PROBE_PRELUDE = (
    "import errno, socket, sys, os\n"
    "def t(f):\n"
    "    try:\n"
    "        f(); print('ok')\n"
    "    except OSError as e:\n"
    "        print(errno.errorcode.get(e.errno, e.errno))\n"
)


def kernel_landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(r), 0)


# ---- filesystem ----


def pty_bash(prompt):
    """An interactive bash on a new pty. Returns (pid, fd, wait_for(pattern, t=60) -> bool, buf):
    buf is the bytearray of what was read so far (clear() it to wait for fresh output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"],
                  {"PS1": prompt, "PATH": "/usr/bin:/bin", "TERM": "dumb"})
    buf = bytearray()

    def wait_for(pat, t=60):
        end = time.monotonic() + t
        while pat not in buf and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    buf.extend(os.read(fd, 4096))
                except OSError:
                    break
        return pat in buf

    return pid, fd, wait_for, buf


def fg_runs(fd, name):
    """Is a process called `name` in the foreground process group of the pty behind `fd`?"""
    try:
        pgrp = os.tcgetpgrp(fd)
    except OSError:
        return False
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        if comm == name and int(st[st.rindex(")") + 2:].split()[2]) == pgrp:
            return True
    return False


def wait_fg_runs(fd, name, t=20):
    """Wait (bounded) until `name` runs in the pty's foreground group: the terminal's keys now
    reach it."""
    end = time.monotonic() + t
    while not fg_runs(fd, name) and time.monotonic() < end:
        time.sleep(0.01)
    return fg_runs(fd, name)


def test_read_write_inside_and_outside(nono, tmp_path):
    proj, secret = tmp_path / "proj", tmp_path / "secret"
    proj.mkdir()
    secret.mkdir()
    (proj / "r").write_text("P")
    (secret / "s").write_text("S")
    code = PROBE_PRELUDE + (
        f"t(lambda: open('{proj}/r').read())\n"
        f"t(lambda: open('{proj}/w', 'w').write('x'))\n"
        f"t(lambda: open('{secret}/s').read())\n"
        f"t(lambda: open('{secret}/w', 'w').write('x'))\n"
        f"t(lambda: os.listdir('{secret}'))\n"
    )
    r = run_nono("run", "--allow", proj, "--", PY, "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ok", "ok", "EACCES", "EACCES", "EACCES"]
    assert (proj / "w").read_text() == "x" and not (secret / "w").exists()


def test_read_only_and_write_only_dirs(nono, tmp_path):
    ro, wo = tmp_path / "ro", tmp_path / "wo"
    ro.mkdir()
    wo.mkdir()
    (ro / "f").write_text("R")
    (wo / "f").write_text("W")
    code = PROBE_PRELUDE + (
        f"t(lambda: open('{ro}/f').read())\n"
        f"t(lambda: open('{ro}/n', 'w'))\n"
        f"t(lambda: open('{wo}/f').read())\n"
        f"t(lambda: open('{wo}/n', 'w').write('x'))\n"
    )
    r = run_nono("run", "-r", ro, "-w", wo, "--", PY, "-c", code)
    assert r.stdout.split() == ["ok", "EACCES", "EACCES", "ok"], r.stderr


def test_single_file_grants(nono, tmp_path):
    for n in ("rf", "wf", "af", "sibling"):
        (tmp_path / n).write_text(n)
    code = PROBE_PRELUDE + (
        f"t(lambda: open('{tmp_path}/rf').read())\n"
        f"t(lambda: open('{tmp_path}/rf', 'a'))\n"
        f"t(lambda: open('{tmp_path}/wf', 'a').write('+'))\n"
        f"t(lambda: open('{tmp_path}/af', 'r+').write('A'))\n"
        f"t(lambda: open('{tmp_path}/sibling').read())\n"
        f"t(lambda: open('{tmp_path}/new', 'w'))\n"
    )
    r = run_nono("run", "--read-file", tmp_path / "rf", "--write-file", tmp_path / "wf",
                 "--allow-file", tmp_path / "af", "--", PY, "-c", code)
    assert r.stdout.split() == ["ok", "EACCES", "ok", "ok", "EACCES", "EACCES"], r.stderr
    assert (tmp_path / "wf").read_text() == "wf+" and (tmp_path / "af").read_text() == "Af"


def test_missing_grant_path_is_usage_error(nono, tmp_path):
    r = run_nono("run", "--read", tmp_path / "missing", "--", "/bin/true")
    assert r.returncode == 125
    assert "missing" in r.stderr and r.stderr.count("\n") == 1


def test_no_system_paths(nono, tmp_path):
    # Without the system set even /bin/true cannot be executed (nor its libraries read).
    r = run_nono("run", "--no-system-paths", "--", "/bin/true")
    assert r.returncode == 126, r.stderr
    r = run_nono("run", "--", "/bin/true")
    assert r.returncode == 0, r.stderr


# ---- network ----

@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def net_code(port):
    return PROBE_PRELUDE + (
        "def tcp():\n"
        "    s = socket.socket(); s.settimeout(5)\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
        "def udp():\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    s.sendto(b'x', ('127.0.0.1', 9))\n"
        "def raw():\n"
        "    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
        "def tcp6():\n"
        "    s = socket.socket(socket.AF_INET6); s.settimeout(5)\n"
        f"    s.connect(('::1', {port}))\n"
        "t(tcp); t(udp); t(raw); t(tcp6)\n"
    )


def test_network_allowed_by_default(nono, listener):
    r = run_nono("run", "--", PY, "-c", net_code(listener))
    out = r.stdout.split()
    # TCP works, UDP sendto works, raw works for root; ::1 has no listener on this port.
    assert out[:3] == ["ok", "ok", "ok"], r.stderr


def test_net_block(nono, listener):
    r = run_nono("run", "--net-block", "--", PY, "-c", net_code(listener))
    assert r.returncode == 0, r.stderr
    # The seccomp filter refuses IP sockets of every type with EACCES (seccomp.c).
    assert r.stdout.split() == ["EACCES"] * 4, r.stderr


# ---- environment ----

def test_env_not_inherited_and_set(nono):
    """--clear-env --no-tmp: exactly what --env sets (the basic set and the temp dir's variables
    are tests/integration/test_envtmp.py's)."""
    env = dict(os.environ, NONO_TEST_SECRET="hunter2")
    r = run_nono("run", "--clear-env", "--no-tmp", "--env", "A=1", "-e", "B=x=y", "--",
                 "/usr/bin/env", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "A=1\nB=x=y\n"
    r = run_nono("run", "--env", "A=1", "--", "/usr/bin/env", env=env)
    assert r.returncode == 0, r.stderr
    assert "A=1" in r.stdout.splitlines() and "hunter2" not in r.stdout


def test_inherit_env(nono):
    env = dict(os.environ, NONO_TEST_SECRET="hunter2", LD_LIBRARY_PATH="/nonexistent-nono")
    r = run_nono("run", "--inherit-env", "--env", "NONO_TEST_SECRET=override", "--",
                 "/usr/bin/env", env=env)
    lines = r.stdout.splitlines()
    assert "NONO_TEST_SECRET=override" in lines
    assert "PATH=" + os.environ["PATH"] in lines
    assert not [line for line in lines if line.startswith("LD_")]


@pytest.mark.parametrize("var", ["LD_PRELOAD=/tmp/evil.so", "LD_AUDIT=x", "GLIBC_TUNABLES=a=b"])
def test_loader_variable_refused(nono, var, tmp_path):
    marker = tmp_path / "ran"
    r = run_nono("run", "--allow", tmp_path, "--env", var, "--", "/bin/sh", "-c", f"touch {marker}")
    assert r.returncode == 125
    assert var.split("=")[0] in r.stderr and "refused" in r.stderr
    assert not marker.exists()


def test_bad_env_syntax(nono):
    env = {k: v for k, v in os.environ.items() if k != "NOEQUALS"}
    r = run_nono("run", "--env", "NOEQUALS", "--", "/bin/true", env=env)  # a copy of nothing
    assert r.returncode == 125 and "NOEQUALS is not set" in r.stderr
    r = run_nono("run", "--env", "=x", "--", "/bin/true")
    assert r.returncode == 125 and "NAME=VALUE" in r.stderr


# ---- exit codes ----

def test_exit_status_passed_through(nono):
    assert run_nono("run", "--", "/bin/sh", "-c", "exit 3").returncode == 3
    assert run_nono("run", "--", "/bin/sh", "-c", "exit 0").returncode == 0
    assert run_nono("run", "--", "/bin/sh", "-c", "exit 255").returncode == 255


def test_signal_is_128_plus_signo(nono):
    assert run_nono("run", "--", "/bin/sh", "-c", "kill -TERM $$").returncode == 143
    assert run_nono("run", "--", "/bin/sh", "-c", "kill -KILL $$").returncode == 137


def test_not_found_127(nono):
    r = run_nono("run", "--", "definitely-not-a-command-nono")
    assert r.returncode == 127
    assert "not found" in r.stderr and "definitely-not-a-command-nono" in r.stderr


def test_not_executable_126(nono, tmp_path):
    f = tmp_path / "noexec"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    r = run_nono("run", "--read", tmp_path, "--", f)
    assert r.returncode == 126 and "not" in r.stderr
    # Executable on disk but outside the policy: Landlock refuses execve.
    f.chmod(0o755)
    r = run_nono("run", "--", f)
    assert r.returncode == 126 and "policy" in r.stderr
    r = run_nono("run", "--read", tmp_path, "--", f)
    assert r.returncode == 0, r.stderr


def test_usage_errors_125(nono):
    for args in (["run", "--bogus", "--", "/bin/true"],
                 ["run"],
                 ["run", "--timeout", "abc", "--", "/bin/true"],
                 ["run", "--timeout", "-1", "--", "/bin/true"],
                 ["run", "--json", "--", "/bin/true"],
                 ["run", "--net-block", "--allow-domain", "example.com", "--", "/bin/true"],
                 ["run", "--allow-bind", "8080", "--", "/bin/true"],
                 ["run", "--allow-bind", "0", "--proxy-port", "3128", "--", "/bin/true"],
                 ["run", "--allow-bind", "8080", "--net-block", "--", "/bin/true"],
                 # (--audit-log is valid in every mode: metadata decisions are logged there too)
                 ["run", "--path", "/tmp", "--", "/bin/true"],
                 ["run", "--read"],
                 ["frobnicate"],
                 ["setup"],
                 ["setup", "--check", "extra"]):
        r = run_nono(*args)
        assert r.returncode == 125, (args, r.stderr)
        assert r.stderr.startswith("nono: "), (args, r.stderr)


# ---- timeout, fds, workdir ----

def test_timeout_kills_grandchild_124(nono, tmp_path):
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    r = run_nono("run", "--allow", tmp_path, "--timeout", "0.5", "--",
                 "/bin/sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait")
    assert r.returncode == 124, r.stderr
    assert "timeout" in r.stderr
    assert time.monotonic() - t0 < 30
    pid = int(pidfile.read_text())
    assert pid_dead(pid), "grandchild survived"


def test_no_inherited_fds(nono, tmp_path):
    marker = tmp_path / "marker"
    marker.write_text("m")
    fd = os.open(marker, os.O_RDONLY)  # no O_CLOEXEC: inheritable, and passed to nono below
    os.set_inheritable(fd, True)
    try:
        r = run_nono("run", "--read", "/proc", "--", "/bin/ls", "-l", "/proc/self/fd/",
                     pass_fds=(fd,))
    finally:
        os.close(fd)
    assert r.returncode == 0, r.stderr
    names = re.findall(r" (\d+) -> ", r.stdout)
    assert str(marker) not in r.stdout
    assert names == ["0", "1", "2", "3"], r.stdout  # 3 is ls's own directory fd


def test_workdir(nono, tmp_path):
    r = run_nono("run", "--read", tmp_path, "--workdir", tmp_path, "--", "/bin/pwd")
    assert r.stdout.strip() == str(tmp_path)
    r = run_nono("run", "--workdir", tmp_path / "nope", "--", "/bin/pwd")
    assert r.returncode == 125


def test_stdio_passthrough(nono):
    r = run_nono("run", "--", "/bin/sh", "-c", "cat; echo to-err >&2", input="piped in\n")
    assert r.stdout == "piped in\n" and r.stderr == "to-err\n"


# ---- interactive: a real pty ----

def pty_run(argv, send=b"", timeout=20):
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        finally:
            os._exit(99)
    out = b""
    sent = False
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            if not sent and send:
                os.write(fd, send)
                sent = True
            continue
        try:
            d = os.read(fd, 4096)
        except OSError:
            break
        if not d:
            break
        out += d
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out.replace(b"\r\n", b"\n"), os.waitstatus_to_exitcode(status)


def test_interactive_on_a_pty(nono):
    check = "import os; print(os.tcgetpgrp(0) == os.getpgrp(), {})"
    script = (f"{nono} run -- /bin/sh -c 'read x; echo got:$x; {PY} -c \"{check.format(1)}\"'; "
              f"echo status:$?; {PY} -c \"{check.format(2)}\"")
    out, status = pty_run(["/bin/sh", "-c", script], send=b"hello\n")
    assert status == 0, out
    assert b"got:hello\n" in out, out
    assert b"True 1\n" in out, out   # the command owns the terminal
    assert b"status:0\n" in out, out
    assert b"True 2\n" in out, out  # and nono gave it back


def test_interactive_ctrl_c_reaches_command(nono):
    # ^C on the terminal goes to the command's foreground group: it dies by SIGINT -> 130.
    script = f"{nono} run -- /bin/sh -c 'echo ready; sleep 30'; echo status:$?"
    pid, fd = pty.fork()
    if pid == 0:
        os.execv("/bin/sh", ["/bin/sh", "-c", script])
    out = b""
    end = time.monotonic() + 20
    sent = False
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                break
            if not d:
                break
            out += d
        if b"ready" in out and not sent:
            assert wait_fg_runs(fd, "sleep"), out
            os.write(fd, b"\x03")
            sent = True
    os.waitpid(pid, 0)
    os.close(fd)
    assert b"status:130" in out, out


def test_tiocsti_refused(nono):
    code = ("import fcntl, termios, errno\n"
            "try:\n"
            "    fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('injected')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n")
    out, status = pty_run([nono, "run", "--", PY, "-c", code])
    assert b"EPERM" in out, out


# ---- dry run and setup --check ----

def test_dry_run_text(nono, tmp_path):
    marker = tmp_path / "ran"
    r = run_nono("run", "--dry-run", "--allow", tmp_path, "--net-block", "--", "/bin/sh", "-c",
                 f"touch {marker}")
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    abi = kernel_landlock_abi()
    assert f"Landlock ABI {abi}" in r.stdout
    assert f"landlock: ABI {abi}" in r.stdout
    assert f"rw  dir   {tmp_path}" in r.stdout
    assert "r   dir   /usr  [system]" in r.stdout
    assert "network: blocked" in r.stdout
    assert "seccomp: filter" in r.stdout


def test_dry_run_json(nono, tmp_path):
    (tmp_path / "f").write_text("x")
    r = run_nono("run", "--dry-run", "--json", "--read", tmp_path, "--write-file", tmp_path / "f",
                 "--net-block", "--allow-unix-socket", tmp_path,
                 "--env", "A=1", "--timeout", "5", "--", "prog", "arg")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["command"] == ["prog", "arg"]
    grants = {(g["resolved"], g["access"], g["kind"], g["system"]) for g in d["grants"]}
    assert (str(tmp_path), "read", "dir", False) in grants
    assert (str(tmp_path / "f"), "write", "file", False) in grants
    assert ("/usr", "read", "dir", True) in grants
    assert ("/dev/null", "read-write", "file", True) in grants
    assert d["network"]["mode"] == "blocked"
    assert d["bind_ports"] == []
    assert d["unix_sockets"] == [str(tmp_path)]
    assert {k: d["env"][k] for k in ("base", "inherit", "set", "copied", "private_tmp")} == {
        "base": "basic", "inherit": False, "set": ["A"], "copied": [], "private_tmp": True}
    assert {"A", "TMPDIR", "TMP", "TEMP"} <= set(d["env"]["names"])
    assert "/etc/shadow" in d["system_withheld"] or not os.path.exists("/etc/shadow")
    assert d["timeout"] == 5
    enf = d["enforcement"]
    assert enf["ok"] is True and enf["error"] is None
    assert enf["landlock_abi"] == kernel_landlock_abi() == d["support"]["landlock_abi"]
    assert enf["net_requested"] == enf["net_enforced"] == "blocked"
    assert enf["seccomp"] is True and enf["no_new_privs"] is True
    # Structured, from nono_report_json: rights by name, the port (none here), the downgrades.
    assert "read_file" in enf["fs_handled"] and "write_file" in enf["fs_handled"]
    assert isinstance(enf["fs_unenforced"], list)
    assert enf["proxy_port"] is None and enf["downgrades"] == [] and enf["downgraded"] is False
    assert enf["grants"] == len(d["grants"]) and enf["unix_sockets"] == 1


def test_dry_run_no_system_paths(nono, tmp_path):
    r = run_nono("run", "--dry-run", "--json", "--no-system-paths", "--read", tmp_path, "--", "x")
    d = json.loads(r.stdout)
    assert [g["resolved"] for g in d["grants"]] == [str(tmp_path)]
    assert d["system_paths"] is False


def test_dry_run_respects_abi_cap(nono):
    env = dict(os.environ, NONO_MAX_LANDLOCK_ABI="3")
    r = run_nono("run", "--dry-run", "--json", "--", "x", env=env)
    d = json.loads(r.stdout)
    assert d["enforcement"]["landlock_abi"] == min(3, kernel_landlock_abi())


def test_dry_run_proxy_mode(nono):
    r = run_nono("run", "--dry-run", "--allow-domain", "example.com", "--", "x")
    assert r.returncode == 0, r.stderr
    assert "network: proxy-only" in r.stdout and "example.com" in r.stdout
    assert "65535" not in r.stdout
    r = run_nono("run", "--dry-run", "--json", "--allow-domain", "example.com", "--proxy-port",
                 "4321", "--", "x")
    d = json.loads(r.stdout)
    assert d["network"] == {"mode": "proxy-only", "proxy_port": 4321,
                            "allowed_domains": ["example.com"], "in_process_proxy": True,
                            "internal": [], "no_proxy": ""}


def test_dry_run_port_chosen_at_start(nono):
    """With --allow-domain and no --proxy-port the port is chosen when the proxy starts: the dry
    run says so and prints no port number that would not be used."""
    r = run_nono("run", "--dry-run", "--allow-domain", "example.com", "--", "x")
    assert r.returncode == 0, r.stderr
    assert "port chosen at start" in r.stdout
    assert not re.search(r"127\.0\.0\.1:\d|port \d|proxy-only\(\d", r.stdout), r.stdout
    d = json.loads(run_nono("run", "--dry-run", "--json", "--allow-domain", "example.com",
                            "--", "x").stdout)
    assert d["network"]["proxy_port"] is None
    assert d["enforcement"]["proxy_port"] is None
    assert d["enforcement"]["net_requested"] == "proxy-only"
    d = json.loads(run_nono("run", "--dry-run", "--json", "--allow-domain", "example.com",
                            "--proxy-port", "4321", "--", "x").stdout)
    assert d["network"]["proxy_port"] == d["enforcement"]["proxy_port"] == 4321


def test_library_refuses_grant_combinations_everywhere(nono):
    """The library's plan refuses meaningless grant combinations with one message, for run,
    --dry-run and why alike (exit 125)."""
    for grants in (["--allow-bind", "8080"], ["--allow-unix-socket", "/tmp"],
                   ["--allow-bind", "8080", "--net-block"]):
        msgs = set()
        for args in (["run", *grants, "--", "/bin/true"],
                     ["run", "--dry-run", *grants, "--", "/bin/true"],
                     ["why", *grants, "--net"]):
            r = run_nono(*args)
            assert r.returncode == 125, (args, r.stderr)
            msgs.add(r.stderr.strip().splitlines()[-1])
        assert len(msgs) == 1, msgs


def test_setup_check_tells_the_truth(nono):
    r = run_nono("setup", "--check")
    assert r.returncode == 0, r.stderr
    abi = kernel_landlock_abi()
    assert re.search(rf"^landlock: ABI {abi}\b", r.stdout, re.M), r.stdout
    assert os.uname().release in r.stdout
    j = json.loads(run_nono("setup", "--check", "--json").stdout)
    assert j["landlock_abi_kernel"] == abi and j["landlock_abi"] == abi
    assert j["landlock_tcp"] == (abi >= 4) and j["landlock_scopes"] == (abi >= 6)
    assert j["seccomp_filter"] is True
    with open("/proc/self/status") as f:
        assert "Seccomp_filters" in f.read()


def test_why(nono, tmp_path):
    (tmp_path / "f").write_text("x")
    r = run_nono("why", "--read", tmp_path, "--path", tmp_path / "f")
    assert r.returncode == 0 and "allowed" in r.stdout and str(tmp_path) in r.stdout
    r = run_nono("why", "--read", tmp_path, "--path", tmp_path / "f", "--write-access")
    assert r.returncode == 1 and "denied" in r.stdout
    r = run_nono("why", "--path", "/root/.ssh/id_rsa")
    assert r.returncode == 1
    r = run_nono("why", "--net-block", "--net")
    assert r.returncode == 1 and "denied" in r.stdout
    r = run_nono("why", "--net")
    assert r.returncode == 0


# ---- help, version, docs ----

def test_version_and_help(nono):
    r = run_nono("--version")
    assert r.returncode == 0 and re.fullmatch(r"nono \d+\.\d+\.\d+\n", r.stdout)
    r = run_nono("--help")
    assert r.returncode == 0
    for code in ("122", "123", "124", "125", "126", "127"):
        assert f"  {code}  " in r.stdout
    for sub in ("run", "proxy", "setup", "why"):
        h = run_nono(sub, "--help")
        assert h.returncode == 0 and h.stdout.startswith("Usage: nono " + sub), sub


def _long_options(path):
    """The long options of the getopt tables in one C file."""
    return set(re.findall(r'\{"([a-z][a-z-]+)", (?:required|no)_argument', path.read_text()))


def test_help_and_docs_agree(nono):
    """Every long option of every subcommand appears in that subcommand's --help, in docs/cli.md
    and in docs/nono.1, and every subcommand has its place in the man page. All the gaps are
    reported at once, each as "--OPTION (SUBCOMMAND): missing from PLACE", so a branch that adds an
    option sees exactly what it still has to document."""
    cli = ROOT / "src" / "cli"
    if not (cli / "options.c").exists():
        pytest.skip("source tree not available here (e.g. inside the VM tier guest)")
    doc = (ROOT / "docs" / "cli.md").read_text()
    man = (ROOT / "docs" / "nono.1").read_text().replace("\\-", "-")
    tables = {"run": _long_options(cli / "options.c"), "proxy": _long_options(cli / "proxy_cmd.c"),
              "setup": _long_options(cli / "setup.c")}
    # `nono why` shares run's table (options.c); its own query flags are documented with why.
    tables["why"] = {"path", "write-access", "read-write", "net", "host"} & tables["run"]
    tables["run"] -= tables["why"]
    assert sum(map(len, tables.values())) > 30
    helps = {sub: run_nono(sub, "--help").stdout for sub in tables}
    gaps = []
    for sub, opts in sorted(tables.items()):
        for o in sorted(opts):
            for place, text in ((f"'nono {sub} --help'", helps[sub]), ("docs/cli.md", doc),
                                ("docs/nono.1", man)):
                if f"--{o}" not in text:
                    gaps.append(f"--{o} ({sub}): missing from {place}")
        if f"nono {sub}" not in man:
            gaps.append(f"subcommand {sub}: missing from docs/nono.1")
    assert not gaps, "options not documented everywhere:\n" + "\n".join(gaps)
    for code in ("122", "123", "124", "125", "126", "127"):
        assert code in doc


# ---- nono proxy standalone (lifecycle only; the proxy's behaviour is tests/integration/test_proxy.py) ----

def test_proxy_standalone_prints_url_and_stops_on_sigterm(nono):
    p = subprocess.Popen([nono, "proxy", "--allow-domain", "example.com", "--listen",
                          "127.0.0.1:0", "-q"], stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([p.stdout], [], [], 20)[0], "no URL printed"
        url = p.stdout.readline().strip()
        m = re.fullmatch(r"http://nono:([^@]+)@127\.0\.0\.1:(\d+)", url)
        assert m, url
        port = int(m.group(2))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 40")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()


# ---- --allow-domain: the in-process proxy, end to end (loopback upstream started here) ----

class _Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from upstream " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def upstream():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


CURL = "/usr/bin/curl"


@pytest.mark.skipif(not os.path.exists(CURL), reason="curl not installed (scripts/deps.sh installs it)")
def test_allow_domain_through_proxy_only(nono, upstream, tmp_path):
    hp = f"127.0.0.1:{upstream}"
    log = tmp_path / "audit.jsonl"
    base = ["run", "--allow-domain", hp, "--allow-internal", hp, "--audit-log", log, "--"]
    # Through the proxy (NO_PROXY lists the --allow-internal host, so tell curl to use the proxy).
    r = run_nono(*base, CURL, "-sS", "--noproxy", "", f"http://{hp}/via-proxy")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello from upstream /via-proxy"
    # CONNECT tunnel too.
    r = run_nono(*base, CURL, "-sS", "-p", "--noproxy", "", f"http://{hp}/tunnel")
    assert r.stdout == "hello from upstream /tunnel", r.stderr
    # Directly: --allow-internal lets the command reach exactly that address and port...
    r = run_nono(*base, CURL, "-sS", "--noproxy", "*", f"http://{hp}/direct")
    assert r.stdout == "hello from upstream /direct", r.stderr
    # ...and no other loopback port: the supervisor refuses the connect (curl exit 7).
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        other = spare.getsockname()[1]
        r = run_nono(*base, CURL, "-sS", "--noproxy", "*", f"http://127.0.0.1:{other}/direct")
    assert r.returncode == 7, (r.stdout, r.stderr)
    upstream = other
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(e["source"] == "proxy" and e["decision"] == "allow" and e["path"] == "/via-proxy"
               for e in events), events
    assert any(e["source"] == "supervisor" and e["decision"] == "deny" and e["port"] == upstream
               and e["status"] == errno.EACCES for e in events), events


@pytest.mark.skipif(not os.path.exists(CURL), reason="curl not installed")
def test_allow_domain_denies_other_hosts(nono, upstream):
    hp = f"127.0.0.1:{upstream}"
    r = run_nono("run", "--allow-domain", "example.com", "--", CURL, "-sS", "--noproxy", "",
                 "-o", "/dev/null", "-w", "%{http_code}", f"http://{hp}/")
    assert r.stdout == "403", r.stderr


def test_allow_domain_sets_proxy_env(nono):
    r = run_nono("run", "--allow-domain", "example.com", "--env", "HTTP_PROXY=mine", "--env",
                 "KEEP=1", "--", "/usr/bin/env")
    # nono sets HTTP_PROXY itself: the user's value would be overwritten without a word
    assert r.returncode == 125 and "HTTP_PROXY is set by nono" in r.stderr, r.stderr
    r = run_nono("run", "--allow-domain", "example.com", "--env", "KEEP=1", "--", "/usr/bin/env")
    env = dict(line.split("=", 1) for line in r.stdout.splitlines())
    m = re.fullmatch(r"http://nono:[0-9a-f]+@127\.0\.0\.1:(\d+)", env["HTTPS_PROXY"])
    assert m, env
    assert env["HTTP_PROXY"] == env["HTTPS_PROXY"] == env["https_proxy"]
    assert env["ALL_PROXY"] == env["all_proxy"] == "socks5h://" + env["HTTP_PROXY"][len("http://"):]
    assert env["NO_PROXY"] == "" and env["KEEP"] == "1"  # nothing may be reached directly


@pytest.mark.skipif(not os.path.exists(CURL), reason="curl not installed")
def test_proxy_port_with_external_proxy(nono, upstream):
    hp = f"127.0.0.1:{upstream}"
    p = subprocess.Popen([nono, "proxy", "--allow-internal", hp, "--allow-domain", hp, "-q"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert select.select([p.stdout], [], [], 20)[0]
        url = p.stdout.readline().strip()
        port = url.rsplit(":", 1)[1]
        r = run_nono("run", "--proxy-port", port, "--env", f"http_proxy={url}", "--", CURL, "-sS",
                     f"http://{hp}/ext")
        assert r.stdout == "hello from upstream /ext", r.stderr
        r = run_nono("run", "--proxy-port", port, "--", CURL, "-sS", f"http://{hp}/direct")
        assert r.returncode == 7, r.stderr
        # --proxy-url: every proxy variable from the URL, token included (curl's --noproxy ''
        # because the upstream here is itself on loopback, which NO_PROXY names)
        r = run_nono("run", "--proxy-url", url, "--", CURL, "-sS", "--noproxy", "",
                     f"http://{hp}/viaurl")
        assert r.stdout == "hello from upstream /viaurl", r.stderr
    finally:
        p.terminate()
        p.wait(timeout=20)


# ---- signals sent to nono reach the command; ^Z job control ----

def test_sigterm_to_nono_is_forwarded_to_the_group(nono, tmp_path):
    pidfile, ready = tmp_path / "pid", tmp_path / "ready"
    script = (f"trap 'echo got-term; exit 7' TERM; sleep 60 & echo $! > {pidfile}; "
              f"touch {ready}; wait")
    p = subprocess.Popen([nono, "run", "--allow", tmp_path, "--", "/bin/sh", "-c", script],
                         stdout=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < end:
            time.sleep(0.02)
        assert ready.exists()
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 7 and out == "got-term\n"
    assert pid_dead(int(pidfile.read_text()))  # the grandchild got SIGTERM too


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT])
def test_stop_signals_to_nono_reach_the_command(nono, tmp_path, sig):
    """nono (not on a terminal: the command has its own session) passes each stop signal on."""
    ready = tmp_path / "ready"
    script = f"trap 'echo got-{int(sig)}; exit 9' {int(sig)}; touch {ready}; while :; do sleep 0.05; done"
    p = subprocess.Popen([nono, "run", "--allow", tmp_path, "--", "/bin/sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        end = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < end:
            time.sleep(0.01)
        assert ready.exists()
        p.send_signal(sig)
        out, _ = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert (p.returncode, out) == (9, f"got-{int(sig)}\n")


def test_ctrl_z_and_fg_under_job_control(nono):
    """^Z stops the command; nono stops too, so the user's shell gets the terminal back ("Stopped");
    `fg` resumes both and the command finishes normally."""
    pid, fd, wait_for, buf = pty_bash("PROMPT$ ")

    try:
        assert wait_for(b"PROMPT$ ")
        os.write(fd, f"{nono} run -- /bin/sh -c 'echo START; sleep 3; echo END'\n".encode())
        assert wait_for(b"START\r\n"), buf
        assert wait_fg_runs(fd, "sleep"), buf
        os.write(fd, b"\x1a")
        assert wait_for(b"Stopped"), buf
        assert b"END\r\n" not in buf
        os.write(fd, b"fg\n")
        assert wait_for(b"END\r\n"), buf
        os.write(fd, b"echo status=$?\n")
        assert wait_for(b"status=0"), buf
        os.write(fd, b"exit\n")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


def test_pipeline_keeps_the_terminal_with_the_job(nono):
    """`nono run -- cmd | consumer`: the command must not take the terminal from the other members
    of the shell's job (they would be stopped by SIGTTIN/SIGTTOU); it runs in its own session."""
    consumer = ("import os, time; time.sleep(0.3); "
                "print('consumer-fg', os.tcgetpgrp(2) == os.getpgrp()); print(input())")
    check = "import os; print(os.getsid(0) == os.getpgrp())"
    script = (f"{nono} run -- /bin/sh -c 'sleep 1; {PY} -c \"{check}\"' | {PY} -c \"{consumer}\"; "
              f"echo status:$?")
    out, status = pty_run(["/bin/sh", "-c", script])
    assert status == 0, out
    assert b"consumer-fg True\n" in out, out
    assert b"\nTrue\n" in out, out       # the sandboxed command got a new session
    assert b"status:0\n" in out, out


# ---- unix sockets and bind grants, audited ----

def test_unix_socket_grant_and_audit(nono, tmp_path):
    path = tmp_path / "s.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(4)
    log = tmp_path / "audit.jsonl"
    code = PROBE_PRELUDE + (
        "def conn():\n"
        "    c = socket.socket(socket.AF_UNIX)\n"
        f"    c.connect('{path}')\n"
        "t(conn)\n")
    try:
        r = run_nono("run", "--net-block", "--audit-log", log, "--", PY, "-c", code)
        assert r.stdout.split() == ["EACCES"], r.stderr
        events = [json.loads(line) for line in log.read_text().splitlines()]
        assert any(e["source"] == "supervisor" and e["decision"] == "deny" and e["family"] == "unix"
                   and e["target"] == str(path) and e["status"] == errno.EACCES for e in events), events
        for grant in (path, tmp_path):  # the socket itself, or its directory
            r = run_nono("run", "--net-block", "--allow-unix-socket", grant, "--", PY, "-c", code)
            assert r.stdout.split() == ["ok"], (grant, r.stderr)
    finally:
        srv.close()


def test_audit_log_supervisor_lines_are_json(nono, tmp_path):
    """The supervisor writes --audit-log itself (no CLI thread): one valid JSON object per line,
    one line per denied connect, appended after what the file held."""
    path = tmp_path / "s.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(8)
    log = tmp_path / "audit.jsonl"
    log.write_text('{"earlier": true}\n')
    code = PROBE_PRELUDE + (
        "for i in range(5):\n"
        f"    t(lambda: socket.socket(socket.AF_UNIX).connect('{path}'))\n")
    try:
        r = run_nono("run", "--net-block", "--audit-log", log, "--", PY, "-c", code)
    finally:
        srv.close()
    assert r.returncode == 0 and r.stdout.split() == ["EACCES"] * 5, (r.stdout, r.stderr)
    text = log.read_text()
    assert text.endswith("\n")
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"earlier": True}
    denials = [e for e in lines[1:] if e["source"] == "supervisor" and e["decision"] == "deny"
               and e["target"] == str(path) and e["status"] == errno.EACCES]
    assert len(denials) == 5, lines
    assert all(list(e) == ["timestamp_unix_ms", "source", "mode", "decision", "family", "target", "port",
                           "method", "path", "status", "reason", "bytes_up", "bytes_down"]
               for e in lines[1:]), lines


def test_audit_lines_that_cannot_be_written_are_reported(nono, tmp_path):
    """An --audit-log that takes no more (here a FIFO whose reader has stopped reading, full) must
    neither stall the supervisor, and with it the command and nono, nor lose lines silently: nono
    says how many supervisor events it could not write (review of issue 10, F1/F4)."""
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # holds the FIFO open, never reads
    filler = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:  # fill the pipe: bounded by its capacity (64 KiB)
            try:
                os.write(filler, b"x" * 4096)
            except BlockingIOError:
                break
        code = PROBE_PRELUDE + (
            "for i in range(3):\n"
            "    t(lambda: socket.socket(socket.AF_UNIX).connect('\\0nono-no-such-%d' % i))\n")
        r = run_nono("run", "--net-block", "--audit-log", fifo, "--", PY, "-c", code, timeout=60)
    finally:
        os.close(filler)
        os.close(reader)
    assert r.returncode == 0 and r.stdout.split() == ["EACCES"] * 3, (r.stdout, r.stderr)
    m = re.search(r"audit: (\d+) supervisor event\(s\) could not be written", r.stderr)
    assert m and int(m.group(1)) >= 3, r.stderr  # the 3 denials above, and any the runtime made


def test_allow_bind_under_proxy_only(nono):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = PROBE_PRELUDE + (
        "def b(host, port):\n"
        "    s = socket.socket(); s.bind((host, port)); s.listen(1)\n"
        f"t(lambda: b('127.0.0.1', {port}))\n"
        f"t(lambda: b('127.0.0.1', {port + 1 if port < 65535 else port - 1}))\n"
        f"t(lambda: b('0.0.0.0', {port}))\n")
    # --proxy-port alone: proxy-only towards a proxy (a bare listener: nono checks one is there);
    # only the bind grant matters.
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen(1)
        r = run_nono("run", "--proxy-port", proxy.getsockname()[1], "--allow-bind", port, "--", PY,
                     "-c", code)
    assert r.stdout.split() == ["ok", "EACCES", "EACCES"], r.stderr


def test_proxy_start_failure_is_122(nono):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        r = run_nono("run", "--allow-domain", "example.com", "--proxy-port", port, "--", "/bin/true")
        assert r.returncode == 122, r.stderr
        assert r.stderr.startswith("nono: starting the proxy") and r.stderr.count("\n") == 1
        r = run_nono("proxy", "--allow-domain", "example.com", "--listen", f"127.0.0.1:{port}")
        assert r.returncode == 122, r.stderr


def test_proxy_usage_errors(nono):
    for args in (["proxy"],
                 ["proxy", "--allow-domain", "example.com", "--listen", "nonsense"],
                 ["proxy", "--allow-domain", "example.com", "--listen", "::1:80"],
                 ["proxy", "--allow-domain", "example.com", "extra"],
                 ["proxy", "--allow-internal", "169.254.169.254:80"],
                 ["proxy", "--bogus"]):
        r = run_nono(*args)
        assert r.returncode == 125, (args, r.stderr)
        assert r.stderr.startswith("nono: "), (args, r.stderr)


@pytest.mark.skipif(not os.path.exists("/bin/bash"), reason="bash not installed")
def test_interactive_shell_inside_nono(nono):
    """A job-control shell inside the sandbox: prompt, commands, ^C of its foreground job, exit
    status back to the outer shell."""
    pid, fd, wait_for, buf = pty_bash("OUTER$ ")

    try:
        assert wait_for(b"OUTER$ ")
        os.write(fd, f"{nono} run --env 'PS1=INNER$ ' -- /bin/bash --norc --noprofile -i\n".encode())
        assert wait_for(b"INNER$ "), buf
        os.write(fd, b"echo in-$((40+2))\n")
        assert wait_for(b"in-42\r\nINNER$ "), buf
        buf.clear()
        os.write(fd, b"sleep 30\n")
        assert wait_fg_runs(fd, "sleep"), buf
        os.write(fd, b"\x03")  # interrupts the inner shell's job, not the shell, not nono
        assert wait_for(b"INNER$ ", 20), buf
        os.write(fd, b"exit 5\n")
        assert wait_for(b"OUTER$ "), buf
        os.write(fd, b"echo st=$?\n")
        assert wait_for(b"st=5\r\n"), buf
        os.write(fd, b"exit\n")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)


# ---- lifetime: nothing the command starts outlives it (design.md §2) ----

ESCAPER = str(ROOT / "tests" / "integration" / "helpers" / "escaper.py")


def survivor(path, wait=20.0):
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            pid, start = path.read_text().split()
            return int(pid), start
        except FileNotFoundError:
            time.sleep(0.02)
    raise AssertionError(f"{path} never written")


def survivor_gone(pid, start, wait=10.0):
    """No process with this pid and start time — not even a zombie."""
    end = time.monotonic() + wait
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[19] != start:
                    return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)


def test_timeout_kills_setsid_orphan_124(nono, tmp_path):
    pidfile = tmp_path / "pid"
    r = run_nono("run", "--read", "/proc", "--read-file", ESCAPER, "--allow", tmp_path,
                 "--timeout", START_TIMEOUT_S, "--", PY, ESCAPER, "setsid", str(pidfile), "wait")
    assert r.returncode == 124, r.stderr
    pid, start = survivor(pidfile)
    assert survivor_gone(pid, start, wait=0), "setsid orphan survived --timeout"


@pytest.mark.parametrize("mode", ["setsid", "plain"])
def test_sigkilled_nono_takes_the_tree_with_it(nono, tmp_path, mode):
    pidfile = tmp_path / "pid"
    p = subprocess.Popen([nono, "run", "--read", "/proc", "--read-file", ESCAPER, "--allow",
                          str(tmp_path), "--", PY, ESCAPER, mode, str(pidfile), "wait"],
                         stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        pid, start = survivor(pidfile)
        p.kill()
        p.wait(timeout=10)
        assert survivor_gone(pid, start), f"{mode} orphan survived nono's SIGKILL"
    finally:
        if p.poll() is None:
            p.kill()


def test_closed_stdio_never_hands_nono_fds_to_the_command(nono, tmp_path):
    """Started with fds 0 and 2 closed, nono must not let its own files (the audit log here) take
    those numbers and reach the command as stdio: the command sees /dev/null there."""
    audit = tmp_path / "audit.jsonl"
    script = "for i in 0 1 2; do echo $i=$(readlink /proc/self/fd/$i); done"
    r = subprocess.run(f"exec {nono} run --read /proc --audit-log {audit} --net-block -- "
                       f"/bin/sh -c '{script}' 0<&- 2>&-",
                       shell=True, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
    lines = dict(l.split("=", 1) for l in r.stdout.split())
    assert lines["0"] == "/dev/null" and lines["2"] == "/dev/null", r.stdout
    assert str(audit) not in r.stdout


def test_route_credential_file_readable_by_the_command_is_refused(tmp_path):
    """Review of 2026-12-04: a file:// secret inside a read grant would be no phantom at all."""
    secret = tmp_path / "secret"
    secret.write_text("sk-test\n")
    r = run_nono("run", "-r", str(tmp_path), "--route", "openai=https://api.example.com",
                 "--credential", f"openai=file://{secret}", "--", "true")
    assert r.returncode == 125 and "could read this file" in r.stderr, r.stderr
    assert "sk-test" not in r.stderr


def test_route_credential_file_with_a_hard_link_is_refused(tmp_path):
    """A second name of the secret inside a grant reads the same bytes: a linked file is refused;
    with the link gone the same configuration runs."""
    outside, granted = tmp_path / "outside", tmp_path / "granted"
    outside.mkdir()
    granted.mkdir()
    secret = outside / "secret"
    secret.write_text("sk-test\n")
    os.link(secret, granted / "copy")
    args = ("run", "-r", str(granted), "--route", "openai=https://api.example.com",
            "--credential", f"openai=file://{secret}", "--", "true")
    r = run_nono(*args)
    assert r.returncode == 125 and "2 hard links" in r.stderr, r.stderr
    assert "sk-test" not in r.stderr
    (granted / "copy").unlink()
    r = run_nono(*args)
    assert r.returncode == 0, r.stderr


def test_external_proxy_env_credentials_never_reach_the_command():
    """Review of 2026-12-04: --external-proxy env://VAR leaves nono's environment before the
    command's is built, so --inherit-env cannot pass the proxy's password on."""
    env = dict(os.environ, EXTP="http://u:PROXYPASS@127.0.0.1:3128")
    r = run_nono("run", "--inherit-env", "--external-proxy", "env://EXTP", "--allow-domain",
                 "example.org", "--", "/usr/bin/env", env=env)
    assert r.returncode == 0, r.stderr
    assert "PROXYPASS" not in r.stdout and "EXTP=" not in r.stdout


def test_external_proxy_env_name_must_be_a_variable_name():
    """env://A=B would match the environ entry of A (value "B=…") and could not be unset: refused,
    and the value never shown."""
    env = dict(os.environ, EXTA="B=http://u:PROXYPASS@127.0.0.1:3128")
    for name in ("EXTA=B", "", "1X", "A-B"):
        r = run_nono("run", "--external-proxy", f"env://{name}", "--allow-domain", "example.org",
                     "--", "true", env=env)
        assert r.returncode == 125 and "not a variable name" in r.stderr, (name, r.stderr)
        assert "PROXYPASS" not in r.stderr


def test_route_env_secret_never_inherited():
    """Review of 2026-12-04: the route's env://VAR is withheld from --inherit-env, and --env VAR
    is refused, whatever the placeholder variable is called."""
    env = dict(os.environ, lower_key="sk-real-secret")
    r = run_nono("run", "--inherit-env", "--route", "openai=https://api.example.com",
                 "--credential", "openai=env://lower_key", "--allow-domain", "example.org", "--",
                 "/usr/bin/env", env=env)
    assert r.returncode == 0, r.stderr
    assert "sk-real-secret" not in r.stdout and "sk-real-secret" not in r.stderr
    r = run_nono("run", "--env", "lower_key", "--route", "openai=https://api.example.com",
                 "--credential", "openai=env://lower_key", "--", "/usr/bin/env", env=env)
    assert r.returncode == 125 and "sk-real-secret" not in r.stdout + r.stderr, r.stderr
