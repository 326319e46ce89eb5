"""The mount's reading thread waits for nothing that waits for a stalled
server (issue 14, faults; review s16 F2-F6): not for a listing lock a
worker holds while it lists, not for the block cache's fetch of a block
an open for writing copies, not for another thread's send of a new file
whose create's answer was lost, not for a database connection that
changes waiting for another process's write lock hold (a local mount).
Each case: a real speechfsd on 127.0.0.1 and a real remote mount with
-o timeout=600, the server stopped with SIGSTOP (or a local mount and
a write lock held); one process starts a call that must wait, then a
probe (create, write, fstat, stat of a cached file) must finish. On a
failure the mount's thread stacks (gdb) are printed.
"""
import os
import platform
import signal
import subprocess
import sys

import requests

from fsutil import api, eventually, store  # noqa
from test_fs_remote import RemoteMount
from test_fs_remote_faults import upload
from test_fs_remote_stall import end_all, in_call, line_of, remote  # noqa
from test_fs_remote_stream import FILES, PROBE

from fsutil import sigstop as stop

# as test_fs_remote_stall.py: the daemon, stopped for a while, keeps its
# idle connections (fsutil.remote reads it)
REMOTE_CONFIG = {"http.connection_timeout": "900"}

GETDENTS = {"x86_64": "217", "aarch64": "61"}
OPENAT = {"x86_64": "257", "aarch64": "56"}
UTIMENSAT = {"x86_64": "280", "aarch64": "88"}

LISTER = r"""
import os, sys
print("listing", flush=True)
print(sorted(os.listdir(sys.argv[1])), flush=True)
"""

OPENER = r"""
import os, sys
print("opening", flush=True)
fd = os.open(sys.argv[1], os.O_WRONLY)
print("opened", flush=True)
os.close(fd)
"""


def stacks(pid):
    """Every thread's stack of process pid (gdb), printed on a failure:
    where the reading thread waits."""
    try:
        r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex",
                            "thread apply all bt 12"], capture_output=True,
                           text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "no stacks: %s" % e
    return r.stdout


def probe_case(remote, prepare, holder, call, files=()):
    """small.bin and files ((data, name[, path]) of each) on the server,
    then a mount of it, prepare(dm, key, m), the server stopped, the
    holder's call under way; the probe must answer. (A file uploaded
    after the mount comes through the change feed, which drops what the
    mount knows of its directory and of that directory's parents, maybe
    after prepare's listings filled it again; then the probe's LOOKUPs
    in "/" ask the stopped server: review s20 T1.)"""
    dm, key, _, _ = remote
    upload(dm, key, b"RIFF small", "small")
    for f in files:
        upload(dm, key, *f)
    m = RemoteMount(dm.base, key, "-o", "timeout=600")
    stopped = False
    procs = []
    try:
        prepare(dm, key, m)
        os.stat(m.path("small.bin"))
        stopped = True
        stop(dm.proc)
        h = subprocess.Popen([sys.executable, "-c"] + holder(m),
                             stdout=subprocess.PIPE)
        procs.append(h)
        assert line_of(h, 120) is not None
        seen = []
        assert eventually(lambda: in_call(h.pid, call, seen), 60), seen
        probe = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(m.path("probe.txt")),
             str(m.path("small.bin"))], stdout=subprocess.PIPE)
        procs.append(probe)
        got = line_of(probe, 60)
        held = h.poll() is None
        if got != b"done\n":
            print(stacks(m.proc.pid))
        dm.proc.send_signal(signal.SIGCONT)
        stopped = False
        assert got == b"done\n", \
            "the probe was held behind the stalled call (holder still " \
            "waiting: %s)" % held
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


