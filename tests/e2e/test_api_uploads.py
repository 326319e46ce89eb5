"""Resumable uploads (parts-spec.md; README "Resumable uploads"): a real
speechfsd on 127.0.0.1, bodies sent by requests and on raw sockets (to
drop a connection in the middle of a body), the daemon killed (kill -9)
and started again in the middle of an upload. What must hold: the
content committed at a body's end is byte for byte what was sent, its
sha256 and its CRC32C (computed here) those the server answers; a body
that did not end leaves the session durable up to what came, a kill up
to its last sync (every 32 MiB), and a PUT resumes it from there; every
refusal the contract names has its status and error type."""
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest
import requests

import pg
from conftest import API, Client, Daemon, Meta, start
from test_api_remote_ext import crc32c as crc32c_slow

HERE = pathlib.Path(__file__).resolve().parent
META_BACKENDS = ["sqlite", "pg"]
MIB = 1 << 20
SYNC = 32 * MIB
CONFIG = {"http.max_upload_bytes": str(256 * MIB)}

_isal = ctypes.CDLL("libisal.so.2")
_isal.crc32_iscsi.restype = ctypes.c_uint32
_isal.crc32_iscsi.argtypes = (ctypes.c_char_p, ctypes.c_int,
                              ctypes.c_uint32)


def crc32c(data):
    """CRC32C of big data through ISA-L's crc32_iscsi (checked against
    the table-driven one of test_api_remote_ext below)."""
    return _isal.crc32_iscsi(data, len(data), 0xFFFFFFFF) ^ 0xFFFFFFFF


def crc_b64(data):
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()


def test_crc32c_of_isal_is_the_reference():
    blob = os.urandom(70000)
    for x in (b"", b"123456789", bytes(32), blob):
        assert crc32c(x) == crc32c_slow(x)


@pytest.fixture(scope="module")
def uploadfault(tmp_path_factory):
    """tests/e2e/uploadfault.c built: an LD_PRELOAD of faults and
    witnesses around the daemon's session files."""
    cc = shutil.which("cc")
    assert cc, "no C compiler: run packaging/install-deps.sh"
    so = tmp_path_factory.mktemp("uploadfault") / "uploadfault.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra",
                    "-Werror", "-o", str(so),
                    str(HERE / "uploadfault.c"), "-ldl"], check=True,
                   timeout=120)
    return so


@pytest.fixture(scope="module")
def sfsd(tmp_path_factory, blobs, meta):
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta)
    yield c
    c.http.close()
    d.stop()


@contextlib.contextmanager
def two_daemons(tmp_path_factory, blobs, meta, config=CONFIG, prefix=()):
    """Daemon A on a new store, and daemon B on the same store directory
    once the test calls second() (its Client): yields (A's Client,
    second). At the end each started daemon stops, B first, and must exit
    0 (a failed stop of B still stops A)."""
    d, c = start(tmp_path_factory, config, blobs=blobs, meta=meta,
                 prefix=prefix)
    daemons, clients = [d], [c]

    def second():
        daemons.append(Daemon(d.root, c.store, config, prefix=prefix))
        c2 = Client(daemons[-1].base, c.store)
        c2.keys, c2.users = c.keys, c.users
        clients.append(c2)
        return c2
    try:
        yield c, second
    finally:
        for x in clients:
            x.http.close()
        with contextlib.ExitStack() as stops:
            for x in daemons:  # an ExitStack runs them last in, first out
                stops.callback(x.stop)


def new_session(c, fid, who="alice"):
    r = c.post(f"/{fid}/uploads", who)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def session(c, fid, uid, who="alice", **params):
    return c.get(f"/{fid}/uploads/{uid}", who, params=params)


def error_with(c, r, status, error_type):
    """The error body with the session's offsets beside its keys."""
    assert r.status_code == status, r.text
    body = r.json()
    assert {"offset", "durable"} <= set(body)
    rest = {k: v for k, v in body.items() if k not in ("offset", "durable")}
    assert rest["error_type"] == error_type and rest["status_code"] == status
    return body


def put(c, fid, uid, offset, data, who="alice", headers=None,
        busy_ok=False, seconds=30):
    """A PUT into the session; `409 upload_busy` retried, as a client
    must (the server may still be ending a body that stopped), unless
    busy_ok (the test wants that answer)."""
    h = {"Upload-Offset": str(offset)}
    h.update(headers or {})
    deadline = time.time() + seconds
    while True:
        r = c.req("PUT", f"/{fid}/content", who, headers=h, data=data,
                  params={"upload": uid}, timeout=120)
        if busy_ok or r.status_code != 409 or time.time() > deadline or \
                r.json().get("error_type") != "upload_busy":
            return r
        time.sleep(0.05)


def idle(c, fid, uid, durable):
    """Once no PUT streams into the session: a PUT from past its durable
    offset is refused before its body, the session unchanged (409
    upload_offset_mismatch), once it is free (put() retries
    upload_busy)."""
    body = error_with(c, put(c, fid, uid, durable + 1, b""), 409,
                      "upload_offset_mismatch")
    assert body["durable"] == durable, body


def durable_above(c, fid, uid, above, seconds=30):
    """The session once its durable offset is above `above` (long polls,
    looped as a client must)."""
    deadline = time.time() + seconds
    while True:
        r = session(c, fid, uid, durableAbove=above, timeout=5)
        assert r.status_code == 200, r.text
        if r.json()["durable"] > above:
            return r.json()
        assert time.time() < deadline, r.json()


def assert_committed(c, fid, r, data):
    """The answer of the commit and the file are `data` exactly."""
    assert r.status_code == 200, r.text
    assert r.json()["size"] == len(data)
    assert r.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert r.headers["X-Speechfs-Content-Crc32c"] == crc_b64(data)
    got = c.get(f"/{fid}/content").content
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


class Stream:
    """A PUT …/content?upload= on a raw socket: the head sent at once
    (Content-Length: total), the body as the test sends it."""

    def __init__(self, c, fid, uid, offset, total, who="alice"):
        self.c, self.fid, self.uid, self.at = c, fid, uid, offset
        host, port = c.base.split("//")[1].split(":")
        self.sk = socket.create_connection((host, int(port)), timeout=60)
        self.sk.sendall(
            (f"PUT {API}/{fid}/content?upload={uid} HTTP/1.1\r\n"
             f"Host: {host}:{port}\r\nX-API-Key: {c.keys[who]}\r\n"
             f"Upload-Offset: {offset}\r\nContent-Length: {total}\r\n"
             "\r\n").encode())

    def send(self, data):
        view = memoryview(data)
        for i in range(0, len(view), MIB):
            self.sk.sendall(view[i:i + MIB])
        self.at += len(data)

    def received(self):
        """Wait until the server got all that was sent."""
        deadline = time.time() + 30
        while session(self.c, self.fid, self.uid).json()["offset"] < \
                self.at:
            assert time.time() < deadline


    def answer(self):
        got = b""
        while b"\r\n\r\n" not in got:
            x = self.sk.recv(65536)
            if not x:
                break
            got += x
        return int(got.split(b" ")[1]) if got else None

    def close(self):
        """The connection ends once the server got what was sent. (Its
        end alone: libmicrohttpd 0.9.75 may miss an end that comes with
        the last bytes, and notice it only at http.connection_timeout.)"""
        self.received()
        self.sk.close()

    def abandon(self):
        self.sk.close()


def test_a_session_is_made_read_and_deleted(sfsd):
    c = sfsd
    f = c.new_file(data=b"old")
    r = c.post(f"/{f['id']}/uploads")
    assert r.status_code == 201, r.text
    u = r.json()
    assert set(u) == {"id", "fileId", "offset", "durable", "expiresAt"}
    assert len(u["id"]) == 32 and int(u["id"], 16) >= 0
    assert u["id"] == u["id"].lower()
    assert (u["fileId"], u["offset"], u["durable"]) == (f["id"], 0, 0)
    assert r.headers["Location"] == f"{API}/{f['id']}/uploads/{u['id']}"
    assert (c.store / "staging" / ".uploads" / u["id"]).exists()
    r = session(c, f["id"], u["id"])
    assert r.status_code == 200 and r.json()["durable"] == 0
    assert c.delete(f"/{f['id']}/uploads/{u['id']}").status_code == 204
    assert not (c.store / "staging" / ".uploads" / u["id"]).exists()
    c.assert_error(session(c, f["id"], u["id"]), 404, "upload_not_found")
    c.assert_error(c.delete(f"/{f['id']}/uploads/{u['id']}"), 404,
                   "upload_not_found")
    assert c.get(f"/{f['id']}/content").content == b"old"
    doc = c.get("/api/v1/openapi.json", who=None).json()
    assert "post" in doc["paths"][API + "/{id}/uploads"]


