"""The escape battery: metadata of device files. The system set grants /dev/null, /dev/zero,
/dev/full and /dev/tty read-write for their data; a root command could otherwise re-mode or re-time
the host's device nodes through that grant (review of 2026-12-05, F6). The supervisor refuses
metadata changes of character and block devices (EPERM) while reads and writes keep working; the
node is checked from outside afterwards."""
import os
import pathlib
import subprocess
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from conftest import NONO  # noqa: E402

SCRIPT = r"""
import os
for dev in ("/dev/null", "/dev/zero", "/dev/full"):
    st = os.stat(dev)
    for name, f in (("chmod", lambda: os.chmod(dev, st.st_mode & 0o7777)),
                    ("utime", lambda: os.utime(dev, (1, 1))),
                    ("chown", lambda: os.chown(dev, st.st_uid, st.st_gid))):
        try:
            f()
            print(dev, name, "ok")
        except OSError as e:
            print(dev, name, e.strerror)
with open("/dev/null", "w") as fh:
    print("write", fh.write("x"))
"""


@pytest.mark.parametrize("net", [[], ["--net-block"]], ids=["allowed", "blocked"])
def test_device_node_metadata_refused(net):
    if os.geteuid() != 0:
        pytest.skip("only root owns the device nodes")
    before = {d: os.stat(d) for d in ("/dev/null", "/dev/zero", "/dev/full")}
    r = subprocess.run([str(NONO), "run", "-q", *net, "--", sys.executable, "-c", SCRIPT],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "write 1", r.stdout
    assert lines[:-1] == [f"{d} {op} Operation not permitted" for d in before
                          for op in ("chmod", "utime", "chown")], r.stdout
    for d, st in before.items():
        now = os.stat(d)
        assert (now.st_mode, now.st_uid, now.st_mtime_ns) == (st.st_mode, st.st_uid, st.st_mtime_ns)


MKNOD = r"""
import os, sys
for name, mode in (("chr", 0o20666), ("blk", 0o60666), ("fifo", 0o10644)):
    try:
        os.mknod(os.path.join(sys.argv[1], name), mode, os.makedev(1, 3))
        print(name, "made")
    except OSError as e:
        print(name, e.strerror)
"""


@pytest.mark.parametrize("net", [[], ["--net-block"]], ids=["allowed", "blocked"])
def test_device_node_creation_refused(tmp_path, net):
    """A root command must not plant device nodes (a world-writable /dev/mem or disk) in a write
    grant (review of 2026-12-05, B1); FIFOs stay allowed. Shown to work unsandboxed first."""
    if os.geteuid() != 0:
        pytest.skip("creating device nodes needs CAP_MKNOD")
    base = tmp_path / "base"
    base.mkdir()
    r = subprocess.run([sys.executable, "-c", MKNOD, str(base)], capture_output=True, text=True)
    assert r.stdout.split("\n")[:3] == ["chr made", "blk made", "fifo made"], r.stdout + r.stderr
    w = tmp_path / "w"
    w.mkdir()
    r = subprocess.run([str(NONO), "run", "-q", *net, "-a", str(w), "--", sys.executable, "-c",
                        MKNOD, str(w)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == ["chr Operation not permitted", "blk Operation not permitted",
                                        "fifo made"], r.stdout
    assert sorted(os.listdir(w)) == ["fifo"]
