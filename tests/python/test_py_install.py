"""`meson install` ships the package: the installed copy imports and works outside the build tree."""
import os
import pathlib
import shutil
import subprocess

import pytest

from nono_py_testlib import BUILD, PYTHON, child_env


@pytest.mark.skipif(shutil.which("meson") is None, reason="meson not on PATH")
def test_installed_package_imports(tmp_path):
    r = subprocess.run(["meson", "install", "-C", str(BUILD), "--no-rebuild", "--destdir", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    pkgs = [p.parent for p in tmp_path.rglob("nono_py/__init__.py")]
    assert len(pkgs) == 1, pkgs
    sos = list(pkgs[0].glob("_nono.*.so"))
    assert len(sos) == 1, list(pkgs[0].iterdir())
    libdirs = {p.parent for p in tmp_path.rglob("libnono.so*")}
    assert len(libdirs) == 1
    env = child_env()
    env["PYTHONPATH"] = str(pkgs[0].parent)
    env["LD_LIBRARY_PATH"] = str(libdirs.pop())
    code = ("import nono_py, pathlib\n"
            "print(pathlib.Path(nono_py._nono.__file__).resolve())\n"
            "caps = nono_py.CapabilitySet(); caps.allow_path('/usr', nono_py.AccessMode.READ)\n"
            "print(nono_py.sandboxed_exec(caps, ['/usr/bin/true']).exit_code)\n")
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, cwd="/",
                       timeout=120)
    assert r.returncode == 0, r.stderr
    where, code_ = r.stdout.split()
    assert pathlib.Path(where) == sos[0].resolve() and code_ == "0"
    assert str(BUILD) not in os.path.realpath(where)
