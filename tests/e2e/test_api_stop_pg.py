"""A daemon on PostgreSQL stops even while requests wait in the database:
a lock held by another session (another process's long DDL, a LOCK
TABLE) or a server that does not answer holds a request's statement for
as long as it likes, and the daemon cannot stop before its handlers
return. At http.shutdown_timeout their statements are cancelled
(sfs_store_interrupt): they answer 503 with the error body and the daemon
exits 0, while the lock is still held. A server that runs no more takes
no cancel: the daemon leaves what waits for it 7 s later and exits 0
all the same (review s14 finding 3)."""
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests

import pg
from conftest import Daemon, Meta, start
from fsutil import sigstop


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


@contextlib.contextmanager
def daemon_on(tmp_path_factory, server):
    """A new database of server, a store on it and a daemon on the store
    with http.shutdown_timeout 2: (Daemon, Client, database). At the end
    the daemon is killed if the test left it running, its log closed and
    the database dropped."""
    db = server.new_database()
    d = None
    try:
        d, c = start(tmp_path_factory, {"http.shutdown_timeout": "2"},
                     meta=Meta("pg", server.url(db)))
        yield d, c, db
    finally:
        if d:
            end(d)
        server.drop_database(db)


def end(d):
    """Kill the daemon d if it still runs; close its log."""
    if d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()
    d.logf.close()


def get_in_thread(c, fid, got, timeout):
    """GET of file fid's record as alice on a thread of its own (started):
    its Response, or the requests exception, goes to got."""
    def get():
        try:
            got.append(requests.get(c.api + f"/{fid}",
                                    headers=c.hdr("alice"), timeout=timeout))
        except requests.RequestException as exc:
            got.append(exc)
    t = threading.Thread(target=get, daemon=True)
    t.start()
    return t


def loads_waiting(server, db):
    """Sessions waiting for a lock with a file's load (a GET's)."""
    return int(server.psql(db, "SELECT count(*) FROM pg_stat_activity"
                               " WHERE datname = current_database()"
                               " AND wait_event_type = 'Lock'"
                               " AND query LIKE '%f.uuid = $1%'").strip())


def test_stop_cancels_requests_waiting_on_the_database(tmp_path_factory,
                                                       pg_server):
    with daemon_on(tmp_path_factory, pg_server) as (d, c, db):
        fid = c.new_file()["id"]
        conf = (c.store.parent / "init.conf").read_text()
        schema = conf.split("db.schema = ")[1].split()[0]
        locker = Locker(pg_server, db, schema)
        try:
            got = []
            # one at a time: a thread of the daemon waiting in a handler
            # leaves the connections it took meanwhile waiting too
            threads = []
            for n in (1, 2):
                threads.append(get_in_thread(c, fid, got, 60))
                wait_for("the GET never waited",
                         lambda: loads_waiting(pg_server, db) >= n)
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
            locker.release()


# ---- a server that runs no more ------------------------------------------

# poll(2) and ppoll(2): where libpq waits for an answer
POLL_CALLS = {"x86_64": {"7", "271"}, "aarch64": {"73"}}


@pytest.fixture(scope="module")
def own_pg():
    """A PostgreSQL server of this module's own: its tests stop it
    (SIGSTOP), which must not touch the session's server."""
    base = tempfile.mkdtemp(prefix="sfs-pg-")
    s = pg.Server(base)
    try:
        s.start()
    except pg.ServerError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(str(exc), pytrace=False)
    yield s
    rc = s.stop()
    log = s.tail()
    shutil.rmtree(base, ignore_errors=True)
    assert rc == 0, "postgres exited %d:\n%s" % (rc, log)