def test_a_stalled_listing_of_a_known_directory(remote):
    """F1: /a/b/ is known (its parent listed) but not listed yet. Its
    READDIRPLUS is punted to a worker, which lists it holding dir.c's
    snaps_lock across the server's wait; the reading thread's next
    LOOKUP (fs_lookup -> advise -> snaps_lock) waits for that lock, and
    every request of the mount with it. /a/b/deep.bin is on the server
    before the mount, as big.bin of the next case."""
    def prepare(dm, key, m):
        assert "a" in os.listdir(m.dir)
        assert os.listdir(m.path("a")) == ["b"]
    probe_case(remote, prepare,
               lambda m: [LISTER, str(m.path("a/b"))],
               GETDENTS[platform.machine()],
               files=[(b"RIFF deep", "deep", "/a/b/")])


def test_a_stalled_open_for_writing(remote):
    """F2: open(O_WRONLY) of a file whose first block is not cached: the
    OPEN only 'looks' and is begun on the reading thread; core's
    r_file_open_ino reads the writer's base (keep_base -> bc_pread),
    which the block cache's fetcher threads fetch (nowait is the reader
    thread's only) while the reader waits on the blob's condition for
    the whole stall.
    big.bin is on the server before the mount: uploaded after it, the
    change feed's word of it could drop the mount's answers about "/"
    after the test's listing had filled them again, and then the
    holder's LOOKUP of big.bin (its entry older than 1 s, as under TSan)
    asked the stopped server while the kernel held "/", and the probe's
    create in "/" waited with it (review s20 T1: 1 in 10 to 36 runs
    under TSan)."""
    def prepare(dm, key, m):
        assert "big.bin" in os.listdir(m.dir)
        os.stat(m.path("big.bin"))
    probe_case(remote, prepare,
               lambda m: [OPENER, str(m.path("big.bin"))],
               OPENAT[platform.machine()],
               files=[(os.urandom(8 << 20), "big")])


TOUCHER = r"""
import os, sys
print("touching", flush=True)
try:
    os.utime(sys.argv[1], ns=(1_500_000_000_000_000_000,
                              1_600_000_000_000_000_000))
    print("touched", flush=True)
except OSError as e:
    print("failed %d" % e.errno, flush=True)
"""

READER = r"""
import os, sys
print("opening", flush=True)
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    print("opened", flush=True)
    os.close(fd)
except OSError as e:
    print("failed %d" % e.errno, flush=True)
"""


def test_an_open_of_a_maybe_file_while_its_resend_is_held(store):  # noqa
    """F3: a new file whose create's answer was lost is "maybe on the
    server". A utime re-sends its create (sure -> sent, on a worker), the
    entry busy while the send is held on its way. An open of the file is
    begun on the reading thread; r_file_get_ino -> sfsi_rpend_resolve ->
    sfsi_rpend_settled waits on the pending table's condition until that
    send ends (here: the 600 s timeout), no request of its own refused,
    so the reading thread and every request of the mount wait."""
    from test_fs_remote_lost import is_create, lose_create, proxied
    with proxied(store, "-o", "timeout=600") as (dm, key, px, m):
        procs = []
        try:
            lose_create(px, m, "t1.txt", b"0123456789ab")

            def rule(meth, p):
                # the re-send held on its way; the file's GET says 404
                # (no adoption: it stays "maybe")
                if is_create(meth, p):
                    return "hold"
                if meth == "GET" and p.startswith(FILES + "/"):
                    return "notfound"
                return None
            px.rule = rule
            u = subprocess.Popen([sys.executable, "-c", TOUCHER,
                                  str(m.path("t1.txt"))],
                                 stdout=subprocess.PIPE)
            procs.append(u)
            assert line_of(u, 60) == b"touching\n"
            assert eventually(lambda: px.fates("hold") >= 1, timeout=60), \
                px.seen
            r = subprocess.Popen([sys.executable, "-c", READER,
                                  str(m.path("t1.txt"))],
                                 stdout=subprocess.PIPE)
            procs.append(r)
            assert line_of(r, 60) == b"opening\n"
            probe = subprocess.Popen(
                [sys.executable, "-c", PROBE, str(m.path("probe.txt")),
                 str(m.dir)], stdout=subprocess.PIPE)
            procs.append(probe)
            got = line_of(probe, 60)
            if got != b"done\n":
                print(stacks(m.proc.pid))
            assert got == b"done\n", \
                "the probe was held behind an open waiting for a " \
                "held re-send (open still waiting: %s)" % (r.poll() is None)
        finally:
            px.go.set()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            print(m.output())


