"""The mount with ordinary tools: ls, stat, find, du, cp in and out, mv,
rm and the trash, mkdir and rmdir, and a clean unmount."""
import errno
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from fsutil import Mount, mnt, need_fuse, sha256_file, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                          **kw)


def test_version():
    need_fuse()
    from fsutil import SPEECHFS
    out = run(str(SPEECHFS), "--version")
    assert out.returncode == 0
    assert out.stdout.startswith("speechfs ")


def test_missing_options_fail(store, tmp_path):
    from fsutil import SPEECHFS
    d, _, users = store
    mp = tmp_path / "m"
    mp.mkdir()
    out = run(str(SPEECHFS), "--store", str(d), "/nonexistent-mnt")
    assert out.returncode != 0
    out = run(str(SPEECHFS), "--store", str(d), "--user",
              "00000000-0000-4000-8000-000000000000", str(mp), "-f")
    assert out.returncode != 0
    assert "unknown user" in out.stderr


def test_bad_options_fail(store, tmp_path):
    from fsutil import SPEECHFS
    d, _, users = store
    mp = tmp_path / "m"
    mp.mkdir()
    for opts in (["-o", "bogus_option"], ["-o", "umask=999"],
                 ["-o", "uid=x"], ["-o", "max_threads=0"],
                 ["-o", "max_threads=x"]):
        out = run(str(SPEECHFS), "--store", str(d), "--user", users[0],
                  str(mp), "-f", *opts)
        assert out.returncode != 0, opts
        assert not os.path.ismount(mp)
    out = run(str(SPEECHFS), "--store", str(tmp_path / "nostore"), "--user",
              users[0], str(mp), "-f")
    assert out.returncode != 0 and "cannot open store" in out.stderr


def test_root_listing(mnt):
    names = sorted(os.listdir(mnt.dir))
    assert names == [".listening", ".shared", ".trash"]
    st = os.stat(mnt.dir)
    assert st.st_mtime > 1e9
    assert st.st_uid == os.getuid()


def test_options_via_o(store):
    d, _, users = store
    m = Mount(d, users[0], "-o", "umask=027,uid=1234,gid=4321,listening=0")
    try:
        with open(m.path("a.txt"), "w") as f:
            f.write("x")
        st = os.stat(m.path("a.txt"))
        assert st.st_mode & 0o777 == 0o640
        assert (st.st_uid, st.st_gid) == (1234, 4321)
        assert ".listening" not in os.listdir(m.dir)
    finally:
        m.stop()


def test_allow_other_adds_default_permissions(store):
    d, _, users = store
    m = Mount(d, users[0], "-o", "allow_other")
    try:
        with open("/proc/self/mounts") as f:
            line = [x for x in f if " %s " % m.dir in x][0]
        assert "allow_other" in line
        assert "default_permissions" in line
        assert line.split()[2] == "fuse.speechfs"
    finally:
        m.stop()


