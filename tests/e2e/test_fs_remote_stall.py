"""A stalled server holds only the reader or writer that needs it (issue
14, faults): the remote mount's reading thread answers a lone read or
write itself, and it must not wait there for the server, or every other
request of the mount waits too (review s14 finding 1: a read of a block
not fetched yet held a create, a stat and an ls for the mount's whole
timeout). A real speechfsd on 127.0.0.1 and a real mount with a timeout
far away (600 s); the server stopped with SIGSTOP. With the server still
stopped, another process creates and writes a small file (no server
needed: the create waits for close) and stats a file of a cached
listing; then the server comes back and the held reader or writer gets
exactly its bytes."""
import collections
import errno
import hashlib
import os
import platform
import signal
import subprocess
import sys

import pytest
import requests

from fsutil import admin, eventually, fifo_held, line_of, sigstop
from fsutil import remote, store  # noqa: F401
from test_fs_remote import RemoteMount
from test_fs_remote_faults import server_sha, sha, upload
from test_fs_remote_stream import FILES, PROBE, the_file


# The daemon keeps an idle connection for 900 s: the tests stop it for a
# while, and a connection it had sent half an answer on must not be
# dropped as idle for the time it was stopped.
REMOTE_CONFIG = {"http.connection_timeout": "900"}

# the reader or writer is in its call: /proc/PID/syscall's first field
PWRITE_PREAD = {"x86_64": ("18", "17"), "aarch64": ("68", "67")}
OPENAT = {"x86_64": "257", "aarch64": "56"}

HELD = r"""
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDWR if sys.argv[2] == "write" else os.O_RDONLY)
os.pread(fd, 1 << 20, 0)
print("ready", flush=True)
sys.stdin.readline()
if sys.argv[2] == "write":
    os.pwrite(fd, b"N" * 100, 0)
    os.close(fd)  # the commit: close() says whether the server holds it
    print("closed", flush=True)
else:
    print(hashlib.sha256(os.pread(fd, 65536, 56 << 20)).hexdigest(),
          flush=True)
"""


# opens the held file and says its size: its open needs the file's lock,
# which the held writer's worker keeps while it copies its base
WAITER = r"""
import os, sys
print("opening", flush=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.fstat(fd).st_size, flush=True)
"""


