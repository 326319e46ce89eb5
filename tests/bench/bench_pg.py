#!/usr/bin/env python3
"""PostgreSQL metadata benchmark (issue 16): the same measures on a store
whose metadata are in PostgreSQL and on one in SQLite, side by side in one
run, as ratios.

1. GET /files/{id}: the daemon's CPU time per request on each store
   (wrk, rounds alternating between the two daemons; the answer cache off
   on both, so that every answer is made afresh: credentials, the file's
   row, JSON). Target: PostgreSQL <= 1.5 x SQLite. The per-request cost is
   printed so that the scaling to more cores can be computed. Then the
   same with the answer cache on (the default), repeated GETs answered
   from it on both.
2. bench_core's three list queries (a directory page, a recursive tag
   filter, a name substring search) on a fill of SFS_BENCH_PG_FILES files
   (default 100,000; the issue's scale is 1,000,000, whose fill takes
   about 40 minutes on PostgreSQL here), SQLite first, then PostgreSQL.
   Targets: directory page p99 < 5 ms, name p99 < 25 ms, tag filter p50
   within 2 x SQLite's.

The PostgreSQL server is the tests' (tests/pg.py: a throwaway cluster on a
UNIX socket, started and stopped here; fsync off, as a test server: these
are read measures). SFS_BENCH_PG_ONLY=get runs part 1 alone;
SFS_BENCH_PG_SECS sets wrk's duration (default 5), SFS_BENCH_PG_ROUNDS
the rounds per daemon (default 3). Exits non-zero when the benchmark
could not run; a missed target is reported, not an error.
"""
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import requests

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench_httpd as bh  # noqa: E402
import pg  # noqa: E402

BUILD = bh.BUILD
TARGET_GET = 1.5
TARGET_TAG = 2.0


def log(msg):
    print("bench_pg: " + msg, flush=True)


def pg_store(work, server):
    """A store whose metadata are in a new database of server, with a
    tenant, a user and a key like bench_httpd's own store."""
    db = server.new_database()
    store = work / "store"
    conf = work / "init.conf"
    conf.write_text("store = %s\ndb.url = %s\ndb.schema = bench\n"
                    % (store, server.url(db)))
    bh.admin(store, "init", "-c", str(conf))
    tenant = bh.admin(store, "tenant", "create", "--name", "bench")["id"]
    user = bh.admin(store, "user", "create", "--tenant", tenant, "--name",
                    "bench", "--download-bps", "0")["id"]
    key = bh.admin(store, "key", "create", "--user", user, "--scopes",
                   "read,write,delete,share")["key"]
    return store, key, db


def one_file(base, key):
    r = requests.post(base + bh.API, headers={"X-API-Key": key},
                      data={"name": "bench", "tags": '["a", "b"]'},
                      files={"file": ("bench.wav", b"RIFF" + b"\0" * 60,
                                      "audio/wav")}, timeout=30)
    if r.status_code != 201:
        raise bh.BenchError("upload: %d %s" % (r.status_code, r.text))
    return r.json()["id"]


def get_cpu(work, server, secs, rounds, cache=False):
    """[(kind, req/s, us per GET)] of rounds alternating SQLite, PG; with
    cache, the answer cache on (its default), else off."""
    procs = []
    try:
        daemons = {}
        for kind in ("sqlite", "pg"):
            w = work / (kind + ("-cached" if cache else ""))
            w.mkdir()
            sk = pg_store(w, server)[:2] if kind == "pg" else None
            proc, base, key, logpath, _ = bh.start_sfsd(
                w, "", sk, {"http.response_cache": "1024" if cache else "0"})
            procs.append(proc)
            bh.wait_http(base + "/healthz", proc, logpath,
                         "speechfsd (%s)" % kind)
            url = base + bh.API + "/" + one_file(base, key)
            bh.wrk(url, 1, key)  # warm: connections, statements
            daemons[kind] = (proc, url, key)
        out = []
        for _ in range(rounds):
            for kind, (proc, url, key) in daemons.items():
                rate, us = bh.wrk(url, secs, key, proc.pid)
                out.append((kind, rate, us))
                log("  %-6s %8.0f GET/s  %6.1f us CPU per GET" % (
                    kind, rate, us))
        return out
    finally:
        for p in procs:
            bh.stop(p)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


