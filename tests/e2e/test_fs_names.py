"""Entry names of the mount: spaces, Unicode, 255-byte names, '/' shown as
U+2215, the original filename's extension, and collisions (in the trash's
flat list and with the reserved root names)."""
import errno
import json
import os
import subprocess

import pytest

from fsutil import (Mount, StoreReader, api, eventually, mnt, store,  # noqa
                    xget)

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]
MOUNT_KINDS = ["local", "remote"]

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


def test_rename_over_a_file_never_leaves_the_name_empty(mnt):
    """`mv tmp final` over an existing final is one commit: a reader of
    the store (another process, at any moment) sees exactly one live
    `final` in the directory, never none; the replaced files are in the
    trash."""
    import threading
    os.mkdir(mnt.path("d"))
    mnt.path("d", "final.txt").write_bytes(b"v0")
    q = ("SELECT count(*) FROM file WHERE dir = '/d/' AND name = 'final'"
         " AND is_deleted = 0")
    seen, stop = [], threading.Event()

    def watch():
        db = StoreReader(mnt.store)
        while not stop.is_set():
            seen.append(db.value(q))
        db.close()

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i in range(1, 101):
            tmp = mnt.path("d", ".final.txt.%06d" % i)
            tmp.write_bytes(b"v%d" % i)
            os.rename(tmp, mnt.path("d", "final.txt"))
    finally:
        stop.set()
        t.join()
    assert len(seen) > 100 and set(seen) == {1}, sorted(set(seen))
    assert mnt.path("d", "final.txt").read_bytes() == b"v100"
    assert os.listdir(mnt.path("d")) == ["final.txt"]
    assert name_of(mnt.path("d", "final.txt")) == "final"
    assert len([n for n in os.listdir(mnt.path(".trash"))
                if n.startswith("final")]) == 100


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


def test_long_directory_names_and_renames(mnt):
    d255 = "d" * 120 + "ü" * 67 + "x"
    assert len(d255.encode()) == 255
    os.mkdir(mnt.path(d255))
    mnt.path(d255, "in.txt").write_bytes(b"in")
    assert os.listdir(mnt.path(d255)) == ["in.txt"]
    assert json.loads(xget(mnt.path(d255, "in.txt"),
                           P + "json"))["path"] == "/" + d255 + "/"
    for bad in ("e" * 256, "ü" * 128):
        with pytest.raises(OSError) as ei:
            os.mkdir(mnt.path(bad))
        assert ei.value.errno == errno.ENAMETOOLONG
        with pytest.raises(OSError) as ei:
            os.rename(mnt.path(d255, "in.txt"), mnt.path(d255, bad))
        assert ei.value.errno == errno.ENAMETOOLONG
        with pytest.raises(OSError) as ei:
            os.rename(mnt.path(d255), mnt.path(bad))
        assert ei.value.errno == errno.ENAMETOOLONG
    f255 = "f" * 251 + ".txt"
    os.rename(mnt.path(d255, "in.txt"), mnt.path(d255, f255))
    assert os.listdir(mnt.path(d255)) == [f255]
    assert mnt.path(d255, f255).read_bytes() == b"in"


