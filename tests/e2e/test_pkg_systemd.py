"""The packaged units under a real systemd (sdns.py: systemd in
namespaces of its own, as the machine runs none): speechfsd.service is
Type=notify (systemctl start returns once READY=1 came, with its STATUS=),
takes every setting from its configuration file, reloads it with
`systemctl reload` and logs what changed, logs with syslog priorities
(journalctl -p filters) and stops cleanly; its sandbox rates <= 2.5 in
`systemd-analyze security`. speechfs@NAME.service mounts the store as
Type=notify too, within its own sandbox, and unmounts at stop."""
import json
import os
import pathlib
import re
import shutil
import time

import pytest
import requests

import sdns
from pkgtest import (API, deb, free_port, installed,  # noqa: F401
                     packaged_admin, run)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="installs a package: needs root")

CONF = pathlib.Path("/etc/speechfs/speechfsd.conf")


def exposure(sd, unit):
    out = sd.run("systemd-analyze", "security", "--no-pager", unit).stdout
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert m, out
    return float(m.group(1)), out


def show(sd, unit, *props):
    out = sd.run("systemctl", "show", "-p", ",".join(props), unit).stdout
    return dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)


def journal(sd, unit, *args):
    return sd.run("journalctl", "--no-pager", "-o", "cat", "-u", unit,
                  *args).stdout


def reload(sd, unit, done, seconds=30):
    """`systemctl reload`, then wait for the reload's own word that it is
    over (a line of the journal that contains done and was not there
    before). With Type=notify and ExecReload=kill -HUP, systemd 252 ends
    the reload job once the signal is sent, not when the daemon has read
    the file (Type=notify-reload, systemd 253, closes that window)."""
    before = journal(sd, unit).count(done)
    sd.run("systemctl", "reload", unit)
    deadline = time.monotonic() + seconds
    while True:
        log = journal(sd, unit)
        if log.count(done) > before:
            return log
        assert time.monotonic() < deadline, \
            f"no {done!r} in the journal {seconds} s after the reload: {log}"
        time.sleep(0.1)


@pytest.fixture
def systemd():
    why = sdns.available()
    assert why is None, f"no systemd for the unit tests: {why}"
    with sdns.SystemdNS() as sd:
        yield sd


