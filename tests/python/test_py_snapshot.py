"""nono_py's snapshot API (SnapshotManager and its value classes) over libnono's store: baseline,
incrementals that re-hash only what changed, restore byte for byte and mode for mode, exclusions,
limits, symlinks, resumed sessions, tampering caught by verify, session metadata."""
import errno
import hashlib
import json
import os

import pytest


def state(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("d", st.st_mode & 0o7777)
            else:
                out[rel] = ("f", st.st_mode & 0o7777, hashlib.sha256(open(p, "rb").read()).hexdigest(),
                            st.st_mtime_ns)
    return out


@pytest.fixture
def tree(tmp_path):
    t = tmp_path / "tree"
    (t / "a" / "b").mkdir(parents=True)
    (t / "top.txt").write_text("top\n")
    (t / "a" / "mid.bin").write_bytes(os.urandom(300_000))  # past the small-file path
    (t / "a" / "b" / "leaf").write_text("leaf\n")
    os.chmod(t / "a" / "b" / "leaf", 0o640)
    os.symlink("../top.txt", t / "a" / "up")
    return t


@pytest.fixture
def mgr_for(nono_py, tmp_path):
    def make(tree, **kw):
        return nono_py.SnapshotManager(str(tmp_path / "session"), [str(tree)], **kw)
    return make


def test_baseline_manifest(nono_py, mgr_for, tree):
    m = mgr_for(tree).create_baseline()
    assert m.number == 0 and m.parent is None
    assert isinstance(m.merkle_root, nono_py.ContentHash) and len(m.merkle_root.hex()) == 64
    leaf = m.files[str(tree / "a" / "b" / "leaf")]
    assert isinstance(leaf, nono_py.FileState)
    assert leaf.permissions == 0o640 and leaf.size == 5
    assert leaf.hash.hex() == hashlib.sha256(b"leaf\n").hexdigest()
    up = m.files[str(tree / "a" / "up")]
    assert up.is_symlink and up.target == "../top.txt"
    assert str(tree / "a") in m.directories


def test_restore_bytes_modes_mtimes(mgr_for, tree):
    mgr = mgr_for(tree)
    before = state(tree)
    mgr.create_baseline()
    (tree / "a" / "mid.bin").write_bytes(b"short")
    os.chmod(tree / "top.txt", 0o600)
    (tree / "a" / "b" / "leaf").unlink()
    (tree / "new").mkdir()
    (tree / "new" / "n.txt").write_text("n")
    os.unlink(tree / "a" / "up")
    os.symlink("/etc/passwd", tree / "a" / "up")
    diff = {(c.path, c.change_type) for c in mgr.compute_restore_diff(0)}
    assert (str(tree / "new" / "n.txt"), "deleted") in diff
    assert (str(tree / "a" / "b" / "leaf"), "created") in diff
    assert (str(tree / "top.txt"), "permissions_changed") in diff
    assert (str(tree / "a" / "mid.bin"), "modified") in diff
    applied = mgr.restore_to(0)
    assert {(c.path, c.change_type) for c in applied} == diff
    assert state(tree) == before
    assert mgr.compute_restore_diff(0) == []


def test_incremental_rehashes_only_changed_files(mgr_for, tree):
    mgr = mgr_for(tree)
    base = mgr.create_baseline()
    m, changes = mgr.create_incremental()
    assert changes == [] and m.merkle_root == base.merkle_root and m.parent == 0 and m.number == 1
    # Same size, same mtime, different bytes: the ctime (which the writer cannot set back) differs,
    # so the file is re-hashed.
    p = tree / "top.txt"
    st = os.stat(p)
    p.write_text("TOP\n")
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    m2, changes = mgr.create_incremental()
    assert [(c.path, c.change_type) for c in changes] == [(str(p), "modified")]
    assert m2.merkle_root != m.merkle_root
    assert mgr.snapshot_count() == 3


def test_chmod_only_is_permissions_changed(mgr_for, tree):
    mgr = mgr_for(tree)
    mgr.create_baseline()
    os.chmod(tree / "top.txt", 0o755)
    _, changes = mgr.create_incremental()
    assert [(c.change_type, c.size_delta) for c in changes] == [("permissions_changed", None)]


def test_session_resumes(nono_py, mgr_for, tree, tmp_path):
    mgr = mgr_for(tree)
    base = mgr.create_baseline()
    (tree / "top.txt").write_text("changed\n")
    mgr.create_incremental()
    again = mgr_for(tree)
    assert again.snapshot_count() == 2
    assert again.load_manifest(0).merkle_root == base.merkle_root
    _, changes = again.create_incremental()
    assert changes == []
    with pytest.raises(RuntimeError):
        again.create_baseline()
    again.restore_to(0)
    assert (tree / "top.txt").read_text() == "top\n"


def test_symlink_to_outside_is_not_followed(mgr_for, tree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, tree / "escape")
    m = mgr_for(tree).create_baseline()
    assert not any("secret" in p for p in m.files)
    assert m.files[str(tree / "escape")].target == str(outside)


def test_exclusions(nono_py, mgr_for, tree):
    (tree / "node_modules").mkdir()
    (tree / "node_modules" / "x.js").write_text("x")
    (tree / "build").mkdir()
    (tree / "build" / "out.o").write_text("o")
    (tree / "a" / "skip.tmp").write_text("t")
    (tree / "a" / "keep.tmp").write_text("t")
    (tree / "cache").mkdir()
    (tree / ".gitignore").write_text("cache/\n*.log\n!important.log\n/top.txt\n")
    (tree / "a" / "x.log").write_text("l")
    (tree / "a" / "important.log").write_text("l")
    (tree / "a" / "top.txt").write_text("not anchored here")
    ex = nono_py.ExclusionConfig(use_gitignore=True, exclude_globs=["*.tmp"], force_include=["keep.tmp"],
                                 exclude_patterns=["b"])
    files = mgr_for(tree, exclusion=ex).create_baseline().files
    names = {os.path.relpath(p, tree) for p in files}
    assert "node_modules/x.js" not in names and "build/out.o" not in names
    assert "a/skip.tmp" not in names and "a/keep.tmp" in names
    assert "a/x.log" not in names and "a/important.log" in names
    assert "top.txt" not in names and "a/top.txt" in names
    assert "a/b/leaf" not in names


def test_defaults_can_be_turned_off(nono_py, mgr_for, tree):
    (tree / "node_modules").mkdir()
    (tree / "node_modules" / "x.js").write_text("x")
    ex = nono_py.ExclusionConfig(use_gitignore=False, use_defaults=False)
    files = mgr_for(tree, exclusion=ex).create_baseline().files
    assert str(tree / "node_modules" / "x.js") in files


@pytest.mark.parametrize("kw", [{"max_entries": 3}, {"max_bytes": 1000}])
def test_limits_store_nothing(mgr_for, tree, tmp_path, kw):
    mgr = mgr_for(tree, **kw)
    with pytest.raises(RuntimeError) as e:
        mgr.create_baseline()
    assert e.value.errno == errno.EFBIG and "nothing was stored" in str(e.value)
    assert mgr.snapshot_count() == 0
    assert os.listdir(tmp_path / "session" / "snapshots") == []


def test_store_inside_tree_refused(nono_py, tree):
    with pytest.raises(ValueError, match="overlap"):
        nono_py.SnapshotManager(str(tree / "a" / "session"), [str(tree)])


def test_verify_catches_tampering(nono_py, mgr_for, tree, tmp_path):
    mgr = mgr_for(tree)
    mgr.create_baseline()
    mgr.verify()
    obj_dir = tmp_path / "session" / "objects"
    digest = hashlib.sha256(b"leaf\n").hexdigest()
    obj = obj_dir / digest[:2] / digest[2:]
    obj.write_bytes(b"evil\n")
    with pytest.raises(RuntimeError, match="does not hash to its name"):
        mgr.verify()
    obj.unlink()
    with pytest.raises(RuntimeError, match="missing"):
        mgr.verify()


def test_tampered_manifest_refused(nono_py, mgr_for, tree, tmp_path):
    mgr = mgr_for(tree)
    mgr.create_baseline()
    import snapmanifest
    man = tmp_path / "session" / "snapshots" / "0.manifest"
    e = next(e for e in snapmanifest.read(man)["entries"] if e["rel"] == b"a/b/leaf")
    assert e["shared"] == 3  # "a/b" from the entry before, then "/leaf"
    data = man.read_bytes()
    at = e["at"]["suffix"]
    man.write_bytes(data[:at] + b"/leaX" + data[at + 5:])  # same length: parses
    with pytest.raises(RuntimeError, match="Merkle root"):
        mgr.load_manifest(0)
    man.write_bytes(data[:at] + b"/../x" + data[at + 5:])  # "a/b/../x"
    with pytest.raises(RuntimeError, match=r"\.\."):
        mgr.load_manifest(0)


def test_session_metadata_roundtrip(nono_py, mgr_for, tree, tmp_path):
    mgr = mgr_for(tree)
    m = mgr.create_baseline()
    meta = nono_py.SessionMetadata("s-1", ["make", "test"], [str(tree)])
    meta.add_merkle_root(m.merkle_root)
    meta.exit_code = 3
    meta.set_network_events([{"timestamp_unix_ms": 1, "mode": "connect", "decision": "deny",
                              "target": "example.com", "port": 443}])
    mgr.save_session_metadata(meta)
    back = nono_py.SnapshotManager.load_session_metadata(str(tmp_path / "session"))
    assert back.session_id == "s-1" and back.command == ["make", "test"] and back.exit_code == 3
    assert back.merkle_roots == [m.merkle_root]
    assert back.network_events[0]["target"] == "example.com"
    d = json.loads(back.to_json())
    for k in ("audit_event_count", "audit_integrity", "executable_identity", "network_events"):
        assert k in d
    with pytest.raises(ValueError):
        nono_py.SessionMetadata.from_json("{not json")
    with pytest.raises(ValueError):
        meta.set_network_events([{"mode": "connect"}])


def test_content_hash_value_semantics(nono_py):
    a = nono_py.ContentHash("ab" * 32)
    b = nono_py.ContentHash("ab" * 32)
    assert a == b and hash(a) == hash(b) and str(a) == "ab" * 32
    with pytest.raises(ValueError):
        nono_py.ContentHash("xyz")
    with pytest.raises(AttributeError):
        a._hex = "00" * 32


def test_record_exec_ledger(nono_py, base_caps, tmp_path):
    """sandboxed_exec when asked (record_exec): a verified ledger with the supervisor's decision;
    an edited record is named; a ledger inside a writable grant is refused."""
    work = tmp_path / "work"
    work.mkdir()
    caps = base_caps()
    caps.allow_path(str(work), nono_py.AccessMode.READ_WRITE)
    caps.block_network()
    code = ("import socket\ns = socket.socket(socket.AF_UNIX)\n"
            f"try: s.connect({str(work / 'x.sock')!r})\nexcept OSError as e: print(e.errno)\n")
    sess = tmp_path / "ledger-session"
    # A real listener: a connect to a missing path is answered ENOENT unrecorded (no decision)
    import socket
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(work / "x.sock"))
    listener.listen(1)
    r = nono_py.record_exec(sess, caps, ["/usr/bin/python3", "-c", code])
    listener.close()
    assert r.exit_code == 0
    s = nono_py.verify_ledger(sess)
    assert s["finished"] and s["records"] >= 3
    lines = (sess / "ledger.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    assert recs[0]["kind"] == "session_start" and recs[-1]["kind"] == "session_end"
    assert any(x["kind"] == "audit_event" and x["data"]["decision"] == "deny" for x in recs)
    meta = nono_py.SnapshotManager.load_session_metadata(str(sess))
    assert meta.audit_event_count >= 1 and meta.audit_integrity["event_count"] == len(recs)
    assert meta.executable_identity["sha256"] == hashlib.sha256(
        open(os.path.realpath("/usr/bin/python3"), "rb").read()).hexdigest()
    edited = json.loads(lines[1])
    edited["data"]["decision"] = "allow"
    (sess / "ledger.jsonl").write_text("\n".join([lines[0], json.dumps(edited)] + lines[2:]) + "\n")
    with pytest.raises(RuntimeError, match="record 1"):
        nono_py.verify_ledger(sess)
    with pytest.raises(ValueError, match="writable grant"):
        nono_py.record_exec(work / "ledger", caps, ["/bin/true"])


def test_snapshot_killed_midway_leaves_a_consistent_store(nono_py, tmp_path):
    """A baseline SIGKILLed while it stores objects leaves no manifest (or a whole one): the store
    opens, verifies, and the baseline can be taken again."""
    import signal
    import subprocess
    import time
    from nono_py_testlib import PYTHON, child_env
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(4000):
        (tree / f"f{i:05d}").write_bytes(os.urandom(2048))
    sess = tmp_path / "session"
    code = ("import nono_py, sys\n"
            f"nono_py.SnapshotManager({str(sess)!r}, [{str(tree)!r}]).create_baseline()\n")
    caught = False
    for _ in range(3):
        p = subprocess.Popen([PYTHON, "-c", code], env=child_env())
        deadline = time.monotonic() + 60
        objects = sess / "objects"
        while time.monotonic() < deadline and p.poll() is None:
            if objects.exists() and any(objects.glob("??/*")):
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        if p.returncode == -signal.SIGKILL and not (sess / "snapshots" / "0.manifest").exists():
            caught = True
            break
        import shutil
        shutil.rmtree(sess)
    assert caught, "the baseline finished before it could be killed"
    mgr = nono_py.SnapshotManager(str(sess), [str(tree)])
    assert mgr.snapshot_count() == 0
    mgr.verify()
    m = mgr.create_baseline()
    assert len(m.files) == 4000
    mgr.verify()


def test_walk_order_names_around_slash(nono_py, tmp_path):
    """The walk emits entries in the manifest's order (bytes of the relative path) without sorting
    the whole walk: "a", "a b", "a-b", "a.txt", "a/x" sort with '/' after ' ', '-' and '.', which a
    depth-first walk in name order would not give. A misordered walk shows as spurious
    created/deleted pairs in the next incremental, and as a manifest that does not load."""
    t = tmp_path / "order"
    for d in ["a", "a-b", "a.d", "a/a", "b\xe9", "b"]:
        (t / d).mkdir(parents=True, exist_ok=True)
    for f in ["a b", "a.txt", "a/x", "a/a.c", "a/a/y", "a-b/z", "a.d/w", "a0", "A", "b\xe9/q", "b/r",
              "b.", "-"]:
        (t / f).write_text(f)
    session = str(tmp_path / "session")
    m = nono_py.SnapshotManager(session, [str(t)]).create_baseline()
    rels = [os.path.relpath(p, t) for p in list(m.directories) + list(m.files)]
    assert len(rels) == 19
    again = nono_py.SnapshotManager(session, [str(t)])
    loaded = again.load_manifest(0)
    assert loaded.merkle_root.hex() == m.merkle_root.hex()
    _, changes = again.create_incremental()
    assert changes == []
    files = [os.path.relpath(p, t) for p in loaded.files]  # in the manifest's order
    assert files == sorted(files, key=lambda s: s.encode()) and len(files) == 13


def test_binary_manifest_damage_is_refused(nono_py, mgr_for, tree, tmp_path):
    """Every field of the binary manifest is checked on reading: a damaged one is refused by name,
    never read past its end nor trusted."""
    import struct
    import snapmanifest
    mgr = mgr_for(tree)
    mgr.create_baseline()
    man = tmp_path / "session" / "snapshots" / "0.manifest"
    good = man.read_bytes()
    m = snapmanifest.read(man)
    leaf = next(e for e in m["entries"] if e["rel"] == b"a/b/leaf")["at"]
    up = next(e for e in m["entries"] if e["rel"] == b"a/up")["at"]

    def at(off, b, data=good):
        return data[:off] + b + data[off + len(b):]
    cases = {
        "truncated": good[:-1],
        "trailing data": good + b"\0",
        "bad entry type": at(leaf["type"], b"X"),
        "bad path": at(leaf["suffix"], b"\0"),
        "bad root": at(leaf["root"], b"\7"),
        "bad mode": at(leaf["mode"], b"\x80\x20"),   # 0o10000
        "bad time": at(leaf["mtime_ns"], struct.pack("<I", 1_000_000_000)),
        "link without target": at(up["target_len"], b"\0"),
        "shared past the previous path": at(leaf["shared"], b"\x7f"),
        "suffix past the end": at(leaf["suffix_len"], b"\x7f"),
        "varint running on": at(leaf["size"], b"\xff"),
        "count": at(32, struct.pack("<Q", 1 << 40)),
        "path byte": at(leaf["suffix"], b"\1"),  # parses: the Merkle root catches it
        "version": b"nono-snapshot 3\n" + good[16:],
        "empty": b"",
    }
    for what, data in cases.items():
        man.write_bytes(data)
        with pytest.raises(RuntimeError, match="0.manifest|snapshot 0") as ei:
            nono_py.SnapshotManager(str(tmp_path / "session"), [str(tree)]).load_manifest(0)
        assert "Merkle" not in str(ei.value) or what == "path byte", (what, str(ei.value))
        assert what != "version" or "version" in str(ei.value), str(ei.value)
    man.write_bytes(good)
    assert mgr.load_manifest(0).merkle_root.hex() == m["merkle"]
