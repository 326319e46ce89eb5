"""A real systemd for the tests, where the machine runs none: systemd as
PID 1 of new PID, mount, UTS, IPC and cgroup namespaces, with a /run, a
journal (volatile) and cgroup hierarchies of its own, so nothing it does
reaches the machine's /run, journal or cgroups. It starts no unit of its
own accord (its default target wants nothing); a test starts the units it
tests with systemctl inside, each given DefaultDependencies=no by a
drop-in in the private /run, so that sysinit.target and its services
(tmpfiles, sysctl, udev) never run. The units' own settings - Type=notify,
the sandbox, ExecReload - are used as shipped.

    with SystemdNS() as sd:
        sd.start_unit("speechfsd.service")
        print(sd.run("systemctl", "status", "speechfsd").stdout)
"""
import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
import time

BOOT = r"""
set -e
mount --make-rprivate /
# Other tests' FUSE mounts came along with the copy of the mount table:
# let go of them here, or their unmount outside would leave the
# connection alive (and their file system process running) as long as
# this systemd runs.
awk '$3 ~ /^fuse/ { print $2 }' /proc/self/mounts | sort -r |
    while read -r m; do umount -l "$(printf '%b' "$m")" || true; done
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd/system /run/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' \
    >/run/systemd/journald.conf.d/volatile.conf
cat >/run/systemd/system/sfs-test.target <<'EOF'
[Unit]
Description=speechfs tests: nothing but what a test starts
DefaultDependencies=no
EOF
# the cgroup hierarchies as seen from our cgroup namespace
mount -t tmpfs -o mode=0755 tmpfs /sys/fs/cgroup
mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
exec env -i container=speechfs-test PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --system --unit=sfs-test.target \
    --log-target=kmsg --log-level=notice
"""

HIERARCHIES = ("/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified")


def available():
    """Why a systemd cannot be started here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    for p in ("/lib/systemd/systemd", "/usr/bin/unshare",
              "/usr/bin/nsenter", *HIERARCHIES):
        if not os.path.exists(p):
            return f"{p} is missing"
    return None


class SystemdNS:
    def __init__(self):
        self.cg = f"sfs-systemd-test-{os.getpid()}-{time.monotonic_ns()}"
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sfs-sdns-"))
        self.proc = None
        self.pid = None
        self.pidfd = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, seconds=30):
        boot = self.dir / "boot.sh"
        boot.write_text(BOOT)
        for h in HIERARCHIES:
            os.mkdir(f"{h}/{self.cg}")
        # enter our cgroups, then the namespaces (cgroup ns rooted there)
        enter = " ".join(f"echo $$ >{h}/{self.cg}/cgroup.procs;"
                         for h in HIERARCHIES)
        self.proc = subprocess.Popen(
            ["sh", "-c", f"{enter} exec unshare --fork --pid --mount --uts "
             f"--ipc --cgroup --mount-proc sh {boot}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        deadline = time.time() + seconds
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("systemd did not start: " +
                                   self.proc.stderr.read())
            self.pid = self._systemd_pid()
            if self.pid and self.pidfd is None:
                # stop() kills it through a pidfd, not by a pid another
                # process may have once it ended
                self.pidfd = os.pidfd_open(self.pid)
            if self.pid and self.run("systemctl", "show", "-p", "Version",
                                     check=False).returncode == 0:
                break
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("systemd did not answer in time")
            time.sleep(0.1)
        self.run("systemctl", "start", "systemd-journald.socket",
                 "systemd-journald.service")

    def _systemd_pid(self):
        p = subprocess.run(["pgrep", "-P", str(self.proc.pid), "-x",
                            "unshare"], capture_output=True, text=True)
        unshare = p.stdout.split()
        parent = unshare[0] if unshare else str(self.proc.pid)
        p = subprocess.run(["pgrep", "-P", parent, "-x", "systemd"],
                           capture_output=True, text=True)
        pids = p.stdout.split()
        return int(pids[0]) if pids else None

    def run(self, *cmd, check=True, timeout=120, input=None):
        """A command inside (its mount, PID and UTS namespaces)."""
        p = subprocess.run(["nsenter", "-t", str(self.pid), "-m", "-p",
                            "-u", "-i", "-C", "--", *cmd],
                           capture_output=True, text=True, timeout=timeout,
                           input=input)
        if check:
            assert p.returncode == 0, \
                f"{cmd}: {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def no_default_deps(self, unit):
        """A drop-in (in the private /run) so starting unit pulls no
        sysinit.target; nothing else of the unit changes."""
        self.run("sh", "-c", f"mkdir -p /run/systemd/system/{unit}.d && "
                 f"printf '[Unit]\\nDefaultDependencies=no\\n' "
                 f">/run/systemd/system/{unit}.d/sfs-test.conf")
        self.run("systemctl", "daemon-reload")

    def mounts(self):
        """The mount points seen inside."""
        text = self.run("cat", "/proc/self/mountinfo").stdout
        return [ln.split()[4] for ln in text.splitlines()]

    def stop(self):
        if self.pid:
            # units first, so they stop as systemd stops them
            self.run("systemctl", "stop", "--all", "*.service",
                     check=False, timeout=60)
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            if self.pidfd is not None:
                try:
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait(timeout=30)
        # the namespace's PID 1 took everything in it along; its cgroups
        # are empty and go, deepest first
        deadline = time.time() + 10
        for h in HIERARCHIES:
            top = pathlib.Path(h, self.cg)
            while top.exists() and time.time() < deadline:
                dirs = sorted((p for p in top.rglob("*") if p.is_dir()),
                              key=lambda p: -len(p.parts))
                try:
                    for d in dirs + [top]:
                        d.rmdir()
                except OSError:
                    time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.pid = None
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
