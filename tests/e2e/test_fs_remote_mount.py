"""Mounting a server's store as a new user does it, from the README and
speechfs(1): an /etc/fstab entry through the package's helper
(packaging/debian/mount.fuse.speechfs, run as mount(8) runs it, the
mount in the background as from fstab), against a real speechfsd on
127.0.0.1; what the mount says and how it ends when given bad input;
https with a CA of its own (a TLS front of Python's ssl), a proxy only
when given; where its block cache and its log lines go."""
import base64
import contextlib
import errno
import fcntl
import http.server
import json
import os
import pathlib
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests

import readme
from conftest import ROOT
from fsutil import (SPEECHFS, Server, admin, eventually,  # noqa: F401
                    free_port, is_mounted, store)
from test_fs_remote import RemoteMount

HELPER = ROOT / "packaging/debian/mount.fuse.speechfs"


@pytest.fixture
def server(store):
    """(a speechfsd on the store, alice's API key in a file, a scratch
    directory with an empty mount point `mnt` in it)."""
    d, _, users = store
    srv = Server(d, workers=False)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sfs-rmount-"))
    try:
        keyf = tmp / "alice.key"
        keyf.write_text(srv.key(users[0]) + "\n")
        keyf.chmod(0o600)
        (tmp / "mnt").mkdir()
        yield srv, keyf, tmp
    finally:
        try:
            unmount(tmp / "mnt")
        finally:
            srv.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def mount_pids(mnt):
    """The speechfs processes serving mnt (named on their command line)."""
    pids = []
    for p in pathlib.Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"speechfs") and \
                str(mnt).encode() in argv:
            pids.append(int(p.name))
    return pids


def unmount(mnt, timeout=30):
    """Unmount a background mount and wait until its process is gone."""
    pids = mount_pids(mnt)
    if is_mounted(mnt):
        subprocess.run(["fusermount3", "-u", str(mnt)], check=True,
                       timeout=timeout)
    deadline = time.monotonic() + timeout
    while any(os.path.exists(f"/proc/{p}") and
              "Z" not in open(f"/proc/{p}/stat").read().split(")")[1][:3]
              for p in pids):
        assert time.monotonic() < deadline, f"speechfs {pids} did not exit"
        time.sleep(0.02)


def helper_copy(tmp):
    """A copy of the package's fstab helper in tmp that calls the speechfs
    under test instead of /usr/bin/speechfs: its path."""
    h = tmp / "mount.fuse.speechfs"
    h.write_text(HELPER.read_text().replace("/usr/bin/speechfs",
                                            str(SPEECHFS)))
    h.chmod(0o755)
    return h


def helper(tmp, *args):
    """The package's fstab helper as mount(8) runs it (as root, with the
    entry's first two fields and its options)."""
    return subprocess.run([str(helper_copy(tmp)), *args],
                          capture_output=True, text=True, timeout=60)


def readme_entry(srv, keyf, tmp):
    """The README's fstab line of a remote mount, made this test's: (its
    first field, mount point, options + mount(8)'s own and a cache)."""
    (b,) = [b for b in readme.blocks() if b.kind == "fstab-remote"]
    first, where, kind, opts = b.text.split()[:4]
    assert (first, kind) == ("https://HOST:PORT", "fuse.speechfs")
    assert "_netdev" in opts.split(","), opts
    opts = opts.replace("/etc/speechfs/remote.key", str(keyf))
    return (first.replace("https://HOST:PORT", srv.base), tmp / "mnt",
            f"rw,{opts},noauto,cache_dir={tmp}/cache")


@pytest.mark.parametrize("form", ["url-first", "url-option"])
def test_fstab_entry_mounts_a_server(server, form):
    """The README's `https://HOST:PORT /srv/speech fuse.speechfs
    key_file=F,_netdev,nofail` (or a name first and url= among the
    options): the helper mounts the server's store (not a store named
    so) and returns once it is up; mount(8)'s own options are dropped.
    Before, it ran `speechfs --store URL` and failed either way."""
    srv, keyf, tmp = server
    url, mnt, opts = readme_entry(srv, keyf, tmp)
    if form == "url-first":
        r = helper(tmp, url, str(mnt), "-o", opts)
    else:
        r = helper(tmp, "speechfs", str(mnt), "-o", f"url={url},{opts}")
    assert r.returncode == 0, r.stderr
    assert is_mounted(mnt)
    assert sorted(os.listdir(mnt)) == [".listening", ".shared", ".trash"]
    (mnt / "note.txt").write_bytes(b"via fstab")
    unmount(mnt)
    assert not is_mounted(mnt)
    # on the server: a new mount from the same entry finds it
    r = helper(tmp, srv.base, str(mnt), "-o", opts)
    assert r.returncode == 0, r.stderr
    assert (mnt / "note.txt").read_bytes() == b"via fstab"


# Run in a mount namespace of its own (unshare -m): /dev/fuse as Debian
# makes it (0666; 0600 on some build machines, where no user but root
# could mount) for this namespace only, then the helper as mount(8) runs
# it with setuid=; NAME writes a file and lists the mount; what the
# mount's process is and what NAME saw, as JSON, after the unmount.
SETUID_PROBE = r"""
import json, os, stat, subprocess, sys, time
helper, url, mnt, opts, dev, uid, gid = sys.argv[1:8]
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", dev],
               check=True)
node = os.path.join(dev, "fuse")
os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(10, 229))
os.chmod(node, 0o666)
subprocess.run(["mount", "--bind", node, "/dev/fuse"], check=True)
r = subprocess.run([helper, url, mnt, "-o", opts], capture_output=True,
                   text=True, timeout=60)
out = {"rc": r.returncode, "stderr": r.stderr}
def argv(p):
    try:
        return open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
    except OSError:
        return [b""]
pids = [p for p in os.listdir("/proc") if p.isdigit()
        and argv(p)[0].endswith(b"/speechfs") and mnt.encode() in argv(p)]
try:
    out["pids"] = pids
    for p in pids:
        out["status"] = open("/proc/%s/status" % p).read()
        out["environ"] = open("/proc/%s/environ" % p).read()
    u = subprocess.run(["setpriv", "--reuid=" + uid, "--regid=" + gid,
                        "--clear-groups", "sh", "-c",
                        "echo setuid > %s/u4.txt && ls -A %s" % (mnt, mnt)],
                       capture_output=True, text=True, timeout=60)
    out["user"] = [u.returncode, u.stdout, u.stderr]
finally:
    subprocess.run(["fusermount3", "-u", mnt], capture_output=True)
    deadline = time.monotonic() + 30
    while any(os.path.exists("/proc/" + p) for p in pids) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    out["ended"] = not any(os.path.exists("/proc/" + p) for p in pids)
print(json.dumps(out), flush=True)
"""


