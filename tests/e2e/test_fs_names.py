"""Entry names of the mount: spaces, Unicode, 255-byte names, '/' shown as
U+2215, the original filename's extension, and collisions (in the trash's
flat list and with the reserved root names)."""
import errno
import json
import os

import pytest

from fsutil import Mount, mnt, store, xget  # noqa: F401

P = "user.speechfs."


def name_of(path):
    return json.loads(xget(path, P + "json"))["name"]


def test_spaces_and_unicode(mnt):
    for n in ("with space.wav", "Ünïcödé 会议 🎙.mp3", "  lead.txt",
              "trail .txt"):
        mnt.path(n).write_bytes(n.encode())
        assert mnt.path(n).read_bytes() == n.encode()
        # the display name is the entry minus its extension
        assert name_of(mnt.path(n)) == os.path.splitext(n)[0]
    listed = set(os.listdir(mnt.dir))
    assert {"with space.wav", "Ünïcödé 会议 🎙.mp3", "  lead.txt",
            "trail .txt"} <= listed


def test_long_names(mnt):
    n255 = "é" * 125 + "x.wav"
    assert len(n255.encode()) == 255
    mnt.path(n255).write_bytes(b"long")
    assert n255 in os.listdir(mnt.dir)
    assert mnt.path(n255).read_bytes() == b"long"
    with pytest.raises(OSError) as ei:
        mnt.path("y" * 256).write_bytes(b"x")
    assert ei.value.errno == errno.ENAMETOOLONG


def test_division_slash(mnt):
    entry = "left\u2215right.txt"
    mnt.path(entry).write_bytes(b"x")
    assert name_of(mnt.path(entry)) == "left/right"
    assert entry in os.listdir(mnt.dir)


def test_extension_kept_on_rename(mnt):
    mnt.path("a.wav").write_bytes(b"x")
    os.rename(mnt.path("a.wav"), mnt.path("b.wav"))
    j = json.loads(xget(mnt.path("b.wav"), P + "json"))
    assert j["name"] == "b" and j["filename"] == "a.wav"
    # a new extension updates the original filename too
    os.rename(mnt.path("b.wav"), mnt.path("b.flac"))
    j = json.loads(xget(mnt.path("b.flac"), P + "json"))
    assert j["filename"] == "b.flac"
    assert os.listdir(mnt.dir).count("b.flac") == 1


def test_trash_collisions(mnt):
    ids = []
    for _ in range(3):
        mnt.path("same.txt").write_bytes(b"x")
        ids.append(xget(mnt.path("same.txt"), P + "id"))
        os.unlink(mnt.path("same.txt"))
    trash = sorted(os.listdir(mnt.path(".trash")))
    assert "same.txt" in trash
    assert "same (%s).txt" % ids[1][:8] in trash
    assert "same (%s).txt" % ids[2][:8] in trash
    # the lowest ino keeps the plain name; every entry resolves to its file
    assert xget(mnt.path(".trash", "same.txt"), P + "id") == ids[0]
    assert xget(mnt.path(".trash", "same (%s).txt" % ids[2][:8]),
                P + "id") == ids[2]


def test_reserved_root_names(store):
    d, _, users = store
    m = Mount(d, users[0], "-o", "listening=0")
    try:
        m.path(".listening").write_bytes(b"mine")
        fid = xget(m.path(".listening"), P + "id")
    finally:
        m.stop()
    m = Mount(d, users[0])
    try:
        names = os.listdir(m.dir)
        assert ".listening" in names
        assert os.path.isdir(m.path(".listening"))
        alias = ".listening (%s)" % fid[:8]
        assert alias in names
        assert m.path(alias).read_bytes() == b"mine"
        # the reserved directories cannot be made or removed
        with pytest.raises(FileExistsError):
            os.mkdir(m.path(".trash"))
        with pytest.raises(OSError):
            os.rmdir(m.path(".trash"))
    finally:
        m.stop()


def test_bad_paths(mnt):
    with pytest.raises(FileNotFoundError):
        os.stat(mnt.path("nope"))
    with pytest.raises(FileNotFoundError):
        os.stat(mnt.path("nope", "deeper"))
    with pytest.raises(OSError):
        mnt.path(".listening", "x.mp3").write_bytes(b"x")


def test_invalid_utf8_names(mnt):
    bad = os.fsencode(str(mnt.dir)) + b"/bad\xff\xfe.txt"
    with pytest.raises(OSError) as ei:
        os.close(os.open(bad, os.O_CREAT | os.O_WRONLY, 0o644))
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(OSError) as ei:
        os.mkdir(os.fsencode(str(mnt.dir)) + b"/dir\xff")
    assert ei.value.errno == errno.EINVAL
    assert [n for n in os.listdir(mnt.dir) if not n.startswith(".")] == []
