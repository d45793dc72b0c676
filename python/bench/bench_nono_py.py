#!/usr/bin/python3
"""Cost of the Python binding, as ratios against baselines measured in the same run.

    PYTHONPATH=<builddir>/python python3 python/bench/bench_nono_py.py [rounds]

Prints the median of `rounds` rounds (default 5) for each case. sandboxed_exec(["/bin/true"]) is
timed against subprocess.run of the same command, interleaved call for call (as bench/bench_exec.c
does for nono_exec), with the ratio and the time added at the median. Not a test: numbers are noisy
on a shared machine; compare ratios from one run.
"""
import statistics
import subprocess
import sys
import time

import nono_py

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def per_call(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def median_rounds(fn, n):
    fn()
    return statistics.median(per_call(fn, n) for _ in range(ROUNDS))


def base_caps():
    """bench/bench_exec.c's `fs` policy: enough to run /bin/true."""
    caps = nono_py.CapabilitySet()
    for p in ("/usr", "/bin", "/lib", "/lib64", "/etc"):
        try:
            caps.allow_path(p, nono_py.AccessMode.READ)
        except FileNotFoundError:
            pass
    caps.allow_file("/dev/null", nono_py.AccessMode.READ_WRITE)
    return caps


def interleaved(fn, base, n):
    """Median seconds per call of `fn` and of `base`, called alternately (which goes first
    alternates too) so that the machine's load hits both alike. Median over ROUNDS rounds."""
    fn()
    base()
    f_med, b_med = [], []
    for _ in range(ROUNDS):
        ft, bt = [], []
        for i in range(n):
            for which in ((fn, ft), (base, bt)) if i % 2 else ((base, bt), (fn, ft)):
                t = time.perf_counter()
                which[0]()
                which[1].append(time.perf_counter() - t)
        f_med.append(statistics.median(ft))
        b_med.append(statistics.median(bt))
    return statistics.median(f_med), statistics.median(b_med)


TRUE = ["/bin/true"]


def exec_rows():
    """sandboxed_exec(["/bin/true"]) against subprocess.run of the same, interleaved: the ratio and
    the time added at the median. sandboxed_exec captures stdout/stderr, so the capturing run is
    the fair baseline; the plain one is what a caller would otherwise write."""
    rows = []
    run = lambda: subprocess.run(TRUE)  # noqa: E731
    run_cap = lambda: subprocess.run(TRUE, capture_output=True)  # noqa: E731
    fs = base_caps()
    blocked = base_caps()
    blocked.block_network()
    cases = [("sandboxed_exec(true) fs grants", lambda: nono_py.sandboxed_exec(fs, TRUE)),
             ("sandboxed_exec(true) blocked", lambda: nono_py.sandboxed_exec(blocked, TRUE))]
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        po = base_caps()
        po.proxy_only(proxy)
        cases.append(("sandboxed_exec(true) proxy-only", lambda: nono_py.sandboxed_exec(po, TRUE)))
        for base_name, base in (("subprocess.run(true)", run),
                                ("subprocess.run(true, capture_output)", run_cap)):
            for name, fn in cases:
                t, b = interleaved(fn, base, 100)
                rows.append((f"{name} vs {base_name}", t, b))
        env_vars = median_rounds(proxy.env_vars, 5000)
    return rows, env_vars


def main():
    A = nono_py.AccessMode
    exec_table, env_vars = exec_rows()
    print(f"nono_py bench: median of {ROUNDS} rounds")
    print(f"  {'exec (100 interleaved pairs a round)':72s} {'case':>9s}    {'base':>9s}    ratio   added")
    for name, t, b in exec_table:
        print(f"  {name:72s} {t * 1e3:6.3f} ms  {b * 1e3:6.3f} ms  {t / b:5.2f}x  {(t - b) * 1e3:6.3f} ms")
    fs = base_caps()
    rows = [("proxy.env_vars()", env_vars, None)]
    call_base = median_rounds(lambda: dict(a=1), 20000)
    rows.append(("dict(a=1)  [baseline]", call_base, call_base))
    q = nono_py.QueryContext(fs)
    rows.append(("QueryContext.query_path", median_rounds(lambda: q.query_path("/usr/bin", A.READ), 20000),
                 call_base))

    def build():
        c = nono_py.CapabilitySet()
        c.allow_path("/usr", A.READ)
    rows.append(("CapabilitySet()+allow_path", median_rounds(build, 20000), call_base))
    rows.append((f"fs_capabilities() ({len(fs.fs_capabilities())} grants)",
                 median_rounds(fs.fs_capabilities, 20000), call_base))
    st = nono_py.SandboxState.from_caps(fs).to_json()
    rows.append(("SandboxState.from_json", median_rounds(lambda: nono_py.SandboxState.from_json(st), 5000),
                 call_base))

    print(f"  {'calls':36s} {'per call':>12s}    ratio")
    for name, t, base in rows:
        ratio = f"{t / base:8.2f}x" if base else "         "
        unit = f"{t * 1e3:9.3f} ms" if t > 1e-4 else f"{t * 1e6:9.2f} us"
        print(f"  {name:36s} {unit} {ratio}")


if __name__ == "__main__":
    main()
