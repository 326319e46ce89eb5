"""The remote mount against a server with only the seed's API: a real
speechfsd with `http.extensions = false` (no content versions, no
directories, no xattrs, no space, no change feed; the routes answer
404/405 and its OpenAPI document does not name them). The mount says at
mount time, one line each, which features are off; it still lists (the
directories are what the files' paths show), reads, uploads new files
and edits attributes; what needs an extension fails with ENOTSUP."""
import errno
import json
import os
import uuid

import pytest
import requests

from conftest import ROOT
from fsutil import Server, eventually, store  # noqa: F401
from test_fs_remote import RemoteMount, tree
from test_fs_remote_faults import FILES, upload
from test_fs_remote_mount import BasicAuthFront

EXT = "/api/v1/speech-services"
# The seed API contract's operations, and the daemon's own (no credentials)
SEED_OPS = {("get", FILES), ("post", FILES),
            ("get", FILES + "/shared-with-me"),
            ("get", FILES + "/{id}"), ("patch", FILES + "/{id}"),
            ("delete", FILES + "/{id}"),
            ("get", FILES + "/{id}/content"),
            ("post", FILES + "/{id}/discard-content"),
            ("get", FILES + "/{id}/listening-audio/stream"),
            ("post", FILES + "/{id}/listening-audio/generate"),
            ("delete", FILES + "/{id}/listening-audio"),
            ("post", FILES + "/{id}/listening-audio/purge"),
            ("get", FILES + "/{fileId}/shares"),
            ("post", FILES + "/{fileId}/shares"),
            ("delete", FILES + "/{fileId}/shares/{shareId}")}
OWN_OPS = {("get", "/healthz"), ("get", "/metrics"),
           ("get", "/api/v1/openapi.json")}
METHODS = ("get", "put", "post", "patch", "delete")
# What a mount of such a server says is off, in its order
OFF = ["content versions", "file times, original filenames and restore",
       "directories", "keeping emptied directories", "attributes", "space",
       "the CRC32C of uploads", "change feed"]


def said_off(out):
    """The features a mount's output says are off (one line each)."""
    return [x.split("lacks an extension, off: ", 1)[1].split(" (")[0]
            for x in out.splitlines() if "lacks an extension, off: " in x]


@pytest.fixture
def seed(store):
    """(daemon of the seed's API only, alice's API key)."""
    d, _, users = store
    dm = Server(d, **{"jobs.enabled": "false", "http.extensions": "false"})
    try:
        yield dm, dm.key(users[0])
    finally:
        dm.stop()


def files(dm, key, **params):
    r = requests.get(dm.base + FILES, headers={"X-API-Key": key},
                     params={"recursive": "true", "size": 100, **params},
                     timeout=30)
    assert r.ok, r.text
    return r.json()["files"]


def test_server_offers_the_seed_only(seed):
    dm, key = seed
    h = {"X-API-Key": key}
    doc = requests.get(dm.base + "/api/v1/openapi.json", timeout=30).json()
    paths = doc["paths"]
    for p in (EXT + "/directories", EXT + "/changes", EXT + "/space",
              EXT + "/files/{id}/xattrs"):
        assert p not in paths
    assert "put" not in paths[EXT + "/files/{id}/content"]
    assert "get" in paths[EXT + "/files/{id}/content"]
    assert "post" in paths[EXT + "/files"]
    assert requests.get(dm.base + EXT + "/directories", headers=h,
                        params={"path": "/"}, timeout=30).status_code == 404
    assert requests.get(dm.base + EXT + "/changes", headers=h,
                        timeout=30).status_code == 404
    f = upload(dm, key, b"RIFF seed", "s")
    r = requests.put(dm.base + FILES + "/" + f["id"] + "/content",
                     headers=h, data=b"RIFF other", timeout=30)
    assert r.status_code == 405 and r.headers["Allow"] == "GET", r.text
    assert requests.get(dm.base + FILES + "/" + f["id"] + "/content",
                        headers=h, timeout=30).content == b"RIFF seed"
    # an upload's lazy (answered before it is durable) is an extension:
    # ignored, as the seed ignores what it does not know, and not in the
    # document; nor does a write's answer tell its directory. A new
    # file's idKey (its id derived from it) is not in the document and
    # is refused, never ignored: a client that took the id for known
    # would lose the file; the earlier ?id= is refused too
    post = paths[EXT + "/files"]["post"]
    names = [p["name"] for p in post.get("parameters", [])]
    assert "lazy" not in names and "idKey" not in names
    assert "id" not in names and EXT + "/users/me" not in paths
    mine = "5d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
    for param in ("idKey", "id"):
        r = requests.post(dm.base + FILES, headers=h,
                          params={"lazy": "true", param: mine},
                          files={"file": ("l.wav", b"")},
                          data={"name": "l", "path": "/lazy/"}, timeout=30)
        assert r.status_code == 400, r.text
        assert [v["location"] for v in r.json()["validation_errors"]] \
            == [param], r.text
    assert [f for f in files(dm, key) if f["name"] == "l"] == []
    r = requests.post(dm.base + FILES,
                      headers={**h, "X-Speechfs-Origin": "7"},
                      params={"lazy": "maybe"},
                      files={"file": ("l.wav", b"")},
                      data={"name": "l", "path": "/lazy/"}, timeout=30)
    assert r.status_code == 201, r.text
    assert "X-Speechfs-Directory" not in r.headers
    # keepDirs (a directory emptied by a delete or a move kept) neither:
    # not in the document, and refused (the file stays), never ignored
    fid = r.json()["id"]
    for method, body in (("DELETE", None), ("PATCH", {"path": "/b/"})):
        op = paths[EXT + "/files/{id}"][method.lower()]
        assert "keepDirs" not in [p["name"] for p in
                                  op.get("parameters", [])]
        r = requests.request(method, dm.base + FILES + "/" + fid,
                             headers=h, params={"keepDirs": "true"},
                             json=body, timeout=30)
        assert r.status_code == 400, r.text
        assert [v["location"] for v in r.json()["validation_errors"]] \
            == ["keepDirs"], r.text
    r = requests.get(dm.base + FILES + "/" + fid, headers=h, timeout=30)
    assert r.json()["path"] == "/lazy/" and not r.json()["isDeleted"]