def in_call(pid, call, seen):
    """Whether process pid is in system call number call; what
    /proc/PID/syscall said goes to seen (for the failure's message)."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            seen[:] = [f.read().strip()]
    except OSError as e:
        seen[:] = [str(e)]
    return seen[0].split()[:1] == [call]


def python(procs, src, *args, stdin=False):
    """A Python process running src with args, its stdout a pipe (and
    its stdin, with stdin), added to procs."""
    p = subprocess.Popen([sys.executable, "-c", src, *map(str, args)],
                         stdin=subprocess.PIPE if stdin else None,
                         stdout=subprocess.PIPE)
    procs.append(p)
    return p


def probe_answers(m, procs, behind, limit=120):
    """A probe creates and writes a file and stats small.bin: it must
    answer within limit seconds (else it was held behind `behind`). The
    probe, added to procs."""
    probe = python(procs, PROBE, m.path("probe.txt"), m.path("small.bin"))
    assert line_of(probe, limit) == b"done\n", \
        "the probe was held behind %s" % behind
    return probe


def waiter_and_probe(m, procs, held):
    """Another process opens big.bin, held by a worker: it may wait; a
    probe after it creates and writes a file and stats small.bin: it
    must answer (the mount's reading thread did not wait for the lock).
    (waiter, probe), both added to procs."""
    seen = []
    waiter = python(procs, WAITER, m.path("big.bin"))
    assert line_of(waiter, 120) == b"opening\n"
    if not eventually(lambda: in_call(waiter.pid,
                                      OPENAT[platform.machine()], seen)
                      or waiter.poll() is not None, 60):
        raise AssertionError("the waiter is not in its open: %r" % seen)
    return waiter, probe_answers(m, procs, held)


def writer_committed(dm, key, big, said):
    """The held writer said its close committed (said), and the server
    has big.bin's base with the writer's 100 bytes over its start."""
    assert said == b"closed\n"
    fid = the_file(dm, key, "big")["id"]
    assert server_sha(dm, key, fid) == sha(b"N" * 100 + big[100:])


def all_ended(h, waiter, probe, size):
    """The held process, the probe and the waiter ended well, the waiter
    having opened big.bin at its size."""
    assert h.wait(60) == 0
    assert probe.wait(60) == 0
    assert line_of(waiter, 120) == b"%d\n" % size
    assert waiter.wait(60) == 0


def end_all(procs, m, dm):
    """Kill what is left of procs, show the logs, stop the mount."""
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
    print(m.output())       # shown when the test fails
    print(dm.output()[-6000:])
    m.stop()


def big_and_small(remote, size):
    """big.bin (size random bytes) and small.bin on the server, a mount of
    it (timeout 600 s) and the listing of its root, which the probes'
    lookups use, made while the server answers: (dm, key, big, mount)."""
    dm, key, _, _ = remote
    big = os.urandom(size)
    upload(dm, key, big, "big")
    upload(dm, key, b"RIFF small", "small")
    m = RemoteMount(dm.base, key, "-o", "timeout=600")
    try:
        names = os.listdir(m.dir)
        assert "big.bin" in names and "small.bin" in names, names
        os.stat(m.path("small.bin"))
    except BaseException:
        m.stop()
        raise
    return dm, key, big, m


def held_case(remote, how):
    dm, key, big, m = big_and_small(remote, 64 << 20)
    stopped = False
    procs = []
    try:
        h = python(procs, HELD, m.path("big.bin"), how, stdin=True)
        assert line_of(h, 120) == b"ready\n"
        # every thread stopped: kill() returns before they are, and a
        # thread busy with readahead's fetches went on answering them,
        # the held block's too (2 runs of 40 on a loaded machine)
        stopped = True
        sigstop(dm.proc)
        h.stdin.write(b"go\n")
        h.stdin.flush()
        call = PWRITE_PREAD[platform.machine()][how == "read"]
        # in its call, which needs the server: a block not fetched yet,
        # or (a writer's first write) the rest of its base to copy
        seen = []
        if not eventually(lambda: in_call(h.pid, call, seen), 60):
            h.kill()
            raise AssertionError(
                "not held in its call (%s): %r, then %r; the server's log:"
                "\n%s" % (call, seen, h.communicate(timeout=60),
                          dm.output()[-4000:]))
        waiter, probe = waiter_and_probe(m, procs, "the stalled " + how)
        assert h.poll() is None and dm.proc.poll() is None  # still held
        dm.proc.send_signal(signal.SIGCONT)
        stopped = False
        got = line_of(h, 300)
        if how == "read":
            assert got == hashlib.sha256(
                big[56 << 20:(56 << 20) + 65536]).hexdigest().encode() \
                + b"\n"
        else:
            writer_committed(dm, key, big, got)
        all_ended(h, waiter, probe, len(big))
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


def test_a_stalled_read_holds_no_other_request(remote):
    """A read of a block the mount has not fetched (56 MiB into a 64 MiB
    file), the server stopped: the reader waits, nothing else does."""
    held_case(remote, "read")


def test_a_stalled_base_copy_holds_no_other_request(remote):
    """A writer's first write to an existing file without O_TRUNC copies
    the rest of its base from the server: the writer waits, nothing else
    does; the server back, close() commits the base with its write."""
    held_case(remote, "write")


@pytest.mark.parametrize("look", ["in-time", "too-early"])
def test_a_base_copy_is_announced_before_the_lock(remote, tmp_path,
                                                  monkeypatch, look):
    """A worker that will copy a writer's base says so (fs_file_busy)
    before it takes the file's lock, not once it holds it (review s15
    F9): the mount's test hook SPEECHFS_TEST_HOLD_BASE keeps the first
    base copy waiting on a FIFO, with the lock, where the old code had
    not said it yet. Meanwhile another process opens the file (it waits
    for the lock: on the old code in the reading thread, which then
    answered nothing more) and a probe creates a file and stats another:
    it answers. Released, the writer's close commits its base with its
    write, and the waiter opens.
    too-early: the reading thread's look at fs_file_busy() came before
    the worker said so (SPEECHFS_TEST_BUSY_UNSEEN: it sees no one), and
    its open then met the lock (review s16 F9): a thread that may not
    wait only tries a file's lock, and the open goes to a worker."""
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    monkeypatch.setenv("SPEECHFS_TEST_HOLD_BASE", str(fifo))
    if look == "too-early":
        monkeypatch.setenv("SPEECHFS_TEST_BUSY_UNSEEN", "1")
    dm, key, big, m = big_and_small(remote, 4 << 20)
    procs = []
    wfd = -1
    try:
        h = python(procs, HELD, m.path("big.bin"), "write", stdin=True)
        assert line_of(h, 120) == b"ready\n"
        h.stdin.write(b"go\n")
        h.stdin.flush()

        # held once the mount has the FIFO open for reading
        wfd = fifo_held(fifo, 120)
        assert wfd >= 0, "the base copy was never held"
        waiter, probe = waiter_and_probe(m, procs, "the held base copy")
        assert h.poll() is None  # still held
        os.write(wfd, b"go")
        writer_committed(dm, key, big, line_of(h, 300))
        all_ended(h, waiter, probe, len(big))
    finally:
        if wfd >= 0:
            os.close(wfd)
        end_all(procs, m, dm)


