"""The escape battery: the mount API. A root command keeps its capabilities; Landlock denies mount,
umount, remount, move_mount and pivot_root (5.13) but has no hook for open_tree or mount_setattr.
A non-recursive open_tree clone of a write grant carries none of the deny covers below it
(mounts.c), so it reads a denied file; mount_setattr could clear a read-only bind's flag. The
filter refuses the whole mount API (EPERM) unless user namespaces are allowed (--allow-userns:
the escape is then shown to work, which is why that option is documented as giving it up).
A root command in a private mount namespace (deny covers, read-only binds) also loses
CAP_DAC_READ_SEARCH: with it, open_by_handle_at through a bind opened any file of the bind's
filesystem (Landlock judges the disconnected path by the bind's root).
"""
import json
import shutil
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import NONO  # noqa: E402

PROBE = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
sysc = libc.syscall
sysc.restype = ctypes.c_long
top = sys.argv[1]
out = {}
def t(name, f):
    ctypes.set_errno(0)
    r = f()
    out[name] = "ok" if r >= 0 else os.strerror(ctypes.get_errno())
    return r
# x86_64: mount 165, umount2 166, pivot_root 155, open_tree 428, move_mount 429, fsopen 430,
# fspick 433, mount_setattr 442, chroot 161
fd = t("open_tree", lambda: sysc(428, -100, os.path.join(top, "w").encode(), 1 | 0x80000))
if fd >= 0:
    try:
        g = os.open("deny/secret", os.O_RDONLY, dir_fd=fd)
        out["read_through_clone"] = os.read(g, 100).decode()
    except OSError as e:
        out["read_through_clone"] = e.strerror
attr = (ctypes.c_uint64 * 4)(0, 1, 0, 0)
t("mount_setattr", lambda: sysc(442, -100, os.path.join(top, "w").encode(), 0x8000, ctypes.byref(attr), 32))
t("mount", lambda: sysc(165, None, os.path.join(top, "w").encode(), None, 0x20 | 0x1000, None))
t("umount2", lambda: sysc(166, os.path.join(top, "w", "deny").encode(), 2))
t("move_mount", lambda: sysc(429, -100, b"/", -100, b"/tmp", 0))
t("fsopen", lambda: sysc(430, b"tmpfs", 0))
t("fspick", lambda: sysc(433, -100, b"/", 0))
t("pivot_root", lambda: sysc(155, b"/", b"/"))
t("chroot", lambda: sysc(161, os.path.join(top, "w").encode()))  # last: it moves our root
print(json.dumps(out))
"""
MOUNT_API = ("open_tree", "mount_setattr", "mount", "umount2", "move_mount", "fsopen", "fspick",
             "pivot_root", "chroot")


@pytest.fixture
def top(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the mount API needs CAP_SYS_ADMIN (a root command)")
    (tmp_path / "w" / "deny").mkdir(parents=True)
    (tmp_path / "w" / "deny" / "secret").write_text("TOPSECRET")
    return tmp_path


def run(top, *extra):
    r = subprocess.run([str(NONO), "run", "-q", "-a", str(top / "w"), "--deny",
                        str(top / "w" / "deny"), *extra, "--", sys.executable, "-c", PROBE,
                        str(top)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_clone_escapes_the_deny_cover_with_userns_allowed(top):
    out = run(top, "--allow-userns")
    assert out["open_tree"] == "ok" and out["read_through_clone"] == "TOPSECRET", out


@pytest.mark.parametrize("net", [[], ["--net-block"]], ids=["allowed", "blocked"])
def test_mount_api_refused(top, net):
    out = run(top, *net)
    assert {k: out[k] for k in MOUNT_API} == {k: "Operation not permitted" for k in MOUNT_API}, out
    assert "read_through_clone" not in out
    assert (top / "w" / "deny" / "secret").read_text() == "TOPSECRET"


HANDLE_PROBE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class FH(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]
fh, mid = FH(handle_bytes=128), ctypes.c_int()
if libc.name_to_handle_at(-100, sys.argv[1].encode(), ctypes.byref(fh), ctypes.byref(mid), 0) < 0:
    print("NOHANDLE", os.strerror(ctypes.get_errno()))
    sys.exit()
m = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECTORY)
fd = libc.open_by_handle_at(m, ctypes.byref(fh), os.O_RDONLY)
print("READ " + os.read(fd, 100).decode() if fd >= 0 else "REFUSED " + os.strerror(ctypes.get_errno()))
"""


def test_open_by_handle_through_a_read_only_bind_refused(top):
    (top / "w" / "ro").mkdir()
    outside = top / "outside"
    outside.write_text("OUTSIDE")
    argv = [sys.executable, "-c", HANDLE_PROBE, str(outside), str(top / "w" / "ro")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if not r.stdout.startswith("READ"):
        pytest.skip("no file handles here: " + r.stdout + r.stderr)
    assert r.stdout.strip() == "READ OUTSIDE"
    r = subprocess.run([str(NONO), "run", "-q", "-a", str(top / "w"), "-r", str(top / "w" / "ro"),
                        "--", *argv], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "REFUSED Operation not permitted", r.stdout


def test_open_by_handle_through_a_host_bind_mount_refused(top):
    """Review of 2026-12-05, B2: with no mount op of nono's own, a bind mount the host has under a
    grant gave a root command the same reach (it kept CAP_DAC_READ_SEARCH). Run in a private mount
    namespace that holds such a bind; shown to read the file unsandboxed first."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) missing")
    other = top / "other"
    (other / "inside").mkdir(parents=True)
    (other / "secret").write_text("OUTSIDE")
    view = top / "w" / "view"
    view.mkdir()
    probe = top / "probe.py"
    probe.write_text(HANDLE_PROBE)
    script = (f'mount --bind "{other / "inside"}" "{view}" && '
              f'"{sys.executable}" "{probe}" "{other / "secret"}" "{view}" && '
              f'"{NONO}" run -q -r "{view}" --read-file "{probe}" -- "{sys.executable}" "{probe}" '
              f'"{other / "secret"}" "{view}"')
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    if not lines or not lines[0].startswith("READ"):
        pytest.skip("no file handles here: " + r.stdout + r.stderr)
    assert lines == ["READ OUTSIDE", "REFUSED Operation not permitted"], r.stdout
