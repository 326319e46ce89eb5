"""A remote mount's new file (issue 14) is made on the server at its
first close() or fsync(), in one request that carries its content
(POST /files?idKey=, durable when answered), not at open(O_CREAT); its
id, derived from the user's id and that key, is the mount's from
creat() on. Until then it is the mount's own: the mount's processes see
it at once (with its size), other clients from its close; what is done
to it meanwhile (a rename, an unlink, its times, an xattr, its
directory renamed) acts on that state or sends the create first. The
server's refusal comes back from close(). A real speechfsd and real
FUSE mounts; requests are counted by the daemon's /metrics."""
import errno
import os
import pathlib
import shutil
import tempfile

import pytest
import requests

from fsutil import Server, admin, eventually, store, xget  # noqa: F401
from test_fs_remote import RemoteMount

API = "/api/v1/speech-services"
FILES = API + "/files"


@pytest.fixture
def srv(store):
    """(a speechfsd on the store, alice's API key, the store)."""
    d, tenant, users = store
    dm = Server(d, workers=False)
    try:
        yield dm, dm.key(users[0]), d, tenant
    finally:
        dm.stop()


def requests_of(dm, route, method=None):
    """Requests of one route the daemon answered (its /metrics)."""
    text = requests.get(dm.base + "/metrics", timeout=10).text
    n = 0
    for line in text.splitlines():
        if line.startswith("speechfs_http_requests_total{") and \
                'route="%s"' % route in line:
            n += int(line.rsplit(" ", 1)[1])
    return n


def listed(dm, key, path, deleted=False):
    """{name: file} the server lists in directory path."""
    r = requests.get(dm.base + FILES, headers={"X-API-Key": key},
                     params={"path": path, "recursive": "false",
                             "size": 100,
                             "isDeleted": "true" if deleted else "false"},
                     timeout=30)
    assert r.status_code == 200, r.text
    return {f["name"]: f for f in r.json()["files"]}


def entries(d):
    """The entries of directory d but the mount's own (.trash ...)."""
    return sorted(n for n in os.listdir(d) if not n.startswith("."))