# writes a new file and closes it: the close sends it to the server
CLOSER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(fd, sys.argv[2].encode())
print("written", flush=True)
try:
    os.close(fd)
    print("closed", flush=True)
except OSError as e:
    print("failed", e.errno, flush=True)
"""
CLOSE = {"x86_64": "3", "aarch64": "57"}


def test_a_reader_closed_while_its_readahead_is_stalled(remote):
    """A reader reads the start of big.bin in order (the block cache
    reads blocks ahead), the server stops, the reader closes: its
    release, answered on the mount's reading thread, must not wait for
    the fetches still waiting for the server. Before, the whole mount
    waited (a probe held 60 s, 2 of 2; review s17 F2)."""
    _, _, d, alice = remote
    dm, key, big, m = big_and_small(remote, 64 << 20)
    procs = []
    stopped = False
    try:
        # 1 MB/s a transfer: a 4 MiB block is on its way for 4 s
        admin("user", "rate", "--store", str(d), "--id", alice,
              "--download-bps", "1000000")
        fd = os.open(m.path("big.bin"), os.O_RDONLY)
        for i in range(8):
            assert os.pread(fd, 131072, i * 131072) == \
                big[i * 131072:(i + 1) * 131072]
        sigstop(dm.proc)
        stopped = True
        os.close(fd)    # its RELEASE goes to the mount now
        probe_answers(m, procs, "a reader's close", 60)
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


def small_mount(remote):
    """small.bin on the server and a mount of it (timeout 600 s) that has
    listed its root and looked at small.bin: (dm, key, mount)."""
    dm, key, _, _ = remote
    upload(dm, key, b"RIFF small", "small")
    m = RemoteMount(dm.base, key, "-o", "timeout=600")
    try:
        assert "small.bin" in os.listdir(m.dir)
        os.stat(m.path("small.bin"))
    except BaseException:
        m.stop()
        raise
    return dm, key, m


def threads_of(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def closes_held(m, procs, n):
    """n closers of new files c00.txt ... (the server stopped), added to
    procs: each has written and is in its close."""
    for i in range(n):
        python(procs, CLOSER, m.path("c%02d.txt" % i), "close %d" % i)
    seen = []
    for i, p in enumerate(procs[-n:]):
        assert line_of(p, 120) == b"written\n", \
            "close %d's create held: %r" % (i, calls_of(m.proc.pid))
        assert eventually(lambda: in_call(p.pid, CLOSE[platform.machine()],
                                          seen), 60), \
            "not in its close: %r" % seen


def closes_go_on(dm, procs, n):
    """The first n of procs (closes_held) are still held; the server
    goes on (SIGCONT) and each close succeeds."""
    assert all(p.poll() is None for p in procs[:n])  # still held
    dm.proc.send_signal(signal.SIGCONT)
    for p in procs[:n]:
        assert line_of(p, 300) == b"closed\n"
        assert p.wait(60) == 0


def test_many_stalled_closes_hold_no_other_request(remote):
    """More calls waiting for a stalled server than the mount keeps
    workers (10) and spare buffers (20): 40 closes of new files, each
    waiting for its upload. Each holds only its own caller; another
    process still creates, writes and stats (review s15 finding 2: with
    a fixed pool the requests handed over after the tenth waited, and
    past the twentieth the reading thread answered a close itself and
    the whole mount waited with it). The server back, every close
    succeeds and the server holds every file; the extra workers end."""
    n = 40
    dm, key, m = small_mount(remote)
    stopped = False
    procs = []
    try:
        base_threads = threads_of(m.proc.pid)
        stopped = True
        sigstop(dm.proc)
        closes_held(m, procs, n)
        # every close is the mount's: more workers than it keeps wait
        assert eventually(lambda: threads_of(m.proc.pid)
                          >= base_threads + n - 10, 60), \
            (threads_of(m.proc.pid), base_threads)
        probe = probe_answers(m, procs, "%d stalled closes" % n)
        closes_go_on(dm, procs, n)
        stopped = False
        assert probe.wait(60) == 0
        for i in range(n):
            f = the_file(dm, key, "c%02d" % i)
            assert server_sha(dm, key, f["id"]) == \
                sha(b"close %d" % i), f
        # the extra workers end once idle (2 s each)
        assert eventually(lambda: threads_of(m.proc.pid)
                          <= base_threads, 60), \
            (threads_of(m.proc.pid), base_threads)
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


# an fsync of a file open read-only: the loop always hands it to a
# worker (an fsync may wait for a commit), and this one needs no server
FSYNCER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
print("done", flush=True)
os.close(fd)
"""
# a thread waits for the server's answer (libcurl)
POLL = {"x86_64": "7", "aarch64": "73"}


