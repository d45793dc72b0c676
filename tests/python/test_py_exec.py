"""sandboxed_exec: real children under real Landlock/seccomp, denied outside their grants."""
import errno
import math
import os
import signal
import threading

import pytest

from nono_py_testlib import PYTHON, run_probe

DENIED = (errno.EACCES, errno.EPERM)


def test_reads_inside_grant_denied_outside(nono_py, base_caps, tmp_path):
    A = nono_py.AccessMode
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (inside / "ok.txt").write_text("granted data")
    (outside / "secret.txt").write_text("top secret")
    caps = base_caps()
    caps.allow_path(str(inside), A.READ)
    r, out = run_probe(nono_py, caps, f"read:{inside}/ok.txt", f"read:{outside}/secret.txt",
                       f"listdir:{outside}", f"write:{inside}/new.txt", "read:/root/.bashrc")
    assert r.exit_code == 0, r.stderr
    assert out[f"read:{inside}/ok.txt"] == {"ok": True, "data": "granted data",
                                            "action": f"read:{inside}/ok.txt"}
    sec = out[f"read:{outside}/secret.txt"]
    assert sec["ok"] is False and sec["errno"] == errno.EACCES
    assert sec["error"].startswith("PermissionError: [Errno 13] Permission denied")
    assert out[f"listdir:{outside}"]["errno"] == errno.EACCES
    assert out[f"write:{inside}/new.txt"]["errno"] == errno.EACCES  # read-only grant
    assert not (inside / "new.txt").exists()
    assert out["read:/root/.bashrc"]["ok"] is False


def test_write_grants(nono_py, base_caps, tmp_path):
    A = nono_py.AccessMode
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("orig")
    caps = base_caps()
    caps.allow_path(str(rw), A.READ_WRITE)
    caps.allow_file(str(ro / "f"), A.READ)
    r, out = run_probe(nono_py, caps, f"write:{rw}/made", f"write:{ro}/f", f"read:{ro}/f")
    assert out[f"write:{rw}/made"]["ok"] is True
    assert (rw / "made").read_text() == "written by the sandbox\n"
    assert out[f"write:{ro}/f"]["errno"] == errno.EACCES
    assert (ro / "f").read_text() == "orig"
    assert out[f"read:{ro}/f"]["data"] == "orig"


