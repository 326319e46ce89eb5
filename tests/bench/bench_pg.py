#!/usr/bin/env python3
"""PostgreSQL metadata benchmark (issue 16): the same measures on a store
whose metadata are in PostgreSQL and on one in SQLite, side by side in one
run, as ratios.

1. GET /files/{id}: the daemon's CPU time per request on each store
   (wrk, rounds alternating between the two daemons; the answer cache off
   on both, so that every answer is made afresh: credentials, the file's
   row, JSON). Target: PostgreSQL <= 1.5 x SQLite. The per-request cost is
   printed so that the scaling to more cores can be computed: the
   daemon's, and the PostgreSQL server's own CPU per GET. Then the
   same with the answer cache on (the default), repeated GETs answered
   from it on both.
2. bench_core's three list queries (a directory page, a recursive tag
   filter, a name substring search) on a fill of SFS_BENCH_PG_FILES files
   (default 100,000; the issue's scale is 1,000,000), SQLite first; then
   the same store moved into PostgreSQL with `speechfsd db migrate --to`
   and the queries again there (SFS_BENCH_PG_FILL=direct fills a
   PostgreSQL store row by row instead: over an hour at 1,000,000).
   Targets: directory page p99 < 5 ms, name p99 < 25 ms, tag filter p50
   within 2 x SQLite's. The name search is timed with the names indexed;
   SQLite's right after its fill, before its names' index (bench_core),
   is printed beside.

SFS_BENCH_PG_KEEP=DIR keeps the stores of part 2 and the server's cluster
in DIR and reuses them in later runs (a 1,000,000-file fill and move take
ten minutes and more): the SQLite store and its copy moved into
PostgreSQL, timed in SFS_BENCH_PG_ROUNDS rounds alternating between them,
medians printed; remove DIR for a new fill.

The PostgreSQL server is the tests' (tests/pg.py: a throwaway cluster on a
UNIX socket, started and stopped here; fsync off, as a test server: these
are read measures). SFS_BENCH_PG_ONLY=get runs part 1 alone, =queries
part 2 alone;
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
import time

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


def switches(pid, threads=True):
    """Context switches (voluntary and not) so far of a process's threads
    (threads) or of a process and its children (the server's
    backends)."""
    if threads:
        try:
            ids = ["%d/task/%s" % (pid, t)
                   for t in os.listdir("/proc/%d/task" % pid)]
        except OSError:
            ids = []
    else:
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                ids = [str(pid)] + f.read().split()
        except OSError:
            ids = [str(pid)]
    n = 0
    for i in ids:
        try:
            with open("/proc/%s/status" % i) as f:
                for line in f:
                    if "ctxt_switches:" in line:
                        n += int(line.split()[1])
        except OSError:
            pass  # a thread or a backend that ended
    return n


def get_cpu(work, server, secs, rounds, cache=False):
    """[(kind, req/s, us per GET, the server's us per GET, the daemon's
    context switches per GET, the server's)] of rounds alternating
    SQLite, PG; with cache, the answer cache on (its default), else
    off. The switches are where a PostgreSQL GET's extra CPU goes (the
    sleep and wake-up around its round trip, README "What a request
    costs")."""
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
                # the server's processes (its backends are the
                # postmaster's children): its own CPU per GET
                t0 = bh.tree_ticks(server.proc.pid)
                c0 = switches(proc.pid)
                s0 = switches(server.proc.pid, False)
                rate, us = bh.wrk(url, secs, key, proc.pid)
                n = max(rate * secs, 1)
                srv = ((bh.tree_ticks(server.proc.pid) - t0) * 1e6 /
                       os.sysconf("SC_CLK_TCK") / n)
                sw = (switches(proc.pid) - c0) / n
                ssw = (switches(server.proc.pid, False) - s0) / n
                out.append((kind, rate, us, srv, sw, ssw))
                log("  %-6s %8.0f GET/s  %6.1f us CPU, %.2f context "
                    "switches per GET%s" % (
                        kind, rate, us, sw,
                        " (the PostgreSQL server: %.1f us, %.2f switches)"
                        % (srv, ssw) if kind == "pg" else ""))
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


def bench_core(env, what):
    """bench_core's output with env; BenchError when it fails."""
    p = subprocess.run([str(BUILD / "bench" / "bench_core")], env=env,
                       capture_output=True, text=True, timeout=4 * 3600)
    if p.returncode != 0:
        raise bh.BenchError("bench_core (%s) failed:\n%s%s" % (
            what, p.stdout[-2000:], p.stderr[-2000:]))
    for line in p.stdout.splitlines():
        log("  " + line.strip())
    return p.stdout


JUST_FILLED = re.compile(r"^\s+name, just filled p50 / p99\s+([0-9.]+) ms"
                         r"\s+([0-9.]+) ms", re.M)
INDEXED_IN = re.compile(r"^\s+names indexed in\s+([0-9.]+) s", re.M)


def query_times(out):
    """{query: (p50, p99)}: dir, tag, name (the names indexed), and
    filled: the name search right after the fill with the time its names
    took to index (SQLite: they wait for the janitor's chore)."""
    q = {m.group(1).split()[0]: (float(m.group(2)), float(m.group(3)))
         for m in QUERY.finditer(out)}
    if set(q) != {"dir", "tag", "name"}:
        raise bh.BenchError("bench_core printed no query times:\n" + out)
    m, t = JUST_FILLED.search(out), INDEXED_IN.search(out)
    if not m or not t:
        raise bh.BenchError("bench_core printed no just-filled times:\n"
                            + out)
    q["filled"] = (float(m.group(1)), float(m.group(2)), float(t.group(1)))
    return q


FILL = re.compile(r"fill \(create_many\)\s+[0-9.]+/s .*\(([0-9.]+) s\)")


def move_to_pg(store, server, files, fill_secs):
    """Move store's metadata into a new database of server with
    `speechfsd db migrate --to`; its seconds."""
    t0 = time.monotonic()
    p = subprocess.run(
        [str(BUILD / "speechfsd"), "db", "migrate", "--to",
         server.url(server.new_database()), "--schema", "bench",
         "--store", str(store)],
        capture_output=True, text=True, timeout=4 * 3600)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise bh.BenchError("db migrate failed:\n%s%s" % (
            p.stdout[-2000:], p.stderr[-2000:]))
    log("  db migrate --to PostgreSQL: %.1f s (%.0f files/s); "
        "SQLite fill + migrate: %.0f files/s" % (
            secs, files / secs, files / (fill_secs + secs)))
    return secs


def kept_stores(keep, server, files):
    """(SQLite store, PostgreSQL store) kept in keep: reused when keep
    holds them (a 1,000,000-file fill and move take ten minutes and
    more), else made there: bench_core's fill, a copy of it moved into
    PostgreSQL (the SQLite store stays as the baseline)."""
    mark = keep / "stores"
    lite, post = keep / "sqlite" / "store", keep / "pg" / "store"
    if mark.exists():
        n = int(mark.read_text().split()[0])
        if n != files:
            raise bh.BenchError("%s holds stores of %d files, not %d "
                                "(remove it for a new fill)" % (
                                    keep, n, files))
        log("  the stores kept in %s (%d files), reused" % (keep, n))
        return lite, post
    # the janitor indexes the names during the fill, as in a daemon (else
    # bench_core's search right after the fill takes minutes at 1,000,000)
    env = dict(os.environ, SFS_BENCH_FILES=str(files),
               SFS_BENCH_NO_INGEST="1", SFS_BENCH_KEEP="1",
               SFS_BENCH_JANITOR="1")
    out = bench_core(env, "SQLite, filled")
    m = re.search(r"store kept in (\S+)", out)
    fm = FILL.search(out)
    if not m or not fm:
        raise bh.BenchError("bench_core kept no store:\n" + out)
    store = pathlib.Path(m.group(1))
    for d in (lite.parent, post.parent):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    shutil.move(str(store), str(lite))
    shutil.rmtree(store.parent, ignore_errors=True)
    shutil.copytree(lite, post, symlinks=True)
    move_to_pg(post, server, files, float(fm.group(1)))
    mark.write_text("%d\n" % files)
    return lite, post


def kept_queries(keep, server, files, rounds):
    """{backend: {query: (p50, p99)}}: the medians of rounds of
    bench_core on the kept stores, SQLite and PostgreSQL alternating."""
    lite, post = kept_stores(keep, server, files)
    env = dict(os.environ, SFS_BENCH_NO_INGEST="1")
    runs = {"SQLite": [], "PostgreSQL": []}
    for i in range(rounds):
        for kind, store in (("SQLite", lite), ("PostgreSQL", post)):
            q = query_times(bench_core(dict(env, SFS_BENCH_STORE=str(
                store)), kind))
            runs[kind].append(q)
            log("  round %d %-10s tag filter p50 %.3f ms, dir page p99 "
                "%.2f ms (load %.1f)" % (i + 1, kind, q["tag"][0],
                                         q["dir"][1], os.getloadavg()[0]))
    return {kind: {k: tuple(median([r[k][j] for r in rs])
                            for j in (0, 1))
                   for k in ("dir", "tag", "name")}
            for kind, rs in runs.items()}


def core_queries(work, server, files, fill):
    """{backend: {query: (p50, p99)}} from bench_core on each backend.

    fill "migrate" (the default): SQLite's store is filled by bench_core,
    its queries timed, then its metadata moved into PostgreSQL by
    `speechfsd db migrate --to` (what a store that outgrows SQLite goes
    through; it vacuums and analyzes the tables at its end) and the same
    queries timed there. fill "direct": bench_core fills a PostgreSQL
    store itself through sfs_file_create_many (a round trip per row: a
    1,000,000-file fill takes over an hour here)."""
    env = dict(os.environ, SFS_BENCH_FILES=str(files),
               SFS_BENCH_NO_INGEST="1")
    res = {}
    if fill == "direct":
        out = bench_core(env, "SQLite")
        res["SQLite"] = query_times(out)
        env["SFS_BENCH_DB_URL"] = server.url(server.new_database())
        out = bench_core(env, "PostgreSQL")
        res["PostgreSQL"] = query_times(out)
        return res, None
    out = bench_core(dict(env, SFS_BENCH_KEEP="1"), "SQLite")
    res["SQLite"] = query_times(out)
    m = re.search(r"store kept in (\S+)", out)
    fm = FILL.search(out)
    if not m or not fm:
        raise bh.BenchError("bench_core kept no store:\n" + out)
    store = pathlib.Path(m.group(1))
    try:
        secs = move_to_pg(store, server, files, float(fm.group(1)))
        out = bench_core(dict(env, SFS_BENCH_STORE=str(store)),
                         "PostgreSQL")
        res["PostgreSQL"] = query_times(out)
    finally:
        shutil.rmtree(store.parent, ignore_errors=True)
    return res, (float(fm.group(1)), secs)


def get_part(work, server, secs, rounds):
    """Part 1: the GET made afresh, then from the answer cache."""
    runs = get_cpu(work, server, secs, rounds)
    lite = median([r[2] for r in runs if r[0] == "sqlite"])
    post = median([r[2] for r in runs if r[0] == "pg"])
    srv = median([r[3] for r in runs if r[0] == "pg"])
    log("context switches per GET (medians): the daemon on PostgreSQL "
        "%.2f, on SQLite %.2f; the PostgreSQL server %.2f" % (
            median([r[4] for r in runs if r[0] == "pg"]),
            median([r[4] for r in runs if r[0] == "sqlite"]),
            median([r[5] for r in runs if r[0] == "pg"])))
    ratio = post / lite
    log("GET /files/{id}, daemon CPU per request (median of %d rounds "
        "of %d s each): PostgreSQL %.1f us, SQLite %.1f us; ratio "
        "%.2f (target <= %.1f: %s); per request on PostgreSQL %.1f us "
        "of the daemon = %.0f GET/s per core of daemon CPU, and %.1f us "
        "of the PostgreSQL server = %.0f GET/s per core of server CPU" % (
            rounds, secs, post, lite, ratio, TARGET_GET,
            "met" if ratio <= TARGET_GET else "MISSED", post,
            1e6 / post, srv, 1e6 / srv if srv > 0 else 0))
    # the same GET repeated, from each daemon's answer cache (on
    # PostgreSQL kept valid by the store's notices, keycache.c)
    runs = get_cpu(work, server, secs, rounds, cache=True)
    lite = median([r[2] for r in runs if r[0] == "sqlite"])
    post = median([r[2] for r in runs if r[0] == "pg"])
    log("the same GET from the answer cache (http.response_cache "
        "default), daemon CPU per request: PostgreSQL %.1f us, SQLite "
        "%.1f us; ratio %.2f" % (post, lite, post / lite))


def main():
    secs = int(os.environ.get("SFS_BENCH_PG_SECS", "5"))
    rounds = int(os.environ.get("SFS_BENCH_PG_ROUNDS", "3"))
    files = int(os.environ.get("SFS_BENCH_PG_FILES", "100000"))
    only = os.environ.get("SFS_BENCH_PG_ONLY", "")
    fill = os.environ.get("SFS_BENCH_PG_FILL", "migrate")
    if fill not in ("migrate", "direct"):
        log("SFS_BENCH_PG_FILL is 'migrate' or 'direct'")
        return 2
    keep = os.environ.get("SFS_BENCH_PG_KEEP", "")
    keep = pathlib.Path(keep).resolve() if keep else None
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-bench-pg-"))
    os.chmod(work, 0o755)  # the server runs as the postgres user
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        os.chmod(keep, 0o755)
    server = pg.Server((keep or work) / "postgres")
    log("load: %.2f %.2f %.2f (1, 5, 15 min) before" % os.getloadavg())
    try:
        server.start(reuse=keep is not None)
        if only != "queries":
            get_part(work, server, secs, rounds)
        if only != "get" and keep:
            q = kept_queries(keep, server, files, rounds)
        elif only != "get":
            q, _ = core_queries(work, server, files, fill)
        if only != "get":
            s, p = q["SQLite"], q["PostgreSQL"]
            log("%d files (bench_core), PostgreSQL vs SQLite:" % files)
            log("  directory page p99 %.2f ms (SQLite %.2f; target < 5 "
                "ms: %s)" % (p["dir"][1], s["dir"][1],
                             "met" if p["dir"][1] < 5 else "MISSED"))
            log("  name substring p99 %.2f ms (SQLite %.2f; target < 25 "
                "ms: %s)" % (p["name"][1], s["name"][1],
                             "met" if p["name"][1] < 25 else "MISSED"))
            if "filled" in s:
                log("  SQLite's name search right after its fill, before "
                    "the names' index: p50 %.2f / p99 %.2f ms; indexing "
                    "them took %.2f s (a daemon's janitor indexes them as "
                    "they come, every second)" % s["filled"])
            tr = p["tag"][0] / s["tag"][0]
            log("  recursive tag filter p50 %.3f ms vs SQLite %.3f ms: "
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