def content(dm, key, fid):
    r = requests.get(dm.base + FILES + "/" + fid + "/content",
                     headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return r.content


def test_a_new_file_is_one_request(srv):
    """Files written and closed, and files closed empty, cost the server
    one request each: the create with the bytes; nothing at
    open(O_CREAT), no PUT, no sync, no PATCH. Each is on the server,
    whole, when its close returns."""
    dm, key, _, _ = srv
    m = RemoteMount(dm.base, key)
    try:
        os.mkdir(m.path("one"))
        m.path("one", "warm.txt").write_bytes(b"warm")
        # a request is counted once it is over, which may come a moment
        # after its answer reached the client
        assert eventually(lambda: requests_of(dm, "files_create") == 1)
        before = {r: requests_of(dm, r) for r in (
            "files_create", "files_put_content", "files_sync",
            "files_patch")}
        for i in range(12):
            p = m.path("one", "f%02d.txt" % i)
            fd = os.open(p, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644)
            if i % 3:
                os.write(fd, b"%02d" % i * 100)
            os.close(fd)
            have = listed(dm, key, "/one/")
            assert "f%02d" % i in have, i
            assert have["f%02d" % i]["size"] == (200 if i % 3 else 0)
        assert eventually(lambda: requests_of(dm, "files_create") -
                          before["files_create"] == 12), \
            requests_of(dm, "files_create")
        after = {r: requests_of(dm, r) for r in before}
        # (what the cache of directories asks is its own matter: when the
        # kernel's entries expire, test_fs_remote_cache.py)
        assert after["files_create"] - before["files_create"] == 12
        for r in ("files_put_content", "files_sync", "files_patch"):
            assert after[r] == before[r], (r, before, after)
        assert content(dm, key, have["f07"]["id"]) == b"07" * 100
        assert sorted(os.listdir(m.path("one"))) == \
            ["f%02d.txt" % i for i in range(12)] + ["warm.txt"]
    finally:
        assert m.stop() == 0


def test_new_files_reuse_a_stage_file(srv):
    """Small files made one after the other leave their stage's file,
    emptied, for the next one (no open and unlink of a new file per
    create): the mount's staging directory (staging/PID-RANDOM, with its
    lock) holds the one file (two when the next file's stage was taken
    while the last one's, emptied once its close was answered, was not
    given back yet), and none once the mount ends. Each file is on the
    server whole."""
    dm, key, _, _ = srv
    cache = pathlib.Path(tempfile.mkdtemp(prefix="sfs-rcache-"))
    staging = cache / "staging"
    m = RemoteMount(dm.base, key, cache_dir=cache)

    def emptied():
        files = [f for f in staging.rglob("*")
                 if f.is_file() and f.name != "lock"]
        return files if all(f.stat().st_size == 0 for f in files) else None
    try:
        inodes = set()
        for i in range(20):
            m.path("s%02d.txt" % i).write_bytes(b"%02d" % i * 300)
            files = eventually(emptied)
            assert files and len(files) <= 2, files
            inodes.update(f.stat().st_ino for f in files)
        assert len(inodes) <= 2
        have = listed(dm, key, "/")
        for i in range(20):
            assert content(dm, key, have["s%02d" % i]["id"]) == \
                b"%02d" % i * 300
    finally:
        rc = m.stop()
    try:
        assert rc == 0
        assert list(staging.iterdir()) == []
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def boundary_bytes(size):
    """size bytes holding, line after line, the multipart delimiters a
    form built by the mount would use for its first few hundred forms
    (its boundaries are numbered) and libcurl's kind of them."""
    lines = b"".join(b"\r\n--------------------------sfs%x\r\n" % i +
                     b"\r\n--------------------------%016x--\r\n" % i
                     for i in range(1, 200))
    return (lines * (size // len(lines) + 1))[:size]


def test_small_files_go_whole_in_one_write(srv):
    """A small new file goes up in a form the mount builds itself, sent
    with the request's head: whatever its bytes hold (here every
    delimiter the mount's first forms would use) and whatever its size
    around the limit of such forms (16 KiB), the server holds exactly
    the bytes written, under the name given, when close() returns; a
    larger one goes through libcurl's form as before."""
    dm, key, _, _ = srv
    sizes = [0, 1, 77, 16383, 16384, 16385, 70000]
    m = RemoteMount(dm.base, key)
    try:
        for n in sizes:
            m.path("b%d.bin" % n).write_bytes(boundary_bytes(n))
        have = listed(dm, key, "/")
        for n in sizes:
            f = have["b%d" % n]
            assert f["filename"] == "b%d.bin" % n
            assert f["size"] == n
            assert content(dm, key, f["id"]) == boundary_bytes(n), n
    finally:
        assert m.stop() == 0


def test_others_see_a_new_file_from_its_close(srv):
    """The mount's processes see a new file at once, with its size while
    it is written; the server and another mount see nothing of it until
    its fsync() or close(), then all of it."""
    dm, key, _, _ = srv
    a = RemoteMount(dm.base, key)
    b = RemoteMount(dm.base, key)
    try:
        fd = os.open(a.path("new.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"abc")
            assert "new.txt" in os.listdir(a.dir)
            assert os.stat(a.path("new.txt")).st_size == 3
            assert a.path("new.txt").read_bytes() == b"abc"
            assert "new" not in listed(dm, key, "/")
            # a file closed after it reaches b: b has had the chance
            a.path("marker.txt").write_bytes(b"m")
            assert eventually(lambda: "marker.txt" in os.listdir(b.dir),
                              timeout=10)
            assert "new.txt" not in os.listdir(b.dir)
            os.fsync(fd)                        # durable: on the server
            f = listed(dm, key, "/")["new"]
            assert f["size"] == 3 and content(dm, key, f["id"]) == b"abc"
            assert xget(a.path("new.txt"), "user.speechfs.id") == f["id"]
            os.write(fd, b"def")
        finally:
            os.close(fd)
        assert content(dm, key, f["id"]) == b"abcdef"
        assert eventually(lambda: "new.txt" in os.listdir(b.dir) and
                          os.stat(b.path("new.txt")).st_size == 6,
                          timeout=10)
        assert b.path("new.txt").read_bytes() == b"abcdef"
    finally:
        b.stop()
        a.stop()


def test_what_is_done_before_the_close(srv):
    """Before its first close a new file is renamed (kept, sent with the
    create), unlinked (the server never hears of it, nor its trash), gets
    its times set (sent after the create), an xattr (the create goes
    first), its directory renamed (the create goes first); O_EXCL sees
    it; its directory is not empty. A fresh mount sees what the server
    holds."""
    dm, key, _, _ = srv
    m = RemoteMount(dm.base, key)
    fds = []

    def new(*parts):
        fds.append(os.open(m.path(*parts), os.O_CREAT | os.O_WRONLY,
                           0o644))
        return fds[-1]

    def close(fd):
        fds.remove(fd)
        os.close(fd)
    try:
        # renamed while open: created under its new name
        fd = new("r1.txt")
        os.write(fd, b"renamed")
        os.rename(m.path("r1.txt"), m.path("r2.txt"))
        assert "r1" not in listed(dm, key, "/")
        assert "r2" not in listed(dm, key, "/")
        assert entries(m.dir) == ["r2.txt"]
        close(fd)
        have = listed(dm, key, "/")
        assert list(have) == ["r2"]
        assert content(dm, key, have["r2"]["id"]) == b"renamed"
        # O_EXCL sees a file not sent yet
        fd = new("x.txt")
        with pytest.raises(OSError) as ei:
            os.open(m.path("x.txt"), os.O_CREAT | os.O_WRONLY | os.O_EXCL)
        assert ei.value.errno == errno.EEXIST
        # unlinked while open: its bytes go nowhere
        os.write(fd, b"gone")
        os.unlink(m.path("x.txt"))
        assert not m.path("x.txt").exists()
        close(fd)
        assert "x" not in listed(dm, key, "/")
        assert "x" not in listed(dm, key, "/", deleted=True)
        # times set before the close (of a file still open): sent after
        # its create; writes after them are newer
        t = 1_600_000_000_123_456_789
        fd = new("t.txt")
        os.utime(m.path("t.txt"), ns=(t, t))
        close(fd)
        assert listed(dm, key, "/")["t"]["modifiedAtNs"] == t
        fd = new("t2.txt")
        os.utime(m.path("t2.txt"), ns=(t - 5, t))
        close(fd)
        fd = new("t3.txt")
        os.utime(m.path("t3.txt"), ns=(t, t))
        os.write(fd, b"newer")
        close(fd)
        assert listed(dm, key, "/")["t3"]["modifiedAtNs"] > t
        # an xattr before the close: the create goes first
        fd = new("a.txt")
        os.write(fd, b"with attr")
        os.setxattr(m.path("a.txt"), "user.color", b"blue")
        assert "a" in listed(dm, key, "/")
        close(fd)
        # its directory: not empty; renamed while the file is open
        os.mkdir(m.path("d"))
        fd = new("d", "in.txt")
        os.write(fd, b"inside")
        with pytest.raises(OSError) as ei:
            os.rmdir(m.path("d"))
        assert ei.value.errno == errno.ENOTEMPTY
        os.rename(m.path("d"), m.path("e"))
        close(fd)
        assert m.path("e", "in.txt").read_bytes() == b"inside"
        have = listed(dm, key, "/e/")
        assert content(dm, key, have["in"]["id"]) == b"inside"
    finally:
        for fd in fds:
            os.close(fd)
        assert m.stop() == 0
    fresh = RemoteMount(dm.base, key)
    try:
        assert entries(fresh.dir) == ["a.txt", "e", "r2.txt", "t.txt",
                                      "t2.txt", "t3.txt"]
        assert fresh.path("r2.txt").read_bytes() == b"renamed"
        assert os.stat(fresh.path("t.txt")).st_mtime_ns == t
        st = os.stat(fresh.path("t2.txt"))
        assert (st.st_atime_ns, st.st_mtime_ns) == (t - 5, t)
        assert os.stat(fresh.path("t3.txt")).st_mtime_ns > t
        assert fresh.path("a.txt").read_bytes() == b"with attr"
        assert xget(fresh.path("a.txt"), "user.color") == "blue"
        assert fresh.path("e", "in.txt").read_bytes() == b"inside"
    finally:
        assert fresh.stop() == 0


def refuse(m, name, how):
    """A new file of 5000 bytes whose content the server refuses:
    EDQUOT from its close() ("close"), from its close() while a dup of
    its descriptor keeps it open (no release yet: "dup"), or from its
    fsync() ("fsync"). The descriptor still open, or None."""
    fd = os.open(m.path(name), os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"x" * 5000)
    left = os.dup(fd) if how == "dup" else fd if how == "fsync" else None
    with pytest.raises(OSError) as ei:
        if how == "fsync":
            os.fsync(fd)
        else:
            os.close(fd)
    assert ei.value.errno == errno.EDQUOT, ei.value
    return left


def close_err(fd):
    """close(fd)'s errno, or None."""
    try:
        os.close(fd)
    except OSError as e:
        return e.errno
    return None


@pytest.mark.parametrize("how", ["close", "dup", "fsync"])
def test_a_refused_content_keeps_the_name(srv, how):
    """A new file over the tenant's byte quota: close() (or fsync())
    says EDQUOT, and as on the local mount (whose creat() made the file)
    the data is lost, not the name: when the call returns, the server
    holds the file, empty, under the id the mount showed from creat(),
    and the mount shows that file; nothing waits for the release or the
    unmount (before, the server got it from the release, after close()
    returned: not at all while a dup or the fsync's descriptor kept the
    file open). The unmount changes nothing: one file, empty. A dup's
    close() says EDQUOT too (before, 0: the name's create answered it)."""
    dm, key, d, tenant = srv
    admin("tenant", "quota", "--store", str(d), "--id", tenant,
          "--max-bytes", "1000")
    m = RemoteMount(dm.base, key)
    try:
        left = refuse(m, "big.wav", how)
        said = None
        try:
            have = listed(dm, key, "/")
            assert list(have) == ["big"], have
            assert have["big"]["size"] == 0, have
            assert content(dm, key, have["big"]["id"]) == b""
            assert xget(m.path("big.wav"), "user.speechfs.id") == \
                have["big"]["id"]
            assert os.stat(m.path("big.wav")).st_size == 0
            assert entries(m.dir) == ["big.wav"]
        finally:
            if left is not None:
                said = close_err(left)
        # the dup's close says the handle's failure again (its bytes were
        # never stored); after the fsync that said it, close() is 0
        assert said == (errno.EDQUOT if how == "dup" else None), said
        m.path("small.wav").write_bytes(b"RIFF ok")
        assert listed(dm, key, "/")["small"]["size"] == 7
        assert m.path("big.wav").read_bytes() == b""
    finally:
        assert m.stop() == 0
    have = listed(dm, key, "/")
    assert sorted(have) == ["big", "small"], have
    assert have["big"]["size"] == 0, have
    assert listed(dm, key, "/", deleted=True) == {}


def test_a_refused_name_stays_the_mounts_until_the_server_takes_it(srv):
    """The tenant's file quota full: the server refuses the name too
    (413, to the content and to the empty create that follows it). The
    local mount's creat() would fail; the remote one's answered at
    once, so its close() says EDQUOT and the file stays the mount's own
    (shown empty, not on the server), tried again by its release and,
    once more, when the mount ends: with the quota lifted meanwhile,
    the server then holds it, empty."""
    dm, key, d, tenant = srv
    m = RemoteMount(dm.base, key)
    try:
        m.path("one.wav").write_bytes(b"one")
        admin("tenant", "quota", "--store", str(d), "--id", tenant,
              "--max-files", "1")
        refuse(m, "two.wav", "close")
        assert entries(m.dir) == ["one.wav", "two.wav"]
        assert os.stat(m.path("two.wav")).st_size == 0
        assert list(listed(dm, key, "/")) == ["one"]
        admin("tenant", "quota", "--store", str(d), "--id", tenant,
              "--max-files", "0")
    finally:
        assert m.stop() == 0
    have = listed(dm, key, "/")
    assert sorted(have) == ["one", "two"], have
    assert have["two"]["size"] == 0, have



@pytest.mark.parametrize("others", [4095, 4096])
def test_a_handle_past_the_unlinks_kept(srv, others):
    """An open handle on a file unlinked before it was sent commits into
    nothing ("unlinked while open", as on POSIX: close() returns 0). The
    mount keeps the newest 4,096 such files' entries; past them
    (others=4096: the handle's entry is dropped) its number still says
    so: close() returns 0 as well, not ENOENT from a commit to an id the
    server never had. No create is ever sent for it, nor its content
    (the key its id derives from went with the entry): the server never
    holds the file, live or in the trash (review s11 finding 6)."""
    dm, key, _, _ = srv
    m = RemoteMount(dm.base, key)
    try:
        fd = os.open(m.path("keep.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"kept")
            os.unlink(m.path("keep.txt"))
            for i in range(others):
                p = m.path("t%04d.txt" % i)
                f = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
                os.unlink(p)
                os.close(f)
            os.write(fd, b"more")
            os.fsync(fd)
        finally:
            os.close(fd)
        assert entries(m.dir) == []
        assert listed(dm, key, "/") == {}
        assert listed(dm, key, "/", deleted=True) == {}
        for r in ("files_create", "files_put_content", "files_sync"):
            assert requests_of(dm, r) == 0, r
    finally:
        assert m.stop() == 0
