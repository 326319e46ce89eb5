"""A remote mount's new file whose create's answer was lost (issue 14,
review s11 findings 1-5). A proxy between the mount and speechfsd lets
the server finish a request and then cuts the connection without the
answer (or answers for it, or changes it). The mount must not act on a
guess: a create whose outcome is unknown is asked of the server by the
next call on the file (adopted when the server holds it, with what was
done meanwhile replayed; the call fails while the server cannot be
asked; a call that changes the file first makes the outcome certain by
sending the create again); only the server's own "this id is your
file's" (409 file_id_exists) is taken as such. The mount knows a new
file's final id from creat() (derived from its user id and the idKey it
sends), so nothing is ever renumbered; a server that stopped taking
idKey refuses it, and the close says so. A real speechfsd and real FUSE
mounts."""
import base64
import contextlib
import errno
import http.client
import http.server
import json
import os
import socket
import threading
import time

import pytest
import requests

from fsutil import (SERVER_CONFIG, Server, admin, eventually, store,  # noqa: F401
                    xget)
from test_fs_remote import RemoteMount

API = "/api/v1/speech-services"
FILES = API + "/files"
CRC_HEADER = "X-Speechfs-Content-Crc32c"
FLIP_FROM, FLIP_TO = b"<flip me>", b"<flip mE>"
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length",
       "expect", "proxy-connection", "te", "upgrade", "trailer"}

# The fates a Proxy answers itself: (status, error_type).
ANSWERS = {"conflict": (409, "conflict"), "busy": (409, "upload_busy"),
           "unavailable": (503, "storage_unavailable"),
           "error": (500, "internal_error"), "notfound": (404, "not_found")}


