"""/.shared/: files other users of the tenant make reachable (INTERNAL
publish here), one directory per owner, readable but not writable.
Direct shares made through xattrs: test_fs_share_xattr.py."""
import errno
import os
import subprocess
import time

import pytest

from fsutil import eventually, mounts, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."


def test_shared_internal_file(store, mounts):
    d, _, users = store
    alice, bob = users
    b = mounts(bob)
    a = mounts(alice)
    b.path("bobs.txt").write_bytes(b"from bob")
    b.path("private.txt").write_bytes(b"secret")
    assert os.listdir(a.path(".shared")) == []
    os.setxattr(b.path("bobs.txt"), P + "publishMode", b"INTERNAL")
    deadline = time.time() + 5
    while time.time() < deadline and not os.listdir(a.path(".shared")):
        time.sleep(0.2)
    assert os.listdir(a.path(".shared")) == ["bob"]
    assert os.listdir(a.path(".shared", "bob")) == ["bobs.txt"]
    f = a.path(".shared", "bob", "bobs.txt")
    assert f.read_bytes() == b"from bob"
    assert os.stat(f).st_mode & 0o222 == 0
    assert xget(f, P + "id") == xget(b.path("bobs.txt"), P + "id")
    with pytest.raises(PermissionError):
        open(f, "r+b")
    with pytest.raises(PermissionError):
        os.setxattr(f, P + "tags", b"mine")
    with pytest.raises(OSError):
        os.unlink(f)
    assert f.read_bytes() == b"from bob"
    # nothing of alice's own shows there, and bob's private file not
    a.path("alices.txt").write_bytes(b"a")
    os.setxattr(a.path("alices.txt"), P + "publishMode", b"INTERNAL")
    assert os.listdir(a.path(".shared")) == ["bob"]
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", "bob", "private.txt"))
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", "nobody", "x"))
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", "alice"))
    # unpublished again: gone from alice's view
    os.setxattr(b.path("bobs.txt"), P + "publishMode", b"PRIVATE")
    deadline = time.time() + 5
    while time.time() < deadline and (os.listdir(a.path(".shared")) or
                                      a.path(".shared", "bob").exists()):
        time.sleep(0.2)
    assert os.listdir(a.path(".shared")) == []
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", "bob"))



def test_shared_shows_each_owners_tree_by_name(store, mounts):
    """.shared/ holds a directory per owner named by the owner's user name
    with the owner's virtual paths below it; owners whose names give the
    same entry ('/' shows as U+2215) are told apart by a stable suffix,
    the start of the later user's id."""
    from fsutil import admin
    d, tenant, users = store
    alice, bob = users
    slash = admin("user", "create", "--store", str(d), "--tenant", tenant,
                  "--name", "x/y")["id"]
    div = admin("user", "create", "--store", str(d), "--tenant", tenant,
                "--name", "x\u2215y")["id"]
    a = mounts(alice)
    os.makedirs(a.path("meetings", "2026"))
    f = a.path("meetings", "2026", "kickoff.txt")
    f.write_bytes(b"agenda")
    os.setxattr(f, P + "publishMode", b"INTERNAL")
    a.path("top.txt").write_bytes(b"top")
    os.setxattr(a.path("top.txt"), P + "publishMode", b"INTERNAL")
    for u in (div, slash):
        m = mounts(u)
        m.path("n.txt").write_bytes(u.encode())
        os.setxattr(m.path("n.txt"), P + "publishMode", b"INTERNAL")
    b = mounts(bob)
    first, second = "x\u2215y", "x\u2215y (%s)" % div[:8]
    want = sorted(["alice", first, second])
    assert eventually(lambda: sorted(os.listdir(b.path(".shared"))) == want,
                      timeout=10), os.listdir(b.path(".shared"))
    assert sorted(os.listdir(b.path(".shared", "alice"))) == [
        "meetings", "top.txt"]
    assert os.listdir(b.path(".shared", "alice", "meetings")) == ["2026"]
    g = b.path(".shared", "alice", "meetings", "2026", "kickoff.txt")
    assert g.read_bytes() == b"agenda"
    assert os.stat(b.path(".shared", "alice", "meetings")).st_mode & \
        0o040000
    # the older user keeps the plain name, the later one the suffix
    assert b.path(".shared", first, "n.txt").read_bytes() == slash.encode()
    assert b.path(".shared", second, "n.txt").read_bytes() == div.encode()
    out = subprocess.run(["find", str(b.path(".shared"))],
                         capture_output=True, text=True, check=True).stdout
    assert str(g) in out.splitlines()
