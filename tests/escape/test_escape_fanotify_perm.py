"""The escape battery, issue 11 item 3: fanotify permission events.

A root command could mark a granted directory with FAN_OPEN_PERM and then hold (or answer) every
open there, including the opens of processes outside the sandbox: the supervisor refuses permission
marks (EPERM) even inside a read grant, while a plain notification mark there works. Shown to work
unsandboxed first; needs root (FAN_CLASS_CONTENT needs CAP_SYS_ADMIN).
"""
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import NONO  # noqa: E402

PROBE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int,
                               ctypes.c_char_p]
FAN_CLOEXEC, FAN_CLASS_NOTIF, FAN_CLASS_CONTENT = 0x1, 0x0, 0x4
FAN_MARK_ADD, FAN_OPEN, FAN_OPEN_PERM, FAN_EVENT_ON_CHILD = 0x1, 0x20, 0x10000, 0x08000000
perm = sys.argv[1] == "perm"
fd = libc.fanotify_init(FAN_CLOEXEC | (FAN_CLASS_CONTENT if perm else FAN_CLASS_NOTIF), os.O_RDONLY)
if fd < 0:
    print("INIT", os.strerror(ctypes.get_errno())); sys.exit(0)
mask = (FAN_OPEN_PERM if perm else FAN_OPEN) | FAN_EVENT_ON_CHILD
r = libc.fanotify_mark(fd, FAN_MARK_ADD, mask, -100, sys.argv[2].encode())
print("MARKED" if r == 0 else "REFUSED " + os.strerror(ctypes.get_errno()))
"""


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return r.stdout.strip(), r.stderr


@pytest.fixture
def granted(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("fanotify permission events need CAP_SYS_ADMIN")
    out, err = run([sys.executable, "-c", PROBE, "perm", str(tmp_path)])
    if out != "MARKED":
        pytest.skip(f"no fanotify permission events here: {out} {err}")
    return tmp_path


@pytest.mark.parametrize("net", [[], ["--net-block"]], ids=["allowed", "blocked"])
def test_fanotify_permission_mark_refused_inside_read_grant(granted, net):
    argv = [str(NONO), "run", "-q", *net, "-r", str(granted), "--", sys.executable, "-c", PROBE]
    out, err = run(argv + ["notify", str(granted)])
    assert out == "MARKED", (out, err)  # a plain watch inside the read grant works
    out, err = run(argv + ["perm", str(granted)])
    assert out == "REFUSED Operation not permitted", (out, err)
