"""The mount killed (kill -9) keeps what it acknowledged: a file whose
close() or fsync() returned is in the store after a remount, with its
content, its row and its blob, and fsck finds the store clean. Without
-o commit every close is durable (its commit is in the WAL and the WAL
synced before close() returns); with -o commit=MS what fsync() returned
for is kept, and the closes of the open window are kept whole or not at
all (speechfs(1)); a lost window may leave a blob file without its row,
which fsck reports and --repair removes. A remote mount (speechfs --url)
killed keeps the same: what its close() or fsync() returned for is on
the server; -o commit's window is the local store's (a remote mount's
closes are each acknowledged by the server), so those tests run locally
only."""
import hashlib
import json
import os
import subprocess
import time

import pytest

import fsutil
from fsutil import ADMIN, Mount, mounts, store, xget  # noqa: F401

P = "user.speechfs."
# and on a remote mount (speechfs --url) of the store
MOUNT_KINDS = ["local", "remote"]


def kill9(m):
    """End the mount's process at once, as a crash would, and clear its
    dead mountpoint."""
    m.proc.kill()
    m.proc.wait()
    if fsutil.is_mounted(m.dir):
        subprocess.run(["fusermount3", "-uz", str(m.dir)], timeout=30)
    assert m.stop(check=False) == -9


