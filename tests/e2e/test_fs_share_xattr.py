"""Direct shares through extended attributes: user.speechfs.share.<userId>
(VIEW or EDIT; set creates or updates, remove revokes) and the read-only
JSON of user.speechfs.shares, checked against the REST API and against
the other user's /.shared/ in a second mount; bad values, unknown users,
users of another tenant and non-owners are refused with the documented
errno."""
import errno
import json
import os
import subprocess

import pytest
import requests

from fsutil import admin, api, eventually, mounts, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."
S = P + "share."


def api_shares(url, key, fid):
    r = requests.get(url + "/" + fid + "/shares", headers={"X-API-Key": key},
                     timeout=30)
    assert r.status_code == 200, r.text
    return {s["userId"]: s["permission"] for s in r.json()["shares"]}


def setfattr(*args):
    return subprocess.run(["setfattr", *args], capture_output=True,
                          text=True)


def getfattr_value(path, name):
    p = subprocess.run(["getfattr", "--only-values", "-n", name, str(path)],
                       capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def test_share_set_get_remove(store, mounts, api):
    d, _, users = store
    alice, bob = users
    url, keys = api
    a = mounts(alice)
    b = mounts(bob)
    f = a.path("memo.txt")
    f.write_bytes(b"memo")
    fid = xget(f, P + "id")
    # no share yet
    rc, out, err = getfattr_value(f, S + bob)
    assert rc != 0 and "No such attribute" in err
    assert json.loads(xget(f, P + "shares")) == []
    assert not [n for n in os.listxattr(f) if n.startswith(S)]

    # create with setfattr: the API and bob's mount see it
    p = setfattr("-n", S + bob, "-v", "VIEW", str(f))
    assert p.returncode == 0, p.stderr
    assert getfattr_value(f, S + bob)[1] == "VIEW"
    assert api_shares(url, keys[0], fid) == {bob: "VIEW"}
    j = json.loads(xget(f, P + "shares"))
    assert [(s["userId"], s["permission"], s["fileId"]) for s in j] == \
        [(bob, "VIEW", fid)]
    assert S + bob in os.listxattr(f)
    g = b.path(".shared", "alice", "memo.txt")
    assert eventually(g.exists)
    assert g.read_bytes() == b"memo"
    with pytest.raises(PermissionError):
        open(g, "r+b")
    with pytest.raises(PermissionError):
        os.setxattr(g, P + "tags", b"bobs")

    # update to EDIT (an upper-case id names the same user): bob may edit
    p = setfattr("-n", S + bob.upper(), "-v", "EDIT", str(f))
    assert p.returncode == 0, p.stderr
    assert xget(f, S + bob) == "EDIT"
    assert api_shares(url, keys[0], fid) == {bob: "EDIT"}
    assert len(json.loads(xget(f, P + "shares"))) == 1

    def bob_can_tag():
        try:
            os.setxattr(g, P + "tags", b"edited-by-bob")
            return True
        except PermissionError:
            return False
    assert eventually(bob_can_tag)
    assert xget(f, P + "tags") == "edited-by-bob"

    # a share made through the API shows as an attribute too
    r = requests.post(url + "/" + fid + "/shares",
                      headers={"X-API-Key": keys[0]},
                      json={"userId": bob, "permission": "VIEW"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    assert eventually(lambda: xget(f, S + bob) == "VIEW")

    # remove revokes: gone from the API and from bob's /.shared/
    p = setfattr("-x", S + bob, str(f))
    assert p.returncode == 0, p.stderr
    assert api_shares(url, keys[0], fid) == {}
    assert json.loads(xget(f, P + "shares")) == []
    with pytest.raises(OSError) as ei:
        os.getxattr(f, S + bob)
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError) as ei:
        os.removexattr(f, S + bob)
    assert ei.value.errno == errno.ENODATA
    assert eventually(lambda: not g.exists())
    assert not g.exists()


def test_share_flags_and_listing(store, mounts):
    d, _, users = store
    alice, bob = users
    a = mounts(alice)
    f = a.path("x.wav")
    f.write_bytes(b"x")
    with pytest.raises(OSError) as ei:
        os.setxattr(f, S + bob, b"VIEW", os.XATTR_REPLACE)
    assert ei.value.errno == errno.ENODATA
    os.setxattr(f, S + bob, b"VIEW\n", os.XATTR_CREATE)   # as echo gives
    with pytest.raises(OSError) as ei:
        os.setxattr(f, S + bob, b"EDIT", os.XATTR_CREATE)
    assert ei.value.errno == errno.EEXIST
    assert xget(f, S + bob) == "VIEW"
    os.setxattr(f, S + bob, b"EDIT", os.XATTR_REPLACE)
    assert xget(f, S + bob) == "EDIT"
    # getfattr -d shows it; the length probe and ERANGE behave
    out = subprocess.run(["getfattr", "-d", "-m", "-", str(f)],
                         capture_output=True, text=True, check=True).stdout
    assert '%s%s="EDIT"' % (S, bob) in out
    assert '%sshares="[' % P in out
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getxattr.restype = ctypes.c_ssize_t
    name = (S + bob).encode()
    assert libc.getxattr(str(f).encode(), name, None, ctypes.c_size_t(0)) \
        == 4
    buf = ctypes.create_string_buffer(2)
    assert libc.getxattr(str(f).encode(), name, buf,
                         ctypes.c_size_t(2)) == -1
    assert ctypes.get_errno() == errno.ERANGE
    # user.speechfs.shares is read-only
    with pytest.raises(OSError) as ei:
        os.setxattr(f, P + "shares", b"[]")
    assert ei.value.errno == errno.EPERM
    assert xget(f, S + bob) == "EDIT"
    # a directory has no shares
    os.mkdir(a.path("d"))
    with pytest.raises(OSError) as ei:
        os.getxattr(a.path("d"), S + bob)
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError) as ei:
        os.setxattr(a.path("d"), S + bob, b"VIEW")
    assert ei.value.errno == errno.ENOTSUP


def test_share_bad_values_and_users(store, mounts):
    d, tenant, users = store
    alice, bob = users
    other_tenant = admin("tenant", "create", "--store", str(d), "--name",
                         "other")["id"]
    carol = admin("user", "create", "--store", str(d), "--tenant",
                  other_tenant, "--name", "carol")["id"]
    a = mounts(alice)
    f = a.path("y.wav")
    f.write_bytes(b"y")
    for bad in (b"", b"view", b"OWNER", b"READ", b"VIEW,EDIT", b"VIEW\0",
                b" EDIT", b"x" * 100):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, S + bob, bad)
        assert ei.value.errno == errno.EINVAL, bad
    for who in ("not-a-uuid", "00000000-0000-4000-8000-000000000000",
                carol, alice):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, S + who, b"VIEW")
        assert ei.value.errno == errno.EINVAL, who
        with pytest.raises(OSError) as ei:
            os.getxattr(f, S + who)
        assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError) as ei:
        os.setxattr(f, S, b"VIEW")              # no user id at all
    assert ei.value.errno == errno.EINVAL
    assert json.loads(xget(f, P + "shares")) == []
    # the tool reports it too
    p = setfattr("-n", S + bob, "-v", "ADMIN", str(f))
    assert p.returncode != 0 and "Invalid argument" in p.stderr