QUERY = re.compile(r"^\s+(dir page|tag filter \(/, rec\.\)|name substring)"
                   r" p50 / p99\s+([0-9.]+) ms\s+([0-9.]+) ms", re.M)


def core_queries(work, server, files):
    """{backend: {query: (p50, p99)}} from bench_core on each backend."""
    res = {}
    for kind in ("SQLite", "PostgreSQL"):
        env = dict(os.environ, SFS_BENCH_FILES=str(files),
                   SFS_BENCH_NO_INGEST="1", TMPDIR=str(work))
        if kind == "PostgreSQL":
            env["SFS_BENCH_DB_URL"] = server.url(server.new_database())
        p = subprocess.run([str(BUILD / "bench" / "bench_core")], env=env,
                           capture_output=True, text=True, timeout=4 * 3600)
        if p.returncode != 0:
            raise bh.BenchError("bench_core (%s) failed:\n%s%s" % (
                kind, p.stdout[-2000:], p.stderr[-2000:]))
        for line in p.stdout.splitlines():
            log("  " + line.strip())
        q = {m.group(1).split()[0]: (float(m.group(2)), float(m.group(3)))
             for m in QUERY.finditer(p.stdout)}
        if set(q) != {"dir", "tag", "name"}:
            raise bh.BenchError("bench_core printed no query times:\n"
                                + p.stdout)
        res[kind] = q
    return res


def main():
    secs = int(os.environ.get("SFS_BENCH_PG_SECS", "5"))
    rounds = int(os.environ.get("SFS_BENCH_PG_ROUNDS", "3"))
    files = int(os.environ.get("SFS_BENCH_PG_FILES", "100000"))
    only = os.environ.get("SFS_BENCH_PG_ONLY", "")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-bench-pg-"))
    os.chmod(work, 0o755)  # the server runs as the postgres user
    server = pg.Server(work / "postgres")
    log("load: %.2f %.2f %.2f (1, 5, 15 min) before" % os.getloadavg())
    try:
        server.start()
        runs = get_cpu(work, server, secs, rounds)
        lite = median([us for k, _, us in runs if k == "sqlite"])
        post = median([us for k, _, us in runs if k == "pg"])
        ratio = post / lite
        log("GET /files/{id}, daemon CPU per request (median of %d rounds "
            "of %d s each): PostgreSQL %.1f us, SQLite %.1f us; ratio "
            "%.2f (target <= %.1f: %s); per request on PostgreSQL %.1f us "
            "of the daemon = %.0f GET/s per core of daemon CPU" % (
                rounds, secs, post, lite, ratio, TARGET_GET,
                "met" if ratio <= TARGET_GET else "MISSED", post,
                1e6 / post))
        # the same GET repeated, from each daemon's answer cache (on
        # PostgreSQL kept valid by the store's notices, keycache.c)
        runs = get_cpu(work, server, secs, rounds, cache=True)
        lite = median([us for k, _, us in runs if k == "sqlite"])
        post = median([us for k, _, us in runs if k == "pg"])
        log("the same GET from the answer cache (http.response_cache "
            "default), daemon CPU per request: PostgreSQL %.1f us, SQLite "
            "%.1f us; ratio %.2f" % (post, lite, post / lite))
        if only != "get":
            q = core_queries(work, server, files)
            s, p = q["SQLite"], q["PostgreSQL"]
            log("%d files (bench_core), PostgreSQL vs SQLite:" % files)
            log("  directory page p99 %.2f ms (SQLite %.2f; target < 5 "
                "ms: %s)" % (p["dir"][1], s["dir"][1],
                             "met" if p["dir"][1] < 5 else "MISSED"))
            log("  name substring p99 %.2f ms (SQLite %.2f; target < 25 "
                "ms: %s)" % (p["name"][1], s["name"][1],
                             "met" if p["name"][1] < 25 else "MISSED"))
            tr = p["tag"][0] / s["tag"][0]
            log("  recursive tag filter p50 %.2f ms vs SQLite %.2f ms: "
                "ratio %.2f (target <= %.1f: %s)" % (
                    p["tag"][0], s["tag"][0], tr, TARGET_TAG,
                    "met" if tr <= TARGET_TAG else "MISSED"))
    except (bh.BenchError, pg.ServerError) as e:
        log("FAILED: %s" % e)
        return 1
    finally:
        log("load: %.2f %.2f %.2f (1, 5, 15 min) after" % os.getloadavg())
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