def test_a_put_into_a_session_commits_as_a_put_of_the_content(sfsd):
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    data = os.urandom(5 * MIB + 17)
    r = put(c, f["id"], uid, 0, data)
    assert_committed(c, f["id"], r, data)
    assert r.headers["ETag"] == '"%s"' % hashlib.sha256(data).hexdigest()
    assert r.json()["id"] == f["id"]
    c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")
    assert not (c.store / "staging" / ".uploads" / uid).exists()
    # small, in parts: each part's connection dropped at its end
    uid = new_session(c, f["id"])
    data = b"0123456789" * 1000
    s = Stream(c, f["id"], uid, 0, len(data))
    s.send(data[:4000])
    s.close()
    assert durable_above(c, f["id"], uid, 3999)["durable"] == 4000
    r = put(c, f["id"], uid, 4000, data[4000:])
    assert_committed(c, f["id"], r, data)


def test_a_dropped_connection_keeps_what_came_and_resumes(sfsd):
    """A body cut in the middle: durable every 32 MiB while it streams
    (the row says so before the body ends), all that came once it is
    dropped; a PUT from any offset up to that finishes the content."""
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    data = os.urandom(SYNC + 9 * MIB + 123)
    s = Stream(c, f["id"], uid, 0, len(data))
    s.send(data[:SYNC + 3 * MIB])
    u = durable_above(c, f["id"], uid, 0)
    assert SYNC <= u["durable"] <= SYNC + 3 * MIB
    assert u["offset"] >= u["durable"]
    # one PUT at a time
    r = put(c, f["id"], uid, 0, b"x", busy_ok=True)
    assert error_with(c, r, 409, "upload_busy")["durable"] >= SYNC
    s.send(data[SYNC + 3 * MIB:SYNC + 5 * MIB])
    s.close()
    cut = SYNC + 5 * MIB
    u = durable_above(c, f["id"], uid, cut - 1)
    assert u["durable"] == u["offset"] == cut
    assert (c.store / "staging" / ".uploads" / uid).stat().st_size == cut
    assert c.get(f"/{f['id']}/content").content == b"old"
    # resumed below what is durable: the server cuts back to it
    r = put(c, f["id"], uid, cut - 1000, data[cut - 1000:])
    assert_committed(c, f["id"], r, data)
    c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")


def read_by(pid):
    """What process pid has read (rchar of /proc/PID/io)."""
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def test_a_resume_after_a_drop_reads_nothing_again(sfsd):
    """The daemon keeps the hashes of what came at the drop: resuming
    from there does not read the session's file to hash it again (it did
    until 08:05: rchar grew by the whole prefix), and the content is
    still exact; resuming from below it reads the prefix."""
    c = sfsd
    f = c.new_file(data=b"old")
    data = os.urandom(40 * MIB + 11)
    cut = 40 * MIB
    for resume_at in (cut, cut - 4096):
        uid = new_session(c, f["id"])
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:cut])
        s.close()
        durable_above(c, f["id"], uid, cut - 1)
        before = read_by(c.daemon.proc.pid)
        r = put(c, f["id"], uid, resume_at, data[resume_at:])
        got = read_by(c.daemon.proc.pid) - before
        assert_committed(c, f["id"], r, data)
        if resume_at == cut:
            assert got < 8 * MIB, got
        else:
            assert got >= resume_at, got


def test_an_offset_past_durable_is_a_conflict(sfsd):
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    s = Stream(c, f["id"], uid, 0, 1000)
    s.send(b"a" * 100)
    s.close()
    durable_above(c, f["id"], uid, 99)
    r = put(c, f["id"], uid, 101, b"b" * 899)
    body = error_with(c, r, 409, "upload_offset_mismatch")
    assert (body["offset"], body["durable"]) == (100, 100)
    # the session is as it was
    assert session(c, f["id"], uid).json()["durable"] == 100
    for bad in ({}, {"Upload-Offset": "-1"}, {"Upload-Offset": "1x"},
                {"Upload-Offset": ""}):
        r = c.req("PUT", f"/{f['id']}/content", headers=bad, data=b"z",
                  params={"upload": uid})
        c.assert_error(r, 400, "invalid_parameter")
    r = c.req("PUT", f"/{f['id']}/content", data=b"z",
              headers={"Upload-Offset": "0"})
    c.assert_error(r, 400, "invalid_parameter")
    assert session(c, f["id"], uid).json()["durable"] == 100
    r = put(c, f["id"], uid, 100, b"b" * 900)
    assert_committed(c, f["id"], r, b"a" * 100 + b"b" * 900)


def test_others_sessions_and_other_files_are_not_found(sfsd):
    c = sfsd
    f = c.new_file(data=b"old")
    g = c.new_file(data=b"other")
    uid = new_session(c, f["id"])
    for who in ("bob", "carol"):
        c.assert_error(session(c, f["id"], uid, who), 404)
        c.assert_error(c.delete(f"/{f['id']}/uploads/{uid}", who), 404)
    # bob may write f (an EDIT share), yet the session is alice's
    r = c.post(f"/{f['id']}/shares", json={"userId": c.users["bob"],
                                           "permission": "EDIT"})
    assert r.status_code in (200, 201), r.text
    c.assert_error(session(c, f["id"], uid, "bob"), 404, "upload_not_found")
    c.assert_error(put(c, f["id"], uid, 0, b"x", who="bob"), 404,
                   "upload_not_found")
    c.assert_error(session(c, g["id"], uid), 404, "upload_not_found")
    c.assert_error(put(c, g["id"], uid, 0, b"x"), 404, "upload_not_found")
    c.assert_error(c.get(f"/{g['id']}/uploads/{uid}/content"), 404,
                   "upload_not_found")
    for bad in ("0" * 32, "ABCDEF" + uid[6:], uid[:31], uid + "0", "x" * 32):
        c.assert_error(session(c, f["id"], bad), 404, "upload_not_found")
        c.assert_error(put(c, f["id"], bad, 0, b"x"), 404,
                       "upload_not_found")
    # no right to write: carol's file is not found, bob's read share 403
    c.assert_error(c.post(f"/{f['id']}/uploads", "carol"), 404)
    h = c.new_file(data=b"view")
    c.post(f"/{h['id']}/shares", json={"userId": c.users["bob"],
                                       "permission": "VIEW"})
    c.assert_error(c.post(f"/{h['id']}/uploads", "bob"), 403)
    c.assert_error(c.post(f"/{h['id']}/uploads", "alice_ro"), 403,
                   "insufficient_scope")
    assert c.delete(f"/{f['id']}/uploads/{uid}").status_code == 204


def test_a_refused_commit_ends_the_session(sfsd):
    """Any answer to a body that ended ends the session: a CRC32C that
    is not the content's (400, nothing stored)."""
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    data = os.urandom(6 * MIB)
    r = put(c, f["id"], uid, 0, data,
            headers={"X-Speechfs-Content-Crc32c": crc_b64(data + b"!")})
    c.assert_error(r, 400, "checksum_mismatch")
    c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")
    assert not (c.store / "staging" / ".uploads" / uid).exists()
    assert c.get(f"/{f['id']}/content").content == b"old"
    # the CRC32C is of the whole content, from 0, across parts
    uid = new_session(c, f["id"])
    s = Stream(c, f["id"], uid, 0, len(data))
    s.send(data[:1000])
    s.close()
    durable_above(c, f["id"], uid, 999)
    r = put(c, f["id"], uid, 1000, data[1000:],
            headers={"X-Speechfs-Content-Crc32c": crc_b64(data)})
    assert_committed(c, f["id"], r, data)


def test_a_body_past_the_limit_ends_the_session(sfsd_factory):
    c = sfsd_factory({"http.max_upload_bytes": str(MIB)})
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    s = Stream(c, f["id"], uid, 0, 2000)
    s.send(b"a" * 1000)
    s.close()
    durable_above(c, f["id"], uid, 999)
    # a length that says so: refused before the body, the session stays
    c.assert_error(put(c, f["id"], uid, 1000, b"b" * MIB), 413,
                   "payload_too_large")
    assert session(c, f["id"], uid).json()["durable"] == 1000

    def chunks():
        for _ in range(16):
            yield b"c" * 65536
    c.assert_error(put(c, f["id"], uid, 1000, chunks()), 413,
                   "payload_too_large")
    c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")
    assert c.get(f"/{f['id']}/content").content == b"old"


