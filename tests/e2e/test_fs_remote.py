"""The remote mount (`speechfs --url`): a real speechfsd on 127.0.0.1
and a real FUSE mount of it. The tree (directories, explicit empty ones,
files and their attributes, tags in xattrs) is the one the local mount
shows of the same store; content reads right cold (Range GETs into the
block cache) and warm (from the cache, no request to the server);
writes are on the server when the call returns and its refusals come
back as the local mount's errno; each bad argument is refused with one
line."""
import base64
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from fsutil import (SPEECHFS, Mount, admin, api, cache_bytes,  # noqa: F401
                    eventually, store, xget)

P = "user.speechfs."


class RemoteMount(Mount):
    """A running `speechfs --url … -f` on a temporary mountpoint."""

    def __init__(self, base, key, *opts, cache_dir=None, token=False):
        """key: an API key, or with token a JWT (--token-file)."""
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sfs-rmnt-"))
        self.keyf = self.dir.parent / (self.dir.name + ".key")
        self.keyf.write_text(key + "\n")
        self.keyf.chmod(0o600)
        self.cache = cache_dir or pathlib.Path(
            tempfile.mkdtemp(prefix="sfs-rcache-"))
        self.own_cache = cache_dir is None
        self.start([str(SPEECHFS), "--url", base,
                    "--token-file" if token else "--key-file",
                    str(self.keyf), "-o", f"cache_dir={self.cache}",
                    str(self.dir), "-f", *opts], wait=15)

    def stop(self, check=True):
        try:
            return super().stop(check)
        finally:
            self.keyf.unlink(missing_ok=True)
            if self.own_cache:
                shutil.rmtree(self.cache, ignore_errors=True)


def call(method, url, **kw):
    """A request of the test's own, waiting out the daemon's rate limit
    (429 + Retry-After) as the mount does: the mount's requests count
    against the same user's budget."""
    kw.setdefault("timeout", 30)
    deadline = time.time() + 60
    while True:
        r = requests.request(method, url, **kw)
        if r.status_code != 429 or time.time() > deadline:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))


def base_of(url):
    return url.split("/api/")[0]


def content_gets(base):
    """GETs of content the daemon answered (its /metrics)."""
    text = call("GET", base + "/metrics", timeout=10).text
    return sum(int(v) for v in re.findall(
        r'speechfs_http_requests_total\{route="files_content",'
        r'status="2\d\d"\} (\d+)', text))


def upload(url, key, data, name, path="/", tags=None):
    h = {"X-API-Key": key}
    fields = {"name": name, "path": path}
    if tags:
        fields["tags"] = json.dumps(tags)
    r = call("POST", url, headers=h, files={"file": (name + ".bin", data)},
                      data=fields, timeout=60)
    assert r.status_code in (200, 201), r.text
    return r.json()


def tree(root):
    """Every entry below root but the dot directories: relative path ->
    (kind, size, tags, id) of a file, ("d",) of a directory."""
    out = {}
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.stat(p)
            rel = os.path.relpath(p, root)
            if n in files:
                out[rel] = ("f", st.st_size, xget(p, P + "tags"),
                            xget(p, P + "id"))
            else:
                out[rel] = ("d",)
    return out


