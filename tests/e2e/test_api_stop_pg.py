"""A daemon on PostgreSQL stops even while requests wait in the database:
a lock held by another session (another process's long DDL, a LOCK
TABLE) or a server that does not answer holds a request's statement for
as long as it likes, and the daemon cannot stop before its handlers
return. At http.shutdown_timeout their statements are cancelled
(sfs_store_interrupt): they answer 503 with the error body and the daemon
exits 0, while the lock is still held."""
import signal
import subprocess
import threading
import time

import requests

import pg
from conftest import Meta, start


class Locker:
    """A psql session holding the store's file table locked."""

    def __init__(self, server, db, schema):
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
             str(server.sock), "-p", str(server.port), "-U", pg.USER, "-d",
             db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.p.stdin.write("BEGIN; LOCK TABLE %s.file IN ACCESS EXCLUSIVE "
                           "MODE; SELECT 'locked';\n" % schema)
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line.strip() == "locked", line

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("ROLLBACK;\n")
            self.p.stdin.close()
            self.p.wait(30)


def loads_waiting(server, db):
    """Sessions waiting for a lock with a file's load (a GET's)."""
    return int(server.psql(db, "SELECT count(*) FROM pg_stat_activity"
                               " WHERE datname = current_database()"
                               " AND wait_event_type = 'Lock'"
                               " AND query LIKE '%f.uuid = $1%'").strip())


def test_stop_cancels_requests_waiting_on_the_database(tmp_path_factory,
                                                       pg_server):
    db = pg_server.new_database()
    d = locker = None
    try:
        d, c = start(tmp_path_factory, {"http.shutdown_timeout": "2"},
                     meta=Meta("pg", pg_server.url(db)))
        fid = c.new_file()["id"]
        conf = (c.store.parent / "init.conf").read_text()
        schema = conf.split("db.schema = ")[1].split()[0]
        locker = Locker(pg_server, db, schema)
        got = []

        def get():
            try:
                got.append(requests.get(c.api + f"/{fid}",
                                        headers=c.hdr("alice"), timeout=60))
            except requests.RequestException as exc:
                got.append(exc)
        # one at a time: a thread of the daemon waiting in a handler
        # leaves the connections it took meanwhile waiting too
        threads = [threading.Thread(target=get) for _ in range(2)]
        for n, t in enumerate(threads, 1):
            t.start()
            deadline = time.monotonic() + 30
            while loads_waiting(pg_server, db) < n:
                assert time.monotonic() < deadline, "the GET never waited"
                time.sleep(0.05)
        d.proc.send_signal(signal.SIGTERM)
        # without the cancel it waits for as long as the lock is held
        rc = d.proc.wait(60)
        assert rc == 0, d.log.read_text()[-3000:]
        for t in threads:
            t.join(60)
        assert len(got) == 2
        for r in got:
            assert isinstance(r, requests.Response), r
            c.assert_error(r, 503)
        # the lock was still held all along
        assert locker.p.poll() is None
        assert "requests still in flight" in d.log.read_text()
    finally:
        if locker:
            locker.release()
        if d:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d.logf.close()
        pg_server.drop_database(db)
