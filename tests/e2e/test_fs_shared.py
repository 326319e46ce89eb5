"""/.shared/: files other users of the tenant make reachable (INTERNAL
publish here), one directory per owner, readable but not writable."""
import errno
import os
import time

import pytest

from fsutil import mounts, store, xget  # noqa: F401

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
    assert os.listdir(a.path(".shared")) == [bob]
    assert os.listdir(a.path(".shared", bob)) == ["bobs.txt"]
    f = a.path(".shared", bob, "bobs.txt")
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
    assert os.listdir(a.path(".shared")) == [bob]
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", bob, "private.txt"))
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", "not-a-uuid", "x"))
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", alice))
    # unpublished again: gone from alice's view
    os.setxattr(b.path("bobs.txt"), P + "publishMode", b"PRIVATE")
    deadline = time.time() + 5
    while time.time() < deadline and (os.listdir(a.path(".shared")) or
                                      a.path(".shared", bob).exists()):
        time.sleep(0.2)
    assert os.listdir(a.path(".shared")) == []
    with pytest.raises(FileNotFoundError):
        os.stat(a.path(".shared", bob))


def test_shares_xattr(store, mounts):
    d, _, users = store
    alice, bob = users
    a = mounts(alice)
    b = mounts(bob)
    f = a.path("memo.txt")
    f.write_bytes(b"memo")
    assert xget(f, P + "shares") == ""
    os.setxattr(f, P + "shares", ("%s:VIEW" % bob).encode())
    assert xget(f, P + "shares") == "%s:VIEW" % bob
    g = b.path(".shared", alice, "memo.txt")
    deadline = time.time() + 5
    while time.time() < deadline and not g.exists():
        time.sleep(0.2)
    assert g.read_bytes() == b"memo"
    with pytest.raises(PermissionError):
        open(g, "r+b")
    # bob does not see alice's share list
    with pytest.raises(OSError) as ei:
        os.getxattr(g, P + "shares")
    assert ei.value.errno == errno.ENODATA
    os.setxattr(f, P + "shares", ("%s:EDIT" % bob).encode())
    assert xget(f, P + "shares") == "%s:EDIT" % bob
    for bad in (b"nobody:VIEW", ("%s:OWNER" % bob).encode(),
                ("%s:VIEW" % alice).encode(), bob.encode(),
                b"00000000-0000-4000-8000-000000000000:VIEW"):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, P + "shares", bad)
        assert ei.value.errno == errno.EINVAL, bad
    assert xget(f, P + "shares") == "%s:EDIT" % bob
    os.removexattr(f, P + "shares")
    assert xget(f, P + "shares") == ""
    deadline = time.time() + 5
    while time.time() < deadline and g.exists():
        time.sleep(0.2)
    assert not g.exists()
