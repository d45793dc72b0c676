"""The session ledger of nono run, for real: what a session records (command, grants, network,
executable identity, supervisor and proxy decisions, exit status), nono audit verify/show/export,
and tampering with each field of each record kind detected and located; dropped, reordered,
appended and cut-off records too."""
import hashlib
import json
import os
import pathlib
import shutil
import socket

import pytest

from conftest import run_nono


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    return dict(os.environ, XDG_STATE_HOME=str(state))


def sessions(env):
    d = pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "audit"
    # .exe-cache: the programs' remembered hashes, not a session
    return sorted(n for n in os.listdir(d) if not n.startswith(".")) if d.exists() else []


def ledger_of(env, sid):
    return pathlib.Path(env["XDG_STATE_HOME"]) / "nono" / "audit" / sid / "ledger.jsonl"


def verify(env, sid):
    r = run_nono("audit", "verify", sid, env=env)
    return r.returncode, r.stdout + r.stderr


def unix_listener(path):
    """A listening unix socket at `path` (close it when done)."""
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.listen(1)
    return s


@pytest.fixture
def recorded(tmp_path, env):
    """A session with a supervisor decision and proxy decisions: a unix-socket connect denied
    under --net-block, then a proxied request to a host the proxy refuses."""
    work = tmp_path / "work"
    work.mkdir()
    sock = work / "s.sock"
    # A real listener: a connect to a missing path is answered ENOENT unrecorded (no decision)
    listener = unix_listener(sock)
    code = ("import socket\ns = socket.socket(socket.AF_UNIX)\n"
            f"for _ in range(2):\n"
            f"    try: s.connect({str(sock)!r})\n    except OSError as e: print('denied', e.errno)\n")
    r = run_nono("run", "--net-block", "--allow", work, "--", "/usr/bin/python3", "-c", code, env=env)
    listener.close()
    assert r.returncode == 0, r.stderr
    curl = shutil.which("curl")
    r2 = run_nono("run", "--allow-domain", "allowed.invalid", "--allow", work, "--", curl, "-s",
                  "-o", "/dev/null", "-w", "%{http_code}", "http://denied.invalid/x", env=env)
    assert r2.stdout.strip() == "403", r2.stdout + r2.stderr
    return sessions(env)


def test_session_records_everything(recorded, env):
    sup, proxy = recorded
    recs = [json.loads(line) for line in ledger_of(env, sup).read_text().splitlines()]
    kinds = [r["kind"] for r in recs]
    assert kinds[0] == "session_start" and kinds[-1] == "session_end" and "audit_event" in kinds
    start = recs[0]["data"]
    assert start["command"][0] == "/usr/bin/python3"
    assert start["network"]["mode"] == "blocked"
    assert any(g["source"] == "user" and g["access"] == "read-write" for g in start["grants"])
    assert any(g["source"] == "system" for g in start["grants"])
    exe = start["executable"]
    assert exe["sha256"] == hashlib.sha256(open(exe["resolved_path"], "rb").read()).hexdigest()
    ev = [r["data"] for r in recs if r["kind"] == "audit_event"]
    assert any(e["source"] == "supervisor" and e["decision"] == "deny" for e in ev)
    end = recs[-1]["data"]
    assert end["exit_code"] == 0 and end["count"] == len(recs) - 1
    meta = json.loads((ledger_of(env, sup).parent / "session.json").read_text())
    assert meta["audit_event_count"] == len(ev)
    assert meta["audit_integrity"]["event_count"] == len(recs)
    assert meta["executable_identity"] == exe
    # The proxied session: the proxy's refusal is in the ledger and in network_events.
    precs = [json.loads(line) for line in ledger_of(env, proxy).read_text().splitlines()]
    pstart = precs[0]["data"]
    assert pstart["network"]["mode"] == "proxy-only"
    assert pstart["network"]["allowed_domains"] == ["allowed.invalid"]
    pev = [r["data"] for r in precs if r["kind"] == "audit_event"]
    assert any(e["source"] == "proxy" and e["decision"] == "deny" and e["target"] == "denied.invalid"
               for e in pev), pev
    pmeta = json.loads((ledger_of(env, proxy).parent / "session.json").read_text())
    assert any(e["target"] == "denied.invalid" for e in pmeta["network_events"])
    for sid in recorded:
        code, out = verify(env, sid)
        assert code == 0 and "OK" in out, out