def operations(doc):
    return {(m, p) for p, ops in doc["paths"].items() for m in ops
            if m in METHODS}


def call(dm, method, url, h):
    """method on url; an empty JSON object for the methods with a body."""
    body = {} if method in ("put", "post", "patch") else None
    return requests.request(method.upper(), dm.base + url, headers=h,
                            json=body, timeout=30)


def test_extension_routes_answer_as_absent(seed):
    """The document served names the seed's and the daemon's own
    operations, no other; every other operation of the whole document
    (httpd/openapi.json) answers as a route that does not exist (404
    not_found, or 405 with an Allow that names only the seed's methods),
    each seed operation is routed (an answer of its own, never the
    router's 404/405). The document is made once: byte-identical each
    time, never cached by the client."""
    dm, key = seed
    h = {"X-API-Key": key}
    whole = json.loads((ROOT / "httpd" / "openapi.json").read_text())
    first = requests.get(dm.base + "/api/v1/openapi.json", timeout=30)
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["Cache-Control"] == "no-store"
    assert operations(first.json()) == SEED_OPS | OWN_OPS
    for _ in range(3):
        again = requests.get(dm.base + "/api/v1/openapi.json", timeout=30)
        assert again.content == first.content
    f = upload(dm, key, b"RIFF seed", "s")
    ids = {"{id}": f["id"], "{fileId}": f["id"],
           "{shareId}": str(uuid.uuid4())}
    ext = operations(whole) - SEED_OPS - OWN_OPS
    assert len(ext) >= 15, ext
    for method, path in sorted(ext):
        url = path
        for k, v in ids.items():
            url = url.replace(k, v)
        r = call(dm, method, url, h)
        assert r.status_code in (404, 405), (method, path, r.text)
        if r.status_code == 404:
            assert r.json()["error_type"] == "not_found", (method, path)
        else:
            allowed = {m.strip().lower()
                       for m in r.headers["Allow"].split(",")}
            assert {(m, path) for m in allowed} <= SEED_OPS, \
                (method, path, allowed)
    # the seed's own: routed (a random id is the file's 404, not the
    # router's), and nothing of the uploaded file touched
    none = str(uuid.uuid4())
    for method, path in sorted(SEED_OPS):
        url = path.replace("{id}", none).replace("{fileId}", none) \
            .replace("{shareId}", none)
        r = call(dm, method, url, h)
        assert r.status_code != 405, (method, path, r.text)
        assert r.status_code != 404 or \
            r.json()["error_type"] != "not_found", (method, path, r.text)
    assert requests.get(dm.base + FILES + "/" + f["id"] + "/content",
                        headers=h, timeout=30).content == b"RIFF seed"


