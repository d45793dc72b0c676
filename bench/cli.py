#!/usr/bin/env python3
"""`nono run -- /bin/true` against `/bin/true`, interleaved in one run (issue 2's CLI target).

Prints the medians and p90 of each, the ratio and the absolute time nono adds. Not a test: the
numbers swing with machine load; compare medians of several rounds.
    bench/cli.py [BUILD_DIR] [ROUNDS]
"""
import os
import statistics
import subprocess
import sys
import time

build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "build")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
nono = os.path.join(build, "src", "cli", "nono")
cases = {
    "plain /bin/true": ["/bin/true"],
    "nono run (fs policy)": [nono, "run", "--read", "/tmp", "--", "/bin/true"],
    "nono run --net-block": [nono, "run", "--net-block", "--", "/bin/true"],
}
times = {k: [] for k in cases}
for _ in range(rounds):
    for name, argv in cases.items():
        t0 = time.perf_counter()
        subprocess.run(argv, check=True)
        times[name].append((time.perf_counter() - t0) * 1e3)


def p(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


base = statistics.median(times["plain /bin/true"])
for name, v in times.items():
    med = statistics.median(v)
    print(f"{name:24s} median {med:6.3f} ms  p90 {p(v, 0.9):6.3f} ms  "
          f"ratio {med / base:4.2f}x  added {med - base:+.3f} ms")
