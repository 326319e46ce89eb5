"""The mount exactly as promised (issue #11): names given by renames,
attributes of restored files and of listening MP3s, df with the tenant's
quotas, POSIX semantics programs rely on (unlinked open files, a writer's
own bytes, atime, EFBIG, directory link counts, ftruncate times) and the
mount's arguments. Each test runs on a real mount."""
import errno
import json
import os
import subprocess
import time

import pytest

from fsutil import (ADMIN, SPEECHFS, Mount, api, eventually, mnt,  # noqa
                    store, xget)

MOUNT_KINDS = ["local", "remote"]

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."


def api_get(url, key, fid):
    import requests
    r = requests.get(url + "/" + fid, headers={"X-API-Key": key},
                     timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


# ---- 1. rename sets the name ---------------------------------------------

def test_rename_from_a_temporary_entry_sets_the_name(mnt, api, tmp_path):
    url, keys = api
    src = tmp_path / "a.wav"
    src.write_bytes(b"RIFF not really")
    tmp = mnt.path(".final.wav.X1y2Z3")
    subprocess.run(["cp", str(src), str(tmp)], check=True)
    subprocess.run(["mv", str(tmp), str(mnt.path("final.wav"))],
                   check=True)
    j = api_get(url, keys[0], xget(mnt.path("final.wav"), P + "id"))
    assert j["name"] == "final" and j["filename"] == "final.wav"
    subprocess.run(["cp", str(src), str(mnt.path("direct.wav"))],
                   check=True)
    j2 = api_get(url, keys[0], xget(mnt.path("direct.wav"), P + "id"))
    assert j2["name"] == "direct" and j2["filename"] == "direct.wav"
    # the extension kept: the original filename stays, the name follows
    os.rename(mnt.path("final.wav"), mnt.path("renamed.wav"))
    j = api_get(url, keys[0], j["id"])
    assert j["name"] == "renamed" and j["filename"] == "final.wav"
    assert os.listdir(mnt.dir).count("renamed.wav") == 1


def test_rsync_gives_the_names_of_cp(mnt, api, tmp_path):
    url, keys = api
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for rel in ("one.wav", "sub/two.flac", "sub/README", "noext"):
        (src / rel).write_bytes(rel.encode())
    subprocess.run(["cp", "-r", str(src), str(mnt.path("bycp"))],
                   check=True)
    subprocess.run(["rsync", "-a", str(src) + "/",
                    str(mnt.path("byrsync")) + "/"], check=True)

    def names(top):
        out = {}
        for d, _, files in os.walk(mnt.path(top)):
            for f in files:
                j = api_get(url, keys[0], xget(os.path.join(d, f),
                                               P + "id"))
                rel = os.path.relpath(os.path.join(d, f), mnt.path(top))
                out[rel] = (j["name"], j["filename"])
        return out
    assert names("byrsync") == names("bycp")
    assert names("bycp")["sub/two.flac"] == ("two", "two.flac")
    assert names("bycp")["noext"] == ("noext", "noext")


# ---- 4. .listening files have their own facts ----------------------------

def test_listening_file_facts(mnt, tmp_path):
    wav = tmp_path / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(wav),
                    "synth", "2", "sine", "440"], check=True)
    subprocess.run(["cp", str(wav), str(mnt.path("tone.wav"))], check=True)
    mp3 = mnt.path(".listening", "tone.mp3")
    assert eventually(mp3.exists, timeout=60)
    data = mp3.read_bytes()
    import hashlib
    assert xget(mp3, "user.mime_type") == "audio/mpeg"
    assert xget(mp3, P + "sha256") == hashlib.sha256(data).hexdigest()
    assert os.stat(mp3).st_size == len(data)
    assert xget(mnt.path("tone.wav"), "user.mime_type") == "audio/wav"
    assert xget(mnt.path("tone.wav"), P + "sha256") != \
        xget(mp3, P + "sha256")
    names = os.listxattr(mp3)
    assert P + "filename" not in names and P + "ingestionStatus" not in \
        names


# ---- 5. a restored file's attributes are right at once -------------------

