"""/.shared/: files other users of the tenant make reachable (INTERNAL
publish here), one directory per owner, readable but not writable.
Direct shares made through xattrs: test_fs_share_xattr.py."""
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

