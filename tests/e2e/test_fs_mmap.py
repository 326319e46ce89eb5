"""A reader's mmap of a file another process writes: a new file created
write-only is opened with direct_io (a35600b: its writes skip the
kernel's page cache), while a reader's O_RDONLY open reads through the
page cache and may map it. The reader sees what a local filesystem
shows: the bytes written so far while the writer writes, each later
write within its mapping (an overwrite, an append over the page of the
old end) once write() returned, and all of it after the writer's close;
a new open maps the whole file. Once nobody has the file open for
writing, such a reader reads the committed version as one opened then
would, without the file's lock. Local and remote mounts (a real
speechfsd on 127.0.0.1), real FUSE; the writer and the reader are
processes of their own (a reader's SIGBUS fails the test, not pytest).
"""
import hashlib
import os
import subprocess
import sys

import pytest

from fsutil import Mount, fifo_held, line_of, store  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# Creates argv[1] O_WRONLY (direct_io), or with argv[2] "base" opens it
# O_RDWR (its first write copies the rest of the file: its base), and
# writes as told on stdin: "w OFF LEN CHAR" writes LEN bytes CHAR at OFF,
# "close" closes it.
WRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR) if sys.argv[2:] == ["base"] else \
    os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
print("ok", flush=True)
for line in sys.stdin:
    w = line.split()
    if w[0] == "close":
        os.close(fd)
    else:
        os.pwrite(fd, w[3].encode() * int(w[2]), int(w[1]))
    print("ok", flush=True)
"""

# Opens argv[1] O_RDONLY and answers on stdin: "size" (fstat), "map N"
# (a mapping of N bytes, kept), "mapped" (the kept mapping's sha256),
# "newmap N" (a new mapping's of N bytes), "pread N" (sha256 of pread
# of N bytes at 0), "at OFF N" (of N bytes at OFF), "close".
READER = r"""
import hashlib, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
mm = None
sha = lambda b: hashlib.sha256(b).hexdigest()
print("ok", flush=True)
for line in sys.stdin:
    w = line.split()
    n = int(w[1]) if len(w) > 1 else 0
    out = "ok"
    if w[0] == "size":
        out = str(os.fstat(fd).st_size)
    elif w[0] == "map":
        mm = mmap.mmap(fd, n, prot=mmap.PROT_READ)
    elif w[0] == "mapped":
        out = sha(mm[:])
    elif w[0] == "newmap":
        with mmap.mmap(fd, n, prot=mmap.PROT_READ) as m2:
            out = sha(m2[:])
    elif w[0] == "pread":
        out = sha(os.pread(fd, n, 0))
    elif w[0] == "at":
        out = sha(os.pread(fd, int(w[2]), n))
    else:
        if mm:
            mm.close()
        os.close(fd)
    print(out, flush=True)
