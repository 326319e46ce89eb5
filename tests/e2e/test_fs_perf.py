"""The mount's fast paths keep their promises: a created file costs no
sync until close, and close()/fsync() still return only after a durable
sync (seen with strace on the mount); directory listings handed out in
several batches, plain first and with attributes after, show every entry
with its right size, also after a change. Listings and walks run on a
remote mount (speechfs --url) too (a create is seen by others before its
close on a local mount only: a remote mount makes it at close); what
is about the local store's syncs and -o commit's batches runs locally
only (a remote mount syncs nothing itself: the server's close is the
durable one, test_fs_crash kills a remote mount), and so does the probe
of what is closed (the server probes, with the same core)."""
import io
import math
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import threading
import time
import wave

import pytest
import requests

import fsutil
from fsutil import Mount, api, eventually, mnt, store, xget  # noqa: F401

# and on a remote mount (speechfs --url), where the subject is a mount's
MOUNT_KINDS = ["local", "remote"]

def syncs(trace, t0, t1):
    """The sync calls the mount made between t0 and t1 (wall clock)."""
    return [n for t, n in fsutil.sync_calls(trace) if t0 <= t <= t1]


def timed_create(path, body):
    """Create path (O_EXCL), write body (nothing when empty) and close it:
    the wall clock before the open, after it and after the close."""
    t0 = time.time()
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    t1 = time.time()
    if body:
        os.write(fd, body)
    os.close(fd)
    return t0, t1, time.time()


def traced_mount(store, tmp_path, monkeypatch, *opts,
                 calls="fsync,fdatasync"):
    """A mount running under strace (syncs only, or `calls`), no job
    workers."""
    assert shutil.which("strace"), "packaging/install-deps.sh installs it"
    trace = tmp_path / "trace"
    wrapper = tmp_path / "speechfs-traced"
    # LeakSanitizer cannot run under ptrace (the ASan build of the suite)
    wrapper.write_text("#!/bin/sh\n"
                       "export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}"
                       "detect_leaks=0\n"
                       "exec strace -f -ttt -e trace=%s -o %s %s "
                       "\"$@\"\n" % (calls, trace, fsutil.SPEECHFS))
    wrapper.chmod(0o755)
    monkeypatch.setattr(fsutil, "SPEECHFS", wrapper)
    d, _, users = store
    return Mount(d, users[0], "-o", "no_workers", *opts), trace


@pytest.fixture
def traced(store, tmp_path, monkeypatch):
    m, trace = traced_mount(store, tmp_path, monkeypatch)
    try:
        yield m, trace
    finally:
        if not m.log.closed:            # the test may have stopped it
            m.stop()


