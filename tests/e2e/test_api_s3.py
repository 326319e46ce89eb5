"""A store whose blobs live in an object store (the run's Ceph RADOS
Gateway, reached through a relay the tests can cut): the bytes are objects
of the bucket and nowhere else; the daemon answers with a 302 to a
presigned URL when told to; an unreachable store is a 503 with Retry-After
and commits nothing, and service resumes when it returns; fsck finds and
removes objects without rows; a crash between upload and commit leaves
nothing behind; `speechfsd blob migrate --to s3` copies, verifies,
resumes and switches."""
import hashlib
import json
import os
import signal
import subprocess
import time

import pytest
import requests

import rgw
from conftest import (API, SFSD, Blobs, Client, Daemon, free_port,
                      make_store)


@pytest.fixture
def aws_env(rgw_gateway, monkeypatch):
    """Credentials where every process of the store finds them."""
    g = rgw_gateway
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", g.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", g.secret_key)
    monkeypatch.setenv("AWS_REGION", g.region)
    return g


@pytest.fixture
def relay(rgw_gateway):
    p = rgw.Proxy(rgw_gateway.host, rgw_gateway.port)
    yield p
    p.stop()


@pytest.fixture
def bucket(rgw_gateway):
    name = rgw_gateway.make_bucket("s3e2e")
    yield name
    s3 = rgw_gateway.client()
    try:
        s3.drop_bucket(name)
    finally:
        s3.close()


class Env:
    """A store in the bucket (through the relay), its users, daemons."""

    def __init__(self, root, gw, bucket, relay):
        self.root = root
        self.gw = gw
        self.bucket = bucket
        self.relay = relay
        self.blobs = Blobs("s3", gw, bucket, endpoint=relay.endpoint)
        self.store, self.tenants, self.users, self.keys = \
            make_store(root, self.blobs)
        self.prefix = self.blobs.prefix
        self.daemons = []

    def start(self, config=None, env=None):
        d = Daemon(self.root, self.store, config)
        c = Client(d.base, self.store)
        c.tenants, c.users, c.keys = self.tenants, self.users, self.keys
        c.daemon = d
        self.daemons.append((d, c))
        return c

    def objects(self):
        s3 = self.gw.client()
        try:
            return s3.list(self.bucket, self.prefix)
        finally:
            s3.close()

    def stop(self):
        for d, c in self.daemons:
            c.http.close()
            if d.proc.poll() is None:
                d.stop()
        self.daemons = []


@pytest.fixture
def env(tmp_path, aws_env, bucket, relay):
    e = Env(tmp_path, aws_env, bucket, relay)
    yield e
    relay.mend()
    e.stop()


def local_blob_files(store):
    return [os.path.join(d, f) for d, _, fs in os.walk(store / "blobs")
            for f in fs]


def test_blobs_are_objects_of_the_bucket(env):
    c = env.start()
    data = os.urandom(3 * 1024 * 1024 + 5)
    f = c.new_file(data=data, filename="big.bin")
    sha = hashlib.sha256(data).hexdigest()
    objs = env.objects()
    assert len(objs) == 1, objs
    key, size = next(iter(objs.items()))
    assert key.endswith("/%s/%s" % (sha[:2], sha)) and size == len(data)
    assert local_blob_files(env.store) == []
    r = c.get(f"/{f['id']}/content")
    assert r.status_code == 200 and r.content == data
    r = c.get(f"/{f['id']}/content", headers={"Range": "bytes=1000-1999"})
    assert r.status_code == 206 and r.content == data[1000:2000]
    # the same bytes again: one object, two references
    g = c.new_file(data=data, name="again")
    assert len(env.objects()) == 1
    c.delete(f"/{f['id']}?purge=true")
    assert len(env.objects()) == 1
    c.delete(f"/{g['id']}?purge=true")
    deadline = time.time() + 10
    while env.objects() and time.time() < deadline:
        time.sleep(0.05)
    assert env.objects() == {}