def write(path, data, fsync=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def bodies(n, seed):
    """n distinct contents of 100 B - 4 KiB, and one past the inline
    limit (a blob file of its own)."""
    out = {"%s%03d.bin" % (seed, i): os.urandom(100 + (i * 397) % 3997)
           for i in range(n)}
    out[seed + "-big.bin"] = os.urandom(300 * 1024)
    return out


def fsck(store_dir, *opts):
    p = subprocess.run([str(ADMIN), "fsck", "--store", str(store_dir),
                        "--json", *opts], capture_output=True, text=True,
                       timeout=120)
    return p, json.loads(p.stdout.strip().splitlines()[-1])


def fsck_clean(store_dir):
    p, r = fsck(store_dir)
    assert p.returncode == 0, p.stderr
    assert r["orphanFiles"] == 0 and r["missingFiles"] == 0, r


def check_kept(m, files):
    for name, data in files.items():
        p = m.path(name)
        assert p.read_bytes() == data, name
        assert xget(p, P + "sha256") == hashlib.sha256(data).hexdigest()


def listed(m):
    return {n for n in os.listdir(m.dir) if not n.startswith(".")}


def test_closed_files_survive_kill9(store):
    """Durable closes: every file closed before the kill is there."""
    d, _, users = store
    files = bodies(40, "s")
    m = Mount(d, users[0])
    try:
        write(m.path("over.txt"), b"first version\n")
        for name, data in files.items():
            write(m.path(name), data)
        # an overwrite of a file that existed, closed: its new content
        write(m.path("over.txt"), b"second version\n")
        files["over.txt"] = b"second version\n"
        m.path("dir").mkdir()
        write(m.path("dir", "in.txt"), b"in a directory\n")
    finally:
        kill9(m)
    m2 = Mount(d, users[0])
    try:
        assert listed(m2) == set(files) | {"dir"}
        check_kept(m2, files)
        assert m2.path("dir", "in.txt").read_bytes() == b"in a directory\n"
    finally:
        assert m2.stop() == 0
    fsck_clean(d)


@pytest.mark.mount_kinds("local")
def test_commit_window_kill9_keeps_fsynced(store):
    """-o commit=MS (a window longer than the test): fsync() returned for
    a file, so it and the closes before it are kept; the closes after it,
    inside the open window, are kept whole or not at all: never a file
    with part of its content, never an empty entry."""
    d, _, users = store
    before = bodies(20, "a")
    after = bodies(20, "z")
    m = Mount(d, users[0], "-o", "commit=60000")
    try:
        for name, data in before.items():
            write(m.path(name), data)
        write(m.path("synced.bin"), b"fsync returned\n", fsync=True)
        before["synced.bin"] = b"fsync returned\n"
        for name, data in after.items():
            write(m.path(name), data)
    finally:
        kill9(m)
    m2 = Mount(d, users[0])
    try:
        names = listed(m2)
        assert set(before) <= names
        check_kept(m2, before)
        kept = {n: after[n] for n in names - set(before)}
        assert set(kept) <= set(after), names
        # batches commit in order and the WAL keeps a prefix of its
        # commits: the closes kept are the first ones made
        assert set(kept) == set(list(after)[:len(kept)]), sorted(kept)
        check_kept(m2, kept)
    finally:
        assert m2.stop() == 0
    # a lost window may leave the blob file of a content past the inline
    # limit without its row: nothing else; fsck --repair removes it
    p, r = fsck(d)
    if p.returncode:
        lost = {hashlib.sha256(after[n]).hexdigest() for n in after
                if n not in kept}
        for line in p.stderr.strip().splitlines():
            assert "orphan blob" in line and line.split("/")[-1].split(
            )[0] in lost, p.stderr
        p, r = fsck(d, "--repair")
        assert p.returncode == 0, p.stderr
    fsck_clean(d)


def test_fsync_then_kill9_keeps_the_new_version(store):
    """An existing file rewritten and fsync'd (still open) is kept with
    its new content when the mount dies before close()."""
    fsync_then_kill9(store, ())


@pytest.mark.mount_kinds("local")
def test_fsync_then_kill9_keeps_the_new_version_in_a_window(store):
    """The same with -o commit=MS: fsync() commits the window."""
    fsync_then_kill9(store, ("-o", "commit=60000"))


def fsync_then_kill9(store, opts):
    d, _, users = store
    m = Mount(d, users[0], *opts)
    try:
        write(m.path("f.bin"), b"old\n" * 100)
        fd = os.open(m.path("f.bin"), os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"new\n" * 50)
            os.fsync(fd)
            kill9(m)
        finally:
            try:
                os.close(fd)
            except OSError:
                pass       # the mount is gone: close() may say so
    finally:
        if m.proc.poll() is None:
            kill9(m)
    m2 = Mount(d, users[0])
    try:
        check_kept(m2, {"f.bin": b"new\n" * 50})
    finally:
        assert m2.stop() == 0
    fsck_clean(d)


def walk(m):
    """{relative path: content} of the regular files under m, and the
    directories; OSError when an entry listed vanished before it was
    read (or listed)."""
    out = {}

    def fail(e):
        raise e
    for root, dirs, files in os.walk(m.dir, onerror=fail):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        rel = os.path.relpath(root, m.dir)
        for x in dirs:
            out[os.path.normpath(os.path.join(rel, x)) + "/"] = None
        for x in files:
            with open(os.path.join(root, x), "rb") as f:
                out[os.path.normpath(os.path.join(rel, x))] = f.read()
    return out


def tree(m, timeout=30):
    """walk(m), again while entries vanish under the walk (a batch of
    the other mount committed a rename or a delete between a listing and
    a read); the last error after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        try:
            return walk(m)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.mount_kinds("local")
def test_commit_mode_changes_reach_other_mounts(store, mounts):
    """-o commit=MS: creates, overwrites, renames, deletes, directories
    and tags made in a batching mount reach a mount without the option
    (another process) once their batch is committed, exactly; that
    mount's own writes go through while batches are open, and are seen
    by the batching mount."""
    d, _, users = store
    a = mounts(users[0], "-o", "commit=200")
    b = mounts(users[0])
    for i in range(30):
        write(a.path("f%02d.txt" % i), b"file %d\n" % i)
    a.path("sub").mkdir()
    os.rename(a.path("f00.txt"), a.path("sub", "moved.txt"))
    os.unlink(a.path("f01.txt"))
    write(a.path("f02.txt"), b"rewritten\n")
    os.setxattr(a.path("f03.txt"), P + "tags", b"bulk")
    write(b.path("from-b.txt"), b"written by b\n")
    want = tree(a)
    assert "from-b.txt" not in want or want["from-b.txt"] == \
        b"written by b\n"
    assert fsutil.eventually(lambda: tree(b) == tree(a) and
                             "from-b.txt" in tree(a)), (tree(a), tree(b))
    got = tree(b)
    assert got["sub/moved.txt"] == b"file 0\n"
    assert "f01.txt" not in got and got["f02.txt"] == b"rewritten\n"
    assert fsutil.eventually(
        lambda: xget(b.path("f03.txt"), P + "tags") == "bulk")