def test_show_and_export(recorded, env):
    sid = recorded[0]
    show = run_nono("audit", "show", sid, "--json", env=env)
    assert show.returncode == 0
    doc = json.loads(show.stdout)
    assert doc["session"]["session_id"] == sid and doc["records"][0]["kind"] == "session_start"
    exp = run_nono("audit", "export", sid, env=env)
    lines = [json.loads(x) for x in exp.stdout.splitlines()]
    assert len(lines) == len(doc["records"]) and all(x["session_id"] == sid for x in lines)
    assert sid in run_nono("audit", "list", env=env).stdout


def mutate(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "x"
    if isinstance(value, list):
        return value + ["x"]
    if isinstance(value, dict):
        return dict(value, injected=1)
    raise AssertionError(type(value))


def test_tampering_with_any_field_of_any_record_is_detected(recorded, env):
    sid = recorded[0]
    path = ledger_of(env, sid)
    original = path.read_text()
    lines = original.splitlines()
    tried = set()
    for i, line in enumerate(lines):
        rec = json.loads(line)
        fields = [(k,) for k in rec] + [("data", k) for k in rec["data"]]
        for f in fields:
            edited = json.loads(line)
            target = edited
            for k in f[:-1]:
                target = target[k]
            target[f[-1]] = mutate(target[f[-1]])
            new = lines[:i] + [json.dumps(edited, sort_keys=True, separators=(",", ":"))] + lines[i + 1:]
            path.write_text("\n".join(new) + "\n")
            code, out = verify(env, sid)
            assert code == 1 and f"record {i}:" in out, (i, f, out)
            tried.add((rec["kind"], f))
    path.write_text(original)
    assert verify(env, sid)[0] == 0
    kinds = {k for k, _ in tried}
    assert kinds == {"session_start", "audit_event", "session_end"}


def test_dropped_reordered_appended_and_cut_records(recorded, env):
    sid = recorded[0]
    path = ledger_of(env, sid)
    lines = path.read_text().splitlines()
    assert len(lines) >= 4

    def check(new, expect):
        path.write_text("".join(x + "\n" for x in new))
        code, out = verify(env, sid)
        assert code == 1 and expect in out, out

    check(lines[:1] + lines[2:], "record 1: out of sequence")  # dropped
    check([lines[0], lines[2], lines[1]] + lines[3:], "record 1: out of sequence")  # reordered
    check(lines + [lines[1]], f"record {len(lines)}: appended after session_end")
    check(lines[:-1], "no session_end")  # cut off
    path.write_text("".join(x + "\n" for x in lines)[:-5])
    code, out = verify(env, sid)
    assert code == 1 and "cut short" in out
    path.write_text("".join(x + "\n" for x in lines))
    assert verify(env, sid)[0] == 0


def canon(rec):
    return json.dumps(rec, sort_keys=True, separators=(",", ":"))


def merkle(hashes):
    level = [hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest() for h in hashes]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        level = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() if i + 1 < len(level)
                 else level[i] for i in range(0, len(level), 2)]
    return level[0].hex()