def test_mount_without_extensions(seed):
    dm, key = seed
    h = {"X-API-Key": key}
    upload(dm, key, b"RIFF top", "top")
    r = requests.post(dm.base + FILES, headers=h,
                      files={"file": ("deep.wav", b"RIFF deep bytes")},
                      data={"name": "deep", "path": "/inbox/deep/"},
                      timeout=60)
    assert r.status_code in (200, 201), r.text
    m = RemoteMount(dm.base, key)
    try:
        out = m.output()
        assert said_off(out) == OFF, out
        # speechfs(1) names each of them
        man = " ".join((ROOT / "packaging" / "man" / "speechfs.1")
                       .read_text().split())
        for what in OFF:
            assert what in man, what
        # lists: the directories are what the paths show
        got = tree(m.dir)
        assert {k: v[:2] for k, v in got.items()} == {
            "top.bin": ("f", 8), "inbox": ("d",),
            "inbox/deep": ("d",), "inbox/deep/deep.wav": ("f", 15)}
        # reads
        assert m.path("inbox", "deep", "deep.wav").read_bytes() == \
            b"RIFF deep bytes"
        # a new file is uploaded whole at close; no empty one is left
        data = os.urandom(3 << 20)
        m.path("inbox", "new.wav").write_bytes(data)
        (f,) = [x for x in files(dm, key) if x["name"] == "new"]
        assert f["path"] == "/inbox/" and f["size"] == len(data)
        c = requests.get(dm.base + FILES + "/" + f["id"] + "/content",
                         headers=h, timeout=60).content
        assert c == data
        assert m.path("inbox", "new.wav").read_bytes() == data
        assert os.getxattr(m.path("inbox", "new.wav"),
                           "user.speechfs.id").decode() == f["id"]
        # the empty file made at creat() is purged, not in the trash
        gone = files(dm, key, isDeleted="true")
        assert len(gone) == 1 and gone[0]["isPurged"], gone
        assert ".trash" not in os.listdir(m.dir) or \
            not os.listdir(m.path(".trash"))
        # attributes: tags and the name go by PATCH
        os.setxattr(m.path("inbox", "new.wav"), "user.speechfs.tags",
                    b"talk,draft")
        r = requests.get(dm.base + FILES + "/" + f["id"], headers=h,
                         timeout=30)
        assert sorted(r.json()["tags"]) == ["draft", "talk"]
        os.rename(m.path("inbox", "new.wav"), m.path("inbox", "old.wav"))
        r = requests.get(dm.base + FILES + "/" + f["id"], headers=h,
                         timeout=30)
        assert r.json()["name"] == "old"
        # what needs an extension: ENOTSUP, and nothing changed
        for call in (lambda: os.mkdir(m.path("empty")),
                     lambda: m.path("top.bin").write_bytes(b"RIFF new"),
                     lambda: os.setxattr(m.path("top.bin"), "user.note",
                                         b"x"),
                     lambda: os.utime(m.path("top.bin"), (1, 1))):
            with pytest.raises(OSError) as ei:
                call()
            assert ei.value.errno == errno.ENOTSUP, ei.value
        assert m.path("top.bin").read_bytes() == b"RIFF top"
        assert "user.note" not in os.listxattr(m.path("top.bin"))
        assert os.statvfs(m.dir).f_blocks == 0
        # its last file removed, a directory vanishes, as through the
        # API: the mount asks no keepDirs (this server would refuse it)
        os.unlink(m.path("inbox", "deep", "deep.wav"))
        assert [f for f in files(dm, key) if f["name"] == "deep"] == []
        assert eventually(lambda: "deep" not in os.listdir(
            m.path("inbox"))), os.listdir(m.path("inbox"))
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_seed_rename_needing_an_extension_keeps_the_target(seed):
    """An editor's save (.x.wav.tmp -> x.wav) changes the extension,
    which only the extensions' PATCH carries: ENOTSUP, and x.wav is
    neither trashed nor changed."""
    dm, key = seed
    m = RemoteMount(dm.base, key)
    try:
        m.path("x.wav").write_bytes(b"RIFF first")
        m.path(".x.wav.tmp").write_bytes(b"RIFF second")
        with pytest.raises(OSError) as ei:
            os.rename(m.path(".x.wav.tmp"), m.path("x.wav"))
        assert ei.value.errno == errno.ENOTSUP, ei.value
        assert m.path("x.wav").read_bytes() == b"RIFF first"
        assert m.path(".x.wav.tmp").read_bytes() == b"RIFF second"
        # in the trash: only the empty files the uploads replaced
        assert all(f["isPurged"] for f in files(dm, key, isDeleted="true"))
        (x,) = [f for f in files(dm, key) if f["name"] == "x"]
        assert x["size"] == len(b"RIFF first")
    finally:
        print(m.output())
        m.stop()


def test_every_feature_off_is_named_whatever_the_url(seed):
    """The features that are off are each named, in full, whatever the
    length of the server's URL (here 300 characters of a user name for a
    reverse proxy's basic auth, test_fs_remote_mount.BasicAuthFront). They
    were one line of ~900 characters, cut at the log's 1,024-byte line:
    with this URL the last ones were lost, as one more feature would have
    lost them with any URL."""
    dm, key = seed
    front = BasicAuthFront(dm.base)
    try:
        m = RemoteMount("http://%s:pw@127.0.0.1:%d" % ("u" * 300, front.port),
                        key)
        try:
            out = m.output()
            for what in OFF:
                assert what in out, (what, out)
            assert said_off(out) == OFF, out
        finally:
            m.stop()
    finally:
        front.close()
