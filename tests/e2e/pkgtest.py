"""What the package tests share: running commands and dpkg, the .deb
built once per module (`make deb`, the README's command), the package
installed with the README's command and purged (store included) at
teardown under a machine-wide lock, and small helpers. Import the
fixtures `deb` and `installed` into a test module to use them."""
import fcntl
import os
import pathlib
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


def wait_healthy(base, proc, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert proc.poll() is None, \
            f"daemon exited {proc.returncode}: {proc.stderr.read()[-2000:]}"
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{base}/healthz did not answer in {seconds} s")


def stop(proc):
    """SIGTERM; the daemon must exit 0 within 20 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("the daemon did not stop on SIGTERM")
    assert rc == 0, proc.stderr.read()[-2000:]


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
    purge(remove_store=True)
    assert not os.path.exists("/var/lib/speechfs")
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
        purge(remove_store=True)
        lock.close()


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
