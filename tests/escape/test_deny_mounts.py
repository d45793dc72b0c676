"""Deny inside allow, enforced: a denied ~/.ssh inside an allowed ~ (nono run --allow HOME --deny
HOME/.ssh) is unreadable, unwritable, unlistable and cannot be renamed, moved, unlinked, linked,
reached through a symlink or a file handle, or unmounted, at the native Landlock ABI and at
NONO_MAX_LANDLOCK_ABI=3, as root and as an unprivileged user (a user namespace). Every probe is
first shown to succeed unsandboxed in the same harness."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import NONO  # noqa: E402

PY = "/usr/bin/python3"

# Each probe prints one JSON object: {name: "ok" | errno name}.
PROBE = r'''
import ctypes, errno, json, os, sys
home, handle_hex = sys.argv[1], sys.argv[2]
ssh = os.path.join(home, ".ssh")
out = {}
def t(name, f):
    try:
        r = f()
        out[name] = r if r == "n/a" else "ok" if r is None or r else "empty"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
def read_key():
    with open(os.path.join(ssh, "id_ed25519")) as f:
        return "PRIVATE" in f.read()
def write_key():
    with open(os.path.join(ssh, "id_ed25519"), "a") as f:
        f.write("x")
def create():
    with open(os.path.join(ssh, "planted"), "w") as f:
        f.write("x")
def listing():
    return "id_ed25519" in os.listdir(ssh)
def via_symlink():
    link = os.path.join(home, "work", "lnk")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.join(ssh, "id_ed25519"), link)
    with open(link) as f:
        return "PRIVATE" in f.read()
def by_handle():
    if not handle_hex:
        return "n/a"
    libc = ctypes.CDLL(None, use_errno=True)
    raw = bytes.fromhex(handle_hex)
    buf = ctypes.create_string_buffer(raw, len(raw))
    mfd = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.open_by_handle_at(mfd, buf, os.O_RDONLY)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open_by_handle_at")
    return b"PRIVATE" in os.read(fd, 100)
def umount():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(ssh.encode(), 2) != 0:
        raise OSError(ctypes.get_errno(), "umount2")
t("read", read_key)
t("write", write_key)
t("create", create)
t("list", listing)
t("hardlink", lambda: os.link(os.path.join(ssh, "id_ed25519"), os.path.join(home, "work", "hl")))
t("symlink", via_symlink)
t("chmod", lambda: os.chmod(ssh, 0o755))
t("handle", by_handle)
t("umount", umount)
t("work", lambda: open(os.path.join(home, "work", "ok"), "w").close())
t("unlink", lambda: os.unlink(os.path.join(ssh, "id_ed25519")))
t("rename", lambda: os.rename(ssh, os.path.join(home, "stolen")))
print(json.dumps(out))
'''

DENIED = {"read", "write", "create", "list", "rename", "unlink", "hardlink", "symlink", "chmod",
          "handle", "umount"}


def can_setpriv():
    return shutil.which("setpriv") is not None


USERS = ["root", "nobody"] if os.geteuid() == 0 and can_setpriv() else ["self"]


@pytest.fixture
def home():
    h = pathlib.Path(tempfile.mkdtemp(prefix="nono-deny-"))
    (h / ".ssh").mkdir()
    (h / ".ssh" / "id_ed25519").write_text("PRIVATE KEY")
    (h / "work").mkdir()
    os.chmod(h, 0o755)
    os.chmod(h / ".ssh", 0o700)
    yield h
    shutil.rmtree(h, ignore_errors=True)


def handle_of(path):
    """name_to_handle_at, computed unsandboxed: the probe tries to open the key by it."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    size = 128
    buf = ctypes.create_string_buffer(8 + size)
    ctypes.c_uint.from_buffer(buf, 0).value = size
    mnt = ctypes.c_int()
    if libc.name_to_handle_at(-100, str(path).encode(), buf, ctypes.byref(mnt), 0) != 0:
        return ""  # no file handles on this filesystem: the probe reports "n/a"
    n = ctypes.c_uint.from_buffer(buf, 0).value
    return buf.raw[:8 + n].hex()


def as_user(user, cmd, home):
    if user == "nobody":
        subprocess.run(["chown", "-R", "65534:65534", str(home)], check=True)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    return cmd


def run_probe(cmd, home, abi):
    env = {k: v for k, v in os.environ.items() if k != "NONO_MAX_LANDLOCK_ABI"}
    if abi:
        env["NONO_MAX_LANDLOCK_ABI"] = abi
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("user", USERS)
def test_probes_escape_unsandboxed(home, user):
    handle = handle_of(home / ".ssh" / "id_ed25519")
    got = run_probe(as_user(user, [PY, "-c", PROBE, str(home), handle], home), home, None)
    # Everything succeeds without nono, except what needs privileges the user lacks.
    expect_fail = {"umount", "handle"}
    assert {k for k, v in got.items() if v != "ok"} <= expect_fail, got
    if user != "nobody" and handle:
        assert got["handle"] == "ok", got  # root can open a file by its handle


