"""`pip install .` builds and installs nono_py with its libnono (pyproject.toml, meson-python),
offline (--no-build-isolation, Debian's python3-mesonpy) into a fresh venv, and the quickstart of
python/README.md runs there, from the installed package."""
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from nono_py_testlib import PYTHON, ROOT

IGNORE = shutil.ignore_patterns(".git", "build", "build-*", "__pycache__", ".mesonpy-*", "*.pyc")


def _have(module):
    return subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not _have("mesonpy"), reason="python3-mesonpy not installed (scripts/deps.sh)"),
    pytest.mark.skipif(not _have("ensurepip"), reason="python3-venv not installed (scripts/deps.sh)"),
]


def quickstart():
    """The first python block of python/README.md (the quickstart) and its documented output."""
    text = (ROOT / "python" / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    return code


def test_pip_install_offline_into_fresh_venv(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE, symlinks=True)
    venv = tmp_path / "venv"
    # --system-site-packages only so that pip finds Debian's build backend (mesonpy) offline;
    # the package itself must come from the venv.
    r = subprocess.run([PYTHON, "-m", "venv", "--system-site-packages", str(venv)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(tmp_path), "PIP_NO_INPUT": "1",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-build-isolation", "--no-index",
                        "--no-cache-dir", str(src)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Successfully installed nono-py-0.1.0" in r.stdout, r.stdout[-2000:]
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    sos = list((site / "nono_py").glob("_nono.*.so"))
    assert len(sos) == 1, list((site / "nono_py").iterdir())
    # libnono is inside the extension: nothing to find in a libdir at run time.
    ldd = subprocess.run(["ldd", str(sos[0])], capture_output=True, text=True).stdout
    assert "libnono" not in ldd, ldd
    assert not list(venv.rglob("libnono.so*")) and not (venv / "bin" / "nono").exists()

    work = tmp_path / "run"
    work.mkdir()
    (work / "quickstart.py").write_text(
        "import pathlib, nono_py\n"
        "print('FROM', pathlib.Path(nono_py._nono.__file__).resolve())\n" + quickstart())
    r = subprocess.run([str(venv / "bin" / "python"), "quickstart.py"], capture_output=True,
                       text=True, env=env, cwd=work, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"FROM {sos[0].resolve()}", lines
    # what the README says the quickstart prints
    assert lines[1:] == ["1 b'hello\\n'", "True", "blocked"], lines
