"""Extended attributes of the mount: the writable fields (tags,
description, publishMode, metadata) and their aliases, the read-only
ones, bad values, the length probe and ERANGE, security.* and listxattr."""
import ctypes
import errno
import json
import os
import subprocess
import time

import pytest

from fsutil import api, mnt, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]
# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."


@pytest.fixture
def f(mnt):
    p = mnt.path("talk.wav")
    p.write_bytes(b"RIFF....not really audio")
    return p


def test_tags(f):
    assert xget(f, P + "tags") == ""
    os.setxattr(f, P + "tags", b"meeting, Alpha,beta")
    assert xget(f, P + "tags") == "Alpha,beta,meeting"
    j = json.loads(xget(f, P + "json"))
    assert sorted(j["tags"], key=str.lower) == ["Alpha", "beta", "meeting"]
    # replace, via the freedesktop alias
    os.setxattr(f, "user.xdg.tags", b"solo")
    assert xget(f, P + "tags") == "solo"
    os.removexattr(f, P + "tags")
    assert xget(f, P + "tags") == ""


def test_description_and_alias(f):
    with pytest.raises(OSError) as ei:
        os.getxattr(f, P + "description")
    assert ei.value.errno == errno.ENODATA
    os.setxattr(f, P + "description", "Quarterly review ✓".encode())
    assert xget(f, P + "description") == "Quarterly review ✓"
    assert xget(f, "user.xdg.comment") == "Quarterly review ✓"
    os.setxattr(f, "user.xdg.comment", b"other")
    assert json.loads(xget(f, P + "json"))["description"] == "other"
    os.removexattr(f, "user.xdg.comment")
    with pytest.raises(OSError):
        os.getxattr(f, P + "description")


def test_publish_mode(f):
    assert xget(f, P + "publishMode") == "PRIVATE"
    os.setxattr(f, P + "publishMode", b"INTERNAL")
    assert xget(f, P + "publishMode") == "INTERNAL"
    j = json.loads(xget(f, P + "json"))
    assert j["publishMode"] == "INTERNAL" and j["publishedAt"]
    with pytest.raises(OSError) as ei:
        os.setxattr(f, P + "publishMode", b"PUBLIC")
    assert ei.value.errno == errno.EINVAL
    assert xget(f, P + "publishMode") == "INTERNAL"


def test_metadata(f):
    os.setxattr(f, P + "metadata", b'{"speaker": "ann", "n": 3}')
    assert json.loads(xget(f, P + "metadata")) == {"speaker": "ann", "n": 3}
    for bad in (b"[1,2]", b"{not json", b'"str"'):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, P + "metadata", bad)
        assert ei.value.errno == errno.EINVAL
    assert json.loads(xget(f, P + "metadata"))["speaker"] == "ann"


def test_bad_tags(f):
    for bad in (b"x" * 65, b"a,\x01b"):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, P + "tags", bad)
        assert ei.value.errno == errno.EINVAL
    assert xget(f, P + "tags") == ""


READ_ONLY = [P + n for n in (
    "id", "sha256", "durationSeconds", "filename", "ingestionStatus",
    "listeningAudio.status", "json", "contentStatus", "shares",
    "ingestionError", "listeningAudio.error")] + [
    "user.mime_type", "user.xdg.origin.url"]


def test_read_only_fields(f, api):
    """Read-only attributes cannot be set (whatever the value) nor removed:
    EPERM, and nothing changes."""
    import requests
    url, keys = api
    fid = xget(f, P + "id")
    assert len(fid) == 36
    assert xget(f, P + "filename") == "talk.wav"
    # every one has a value: an import gives an origin, a failed
    # generation an error
    os.setxattr(f, P + "listeningAudio.status", b"generate")
    before = {n: (os.getxattr(f, n) if n in os.listxattr(f) else None)
              for n in READ_ONLY}
    for name in READ_ONLY:
        for value in (b"x", b"", b"COMPLETED", b"generate please"):
            with pytest.raises(OSError) as ei:
                os.setxattr(f, name, value)
            assert ei.value.errno == errno.EPERM, (name, value)
        with pytest.raises(OSError) as ei:
            os.removexattr(f, name)
        assert ei.value.errno == errno.EPERM, name
        p = subprocess.run(["setfattr", "-x", name, str(f)],
                           capture_output=True, text=True)
        assert p.returncode != 0 and "not permitted" in p.stderr, name
    after = {n: (os.getxattr(f, n) if n in os.listxattr(f) else None)
             for n in READ_ONLY}
    # (the worker may have moved the listening audio on meanwhile)
    for n in (P + "listeningAudio.status", P + "listeningAudio.error",
              P + "json", P + "contentStatus"):
        before.pop(n), after.pop(n)
    assert after == before
    r = requests.get(url + "/" + fid,
                     headers={"X-API-Key": keys[0]}, timeout=30)
    assert r.json()["filename"] == "talk.wav" and r.json()["id"] == fid
    # publishMode cannot be absent: removing it changes nothing
    os.removexattr(f, P + "publishMode")
    assert xget(f, P + "publishMode") == "PRIVATE"