def test_redirect_to_a_presigned_url(env):
    c = env.start({"http.redirect_to_object_store": "true"})
    data = os.urandom(200000)
    f = c.new_file(data=data, filename="talk one.wav")
    r = c.get(f"/{f['id']}/content", allow_redirects=False)
    assert r.status_code == 302, r.text
    loc = r.headers["Location"]
    assert loc.startswith(env.relay.endpoint) and "X-Amz-Signature=" in loc
    assert r.headers["X-Request-Id"]
    # the bytes come from the store, without credentials of ours
    r = requests.get(loc, timeout=30)
    assert r.status_code == 200 and r.content == data
    assert "talk one.wav" in r.headers["Content-Disposition"]
    r = requests.get(loc, headers={"Range": "bytes=10-19"}, timeout=30)
    assert r.status_code == 206 and r.content == data[10:20]
    # a client that follows redirects gets the file in one call
    assert c.get(f"/{f['id']}/content").content == data
    # permissions are checked before: another tenant gets no URL
    c.assert_error(c.get(f"/{f['id']}/content", "carol",
                         allow_redirects=False), 404)


def test_unreachable_store_503_then_resumes(env):
    c = env.start()
    # (past blobs.inline_max: small blobs stay in the database's rows)
    data = os.urandom(100000)
    f = c.new_file(data=data)
    before = c.get("", params={"recursive": "true"}).json()
    env.relay.cut()
    r = c.upload(data=os.urandom(90000), name="during")
    body = c.assert_error(r, 503, "storage_unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    assert "object store" in body["message"]
    # nothing committed without its object
    assert c.get("", params={"recursive": "true"}).json() == before
    r = c.get(f"/{f['id']}/content")
    c.assert_error(r, 503, "storage_unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    # metadata does not need the object store
    assert c.get(f"/{f['id']}").status_code == 200
    env.relay.mend()
    r = c.get(f"/{f['id']}/content")
    assert r.status_code == 200 and r.content == data
    after = os.urandom(80000)
    g = c.new_file(data=after, name="after")
    assert c.get(f"/{g['id']}/content").content == after
    assert len(env.objects()) == 2


def fsck(store, *args):
    p = subprocess.run([str(SFSD), "fsck", "--store", str(store), "--json",
                        *args], capture_output=True, text=True, timeout=120)
    return p.returncode, json.loads(p.stdout), p.stderr


def test_fsck_finds_and_removes_objects_without_rows(env):
    c = env.start()
    c.new_file(data=os.urandom(100000))
    sha = hashlib.sha256(b"stray").hexdigest()
    key = "%s1/%s/%s" % (env.prefix, sha[:2], sha)
    s3 = env.gw.client()
    s3.put(env.bucket, key, b"stray")
    s3.close()
    rc, r, err = fsck(env.store)
    assert rc == 3 and r["orphanFiles"] == 1 and r["repaired"] == 0, err
    assert key in env.objects()
    rc, r, err = fsck(env.store, "--repair")
    assert rc == 0 and r["repaired"] == 1, err
    assert key not in env.objects() and len(env.objects()) == 1
    rc, r, err = fsck(env.store)
    assert rc == 0 and r["orphanFiles"] == 0 and r["blobsChecked"] == 1


def test_fsck_refuses_to_judge_when_the_store_is_unreachable(env):
    c = env.start()
    f = c.new_file(data=b"precious")
    env.relay.cut()
    rc, r, err = fsck(env.store, "--repair")
    assert rc == 1, (r, err)
    env.relay.mend()
    # nothing was marked missing or discarded
    assert c.get(f"/{f['id']}").json()["size"] == len(b"precious")
    assert c.get(f"/{f['id']}/content").content == b"precious"


def test_crash_between_upload_and_commit_leaves_nothing(env):
    port = free_port()
    proc = subprocess.Popen(
        [str(SFSD), "--store", str(env.store), "--listen",
         "127.0.0.1:%d" % port],
        env=dict(os.environ, SFS_CRASH_AT="blob-linked"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = "http://127.0.0.1:%d" % port
        deadline = time.time() + 15
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.time() < deadline
            time.sleep(0.05)
        with pytest.raises(requests.ConnectionError):
            requests.post(base + API,
                          headers={"X-API-Key": env.keys["alice"]},
                          files={"file": ("x.bin", os.urandom(100000))},
                          data={"name": "lost"}, timeout=30)
        assert proc.wait(timeout=30) == 77
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the object went up, its row never came: an object without a row
    assert len(env.objects()) == 1
    # the next process to open the store undoes the dead one's commit
    c = env.start()
    assert c.get("", params={"recursive": "true"}).json()["files"] == []
    assert env.objects() == {}
    rc, r, err = fsck(env.store)
    assert rc == 0, (r, err)



def test_credentials_from_the_configuration_or_a_credentials_file(
        tmp_path, env, monkeypatch):
    """The three places credentials come from, in their order: the
    configuration's keys, else AWS_*, else a credentials file (its path
    and profile configured, or ~/.aws/credentials and AWS_PROFILE)."""
    g = env.gw
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_SESSION_TOKEN", "AWS_PROFILE",
              "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(k, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    # none anywhere: the daemon does not start, and says why
    with pytest.raises(AssertionError) as exc:
        env.start()
    assert "no credentials for the object store" in str(exc.value)
    env.daemons = []
    creds = tmp_path / "creds"
    creds.write_text("[default]\naws_access_key_id = WRONG\n"
                     "aws_secret_access_key = wrong\n\n"
                     "# the gateway's user\n[speech]\n"
                     "aws_access_key_id = %s\naws_secret_access_key = %s\n"
                     % (g.access_key, g.secret_key))
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(creds.read_text())
    monkeypatch.setenv("AWS_PROFILE", "speech")
    ways = [
        {"blob.s3.access_key": g.access_key,
         "blob.s3.secret_key": g.secret_key},
        {"blob.s3.credentials_file": str(creds),
         "blob.s3.profile": "speech"},
        {},  # ~/.aws/credentials, profile AWS_PROFILE
    ]
    for i, config in enumerate(ways):
        c = env.start(config)
        data = os.urandom(70000 + i)
        f = c.new_file(data=data, name="w%d" % i)
        assert c.get(f"/{f['id']}/content").content == data
        env.stop()
    assert sorted(env.objects().values()) == [70000, 70001, 70002]


def test_daemon_refuses_a_configuration_naming_another_place(env):
    with pytest.raises(AssertionError) as exc:
        env.start({"blob.backend": "local"})
    assert "keeps its blobs in s3://" in str(exc.value)
    env.daemons = []


def migrate(store, bucket, prefix, endpoint, extra_env=None):
    p = subprocess.run(
        [str(SFSD), "blob", "migrate", "--to", "s3", "--store", str(store),
         "--endpoint", endpoint, "--bucket", bucket, "--prefix", prefix,
         "--json"], capture_output=True, text=True, timeout=300,
        env=dict(os.environ, **(extra_env or {})))
    out = json.loads(p.stdout) if p.stdout.strip() else {}
    return p.returncode, out, p.stderr


def test_migrate_copies_verifies_resumes_and_switches(tmp_path, aws_env,
                                                      bucket):
    gw = aws_env
    store, tenants, users, keys = make_store(tmp_path)  # local blobs
    d = Daemon(tmp_path, store)
    c = Client(d.base, store)
    c.keys = keys
    files = {}
    try:
        # the first is small: it stays in its row, not moved
        for i in range(5):
            data = os.urandom(1000 + 70000 * i)
            files[c.new_file(data=data, name="m%d" % i)["id"]] = data
        c.new_file(data=files[list(files)[1]], name="dup")  # deduped
        assert len(local_blob_files(store)) == 4
        # interrupted after the first blob: the copy resumes from there
        rc, out, err = migrate(store, bucket, "mig/", gw.endpoint,
                               {"SFS_CRASH_AT": "blob-migrated"})
        assert rc == 77, (out, err)
        s3 = gw.client()
        assert len(s3.list(bucket, "mig/")) == 1
        # with the daemon running: every blob copied, but no switch
        rc, out, err = migrate(store, bucket, "mig/", gw.endpoint)
        assert rc == 75 and out["switched"] is False, (out, err)
        assert out["present"] == 1 and out["copied"] == 3, out
        assert "stop" in err
        assert c.get(f"/{next(iter(files))}/content").status_code == 200
    finally:
        c.http.close()
        d.stop()
    rc, out, err = migrate(store, bucket, "mig/", gw.endpoint)
    assert rc == 0 and out["switched"] is True, (out, err)
    assert out["present"] == 4 and out["copied"] == 0
    objs = s3.list(bucket, "mig/")
    s3.close()
    assert sorted(objs.values()) == sorted(len(v) for v in files.values()
                                           if len(v) > 65536)
    # the daemon follows the store's record: reads come from the bucket
    p = subprocess.run([str(SFSD), "blob", "show", "--store", str(store),
                        "--json"], capture_output=True, text=True)
    assert json.loads(p.stdout)["backend"] == "s3"
    for path in local_blob_files(store):
        os.unlink(path)
    d = Daemon(tmp_path, store)
    c = Client(d.base, store)
    c.keys = keys
    try:
        for fid, data in files.items():
            r = c.get(f"/{fid}/content")
            assert r.status_code == 200 and r.content == data
        c.new_file(data=b"new after the switch", name="new")
        assert local_blob_files(store) == []
    finally:
        c.http.close()
        d.stop()
    rc, r, err = fsck(store)
    assert rc == 0 and r["blobsChecked"] == 6, (r, err)
    # again: nothing to do, the store is there already
    rc, out, err = migrate(store, bucket, "mig/", gw.endpoint)
    assert rc == 0 and out["switched"] is True and out["copied"] == 0


def test_local_store_ignores_the_redirect_option(sfsd_factory):
    c = sfsd_factory({"http.redirect_to_object_store": "true"})
    f = c.new_file(data=b"served by us")
    r = c.get(f"/{f['id']}/content", allow_redirects=False)
    assert r.status_code == 200 and r.content == b"served by us"


def uploads_left(env):
    s3 = env.gw.client()
    try:
        return [k for k, _ in s3.uploads(env.bucket)
                if k.startswith(env.prefix)]
    finally:
        s3.close()


def test_big_uploads_stream_while_received(env):
    """An upload of several parts is sent while it is received (a
    multipart upload under incoming/, copied to its key at the end); the
    same bytes again are deduplicated and their streamed parts dropped;
    an upload that breaks off leaves nothing behind."""
    c = env.start({"blob.s3.part_size_mb": "5",
                   "http.max_upload_bytes": str(64 << 20),
                   "http.connection_timeout": "3"})
    data = os.urandom(23 * 1024 * 1024 + 77)
    f = c.new_file(data=data, filename="long.wav")
    sha = hashlib.sha256(data).hexdigest()
    objs = env.objects()
    assert list(objs.values()) == [len(data)], objs
    assert next(iter(objs)).endswith(sha)
    assert uploads_left(env) == []
    r = c.get(f"/{f['id']}/content")
    assert r.status_code == 200 and hashlib.sha256(
        r.content).hexdigest() == sha
    g = c.new_file(data=data, name="again")
    assert g["sha256"] == sha and len(env.objects()) == 1
    assert uploads_left(env) == []
    # a client that goes silent in the middle of 30 MiB (dropped after
    # the connection timeout)
    import socket
    s = socket.create_connection(("127.0.0.1", c.daemon.port))
    body = os.urandom(30 << 20)
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
            "Content-Type: multipart/form-data; boundary=zz\r\n"
            "Content-Length: %d\r\n\r\n--zz\r\nContent-Disposition: "
            "form-data; name=\"name\"\r\n\r\ncut\r\n--zz\r\n"
            "Content-Disposition: form-data; name=\"file\"; "
            "filename=\"c.bin\"\r\n\r\n" % (API, c.keys["alice"],
                                             len(body) + 200))
    try:
        s.sendall(head.encode() + body[:20 << 20])
    except (BrokenPipeError, ConnectionResetError):
        pass  # on a slow machine the timeout may cut the sending itself
    s.close()
    deadline = time.time() + 120  # only stops a hang (ASan at load: > 30 s)
    while uploads_left(env) and time.time() < deadline:
        time.sleep(0.1)
    assert uploads_left(env) == []
    assert len(env.objects()) == 1
    s3 = env.gw.client()
    try:
        assert s3.list(env.bucket, env.prefix + "incoming/") == {}
    finally:
        s3.close()


def test_uploads_carry_a_checksum_the_store_may_ignore(env):
    """A blob sent in one PUT carries x-amz-checksum-sha256 (its own
    sha256, base64) beside the payload hash. Ceph 16's RGW neither checks
    nor echoes it: the daemon learns that from the first answer, says so
    once, and relies on the payload hash (which RGW checks) and the
    object's size."""
    c = env.start()
    a, b = os.urandom(200000), os.urandom(300000)
    fa = c.new_file(data=a, filename="a.bin")
    fb = c.new_file(data=b, filename="b.bin")
    for f, data in ((fa, a), (fb, b)):
        r = c.get(f"/{f['id']}/content")
        assert r.status_code == 200 and r.content == data
    assert sorted(env.objects().values()) == [len(a), len(b)]
    log = c.daemon.log.read_text()
    said = [ln for ln in log.splitlines()
            if "x-amz-checksum-sha256" in ln]
    assert len(said) == 1, log
    assert "ignores x-amz-checksum-sha256" in said[0]
    assert "verified by x-amz-content-sha256 and size" in said[0]
