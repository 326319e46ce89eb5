"""The remote mount when its server goes away (issue 14, Faults): a real
speechfsd on 127.0.0.1, killed with SIGKILL (or stopped with SIGSTOP)
while the mount reads a large file slowly or uploads one, then started
again on the same port. The mount never hangs: a call in flight fails
with EIO (or ETIMEDOUT) within its timeout; content already in the block
cache is still read; the mount answers again once the server is back;
a close() whose upload was cut says so and the server keeps the old
content, which the mount then shows; the mount unmounts cleanly and
exits 0 (no stale mount)."""
import errno
import hashlib
import os
import pathlib
import signal
import threading

import pytest
import requests

from fsutil import (admin, cache_bytes, eventually, remote,  # noqa: F401
                    sha256_file, sigstop, store)
from test_fs_remote import RemoteMount
from test_fs_remote_mount import BasicAuthFront

FILES = "/api/v1/speech-services/files"
FAILED = (errno.EIO, errno.ETIMEDOUT)


def upload(dm, key, data, name, path="/"):
    r = requests.post(dm.base + FILES, headers={"X-API-Key": key},
                      files={"file": (name + ".bin", data)},
                      data={"name": name, "path": path}, timeout=120)
    assert r.status_code in (200, 201), r.text
    return r.json()


def server_sha(dm, key, fid):
    r = requests.get(dm.base + FILES + "/" + fid,
                     headers={"X-API-Key": key}, timeout=30)
    assert r.ok, r.text
    return r.json()["sha256"]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def drop_pages(path):
    """Drop the kernel's cached pages of path, so that a read goes to
    the mount (and its block cache) again."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class Background:
    """fn() on a thread: its result or its exception."""

    def __init__(self, fn):
        self.result = self.error = None
        self.t = threading.Thread(target=self.run, args=(fn,), daemon=True)
        self.t.start()

    def run(self, fn):
        try:
            self.result = fn()
        except BaseException as e:      # noqa: BLE001
            self.error = e

    def wait(self, timeout):
        self.t.join(timeout)
        assert not self.t.is_alive(), "the call hangs"
        return self


def answers(missing):
    """Whether the server answers again: a stat of a name it does not
    hold fails with ENOENT (its answer), not with a timeout or EIO.
    (The tests resume a stopped daemon with Popen.send_signal, not
    os.kill of its pid: it signals nothing once the child is reaped.)"""
    try:
        os.stat(missing)
    except FileNotFoundError:
        return True
    except OSError:
        pass
    return False


def upload_in_flight(port):
    """Bytes waiting unread on speechfsd's end of a connection from the
    mount (/proc/net/tcp): the mount is sending them, the daemon is not
    taking them."""
    best = 0
    for line in pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        local, state, queues = f[1], f[3], f[4]
        if int(local.split(":")[1], 16) == port and state == "01":
            best = max(best, int(queues.split(":")[1], 16))
    return best


def test_killed_mid_read(remote):
    """SIGKILL while a large file is read slowly: the read fails with
    EIO, the blocks already fetched are still read, a name never seen
    fails at once, and after the restart on the same port the whole file
    reads right (sha256 of the server's)."""
    dm, key, d, alice = remote
    big = os.urandom(96 << 20)
    f = upload(dm, key, big, "big")
    # 2 MB/s per transfer: a 4 MiB block takes 2 s to come
    admin("user", "rate", "--store", str(d), "--id", alice,
          "--download-bps", "2000000")
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        p = m.path("big.bin")
        got = [0]

        def read():
            with open(p, "rb") as r:
                while True:
                    b = r.read(1 << 20)
                    if not b:
                        return got[0]
                    got[0] += len(b)
        bg = Background(read)
        assert eventually(lambda: got[0] >= 4 << 20 or bg.error, 120)
        assert bg.error is None, bg.error
        assert got[0] < len(big), "read whole before the kill"
        dm.kill()
        bg.wait(120)
        assert isinstance(bg.error, OSError), bg.result
        assert bg.error.errno in FAILED, bg.error
        assert "does not answer" in m.output()
        # what the cache holds is still read, by a new open too
        assert eventually(lambda: cache_bytes(m.cache) >= 4 << 20)
        drop_pages(p)
        with open(p, "rb") as r:
            assert r.read(4 << 20) == big[:4 << 20]
        # what is not there fails at once, without hanging
        for call in (lambda: os.stat(m.path("never-seen.bin")),
                     lambda: p.read_bytes()):
            bg = Background(call).wait(60)
            assert isinstance(bg.error, OSError), bg.result
            assert bg.error.errno in FAILED, bg.error
        admin("user", "rate", "--store", str(d), "--id", alice,
              "--download-bps", "0")
        dm.start()
        assert server_sha(dm, key, f["id"]) == sha(big)
        drop_pages(p)
        assert sha256_file(p) == sha(big)
        assert eventually(lambda: "answers again" in m.output())
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("never-seen.bin"))
    finally:
        print(m.output())
        m.stop()


