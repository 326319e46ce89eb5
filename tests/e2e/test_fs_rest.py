"""The mount and the REST daemon on one store: what one does, the other
shows (within a second or two for the mount), including a direct share
appearing under /.shared/."""
import json
import os

import pytest
import requests

from fsutil import Mount, admin, api, eventually, store, xget  # noqa: F401

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]

BASE = "/api/v1/speech-services/files"
P = "user.speechfs."


def test_rest_and_mount_agree(store, api):
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}
    m = Mount(d, users[0])
    try:
        os.mkdir(m.path("inbox"))
        assert os.listdir(m.path("inbox")) == []
        r = requests.post(url, headers=h, files={"file": ("call.wav",
                                                          b"RIFFdata")},
                          data={"name": "Call with Bob",
                                "path": "/inbox/"})
        assert r.status_code in (200, 201), r.text
        fid = r.json()["id"]
        entry = m.path("inbox", "Call with Bob.wav")
        assert eventually(lambda: entry.exists())
        assert entry.read_bytes() == b"RIFFdata"
        assert xget(entry, P + "id") == fid
        # the mount writes, the API reads the new version
        entry.write_bytes(b"RIFFnewer data")
        r = requests.get(url + "/" + fid + "/content", headers=h)
        assert r.content == b"RIFFnewer data"
        # the API renames, the mount follows
        r = requests.patch(url + "/" + fid, headers=h,
                           json={"name": "Renamed"})
        assert r.ok, r.text
        new = m.path("inbox", "Renamed.wav")
        assert eventually(lambda: new.exists() and not entry.exists())
        # the API deletes, the mount moves it to the trash
        assert requests.delete(url + "/" + fid, headers=h).status_code \
            in (200, 204)
        assert eventually(lambda: not new.exists())
        assert "Renamed.wav" in os.listdir(m.path(".trash"))
        # the mount restores it, the API sees it
        os.rename(m.path(".trash", "Renamed.wav"), m.path("back.wav"))
        j = requests.get(url + "/" + fid, headers=h).json()
        assert j["isDeleted"] is False and j["path"] == "/"
    finally:
        m.stop()


def test_mount_is_woken_by_the_daemons_commits(store, api, monkeypatch,
                                               tmp_path):
    """The mount's poller looks at the change feed when the store says
    something was committed (SQLite: its WAL written, seen by inotify;
    PostgreSQL: a NOTIFY heard by the mount's LISTEN), not by its idle
    timer, stretched here to ten minutes: each write through the daemon
    is seen by the mount as a change by others, and the mount then
    shows it."""
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}
    conf = tmp_path / "debug.conf"
    conf.write_text("log.level = debug\n")
    monkeypatch.setenv("SPEECHFS_TEST_POLL_IDLE_MS", "600000")
    m = Mount(d, users[0], "-o", "config=%s" % conf)
    try:
        assert [n for n in os.listdir(m.dir) if not n.startswith(".")] == []
        for i in range(3):
            seen = m.output().count("change(s) by others")
            r = requests.post(url, headers=h,
                              files={"file": ("w%d.txt" % i, b"x")},
                              data={"name": "w%d" % i}, timeout=60)
            assert r.status_code in (200, 201), r.text
            # the poller says what it saw, without the mount being used
            assert eventually(
                lambda: m.output().count("change(s) by others") > seen), \
                m.output()
        assert sorted(n for n in os.listdir(m.dir)
                      if not n.startswith(".")) == \
            ["w0.txt", "w1.txt", "w2.txt"]
    finally:
        m.stop()


def test_direct_share_shows_in_shared(store, api):
    d, _, users = store
    url, keys = api
    bob = Mount(d, users[1])
    try:
        r = requests.post(url, headers={"X-API-Key": keys[0]},
                          files={"file": ("n.txt", b"note")},
                          data={"name": "note"})
        fid = r.json()["id"]
        r = requests.post(url + "/" + fid + "/shares",
                          headers={"X-API-Key": keys[0]},
                          json={"userId": users[1], "permission": "EDIT"})
        assert r.status_code in (200, 201), r.text
        f = bob.path(".shared", "alice", "note.txt")
        assert eventually(lambda: f.exists())
        assert f.read_bytes() == b"note"
        # EDIT: bob may write a new version and set tags
        f.write_bytes(b"note, edited by bob")
        os.setxattr(f, P + "tags", b"edited")
        j = requests.get(url + "/" + fid,
                         headers={"X-API-Key": keys[0]}).json()
        assert j["tags"] == ["edited"]
        r = requests.get(url + "/" + fid + "/content",
                         headers={"X-API-Key": keys[0]})
        assert r.content == b"note, edited by bob"
        # but not delete it
        with pytest.raises(PermissionError):
            os.unlink(f)
    finally:
        bob.stop()


def test_names_the_mount_cannot_show_plainly(store, api):
    """Names from the API that are no valid entry ("." or longer than a
    segment once the extension is added) get the uuid suffix, cut to fit."""
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}
    ids = {}
    for name, fn in ((".", None), ("..", None), ("é" * 127 + "x",
                                                 "a.wav")):
        data = {"name": name}
        r = requests.post(url, headers=h, data=data,
                          files={"file": (fn or "blob", b"x")})
        assert r.status_code in (200, 201), r.text
        ids[name] = r.json()["id"]
    m = Mount(d, users[0])
    try:
        names = [n for n in os.listdir(m.dir) if not n.startswith(".") or
                 n.startswith(". (") or n.startswith(".. (")]
        assert ". (%s)" % ids["."][:8] in names
        assert ".. (%s)" % ids[".."][:8] in names
        long = [n for n in names if n.startswith("é")]
        assert len(long) == 1
        assert len(long[0].encode()) <= 255
        assert long[0].endswith(" (%s).wav" % ids["é" * 127 + "x"][:8])
        for n in names:
            assert xget(m.path(n), P + "id") in ids.values()
    finally:
        m.stop()
