"""The remote mount's bytes, read and written every way a program does:
cold and warm reads of files of odd sizes (around the 4 MiB block and
the 2 MiB page of the block cache) in order, in odd steps and at random
places, by several readers at once and by many threads of one
descriptor; writes of odd sizes in order and out of order, overwrites
that keep the id, several writers at once. Each checked against the
bytes sent, by sha256 on the server and read back. A real speechfsd on
127.0.0.1 and real remote mounts (review s17)."""
import hashlib
import os
import pathlib
import random
import shutil
import tempfile
import threading

import pytest

from fsutil import remote, store  # noqa: F401
from test_fs_remote import RemoteMount, content_gets
from test_fs_remote_faults import drop_pages, server_sha, sha, upload
from test_fs_remote_stream import the_file

MIB = 1 << 20
SIZES = [1, 4095, 4097, 2 * MIB - 1, 2 * MIB, 2 * MIB + 1, 4 * MIB - 1,
         4 * MIB, 4 * MIB + 1, 8 * MIB + 4097, 13 * MIB + 1]
REMOTE_CONFIG = {"http.max_upload_bytes": str(256 * MIB)}


def data_of(n, seed):
    r = random.Random(seed)
    return r.randbytes(n)


def in_threads(fn, argss):
    """fn(*args) on a thread of its own for each args of argss, all at
    once; returns once they ended (10 minutes at most)."""
    ths = [threading.Thread(target=fn, args=args) for args in argss]
    for t in ths:
        t.start()
    for t in ths:
        t.join(600)


def check_reads(p, data, rnd):
    drop_pages(p)
    with open(p, "rb") as f:
        assert f.read() == data
    drop_pages(p)
    with open(p, "rb", buffering=0) as f:
        got = bytearray()
        while True:
            b = f.read(rnd.choice([4096, 131072, 1000003]))
            if not b:
                break
            got += b
        assert bytes(got) == data
    drop_pages(p)
    fd = os.open(p, os.O_RDONLY)
    try:
        for _ in range(40):
            off = rnd.randrange(0, len(data) + 10)
            ln = rnd.choice([1, 4096, 65536, 3 * MIB, 5 * MIB])
            assert os.pread(fd, ln, off) == data[off:off + ln], (off, ln)
            if rnd.random() < 0.2:
                drop_pages(p)
    finally:
        os.close(fd)


def test_cold_and_warm_reads_odd_sizes(remote):
    dm, key, _, _ = remote
    files = {}
    for i, n in enumerate(SIZES):
        data = data_of(n, i)
        upload(dm, key, data, "s%d" % n)
        files["s%d.bin" % n] = data
    rnd = random.Random(7)
    # the cache is the test's: the first mount's stop would remove its own
    cache = pathlib.Path(tempfile.mkdtemp(prefix="sfs-rcache-"))
    try:
        m = RemoteMount(dm.base, key, "-o", "timeout=30", cache_dir=cache)
        try:
            for name, data in files.items():
                check_reads(m.path(name), data, rnd)
            # concurrent readers of one file and of several
            errs = []

            def reader(name, seed):
                try:
                    for _ in range(2):
                        check_reads(m.path(name), files[name],
                                    random.Random(seed))
                except BaseException as e:  # noqa: BLE001
                    errs.append((name, e))
            in_threads(reader,
                       [(nm, k) for k, nm in enumerate(list(files) * 2)])
            assert not errs, errs[:3]
        finally:
            m.stop(check=True)
        # warm: a new mount on the same cache, which has every block
        gets = content_gets(dm.base)
        m = RemoteMount(dm.base, key, "-o", "timeout=30", cache_dir=cache)
        try:
            for name, data in files.items():
                check_reads(m.path(name), data, rnd)
            assert content_gets(dm.base) == gets, \
                "a warm read asked the server"
        finally:
            m.stop()
    finally:
        shutil.rmtree(cache, ignore_errors=True)


WSIZES = [0, 1, 4097, 4 * MIB - 1, 4 * MIB + 1, 9 * MIB + 7, 33 * MIB + 3]