def test_durable_bytes_are_served_with_ranges(sfsd):
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    data = os.urandom(3 * MIB + 5)
    s = Stream(c, f["id"], uid, 0, len(data) + 100)
    s.send(data)
    s.close()
    d = durable_above(c, f["id"], uid, len(data) - 1)["durable"]
    assert d == len(data)
    path = f"/{f['id']}/uploads/{uid}/content"
    r = c.get(path, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == data[:100]
    assert r.headers["Content-Range"] == f"bytes 0-99/{d}"
    r = c.get(path, headers={"Range": f"bytes={MIB}-{2 * MIB - 1}"})
    assert r.status_code == 206 and r.content == data[MIB:2 * MIB]
    r = c.get(path, headers={"Range": f"bytes={d - 10}-{d + 100}"})
    assert r.status_code == 206 and r.content == data[-10:]
    r = c.get(path)
    assert r.status_code == 200 and r.content == data
    for rng in (f"bytes={d}-", f"bytes={d + 5}-{d + 10}"):
        r = c.get(path, headers={"Range": rng})
        c.assert_error(r, 416, "range_not_satisfiable")
        assert r.headers["Content-Range"] == f"bytes */{d}"
    assert c.delete(f"/{f['id']}/uploads/{uid}").status_code == 204
    c.assert_error(c.get(path), 404, "upload_not_found")


def test_another_process_leaves_a_live_session_alone(tmp_path_factory,
                                                     blobs, meta):
    """Two daemons on one store directory: B starts (its recovery) while
    A streams into a session past its last sync, and B's GET, PUT and
    DELETE of it find it busy. A's commit is then exact (review s21 P4:
    B cut the file to its row's durable offset; A committed 200 with a
    sha256 its bytes, zeros from 32 MiB on, did not have)."""
    with two_daemons(tmp_path_factory, blobs, meta) as (c, second):
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        data = os.urandom(SYNC + 20 * MIB + 7)
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:SYNC + 8 * MIB])
        s.received()
        up = c.store / "staging" / ".uploads" / uid
        deadline = time.time() + 30
        while up.stat().st_size < SYNC + 4 * MIB:  # past the last sync
            assert time.time() < deadline, up.stat().st_size
            time.sleep(0.05)
        before = up.stat().st_size
        c2 = second()  # B, same store directory
        assert up.stat().st_size >= before, "B cut A's live session"
        u = session(c2, f["id"], uid).json()  # durable: A's row
        assert u["offset"] >= before > u["durable"] >= SYNC, u
        error_with(c2, put(c2, f["id"], uid, u["durable"], b"x",
                           busy_ok=True), 409, "upload_busy")
        c2.assert_error(c2.delete(f"/{f['id']}/uploads/{uid}"), 409,
                        "upload_busy")
        s.send(data[SYNC + 8 * MIB:])
        assert s.answer() == 200
        meta_ = c.get(f"/{f['id']}").json()
        assert meta_["sha256"] == hashlib.sha256(data).hexdigest()
        got = c2.get(f"/{f['id']}/content").content
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        c2.assert_error(session(c2, f["id"], uid), 404, "upload_not_found")


def test_a_resume_hashes_again_what_another_process_rewrote(
        tmp_path_factory, blobs, meta):
    """Two daemons on one store directory: A keeps the hashes of the
    MiB its PUT got; B then cuts the session back to 0 and streams
    another MiB in; the PUT that finishes it through A names the content
    by the bytes the file holds (re-read s22 A8: A resumed from its kept
    hashes of its own MiB, and the blob's sha256 and CRC32C were those of
    bytes it did not hold)."""
    with two_daemons(tmp_path_factory, blobs, meta) as (c, second):
        c2 = second()  # B, same store directory
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        mine, theirs = os.urandom(MIB), os.urandom(MIB + 5)
        s = Stream(c, f["id"], uid, 0, 2 * MIB)
        s.send(mine)
        s.close()
        idle(c, f["id"], uid, MIB)  # A's PUT ended: its hashes kept
        s = Stream(c2, f["id"], uid, 0, 2 * MIB)
        deadline = time.time() + 30
        while session(c2, f["id"], uid).json()["durable"] != 0:
            assert time.time() < deadline, "B's PUT did not start"
            time.sleep(0.05)
        s.send(theirs[:MIB])
        s.close()
        idle(c, f["id"], uid, MIB)  # B's PUT ended at the same offset
        r = put(c, f["id"], uid, MIB, theirs[MIB:])
        assert_committed(c, f["id"], r, theirs)


def wait_until(cond, what, seconds=30):
    """cond()'s first true value, looked at every 50 ms; fails with
    `what` after `seconds`."""
    deadline = time.time() + seconds
    while True:
        got = cond()
        if got:
            return got
        assert time.time() < deadline, what
        time.sleep(0.05)


def held(path):
    """Whether an open file description holds session file `path`'s lock
    (F_OFD_GETLK, as a GET of another process looks)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fl = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, fl)
    finally:
        os.close(fd)
    return struct.unpack("hhqqi4x", got)[0] != fcntl.F_UNLCK


class RowHold:
    """A psql session holding session `uid`'s row of a PostgreSQL store
    FOR KEY SHARE: a DELETE of it waits until release(); the daemon's
    updates of it (an expiry moved on, a durable offset) do not."""

    def __init__(self, server, db, store, uid):
        conf = (store.parent / "init.conf").read_text()
        schema = conf.split("db.schema = ")[1].split()[0]
        self.p = subprocess.Popen(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
             str(server.sock), "-p", str(server.port), "-U", pg.USER, "-d",
             db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        self.p.stdin.write(f"BEGIN; SELECT 'held' FROM {schema}.upload"
                           f" WHERE uuid = '{uid}' FOR KEY SHARE;\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line.strip() == "held", line

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("ROLLBACK;\n")
            self.p.stdin.close()
            self.p.wait(30)


def deletes_waiting(server, db):
    """The server pids of the daemon's DELETEs of a session row waiting
    for a lock."""
    out = server.psql(db, "SELECT pid FROM pg_stat_activity"
                          " WHERE datname = current_database()"
                          " AND wait_event_type = 'Lock'"
                          " AND query LIKE 'DELETE FROM upload WHERE%'")
    return [int(x) for x in out.split()]


def worker_of(d, port):
    """Which worker of daemon d's thread pool serves our connection from
    local port `port`: the epoll fd (one per worker) that watches the
    daemon's end of it; None before it is accepted. (The table is the
    network namespace's: the daemon's end is the row from d's port to
    ours with an inode; a closed connection's row in TIME_WAIT, of this
    daemon or another, has none.)"""
    pid, inode, links = d.proc.pid, None, {}
    with open(f"/proc/{pid}/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            ends = tuple(int(a.split(":")[1], 16) for a in x[1:3])
            if ends == (d.port, port) and x[9] != "0":
                inode = x[9]
    for fd in os.listdir(f"/proc/{pid}/fd") if inode else ():
        try:
            links[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass  # closed meanwhile
    conn = next((fd for fd, ln in links.items()
                 if ln == f"socket:[{inode}]"), None)
    for fd, ln in links.items():
        if conn is None or "eventpoll" not in ln:
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                if any(x.split()[:2] == ["tfd:", conn] for x in f):
                    return fd
        except FileNotFoundError:
            pass
    return None


def request_elsewhere(c, busy, method, path):
    """Send `method path` as alice on a connection of its own to c's
    daemon that another worker than socket busy's serves (a worker held
    in a handler serves none of its other connections meanwhile): the
    socket, its answer to read with answer_of()."""
    theirs = wait_until(lambda: worker_of(c.daemon, busy.getsockname()[1]),
                        "the busy connection is served by no worker")
    host, port = c.base.split("//")[1].split(":")

    def another():
        sk = socket.create_connection((host, int(port)), timeout=120)
        mine = wait_until(lambda: worker_of(c.daemon,
                                            sk.getsockname()[1]),
                          "the connection was not accepted")
        if mine != theirs:
            return sk
        sk.close()
        return None
    sk = wait_until(another, "every connection went to the PUT's worker")
    sk.sendall((f"{method} {API}{path} HTTP/1.1\r\nHost: {host}:{port}"
                f"\r\nX-API-Key: {c.keys['alice']}\r\nConnection: close"
                "\r\n\r\n").encode())
    return sk


def answer_of(sk):
    """The status of the answer on socket sk (None: none came)."""
    got = b""
    while b"\r\n" not in got:
        x = sk.recv(65536)
        if not x:
            break
        got += x
    sk.close()
    return int(got.split(b" ")[1]) if got else None


@contextlib.contextmanager
def pg_store(server):
    """The Meta of a new database of `server`, dropped at the end."""
    db = server.new_database()
    try:
        yield Meta("pg", server.url(db)), db
    finally:
        server.drop_database(db)


def test_a_delete_leaves_a_file_another_process_took(tmp_path_factory,
                                                     pg_server):
    """A DELETE through A that found A's own PUT streaming (so it takes
    no lock) and then that PUT ended unlinks the session's file only
    under its lock: B, a daemon on the same store directory, took the
    file and read the row in between, and streams on into a file a path
    names; its commit then finds the row gone and ends as a PUT through A
    after a DELETE there: 404, the content as it was, the file removed
    (re-read s23 A3: A unlinked the file under B, whose commit failed with
    500). PostgreSQL alone: the test holds the row so that A's DELETE
    waits at it (pg_stat_activity shows it) while the rest happens; the
    DELETE goes on a connection another worker of A's thread pool serves
    than A's PUT (the worker waiting in the DELETE could not end it)."""
    hold = None
    with pg_store(pg_server) as (meta, db), \
            two_daemons(tmp_path_factory, None, meta) as (c, second):
        try:
            c2 = second()
            f = c.new_file(data=b"old")
            uid = new_session(c, f["id"])
            up = c.store / "staging" / ".uploads" / uid
            a = Stream(c, f["id"], uid, 0, MIB)  # A's PUT: no body yet
            wait_until(lambda: held(up), "A's PUT did not start")
            hold = RowHold(pg_server, db, c.store, uid)
            dl = request_elsewhere(c, a.sk, "DELETE",
                                   f"/{f['id']}/uploads/{uid}")
            wait_until(lambda: deletes_waiting(pg_server, db),
                       "A's DELETE did not wait at the row")
            a.abandon()
            wait_until(lambda: not held(up), "A's PUT did not end")
            data = os.urandom(2 * MIB)
            b = Stream(c2, f["id"], uid, 0, len(data))
            b.send(data[:MIB])
            wait_until(lambda: up.stat().st_size >= MIB,
                       "B's PUT did not stream")
            hold.release()
            assert answer_of(dl) == 204
            assert up.exists(), "A unlinked the file B streams into"
            b.send(data[MIB:])
            assert b.answer() == 404
            assert c.get(f"/{f['id']}/content").content == b"old"
            wait_until(lambda: not up.exists(), "B's end left the file")
            for x in (c, c2):
                x.assert_error(session(x, f["id"], uid), 404,
                               "upload_not_found")
        finally:
            if hold:
                hold.release()