def test_rewritten_tail_is_caught_by_session_json(recorded, env):
    """Dropping the last decision and forging a new, self-consistent session_end (re-hashed,
    re-chained, new Merkle root) passes the file's own checks but not the comparison with
    session.json's audit_integrity."""
    sid = recorded[0]
    path = ledger_of(env, sid)
    recs = [json.loads(x) for x in path.read_text().splitlines()]
    kept = recs[:-2]  # drop the last audit_event and session_end
    end = dict(recs[-1])
    end["seq"] = len(kept)
    end["prev"] = kept[-1]["hash"]
    end["data"] = dict(end["data"], count=len(kept), merkle_root=merkle([r["hash"] for r in kept]))
    del end["hash"]
    end["hash"] = hashlib.sha256(canon(end).encode()).hexdigest()
    path.write_text("".join(canon(r) + "\n" for r in kept + [end]))
    code, out = verify(env, sid)
    assert code == 1 and "audit_integrity" in out, out


def test_ledger_out_of_reach_or_off(tmp_path):
    work = tmp_path / "work"
    (work / "state").mkdir(parents=True)
    e = dict(os.environ, XDG_STATE_HOME=str(work / "state"))
    r = run_nono("run", "--allow", work, "--", "/bin/true", env=e)
    assert r.returncode == 0 and "ledger: not recorded" in r.stderr
    assert not (work / "state" / "nono" / "audit").exists() or sessions(e) == []
    other = tmp_path / "state2"
    other.mkdir()
    e2 = dict(os.environ, XDG_STATE_HOME=str(other))
    assert run_nono("run", "--no-ledger", "--", "/bin/true", env=e2).returncode == 0
    assert sessions(e2) == []