def test_remote_tree_and_reads(store, api):
    d, _, users = store
    url, keys = api
    base = base_of(url)
    big = os.urandom(9 << 20) + b"tail"          # three 4 MiB blocks
    small = b"RIFF small recording"
    f1 = upload(url, keys[0], big, "Big talk", "/inbox/",
                tags=["work", "todo"])
    f2 = upload(url, keys[0], small, "Small", "/")
    upload(url, keys[0], b"deep bytes", "Deep", "/inbox/deep/")
    upload(url, keys[1], b"bob's", "Bob only", "/")   # not alice's
    r = call("POST", base + "/api/v1/speech-services/directories",
                      headers={"X-API-Key": keys[0]},
                      json={"path": "/empty/"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    r = call("PUT", url + "/" + f2["id"] + "/xattrs",
                     headers={"X-API-Key": keys[0]},
                     json={"name": "user.note",
                           "value": base64.b64encode(b"\x00\xffhi").decode()},
                     timeout=30)
    assert r.ok, r.text

    local = Mount(d, users[0])
    try:
        want = tree(local.dir)
    finally:
        local.stop()
    cache = pathlib.Path(tempfile.mkdtemp(prefix="sfs-rcache-"))
    try:
        m = RemoteMount(base, keys[0], cache_dir=cache)
    except BaseException:
        shutil.rmtree(cache, ignore_errors=True)
        raise
    try:
        got = tree(m.dir)
        assert got == want
        assert set(os.listdir(m.dir)) >= {"inbox", "empty", "Small.bin"}
        assert os.listdir(m.path("empty")) == []
        assert "Bob only.bin" not in os.listdir(m.dir)
        bigp = m.path("inbox", "Big talk.bin")
        assert set(xget(bigp, P + "tags").split(",")) == {"work", "todo"}
        assert xget(bigp, P + "id") == f1["id"]
        assert os.getxattr(m.path("Small.bin"), "user.note") == b"\x00\xffhi"
        assert "user.note" in os.listxattr(m.path("Small.bin"))
        # cold: Range GETs through the block cache
        before = content_gets(base)
        assert bigp.read_bytes() == big
        # blocks 1 and 2 come in one range, read ahead of a reader in order
        assert content_gets(base) - before >= 2
        # a fetched block goes to the disk while the reader goes on
        assert eventually(lambda: cache_bytes(cache) == len(big))
        assert m.path("Small.bin").read_bytes() == small
        assert m.path("inbox", "deep", "Deep.bin").read_bytes() == \
            b"deep bytes"
        # a file the server gets later shows up (entries expire in 1 s)
        upload(url, keys[0], b"later", "Later", "/inbox/")
        assert eventually(lambda: "Later.bin" in os.listdir(m.path("inbox")))
    finally:
        m.stop()
    # warm: a new mount on the same cache reads the blocks from disk
    m = RemoteMount(base, keys[0], cache_dir=cache)
    try:
        before = content_gets(base)
        with open(m.path("inbox", "Big talk.bin"), "rb") as f:
            f.seek(5 << 20)
            assert f.read(1 << 20) == big[5 << 20:6 << 20]
            f.seek(0)
            assert f.read() == big
        assert content_gets(base) == before
    finally:
        m.stop()
        shutil.rmtree(cache, ignore_errors=True)


def read_ahead_kb(mountpoint):
    """The kernel's read-ahead window of the mount (its bdi), in KiB."""
    dev = os.stat(mountpoint).st_dev
    return int(pathlib.Path("/sys/class/bdi/%d:%d/read_ahead_kb" % (
        os.major(dev), os.minor(dev))).read_text())


@pytest.mark.skipif(os.geteuid() != 0, reason="sysfs's read_ahead_kb is "
                    "root's: the mount keeps FUSE's 128 KiB")
def test_remote_mount_reads_ahead_in_large_requests(store, api):
    """The remote mount raises the kernel's read-ahead from FUSE's 128 KiB
    to 4 MiB before it answers INIT, and asks as much there (the INIT
    answer may only lower it): a reader in order costs READs of 1 MiB,
    not 8,192 round trips of 128 KiB per GiB. The bytes read stay right
    across the 4 MiB blocks."""
    url, keys = api
    data = os.urandom((9 << 20) + 12345)
    upload(url, keys[0], data, "Long", "/")
    m = RemoteMount(base_of(url), keys[0])
    try:
        assert read_ahead_kb(m.dir) == 4096
        assert m.path("Long.bin").read_bytes() == data
    finally:
        m.stop()


def api_file(url, key, path, name):
    r = call("GET", url, headers={"X-API-Key": key},
                     params={"path": path, "name": name}, timeout=30)
    assert r.ok, r.text
    return [f for f in r.json()["files"] if f["name"] == name]


def content(url, key, fid):
    r = call("GET", url + "/" + fid + "/content",
                     headers={"X-API-Key": key}, timeout=30)
    assert r.ok, r.text
    return r.content


def test_block_cache_stays_in_its_bound(store, api):
    """-o cache_size bounds the block cache, least recently used blocks
    out first, however long the cache directory's own path (a scan once
    left out every block whose path was 300 bytes or more: such a cache
    grew without bound)."""
    url, keys = api
    base = base_of(url)
    files = {n: os.urandom(8 << 20) for n in ("A", "B", "C")}  # 2 blocks
    for n, data in files.items():
        upload(url, keys[0], data, n, "/")
    top = pathlib.Path(tempfile.mkdtemp(prefix="sfs-rcache-"))
    cache = top / ("long-" * 44)                # past 220 bytes
    cache.mkdir()
    bound = 10 << 20

    def blocks(name):
        sha = hashlib.sha256(files[name]).hexdigest()
        return [f for f in cache.rglob(sha + ".*")
                if not f.name.endswith(".tmp")]

    m = RemoteMount(base, keys[0], "-o", "cache_size=10M", cache_dir=cache)
    try:
        for n, data in files.items():
            assert m.path(n + ".bin").read_bytes() == data
        # C's blocks in, A's and B's out (A read first, B then)
        assert eventually(lambda: len(blocks("C")) == 2), "C not cached"
        assert eventually(lambda: cache_bytes(cache) <= bound), \
            "the cache holds %d bytes, past its bound" % cache_bytes(cache)
        assert blocks("A") == [] and blocks("B") == []
    finally:
        m.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_remote_writes_reach_the_server(store, api):
    """Each write is on the server when the call returns (close() waits
    for the server's answer): new files, overwrites keeping the id,
    mkdir, rename of a file and of a directory, tags, unlink to the
    trash, rmdir, times."""
    url, keys = api
    k = keys[0]
    base = base_of(url)
    m = RemoteMount(base, k)
    try:
        m.path("new.wav").write_bytes(b"RIFF new")
        (f,) = api_file(url, k, "/", "new")
        assert content(url, k, f["id"]) == b"RIFF new"
        assert f["filename"] == "new.wav"
        # an overwrite is a new version of the same file
        m.path("new.wav").write_bytes(b"RIFF newer bytes")
        assert content(url, k, f["id"]) == b"RIFF newer bytes"
        with open(m.path("new.wav"), "ab") as w:
            w.write(b" and more")
        assert content(url, k, f["id"]) == b"RIFF newer bytes and more"
        assert m.path("new.wav").read_bytes() == b"RIFF newer bytes and more"
        # directories and renames
        os.mkdir(m.path("dir"))
        r = call("GET", base + "/api/v1/speech-services/directories",
                         headers={"X-API-Key": k}, params={"path": "/dir/"},
                         timeout=30)
        assert r.ok and r.json()["explicit"] is True, r.text
        os.rename(m.path("new.wav"), m.path("dir", "moved.wav"))
        (g,) = api_file(url, k, "/dir/", "moved")
        assert g["id"] == f["id"]
        assert not m.path("dir2").exists()     # a number for nothing
        os.rename(m.path("dir"), m.path("dir2"))
        (g,) = api_file(url, k, "/dir2/", "moved")
        assert g["id"] == f["id"]
        assert os.listdir(m.path("dir2")) == ["moved.wav"]
        # tags through the xattr
        os.setxattr(m.path("dir2", "moved.wav"), P + "tags", b"a,b")
        (g,) = api_file(url, k, "/dir2/", "moved")
        assert sorted(g["tags"]) == ["a", "b"]
        # rmdir of a directory with a file: ENOTEMPTY, as locally
        with pytest.raises(OSError) as ei:
            os.rmdir(m.path("dir2"))
        assert ei.value.errno == 39
        # unlink: to the server's trash
        os.unlink(m.path("dir2", "moved.wav"))
        j = call("GET", url + "/" + f["id"], headers={"X-API-Key": k},
                         timeout=30).json()
        assert j["isDeleted"] is True
        assert "moved.wav" in os.listdir(m.path(".trash"))
        os.rmdir(m.path("dir2"))
        # out of the trash again
        os.rename(m.path(".trash", "moved.wav"), m.path("back.wav"))
        j = call("GET", url + "/" + f["id"], headers={"X-API-Key": k},
                         timeout=30).json()
        assert j["isDeleted"] is False and j["path"] == "/"
        assert j["name"] == "back"
        r = call("GET", base + "/api/v1/speech-services/directories",
                         headers={"X-API-Key": k}, params={"path": "/dir2/"},
                         timeout=30)
        assert r.status_code == 404, r.text
        # a file's times, to the ns, on the server when utime returns
        m.path("t.wav").write_bytes(b"x")
        os.utime(m.path("t.wav"), ns=(1000000007, 2000000009))
        tid = xget(m.path("t.wav"), "user.speechfs.id")
        j = call("GET", url + "/" + tid, headers={"X-API-Key": k},
                 timeout=30).json()
        assert (j["modifiedAtNs"], j["accessedAtNs"]) == \
            (2000000009, 1000000007), j
        st = os.stat(m.path("t.wav"))
        assert (st.st_mtime_ns, st.st_atime_ns) == (2000000009, 1000000007)
        # .shared/ is there (nothing is shared with this user yet); the
        # mount names its block cache once, and nothing as missing
        assert os.listdir(m.path(".shared")) == []
        out = m.output()
        assert out.count("block cache") == 1, out
        assert "not done yet" not in out, out
        # statfs comes from the server's space
        assert os.statvfs(m.dir).f_blocks > 0
    finally:
        m.stop()


def test_remote_writer_keeps_its_base(store, api):
    """A writer's version starts from a whole version of the file, and
    its close commits whatever others committed meanwhile (the last close
    wins). The server answers a version's bytes only while it is the
    file's, so the mount takes a writer's base when it opens it (up to a
    block) and opens the file again if it changed before that. Before,
    the writer's first write fetched the replaced version, met 409
    content_changed and failed the close with EEXIST."""
    url, keys = api
    k = keys[0]
    m = RemoteMount(base_of(url), k)
    try:
        # within the first block (kept at open), and past it: a base
        # replaced before the first write is taken again, whole (review
        # s12: the second block of the old one met 409, ESTALE)
        for n in 100, (5 << 20) + 3:
            m.path("base.bin").write_bytes(b"a" * n)
            fid = xget(m.path("base.bin"), P + "id")
            with open(m.path("base.bin"), "r+b", buffering=0) as w:
                r = call("PUT", url + "/" + fid + "/content",
                         headers={"X-API-Key": k}, data=b"b" * n)
                assert r.ok, r.text
                w.write(b"c" * 10)
            assert content(url, k, fid) in (b"c" * 10 + b"a" * (n - 10),
                                            b"c" * 10 + b"b" * (n - 10))
    finally:
        m.stop()


def test_remote_close_reports_the_servers_refusal(store, api):
    """413 quota_exceeded -> EDQUOT at close(), nothing kept on the
    server that it did not accept."""
    d, tenant, users = store
    url, keys = api
    k = keys[0]
    admin("tenant", "quota", "--store", str(d), "--id", tenant,
          "--max-bytes", "1000")
    m = RemoteMount(base_of(url), k)
    try:
        m.path("small.wav").write_bytes(b"RIFF ok")
        (f,) = api_file(url, k, "/", "small")
        w = open(m.path("small.wav"), "wb")
        w.write(b"x" * 5000)
        with pytest.raises(OSError) as ei:
            w.close()
        assert ei.value.errno == 122                     # EDQUOT
        assert content(url, k, f["id"]) == b"RIFF ok"
        assert m.path("small.wav").read_bytes() == b"RIFF ok"
    finally:
        m.stop()


def test_remote_follows_the_servers_changes(store, api):
    """The change feed: what others change on the server (content, a
    rename, a delete) the mount shows, its page cache dropped for a new
    content; its own writes come back through the feed harmlessly."""
    url, keys = api
    k = keys[0]
    h = {"X-API-Key": k}
    f = upload(url, k, b"first words", "Talk", "/")
    m = RemoteMount(base_of(url), k)
    try:
        p = m.path("Talk.bin")
        assert p.read_bytes() == b"first words"
        r = call("PUT", url + "/" + f["id"] + "/content", headers=h,
                         data=b"second, longer words", timeout=30)
        assert r.ok, r.text
        assert eventually(lambda: p.read_bytes() == b"second, longer words")
        r = call("PATCH", url + "/" + f["id"], headers=h,
                           json={"name": "Renamed"}, timeout=30)
        assert r.ok, r.text
        assert eventually(lambda: sorted(os.listdir(m.dir)) ==
                          [".listening", ".shared", ".trash",
                           "Renamed.bin"])
        assert call("DELETE", url + "/" + f["id"], headers=h,
                               timeout=30).status_code in (200, 204)
        assert eventually(lambda: "Renamed.bin" not in os.listdir(m.dir))
        m.path("mine.wav").write_bytes(b"RIFF mine")
        assert eventually(lambda: m.path("mine.wav").read_bytes() ==
                          b"RIFF mine")
        assert "change feed" not in m.output()
    finally:
        m.stop()


def run_bad(*args):
    r = subprocess.run([str(SPEECHFS), *args], capture_output=True,
                       text=True, timeout=30)
    return r.returncode, r.stderr.strip()


@pytest.mark.parametrize("args,says", [
    (["--url", "ftp://x", "--key-file", "/dev/null"], "expected http"),
    (["--url", "http://127.0.0.1:1"], "needs one of --key-file"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K", "--token-file",
      "K"], "needs one of --key-file"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K", "--store", "/x"],
     "leave out --store"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K", "-o",
      "timeout=0"], "timeout=0: expected seconds"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K", "-o",
      "cache_size=12Q"], "cache_size=12Q: expected bytes"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K", "-o",
      "cafile=/nonexistent/ca.pem"], "cafile=/nonexistent/ca.pem"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K", "-o",
      "cache_dir=rel"], "expected an absolute path"),
    (["--store", "/x", "--user", "u", "-o", "cache_dir=/tmp"],
     "is for a remote mount"),
    (["--url", "http://127.0.0.1:1", "--key-file", "/nonexistent/key"],
     "key file '/nonexistent/key'"),
    (["--url", "http://127.0.0.1:1", "--key-file", "EMPTY"],
     "expected one line"),
    (["--url", "http://127.0.0.1:1", "--key-file", "K"],
     "cannot mount 'http://127.0.0.1:1'"),
])
def test_bad_arguments_say_one_line(tmp_path, args, says):
    key = tmp_path / "key"
    key.write_text("sfs_" + "0" * 64 + "\n")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    mp = tmp_path / "mnt"
    mp.mkdir()
    args = [str(key) if a == "K" else str(empty) if a == "EMPTY" else a
            for a in args]
    rc, err = run_bad(*args, str(mp), "-f")
    assert rc != 0
    assert says in err, err
    assert len(err.splitlines()) == 1, err
    assert not os.path.ismount(mp)


def test_wrong_key_is_refused_at_mount(store, api, tmp_path):
    url, keys = api
    key = tmp_path / "key"
    key.write_text("sfs_" + "1" * 64 + "\n")
    mp = tmp_path / "mnt"
    mp.mkdir()
    rc, err = run_bad("--url", base_of(url), "--key-file", str(key),
                      "-o", f"cache_dir={tmp_path}/cache", str(mp), "-f")
    assert rc != 0
    assert err.startswith("speechfs: cannot mount"), err
    assert len(err.splitlines()) == 1, err
    assert not os.path.ismount(mp)
