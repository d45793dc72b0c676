#!/usr/bin/env python3
"""The snapshot store against git on one generated tree, in one run (issue 15's targets):
  baseline snapshot            <= 1.0 x  `git add -A` in a fresh repository of the same tree
  incremental after 10 changes <= 1.5 x  `git status`
  restore of those 10 files    <= 1.5 x  `git checkout -- .`
  `nono run --rollback -- true` adds <= 2 x `git status` (over `nono run -- true`)

    bench/rollback.py [BUILD_DIR] [--files N] [--mib M] [--rounds R] [--dir D]

Every time is the wall time of a whole process (nono's side: bench/bench_snapshot, or the nono CLI),
the median of R rounds; the page cache is warm for both sides (the tree is read once first). The
`--rollback` runs share one state directory, as a user's do: the first stores the tree, the later
ones are seeded from the newest session (nono_snap_seed) and read only what changed. Not a test: the
numbers swing with machine load.
"""
import argparse
import os
import random
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


def timed(argv, cwd=None, env=None):
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1e3


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
    genv = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")
    for k in range(a.rounds):
        gitdir = os.path.join(base, "gitdir")
        store = os.path.join(base, "store")
        shutil.rmtree(gitdir, ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        git = ["git", f"--git-dir={gitdir}", f"--work-tree={tree}"]
        subprocess.run(git + ["init", "-q"], check=True, env=genv)
        r["git add -A"].append(timed(git + ["add", "-A"], env=genv))
        r["baseline"].append(timed([BENCH, store, tree, "baseline"]))
        timed(git + ["status", "--porcelain"], env=genv)  # settle git's index (racy timestamps)
        change_10(tree, k)
        r["git status"].append(timed(git + ["status", "--porcelain"], env=genv))
        r["incremental"].append(timed([BENCH, store, tree, "incremental"]))
        r["git checkout -- ."].append(timed(git + ["checkout", "--", "."], env=genv))
        change_10(tree, k)
        r["restore"].append(timed([BENCH, store, tree, "restore", "0"]))
        env = dict(os.environ, XDG_STATE_HOME=state)
        if k == 0:  # the first session stores the tree; later ones are seeded from it
            timed([NONO, "run", "--rollback", "--allow", tree, "--", "/bin/true"], env=env)
        r["nono run -- true"].append(timed([NONO, "run", "--allow", tree, "--", "/bin/true"], env=env))
        r["nono run --rollback -- true"].append(
            timed([NONO, "run", "--rollback", "--allow", tree, "--", "/bin/true"], env=env))
    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"tree: {a.files} files, {a.mib} MiB, {a.rounds} rounds, medians (ms):")
    for k, v in med.items():
        print(f"  {k:32s} {v:9.1f}")
    added = med["nono run --rollback -- true"] - med["nono run -- true"]
    rows = [
        ("baseline / git add -A", med["baseline"] / med["git add -A"], 1.0),
        ("incremental / git status", med["incremental"] / med["git status"], 1.5),
        ("restore 10 / git checkout -- .", med["restore"] / med["git checkout -- ."], 1.5),
        ("run --rollback added / git status", added / med["git status"], 2.0),
    ]
    for name, ratio, target in rows:
        print(f"  {name:36s} {ratio:5.2f}x (target <= {target}x) {'ok' if ratio <= target else 'MISSED'}")
    if not a.dir:
        shutil.rmtree(base, ignore_errors=True)


main()
