#!/usr/bin/env python3
"""A throwaway PostgreSQL server for tests: initdb in a temporary
directory and the server on a UNIX socket there (no TCP), run as the
unprivileged `postgres` user that Debian's package makes (PostgreSQL
refuses to run as root), with trust authentication for that socket only.
pytest uses it through the fixtures of tests/conftest.py; the C unit
tests read where it is from the environment (SFS_PG_URL), which
`python3 tests/pg.py run -- COMMAND...` sets.

The server runs in the foreground as a child of this process, dies with
it (PR_SET_PDEATHSIG), and is stopped by Server.stop() (a fast shutdown).
A server that cannot start raises ServerError with its log: a test that
needs it fails, it never skips."""
import ctypes
import glob
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

USER = "postgres"


class ServerError(Exception):
    """The server did not start or stopped badly; the message has its
    log."""


def _bindir():
    """The newest PostgreSQL server installed (Debian keeps each major
    version under /usr/lib/postgresql/N/bin)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                  key=lambda p: int(p.split("/")[4]))
    if not dirs:
        raise ServerError("no PostgreSQL server is installed "
                          "(packaging/install-deps.sh installs postgresql)")
    return os.path.dirname(dirs[-1])


def _as_user(uid, gid):
    """In the child before exec: become the server's user, and die with
    the test process."""
    def f():
        os.setgid(gid)
        os.setgroups([])
        os.setuid(uid)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    return f


class Server:
    """One server in `base` (a directory the caller removes). url is a
    libpq URL of the database `speechfs_test` on its socket."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.proc = None
        self.port = 5432
        try:
            pw = pwd.getpwnam(USER)
        except KeyError:
            raise ServerError("no user '%s' (the postgresql package "
                              "makes it)" % USER) from None
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def _run(self, argv, timeout=120):
        p = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout,
                           preexec_fn=_as_user(self.uid, self.gid))
        if p.returncode != 0:
            raise ServerError("%s exited %d:\n%s%s" % (
                " ".join(argv), p.returncode, p.stdout[-2000:],
                p.stderr[-2000:]))
        return p.stdout

    def start(self, reuse=False):
        """Start the server; with reuse, on the cluster a former start
        left in base (a benchmark's kept stores), else on a new one."""
        bindir = _bindir()
        for d in (self.base, self.sock):
            d.mkdir(parents=True, exist_ok=True)
            os.chown(d, self.uid, self.gid)
        made = not (reuse and (self.data / "PG_VERSION").exists())
        if made:
            self._run([os.path.join(bindir, "initdb"), "-D",
                       str(self.data), "--auth=trust", "--encoding=UTF8",
                       "--locale=C.UTF-8", "--no-sync", "-U", USER])
        logf = open(self.log, "w")
        os.chown(self.log, self.uid, self.gid)
        # no TCP at all; a socket only this directory holds
        self.proc = subprocess.Popen(
            [os.path.join(bindir, "postgres"), "-D", str(self.data),
             "-k", str(self.sock), "-c", "listen_addresses=",
             "-p", str(self.port), "-c", "max_connections=200",
             "-c", "fsync=off", "-c", "full_page_writes=off"],
            stdout=logf, stderr=subprocess.STDOUT,
            preexec_fn=_as_user(self.uid, self.gid),
            # a group of its own: a test may stop it (test_api_stop_pg),
            # see tests/e2e/fsutil.py STOPPABLE (its children are in
            # sessions of their own)
            process_group=0)
        logf.close()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise ServerError("postgres exited %d:\n%s" % (
                    self.proc.returncode, self.tail()))
            r = subprocess.run(
                [os.path.join(bindir, "pg_isready"), "-q", "-h",
                 str(self.sock), "-p", str(self.port)],
                capture_output=True)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError("postgres did not answer in 60 s:\n" +
                                  self.tail())
            time.sleep(0.05)
        if made:
            self.psql("postgres", "CREATE DATABASE speechfs_test")
        return self

    def tail(self, n=4000):
        try:
            return self.log.read_text()[-n:]
        except OSError:
            return "(no log)"

    def url(self, db="speechfs_test"):
        return "postgresql:///%s?host=%s&port=%d&user=%s" % (
            db, self.sock, self.port, USER)

    def psql(self, db, sql):
        """Run SQL as the superuser; its output (unaligned, tuples only)."""
        return self._run(["psql", "-X", "-q", "-A", "-t", "-v",
                          "ON_ERROR_STOP=1", "-h", str(self.sock), "-p",
                          str(self.port), "-U", USER, "-d", db, "-c", sql])

    def new_database(self):
        """A fresh empty database; its name."""
        name = "t_" + uuid.uuid4().hex[:12]
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name

    def drop_database(self, name):
        self.psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" %
                  name)

    def stop(self):
        if not self.proc:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc, self.proc = self.proc.returncode, None
        return rc


def main(argv):
    """`pg.py run -- COMMAND...`: COMMAND with SFS_PG_URL set to a fresh
    server's database; its exit status."""
    if len(argv) < 3 or argv[1] != "run" or argv[2] != "--":
        sys.stderr.write("usage: pg.py run -- COMMAND...\n")
        return 2
    base = tempfile.mkdtemp(prefix="sfs-pg-")
    s = Server(base)
    try:
        s.start()
        env = dict(os.environ, SFS_PG_URL=s.url())
        return subprocess.call(argv[3:], env=env)
    finally:
        s.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