def test_killed_mid_write(remote):
    """SIGKILL while close() uploads a large new version: close() fails
    with EIO, the server (started again) still holds the old content and
    the mount shows that, not the bytes it could not send; writing again
    then works and the server holds exactly those bytes."""
    dm, key, _, _ = remote
    old = b"RIFF old content " * 1000
    f = upload(dm, key, old, "song")
    new = os.urandom((64 << 20) + 12345)   # not whole 1 MiB chunks
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        p = m.path("song.bin")
        assert p.read_bytes() == old
        w = open(p, "wb")
        w.write(new)
        w.flush()               # in the mount's stage: nothing sent yet
        sigstop(dm.proc)
        try:
            bg = Background(w.close)
            # the upload is on its way: bytes wait on the daemon's socket
            assert eventually(lambda: upload_in_flight(dm.port) > 0, 60)
        finally:
            dm.kill()
        bg.wait(120)
        assert isinstance(bg.error, OSError), "close() said it wrote"
        assert bg.error.errno in FAILED, bg.error
        # with no server, a new file cannot be made
        bg = Background(lambda: m.path("other.bin").write_bytes(b"x"))
        bg.wait(60)
        assert isinstance(bg.error, OSError), bg.result
        assert bg.error.errno in FAILED, bg.error
        dm.start()
        assert server_sha(dm, key, f["id"]) == sha(old)
        assert eventually(lambda: p.read_bytes() == old)

        # at once, closed right after the last write: no retry (the
        # upload once raced the stage's writer thread, 1 run in 20)
        p.write_bytes(new)
        assert server_sha(dm, key, f["id"]) == sha(new)
        drop_pages(p)
        assert sha256_file(p) == sha(new)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_large_write_closed_at_once(remote):
    """Files written in order past the stage's pipeline threshold (a few
    MiB), their sizes not whole 1 MiB chunks, closed right after the
    last write: close() returns once the server holds every byte. The
    upload used to start while the stage's writer thread was still
    appending: the tail never came (a short file, close() said it wrote)
    or the server waited for bytes that never came until its idle
    timeout (EIO after 30 s)."""
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        for n in (9 << 20) + 12345, (40 << 20) + 1, 5 << 20:
            data = os.urandom(n)
            p = m.path("in-order-%d.bin" % n)
            with open(p, "wb") as f:
                for off in range(0, n, 1 << 20):
                    f.write(data[off:off + (1 << 20)])
            r = requests.get(dm.base + FILES, headers={"X-API-Key": key},
                             params={"name": "in-order-%d" % n}, timeout=30)
            (g,) = r.json()["files"]
            assert (g["size"], g["sha256"]) == (n, sha(data))
            assert os.stat(p).st_size == n
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_stalled_server_times_out(remote):
    """A server that takes connections but answers nothing (SIGSTOP):
    each call that must ask it (here a directory not listed yet) fails
    after the mount's timeout instead of hanging, a file read before is
    still read from the cache, and once the server goes on the mount
    answers again."""
    dm, key, _, _ = remote
    data = os.urandom(5 << 20)
    upload(dm, key, data, "cached")
    upload(dm, key, b"x", "x", "/elsewhere/")
    m = RemoteMount(dm.base, key, "-o", "timeout=5")
    try:
        p = m.path("cached.bin")
        assert p.read_bytes() == data
        assert eventually(lambda: cache_bytes(m.cache) >= len(data))
        sigstop(dm.proc)
        try:
            bg = Background(lambda: os.stat(m.path("elsewhere",
                                                   "unknown.bin")))
            bg.wait(90)
            assert isinstance(bg.error, OSError), bg.result
            assert bg.error.errno in FAILED, bg.error
            drop_pages(p)
            bg = Background(p.read_bytes).wait(90)
            assert bg.error is None and bg.result == data, bg.error
        finally:
            dm.proc.send_signal(signal.SIGCONT)
        assert eventually(lambda: answers(m.path("elsewhere", "unknown.bin")),
                          60)

        def write():
            try:
                m.path("after.bin").write_bytes(b"RIFF after")
                return True
            except OSError as e:    # a server slow to commit: again
                assert e.errno in FAILED, e
                return False
        assert eventually(write, 120)
        r = requests.get(dm.base + FILES, headers={"X-API-Key": key},
                         params={"name": "after"}, timeout=30)
        assert [x["size"] for x in r.json()["files"]] == [10]
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_stalled_server_is_not_said_to_answer(remote):
    """A server that takes connections but answers nothing (SIGSTOP: the
    kernel completes the handshake from the listen backlog): the mount
    logs that it does not answer, and never that it answers again while
    nothing answers (a connection made is no answer; 7f3f3eb said so at
    each request's connect and cleared the down state the offline answers
    go by). A directory listed before still lists meanwhile, and once the
    server goes on the mount says it answers again."""
    dm, key, _, _ = remote
    for i in range(4):
        upload(dm, key, b"RIFF" + os.urandom(100000), "f%d" % i)
    m = RemoteMount(dm.base, key, "-o", "timeout=2")
    try:
        names = sorted(os.listdir(m.dir))
        assert "f0.bin" in names and "f3.bin" in names, names
        sigstop(dm.proc)
        try:
            for i in range(4):      # blocks never cached: the server
                bg = Background(m.path("f%d.bin" % i).read_bytes)
                bg.wait(60)
                assert isinstance(bg.error, OSError), bg.result
                assert bg.error.errno in FAILED, bg.error
            bg = Background(lambda: sorted(os.listdir(m.dir))).wait(60)
            assert bg.error is None and bg.result == names, bg.error
            out = m.output()
            assert "does not answer" in out, out
            assert "answers again" not in out, out
        finally:
            dm.proc.send_signal(signal.SIGCONT)
        assert eventually(lambda: answers(m.path("unknown", "x.bin")), 60)
        assert eventually(lambda: "answers again" in m.output(), 30)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def failed(call):
    """The errno call fails with (on a thread: it must not hang), or None
    when it succeeds."""
    bg = Background(call).wait(60)
    return bg.error.errno if isinstance(bg.error, OSError) else bg.error


