"""Unmounting while a file is open for writing: fusermount3 -u refuses
(EBUSY) and the writer finishes normally; a lazy unmount lets it finish
and commit; SIGTERM ends the mount at once and the open file's content
is left as it was. Whatever happens, a file is never half-written, and
the mount process exits 0."""
import hashlib
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fsutil import Mount, line_of, store, xget  # noqa: F401

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]
# and on a remote mount (speechfs --url) of the SQLite store
MOUNT_KINDS = ["local", "remote"]

P = "user.speechfs."
HERE = pathlib.Path(__file__).resolve().parent
OLD = b"old content\n" * 1000


def content_after_remount(store_dir, user, name):
    m = Mount(store_dir, user)
    try:
        p = m.path(name)
        data = p.read_bytes()
        assert xget(p, P + "sha256") == hashlib.sha256(data).hexdigest()
        return data
    finally:
        m.stop()


def test_fusermount_while_writing_refused_then_committed(store):
    d, _, users = store
    m = Mount(d, users[0])
    try:
        p = m.path("f.bin")
        p.write_bytes(OLD)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        os.write(fd, b"new, first half\n")
        u = subprocess.run(["fusermount3", "-u", str(m.dir)],
                           capture_output=True, text=True)
        assert u.returncode != 0 and "busy" in u.stderr
        assert os.path.ismount(m.dir)
        os.write(fd, b"new, second half\n")
        os.close(fd)
        assert p.read_bytes() == b"new, first half\nnew, second half\n"
    finally:
        assert m.stop() == 0
    assert content_after_remount(d, users[0], "f.bin") == \
        b"new, first half\nnew, second half\n"


@pytest.fixture(scope="module")
def abortread(tmp_path_factory):
    """tests/e2e/abortread.c built: with it the mount's connection ends
    as an aborted one (ECONNABORTED), between its wait and its read."""
    cc = shutil.which("cc")
    assert cc, "no C compiler: run packaging/install-deps.sh"
    so = tmp_path_factory.mktemp("abortread") / "abortread.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(so),
                    str(HERE / "abortread.c"), "-ldl"], check=True,
                   timeout=120)
    return so


