"""Writes through the mount: random-access writes, append, truncate, the
stage's size while open, commit on close and fsync, quota errors that
close() reports while the previous content stays, parallel writers."""
import errno
import hashlib
import os
import threading
import time

import pytest

from fsutil import (Mount, admin, mnt, mounts, need_fuse,  # noqa: F401
                    sha256_file, store, xget)

MOUNT_KINDS = ["local", "remote"]

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."


def test_write_at_offsets(mnt):
    p = mnt.path("w.bin")
    p.write_bytes(b"0123456789")
    fd = os.open(p, os.O_RDWR)
    try:
        os.pwrite(fd, b"AB", 3)
        os.pwrite(fd, b"Z", 14)        # past the end: a hole of zeros
        assert os.pread(fd, 20, 0) == b"012AB56789\0\0\0\0Z"
        assert os.fstat(fd).st_size == 15
        assert os.stat(p).st_size == 15   # by path while open
    finally:
        os.close(fd)
    assert p.read_bytes() == b"012AB56789\0\0\0\0Z"
    assert xget(p, P + "sha256") == hashlib.sha256(
        b"012AB56789\0\0\0\0Z").hexdigest()


def test_append_and_truncate(mnt):
    p = mnt.path("log.txt")
    p.write_bytes(b"one\n")
    fid = xget(p, P + "id")
    with open(p, "a") as f:
        f.write("two\n")
    assert p.read_bytes() == b"one\ntwo\n"
    os.truncate(p, 3)
    assert p.read_bytes() == b"one"
    with open(p, "r+b") as f:
        f.truncate(1)
        f.seek(0, 2)
        f.write(b"X")
    assert p.read_bytes() == b"oX"
    with open(p, "w") as f:          # O_TRUNC
        pass
    assert p.read_bytes() == b""
    assert os.stat(p).st_size == 0
    assert xget(p, P + "id") == fid


def test_fsync_commits(mnt):
    p = mnt.path("s.txt")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"durable")
        os.fsync(fd)
        # committed: another handle reads the new content already
        assert xget(p, P + "sha256") == hashlib.sha256(
            b"durable").hexdigest()
        os.write(fd, b"+more")
    finally:
        os.close(fd)
    assert p.read_bytes() == b"durable+more"


def test_new_file_visible_before_close(mnt):
    p = mnt.path("early.txt")
    fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
    try:
        assert "early.txt" in os.listdir(mnt.dir)
        os.write(fd, b"abc")
        assert os.stat(p).st_size == 3
    finally:
        os.close(fd)
    with pytest.raises(FileExistsError):
        os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)


def on_threads(fn, n=4):
    """fn(i) for each i in range(n), each on a thread of its own, all at
    once: the exceptions they raised ([] when none did)."""
    errors = []

    def run(i):
        try:
            fn(i)
        except Exception as e:       # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors


def test_parallel_writers(mnt):
    datas = [os.urandom(200 * 1024 + i) for i in range(4)]

    def writer(i):
        with open(mnt.path("par%d.bin" % i), "wb") as f:
            for off in range(0, len(datas[i]), 8192):
                f.write(datas[i][off:off + 8192])

    assert on_threads(writer) == []
    for i in range(4):
        assert mnt.path("par%d.bin" % i).read_bytes() == datas[i]
        assert xget(mnt.path("par%d.bin" % i), P + "sha256") == \
            hashlib.sha256(datas[i]).hexdigest()


def test_parallel_writers_same_file(mnt):
    p = mnt.path("shared.bin")
    p.write_bytes(b"")
    datas = [bytes([65 + i]) * 50000 for i in range(4)]

    def writer(i):
        with open(p, "r+b") as f:
            f.write(datas[i])

    # every writer's close commits: none fails for another's
    assert on_threads(writer) == []
    # each close commits a whole version: the last one wins, never a mix
    assert p.read_bytes() in datas


def test_large_write_in_order_closed_at_once(mnt):
    """A file written in order past the stage's pipeline threshold (a few
    MiB), its size not a whole number of the pipeline's chunks, closed
    right after the last write: the store holds every byte. The remote
    mount uploaded from the stage's file while its writer thread was
    still appending (the upload announced fewer bytes than came, or the
    tail never came) until it waited for the stage to settle."""
    for n in (9 << 20) + 12345, (24 << 20) + 1:
        data = os.urandom(n)
        p = mnt.path("in-order-%d.bin" % n)
        with open(p, "wb") as f:
            for off in range(0, n, 1 << 20):
                f.write(data[off:off + (1 << 20)])
        assert xget(p, P + "sha256") == hashlib.sha256(data).hexdigest()
        assert os.stat(p).st_size == n


