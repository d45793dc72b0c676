#!/usr/bin/python3
"""Cost of the Python binding, as ratios against baselines measured in the same run.

    PYTHONPATH=<builddir>/python python3 python/bench/bench_nono_py.py [rounds]

Prints the median of `rounds` rounds (default 5) for each case. Not a test: numbers are noisy on a
shared machine; compare ratios from one run.
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
    caps = nono_py.CapabilitySet()
    for p in ("/usr", "/etc"):
        caps.allow_path(p, nono_py.AccessMode.READ)
    return caps


def main():
    A = nono_py.AccessMode
    rows = []
    exec_base = median_rounds(lambda: subprocess.run(["/usr/bin/true"]), 100)
    rows.append(("subprocess.run(true)  [baseline]", exec_base, exec_base))
    fs = base_caps()
    rows.append(("sandboxed_exec(true) fs grants", median_rounds(
        lambda: nono_py.sandboxed_exec(fs, ["/usr/bin/true"]), 100), exec_base))
    blocked = base_caps()
    blocked.block_network()
    rows.append(("sandboxed_exec(true) blocked", median_rounds(
        lambda: nono_py.sandboxed_exec(blocked, ["/usr/bin/true"]), 100), exec_base))
    with nono_py.start_proxy(nono_py.ProxyConfig()) as proxy:
        po = base_caps()
        po.proxy_only(proxy)
        rows.append(("sandboxed_exec(true) proxy-only", median_rounds(
            lambda: nono_py.sandboxed_exec(po, ["/usr/bin/true"]), 100), exec_base))
        rows.append(("proxy.env_vars()", median_rounds(proxy.env_vars, 5000), None))

    call_base = median_rounds(lambda: dict(a=1), 20000)
    rows.append(("dict(a=1)  [baseline]", call_base, call_base))
    q = nono_py.QueryContext(fs)
    rows.append(("QueryContext.query_path", median_rounds(lambda: q.query_path("/usr/bin", A.READ), 20000),
                 call_base))

    def build():
        c = nono_py.CapabilitySet()
        c.allow_path("/usr", A.READ)
    rows.append(("CapabilitySet()+allow_path", median_rounds(build, 20000), call_base))
    rows.append(("fs_capabilities() (2 grants)", median_rounds(fs.fs_capabilities, 20000), call_base))
    st = nono_py.SandboxState.from_caps(fs).to_json()
    rows.append(("SandboxState.from_json", median_rounds(lambda: nono_py.SandboxState.from_json(st), 5000),
                 call_base))

    print(f"nono_py bench: median of {ROUNDS} rounds")
    for name, t, base in rows:
        ratio = f"{t / base:8.2f}x" if base else "         "
        unit = f"{t * 1e3:9.3f} ms" if t > 1e-4 else f"{t * 1e6:9.2f} us"
        print(f"  {name:36s} {unit} {ratio}")


if __name__ == "__main__":
    main()