def test_a_put_whose_row_went_leaves_the_next_session_alone(
        tmp_path_factory, blobs):
    """A PUT streaming into a session whose row another process deleted
    (the test, standing for that process's DELETE) finds the row gone at
    its end although SQLite gave the next session made the removed row's
    id: the PUT ends 404, commits nothing, and the next session stays
    whole (re-read s24 A1: by id alone the PUT found the new session's
    row, committed, and its end deleted that row). SQLite alone: its ids
    are reused."""
    import sqlite3
    d, c = start(tmp_path_factory, {}, blobs=blobs)
    db = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        up = c.store / "staging" / ".uploads" / uid
        data = os.urandom(2 * MIB)
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:MIB])
        wait_until(lambda: held(up), "the PUT did not start")
        db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30,
                             isolation_level=None)
        by_uuid = "SELECT id FROM upload WHERE uuid = ?"
        row = db.execute(by_uuid, (uid,)).fetchone()
        db.execute("DELETE FROM upload WHERE uuid = ?", (uid,))
        g = c.new_file(data=b"other")
        uid2 = new_session(c, g["id"])
        assert db.execute(by_uuid, (uid2,)).fetchone() == row, \
            "the new session did not get the removed row's id"
        s.send(data[MIB:])
        assert s.answer() == 404
        assert c.get(f"/{f['id']}/content").content == b"old"
        wait_until(lambda: not up.exists(), "the PUT's end left the file")
        r = session(c, g["id"], uid2)
        assert r.status_code == 200, r.text
        assert r.json()["durable"] == 0
    finally:
        if db:
            db.close()
        c.http.close()
        d.stop()


def test_a_cut_put_whose_row_went_leaves_no_file(tmp_path_factory, blobs):
    """A PUT streaming into a session whose row another process deleted
    (the test, standing for that process's DELETE) learns it at its next
    sync, whose record finds no row: cut then, it removes the session's
    file as after a DELETE here (re-read s24 A3: the file stayed, with no
    row to reach it, until a daemon's start). SQLite alone: the test
    deletes the row itself. (libmicrohttpd 0.9.75 may notice an end that
    comes with the last bytes only at http.connection_timeout: see
    Stream.close; the session's GET, which it waits on, is 404 here.)"""
    import sqlite3
    d, c = start(tmp_path_factory,
                 dict(CONFIG, **{"http.connection_timeout": "3"}),
                 blobs=blobs)
    db = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        up = c.store / "staging" / ".uploads" / uid
        s = Stream(c, f["id"], uid, 0, 64 * MIB)
        s.send(os.urandom(MIB))
        wait_until(lambda: held(up), "the PUT did not start")
        db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30,
                             isolation_level=None)
        db.execute("DELETE FROM upload WHERE uuid = ?", (uid,))
        try:  # past the first sync, asked once 32 MiB are in the file
            s.send(os.urandom(39 * MIB))
        except OSError:
            pass  # the PUT ended on its own: it found the row gone

        def synced_or_gone():
            try:
                return up.stat().st_size > 33 * MIB
            except FileNotFoundError:
                return True
        wait_until(synced_or_gone, "the PUT's bytes did not reach the file")
        s.abandon()
        wait_until(lambda: not up.exists(),
                   "the cut PUT left a file with no row")
        assert c.get(f"/{f['id']}/content").content == b"old"
    finally:
        if db:
            db.close()
        c.http.close()
        d.stop()


def test_an_ended_bodys_row_that_stays_keeps_its_file(tmp_path_factory,
                                                      pg_server):
    """The end of a body (here a commit refused: the CRC32C is not the
    content's) removes the session's file only once its row went: when
    the row's DELETE fails, both stay for a later sweep, and the session
    is whole (re-read s23 A4: the file went all the same, and GET said a
    live session a resume could not find: 404). PostgreSQL alone: the
    test holds the row, and cancels the DELETE waiting at it
    (pg_cancel_backend)."""
    hold = None
    with pg_store(pg_server) as (meta, db):
        d, c = start(tmp_path_factory, CONFIG, meta=meta)
        try:
            f = c.new_file(data=b"old")
            uid = new_session(c, f["id"])
            up = c.store / "staging" / ".uploads" / uid
            hold = RowHold(pg_server, db, c.store, uid)
            data = os.urandom(MIB)
            r = put(c, f["id"], uid, 0, data,
                    headers={"X-Speechfs-Content-Crc32c":
                             crc_b64(data + b"!")})
            c.assert_error(r, 400, "checksum_mismatch")
            pids = wait_until(lambda: deletes_waiting(pg_server, db),
                              "the end's DELETE did not wait at the row")
            pg_server.psql(db, "SELECT pg_cancel_backend(%d)" % pids[0])
            said = f"session '{uid}' left for a later sweep: cannot remove"
            wait_until(lambda: said in d.log.read_text() or
                       not up.exists(), "the end did not go on")
            hold.release()
            assert up.exists(), "the file went, its row stays"
            assert said in d.log.read_text()
            u = session(c, f["id"], uid).json()
            assert u["durable"] == 0, u
            assert_committed(c, f["id"], put(c, f["id"], uid, 0, data), data)
            assert not up.exists()
            c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")
        finally:
            if hold:
                hold.release()
            c.http.close()
            d.stop()


