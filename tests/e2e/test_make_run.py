"""`make run` as a newcomer meets it, in a fresh copy of the tree and on a
real terminal (a pty): the demo comes up, a file uploaded through the API
shows in the mount and one copied into the mount shows in the API; a
second `make run` on the same store says what runs instead of touching
it; Ctrl-C stops everything and make exits 0; the next start with
another port rewrites var/demo.env; a daemon that dies takes the demo
down with status 1; a copy of the mount in another mount namespace does
not keep the demo from stopping."""
import os
import pathlib
import pty
import re
import select
import signal
import subprocess
import time

import pytest
import requests

from pkgtest import API, BUILD, ROOT, clean_env, eventually, free_port, \
    mounts, run


def copy_tree(dst):
    """The working tree (not builds, var/, mnt/ or .git), as a fresh
    checkout would have it, plus the current build so make finds it up to
    date (tar keeps the times)."""
    excl = ["--exclude=./build", "--exclude=./build-*", "--exclude=./var",
            "--exclude=./mnt", "--exclude=./.git", "--exclude=./debian"]
    tar = subprocess.Popen(["tar", "-C", str(ROOT), "-cf", "-", *excl, "."],
                           stdout=subprocess.PIPE)
    run(["tar", "-C", str(dst), "-xf", "-"], stdin=tar.stdout)
    assert tar.wait() == 0
    if BUILD.is_dir():
        tar = subprocess.Popen(["tar", "-C", str(BUILD), "-cf", "-",
                                "--exclude=./deb", "--exclude=./*.deb",
                                "."], stdout=subprocess.PIPE)
        (dst / "build").mkdir()
        run(["tar", "-C", str(dst / "build"), "-xf", "-"], stdin=tar.stdout)
        assert tar.wait() == 0


