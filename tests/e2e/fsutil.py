"""Fixtures of the mount's end-to-end tests: a fresh store with a tenant and
a user (made with speechfsd's admin CLI), and `speechfs -f` mounted on a
temporary directory. At teardown the mount is unmounted with fusermount3 -u
and the process must have exited 0, whatever the test did (sshfs
test/util.py). Import the fixtures into a test module to use them.

The mount kind: a module that sets MOUNT_KINDS = ["local", "remote"]
runs every test of it once per kind (the autouse `mount_kind` fixture of
conftest.py). For remote, every Mount of a store is `speechfs --url`
of a speechfsd on that store (127.0.0.1, a free port, started at the
store's first remote mount and stopped, exit 0, at the test's end) with an
API key of the user (--key-file) and a block cache of its own; the test
still sees the store directory, so checks of what the store holds (blob
files, the database) stay as they are."""
import ctypes
import errno
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SPEECHFS = BUILD / "speechfs"
# The admin CLI that makes stores, tenants and users; SFS_ADMIN may name
# another program speaking the same commands.
ADMIN = pathlib.Path(os.environ.get("SFS_ADMIN", BUILD / "speechfsd"))


# "local" or "remote": what Mount makes now (set by conftest's mount_kind)
KIND = {"now": "local"}
# store directory -> its Server, for the remote mounts of this test
SERVERS = {}
# Limits generous enough for a mount's many small requests; the
# limits have tests of their own.
SERVER_CONFIG = {
    "http.rate_per_second": "100000",
    "http.rate_burst": "100000",
    "http.upload_rate_per_second": "100000",
    "http.upload_rate_burst": "100000",
    "http.auth_failures_burst": "100000",
}


def missing_for_mounts():
    """What a mount test lacks on this machine, or None: /dev/fuse,
    fusermount3, the built mount and the admin CLI that makes stores."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if not shutil.which("fusermount3"):
        return "no fusermount3 (Debian's fuse3)"
    for b in (SPEECHFS, ADMIN):
        if not os.access(b, os.X_OK):
            return f"{b} is not built"
    return None


def is_mounted(path):
    """Whether path is a mount point in the mount table. A FUSE mount
    whose process died is still there, but os.path.ismount() says no
    (stat of it fails with ENOTCONN) once the kernel's attributes expire."""
    want = os.path.abspath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            # spaces, tabs, newlines and backslashes come octal-escaped
            mp = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), mp)
            if mp == want:
                return True
    return False


def need_fuse():
    """Skip a mount test that cannot run here, saying why; under CI
    (CI=true) the skip is a failure (tests/conftest.py)."""
    why = missing_for_mounts()
    if why:
        pytest.skip(why)


