"""A daemon that is paused (SIGSTOP and SIGCONT: job control, a cgroup
freezer, a debugger attaching) while it sends file bodies must finish
every one of them.

libmicrohttpd 0.9.75 sends a local blob with sendfile() and, when
sendfile() returns less than asked, takes the socket for full: it waits
for epoll's next "writable" edge before it sends again. A stop signal
cuts sendfile() short with the socket's buffer far from full, so no such
edge ever comes: the download hung for ever, with the daemon idle (seen
in tests/e2e/test_fs_remote_stall.py: a remote mount's block fetches
never answered after the server was stopped and continued).

Here a few clients download a file's content while the test stops and
continues the daemon again and again (paced by the bytes received, no
sleeps; each stop waited for until every thread of the daemon is
stopped); the file's pages are dropped from the page cache first, so
the daemon's sendfile() waits for the disk, where the stop finds it.
Every download must end with exactly the file's bytes."""
import hashlib
import os
import pathlib
import signal
import threading
import time

import requests

from fsutil import sigstop

SIZE = 24 << 20
CLIENTS = 6
ROUNDS = 6
STALL = 30      # seconds a download may go without a byte: hung


def blob_path(store, sha):
    found = list(pathlib.Path(store, "blobs").glob("*/%s/%s"
                                                    % (sha[:2], sha)))
    assert len(found) == 1, found
    return found[0]


def uncache(path):
    """Drop the file's pages from the page cache (clean pages only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


class Download(threading.Thread):
    """GET of [start, start+length) of url; progress in .got (bytes)."""

    def __init__(self, url, key, start, length):
        super().__init__(daemon=True)
        self.url, self.key = url, key
        self.start_, self.length = start, length
        self.got = 0
        self.sha = None
        self.error = None

    def run(self):
        h = hashlib.sha256()
        try:
            with requests.get(
                    self.url, stream=True, timeout=(STALL, STALL),
                    headers={"X-API-Key": self.key,
                             "Range": "bytes=%d-%d" % (
                                 self.start_,
                                 self.start_ + self.length - 1)}) as r:
                assert r.status_code == 206, r.status_code
                for chunk in r.iter_content(65536):
                    h.update(chunk)
                    self.got += len(chunk)
            self.sha = h.hexdigest()
        except Exception as e:  # shown by the test's assertion
            self.error = repr(e)


def test_downloads_end_though_the_daemon_is_paused(sfsd_factory):
    c = sfsd_factory({"http.max_upload_bytes": str(SIZE),
                      "http.connection_timeout": "600"})
    data = os.urandom(SIZE)
    f = c.new_file(data=data)
    blob = blob_path(c.store, f["sha256"])
    url = c.api + "/" + f["id"] + "/content"
    part = SIZE // CLIENTS
    proc = c.daemon.proc
    stops = 0
    for rnd in range(ROUNDS):
        uncache(blob)
        ds = [Download(url, c.keys["alice"], i * part, part)
              for i in range(CLIENTS)]
        for d in ds:
            d.start()
        try:
            # a stop each time the clients got another 256 KiB, while
            # any download is still under way
            seen = 0
            while any(d.is_alive() for d in ds):
                deadline = time.monotonic() + STALL
                while (sum(d.got for d in ds) < seen + (256 << 10) and
                       any(d.is_alive() for d in ds) and
                       time.monotonic() < deadline):
                    time.sleep(0.001)  # a poll of the counters
                got = sum(d.got for d in ds)
                assert got > seen or not any(d.is_alive() for d in ds), \
                    "round %d: no byte for %d s after %d stops: %r" % (
                        rnd, STALL, stops,
                        [(d.got, d.length) for d in ds])
                seen = got
                sigstop(proc, STALL)
                proc.send_signal(signal.SIGCONT)
                stops += 1
        finally:
            proc.send_signal(signal.SIGCONT)
            for d in ds:
                d.join(STALL + 10)
        for i, d in enumerate(ds):
            assert d.error is None and d.sha == hashlib.sha256(
                data[i * part:(i + 1) * part]).hexdigest(), \
                (rnd, i, d.error, d.got)
    assert stops >= ROUNDS
    assert c.get("/healthz", who=None).status_code == 200
