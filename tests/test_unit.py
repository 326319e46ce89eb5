"""The C unit tests of the core, one pytest case per binary; under valgrind
too when SFS_VALGRIND=1 (no leaks allowed). A binary whose source reads
SFS_S3_ENDPOINT gets the session's Ceph RADOS Gateway and a bucket of its
own in its environment (tests/rgw.py); one that calls th_blob_setup()
runs once per blob backend, local and s3 (SFS_BLOB_BACKEND). The binaries
of PG_UNIT run a second time with their metadata in PostgreSQL
(SFS_DB_URL: a fresh database of the run's server, tests/pg.py), beside
SQLite's run."""
import os
import subprocess

import pytest

from conftest import BUILD, ROOT

UNIT = sorted(p for p in (BUILD / "tests").glob("t_*") if os.access(p, os.X_OK)) \
    if (BUILD / "tests").is_dir() else []


def source(binary):
    src = ROOT / "tests" / "unit" / (binary.name + ".c")
    return src.read_text() if src.exists() else ""


# the core's modules whose tests pass on PostgreSQL too (issue 16; the
# others follow as their statements are made to run there)
PG_UNIT = {"t_auth", "t_blob", "t_changes", "t_dir", "t_file", "t_fsck",
           "t_inline", "t_job", "t_keycache", "t_media", "t_people",
           "t_query", "t_session", "t_share", "t_store", "t_sync", "t_tag",
           "t_tagnames", "t_xattr"}

# SFS_UNIT_ONLY=t_x runs the binary t_x alone; SFS_UNIT_ONLY=test_y only
# the binaries that RUN(test_y), each running that test alone (testhelp.h).
# A name that matches nothing fails test_unit_only_matches: a loop of a
# misspelt name would otherwise pass every round having run nothing.
ONLY = os.environ.get("SFS_UNIT_ONLY", "")
RUNS = [b for b in UNIT if not ONLY or b.name == ONLY or
        (not ONLY.startswith("t_") and f"RUN({ONLY});" in source(b))]

CASES = []
for b in RUNS:
    if "th_blob_setup()" in source(b):
        CASES += [(b, "local"), (b, "s3")]
    else:
        CASES.append((b, None))
    if b.name in PG_UNIT:
        CASES.append((b, "pg"))


@pytest.mark.parametrize("binary,backend", CASES,
                         ids=[b.name + (f"[{k}]" if k else "")
                              for b, k in CASES])
def test_unit(binary, backend, request):
    env = dict(os.environ)
    env.pop("SFS_DB_URL", None)
    if ONLY == binary.name:
        env.pop("SFS_UNIT_ONLY")
    pg = request.getfixturevalue("pg_server") if backend == "pg" else None
    if backend and not pg:
        env["SFS_BLOB_BACKEND"] = backend
    if backend == "s3" or "SFS_S3_ENDPOINT" in source(binary):
        gw, bucket = request.getfixturevalue("s3_bucket")
        env.update(gw.env(bucket))
    cmd = [str(binary)]
    valgrind = os.environ.get("SFS_VALGRIND") == "1"
    if valgrind:
        # valgrind runs a binary 10-50 times slower, one thread at a time:
        # what a test must hold by the wall clock (t_job's lease kept by
        # its renewer thread) scales by this (testhelp.h th_slow)
        env["SFS_UNIT_SLOW"] = "10"
        cmd = ["valgrind", "-q", "--leak-check=full", "--child-silent-after-fork=yes", "--errors-for-leak-kinds=definite,indirect",
               "--error-exitcode=3"] + cmd
    # the timeout only stops a hang: under valgrind on a loaded machine
    # t_job and t_media took more than 15 minutes
    # SFS_UNIT_REPEAT=N runs the binary N times in a row (the stability
    # proof of issue 10), stopping at the first failure, which names its
    # round; each round gets a fresh store from the binary itself
    # (SFS_UNIT_REPEAT_LOG=FILE: a line per round passed, for the counts
    # of a loop that is stopped before its end). On PostgreSQL a round's
    # stores are schemas named by the binary's PID (testhelp.h): every
    # round gets a database of its own, or a PID used again (they wrap at
    # 32,768 on a busy machine) would find an earlier round's store there.
    rounds = int(os.environ.get("SFS_UNIT_REPEAT", "1"))
    log = os.environ.get("SFS_UNIT_REPEAT_LOG")
    for i in range(1, rounds + 1):
        db = pg.new_database() if pg else None
        if db:
            env["SFS_DB_URL"] = pg.url(db)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=3600 if valgrind else 900, env=env)
        finally:
            if db:
                pg.drop_database(db)
        if r.returncode != 0:
            print(r.stdout)
            print(r.stderr)
        where = f" (round {i} of {rounds})" if rounds > 1 else ""
        assert r.returncode == 0, \
            f"{binary.name} failed{where}:\n{r.stderr[-4000:]}"
        assert " passed, 0 failed" in r.stdout, f"{binary.name}{where}"
        if log:
            with open(log, "a") as f:
                f.write(f"{request.node.callspec.id} {i} passed\n")


def test_unit_binaries_exist():
    assert UNIT, "no unit test binaries were built"


def test_unit_only_matches():
    assert not ONLY or RUNS, \
        f"SFS_UNIT_ONLY={ONLY} names no unit binary and no test of one"
