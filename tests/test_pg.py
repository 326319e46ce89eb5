"""The PostgreSQL test component itself (tests/pg.py): it starts as an
unprivileged user on a socket of its own, answers SQL, has the pg_trgm
extension the metadata backend needs, keeps databases apart, and runs a
command with SFS_PG_URL set."""
import os
import subprocess
import sys

import pg

HERE = os.path.dirname(os.path.abspath(__file__))


def test_server_answers_sql(pg_server):
    out = pg_server.psql("speechfs_test", "SELECT 40 + 2")
    assert out.strip() == "42"
    # not root: PostgreSQL would refuse to run
    out = pg_server.psql("speechfs_test", "SELECT current_setting("
                         "'data_directory')")
    st = os.stat(out.strip())
    assert st.st_uid != 0


def test_trigram_extension_is_there(pg_server):
    db = pg_server.new_database()
    try:
        out = pg_server.psql(db, "CREATE EXTENSION pg_trgm;"
                             " SELECT similarity('speech', 'speeches') > 0.4")
        assert out.strip() == "t"
    finally:
        pg_server.drop_database(db)


def test_database_url_reaches_its_database(pg_database):
    p = subprocess.run(["psql", "-X", "-A", "-t", "-d", pg_database, "-c",
                        "SELECT current_database()"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().startswith("t_")


def test_databases_are_apart(pg_server):
    a, b = pg_server.new_database(), pg_server.new_database()
    try:
        pg_server.psql(a, "CREATE TABLE t(x int); INSERT INTO t VALUES (1)")
        assert pg_server.psql(a, "SELECT count(*) FROM t").strip() == "1"
        out = pg_server.psql(b, "SELECT count(*) FROM pg_tables"
                             " WHERE tablename = 't'")
        assert out.strip() == "0"
    finally:
        pg_server.drop_database(a)
        pg_server.drop_database(b)
    out = pg_server.psql("postgres", "SELECT count(*) FROM pg_database"
                         " WHERE datname IN ('%s', '%s')" % (a, b))
    assert out.strip() == "0"


def test_no_tcp_listener(pg_server):
    out = pg_server.psql("speechfs_test", "SHOW listen_addresses")
    assert out.strip() == ""


def test_run_sets_the_url():
    p = subprocess.run(
        [sys.executable, os.path.join(HERE, "pg.py"), "run", "--",
         "sh", "-c", 'psql -X -A -t -d "$SFS_PG_URL" -c "SELECT 7"'],
        capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "7"