@pytest.mark.mount_kinds("local")
def test_create_waits_for_no_sync_close_does(traced):
    m, trace = traced
    # the first write of a fresh store starts the WAL (its header is
    # synced once); what follows is the steady state
    (m.path("warm.txt")).write_bytes(b"warm")
    windows = [timed_create(m.path("f%d.txt" % i), body) for i, body in
               enumerate((b"some bytes", b"some bytes", b""))]
    # fsync() of a new file is durable before it returns, too
    fd = os.open(m.path("g.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    t3 = time.time()
    os.fsync(fd)
    t4 = time.time()
    os.close(fd)
    assert m.stop() == 0                # strace writes its trace out
    for t0, t1, t2 in windows:
        assert syncs(trace, t0, t1) == []
        # new bytes, deduplicated bytes and no bytes (touch) alike
        assert "fdatasync" in syncs(trace, t1, t2)
    assert "fdatasync" in syncs(trace, t3, t4)
    m2 = Mount(m.store, m.user)
    try:
        assert m2.path("f0.txt").read_bytes() == b"some bytes"
        assert m2.path("f1.txt").read_bytes() == b"some bytes"
        assert m2.path("f2.txt").stat().st_size == 0
    finally:
        m2.stop()


@pytest.mark.mount_kinds("remote")
def test_remote_create_costs_the_server_one_sync(store, tmp_path):
    """A remote mount's new file costs the server one sync: it is made
    at its close, with its content (POST /files?idKey=, one request, empty
    for a file closed empty as touch leaves it), durable before the
    answer; its open asks the server nothing. Seen with strace on the
    real speechfsd: every close() holds a sync of the server's, the
    opens hold none but a checkpoint's now and then (a checkpoint of the
    WAL syncs too: a few in all), and N files cost about N syncs."""
    d, _, users = store
    m = Mount(d, users[0], "-o", "no_workers")
    n, windows, sizes = 40, [], {}
    try:
        # the WAL started, the directory known: the steady state follows
        m.path("warm.txt").write_bytes(b"warm")
        with fsutil.SyncTrace(m.server.proc.pid, tmp_path) as tr:
            for i in range(n):
                # every fourth file closed empty (touch)
                body = b"" if i % 4 == 0 else (b"%04d" % i) * 256
                sizes["n%03d.wav" % i] = len(body)
                windows.append(timed_create(m.path("n%03d.wav" % i),
                                            body))
        for i, (t0, t1, t2) in enumerate(windows):
            assert tr.syncs(t1, t2), "close %d returned before the " \
                "server's sync" % i
        in_opens = sum(len(tr.syncs(t0, t1)) for t0, t1, _ in windows)
        total = len(tr.syncs(windows[0][0], windows[-1][2]))
        assert in_opens <= n // 8, (in_opens, tr.stop())
        assert n <= total <= n + n // 4, (total, tr.stop())
    finally:
        assert m.stop() == 0
    # the server holds them all, as closed (a fresh mount of it)
    m2 = Mount(d, users[0])
    try:
        for name, size in sizes.items():
            assert m2.path(name).stat().st_size == size, name
        assert m2.path("n005.wav").read_bytes() == b"0005" * 256
    finally:
        assert m2.stop() == 0


def wav_bytes(seconds=0.5, rate=16000):
    import io
    import math
    import wave
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            int(8000 * math.sin(i * 0.2)).to_bytes(2, "little", signed=True)
            for i in range(int(seconds * rate))))
    return b.getvalue()


@pytest.mark.mount_kinds("local")
def test_closing_what_is_not_audio_opens_nothing(store, tmp_path,
                                                 monkeypatch):
    """The close of a file that is not audio probes it without a look
    for a Mac resource fork (libsndfile's "/..namedfork/rsrc", "._" and
    ".AppleDouble/": three failed openat per close before); audio is
    still probed (its MIME type and duration)."""
    m, trace = traced_mount(store, tmp_path, monkeypatch, calls="openat")
    try:
        for i in range(20):
            m.path("t%02d.txt" % i).write_bytes(b"not audio %d\n" % i)
        m.path("tone.wav").write_bytes(wav_bytes())
        assert xget(m.path("t07.txt"), "user.mime_type") == \
            "application/octet-stream"
        assert xget(m.path("tone.wav"), "user.mime_type") == "audio/wav"
        assert float(xget(m.path("tone.wav"),
                          "user.speechfs.durationSeconds")) == 0.5
    finally:
        assert m.stop() == 0
    opened = trace.read_text()
    assert "openat(" in opened          # the trace is of openat
    fork = [line for line in opened.splitlines()
            if re.search(r'namedfork|AppleDouble|"\._', line)]
    assert fork == [], fork[:5]


