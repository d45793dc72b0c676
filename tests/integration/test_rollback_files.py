"""nono run --rollback with writable file grants: the file is snapshotted before and after the
command like a tree's file, and `nono rollback restore` brings it back (bytes, mode) after the
sandboxed command rewrote, chmodded or deleted it; a file grant inside a tracked tree is part of
the tree; a grant that is not a regular file (a fifo) is named as untracked."""
import hashlib
import os
import pathlib

import pytest

import snapmanifest
from conftest import run_nono


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    return dict(os.environ, XDG_STATE_HOME=str(state))


def only_session(env):
    (sid,) = [n for n in os.listdir(pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback")
              if not n.startswith(".")]
    return sid


def digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_file_grant_rewritten_and_chmodded_is_restored(tmp_path, env):
    work = tmp_path / "work"
    work.mkdir()
    f = work / "config.ini"
    f.write_bytes(os.urandom(5000))
    os.chmod(f, 0o640)
    before = (digest(f), os.stat(f).st_mode & 0o7777)
    r = run_nono("run", "--rollback", "--allow-file", f, "--", "/bin/sh", "-c",
                 f'echo rewritten > "{f}" && chmod 600 "{f}"', env=env)
    assert r.returncode == 0, r.stderr
    assert "not tracked" not in r.stderr
    assert f"modified  {f}" in r.stderr, r.stderr
    assert f.read_text() == "rewritten\n"
    sid = only_session(env)
    d = run_nono("rollback", "diff", sid, env=env)
    assert d.returncode == 0 and f"modified  {f}" in d.stderr, d.stdout + d.stderr
    res = run_nono("rollback", "restore", sid, env=env)
    assert res.returncode == 0, res.stderr
    assert (digest(f), os.stat(f).st_mode & 0o7777) == before


def test_file_grant_deleted_is_brought_back(tmp_path, env):
    work = tmp_path / "work"
    work.mkdir()
    f = work / "data.txt"
    f.write_text("keep me\n")
    # Deleting needs the directory: the file grant plus write access to work/ would make work/ the
    # tracked tree, so the command truncates and the test deletes it after the run instead.
    r = run_nono("run", "--rollback", "--allow-file", f, "--", "/bin/sh", "-c", f': > "{f}"',
                 env=env)
    assert r.returncode == 0, r.stderr
    f.unlink()
    sid = only_session(env)
    res = run_nono("rollback", "restore", sid, env=env)
    assert res.returncode == 0, res.stderr
    assert f.read_text() == "keep me\n"


def test_file_grant_inside_a_tree_is_part_of_it(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    f = tree / "a.txt"
    f.write_text("a\n")
    r = run_nono("run", "--rollback", "--allow", tree, "--allow-file", f, "--", "/bin/sh", "-c",
                 f'echo b > "{f}"', env=env)
    assert r.returncode == 0, r.stderr
    assert "1 change" in r.stderr, r.stderr
    assert run_nono("rollback", "restore", only_session(env), env=env).returncode == 0
    assert f.read_text() == "a\n"


def test_symlink_swapped_for_the_file_is_not_written_through(tmp_path, env):
    work = tmp_path / "work"
    work.mkdir()
    f = work / "f.txt"
    f.write_text("original\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    r = run_nono("run", "--rollback", "--allow-file", f, "--", "/bin/true", env=env)
    assert r.returncode == 0, r.stderr
    f.unlink()
    os.symlink(outside, f)
    res = run_nono("rollback", "restore", only_session(env), env=env)
    assert res.returncode == 0, res.stderr
    assert not f.is_symlink() and f.read_text() == "original\n"
    assert outside.read_text() == "outside\n"


def test_fifo_grant_is_named_untracked(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = run_nono("run", "--rollback", "--allow", tree, "--allow-file", fifo, "--", "/bin/true",
                 env=env)
    assert r.returncode == 0, r.stderr
    assert f"{fifo} is not tracked (not a regular file)" in r.stderr, r.stderr


def sessions_sorted(env):
    return sorted(n for n in os.listdir(pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback")
                  if not n.startswith("."))


def test_seeded_baseline_sees_changes_made_between_sessions(tmp_path, env):
    """The second session's baseline is seeded from the first one's last snapshot: a file changed
    between the sessions (same size, mtime set back) is read again, not taken from the seed."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("a", "b", "c"):
        (tree / name).write_text(f"{name}1\n")
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", f'echo a2 > "{tree}/a"',
                 env=env)
    assert r.returncode == 0, r.stderr
    st = os.stat(tree / "b")
    (tree / "b").write_text("B1\n")  # same size
    os.utime(tree / "b", ns=(st.st_atime_ns, st.st_mtime_ns))
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", f'echo c2 > "{tree}/c"',
                 env=env)
    assert r.returncode == 0, r.stderr
    second = sessions_sorted(env)[-1]
    res = run_nono("rollback", "restore", second, env=env)
    assert res.returncode == 0, res.stderr
    assert [(tree / n).read_text() for n in ("a", "b", "c")] == ["a2\n", "B1\n", "c1\n"]


def test_damaged_seed_refuses_before_running(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_text("f\n")
    assert run_nono("run", "--rollback", "--allow", tree, "--", "/bin/true", env=env).returncode == 0
    (first,) = sessions_sorted(env)
    man = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / first / "snapshots" / "1.manifest"
    snapmanifest.set_mode(man, b"f", 0o755)
    marker = tmp_path / "ran"
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", f'touch "{marker}"',
                 env=env)
    assert r.returncode != 0 and "Merkle root" in r.stderr and "nothing was run" in r.stderr, r.stderr
    assert not marker.exists()
