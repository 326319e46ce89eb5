"""The API's extensions for remote mounts, against a real daemon:
PUT /files/{id}/content (a new content version under the same id,
streamed, with If-Match), an empty file's lazy create and its sync (seen
with strace on the daemon), the caller's directories (list, make, remove
when empty, rename atomically) and the change feed with its long poll
(woken by commits of any process, bounded, answered at shutdown), each
with its scopes, tenant isolation and shares."""
import base64
import concurrent.futures
import hashlib
import json
import re
import socket
import sqlite3
import time
import uuid

import requests

import fsutil
from conftest import API, Client, Daemon
from test_api_listening import wav, wait_listening

DIRS = "/api/v1/speech-services/directories"
SPACE = "/api/v1/speech-services/space"
CHANGES = "/api/v1/speech-services/changes"


def put(c, fid, data, who="alice", headers=None, **params):
    return c.req("PUT", f"/{fid}/content", who, data=data,
                 headers=headers, params=params or None)


def etag(sha):
    return '"%s"' % sha


def used_bytes(c, tenant):
    return c.admin("tenant", "quota", "--id", tenant)["usedBytes"]


# ---- PUT /files/{id}/content -------------------------------------------

def test_put_content_keeps_the_id_and_replaces_the_bytes(sfsd):
    c = sfsd
    f = c.new_file(data=b"first version", name="doc", path="/put/",
                   tags='["keep"]')
    r = put(c, f["id"], b"second version, longer")
    assert r.status_code == 200, r.text
    g = r.json()
    want = hashlib.sha256(b"second version, longer").hexdigest()
    assert g["id"] == f["id"] and g["sha256"] == want
    assert g["size"] == len(b"second version, longer")
    assert g["name"] == "doc" and g["path"] == "/put/"
    assert g["tags"] == ["keep"]
    assert r.headers["ETag"] == etag(want)
    d = c.get(f"/{f['id']}/content")
    assert d.content == b"second version, longer"
    assert d.headers["ETag"] == etag(want)
    # an empty body is an empty file
    r = put(c, f["id"], b"")
    assert r.status_code == 200 and r.json()["size"] == 0
    assert c.get(f"/{f['id']}/content").content == b""


def test_put_content_streams_chunked_bodies(sfsd):
    c = sfsd
    f = c.new_file(data=b"x")
    blocks = [bytes([i]) * 65536 for i in range(48)]     # 3 MiB

    def gen():
        yield from blocks
    r = put(c, f["id"], gen())
    assert r.status_code == 200, r.text
    whole = b"".join(blocks)
    assert r.json()["sha256"] == hashlib.sha256(whole).hexdigest()
    assert c.get(f"/{f['id']}/content").content == whole


def _crc32c_table():
    t = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    """CRC32C (RFC 3720) a byte at a time from a table made here:
    independent of the daemon's code."""
    c = 0xFFFFFFFF
    t = CRC32C_TABLE
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def crc_header(data):
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()


def test_crc32c_reference_vectors():
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"123456789") == 0xE3069283
    assert crc_header(b"123456789") == "4waSgw=="


def test_uploads_answer_the_crc32c_of_what_they_got(sfsd_factory):
    """POST /files and PUT …/content answer X-Speechfs-Content-Crc32c:
    the CRC32C of the bytes the server got (small, empty, and past the
    4 MiB where the stage hashes in a thread of its own, chunked too),
    and the document names it."""
    c = sfsd_factory({"http.max_upload_bytes": str(64 << 20)})
    r = c.upload("alice", b"123456789")
    assert r.status_code == 201, r.text
    assert r.headers["X-Speechfs-Content-Crc32c"] == "4waSgw=="
    fid = r.json()["id"]
    big = bytes(range(256)) * 4096 * 9 + b"tail"        # 9 MiB and 4
    for data in (b"", b"a", bytes(32), big):
        r = put(c, fid, data)
        assert r.status_code == 200, r.text
        assert r.headers["X-Speechfs-Content-Crc32c"] == crc_header(data)
        assert r.json()["size"] == len(data)

    def gen():
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]
    r = put(c, fid, gen())
    assert r.status_code == 200, r.text
    assert r.headers["X-Speechfs-Content-Crc32c"] == crc_header(big)
    r = c.upload("alice", big)
    assert r.headers["X-Speechfs-Content-Crc32c"] == crc_header(big)
    doc = c.get("/api/v1/openapi.json", who=None).json()
    paths = doc["paths"]
    for path, method, code in (("", "post", "201"),
                               ("/{id}/content", "put", "200")):
        op = paths["/api/v1/speech-services/files" + path][method]
        assert "X-Speechfs-Content-Crc32c" in \
            op["responses"][code]["headers"]


def test_no_crc32c_without_extensions(sfsd_factory):
    """http.extensions = false: no X-Speechfs-Content-Crc32c, and the
    document does not name it (a remote mount then checks SHA-256)."""
    c = sfsd_factory({"http.extensions": "false"})
    r = c.upload("alice", b"123456789")
    assert r.status_code == 201, r.text
    assert "X-Speechfs-Content-Crc32c" not in r.headers
    doc = c.get("/api/v1/openapi.json", who=None).json()
    post = doc["paths"]["/api/v1/speech-services/files"]["post"]
    assert "X-Speechfs-Directory" in post["responses"]["201"]["headers"]
    assert "X-Speechfs-Content-Crc32c" not in \
        post["responses"]["201"]["headers"]
    assert "put" not in \
        doc["paths"]["/api/v1/speech-services/files/{id}/content"]
    assert "X-Speechfs-Content-Crc32c" not in \
        [p["name"] for p in post.get("parameters", [])]
    # a request's header is ignored, as a seed server would: stored, and
    # no answer's header says it was checked
    r = up(c, b"123456789", "AAAAAA==")
    assert r.status_code == 201, r.text
    assert "X-Speechfs-Content-Crc32c" not in r.headers
    assert c.get(f"/{r.json()['id']}/content").content == b"123456789"


def up(c, data, crc, **parts):
    """POST /files with X-Speechfs-Content-Crc32c: crc."""
    return c.post("", files={"file": ("rec.wav", data)},
                  data={"name": "rec", "generateListeningAudio": "false",
                        **parts},
                  headers={"X-Speechfs-Content-Crc32c": crc})