class Terminal:
    """A command on a pseudo-terminal of its own, as in a terminal
    window: Ctrl-C is the byte 0x03 the line discipline turns into SIGINT
    for the terminal's foreground process group."""

    def __init__(self, argv, cwd, env):
        self.out = b""
        self.pid, self.fd = pty.fork()
        if self.pid == 0:       # the child: a session led by the command
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.status = None

    def read(self, seconds=0.0):
        deadline = time.time() + seconds
        while self.fd is not None:
            r, _, _ = select.select([self.fd], [], [],
                                    max(0.0, deadline - time.time()))
            if not r:
                break
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:     # the other side closed: all read
                break
            if not chunk:
                break
            self.out += chunk
        return self.out.decode(errors="replace")

    def wait_for(self, text, seconds):
        deadline = time.time() + seconds
        while text not in self.read(0.2):
            if self.poll() is not None or time.time() > deadline:
                return False
        return True

    def poll(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
        return self.status

    def ctrl_c(self):
        os.write(self.fd, b"\x03")

    def wait(self, seconds):
        deadline = time.time() + seconds
        while self.poll() is None:
            self.read(0.2)
            if time.time() > deadline:
                return None
        self.read(0.2)
        return self.status

    def kill(self):
        if self.poll() is None:
            subprocess.run(["pkill", "-KILL", "-s", str(self.pid)])
            os.killpg(self.pid, signal.SIGKILL)
            self.wait(10)
        if self.fd is not None:
            self.read(0.2)
            os.close(self.fd)
            self.fd = None


def demo_env(src):
    return dict(ln.split("=", 1) for ln in
                (src / "var/demo.env").read_text().split())


def session_alive(sid):
    return subprocess.run(["pgrep", "-s", str(sid)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "speechfs"
    src.mkdir()
    copy_tree(src)
    yield src
    if str(src / "mnt") in mounts():
        subprocess.run(["fusermount3", "-uz", str(src / "mnt")])


def test_make_run_on_a_terminal(tree, tmp_path):
    port = free_port()
    term = Terminal(["make", "run"], tree,
                    clean_env(SPEECHFS_PORT=str(port), TERM="dumb"))
    mnt = tree / "mnt"
    try:
        assert term.wait_for("Ctrl-C stops both.", 900), term.read()
        assert "A demo store was made" in term.read()
        assert str(mnt) in mounts()
        env = demo_env(tree)
        assert env["SPEECHFS_URL"] == f"http://127.0.0.1:{port}{API}"
        h = {"X-API-Key": env["SPEECHFS_KEY"]}
        # through the API, seen in the mount
        data = tmp_path / "from-api.txt"
        data.write_bytes(b"uploaded with curl")
        run(["curl", "-sSf", "-H", f"X-API-Key: {env['SPEECHFS_KEY']}",
             "-F", f"file=@{data}", "-F", "name=from-api",
             env["SPEECHFS_URL"]])
        entry = mnt / "from-api.txt"
        assert eventually(entry.exists), os.listdir(mnt)
        assert entry.read_bytes() == b"uploaded with curl"
        # through the mount, seen by the API
        run(["cp", str(data), str(mnt / "from-mount.txt")])

        def listed():
            r = requests.get(env["SPEECHFS_URL"], headers=h, timeout=10)
            assert r.status_code == 200, r.text
            return [f for f in r.json()["files"]
                    if f["name"].startswith("from-mount")]
        assert len(eventually(listed)) == 1

        # a second make run on the same store: it says what runs, and
        # leaves the running demo and its demo.env alone
        other = free_port()
        p = run(["make", "run"], cwd=tree, check=False, timeout=600,
                env=clean_env(SPEECHFS_PORT=str(other),
                              SPEECHFS_MNT=str(tmp_path / "mnt2")))
        assert p.returncode != 0
        pid = re.search(r"already running on this store \(pid (\d+)\): "
                        rf"API on 127\.0\.0\.1:{port}, mount at {mnt}",
                        p.stderr)
        assert pid, p.stdout + p.stderr
        assert demo_env(tree)["SPEECHFS_URL"].startswith(
            f"http://127.0.0.1:{port}/")
        assert str(mnt) in mounts() and entry.exists()

        # Ctrl-C: the demo stops, and make with it, with status 0
        term.ctrl_c()
        rc = term.wait(60)
    finally:
        term.kill()
    out = term.read()
    assert rc == 0, out
    assert "stopped." in out and "make: ***" not in out, out
    assert str(mnt) not in mounts()
    assert not session_alive(term.pid), "a process of make run is left"
    assert not (tree / "var/demo.run").exists()

    # the next start, on another port: demo.env follows
    port = free_port()
    proc, log = start_script(tree, tmp_path, port)
    try:
        assert proc.poll() is None, read(log)
        assert "A demo store was made" not in read(log)
        env2 = demo_env(tree)
        assert env2["SPEECHFS_URL"] == f"http://127.0.0.1:{port}{API}"
        assert env2["SPEECHFS_KEY"] == env["SPEECHFS_KEY"]
        assert (mnt / "from-api.txt").read_bytes() == b"uploaded with curl"
        r = requests.get(env2["SPEECHFS_URL"],
                         headers={"X-API-Key": env2["SPEECHFS_KEY"]},
                         timeout=10)
        assert r.status_code == 200
    finally:
        rc = interrupt(proc, mnt, log)
    assert rc == 0, read(log)
    assert "stopped." in read(log)
    assert str(mnt) not in mounts()


@pytest.mark.parametrize("sig, want_rc, says", [
    (signal.SIGKILL, 1, "speechfsd exited (status 137)"),
    # Ctrl-C reached the daemon before the script: a stop, not a failure
    (signal.SIGINT, 0, "speechfsd stopped")], ids=["dies", "stopped"])
def test_a_daemon_that_ends_stops_the_demo(tree, tmp_path, sig, want_rc,
                                           says):
    proc, log = start_script(tree, tmp_path, free_port())
    try:
        pids = run(["pgrep", "-g", str(proc.pid), "-x", "speechfsd"])
        (pid,) = pids.stdout.split()
        # through a pidfd of the process that is still in the script's
        # group: not whichever process has its pid once it ended
        fd = os.pidfd_open(int(pid))
        try:
            assert os.getpgid(int(pid)) == proc.pid
            signal.pidfd_send_signal(fd, sig)
        finally:
            os.close(fd)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert rc == want_rc, read(log)
    assert says in read(log)
    assert "stopped." in read(log)
    assert str(tree / "mnt") not in mounts()
    assert not (tree / "var/demo.run").exists()


def test_stops_while_another_namespace_holds_the_mount(tree, tmp_path):
    """A mount namespace made while the demo runs (a container, unshare)
    holds a copy of its mount: an unmount from outside would not end the
    mount process, the demo must stop all the same."""
    proc, log = start_script(tree, tmp_path, free_port())
    mnt = tree / "mnt"
    other = None
    try:
        assert proc.poll() is None, read(log)
        other = subprocess.Popen(["unshare", "--mount", "--propagation",
                                  "private", "sleep", "300"])
        ns = pathlib.Path(f"/proc/{other.pid}/ns/mnt")
        info = pathlib.Path(f"/proc/{other.pid}/mountinfo")
        assert eventually(lambda: other.poll() is None and
                          os.readlink(ns) != os.readlink("/proc/self/ns/mnt")
                          and f" {mnt} " in info.read_text()), "no copy"
        rc = interrupt(proc, mnt, log)
    finally:
        if other:
            other.kill()
            other.wait()
    assert rc == 0, read(log)
    assert "stopped." in read(log)
    assert str(mnt) not in mounts()
    assert not (tree / "var/demo.run").exists()


def start_script(tree, tmp_path, port):
    """packaging/run-demo.sh as make runs it, without a terminal, in a
    process group of its own; (process, log) once it is up or ended."""
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(["./packaging/run-demo.sh"], cwd=tree,
                            stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env=clean_env(SPEECHFS_PORT=str(port),
                                          B="build"))
    assert eventually(lambda: "Ctrl-C stops both." in read(log) or
                      proc.poll() is not None, 60), read(log)
    return proc, log


def interrupt(proc, mnt, log):
    """SIGINT to the script's process group (started without a
    terminal); its exit status. If it does not stop, kill it, unmount
    what it left and fail."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
        pytest.fail(f"run-demo.sh did not stop on SIGINT: {read(log)}")


def read(f):
    """What the script wrote to f so far, read through a file description
    of our own: f's is the script's too (fsutil.read_log)."""
    with open(f.name, errors="replace") as own:
        return own.read()