LOOKER = r"""
import os, sys
print(sorted(os.listdir(sys.argv[1])), flush=True)
try:
    os.stat(os.path.join(sys.argv[1], "never-seen.txt"))
except FileNotFoundError:
    print("done", flush=True)
"""

TOUCH = r"""
import os, sys
print("touching", flush=True)
os.utime(sys.argv[1], ns=(1_500_000_000_000_000_000, 1_600_000_000_000_000_000))
print("touched", flush=True)
"""


def test_writers_waiting_for_the_database_hold_no_lookup(store,  # noqa
                                                          tmp_path):
    """Review s16 F6 (local mount): the database's write lock held by
    another process (as speechfsd or another mount holds it); 40 utimes
    of 40 files (SETATTR: a worker each, the kernel locks only each
    file) wait for it, each on its own worker, each holding one of the
    store's DB_POOL_MAX (32) connections while it waits. The reading
    thread's next lookup or listing needs a connection too: without the
    store's spare connection it waited on pool_cv until a writer gave up
    (db.busy_timeout_ms), a read-only `ls` held behind writes. With the
    ten fixed workers of before it failed too, earlier: the reading
    thread ran the 21st SETATTR itself."""
    import sqlite3
    from fsutil import Mount
    d, _, users = store
    cfg = tmp_path / "mount.conf"
    cfg.write_text("db.busy_timeout_ms = 120000\n")
    m = Mount(d, users[0], "--config", str(cfg))
    procs = []
    db = None
    try:
        m.path("small.txt").write_bytes(b"small")
        for i in range(40):
            m.path("f%02d.txt" % i).write_bytes(b"f")
        db = sqlite3.connect(str(d / "speechfs.db"), timeout=60,
                             isolation_level=None)
        base = len(os.listdir("/proc/%d/task" % m.proc.pid))
        db.execute("BEGIN IMMEDIATE")
        for i in range(40):
            p = subprocess.Popen([sys.executable, "-c", TOUCH,
                                  str(m.path("f%02d.txt" % i))],
                                 stdout=subprocess.PIPE)
            procs.append(p)
        for p in procs:
            assert line_of(p, 60) == b"touching\n"
        # each in its utimensat; with workers on demand, more than the 10
        # kept are started (the reading thread stops reading once it
        # waits for a connection itself); with 10 fixed workers (main
        # before 537a32e) the threads never grow: the deadline passes
        seen = []
        for p in procs:
            assert eventually(lambda: in_call(p.pid, UTIMENSAT[
                platform.machine()], seen), 60), seen
        grew = eventually(lambda: len(os.listdir(
            "/proc/%d/task" % m.proc.pid)) >= base + 15, 30)
        print("the mount's threads grew by 15:", grew)
        probe = subprocess.Popen([sys.executable, "-c", LOOKER,
                                  str(m.dir)], stdout=subprocess.PIPE)
        procs.append(probe)
        listing = line_of(probe, 60)
        waiting = sum(p.poll() is None for p in procs[:40])
        if listing is None:
            print(stacks(m.proc.pid))
        assert listing is not None and b"small.txt" in listing, \
            "a read-only listing was held behind %d writers waiting " \
            "for the database's lock" % waiting
        assert line_of(probe, 60) == b"done\n"
    finally:
        if db is not None:
            db.execute("ROLLBACK")
            db.close()
        for p in procs:
            if p.poll() is None:
                p.wait(300)
        m.stop()


