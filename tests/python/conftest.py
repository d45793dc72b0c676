"""Fixtures for the nono_py suite: the extension is imported from the build tree
(<NONO_BUILD_DIR>/python/nono_py, built by meson next to a copy of __init__.py).

ASan builds: an ASan-instrumented extension can only be loaded by a python whose first library is
libasan. When the build is ASan and this interpreter was started without it, every test here is
skipped and test_py_asan.py re-runs this directory in a subprocess with LD_PRELOAD=libasan.
"""
import importlib.util
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
# A subdirectory conftest replaces sys.modules["conftest"], which the top-level tests import by that
# name (`from conftest import BUILD`): re-export the top-level conftest's plain names so both work.
_spec = importlib.util.spec_from_file_location(
    "_nono_tests_conftest", pathlib.Path(__file__).resolve().parent.parent / "conftest.py")
_top = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_top)
globals().update({k: v for k, v in vars(_top).items()
                  if not k.startswith("__") and not hasattr(v, "_pytestfixturefunction")})

from nono_py_testlib import ASAN_RERUN, HERE, PYDIR, LoopbackServer, UdpSink, make_base_caps  # noqa: E402

def pytest_collection_modifyitems(config, items):
    if not ASAN_RERUN:
        return
    skip = pytest.mark.skip(
        reason="ASan build: runs in the LD_PRELOAD=libasan subprocess of "
               "tests/python/test_py_asan.py::test_python_suite_under_asan")
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).parents and item.name != "test_python_suite_under_asan":
            item.add_marker(skip)


if not ASAN_RERUN:
    sys.path.insert(0, str(PYDIR))


@pytest.fixture(scope="session")
def nono_py():
    if not (PYDIR / "nono_py" / "__init__.py").exists():
        pytest.fail(f"{PYDIR}/nono_py is missing: build first (scripts/test.sh does)")
    import nono_py as mod
    assert pathlib.Path(mod.__file__).resolve().parent == (PYDIR / "nono_py").resolve(), mod.__file__
    return mod


@pytest.fixture
def base_caps(nono_py):
    """Just enough to run /usr/bin/python3 and /bin/sh in a sandboxed child: system dirs read-only."""
    return lambda: make_base_caps(nono_py)


@pytest.fixture
def loopback_server():
    s = LoopbackServer()
    yield s
    s.close()


@pytest.fixture
def udp_sink():
    s = UdpSink()
    yield s
    s.close()