class Proxy:
    """HTTP/1.1 relay to the daemon on 127.0.0.1. `rule(method, path)`
    decides a request's fate: None (relayed), "drop" (relayed, the
    server finishes it, the client's connection closed without the
    answer), "conflict" (answered 409 conflict, a plain one, not
    relayed), "busy" (answered 409 upload_busy, not relayed),
    "unavailable" (answered 503, not relayed), "error" (answered
    500, not relayed), "notfound" (answered 404, not relayed),
    "old_doc" (relayed, the OpenAPI document's idKey renamed to id: an
    older daemon's), "hold" (kept until
    `go` is set, then relayed, its answer lost: a request late on its
    way, which the client has given up on), "late" (kept until `go` is
    set before its body is read, then relayed with its answer: a slow
    server; a body that then turns out cut short is not relayed), "flip"
    (relayed with the
    first FLIP_FROM of its body made FLIP_TO: a byte changed on the way,
    the size kept; its fate is then "flipped" when there was one),
    "flip_old" (the same, the request's X-Speechfs-Content-Crc32c header
    or trailer taken out: a server that does not check it; its fate then
    "flipped_old"),
    "crc_wrong" and "crc_none" (relayed, the answer's
    X-Speechfs-Content-Crc32c changed or taken out), "cut" (a chunked
    body relayed as it comes until `cut` is set, then both connections
    closed: a stream cut on its way; the server keeps what it made
    durable of it), "stream" (a chunked body relayed as it comes, to its
    end, its trailer as a trailer, then the answer; any other relayed as
    None). `seen` lists
    (method, path, fate) in order. Else a chunked body is relayed whole, its
    trailer fields as headers (RFC 9112 7.1.2 lets a recipient that
    removes the chunked coding keep them); `trailers` lists (method,
    path, {name: value}) of those that had any. `rule_h(method, path,
    headers)`, when set, decides instead of rule (a fate by a header too,
    e.g. a GET's Range)."""

    def __init__(self, upstream_port):
        self.rule = lambda m, p: None
        self.rule_h = None
        self.upstream = upstream_port
        self.seen = []
        self.trailers = []
        self.inflight = 0
        self.go = threading.Event()
        self.cut = threading.Event()
        self.mu = threading.Lock()
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def body(self):
                self.trailer = {}
                if self.chunked():
                    out = bytearray()  # linear: a stream of 100s of MiB
                    while True:
                        n = int(self.rfile.readline().split(b";")[0], 16)
                        if n == 0:
                            while True:
                                ln = self.rfile.readline()
                                if ln in (b"\r\n", b""):
                                    break
                                k, _, v = ln.decode().partition(":")
                                self.trailer[k.strip()] = v.strip()
                            return bytes(out)
                        out += self.rfile.read(n)
                        self.rfile.readline()
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def relay(self):
                # the change feed's long poll is always waiting
                n = 0 if "/changes" in self.path else 1
                with proxy.mu:
                    proxy.inflight += n
                try:
                    self.relay1()
                finally:
                    with proxy.mu:
                        proxy.inflight -= n

            def chunked(self):
                return self.headers.get("Transfer-Encoding", "").lower() \
                    == "chunked"

            def send_head(self, c):
                """This request's head to upstream connection c, its body
                to follow chunked."""
                c.putrequest(self.command, self.path, skip_host=True,
                             skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() not in HOP:
                        c.putheader(k, v)
                c.putheader("Transfer-Encoding", "chunked")
                c.endheaders()

            def relay_stream(self):
                """The "stream" fate: chunks relayed as they come, the
                last one and the trailer too, then the answer."""
                c = http.client.HTTPConnection("127.0.0.1", proxy.upstream,
                                               timeout=120)
                try:
                    self.send_head(c)
                    while True:
                        ln = self.rfile.readline()
                        n = int(ln.split(b";")[0], 16)
                        if not n:
                            break
                        c.send(b"%x\r\n%s\r\n" % (n, self.rfile.read(n)))
                        self.rfile.readline()
                    c.send(b"0\r\n")
                    while True:  # the trailer, to its empty line
                        ln = self.rfile.readline()
                        c.send(ln)
                        if ln in (b"\r\n", b""):
                            break
                    r = c.getresponse()
                    answer = r.read()
                finally:
                    c.close()
                self.send_answer(r, answer, None)

            def relay_cut(self):
                """The "cut" fate: chunks relayed until proxy.cut."""
                c = http.client.HTTPConnection("127.0.0.1", proxy.upstream,
                                               timeout=120)
                try:
                    self.send_head(c)
                    while not proxy.cut.is_set():
                        ln = self.rfile.readline()
                        n = int(ln.split(b";")[0], 16)
                        assert n, "the stream ended before its cut"
                        c.send(b"%x\r\n%s\r\n" % (n, self.rfile.read(n)))
                        self.rfile.readline()
                finally:
                    c.close()
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

            def answer_as_it_comes(self, r):
                """Relay upstream's answer r in pieces as they come (a
                content's download, as a proxy streams it)."""
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length",
                                 r.getheader("Content-Length"))
                self.end_headers()
                while True:
                    piece = r.read(1 << 20)
                    if not piece:
                        break
                    self.wfile.write(piece)

            def relay1(self):
                fate = proxy.rule_h(self.command, self.path,
                                    self.headers) if proxy.rule_h \
                    else proxy.rule(self.command, self.path)
                if fate == "stream" and not self.chunked():
                    fate = None
                if fate == "late":
                    with proxy.mu:
                        proxy.seen.append((self.command, self.path, fate))
                    assert proxy.go.wait(120), "a late request never let go"
                    n = int(self.headers.get("Content-Length") or -1)
                    fate = None
                    data = self.body()
                    if n >= 0 and len(data) != n:  # the client cut it
                        self.close_connection = True
                        return
                    return self.relay_data(fate, data)
                if fate in ("cut", "stream"):
                    with proxy.mu:
                        proxy.seen.append((self.command, self.path, fate))
                    return self.relay_cut() if fate == "cut" \
                        else self.relay_stream()
                data = self.body()
                return self.relay_data(fate, data)

            def relay_data(self, fate, data):
                if fate in ("flip", "flip_old"):
                    fate = ("flipped" if fate == "flip" else "flipped_old") \
                        if FLIP_FROM in data else None
                    data = data.replace(FLIP_FROM, FLIP_TO, 1)
                with proxy.mu:
                    proxy.seen.append((self.command, self.path, fate))
                    if self.trailer:
                        proxy.trailers.append((self.command, self.path,
                                               self.trailer))
                if fate in ANSWERS:
                    code, kind = ANSWERS[fate]
                    b = json.dumps({
                        "status_code": code, "error_type": kind,
                        "message": "a " + fate, "validation_errors": [],
                        "request_id": "00000000-0000-4000-8000-000000000001"
                    }).encode()
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(b)))
                    self.end_headers()
                    self.wfile.write(b)
                    return
                if fate == "hold":
                    assert proxy.go.wait(120), "a held request never let go"
                    fate = "drop"
                path = self.path
                c = http.client.HTTPConnection("127.0.0.1", proxy.upstream,
                                               timeout=120)
                try:
                    hdrs = {k: v for k, v in self.headers.items()
                            if k.lower() not in HOP}
                    hdrs.update(self.trailer)
                    if fate == "flipped_old":
                        hdrs = {k: v for k, v in hdrs.items()
                                if k.lower() != CRC_HEADER.lower()}
                    hdrs["Content-Length"] = str(len(data))
                    c.request(self.command, path, body=data, headers=hdrs)
                    r = c.getresponse()
                    if fate is None and self.command == "GET" and \
                            r.getheader("Content-Length"):
                        return self.answer_as_it_comes(r)
                    answer = r.read()
                finally:
                    c.close()
                if fate == "drop":
                    # the server has done it; the client hears nothing
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fate == "old_doc":
                    doc = json.loads(answer)
                    post = doc["paths"][FILES]["post"]
                    for prm in post["parameters"]:
                        if prm["name"] == "idKey":
                            prm["name"] = "id"
                    answer = json.dumps(doc).encode()
                self.send_answer(r, answer, fate)

            def send_answer(self, r, answer, fate):
                """Upstream's answer r (its body `answer`), as the fate
                says."""
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() == CRC_HEADER.lower() and \
                            fate in ("crc_wrong", "crc_none"):
                        if fate == "crc_none":
                            continue
                        # another CRC32C: its first byte's bits turned
                        v = base64.b64encode(bytes(
                            [base64.b64decode(v)[0] ^ 0xFF]) +
                            base64.b64decode(v)[1:]).decode()
                    if k.lower() not in HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay
            do_HEAD = relay

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.base = "http://127.0.0.1:%d" % self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def fates(self, fate):
        with self.mu:
            return sum(1 for s in self.seen if s[2] == fate)

    def settle(self, fate, at_least):
        """Wait until `at_least` requests met `fate` and none has for a
        second with nothing in flight (the mount's release of a closed
        file runs after close() returns)."""
        def quiet():
            n = self.fates(fate)
            if n < at_least or self.inflight:
                quiet.last = None
                return False
            if quiet.last != n:
                quiet.last, quiet.t = n, time.time()
                return False
            return time.time() - quiet.t >= 1
        quiet.last = None
        assert eventually(quiet, timeout=60), (self.inflight, self.seen)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@contextlib.contextmanager