def test_a_named_stage_goes_although_its_sessions_row_stays(
        tmp_path_factory, blobs):
    """A body whose commit fails after the stage was named after its blob
    (staging/<tenant>-<sha>-<n>.stage: the database is busy) and whose end
    then cannot remove the session's row (busy too) leaves no file
    behind: the row stays for a later sweep, but the renamed stage is no
    longer the session's file and goes (review s24 W2: it stayed in
    staging/, body-sized, until the next start). SQLite alone: the test
    holds the database's write lock once the body streams."""
    import sqlite3
    d, c = start(tmp_path_factory,
                 dict(CONFIG, **{"db.busy_timeout_ms": "100"}), blobs=blobs)
    db = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        up = c.store / "staging" / ".uploads" / uid
        data = os.urandom(2 * MIB)
        named = f"*-{hashlib.sha256(data).hexdigest()}-*.stage"  # blob.c
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:MIB])
        wait_until(lambda: held(up), "the PUT did not start")
        db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30,
                             isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        s.send(data[MIB:])
        assert s.answer() == 503  # the commit's transaction: busy
        said = f"session '{uid}' left for a later sweep: cannot remove"
        wait_until(lambda: said in d.log.read_text(),
                   "the end's row DELETE did not fail")
        db.execute("ROLLBACK")
        # once the session is free again its end is over: the stage freed
        r = put(c, f["id"], uid, 1, b"")
        assert r.status_code in (404, 409), r.text
        assert not up.exists()
        left = list((c.store / "staging").rglob(named))
        assert not left, f"the named stage stayed: {left}"
        assert c.get(f"/{f['id']}/content").content == b"old"
    finally:
        if db:
            db.close()
        c.http.close()
        d.stop()


def test_a_tenant_has_at_most_32_sessions(sfsd):
    c = sfsd
    c.quota_user(1 << 40, 1 << 20)
    f = c.new_file("q", data=b"q")
    ids = [new_session(c, f["id"], "q") for _ in range(32)]
    r = c.post(f"/{f['id']}/uploads", "q")
    c.assert_error(r, 429, "too_many_uploads")
    # another tenant is not held back
    g = c.new_file("carol", data=b"c")
    carol = new_session(c, g["id"], "carol")
    assert c.delete(f"/{f['id']}/uploads/{ids.pop()}", "q").status_code \
        == 204
    ids.append(new_session(c, f["id"], "q"))
    for uid in ids:
        assert c.delete(f"/{f['id']}/uploads/{uid}", "q").status_code == 204
    assert c.delete(f"/{g['id']}/uploads/{carol}", "carol").status_code \
        == 204


def poll_in_thread(c, fid, uid, **params):
    out = {}

    def run():
        t = time.time()
        out["r"] = session(c, fid, uid, **params)
        out["s"] = time.time() - t
    th = threading.Thread(target=run)
    th.start()
    return th, out


def test_a_long_poll_answers_when_durable_moves(sfsd):
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    data = os.urandom(SYNC + 2 * MIB)
    th, out = poll_in_thread(c, f["id"], uid, durableAbove=0, timeout=30)
    s = Stream(c, f["id"], uid, 0, len(data))
    s.send(data[:8 * MIB])
    s.received()
    assert th.is_alive(), out      # nothing durable yet: it waits
    s.send(data[8 * MIB:SYNC + MIB])
    th.join(60)
    assert not th.is_alive()
    assert out["r"].status_code == 200, out["r"].text
    # durable 0 after ~30 s: no sync recorded in the poll's time (a slow
    # disk, or "cannot sync"/"cannot record" in the daemon's log)
    assert out["r"].json()["durable"] >= SYNC, (out["s"], out["r"].text)
    s.send(data[SYNC + MIB:])
    assert s.answer() == 200
    s.abandon()
    assert hashlib.sha256(c.get(f"/{f['id']}/content").content).digest() \
        == hashlib.sha256(data).digest()
    # an ended session: at once
    c.assert_error(session(c, f["id"], uid, durableAbove=0, timeout=30),
                   404, "upload_not_found")
    # time up: the values of then
    uid = new_session(c, f["id"])
    t = time.time()
    r = session(c, f["id"], uid, durableAbove=10, timeout=1)
    assert r.status_code == 200 and r.json()["durable"] == 0
    assert time.time() - t >= 0.9
    # the session ends while a poll waits: 404 then
    th, out = poll_in_thread(c, f["id"], uid, durableAbove=0, timeout=30)
    assert c.delete(f"/{f['id']}/uploads/{uid}").status_code == 204
    th.join(30)
    assert not th.is_alive()
    assert out["r"].status_code in (200, 404)
    if out["r"].status_code == 200:     # it looked before the delete
        assert out["r"].json()["durable"] == 0
    else:
        assert out["r"].json()["error_type"] == "upload_not_found"
        assert out["s"] < 25
    for bad in ({"durableAbove": "-1", "timeout": "1"},
                {"durableAbove": "0", "timeout": "31"},
                {"durableAbove": "x"}):
        b = c.assert_error(session(c, f["id"], new_session(c, f["id"]),
                                   **bad), 400, "invalid_request")
        assert b["validation_errors"][0]["location"] in bad


def test_session_polls_past_the_bound_are_503(sfsd_factory):
    """Past http.changes_max_waiters polls waiting at once (0 here), a
    session poll that would wait is 503 too_many_waiters with
    Retry-After, as the change feed's is (review s21 P9: 200 at once,
    the values of now, which a client would loop on at full speed); one
    that does not wait is served."""
    c = sfsd_factory({"http.changes_max_waiters": "0"})
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    r = session(c, f["id"], uid, durableAbove=0, timeout=5)
    c.assert_error(r, 503, "too_many_waiters")
    assert r.headers["Retry-After"] == "1"
    for params in ({}, {"durableAbove": 0, "timeout": 0}):
        r = session(c, f["id"], uid, **params)
        assert r.status_code == 200 and r.json()["durable"] == 0, r.text
    assert c.delete(f"/{f['id']}/uploads/{uid}").status_code == 204


def test_a_poll_let_in_is_not_refused_when_it_waits_again(
        tmp_path_factory, blobs, meta, uploadfault):
    """http.changes_max_waiters bounds the polls coming in, not one let in
    already that goes back to wait after a notice short of its offset (a
    PUT's end here): with the bound 1, poll P1 waits; a PUT's end wakes
    it, and uploadfault.c holds its look again while poll P3 of another
    session takes the room's place; P1 must then wait on, and answer 200
    at its timeout (re-read s22 A2: 503 too_many_waiters halfway through
    its timeout). Each poll on a connection of its own: P1's daemon
    thread is held, and a connection it serves with it."""
    gate = tmp_path_factory.mktemp("gate")
    d, c = start(tmp_path_factory, dict(CONFIG, **{
        "http.changes_max_waiters": "1",
        "http.connection_timeout": "5"}), blobs=blobs, meta=meta,
        prefix=("env", f"LD_PRELOAD={uploadfault}",
                f"UPLOADFAULT_READ_GATE={gate}"))
    hold = None
    try:
        f = c.new_file(data=b"old")
        s_id, t_id = new_session(c, f["id"]), new_session(c, f["id"])

        def poll(uid, timeout, out=None):
            t = time.time()
            r = requests.get(f"{c.api}/{f['id']}/uploads/{uid}",
                             headers=c.hdr("alice"), timeout=90,
                             params={"durableAbove": 1 << 40,
                                     "timeout": timeout})
            if out is not None:
                out.update(r=r, s=time.time() - t)
            return r

        def in_thread(uid, timeout):
            out = {}
            th = threading.Thread(target=poll, args=(uid, timeout, out))
            th.start()
            return th, out

        def room_full():
            """Whether a poll coming in is refused (one that is let in
            instead waits its 1 s and leaves)."""
            r = poll(t_id, 1)
            assert r.status_code in (200, 503), r.text
            return r.status_code == 503

        def until(what, cond):
            deadline = time.time() + 30
            while not cond():
                assert time.time() < deadline, what
                time.sleep(0.02)

        def let_in(uid, timeout):
            """A poll in a thread, once it is the one in the room (a
            probe that came in first made it 503: again)."""
            deadline = time.time() + 60
            while True:
                th, out = in_thread(uid, timeout)
                until("no poll in the room", lambda: room_full() or
                      "r" in out)
                if "r" not in out:
                    return th, out
                th.join()
                assert out["r"].status_code == 503, out["r"].text
                assert time.time() < deadline, "never let in"
        th1, p1 = let_in(s_id, 15)
        hold = gate / f"{s_id}.hold"
        hold.touch()
        st = Stream(c, f["id"], s_id, 0, 2 * MIB)
        st.send(os.urandom(MIB))
        st.abandon()  # its end wakes P1, which looks again
        until("P1 did not look again",
              (gate / f"{s_id}.ropened").exists)
        th3, p3 = let_in(t_id, 5)
        hold.unlink()
        th1.join(60)
        assert not th1.is_alive()
        assert p1["r"].status_code == 200, p1["r"].text
        assert p1["s"] >= 14, p1
        th3.join(60)
        assert p3["r"].status_code == 200, p3["r"].text
        for uid in (s_id, t_id):
            assert c.delete(f"/{f['id']}/uploads/{uid}").status_code == 204
    finally:
        if hold and hold.exists():
            hold.unlink()
        c.http.close()
        d.stop()


