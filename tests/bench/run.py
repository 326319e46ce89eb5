#!/usr/bin/env python3
"""Run every benchmark in turn and print a summary.

Runs each executable in $SFS_BUILD/bench/ (the C benchmarks, which print
their own tables) and then each tests/bench/bench_*.py, with SFS_BUILD in
their environment. One at a time: the machine is shared and the
benchmarks measure ratios against baselines run in the same process.
Exits non-zero when any benchmark failed. `make bench` calls it.
"""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def find_benchmarks(build):
    found = []
    bdir = os.path.join(build, "bench")
    if os.path.isdir(bdir):
        for name in sorted(os.listdir(bdir)):
            path = os.path.join(bdir, name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                found.append((name, [path]))
    for name in sorted(os.listdir(HERE)):
        if name.startswith("bench_") and name.endswith(".py"):
            found.append((name, [sys.executable, os.path.join(HERE, name)]))
    return found


def main():
    build = os.path.abspath(os.environ.get("SFS_BUILD",
                                           os.path.join(ROOT, "build")))
    only = sys.argv[1:]
    env = dict(os.environ, SFS_BUILD=build)
    benches = [b for b in find_benchmarks(build)
               if not only or any(o in b[0] for o in only)]
    if not benches:
        print("bench: nothing to run (build first: make)")
        return 1
    results = []
    for name, argv in benches:
        print("=== %s" % name, flush=True)
        t0 = time.monotonic()
        try:
            rc = subprocess.call(argv, env=env, cwd=ROOT)
        except OSError as exc:
            print("cannot run %s: %s" % (name, exc))
            rc = 127
        secs = time.monotonic() - t0
        results.append((name, rc, secs))
        print(flush=True)
    print("=== summary")
    width = max(len(n) for n, _, _ in results)
    for name, rc, secs in results:
        state = "ok" if rc == 0 else "FAILED (exit %d)" % rc
        print("  %-*s  %8.1f s  %s" % (width, name, secs, state))
    failed = sum(1 for _, rc, _ in results if rc != 0)
    print("%d benchmark(s), %d failed" % (len(results), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
