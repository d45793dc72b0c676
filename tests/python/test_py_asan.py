"""Under an ASan build the extension needs libasan loaded first: re-run this directory in a python
started with LD_PRELOAD=libasan (leak detection off: CPython itself does not free everything at exit).
"""
import os
import subprocess
import sys

import pytest

from nono_py_testlib import ASAN_RERUN, HERE, ROOT, libasan_path


@pytest.mark.skipif(not ASAN_RERUN, reason="not an ASan build, or already running under libasan")
def test_python_suite_under_asan():
    env = dict(os.environ)
    env["LD_PRELOAD"] = libasan_path()
    env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0:halt_on_error=1"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", str(HERE)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    tail = (r.stdout[-12000:] + "\n" + r.stderr[-6000:])
    assert r.returncode == 0, tail
    assert "AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr, tail
    assert " passed" in r.stdout, tail