@pytest.fixture
def small_store(tmp_path):
    need_fuse()
    d = tmp_path / "store"
    admin("init", "--store", str(d))
    tenant = admin("tenant", "create", "--store", str(d), "--name", "t",
                   "--max-bytes", "100000")["id"]
    user = admin("user", "create", "--store", str(d), "--tenant", tenant,
                 "--name", "u")["id"]
    return d, user


def test_quota_error_on_close_keeps_content(small_store):
    d, user = small_store
    m = Mount(d, user)
    try:
        p = m.path("q.bin")
        p.write_bytes(b"k" * 1000)
        sha = xget(p, P + "sha256")
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"z" * 200000)
        with pytest.raises(OSError) as ei:
            os.close(fd)
        assert ei.value.errno == errno.EDQUOT
        assert p.read_bytes() == b"k" * 1000
        assert xget(p, P + "sha256") == sha
        # fsync reports it too
        fd = os.open(p, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"z" * 200000)
            with pytest.raises(OSError) as ei:
                os.fsync(fd)
            assert ei.value.errno == errno.EDQUOT
        finally:
            os.close(fd)
        assert os.stat(p).st_size == 1000
    finally:
        m.stop()


def test_quota_error_on_close_of_a_new_file(small_store):
    """A new file over the quota: close() says EDQUOT, the file stays,
    empty (creat() made it; the data is lost, not the name), and a
    second descriptor of the same open (a dup, a fork's copy) says
    EDQUOT at its close too, not 0 (the name's commit, which succeeds,
    answered it before): the bytes were never stored."""
    d, user = small_store
    m = Mount(d, user)
    try:
        p = m.path("new.bin")
        fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b"z" * 200000)
        dup = os.dup(fd)
        try:
            with pytest.raises(OSError) as ei:
                os.close(fd)
            assert ei.value.errno == errno.EDQUOT
            assert os.stat(p).st_size == 0
        finally:
            with pytest.raises(OSError) as ei:
                os.close(dup)
        assert ei.value.errno == errno.EDQUOT
        assert p.read_bytes() == b""
    finally:
        m.stop()
    m = Mount(d, user)
    try:
        assert m.path("new.bin").read_bytes() == b""
    finally:
        m.stop()


def test_changes_elsewhere_show_up(store, mounts):
    """Two mounts of one user: a change made through one appears in the
    other within a second or so (the change poller / attr timeouts)."""
    import time
    d, _, users = store
    a = mounts(users[0])
    b = mounts(users[0])
    a.path("x.txt").write_bytes(b"v1")
    assert b.path("x.txt").read_bytes() == b"v1"
    a.path("x.txt").write_bytes(b"version 2")
    deadline = time.time() + 5
    while time.time() < deadline:
        if b.path("x.txt").read_bytes() == b"version 2":
            break
        time.sleep(0.2)
    assert b.path("x.txt").read_bytes() == b"version 2"
    os.unlink(a.path("x.txt"))
    deadline = time.time() + 5
    while time.time() < deadline and b.path("x.txt").exists():
        time.sleep(0.2)
    assert not b.path("x.txt").exists()


def test_parallel_creators_one_dir(mnt):
    """Files created at once in one directory are all found at once (the
    lookup cache never hides a file the mount itself created)."""
    os.mkdir(mnt.path("many"))

    def creator(t):
        for i in range(25):
            p = mnt.path("many", "t%d-%d.txt" % (t, i))
            with open(p, "wb") as f:
                f.write(b"%d" % i)
            os.stat(p)
            os.listdir(mnt.path("many"))

    assert on_threads(creator) == []
    assert len(os.listdir(mnt.path("many"))) == 100
    for t in range(4):
        assert mnt.path("many", "t%d-24.txt" % t).read_bytes() == b"24"


WRITER = r'''
import hashlib, os, sys, time
own, shared, go, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def data(tag, n):
    return hashlib.sha256(b"%d/%s" % (seed, tag)).digest() * (n // 32)
open(go + ".ready%d" % seed, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
for rnd in range(3):
    mine = data(b"own%d" % rnd, 32 * (20000 + 997 * seed + rnd))
    common = data(b"shared%d" % rnd, 32 * (15000 + 1009 * seed + rnd))
    # both files open at once, written in interleaved chunks
    with open(own, "wb") as a, open(shared, "wb") as b:
        for off in range(0, max(len(mine), len(common)), 65536):
            a.write(mine[off:off + 65536])
            b.write(common[off:off + 65536])
            time.sleep(0.001)    # let the other writers in between
    with open(own, "rb") as a:
        assert a.read() == mine, "own file differs after close"
    print(hashlib.sha256(common).hexdigest(), len(common), flush=True)
print(hashlib.sha256(mine).hexdigest(), flush=True)
'''


