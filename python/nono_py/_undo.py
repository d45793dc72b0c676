"""Snapshots and rollback (nono-py's undo API) over libnono's content-addressed store.

    mgr = SnapshotManager(session_dir, [workdir])
    mgr.create_baseline()
    ...                       # run something that writes workdir
    manifest, changes = mgr.create_incremental()
    mgr.restore_to(0)         # back to the baseline, byte for byte and mode for mode

The store (objects by SHA-256, one manifest per snapshot with a Merkle root) is written by the C
library (nono_snap_*); this module holds the value classes. Errors: a missing path raises
FileNotFoundError, bad arguments ValueError, a tree past max_entries/max_bytes RuntimeError
(errno EFBIG, nothing stored), anything else RuntimeError with the library's message.
"""

import datetime
import json
import os

from . import _nono

__all__ = [
    "Change", "ContentHash", "ExclusionConfig", "FileState", "SessionMetadata", "SnapshotManager",
    "SnapshotManifest", "record_exec", "verify_ledger",
]

SESSION_METADATA_FILENAME = "session.json"
_HEX = frozenset("0123456789abcdef")


class ContentHash:
    """A SHA-256 digest (immutable, hashable); ``hex()`` is its 64-character lower-case hex."""

    __slots__ = ("_hex",)

    def __init__(self, hex_digest):
        if not isinstance(hex_digest, str) or len(hex_digest) != 64 or not set(hex_digest) <= _HEX:
            raise ValueError("a ContentHash is 64 lower-case hex characters")
        object.__setattr__(self, "_hex", hex_digest)

    def __setattr__(self, name, value):
        raise AttributeError("ContentHash is immutable")

    def hex(self):
        return self._hex

    def __str__(self):
        return self._hex

    def __repr__(self):
        return f"ContentHash({self._hex[:16]}...)"

    def __eq__(self, other):
        if not isinstance(other, ContentHash):
            return NotImplemented
        return self._hex == other._hex

    def __hash__(self):
        return int.from_bytes(bytes.fromhex(self._hex[:16]), "little")


class FileState:
    """One file (or symlink) in a snapshot: hash, size, mtime (seconds), permissions (0o7777)."""

    __slots__ = ("hash", "size", "mtime", "permissions", "is_symlink", "target")

    def __init__(self, hash, size, mtime, permissions, is_symlink=False, target=None):  # noqa: A002
        self.hash, self.size, self.mtime = hash, size, mtime
        self.permissions, self.is_symlink, self.target = permissions, is_symlink, target

    def __repr__(self):
        return f"FileState(size={self.size}, permissions={self.permissions:o})"


class Change:
    """A change between two states: change_type is "created", "modified", "deleted" or
    "permissions_changed"; size_delta is the size difference for files, else None."""

    __slots__ = ("path", "change_type", "size_delta", "is_dir")

    def __init__(self, path, change_type, size_delta=None, is_dir=False):
        self.path, self.change_type, self.size_delta, self.is_dir = path, change_type, size_delta, is_dir

    @classmethod
    def _from_native(cls, t):
        path, kind, entry_type, delta = t
        return cls(path, kind, delta, entry_type == "D")

    def __eq__(self, other):
        if not isinstance(other, Change):
            return NotImplemented
        return (self.path, self.change_type) == (other.path, other.change_type)

    def __repr__(self):
        return f"Change(path='{self.path}', type={self.change_type})"


class SnapshotManifest:
    """A snapshot: number (0 = baseline), parent (None for the baseline), ISO 8601 timestamp,
    merkle_root (ContentHash over every entry), files ({path: FileState}, directories left out;
    ``directories`` lists them) and roots (the tracked paths: directories, or single files)."""

    def __init__(self, native):
        self.number, self.parent, self.timestamp, root, entries, self.roots = native
        self.merkle_root = ContentHash(root)
        self.files = {}
        self.directories = {}
        for path, kind, digest, size, mtime, mode, target in entries:
            if kind == "D":
                self.directories[path] = mode
            else:
                self.files[path] = FileState(ContentHash(digest), size, mtime, mode, kind == "L",
                                             target)

    def __repr__(self):
        return f"SnapshotManifest(number={self.number}, files={len(self.files)})"