def test_executable_hash_follows_a_changed_program(tmp_path, env):
    """The remembered hash (.exe-cache) is not trusted once the program changed, even with its
    mtime set back."""
    prog = tmp_path / "prog"
    shutil.copy("/bin/true", prog)
    os.chmod(prog, 0o755)

    def recorded_sha():
        r = run_nono("run", "--read", tmp_path, "--", prog, env=env)
        assert r.returncode == 0, r.stderr
        before = getattr(recorded_sha, "seen", set())
        (sid,) = set(sessions(env)) - before
        recorded_sha.seen = set(sessions(env))
        first = json.loads(ledger_of(env, sid).read_text().splitlines()[0])
        return first["data"]["executable"]["sha256"]

    assert recorded_sha() == hashlib.sha256(prog.read_bytes()).hexdigest()
    assert recorded_sha() == hashlib.sha256(prog.read_bytes()).hexdigest()  # from the cache
    st = os.stat(prog)
    with open(prog, "r+b") as f:
        f.seek(0, 2)
        f.write(b"\0" * 16)
    os.utime(prog, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert recorded_sha() == hashlib.sha256(prog.read_bytes()).hexdigest()


def test_grants_with_escaped_and_non_ascii_names_are_recorded_as_granted(tmp_path, env):
    """session_start's grants are written as canonical text without jansson when no \\u escape
    is needed (audit_run.c): names with a quote, a backslash, a tab, a control character, DEL and
    non-ASCII letters are recorded exactly as the dry run lists them, and the session verifies."""
    names = ['q"uo\\te', "tab\tx", "ctl\x01x", "del\x7fx", "ünï", "plain"]
    for n in names:
        (tmp_path / n).mkdir()
    (tmp_path / 'f"ile\\').write_text("x")
    flags = ["--no-tmp", "--read-file", tmp_path / 'f"ile\\']
    for n in names:
        flags += ["--read", tmp_path / n]
    dry = run_nono("run", "--dry-run", "--json", *flags, "--", "/bin/true", env=env)
    assert dry.returncode == 0, dry.stderr
    want = [(g["path"], g["resolved"], g["access"], "directory" if g["kind"] == "dir" else g["kind"],
             "system" if g["system"] else "user") for g in json.loads(dry.stdout)["grants"]]
    r = run_nono("run", *flags, "--", "/bin/true", env=env)
    assert r.returncode == 0, r.stderr
    (sid,) = sessions(env)
    start = json.loads(ledger_of(env, sid).read_text().splitlines()[0])["data"]
    got = [(g["path"], g["resolved"], g["access"], g["kind"], g["source"]) for g in start["grants"]]
    assert got == want
    assert sum(1 for g in got if g[4] == "user") == len(names) + 1
    code, out = verify(env, sid)
    assert code == 0, out


def test_denials_without_a_draining_thread_all_reach_the_ledger(tmp_path, env):
    """Without -v or a proxy no thread drains the supervisor's event ring while the command runs
    (denials.c): the ring then holds as many decisions as the ledger keeps, so a command denied
    more often than the drained ring held (4096) loses none of them from the ledger or the
    summary."""
    work = tmp_path / "work"
    work.mkdir()
    sock = work / "s.sock"
    listener = unix_listener(sock)
    code = ("import socket\nn = 0\nfor _ in range(4200):\n    s = socket.socket(socket.AF_UNIX)\n"
            f"    try: s.connect({str(sock)!r})\n    except PermissionError: n += 1\n"
            "    s.close()\nprint(n)\n")
    r = run_nono("run", "--net-block", "--read", work, "--", "/usr/bin/python3", "-c", code,
                 env=env, timeout=120)
    listener.close()
    assert r.returncode == 0 and r.stdout.strip() == "4200", r.stdout + r.stderr
    assert "(x4200)" in r.stderr and "could not keep" not in r.stderr, r.stderr
    assert "were lost" not in r.stderr, r.stderr
    (sid,) = sessions(env)
    recs = [json.loads(line) for line in ledger_of(env, sid).read_text().splitlines()]
    denied = [x for x in recs if x["kind"] == "audit_event" and x["data"]["decision"] == "deny"]
    assert len(denied) == 4200
    assert recs[-1]["data"]["events_lost"] == 0
    code, out = verify(env, sid)
    assert code == 0, out


def test_names_that_are_not_utf8_are_recorded_not_dropped(tmp_path, env):
    """jansson refuses invalid UTF-8, and a grant or argument that is not UTF-8 used to vanish
    from session_start and from --dry-run --json without a word. Both now carry it as
    {"hex": bytes}; --rollback refuses to track a tree whose path JSON cannot hold as a string."""
    bad = os.fsdecode(bytes(tmp_path) + b"/bad\xff")
    os.mkdir(bad)
    arg = os.fsdecode(b"arg\xfe")
    want = {"hex": (bytes(tmp_path) + b"/bad\xff").hex()}
    dry = run_nono("run", "--dry-run", "--json", "--no-tmp", "--read", bad, "--", "/bin/echo", arg,
                   env=env)
    assert dry.returncode == 0, dry.stderr
    d = json.loads(dry.stdout)
    assert d["command"] == ["/bin/echo", {"hex": b"arg\xfe".hex()}]
    assert [g["resolved"] for g in d["grants"] if not g["system"]] == [want]
    r = run_nono("run", "-q", "--no-tmp", "--read", bad, "--", "/bin/echo", "x", arg, env=env,
                 errors="surrogateescape")
    assert r.returncode == 0, r.stderr
    (sid,) = sessions(env)
    start = json.loads(ledger_of(env, sid).read_text().splitlines()[0])["data"]
    assert start["command"] == ["/bin/echo", "x", {"hex": b"arg\xfe".hex()}]
    assert [(g["path"], g["resolved"]) for g in start["grants"] if g["source"] == "user"] == \
        [(want, want)]
    code, out = verify(env, sid)
    assert code == 0, out
    listed = run_nono("audit", "list", env=env)
    assert listed.returncode == 0 and "/bin/echo x ?" in listed.stdout, listed.stdout
    rb = run_nono("run", "--rollback", "--no-tmp", "--allow", bad, "--", "/bin/true", env=env,
                  errors="surrogateescape")
    assert rb.returncode == 125 and "not valid UTF-8" in rb.stderr, rb.stderr