def test_a_killed_daemon_keeps_its_sessions_at_their_last_sync(
        tmp_path_factory, blobs, meta):
    """kill -9 in the middle of a body: after the restart the session is
    durable where its last sync was (its file cut back to that), a file
    without a row is gone, and the content resumed from there is exact."""
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta)
    d2 = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        data = os.urandom(SYNC + 20 * MIB + 7)
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:SYNC + 8 * MIB])
        u = durable_above(c, f["id"], uid, 0)
        assert u["durable"] >= SYNC
        s.received()
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        d.logf.close()
        s.abandon()
        up = c.store / "staging" / ".uploads"
        assert (up / uid).stat().st_size >= u["durable"]
        stray = up / ("ab" * 16)
        stray.write_bytes(b"no row")
        d2 = Daemon(d.root, c.store, CONFIG)
        c2 = Client(d2.base, c.store)
        c2.keys, c2.users = c.keys, c.users
        r = session(c2, f["id"], uid)
        assert r.status_code == 200, r.text
        dur = r.json()["durable"]
        assert SYNC <= dur < SYNC + 8 * MIB
        assert r.json()["offset"] == dur
        assert (up / uid).stat().st_size == dur
        assert not stray.exists()
        assert c2.get(f"/{f['id']}/content").content == b"old"
        r = put(c2, f["id"], uid, dur, data[dur:])
        assert_committed(c2, f["id"], r, data)
        assert not (up / uid).exists()
        c2.http.close()
    finally:
        c.http.close()
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        if d2:
            d2.stop()


def test_a_delete_at_a_stopped_bodys_end_removes_its_file(sfsd):
    """A DELETE right after a client dropped its PUT (as the mount does
    when a write turns random) meets the server while it syncs what came:
    the session's row and file both go (re-read s21 A1: the row went,
    the file stayed until the next restart)."""
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    up = c.store / "staging" / ".uploads" / uid
    s = Stream(c, f["id"], uid, 0, SYNC)
    s.send(os.urandom(SYNC - MIB))  # none of it synced yet
    s.close()
    assert c.delete(f"/{f['id']}/uploads/{uid}").status_code == 204
    c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")
    deadline = time.time() + 30
    while up.exists():
        assert time.time() < deadline, "the session's file stayed"
        time.sleep(0.05)


def test_a_resume_below_durable_says_the_new_durable(sfsd):
    """A PUT from an offset below what the session holds durably cuts the
    file there: GET says that offset as durable while the PUT streams
    (review s21 P2: it said the old durable, above what the file held)."""
    c = sfsd
    f = c.new_file(data=b"old")
    uid = new_session(c, f["id"])
    data = os.urandom(SYNC + 8 * MIB)
    s = Stream(c, f["id"], uid, 0, len(data))
    s.send(data[:SYNC + 4 * MIB])
    s.close()
    durable_above(c, f["id"], uid, SYNC + 4 * MIB - 1)
    idle(c, f["id"], uid, SYNC + 4 * MIB)
    s2 = Stream(c, f["id"], uid, 0, len(data))
    s2.send(data[:MIB])
    deadline = time.time() + 30
    while True:  # the new PUT streams: GET says what it received
        u = session(c, f["id"], uid).json()
        if u["offset"] == MIB:
            break
        assert time.time() < deadline, u
        time.sleep(0.05)
    assert u["durable"] == 0, u
    s2.send(data[MIB:])
    assert s2.answer() == 200
    assert c.get(f"/{f['id']}/content").content == data


def test_expired_sessions_are_swept(sfsd_factory):
    c = sfsd_factory({"uploads.expire_seconds": "1",
                      "janitor.interval_ms": "100"})
    f = c.new_file(data=b"old")
    uids = [new_session(c, f["id"]) for _ in range(3)]
    deadline = time.time() + 30
    while any((c.store / "staging" / ".uploads" / u).exists() for u in uids):
        assert time.time() < deadline, "the sessions were not swept"
        time.sleep(0.05)
    for u in uids:
        c.assert_error(session(c, f["id"], u), 404, "upload_not_found")
    assert "upload: 1 expired" in c.daemon.log.read_text() or \
        "expired upload session" in c.daemon.log.read_text()


def test_the_sweep_holds_a_session_until_it_is_gone(tmp_path_factory,
                                                    blobs, meta,
                                                    uploadfault):
    """The janitor removes an expired session with its file locked from
    its look at the row until the file is gone (re-read s21 A4: it let the
    lock go in between, where a PUT of another process that had found the
    row just before it expired could take the file and stream into a
    session removed under it). uploadfault.c notes at each unlink of a
    session file whether it was locked."""
    log = tmp_path_factory.mktemp("unlinks") / "log"
    d, c = start(tmp_path_factory, {"uploads.expire_seconds": "1",
                                    "janitor.interval_ms": "100"},
                 blobs=blobs, meta=meta,
                 prefix=("env", f"LD_PRELOAD={uploadfault}",
                         f"UPLOADFAULT_UNLINK_LOG={log}"))
    try:
        f = c.new_file(data=b"old")
        uids = [new_session(c, f["id"]) for _ in range(3)]
        up = c.store / "staging" / ".uploads"
        deadline = time.time() + 30
        while any((up / u).exists() for u in uids):
            assert time.time() < deadline, "the sessions were not swept"
            time.sleep(0.05)
        for u in uids:
            c.assert_error(session(c, f["id"], u), 404, "upload_not_found")
        assert sorted(log.read_text().splitlines()) == \
            sorted(f"{u} locked" for u in uids)
    finally:
        c.http.close()
        d.stop()


def test_the_sweep_leaves_a_session_it_cannot_lock(tmp_path_factory,
                                                   blobs, meta,
                                                   uploadfault):
    """An expired session whose file the sweep cannot open to lock it
    (EMFILE through uploadfault.c) waits for a later sweep: it may be
    another process's live session (review s22 V1: it was removed without
    the lock). A session that expires after it is swept meanwhile."""
    cfg = dict(CONFIG, **{"uploads.expire_seconds": "1"})
    d, c = start(tmp_path_factory, dict(cfg, **{"janitor.interval_ms":
                                                 "3600000"}),
                 blobs=blobs, meta=meta)
    d2 = None
    try:
        f = c.new_file(data=b"old")
        stuck = new_session(c, f["id"])
        d.stop()
        d2 = Daemon(d.root, c.store, dict(cfg, **{"janitor.interval_ms":
                                                  "100"}),
                    prefix=("env", f"LD_PRELOAD={uploadfault}",
                            f"UPLOADFAULT_LOCK_EMFILE={stuck}"))
        c2 = Client(d2.base, c.store)
        c2.keys, c2.users = c.keys, c.users
        swept = new_session(c2, f["id"])
        up = c.store / "staging" / ".uploads"
        deadline = time.time() + 30
        while (up / swept).exists():
            assert time.time() < deadline, "the sweep did not run"
            time.sleep(0.05)
        assert (up / stuck).exists()
        assert f"expired session '{stuck}' left for a later sweep" in \
            d2.log.read_text()
        c2.http.close()
    finally:
        c.http.close()
        for x in (d, d2):
            if x and x.proc.poll() is None:
                x.stop()


