"""Shared fixtures: where the build is, how to run the CLI."""
import atexit
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUILD = pathlib.Path(os.environ.get("NONO_BUILD_DIR", ROOT / "build"))
NONO = BUILD / "src" / "cli" / "nono"
# A --timeout long enough for a Python command to start and write its pid first: the VM tier runs
# under software emulation (TCG), where interpreter start takes seconds.
START_TIMEOUT_S = "12" if os.environ.get("NONO_IN_VM") else "3"

# Every nono run records a session ledger (and --rollback a snapshot store) under
# $XDG_STATE_HOME/nono: the suite's go to a directory of its own, removed at exit, never the
# user's ~/.local/state. Tests that look at them set their own XDG_STATE_HOME.
_STATE = tempfile.mkdtemp(prefix="nono-tests-state-")
os.environ["XDG_STATE_HOME"] = _STATE
atexit.register(shutil.rmtree, _STATE, True)


def asan_build():
    """True when the build under test is the ASan+UBSan one."""
    try:
        opts = json.loads((BUILD / "meson-info" / "intro-buildoptions.json").read_text())
    except (OSError, ValueError):
        return False
    return any(o["name"] == "b_sanitize" and "address" in str(o["value"]) for o in opts)


@pytest.fixture(scope="session")
def build_dir():
    if not NONO.exists():
        pytest.fail(f"{NONO} is missing: build first (scripts/test.sh does)")
    return BUILD


@pytest.fixture(scope="session")
def nono(build_dir):
    return str(NONO)


def run_nono(*args, timeout=60, **kw):
    """Run the CLI; returns CompletedProcess with text output."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run([str(NONO), *map(str, args)], timeout=timeout, **kw)


@pytest.fixture
def nono_run():
    return run_nono


def pid_dead(pid, wait=10.0):
    """True once `pid` is gone or a zombie (killed, waiting for its new parent to reap it), polling
    for at most `wait` seconds. A process that vanishes between open() and read() of its stat file
    (ENOENT or ESRCH) is gone too."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False
