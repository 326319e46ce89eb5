"""`speechfsd db migrate --to postgresql://…`: a store made and used on
SQLite moves into PostgreSQL (tests/pg.py's server) in steps
(--max-rows), a change made to the copy behind its back is found by the
check (nothing switched), the run after resumes and switches, and the
daemon then serves the same files, contents, shares and keys from
PostgreSQL, and takes new ones."""
import json
import subprocess
import time

from conftest import SFSD, Client, Daemon, make_store
from test_api_listening import wav


def migrate(store, url, *extra):
    p = subprocess.run([str(SFSD), "db", "migrate", "--store", str(store),
                        "--to", url, "--schema", "moved", "--json",
                        *extra], capture_output=True, text=True,
                       timeout=300)
    return p.returncode, json.loads(p.stdout), p.stderr


def snapshot(c):
    """What alice and bob see: listings, every file, every content."""
    files = c.get("?path=/&recursive=true&size=100&sort=name,asc"
                  "&isDeleted=false").json()["files"]
    deleted = c.get("?path=/&recursive=true&size=100&sort=name,asc"
                    "&isDeleted=true").json()["files"]
    out = {"files": files, "deleted": deleted,
           "bob": c.get("?path=/&recursive=true&size=100&sort=name,asc",
                        who="bob").json()["files"],
           "contents": {f["id"]: c.get("/%s/content" % f["id"]).content
                        for f in files}}
    return out