def test_restore_out_of_the_trash(mnt):
    f = mnt.path("back.txt")
    f.write_bytes(b"back")
    os.unlink(f)
    t = mnt.path(".trash", "back.txt")
    assert os.stat(t).st_mode & 0o777 == 0o444
    subprocess.run(["ls", "-l", str(mnt.path(".trash"))], check=True,
                   capture_output=True)
    os.rename(t, f)
    # ls asks no ctime: the kernel answers from what it has
    assert subprocess.run(["ls", "-l", str(f)], capture_output=True,
                          text=True).stdout.startswith("-rw-r--r--")
    st = os.stat(f)
    assert st.st_mode & 0o777 == 0o644
    f.write_bytes(b"written again")
    assert f.read_bytes() == b"written again"


# ---- 7. df: the tenant's quotas ------------------------------------------

def test_df_shows_the_tenant_quota(tmp_path):
    from fsutil import admin, make_store
    d = tmp_path / "store"
    tenant, users = make_store(d, max_bytes=10 * 1024 * 1024)
    admin("tenant", "quota", "--store", str(d), "--id", tenant,
          "--max-files", "50")
    m = Mount(d, users[0])
    try:
        m.path("a.bin").write_bytes(os.urandom(1024 * 1024))
        v = os.statvfs(m.dir)
        assert v.f_blocks * v.f_frsize == 10 * 1024 * 1024
        used = (v.f_blocks - v.f_bfree) * v.f_frsize
        assert used == 1024 * 1024
        assert v.f_bavail * v.f_frsize <= 9 * 1024 * 1024
        assert v.f_files == 50 and v.f_ffree == 49
        out = subprocess.run(["df", "-B1", str(m.dir)], capture_output=True,
                             text=True, check=True).stdout.splitlines()[1]
        assert out.split()[1] == str(10 * 1024 * 1024)
        assert out.split()[2] == str(1024 * 1024)
    finally:
        m.stop()


# ---- 8. mount arguments --------------------------------------------------

def run_mount(*args):
    return subprocess.run([str(SPEECHFS), *args, "-f"], capture_output=True,
                          text=True, timeout=30)


def test_mount_arguments_fail_with_a_reason(store, tmp_path):
    d, _, users = store
    u = users[0]
    f = tmp_path / "file"
    f.write_bytes(b"x")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--store", str(d), "--user", u, str(f)], "not a directory"),
        (["--store", str(d), "--user", u, str(tmp_path / "missing")],
         "No such file or directory"),
        (["--store", str(d), "--user", u, str(full)], "not empty"),
        (["--store", str(d), "--user", u, str(empty), "-o", "umask=999"],
         "umask=999: expected an octal mode"),
        (["--store", str(d), str(empty)], "missing --user"),
        (["--user", u, str(empty)], "missing --store"),
        (["--store", str(d), "--user", u], "missing the mount point"),
        (["--store", str(d), "--user", u, str(empty), "-o", "commit=0"],
         "commit=0: expected milliseconds"),
    ]
    try:
        for args, why in cases:
            p = run_mount(*args)
            assert p.returncode != 0, args
            assert why in p.stderr, (args, p.stderr)
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
            assert not os.path.ismount(empty)
    finally:
        # a mount that should have been refused (FUSE mounts over a
        # regular file too) must not outlive the test: a dead one stays
        # until the machine reboots and its temp dir cannot be removed
        for m in (f, empty):
            subprocess.run(["fusermount3", "-uz", str(m)],
                           capture_output=True)
    assert f.read_bytes() == b"x"
    # nonempty mounts over it (and hides what is there meanwhile)
    m = Mount(d, u, "-o", "nonempty")
    m2 = None
    try:
        m2 = subprocess.Popen([str(SPEECHFS), "--store", str(d), "--user",
                               u, str(full), "-f", "-o", "nonempty"],
                              stderr=subprocess.PIPE, text=True)
        assert eventually(lambda: os.path.ismount(full), timeout=10)
        assert "x" not in os.listdir(full)
    finally:
        if m2:
            subprocess.run(["fusermount3", "-u", str(full)])
            assert m2.wait(timeout=30) == 0
        m.stop()
    assert (full / "x").read_bytes() == b"x"


# ---- 10. POSIX semantics -------------------------------------------------