@pytest.mark.parametrize("abi", [None, "3"], ids=["abi-native", "abi3"])
@pytest.mark.parametrize("user", USERS)
def test_denied_ssh_inside_allowed_home(home, user, abi):
    handle = handle_of(home / ".ssh" / "id_ed25519")
    cmd = [str(NONO), "run", "--allow", str(home), "--deny", str(home / ".ssh"), "--",
           PY, "-c", PROBE, str(home), handle]
    got = run_probe(as_user(user, cmd, home), home, abi)
    assert got["work"] == "ok", got  # the rest of the home stays writable
    for k in DENIED:
        assert got[k] != "ok", (k, got)
    assert got["read"] == "EACCES" and got["list"] == "EACCES", got
    assert got["create"] in ("EACCES", "EROFS"), got
    assert got["rename"] == "EBUSY", got
    assert got["umount"] in ("EPERM", "EINVAL"), got
    # Nothing reached the real directory.
    assert (home / ".ssh" / "id_ed25519").read_text() == "PRIVATE KEY"
    assert sorted(os.listdir(home / ".ssh")) == ["id_ed25519"]  # nothing planted, nothing removed
    assert not (home / "stolen").exists()


@pytest.mark.parametrize("user", USERS)
def test_denied_file_inside_allowed_home(home, user):
    secret = home / "work" / "token"
    secret.write_text("TOKEN")
    script = (f"import os\n"
              f"for f in (lambda: open({str(secret)!r}).read(), lambda: open({str(secret)!r}, 'w'),"
              f" lambda: os.unlink({str(secret)!r}), lambda: os.rename({str(secret)!r}, 'x')):\n"
              f"    try:\n        f(); print('ok')\n    except OSError as e: print(e.strerror)\n")
    cmd = [str(NONO), "run", "--allow", str(home), "--deny", str(secret), "--workdir",
           str(home / "work"), "--", PY, "-c", script]
    r = subprocess.run(as_user(user, cmd, home), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # read and write: EACCES (a nodev bind of /dev/null covers it); unlink, rename: EBUSY
    assert r.stdout.splitlines() == ["Permission denied", "Permission denied",
                                     "Device or resource busy", "Device or resource busy"]
    assert secret.read_text() == "TOKEN"


def test_workdir_inside_a_denied_path_is_refused(home):
    r = subprocess.run([str(NONO), "run", "--allow", str(home), "--deny", str(home / ".ssh"),
                        "--workdir", str(home / ".ssh"), "--", "/bin/true"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "covering deny paths" in r.stderr, r.stderr


def test_dry_run_reports_the_covered_paths(home):
    r = subprocess.run([str(NONO), "run", "--allow", str(home), "--deny", str(home / ".ssh"),
                        "--deny", str(home / "elsewhere-missing"), "--dry-run", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)["enforcement"]
    assert rep["deny_mounts"] == 2 and rep["ok"], rep


RO_PROBE = r'''
import errno, os, sys
home = sys.argv[1]
git = os.path.join(home, "proj", ".git")
def t(f):
    try:
        f(); return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def append():
    with open(os.path.join(git, "config"), "a") as f:
        f.write("[core]\n\tfsmonitor = evil\n")
def hook():
    with open(os.path.join(git, "hooks", "post-checkout"), "w") as f:
        f.write("#!/bin/sh\n")
out = [t(lambda: open(os.path.join(git, "config")).read()), t(append), t(hook),
       t(lambda: os.chmod(os.path.join(git, "config"), 0o777)),
       t(lambda: open(os.path.join(git, "objects", "new"), "w").close()),
       t(lambda: open(os.path.join(home, "proj", "src.c"), "w").close()),
       t(lambda: os.unlink(os.path.join(git, "config"))),
       t(lambda: os.rename(git, os.path.join(home, "proj", "g2")))]
print(" ".join(out))
'''


@pytest.mark.parametrize("abi", [None, "3"], ids=["abi-native", "abi3"])
@pytest.mark.parametrize("user", USERS)
def test_read_grant_inside_writable_grant_is_read_only(home, user, abi):
    """--allow PROJECT --read PROJECT/.git: .git is really read-only (review F12: hooks and
    config planted through a read-write project grant run outside the sandbox later), except
    --allow PROJECT/.git/objects inside it, bound writable again."""
    proj = home / "proj"
    (proj / ".git" / "hooks").mkdir(parents=True)
    (proj / ".git" / "objects").mkdir()
    (proj / ".git" / "config").write_text("[core]\n")
    base = [PY, "-c", RO_PROBE, str(home)]
    assert run_plain(as_user(user, base, home), abi) == "ok ok ok ok ok ok ok ok"
    # (the baseline moved .git away and rewrote things: start again)
    shutil.rmtree(proj)
    (proj / ".git" / "hooks").mkdir(parents=True)
    (proj / ".git" / "objects").mkdir()
    (proj / ".git" / "config").write_text("[core]\n")
    cmd = [str(NONO), "run", "--allow", str(proj), "--read", str(proj / ".git"), "--allow",
           str(proj / ".git" / "objects"), "--workdir", str(proj / ".git"), "--", *base]
    got = run_plain(as_user(user, cmd, home), abi)
    assert got == "ok EROFS EROFS EROFS ok ok EROFS EBUSY", got
    assert (proj / ".git" / "config").read_text() == "[core]\n"
    assert not (proj / ".git" / "hooks" / "post-checkout").exists()


def run_plain(cmd, abi):
    env = {k: v for k, v in os.environ.items() if k != "NONO_MAX_LANDLOCK_ABI"}
    if abi:
        env["NONO_MAX_LANDLOCK_ABI"] = abi
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r.stdout.strip()
