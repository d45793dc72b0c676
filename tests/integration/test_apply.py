"""nono_apply on real programs: the C helper (tests/unit/test_apply in "exec" mode) applies a policy
to itself with nono_apply and then execs a real command, which inherits the sandbox."""
import ctypes
import json
import os
import re
import socket
import subprocess

import pytest

from conftest import BUILD

HELPER = BUILD / "tests" / "unit" / "test_apply"
SYSTEM = ["--ro", "/usr", "--ro", "/lib", "--ro", "/lib64", "--ro", "/etc"]


def lib_dirs():
    out = []
    for d in ("/usr", "/lib", "/lib64", "/etc"):
        if os.path.exists(d):
            out += ["--ro", d]
    return out


def run(policy, argv, env_extra=None, timeout=60):
    if not HELPER.exists():
        pytest.fail(f"{HELPER} is missing: build first")
    env = {"PATH": "/usr/bin:/bin"}
    env.update(env_extra or {})
    return subprocess.run([str(HELPER), "exec", *lib_dirs(), *policy, "--report", "--", *argv],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture
def tree(tmp_path):
    for d in ("ro", "rw", "files", "outside"):
        (tmp_path / d).mkdir()
    (tmp_path / "ro" / "r.txt").write_text("readable\n")
    (tmp_path / "rw" / "w.txt").write_text("writable\n")
    (tmp_path / "files" / "a").write_text("file a\n")
    (tmp_path / "files" / "b").write_text("file b\n")
    (tmp_path / "outside" / "secret").write_text("secret\n")
    return tmp_path


def policy(t):
    return ["--ro", str(t / "ro"), "--rw", str(t / "rw"), "--file-ro", str(t / "files" / "a")]


def test_read_inside_and_outside(tree):
    r = run(policy(tree), ["cat", str(tree / "ro" / "r.txt")])
    assert r.returncode == 0, r.stderr
    assert r.stdout == "readable\n"
    r = run(policy(tree), ["cat", str(tree / "outside" / "secret")])
    assert r.returncode == 1
    assert "Permission denied" in r.stderr
    assert r.stdout == ""


def test_write_only_inside_rw_grant(tree):
    r = run(policy(tree), ["sh", "-c", f"echo new > {tree}/rw/new.txt && echo ok"])
    assert r.returncode == 0, r.stderr
    assert (tree / "rw" / "new.txt").read_text() == "new\n"
    r = run(policy(tree), ["sh", "-c", f"echo new > {tree}/ro/new.txt"])
    assert r.returncode != 0
    assert "Permission denied" in r.stderr
    assert not (tree / "ro" / "new.txt").exists()
    r = run(policy(tree), ["rm", "-f", str(tree / "ro" / "r.txt")])
    assert r.returncode != 0
    assert (tree / "ro" / "r.txt").exists()


def test_single_file_grant_sibling_denied(tree):
    r = run(policy(tree), ["cat", str(tree / "files" / "a")])
    assert r.returncode == 0 and r.stdout == "file a\n", r.stderr
    r = run(policy(tree), ["cat", str(tree / "files" / "b")])
    assert r.returncode == 1 and "Permission denied" in r.stderr
    r = run(policy(tree), ["ls", str(tree / "files")])
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_grandchildren_inherit_the_sandbox(tree):
    r = run(policy(tree), ["sh", "-c", f"sh -c 'cat {tree}/outside/secret'; echo rc=$?"])
    assert "rc=1" in r.stdout
    assert "secret" not in r.stdout


def report_of(r):
    """The structured report the helper prints (nono_report_json on one line)."""
    line = next(l for l in r.stderr.splitlines() if l.startswith("report: "))
    return json.loads(line[len("report: "):])


def test_report_native(tree):
    r = run(policy(tree), ["true"])
    assert r.returncode == 0, r.stderr
    rep = report_of(r)
    assert rep["landlock_abi"] == min(kernel_abi(), 7) >= 1
    assert rep["no_new_privs"] is True and rep["seccomp"] is True
    assert rep["landlock_cap"] is None and rep["downgrades"] == []
    assert rep["grants"] == 3 + len(lib_dirs()) // 2


def kernel_abi():
    """The Landlock ABI this kernel offers (landlock_create_ruleset VERSION), 0 without Landlock."""
    libc = ctypes.CDLL(None, use_errno=True)
    # 444 = landlock_create_ruleset on every architecture (the unified syscall table); 1 = VERSION
    r = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return r if r > 0 else 0


@pytest.mark.parametrize("cap", ["7", "3", "2", "1"])
def test_capped_abi_env(tree, cap):
    """The effective ABI is min(cap, kernel's); the report names the cap only where it lowered it,
    and the truncation behaviour follows the effective ABI (and the report)."""
    env = {"NONO_MAX_LANDLOCK_ABI": cap}
    kabi, c = kernel_abi(), int(cap)
    abi = min(c, kabi)
    r = run(policy(tree), ["cat", str(tree / "outside" / "secret")], env)
    assert r.returncode == 1 and "Permission denied" in r.stderr
    rep = report_of(r)
    assert rep["landlock_abi"] == abi and rep["landlock_abi_kernel"] == kabi, rep
    assert rep["landlock_cap"] == (f"NONO_MAX_LANDLOCK_ABI={c}" if kabi > c else None), rep
    unenforced = rep["fs_unenforced"]
    assert ("ioctl_dev" in unenforced) == (abi < 5), rep
    # below ABI 3 the seccomp filter closes truncation (seccomp.c, review F2): enforced at every ABI
    assert "truncate" not in unenforced, rep
    assert rep["truncate_by_filter"] == (abi < 3), rep
    # truncate(2) by path (os.truncate): Landlock refuses it on a read-only grant from ABI 3; below,
    # the seccomp filter refuses truncate(2) everywhere, read-write grants included.
    # (coreutils truncate opens the file for writing, so it is not used here.)
    for rel, ok in (("ro/r.txt", False), ("rw/w.txt", abi >= 3)):
        before = (tree / rel).read_text()
        r = run(policy(tree), ["python3", "-c", f"import os; os.truncate('{tree}/{rel}', 0)"], env)
        assert (r.returncode == 0) == ok, (rel, r.stderr)
        if not ok:
            assert "PermissionError" in r.stderr, r.stderr
            assert (tree / rel).read_text() == before
        (tree / rel).write_text(before)
    # open(O_RDONLY|O_TRUNC) on a read-only grant: refused exactly when the report says truncation
    # is enforced (below ABI 3 Landlock checks it as a plain read: review F2).
    r = run(policy(tree), ["python3", "-c",
                           f"import os; os.close(os.open('{tree}/ro/r.txt', os.O_RDONLY | os.O_TRUNC))"],
            env)
    if "truncate" in unenforced:
        assert r.returncode == 0, r.stderr
        assert (tree / "ro" / "r.txt").read_text() == ""
        (tree / "ro" / "r.txt").write_text("readable\n")
    else:
        assert r.returncode != 0 and "PermissionError" in r.stderr, r.stderr
        assert (tree / "ro" / "r.txt").read_text() == "readable\n"
    # a read-write grant: ftruncate on a write fd works at every ABI
    r = run(policy(tree), ["python3", "-c",
                           f"import os; fd = os.open('{tree}/rw/w.txt', os.O_WRONLY); "
                           "os.ftruncate(fd, 0); print(os.fstat(fd).st_size)"], env)
    assert r.returncode == 0 and r.stdout == "0\n", r.stderr
    assert (tree / "rw" / "w.txt").read_text() == ""


def test_invalid_cap_refuses(tree):
    r = run(policy(tree), ["true"], {"NONO_MAX_LANDLOCK_ABI": "three"})
    assert r.returncode == 120
    assert "NONO_MAX_LANDLOCK_ABI" in r.stderr


def test_blocked_network_tcp_denied(tree):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    probe = ("import socket,sys\n"
             "try:\n"
             "  s=socket.socket()\n"
             f"  s.connect(('127.0.0.1',{port})); print('CONNECTED')\n"
             "except OSError as e: print('ERRNO', e.errno)\n")
    try:
        r = run(policy(tree), ["python3", "-c", probe])
        assert r.returncode == 0 and "CONNECTED" in r.stdout, r.stderr
        r = run(["--net", "blocked", *policy(tree)], ["python3", "-c", probe])
        assert "CONNECTED" not in r.stdout, r.stdout + r.stderr
        assert re.search(r"ERRNO (13|1)\b", r.stdout), r.stdout + r.stderr
        assert "network: requested blocked, enforced blocked" in r.stderr
    finally:
        srv.close()


def test_proxy_only_after_apply(tree):
    """In-process apply with proxy-only: a helper process supervises; the exec'd program and its
    children reach the proxy port on loopback and nothing else."""
    proxy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    proxy.bind(("127.0.0.1", 0))
    proxy.listen(16)
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.1", 0))
    other.listen(16)
    pp, op = proxy.getsockname()[1], other.getsockname()[1]
    probe = ("import socket\n"
             "def tcp(p):\n"
             "  try:\n"
             "    s=socket.socket(); s.connect(('127.0.0.1',p)); s.close(); return 'ok'\n"
             "  except OSError as e: return 'errno%d' % e.errno\n"
             "def udp():\n"
             "  try:\n"
             "    s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); return 'ok'\n"
             "  except OSError as e: return 'errno%d' % e.errno\n"
             f"print('proxy', tcp({pp}), 'other', tcp({op}), 'udp', udp())\n")
    try:
        r = run(["--net", f"proxy:{pp}", *policy(tree)], ["sh", "-c", f"python3 -c \"{probe}\""])
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["proxy", "ok", "other", "errno13", "udp", "errno13"], \
            r.stdout + r.stderr
        assert "network: requested proxy-only" in r.stderr and "enforced proxy-only" in r.stderr
        assert "supervisor" in r.stderr
    finally:
        proxy.close()
        other.close()