def test_collisions_made_through_the_api(store, api):
    """Same-named files of one directory (only the API can make them) each
    get an entry; the ones that arrived later have the id suffix and keep
    it when the first goes away, so rm -r of such a directory works."""
    import requests
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}

    def upload(name, filename, path, data):
        r = requests.post(url, headers=h, files={"file": (filename, data)},
                          data={"name": name, "path": path}, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    ids = [upload("Report", "report.wav", "/dup/", b"v%d" % i)
           for i in range(3)]
    # one more that only collides once renamed, and names the mount must
    # change: a slash, a file named like a subdirectory
    late = upload("Other", "other.wav", "/dup/", b"late")
    slash_id = upload("a/b", "ab.txt", "/dup/", b"slash")
    deep = upload("deep", "deep.txt", "/dup/x/y/", b"deep")
    sub_id = upload("sub", "sub", "/odd/", b"file, not dir")
    upload("inner", "inner.txt", "/odd/sub/", b"inner")
    m = Mount(d, users[0])
    try:
        names = sorted(os.listdir(m.path("dup")))
        assert names == sorted(["Report.wav", "Other.wav", "a\u2215b.txt",
                                "x"] + ["Report (%s).wav" % i[:8]
                                        for i in ids[1:]])
        assert xget(m.path("dup", "Report.wav"), P + "id") == ids[0]
        for i in (1, 2):
            e = m.path("dup", "Report (%s).wav" % ids[i][:8])
            assert xget(e, P + "id") == ids[i]
            assert e.read_bytes() == b"v%d" % i
        assert xget(m.path("dup", "a\u2215b.txt"), P + "id") == slash_id
        assert sorted(os.listdir(m.path("odd"))) == \
            ["sub", "sub (%s)" % sub_id[:8]]
        assert os.path.isdir(m.path("odd", "sub"))
        assert m.path("odd", "sub (%s)" % sub_id[:8]).read_bytes() == \
            b"file, not dir"
        # the clash was resolved by the listing, and is kept: the file
        # keeps its entry when the directory goes, so rm -r works
        p = subprocess.run(["rm", "-r", str(m.path("odd"))],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert not m.path("odd").exists()
        j = requests.get(url + "/" + sub_id, headers=h, timeout=30).json()
        assert j["isDeleted"] is True, j
        # renamed through the API onto a taken name: it arrives second
        r = requests.patch(url + "/" + late, headers=h,
                           json={"name": "Report"}, timeout=30)
        assert r.ok, r.text
        assert eventually(lambda: "Report (%s).wav" % late[:8] in
                          os.listdir(m.path("dup"))), \
            os.listdir(m.path("dup"))
        # deleting the first through the API leaves the others' entries
        # as they were
        assert requests.delete(url + "/" + ids[0], headers=h,
                               timeout=30).status_code in (200, 204)
        want = sorted(["a\u2215b.txt", "x"] +
                      ["Report (%s).wav" % i[:8] for i in ids[1:] + [late]])
        assert eventually(lambda: sorted(os.listdir(m.path("dup"))) ==
                          want), os.listdir(m.path("dup"))
        e2 = m.path("dup", "Report (%s).wav" % ids[2][:8])
        assert xget(e2, P + "id") == ids[2]
        # a file renamed through the mount is exactly the entry asked for
        os.rename(e2, m.path("dup", "Report.wav"))
        assert xget(m.path("dup", "Report.wav"), P + "id") == ids[2]
        os.rename(m.path("dup", "Report.wav"), e2)
        assert xget(e2, P + "id") == ids[2]
        # rm -r removes every entry, and the directories the API made
        p = subprocess.run(["rm", "-r", str(m.path("dup"))],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        assert not m.path("dup").exists()
        for fid in ids[1:] + [late, slash_id, deep]:
            j = requests.get(url + "/" + fid, headers=h, timeout=30).json()
            assert j["isDeleted"] is True, j
    finally:
        m.stop()


def test_a_directory_emptied_through_the_mount_stays_until_rmdir(store,
                                                                 api):
    """A directory the API made, emptied through the mount (rm of its last
    file, mv of it out, rmdir of its last subdirectory), stays, explicit,
    until rmdir, as a directory does: the kernel asks for a directory
    again once its entry is 1 s old, and rm -r's last rmdir must find it
    then (it failed when rm -r took longer). Through the API the last
    file's delete still takes its directory along, and a rename within a
    directory leaves it as it was. A remote mount's too: it asks its
    server to keep them (keepDirs=true)."""
    import requests
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}
    dirs = url.rsplit("/", 1)[0] + "/directories"

    def upload(name, path):
        r = requests.post(url, headers=h,
                          files={"file": (name + ".txt", b"x")},
                          data={"name": name, "path": path}, timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def in_store(path):
        """(status, explicit) of GET …/directories?path=: the store's
        own word, not the kernel's cache."""
        r = requests.get(dirs, params={"path": path}, headers=h,
                         timeout=30)
        return r.status_code, r.ok and r.json()["explicit"]

    upload("a", "/rm/")
    upload("b", "/mv/")
    upload("c", "/up/sub/")
    upload("r", "/ren/a/")
    api_id = upload("z", "/api/")
    m = Mount(d, users[0])
    try:
        # renamed within its directory: that one loses nothing, stays
        # as the API made it
        os.rename(m.path("ren", "a"), m.path("ren", "b"))
        assert in_store("/ren/") == (200, False)
        os.rename(m.path("ren", "b", "r.txt"), m.path("ren", "b", "s.txt"))
        assert in_store("/ren/b/") == (200, False)
        os.unlink(m.path("rm", "a.txt"))
        os.rename(m.path("mv", "b.txt"), m.path("b.txt"))
        os.unlink(m.path("up", "sub", "c.txt"))
        os.rmdir(m.path("up", "sub"))
        assert in_store("/up/sub/")[0] == 404
        for p in ("rm", "mv", "up"):
            assert in_store("/%s/" % p) == (200, True), p
            assert os.listdir(m.path(p)) == [], p
        assert {"rm", "mv", "up", "api", "b.txt"} <= set(os.listdir(m.dir))
        for p in ("rm", "mv", "up"):
            os.rmdir(m.path(p))
            assert in_store("/%s/" % p)[0] == 404, p
            assert not m.path(p).exists(), p
        # the API's delete of the last file: the directory goes with it
        assert requests.delete(url + "/" + api_id, headers=h,
                               timeout=30).status_code in (200, 204)
        assert in_store("/api/")[0] == 404
        assert eventually(lambda: "api" not in os.listdir(m.dir)), \
            os.listdir(m.dir)
    finally:
        m.stop()


def test_a_clash_suffixes_the_later_file_whatever_the_names_order(store,
                                                                   api):
    """Two names that make one entry ("Take.wav", and "Take" of a file
    take.wav) in a directory: the file that came later is the suffixed
    one, though its name sorts first (the listing reads its rows in the
    names' index order and makes the entries in the files' order); a
    lookup by either entry finds the same file as the listing shows."""
    import requests
    d, _, users = store
    url, keys = api
    h = {"X-API-Key": keys[0]}

    def upload(name, filename, data):
        r = requests.post(url, headers=h, files={"file": (filename, data)},
                          data={"name": name, "path": "/clash/"},
                          timeout=30)
        assert r.status_code == 201, r.text
        return r.json()["id"]

    first = upload("Take.wav", "take.wav", b"first")
    later = upload("Take", "take.wav", b"later")
    also = upload("Aside", "aside.txt", b"aside")
    m = Mount(d, users[0])
    try:
        got = sorted(os.listdir(m.path("clash")))
        assert got == sorted(["Aside.txt", "Take.wav",
                              "Take (%s).wav" % later[:8]]), got
        assert xget(m.path("clash", "Take.wav"), P + "id") == first
        assert m.path("clash", "Take.wav").read_bytes() == b"first"
        e = m.path("clash", "Take (%s).wav" % later[:8])
        assert xget(e, P + "id") == later
        assert e.read_bytes() == b"later"
        assert xget(m.path("clash", "Aside.txt"), P + "id") == also
    finally:
        m.stop()