class ExclusionConfig:
    """What snapshots leave out. ``use_gitignore``: honour .gitignore files; ``exclude_patterns``:
    exact entry names; ``exclude_globs``: globs on the name (or the root-relative path when the
    glob holds "/"); ``force_include``: names/globs kept whatever excludes them; ``use_defaults``:
    skip node_modules, target, .venv, venv, __pycache__, build, dist, .tox, .gradle, .mypy_cache,
    .pytest_cache (an extension of nono-py's signature)."""

    def __init__(self, use_gitignore=True, exclude_patterns=(), exclude_globs=(), force_include=(),
                 use_defaults=True):
        self.use_gitignore = bool(use_gitignore)
        self.exclude_patterns = [_str("exclude_patterns", p) for p in exclude_patterns]
        self.exclude_globs = [_str("exclude_globs", p) for p in exclude_globs]
        self.force_include = [_str("force_include", p) for p in force_include]
        self.use_defaults = bool(use_defaults)

    def __repr__(self):
        return (f"ExclusionConfig(gitignore={self.use_gitignore}, "
                f"patterns={len(self.exclude_patterns)}, globs={len(self.exclude_globs)})")


def _str(name, v):
    if not isinstance(v, str):
        raise TypeError(f"{name} entries must be str, not {type(v).__name__}")
    return v


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class SessionMetadata:
    """What a session was: id, command, tracked paths, times, exit code, the snapshots' Merkle
    roots, and the ledger's summary (audit_event_count, audit_integrity, network_events,
    executable_identity). JSON through to_json / from_json."""

    _FIELDS = ("session_id", "started", "ended", "command", "executable_identity", "tracked_paths",
               "snapshot_count", "exit_code", "merkle_roots", "network_events", "audit_event_count",
               "audit_integrity", "audit_attestation")

    def __init__(self, session_id, command, tracked_paths):
        self.session_id = _str("session_id", session_id)
        self.command = [_str("command", c) for c in command]
        self.tracked_paths = [os.fspath(p) for p in tracked_paths]
        self.started = _now_iso()
        self.ended = None
        self.exit_code = None
        self.snapshot_count = 0
        self._merkle_roots = []
        self._network_events = []
        self.executable_identity = None
        self.audit_event_count = 0
        self.audit_integrity = None
        self.audit_attestation = None

    @property
    def merkle_roots(self):
        return list(self._merkle_roots)

    def add_merkle_root(self, root):
        if not isinstance(root, ContentHash):
            raise TypeError("add_merkle_root needs a ContentHash")
        self._merkle_roots.append(root)

    @property
    def network_events(self):
        return [dict(e) for e in self._network_events]

    def set_network_events(self, events):
        checked = []
        for e in events:
            if not isinstance(e, dict):
                raise TypeError("network events are dicts")
            for key in ("timestamp_unix_ms", "mode", "decision", "target"):
                if key not in e:
                    raise ValueError(f"missing {key}")
            if e["decision"] not in ("allow", "deny"):
                raise ValueError(f"invalid decision: {e['decision']}")
            checked.append(dict(e))
        self._network_events = checked

    def _to_dict(self):
        d = {k: getattr(self, k) for k in self._FIELDS}
        d["merkle_roots"] = [r.hex() for r in self._merkle_roots]
        d["network_events"] = self.network_events
        return d

    def to_json(self):
        return json.dumps(self._to_dict(), indent=2)

    @classmethod
    def _from_dict(cls, d):
        if not isinstance(d, dict) or not isinstance(d.get("session_id"), str):
            raise ValueError("Invalid JSON: not session metadata")
        m = cls(d["session_id"], d.get("command", []), d.get("tracked_paths", []))
        for k in ("started", "ended", "executable_identity", "snapshot_count", "exit_code",
                  "audit_event_count", "audit_integrity", "audit_attestation"):
            if k in d:
                setattr(m, k, d[k])
        m._merkle_roots = [ContentHash(h) for h in d.get("merkle_roots", [])]
        m.set_network_events(d.get("network_events", []))
        return m

    @staticmethod
    def from_json(text):
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Invalid JSON: {e}") from None
        return SessionMetadata._from_dict(d)

    def __repr__(self):
        return f"SessionMetadata(id='{self.session_id}', snapshots={self.snapshot_count})"