def calls_of(pid):
    """How many threads of process pid are in each system call (a thread
    that ended meanwhile does not count)."""
    calls = collections.Counter()
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/syscall" % (pid, t)) as f:
                calls[f.read().split()[0]] += 1
        except (OSError, IndexError):
            pass
    return calls


def test_a_request_handed_off_behind_stalled_closes(remote):
    """30 closes of new files wait for a stopped server, each on a thread
    of its own; then an fsync of small.bin, open read-only, which the
    loop hands to a worker and which needs no server: it is answered.
    Review s20 R1: a worker started for a queued request became the
    standby instead (it sleeps until the next request comes) and left
    the request queued behind the stalled closes: with that bug put back
    a later closer's create waited so (2 of 2 runs), in the review's
    probe the fsync (3 of 3). The server back, every close succeeds."""
    n = 30
    dm, key, m = small_mount(remote)
    call = POLL[platform.machine()]
    stopped = False
    procs = []
    try:
        stopped = True
        sigstop(dm.proc)
        # the change feed's and the poller's threads
        base = calls_of(m.proc.pid)[call]
        closes_held(m, procs, n)
        # each close's flush was read and waits for the server on a
        # thread of its own (the others wait in futex or epoll_wait)
        assert eventually(lambda: calls_of(m.proc.pid)[call] >= base + n,
                          60), \
            "not every close's flush was taken: %r, %d waited before" % (
                calls_of(m.proc.pid), base)
        for k in range(3):
            f = python(procs, FSYNCER, m.path("small.bin"))
            assert line_of(f, 60) == b"done\n", \
                "fsync %d held behind %d stalled closes: %r" % (
                    k, n, calls_of(m.proc.pid))
            assert f.wait(60) == 0
        closes_go_on(dm, procs, n)
        stopped = False
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


def test_a_stalled_listing_holds_no_other_request(remote):
    """A lookup and a listing of a directory the mount has not listed
    ask the server; the mount's reading thread, which answers lookups,
    leaves such a request to a worker instead of waiting for the server
    (before, `ls` of such a directory held every request of the mount
    while the server was stopped: a stat the cache answers took the
    whole timeout). The server back, the listing is exact."""
    dm, key, _, _ = remote
    upload(dm, key, b"RIFF small", "small")
    r = requests.post(dm.base + FILES, headers={"X-API-Key": key},
                      files={"file": ("deep.bin", b"RIFF deep")},
                      data={"name": "deep", "path": "/a/b/"}, timeout=60)
    assert r.status_code == 201, r.text
    m = RemoteMount(dm.base, key, "-o", "timeout=600")
    stopped = False
    procs = []
    try:
        assert sorted(os.listdir(m.dir)) == [".listening", ".shared",
                                             ".trash", "a", "small.bin"]
        os.stat(m.path("small.bin"))
        stopped = True
        sigstop(dm.proc)
        ls = subprocess.Popen(["ls", "-l", str(m.path("a/b"))],
                              stdout=subprocess.PIPE)
        procs.append(ls)
        probe = probe_answers(m, procs, "a stalled listing")
        assert ls.poll() is None  # it needs the server: still held
        dm.proc.send_signal(signal.SIGCONT)
        stopped = False
        out, _ = ls.communicate(timeout=300)
        assert ls.returncode == 0 and b"deep.bin" in out, out
        assert probe.wait(60) == 0
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