def test_killed_server_lists_what_was_listed(remote):
    """While the server is down (killed), a directory listed before lists
    as it was last seen (the mount's cache of directories, as rclone and
    sshfs answer from theirs), with its files' sizes; what the mount never
    saw (a directory never listed, a name not in a listing) fails with
    EIO, not ENOENT (it may well exist), and so do writes. Once the server
    is back, listings are the server's again. (Before, every listing
    failed with EIO once the change feed had stopped.)"""
    dm, key, _, _ = remote
    for i in range(3):
        upload(dm, key, b"RIFF" + os.urandom(1000 + i), "f%d" % i)
    for i in range(2):
        upload(dm, key, b"x" * (10 + i), "a%d" % i, "/album/")
    upload(dm, key, b"o", "o", "/other/")
    m = RemoteMount(dm.base, key, "-o", "timeout=5")
    try:
        root = sorted(os.listdir(m.dir))
        album = sorted(os.listdir(m.path("album")))
        assert [n for n in root if n[0] != "."] == \
            ["album", "f0.bin", "f1.bin", "f2.bin", "other"], root
        assert album == ["a0.bin", "a1.bin"], album
        dm.kill()
        # the change feed saw the server go (and its listings then went)
        assert eventually(lambda: "change feed:" in m.output(), 60)
        bg = Background(lambda: sorted(os.listdir(m.dir))).wait(60)
        assert bg.error is None and bg.result == root, bg.error
        bg = Background(lambda: sorted(os.listdir(m.path("album"))))
        bg.wait(60)
        assert bg.error is None and bg.result == album, bg.error
        assert [os.stat(m.path("album", n)).st_size for n in album] == \
            [10, 11]
        assert os.path.isdir(m.path("other"))
        # never seen: not known to be absent
        assert failed(lambda: os.listdir(m.path("other"))) in FAILED
        assert failed(lambda: os.stat(m.path("album", "a9.bin"))) in FAILED
        assert failed(lambda: os.listdir(m.path(".trash"))) in FAILED
        # writes fail
        assert failed(lambda: m.path("album", "new.bin").write_bytes(
            b"new")) in FAILED
        assert failed(lambda: os.mkdir(m.path("album", "sub"))) in FAILED
        assert failed(lambda: os.unlink(m.path("album", "a0.bin"))) \
            in FAILED
        assert failed(lambda: os.setxattr(m.path("album", "a1.bin"),
                                          "user.x", b"1")) in FAILED
        dm.start()
        assert eventually(lambda: answers(m.path("album", "a9.bin")), 60)
        upload(dm, key, b"late", "late", "/album/")
        assert eventually(lambda: sorted(os.listdir(m.path("album"))) ==
                          ["a0.bin", "a1.bin", "late.bin"], 30)
        assert sorted(os.listdir(m.path("other"))) == ["o.bin"]
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_killed_server_lists_own_directory_changes(remote):
    """A directory listed before lists, while the server is down, with
    this mount's own directory changes made since (the change feed never
    tells a mount of its own): a directory removed or renamed away is
    gone from its parent's listing and does not stat, one renamed in or
    made shows (a made one lists empty). (Before, the parent listed as
    the server last answered: a removed directory showed again.)"""
    dm, key, _, _ = remote
    upload(dm, key, b"k", "k", "/album/keep/")
    upload(dm, key, b"m", "m", "/album/moved/")
    upload(dm, key, b"o", "o", "/other/")
    m = RemoteMount(dm.base, key, "-o", "timeout=5")
    try:
        os.mkdir(m.path("album", "gone"))
        assert sorted(os.listdir(m.path("album"))) == \
            ["gone", "keep", "moved"]
        assert sorted(os.listdir(m.path("other"))) == ["o.bin"]
        os.mkdir(m.path("album", "made"))
        os.rmdir(m.path("album", "gone"))
        os.rename(m.path("album", "keep"), m.path("album", "kept"))
        os.rename(m.path("album", "moved"), m.path("other", "moved"))
        dm.kill()
        assert eventually(lambda: "change feed:" in m.output(), 60)
        bg = Background(lambda: sorted(os.listdir(m.path("album"))))
        bg.wait(60)
        assert bg.error is None and bg.result == ["kept", "made"], \
            (bg.error, bg.result)
        bg = Background(lambda: sorted(os.listdir(m.path("other"))))
        bg.wait(60)
        assert bg.error is None and bg.result == ["moved", "o.bin"], \
            (bg.error, bg.result)
        # not there (a file of that name is not known to be absent: EIO)
        for gone in ("gone", "keep", "moved"):
            assert failed(lambda: os.stat(m.path("album", gone))) in \
                (errno.ENOENT,) + FAILED, gone
        for there in (("album", "kept"), ("album", "made"),
                      ("other", "moved")):
            bg = Background(lambda: os.path.isdir(m.path(*there)))
            assert bg.wait(60).result is True, there
        bg = Background(lambda: os.listdir(m.path("album", "made")))
        assert bg.wait(60).error is None and bg.result == [], bg.error
        dm.start()
        assert eventually(lambda: answers(m.path("album", "a9.bin")), 60)
        assert sorted(os.listdir(m.path("album"))) == ["kept", "made"]
        assert sorted(os.listdir(m.path("other", "moved"))) == ["m.bin"]
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_gateway_error_is_no_answer(remote):
    """Behind a reverse proxy, a server gone shows as the proxy's 502
    (its own page, not our error body): the mount takes it as no answer
    from the server, as when it cannot be reached: it says it does not
    answer, lists what it listed before, and answers again once the
    server is back. (Before, the 502 was an answer: the offline state
    never started and every listing failed with EIO.)"""
    dm, key, _, _ = remote
    for i in range(2):
        upload(dm, key, b"x" * (10 + i), "a%d" % i, "/album/")
    front = BasicAuthFront(dm.base, gateway=True)
    m = None
    try:
        m = RemoteMount("http://127.0.0.1:%d" % front.port, key, "-o",
                        "timeout=5")
        album = sorted(os.listdir(m.path("album")))
        assert album == ["a0.bin", "a1.bin"], album
        dm.kill()
        assert eventually(lambda: "does not answer (HTTP 502 from a "
                          "gateway)" in m.output(), 60)
        bg = Background(lambda: sorted(os.listdir(m.path("album"))))
        bg.wait(60)
        assert bg.error is None and bg.result == album, bg.error
        assert failed(lambda: os.stat(m.path("album", "a9.bin"))) in FAILED
        dm.start()
        assert eventually(lambda: answers(m.path("album", "a9.bin")), 60)
        assert eventually(lambda: "answers again" in m.output(), 30)
    finally:
        if m:
            print(m.output())       # shown when the test fails
            m.stop()
        front.close()