def test_one_worker_serves_parallel_writers(store):
    """-o max_threads=1: a single worker (the most), and requests handed
    over while it is busy wait in its queue; 16 writers in parallel each
    get their bytes back."""
    import threading
    d, _, users = store
    m = Mount(d, users[0], "-o", "max_threads=1")
    errors = []

    def writer(i):
        try:
            data = os.urandom(300000 + i)
            with open(m.path("w%02d.bin" % i), "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
            with open(m.path("w%02d.bin" % i), "rb") as f:
                assert f.read() == data
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append((i, e))
    try:
        ts = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert not any(t.is_alive() for t in ts)
        assert not errors, errors
    finally:
        m.stop()


def test_store_and_user_as_o_options(store):
    d, _, users = store
    from fsutil import SPEECHFS
    import tempfile
    import time
    mp = tempfile.mkdtemp()
    p = subprocess.Popen([str(SPEECHFS), mp, "-f", "-o",
                          "store=%s,user=%s" % (d, users[0])])
    try:
        for _ in range(200):
            if os.path.ismount(mp):
                break
            time.sleep(0.05)
        assert os.path.ismount(mp)
    finally:
        subprocess.run(["fusermount3", "-u", mp])
        assert p.wait(timeout=30) == 0
        os.rmdir(mp)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_signal_exits_zero(store, sig):
    import signal
    d, _, users = store
    m = Mount(d, users[0])
    try:
        m.proc.send_signal(getattr(signal, sig))
        assert m.proc.wait(timeout=30) == 0
        assert not os.path.ismount(m.dir)
    finally:
        m.stop()    # unmounts and ends it if the signal did not


def sha256sum(path):
    """The file's sha256, read by another process that a mount which
    does not answer cannot hang forever (it is killed at the deadline)."""
    out = run("sha256sum", str(path))
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


class Background:
    """`speechfs` without -f: it returns once mounted, leaving the mount
    in a process of its own (found by its unique mount point in /proc);
    stop() unmounts and waits for that process to end."""

    def __init__(self, store, user, mp):
        from fsutil import SPEECHFS
        self.mp = mp
        out = run(str(SPEECHFS), "--store", str(store), "--user", user,
                  str(mp))
        assert out.returncode == 0, out.stderr
        assert os.path.ismount(mp)
        self.pid = next(int(p) for p in os.listdir("/proc") if p.isdigit()
                        and self._cmdline(p).endswith("\0%s\0" % mp))
        # waited for and killed through a pidfd: once it ends, its pid
        # may be another process's
        self.pidfd = os.pidfd_open(self.pid)

    @staticmethod
    def _cmdline(pid):
        try:
            with open("/proc/%s/cmdline" % pid) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if os.path.ismount(self.mp):
            run("fusermount3", "-u", str(self.mp))
        try:
            # a pidfd is readable once its process has ended
            if not select.select([self.pidfd], [], [], 30)[0]:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                run("fusermount3", "-uz", str(self.mp))
                raise AssertionError("the background mount did not end")
        finally:
            os.close(self.pidfd)


def test_background_mount_reads_and_writes(store, tmp_path):
    """Without -f the mount forks before it opens the store, so the
    threads of an object store (its fetchers) and the workers live in the
    process that serves: a file written, then read back by a second
    mount with an empty block cache, comes from the store."""
    d, _, users = store
    mp = tmp_path / "m"
    mp.mkdir()
    data = os.urandom(3 << 20)
    want = hashlib.sha256(data).hexdigest()
    m = Background(d, users[0], mp)
    try:
        (mp / "a.bin").write_bytes(data)
        assert sha256sum(mp / "a.bin") == want
    finally:
        m.stop()
    shutil.rmtree(d / "cache", ignore_errors=True)
    m = Background(d, users[0], mp)
    try:
        assert sha256sum(mp / "a.bin") == want
    finally:
        m.stop()


def test_background_mount_bad_store_fails_on_terminal(tmp_path):
    """A mount that cannot open its store says why in one line and
    exits non-zero before it leaves the terminal."""
    need_fuse()
    from fsutil import SPEECHFS
    mp = tmp_path / "m"
    mp.mkdir()
    out = run(str(SPEECHFS), "--store", str(tmp_path / "nostore"),
              "--user", "00000000-0000-4000-8000-000000000000", str(mp))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot open store" in lines[0], out.stderr
    assert not os.path.ismount(mp)


def test_cp_in_and_out(mnt, tmp_path):
    src = tmp_path / "rec.wav"
    data = os.urandom(300 * 1024 + 17)
    src.write_bytes(data)
    run("cp", str(src), str(mnt.path("rec.wav"))).check_returncode()
    st = os.stat(mnt.path("rec.wav"))
    assert st.st_size == len(data)
    assert st.st_blocks == (len(data) + 511) // 512
    assert st.st_nlink == 1
    assert mnt.path("rec.wav").read_bytes() == data
    out = tmp_path / "back.wav"
    run("cp", str(mnt.path("rec.wav")), str(out)).check_returncode()
    assert out.read_bytes() == data
    assert xget(mnt.path("rec.wav"), "user.speechfs.sha256") == \
        sha256_file(src)
    j = json.loads(xget(mnt.path("rec.wav"), "user.speechfs.json"))
    assert j["size"] == len(data) and j["name"] == "rec"
    assert j["path"] == "/"
    # the inode is the file's and stays stable
    assert os.stat(mnt.path("rec.wav")).st_ino == st.st_ino


def test_cp_over_existing_keeps_id(mnt, tmp_path):
    p = mnt.path("memo.txt")
    p.write_bytes(b"first version\n")
    fid = xget(p, "user.speechfs.id")
    sha1 = xget(p, "user.speechfs.sha256")
    src = tmp_path / "new.txt"
    src.write_bytes(b"second, longer version\n")
    run("cp", str(src), str(p)).check_returncode()
    assert p.read_bytes() == b"second, longer version\n"
    assert xget(p, "user.speechfs.id") == fid
    assert xget(p, "user.speechfs.sha256") != sha1
    assert os.listdir(mnt.path(".trash")) == []


def test_ls_find_du(mnt):
    os.makedirs(mnt.path("a", "b"))
    mnt.path("a", "one.txt").write_bytes(b"1" * 1000)
    mnt.path("a", "b", "two.txt").write_bytes(b"2" * 5000)
    out = run("find", str(mnt.dir), "-path", "*/.*", "-prune", "-o",
              "-type", "f", "-print")
    files = sorted(os.path.relpath(x, mnt.dir)
                   for x in out.stdout.split())
    assert files == ["a/b/two.txt", "a/one.txt"]
    out = run("du", "-sb", "--exclude=.*", str(mnt.path("a")))
    assert int(out.stdout.split()[0]) >= 6000
    assert os.path.isdir(mnt.path("a", "b"))
    # 2 + its subdirectories (find and du use it)
    assert os.stat(mnt.path("a")).st_nlink == 3
    assert os.stat(mnt.path("a", "b")).st_nlink == 2
    out = run("ls", "-la", str(mnt.path("a")))
    assert out.returncode == 0 and "one.txt" in out.stdout


def test_mv_files_and_dirs(mnt):
    os.mkdir(mnt.path("x"))
    mnt.path("x", "f.txt").write_bytes(b"data")
    fid = xget(mnt.path("x", "f.txt"), "user.speechfs.id")
    os.rename(mnt.path("x", "f.txt"), mnt.path("x", "g.txt"))
    assert os.listdir(mnt.path("x")) == ["g.txt"]
    os.mkdir(mnt.path("y"))
    os.rename(mnt.path("x", "g.txt"), mnt.path("y", "g.txt"))
    j = json.loads(xget(mnt.path("y", "g.txt"), "user.speechfs.json"))
    assert j["id"] == fid and j["path"] == "/y/" and j["name"] == "g"
    os.rename(mnt.path("y"), mnt.path("z"))
    assert mnt.path("z", "g.txt").read_bytes() == b"data"
    assert not mnt.path("y").exists()
    j = json.loads(xget(mnt.path("z", "g.txt"), "user.speechfs.json"))
    assert j["path"] == "/z/"
    # a directory cannot move below itself
    os.mkdir(mnt.path("z", "sub"))
    with pytest.raises(OSError) as ei:
        os.rename(mnt.path("z"), mnt.path("z", "sub", "zz"))
    assert ei.value.errno == errno.EINVAL
    # into a missing directory
    with pytest.raises(FileNotFoundError):
        os.rename(mnt.path("z", "g.txt"), mnt.path("nope", "g.txt"))


def test_mv_over_existing_soft_deletes_target(mnt):
    mnt.path("a.txt").write_bytes(b"A")
    mnt.path("b.txt").write_bytes(b"B")
    aid = xget(mnt.path("a.txt"), "user.speechfs.id")
    bid = xget(mnt.path("b.txt"), "user.speechfs.id")
    os.rename(mnt.path("a.txt"), mnt.path("b.txt"))
    assert sorted(os.listdir(mnt.dir))[-1] == "b.txt"
    assert not mnt.path("a.txt").exists()
    assert xget(mnt.path("b.txt"), "user.speechfs.id") == aid
    assert mnt.path("b.txt").read_bytes() == b"A"
    trash = os.listdir(mnt.path(".trash"))
    assert trash == ["b.txt"]
    j = json.loads(xget(mnt.path(".trash", "b.txt"), "user.speechfs.json"))
    assert j["id"] == bid and j["isDeleted"] is True


def test_rename_flags(mnt):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mnt.path("p.txt").write_bytes(b"p")
    mnt.path("q.txt").write_bytes(b"q")
    AT_FDCWD = -100
    for flag, err in ((1, errno.EEXIST), (2, errno.EINVAL)):
        r = libc.renameat2(AT_FDCWD, str(mnt.path("p.txt")).encode(),
                           AT_FDCWD, str(mnt.path("q.txt")).encode(), flag)
        assert r == -1 and ctypes.get_errno() == err
    assert mnt.path("q.txt").read_bytes() == b"q"


def test_rm_goes_to_trash_and_purge(mnt):
    mnt.path("gone.txt").write_bytes(b"bye")
    fid = xget(mnt.path("gone.txt"), "user.speechfs.id")
    os.unlink(mnt.path("gone.txt"))
    assert not mnt.path("gone.txt").exists()
    assert os.listdir(mnt.path(".trash")) == ["gone.txt"]
    j = json.loads(xget(mnt.path(".trash", "gone.txt"), "user.speechfs.json"))
    assert j["id"] == fid and j["isDeleted"] and not j["isPurged"]
    # a deleted file's content is not readable
    with pytest.raises(OSError) as ei:
        mnt.path(".trash", "gone.txt").read_bytes()
    assert ei.value.errno == errno.ENODATA
    # mv out of the trash restores it
    os.rename(mnt.path(".trash", "gone.txt"), mnt.path("back.txt"))
    assert mnt.path("back.txt").read_bytes() == b"bye"
    assert xget(mnt.path("back.txt"), "user.speechfs.id") == fid
    os.unlink(mnt.path("back.txt"))
    # rm in the trash purges
    os.unlink(mnt.path(".trash", "back.txt"))
    assert os.listdir(mnt.path(".trash")) == []
    with pytest.raises(FileNotFoundError):
        os.unlink(mnt.path("back.txt"))


def test_mkdir_rmdir(mnt):
    os.mkdir(mnt.path("d"))
    assert os.path.isdir(mnt.path("d"))
    with pytest.raises(FileExistsError):
        os.mkdir(mnt.path("d"))
    with pytest.raises(FileNotFoundError):
        os.mkdir(mnt.path("missing", "d"))
    os.mkdir(mnt.path("d", "e"))
    mnt.path("d", "e", "f.txt").write_bytes(b"x")
    with pytest.raises(OSError) as ei:
        os.rmdir(mnt.path("d", "e"))
    assert ei.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotADirectoryError):
        os.rmdir(mnt.path("d", "e", "f.txt"))
    with pytest.raises(IsADirectoryError):
        os.unlink(mnt.path("d", "e"))
    os.unlink(mnt.path("d", "e", "f.txt"))
    os.rmdir(mnt.path("d", "e"))
    os.rmdir(mnt.path("d"))
    assert "d" not in os.listdir(mnt.dir)
    assert not mnt.path("d").exists()
    with pytest.raises(FileNotFoundError):
        os.rmdir(mnt.path("d"))