@pytest.mark.mount_kinds("local")
def test_commit_window_closes_without_waiting(store, tmp_path, monkeypatch):
    """-o commit=MS: close() returns without a sync; one sync made by the
    mount itself, later, covers all of them; fsync() still syncs before
    it returns; unmounting makes the last closes durable."""
    m, trace = traced_mount(store, tmp_path, monkeypatch, "-o",
                            "commit=1000")
    try:
        m.path("warm.txt").write_bytes(b"warm")    # the WAL's first sync
        # fsync: the warm file's batch committed (with the checkpoint the
        # store's first commits may bring) and synced before the closes
        fd = os.open(m.path("warm.txt"), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        assert fsutil.eventually(
            lambda: "fdatasync" in syncs(trace, 0, time.time()), timeout=30)
        t0 = time.time()
        for i in range(20):
            m.path("c%02d.txt" % i).write_bytes(b"bulk %d" % i)
        t1 = time.time()
        # no sync per close: one a window at most while they ran
        closing = syncs(trace, t0, t1)
        # then one (or a few, if the closes outlasted the window) later
        assert fsutil.eventually(
            lambda: syncs(trace, t1, time.time()), timeout=30)
        fd = os.open(m.path("f.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"synced")
        t3 = time.time()
        os.fsync(fd)
        t4 = time.time()
        os.close(fd)
        m.path("last.txt").write_bytes(b"last")
        t5 = time.time()
    finally:
        assert m.stop() == 0
    assert len(closing) <= (t1 - t0) / 1.0 + 1, closing
    assert "fdatasync" in syncs(trace, t3, t4)
    assert "fdatasync" in syncs(trace, t5, time.time())
    m2 = Mount(m.store, m.user)
    try:
        assert sorted(n for n in os.listdir(m2.dir)
                      if not n.startswith(".")) == sorted(
            ["c%02d.txt" % i for i in range(20)] +
            ["f.txt", "last.txt", "warm.txt"])
        assert m2.path("c07.txt").read_bytes() == b"bulk 7"
        assert m2.path("last.txt").read_bytes() == b"last"
    finally:
        m2.stop()


@pytest.mark.mount_kinds("local")
def test_reading_thread_does_not_wait_for_a_batch_to_open(store):
    """-o commit=MS: a change that opens a batch waits for SQLite's write
    lock (here another process holds it); it goes to a worker, so the
    reading thread answers meanwhile (a read of an open file). Before,
    the reading thread made that change itself and the whole mount
    stopped until the lock came free or the busy timeout (10 s) failed
    the change."""
    d, _, users = store
    body = os.urandom(64 * 1024)
    first = Mount(d, users[0])
    try:
        first.path("a.bin").write_bytes(body)
    finally:
        first.stop()
    # a mount of its own: nothing of a.bin in the kernel's page cache
    m = Mount(d, users[0], "-d", "-o", "commit=60000")
    db = lock = None
    try:
        fd = os.open(m.path("a.bin"), os.O_RDONLY)
        db = sqlite3.connect(str(d / "speechfs.db"), timeout=30,
                             isolation_level=None, check_same_thread=False)
        # SQLite's write lock, held by another process
        db.execute("BEGIN IMMEDIATE")
        lock = True
        made = {}

        def create():
            try:
                os.close(os.open(m.path("b.txt"), os.O_CREAT | os.O_WRONLY,
                                 0o644))
                made["ok"] = True
            except OSError as e:
                made["error"] = e
        t = threading.Thread(target=create)
        t.start()
        assert fsutil.eventually(
            lambda: "opcode: CREATE " in m.output(), timeout=60)
        got = {}
        r = threading.Thread(
            target=lambda: got.setdefault("data", os.pread(fd, 4096, 8192)))
        r.start()
        r.join(timeout=60)              # a deadline for a hang, not a measure
        read_first = not r.is_alive() and not made
        db.execute("ROLLBACK")
        lock = False
        t.join(timeout=60)
        r.join(timeout=60)
        assert read_first, made
        assert made.get("ok"), made     # the create waited, then was made
        assert got["data"] == body[8192:8192 + 4096]
        os.close(fd)
        assert m.path("b.txt").exists()
    finally:
        if lock:
            db.execute("ROLLBACK")
        if db:
            db.close()
        m.stop()


@pytest.mark.mount_kinds("local")
def test_created_file_seen_by_another_mount_before_close(store):
    """A local mount's new file is in the store from open(O_CREAT): a
    second mount of it sees the file before its close. (A remote mount
    makes a new file on the server at its close: others see it from
    then, test_fs_remote_create.py.)"""
    d, _, users = store
    a = Mount(d, users[0])
    b = Mount(d, users[0])
    try:
        fd = os.open(a.path("open.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            deadline = time.time() + 5
            while "open.txt" not in os.listdir(b.dir):
                assert time.time() < deadline
                time.sleep(0.1)
            os.write(fd, b"later")
        finally:
            os.close(fd)
        deadline = time.time() + 5
        while os.stat(b.path("open.txt")).st_size != 5:
            assert time.time() < deadline
            time.sleep(0.1)
    finally:
        b.stop()
        a.stop()


def test_listing_in_batches(mnt):
    """More entries than one readdir reply holds: the first batch goes
    out without attributes, later ones with them; all are right."""
    n = 700
    d = mnt.path("big")
    os.mkdir(d)
    for k in range(3):
        os.mkdir(d / ("sub%d" % k))
    for i in range(n):
        (d / ("f%04d.txt" % i)).write_bytes(b"x" * (i % 13))
    want = {"f%04d.txt" % i: i % 13 for i in range(n)}
    fresh = Mount(mnt.store, mnt.user)
    try:
        fd = fresh.path("big")
        names = os.listdir(fd)
        assert sorted(names) == sorted(list(want) + ["sub0", "sub1",
                                                      "sub2"])
        # stat in readdir order, as ls -l does
        with os.scandir(fd) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if e.name.startswith("sub"):
                    assert e.is_dir()
                else:
                    assert e.is_file() and st.st_size == want[e.name]
        out = subprocess.run(["ls", "-l", str(fd)], capture_output=True,
                             text=True, check=True).stdout
        sizes = {f[-1]: int(f[4]) for f in
                 (line.split() for line in out.splitlines()[1:])}
        assert all(sizes[k] == v for k, v in want.items())
        found = subprocess.run(["find", str(fd)], capture_output=True,
                               text=True, check=True).stdout.split()
        assert len(found) == n + 4
        # a change made through the other mount shows in a new listing
        (d / "f0001.txt").write_bytes(b"y" * 100)
        deadline = time.time() + 5
        while True:
            with os.scandir(fd) as it:
                got = {e.name: e.stat().st_size for e in it}
            if got["f0001.txt"] == 100:
                break
            assert time.time() < deadline
            time.sleep(0.2)
    finally:
        fresh.stop()


@pytest.mark.mount_kinds("local")
def test_listing_attributes_come_as_they_are_then(mnt):
    """A listing reads its files' names only; the first batch asked after
    a lookup (ls -l) fetches the attributes of the rest, as they are
    then, matched by file: a file removed meanwhile comes without any
    (its stat fails), a file rewritten meanwhile with its new size, every
    other entry with its own size, each once. (Local: a remote store's
    rows come whole at once.)"""
    n = 700                              # several batches
    d = mnt.path("left")
    os.mkdir(d)
    for i in range(n):
        (d / ("f%04d.txt" % i)).write_bytes(b"x" * (i % 13))
    gone = "f%04d.txt" % (n - 1)
    grown = "f%04d.txt" % (n - 2)
    want = {"f%04d.txt" % i: i % 13 for i in range(n)}
    want[grown] = 50
    walker = Mount(mnt.store, mnt.user, "-o", "no_workers")
    try:
        seen = {}
        with os.scandir(walker.path("left")) as it:
            first = next(it)
            # a lookup: the later batches carry attributes
            seen[first.name] = first.stat(follow_symlinks=False).st_size
            os.unlink(d / gone)
            (d / grown).write_bytes(b"y" * 50)
            for e in it:
                assert e.name not in seen, e.name
                try:
                    seen[e.name] = e.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    assert e.name == gone
                    seen[e.name] = None
        seen.pop(gone, None)
        del want[gone]
        assert seen == want
    finally:
        walker.stop()


def tiny_wav(i):
    """A WAV of 400 samples, distinct per i."""
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(
            struct.pack("<h", int(3000 * math.sin(i + k / 7.0)))
            for k in range(400)))
    return b.getvalue()


@pytest.mark.mount_kinds("local")
def test_mirror_attributes_follow_its_rule_then(store, api, mnt):
    """The same in /.listening/ (review s14 finding 4): attributes
    fetched after a names-only listing apply the mirror's rule again, so
    an MP3 deleted since the listing goes without (its stat fails)
    instead of showing the old row's size. (Local, as above.)"""
    d, _, users = store
    url, keys = api
    n = 400                              # several batches
    os.mkdir(mnt.path("m"))
    for i in range(n):
        mnt.path("m", "t%04d.wav" % i).write_bytes(tiny_wav(i))
    last = os.getxattr(mnt.path("m", "t%04d.wav" % (n - 1)),
                       "user.speechfs.id").decode()
    assert eventually(
        lambda: len(os.listdir(mnt.path(".listening", "m"))) == n, 300)
    gone = "t%04d.mp3" % (n - 1)
    walker = Mount(d, users[0], "-o", "no_workers")
    try:
        seen = {}
        with os.scandir(walker.path(".listening", "m")) as it:
            first = next(it)
            # a lookup: the later batches carry attributes
            seen[first.name] = first.stat(follow_symlinks=False).st_size
            r = requests.delete(url + "/%s/listening-audio" % last,
                                headers={"X-API-Key": keys[0]}, timeout=30)
            assert r.status_code == 204, r.text
            # the walker has seen the change (its lookups; the open
            # listing's entries are as they were when listed)
            assert eventually(lambda: not os.path.exists(
                walker.path(".listening", "m", gone)), 30)
            for e in it:
                try:
                    seen[e.name] = e.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    seen[e.name] = None
        assert gone in seen and seen.pop(gone) is None, \
            "the mirror gave %s attributes after its MP3 went" % gone
        assert len(seen) == n - 1 and all(seen.values()), seen
    finally:
        walker.stop()


def lookups(m):
    """LOOKUP requests the mount (run with -d) has logged so far."""
    return m.output().count("opcode: LOOKUP ")


def looked_up_after_listing(m, root):
    """LOOKUPs of a listing of root and a stat of each of its entries
    right after it; None when that took as long as the entries' timeout
    (the mount's 1 s: the kernel looks again at each entry whose
    attributes expired, which says nothing of what the listing
    carried)."""
    before = lookups(m)
    t0 = time.monotonic()
    for name in os.listdir(root):
        os.lstat(os.path.join(root, name))
    if time.monotonic() - t0 >= 0.9:
        return None
    return lookups(m) - before


def test_a_walk_enters_directories_without_lookups(mnt):
    """Subdirectories carry their attributes in every batch of a listing,
    in the tree and in its /.listening/ mirror: stat-ing each right after
    the listing looks none of them up (in the kernel's "auto" mode four
    in five of a directory's subdirectories were, those past the first
    batch, and `find` entered each with a LOOKUP); `find` lists them all;
    files still get attributes once entries are looked up (`ls -l`).
    (Not counted during `find` itself: a walk that enters 300
    directories one after the other outlives the entries' 1 s timeout on
    a loaded machine, and each entry it reaches later is looked up again:
    123 in one run of 12, at load 10.)"""
    n = 300                              # several batches of entries
    top = mnt.path("walk")
    os.mkdir(top)
    for i in range(n):
        os.mkdir(top / ("sub%03d" % i))
    for i in range(0, n, 60):
        (top / ("sub%03d" % i) / "a.txt").write_bytes(b"x" * i)
    want = sorted(["sub%03d" % i for i in range(n)] +
                  ["sub%03d/a.txt" % i for i in range(0, n, 60)])
    want_la = sorted("sub%03d" % i for i in range(n))
    walker = Mount(mnt.store, mnt.user, "-d", "-o", "no_workers")
    try:
        for where, expect in (("walk", want),
                              (".listening/walk", want_la)):
            root = walker.path(*where.split("/"))
            # tried again while a try outlives the entries' timeout
            deadline = time.monotonic() + 60
            during = looked_up_after_listing(walker, root)
            while during is None and time.monotonic() < deadline:
                during = looked_up_after_listing(walker, root)
            assert during is not None, "no listing and stat within 0.9 s"
            # the path down to the top (at most one per segment), not
            # one per subdirectory
            assert during <= 3, (where, during)
            found = subprocess.run(["find", str(root)],
                                   capture_output=True, text=True,
                                   check=True).stdout.split("\n")
            got = sorted(os.path.relpath(p, root) for p in found
                         if p and p != str(root))
            assert got == expect, where
        # ls -l of a directory of subdirectories: all, right link counts
        out = subprocess.run(["ls", "-l", str(walker.path("walk"))],
                             capture_output=True, text=True,
                             check=True).stdout.splitlines()[1:]
        assert len(out) == n
        assert all(line.startswith("d") and line.split()[1] == "2"
                   for line in out)
    finally:
        walker.stop()
