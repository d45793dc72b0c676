#!/usr/bin/env python3
"""`nono run -- /bin/true` against `/bin/true`, interleaved in one run (issue 10's CLI target:
nono adds <= 1.0 ms at the median).

Prints the medians and p90 of each, the ratio and the absolute time nono adds, and how many shared
objects the nono binary loads. Not a test: the numbers swing with machine load; compare medians of
several rounds.
    bench/cli.py [BUILD_DIR] [ROUNDS] [--compare OTHER_NONO]
--compare adds another nono binary (e.g. a build of an older commit) to the same interleaved run,
for a before/after on the same machine at the same moment.
"""
import os
import statistics
import subprocess
import sys
import time

args = [a for a in sys.argv[1:] if a != "--compare"]
other = None
if "--compare" in sys.argv:
    i = sys.argv.index("--compare")
    other = sys.argv[i + 1]
    args.remove(other)
build = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "build")
rounds = int(args[1]) if len(args) > 1 else 200
nono = os.path.join(build, "src", "cli", "nono")
cases = {
    "plain /bin/true": ["/bin/true"],
    "nono run -- /bin/true": [nono, "run", "--", "/bin/true"],
    "nono run (fs policy)": [nono, "run", "--read", "/tmp", "--", "/bin/true"],
    "nono run --net-block": [nono, "run", "--net-block", "--", "/bin/true"],
}
if other:
    cases["other: nono run -- /bin/true"] = [other, "run", "--", "/bin/true"]
times = {k: [] for k in cases}
for _ in range(rounds):
    for name, argv in cases.items():
        t0 = time.perf_counter()
        subprocess.run(argv, check=True)
        times[name].append((time.perf_counter() - t0) * 1e3)


def p(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def shared_objects(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    return sum(1 for line in out.splitlines() if ".so" in line and "vdso" not in line)


base = statistics.median(times["plain /bin/true"])
for name, v in times.items():
    med = statistics.median(v)
    print(f"{name:30s} median {med:6.3f} ms  p90 {p(v, 0.9):6.3f} ms  "
          f"ratio {med / base:4.2f}x  added {med - base:+.3f} ms")
print(f"shared objects loaded by {nono}: {shared_objects(nono)} (ldd, incl. the loader)")
if other:
    print(f"shared objects loaded by {other}: {shared_objects(other)}")
