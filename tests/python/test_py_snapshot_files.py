"""Tracked files (a root that is one regular file, as `nono run --rollback` makes of a writable file
grant): recorded, restored byte for byte and mode for mode, brought back after deletion, deleted
when the snapshot had none, never followed when replaced by a symlink; and a tracked tree's
incremental Merkle root always equals a fresh computation of it."""
import hashlib
import os

import pytest


def digest(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    (d / "notes.txt").write_text("notes v1\n")
    os.chmod(d / "notes.txt", 0o640)
    (d / "other.txt").write_text("not tracked\n")
    return d


def mgr(nono_py, tmp_path, paths):
    return nono_py.SnapshotManager(str(tmp_path / "session"), [str(p) for p in paths])


def test_file_root_modified_chmodded_restored(nono_py, tmp_path, files):
    f = files / "notes.txt"
    before = (digest(f), os.stat(f).st_mode & 0o7777, os.stat(f).st_mtime_ns)
    m = mgr(nono_py, tmp_path, [f])
    base = m.create_baseline()
    assert list(base.files) == [str(f)] and base.roots == [str(f)]
    f.write_text("notes v2, longer\n")
    os.chmod(f, 0o600)
    (files / "other.txt").write_text("changed, but not tracked\n")
    _, changes = m.create_incremental()
    assert [(c.path, c.change_type) for c in changes] == [(str(f), "modified")]
    diff = [(c.path, c.change_type) for c in m.compute_restore_diff(0)]
    assert diff == [(str(f), "modified")]
    m.restore_to(0)
    assert (digest(f), os.stat(f).st_mode & 0o7777, os.stat(f).st_mtime_ns) == before
    assert (files / "other.txt").read_text() == "changed, but not tracked\n"
    assert m.compute_restore_diff(0) == []


def test_deleted_file_root_reopens_and_restores(nono_py, tmp_path, files):
    f = files / "notes.txt"
    m = mgr(nono_py, tmp_path, [f])
    m.create_baseline()
    f.unlink()
    _, changes = m.create_incremental()
    assert [(c.path, c.change_type) for c in changes] == [(str(f), "deleted")]
    # A new handle (nono rollback restore does this) on a path that no longer exists: the store's
    # latest snapshot says it is a tracked file.
    again = mgr(nono_py, tmp_path, [f])
    again.restore_to(0)
    assert f.read_text() == "notes v1\n" and os.stat(f).st_mode & 0o7777 == 0o640


def test_missing_path_without_a_snapshot_is_refused(nono_py, tmp_path, files):
    with pytest.raises((OSError, RuntimeError, ValueError)):
        mgr(nono_py, tmp_path, [files / "typo.txt"])


def test_symlink_swapped_in_is_not_followed(nono_py, tmp_path, files):
    f = files / "notes.txt"
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    m = mgr(nono_py, tmp_path, [f])
    m.create_baseline()
    f.unlink()
    os.symlink(outside, f)
    _, changes = m.create_incremental()
    assert [(c.path, c.change_type) for c in changes] == [(str(f), "modified")]
    m.restore_to(0)
    assert not f.is_symlink() and f.read_text() == "notes v1\n"
    assert outside.read_text() == "outside\n"


def test_file_created_since_is_deleted(nono_py, tmp_path, files):
    f = files / "notes.txt"
    m = mgr(nono_py, tmp_path, [f, files / "other.txt"])
    m.create_baseline()
    f.unlink()
    m.create_incremental()  # snapshot 1: no notes.txt
    f.write_text("created again\n")
    m.restore_to(1)
    assert not f.exists() and (files / "other.txt").exists()


def test_file_root_beside_a_tree_and_overlap(nono_py, tmp_path, files):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x").write_text("x\n")
    m = mgr(nono_py, tmp_path, [tree, files / "notes.txt"])
    base = m.create_baseline()
    assert base.roots == [str(tree), str(files / "notes.txt")]
    assert set(base.files) == {str(tree / "sub" / "x"), str(files / "notes.txt")}
    (tree / "sub" / "x").write_text("y\n")
    (files / "notes.txt").write_text("z\n")
    _, changes = m.create_incremental()
    assert sorted(c.path for c in changes) == sorted([str(tree / "sub" / "x"), str(files / "notes.txt")])
    m.restore_to(0)
    assert (tree / "sub" / "x").read_text() == "x\n" and (files / "notes.txt").read_text() == "notes v1\n"
    with pytest.raises(ValueError, match="overlap"):
        nono_py.SnapshotManager(str(tmp_path / "s2"), [str(tree), str(tree / "sub" / "x")])


def test_incremental_merkle_matches_a_fresh_one(nono_py, tmp_path):
    """Creations, deletions, modifications and chmods between snapshots: the root each incremental
    computes from the previous tree (only changed nodes) is the one a fresh handle verifies."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(37):
        (tree / f"f{i:02d}").write_text(str(i))
    m = mgr(nono_py, tmp_path, [tree])
    m.create_baseline()
    steps = [lambda: (tree / "f05").write_text("changed"),
             lambda: os.chmod(tree / "f10", 0o600),
             lambda: (tree / "f36").unlink(),
             lambda: (tree / "g00").write_text("new"),
             lambda: (tree / "f00").write_text("first")]
    for k, step in enumerate(steps, start=1):
        step()
        got, _ = m.create_incremental()
        fresh = mgr(nono_py, tmp_path, [tree])
        assert fresh.load_manifest(k).merkle_root == got.merkle_root
        fresh.verify()


def test_many_directories_every_change_seen(nono_py, tmp_path):
    """More directories than the walk holds open at once (it stats files relative to their
    directory, flushing every 128): a change in any of them, before or after a flush, is seen."""
    tree = tmp_path / "tree"
    for d in range(300):
        (tree / f"d{d:03d}" / "sub").mkdir(parents=True)
        for f in range(3):
            (tree / f"d{d:03d}" / f"f{f}").write_text(f"{d}/{f}")
        (tree / f"d{d:03d}" / "sub" / "x").write_text("x")
    m = mgr(nono_py, tmp_path, [tree])
    base = m.create_baseline()
    assert len(base.files) == 300 * 4 and len(base.directories) == 600
    touched = [tree / f"d{d:03d}" / "f1" for d in (0, 127, 128, 129, 255, 256, 299)]
    touched += [tree / "d200" / "sub" / "x"]
    for p in touched:
        p.write_text("changed, longer")
    _, changes = m.create_incremental()
    assert sorted((c.path, c.change_type) for c in changes) == sorted((str(p), "modified") for p in touched)
    m.restore_to(0)
    assert (tree / "d128" / "f1").read_text() == "128/1" and (tree / "d200" / "sub" / "x").read_text() == "x"
