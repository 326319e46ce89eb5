"""The remote mount sends a new file's content while it is written
(issue 14, write 1 GiB): a file written in order from its start is
streamed to the server as one `PUT …/files/{id}/content` with a chunked
body while the writes go on, and close() waits for the tail and the
server's answer. A real speechfsd on 127.0.0.1 and a real mount. What
must hold: the server has the bytes before close() (it was streamed);
close() returns only once the server holds exactly the local bytes
(sha256 and size); a writer that turns out of order, or truncates,
cuts the stream off and the server commits nothing of it (one content
version, the right one); a server killed mid-stream makes close() fail
(nothing half-stored reported written) or, back before close(), take
the whole stage; an overwrite keeps the file's id."""
import errno
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from fsutil import (admin, eventually, remote, sha256_file,  # noqa: F401
                    store)
from test_fs_remote import RemoteMount
from test_fs_remote_faults import (FAILED, drop_pages, server_sha, sha,
                                   upload)

FILES = "/api/v1/speech-services/files"
MIB = 1 << 20

# The daemon drops a connection idle for 10 s: a client that cut its
# body off (a stream that turned out of order) is sometimes noticed only
# then (the connection's last bytes unread when the client closed), and
# the tests wait for that request's end.
REMOTE_CONFIG = {"http.connection_timeout": "10"}


def staged_at_server(dm):
    """Bytes in the server's stages now (uploads on their way in, and
    the files of upload sessions: a mount's stream goes in one)."""
    n = 0
    for root, _, files in os.walk(dm.store / "staging"):
        for f in files:
            if f not in ("lock", ".node"):
                try:
                    n += os.stat(os.path.join(root, f)).st_size
                except FileNotFoundError:
                    pass
    return n


def content_puts(dm, fid):
    """The access log's PUTs of fid's content: [(status, aborted)]. A
    request's line is written once it is over, which may come a moment
    after its answer reached the client: callers wait for it."""
    pat = re.compile(r"access: PUT \S*/files/%s/content\S* (\d+) .*?"
                     r"(aborted)?$" % fid)
    return [(int(m.group(1)), bool(m.group(2)))
            for m in map(pat.search, dm.output().splitlines()) if m]


def cut_then_whole(dm, fid):
    """fid's content PUTs: a stream cut off (the server saw its body end
    early: its line comes when it notices), and the whole stage, the
    only content committed (200)."""
    assert eventually(lambda: any(
        aborted for _, aborted in content_puts(dm, fid)), 60), \
        content_puts(dm, fid)
    assert eventually(lambda: [
        s for s, aborted in content_puts(dm, fid)
        if not aborted] == [200]), content_puts(dm, fid)


def creates(dm):
    """The access log's answered creates (POST /files): [status]."""
    pat = re.compile(r"access: POST \S*/files (\d+) ")
    return [int(m.group(1))
            for m in map(pat.search, dm.output().splitlines()) if m]


def the_file(dm, key, name):
    r = requests.get(dm.base + FILES, headers={"X-API-Key": key},
                     params={"name": name}, timeout=30)
    (f,) = r.json()["files"]
    return f


def write_in_order(f, data, step=MIB):
    for off in range(0, len(data), step):
        f.write(data[off:off + step])
        f.flush()


