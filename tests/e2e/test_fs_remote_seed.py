"""The remote mount against a server with only the seed's API: a real
speechfsd with `http.extensions = false` (no content versions, no
directories, no xattrs, no space, no change feed; the routes answer
404/405 and its OpenAPI document does not name them). The mount says at
mount time, in one line, which features are off; it still lists (the
directories are what the files' paths show), reads, uploads new files
and edits attributes; what needs an extension fails with ENOTSUP."""
import errno
import os

import pytest
import requests

from fsutil import Server, store  # noqa: F401
from test_fs_remote import RemoteMount, tree
from test_fs_remote_faults import FILES, upload

EXT = "/api/v1/speech-services"


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
        lines = [x for x in out.splitlines() if "lacks extensions" in x]
        assert len(lines) == 1, out
        for what in ("content versions", "directories", "attributes",
                     "space", "change feed"):
            assert what in lines[0], lines[0]
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
                                         b"x")):
            with pytest.raises(OSError) as ei:
                call()
            assert ei.value.errno == errno.ENOTSUP, ei.value
        assert m.path("top.bin").read_bytes() == b"RIFF top"
        assert "user.note" not in os.listxattr(m.path("top.bin"))
        assert os.statvfs(m.dir).f_blocks == 0
    finally:
        print(m.output())       # shown when the test fails
        m.stop()
