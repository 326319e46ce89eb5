"""The mount of a store whose blobs live in an object store (the run's
Ceph RADOS Gateway through a relay the test can cut): reads go through
the local block cache, so what was read stays readable while the store is
away; what was not is EIO, a close() that cannot commit says EIO and the
previous content stays; everything works again when the store returns."""
import errno
import os
import time

import pytest

import rgw
from conftest import Blobs
from fsutil import Mount, make_store, need_fuse


@pytest.fixture
def s3mount(tmp_path, rgw_gateway, monkeypatch):
    need_fuse()
    g = rgw_gateway
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", g.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", g.secret_key)
    monkeypatch.setenv("AWS_REGION", g.region)
    bucket = g.make_bucket("fs")
    relay = rgw.Proxy(g.host, g.port)
    blobs = Blobs("s3", g, bucket, endpoint=relay.endpoint)
    d = tmp_path / "store"
    _, users = make_store(d, blobs=blobs)
    m = Mount(d, users[0])
    try:
        yield m, relay, d
    finally:
        relay.mend()
        m.stop()
        relay.stop()
        s3 = g.client()
        try:
            s3.drop_bucket(bucket)
        finally:
            s3.close()


def test_outage_reads_cached_eio_otherwise_and_resumes(s3mount):
    m, relay, store = s3mount
    a, b = os.urandom(3 << 20), os.urandom(200000)
    m.path("a.bin").write_bytes(a)
    m.path("b.bin").write_bytes(b)
    assert m.path("a.bin").read_bytes() == a  # now in the block cache
    assert os.listdir(store / "cache")
    assert not any(f for _, _, f in os.walk(store / "blobs") if f)
    # drop the kernel's cache of these files, so reads come to us
    for name in ("a.bin", "b.bin"):
        fd = os.open(m.path(name), os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    relay.cut()
    assert m.path("a.bin").read_bytes() == a
    with pytest.raises(OSError) as exc:
        m.path("b.bin").read_bytes()
    assert exc.value.errno == errno.EIO
    # a write that cannot reach the store fails at close, nothing changes
    # (past blobs.inline_max: small contents stay in the database's rows)
    fd = os.open(m.path("a.bin"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, os.urandom(100000))
    with pytest.raises(OSError) as exc:
        os.close(fd)
    assert exc.value.errno == errno.EIO
    relay.mend()
    deadline = time.time() + 10
    while True:
        try:
            assert m.path("b.bin").read_bytes() == b
            break
        except OSError:
            assert time.time() < deadline
            time.sleep(0.1)
    assert m.path("a.bin").read_bytes() == a
    c = os.urandom(100000)
    m.path("c.bin").write_bytes(c)
    assert m.path("c.bin").read_bytes() == c