@pytest.mark.parametrize("end", ["unmounted", "aborted"])
def test_lazy_unmount_while_writing_commits_whole(store, abortread,
                                                  monkeypatch, end):
    """Three rounds: a lazy unmount with a file open for writing, more
    writes, close; the mount then ends by itself, exit 0 each time (the
    end of the connection is no error, whichever way the kernel says
    it: "aborted" ends it with ECONNABORTED, in the moment between the
    loop's wait and its read)."""
    d, _, users = store
    for r in range(3):
        if end == "aborted":
            # ASan (make asan) wants to be first; the shim wraps read()
            monkeypatch.setenv("LD_PRELOAD", str(abortread))
            monkeypatch.setenv("ASAN_OPTIONS", os.environ.get(
                "ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
        m = Mount(d, users[0])
        monkeypatch.delenv("LD_PRELOAD", raising=False)
        p = m.path("f.bin")
        p.write_bytes(OLD)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"A" * 100000)
            subprocess.run(["fusermount3", "-uz", str(m.dir)], check=True)
            assert not os.path.ismount(m.dir)
            # the open file still works; the mount process serves it
            assert m.proc.poll() is None
            os.write(fd, bytes([66 + r]) * 100000)
        finally:
            os.close(fd)
        try:
            rc = m.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            rc = "still running 30 s after the last close"
        out = m.output()
        m.stop(check=False)
        assert rc == 0, "round %d: %r: %s" % (r, rc, out)
        assert content_after_remount(d, users[0], "f.bin") == \
            b"A" * 100000 + bytes([66 + r]) * 100000


def spare(path):
    """An emptied stage file kept for the next stage (or gone now)."""
    try:
        return path.name.endswith(".part") and path.stat().st_size == 0
    except FileNotFoundError:
        return True


def stale_stages(d):
    """What is in the store's staging/ but the empty directory of a
    process still running (PID-XXXX: a remote mount's server keeps one
    while it runs; what is in it counts, but for its spares: empty
    `.part` files that stages of small contents leave for the next
    stage, core/stage.c). The resumable upload sessions (.uploads/)
    are no process's stages: they outlive a restart."""
    out = []
    for n in os.listdir(d / "staging"):
        if n == ".uploads":
            continue
        pid = n.split("-")[0]
        if pid.isdigit() and os.path.exists("/proc/%s" % pid):
            kept = [x for x in os.listdir(d / "staging" / n) if x != "lock"]
            spares = [x for x in kept if spare(d / "staging" / n / x)]
            out += [n + "/" + x for x in kept if x not in spares]
            # a process keeps at most STAGE_SPARES (16) of them
            if len(spares) > 16:
                out += [n + "/" + x for x in spares]
        else:
            out.append(n)
    return out


@pytest.mark.parametrize("new_file", [False, True])
def test_sigterm_while_writing_leaves_it_as_it_was(store, new_file):
    d, _, users = store
    m = Mount(d, users[0])
    p = m.path("f.bin")
    if new_file:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    else:
        p.write_bytes(OLD)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, b"half" * 10000)
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=30) == 0
        assert not os.path.ismount(m.dir)
        with pytest.raises(OSError):
            os.write(fd, b"more")
    finally:
        with pytest.raises(OSError):
            os.close(fd)
    remote = m.kind == "remote"
    m.stop()
    if new_file and remote:
        # a remote mount makes a new file on the server at its first
        # close: one never closed was never there
        m2 = Mount(d, users[0])
        try:
            assert not m2.path("f.bin").exists()
        finally:
            m2.stop()
    else:
        # a new file stays as creat() made it: empty
        assert content_after_remount(d, users[0], "f.bin") == \
            (b"" if new_file else OLD)
    assert stale_stages(d) == []


# Names are opened in the mount's root by a descriptor of it: once the
# mount is gone that fails, where a path would name the bare directory
# below it (the writer then wrote on there for ever). It says "ready"
# once it holds that descriptor: opened after the mount ended (a writer
# slow to start on a loaded machine), it was the bare directory's too.
WRITER = r'''
import os, sys
root = os.open(os.path.dirname(sys.argv[1]), os.O_RDONLY | os.O_DIRECTORY)
print("ready", flush=True)
name = os.path.basename(sys.argv[1])
i = 0
while True:
    i += 1
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644,
                     dir_fd=root)
        with open(fd, "wb") as f:
            for _ in range(16):
                f.write(bytes([65 + i % 26]) * 65536)
    except OSError:
        break
'''


def test_sigterm_during_commits_never_half_written(store):
    """SIGTERM at some moment while a writer commits version after
    version: the file is one whole version afterwards. The moment is
    taken from the writer's start in the mount (its root open): a SIGTERM
    0.3 s after its process began came, on a loaded machine, before the
    writer had opened anything, and it wrote on in the bare mountpoint
    until the test gave up waiting for it (1 run in 30, load 6-8)."""
    d, _, users = store
    versions = {OLD} | {bytes([65 + i % 26]) * (16 * 65536)
                        for i in range(26)}
    for delay in (0.1, 0.35, 0.6):
        m = Mount(d, users[0])
        m.path("f.bin").write_bytes(OLD)
        w = subprocess.Popen([sys.executable, "-c", WRITER,
                              str(m.path("f.bin"))],
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        try:
            assert line_of(w, 60) == b"ready\n"
            time.sleep(delay)   # the moment of the SIGTERM, simulated
            m.proc.send_signal(signal.SIGTERM)
            assert m.proc.wait(timeout=30) == 0
            assert w.wait(timeout=30) == 0
        finally:
            w.kill()
            w.wait()
            w.stdout.close()
            m.stop()
        assert content_after_remount(d, users[0], "f.bin") in versions