def test_unlinked_open_file_keeps_its_content(mnt):
    f = mnt.path("held.txt")
    f.write_bytes(b"still here")
    fd = os.open(f, os.O_RDONLY)
    try:
        os.unlink(f)
        assert not f.exists()
        assert os.read(fd, 100) == b"still here"
        st = os.fstat(fd)
        assert st.st_size == 10 and st.st_nlink == 0
        assert os.pread(fd, 5, 6) == b"here"
    finally:
        os.close(fd)
    # a writer's descriptor too: its writes go nowhere, without error
    g = mnt.path("w.txt")
    g.write_bytes(b"old")
    fd = os.open(g, os.O_RDWR)
    try:
        os.unlink(g)
        assert os.read(fd, 10) == b"old"
        os.write(fd, b"new")
        assert os.fstat(fd).st_size >= 3
    finally:
        os.close(fd)
    assert not g.exists()


def test_a_writer_never_loses_its_writes(mnt):
    for existing in (False, True):
        f = mnt.path("w%d.txt" % existing)
        if existing:
            f.write_bytes(b"the old content")
        fd = os.open(f, os.O_RDWR | os.O_CREAT)
        try:
            data = b"twenty-seven bytes written"[:27].ljust(27, b".")
            os.write(fd, data)
            # a reader opened meanwhile sees the writer's bytes
            r = os.open(f, os.O_RDONLY)
            try:
                assert os.read(r, 100) == data
            finally:
                os.close(r)
            os.lseek(fd, 0, os.SEEK_SET)
            assert os.read(fd, 100) == data
            assert os.stat(f).st_size == 27
        finally:
            os.close(fd)
        assert f.read_bytes() == data


def test_atime_is_kept_on_its_own(mnt):
    f = mnt.path("t.txt")
    f.write_bytes(b"t")
    subprocess.run(["touch", "-m", "-d", "@1950000000", str(f)], check=True)
    subprocess.run(["touch", "-a", "-d", "@1900000000", str(f)], check=True)
    out = subprocess.run(["stat", "-c", "%X %Y", str(f)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == ["1900000000", "1950000000"]
    f.read_bytes()
    st = os.stat(f)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1900000000 * 10**9,
                                                1950000000 * 10**9)


def test_huge_truncate_is_efbig(mnt):
    f = mnt.path("big.txt")
    f.write_bytes(b"small")
    p = subprocess.run(["truncate", "-s", "999999999999999", str(f)],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "File too large" in p.stderr, p.stderr
    with pytest.raises(OSError) as ei:
        os.truncate(f, 999999999999999)
    assert ei.value.errno == errno.EFBIG
    assert f.read_bytes() == b"small"


def test_directory_link_counts(mnt):
    os.makedirs(mnt.path("top", "a", "x"))
    os.makedirs(mnt.path("top", "b"))
    mnt.path("top", "file").write_bytes(b"f")
    assert os.stat(mnt.path("top")).st_nlink == 4
    assert os.stat(mnt.path("top", "a")).st_nlink == 3
    assert os.stat(mnt.path("top", "b")).st_nlink == 2
    os.rmdir(mnt.path("top", "b"))
    assert os.stat(mnt.path("top")).st_nlink == 3
    out = subprocess.run(["find", str(mnt.path("top")), "-type", "d"],
                         capture_output=True, text=True, check=True).stdout
    assert sorted(out.split()) == sorted(
        str(mnt.path(*p)) for p in (("top",), ("top", "a"),
                                    ("top", "a", "x")))


def test_ftruncate_changes_times_at_once(mnt):
    f = mnt.path("ft.txt")
    f.write_bytes(b"some bytes")
    os.utime(f, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = os.stat(f)
    fd = os.open(f, os.O_RDWR)
    try:
        t0 = time.time_ns()
        os.ftruncate(fd, 4)
        st = os.fstat(fd)
        assert st.st_size == 4
        assert st.st_mtime_ns >= t0 - 10**6 and st.st_ctime_ns >= t0 - 10**6
        assert os.stat(f).st_mtime_ns == st.st_mtime_ns
        assert st.st_mtime_ns != before.st_mtime_ns
    finally:
        os.close(fd)
    assert f.read_bytes() == b"some"
    assert os.stat(f).st_mtime_ns >= t0 - 10**6
