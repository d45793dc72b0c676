"""VM tier: the suites that concern enforcement, run on Debian 12's own 6.1 kernel under qemu.

6.1 has Landlock ABI 2, seccomp user notification and pidfd_getfd, but no Landlock TCP rules (6.7), no
scopes (6.12) and no sync wake-up (6.6): the old-kernel paths run for real there, not through the
NONO_MAX_LANDLOCK_ABI knob. One guest boot (session fixture) runs, in order:
  uname -r; a raw landlock_create_ruleset(VERSION) probe; `nono setup --check` (text and --json);
  pytest over GUEST_SUITES with NONO_BUILD_DIR = the same build tree (copied in at its host path).
The tests below assert on what came back; each prints its key line to the terminal (capsys.disabled)
so the CI log shows the guest's kernel, ABI and pytest results.

Skips (never silent passes): ASan builds (the tier runs for the normal build only), NONO_VM_TESTS=0,
qemu not installed, no Debian 6.1 kernel package reachable. Inside the guest (NONO_IN_VM=1) this file
skips itself. Environment: NONO_VM_TIMEOUT (s, default 1200), NONO_VM_SUITES (space-separated GUEST_SUITES
group names to run instead of all), NONO_VM_PYTEST_ARGS (extra guest pytest args).
"""
import collections
import json
import os
import re
import shlex
import sys
import xml.etree.ElementTree as ET

import pytest

from conftest import BUILD, ROOT, asan_build

sys.path.insert(0, str(ROOT / "tests" / "vm"))
import vm  # noqa: E402

pytestmark = [pytest.mark.vm, pytest.mark.slow]

# What runs in the guest (paths relative to the source root; missing ones are left out and listed).
# Kept to the suites that concern enforcement: under TCG everything is 10-50x slower.
GUEST_SUITES = {
    "c-units": ["tests/test_c_units.py"],
    "enforcement": ["tests/integration/test_apply.py", "tests/integration/test_exec.py",
                    "tests/integration/test_cli.py", "tests/integration/test_local_services.py",
                    "tests/integration/test_envtmp.py", "tests/integration/test_meta.py"],
    "escape": ["tests/escape"],
    "python": ["tests/python/test_py_apply.py", "tests/python/test_py_exec.py",
               "tests/python/test_py_support.py"],
}

BEGIN, END = "@@NONO-BEGIN ", "@@NONO-END "
Case = collections.namedtuple("Case", "file name outcome detail time out")


def _suites():
    """GUEST_SUITES, or the groups NONO_VM_SUITES names (e.g. "escape c-units")."""
    names = os.environ.get("NONO_VM_SUITES", "").split()
    unknown = [n for n in names if n not in GUEST_SUITES]
    if unknown:
        pytest.fail(f"NONO_VM_SUITES names unknown groups {unknown}; known: {list(GUEST_SUITES)}")
    return {n: GUEST_SUITES[n] for n in names} if names else GUEST_SUITES


def _section(name, body):
    """A shell snippet whose output the host finds between markers, with its exit status. The END
    marker goes on a line of its own even when the output lacks a final newline."""
    return f'echo "{BEGIN}{name}"\n{body}\nst=$?; echo; echo "{END}{name} $st"\n'


def _guest_script(paths):
    build = BUILD.resolve()
    nono = shlex.quote(str(build / "src" / "cli" / "nono"))
    extra = os.environ.get("NONO_VM_PYTEST_ARGS", "")
    probe = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
             "r = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)); "  # x86_64
             "print('landlock_abi', r if r >= 0 else -ctypes.get_errno())")
    pytest_cmd = ("python3 -m pytest -q -p no:cacheprovider -rfEs -o junit_family=xunit1 "
                  "-o junit_logging=system-out --junitxml=/tmp/junit.xml "
                  f"{extra} {' '.join(map(shlex.quote, paths))}")
    return "\n".join([
        f"cd {shlex.quote(str(ROOT))}",
        "export NONO_IN_VM=1 PYTHONDONTWRITEBYTECODE=1",
        f"export NONO_BUILD_DIR={shlex.quote(str(build))}",
        _section("uname", "uname -r"),
        _section("abi-probe", f"python3 -c {shlex.quote(probe)}"),
        _section("seccomp-actions", "cat /proc/sys/kernel/seccomp/actions_avail"),
        _section("setup-check", f"{nono} setup --check"),
        _section("setup-check-json", f"{nono} setup --check --json"),
        _section("pytest", pytest_cmd),
        _section("junit", "cat /tmp/junit.xml"),
        "",
    ])