# writes big.bin anew and closes it when told: the close sends it
REWRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"N" * (1 << 20))
print("written", flush=True)
sys.stdin.readline()
os.close(fd)
print("closed", flush=True)
"""

# the file's size by name, then by an open descriptor of it
LOOKER = r"""
import os, sys
print(os.stat(sys.argv[1]).st_size, flush=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
print(os.fstat(fd).st_size, flush=True)
"""


def test_a_look_at_a_file_whose_close_is_stalled(remote):
    """A writer's close waits for a stopped server; meanwhile another
    process stats that very file (answered at once: the size being
    committed; a commit runs without the file's lock) and opens it (it
    waits for the server, on a worker), and a probe creates a file and
    stats another: answered. The server back, the close commits, the
    open sees the committed size and the server holds the new bytes."""
    dm, key, _, m = big_and_small(remote, 4 << 20)
    size = b"%d\n" % (1 << 20)
    stopped = False
    procs = []
    try:
        w = python(procs, REWRITER, m.path("big.bin"), stdin=True)
        assert line_of(w, 120) == b"written\n"
        stopped = True
        sigstop(dm.proc)
        w.stdin.write(b"go\n")
        w.stdin.flush()
        seen = []
        assert eventually(lambda: in_call(w.pid, CLOSE[platform.machine()],
                                          seen), 60), \
            "not in its close: %r" % seen
        looker = python(procs, LOOKER, m.path("big.bin"))
        assert line_of(looker, 120) == size, \
            "a stat of the file held behind its stalled close"
        probe_answers(m, procs, "a stalled close")
        assert w.poll() is None  # still held
        dm.proc.send_signal(signal.SIGCONT)
        stopped = False
        assert line_of(w, 300) == b"closed\n"
        assert line_of(looker, 300) == size
        assert server_sha(dm, key, the_file(dm, key, "big")["id"]) == \
            sha(b"N" * (1 << 20))
        for p in procs:
            assert p.wait(60) == 0
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


def pending_sigterm(pid):
    """Whether SIGTERM waits, blocked, for the process or one of its
    threads (/proc's ShdPnd and SigPnd: bit 15 - 1), and the masks."""
    seen = []
    for status in ["/proc/%d/status" % pid] + [
            "/proc/%d/task/%s/status" % (pid, t)
            for t in os.listdir("/proc/%d/task" % pid)]:
        try:
            with open(status) as f:
                seen += [ln.strip() for ln in f
                         if ln.startswith(("ShdPnd:", "SigPnd:"))]
        except OSError:
            pass    # a thread that ended meanwhile
    bit = 1 << (signal.SIGTERM - 1)
    return any(int(s.split()[1], 16) & bit for s in seen), sorted(set(seen))


@pytest.mark.parametrize("then", ["probe", "sigterm"])
def test_a_close_kept_by_the_reading_thread(remote, then):
    """A close's flush is answered by the thread that read it while the
    standby waits to read in its place (fs/loop.c). A new file's close
    waits for a stopped server; then
    probe: another process still creates, writes and stats (it was held
    with the flush answered on the only reading thread:
    /work/notes/close-flush-inplace.patch); the server back, the close
    succeeds and the server holds the file;
    sigterm: a SIGTERM, nothing else coming, is taken at once (it wakes
    the standby, whose wait takes it) and not left pending until the
    close ends; the stop cuts the close's upload off (a small file sent
    whole at its close: review s22 V10's remainder, it waited up to -o
    timeout), so the close fails with EIO and the mount ends with 0 and
    unmounted while the server is still stopped (also when the file's
    release, which makes the new file empty, runs on a worker: it was
    bounded by the timeout, 1 run in 20 waited). The server back, it
    holds the file whole, empty or not at all (the cut request's bytes
    may have reached it: never a part)."""
    dm, key, m = small_mount(remote)
    stopped = False
    procs = []
    try:
        stopped = True
        sigstop(dm.proc)
        c = python(procs, CLOSER, m.path("held.txt"), "held close")
        assert line_of(c, 120) == b"written\n"
        seen = []
        assert eventually(lambda: in_call(c.pid, CLOSE[platform.machine()],
                                          seen), 60), \
            "not in its close: %r" % seen
        if then == "probe":
            probe_answers(m, procs, "a stalled close", 60)
            assert c.poll() is None  # still held
            dm.proc.send_signal(signal.SIGCONT)
            stopped = False
            assert line_of(c, 300) == b"closed\n"
            assert c.wait(60) == 0
            f = the_file(dm, key, "held")
            assert server_sha(dm, key, f["id"]) == sha(b"held close"), f
            return
        m.proc.send_signal(signal.SIGTERM)
        assert eventually(lambda: not pending_sigterm(m.proc.pid)[0], 30), \
            "SIGTERM left pending while the close waits: %r" % (
                pending_sigterm(m.proc.pid)[1],)
        assert line_of(c, 60) == b"failed %d\n" % errno.EIO
        assert m.proc.wait(timeout=60) == 0
        assert not os.path.ismount(m.dir)
        assert "the mount is ending" in m.output()
        dm.proc.send_signal(signal.SIGCONT)
        stopped = False
        r = requests.get(dm.base + FILES, headers={"X-API-Key": key},
                         params={"name": "held"}, timeout=30)
        assert [(g["size"], g["sha256"]) for g in r.json()["files"]] in \
            ([], [(0, sha(b""))], [(10, sha(b"held close"))]), r.text
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


# waits for the stopped server in one call (how), once told to go
CALLER = r"""
import os, sys
path, how = sys.argv[1], sys.argv[2]
if how == "read":
    fd = os.open(path, os.O_RDONLY)
else:  # a new file, not on the server yet (its create waits for close)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    if how != "touch":
        os.write(fd, b"new")
print("ready", flush=True)
sys.stdin.readline()
try:
    if how == "read":
        os.pread(fd, 65536, 12 << 20)
    elif how == "xattr":
        os.setxattr(path, "user.color", b"blue")
    elif how == "touch":
        os.close(fd)
    else:
        os.rename(path, sys.argv[3])
    print("done", flush=True)
except OSError as e:
    print("failed", e.errno, flush=True)
"""
# the call's numbers (/proc/PID/syscall): pread64, setxattr, rename(at)(2),
# close
CALLS = {"x86_64": {"read": ("17",), "xattr": ("188",),
                    "rename": ("82", "264", "316"), "touch": ("3",)},
         "aarch64": {"read": ("67",), "xattr": ("5",),
                     "rename": ("38", "276"), "touch": ("57",)}}


def request_unread(port):
    """Whether a connection to port (a stopped server's) holds bytes the
    server has not read: a request sent to it since it stopped."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, queues = row.split()[1], row.split()[4]
            if int(local.rsplit(":", 1)[1], 16) == port and \
                    int(queues.split(":")[1], 16) > 0:
                return True
    return False


@pytest.mark.skipif(platform.machine() not in CALLS,
                    reason="the calls' numbers not known")
@pytest.mark.parametrize("how", ["read", "xattr", "rename", "touch"])
def test_sigterm_ends_a_call_waiting_for_the_server(remote, how):
    """SIGTERM to the mount while a call other than a close waits for a
    stopped server (SIGSTOP; -o timeout=600): a read of a block not
    cached ("read"), an xattr set on a new file, which first makes it
    on the server ("xattr"), a rename of a new file onto another file,
    likewise ("rename"), the close of a new empty file, whose create is
    a last try that goes on at the cut ("touch": bounded then by 2 s
    without a byte, where it waited for the timeout before, re-read s25
    B2). The stop cuts the call's request off: the call
    fails with EIO (a read: or ECONNABORTED or ENOTCONN, the kernel's
    read of the failed page again meeting the mount's end) and the mount
    exits 0, unmounted, while the server is still stopped. Before
    (stop3's leftover, s24), such a call held the mount's end for the
    timeout: the mount was still up 60 s after the SIGTERM."""
    dm, key, _, m = big_and_small(remote, 16 << 20)
    stopped = False
    procs = []
    try:
        path = m.path("big.bin" if how == "read" else "new.txt")
        c = python(procs, CALLER, path, how, m.path("small.bin"), stdin=True)
        assert line_of(c, 120) == b"ready\n"
        stopped = True
        sigstop(dm.proc)
        c.stdin.write(b"go\n")
        c.stdin.flush()
        seen = []
        assert eventually(lambda: any(in_call(c.pid, n, seen)
                                      for n in CALLS[platform.machine()][how]),
                          60), "not in its call: %r" % seen
        # its request sent: the mount waits for the server
        assert eventually(lambda: request_unread(dm.port), 60)
        m.proc.send_signal(signal.SIGTERM)
        said = line_of(c, 60)
        # the kernel asks a read's pages that failed (EIO) again, page by
        # page, and that request may meet the mount's end (ECONNABORTED,
        # or ENOTCONN once the connection is gone)
        assert said in [b"failed %d\n" % n for n in (
            (errno.EIO, errno.ECONNABORTED, errno.ENOTCONN) if how == "read"
            else (errno.EIO,))], said
        assert m.proc.wait(timeout=60) == 0
        assert not os.path.ismount(m.dir)
    finally:
        if stopped:
            dm.proc.send_signal(signal.SIGCONT)
        end_all(procs, m, dm)


# a file written through a shared mapping after its close: the bytes
# reach the mount at the munmap, and the release sends them (by libc's
# mmap: Python's mmap keeps a copy of the descriptor, whose close would
# send them with its flush)
MAPPER = r"""
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
path, n = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, n)
at = libc.mmap(None, n, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED,
               fd, 0)
assert at not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
os.close(fd)  # commits the file, n zero bytes; the mapping stays
data = bytes(range(256)) * (n // 256)
ctypes.memmove(at, data, n)
print("written", flush=True)
sys.stdin.readline()
assert libc.munmap(at, n) == 0, ctypes.get_errno()
print("unmapped", flush=True)
"""


@pytest.mark.parametrize("then", ["answer", "sigterm"])
def test_an_unmount_still_sends_a_release_upload(store, then):
    """A file written through a shared mapping after its close(), its
    content sent whole at its release (after the munmap), that upload
    held at a proxy before its body is read (a slow server), then
    fusermount3 -u: the unmount succeeds (no file is open), and the mount
    does not cut its release's upload off (only a signal cuts) but waits
    for the server's answer;
    answer: the proxy lets the upload go on, the mount exits 0 and the
    server holds the new content. Before (re-read s24 B1), the unmount's
    end set the same stop as SIGTERM: the upload was cut off ("the mount
    is ending"), the mount ended at once and the server kept the file's
    zeros;
    sigterm: a SIGTERM then still cuts the upload off: the mount exits 0
    while the proxy holds the upload, and the server keeps the zeros
    (review s25 W1: no thread took the signal after an unmount, the
    mount waited for the upload's timeout).
    24 MiB: more than the sockets hold, so the proxy can tell a cut
    body."""
    from test_fs_remote_lost import proxied
    n = 24 << 20

    def rule(meth, p):
        return "late" if meth == "PUT" and p.split("?")[0].endswith(
            "/content") else None

    procs = []
    with proxied(store, "-o", "timeout=60", rule=rule) as (dm, key, px, m):
        try:
            w = python(procs, MAPPER, m.path("mapped.bin"), n, stdin=True)
            assert line_of(w, 120) == b"written\n"
            w.stdin.write(b"go\n")
            w.stdin.flush()
            assert line_of(w, 60) == b"unmapped\n", px.seen[-8:]
            assert w.wait(60) == 0
            # the release's upload has begun, held at the proxy
            assert eventually(lambda: px.fates("late") == 1, 60), px.seen
            subprocess.run(["fusermount3", "-u", str(m.dir)], check=True,
                           timeout=30)
            # a sample window, not a wait for a condition: the cut ended
            # the mount within about a second
            assert not eventually(lambda: m.proc.poll() is not None, 5), \
                m.output()
            if then == "sigterm":
                m.proc.send_signal(signal.SIGTERM)
                assert m.proc.wait(timeout=30) == 0
                assert "the mount is ending" in m.output()
                new = bytes(n)
            else:
                new = bytes(range(256)) * (n // 256)
            px.go.set()
            assert m.proc.wait(timeout=120) == 0
            if then == "answer":
                assert "the mount is ending" not in m.output()
            f = the_file(dm, key, "mapped")
            assert server_sha(dm, key, f["id"]) == sha(new), f
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            print(m.output())
