"""Runs every C unit-test executable the build produced; each must exit 0."""
import subprocess

import pytest

from conftest import BUILD

UNITS = sorted((BUILD / "tests" / "unit").glob("test_*")) if (BUILD / "tests" / "unit").exists() else []
UNITS = [p for p in UNITS if p.is_file() and p.stat().st_mode & 0o111]


def test_unit_tests_were_built():
    assert UNITS, f"no C unit tests found under {BUILD}/tests/unit"


@pytest.mark.parametrize("exe", UNITS, ids=[p.name for p in UNITS])
def test_c_unit(exe):
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