def write_file(p, data, rnd, mode):
    with open(p, "wb", buffering=0) as f:
        if mode == "seq":
            i = 0
            while i < len(data):
                s = rnd.choice([1, 4096, 65536 + 3, MIB, 3 * MIB + 5])
                f.write(data[i:i + s])
                i += s
        else:
            # the back half first, then the front: out of order
            h = len(data) // 2
            os.pwrite(f.fileno(), data[h:], h)
            os.pwrite(f.fileno(), data[:h], 0)


@pytest.mark.parametrize("mode", ["seq", "ooo"])
def test_writes_odd_sizes(remote, mode):
    dm, key, _, _ = remote
    rnd = random.Random(3)
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        for i, n in enumerate(WSIZES):
            data = data_of(n, 100 + i)
            name = "w%d-%s" % (n, mode)
            write_file(m.path(name + ".bin"), data, rnd, mode)
            g = the_file(dm, key, name)
            assert (g["size"], g["sha256"]) == (n, sha(data)), name
            drop_pages(m.path(name + ".bin"))
            assert m.path(name + ".bin").read_bytes() == data
        # overwrite each, smaller and larger, keeping the id
        for i, n in enumerate(WSIZES):
            name = "w%d-%s" % (n, mode)
            fid = the_file(dm, key, name)["id"]
            n2 = WSIZES[(i + 3) % len(WSIZES)]
            data = data_of(n2, 200 + i)
            write_file(m.path(name + ".bin"), data, rnd, mode)
            assert server_sha(dm, key, fid) == sha(data), name
            drop_pages(m.path(name + ".bin"))
            assert m.path(name + ".bin").read_bytes() == data
    finally:
        print(m.output())
        m.stop()


def test_concurrent_writers(remote):
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=60")
    errs = []
    want = {}

    def writer(k):
        try:
            rnd = random.Random(k)
            for j in range(3):
                n = rnd.choice(WSIZES[1:])
                data = data_of(n, 1000 * k + j)
                name = "c%d" % k
                write_file(m.path(name + ".bin"), data, rnd, "seq")
                want[name] = data
        except BaseException as e:  # noqa: BLE001
            errs.append(e)
    try:
        in_threads(writer, [(k,) for k in range(6)])
        assert not errs, errs
        for name, data in want.items():
            g = the_file(dm, key, name)
            assert (g["size"], g["sha256"]) == (len(data), sha(data)), name
            drop_pages(m.path(name + ".bin"))
            assert hashlib.sha256(m.path(name + ".bin").read_bytes()) \
                .hexdigest() == sha(data)
    finally:
        print(m.output())
        m.stop()


def test_one_fd_many_threads(remote):
    """Threads pread one descriptor at random places (as a player or a
    multithreaded tool does): every read right, none fails. Before, a
    block one thread waited for could be taken for another thread's
    block once fetched, and the read failed with EIO ("a block was
    lost") or came back short: 5 runs of 5 failed (review s17 F1)."""
    dm, key, _, _ = remote
    n = 81 * MIB + 123
    data = data_of(n, 99)
    upload(dm, key, data, "shared")
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    errs = []
    try:
        p = m.path("shared.bin")
        for rnd_round in range(3):
            drop_pages(p)
            fd = os.open(p, os.O_RDONLY)

            def worker(seed):
                rnd = random.Random(seed)
                try:
                    for _ in range(60):
                        off = rnd.randrange(0, n)
                        ln = rnd.choice([4096, 131072, MIB])
                        got = os.pread(fd, ln, off)
                        want = data[off:off + ln]
                        if got != want:
                            k = next((i for i in range(min(len(got), len(want)))
                                      if got[i] != want[i]), None)
                            errs.append(("wrong", off, ln, len(got), k,
                                         got[k:k + 8] if k is not None else b"",
                                         os.fstat(fd).st_size))
                        if rnd.random() < 0.1:
                            drop_pages(p)
                except OSError as e:
                    errs.append(("err", e))
            in_threads(worker, [(rnd_round * 100 + k,) for k in range(16)])
            os.close(fd)
        eio = [e for e in errs if e[0] == "err"]
        short = [e for e in errs if e[0] == "wrong" and e[4] is None]
        bad = [e for e in errs if e[0] == "wrong" and e[4] is not None]
        assert not errs, (len(eio), len(short), len(bad), bad[:3], short[:3])
    finally:
        print(m.output()[-3000:])
        m.stop()
