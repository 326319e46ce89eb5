"""A remote mount's fetchers (core/blockcache.c, eight of them): readers
in order each keep up to three 16 MiB read-ahead ranges going, and one
fetcher is left to reads that wait for their own block (a seek, another
file's first read). A real speechfsd behind a Proxy that holds the
read-ahead ranges of some files (the server slow to answer them), and a
real remote mount."""
import os
import subprocess
import sys
import time

from fsutil import eventually, line_of, store  # noqa: F401
from test_fs_remote_faults import upload

MIB = 1 << 20
BLOCK = 4 * MIB
SIZE = 9 * BLOCK + 1  # blocks 0-9: two runs ahead of block 0, then more

SEEKER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
print("open", flush=True)
got = os.pread(fd, 4096, int(sys.argv[2]))
print("read %d" % len(got), flush=True)
"""


def steady(count, at_least):
    """Once count() is at least at_least and has not moved for a second
    (a sample window: what the fetchers took, they have taken): its
    value, within 60 s."""
    seen = {"n": None, "t": 0.0}

    def still():
        n = count()
        if n < at_least or n != seen["n"]:
            seen["n"], seen["t"] = n, time.time()
            return None
        return n if time.time() - seen["t"] >= 1 else None
    return eventually(still, timeout=60)


def test_a_seek_is_served_while_readers_in_order_are_held(store):  # noqa
    """Four readers in order of four files, whose ranges of more than a
    block the server holds (their read-ahead's runs: two or three each,
    more than the eight fetchers), and then a read of 4 KiB in the middle
    of a fifth file: it is answered while they are still held. Before,
    the held ranges took all eight fetchers, and the seek waited for one
    (here the mount's -o timeout of 600 s; perfread's reviewer remark,
    s24: with 16 MiB runs three or more sequential readers hold all
    fetchers for longer)."""
    from test_fs_remote_lost import proxied
    with proxied(store, "-o", "timeout=600") as (dm, key, px, m):
        procs = []
        try:
            held = [upload(dm, key, os.urandom(SIZE), "r%d" % i)["id"]
                    for i in range(4)]
            upload(dm, key, os.urandom(SIZE), "seek")

            def rule_h(meth, p, headers):
                # a range of more than a block: a run, read-ahead's (a
                # block a reader waits for, even out of order, passes)
                rng = headers.get("Range", "")
                first, _, last = rng.removeprefix("bytes=").partition("-")
                if meth == "GET" and any(i in p for i in held) and \
                        first.isdigit() and last.isdigit() and \
                        int(last) - int(first) >= BLOCK:
                    return "hold"
                return None
            px.rule_h = rule_h
            for i in range(4):
                # O_DIRECT: the kernel's read-ahead of the readers (FUSE
                # background requests, at most 12 under way) would hold
                # the seek's own read-ahead in its queue, the mount unasked
                procs.append(subprocess.Popen(
                    ["dd", "if=%s" % m.path("r%d.bin" % i), "of=/dev/null",
                     "bs=1M", "iflag=direct"], stderr=subprocess.DEVNULL))
            n = steady(lambda: px.fates("hold"), 7)
            assert n, ("the readers' ranges were not held", px.seen)
            s = subprocess.Popen([sys.executable, "-c", SEEKER,
                                  str(m.path("seek.bin")), str(5 * BLOCK)],
                                 stdout=subprocess.PIPE)
            procs.append(s)
            assert line_of(s, 60) == b"open\n"
            got = line_of(s, 60)
            assert got == b"read 4096\n", \
                "a seek waited while %d read-ahead ranges were held" % n
            assert px.fates("hold") == n and not px.go.is_set()
        finally:
            px.go.set()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
            print(m.output())