@contextlib.contextmanager
def new_user(home):
    """A user of the test's own (its own group, home `home`), removed
    afterwards: its passwd entry."""
    name = "sfs-u4-%d" % os.getpid()
    subprocess.run(["useradd", "--home-dir", str(home), "--create-home",
                    "--user-group", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, timeout=60)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "--force", name], capture_output=True,
                       timeout=60)


def test_fstab_entry_with_setuid_runs_as_that_user(server):
    """An fstab entry with setuid=NAME and no cache_dir: the helper runs
    the mount as NAME (setpriv --reset-env), so it has NAME's ids and
    HOME and none of root's environment, and the server's block cache is
    in NAME's home (~/.cache/speechfs/HOST_PORT, NAME's, 0700), not
    root's; NAME writes and lists there, and the server has the file.
    Nothing ran the setuid= path before (review s20 U4)."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    tmp.chmod(0o755)    # the user goes through it to the mount point
    (tmp / "dev").mkdir()
    with new_user(tmp / "home") as u:
        os.chown(mnt, u.pw_uid, u.pw_gid)
        ukey = tmp / "user.key"
        shutil.copy(keyf, ukey)
        os.chown(ukey, u.pw_uid, u.pw_gid)
        r = subprocess.run(
            ["unshare", "-m", "--propagation", "private", sys.executable,
             "-c", SETUID_PROBE, str(helper_copy(tmp)),
             srv.base, str(mnt),
             f"key_file={ukey},_netdev,nofail,setuid={u.pw_name}",
             str(tmp / "dev"), str(u.pw_uid), str(u.pw_gid)],
            capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout.splitlines()[-1])
        assert got["rc"] == 0 and len(got["pids"]) == 1, got
        assert got["ended"], got
        ids = [ln.split()[1:] for ln in got["status"].splitlines()
               if ln.startswith(("Uid:", "Gid:"))]
        assert ids == [[str(u.pw_uid)] * 4, [str(u.pw_gid)] * 4], ids
        env = dict(v.split("=", 1) for v in got["environ"].split("\0") if v)
        assert env["HOME"] == u.pw_dir and env["USER"] == u.pw_name, env
        assert "PATH" in env and "SFS_BUILD" not in env, env
        assert got["user"][0] == 0, got["user"]
        assert got["user"][1].split() == [".listening", ".shared", ".trash",
                                          "u4.txt"], got["user"]
        cache = pathlib.Path(u.pw_dir, ".cache/speechfs",
                             "127.0.0.1_%d" % srv.port)
        st = cache.stat()
        assert (st.st_uid, st.st_mode & 0o777) == (u.pw_uid, 0o700)
    r = requests.get(srv.base + "/api/v1/speech-services/files",
                     headers={"X-API-Key": keyf.read_text().strip()},
                     timeout=30)
    assert [f["filename"] for f in r.json()["files"]] == ["u4.txt"], r.text


def run_mount(*args):
    r = subprocess.run([str(SPEECHFS), *args], capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stderr.strip()


@pytest.mark.parametrize("kind", ["remote", "local"])
@pytest.mark.parametrize("bad,says", [
    (["-o", "bogus=1"], "bogus=1"),
    (["-o", "ro,_netdev"], "_netdev"),
    (["MISSING"], "bad mount point"),
])
def test_bad_option_or_mount_point_exits_2_first(tmp_path, kind, bad, says):
    """An option neither speechfs nor libfuse knows, or a mount point that
    does not exist, is named in one line with exit status 2 (speechfs(1))
    before the server or the store is asked. Before, the server (here:
    nothing listening) or the store (none) was tried first and its failure
    told instead, exit 1; with a server up, the option failed after the
    mount had connected."""
    key = tmp_path / "key"
    key.write_text("sfs_" + "0" * 64 + "\n")
    mp = tmp_path / "mnt"
    mp.mkdir()
    src = (["--url", "http://127.0.0.1:1", "--key-file", str(key)]
           if kind == "remote" else
           ["--store", str(tmp_path / "no-store"), "--user", "u"])
    args = [str(tmp_path / "missing") if a == "MISSING" else a for a in bad]
    if "MISSING" not in bad:
        args.append(str(mp))
    rc, err = run_mount(*src, *args, "-f")
    assert rc == 2, err
    assert says in err, err
    assert len(err.splitlines()) == 1, err
    assert not is_mounted(mp)
    assert not (tmp_path / "no-store").exists()


class Listener:
    """A socket on a free port of 127.0.0.1 whose connections each get a
    thread running self.serve(conn), until close()."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def close(self):
        self.sock.close()


