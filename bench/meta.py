#!/usr/bin/env python3
"""Metadata writes under the supervisor (issue 11): what `tar x`, `make` and one call cost.

Interleaved in one run, each case against its unsandboxed baseline:
  - tar: `tar xf` of a 10,000-file tarball (100 directories, modes 0600/0640/0644/0755, old mtimes:
    tar sets mode and times on every file) into a write grant; target <= 1.5x;
  - make: a clean `make` with gcc of a small C project (24 sources, one program); target <= 1.05x;
  - the latency of single calls (bench_meta: chmod, fchmod, utimensat, futimens, fchown, setxattr)
    plain and supervised, and the floor of any supervised call (a trapped call answered at once by
    a listener of bench_meta's own, plain only) with the supervisor's steps alone.
Prints medians, ratios and the absolute time added. Not a test: numbers swing with machine load.
    bench/meta.py [BUILD_DIR] [ROUNDS=5] [WORKDIR=/dev/shm or /var/tmp]
With NONO_BENCH_BEFORE=/path/to/another/nono, `tar x` also runs under that build, interleaved
in the same rounds (before/after a change to the supervisor).
The work directory defaults to a tmpfs (/dev/shm) so that the disk's own noise does not drown the
CPU cost being measured; pass a directory on a disk to include it.
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "build")
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
nono = os.path.abspath(os.path.join(build, "src", "cli", "nono"))
bench_meta = os.path.abspath(os.path.join(build, "bench", "bench_meta"))
base = sys.argv[3] if len(sys.argv) > 3 else ("/dev/shm" if os.path.isdir("/dev/shm") else "/var/tmp")
work = tempfile.mkdtemp(prefix="nono-bench-meta-", dir=base)


def make_tarball():
    src = os.path.join(work, "src")
    modes = [0o600, 0o640, 0o644, 0o755]
    for d in range(100):
        dd = os.path.join(src, f"d{d:03d}")
        os.makedirs(dd)
        for f in range(100):
            p = os.path.join(dd, f"f{f:03d}.txt")
            with open(p, "w") as fh:
                fh.write(f"{d}/{f}\n" * 8)
            os.chmod(p, modes[(d + f) % 4])
            os.utime(p, (1_000_000_000 + f, 1_000_000_000 + d))
    tb = os.path.join(work, "files.tar")
    with tarfile.open(tb, "w") as t:
        t.add(src, arcname="src")
    shutil.rmtree(src)
    return tb


def make_project():
    proj = os.path.join(work, "proj")
    os.makedirs(proj)
    names = [f"m{i:02d}" for i in range(24)]
    for n in names:
        with open(os.path.join(proj, n + ".c"), "w") as fh:
            fh.write(f'#include <stdio.h>\n#include <string.h>\n'
                     f'int {n}(int x) {{ char b[64]; snprintf(b, sizeof b, "%d", x);'
                     f' return (int)strlen(b) + x * 3; }}\n')
    with open(os.path.join(proj, "main.c"), "w") as fh:
        fh.write("".join(f"int {n}(int);\n" for n in names))
        fh.write("int main(void) { int s = 0;\n" + "".join(f" s += {n}(s);\n" for n in names)
                 + " return s == 42; }\n")
    objs = " ".join(n + ".o" for n in names + ["main"])
    with open(os.path.join(proj, "Makefile"), "w") as fh:
        fh.write(f"CFLAGS = -O2 -Wall\nprog: {objs}\n\t$(CC) -o $@ $^\n"
                 f"%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\nclean:\n\trm -f prog *.o\n")
    return proj


def timed(argv, env=None, cwd=None):
    """Wall time, and the CPU time (user + sys) of the process tree: on a loaded machine the wall
    time mostly measures the neighbours; CPU time swings less."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return wall, cpu


before = os.environ.get("NONO_BENCH_BEFORE")


def sandboxed(grant, argv, binary=None):
    return [binary or nono, "run", "--inherit-env", "-a", grant, "-r", work, "-r", "/etc", "--",
            *argv]


tb = make_tarball()
proj = make_project()
dest = os.path.join(work, "dest")
env = dict(os.environ, TMPDIR=proj)
res = {k: [] for k in ("tar plain", "tar nono", "tar before", "make plain", "make nono")}
for r in range(rounds):
    order = [False, True] if r % 2 == 0 else [True, False]
    for case in (["plain", "nono"] if r % 2 == 0 else ["nono", "plain"]) + (["before"] if before else []):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        argv = ["tar", "xf", tb, "-C", dest]
        cmd = argv if case == "plain" else sandboxed(dest, argv, before if case == "before" else None)
        res[f"tar {case}"].append(timed(cmd))
    for sb in order:
        subprocess.run(["make", "-s", "clean"], cwd=proj, check=True)
        argv = ["make", "-s", "-j1"]
        res["make nono" if sb else "make plain"].append(
            timed(sandboxed(proj, argv) if sb else argv, env=env, cwd=proj))
for case, sb in (("tar", "nono"), ("tar", "before"), ("make", "nono")):
    if not res[f"{case} {sb}"]:
        continue
    target = 1.5 if case == "tar" else 1.05
    for i, what in ((0, "wall"), (1, "cpu ")):
        pl = [x[i] for x in res[f"{case} plain"]]
        nn = [x[i] for x in res[f"{case} {sb}"]]
        p, n = statistics.median(pl), statistics.median(nn)
        print(f"{case:5s}{'(before)' if sb == 'before' else ''} {what} plain median {p * 1e3:8.1f} ms  nono median {n * 1e3:8.1f} ms  "
              f"ratio {n / p:5.2f}x (target <= {target}x)  added {(n - p) * 1e3:+.1f} ms  "
              f"[plain {', '.join(f'{x * 1e3:.0f}' for x in pl)}; "
              f"nono {', '.join(f'{x * 1e3:.0f}' for x in nn)}]")
lat = {}
for sb in (False, True):
    cdir = os.path.join(work, "lat")
    os.makedirs(cdir, exist_ok=True)
    argv = [bench_meta, cdir, "20000"]
    out = subprocess.run([nono, "run", "-a", cdir, "-r", os.path.dirname(bench_meta), "--", *argv]
                         if sb else argv, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        name, rest = line.rsplit(" median_ns=", 1)
        lat.setdefault(name, []).append(int(rest.split()[0]))
for name, v in lat.items():
    if len(v) == 1:  # the floor rows: our own listener, which cannot be had under nono (EBUSY)
        print(f"{name:22s} plain {v[0] / 1e3:7.2f} us  (measured outside the sandbox only)")
        continue
    p, n = v
    print(f"{name:22s} plain {p / 1e3:7.2f} us  supervised {n / 1e3:7.2f} us  ratio {n / p:6.1f}x"
          f"  added {(n - p) / 1e3:+7.2f} us")
shutil.rmtree(work)