def test_four_writer_processes(mnt, tmp_path):
    """Four processes write a file each and, at the same time, one file
    together: each close commits one whole version, so every file ends
    as exactly one writer's last version and its sha256 matches."""
    import subprocess
    import sys
    import time
    go = tmp_path / "go"
    shared = mnt.path("together.bin")
    shared.write_bytes(b"before")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER,
                               str(mnt.path("own%d.bin" % i)), str(shared),
                               str(go), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for i in range(4)]
    # all four started and waiting: then they go at once
    deadline = time.time() + 60
    while not all(os.path.exists("%s.ready%d" % (go, i)) for i in range(4)):
        assert all(p.poll() is None for p in procs), \
            [p.communicate() for p in procs if p.poll() is not None]
        assert time.time() < deadline, "the writers did not start"
        time.sleep(0.05)
    go.write_bytes(b"")
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    versions = {}
    for i, (out, _) in enumerate(outs):
        lines = out.split()
        own_sha = lines[-1]
        p = mnt.path("own%d.bin" % i)
        assert sha256_file(p) == own_sha
        assert xget(p, P + "sha256") == own_sha
        for sha, size in zip(lines[0:-1:2], lines[1:-1:2]):
            versions[sha] = int(size)
    assert len(versions) == 12
    sha = sha256_file(shared)
    assert sha in versions, "the shared file is no writer's whole version"
    assert os.stat(shared).st_size == versions[sha]
    assert xget(shared, P + "sha256") == sha
    assert json_size(shared) == versions[sha]
    # nothing of the writers went to the trash, no duplicate entries
    assert sorted(os.listdir(mnt.dir)) == sorted(
        [".listening", ".shared", ".trash", "together.bin"] +
        ["own%d.bin" % i for i in range(4)])
    assert os.listdir(mnt.path(".trash")) == []


def json_size(path):
    import json
    return json.loads(xget(path, P + "json"))["size"]


def test_a_file_being_committed_answers(store, tmp_path, monkeypatch):
    """close() commits a file without holding it: while the commit of a
    big file is held (the mount's test hook SPEECHFS_TEST_HOLD_COMMIT
    keeps its first content commit waiting on a FIFO), stat, open,
    listings and attributes of that very file answer, with the size
    written; the close returns once the commit goes on."""
    d, _, users = store
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    monkeypatch.setenv("SPEECHFS_TEST_HOLD_COMMIT", str(fifo))
    m = Mount(d, users[0])
    wfd = -1
    try:
        data = os.urandom(8 << 20)
        f = m.path("big.bin")
        closed = threading.Event()

        def write():
            with open(f, "wb") as out:
                out.write(data)
            closed.set()

        w = threading.Thread(target=write)
        w.start()
        # the commit is held once it has the FIFO open for reading
        deadline = time.time() + 60
        while wfd < 0:
            try:
                wfd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                assert e.errno == errno.ENXIO
                assert time.time() < deadline, "the commit never started"
                time.sleep(0.01)
        seen = {}

        def probe():
            seen["size"] = os.stat(f).st_size
            seen["list"] = os.listdir(m.path())
            fd = os.open(f, os.O_RDONLY)
            seen["fsize"] = os.fstat(fd).st_size
            os.close(fd)
            seen["id"] = xget(f, P + "id")

        p = threading.Thread(target=probe)
        p.start()
        p.join(timeout=60)  # a deadline, not a measure: it must return
        answered = not p.is_alive()
        assert not closed.is_set()  # the commit was held all along
        os.write(wfd, b"go")
        w.join(timeout=120)
        p.join(timeout=120)
        assert answered, "the file's attributes waited for its commit"
        assert closed.is_set()
        assert seen["size"] == seen["fsize"] == len(data)
        assert "big.bin" in seen["list"] and seen["id"]
        assert hashlib.sha256(f.read_bytes()).digest() == \
            hashlib.sha256(data).digest()
    finally:
        if wfd >= 0:
            os.close(wfd)
        m.stop()