def test_links_refused_chmod_accepted(mnt):
    mnt.path("f.txt").write_bytes(b"x")
    with pytest.raises(PermissionError):
        os.link(mnt.path("f.txt"), mnt.path("g.txt"))
    with pytest.raises(PermissionError):
        os.symlink("f.txt", mnt.path("s"))
    os.chmod(mnt.path("f.txt"), 0o600)
    assert os.stat(mnt.path("f.txt")).st_mode & 0o777 == 0o644


def test_utimens_and_cp_a(mnt, tmp_path):
    src = tmp_path / "old.txt"
    src.write_bytes(b"old content")
    os.utime(src, (1000000000, 1000000000))
    run("cp", "-a", str(src), str(mnt.path("old.txt"))).check_returncode()
    assert int(os.stat(mnt.path("old.txt")).st_mtime) == 1000000000
    os.utime(mnt.path("old.txt"), (1500000000, 1500000000))
    assert int(os.stat(mnt.path("old.txt")).st_mtime) == 1500000000
    os.mkdir(mnt.path("dd"))
    os.utime(mnt.path("dd"), (1200000000, 1200000000))
    assert int(os.stat(mnt.path("dd")).st_mtime) == 1200000000


def test_statfs(mnt):
    st = os.statvfs(mnt.dir)
    assert st.f_blocks > 0 and st.f_bavail > 0
    assert st.f_namemax == 255


def test_read_only_mount(store):
    d, _, users = store
    m = Mount(d, users[0])
    m.path("r.txt").write_bytes(b"keep")
    m.stop()
    m = Mount(d, users[0], "-o", "ro")
    try:
        assert m.path("r.txt").read_bytes() == b"keep"
        with pytest.raises(OSError) as ei:
            m.path("r.txt").write_bytes(b"no")
        assert ei.value.errno == errno.EROFS
        with pytest.raises(OSError):
            os.mkdir(m.path("nd"))
    finally:
        m.stop()