"""


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Proc:
    """A WRITER or READER process on path, told one line at a time."""

    def __init__(self, script, path, *args):
        self.p = subprocess.Popen([sys.executable, "-c", script, str(path),
                                   *args],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE)
        self.said("start")

    def said(self, what):
        got = line_of(self.p, 60)
        if not got:
            self.p.kill()
            raise AssertionError("no answer to %s: exit %r" %
                                 (what, self.p.wait(60)))
        return got.decode().strip()

    def tell(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def ask(self, line):
        self.tell(line)
        return self.said(line)

    def end(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


class Writer(Proc):
    """The WRITER, and what its file holds."""

    def __init__(self, path, *args):
        super().__init__(WRITER, path, *args)
        self.want = bytearray()

    def write(self, off, n, ch):
        assert self.ask("w %d %d %s" % (off, n, ch)) == "ok"
        if off + n > len(self.want):
            self.want += b"\0" * (off + n - len(self.want))
        self.want[off:off + n] = ch.encode() * n

    def close(self):
        assert self.ask("close") == "ok"
        self.p.stdin.close()
        assert self.p.wait(60) == 0


@pytest.fixture
def procs(store):
    """(mount, [processes]): the processes ended, the mount stopped."""
    d, _, users = store
    m = Mount(d, users[0])
    made = []
    try:
        yield m, made
    finally:
        for p in made:
            p.end()
        print(m.output())
        m.stop()


def test_a_reader_maps_a_file_being_written(procs):
    """The reader opens and maps the file after the first write: it maps
    those bytes; an overwrite inside its mapping and an append over the
    page of the old end show in the same mapping, in a new one and in
    pread; after close, and by a new open, the whole file."""
    m, made = procs
    p = m.path("grow.bin")
    w = Writer(p)
    made.append(w)
    w.write(0, 5000, "A")              # two pages, the second partial
    r = Proc(READER, p)
    made.append(r)
    assert r.ask("size") == "5000"
    assert r.ask("map 5000") == "ok"
    assert r.ask("mapped") == sha(w.want)   # both pages faulted in
    w.write(10, 100, "B")              # inside the mapping's first page
    w.write(5000, 3000, "C")           # the old end's page and after
    assert r.ask("size") == "8000"
    assert r.ask("mapped") == sha(w.want[:5000]), "a stale mapping"
    assert r.ask("newmap 8000") == sha(w.want)
    assert r.ask("pread 9000") == sha(w.want)
    w.write(7000, 2000, "D")
    w.close()
    assert r.ask("mapped") == sha(w.want[:5000])
    assert r.ask("size") == "9000"
    assert r.ask("newmap 9000") == sha(w.want)
    assert r.ask("pread 10000") == sha(w.want)
    r2 = Proc(READER, p)
    made.append(r2)
    assert r2.ask("newmap 9000") == sha(w.want)


def test_a_reader_opened_before_the_first_write(procs):
    """The reader opens the new file while it is empty (nothing to map
    yet), then maps what the writer wrote since; the writer overwrites
    across a page's end within the mapping and closes: the mapping shows
    it, and so do pread and a new open's mapping. Before, such a reader
    read the empty version it had opened for good: pread gave 0 bytes
    at the size fstat said, and its mapping died of SIGBUS (the writer's
    direct_io writes left nothing in the page cache for it to find)."""
    m, made = procs
    p = m.path("empty.bin")
    w = Writer(p)
    made.append(w)
    r = Proc(READER, p)
    made.append(r)
    assert r.ask("size") == "0"
    assert r.ask("pread 100") == sha(b"")
    w.write(0, 12288, "A")
    assert r.ask("size") == "12288"
    assert r.ask("pread 20000") == sha(w.want)
    assert r.ask("map 12288") == "ok"
    assert r.ask("mapped") == sha(w.want)
    w.write(4000, 200, "B")            # across a page's end
    assert r.ask("mapped") == sha(w.want), "a stale mapping"
    w.close()
    assert r.ask("mapped") == sha(w.want)
    assert r.ask("pread 20000") == sha(w.want)
    r2 = Proc(READER, p)
    made.append(r2)
    assert r2.ask("newmap 12288") == sha(w.want)


def test_a_reader_takes_no_lock_once_nobody_writes(store, tmp_path,
                                                   monkeypatch):
    """A reader opened after the create reads the writer's version as it
    grows (under the file's lock); once the writer has closed and nobody
    has the file open for writing, it reads the committed version without
    the lock, as a reader opened then would: its reads run in parallel
    and, on a remote mount, lend the block cache's memory (review s18
    LOW-1: it read under the lock for good). The mount's test hook
    SPEECHFS_TEST_HOLD_BASE keeps a second writer's base copy waiting on
    a FIFO with the file's lock held; meanwhile the reader reads bytes it
    has not read yet, and gets them (the old code waited for the lock:
    no answer). Released, the second writer commits its byte on its base,
    and a new open reads that."""
    fifo = tmp_path / "hold"
    os.mkfifo(fifo)
    monkeypatch.setenv("SPEECHFS_TEST_HOLD_BASE", str(fifo))
    d, _, users = store
    m = Mount(d, users[0])
    made = []
    wfd = -1
    try:
        p = m.path("follow.bin")
        w = Writer(p)
        made.append(w)
        r = Proc(READER, p)
        made.append(r)
        w.write(0, 4 << 20, "A")
        w.write(4 << 20, 4 << 20, "B")
        w.close()
        assert r.ask("size") == str(8 << 20)
        assert r.ask("at 0 4096") == sha(w.want[:4096])
        w2 = Writer(p, "base")
        made.append(w2)
        w2.tell("w 0 1 C")          # held in its base copy: no answer yet
        wfd = fifo_held(fifo, 120)
        assert wfd >= 0, "the base copy was never held"
        at = 6 << 20
        assert r.ask("at %d 65536" % at) == sha(w.want[at:at + 65536])
        assert w2.p.poll() is None  # still held
        os.write(wfd, b"go")
        assert w2.said("the held write") == "ok"
        w2.close()
        want = bytearray(w.want)
        want[0:1] = b"C"
        r2 = Proc(READER, p)
        made.append(r2)
        assert r2.ask("pread %d" % (9 << 20)) == sha(want)
    finally:
        if wfd >= 0:
            os.close(wfd)       # a held mount goes on
        for q in made:
            q.end()
        print(m.output())
        m.stop()
