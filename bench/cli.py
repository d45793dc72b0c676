#!/usr/bin/env python3
"""`nono run -- /bin/true` against `/bin/true`, interleaved in one run (issue 10's CLI target:
nono adds <= 1.0 ms at the median).

Prints the medians and p90 of each, the ratio and the absolute time nono adds, the median CPU time
(user + system of the process and every descendant it waited for, from wait4), and how many shared
objects the nono binary loads. Not a test: the numbers swing with machine load; compare medians of
several rounds.
    bench/cli.py [BUILD_DIR] [ROUNDS] [--compare OTHER_NONO] [--features]
--compare adds another nono binary (e.g. a build of an older commit) to the same interleaved run,
for a before/after on the same machine at the same moment.
--features prices each per-run feature of the default `nono run` with the same binary, each case
with one feature off (user flags, no build switch), interleaved with the default run:
  /etc entry by entry    vs the same system set without /etc, and with /etc granted whole
  session ledger         vs --no-ledger
  private temp dir       vs --no-tmp (the reaper stays: it owns the process tree)
  supervisor             nono under a seccomp listener (BUILD/bench/under_listener: no
                         supervisor can attach, EBUSY) vs under the same filter without one
  all four off           the floor of what is left
"""
import os
import statistics
import subprocess
import sys
import time

argv = sys.argv[1:]
features = "--features" in argv
argv = [a for a in argv if a != "--features"]
other = None
if "--compare" in argv:
    i = argv.index("--compare")
    other = argv[i + 1]
    del argv[i:i + 2]
build = argv[0] if argv else os.path.join(os.path.dirname(__file__), "..", "build")
rounds = int(argv[1]) if len(argv) > 1 else 200
nono = os.path.join(build, "src", "cli", "nono")
wrap = os.path.join(build, "bench", "under_listener")
TRUE = "/bin/true"


def system_set_flags(etc):
    """The default system set as user flags (policy.c's sys_paths), /etc left out or whole."""
    f = ["--no-system-paths"]
    for d in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"):
        if os.path.exists(d):
            f += ["--read", d]
    for p in ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty"):
        if os.path.exists(p):
            f += ["--allow-file", p]
    for p in ("/dev/urandom", "/dev/random"):
        if os.path.exists(p):
            f += ["--read-file", p]
    return f + (["--read", "/etc"] if etc == "whole" else [])


if features:
    run = [nono, "run"]
    cases = {
        "plain /bin/true": [TRUE],
        "nono run (all features)": run + ["--", TRUE],
        "  /etc whole, not entry by entry": run + system_set_flags("whole") + ["--", TRUE],
        "  no /etc at all": run + system_set_flags("none") + ["--", TRUE],
        "  --no-ledger": run + ["--no-ledger", "--", TRUE],
        "  --no-tmp": run + ["--no-tmp", "--", TRUE],
        "under filter: nono run": [wrap, "filter"] + run + ["--", TRUE],
        "  under listener: no supervisor": [wrap, "listener"] + run + ["--", TRUE],
        "  all four off (listener)": [wrap, "listener"] + run + system_set_flags("none") +
        ["--no-ledger", "--no-tmp", "--", TRUE],
        "under filter: plain /bin/true": [wrap, "filter", TRUE],
    }
else:
    cases = {
        "plain /bin/true": [TRUE],
        "nono run -- /bin/true": [nono, "run", "--", TRUE],
        "nono run (fs policy)": [nono, "run", "--read", "/tmp", "--", TRUE],
        "nono run --net-block": [nono, "run", "--net-block", "--", TRUE],
    }
if other:
    cases["other: nono run -- /bin/true"] = [other, "run", "--", TRUE]


def once(args):
    """Wall and CPU time (ms) of one run; CPU from wait4: the process and what it reaped."""
    t0 = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t0) * 1e3
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{args}: exit {p.returncode}")
    return wall, (ru.ru_utime + ru.ru_stime) * 1e3


times = {k: [] for k in cases}
cpu = {k: [] for k in cases}
names = list(cases)
for r in range(rounds):
    # Alternate the order each round: no case always runs right after the same neighbour.
    for name in (names if r % 2 == 0 else names[::-1]):
        w, c = once(cases[name])
        times[name].append(w)
        cpu[name].append(c)


def p(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def shared_objects(path):
    try:
        out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    except OSError:
        return "?"
    return sum(1 for line in out.splitlines() if ".so" in line and "vdso" not in line)


with open("/proc/loadavg") as f:
    load = f.read().split()[:3]
base = statistics.median(times["plain /bin/true"])
cbase = statistics.median(cpu["plain /bin/true"])
for name, v in times.items():
    med = statistics.median(v)
    cmed = statistics.median(cpu[name])
    print(f"{name:36s} median {med:6.3f} ms  p90 {p(v, 0.9):6.3f} ms  "
          f"ratio {med / base:4.2f}x  added {med - base:+.3f} ms  "
          f"cpu {cmed:6.3f} ms (added {cmed - cbase:+.3f})")
if features:
    ref = "nono run (all features)"
    print("feature cost = median of (all features) minus median with it off, same run:")
    for name, off in (("/etc entry by entry vs none", "  no /etc at all"),
                      ("/etc entry by entry vs whole", "  /etc whole, not entry by entry"),
                      ("session ledger", "  --no-ledger"),
                      ("private temp dir", "  --no-tmp"),
                      ("supervisor", None)):
        if off is None:
            on_w, on_c = "under filter: nono run", "under filter: nono run"
            off = "  under listener: no supervisor"
        else:
            on_w = on_c = ref
        dw = statistics.median(times[on_w]) - statistics.median(times[off])
        dc = statistics.median(cpu[on_c]) - statistics.median(cpu[off])
        print(f"  {name:32s} wall {dw:+.3f} ms  cpu {dc:+.3f} ms")
print(f"load average at the end: {' '.join(load)}; {rounds} rounds")
print(f"shared objects loaded by {nono}: {shared_objects(nono)} (ldd, incl. the loader)")
if other:
    print(f"shared objects loaded by {other}: {shared_objects(other)}")