def test_foreign_namespaces(f):
    """Namespaces other than user.* are not supported (no security labels,
    no POSIX ACLs): ENOTSUP, as ls and cp expect of such a filesystem."""
    for name in ("security.capability", "security.selinux",
                 "system.posix_acl_access", "trusted.x"):
        with pytest.raises(OSError) as ei:
            os.getxattr(f, name)
        assert ei.value.errno == errno.ENOTSUP
        assert name not in os.listxattr(f)
    # (the kernel itself checks the values of capabilities and ACLs)
    for name in ("security.test", "trusted.x"):
        with pytest.raises(OSError) as ei:
            os.setxattr(f, name, b"x")
        assert ei.value.errno == errno.ENOTSUP
    with pytest.raises(OSError) as ei:
        os.getxattr(f, P + "nosuch")
    assert ei.value.errno == errno.ENODATA
    # unknown names of our own namespace are refused ...
    with pytest.raises(OSError) as ei:
        os.setxattr(f, P + "other", b"x")
    assert ei.value.errno == errno.ENOTSUP


def test_other_user_attributes_round_trip(f, mnt, tmp_path):
    """Any other user.* attribute is kept as given."""
    value = b"\x00binary\xffvalue"
    os.setxattr(f, "user.other", value)
    assert os.getxattr(f, "user.other") == value
    assert "user.other" in os.listxattr(f)
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.other", b"y", os.XATTR_CREATE)
    assert ei.value.errno == errno.EEXIST
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.none", b"y", os.XATTR_REPLACE)
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.big", b"x" * 65537)
    assert ei.value.errno == errno.E2BIG
    os.removexattr(f, "user.other")
    with pytest.raises(OSError) as ei:
        os.getxattr(f, "user.other")
    assert ei.value.errno == errno.ENODATA
    with pytest.raises(OSError) as ei:
        os.removexattr(f, "user.other")
    assert ei.value.errno == errno.ENODATA
    # rsync -aX in and out keeps a foreign attribute
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"hello")
    os.setxattr(src / "a.txt", "user.origin", b"field recorder 7")
    # the mount's own attributes are read-only: rsync leaves them alone
    own = ["--filter=-x user.speechfs.*", "--filter=-x user.mime_type",
           "--filter=-x user.xdg.origin.url"]
    subprocess.run(["rsync", "-aX", *own, f"{src}/",
                    str(mnt.path("in")) + "/"], check=True)
    assert os.getxattr(mnt.path("in", "a.txt"), "user.origin") == \
        b"field recorder 7"
    # a second identical rsync -aX transfers no data (sizes and mtimes
    # kept); only the attributes are compared again (the mount lists its
    # own user.speechfs.* ones)
    again = subprocess.run(["rsync", "-aXi", *own, f"{src}/",
                            str(mnt.path("in")) + "/"],
                           check=True, capture_output=True, text=True)
    for line in again.stdout.splitlines():
        assert line.startswith(".f") and not set(line[2:10]) - {"."}, line
    back = tmp_path / "back"
    subprocess.run(["rsync", "-aX", str(mnt.path("in")) + "/", f"{back}/"],
                   check=True)
    assert os.getxattr(back / "a.txt", "user.origin") == b"field recorder 7"


def test_size_probe_and_erange(f):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.getxattr.restype = ctypes.c_ssize_t
    path = str(f).encode()
    name = (P + "id").encode()
    n = libc.getxattr(path, name, None, ctypes.c_size_t(0))
    assert n == 36
    buf = ctypes.create_string_buffer(10)
    r = libc.getxattr(path, name, buf, ctypes.c_size_t(10))
    assert r == -1 and ctypes.get_errno() == errno.ERANGE
    libc.listxattr.restype = ctypes.c_ssize_t
    n = libc.listxattr(path, None, ctypes.c_size_t(0))
    assert n > 0
    r = libc.listxattr(path, buf, ctypes.c_size_t(10))
    assert r == -1 and ctypes.get_errno() == errno.ERANGE


def test_listxattr(f):
    names = set(os.listxattr(f))
    assert {P + "id", P + "tags", P + "publishMode", P + "json",
            P + "sha256", P + "filename"} <= names
    assert P + "description" not in names   # null: not listed
    os.setxattr(f, P + "description", b"d")
    assert P + "description" in os.listxattr(f)


