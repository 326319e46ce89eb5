"""What the package tests share: running commands and dpkg, the .deb
built once per module (`make deb`, the README's command), the package
installed with the README's command and purged (store included) at
teardown under a machine-wide lock, and small helpers. Import the
fixtures `deb` and `installed` into a test module to use them."""
import fcntl
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests

import readme

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
VERSION = (ROOT / "VERSION").read_text().strip()
API = "/api/v1/speech-services/files"
DEB = BUILD / f"speechfs_{VERSION}_amd64.deb"


def clean_env(**extra):
    """The environment without the calling make's jobserver and flags."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(extra)
    return env


def run(cmd, timeout=120, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       **kw)
    if check:
        assert p.returncode == 0, \
            f"{cmd} exited {p.returncode}:\n{p.stdout[-3000:]}\n" \
            f"{p.stderr[-3000:]}"
    return p


def dpkg(*args, check=True):
    """dpkg, waiting up to two minutes for another dpkg to finish."""
    deadline = time.time() + 120
    while True:
        p = run(["dpkg", *args], check=False, timeout=300,
                env=clean_env(DEBIAN_FRONTEND="noninteractive"))
        if "lock" not in p.stderr or time.time() > deadline:
            break
        time.sleep(2)
    if check:
        assert p.returncode == 0, f"dpkg {args}: {p.stdout}\n{p.stderr}"
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listeners(port):
    """Who listens on TCP port `port`: "pid N: command line" of each
    process holding a listening socket on it (from /proc, as ss -ltnp
    would tell)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = pathlib.Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes
                       for fd in fds):
                continue
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue    # gone meanwhile, or a descriptor closed
        cmd = cmd.replace(b"\0", b" ").decode(errors="replace")
        found.append(f"pid {pid}: {cmd.strip()}")
    return found


def daemon_report(proc, what):
    """What a failure of a daemon needs: what went wrong, its exit status,
    who listened on its port (while it was up, else now) and everything it
    wrote to stderr (read once: a second report shows the same)."""
    port = getattr(proc, "port", None)
    seen = getattr(proc, "listeners", None)
    if seen is None and port:
        seen = f"{listeners(port)} (after it ended)"
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if not hasattr(proc, "err_text"):
        proc.err_text = proc.stderr.read()
    proc.reported = True
    return (f"{what}\ndaemon pid {proc.pid}: {' '.join(proc.args)}\n"
            f"exit status {proc.returncode}\n"
            f"listening on port {port}: {seen}\n"
            f"its stderr:\n{proc.err_text}")


def wait_healthy(base, proc, seconds=20):
    """Waits for /healthz to answer 200, then checks that the process
    listening on the port is `proc` (not another daemon that took it)."""
    proc.port = int(base.rsplit(":", 1)[1])
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(daemon_report(proc, "the daemon exited at start"))
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    else:
        pytest.fail(daemon_report(proc, f"{base}/healthz did not answer "
                                  f"in {seconds} s"))
    proc.listeners = listeners(proc.port)
    if [ln.split(":")[0] for ln in proc.listeners] != [f"pid {proc.pid}"]:
        pytest.fail(daemon_report(proc, "another process answered"))


def stop(proc):
    """SIGTERM; the daemon must exit 0 within 20 s. A daemon whose failure
    was already reported is only made sure to be gone."""
    if getattr(proc, "reported", False):
        return
    if proc.poll() is not None:
        pytest.fail(daemon_report(proc, "the daemon ended before SIGTERM"))
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(daemon_report(proc, "the daemon did not stop on "
                                  "SIGTERM"))
    if proc.returncode != 0:
        pytest.fail(daemon_report(proc, "the daemon failed at SIGTERM"))


def readme_pkg_blocks():
    """The README's package blocks: installing, then the service user."""
    install, service = [b for b in readme.blocks() if b.kind == "pkg"]
    return readme.commands(install.text), readme.commands(service.text)


@pytest.fixture(scope="module")
def deb():
    """`make deb` once for the module (the README's first package
    command); the path of the .deb."""
    assert readme_pkg_blocks()[0][0] == "make deb"
    if DEB.exists():
        DEB.unlink()
    run(["make", "-C", str(ROOT), f"B={BUILD}", "deb"], timeout=600,
        env=clean_env())
    assert DEB.is_file()
    return DEB


@pytest.fixture
def installed(deb, tmp_path):
    """The package installed with the README's command (apt installs the
    local .deb and any dependency missing), purged at teardown whatever
    happened. The package is machine-wide: a lock file keeps two test runs
    on one machine (two checkouts) from installing it at once."""
    lock = open("/run/lock/speechfs-test-pkg.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    purge_all()
    sh = readme.Session(ROOT, clean_env(DEBIAN_FRONTEND="noninteractive"),
                        subst=[("./build/", f"{BUILD}/"),
                               ("apt install", "apt install -y -q")])
    try:
        for cmd in readme_pkg_blocks()[0][1:]:
            sh.run(cmd, retry_for=0, timeout=600)
        sh.close()
        st = run(["dpkg-query", "-W", "-f=${Status}", "speechfs"])
        assert st.stdout == "install ok installed", st.stdout
        yield deb
    finally:
        sh.close()
        purge_all()
        lock.close()


def purge_all():
    """dpkg --purge (the store too), then what an earlier installation may
    have left on the machine: the store in /var/lib/speechfs (kept by a
    run stopped before its purge, or by a purge that kept it),
    /etc/speechfs and the system user and group. The machine is then as
    before the first installation, where the tests start: the postinst
    makes the user and a store of this version (an older store of a newer
    version would stop the daemon: "the store's schema N is newer than
    this program's")."""
    purge(remove_store=True)
    st = run(["dpkg-query", "-W", "-f=${Status}", "speechfs"], check=False)
    assert st.returncode != 0 or st.stdout.endswith(" not-installed"), \
        f"speechfs is still installed: {st.stdout}"
    for d in ("/var/lib/speechfs", "/etc/speechfs"):
        shutil.rmtree(d, ignore_errors=True)
    if run(["getent", "passwd", "speechfs"], check=False).returncode == 0:
        run(["userdel", "speechfs"])
    if run(["getent", "group", "speechfs"], check=False).returncode == 0:
        run(["groupdel", "speechfs"])
    for d in ("/var/lib/speechfs", "/etc/speechfs"):
        assert not os.path.exists(d), d


def purge(remove_store=None):
    """dpkg --purge, answering the package's question first (None: leave
    it to its default); the dpkg process."""
    if remove_store is not None and \
            run(["dpkg-query", "-W", "speechfs"], check=False).returncode == 0:
        run(["debconf-set-selections"], input="speechfs speechfs/purge_store"
            f" boolean {'true' if remove_store else 'false'}\n")
    return dpkg("--purge", "speechfs", check=False)


def unit_value(unit, key):
    text = pathlib.Path("/lib/systemd/system", unit).read_text()
    return [ln.split("=", 1)[1] for ln in text.splitlines()
            if ln.startswith(key + "=")]


def packaged_admin(*args):
    """An admin command on the packaged store, as the service user, with
    the packaged configuration (as the README says)."""
    p = run(["runuser", "-u", "speechfs", "--", "/usr/sbin/speechfsd", *args,
             "--config", "/etc/speechfs/speechfsd.conf"], cwd="/")
    return p.stdout.strip()


def eventually(fn, seconds=15):
    deadline = time.time() + seconds
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.2)


def mounts():
    """The mount points of /proc/self/mountinfo (a dead FUSE mount too)."""
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f]