def test_a_sweep_that_cannot_remove_a_row_keeps_its_file(tmp_path_factory,
                                                        blobs):
    """The janitor's sweep of an expired session whose row it cannot
    delete (SQLite busy: the test holds the database's write lock) keeps
    its file, says so, and removes both at a later sweep (re-read s22 A1:
    the file went, the row stayed, and a PUT that found the row streamed
    into a file no path named). SQLite alone: the lock is how the DELETE
    is made to fail."""
    import sqlite3
    d, c = start(tmp_path_factory, {"uploads.expire_seconds": "2",
                                    "janitor.interval_ms": "100",
                                    "db.busy_timeout_ms": "100"},
                 blobs=blobs)
    db = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        up = c.store / "staging" / ".uploads" / uid
        db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30,
                             isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        row = "SELECT COUNT(*) FROM upload WHERE uuid = ?"
        assert db.execute(row, (uid,)).fetchone()[0] == 1, "swept early"
        said = f"session '{uid}' left for a later sweep: cannot remove"
        deadline = time.time() + 30
        while up.exists() and said not in d.log.read_text():
            assert time.time() < deadline, "the sweep did not run"
            time.sleep(0.05)
        assert up.exists(), "the file went, its row stays"
        assert db.execute(row, (uid,)).fetchone()[0] == 1
        db.execute("ROLLBACK")
        deadline = time.time() + 30
        while up.exists():
            assert time.time() < deadline, "no later sweep removed it"
            time.sleep(0.05)
        assert db.execute(row, (uid,)).fetchone()[0] == 0
        c.assert_error(session(c, f["id"], uid), 404, "upload_not_found")
    finally:
        if db:
            db.close()
        c.http.close()
        d.stop()


@contextlib.contextmanager
def gated_put(tmp_path_factory, blobs, uploadfault, meta=None):
    """A daemon under uploadfault.c's UPLOADFAULT_LOCK_GATE, a file holding
    b"old" and a PUT of 1 MiB into a new session of it, held between its
    open of the session file and its lock: yields (c, fid, uid, go), where
    go() lets the PUT on and returns its answer. At the end the PUT is let
    on (if the test did not) and the daemon stops."""
    gate = tmp_path_factory.mktemp("gate")
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta,
                 prefix=("env", f"LD_PRELOAD={uploadfault}",
                         f"UPLOADFAULT_LOCK_GATE={gate}"))
    out, th, go_file = {}, None, None

    def go():
        go_file.touch()
        th.join(60)
        assert not th.is_alive(), "the PUT did not end"
        return out["r"]
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        go_file = gate / f"{uid}.go"
        th = threading.Thread(target=lambda: out.update(
            r=put(c, f["id"], uid, 0, os.urandom(MIB), busy_ok=True)))
        th.start()
        wait_until(lambda: (gate / f"{uid}.opened").exists(),
                   "the PUT did not open the file")
        yield c, f["id"], uid, go
    finally:
        if th:
            go_file.touch()
            th.join(60)
        c.http.close()
        d.stop()


def test_a_put_that_locks_a_removed_file_is_404(tmp_path_factory, blobs,
                                                meta, uploadfault):
    """A session file unlinked between a PUT's open of it and its lock
    (by whoever held the lock: a sweep, a DELETE, another process's end)
    is not streamed into, whatever the row says: 404 upload_not_found
    (re-read s22 A1: the PUT took the lock on the unlinked file, found the
    row and streamed into a file no path named). The test removes the
    file while gated_put() holds the PUT between its open and its lock."""
    with gated_put(tmp_path_factory, blobs, uploadfault, meta) as \
            (c, fid, uid, go):
        (c.store / "staging" / ".uploads" / uid).unlink()
        c.assert_error(go(), 404, "upload_not_found")
        assert c.get(f"/{fid}/content").content == b"old"


def test_a_put_that_finds_the_row_gone_removes_the_file(tmp_path_factory,
                                                        blobs, uploadfault):
    """A PUT that takes a session file's lock and then finds the row gone
    (removed meanwhile by a DELETE or an end that found the file locked,
    and so left it to the lock's holder) removes the file: 404
    upload_not_found, and nothing left in .uploads/ (else it stayed until
    the next start). The test deletes the row while gated_put() holds the
    PUT between its open of the file and its lock (SQLite alone: in the
    database file)."""
    import sqlite3
    with gated_put(tmp_path_factory, blobs, uploadfault) as \
            (c, fid, uid, go):
        db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30)
        with db:
            db.execute("DELETE FROM upload WHERE uuid = ?", (uid,))
        db.close()
        c.assert_error(go(), 404, "upload_not_found")
        assert not (c.store / "staging" / ".uploads" / uid).exists(), \
            "the file stayed without its row"
        assert c.get(f"/{fid}/content").content == b"old"


def test_a_start_skips_a_session_it_cannot_cut_back(tmp_path_factory,
                                                    blobs, meta,
                                                    uploadfault):
    """The start's recovery meets a session file it cannot cut back to
    its durable offset (ftruncate fails with EIO through uploadfault.c):
    it says so in the log and goes on; the daemon starts, the other
    session is cut back, and that one stays as its row says (re-read s21
    A6: speechfsd did not start)."""
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta)
    d2 = None
    try:
        f = c.new_file(data=b"old")
        bad, good = new_session(c, f["id"]), new_session(c, f["id"])
        d.stop()
        up = c.store / "staging" / ".uploads"
        for uid in (bad, good):  # bytes past durable (0), as a crash
            (up / uid).write_bytes(b"x" * 1000)
        d2 = Daemon(d.root, c.store, CONFIG,
                    prefix=("env", f"LD_PRELOAD={uploadfault}",
                            f"UPLOADFAULT_TRUNC={bad}"))
        c2 = Client(d2.base, c.store)
        c2.keys, c2.users = c.keys, c.users
        assert f"session '{bad}': cannot cut it back" in d2.log.read_text()
        assert (up / good).stat().st_size == 0
        assert (up / bad).stat().st_size == 1000
        for uid in (bad, good):
            u = session(c2, f["id"], uid).json()
            assert u["durable"] == u["offset"] == 0, u
        assert c2.get(f"/{f['id']}/uploads/{bad}/content").content == b""
        data = os.urandom(MIB)
        assert_committed(c2, f["id"], put(c2, f["id"], good, 0, data), data)
        assert c2.delete(f"/{f['id']}/uploads/{bad}").status_code == 204
        assert not (up / bad).exists()
        c2.http.close()
    finally:
        c.http.close()
        for x in (d, d2):
            if x and x.proc.poll() is None:
                x.stop()


def test_daemons_starting_at_once_take_one_node_id(tmp_path_factory,
                                                   blobs, meta,
                                                   uploadfault):
    """Two daemons that start at once on a store directory without
    STORE/staging/.uploads/.node (a store older than sessions) end with
    one id: a session made through either is known to the other (re-read
    s21 A5: both found none and each wrote its own, the second's
    replacing the first's on disk). uploadfault.c makes each look at
    .node last a second, so that both look before either writes."""
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta)
    c.http.close()
    d.stop()
    node = c.store / "staging" / ".uploads" / ".node"
    node.unlink()
    pre = ("env", f"LD_PRELOAD={uploadfault}", "UPLOADFAULT_NODE_MS=1000")
    ds, errs, cs = [None, None], [], []
    up, done = threading.Barrier(3), threading.Event()

    def run(i):
        """Start daemon i and stay: a daemon dies with the thread that
        started it (fsutil.STOPPABLE)."""
        try:
            ds[i] = Daemon(d.root, c.store, CONFIG, prefix=pre)
        except BaseException as x:  # noqa: B036 (told in the main thread)
            errs.append(x)
        up.wait(60)
        done.wait(120)
    ths = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for th in ths:
        th.start()
    try:
        up.wait(60)
        assert not errs and all(ds), errs
        for x in ds:
            cx = Client(x.base, c.store)
            cx.keys, cx.users = c.keys, c.users
            cs.append(cx)
        f = cs[0].new_file(data=b"old")
        for a, b in ((0, 1), (1, 0)):
            uid = new_session(cs[a], f["id"])
            r = session(cs[b], f["id"], uid)
            assert r.status_code == 200, r.text
            assert cs[b].delete(f"/{f['id']}/uploads/{uid}").status_code \
                == 204
        assert len(node.read_text()) == 16
        assert sorted(p.name for p in node.parent.iterdir()) == [".node"]
    finally:
        for cx in cs:
            cx.http.close()
        for x in ds:
            if x:
                x.stop()
        done.set()
        for th in ths:
            th.join(30)