def raw_put(c, path, chunks, trailers=(), who="alice"):
    """A chunked PUT with trailers (requests sends none): (status, body)."""
    host, port = c.base.split("//")[1].split(":")
    head = (f"PUT {API}{path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"X-API-Key: {c.keys[who]}\r\nTransfer-Encoding: chunked\r\n"
            "Trailer: X-Speechfs-Content-Crc32c\r\nConnection: close\r\n"
            "\r\n").encode()
    body = b"".join(b"%x\r\n%s\r\n" % (len(x), x) for x in chunks if x)
    tail = b"0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                               for k, v in trailers) + b"\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sk:
        sk.sendall(head + body + tail)
        got = b""
        while True:
            x = sk.recv(65536)
            if not x:
                break
            got += x
    hdr, _, rest = got.partition(b"\r\n\r\n")
    status = int(hdr.split(b" ")[1])
    if b"transfer-encoding: chunked" in hdr.lower():
        out = b""
        while True:
            n, _, rest = rest.partition(b"\r\n")
            n = int(n, 16)
            if not n:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        rest = out
    return status, rest


def test_uploads_refuse_bytes_that_are_not_the_crc32c_sent(sfsd_factory):
    """X-Speechfs-Content-Crc32c in the request (a header, or a chunked
    body's trailer): the server compares it with what it got before it
    stores anything. Another one is 400 checksum_mismatch and nothing is
    stored: no new file (its idKey stays free), an existing file keeps
    its content; the right one is stored; a value of another form is 400
    invalid_parameter."""
    c = sfsd_factory({"http.max_upload_bytes": str(64 << 20)})
    good = b"first version"
    r = up(c, good, crc_header(good), path="/crc/")
    assert r.status_code == 201, r.text
    f = r.json()
    wrong = crc_header(b"other bytes")

    def listed():
        return c.get("", params={"path": "/crc/"}).json()["total"]

    def content():
        return c.get(f"/{f['id']}/content").content

    key = str(uuid.uuid4())
    big = bytes(range(256)) * 4096 * 9 + b"tail"         # 9 MiB and 4
    # a create: nothing made, the key still free
    for data in (b"new", big):
        r = c.post("", files={"file": ("x.wav", data)},
                   data={"name": "n", "path": "/crc/"},
                   params={"idKey": key},
                   headers={"X-Speechfs-Content-Crc32c": wrong})
        body = c.assert_error(r, 400, "checksum_mismatch")
        assert "nothing is stored" in body["message"]
        assert listed() == 1
    # a new content version: the old one stays
    for data in (b"second", big, b""):
        r = put(c, f["id"], data,
                headers={"X-Speechfs-Content-Crc32c": wrong})
        c.assert_error(r, 400, "checksum_mismatch")
        assert content() == good
        assert c.get(f"/{f['id']}").json()["sha256"] == f["sha256"]
    # not of the form: refused, nothing stored
    for bad in ("abc", "AAAA", "AAAAAAAA", "4waSgw", "!!!!!!=="):
        c.assert_error(put(c, f["id"], b"second",
                           headers={"X-Speechfs-Content-Crc32c": bad}),
                       400, "invalid_parameter")
        r = up(c, b"new", bad, path="/crc/")
        c.assert_error(r, 400, "invalid_parameter")
    assert content() == good and listed() == 1
    # a chunked body's trailer
    chunks = [big[i:i + 65536] for i in range(0, len(big), 65536)]
    st, body = raw_put(c, f"/{f['id']}/content", chunks,
                       [("X-Speechfs-Content-Crc32c", wrong)])
    assert st == 400, body
    assert json.loads(body)["error_type"] == "checksum_mismatch"
    assert content() == good
    st, body = raw_put(c, f"/{f['id']}/content", chunks,
                       [("X-Speechfs-Content-Crc32c", "abc")])
    assert st == 400 and json.loads(body)["error_type"] == \
        "invalid_parameter"
    assert content() == good
    st, body = raw_put(c, f"/{f['id']}/content", chunks,
                       [("X-Speechfs-Content-Crc32c", crc_header(big))])
    assert st == 200, body
    assert json.loads(body)["size"] == len(big)
    assert content() == big
    # the right one: stored
    r = put(c, f["id"], b"second",
            headers={"X-Speechfs-Content-Crc32c": crc_header(b"second")})
    assert r.status_code == 200, r.text
    assert r.headers["X-Speechfs-Content-Crc32c"] == crc_header(b"second")
    assert content() == b"second"
    r = c.post("", files={"file": ("x.wav", big)},
               data={"name": "n", "path": "/crc/"}, params={"idKey": key},
               headers={"X-Speechfs-Content-Crc32c": crc_header(big)})
    assert r.status_code == 201, r.text
    assert c.get(f"/{r.json()['id']}/content").content == big
    assert listed() == 2
    # the document names the request's header too
    doc = c.get("/api/v1/openapi.json", who=None).json()
    for path, method in (("", "post"), ("/{id}/content", "put")):
        op = doc["paths"]["/api/v1/speech-services/files" + path][method]
        assert "X-Speechfs-Content-Crc32c" in \
            [p["name"] for p in op["parameters"] if p["in"] == "header"]


def test_put_content_if_match(sfsd):
    c = sfsd
    f = c.new_file(data=b"v1")
    old = etag(f["sha256"])
    r = put(c, f["id"], b"v2", headers={"If-Match": old})
    assert r.status_code == 200, r.text
    new = r.headers["ETag"]
    # a writer that saw v1 loses: 412 and nothing changes
    r = put(c, f["id"], b"v3", headers={"If-Match": old})
    body = c.assert_error(r, 412, "precondition_failed")
    assert f["sha256"] not in body["message"]
    assert c.get(f"/{f['id']}/content").content == b"v2"
    # a list with the current tag, and "*", match; a weak tag never does
    r = put(c, f["id"], b"v3", headers={"If-Match": '"00", ' + new})
    assert r.status_code == 200, r.text
    assert put(c, f["id"], b"v4", headers={"If-Match": "*"}).status_code \
        == 200
    cur = etag(c.get(f"/{f['id']}").json()["sha256"])
    c.assert_error(put(c, f["id"], b"v5", headers={"If-Match": "W/" + cur}),
                   412, "precondition_failed")
    c.assert_error(put(c, f["id"], b"v5", headers={"If-Match": "abc"}),
                   400, "invalid_parameter")
    assert c.get(f"/{f['id']}/content").content == b"v4"