class SnapshotManager:
    """Content-addressed snapshots of ``tracked_paths`` (directories, or regular files tracked on
    their own), stored in ``session_dir``
    (which must lie outside them). Re-opening an existing session resumes it."""

    def __init__(self, session_dir, tracked_paths, exclusion=None, max_entries=300_000,
                 max_bytes=2_147_483_648):
        if exclusion is None:
            exclusion = ExclusionConfig()
        if not isinstance(exclusion, ExclusionConfig):
            raise TypeError("exclusion must be an ExclusionConfig")
        if int(max_entries) <= 0 or int(max_bytes) <= 0:
            raise ValueError("max_entries and max_bytes must be positive")
        self._store = _nono._SnapshotStore(
            session_dir, [os.fspath(p) for p in tracked_paths], exclusion.use_defaults,
            exclusion.use_gitignore, exclusion.exclude_patterns, exclusion.exclude_globs,
            exclusion.force_include, int(max_entries), int(max_bytes))

    def create_baseline(self):
        """Snapshot 0 of the tracked trees (RuntimeError if the session already has one)."""
        return SnapshotManifest(self._store.baseline())

    def create_incremental(self):
        """The next snapshot; returns (SnapshotManifest, [Change]) against the previous one."""
        if self._store.count() == 0:
            raise RuntimeError("No previous snapshot. Call create_baseline() first.")
        native, changes = self._store.incremental()
        return SnapshotManifest(native), [Change._from_native(c) for c in changes]

    def compute_restore_diff(self, snapshot_number):
        """What restore_to(snapshot_number) would change, changing nothing."""
        return [Change._from_native(c) for c in self._store.restore_diff(snapshot_number)]

    def restore_to(self, snapshot_number):
        """Bring the trees back to a snapshot; returns the changes applied."""
        return [Change._from_native(c) for c in self._store.restore(snapshot_number)]

    def load_manifest(self, number):
        return SnapshotManifest(self._store.load(number))

    def snapshot_count(self):
        return self._store.count()

    def verify(self):
        """Check every manifest's Merkle root and every object's hash (RuntimeError if not)."""
        self._store.verify()

    def save_session_metadata(self, meta):
        if not isinstance(meta, SessionMetadata):
            raise TypeError("save_session_metadata needs a SessionMetadata")
        path = os.path.join(self._store.session_dir, SESSION_METADATA_FILENAME)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(meta.to_json())
        os.replace(tmp, path)

    @staticmethod
    def load_session_metadata(session_dir):
        with open(os.path.join(os.fspath(session_dir), SESSION_METADATA_FILENAME)) as f:
            return SessionMetadata.from_json(f.read())

    def __repr__(self):
        return f"SnapshotManager(snapshots={self._store.count()})"


