"""nono run's read-only view (issue 11, metadata writes): everything outside the write grants is a
read-only mount in the command's private mount namespace, the write grants are writable on top.

Checked as root and as an unprivileged user (a user namespace), at the native Landlock ABI and at
ABI 3, each probe first shown to succeed unsandboxed in the same harness:
- metadata writes outside the write grants fail with EROFS and change nothing (checked from
  outside); inside a directory grant, a single-file grant and a relative path from a working
  directory inside a grant they work;
- special files stay usable on the read-only mounts: /dev/null, a pipe, a unix socket outside the
  write grants;
- the mount API (mount, umount2, mount_setattr, open_tree, move_mount, fsopen, fspick, pivot_root)
  is refused with EPERM, so a command that keeps capabilities cannot clear the read-only flag;
- without a namespace (NONO_META_TRAP=1, the fallback) the same calls are refused by the supervisor.
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import NONO  # noqa: E402

PY = "/usr/bin/python3"

PROBE = r'''
import ctypes, errno, json, os, socket, sys
top = sys.argv[1]
out = {}
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        r = f()
        out[name] = "ok" if r is None or r is True else str(r)
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
def sysc(nr, *args):
    r = libc.syscall(nr, *args)
    if r < 0:
        raise OSError(ctypes.get_errno(), "syscall %d" % nr)
    if r > 2:
        os.close(r)
def chmod(p):
    os.chmod(p, 0o604)
def utime(p):
    os.utime(p, (5, 5))
def setx(p):
    os.setxattr(p, "user.nono_rofs", b"x")
def devnull():
    with open("/dev/null", "w") as f:
        f.write("x")
def pipe():
    r, w = os.pipe()
    os.write(w, b"x")
    return os.read(r, 1) == b"x"
def unix():
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(top, "ro", "sock"))
    s.sendall(b"x")
    s.close()
def create():
    open(os.path.join(top, "ro", "new"), "w").close()
t("chmod_ro", lambda: chmod(os.path.join(top, "ro", "victim")))
t("utime_ro", lambda: utime(os.path.join(top, "ro", "victim")))
t("setxattr_ro", lambda: setx(os.path.join(top, "ro", "victim")))
t("fchmod_ro", lambda: os.fchmod(os.open(os.path.join(top, "ro", "victim"), os.O_RDONLY), 0o604))
t("create_ro", create)
t("chmod_rw", lambda: chmod(os.path.join(top, "rw", "f")))
t("utime_rw", lambda: utime(os.path.join(top, "rw", "f")))
t("chmod_file_grant", lambda: chmod(os.path.join(top, "file")))
t("chmod_relative", lambda: chmod("f"))
t("devnull", devnull)
t("pipe", pipe)
t("unix", unix)
# x86_64: mount 165, umount2 166, pivot_root 155, open_tree 428, move_mount 429, fsopen 430,
# fspick 433, mount_setattr 442
AT_RECURSIVE, AT_EMPTY_PATH = 0x8000, 0x1000
attr = (ctypes.c_uint64 * 4)(0, 1, 0, 0)  # attr_set 0, attr_clr MOUNT_ATTR_RDONLY
t("mount_setattr", lambda: sysc(442, -100, b"/", AT_RECURSIVE, ctypes.byref(attr), 32))
t("mount", lambda: sysc(165, None, b"/", None, 0x20 | 0x1000, None))  # MS_REMOUNT|MS_BIND
t("umount2", lambda: sysc(166, os.path.join(top, "rw").encode(), 2))  # MNT_DETACH
t("open_tree", lambda: sysc(428, -100, b"/", 1))  # OPEN_TREE_CLONE
t("move_mount", lambda: sysc(429, -100, b"/", -100, b"/tmp", 0))
t("fsopen", lambda: sysc(430, b"tmpfs", 0))
t("fspick", lambda: sysc(433, -100, b"/", 0))
t("pivot_root", lambda: sysc(155, b"/", b"/"))
print(json.dumps(out))
'''

META = ("chmod_ro", "utime_ro", "setxattr_ro", "fchmod_ro")
MOUNT_API = ("mount_setattr", "mount", "umount2", "open_tree", "move_mount", "fsopen", "fspick",
             "pivot_root")


def can_setpriv():
    return shutil.which("setpriv") is not None


USERS = ["root", "nobody"] if os.geteuid() == 0 and can_setpriv() else ["self"]


@pytest.fixture
def top():
    """ro/ (read grant: a victim file with an xattr, a listening unix socket), rw/ (write grant),
    file (single-file write grant)."""
    base, xattrs = None, True
    for b in ("/var/tmp", None):  # tmpfs has user xattrs only since 6.6 (the 6.1 guest: none)
        try:
            base = tempfile.mkdtemp(prefix="nono-rofs-", dir=b)
            os.setxattr(base, "user.probe", b"1")
            break
        except OSError:
            if base:
                shutil.rmtree(base)
            base = None
    if not base:
        base, xattrs = tempfile.mkdtemp(prefix="nono-rofs-"), False
    h = pathlib.Path(base)
    (h / "ro").mkdir()
    (h / "rw").mkdir()
    (h / "ro" / "victim").write_text("secret\n")
    (h / "rw" / "f").write_text("mine\n")
    (h / "file").write_text("one file\n")
    os.chmod(h / "ro" / "victim", 0o640)
    os.utime(h / "ro" / "victim", (1_000_000, 1_000_000))
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(h / "ro" / "sock"))
    srv.listen(8)
    os.chmod(h, 0o755)
    yield h, xattrs
    srv.close()
    shutil.rmtree(h, ignore_errors=True)


def snapshot(p):
    st = os.lstat(p)
    try:
        x = sorted(os.listxattr(p))
    except OSError:
        x = None
    return (st.st_mode, st.st_uid, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns, x)


def as_user(user, cmd, h):
    if user == "nobody":
        subprocess.run(["chown", "-R", "65534:65534", str(h)], check=True)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return cmd


def run(cmd, abi=None, trap=False, cwd=None):
    env = {k: v for k, v in os.environ.items() if k not in ("NONO_MAX_LANDLOCK_ABI",
                                                           "NONO_META_TRAP")}
    if abi:
        env["NONO_MAX_LANDLOCK_ABI"] = abi
    if trap:
        env["NONO_META_TRAP"] = "1"
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=cwd)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def nono(h, *extra):
    return [str(NONO), "run", "-q", "--read", str(h / "ro"), "--allow", str(h / "rw"),
            "--allow-file", str(h / "file"), *extra, "--", PY, "-c", PROBE, str(h)]


@pytest.mark.parametrize("user", USERS)
def test_probes_work_unsandboxed(top, user):
    h, xattrs = top
    got = run(as_user(user, [PY, "-c", PROBE, str(h)], h), cwd=h / "rw")
    # (without user xattrs on the scratch filesystem setxattr fails unsandboxed too; sandboxed the
    # read-only mount answers before the filesystem, so the checks below still mean something)
    for k in (*(m for m in META if xattrs or m != "setxattr_ro"), "create_ro", "chmod_rw", "utime_rw", "chmod_file_grant", "chmod_relative",
              "devnull", "pipe", "unix"):
        assert got[k] == "ok", (k, got)
    if user != "nobody":  # root really can change the mount tree (here: a throwaway clone)
        assert got["open_tree"] == "ok" and got["fsopen"] == "ok", got


@pytest.mark.parametrize("abi", [None, "3"], ids=["abi-native", "abi3"])
@pytest.mark.parametrize("user", USERS)
def test_read_only_view(top, user, abi):
    h, _ = top
    cmd = as_user(user, nono(h, "--workdir", str(h / "rw")), h)
    before = snapshot(h / "ro" / "victim")
    got = run(cmd, abi)
    for k in (*META, "create_ro"):
        assert got[k] == "EROFS", (k, got)
    assert snapshot(h / "ro" / "victim") == before, "the ungranted file changed"
    assert not (h / "ro" / "new").exists()
    for k in ("chmod_rw", "utime_rw", "chmod_file_grant", "chmod_relative"):
        assert got[k] == "ok", (k, got)
    assert (h / "rw" / "f").stat().st_mode & 0o777 == 0o604
    assert (h / "file").stat().st_mode & 0o777 == 0o604
    for k in ("devnull", "pipe", "unix"):
        assert got[k] == "ok", (k, got)
    for k in MOUNT_API:
        assert got[k] == "EPERM", (k, got)


@pytest.mark.parametrize("user", USERS)
def test_trap_fallback_refuses_the_same(top, user):
    h, _ = top
    cmd = as_user(user, nono(h, "--workdir", str(h / "rw")), h)
    before = snapshot(h / "ro" / "victim")
    got = run(cmd, trap=True)
    for k in META:
        assert got[k] == "EACCES", (k, got)
    assert got["create_ro"] == "EACCES", got  # Landlock's answer: no read-only mount in the way
    assert snapshot(h / "ro" / "victim") == before, "the ungranted file changed"
    for k in ("chmod_rw", "utime_rw", "chmod_file_grant", "chmod_relative", "devnull", "pipe",
              "unix"):
        assert got[k] == "ok", (k, got)
    for k in MOUNT_API:
        assert got[k] == "EPERM", (k, got)


def test_dry_run_names_the_mechanism(top):
    h, _ = top
    cmd = [str(NONO), "run", "--dry-run", "--json", "--allow", str(h / "rw"), "--", "true"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["enforcement"]["meta_readonly_mounts"] is True
    env = dict(os.environ, NONO_META_TRAP="1")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert json.loads(r.stdout)["enforcement"]["meta_readonly_mounts"] is False


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
@pytest.mark.parametrize("mech", ["ro-view", "trap"])
def test_npm_install_inside_write_grant(tmp_path, mech):
    """npm copies a local package in and marks its bin executable (chmod) inside the write grant;
    nothing reaches the network (--offline, --net-block)."""
    dep, proj, home = tmp_path / "dep", tmp_path / "proj", tmp_path / "home"
    for d in (dep, proj, home):
        d.mkdir()
    (dep / "package.json").write_text('{"name":"dep","version":"1.0.0","bin":{"depbin":"bin.js"}}')
    (dep / "bin.js").write_text('#!/usr/bin/env node\nconsole.log("dep-ok")\n')
    os.chmod(dep / "bin.js", 0o644)  # npm makes a bin executable itself
    (proj / "package.json").write_text(
        '{"name":"proj","version":"1.0.0","dependencies":{"dep":"file:../dep"}}')
    cmd = [str(NONO), "run", "-q", "--net-block", "--allow", str(proj), "--allow", str(home),
           "--read", str(dep), "--env", f"HOME={home}", "--workdir", str(proj), "--", "/bin/sh",
           "-c", "npm install --offline --no-audit --no-fund --install-links && "
                 "./node_modules/.bin/depbin"]
    env = dict(os.environ, NONO_META_TRAP="1") if mech == "trap" else {
        k: v for k, v in os.environ.items() if k != "NONO_META_TRAP"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0 and "dep-ok" in r.stdout, (r.stdout, r.stderr)
    assert (proj / "node_modules" / "dep" / "bin.js").stat().st_mode & 0o111
    assert dep.joinpath("bin.js").stat().st_mode & 0o777 == 0o644  # the source is untouched