def test_result_shape_exit_code_and_output(nono_py, base_caps):
    r = nono_py.sandboxed_exec(base_caps(), ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"])
    assert type(r).__name__ == "ExecResult"
    assert (r.exit_code, r.stdout, r.stderr) == (7, b"out\n", b"err\n")
    exit_code, stdout, stderr = r  # tuple-like
    assert exit_code == 7 and isinstance(stdout, bytes) and isinstance(stderr, bytes)
    assert r.timed_out is False and r.term_signal == 0
    assert r.audit_events == [] and r.audit_dropped == 0  # network allowed: no supervisor
    assert "landlock" in r.enforcement.lower()  # the human rendering is there
    assert r.report["landlock_abi"] >= 1 and r.report["seccomp"] is True
    assert r.report["net_enforced"] == "allowed" and r.report["downgrades"] == []
    big = nono_py.sandboxed_exec(base_caps(), [PYTHON, "-c", "import sys; sys.stdout.write('x' * 1000000)"])
    assert big.exit_code == 0 and big.stdout == b"x" * 1000000


def test_signal_gives_minus_signo(nono_py, base_caps):
    r = nono_py.sandboxed_exec(base_caps(), ["/bin/sh", "-c", "kill -KILL $$"])
    assert r.exit_code == -signal.SIGKILL and r.term_signal == signal.SIGKILL
    r = nono_py.sandboxed_exec(base_caps(), ["/bin/sh", "-c", "kill -TERM $$"])
    assert r.exit_code == -signal.SIGTERM


def test_timeout_gives_124(nono_py, base_caps):
    r = nono_py.sandboxed_exec(base_caps(), ["/bin/sh", "-c", "echo started; sleep 60"], timeout_secs=0.5)
    assert r.exit_code == 124 and r.timed_out is True
    assert r.stdout == b"started\n"
    r = nono_py.sandboxed_exec(base_caps(), ["/bin/true"], timeout_secs=30)
    assert r.exit_code == 0 and r.timed_out is False


def test_environment_not_inherited_unless_asked(nono_py, base_caps, monkeypatch):
    monkeypatch.setenv("NONO_PY_PARENT_SECRET", "parent-only")
    monkeypatch.setenv("LD_LIBRARY_PATH", "/nonexistent")
    monkeypatch.delenv("LD_PRELOAD", raising=False)  # the ASan re-run's (named in the error)
    show = [PYTHON, "-c", "import os, json; print(json.dumps(dict(os.environ)))"]
    import json
    env = json.loads(nono_py.sandboxed_exec(base_caps(), show).stdout)
    assert "NONO_PY_PARENT_SECRET" not in env and "HOME" not in env
    env = json.loads(nono_py.sandboxed_exec(base_caps(), show, env=[("A", "1"), ("B", "x=y")]).stdout)
    assert env.get("A") == "1" and env.get("B") == "x=y" and "NONO_PY_PARENT_SECRET" not in env
    # inherited loader variables are refused by name, not dropped silently
    with pytest.raises(ValueError, match="LD_LIBRARY_PATH"):
        nono_py.sandboxed_exec(base_caps(), show, inherit_env=True)
    monkeypatch.delenv("LD_LIBRARY_PATH")
    monkeypatch.delenv("LD_PRELOAD", raising=False)  # the ASan re-run's
    env = json.loads(nono_py.sandboxed_exec(base_caps(), show, inherit_env=True).stdout)
    assert env.get("NONO_PY_PARENT_SECRET") == "parent-only"
    env = json.loads(nono_py.sandboxed_exec(base_caps(), show, env={"C": "3"}).stdout)
    assert env.get("C") == "3"


@pytest.mark.parametrize("name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "DYLD_INSERT_LIBRARIES"])
def test_loader_variables_refused(nono_py, base_caps, name):
    with pytest.raises(ValueError, match=name):
        nono_py.sandboxed_exec(base_caps(), ["/bin/true"], env=[(name, "/tmp/evil.so")])


def test_argument_errors(nono_py, base_caps, tmp_path):
    caps = base_caps()
    ex = nono_py.sandboxed_exec
    with pytest.raises(ValueError, match="empty"):
        ex(caps, [])
    with pytest.raises(TypeError):
        ex(caps, "/bin/true")
    with pytest.raises(TypeError):
        ex("caps", ["/bin/true"])
    with pytest.raises(ValueError):
        ex(caps, ["/bin/true"], timeout_secs=-1)
    with pytest.raises(ValueError):
        ex(caps, ["/bin/true"], timeout_secs=math.nan)
    with pytest.raises(TypeError):
        ex(caps, ["/bin/true"], timeout_secs="5")
    with pytest.raises(ValueError):
        ex(caps, ["/bin/echo", "a\0b"])
    with pytest.raises(ValueError):
        ex(caps, ["/bin/true"], cwd="/tmp\0x")
    with pytest.raises(ValueError):
        ex(caps, ["/bin/true"], env=[("A=B", "1")])
    with pytest.raises(ValueError):
        ex(caps, ["/bin/true"], env=[("A", "x\0y")])
    with pytest.raises(TypeError):
        ex(caps, ["/bin/true"], env=["A=1"])
    with pytest.raises(TypeError):
        ex(caps, ["/bin/true"], env="A=1")
    with pytest.raises(FileNotFoundError):
        ex(caps, [str(tmp_path / "no-such-program")])
    noexec = tmp_path / "noexec.sh"
    noexec.write_text("#!/bin/sh\necho hi\n")
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ)
    with pytest.raises(PermissionError):
        ex(caps, [str(noexec)])


def test_cwd(nono_py, base_caps, tmp_path):
    caps = base_caps()
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ)
    r = nono_py.sandboxed_exec(caps, ["/bin/sh", "-c", "pwd"], cwd=tmp_path)
    assert r.stdout.decode().strip() == str(tmp_path)