def test_sqlite_store_moves_to_postgresql(tmp_path, pg_database, pg_server):
    root = tmp_path
    store, tenants, users, keys = make_store(root)
    d = Daemon(root, store)
    c = Client(d.base, store)
    c.tenants, c.users, c.keys = tenants, users, keys
    try:
        made = []
        for i in range(40):
            data = (b"%d" % i) * (10 if i % 10 else 40000)  # inline + blob
            made.append(c.new_file(data=data, name="f%02d" % i,
                                   path="/d%d/" % (i % 4),
                                   tags='["t%d", "all"]' % (i % 3)))
        la = c.new_file(data=wav(1.0), name="speech", listening="true")
        r = c.post("/%s/shares" % made[0]["id"],
                   json={"userId": users["bob"], "permission": "VIEW"})
        assert r.status_code in (200, 201), r.text
        assert c.delete("/" + made[1]["id"]).status_code == 204
        deadline = 60
        t0 = time.time()
        while c.get("/" + la["id"]).json()["listeningAudio"]["status"] \
                != "COMPLETED":
            assert time.time() - t0 < deadline
            time.sleep(0.2)
        before = snapshot(c)
    finally:
        c.http.close()
        d.stop()
    db = pg_database.split("?")[0].rsplit("/", 1)[1]

    # a first step: 50 rows, then it stops (75); nothing switched
    rc, j, err = migrate(store, pg_database, "--max-rows", "50")
    assert rc == 75, err
    assert j["copied"] == 50 and not j["switched"] and not j["complete"]
    assert (store / "speechfs.db").exists()
    assert not (store / "db.url").exists()

    # a change to the copy behind its back: found, nothing switched
    pg_server.psql(db, "UPDATE moved.tenant SET name = 'forged'"
                   " WHERE name = 'acme'")
    rc, j, err = migrate(store, pg_database)
    assert rc == 1 and "tenant differs" in err, err
    assert j["complete"] and j["differs"] == "tenant" and not j["switched"]
    assert j["resumed"]
    copied = 50 + j["copied"]  # the rest, in this run
    assert (store / "speechfs.db").exists()
    assert not (store / "db.url").exists()

    # put right, the next run checks again and switches
    pg_server.psql(db, "UPDATE moved.tenant SET name = 'acme'"
                   " WHERE name = 'forged'")
    rc, j, err = migrate(store, pg_database)
    assert rc == 0, err
    assert j["switched"] and j["copied"] == 0 and j["resumed"]
    assert j["verified"] == j["rows"] == copied > 100
    assert (store / "db.url").stat().st_mode & 0o777 == 0o600
    assert not (store / "speechfs.db").exists()
    assert (store / "speechfs.db.moved-to-postgresql").exists()
    # as after a restore: every moved table vacuumed and analyzed by the
    # move itself (not by autovacuum), so the first queries are planned
    # by the tables' sizes and read the file table's index alone
    done, tables = pg_server.psql(
        db, "SELECT count(last_vacuum) FILTER (WHERE last_analyze IS NOT"
        " NULL), count(*) FROM pg_stat_user_tables WHERE schemaname ="
        " 'moved'").strip().split("|")
    assert done == tables and int(tables) >= 15
    assert pg_server.psql(
        db, "SELECT relallvisible = relpages AND relpages > 0 FROM"
        " pg_class WHERE oid = 'moved.file'::regclass").strip() == "t"
    rc, j, err = migrate(store, pg_database)
    assert rc == 1 and "PostgreSQL already" in err

    d = Daemon(root, store)
    c = Client(d.base, store)
    c.tenants, c.users, c.keys = tenants, users, keys
    try:
        after = snapshot(c)
        assert after == before
        # new rows get new ids (the sequences moved past the copied)
        f = c.new_file(data=b"after the move", name="new", path="/d0/",
                       tags='["all"]')
        assert c.get("/%s/content" % f["id"]).content == b"after the move"
        j = c.get("?recursive=true&tags=all&size=100").json()
        assert j["total"] == 40  # 39 live + the new one
    finally:
        c.http.close()
        d.stop()
    assert pg_server.psql(db, "SELECT count(*) FROM moved.file").strip() \
        == "42"
    # the tag counters (schema v9) came over with the rows and count on
    # there: 'all' on the 40 files, the deleted one and the new one
    assert pg_server.psql(
        db, "SELECT c.n FROM moved.tag_count c JOIN moved.tag t"
        " ON t.id = c.tag_id WHERE t.name = 'all'").strip() == "41"
    p = subprocess.run([str(SFSD), "fsck", "--store", str(store), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["badCounters"] == 0
    pg_server.psql(db, "UPDATE moved.tag_count SET n = n + 1")
    p = subprocess.run([str(SFSD), "fsck", "--store", str(store), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 3 and "counted on" in p.stderr, p.stderr
    assert json.loads(p.stdout)["badCounters"] == 4  # t0, t1, t2, all
    # the files' copies of their tag names (schema v12) came over too,
    # and one forged is found (--repair makes it again)
    assert json.loads(p.stdout)["badTagNames"] == 0
    assert pg_server.psql(
        db, "SELECT count(*) FROM moved.file WHERE tagnames LIKE '%all%'"
    ).strip() == "41"
    pg_server.psql(db, "UPDATE moved.file SET tagnames = 'forged'"
                   " WHERE name = 'new'")
    p = subprocess.run([str(SFSD), "fsck", "--store", str(store), "--json",
                        "--repair"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["badTagNames"] == 1
    assert "tag names differ" in p.stderr, p.stderr
    assert pg_server.psql(
        db, "SELECT tagnames FROM moved.file WHERE name = 'new'"
    ).strip() == "all"


def test_the_database_may_come_from_the_config_file(tmp_path, pg_database,
                                                    pg_server):
    """--config supplies db.url and db.schema (the daemon's file, as for
    the other commands); without either --to or db.url: usage, exit 2."""
    store, _, _, _ = make_store(tmp_path)
    run = [str(SFSD), "db", "migrate", "--store", str(store), "--json"]
    p = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--to (or db.url in --config)" in p.stderr
    p = subprocess.run(run + ["--to", pg_database, "--bogus"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "unexpected argument '--bogus'" in p.stderr
    p = subprocess.run(run + ["--to"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "--to needs a value" in p.stderr
    conf = tmp_path / "speechfsd.conf"
    conf.write_text("db.url = %s\ndb.schema = fromconf\n" % pg_database)
    p = subprocess.run(run + ["-c", str(conf), "--max-rows", "3"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 75, p.stderr
    assert json.loads(p.stdout)["copied"] == 3
    db = pg_database.split("?")[0].rsplit("/", 1)[1]
    assert pg_server.psql(db, "SELECT count(*) FROM information_schema"
                          ".schemata WHERE schema_name = 'fromconf'"
                          ).strip() == "1"
    assert (store / "speechfs.db").exists()
    assert not (store / "db.url").exists()