def proc_state(pid):
    """The state letter of /proc/PID/stat; None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def wait_for(what, cond, limit=30):
    deadline = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def freeze(server, stopped):
    """Every process of the server stopped (SIGSTOP), the postmaster
    first so that it forks no more; each is put in `stopped` before its
    signal, for the caller's thaw however the test ends: the postmaster's
    Popen, and a pidfd of each child (it signals that process or none,
    whichever process has its pid by then)."""
    stopped.append(server.proc)
    sigstop(server.proc)
    out = subprocess.run(["ps", "-o", "pid=", "--ppid",
                          str(server.proc.pid)], capture_output=True,
                         text=True, check=True).stdout.split()
    kids = [int(p) for p in out]
    assert kids, "the postmaster has no children"
    for p in kids:
        # a child that ended is a zombie (its parent, stopped, does not
        # reap it): its pid is still its own
        try:
            fd = os.pidfd_open(p)
        except ProcessLookupError:
            continue
        stopped.append(fd)
        try:
            signal.pidfd_send_signal(fd, signal.SIGSTOP)
        except ProcessLookupError:
            pass
    # one that ends meanwhile (an autovacuum worker, a backend) stays a
    # zombie
    for p in kids:
        wait_for("server process %d did not stop" % p,
                 lambda: proc_state(p) in ("T", "t", "Z", None))


def thaw(stopped):
    """SIGCONT to what freeze stopped, the children first (the
    postmaster, running, reaps those that ended); stopped is emptied, so
    that a second thaw sends nothing."""
    while stopped:
        p = stopped.pop()
        if isinstance(p, int):
            try:
                signal.pidfd_send_signal(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
            os.close(p)
        else:
            p.send_signal(signal.SIGCONT)


def handler_polls(pid):
    """A request handler of the daemon waits in poll(2): in libpq, for
    an answer (idle MHD workers wait in epoll_wait)."""
    calls = POLL_CALLS[os.uname().machine]
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            with open("/proc/%d/task/%s/syscall" % (pid, tid)) as f:
                call = f.read().split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if comm == "MHD-worker" and call in calls:
            return True
    return False


def exits_anyway(d):
    """SIGTERM: the daemon exits 0 and says it left what waits for the
    server. Its bound is http.shutdown_timeout + 7 s (README); 60 s here
    is only how long the test waits for it."""
    d.proc.send_signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(60)
    except subprocess.TimeoutExpired:
        rc = None
    log = d.log.read_text()
    assert rc is not None, "the daemon did not exit:\n" + log[-3000:]
    assert rc == 0, log[-3000:]
    assert "exiting anyway" in log, log[-3000:]


def test_stop_with_a_server_that_runs_no_more(tmp_path_factory, own_pg):
    """A request waits in the database; every process of the server is
    stopped, so nothing answers and no cancel gets through (libpq 15's
    PQcancel waits for the postmaster without a timeout): at SIGTERM the
    daemon still exits 0, with a warning, and the request's connection is
    closed. The store is whole after: a daemon started again on it once
    the server runs serves the file."""
    with daemon_on(tmp_path_factory, own_pg) as (d, c, _):
        fid = c.new_file(data=b"kept")["id"]
        assert not handler_polls(d.proc.pid)
        stopped = []
        d2 = None
        try:
            got = []
            freeze(own_pg, stopped)
            t = get_in_thread(c, fid, got, 120)
            wait_for("the GET never waited for the database",
                     lambda: handler_polls(d.proc.pid))
            exits_anyway(d)
            t.join(60)
            assert len(got) == 1
            assert isinstance(got[0], requests.ConnectionError), got[0]
            thaw(stopped)
            d2 = Daemon(d.root, d.store)
            r = requests.get(c.api.replace(d.base, d2.base) +
                             f"/{fid}/content", headers=c.hdr("alice"),
                             timeout=60)
            assert r.status_code == 200 and r.content == b"kept", r.text
        finally:
            thaw(stopped)
            if d2:
                end(d2)


def test_idle_stop_with_a_server_that_runs_no_more(tmp_path_factory,
                                                   own_pg):
    """No request in flight, but the store's listening thread lost its
    connection to the stopped server and connects again (libpq waits for
    the server's answer without a timeout): at SIGTERM the daemon exits 0
    all the same, with a warning."""
    with daemon_on(tmp_path_factory, own_pg) as (d, c, _):
        c.new_file()
        stopped = []
        try:
            freeze(own_pg, stopped)
            # its ping unanswered (db_listen.c: PING_MS + PING_WAIT_MS)
            wait_for("the listening connection was never lost",
                     lambda: "the listening connection was lost" in
                     d.log.read_text(), 60)
            exits_anyway(d)
        finally:
            thaw(stopped)