def test_getfattr_setfattr_tools(f):
    subprocess.run(["setfattr", "-n", P + "tags", "-v", "x,y", str(f)],
                   check=True)
    out = subprocess.run(["getfattr", "--only-values", "-n", P + "tags",
                          str(f)], capture_output=True, text=True,
                         check=True)
    assert out.stdout == "x,y"


def test_dir_has_no_fields(mnt):
    os.mkdir(mnt.path("d"))
    with pytest.raises(OSError) as ei:
        os.getxattr(mnt.path("d"), P + "id")
    assert ei.value.errno == errno.ENODATA
    assert os.listxattr(mnt.path("d")) == []


def test_mime_type_and_reasons(f):
    """user.mime_type comes from the probe; unset facts are ENODATA."""
    assert xget(f, "user.mime_type") == "application/octet-stream"
    assert "user.mime_type" in os.listxattr(f)
    for name in ("user.xdg.origin.url", P + "ingestionError"):
        with pytest.raises(OSError) as ei:
            os.getxattr(f, name)
        assert ei.value.errno == errno.ENODATA
    # not audio: written through the mount, it gets no listening audio
    # (null, as with generate=0; a job would be queued by the close) ...
    with pytest.raises(OSError) as ei:
        os.getxattr(f, P + "listeningAudio.status")
    assert ei.value.errno == errno.ENODATA
    assert json.loads(xget(f, P + "json"))["listeningAudio"] is None
    # ... unless asked for: then it fails, and the reason is readable
    os.setxattr(f, P + "listeningAudio.status", b"generate")
    deadline = time.time() + 60
    while time.time() < deadline and \
            xget(f, P + "listeningAudio.status") not in ("FAILED",
                                                         "COMPLETED"):
        time.sleep(0.2)
    assert xget(f, P + "listeningAudio.status") == "FAILED"
    assert "unsupported" in xget(f, P + "listeningAudio.error")
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.mime_type", b"audio/wav")
    assert ei.value.errno == errno.EPERM


BAD = {
    "tags": [b"x" * 65, b"a,\x01b", b"a\0b", b"\xff\xfe",
             ",".join("t%d" % i for i in range(65)).encode()],
    "description": [b"d" * 4097, b"a\0b", b"\xff\xfe"],
    "publishMode": [b"PUBLIC", b"internal", b"", b"PRIVATE\0", b"\xff"],
    "metadata": [b"[1,2]", b"{not json", b'"str"', b"", b"null",
                 b'{"a": "\xff"}'],
}
ALIASES = {"tags": "user.xdg.tags", "description": "user.xdg.comment"}


def test_bad_values_of_every_writable_attribute(f):
    """EINVAL for each bad value of each writable attribute (and its
    alias), and the attribute keeps its value."""
    os.setxattr(f, P + "tags", b"keep")
    os.setxattr(f, P + "description", b"keep me")
    os.setxattr(f, P + "metadata", b'{"k": 1}')
    kept = list(BAD)
    before = {n: os.getxattr(f, P + n) for n in kept}
    for name, values in BAD.items():
        for full in [P + name] + ([ALIASES[name]] if name in ALIASES
                                  else []):
            for bad in values:
                with pytest.raises(OSError) as ei:
                    os.setxattr(f, full, bad)
                assert ei.value.errno == errno.EINVAL, (full, bad[:40])
    # past the kernel's 64 KiB value limit
    with pytest.raises(OSError) as ei:
        os.setxattr(f, P + "metadata", b'{"a": "' + b"x" * 70000 + b'"}')
    assert ei.value.errno == errno.E2BIG
    assert {n: os.getxattr(f, P + n) for n in kept} == before
    # the tools report it as such
    p = subprocess.run(["setfattr", "-n", P + "publishMode", "-v", "OPEN",
                        str(f)], capture_output=True, text=True)
    assert p.returncode != 0 and "Invalid argument" in p.stderr


def test_bad_other_attributes(f):
    # a name the kernel passes but the store cannot keep
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.", b"v")
    assert ei.value.errno == errno.EINVAL
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.big", b"x" * 65537)
    assert ei.value.errno == errno.E2BIG
    os.setxattr(f, "user.fits", b"x" * 65536)
    assert len(os.getxattr(f, "user.fits")) == 65536
    # at most 128 stored attributes per file
    for i in range(127):
        os.setxattr(f, "user.n%03d" % i, b"v")
    with pytest.raises(OSError) as ei:
        os.setxattr(f, "user.one-too-many", b"v")
    assert ei.value.errno == errno.E2BIG
    os.setxattr(f, "user.n000", b"replacing is fine")
    assert os.getxattr(f, "user.n000") == b"replacing is fine"
