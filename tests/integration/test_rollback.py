"""nono run --rollback and nono rollback, for real: a sandboxed command changes a tracked tree and the
restore brings back exactly the original hashes and modes; a planted symlink is neither followed
nor restored through; a restore killed with SIGKILL is finished by running it again; the store is
refused inside a writable grant; limits refuse before anything runs."""
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import time

import pytest

import snapmanifest
from conftest import NONO, run_nono


def tree_state(root):
    """{relative path: (kind, mode, sha256 or link target)} without following symlinks."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", 0, os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("dir", st.st_mode & 0o7777, None)
            else:
                out[rel] = ("file", st.st_mode & 0o7777, hashlib.sha256(open(p, "rb").read()).hexdigest())
    return out


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    e = dict(os.environ, XDG_STATE_HOME=str(state))
    return e


def sessions(env):
    return sorted(n for n in os.listdir(pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback")
                  if not n.startswith("."))  # .objects: the contents every session shares


def make_tree(root):
    (root / "src").mkdir(parents=True)
    (root / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "src" / "util.c").write_bytes(os.urandom(100_000))
    (root / "README").write_text("hello\n")
    (root / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(root / "script.sh", 0o755)
    (root / "private").write_text("secret\n")
    os.chmod(root / "private", 0o600)
    (root / "docs").mkdir()
    (root / "docs" / "a.md").write_text("# a\n")
    os.symlink("README", root / "link-to-readme")


MUTATE = r"""
set -e
cd "$1"
echo changed >> README                 # modify
head -c 5000 /dev/urandom > src/util.c # modify (size)
rm src/main.c                          # delete
echo new > created.txt                 # create
mkdir -p newdir/deep && echo x > newdir/deep/f
mv docs renamed-docs                   # rename a directory
mv script.sh script-moved.sh           # rename a file
chmod 600 README                       # chmod
chmod 700 src
rm link-to-readme && ln -s /etc/passwd link-to-readme  # retarget a link
"""


def test_sandboxed_changes_are_restored_exactly(tmp_path, env):
    tree = tmp_path / "tree"
    make_tree(tree)
    before = tree_state(tree)
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", MUTATE, "sh", tree,
                 env=env)
    assert r.returncode == 0, r.stderr
    assert "change" in r.stderr and "modified" in r.stderr and "created" in r.stderr, r.stderr
    after = tree_state(tree)
    assert after != before
    (sid,) = sessions(env)
    diff = run_nono("rollback", "diff", sid, env=env)
    assert diff.returncode == 0, diff.stderr
    assert tree_state(tree) == after  # diff changes nothing
    for p in ("README", "src/main.c", "created.txt", "renamed-docs", "docs"):
        assert p in diff.stderr
    res = run_nono("rollback", "restore", sid, env=env)
    assert res.returncode == 0, res.stderr
    assert tree_state(tree) == before
    # Back to the after-state (snapshot 1), and again to 0.
    assert run_nono("rollback", "restore", sid, "1", env=env).returncode == 0
    assert tree_state(tree) == after
    assert run_nono("rollback", "restore", sid, "0", env=env).returncode == 0
    assert tree_state(tree) == before
    v = run_nono("rollback", "verify", sid, env=env)
    assert v.returncode == 0 and "OK" in v.stdout, v.stdout + v.stderr
    lst = run_nono("rollback", "list", env=env)
    assert sid in lst.stdout
    show = run_nono("rollback", "show", sid, env=env)
    assert "snapshot 1" in show.stdout and "merkle" in show.stdout


def test_planted_symlink_is_not_followed_nor_restored_through(tmp_path, env):
    tree = tmp_path / "tree"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("outside, must stay\n")
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "victim").write_text("inside\n")
    before = tree_state(tree)
    # The command replaces the directory "sub" by a symlink to the outside directory.
    cmd = f'rm -r "{tree}/sub" && ln -s "{outside}" "{tree}/sub"'
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", cmd, env=env)
    assert r.returncode == 0, r.stderr
    (sid,) = sessions(env)
    store = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / sid
    m1 = (store / "snapshots" / "1.manifest").read_bytes()
    assert b"victim" not in m1  # the after-snapshot did not follow sub -> outside
    res = run_nono("rollback", "restore", sid, env=env)
    assert res.returncode == 0, res.stderr
    assert tree_state(tree) == before
    assert not os.path.islink(tree / "sub")
    assert (outside / "victim").read_text() == "outside, must stay\n"
    assert sorted(os.listdir(outside)) == ["victim"]


def test_restore_never_writes_through_a_symlinked_parent(tmp_path, env):
    """After the run, something (not the sandbox) swaps a tracked directory for a symlink: the
    restore deletes the link and recreates the directory; nothing lands outside."""
    tree = tmp_path / "tree"
    outside = tmp_path / "outside"
    outside.mkdir()
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_text("orig\n")
    before = tree_state(tree)
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c",
                 f'echo changed > "{tree}/d/f"', env=env)
    assert r.returncode == 0, r.stderr
    (sid,) = sessions(env)
    os.rename(tree / "d", tmp_path / "moved-away")
    os.symlink(outside, tree / "d")
    assert run_nono("rollback", "restore", sid, env=env).returncode == 0
    assert tree_state(tree) == before
    assert os.listdir(outside) == []


def test_restore_killed_and_resumed_ends_consistent(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    caught = False
    for attempt, n in enumerate((3000, 12000)):
        for i in range(n):
            (tree / f"f{i:05d}").write_bytes(b"original %d\n" % i)
        before = tree_state(tree)
        r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c",
                     f'cd "{tree}" && for f in f*; do echo x > "$f"; done; chmod 600 f00001',
                     env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        sid = sessions(env)[-1]
        pending = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / sid / "restore.pending"
        p = subprocess.Popen([str(NONO), "rollback", "restore", sid], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        # Kill once the restore has begun writing (its journal exists and a first file is back).
        while time.monotonic() < deadline and p.poll() is None:
            if pending.exists() and (tree / "f00000").read_bytes() == b"original 0\n":
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        if pending.exists() and p.returncode == -signal.SIGKILL:
            caught = True
            mid = tree_state(tree)
            assert mid != before  # interrupted part way
            show = run_nono("rollback", "show", sid, env=env)
            assert "interrupted restore" in show.stdout
            res = run_nono("rollback", "restore", sid, env=env, timeout=300)
            assert res.returncode == 0, res.stderr
            assert tree_state(tree) == before
            assert not pending.exists()
            assert not [f for f in os.listdir(tree) if f.startswith(".nono-restore-")]
            break
        for f in os.listdir(tree):
            os.unlink(tree / f)
    assert caught, "the restore finished before it could be killed, even with 12000 files"


def test_store_inside_a_writable_grant_is_refused(tmp_path):
    work = tmp_path / "work"
    (work / "state").mkdir(parents=True)
    e = dict(os.environ, XDG_STATE_HOME=str(work / "state"))
    r = run_nono("run", "--rollback", "--allow", work, "--", "/bin/true", env=e)
    assert r.returncode == 125
    assert "could write the rollback store" in r.stderr
    # A read-only grant covering it is not a way to rewrite it.
    other = tmp_path / "other"
    other.mkdir()
    r = run_nono("run", "--rollback", "--read", work, "--allow", other, "--", "/bin/true", env=e)
    assert r.returncode == 0, r.stderr


def test_no_writable_grant_is_refused_before_running(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    marker = tmp_path / "ran"
    # (max_entries/max_bytes are tested through the binding: tests/python/test_py_snapshot.py.)
    r = run_nono("run", "--rollback", "--read", tree, "--", "/bin/sh", "-c", f"touch {marker}",
                 env=env)
    assert r.returncode == 125 and "no writable grant to snapshot" in r.stderr
    assert not marker.exists()


def test_rollback_options_need_rollback(tmp_path):
    r = run_nono("run", "--rollback-exclude", "*.o", "--allow", tmp_path, "--", "/bin/true")
    assert r.returncode == 125


def test_exclusions_and_defaults(tmp_path, env):
    tree = tmp_path / "tree"
    (tree / "node_modules").mkdir(parents=True)
    (tree / "node_modules" / "dep.js").write_text("dep\n")
    (tree / "keep.txt").write_text("keep\n")
    (tree / "x.log").write_text("log\n")
    cmd = f'echo 2 > "{tree}/x.log"; echo 2 > "{tree}/node_modules/dep.js"; echo 2 > "{tree}/keep.txt"'
    r = run_nono("run", "--rollback", "--rollback-exclude", "*.log", "--allow", tree, "--",
                 "/bin/sh", "-c", cmd, env=env)
    assert r.returncode == 0, r.stderr
    assert "keep.txt" in r.stderr and "x.log" not in r.stderr and "dep.js" not in r.stderr
    (sid,) = sessions(env)
    assert run_nono("rollback", "restore", sid, env=env).returncode == 0
    assert (tree / "keep.txt").read_text() == "keep\n"
    assert (tree / "x.log").read_text() == "2\n"            # excluded: untouched
    assert (tree / "node_modules" / "dep.js").read_text() == "2\n"


def test_verify_detects_a_changed_object_and_manifest(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", f'echo b > "{tree}/a"',
                 env=env)
    assert r.returncode == 0, r.stderr
    (sid,) = sessions(env)
    store = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / sid
    obj = next(p for p in (store.parent / ".objects").rglob("*") if p.is_file() and p.parent.name != "tmp")
    data = obj.read_bytes()
    obj.write_bytes(data + b"tampered")
    v = run_nono("rollback", "verify", sid, env=env)
    assert v.returncode == 1 and "does not hash to its name" in v.stdout
    obj.write_bytes(data)
    assert run_nono("rollback", "verify", sid, env=env).returncode == 0
    man = store / "snapshots" / "0.manifest"
    snapmanifest.set_mode(man, b"a", 0o755)
    v = run_nono("rollback", "verify", sid, env=env)
    assert v.returncode == 1 and "Merkle root" in v.stdout, v.stdout


def test_cleanup(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    assert run_nono("run", "--rollback", "--allow", tree, "--", "/bin/true", env=env).returncode == 0
    assert len(sessions(env)) == 1
    assert run_nono("rollback", "cleanup", "--older-than", "1d", env=env).returncode == 0
    assert len(sessions(env)) == 1
    assert run_nono("rollback", "cleanup", "--older-than", "0s", env=env).returncode == 0
    assert sessions(env) == []
    objects = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / ".objects"
    assert [p for p in objects.rglob("*") if p.is_file()] == []  # nothing names them any more
    assert run_nono("rollback", "cleanup", "--older-than", "soon", env=env).returncode == 125


def test_sessions_share_objects_and_cleanup_keeps_what_is_named(tmp_path, env):
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(20):
        (tree / f"f{i}").write_text(f"file {i}\n")
    objects = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / ".objects"

    def count():
        return len([p for p in objects.rglob("*") if p.is_file()])

    assert run_nono("run", "--rollback", "--allow", tree, "--", "/bin/true", env=env).returncode == 0
    n1 = count()
    assert n1 == 20
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", f'echo x > "{tree}/f0"',
                 env=env)
    assert r.returncode == 0, r.stderr
    assert count() == 21  # only the new content was stored
    first, second = sessions(env)
    old = time.time() - 3 * 86400
    os.utime(pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / first, (old, old))
    assert run_nono("rollback", "cleanup", "--older-than", "2d", env=env).returncode == 0
    assert sessions(env) == [second]
    assert count() == 21  # every object is named by the second session's snapshots
    assert run_nono("rollback", "verify", second, env=env).returncode == 0
    assert run_nono("rollback", "restore", second, env=env).returncode == 0
    assert (tree / "f0").read_text() == "file 0\n"


def test_session_records_each_snapshots_merkle_root(tmp_path, env):
    """session.json's merkle_roots are the roots of the manifests on disk, in order (the run reads
    them from the store, nono_snap_latest_root, rather than from copies of the manifests)."""
    tree = tmp_path / "tree"
    make_tree(tree)
    r = run_nono("run", "--rollback", "--allow", tree, "--", "sh", "-c",
                 'echo more >> "$1"/README', "sh", tree, env=env)
    assert r.returncode == 0, r.stderr
    (sid,) = sessions(env)
    sdir = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / sid
    meta = json.loads((sdir / "session.json").read_text())
    on_disk = []
    for n in (0, 1):
        on_disk.append(snapmanifest.read(sdir / "snapshots" / f"{n}.manifest")["merkle"])
    assert meta["snapshot_count"] == 2
    assert meta["merkle_roots"] == on_disk
    assert on_disk[0] != on_disk[1]  # README changed between them


def test_store_with_text_manifests_still_loads_verifies_and_restores(tmp_path, env):
    """Manifests written before the binary format (version 1, text; written here by converting the
    session's own, byte for byte what the text writer produced) still load: verify, diff, restore,
    tampering caught, and a later session is seeded from them."""
    tree = tmp_path / "tree"
    make_tree(tree)
    (tree / "odd name%.txt").write_text("escaped in text\n")
    before = tree_state(tree)
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", MUTATE, "sh", tree,
                 env=env)
    assert r.returncode == 0, r.stderr
    after = tree_state(tree)
    (sid,) = sessions(env)
    snaps = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / sid / "snapshots"
    for n in (0, 1):
        text = snapmanifest.to_text_v1(snaps / f"{n}.manifest")
        (snaps / f"{n}.manifest").write_bytes(text)
        assert text.startswith(b"nono-snapshot 1\n") and b"odd%20name%25.txt" in text
    v = run_nono("rollback", "verify", sid, env=env)
    assert v.returncode == 0 and "OK" in v.stdout, v.stdout + v.stderr
    diff = run_nono("rollback", "diff", sid, env=env)
    assert diff.returncode == 0 and "created.txt" in diff.stderr, diff.stderr
    assert run_nono("rollback", "restore", sid, env=env).returncode == 0
    assert tree_state(tree) == before
    # A later session seeds its baseline from the text manifest, and writes binary ones.
    r = run_nono("run", "--rollback", "--allow", tree, "--", "/bin/sh", "-c", 'echo x >> "$1"/README',
                 "sh", tree, env=env)
    assert r.returncode == 0 and "1 change" in r.stderr, r.stderr
    new = [s for s in sessions(env) if s != sid][0]
    nsnaps = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "rollback" / new / "snapshots"
    assert (nsnaps / "1.manifest").read_bytes().startswith(b"nono-snapshot 2\n")
    assert run_nono("rollback", "restore", sid, "1", env=env).returncode == 0
    assert tree_state(tree) == after
    # Tampering with a text manifest is still caught by its Merkle root.
    text = (snaps / "0.manifest").read_bytes()
    (snaps / "0.manifest").write_bytes(text.replace(b" 644 ", b" 755 ", 1))
    v = run_nono("rollback", "verify", sid, env=env)
    assert v.returncode == 1 and "Merkle root" in v.stdout, v.stdout