def test_share_non_owner(store, mounts):
    d, _, users = store
    alice, bob = users
    a = mounts(alice)
    b = mounts(bob)
    f = a.path("z.wav")
    f.write_bytes(b"z")
    os.setxattr(f, S + bob, b"EDIT")
    g = b.path(".shared", "alice", "z.wav")
    assert eventually(g.exists)
    # bob may edit the file but not manage its shares
    with pytest.raises(OSError) as ei:
        os.setxattr(g, S + alice, b"VIEW")
    assert ei.value.errno == errno.EACCES
    with pytest.raises(OSError) as ei:
        os.setxattr(g, S + bob, b"VIEW")
    assert ei.value.errno == errno.EACCES
    with pytest.raises(OSError) as ei:
        os.removexattr(g, S + bob)
    assert ei.value.errno == errno.EACCES
    # nor see them
    with pytest.raises(OSError) as ei:
        os.getxattr(g, S + bob)
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError) as ei:
        os.getxattr(g, P + "shares")
    assert ei.value.errno == errno.ENODATA
    assert not [n for n in os.listxattr(g) if n.startswith(P + "share")]
    assert xget(f, S + bob) == "EDIT"
    # a deleted file's shares cannot be changed from the trash
    os.unlink(f)
    t = a.path(".trash", "z.wav")
    with pytest.raises(OSError) as ei:
        os.setxattr(t, S + bob, b"VIEW")
    assert ei.value.errno == errno.EACCES


def test_share_by_user_name(store, mounts, api):
    """user.speechfs.share.<name>: a user of the mount's tenant named by
    name (ignoring case) is the same share as by id; a name of another
    tenant's user, or nobody's, is refused like an unknown id."""
    d, tenant, users = store
    alice, bob = users
    url, keys = api
    other = admin("tenant", "create", "--store", str(d), "--name", "o")["id"]
    admin("user", "create", "--store", str(d), "--tenant", other,
          "--name", "carol")
    a = mounts(alice)
    f = a.path("by-name.txt")
    f.write_bytes(b"by name")
    fid = xget(f, P + "id")
    p = setfattr("-n", S + "bob", "-v", "EDIT", str(f))
    assert p.returncode == 0, p.stderr
    assert api_shares(url, keys[0], fid) == {bob: "EDIT"}
    # the same share, by id or by any case of the name
    assert getfattr_value(f, S + "BOB")[1] == "EDIT"
    assert getfattr_value(f, S + bob)[1] == "EDIT"
    # the listing names shares by id, as before
    assert [n for n in os.listxattr(f) if n.startswith(S)] == [S + bob]
    p = setfattr("-n", S + "Bob", "-v", "VIEW", str(f))
    assert p.returncode == 0, p.stderr
    assert api_shares(url, keys[0], fid) == {bob: "VIEW"}
    for who in ("carol", "nobody"):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, S + who, b"VIEW")
        assert ei.value.errno == errno.EINVAL, who
        with pytest.raises(OSError) as ei:
            os.getxattr(f, S + who)
        assert ei.value.errno == errno.ENODATA, who
    os.removexattr(f, S + "bob")
    assert api_shares(url, keys[0], fid) == {}
    with pytest.raises(OSError) as ei:
        os.removexattr(f, S + "bob")
    assert ei.value.errno == errno.ENODATA