LEDGER_FILENAME = "ledger.jsonl"
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def _identity(command, cwd, env):
    """The program as nono_exec will resolve it (PATH of the child's environment), hashed."""
    import hashlib
    import shutil
    path = None
    if env:
        pairs = env.items() if isinstance(env, dict) else env
        path = next((v for k, v in pairs if k == "PATH"), None)
    prog = command[0]
    if "/" not in prog:
        prog = shutil.which(prog, path=path or _DEFAULT_PATH)
    elif cwd and not os.path.isabs(prog):
        prog = os.path.join(cwd, prog)
    if not prog or not os.path.isfile(prog):
        return {"resolved_path": None, "sha256": None, "error": f"program not found: {command[0]}"}
    real = os.path.realpath(prog)
    h = hashlib.sha256()
    with open(real, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return {"resolved_path": real, "sha256": h.hexdigest()}


def record_exec(session_dir, caps, command, *, proxy=None, **kwargs):
    """sandboxed_exec(caps, command, **kwargs), recorded in a session ledger in ``session_dir``
    (created; it must not hold a ledger yet, and no writable grant of ``caps`` may reach it):
    ``ledger.jsonl`` (session_start, each supervisor decision and, with ``proxy`` (the handle of
    caps.proxy_only), each proxy decision drained from it, session_end) and ``session.json``
    (SessionMetadata with audit_event_count, audit_integrity, network_events,
    executable_identity). Returns the ExecResult. verify_ledger(session_dir) checks it."""
    session_dir = os.path.abspath(os.fspath(session_dir))
    for g in caps.fs_capabilities():
        if int(g.access) & 2 and (session_dir + "/").startswith(g.resolved.rstrip("/") + "/"):
            raise ValueError(f"the ledger {session_dir} is inside the writable grant {g.original}: "
                             "the command could rewrite its own record")
    os.makedirs(session_dir, mode=0o700, exist_ok=True)
    ledger = _nono._Ledger(os.path.join(session_dir, LEDGER_FILENAME))
    command = [os.fspath(c) for c in command]
    meta = SessionMetadata(os.path.basename(session_dir), command, [])
    meta.executable_identity = _identity(command, kwargs.get("cwd"), kwargs.get("env"))
    grants = [{"path": g.original, "resolved": g.resolved, "access": AccessName(g.access),
               "kind": "file" if g.is_file else "directory"} for g in caps.fs_capabilities()]
    ledger.append("session_start", json.dumps({
        "started": meta.started, "command": command, "cwd": kwargs.get("cwd"), "grants": grants,
        "network": {"mode": caps.network_mode, "proxy_port": caps.proxy_port},
        "executable": meta.executable_identity}))
    result = None
    try:
        result = _nono.sandboxed_exec(caps, command, **kwargs)
    finally:
        events = list(result.audit_events) if result is not None else []
        net = proxy.drain_audit_events() if proxy is not None else []
        for e in sorted(events + net, key=lambda e: e.get("timestamp_unix_ms", e.get("ts_ms", 0))):
            ledger.append("audit_event", json.dumps(e, default=str))
        meta.ended = _now_iso()
        meta.exit_code = result.exit_code if result is not None else None
        meta.audit_event_count = len(events) + len(net)
        meta._network_events = [dict(e) for e in net]
        s = ledger.finish(json.dumps({"ended": meta.ended, "exit_code": meta.exit_code,
                                      "events": meta.audit_event_count,
                                      "events_lost": result.audit_dropped if result else 0}))
        meta.audit_integrity = {"hash_algorithm": "sha256", "event_count": s["records"],
                                "chain_head": s["chain_head"], "merkle_root": s["merkle_root"]}
        with open(os.path.join(session_dir, SESSION_METADATA_FILENAME), "w") as f:
            f.write(meta.to_json())
    return result


def verify_ledger(session_dir):
    """Check ``session_dir``'s ledger: every record's hash, the chain, the Merkle root, and that its
    head and root are those session.json recorded. Returns the summary dict; RuntimeError (errno
    EBADMSG) naming the first bad record otherwise."""
    import errno
    s = _nono._Ledger.verify(os.path.join(os.fspath(session_dir), LEDGER_FILENAME))
    meta = SnapshotManager.load_session_metadata(session_dir)
    integ = meta.audit_integrity or {}
    if (integ.get("chain_head"), integ.get("merkle_root")) != (s["chain_head"], s["merkle_root"]):
        e = RuntimeError("the ledger's last record or Merkle root differs from session.json's "
                         "audit_integrity (rewritten tail)")
        e.errno = errno.EBADMSG
        raise e
    return s


def AccessName(mode):  # noqa: N802 - a tiny mapping helper
    return {1: "read", 2: "write", 3: "read-write"}.get(int(mode), str(mode))