def test_streamed_while_written(remote):
    """Odd sizes written in order in odd steps: the server has most of
    the bytes before close(); after it, exactly these bytes (one PUT,
    answered 200, after the file's create; a file whose writes never
    began past 4 MiB goes whole with its create at close()), and the
    mount reads them back."""
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    made = 0
    try:
        for n, step in ((48 << 20) + 12345, 131072 + 17), \
                       ((24 << 20) + 1, MIB), (4 * MIB + 4095, 65536):
            data = os.urandom(n)
            p = m.path("seq-%d.bin" % n)
            with open(p, "wb") as f:
                write_in_order(f, data[:n - 2 * MIB], step)
                if n > 8 * MIB:
                    # on its way while the writer still writes
                    assert eventually(
                        lambda: staged_at_server(dm) >= n - 10 * MIB, 60)
                write_in_order(f, data[n - 2 * MIB:], step)
            g = the_file(dm, key, "seq-%d" % n)
            assert (g["size"], g["sha256"]) == (n, sha(data))
            made += 1
            # one create each (the file made empty first when streamed)
            assert eventually(lambda: creates(dm) == [201] * made), \
                creates(dm)
            if n - step >= 4 * MIB:
                # a write began past 4 MiB: streamed
                assert eventually(
                    lambda: content_puts(dm, g["id"]) == [(200, False)]), \
                    content_puts(dm, g["id"])
            else:
                # none did: a new file goes with its create at close()
                assert content_puts(dm, g["id"]) == []
            drop_pages(p)
            assert sha256_file(p) == sha(data)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_out_of_order_cuts_the_stream(remote):
    """A writer that goes back (a pwrite behind its end) or truncates
    after the stream began: the stream is cut off, the server commits
    none of it, and close() sends the whole stage: the server holds
    exactly the local bytes, as one content version."""
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        for how in "pwrite", "truncate":
            data = bytearray(os.urandom((20 << 20) + 333))
            p = m.path("turn-%s.bin" % how)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            try:
                for off in range(0, 16 << 20, MIB):
                    os.write(fd, data[off:off + MIB])
                assert eventually(lambda: staged_at_server(dm) >= 8 * MIB,
                                  60)
                if how == "pwrite":
                    back = b"back" * 1000
                    os.pwrite(fd, back, 3 * MIB + 7)
                    data[3 * MIB + 7:3 * MIB + 7 + len(back)] = back
                    os.write(fd, data[16 << 20:])
                else:
                    os.ftruncate(fd, 10 * MIB + 1)
                    del data[10 * MIB + 1:]
                    data += os.urandom(5 * MIB)
                    os.lseek(fd, 10 * MIB + 1, os.SEEK_SET)
                    os.write(fd, data[10 * MIB + 1:])
            finally:
                os.close(fd)
            g = the_file(dm, key, "turn-%s" % how)
            assert (g["size"], g["sha256"]) == (len(data), sha(data))
            cut_then_whole(dm, g["id"])
            drop_pages(p)
            assert sha256_file(p) == sha(data)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_overwrite_streamed_keeps_the_id(remote):
    """Overwriting a file (O_TRUNC) streams its new content to the same
    file id; the server holds the new bytes."""
    dm, key, _, _ = remote
    f = upload(dm, key, b"RIFF old " * 100, "keep")
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        data = os.urandom((30 << 20) + 999)
        p = m.path("keep.bin")
        with open(p, "wb") as w:
            write_in_order(w, data)
        g = the_file(dm, key, "keep")
        assert g["id"] == f["id"]
        assert (g["size"], g["sha256"]) == (len(data), sha(data))
        assert eventually(
            lambda: content_puts(dm, f["id"]) == [(200, False)]), \
            content_puts(dm, f["id"])
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


