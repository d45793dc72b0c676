"""nono_py.apply (in-process: the supervisor is the helper process) holds metadata writes and
watches to the grants too (issue 11): inside a write grant they work, outside — by path, through
an O_PATH fd, or through a read-only fd of a read-granted file — they fail with EACCES, and the
files are unchanged when checked from outside."""
import errno
import os

from nono_py_testlib import make_base_caps
from test_py_apply import apply_in_subprocess


def test_apply_metadata_and_watches(nono_py, tmp_path):
    (tmp_path / "rw").mkdir()
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro" / "key").write_text("k")
    os.chmod(tmp_path / "ro" / "key", 0o600)
    (tmp_path / "other").write_text("no")
    os.chmod(tmp_path / "other", 0o600)
    before = {p: os.stat(tmp_path / p) for p in ("ro/key", "other")}
    caps = make_base_caps(nono_py)
    caps.allow_path(str(tmp_path / "rw"), nono_py.AccessMode.READ_WRITE)
    caps.allow_path(str(tmp_path / "ro"), nono_py.AccessMode.READ)
    rw, ro, other = tmp_path / "rw", tmp_path / "ro", tmp_path / "other"
    res = apply_in_subprocess(caps, f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
open({str(rw / 'f')!r}, "w").write("x")
attempt("chmod_in", lambda: os.chmod({str(rw / 'f')!r}, 0o640))
attempt("utime_in", lambda: os.utime({str(rw / 'f')!r}, (1, 2)))
attempt("chmod_other", lambda: os.chmod({str(other)!r}, 0o666))
attempt("chmod_ro", lambda: os.chmod({str(ro / 'key')!r}, 0o644))
fd = os.open({str(ro / 'key')!r}, os.O_RDONLY)
attempt("fchmod_ro_fd", lambda: os.fchmod(fd, 0o644))
attempt("futimens_ro_fd", lambda: os.utime(fd, (1, 1)))
pfd = os.open({str(other)!r}, os.O_PATH)
attempt("chmod_opath", lambda: os.chmod(f"/proc/self/fd/{{pfd}}", 0o666))
ino = libc.inotify_init1(0)
def watch(p):
    if libc.inotify_add_watch(ino, p.encode(), 0x100) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
attempt("watch_ro", lambda: watch({str(ro)!r}))
attempt("watch_tmp", lambda: watch({str(tmp_path)!r}))
""")
    assert res["apply"] is None, res
    assert res["chmod_in"]["ok"] and res["utime_in"]["ok"], res
    for k in ("chmod_other", "chmod_ro", "fchmod_ro_fd", "futimens_ro_fd", "chmod_opath",
              "watch_tmp"):
        assert res[k]["ok"] is False and res[k]["errno"] == errno.EACCES, (k, res[k])
    assert res["watch_ro"]["ok"], res
    st = os.stat(rw / "f")
    assert st.st_mode & 0o777 == 0o640 and st.st_mtime == 2
    for p, b in before.items():
        a = os.stat(tmp_path / p)
        assert (a.st_mode, a.st_mtime_ns, a.st_ctime_ns) == (b.st_mode, b.st_mtime_ns, b.st_ctime_ns)