def test_put_content_if_match_is_one_winner_among_racers(sfsd):
    c = sfsd
    f = c.new_file(data=b"base")
    tag = etag(f["sha256"])

    def one(i):
        s = requests.Session()
        r = s.put(c.api + f"/{f['id']}/content", data=b"racer %d" % i,
                  headers={**c.hdr("alice"), "If-Match": tag}, timeout=30)
        s.close()
        return r.status_code
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        codes = list(ex.map(one, range(6)))
    assert sorted(codes) == [200] + [412] * 5, codes
    body = c.get(f"/{f['id']}/content").content
    assert re.fullmatch(rb"racer \d", body), body


def test_put_content_permissions_and_scopes(sfsd):
    c = sfsd
    f = c.new_file(data=b"owned by alice")
    fid = f["id"]
    r = c.post(f"/{fid}/shares", json={"userId": c.users["bob"],
                                       "permission": "VIEW"})
    assert r.status_code in (200, 201), r.text
    c.assert_error(put(c, fid, b"by bob", who="bob"), 403, "forbidden")
    c.assert_error(put(c, fid, b"by carol", who="carol"), 404,
                   "file_not_found")
    c.assert_error(put(c, fid, b"ro", who="alice_ro"), 403,
                   "insufficient_scope")
    c.assert_error(put(c, fid, b"none", who=None), 401)
    assert c.get(f"/{fid}/content").content == b"owned by alice"
    # an EDIT share may write the content
    r = c.post(f"/{fid}/shares", json={"userId": c.users["bob"],
                                       "permission": "EDIT"})
    assert r.status_code in (200, 201), r.text
    r = put(c, fid, b"by bob", who="bob")
    assert r.status_code == 200, r.text
    assert c.get(f"/{fid}/content").content == b"by bob"
    # a deleted file takes no content; an unknown one is 404
    assert c.delete(f"/{fid}").status_code == 204
    c.assert_error(put(c, fid, b"late"), 409, "file_deleted")
    c.assert_error(put(c, "00000000-0000-4000-8000-000000000000", b"x"),
                   404, "file_not_found")


def test_put_content_size_limit(sfsd):
    c = sfsd
    f = c.new_file(data=b"small")
    big = b"z" * (4 * 1024 * 1024 + 1)       # the test daemon's limit + 1
    c.assert_error(put(c, f["id"], big), 413, "payload_too_large")

    def gen():
        for i in range(0, len(big), 1 << 20):
            yield big[i:i + (1 << 20)]
    c.assert_error(put(c, f["id"], gen()), 413, "payload_too_large")
    assert c.get(f"/{f['id']}/content").content == b"small"


def test_put_content_quota_and_dedupe(sfsd_factory):
    c = sfsd_factory()
    t = c.quota_user(1000, 10)
    a = c.new_file(who="q", data=b"a" * 400)
    b = c.new_file(who="q", data=b"b" * 400)
    assert used_bytes(c, t) == 800
    # the new version counts, not both: 400 -> 500 fits (900)
    assert put(c, a["id"], b"c" * 500, who="q").status_code == 200
    assert used_bytes(c, t) == 900
    c.assert_error(put(c, a["id"], b"d" * 700, who="q"), 413,
                   "quota_exceeded")
    assert c.get(f"/{a['id']}/content", who="q").content == b"c" * 500
    # the same bytes as another file are stored once
    r = put(c, a["id"], b"b" * 400, who="q")
    assert r.status_code == 200 and r.json()["sha256"] == b["sha256"]
    assert used_bytes(c, t) == 400


def test_put_content_makes_listening_audio_again(sfsd):
    c = sfsd
    f = c.new_file(data=wav(0.5, freq=300), filename="a.wav",
                   listening="true")
    first = wait_listening(c, f["id"])["listeningAudio"]
    assert first["status"] == "COMPLETED"
    r = put(c, f["id"], wav(0.8, freq=600))
    assert r.status_code == 200, r.text
    assert r.json()["listeningAudio"]["status"] in ("PENDING",
                                                    "PROCESSING",
                                                    "COMPLETED")
    g = c.get(f"/{f['id']}").json()
    deadline = time.time() + 60
    while g["listeningAudio"]["status"] != "COMPLETED" or \
            g["listeningAudio"]["createdAt"] == first["createdAt"]:
        assert time.time() < deadline, g
        time.sleep(0.1)
        g = c.get(f"/{f['id']}").json()
    assert g["listeningAudio"]["size"] != first["size"]
    assert g["durationSeconds"] > 0.7
    # content that is not audio loses its MP3 and gets no new one
    r = put(c, f["id"], b"plain text now")
    assert r.status_code == 200
    assert r.json()["listeningAudio"] is None or \
        r.json()["listeningAudio"]["status"] != "PENDING"


# ---- POST /files?lazy=true and POST /files/{id}/sync --------------------

EMPTY = hashlib.sha256(b"").hexdigest()
NOBODY = "00000000-0000-4000-8000-000000000000"


def lazy_upload(c, data=b"", lazy="true", who="alice", path="/lazy/",
                name="lazy"):
    return c.req("POST", "", who, params={"lazy": lazy},
                 files={"file": ("lazy.wav", data)},
                 data={"name": name, "path": path,
                       "generateListeningAudio": "false"})


def locations(body):
    return [v["location"] for v in body["validation_errors"]]


def test_lazy_upload_waits_for_no_sync_the_sync_does(sfsd, tmp_path):
    """A lazy upload of an empty file is answered without a sync of the
    daemon's (strace on the real speechfsd), visible at once; its sync
    request, and a plain upload, each wait for one."""
    c = sfsd
    c.new_file(data=b"warm")            # the WAL started
    n, lazy, synced, plain, ids = 10, [], [], [], []
    with fsutil.SyncTrace(c.daemon.proc.pid, tmp_path) as tr:
        for i in range(n):
            t0 = time.time()
            r = lazy_upload(c, name="lazy%d" % i)
            lazy.append((t0, time.time()))
            assert r.status_code == 201, r.text
            f = r.json()
            assert f["size"] == 0 and f["sha256"] == EMPTY
            assert f["name"] == "lazy%d" % i and f["path"] == "/lazy/"
            ids.append(f["id"])
            # the same file to every reader at once
            assert c.get(f"/{f['id']}").json()["sha256"] == EMPTY
            t0 = time.time()
            r = c.post(f"/{f['id']}/sync")
            synced.append((t0, time.time()))
            assert r.status_code == 204 and r.content == b"", r.text
            t0 = time.time()
            c.new_file(data=b"plain %d" % i, path="/plain/")
            plain.append((t0, time.time()))
    # a checkpoint of the WAL (every 1,000 pages) syncs, wherever it falls
    assert sum(len(tr.syncs(*w)) for w in lazy) <= 3, tr.stop()
    for w in synced + plain:
        assert tr.syncs(*w), (w, tr.stop())
    got = c.get("", params={"path": "/lazy/", "size": 100}).json()
    assert sorted(x["id"] for x in got["files"]) == sorted(ids)
    # its content comes as any file's, under its id
    r = put(c, ids[0], b"content later")
    assert r.status_code == 200 and r.json()["size"] == 13, r.text


