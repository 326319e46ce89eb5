"""The mount stops on SIGINT and SIGTERM whenever they come, also in the
moment between the loop's look at its session and its read of the
device: a signal handled there used to leave that read waiting for the
next request, so Ctrl-C did nothing until something touched the mount.
tests/e2e/slowread.c (LD_PRELOAD) makes that moment 300 ms long. The
loop is the same on a remote mount (speechfs --url), which runs it too."""
import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

import fsutil
from fsutil import SPEECHFS, need_fuse, store  # noqa: F401

# every test on SQLite and on PostgreSQL too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]
# and on a remote mount of the SQLite store
MOUNT_KINDS = ["local", "remote"]

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def slowread(tmp_path_factory):
    cc = shutil.which("cc")
    assert cc, "no C compiler: run packaging/install-deps.sh"
    so = tmp_path_factory.mktemp("slowread") / "slowread.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(so),
                    str(HERE / "slowread.c"), "-ldl"], check=True,
                   timeout=120)
    return so


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_just_before_the_read(store, slowread, tmp_path, sig):
    need_fuse()
    d, _, users = store
    mp = tmp_path / "m"
    mp.mkdir()
    # ASan (make asan) wants to be first; the shim only wraps read()
    env = {**os.environ, "LD_PRELOAD": str(slowread),
           "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
           ":verify_asan_link_order=0"}
    log = open(tmp_path / "mount.log", "w+")
    if fsutil.KIND["now"] == "remote":
        srv = fsutil.server_of(d)
        key = tmp_path / "key"
        key.write_text(srv.key(users[0]) + "\n")
        key.chmod(0o600)
        (tmp_path / "cache").mkdir()
        how = ["--url", srv.base, "--key-file", str(key), "-o",
               "cache_dir=%s" % (tmp_path / "cache")]
    else:
        how = ["--store", str(d), "--user", users[0]]
    proc = subprocess.Popen([str(SPEECHFS), *how, str(mp), "-f"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not os.path.ismount(mp):
            assert proc.poll() is None, log.read()
            assert time.monotonic() < deadline, "no mount in 60 s"
            time.sleep(0.05)
        # a request answered: the loop is back in the shim's wait, just
        # before its read, when the signal comes
        os.stat(mp / ".trash")
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = "still running 10 s later"
        log.seek(0)
        assert rc == 0, f"{sig!r}: {rc}: {log.read()}"
        assert not os.path.ismount(mp)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # a dead mount (its process killed) is no ismount(): ask the table
        with open("/proc/self/mountinfo") as f:
            if f" {mp} " in f.read():
                subprocess.run(["fusermount3", "-uz", str(mp)])