class TlsFront(Listener):
    """https://127.0.0.1:PORT in front of a speechfsd (TLS ends here,
    each connection piped to the daemon), with a certificate of its own
    (self-signed, made by openssl for 127.0.0.1): what a small server
    set up without a public CA looks like to the mount."""

    def __init__(self, tmp, backend_port):
        self.cert, key = tmp / "tls.crt", tmp / "tls.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", str(key), "-out",
                        str(self.cert), "-days", "2", "-subj",
                        "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(self.cert), str(key))
        self.backend = backend_port
        self.handshakes_failed = 0
        super().__init__()
        self.base = "https://127.0.0.1:%d" % self.port

    def serve(self, c):
        try:
            s = self.ctx.wrap_socket(c, server_side=True)
        except (OSError, ssl.SSLError):
            self.handshakes_failed += 1
            c.close()
            return
        b = socket.create_connection(("127.0.0.1", self.backend))
        threading.Thread(target=pipe, args=(b, s), daemon=True).start()
        pipe(s, b)


def pipe(src, dst):
    try:
        while True:
            d = src.recv(1 << 16)
            if not d:
                break
            dst.sendall(d)
    except OSError:
        pass
    finally:
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_https_with_its_own_ca(server):
    """https to a server whose certificate no system CA signed: refused at
    mount, in one line that says what libcurl found (a self-signed
    certificate) and which option takes the CA, exit 1, no mount; with
    -o cafile= naming it, the mount lists and writes over TLS. Before,
    the line said only "SSL peer certificate or SSH remote key was not
    OK"; no test mounted https at all."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    front = TlsFront(tmp, srv.port)
    try:
        rc, err = run_mount("--url", front.base, "--key-file", str(keyf),
                            "-o", f"cache_dir={tmp}/cache", str(mnt), "-f")
        assert rc == 1, err
        assert len(err.splitlines()) == 1, err
        assert "self-signed certificate" in err, err
        assert "-o cafile=FILE" in err, err
        # the front's thread counts it once its side of the handshake
        # ends, which may be after the mount's
        assert eventually(lambda: front.handshakes_failed >= 1, 30)
        assert not is_mounted(mnt)
        rc, err = run_mount("--url", front.base, "--key-file", str(keyf),
                            "-o", f"cache_dir={tmp}/cache,cafile="
                            f"{front.cert}", str(mnt))
        assert rc == 0, err
        (mnt / "over-tls.txt").write_bytes(b"sent over https")
        assert [n for n in os.listdir(mnt) if n[0] != "."] == \
            ["over-tls.txt"]
        unmount(mnt)
        r = requests.get(srv.base + "/api/v1/speech-services/files",
                         headers={"X-API-Key": keyf.read_text().strip()},
                         timeout=30)
        assert [f["filename"] for f in r.json()["files"]] == \
            ["over-tls.txt"], r.text
    finally:
        front.close()


def test_cafile_hint_only_for_a_certificate_refused(server):
    """The -o cafile= hint comes with a server certificate that was not
    trusted (the core's reason, certificate_not_trusted: see
    test_https_with_its_own_ca), not with the word: a URL whose path says
    "certificate" and where nothing listens fails in one line without
    it. Before, the mount looked for "certificate" in the error's text,
    which has the URL in it, and gave the hint here too."""
    srv, keyf, tmp = server
    url = "http://127.0.0.1:%d/certificate" % free_port()
    rc, err = run_mount("--url", url, "--key-file", str(keyf), "-o",
                        f"cache_dir={tmp}/cache,timeout=5", str(tmp / "mnt"),
                        "-f")
    assert rc == 1, err
    assert len(err.splitlines()) == 1 and url + "/api/" in err, err
    assert "cafile" not in err, err
    assert not is_mounted(tmp / "mnt")


def test_block_cache_is_private_and_never_in_tmp(server):
    """A mount without $HOME (from fstab at boot) keeps its block cache in
    the home of its user's passwd entry, made 0700; before, it went to
    /tmp/.cache/speechfs/HOST_PORT (0755), where any local user could
    have put blocks first, and cached blocks are read unchecked. So a
    cache_dir that another user owns or others may write is refused at
    mount, in one line (before, it was used)."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    name = "127.0.0.1_%d" % srv.port
    home = pathlib.Path(pwd.getpwuid(os.geteuid()).pw_dir)
    want, tmp_cache = home / ".cache/speechfs" / name, \
        pathlib.Path("/tmp/.cache/speechfs") / name
    env = {k: v for k, v in os.environ.items()
           if k not in ("HOME", "XDG_CACHE_HOME")}
    try:
        r = subprocess.run([str(SPEECHFS), "--url", srv.base + "/",
                            "--key-file", str(keyf), str(mnt)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        unmount(mnt)
        assert not tmp_cache.exists()
        assert want.is_dir(), r.stderr
        assert want.stat().st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(want, ignore_errors=True)
        shutil.rmtree(tmp_cache, ignore_errors=True)
    shared = tmp / "shared-cache"
    shared.mkdir()
    for mode, owner in ((0o777, os.geteuid()), (0o700, 65534)):
        os.chown(shared, owner, -1)
        shared.chmod(mode)
        rc, err = run_mount("--url", srv.base, "--key-file", str(keyf),
                            "-o", f"cache_dir={shared}", str(mnt), "-f")
        assert rc == 1, err
        assert len(err.splitlines()) == 1, err
        assert f"cache directory '{shared}' belongs to another user" in err
        assert not is_mounted(mnt)
    assert os.listdir(shared) == []


# Run in a mount namespace of its own (unshare -m): a syslog socket of the
# test's at /dev/log, then a mount in the background that logs to it.
# Says "mounted", then "down" once the mount logged that the server does
# not answer, then unmounts once it logged that it answers again and
# prints every line the socket got, as JSON. The deadline, 20 s, is short
# of the change feed's long poll (25 s): the mount must say the server is
# back when it connects (the feed asks again 1, 2, 4 s after it failed),
# not when that poll is answered. The namespace's /dev is a tmpfs of its
# own, the host's few devices a mount uses bound into it, so nothing is
# written to the host's /dev, however the probe ends (review s22 V11: it
# made a regular file /dev/log there when there was none, left behind if
# the probe was killed: every program's syslog(3) then wrote into
# nothing). Wherever the host's /dev/log leads (a socket, a link to
# journald's, nothing), syslog(3) opens the path /dev/log.
SYSLOG_PROBE = r'''
import json, os, socket, subprocess, sys, time
speechfs, url, keyf, mnt, cache, tmp = sys.argv[1:7]
host_dev = os.path.join(tmp, "host-dev")
os.mkdir(host_dev)
subprocess.run(["mount", "--bind", "/dev", host_dev], check=True)
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/dev"],
               check=True)
for name in ("fuse", "null", "zero", "full", "random", "urandom", "tty"):
    if os.path.exists(os.path.join(host_dev, name)):
        open(os.path.join("/dev", name), "w").close()
        subprocess.run(["mount", "--bind", os.path.join(host_dev, name),
                        os.path.join("/dev", name)], check=True)
os.symlink("/proc/self/fd", "/dev/fd")
for i, name in enumerate(("stdin", "stdout", "stderr")):
    os.symlink("/proc/self/fd/%d" % i, os.path.join("/dev", name))
log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(0.2)
r = subprocess.run([speechfs, "--url", url, "--key-file", keyf, "-o",
                    "cache_dir=" + cache, mnt], capture_output=True,
                   text=True)
assert r.returncode == 0, r.stderr
print("mounted", flush=True)
lines, said_down = [], False
deadline = time.monotonic() + 20
try:
    while time.monotonic() < deadline:
        try:
            lines.append(log.recv(4096).decode())
        except socket.timeout:
            continue
        if not said_down and "does not answer" in lines[-1]:
            said_down = True
            deadline = time.monotonic() + 20
            print("down", flush=True)
        if "answers again" in lines[-1]:
            break
finally:
    subprocess.run(["fusermount3", "-u", mnt])
print(json.dumps(lines), flush=True)
'''


def test_background_mount_logs_to_syslog(server):
    """A mount in the background (the default, and from fstab) has its
    stderr on /dev/null: what it says while it runs (the server gone and
    back, a file it could not send) went nowhere. It goes to syslog now,
    as `speechfs[PID]`, facility daemon, with its level: the server
    killed, the mount logs a warning that it does not answer, and once
    it is started again, that it answers again, as soon as it connects
    (before, only when a request was answered: with nothing asked, the
    change feed's long poll, 25 s later). Before, the socket got
    nothing."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    p = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", sys.executable,
         "-c", SYSLOG_PROBE, str(SPEECHFS), srv.base, str(keyf), str(mnt),
         str(tmp / "cache"), str(tmp)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "mounted\n", p.stderr.read()
        t0 = time.monotonic()
        srv.kill()
        down = p.stdout.readline()
        t1 = time.monotonic()
        srv.start()
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        lines = json.loads(out if down == "down\n" else down)
        assert down == "down\n", lines
        print("down after %.1f s, back %.1f s after start" %
              (t1 - t0, time.monotonic() - t1))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    said = "\n".join(lines)
    assert re.search(r"^<28>.* speechfs\[\d+\]: warn remote: '%s' does "
                     r"not answer" % re.escape(srv.base), said, re.M), said
    assert re.search(r"^<30>.* speechfs\[\d+\]: info remote: '%s' answers "
                     r"again" % re.escape(srv.base), said, re.M), said


class ConnectProxy(Listener):
    """An HTTP proxy on 127.0.0.1 that tunnels CONNECT (what libcurl asks
    of a proxy for an https URL), noting each target it was asked for."""

    def __init__(self):
        self.targets = []
        super().__init__()
        self.url = "http://127.0.0.1:%d" % self.port

    def serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(4096)
            if not d:
                c.close()
                return
            head += d
        method, target = head.split(b" ")[:2]
        self.targets.append(target.decode())
        if method != b"CONNECT":
            c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n"
                      b"Content-Length: 0\r\n\r\n")
            c.close()
            return
        host, port = target.decode().rsplit(":", 1)
        b = socket.create_connection((host, int(port)))
        c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(b, c), daemon=True).start()
        pipe(c, b)


def test_proxy_only_when_given(server):
    """Proxies only when configured (issue 14): the environment's
    https_proxy is ignored (a proxy that does not exist there, the mount
    goes straight), and -o proxy=URL sends every request through that
    proxy (a CONNECT tunnel to the https server). Before, there was no
    way to give one: -o proxy= was an unknown option. The environment's
    no_proxy, which names the server here, is ignored too: libcurl took
    it, and the proxy given was passed by (review s20 U3)."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    front, proxy = TlsFront(tmp, srv.port), ConnectProxy()
    env = {**os.environ, "https_proxy": "http://127.0.0.1:1",
           "HTTPS_PROXY": "http://127.0.0.1:1",
           "no_proxy": "127.0.0.1", "NO_PROXY": "127.0.0.1"}
    opts = f"cache_dir={tmp}/cache,cafile={front.cert}"
    try:
        for extra in ("", f",proxy={proxy.url}"):
            r = subprocess.run([str(SPEECHFS), "--url", front.base,
                                "--key-file", str(keyf), "-o", opts + extra,
                                str(mnt)], env=env, capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            (mnt / ("p%d.txt" % len(extra))).write_bytes(b"x")
            unmount(mnt)
            if not extra:
                assert proxy.targets == []
        host_port = front.base.split("//")[1]
        assert proxy.targets and \
            set(proxy.targets) == {host_port}, proxy.targets
        rc, err = run_mount("--url", front.base, "--key-file", str(keyf),
                            "-o", "proxy=127.0.0.1:3128", str(mnt), "-f")
        assert rc == 2 and "-o proxy=127.0.0.1:3128: expected a URL" in err
    finally:
        front.close()
        proxy.close()


def staged(cache):
    """The files under cache/staging: relative path -> size."""
    root = cache / "staging"
    return {str(p.relative_to(root)): p.stat().st_size
            for p in root.rglob("*") if p.is_file()}


def test_a_killed_mounts_stages_go_at_the_next_mount(server):
    """A mount killed while a file was written leaves its stage (the
    file's bytes so far) under the cache's staging/; before, nothing ever
    removed it (10 MiB of a recording stayed there for good, outside
    cache_size). Each mount now stages in a directory of its own, locked
    while it lives: the next mount of that cache removes the directories
    of dead mounts and never those of live ones, and a mount that ends
    removes its own."""
    srv, keyf, tmp = server
    cache = tmp / "cache"
    cache.mkdir(mode=0o700)
    key = keyf.read_text().strip()
    a = RemoteMount(srv.base, key, cache_dir=cache)
    try:
        f = open(a.path("held.wav"), "wb")
        f.write(os.urandom(1 << 20))
        f.flush()
        assert any(n.endswith(".part") for n in staged(cache)), \
            staged(cache)
        a.proc.kill()
        a.proc.wait(timeout=30)
        with pytest.raises(OSError):
            f.close()
    finally:
        a.stop(check=False)
    b = RemoteMount(srv.base, key, cache_dir=cache)
    c = None
    try:
        assert [n for n in staged(cache) if not n.endswith("/lock")] == \
            [], staged(cache)
        with open(b.path("live.wav"), "wb") as g:
            data = os.urandom(1 << 20)
            g.write(data)
            g.flush()
            b_stages = set(staged(cache))
            assert any(n.endswith(".part") for n in b_stages), b_stages
            c = RemoteMount(srv.base, key, cache_dir=cache)
            assert b_stages <= set(staged(cache)), staged(cache)
        assert b.path("live.wav").read_bytes() == data
        assert c.path("live.wav").read_bytes() == data
    finally:
        for m in (c, b):
            if m:
                m.stop()
    assert staged(cache) == {}


def test_url_of_the_files_route_is_refused_with_a_hint(server):
    """`make run` writes SPEECHFS_URL, the files route
    (…/api/v1/speech-services/files), and a new user gives it to --url:
    refused before the server is asked, in one line that says to leave
    the API path out, exit 2. Before, the server was asked and the mount
    failed with its "no such endpoint", exit 1."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    rc, err = run_mount("--url", srv.base + "/api/v1/speech-services/files",
                        "--key-file", str(keyf), str(mnt), "-f")
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert "without its API path" in err, err
    assert not is_mounted(mnt)
    # a reverse proxy's base path is a server's URL (review s20 U2): asked
    rc, err = run_mount("--url", srv.base + "/api/speech", "--key-file",
                        str(keyf), str(mnt), "-f")
    assert rc != 0 and "without its API path" not in err, err
    assert not is_mounted(mnt)


@pytest.mark.parametrize("url,opts,says", [
    ("ftp://Zq9user:Xk7pass@127.0.0.1:1", [], "--url ftp://127.0.0.1:1: "),
    ("Zq9user:Xk7pass@127.0.0.1:1", [], "--url 127.0.0.1:1: "),
    ("http://Zq9user:Xk7pass@127.0.0.1:1/api/v1/speech-services/files", [],
     "--url http://127.0.0.1:1/api/v1/speech-services/files: "),
    ("http://127.0.0.1:1", ["-o", "proxy=Zq9user:Xk7pass@127.0.0.1:3128"],
     "-o proxy=127.0.0.1:3128: "),
    # a password typed unencoded with '#', '/' or '?' (review s22 V5)
    ("ftp://Zq9user:Xk7p#ss@127.0.0.1:1", [], "--url ftp://127.0.0.1:1: "),
    ("ftp://Zq9user:Xk7s3/cret@127.0.0.1:1", [],
     "--url ftp://127.0.0.1:1: "),
    ("http://Zq9user:Xk7pa?ss@127.0.0.1:1/api/v1/x", [],
     "--url http://127.0.0.1:1/api/v1/x: "),
])
def test_a_refused_url_is_named_without_its_password(tmp_path, url, opts,
                                                     says):
    """A --url (or -o proxy=) refused before the server is asked is named
    in its one line without the user:password it holds (an fstab mount's
    line stays in the journal). Before, the line showed the URL as given
    (re-read s21 B2)."""
    keyf = tmp_path / "key"
    keyf.write_text("k" * 40)
    keyf.chmod(0o600)
    rc, err = run_mount("--url", url, "--key-file", str(keyf), *opts,
                        str(tmp_path), "-f")
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and says in err, err
    assert "Xk7" not in err and "Zq9user" not in err, err


@pytest.mark.parametrize("url", ["http://Zq9user:Xk7p#ss@127.0.0.1:1",
                                 "http://Zq9user:Xk7s3/cret@127.0.0.1:1",
                                 "http://Zq9user:Xk7pa?ss@127.0.0.1:1",
                                 # libcurl parses these: host Zq9user,
                                 # port 2024 / 1234 (re-read s22 B8)
                                 "http://Zq9user:2024/Xk7s@127.0.0.1:1",
                                 "http://Zq9user:1234#Xk7@127.0.0.1:1",
                                 "http://Zq9user:1234?Xk7@127.0.0.1:1"])
def test_a_url_that_cannot_be_parsed_is_not_told(tmp_path, url):
    """A user:password typed unencoded with '/', '?' or '#' makes a URL
    libcurl cannot parse, or parses as another host and port (a password
    starting with digits): the mount fails at once, saying how to write
    them, and tells neither (before, the failed request's message named
    the URL as given, password and all: review s22 V5, re-read s22 B8)."""
    keyf = tmp_path / "key"
    keyf.write_text("k" * 40)
    keyf.chmod(0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    rc, err = run_mount("--url", url, "--key-file", str(keyf), str(mnt),
                        "-f", "-o", "cache_dir=%s" % (tmp_path / "cache"))
    assert rc == 1, err
    assert "cannot mount 'http://127.0.0.1:1'" in err, err
    assert "%2F, %3F, %23 and %40" in err, err
    assert "Xk7" not in err and "Zq9user" not in err, err


def mount_source(mnt):
    """The source mount(8), df and findmnt show for mnt."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == str(mnt):
                return line.split(" - ")[1].split()[1]
    return None


def test_mount_table_names_the_server(server):
    """`mount`, `df` and `findmnt` show a remote mount's server as its
    source (sshfs shows user@host:, rclone remote:), so two mounts of
    two servers can be told apart; before, both were "speechfs"."""
    srv, keyf, tmp = server
    m = RemoteMount(srv.base, keyf.read_text().strip())
    try:
        assert mount_source(m.dir) == srv.base
    finally:
        m.stop()


class BasicAuthFront:
    """A reverse proxy on 127.0.0.1 in front of a speechfsd that wants
    HTTP basic auth (a user:password in the mount's URL) and passes each
    request on without it, noting the credentials it was given. With
    gateway, a speechfsd it cannot reach gets the mount nginx's answer (a
    502 with its own HTML page); else the connection is closed."""

    def __init__(self, backend, gateway=False):
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                front.seen.add(self.headers.get("Authorization"))
                n = int(self.headers.get("Content-Length") or 0)
                hdrs = {k: v for k, v in self.headers.items()
                        if k.lower() not in ("authorization", "host")}
                try:
                    r = requests.request(
                        self.command, backend + self.path, headers=hdrs,
                        timeout=60, data=self.rfile.read(n) if n else None,
                        allow_redirects=False)
                except requests.RequestException:
                    if not gateway:
                        raise
                    self.bad_gateway()
                    return
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "connection",
                                         "transfer-encoding",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(r.content)

            def bad_gateway(self):
                page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                self.send_response(502)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(page)

            do_GET = do_HEAD = do_POST = do_PUT = forward
            do_PATCH = do_DELETE = forward

        self.seen = set()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever,
                         daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_mount_table_shows_no_password_of_the_url(server):
    """A server behind a reverse proxy that wants basic auth is mounted
    with the user and password in its URL (libcurl sends them); the
    mount table, which every local user may read, shows the URL without
    them (review s20 U3: it showed the password)."""
    srv, keyf, tmp = server
    front = BasicAuthFront(srv.base)
    try:
        m = RemoteMount("http://ann:s3cret@127.0.0.1:%d" % front.port,
                        keyf.read_text().strip())
        try:
            assert mount_source(m.dir) == \
                "http://127.0.0.1:%d" % front.port
            assert front.seen == {"Basic YW5uOnMzY3JldA=="}, front.seen
        finally:
            m.stop()
    finally:
        front.close()


def test_no_line_tells_the_password_of_the_url(server):
    """The user:password of a URL (basic auth at a reverse proxy) is sent
    (percent-decoded, as libcurl takes it from a URL) and never told: not
    in the mount's lines (the block cache's at mount, "does not answer",
    an error's message naming a request's URL) nor in a failed mount's
    one line, which fstab mounts leave in the journal. Before, each of
    them showed it (the mount table did not, 1d8f20e)."""
    srv, keyf, tmp = server
    front = BasicAuthFront(srv.base)
    url = "http://Zq9user:Xk7%%40pass@127.0.0.1:%d" % front.port
    try:
        m = RemoteMount(url, keyf.read_text().strip())
        try:
            m.path("note.txt").write_bytes(b"via the proxy")
            assert front.seen == {"Basic " + base64.b64encode(
                b"Zq9user:Xk7@pass").decode()}, front.seen
            srv.kill()      # the proxy then answers nothing
            with pytest.raises(OSError):    # a create goes to the server
                m.path("lost.txt").write_bytes(b"no server")
            assert eventually(lambda: "does not answer" in m.output()), \
                m.output()
        finally:
            out = m.output()
            m.stop()
        assert "Xk7" not in out and "Zq9user" not in out, out
        assert "'http://127.0.0.1:%d'" % front.port in out, out
    finally:
        front.close()
    rc, err = run_mount("--url", url, "--key-file", str(keyf),
                        str(tmp / "mnt"), "-f")
    assert rc == 1 and "cannot mount 'http://127.0.0.1:" in err, err
    assert "Xk7" not in err and "Zq9user" not in err, err


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_a_key_every_user_may_read_is_warned_of(server, mode):
    """A key file any local user may read (0644, what a plain `echo KEY >
    FILE` makes) still mounts, with a warning that names it and says
    what to do (s3fs refuses such a file, ssh such a private key); one
    that only its group may read is not warned of. Before, nothing was
    said."""
    srv, keyf, tmp = server
    mnt = tmp / "mnt"
    keyf.chmod(mode)
    r = subprocess.run([str(SPEECHFS), "--url", srv.base, "--key-file",
                        str(keyf), "-o", f"cache_dir={tmp}/cache", str(mnt)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    unmount(mnt)
    warned = f"key file '{keyf}' is readable by every local user" in r.stderr
    assert warned == bool(mode & 0o004), r.stderr



def test_a_rotated_key_file_is_read_again(server, store):
    """Keys get rotated and a JWT from `speechfsd jwt` expires (an hour by
    default): the mount read its file once, so from then on every call
    failed with EACCES, silently, until a remount. Now a 401 makes it log
    one warning naming the file and read the file again: once the file
    holds a key the server takes (written in place, as a rotation job
    would), the calls go on. Here the mount's key is revoked with the
    admin CLI, a call fails, a new key is written: before, the mount
    never recovered."""
    srv, _, tmp = server
    d, _, users = store
    made = admin("key", "create", "--store", str(d), "--user", users[0])
    m = RemoteMount(srv.base, made["key"], cache_dir=tmp / "cache")
    try:
        m.path("before.txt").write_bytes(b"1")
        admin("key", "revoke", "--store", str(d), "--id", made["id"])
        with pytest.raises(PermissionError):
            m.path("refused.txt").write_bytes(b"2")
        assert eventually(lambda: "refuses the key" in m.output())
        assert str(m.keyf.resolve()) in m.output()
        new = tmp / "new.key"
        new.write_text(srv.key(users[0]) + "\n")
        new.chmod(0o600)
        new.rename(m.keyf)

        def goes_on():
            try:
                m.path("after.txt").write_bytes(b"3")
                return True
            except PermissionError:
                return False
        assert eventually(goes_on), m.output()
        assert "holds another, sent from now on" in m.output()
        sizes = {f["filename"]: f["size"] for f in requests.get(
            srv.base + "/api/v1/speech-services/files",
            headers={"X-API-Key": srv.key(users[0])},
            timeout=30).json()["files"]}
        # the refused file's bytes are not there; its name may be, made
        # empty by its release once the key was renewed (a new file the
        # server refused is sent again, empty, until it takes it)
        assert sizes["after.txt"] == 1 and sizes.get("refused.txt", 0) == 0, \
            sizes
    finally:
        m.stop()


@pytest.mark.parametrize("cred,scopes", [
    ("key", "read"), ("token", "read"), ("key", "read,write"),
    ("token", "read,share"), ("key", "read,write,delete")])
def test_a_read_only_key_mounts_read_only(server, store, cred, scopes):
    """A key (or JWT) without the write scope nor delete: the mount asks
    the server what its credentials may do (GET /users/me) and mounts
    read-only, saying so in one line, like a read-only NFS export: every
    change fails at once with EROFS and files show no write bits. Before,
    it mounted read-write and each new file failed only at close() with
    EACCES (written in full first), shown until the unmount; and so it
    still did for read with share (re-read s21 B6). A key that may write
    mounts read-write as before."""
    srv, _, tmp = server
    d, _, users = store
    old_file(srv, users[0])
    m = RemoteMount(srv.base, cred_of(d, users[0], cred, scopes),
                    cache_dir=tmp / "cache", token=cred == "token")
    try:
        ro = "write" not in scopes
        assert ("mounted read-only" in m.output()) == ro, m.output()
        assert m.path("old.bin").read_bytes() == b"RIFF old"
        assert bool(os.stat(m.path("old.bin")).st_mode & 0o222) != ro
        if not ro:
            m.path("new.bin").write_bytes(b"new")
            assert m.path("new.bin").read_bytes() == b"new"
            return
        for call in changes(m) + [lambda: os.unlink(m.path("old.bin"))]:
            with pytest.raises(OSError) as err:
                call()
            assert err.value.errno == errno.EROFS, err.value
        assert sorted(n for n in os.listdir(m.dir) if n[0] != ".") == \
            ["old.bin"]
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def old_file(srv, user):
    """A file "old.bin" (b"RIFF old") of user's on srv, made by the API."""
    r = requests.post(srv.base + "/api/v1/speech-services/files",
                      headers={"X-API-Key": srv.key(user)},
                      files={"file": ("old.bin", b"RIFF old")},
                      data={"name": "old", "path": "/"}, timeout=30)
    assert r.status_code == 201, r.text


def cred_of(d, user, cred, scopes):
    """A new API key (cred "key") or JWT ("token") of user's in store d
    with these scopes."""
    if cred == "key":
        return admin("key", "create", "--store", str(d), "--user", user,
                     "--scopes", scopes)["key"]
    return admin("jwt", "--store", str(d), "--user", user, "--scopes",
                 scopes, "--ttl", "600")["token"]


def changes(m):
    """Calls that change the mount m's tree or "old.bin", but unlink."""
    return [lambda: open(m.path("new.bin"), "wb"),
            lambda: open(m.path("old.bin"), "r+b"),
            lambda: os.truncate(m.path("old.bin"), 0),
            lambda: os.utime(m.path("old.bin"), (1, 1)),
            lambda: os.mkdir(m.path("dir")),
            lambda: os.rename(m.path("old.bin"), m.path("o.bin")),
            lambda: os.setxattr(m.path("old.bin"), "user.x", b"1")]


@pytest.mark.parametrize("cred,scopes", [
    ("key", "read,delete"), ("token", "read,delete,share")])
def test_a_key_that_may_delete_but_not_write_deletes(server, store, cred,
                                                     scopes):
    """A key (or JWT) with delete but not write (one made to clean up):
    the mount says so in one line and is not read-only: unlink deletes
    the file on the server (its delete scope), every other change fails
    at once with EACCES (not at close, after the file was written) and
    files show no write bits; a directory made through the API cannot be
    removed (the server wants write for that): EACCES. Before, it mounted
    read-only: unlink failed with EROFS (s21 re-read B6, 5f4a79c)."""
    srv, _, tmp = server
    d, _, users = store
    old_file(srv, users[0])
    r = requests.post(srv.base + "/api/v1/speech-services/directories",
                      headers={"X-API-Key": srv.key(users[0])},
                      json={"path": "/kept/"}, timeout=30)
    assert r.status_code in (200, 201), r.text
    # a file whose entry clashes with the directory's name: a listing
    # shows it with a suffix, which it does not try to keep (a PATCH the
    # server refuses without write: review s23 W1)
    r = requests.post(srv.base + "/api/v1/speech-services/files",
                      headers={"X-API-Key": srv.key(users[0])},
                      files={"file": ("kept", b"clash")},
                      data={"name": "kept", "path": "/"}, timeout=30)
    assert r.status_code == 201, r.text
    m = RemoteMount(srv.base, cred_of(d, users[0], cred, scopes),
                    cache_dir=tmp / "cache", token=cred == "token")
    try:
        for _ in range(2):
            assert len(os.listdir(m.dir)) >= 3
        said = [x for x in m.output().splitlines() if "lacks the scope"
                in x]
        assert len(said) == 1 and "may be deleted" in said[0], m.output()
        assert "read-only" not in m.output()
        assert not os.stat(m.path("old.bin")).st_mode & 0o222
        for call in changes(m) + [lambda: os.rmdir(m.path("kept"))]:
            with pytest.raises(OSError) as err:
                call()
            assert err.value.errno == errno.EACCES, err.value
        assert m.path("old.bin").read_bytes() == b"RIFF old"
        os.unlink(m.path("old.bin"))
        assert "old.bin" not in os.listdir(m.dir)
        assert "cannot keep the suffix" not in m.output()
        r = requests.get(srv.base + "/api/v1/speech-services/files",
                         headers={"X-API-Key": srv.key(users[0])},
                         params={"name": "old"}, timeout=30)
        assert r.json()["files"] == [], r.text
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_a_call_that_meets_a_renewed_key_goes_on(server, store):
    """The key file already holds a new key when a call meets the 401 of
    the old one (a rotation job replaced both at once): that call is sent
    again with the new key and succeeds. Before (b23c489) the file was
    read again but the call failed with EACCES all the same. Three
    rotations, three kinds of request: a new file's upload (its bytes
    from the stage's file), a mkdir (a JSON body), a lookup (a GET)."""
    srv, _, tmp = server
    d, _, users = store
    made = admin("key", "create", "--store", str(d), "--user", users[0])
    m = RemoteMount(srv.base, made["key"], cache_dir=tmp / "cache")

    def rotate():
        nonlocal made
        admin("key", "revoke", "--store", str(d), "--id", made["id"])
        made = admin("key", "create", "--store", str(d), "--user", users[0])
        new = tmp / "new.key"
        new.write_text(made["key"] + "\n")
        new.chmod(0o600)
        new.rename(m.keyf)
    try:
        m.path("before.txt").write_bytes(b"1")
        rotate()
        m.path("after.txt").write_bytes(b"2")
        rotate()
        os.mkdir(m.path("made"))
        rotate()
        with pytest.raises(FileNotFoundError):
            os.stat(m.path("made", "never.txt"))
        out = m.output()
        assert out.count("holds another, sent from now on") == 3, out
        assert "calls fail with EACCES" not in out, out
        got = requests.get(srv.base + "/api/v1/speech-services/files",
                           headers={"X-API-Key": made["key"]},
                           timeout=30).json()["files"]
        assert sorted(f["filename"] for f in got) == \
            ["after.txt", "before.txt"], got
    finally:
        print(m.output())       # shown when the test fails
        m.stop()


def test_commit_is_refused_with_url(tmp_path):
    """-o commit=MS batches a local store's commits; a remote mount has no
    batch (each change is one request, durable when the server answers),
    so with --url the option would change nothing and say nothing: it is
    refused in one line, exit status 2, before the server is asked (here
    nothing listens: before, the mount tried it and failed with exit 1)."""
    key = tmp_path / "key"
    key.write_text("sfs_" + "0" * 64 + "\n")
    key.chmod(0o600)
    mp = tmp_path / "mnt"
    mp.mkdir()
    rc, err = run_mount("--url", "http://127.0.0.1:1", "--key-file",
                        str(key), "-o", "commit=1000", str(mp), "-f")
    assert rc == 2, err
    assert "-o commit= is for a local store" in err, err
    assert len(err.splitlines()) == 1, err
    assert not is_mounted(mp)


def test_an_old_cache_named_with_the_password_goes(server):
    """Before b4cc7dd the default block cache of a URL with a
    user:password was named with them (~/.cache/speechfs/USER_PASS_HOST_
    PORT), where anyone who may list the directory reads the password.
    At mount, that URL's old directory becomes the cache when there is
    none yet (its blocks kept), else it is removed; one a mount still
    uses (its staging locked) is left; one line says which, without the
    password. Before, it stayed for ever."""
    srv, keyf, tmp = server
    front = BasicAuthFront(srv.base)
    mnt = tmp / "mnt"
    caches = tmp / "xdg" / "speechfs"
    old = caches / ("Zq9user_Xk7pass_127.0.0.1_%d" % front.port)
    new = caches / ("127.0.0.1_%d" % front.port)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "xdg"))

    def make_old():
        (old / "7" / "ab").mkdir(parents=True)
        (old / "7" / "ab" / "block").write_bytes(b"kept")
        for d in (old, old / "7", old / "7" / "ab"):
            d.chmod(0o700)

    def mount():
        r = subprocess.run(
            [str(SPEECHFS), "--url",
             "http://Zq9user:Xk7pass@127.0.0.1:%d" % front.port,
             "--key-file", str(keyf), str(mnt)],
            capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        unmount(mnt)
        assert "Xk7" not in r.stderr and "Zq9user" not in r.stderr, r.stderr
        return r.stderr

    try:
        make_old()
        err = mount()       # no cache yet: the old one becomes it
        assert "user:password is now '%s'" % new in err, err
        assert not old.exists()
        assert (new / "7" / "ab" / "block").read_bytes() == b"kept"
        make_old()
        err = mount()       # a cache already: the old one goes
        assert "user:password removed" in err, err
        assert not old.exists() and new.is_dir()
        make_old()          # a mount of an older speechfs still uses it
        (old / "staging" / "1-abc").mkdir(parents=True)
        with open(old / "staging" / "1-abc" / "lock", "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            err = mount()
        assert "is in use by a mount: left as it is" in err, err
        assert (old / "7" / "ab" / "block").exists()
    finally:
        front.close()