def test_sync_syncs_another_process_s_lazy_create(sfsd, tmp_path):
    """POST /files/{id}/sync makes the file durable whichever process
    answered its lazy create: a second daemon on the same store (as after
    a restart between a remote mount's creat() and close()) has made no
    commit of its own, and still syncs the WAL for it (strace)."""
    c = sfsd
    d2 = Daemon(tmp_path, c.daemon.store, args=("--no-workers",))
    c2 = Client(d2.base, c.daemon.store)
    try:
        c2.keys = c.keys
        # whatever d2 owed the disk is paid: it owes nothing now
        fid = c2.new_file(data=b"d2 plain", path="/lazy-other/")["id"]
        assert c2.post(f"/{fid}/sync").status_code == 204
        r = lazy_upload(c, path="/lazy-other/", name="made-by-d1")
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        with fsutil.SyncTrace(d2.proc.pid, tmp_path) as tr:
            t0 = time.time()
            r = c2.post(f"/{fid}/sync")
            t1 = time.time()
        assert r.status_code == 204, r.text
        assert tr.syncs(t0, t1), tr.stop()
    finally:
        c2.http.close()
        d2.stop()


def test_lazy_upload_refusals(sfsd):
    c = sfsd
    path = "/lazy-refused/"

    def total():
        return c.get("", params={"path": path}).json()["total"]
    # only an empty file can wait: bytes, an import, a bad value
    b = c.assert_error(lazy_upload(c, data=b"bytes", path=path), 400,
                       "invalid_request")
    assert locations(b) == ["lazy"]
    b = c.assert_error(lazy_upload(c, lazy="maybe", path=path), 400,
                       "invalid_request")
    assert locations(b) == ["lazy"]
    r = c.post("", params={"lazy": "true"},
               json={"uri": "https://example.com/a.wav", "name": "imp",
                     "path": path})
    assert locations(c.assert_error(r, 400, "invalid_request")) == \
        ["lazy"]
    r = c.post("", params={"lazy": "maybe"},
               json={"uri": "https://example.com/a.wav", "name": "imp",
                     "path": path})
    assert locations(c.assert_error(r, 400)) == ["lazy"]
    assert total() == 0
    # lazy=false is the seed's upload
    r = lazy_upload(c, data=b"bytes", lazy="false", path=path)
    assert r.status_code == 201 and r.json()["size"] == 5, r.text
    assert total() == 1


def id_upload(c, key, data=b"bytes", who="alice", path="/ids/",
              name="mine", param="idKey", **params):
    return c.req("POST", "", who, params={param: key, **params},
                 files={"file": ("mine.wav", data)},
                 data={"name": name, "path": path,
                       "generateListeningAudio": "false"})


ID_NS = uuid.UUID("9f46cd8d-d7d5-4402-99a0-f79b494cceef")


