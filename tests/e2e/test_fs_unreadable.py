"""Files whose content cannot be read: discarded content, imports not
completed (pending, failed) and deleted files in the trash. They stay
visible with their metadata; open() fails with the documented errno
(ENODATA: the content is gone or its import failed; EAGAIN: an import
is still pending or running),
never with partial or invented bytes; user.speechfs.contentStatus says
why."""
import errno
import json
import os
import subprocess

import pytest
import requests

from fsutil import Mount, api, eventually, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."


def read_errno(path):
    with pytest.raises(OSError) as ei:
        with open(path, "rb") as f:
            f.read()
    return ei.value.errno


def open_errno(path):
    """The errno of opening and reading path, 0 when both work."""
    try:
        with open(path, "rb") as f:
            f.read()
    except OSError as e:
        return e.errno
    return 0


def test_discarded_content(store, api, tmp_path):
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}
    r = requests.post(url, headers=h, files={"file": ("talk.wav",
                                                      b"RIFF spoken")},
                      data={"name": "talk", "path": "/in/",
                            "generateListeningAudio": "false"}, timeout=30)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    m = Mount(d, users[0], "-o", "no_workers")
    try:
        f = m.path("in", "talk.wav")
        assert f.read_bytes() == b"RIFF spoken"
        assert xget(f, P + "contentStatus") == "AVAILABLE"
        os.setxattr(f, P + "tags", b"kept")
        r = requests.post(url + "/" + fid + "/discard-content", headers=h,
                          timeout=30)
        assert r.status_code in (200, 204), r.text
        assert eventually(lambda: xget(f, P + "contentStatus") ==
                          "DISCARDED")
        # the mount has taken in the change (its poller invalidated what
        # the kernel cached): an open now fails
        assert eventually(lambda: open_errno(f) == errno.ENODATA)
        # still listed, with its metadata
        assert os.listdir(m.path("in")) == ["talk.wav"]
        assert xget(f, P + "id") == fid
        assert xget(f, P + "tags") == "kept"
        assert xget(f, P + "filename") == "talk.wav"
        assert json.loads(xget(f, P + "json"))["isContentDiscarded"] is True
        assert P + "contentStatus" in os.listxattr(f)
        # reading fails at once, by every route, with no bytes
        assert read_errno(f) == errno.ENODATA
        p = subprocess.run(["cat", str(f)], capture_output=True)
        assert p.returncode != 0 and p.stdout == b""
        assert b"No data available" in p.stderr
        out = tmp_path / "copy.wav"
        p = subprocess.run(["cp", str(f), str(out)], capture_output=True)
        assert p.returncode != 0
        assert not out.exists() or out.read_bytes() == b""
        # the attribute is read-only; writing new content brings it back
        with pytest.raises(OSError) as ei:
            os.setxattr(f, P + "contentStatus", b"AVAILABLE")
        assert ei.value.errno == errno.EPERM
        f.write_bytes(b"RIFF recorded again")
        assert f.read_bytes() == b"RIFF recorded again"
        assert xget(f, P + "contentStatus") == "AVAILABLE"
        assert xget(f, P + "id") == fid
        r = requests.get(url + "/" + fid + "/content", headers=h,
                         timeout=30)
        assert r.content == b"RIFF recorded again"
    finally:
        m.stop()


def test_pending_and_failed_imports(store, api):
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}
    # no process runs workers: the import stays PENDING
    r = requests.post(url, headers=h, json={
        "uri": "http://127.0.0.1:9/talk.wav", "name": "incoming",
        "path": "/imports/", "tags": ["later"]}, timeout=30)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    m = Mount(d, users[0], "-o", "no_workers")
    try:
        # the filename comes from the URI: the entry is "incoming.wav"
        (entry,) = os.listdir(m.path("imports"))
        assert entry in ("incoming", "incoming.wav")
        f = m.path("imports", entry)
        assert os.stat(f).st_size == 0
        assert xget(f, P + "contentStatus") == "IMPORT_PENDING"
        assert xget(f, P + "ingestionStatus") == "PENDING"
        assert xget(f, "user.xdg.origin.url") == \
            "http://127.0.0.1:9/talk.wav"
        assert xget(f, P + "tags") == "later"
        assert xget(f, P + "id") == fid
        assert read_errno(f) == errno.EAGAIN
        p = subprocess.run(["cat", str(f)], capture_output=True)
        assert p.returncode != 0 and p.stdout == b""
    finally:
        m.stop()
    # a mount that runs workers tries the import; a loopback address is
    # refused, and the reason is readable
    m = Mount(d, users[0])
    try:
        f = m.path("imports", entry)
        assert eventually(lambda: xget(f, P + "ingestionStatus") ==
                          "FAILED", timeout=60)
        assert xget(f, P + "contentStatus") == "IMPORT_FAILED"
        assert xget(f, P + "ingestionError")
        # permanent: waiting will not bring the content
        assert read_errno(f) == errno.ENODATA
        assert os.listdir(m.path("imports")) == [entry]
    finally:
        m.stop()


def test_trash_files_are_unreadable(store):
    d, _, users = store
    m = Mount(d, users[0])
    try:
        m.path("bye.txt").write_bytes(b"bye")
        os.unlink(m.path("bye.txt"))
        t = m.path(".trash", "bye.txt")
        assert os.stat(t).st_size == 3
        assert xget(t, P + "contentStatus") == "DELETED"
        assert read_errno(t) == errno.ENODATA
    finally:
        m.stop()