class Guest:
    def __init__(self, result, suites, missing):
        self.result = result
        self.suites = suites
        self.missing = missing
        self.sections, self.status = {}, {}
        cur = None
        for line in result.output.splitlines(keepends=True):
            if line.startswith(BEGIN):
                cur = line[len(BEGIN):].strip()
                self.sections[cur] = ""
            elif line.startswith(END):
                name, _, st = line[len(END):].strip().rpartition(" ")
                self.status[name] = int(st) if st.isdigit() else None
                cur = None
            elif cur is not None:
                self.sections[cur] += line
        self.cases = self._parse_junit(self.sections.get("junit", ""))

    @staticmethod
    def _parse_junit(text):
        """[Case] from pytest's xunit1 XML; None when there is no parsable XML."""
        text = text[text.find("<?xml"):] if "<?xml" in text else text
        try:
            root = ET.fromstring(text.strip())
        except ET.ParseError:
            return None
        cases = []
        for tc in root.iter("testcase"):
            f = tc.get("file") or tc.get("classname", "").replace(".", "/") + ".py"
            outcome, detail = "passed", ""
            for kind in ("failure", "error", "skipped"):
                el = tc.find(kind)
                if el is not None:
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                    detail = (el.get("message") or "") + "\n" + (el.text or "")
                    for extra in ("system-out", "system-err"):
                        e = tc.find(extra)
                        if e is not None and e.text and kind != "skipped":
                            detail += f"\n--- {extra} ---\n{e.text}"
                    break
            so = tc.find("system-out")
            out = so.text if so is not None and so.text else ""
            cases.append(Case(f, tc.get("name"), outcome, detail, float(tc.get("time") or 0), out))
        return cases

    def suite_cases(self, suite):
        prefixes = self.suites[suite]
        return [c for c in self.cases or []
                if any(c.file == p or c.file.startswith(p.rstrip("/") + "/") for p in prefixes)]

    def pytest_summary(self):
        lines = [ln for ln in self.sections.get("pytest", "").splitlines() if ln.strip()]
        return lines[-1] if lines else "(no pytest output)"

    def context(self, section=None, limit=6000):
        """The tail of one section of the guest's output plus how the run ended."""
        if section is None or section not in self.sections:
            return self.result.describe()
        text = self.sections[section]
        return f"{text[-limit:]}\n\n{self.result.describe(output=False)}"


@pytest.fixture(scope="session")
def guest(build_dir):
    if os.environ.get("NONO_IN_VM"):
        pytest.skip("already inside the VM")
    if os.environ.get("NONO_VM_TESTS") == "0":
        pytest.skip("VM tier disabled by NONO_VM_TESTS=0")
    if asan_build():
        pytest.skip("VM tier runs for the normal build only (ASan+UBSan on top of TCG emulation "
                    "does not fit CI's time; the host tiers run under ASan)")
    suites = _suites()
    paths, missing = [], []
    for group in suites.values():
        for p in group:
            (paths if (ROOT / p).exists() else missing).append(p)
    if not paths:
        pytest.fail(f"none of the guest suites exist: {missing}")
    timeout = float(os.environ.get("NONO_VM_TIMEOUT", "1200"))
    try:
        res = vm.run(_guest_script(paths), build_dir=build_dir, timeout=timeout)
    except vm.VMUnavailable as e:
        pytest.skip(f"VM tier cannot run here: {e}")
    g = Guest(res, suites, missing)
    if not res.booted:
        pytest.fail("the 6.1 guest did not boot:\n" + res.describe())
    return g


def _show(capsys, text, gap=True):
    with capsys.disabled():
        print(("\n" if gap else "") + f"[vm] {text}", flush=True)


def test_guest_runs_debian_6_1(guest, capsys):
    r = guest.result
    uname = guest.sections.get("uname", "").strip()
    _show(capsys, f"guest uname -r: {uname}  (image {r.kernel_image}, {r.elapsed:.0f} s "
                  f"for boot + all suites, status {r.status})")
    assert r.status is not None, "the guest never finished:\n" + r.describe()
    assert uname.startswith("6.1."), guest.context("uname")


def test_guest_landlock_abi_2(guest, capsys):
    probe = guest.sections.get("abi-probe", "")
    m = re.search(r"landlock_abi (-?\d+)", probe)
    _show(capsys, f"guest Landlock ABI (raw landlock_create_ruleset VERSION): "
                  f"{m.group(1) if m else probe.strip()!r}")
    assert m and int(m.group(1)) == 2, guest.context("abi-probe")