def test_a_node_id_that_cannot_be_read_stops_the_start(tmp_path_factory,
                                                       blobs, meta,
                                                       uploadfault):
    """A .node that cannot be read (EIO through uploadfault.c) stops the
    start with the error, the id kept (review s22 V2: a new id replaced a
    good one, every session made before unknown); the next start reads
    it and knows the session. A .node.tmp a crash left goes at a start
    (V3); a .node that holds no id is replaced, with a warning, and the
    sessions of the old id go (their rows, their files)."""
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta)
    up = c.store / "staging" / ".uploads"
    node = up / ".node"
    ds = []
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        d.stop()
        before = node.read_text()
        with pytest.raises(AssertionError) as x:
            ds.append(Daemon(d.root, c.store, CONFIG,
                             prefix=("env", f"LD_PRELOAD={uploadfault}",
                                     "UPLOADFAULT_NODE_EIO=1")))
        assert "reading STORE/staging/.uploads/.node: Input/output error" \
            in str(x.value)
        assert node.read_text() == before
        (up / ".node.tmp").write_text("a crash's")
        ds.append(Daemon(d.root, c.store, CONFIG))
        c2 = Client(ds[-1].base, c.store)
        c2.keys, c2.users = c.keys, c.users
        assert session(c2, f["id"], uid).status_code == 200
        c2.http.close()
        assert sorted(p.name for p in up.iterdir()) == [".node", uid]
        ds.pop().stop()
        node.write_text("not an id")
        ds.append(Daemon(d.root, c.store, CONFIG))
        assert "holds no id: a new one replaces it" in \
            ds[-1].log.read_text()
        new = node.read_text()
        assert len(new) == 16 and new != before
        int(new, 16)
        # the session of the old id: its file and row go (re-read s22 A6:
        # neither the sweep nor a start ever looked at them again)
        assert "1 session(s) of this store directory's former id " \
            "removed" in ds[-1].log.read_text()
        assert sorted(p.name for p in up.iterdir()) == [".node"]
        c2 = Client(ds[-1].base, c.store)
        c2.keys, c2.users = c.keys, c.users
        c2.assert_error(session(c2, f["id"], uid), 404, "upload_not_found")
        c2.http.close()
    finally:
        c.http.close()
        for x in [d] + ds:
            if x.proc.poll() is None:
                x.stop()


def test_no_sessions_without_extensions(sfsd_factory):
    c = sfsd_factory({"http.extensions": "false"})
    f = c.new_file(data=b"old")
    c.assert_error(c.post(f"/{f['id']}/uploads"), 404)
    doc = c.get("/api/v1/openapi.json", who=None).json()
    assert API + "/{id}/uploads" not in doc["paths"]


def test_a_slow_sync_does_not_hold_the_body(tmp_path_factory, blobs, meta,
                                            uploadfault):
    """A session's syncs run beside its body: while the sync at 32 MiB
    waits for the disk (held by uploadfault.c until the test lets it go),
    the daemon goes on receiving, far past the few MiB its stage's pipe
    holds (until 2026-12-06 the sync was the pipe's writer's: the body
    stood still for each sync, two a 32 MiB with the row's); durable
    moves once the sync is let go, and the content is exact at the end."""
    gate = tmp_path_factory.mktemp("syncgate") / "hold"
    gate.touch()
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta,
                 prefix=("env", f"LD_PRELOAD={uploadfault}",
                         f"UPLOADFAULT_SYNC_GATE={gate}"))
    t = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        data = os.urandom(SYNC + 24 * MIB + 5)
        s = Stream(c, f["id"], uid, 0, len(data))
        t = threading.Thread(target=s.send, args=(data[:SYNC + 24 * MIB],))
        t.start()
        deadline = time.time() + 60
        while True:
            u = session(c, f["id"], uid).json()
            if u["offset"] >= SYNC + 20 * MIB:
                break
            assert time.time() < deadline, u
            time.sleep(0.02)
        assert u["durable"] == 0, u
        gate.unlink()
        t.join()
        assert durable_above(c, f["id"], uid, 0)["durable"] >= SYNC
        s.send(data[SYNC + 24 * MIB:])
        assert s.answer() == 200
        r = c.get(f"/{f['id']}/content")
        assert hashlib.sha256(r.content).digest() == \
            hashlib.sha256(data).digest()
    finally:
        gate.unlink(missing_ok=True)
        if t:
            t.join()
        c.http.close()
        d.stop()


def store_sql(request, c, sql):
    """Run SQL on c's store's database (SQLite or its PostgreSQL schema),
    as another client would."""
    if c.meta.kind != "pg":
        import sqlite3
        db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30,
                             isolation_level=None)
        try:
            db.executescript(sql)
        finally:
            db.close()
        return
    conf = dict(line.split(" = ", 1) for line in
                (c.store / "db.url").read_text().splitlines() if " = " in line)
    server = request.getfixturevalue("pg_server")
    name = c.meta.url.split("///", 1)[1].split("?", 1)[0]
    server.psql(name, f'SET search_path = "{conf["db.schema"]}"; {sql}')


# A trigger that fails each update of a session's durable offset.
NO_RECORD = {
    "sqlite": ("CREATE TRIGGER no_record BEFORE UPDATE OF durable ON upload"
               " BEGIN SELECT RAISE(ABORT, 'test: no record'); END;",
               "DROP TRIGGER no_record;"),
    "pg": ("CREATE FUNCTION no_record() RETURNS trigger LANGUAGE plpgsql"
           " AS $$BEGIN RAISE EXCEPTION 'test: no record'; END$$;"
           " CREATE TRIGGER no_record BEFORE UPDATE OF durable ON upload"
           " FOR EACH ROW EXECUTE FUNCTION no_record();",
           "DROP TRIGGER no_record ON upload; DROP FUNCTION no_record();"),
}


def test_a_failed_record_is_made_again_at_the_next_sync(
        request, tmp_path_factory, blobs, meta):
    """A row update that fails at a sync (the database busy, or down a
    moment; here a trigger refuses it) costs that record only: the next
    sync records all that is synced, and the body goes on durably
    (re-read s23 A2: until 2026-12-06 one failed update stopped
    durability for the rest of the body, and a drop later resumed from
    before it)."""
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta)
    s = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        data = os.urandom(2 * SYNC + 16 * MIB)
        add, drop = NO_RECORD[meta.kind]
        store_sql(request, c, add)
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:SYNC + 8 * MIB])
        said = f"session '{uid}': cannot record "
        deadline = time.time() + 60
        while said not in d.log.read_text():
            assert time.time() < deadline, d.log.read_text()[-2000:]
            time.sleep(0.05)
        assert session(c, f["id"], uid).json()["durable"] == 0
        store_sql(request, c, drop)
        s.send(data[SYNC + 8 * MIB:2 * SYNC + 8 * MIB])
        assert durable_above(c, f["id"], uid, SYNC - 1,
                             seconds=60)["durable"] >= 2 * SYNC
        s.send(data[2 * SYNC + 8 * MIB:])
        assert s.answer() == 200
        got = c.get(f"/{f['id']}/content").content
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    finally:
        if s:
            s.abandon()
        c.http.close()
        d.stop()


def file_syncs(log):
    """The syncs of a session's file (not of the database's) that
    uploadfault.c noted in `log`."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [x for x in lines if "speechfs.db" not in x]


def test_an_ended_session_makes_no_pending_sync(tmp_path_factory, blobs,
                                                meta, uploadfault):
    """A sync asked and not begun when the body ends (and commits) is not
    made: its bytes are the commit's (re-read s23 A6: the syncer still
    synced the file, updated the gone row and told the polls, in the
    thread that ends the request). uploadfault.c holds the first sync
    until the request's end stops the syncer, and notes each sync."""
    tmp = tmp_path_factory.mktemp("endsync")
    gate, log, joined = tmp / "hold", tmp / "syncs", tmp / "joined"
    gate.touch()
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs, meta=meta,
                 prefix=("env", f"LD_PRELOAD={uploadfault}",
                         f"UPLOADFAULT_SYNC_GATE={gate}",
                         f"UPLOADFAULT_SYNC_LOG={log}",
                         f"UPLOADFAULT_JOIN_MARK={joined}"))
    s = None
    try:
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        data = os.urandom(2 * SYNC + 16 * MIB)
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:SYNC + 8 * MIB])
        deadline = time.time() + 60
        while not file_syncs(log):
            assert time.time() < deadline, "the sync at 32 MiB did not begin"
            time.sleep(0.02)
        s.send(data[SYNC + 8 * MIB:])
        assert s.answer() == 200  # committed while the first sync waits
        deadline = time.time() + 60
        while not joined.exists():
            assert time.time() < deadline, "the syncer was not stopped"
            time.sleep(0.02)
        gate.unlink()
        s.abandon()
        s = None
        c.http.close()
        d.stop()  # the request's end, and so the syncer's, came before
        d = None
        assert len(file_syncs(log)) == 1, \
            "a sync asked at 64 MiB was made after the commit: " + \
            log.read_text()
    finally:
        gate.unlink(missing_ok=True)
        if s:
            s.abandon()
        if d:
            c.http.close()
            d.stop()