class Writer:
    """A file written by a process of its own, step by step: the test
    starts and kills servers meanwhile, and a fork of the test with the
    file open would close its copy of the descriptor at exec (a FUSE
    flush: a commit of the writer's version before its close())."""

    def __init__(self, path):
        self.p = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def write(self, data, at=None):
        """data written at the end, or at offset `at` (a pwrite)."""
        head = b"%d\n" % len(data) if at is None else \
            b"at %d %d\n" % (at, len(data))
        self.p.stdin.write(head + data)
        self.p.stdin.flush()
        assert self.p.stdout.readline() == b"ok\n"

    def close(self):
        """0, or close()'s errno."""
        self.p.stdin.write(b"close\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        self.p.wait(120)
        return int(out)


WRITER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
inp = sys.stdin.buffer
while True:
    line = inp.readline()
    if line == b"close\n":
        try:
            os.close(fd)
            print(0, flush=True)
        except OSError as e:
            print(e.errno, flush=True)
        break
    at = None
    if line.startswith(b"at "):
        at, n = map(int, line.split()[1:])
    else:
        n = int(line)
    while n:
        b = inp.read(min(n, 1 << 20))
        n -= len(b)
        if at is None:
            os.write(fd, b)
        else:
            at += os.pwrite(fd, b, at)
    print("ok", flush=True)
"""


def test_server_killed_mid_stream(remote):
    """The server killed while the writer writes (the stream in
    flight): with the server still gone at close(), close() fails and
    the server (started again) holds the old content; started again
    before close(), close() resumes the stream from the server's durable
    offset (its upload session; the whole stage from a server without
    them) and the server holds exactly the local bytes."""
    dm, key, _, _ = remote
    old = b"RIFF old " * 100
    f = upload(dm, key, old, "killed")
    m = RemoteMount(dm.base, key, "-o", "timeout=10")
    try:
        p = m.path("killed.bin")
        for back_before_close in False, True:
            data = os.urandom((24 << 20) + 4321)
            w = Writer(p)
            try:
                w.write(data[:16 << 20])
                assert eventually(lambda: staged_at_server(dm) >= 4 * MIB,
                                  60)
                dm.kill()
                w.write(data[16 << 20:])
                if back_before_close:
                    dm.start()
            finally:
                err = w.close()
            if back_before_close:
                assert err == 0, os.strerror(err)
                assert server_sha(dm, key, f["id"]) == sha(data)
                drop_pages(p)
                assert sha256_file(p) == sha(data)
            else:
                assert err in FAILED, "close() said: %s" % os.strerror(err)
                dm.start()
                assert server_sha(dm, key, f["id"]) == sha(old)
                assert eventually(lambda: p.read_bytes() == old)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


PROBE = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT)
os.write(fd, b"x" * 100)
os.fstat(fd)
os.stat(sys.argv[2])
print("done", flush=True)
os.close(fd)
"""


def wchar(pid):
    """Bytes process pid has written so far (write(2) and the like)."""
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise AssertionError("no wchar in /proc/%d/io" % pid)


@pytest.mark.parametrize("stop_at", [8 << 20, 1 << 20],
                         ids=["mid-stream", "before-the-create"])
def test_a_stalled_server_holds_no_other_request(remote, stop_at):
    """The server stops (SIGSTOP) while the writer has 32 MiB or more
    to write, and the mount's timeout (600 s) is far away: mid-stream,
    or before the stream began (the new file not created on the server
    yet: the stream creates it first). The stream sends from the
    stage's memory while the server keeps up, but the writer never
    waits for the server: a FUSE write is answered by the mount's
    reading thread with the open file's lock held, so a writer held by
    the network would hold every request of the mount (review s13
    finding 1). So, with the server still stopped: another process
    creates and writes a small file (no server needed: the create waits
    for close) and stats the file being written, and the writer gets
    through all its writes. The server back, close() returns once the
    server holds exactly the bytes, the small file's too."""
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=600")
    stopped = False
    probe = None
    try:
        p = m.path("stalled.bin")
        data = os.urandom((40 << 20) + 999)
        w = Writer(p)
        try:
            w.write(data[:stop_at])
            if stop_at > 4 * MIB:
                assert eventually(
                    lambda: staged_at_server(dm) >= 4 * MIB, 60)
            else:
                # the listing the probe's lookup uses, while it can
                assert not m.path("probe.txt").exists()
            dm.proc.send_signal(signal.SIGSTOP)
            stopped = True
            rest = threading.Thread(target=w.write, args=(data[stop_at:],),
                                    daemon=True)
            rest.start()
            # the probe goes once the writer is through, or once it is
            # held: its writes stopped for 10 polls in a row
            seen = []

            def through_or_held():
                seen.append(wchar(w.p.pid))
                return not rest.is_alive() or (
                    len(seen) > 10 and seen[-11] == seen[-1])
            assert eventually(through_or_held, 120)
            probe = subprocess.Popen(
                [sys.executable, "-c", PROBE, str(m.path("probe.txt")),
                 str(p)], stdout=subprocess.PIPE)
            said = []
            th = threading.Thread(
                target=lambda: said.append(probe.stdout.readline()),
                daemon=True)
            th.start()
            th.join(120)
            assert said == [b"done\n"], \
                "the probe was held behind the stalled stream"
            rest.join(120)
            assert not rest.is_alive(), "the writer is held"
            assert dm.proc.poll() is None  # still stopped, not gone
        finally:
            if stopped:
                dm.proc.send_signal(signal.SIGCONT)
            err = w.close()
        assert err == 0, os.strerror(err)
        assert probe.wait(120) == 0
        f = the_file(dm, key, "stalled")
        assert f["size"] == len(data)
        assert server_sha(dm, key, f["id"]) == sha(data)
        assert the_file(dm, key, "probe")["size"] == 100
        drop_pages(p)
        assert sha256_file(p) == sha(data)
    finally:
        if probe and probe.poll() is None:
            probe.kill()
            probe.wait()
        print(m.output())       # shown when the test fails
        m.stop()


def test_a_stalled_server_lets_the_writer_go(remote):
    """The server stops reading mid-stream (SIGSTOP) for longer than the
    mount's timeout: the writes go on to the end meanwhile (the writer
    never waits for the stream), and the stream gives up. The server
    back, close() sends the whole stage and the server holds exactly the
    local bytes."""
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=3")
    stopped = False
    try:
        p = m.path("stalled.bin")
        data = os.urandom((40 << 20) + 999)
        w = Writer(p)
        try:
            w.write(data[:8 << 20])
            assert eventually(lambda: staged_at_server(dm) >= 4 * MIB, 60)
            dm.proc.send_signal(signal.SIGSTOP)
            stopped = True
            rest = threading.Thread(target=w.write, args=(data[8 << 20:],),
                                    daemon=True)
            rest.start()
            rest.join(120)
            assert not rest.is_alive(), "the writer is held"
            # the stream gives up (no progress for the timeout)
            assert eventually(lambda: "does not answer" in m.output(), 60)
        finally:
            if stopped:
                dm.proc.send_signal(signal.SIGCONT)
            err = w.close()
        assert err == 0, os.strerror(err)
        f = the_file(dm, key, "stalled")
        assert f["size"] == len(data)
        assert server_sha(dm, key, f["id"]) == sha(data)
        drop_pages(p)
        assert sha256_file(p) == sha(data)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_quota_refusal_of_a_stream(remote, store):
    """The server refuses the streamed content (over the tenant's
    quota): close() says EDQUOT and the old content stays."""
    dm, key, d, _ = remote
    tenant = store[1]
    old = b"RIFF old " * 100
    f = upload(dm, key, old, "quota")
    admin("tenant", "quota", "--store", str(d), "--id", tenant,
          "--max-bytes", str(16 << 20))
    m = RemoteMount(dm.base, key, "-o", "timeout=30")
    try:
        w = Writer(m.path("quota.bin"))
        try:
            w.write(os.urandom(20 << 20))
        finally:
            err = w.close()
        assert err == errno.EDQUOT, "close() said: %s" % os.strerror(err)
        assert server_sha(dm, key, f["id"]) == sha(old)
        assert eventually(
            lambda: [s for s, _ in content_puts(dm, f["id"])] == [413]), \
            content_puts(dm, f["id"])
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_a_failed_flush_is_said_by_close(remote):
    """A child forked while the file is open for writing closes its copy
    of the descriptor (at exec, at exit): a flush, which commits the
    writer's version. With the server gone then, that commit fails; the
    writer's own close() must fail too, even with the server back by
    then: the server never got the bytes."""
    dm, key, _, _ = remote
    old = b"RIFF old " * 100
    f = upload(dm, key, old, "forked")
    m = RemoteMount(dm.base, key, "-o", "timeout=10")
    try:
        p = m.path("forked.bin")
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"RIFF new " * 1000)
            dm.kill()
            # the child's copy closed at its exit: the commit fails
            subprocess.run(["true"], pass_fds=(fd,), check=True)
            dm.start()
        finally:
            with pytest.raises(OSError) as ei:
                os.close(fd)
        assert ei.value.errno in FAILED, ei.value
        assert server_sha(dm, key, f["id"]) == sha(old)
        assert eventually(lambda: p.read_bytes() == old)
        # written again, the handle's new version is committed
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"RIFF again")
        finally:
            os.close(fd)
        assert server_sha(dm, key, f["id"]) == sha(b"RIFF again")
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def conns_to(pid, port):
    """The TCP connections process pid holds to 127.0.0.1:port: {its
    local port: bytes in its send queue}."""
    out = subprocess.run(["ss", "-tnpH", "dst", "127.0.0.1:%d" % port],
                         capture_output=True, text=True,
                         check=True).stdout
    got = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 6 and ("pid=%d," % pid) in f[5]:
            got[int(f[3].rsplit(":", 1)[1])] = int(f[2])
    return got