def test_guest_support_report(guest, capsys):
    text = guest.sections.get("setup-check", "")
    abi_line = next((ln for ln in text.splitlines() if ln.startswith("landlock:")), "(none)")
    _show(capsys, "guest `nono setup --check`:\n" + text.rstrip())
    assert guest.status.get("setup-check") == 0, guest.context("setup-check")
    assert re.fullmatch(r"landlock: ABI 2\b.*", abi_line), guest.context("setup-check")
    assert re.search(r"^\s*TCP bind/connect port rules.*: no$", text, re.M), text
    assert re.search(r"^\s*scopes.*: no$", text, re.M), text
    assert re.search(r"^seccomp user notification.*: yes$", text, re.M), text
    assert "user_notif" in guest.sections.get("seccomp-actions", "").split(), guest.context(
        "seccomp-actions")  # the kernel's own list agrees
    assert re.search(r"^pidfd_getfd.*: yes$", text, re.M), text
    assert re.search(r"^seccomp sync wake-up.*: no$", text, re.M), text
    js = json.loads(guest.sections.get("setup-check-json", "") or "null")
    assert js, guest.context("setup-check-json")
    assert (js["landlock_abi_kernel"], js["landlock_abi"]) == (2, 2), js
    assert not js["landlock_tcp"] and not js["landlock_scopes"] and not js["sync_wakeup"], js
    assert js["seccomp_user_notif"] and js["pidfd_getfd"], js
    assert js["kernel_release"].startswith("6.1."), js


def test_guest_pytest_completed(guest, capsys):
    _show(capsys, f"guest pytest: {guest.pytest_summary()}")
    if guest.missing:
        _show(capsys, f"guest suites not present in this tree: {' '.join(guest.missing)}")
    assert guest.cases is not None, ("no junit XML from the guest pytest:\n"
                                     + guest.context("pytest"))
    slow = sorted(guest.cases, key=lambda c: -c.time)[:8]
    _show(capsys, "slowest in guest: " + ", ".join(f"{c.name} {c.time:.0f}s" for c in slow))
    assert guest.status.get("pytest") in (0, 1), (
        "guest pytest did not run to completion (status %r):\n" % guest.status.get("pytest")
        + guest.context("pytest"))


def _check_suite(guest, capsys, suite):
    __tracebackhide__ = True
    if suite not in guest.suites:
        pytest.skip(f"NONO_VM_SUITES={os.environ.get('NONO_VM_SUITES')!r} leaves out {suite}")
    if guest.cases is None:
        pytest.fail("no junit XML from the guest pytest:\n" + guest.context("pytest"))
    cases = guest.suite_cases(suite)
    absent = [p for p in guest.suites[suite] if p in guest.missing]
    counts = collections.Counter(c.outcome for c in cases)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no tests"
    _show(capsys, f"guest {suite}: {summary}" + (f"  (absent: {absent})" if absent else ""))
    if suite == "escape":  # every attempt, with what the test printed (the probe's verdict)
        for c in cases:
            said = [ln.strip() for ln in c.out.splitlines()
                    if ln.strip() and not ln.startswith("-----")]
            _show(capsys, f"  {c.outcome.upper():7} {c.name}" + (f"  | {said[-1]}" if said else ""),
                  gap=False)
    for c in cases:
        if c.outcome == "skipped":
            _show(capsys, f"  skipped in guest: {c.file}::{c.name}: "
                          f"{(c.detail.strip().splitlines() or [''])[0]}", gap=False)
    if not cases:
        pytest.fail(f"no {suite} tests ran in the guest (paths {guest.suites[suite]}, "
                    f"absent {absent}); guest pytest: {guest.pytest_summary()}")
    bad = [c for c in cases if c.outcome in ("failed", "error")]
    if bad:
        shown = 12  # in full; the rest by name (the guest's own summary is in the log above)
        msg = f"{len(bad)} {suite} test(s) failed on the 6.1 kernel:\n\n" + "\n\n".join(
            f"=== {c.file}::{c.name} ({c.outcome})\n{c.detail[-2500:]}" for c in bad[:shown])
        if len(bad) > shown:
            msg += "\n\n=== also failed:\n" + "\n".join(f"{c.file}::{c.name}" for c in bad[shown:])
        pytest.fail(msg, pytrace=False)


def test_guest_c_unit_tests(guest, capsys):
    _check_suite(guest, capsys, "c-units")


def test_guest_enforcement_integration(guest, capsys):
    _check_suite(guest, capsys, "enforcement")


def test_guest_escape_battery(guest, capsys):
    _check_suite(guest, capsys, "escape")


def test_guest_python_binding_enforcement(guest, capsys):
    _check_suite(guest, capsys, "python")