def derived(owner, key):
    """The id of owner's file made with idKey=key (the OpenAPI text's
    recipe: RFC 9562 version 8 over SHA-256)."""
    h = bytearray(hashlib.sha256(ID_NS.bytes + uuid.UUID(owner).bytes +
                                 uuid.UUID(key).bytes).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x80
    h[8] = (h[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(h)))


def test_users_me(sfsd):
    """GET /users/me: the caller's user id and tenant (what a client
    derives its new files' ids from), the credentials' scopes."""
    c = sfsd
    for who, tenant in (("alice", "a"), ("bob", "a"), ("carol", "b")):
        r = c.get("/api/v1/speech-services/users/me", who=who)
        assert r.status_code == 200, r.text
        assert r.json() == {"id": c.users[who],
                            "tenantId": c.tenants[tenant],
                            "scopes": ["speech:files:read",
                                       "speech:files:write",
                                       "speech:files:delete",
                                       "speech:files:share"]}, r.json()
    r = c.get("/api/v1/speech-services/users/me", who="alice_ro")
    assert r.json()["scopes"] == ["speech:files:read"]
    assert r.json()["id"] == c.users["alice"]
    c.assert_error(c.get("/api/v1/speech-services/users/me", who=None), 401)


def test_upload_under_an_id_key(sfsd):
    """POST /files?idKey=: the new file's id is derived from the caller's
    user id and the key (the client knows it beforehand), with its bytes,
    durable when answered. A key the caller used before (its file in any
    state, purged too) is 409 file_id_exists and makes nothing. No
    answer tells anything about another user's files: another tenant's
    user or a tenant-mate using alice's key, or asking alice's file's id
    as a key, gets 201 and an id of their own, derived from their user
    id, unrelated to alice's, exactly as for a key nobody used; alice's
    file is untouched. A key that is no UUID, or one given to an import,
    is 400 (location idKey); the earlier ?id= is refused (400, location
    id), never ignored."""
    c = sfsd
    path = "/ids/"

    def total():
        return c.get("", params={"path": path}).json()["total"]
    key = "6C1A9E2B-3D4F-4A5B-8C7D-9E0F1A2B3C4D"
    fid = derived(c.users["alice"], key)
    assert fid != key.lower()
    r = id_upload(c, key)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == fid and r.json()["size"] == 5
    got = c.get("/" + fid + "/content")
    assert got.status_code == 200 and got.content == b"bytes"
    # an empty one, lazily (a remote mount's create sent early)
    lkey = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d"
    lid = derived(c.users["alice"], lkey)
    r = id_upload(c, lkey, data=b"", lazy="true", name="lazy")
    assert r.status_code == 201 and r.json()["id"] == lid, r.text
    assert total() == 2
    # the key used again by alice, in another case: her own file has it
    for k in (key, key.lower()):
        c.assert_error(id_upload(c, k, name="again"), 409,
                       "file_id_exists")
    assert total() == 2
    # others: alice's key, or alice's file's id as a key, answer as a key
    # nobody used; the id is the asker's own derivation
    for who, where in (("carol", "/c/"), ("bob", "/b/")):
        for asked in (key, fid):
            r = id_upload(c, asked, data=b"theirs", who=who, path=where,
                          name="theirs")
            assert r.status_code == 201, (who, r.text)
            other = r.json()["id"]
            assert other == derived(c.users[who], asked), (who, other)
            assert other not in (fid, asked.lower()), other
            assert r.json()["size"] == 6 and r.json()["name"] == "theirs"
            got = c.get("/" + other + "/content", who=who)
            assert got.status_code == 200 and got.content == b"theirs"
            fresh = str(uuid.uuid4())
            nobody = id_upload(c, fresh, data=b"theirs", who=who,
                               path=where, name="nobody")
            assert nobody.status_code == 201
            assert nobody.json()["id"] == derived(c.users[who], fresh)
            assert set(r.json()) == set(nobody.json())
            # a repeat is the asker's own file's conflict, not alice's
            c.assert_error(id_upload(c, asked, who=who, path=where,
                                     name="again"), 409, "file_id_exists")
        # (a tenant-mate is told the file exists by a GET anyway: 403)
        c.assert_error(c.get("/" + fid, who=who),
                       404 if who == "carol" else 403)
    got = c.get("/" + fid)
    assert got.status_code == 200 and got.json()["name"] == "mine"
    assert got.json()["path"] == path and got.json()["size"] == 5
    assert c.get("/" + fid + "/content").content == b"bytes"
    assert total() == 2
    # deleted and purged: still taken (the owner's own)
    assert c.delete("/" + lid, params={"purge": "true"}).status_code \
        in (200, 204)
    c.assert_error(id_upload(c, lkey, name="back"), 409, "file_id_exists")
    b = c.assert_error(id_upload(c, "not-a-uuid"), 400, "invalid_request")
    assert locations(b) == ["idKey"]
    r = c.post("", params={"idKey": NOBODY},
               json={"uri": "https://example.com/a.wav", "name": "imp",
                     "path": path})
    assert locations(c.assert_error(r, 400, "invalid_request")) == ["idKey"]
    # the earlier form, whose id was the file's own: refused, not ignored
    r = id_upload(c, NOBODY, param="id", name="old")
    assert locations(c.assert_error(r, 400, "invalid_request")) == ["id"]
    r = c.post("", params={"id": NOBODY},
               json={"uri": "https://example.com/a.wav", "name": "imp",
                     "path": path})
    assert "id" in locations(c.assert_error(r, 400, "invalid_request"))
    assert total() == 1
    assert c.get("/" + NOBODY).status_code == 404


def test_id_key_refused_without_extensions(sfsd_factory):
    """A daemon with http.extensions = false does not honour idKey: it
    refuses it (400, location idKey) rather than make the file under an
    id the client did not expect; ?id= too. Nothing is made, and its
    document names neither idKey nor /users/me."""
    c = sfsd_factory({"http.extensions": "false"})
    for param in ("idKey", "id"):
        r = id_upload(c, NOBODY, param=param)
        assert locations(c.assert_error(r, 400, "invalid_request")) == \
            [param]
    assert c.get("", params={"path": "/ids/"}).json()["total"] == 0
    c.assert_error(c.get("/api/v1/speech-services/users/me"), 404)
    doc = c.get("/api/v1/openapi.json", who=None).json()
    post = doc["paths"]["/api/v1/speech-services/files"]["post"]
    assert [p["name"] for p in post.get("parameters", [])
            if p["name"] in ("idKey", "id", "lazy")] == []
    assert "/api/v1/speech-services/users/me" not in doc["paths"]
    # the plain upload still works
    assert c.new_file(path="/ids/")["size"] == 11


def test_sync_refusals(sfsd):
    c = sfsd
    r = lazy_upload(c, path="/lazy-sync/")
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    c.assert_error(c.post(f"/{NOBODY}/sync"), 404, "file_not_found")
    c.assert_error(c.post(f"/{fid}/sync", who="carol"), 404,
                   "file_not_found")
    c.assert_error(c.post(f"/{fid}/sync", who="alice_ro"), 403,
                   "insufficient_scope")
    c.assert_error(c.post(f"/{fid}/sync", who=None), 401)
    # a VIEW share may read, not sync; EDIT may
    r = c.post(f"/{fid}/shares", json={"userId": c.users["bob"],
                                       "permission": "VIEW"})
    assert r.status_code in (200, 201), r.text
    c.assert_error(c.post(f"/{fid}/sync", who="bob"), 403, "forbidden")
    r = c.post(f"/{fid}/shares", json={"userId": c.users["bob"],
                                       "permission": "EDIT"})
    assert r.status_code in (200, 201), r.text
    assert c.post(f"/{fid}/sync", who="bob").status_code == 204
    # a deleted file is no more to sync
    assert c.delete(f"/{fid}").status_code == 204
    c.assert_error(c.post(f"/{fid}/sync"), 409, "file_deleted")


# ---- directories ---------------------------------------------------------

def test_directories_make_list_remove(sfsd):
    c = sfsd
    r = c.post(DIRS, json={"path": "/dirs/empty/"})
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["path"] == "/dirs/empty/" and d["name"] == "empty"
    assert d["explicit"] is True and d["descendantCount"] == 0
    assert d["subdirectoryCount"] == 0
    c.assert_error(c.post(DIRS, json={"path": "/dirs/empty/"}), 409,
                   "directory_exists")
    c.assert_error(c.post(DIRS, json={"path": "/dirs/../x/"}), 400)
    c.assert_error(c.post(DIRS, json={"path": "/no-slash"}), 400)
    c.assert_error(c.post(DIRS, json={}), 400)
    r = c.get(DIRS, params={"path": "/dirs/"})
    assert r.status_code == 200, r.text
    assert [x["name"] for x in r.json()["directories"]] == ["empty"]
    assert "empty" in [x["name"] for x in c.get(
        DIRS, params={"path": "/dirs/"}).json()["directories"]]
    # a directory with a file in it is not removed
    c.new_file(data=b"in dir", path="/dirs/full/")
    c.assert_error(c.delete(DIRS, params={"path": "/dirs/full/"}), 409,
                   "directory_not_empty")
    c.assert_error(c.delete(DIRS, params={"path": "/dirs/nothing/"}), 404,
                   "directory_not_found")
    c.assert_error(c.delete(DIRS), 400)
    assert c.delete(DIRS, params={"path": "/dirs/empty/"}).status_code \
        == 204
    names = [x["name"] for x in c.get(DIRS, params={"path": "/dirs/"})
             .json()["directories"]]
    assert names == ["full"], names
    c.assert_error(c.get(DIRS, params={"path": "/dirs/empty/"}), 404,
                   "directory_not_found")


def test_directory_rename_moves_everything_below(sfsd):
    c = sfsd
    ids = [c.new_file(data=b"f%d" % i, name="f%d" % i,
                      path="/ren/a/" + "s/" * i)["id"] for i in range(3)]
    assert c.post(DIRS, json={"path": "/ren/a/empty/"}).status_code == 201
    r = c.post(DIRS + "/rename", json={"from": "/ren/a/", "to": "/ren/b/"})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/ren/b/" and r.json()["descendantCount"] == 4
    for i, fid in enumerate(ids):
        assert c.get(f"/{fid}").json()["path"] == "/ren/b/" + "s/" * i
    names = {x["name"] for x in c.get(DIRS, params={"path": "/ren/b/"})
             .json()["directories"]}
    assert names == {"s", "empty"}
    c.assert_error(c.get(DIRS, params={"path": "/ren/a/"}), 404)
    # below itself (EINVAL as rename(2) says), onto a directory that is
    # not empty, from nowhere
    c.assert_error(c.post(DIRS + "/rename", json={"from": "/ren/b/",
                                                  "to": "/ren/b/s/x/"}),
                   400)
    c.new_file(data=b"other", path="/ren/c/")
    c.assert_error(c.post(DIRS + "/rename", json={"from": "/ren/b/",
                                                  "to": "/ren/c/"}), 409)
    c.assert_error(c.post(DIRS + "/rename", json={"from": "/ren/zz/",
                                                  "to": "/ren/d/"}), 404)
    c.assert_error(c.post(DIRS + "/rename", json={"from": "/ren/b/"}), 400)
    for i, fid in enumerate(ids):
        assert c.get(f"/{fid}").json()["path"] == "/ren/b/" + "s/" * i


def test_directory_modification_time(sfsd):
    c = sfsd
    assert c.post(DIRS, json={"path": "/touch/d/"}).status_code == 201
    when = "2020-01-02T03:04:05.678Z"
    r = c.patch(DIRS, json={"path": "/touch/d/", "modifiedAt": when})
    assert r.status_code == 200, r.text
    assert r.json()["modifiedAt"] == when and r.json()["path"] == "/touch/d/"
    (d,) = c.get(DIRS, params={"path": "/touch/"}).json()["directories"]
    assert d["modifiedAt"] == when
    c.assert_error(c.patch(DIRS, json={"path": "/touch/d/",
                                       "modifiedAt": "yesterday"}), 400)
    c.assert_error(c.patch(DIRS, json={"path": "/touch/d/"}), 400)
    c.assert_error(c.patch(DIRS, json={"path": "/touch/none/",
                                       "modifiedAt": when}), 404,
                   "directory_not_found")
    c.assert_error(c.patch(DIRS, who="alice_ro", json={
        "path": "/touch/d/", "modifiedAt": when}), 403, "insufficient_scope")
    c.assert_error(c.patch(DIRS, who="bob", json={
        "path": "/touch/d/", "modifiedAt": when}), 404, "directory_not_found")


def test_directories_scopes_and_isolation(sfsd):
    c = sfsd
    assert c.post(DIRS, json={"path": "/iso/mine/"}).status_code == 201
    c.assert_error(c.post(DIRS, json={"path": "/iso/ro/"}, who="alice_ro"),
                   403, "insufficient_scope")
    c.assert_error(c.delete(DIRS, params={"path": "/iso/mine/"},
                            who="alice_ro"), 403, "insufficient_scope")
    c.assert_error(c.post(DIRS + "/rename", who="alice_ro",
                          json={"from": "/iso/", "to": "/iso2/"}),
                   403, "insufficient_scope")
    c.assert_error(c.get(DIRS, who=None), 401)
    assert c.get(DIRS, params={"path": "/iso/"}, who="alice_ro") \
        .status_code == 200
    # directories are the user's own: a colleague and another tenant see
    # none of them and cannot touch them
    for who in ("bob", "carol"):
        c.assert_error(c.get(DIRS, params={"path": "/iso/"}, who=who), 404,
                       "directory_not_found")
        c.assert_error(c.delete(DIRS, params={"path": "/iso/mine/"},
                                who=who), 404)
        c.assert_error(c.post(DIRS + "/rename", who=who,
                              json={"from": "/iso/", "to": "/x/"}), 404)
    assert c.get(DIRS, params={"path": "/iso/mine/"}).status_code == 200


# ---- extra attributes and space -----------------------------------------

def b64(b):
    return base64.b64encode(b).decode()


def xattrs(c, fid, who="alice"):
    r = c.get(f"/{fid}/xattrs", who=who)
    assert r.status_code == 200, r.text
    return {x["name"]: base64.b64decode(x["value"])
            for x in r.json()["xattrs"]}


def test_xattrs_round_trip_bytes(sfsd):
    c = sfsd
    fid = c.new_file(data=b"with attributes")["id"]
    assert xattrs(c, fid) == {}
    value = bytes(range(256)) + b"\0tail"
    r = c.req("PUT", f"/{fid}/xattrs", json={"name": "user.bin",
                                              "value": b64(value)})
    assert r.status_code == 204, r.text
    c.req("PUT", f"/{fid}/xattrs", json={"name": "user.a", "value": ""})
    assert xattrs(c, fid) == {"user.a": b"", "user.bin": value}
    assert [x["name"] for x in c.get(f"/{fid}/xattrs").json()["xattrs"]] \
        == ["user.a", "user.bin"]
    # XATTR_CREATE and XATTR_REPLACE
    c.assert_error(c.req("PUT", f"/{fid}/xattrs", json={
        "name": "user.a", "value": b64(b"x"), "create": True}), 409,
        "attribute_exists")
    c.assert_error(c.req("PUT", f"/{fid}/xattrs", json={
        "name": "user.none", "value": b64(b"x"), "replace": True}), 404,
        "attribute_not_found")
    for bad in ({"name": "user.a", "value": "a b"},
                {"name": "user.a", "value": "QQ"},
                {"name": "user.a", "value": "QR=="},
                {"value": "QQ=="}, {"name": "user.a"}):
        c.assert_error(c.req("PUT", f"/{fid}/xattrs", json=bad), 400)
    assert c.delete(f"/{fid}/xattrs", params={"name": "user.a"}) \
        .status_code == 204
    c.assert_error(c.delete(f"/{fid}/xattrs", params={"name": "user.a"}),
                   404, "attribute_not_found")
    c.assert_error(c.delete(f"/{fid}/xattrs"), 400)
    assert xattrs(c, fid) == {"user.bin": value}


def test_xattrs_permissions(sfsd):
    c = sfsd
    fid = c.new_file(data=b"xattr perms")["id"]
    c.req("PUT", f"/{fid}/xattrs", json={"name": "user.k",
                                         "value": b64(b"v")})
    r = c.post(f"/{fid}/shares", json={"userId": c.users["bob"],
                                       "permission": "VIEW"})
    assert r.status_code in (200, 201), r.text
    assert xattrs(c, fid, "bob") == {"user.k": b"v"}
    c.assert_error(c.req("PUT", f"/{fid}/xattrs", who="bob", json={
        "name": "user.k", "value": b64(b"bob")}), 403, "forbidden")
    c.assert_error(c.delete(f"/{fid}/xattrs", who="bob",
                            params={"name": "user.k"}), 403, "forbidden")
    c.assert_error(c.get(f"/{fid}/xattrs", who="carol"), 404,
                   "file_not_found")
    c.assert_error(c.req("PUT", f"/{fid}/xattrs", who="alice_ro", json={
        "name": "user.k", "value": b64(b"ro")}), 403, "insufficient_scope")
    assert xattrs(c, fid) == {"user.k": b"v"}


def test_space_is_the_tenants(sfsd_factory):
    c = sfsd_factory()
    c.quota_user(100000, 50)
    c.new_file(who="q", data=b"s" * 1000)
    r = c.get(SPACE, who="q")
    assert r.status_code == 200, r.text
    sp = r.json()
    assert set(sp) == {"totalBytes", "usedBytes", "freeBytes",
                       "availableBytes", "totalFiles", "freeFiles"}
    assert sp["totalBytes"] == 100000 and sp["usedBytes"] == 1000
    assert sp["freeBytes"] == 99000 and sp["availableBytes"] <= 99000
    assert sp["totalFiles"] == 50 and sp["freeFiles"] == 49
    # another tenant's is its own; a read-only key may ask; no key may not
    other = c.get(SPACE, who="alice").json()
    assert other["usedBytes"] == 0 and other["totalBytes"] != 100000
    assert c.get(SPACE, who="alice_ro").status_code == 200
    c.assert_error(c.get(SPACE, who=None), 401)


# ---- the change feed -----------------------------------------------------

def cursor(c, who="alice"):
    r = c.get(CHANGES, who=who)
    assert r.status_code == 200, r.text
    assert r.json()["changes"] == [] and r.json()["hasMore"] is False
    return r.json()["cursor"]


def changes(c, cur, who="alice", **params):
    r = c.get(CHANGES, who=who, params={"cursor": cur, **params},
              timeout=150)
    assert r.status_code == 200, r.text
    assert "no-cache" in r.headers["Cache-Control"]
    return r.json()


def file_changes(feed):
    return {x["fileId"]: x for x in feed["changes"] if x["type"] == "file"}


def waiting(c):
    m = re.search(r"^speechfs_http_changes_waiting (\d+)$",
                  c.get("/metrics", who=None).text, re.M)
    return int(m.group(1))


def wait_waiting(c, n):
    deadline = time.time() + 20
    while waiting(c) != n:
        assert time.time() < deadline, "no poll waits"
        time.sleep(0.02)


def test_changes_report_files_once_in_their_state_now(sfsd):
    c = sfsd
    cur = cursor(c)
    f = c.new_file(data=b"feed 1", path="/feed/")
    c.patch(f"/{f['id']}", json={"name": "renamed"})
    put(c, f["id"], b"feed 2")
    feed = changes(c, cur)
    fc = file_changes(feed)
    assert list(fc) == [f["id"]]
    x = fc[f["id"]]
    assert x["removed"] is False and x["file"]["name"] == "renamed"
    assert x["file"]["sha256"] == hashlib.sha256(b"feed 2").hexdigest()
    assert int(feed["cursor"]) > int(cur)
    assert changes(c, feed["cursor"])["changes"] == []
    # delete, restore, purge: the state says which
    cur = feed["cursor"]
    assert c.delete(f"/{f['id']}").status_code == 204
    feed = changes(c, cur)
    assert file_changes(feed)[f["id"]]["file"]["isDeleted"] is True
    assert c.post(f"/{f['id']}/restore").status_code == 200
    feed = changes(c, feed["cursor"])
    assert file_changes(feed)[f["id"]]["file"]["isDeleted"] is False
    assert c.delete(f"/{f['id']}", params={"purge": "true"}) \
        .status_code == 204
    feed = changes(c, feed["cursor"])
    assert file_changes(feed)[f["id"]]["file"]["isPurged"] is True


def test_changes_report_directories(sfsd):
    c = sfsd
    cur = cursor(c)
    assert c.post(DIRS, json={"path": "/feeddir/sub/"}).status_code == 201
    feed = changes(c, cur)
    dirs = {x["path"] for x in feed["changes"] if x["type"] == "directory"}
    assert "/feeddir/" in dirs, feed
    assert c.post(DIRS + "/rename", json={"from": "/feeddir/sub/",
                                          "to": "/feeddir/moved/"}) \
        .status_code == 200
    feed = changes(c, feed["cursor"])
    dirs = [x["path"] for x in feed["changes"] if x["type"] == "directory"]
    assert dirs == ["/feeddir/"], feed


def test_changes_follow_shares_publish_and_tenants(sfsd):
    c = sfsd
    curs = {w: cursor(c, w) for w in ("bob", "carol")}
    f = c.new_file(data=b"shared later", path="/feedshare/")
    fid = f["id"]
    # not shared yet: bob and carol hear nothing
    for w in ("bob", "carol"):
        assert fid not in file_changes(changes(c, curs[w], w))
    r = c.post(f"/{fid}/shares", json={"userId": c.users["bob"],
                                       "permission": "VIEW"})
    assert r.status_code in (200, 201), r.text
    share = r.json()["id"]
    feed = changes(c, curs["bob"], "bob")
    x = file_changes(feed)[fid]
    assert x["removed"] is False and x["file"]["id"] == fid
    # the owner's changes reach the share's user
    c.patch(f"/{fid}", json={"description": "new words"})
    feed = changes(c, feed["cursor"], "bob")
    assert file_changes(feed)[fid]["file"]["description"] == "new words"
    # revoked: bob is told to forget it, with nothing of it
    assert c.delete(f"/{fid}/shares/{share}").status_code == 204
    feed = changes(c, feed["cursor"], "bob")
    x = file_changes(feed)[fid]
    assert x["removed"] is True and x["file"] is None
    # INTERNAL reaches the tenant, PRIVATE again takes it away
    c.patch(f"/{fid}", json={"publishMode": "INTERNAL"})
    feed = changes(c, feed["cursor"], "bob")
    assert file_changes(feed)[fid]["removed"] is False
    c.patch(f"/{fid}", json={"publishMode": "PRIVATE"})
    feed = changes(c, feed["cursor"], "bob")
    assert file_changes(feed)[fid]["removed"] is True
    # another tenant never hears of it, whatever happened
    whole = changes(c, curs["carol"], "carol")
    assert fid not in file_changes(whole)
    assert "shared later" not in str(whole)


def test_changes_arguments_and_scopes(sfsd):
    c = sfsd
    cur = cursor(c, "alice_ro")
    assert changes(c, cur, "alice_ro")["changes"] == []
    c.assert_error(c.get(CHANGES, who=None), 401)
    for bad in ({"cursor": "x"}, {"cursor": "-1"},
                {"cursor": cur, "timeout": "121"},
                {"cursor": cur, "timeout": "-1"},
                {"cursor": cur, "limit": "0"},
                {"cursor": cur, "limit": "10001"}):
        c.assert_error(c.get(CHANGES, params=bad), 400)
    # a cursor of the future (another store's): start again
    body = c.assert_error(c.get(CHANGES, params={"cursor": "999999999"}),
                          410, "cursor_expired")
    assert "new cursor" in body["message"]


def test_changes_page_with_limit(sfsd):
    c = sfsd
    cur = cursor(c)
    ids = [c.new_file(data=b"page %d" % i, path="/page/")["id"]
           for i in range(5)]
    seen, pages = [], 0
    while True:
        feed = changes(c, cur, limit="2")
        pages += 1
        seen += list(file_changes(feed))
        cur = feed["cursor"]
        if not feed["hasMore"]:
            break
    assert pages >= 3
    assert [i for i in seen if i in ids] == ids


def test_changes_expired_cursor_410(sfsd):
    c = sfsd
    cur = cursor(c)
    c.new_file(data=b"before the prune")
    c.new_file(data=b"before the prune 2")
    # the janitor keeps the last rows only: drop the old ones as it does
    db = sqlite3.connect(str(c.store / "speechfs.db"), timeout=30)
    with db:
        db.execute("DELETE FROM change WHERE seq <= ?", (int(cur) + 1,))
    db.close()
    body = c.assert_error(c.get(CHANGES, params={"cursor": cur}), 410,
                          "cursor_expired")
    assert "list the files again" in body["message"]
    assert changes(c, cursor(c))["changes"] == []


def test_long_poll_wakes_on_a_change(sfsd):
    c = sfsd
    cur = cursor(c)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(changes, c, cur, "alice", timeout="100")
        wait_waiting(c, 1)
        f = c.new_file(data=b"wake up", path="/lp/")
        feed = fut.result(timeout=30)
    assert f["id"] in file_changes(feed), feed
    assert waiting(c) == 0


def test_long_poll_wakes_on_another_process_commit(sfsd):
    c = sfsd
    cur = cursor(c)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(changes, c, cur, "alice", timeout="100")
        wait_waiting(c, 1)
        # the admin CLI is another process: its commit wakes the poll
        c.admin("key", "create", "--user", c.users["alice"])
        t = c.admin("tenant", "list")
        assert t
        f = c.new_file(data=b"after the cli", path="/lp/")
        feed = fut.result(timeout=30)
    assert f["id"] in file_changes(feed)


def test_long_poll_ignores_what_the_caller_may_not_see(sfsd):
    c = sfsd
    cur = cursor(c)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(changes, c, cur, "alice", timeout="3")
        wait_waiting(c, 1)
        c.new_file(who="carol", data=b"carol's")
        c.new_file(who="bob", data=b"bob's private")
        feed = fut.result(timeout=60)
    assert feed["changes"] == [], feed
    assert int(feed["cursor"]) > int(cur)     # past the rows looked at


def test_a_poll_whose_client_left_is_let_go(sfsd):
    c = sfsd
    cur = cursor(c)
    host, port = c.base[len("http://"):].split(":")
    socks = []
    for _ in range(3):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(("GET %s?cursor=%s&timeout=2 HTTP/1.1\r\nHost: x\r\n"
                   "X-API-Key: %s\r\n\r\n" % (CHANGES, cur,
                                                c.keys["alice"])).encode())
        socks.append(s)
    wait_waiting(c, 3)
    for s in socks:
        s.close()
    # parked, the connections are not watched: each goes at its deadline
    deadline = time.time() + 30
    while waiting(c) != 0:
        assert time.time() < deadline, "the polls were never let go"
        time.sleep(0.05)
    f = c.new_file(data=b"still serving")
    assert f["id"] in file_changes(changes(c, cur))


def test_long_poll_timeout_answers_empty(sfsd):
    c = sfsd
    cur = cursor(c)
    t0 = time.monotonic()
    feed = changes(c, cur, timeout="1")
    assert feed == {"changes": [], "cursor": cur, "hasMore": False}
    assert time.monotonic() - t0 >= 1.0


def test_long_poll_outlives_the_connection_timeout(sfsd_factory):
    c = sfsd_factory({"http.connection_timeout": "1"})
    cur = cursor(c)
    feed = changes(c, cur, timeout="3")
    assert feed["changes"] == [] and feed["cursor"] == cur


def test_long_polls_are_bounded(sfsd_factory):
    c = sfsd_factory({"http.changes_max_waiters": "2"})
    cur = cursor(c)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(changes, c, cur, "alice", timeout="100")
                for _ in range(2)]
        wait_waiting(c, 2)
        r = c.get(CHANGES, params={"cursor": cur, "timeout": "100"})
        c.assert_error(r, 503, "too_many_waiters")
        assert r.headers["Retry-After"] == "1"
        # a poll without a timeout never waits, so it is served
        assert changes(c, cur)["changes"] == []
        f = c.new_file(data=b"for both")
        for fu in futs:
            assert f["id"] in file_changes(fu.result(timeout=30))


def test_shutdown_answers_waiting_polls(sfsd_factory):
    c = sfsd_factory()
    cur = cursor(c)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(changes, c, cur, "alice", timeout="100")
        wait_waiting(c, 1)
        c.daemon.stop()                  # SIGTERM; asserts exit status 0
        feed = fut.result(timeout=30)
    assert feed["changes"] == [] and feed["cursor"] == cur
    # answered at once, not drained out at the shutdown timeout
    assert "still in flight" not in c.daemon.log.read_text()
    c.daemon.stop = lambda: None         # already stopped