def test_a_listing_that_pins_clashes_holds_no_lookup(store, api,  # noqa
                                                     tmp_path):
    """Review s16 F9, residual (local mount): a listing whose names clash
    records the suffixes it gave (fs/listing.c pin_now: a write), begun
    on the reading thread; another process holds the database's write
    lock. The write waited for it (db.busy_timeout_ms, 120 s here), and
    every request of the mount with it. Now a thread that may not wait
    is refused the write turn and SQLite's lock before its transaction
    begins: the listing goes to a worker, which waits, and a lookup
    elsewhere is answered. The lock let go, the listing shows the
    clash's suffix, recorded in the store."""
    import sqlite3
    from fsutil import Mount
    d, _, users = store
    url, keys = api

    def upload(name, filename, path):
        r = requests.post(url, headers={"X-API-Key": keys[0]},
                          files={"file": (filename, b"x")},
                          data={"name": name, "path": path}, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]
    # a file named like a subdirectory: the listing suffixes it
    sub_id = upload("sub", "sub", "/odd/")
    upload("inner", "inner.txt", "/odd/sub/")
    upload("small", "small.txt", "/")
    cfg = tmp_path / "mount.conf"
    cfg.write_text("db.busy_timeout_ms = 120000\n")
    m = Mount(d, users[0], "--config", str(cfg))
    procs = []
    db = sqlite3.connect(str(d / "speechfs.db"), timeout=60,
                         isolation_level=None)
    pinned = "SELECT entry_suffix FROM file WHERE uuid = '%s'" % sub_id
    try:
        assert db.execute(pinned).fetchone()[0] == 0
        db.execute("BEGIN IMMEDIATE")
        ls = subprocess.Popen([sys.executable, "-c", LISTER,
                               str(m.path("odd"))], stdout=subprocess.PIPE)
        procs.append(ls)
        assert line_of(ls, 60) == b"listing\n"
        seen = []
        assert eventually(lambda: in_call(ls.pid, GETDENTS[
            platform.machine()], seen), 60), seen
        probe = subprocess.Popen([sys.executable, "-c", LOOKER,
                                  str(m.dir)], stdout=subprocess.PIPE)
        procs.append(probe)
        listing = line_of(probe, 60)
        if listing is None:
            print(stacks(m.proc.pid))
        assert listing is not None and b"small.txt" in listing, \
            "a lookup was held behind a listing's write waiting for " \
            "the database's lock"
        assert line_of(probe, 60) == b"done\n"
        assert ls.poll() is None  # its write waits for the lock
        db.execute("ROLLBACK")
        assert line_of(ls, 180) == \
            b"%r\n" % sorted(["sub", "sub (%s)" % sub_id[:8]])
        assert db.execute(pinned).fetchone()[0] != 0
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        print(m.output())       # shown when the test fails
        m.stop()


def test_listxattr_on_a_seed_server_names_the_shares(store):  # noqa
    """F5: on a server with the seed's API only (no xattrs extension),
    listxattr of the owner's file must name user.speechfs.shares and a
    user.speechfs.share.<id> per share (as on the local mount). On the
    reading thread list_shares() drops owner_shares' -FS_EWAIT
    (`if (owner_shares(...)) return 0;`) and sfs_xattr_list asks the
    seed server nothing, so the list is answered without them."""
    from fsutil import Server
    d, _, users = store
    dm = Server(d, **{"jobs.enabled": "false", "http.extensions": "false"})
    m = None
    try:
        key = dm.key(users[0])
        f = upload(dm, key, b"RIFF shared", "shared")
        r = requests.post(dm.base + FILES + "/" + f["id"] + "/shares",
                          headers={"X-API-Key": key},
                          json={"userId": users[1], "permission": "VIEW"},
                          timeout=30)
        assert r.status_code in (200, 201), r.text
        m = RemoteMount(dm.base, key)
        assert eventually(lambda: "shared.bin" in os.listdir(m.dir), 60)
        os.stat(m.path("shared.bin"))
        names = os.listxattr(m.path("shared.bin"))
        assert "user.speechfs.shares" in names and \
            "user.speechfs.share." + users[1] in names, names
    finally:
        if m:
            m.stop()
        dm.stop()