def admin(*args):
    """Run one admin command with --json; return its JSON output."""
    out = subprocess.run([str(ADMIN), *args, "--json"], check=True,
                         capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_store(path, max_bytes=0, blobs=None, meta=None):
    """A new store with one tenant and two users; returns their ids. Its
    metadata where `meta` keeps it (conftest.Meta: SQLite when None), its
    blobs where `blobs` does."""
    if meta:
        meta.init(path)
    else:
        admin("init", "--store", str(path))
    if blobs:
        blobs.init(path)
    tenant = admin("tenant", "create", "--store", str(path), "--name",
                   "t", "--max-bytes", str(max_bytes))["id"]
    users = [admin("user", "create", "--store", str(path), "--tenant",
                   tenant, "--name", n)["id"] for n in ("alice", "bob")]
    return tenant, users


_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies
    (PR_SET_PDEATHSIG; prctl is looked up beforehand, not after the
    fork)."""
    _prctl(1, signal.SIGKILL)


# Popen's keywords for a daemon a test may stop (sigstop): a process group
# of its own, and it dies with the test process, whichever group is
# killed. In the test run's group, a stopped daemon is run again by the
# kernel whenever that group is orphaned (its last process with a parent
# outside it, in the session, ends: the shell that started the run in the
# background, `nohup make test &`, exiting): POSIX sends SIGHUP and
# SIGCONT to every process of a newly orphaned group that has a stopped
# one (review s20 I1: the daemon answered in the middle of a stall test;
# /work/notes/tests-i1-repro.sh shows it).
STOPPABLE = {"process_group": 0, "preexec_fn": _die_with_parent}


def terminate(proc, timeout=30):
    """SIGTERM (SIGCONT first, for a process a test stopped) and wait:
    its exit status, or a sentence when it had to be killed. Signals go
    through Popen.send_signal, which sends none to a child already
    reaped, whose pid another process may have by now."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "no exit within %d s of SIGTERM" % timeout


def all_stopped(pid):
    """Whether every thread of process pid is stopped: state T or t in
    /proc/PID/task/*/stat (a thread gone meanwhile does not count)."""
    for t in pathlib.Path("/proc/%d/task" % pid).iterdir():
        try:
            stat = (t / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "Tt":
            return False
    return True


def sigstop(proc, timeout=30):
    """SIGSTOP proc (a Popen started with STOPPABLE) and wait until every
    thread of it is stopped: kill() returns before they are, a thread
    busy elsewhere stops a moment later (and a SIGCONT sent meanwhile
    takes the stop back). Fails when they are not within timeout
    seconds, and for a process that does not lead a group of its own
    (see STOPPABLE) or has ended."""
    pid = proc.pid
    assert proc.poll() is None, "process %d has ended" % pid
    assert os.getpgid(pid) == pid, \
        "process %d is not in a process group of its own: start it " \
        "with fsutil.STOPPABLE" % pid
    proc.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not all_stopped(pid):
        assert time.monotonic() < deadline, \
            "process %d did not stop within %d s" % (pid, timeout)
        time.sleep(0.001)


SYNC_LINE = re.compile(r"^\d+\s+(\d+\.\d+)\s+(fsync|fdatasync)\(")


def sync_calls(trace):
    """The fsync/fdatasync calls of an `strace -f -ttt` output file (it
    may still be written): [(time.time() of the call, name)]."""
    calls = []
    for line in pathlib.Path(trace).read_text().splitlines():
        m = SYNC_LINE.match(line)
        if m:
            calls.append((float(m.group(1)), m.group(2)))
    return calls


class SyncTrace:
    """strace attached to a running process (every thread) for its
    fsync/fdatasync calls, until stop(): with `with`, the block runs
    once strace has attached (a deadline, not a sleep), and syncs(t0, t1)
    then says which calls started between t0 and t1 (time.time()). The
    process goes on untouched when strace detaches."""

    def __init__(self, pid, tmp):
        assert shutil.which("strace"), "packaging/install-deps.sh installs it"
        self.out = pathlib.Path(tmp) / ("syncs-%d.trace" % pid)
        self.err = open(self.out.with_suffix(".log"), "w+")
        self.proc = subprocess.Popen(
            ["strace", "-f", "-ttt", "-e", "trace=fsync,fdatasync", "-o",
             str(self.out), "-p", str(pid)],
            stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while "attached" not in self.log():
            assert self.proc.poll() is None and time.time() < deadline, \
                "strace did not attach: " + self.log()
            time.sleep(0.02)
        self.calls = None

    def log(self):
        return read_log(self.err)

    def stop(self):
        """Detach (SIGINT) and read the calls: [(time, name)]."""
        if self.calls is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)
            self.err.close()
            self.calls = sync_calls(self.out)
        return self.calls

    def syncs(self, t0, t1):
        return [n for t, n in self.stop() if t0 <= t <= t1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stop_all(things):
    """Stop each of things (each .stop() may raise: the mount or daemon
    did not exit 0); every one is stopped, then the first error raised."""
    first = None
    for t in things:
        try:
            t.stop()
        except BaseException as e:      # noqa: BLE001
            first = first or e
    if first:
        raise first


class Server:
    """A speechfsd on a store for its remote mounts: 127.0.0.1, a free
    port of its own (kill() and start() again keep it), generous rate
    limits, job workers on (the server makes the listening audio) unless
    `workers` is false or `config` says otherwise; an API key per user,
    made when first asked for. Its output goes to a log shown when it
    fails."""

    def __init__(self, store, workers=True, **config):
        self.store = pathlib.Path(store)
        self.workers = workers
        self.mounts = 0     # remote mounts of it still up
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.keys = {}
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="sfs-srv-"))
        self.config = self.tmp / "speechfsd.conf"
        self.config.write_text("".join(
            "%s = %s\n" % kv for kv in {**SERVER_CONFIG, **config}.items()))
        self.logf = open(self.tmp / "speechfsd.log", "w+")
        self.proc = None
        self.start()

    def start(self):
        """Start it (again) on its port and wait until it answers HTTP
        (any status: a server without /healthz answers too)."""
        import urllib.error
        import urllib.request
        self.killed = False
        self.proc = subprocess.Popen(
            [str(ADMIN), "--store", str(self.store), "--listen",
             "127.0.0.1:%d" % self.port, "--config", str(self.config)] +
            ([] if self.workers else ["--no-workers"]),
            stdout=self.logf, stderr=subprocess.STDOUT, **STOPPABLE)
        deadline = time.time() + 30
        while True:
            if self.proc.poll() is not None or time.time() > deadline:
                out = self.output()
                self.stop(check=False)
                raise RuntimeError("speechfsd did not start: " + out)
            try:
                with urllib.request.urlopen(self.base + "/healthz",
                                            timeout=1):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                pass
            time.sleep(0.05)

    def kill(self):
        """SIGKILL, as a crash of the server would end it."""
        self.killed = True
        self.proc.kill()
        self.proc.wait(timeout=30)

    def key(self, user):
        if user not in self.keys:
            self.keys[user] = admin("key", "create", "--store",
                                    str(self.store), "--user", user)["key"]
        return self.keys[user]

    def output(self):
        return read_log(self.logf)

    def stop(self, check=True):
        """SIGTERM; the daemon must exit 0 (unless the test killed it
        and did not start it again)."""
        rc = terminate(self.proc)
        out = self.output()
        self.logf.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if check and not self.killed:
            assert rc == 0, "speechfsd exited %r:\n%s" % (rc, out)
        return rc


def server_of(store, workers=True):
    """The Server of a store, started at its first remote mount, with no
    job workers when that mount asks for none (-o no_workers: a local
    mount would run none itself); started again when a later mount asks
    otherwise and no mount of it is up."""
    key = str(pathlib.Path(store).resolve())
    srv = SERVERS.get(key)
    if srv and srv.workers != workers and srv.mounts == 0:
        SERVERS.pop(key).stop()
        srv = None
    if srv is None:
        srv = SERVERS[key] = Server(store, workers)
    return srv


def stop_servers():
    """Stop the servers of this test's remote mounts (each must exit 0)."""
    servers = list(SERVERS.values())
    SERVERS.clear()
    stop_all(servers)


class Mount:
    """A running `speechfs -f` on a temporary mountpoint: of the store
    directory, or (mount kind remote) of the store's Server by --url."""

    def __init__(self, store, user, *opts):
        self.store = store
        self.user = user
        self.kind = KIND["now"]
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sfs-mnt-"))
        self.kind_key = self.kind_cache = None
        if self.kind == "remote":
            srv = server_of(store, workers=not any(
                "no_workers" in o for o in opts))
            self.server = srv
            srv.mounts += 1
            self.kind_key = self.dir.parent / (self.dir.name + ".key")
            self.kind_key.write_text(srv.key(user) + "\n")
            self.kind_key.chmod(0o600)
            self.kind_cache = pathlib.Path(
                tempfile.mkdtemp(prefix="sfs-rc-"))
            self.start([str(SPEECHFS), "--url", srv.base, "--key-file",
                        str(self.kind_key),
                        "-o", "cache_dir=%s" % self.kind_cache,
                        str(self.dir), "-f", *opts], wait=15)
        else:
            self.start([str(SPEECHFS), "--store", str(store), "--user",
                        user, str(self.dir), "-f", *opts])

    def start(self, cmd, wait=10):
        """Run cmd (a `speechfs -f` on self.dir) until its mount is up;
        if it is not within `wait` seconds, stop it and raise."""
        self.log = open(self.dir.parent / (self.dir.name + ".log"), "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + wait
        while not os.path.ismount(self.dir):
            if self.proc.poll() is not None or time.time() > deadline:
                out = self.output()
                self.stop(check=False)
                raise RuntimeError("mount failed: " + out)
            time.sleep(0.05)

    def output(self):
        return read_log(self.log)

    def path(self, *parts):
        return self.dir.joinpath(*parts)

    def stop(self, check=True):
        """Unmount; return the process's exit status. With check, the
        process must have exited 0 and left no mount behind."""
        if is_mounted(self.dir):
            subprocess.run(["fusermount3", "-u", str(self.dir)],
                           timeout=30)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        left = is_mounted(self.dir)
        if left:
            subprocess.run(["fusermount3", "-uz", str(self.dir)])
        out = self.output()
        self.log.close()
        os.unlink(self.log.name)
        if getattr(self, "kind_key", None):
            self.server.mounts -= 1
            self.kind_key.unlink()
            shutil.rmtree(self.kind_cache, ignore_errors=True)
            self.kind_key = None
        try:
            self.dir.rmdir()
        except OSError:
            pass
        if check:
            assert rc == 0, "speechfs exited %r:\n%s" % (rc, out)
            assert not left, "still mounted after speechfs ended:\n" + out
            assert "Ignoring invalid" not in out, out
            # a lookup that turned a refused request into an answer
            assert "answered without the server" not in out, out
        return rc


@pytest.fixture
def store(tmp_path, blobs, meta):
    """(store dir, tenant id, [user ids]) of a fresh store, its blobs
    where the module's `blobs` backend keeps them (BLOB_BACKENDS), its
    metadata where `meta` does (META_BACKENDS: a module listing "pg"
    mounts a PostgreSQL store too; conftest.py)."""
    need_fuse()
    d = tmp_path / "store"
    tenant, users = make_store(d, blobs=blobs, meta=meta)
    return d, tenant, users


@pytest.fixture
def mnt(store):
    """A mount of the first user of a fresh store."""
    d, _, users = store
    m = Mount(d, users[0])
    try:
        yield m
    finally:
        m.stop()


@pytest.fixture
def mounts(store):
    """mounts(user, *opts) mounts the store as that user; every mount made
    is unmounted at teardown and each must have exited 0, even when the
    test or another mount failed."""
    made = []

    def make(user, *opts):
        m = Mount(store[0], user, *opts)
        made.append(m)
        return m
    yield make
    stop_all(made)


@pytest.fixture
def remote(request, store):
    """A speechfsd of the test's own on a fresh store, which the test
    may stop, kill and start again, for the remote mounts it makes itself
    (test_fs_remote.RemoteMount): (Server, alice's API key, store dir,
    alice's id). It must exit 0 at the end (Server.stop). No jobs run
    (jobs.enabled false); the module's REMOTE_CONFIG adds to its config."""
    d, _, users = store
    dm = Server(d, **{"jobs.enabled": "false",
                      **getattr(request.module, "REMOTE_CONFIG", {})})
    try:
        yield dm, dm.key(users[0]), d, users[0]
    finally:
        dm.stop()


class StoreReader:
    """Another process reading a store's metadata as it is committed:
    value(sql) is the first column of the first row. SQLite's file read
    only, or one psql session on a PostgreSQL store's schema (its
    STORE/db.url), fed a query at a time. Close it."""

    def __init__(self, store):
        rec = pathlib.Path(store) / "db.url"
        self.db = self.psql = None
        if not rec.exists():
            import sqlite3
            self.db = sqlite3.connect(
                "file:%s?mode=ro" % (pathlib.Path(store) / "speechfs.db"),
                uri=True, timeout=30, check_same_thread=False)
            return
        kv = dict(line.split(" = ", 1)
                  for line in rec.read_text().splitlines() if " = " in line)
        self.psql = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-d", kv["db.url"]], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.psql.stdin.write("SET search_path = %s;\n"
                              % kv.get("db.schema", "public"))

    def value(self, sql):
        if self.db:
            return self.db.execute(sql).fetchone()[0]
        self.psql.stdin.write(sql.rstrip(";") + ";\n")
        self.psql.stdin.flush()
        line = self.psql.stdout.readline()
        assert line, "psql ended"
        return int(line) if line.strip().lstrip("-").isdigit() else \
            line.rstrip("\n")

    def close(self):
        if self.db:
            self.db.close()
        else:
            self.psql.stdin.close()
            assert self.psql.wait(timeout=30) == 0


def xget(path, name):
    return os.getxattr(path, name).decode()


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_bytes(d):
    """Bytes of the complete blocks in a remote mount's block cache (a
    block is written to NAME.TID.tmp and renamed: those may come and go
    meanwhile; staged writes are not blocks)."""
    n = 0
    for f in pathlib.Path(d).rglob("*"):
        if f.name.endswith(".tmp") or "staging" in f.parts:
            continue
        try:
            if f.is_file():
                n += f.stat().st_size
        except FileNotFoundError:
            pass
    return n


def read_log(f):
    """What a running process wrote so far to f, its stdout or stderr:
    read through a file description of our own. f's own (seek(0), then
    read) is the process's too, not opened O_APPEND: a line it wrote
    between our seek and our read went at offset 0, over its first lines
    (a remote mount's "does not answer" lost so, test_no_line_tells_the_
    password_of_the_url, 1 run in 20)."""
    with open(f.name, errors="replace") as own:
        return own.read()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api(store):
    """A speechfsd (no workers) on the store of the `store` fixture:
    (files URL, [API key per user]); stopped with SIGTERM afterwards,
    when it must exit 0."""
    import requests
    d, _, users = store
    port = free_port()
    proc = subprocess.Popen([str(ADMIN), "--store", str(d), "--listen",
                             "127.0.0.1:%d" % port, "--no-workers"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    try:
        for _ in range(100):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        else:
            pytest.fail("speechfsd did not start")
        keys = [admin("key", "create", "--store", str(d), "--user", u)["key"]
                for u in users]
        yield url + "/api/v1/speech-services/files", keys
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = "no exit within 30 s of SIGTERM"
        assert rc == 0, f"speechfsd exited {rc}"


def eventually(fn, timeout=30):
    """Poll fn until it returns something true or timeout seconds pass
    (a deadline for when things break, generous for a loaded machine)."""
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def fifo_held(fifo, timeout=120):
    """A descriptor writing to FIFO fifo once a reader has it open (a
    mount's test hold, SPEECHFS_TEST_HOLD_*, waiting for its byte), or
    -1 if none did within timeout seconds."""
    fd = -1

    def opened():
        nonlocal fd
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            assert e.errno == errno.ENXIO
        return fd >= 0
    eventually(opened, timeout)
    return fd


def line_of(p, limit):
    """The next line process p prints (its stdout a pipe), or None within
    limit seconds."""
    said = []
    th = threading.Thread(target=lambda: said.append(p.stdout.readline()),
                          daemon=True)
    th.start()
    th.join(limit)
    return said[0] if said else None


if __name__ == "__main__":
    print(make_store(sys.argv[1]))