def proxied(store, *opts, rule=None):
    """A speechfsd (no workers), a Proxy to it (its rule set to `rule`
    before the mount starts, when given) and a RemoteMount through it
    with these options: (dm, alice's key, px, m). Held requests are let
    go, the mount, the proxy and the daemon stopped, even on failure."""
    d, tenant, users = store
    dm = Server(d, workers=False)
    px = m = None
    try:
        px = Proxy(dm.port)
        if rule:
            px.rule = rule
        key = dm.key(users[0])
        m = RemoteMount(px.base, key, *opts)
        yield dm, key, px, m
    finally:
        try:
            if px:
                px.go.set()
            if m and not getattr(m, "stopped", False):
                m.stop(check=False)
        finally:
            if px:
                px.stop()
            dm.stop()


@pytest.fixture
def srv(store):
    """(a speechfsd, alice's key, a proxy to it, a mount through it)."""
    with proxied(store, "-o", "timeout=10") as x:
        yield x


def api(dm, key, method, path, **kw):
    kw.setdefault("timeout", 30)
    return requests.request(method, dm.base + path,
                            headers={"X-API-Key": key}, **kw)


def listed(dm, key, path, deleted=False):
    r = api(dm, key, "GET", FILES,
            params={"path": path, "recursive": "false", "size": 100,
                    "isDeleted": "true" if deleted else "false"})
    assert r.status_code == 200, r.text
    return {f["name"]: f for f in r.json()["files"]}


def creates(px):
    with px.mu:
        return sum(1 for m, p, _ in px.seen
                   if m == "POST" and p.startswith(FILES + "?"))


