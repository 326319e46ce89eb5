#!/usr/bin/env python3
"""Run the libFuzzer targets (make fuzz): each for --seconds from its seed
corpus in tests/fuzz/corpus/<target>/, copied to a temporary directory so
the inputs a run finds never land in the tree. --jobs targets run at once.
Prints each target's executions and coverage; exits non-zero when any
target crashed, leaked or tripped a sanitizer (its crash input is kept
under --keep, default a temporary directory that is printed)."""
import argparse
import concurrent.futures
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def targets(build):
    return sorted(p.name for p in pathlib.Path(build).glob("fuzz_*")
                  if os.access(p, os.X_OK) and p.is_file())


def run_one(build, name, seconds, keep, runs=None):
    """Fuzz `name` for `seconds`, or with `runs` for that many inputs from
    a fixed seed (the same inputs every time for one build; `seconds` then
    only bounds it): (exit status, executions, coverage, the crash files,
    the tail of its output)."""
    short = name[len("fuzz_"):]
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-fuzz-%s-" % short))
    try:
        corpus = work / "corpus"
        seed = HERE / "corpus" / short
        if seed.is_dir():
            shutil.copytree(seed, corpus)
        else:
            corpus.mkdir()
        art = pathlib.Path(keep) / short
        art.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ,
                   ASAN_OPTIONS="detect_leaks=1:abort_on_error=1",
                   UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
        bound = ["-max_total_time=%d" % seconds]
        if runs:
            bound += ["-runs=%d" % runs, "-seed=1"]
        p = subprocess.run(
            [str(pathlib.Path(build) / name), *bound, "-print_final_stats=1",
             "-max_len=65536", "-timeout=10", "-rss_limit_mb=2048",
             "-artifact_prefix=%s/" % art, str(corpus)],
            capture_output=True, text=True, errors="replace",
            timeout=seconds + 120, cwd=work)
        out = p.stdout + p.stderr
        m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
        cov = re.findall(r"cov: (\d+)", out)
        crashes = sorted(str(f) for f in art.iterdir())
        return (p.returncode, int(m.group(1)) if m else 0,
                int(cov[-1]) if cov else 0, crashes, out[-3000:])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.environ.get("SFS_FUZZ_BUILD",
                                                      "build-fuzz"))
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default=None)
    ap.add_argument("only", nargs="*")
    a = ap.parse_args()
    a.build = str(pathlib.Path(a.build).resolve())
    names = [n for n in targets(a.build)
             if not a.only or any(o in n for o in a.only)]
    if not names:
        print("fuzz: no targets in %s (make fuzz-build)" % a.build)
        return 1
    keep = a.keep or tempfile.mkdtemp(prefix="sfs-fuzz-crashes-")
    bad = 0
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
        futs = {n: pool.submit(run_one, a.build, n, a.seconds, keep)
                for n in names}
        for n in names:
            rc, execs, cov, crashes, tail = futs[n].result()
            ok = rc == 0 and not crashes
            bad += not ok
            print("  %-16s %9d executions  cov %5d  %s" % (
                n, execs, cov, "ok" if ok else "FAILED (exit %d)" % rc),
                flush=True)
            if not ok:
                print(tail)
                for c in crashes:
                    print("    input: %s" % c)
    if not bad:
        shutil.rmtree(keep, ignore_errors=True)
    print("fuzz: %d target(s), %d failed, %d s each" % (
        len(names), bad, a.seconds))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