def test_daemon_unit(installed, systemd):
    sd = systemd
    port = free_port()
    text = CONF.read_text()
    # the administrator's one edit: where to listen
    CONF.write_text(text.replace("\nlisten = 127.0.0.1:8080\n",
                                 f"\nlisten = 127.0.0.1:{port}\n"))
    base = f"http://127.0.0.1:{port}"
    sd.no_default_deps("speechfsd.service")
    # Type=notify: start returns once the daemon said READY=1
    sd.run("systemctl", "start", "speechfsd.service")
    st = show(sd, "speechfsd.service", "Type", "ActiveState", "SubState",
              "StatusText", "NotifyAccess")
    assert st["Type"] == "notify" and st["ActiveState"] == "active", st
    assert st["StatusText"] == \
        f"listening on 127.0.0.1:{port}, store /var/lib/speechfs/store", st
    assert requests.get(base + "/healthz", timeout=5).status_code == 200

    tenant = packaged_admin("tenant", "create", "--name", "sd")
    user = packaged_admin("user", "create", "--tenant", tenant, "--name",
                          "sd")
    key = json.loads(packaged_admin("key", "create", "--user", user,
                                    "--json"))["key"]
    h = {"X-API-Key": key}
    for _ in range(5):
        assert requests.get(base + API, headers=h, timeout=5).ok

    # a reload: one request a second from now on, threads only at a start
    CONF.write_text(CONF.read_text() + "http.rate_per_second = 0.01\n"
                    "http.rate_burst = 1\nhttp.threads = 2\n")
    log = reload(sd, "speechfsd.service", "reloaded '/etc/speechfs/")
    codes = [requests.get(base + API, headers=h, timeout=5).status_code
             for _ in range(3)]
    assert codes[-1] == 429, codes
    assert "reload: 'http.rate_per_second' is now '0.01' (was " \
        "'(default)')" in log, log
    assert "reloaded '/etc/speechfs/speechfsd.conf': 3 changes" in log
    # priorities: only the warning passes -p warning
    warn = journal(sd, "speechfsd.service", "-p", "warning")
    assert "'http.threads' changed ('(default)' -> '2'): takes effect " \
        "at the next start" in warn, warn
    assert "listening on" not in warn and "is now" not in warn, warn
    assert "info httpd: listening on" in journal(sd, "speechfsd.service",
                                                 "-p", "info")
    # a reload with an error changes nothing, and says so in the status
    CONF.write_text(CONF.read_text() + "http.rate_burst = lots\n")
    reload(sd, "speechfsd.service", "http.rate_burst")
    st = show(sd, "speechfsd.service", "ActiveState", "StatusText")
    assert st["ActiveState"] == "active"
    assert st["StatusText"].endswith("the last reload failed (see the log)")
    err = journal(sd, "speechfsd.service", "-p", "err")
    assert "speechfsd.conf:" in err and "http.rate_burst" in err, err

    sd.run("systemctl", "stop", "speechfsd.service")
    st = show(sd, "speechfsd.service", "ActiveState", "Result")
    assert st == {"ActiveState": "inactive", "Result": "success"}, st
    assert "shutting down" in journal(sd, "speechfsd.service")

    # a configuration error stops the start, naming file, line and key
    CONF.write_text(text + "htp.threads = 2\n")
    p = sd.run("systemctl", "start", "speechfsd.service", check=False)
    assert p.returncode != 0
    lines = len(text.splitlines()) + 1
    assert f"/etc/speechfs/speechfsd.conf:{lines}: htp.threads: unknown " \
        "key" in journal(sd, "speechfsd.service", "-p", "err")
    CONF.write_text(text)

    score, out = exposure(sd, "speechfsd.service")
    print(f"systemd-analyze security speechfsd.service: {score}")
    assert score <= 2.5, out


def test_mount_unit(installed, systemd, tmp_path):
    sd = systemd
    tenant = packaged_admin("tenant", "create", "--name", "m")
    user = packaged_admin("user", "create", "--tenant", tenant, "--name",
                          "m")
    where = pathlib.Path(f"/srv/speechfs-unit-test-{os.getpid()}")
    conf = pathlib.Path("/etc/speechfs/mount-unittest.conf")
    conf.write_text(f"STORE=/var/lib/speechfs/store\nUSER={user}\n"
                    f"MOUNTPOINT={where}\n")
    # Debian's udev rule makes /dev/fuse 0666; a VM's /dev may not
    fuse_mode = os.stat("/dev/fuse").st_mode & 0o777
    os.chmod("/dev/fuse", 0o666)
    unit = "speechfs@unittest.service"
    try:
        sd.no_default_deps(unit)
        p = sd.run("systemctl", "start", unit, check=False)
        assert p.returncode == 0, journal(sd, unit)
        st = show(sd, unit, "Type", "ActiveState", "StatusText")
        assert st["Type"] == "notify" and st["ActiveState"] == "active", st
        assert st["StatusText"] == f"mounted {where} as user {user}", st
        assert str(where) in sd.mounts()
        # the store user's files, through the mount, as the mount's user
        sd.run("runuser", "-u", "speechfs", "--", "sh", "-c",
               f"echo hello >{where}/hello.txt")
        ls = sd.run("runuser", "-u", "speechfs", "--", "ls", "-A",
                    str(where)).stdout.split()
        assert ls == [".listening", ".shared", ".trash", "hello.txt"], ls
        sd.run("systemctl", "stop", unit)
        st = show(sd, unit, "ActiveState", "Result")
        assert st == {"ActiveState": "inactive", "Result": "success"}, st
        assert str(where) not in sd.mounts()
        score, out = exposure(sd, unit)
        print(f"systemd-analyze security {unit}: {score}")
        assert score <= 4.0, out
    finally:
        os.chmod("/dev/fuse", fuse_mode)
        conf.unlink(missing_ok=True)
        if str(where) in sd.mounts():
            sd.run("fusermount3", "-uz", str(where), check=False)
        shutil.rmtree(where, ignore_errors=True)