def test_a_stalled_stream_is_cut_off_at_once(remote):
    """The server stops (SIGSTOP) mid-stream and its socket fills: the
    stream's transfer waits for the socket, not in its source. The
    writer then goes back (a pwrite behind its end: the stage is out of
    order) and closes: close()'s commit cuts the stream off, and the
    cut must reach the transfer there and then (the mount closes the
    stream's connection and goes on to send the stage whole), not at
    the mount's timeout (600 s) when libcurl gives up on the stall
    (review s14 finding 2). The server back, close() returns 0 and the
    server holds exactly the local bytes."""
    dm, key, _, _ = remote
    m = RemoteMount(dm.base, key, "-o", "timeout=600")
    port = int(dm.base.rsplit(":", 1)[1])
    stopped = False
    closing = None
    try:
        p = m.path("cut.bin")
        data = bytearray(os.urandom((40 << 20) + 999))
        w = Writer(p)
        err = []
        try:
            w.write(bytes(data[:8 << 20]))
            assert eventually(lambda: staged_at_server(dm) >= 4 * MIB, 60)
            dm.proc.send_signal(signal.SIGSTOP)
            stopped = True
            w.write(bytes(data[8 << 20:]))
            # the stream's connection: its send queue full, not emptied
            full = {}

            def stream_stuck():
                full.clear()
                full.update({lp: q for lp, q in
                             conns_to(m.proc.pid, port).items()
                             if q >= 64 << 10})
                return len(full) == 1
            assert eventually(stream_stuck, 60), \
                conns_to(m.proc.pid, port)
            (stream_port,) = full
            back = b"back" * 1000
            w.write(back, at=3 * MIB + 7)
            data[3 * MIB + 7:3 * MIB + 7 + len(back)] = back
            closing = threading.Thread(
                target=lambda: err.append(w.close()), daemon=True)
            closing.start()
            t0 = time.monotonic()
            assert eventually(
                lambda: stream_port not in conns_to(m.proc.pid, port),
                60), "the stream's transfer was not cut off"
            print("stream cut off %.2f s after close()" %
                  (time.monotonic() - t0))
            assert closing.is_alive()  # the stage goes whole: it waits
        finally:
            if stopped:
                dm.proc.send_signal(signal.SIGCONT)
            if closing:
                closing.join(120)
            else:
                err.append(w.close())
        assert err == [0], err
        f = the_file(dm, key, "cut")
        assert (f["size"], f["sha256"]) == (len(data), sha(data))
        cut_then_whole(dm, f["id"])
        drop_pages(p)
        assert sha256_file(p) == sha(data)
    finally:
        print(m.output())       # shown when the test fails
        m.stop()