def is_create(m, p):
    return m == "POST" and p.startswith(FILES + "?") and "idKey=" in p


def refused_create(px, m, name, data, fate):
    """Write `name` (a new file) and close it while every create meets
    `fate` at the proxy: close() fails, and the release's try after it
    meets the fate too. Returns close()'s OSError."""
    px.rule = lambda meth, p: fate if is_create(meth, p) else None
    fd = os.open(m.path(name), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    with pytest.raises(OSError) as ei:
        os.close(fd)
    px.settle(fate, 2)
    return ei.value


def lose_create(px, m, name, data):
    """Write `name` and close it while every create's answer and every
    GET of a file is lost: close() fails, the server holds the file."""
    def rule(meth, p):
        if is_create(meth, p) or (meth == "GET" and
                                  p.startswith(FILES + "/")):
            return "drop"
        return None
    px.rule = rule
    fd = os.open(m.path(name), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    with pytest.raises(OSError) as ei:
        os.close(fd)
    assert ei.value.errno in (errno.EIO, errno.ETIMEDOUT), ei.value
    # the release's tries too
    px.settle("drop", 2)


def test_lost_answer_then_unlink_deletes_it(srv):
    """The create's answer lost (the flush's and the release's tries):
    close() fails, the server holds the file. While the server cannot be
    asked, unlink fails (no guess); once it can, unlink deletes the
    file on the server (adopted first), not only in the mount."""
    dm, key, px, m = srv
    lose_create(px, m, "lost.txt", b"twelve bytes")
    have = listed(dm, key, "/")
    assert have["lost"]["size"] == 12
    with pytest.raises(OSError) as ei:
        os.unlink(m.path("lost.txt"))
    assert ei.value.errno in (errno.EIO, errno.ETIMEDOUT), ei.value
    assert "lost" in listed(dm, key, "/")
    px.rule = lambda meth, p: None
    os.unlink(m.path("lost.txt"))
    assert "lost" not in listed(dm, key, "/")
    assert "lost" in listed(dm, key, "/", deleted=True)
    assert "lost.txt" not in os.listdir(m.dir)


def test_late_create_does_not_undo_an_unlink(held):
    """A create that the mount gave up on (its timeout) while it waited
    on its way: the server then says 404 for the id, and the file is
    unlinked. The late create reaching the server afterwards must not
    make the file live again: the unlink made it on the server and
    deleted it there, so the late one meets the id taken."""
    dm, key, px, m, _ = held
    hold_create(px, m, "late.txt", b"late")
    os.unlink(m.path("late.txt"))
    assert "late" not in listed(dm, key, "/")
    let_go(px)
    assert "late" not in listed(dm, key, "/"), px.seen
    assert "late" in listed(dm, key, "/", deleted=True)
    assert "late.txt" not in os.listdir(m.dir)


def test_lost_answer_then_rename_and_append(srv):
    """After a lost create answer, a rename is replayed on the server
    (not dropped when the file is adopted) and an append opens the
    server's content (not an empty file): the server and a fresh mount
    have r2.txt with v1v2, no r1."""
    dm, key, px, m = srv
    lose_create(px, m, "r1.txt", b"v1")
    px.rule = lambda meth, p: None
    os.rename(m.path("r1.txt"), m.path("r2.txt"))
    with open(m.path("r2.txt"), "ab") as f:
        f.write(b"v2")
    have = listed(dm, key, "/")
    assert "r1" not in have and have["r2"]["size"] == 4, have
    got = api(dm, key, "GET", FILES + "/" + have["r2"]["id"] + "/content")
    assert got.content == b"v1v2"
    assert xget(m.path("r2.txt"), "user.speechfs.id") == have["r2"]["id"]
    # a create is never sent again for it
    n = creates(px)
    assert m.path("r2.txt").read_bytes() == b"v1v2"
    assert creates(px) == n
    fresh = RemoteMount(dm.base, key)
    try:
        assert sorted(n for n in os.listdir(fresh.dir)
                      if not n.startswith(".")) == ["r2.txt"]
        assert fresh.path("r2.txt").read_bytes() == b"v1v2"
    finally:
        assert fresh.stop() == 0


def test_lost_answer_then_times_and_stat(srv):
    """After a lost create answer: a stat shows the server's size (never
    an empty pending file), times set are replayed on the server, and a
    rename kept while the times were set goes too."""
    dm, key, px, m = srv
    lose_create(px, m, "t1.txt", b"0123456789ab")
    px.rule = lambda meth, p: None
    assert os.stat(m.path("t1.txt")).st_size == 12
    mtime = 1_600_000_000_123_456_789
    atime = 1_500_000_000_987_654_321
    os.utime(m.path("t1.txt"), ns=(atime, mtime))
    f = listed(dm, key, "/")["t1"]
    assert f["size"] == 12
    assert f["modifiedAtNs"] == mtime and f["accessedAtNs"] == atime, f
    assert m.path("t1.txt").read_bytes() == b"0123456789ab"


def test_lost_answer_rename_while_unreachable_then_replayed(srv):
    """A create whose answer was lost, then the server unreachable for a
    GET at the release too: a rename while it cannot be asked fails; the
    entry stays as it was; the next fsync adopts it."""
    dm, key, px, m = srv
    lose_create(px, m, "u1.txt", b"abc")
    with pytest.raises(OSError):
        os.rename(m.path("u1.txt"), m.path("u2.txt"))
    assert "u1" in listed(dm, key, "/")
    px.rule = lambda meth, p: None
    fd = os.open(m.path("u1.txt"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"def")
        os.fsync(fd)
    finally:
        os.close(fd)
    have = listed(dm, key, "/")
    assert have["u1"]["size"] == 6, have
    assert len([n for n in have if n.startswith("u")]) == 1, have


def max_files(dm, tenant, n):
    """The tenant's file count quota set to n (0: no limit)."""
    q = admin("tenant", "quota", "--store", str(dm.store), "--id", tenant,
              "--max-files", str(n))
    assert q["maxFiles"] == n, q


@pytest.fixture
def held(store):
    """(a speechfsd, alice's key, a proxy to it, a mount through it with
    a 3 s timeout, the tenant id). The proxy's held requests are let go
    before it stops."""
    with proxied(store, "-o", "timeout=3") as x:
        yield x + (store[1],)


def hold_create(px, m, name, data):
    """Write `name` and close it while every create is held on its way
    (the server has not seen it): close() fails after the timeout, the
    file is "maybe on the server"."""
    px.rule = lambda meth, p: "hold" if is_create(meth, p) else None
    fd = os.open(m.path(name), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data)
    with pytest.raises(OSError) as ei:
        os.close(fd)
    assert ei.value.errno in (errno.EIO, errno.ETIMEDOUT), ei.value
    # the release's try too (after close() returns): held as well
    assert eventually(lambda: px.fates("hold") >= 2, timeout=30), px.seen
    px.rule = lambda meth, p: None


def let_go(px):
    """The held creates reach the server and each is answered (the
    answers lost: the mount gave up on them)."""
    px.go.set()
    assert eventually(lambda: px.inflight == 0, timeout=60), px.seen


def test_a_refused_resend_then_unlink(held):
    """A file whose create's answer was lost (held on its way), then the
    tenant's file quota full: the unlink's re-send of the create is
    refused (413), which proves the server does not hold the file. The
    unlink succeeds (nothing to delete there), the name goes from the
    mount, and the late creates are refused too: nothing on the
    server, live or in the trash."""
    dm, key, px, m, tenant = held
    r = api(dm, key, "POST", FILES, data={"name": "other", "path": "/"},
            files={"file": ("o.bin", b"o")})
    assert r.status_code == 201, r.text
    hold_create(px, m, "late.txt", b"late")
    max_files(dm, tenant, 1)
    n = creates(px)
    os.unlink(m.path("late.txt"))
    assert creates(px) == n + 1, px.seen  # the re-send, refused
    assert "late.txt" not in os.listdir(m.dir)
    with pytest.raises(FileNotFoundError):
        os.stat(m.path("late.txt"))
    let_go(px)
    assert list(listed(dm, key, "/")) == ["other"], px.seen
    assert listed(dm, key, "/", deleted=True) == {}
    assert "late.txt" not in os.listdir(m.dir)


def test_a_refused_resend_then_rename_and_times(held):
    """As above, a rename and a change of times instead: both act on the
    mount's own entry and succeed (the close that lost the answer has
    already failed: the refusal is no news for them). The file is made
    under its new name, with what is written next, once the quota
    allows; the late creates (refused) never bring the old name back."""
    dm, key, px, m, tenant = held
    r = api(dm, key, "POST", FILES, data={"name": "other", "path": "/"},
            files={"file": ("o.bin", b"o")})
    assert r.status_code == 201, r.text
    hold_create(px, m, "a.txt", b"late")
    shown = xget(m.path("a.txt"), "user.speechfs.id")
    max_files(dm, tenant, 1)
    os.rename(m.path("a.txt"), m.path("b.txt"))
    mtime = 1_600_000_000_123_456_789
    os.utime(m.path("b.txt"), ns=(mtime, mtime))
    assert os.stat(m.path("b.txt")).st_mtime_ns == mtime
    assert sorted(n for n in os.listdir(m.dir)
                  if not n.startswith(".")) == ["b.txt", "other.bin"]
    let_go(px)
    assert list(listed(dm, key, "/")) == ["other"], px.seen
    max_files(dm, tenant, 0)
    with open(m.path("b.txt"), "ab") as f:
        f.write(b"more")
    have = listed(dm, key, "/")
    assert sorted(have) == ["b", "other"], (have, px.seen)
    assert have["b"]["id"] == shown and have["b"]["size"] == 4, have
    assert m.path("b.txt").read_bytes() == b"more"


def test_lost_answer_at_a_full_quota_then_unlink(srv, store):
    """The lost create filled the tenant's file quota, and the server
    says 404 for the id (as while a try is late on its way): the
    unlink's re-send of the create must hear "this id is your file's"
    (409), not the quota's 413 (the server looks at the id first), and
    so delete the file on the server, never only in the mount."""
    dm, key, px, m = srv
    max_files(dm, store[1], 1)
    lose_create(px, m, "full.txt", b"full")
    assert listed(dm, key, "/")["full"]["size"] == 4
    resent = []

    def rule(meth, p):
        # the id's GET says 404 (as while a try is late on its way)
        # until the create is sent again
        if is_create(meth, p):
            resent.append(p)
        elif meth == "GET" and p.startswith(FILES + "/") and not resent:
            return "notfound"
        return None
    px.rule = rule
    os.unlink(m.path("full.txt"))
    assert "full" not in listed(dm, key, "/")
    assert "full" in listed(dm, key, "/", deleted=True)
    assert "full.txt" not in os.listdir(m.dir)
    assert len(resent) == 1 and px.fates("notfound") >= 1, px.seen


def test_a_plain_conflict_is_not_taken_as_mine(srv):
    """A 409 that is not file_id_exists (another constraint, a proxy's)
    is a refusal: close() fails, but not with ENOENT, the file stays in
    the mount, and once the server takes it the next close creates it."""
    dm, key, px, m = srv
    e = refused_create(px, m, "c.txt", b"one", "conflict")
    assert e.errno != errno.ENOENT, e
    assert "c.txt" in os.listdir(m.dir)
    assert "c" not in listed(dm, key, "/")
    px.rule = lambda meth, p: None
    with open(m.path("c.txt"), "ab") as f:
        f.write(b"two")
    have = listed(dm, key, "/")
    assert "c" in have, have
    assert xget(m.path("c.txt"), "user.speechfs.id") == have["c"]["id"]
    assert os.stat(m.path("c.txt")).st_size == have["c"]["size"]


def restart(dm, **config):
    """The daemon killed and started again on its port with config."""
    dm.kill()
    dm.config.write_text("".join("%s = %s\n" % kv for kv in {
        **SERVER_CONFIG, "jobs.enabled": "false", **config}.items()))
    dm.start()


def test_a_server_that_stopped_taking_id_keys(srv):
    """The server restarted with its extensions off after the mount began:
    it refuses the create's idKey (400) instead of making the file under
    an id the mount does not know. close() says so (EIO, not ENOENT, not
    0), nothing is made on the server (no stray file, no duplicate), and
    once the server takes idKey again the file is made under the id the
    mount showed from creat() on."""
    dm, key, px, m = srv
    fd = os.open(m.path("k.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    shown = xget(m.path("k.txt"), "user.speechfs.id")
    ino = os.fstat(fd).st_ino
    restart(dm, **{"http.extensions": "false"})
    os.write(fd, b"keyed")
    with pytest.raises(OSError) as ei:
        os.close(fd)
    assert ei.value.errno == errno.EIO, ei.value
    assert "no longer takes idKey" in m.output()
    n = sum(1 for m_, p, _ in px.seen if is_create(m_, p))
    assert n >= 1, px.seen
    assert eventually(lambda: px.inflight == 0, timeout=30)
    assert listed(dm, key, "/") == {}
    assert listed(dm, key, "/", deleted=True) == {}
    restart(dm)
    with open(m.path("k.txt"), "ab") as f:
        f.write(b"again")
    have = listed(dm, key, "/")
    assert list(have) == ["k"] and have["k"]["id"] == shown, have
    assert have["k"]["size"] == 5
    assert os.stat(m.path("k.txt")).st_ino == ino
    assert m.path("k.txt").read_bytes() == b"again"


def test_a_handle_held_across_the_first_fsync(srv):
    """The file's id and number are final from creat(): a handle opened
    before the first fsync (which creates the file on the server) keeps
    writing to it, and a fresh lookup finds the same inode and bytes."""
    dm, key, px, m = srv
    fd = os.open(m.path("h.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        shown = xget(m.path("h.txt"), "user.speechfs.id")
        ino = os.fstat(fd).st_ino
        os.write(fd, b"one")
        os.fsync(fd)
        have = listed(dm, key, "/")
        assert have["h"]["id"] == shown and have["h"]["size"] == 3, have
        os.write(fd, b"two")
    finally:
        os.close(fd)
    have = listed(dm, key, "/")
    assert list(have) == ["h"] and have["h"]["size"] == 6, have
    assert os.stat(m.path("h.txt")).st_ino == ino
    with open(m.path("h.txt"), "ab") as f:
        f.write(b"3")
    assert m.path("h.txt").read_bytes() == b"onetwo3"
    assert listed(dm, key, "/")["h"]["size"] == 7
    fresh = RemoteMount(dm.base, key)
    try:
        assert xget(fresh.path("h.txt"), "user.speechfs.id") == shown
        assert fresh.path("h.txt").read_bytes() == b"onetwo3"
    finally:
        assert fresh.stop() == 0


def test_late_create_does_not_undo_a_rename_or_times(held):
    """As for the unlink: a create given up on, still on its way, then
    the server says 404 for the id (a stat shows the file as the mount
    has it), and the file is renamed and its times set. The late create
    reaching the server afterwards must not bring back the old name or
    lose the times: the rename made the file on the server first, so the
    late one meets its id taken."""
    dm, key, px, m, _ = held
    hold_create(px, m, "a.txt", b"late")
    assert "a.txt" in os.listdir(m.dir)
    os.rename(m.path("a.txt"), m.path("b.txt"))
    mtime = 1_600_000_000_123_456_789
    os.utime(m.path("b.txt"), ns=(mtime, mtime))
    have = listed(dm, key, "/")
    assert list(have) == ["b"], have
    let_go(px)
    have = listed(dm, key, "/")
    assert list(have) == ["b"], (have, px.seen)
    assert have["b"]["modifiedAtNs"] == mtime, have
    assert sorted(n for n in os.listdir(m.dir)
                  if not n.startswith(".")) == ["b.txt"]
    assert os.stat(m.path("b.txt")).st_mtime_ns == mtime


def test_a_failed_times_patch_after_the_create(srv):
    """Times set before the first close of a file closed empty go by a
    PATCH after its create. When that PATCH's answer is lost the file is
    still made: close() reports the error (the times asked are not
    known to be set), the file is an ordinary one from then on (no
    second create), and setting the times again works."""
    dm, key, px, m = srv
    px.rule = lambda meth, p: "drop" if meth == "PATCH" else None
    fd = os.open(m.path("p.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    os.utime(m.path("p.txt"), ns=(1_500_000_000_000_000_000,
                                  1_600_000_000_000_000_000))
    with pytest.raises(OSError):
        os.close(fd)
    px.settle("drop", 1)
    assert creates(px) == 1, px.seen
    assert "p" in listed(dm, key, "/")
    px.rule = lambda meth, p: None
    os.utime(m.path("p.txt"), ns=(1_500_000_000_000_000_000,
                                  1_600_000_000_000_000_000))
    f = listed(dm, key, "/")["p"]
    assert f["modifiedAtNs"] == 1_600_000_000_000_000_000, f
    assert creates(px) == 1, px.seen


def test_rename_dir_onto_a_dir_holding_a_new_file(srv):
    """rename(d, e) where e holds only a file not sent yet: ENOTEMPTY,
    as locally; nothing merged on the server."""
    dm, key, px, m = srv
    os.mkdir(m.path("e"))
    fd = os.open(m.path("e", "in.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"in")
        os.mkdir(m.path("d"))
        m.path("d", "x.txt").write_bytes(b"x")
        with pytest.raises(OSError) as ei:
            os.rename(m.path("d"), m.path("e"))
        assert ei.value.errno == errno.ENOTEMPTY, ei.value
    finally:
        os.close(fd)
    assert sorted(listed(dm, key, "/e/")) == ["in"]
    assert sorted(listed(dm, key, "/d/")) == ["x"]


def test_unmount_tries_a_failed_new_file_once_more(srv):
    """A new file whose close (and release) could not create it (503:
    the server did nothing) is tried once more when the mount ends: the
    server then holds it (empty, as its release would have made it); a
    file never closed is not sent (test_fs_unmount)."""
    dm, key, px, m = srv
    refused_create(px, m, "late.txt", b"late", "unavailable")
    assert "late" not in listed(dm, key, "/")
    px.rule = lambda meth, p: None
    m.stopped = True
    assert m.stop() == 0
    have = listed(dm, key, "/")
    assert "late" in have and have["late"]["size"] == 0, have


def test_unmount_goes_on_after_a_last_try_answered_an_error(srv):
    """The last tries at unmount stop only at one the server does not
    answer at all (each would wait as long): one answered with an error
    (500 here) lets the next file be tried. b.txt's and a.txt's closes
    fail (503, 500); at unmount a.txt (the newer, tried first) gets a
    500 again, b.txt is still tried and made (empty)."""
    dm, key, px, m = srv
    refused_create(px, m, "b.txt", b"b", "unavailable")
    refused_create(px, m, "a.txt", b"a", "error")
    assert listed(dm, key, "/") == {}
    first = [True]

    def at_unmount(meth, p):
        if is_create(meth, p) and first[0]:
            first[0] = False
            return "error"
        return None
    px.rule = at_unmount
    m.stopped = True
    assert m.stop() == 0
    have = listed(dm, key, "/")
    assert list(have) == ["b"] and have["b"]["size"] == 0, (have, px.seen)
    assert px.fates("error") == 3, px.seen


def test_an_older_server_gets_the_lazy_create(store):
    """A server whose document has no idKey (an older daemon's, whose
    ?id= was the file's own id): the mount never sends an id of any
    kind; a new file is made at creat() by the lazy create (others see
    it empty at once) and its content goes at close by PUT, as before
    the create-at-close."""
    def old(meth, p):
        return "old_doc" if p == "/api/v1/openapi.json" else None
    with proxied(store, rule=old) as (dm, key, px, m):
        assert px.fates("old_doc") == 1, px.seen
        fd = os.open(m.path("o.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            have = listed(dm, key, "/")
            assert list(have) == ["o"] and have["o"]["size"] == 0, have
            assert xget(m.path("o.txt"), "user.speechfs.id") == \
                have["o"]["id"]
            os.write(fd, b"older")
        finally:
            os.close(fd)
        have = listed(dm, key, "/")
        assert list(have) == ["o"] and have["o"]["size"] == 5, have
        with px.mu:
            posts = [p for m_, p, _ in px.seen
                     if m_ == "POST" and p.startswith(FILES + "?")]
            puts = [p for m_, p, _ in px.seen if m_ == "PUT"]
        assert posts == [FILES + "?lazy=true"], posts
        assert puts == [FILES + "/" + have["o"]["id"] + "/content"], puts
        assert not any("/users/me" in p for _, p, _ in px.seen), px.seen
        assert m.path("o.txt").read_bytes() == b"older"