def test_gil_released_while_child_runs(nono_py, base_caps, tmp_path):
    """The child blocks until a Python thread of the parent writes to a FIFO: that thread can only run
    if sandboxed_exec released the GIL (else the child would hit its timeout: exit code 124)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    caps = base_caps()
    caps.allow_path(str(tmp_path), nono_py.AccessMode.READ)

    def writer():
        with open(fifo, "w") as f:
            f.write("from-parent-thread\n")

    t = threading.Thread(target=writer)
    t.start()
    r = nono_py.sandboxed_exec(caps, ["/bin/sh", "-c", f"read x < {fifo}; echo got $x"], timeout_secs=60)
    t.join()
    assert r.exit_code == 0 and r.stdout == b"got from-parent-thread\n"


def test_concurrent_execs_from_threads(nono_py, base_caps, tmp_path):
    results = {}

    def run(i):
        results[i] = nono_py.sandboxed_exec(base_caps(), ["/bin/sh", "-c", f"echo {i}"])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i: (r.exit_code, r.stdout) for i, r in results.items()} == {
        i: (0, f"{i}\n".encode()) for i in range(6)}


def test_block_network_denies_tcp_udp_and_unix(nono_py, base_caps, loopback_server, udp_sink, tmp_path):
    import socket
    allowed_path, other_path = tmp_path / "allowed.sock", tmp_path / "other.sock"
    socks = []
    for p in (allowed_path, other_path):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(p))
        s.listen(4)
        socks.append(s)
    try:
        caps = base_caps()
        caps.allow_unix_socket(str(allowed_path))
        caps.block_network()
        acts = (f"tcp:127.0.0.1:{loopback_server.port}", f"udp:127.0.0.1:{udp_sink.port}",
                f"unix:{allowed_path}", f"unix:{other_path}")
        r, out = run_probe(nono_py, caps, *acts)
        assert r.exit_code == 0, r.stderr
        assert out[acts[0]]["ok"] is False and out[acts[0]]["errno"] in DENIED, out[acts[0]]
        assert out[acts[1]]["ok"] is False and out[acts[1]]["errno"] in DENIED, out[acts[1]]
        assert out[acts[2]]["ok"] is True, out[acts[2]]
        assert out[acts[3]]["ok"] is False and out[acts[3]]["errno"] in DENIED, out[acts[3]]
        assert loopback_server.accepts == 0
        assert udp_sink.received() == []
        # the supervisor's decision on the unix connect is reported with the result
        assert any(e["source"] == "supervisor" and e["decision"] == "deny" and e["family"] == "unix"
                   and e["target"] == str(other_path) for e in r.audit_events), r.audit_events
        assert r.audit_dropped == 0
        # The same probe without block_network reaches everything: the probe itself works.
        caps2 = base_caps()
        r2, out2 = run_probe(nono_py, caps2, *acts)
        assert all(v["ok"] for v in out2.values()), out2
        assert loopback_server.accepts == 1 and udp_sink.received() == [b"escaped"]
    finally:
        for s in socks:
            s.close()


def test_audit_allowed_records_allowed_calls(nono_py, base_caps, tmp_path):
    """Allowed supervised calls are recorded only when asked (nono_exec_opts.audit_allowed): the
    option replaced the library's NONO_SUPERVISOR_AUDIT_ALLOW environment variable."""
    import socket
    path = tmp_path / "allowed.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(4)
    try:
        caps = base_caps()
        caps.allow_unix_socket(str(path))
        caps.block_network()
        act = f"unix:{path}"

        def allowed(r):
            return [e for e in r.audit_events if e["source"] == "supervisor" and e["family"] == "unix"
                    and e["decision"] == "allow" and e["target"] == str(path)]
        r, out = run_probe(nono_py, caps, act, audit_allowed=True)
        assert out[act]["ok"] is True, out[act]
        assert allowed(r), r.audit_events
        r, out = run_probe(nono_py, caps, act)
        assert out[act]["ok"] is True, out[act]
        assert allowed(r) == [], r.audit_events
        with pytest.raises(TypeError):  # keyword-only
            nono_py.sandboxed_exec(caps, ["/bin/true"], None, None, None, False, True)
    finally:
        srv.close()


