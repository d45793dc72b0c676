#!/usr/bin/env python3
"""The snapshot store against git on one generated tree, in one run (issue 15's targets):
  baseline snapshot            <= 1.0 x  `git add -A` in a fresh repository of the same tree
  incremental after 10 changes <= 1.5 x  `git status`
  restore of those 10 files    <= 1.5 x  `git checkout -- .`
  `nono run --rollback -- true` adds <= 2 x `git status` (over `nono run -- true`)

    bench/rollback.py [BUILD_DIR] [--files N] [--mib M] [--rounds R] [--inner K] [--dir D]

Every time is the wall time of a whole process (nono's side: bench/bench_snapshot, or the nono CLI),
the median of R rounds, with the CPU time (user + system, from the children's rusage) beside it;
the page cache is warm for both sides (the tree is read once first). On a shared machine the CPU
ratios are the steadier ones. The
`--rollback` runs share one state directory, as a user's do: the first stores the tree, the later
ones are seeded from the newest session (nono_snap_seed) and read only what changed. Not a test: the
numbers swing with machine load.
"""
import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("build", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "build"))
ap.add_argument("--files", type=int, default=20000)
ap.add_argument("--mib", type=int, default=500)
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--inner", type=int, default=3,
                help="per round, the cheap pairs (git status / incremental after 10 changes, "
                     "nono run with and without --rollback) are measured this many times")
ap.add_argument("--dir", default=None, help="where to generate (default: a temporary directory)")
a = ap.parse_args()
BENCH = os.path.join(a.build, "bench", "bench_snapshot")
NONO = os.path.join(a.build, "src", "cli", "nono")


def gen_tree(root, nfiles, total):
    """nfiles files in 100-file directories; 5% of them hold 80% of the bytes (source trees are
    mostly small files with a few large assets)."""
    rng = random.Random(15)
    big = max(1, nfiles // 20)
    big_size = int(total * 0.8) // big
    small_size = int(total * 0.2) // max(1, nfiles - big)
    blob = os.urandom(big_size + small_size * 4 + 4096)
    for i in range(nfiles):
        d = os.path.join(root, f"d{i // 100:04d}")
        if i % 100 == 0:
            os.makedirs(d)
        size = big_size if i % 20 == 0 else rng.randint(small_size // 2, small_size * 3 // 2)
        off = rng.randint(0, len(blob) - size - 8)
        with open(os.path.join(d, f"f{i:06d}.dat"), "wb") as f:
            f.write(i.to_bytes(8, "little") + blob[off:off + size])


CPU = {}  # argv[0] label -> CPU ms of the last timed() run


def timed(argv, cwd=None, env=None):
    """Wall ms of the run; its CPU ms (user + system) lands in CPU["last"]."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - t0) * 1e3
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e3
    return wall


def change_10(root, k):
    files = sorted(os.listdir(os.path.join(root, "d0000")))[1:11]
    for f in files:
        with open(os.path.join(root, "d0000", f), "r+b") as fh:
            fh.write(b"round %d change" % k)


def main():
    base = a.dir or tempfile.mkdtemp(prefix="nono-bench-rollback-")
    tree = os.path.join(base, "tree")
    state = os.path.join(base, "state")
    os.makedirs(state, exist_ok=True)
    if not os.path.exists(tree):
        os.makedirs(tree)
        gen_tree(tree, a.files, a.mib << 20)
    subprocess.run(["cat"] + [os.path.join(tree, "d0000", f) for f in os.listdir(os.path.join(tree, "d0000"))],
                   stdout=subprocess.DEVNULL)
    subprocess.run(["du", "-sb", tree], stdout=subprocess.DEVNULL)  # warm the dentry cache
    r = {k: [] for k in ("git add -A", "baseline", "git status", "incremental", "git checkout -- .",
                         "restore", "nono run -- true", "nono run --rollback -- true")}
    cpu = {k: [] for k in r}

    def rec(key, ms):
        r[key].append(ms)
        cpu[key].append(CPU["last"])
    genv = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    for k in range(a.rounds):
        gitdir = os.path.join(base, "gitdir")
        store = os.path.join(base, "store")
        shutil.rmtree(gitdir, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        git = ["git", f"--git-dir={gitdir}", f"--work-tree={tree}"]
        subprocess.run(git + ["init", "-q"], check=True, env=genv)
        rec("git add -A", timed(git + ["add", "-A"], env=genv))
        rec("baseline", timed([BENCH, store, tree, "baseline"]))
        timed(git + ["status", "--porcelain"], env=genv)  # settle git's index (racy timestamps)
        for j in range(a.inner):
            change_10(tree, k * a.inner + j)
            rec("git status", timed(git + ["status", "--porcelain"], env=genv))
            rec("incremental", timed([BENCH, store, tree, "incremental"]))
        rec("git checkout -- .", timed(git + ["checkout", "--", "."], env=genv))
        change_10(tree, k)
        rec("restore", timed([BENCH, store, tree, "restore", "0"]))
        env = dict(os.environ, XDG_STATE_HOME=state)
        if k == 0:  # the first session stores the tree; later ones are seeded from it
            timed([NONO, "run", "--rollback", "--allow", tree, "--", "/bin/true"], env=env)
        for _ in range(a.inner):
            rec("nono run -- true", timed([NONO, "run", "--allow", tree, "--", "/bin/true"], env=env))
            rec("nono run --rollback -- true",
                timed([NONO, "run", "--rollback", "--allow", tree, "--", "/bin/true"], env=env))
    med = {k: statistics.median(v) for k, v in r.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    load = open("/proc/loadavg").read().split()[:3]
    print(f"tree: {a.files} files, {a.mib} MiB, {a.rounds} rounds, load {' '.join(load)}, "
          f"medians (ms):")
    for k, v in med.items():
        print(f"  {k:32s} {v:9.1f} wall {mcpu[k]:9.1f} cpu")
    def ratios(m):
        added = m["nono run --rollback -- true"] - m["nono run -- true"]
        return [
            ("baseline / git add -A", m["baseline"] / m["git add -A"], 1.0),
            ("incremental / git status", m["incremental"] / m["git status"], 1.5),
            ("restore 10 / git checkout -- .", m["restore"] / m["git checkout -- ."], 1.5),
            ("run --rollback added / git status", added / m["git status"], 2.0),
        ]
    for (name, ratio, target), (_, cratio, _) in zip(ratios(med), ratios(mcpu)):
        print(f"  {name:36s} {ratio:5.2f}x wall, {cratio:5.2f}x cpu (target <= {target}x) "
              f"{'ok' if ratio <= target else 'MISSED'}")
    if not a.dir:
        shutil.rmtree(base, ignore_errors=True)


main()