def test_supervisor_events_beyond_the_cap_are_counted(nono_py, base_caps, tmp_path):
    """300 denied unix connects: the result keeps the newest 256 decisions and counts the rest.
    (Real socket files: a connect to a missing path is answered ENOENT unrecorded.)"""
    import socket
    for i in range(300):
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(f"{tmp_path}/nope{i}.sock")
    caps = base_caps()
    caps.block_network()
    code = ("import socket\n"
            "for i in range(300):\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            f"        s.connect('{tmp_path}/nope%d.sock' % i)\n"
            "    except OSError:\n"
            "        pass\n"
            "    s.close()\n")
    r = nono_py.sandboxed_exec(caps, [PYTHON, "-c", code])
    assert r.exit_code == 0, r.stderr
    unix = [e for e in r.audit_events if e["family"] == "unix" and e["target"].startswith(str(tmp_path))]
    assert len(r.audit_events) == 256
    assert r.audit_dropped >= 300 - 256  # (the interpreter's own startup connects add a few)
    assert unix[-1]["target"] == f"{tmp_path}/nope299.sock"


def test_nono_py_error_types(nono_py, base_caps, tmp_path):
    """nono-py's exception contract: a missing program is both FileNotFoundError and RuntimeError
    ("Program not found in PATH"), a negative timeout names timeout_secs, a missing cwd is
    FileNotFoundError."""
    with pytest.raises(RuntimeError, match="Program not found in PATH: nono-no-such-program") as ei:
        nono_py.sandboxed_exec(base_caps(), ["nono-no-such-program"])
    assert isinstance(ei.value, FileNotFoundError) and ei.value.errno == errno.ENOENT
    assert isinstance(ei.value, nono_py.ProgramNotFoundError)
    with pytest.raises(FileNotFoundError):
        nono_py.sandboxed_exec(base_caps(), [str(tmp_path / "nope")])
    for bad in (-1.0, -0.001, float("nan")):
        with pytest.raises(ValueError, match="timeout_secs must be non-negative"):
            nono_py.sandboxed_exec(base_caps(), ["/bin/true"], timeout_secs=bad)
    with pytest.raises(FileNotFoundError, match="cwd does not exist") as ei:
        nono_py.sandboxed_exec(base_caps(), ["/bin/true"], cwd=str(tmp_path / "gone"))
    assert ei.value.errno == errno.ENOENT


def test_capture_cap_keeps_what_was_captured(nono_py, base_caps):
    """Past 64 MiB a stream the command is killed and RuntimeError (errno EFBIG) raised; .result is
    the ExecResult of what was captured, up to the cap (nothing silently truncated or lost)."""
    cmd = [PYTHON, "-c", "import sys\nsys.stderr.write('started\\n'); sys.stderr.flush()\n"
           "b = b'x' * (1 << 20)\nwhile True: sys.stdout.buffer.write(b)"]
    with pytest.raises(RuntimeError) as ei:
        nono_py.sandboxed_exec(base_caps(), cmd, timeout_secs=120)
    assert ei.value.errno == errno.EFBIG and "64 MiB" in str(ei.value)
    part = ei.value.result
    assert len(part.stdout) == 64 << 20 and set(part.stdout[:4096]) == {ord("x")}
    assert part.stderr == b"started\n"


def test_user_namespaces_refused_unless_allowed(nono_py, base_caps):
    """Issue 11: unshare(CLONE_NEWUSER) is refused in the sandbox; allow_user_namespaces() opts in
    (the same switch as the CLI's --allow-userns and nono_caps_set_user_namespaces)."""
    code = ("import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); "
            "r = libc.unshare(0x10000000); print(r, ctypes.get_errno())")
    caps = base_caps()
    r = nono_py.sandboxed_exec(caps, [PYTHON, "-c", code])
    assert r.stdout.split() == [b"-1", str(errno.EPERM).encode()], (r.stdout, r.stderr)
    caps.allow_user_namespaces()
    r = nono_py.sandboxed_exec(caps, [PYTHON, "-c", code])
    assert r.stdout.split() == [b"0", b"0"], (r.stdout, r.stderr)
