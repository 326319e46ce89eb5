#!/usr/bin/env python3
"""A throwaway Ceph RADOS Gateway for tests: one monitor, one OSD on
memstore and one radosgw on 127.0.0.1, in a temporary directory, with an
S3 user made by radosgw-admin. pytest uses it through the fixtures of
tests/conftest.py; the C unit tests read where it is from the environment
(SFS_S3_ENDPOINT, SFS_S3_REGION, SFS_S3_ACCESS_KEY, SFS_S3_SECRET_KEY,
SFS_S3_BUCKET), which `python3 tests/rgw.py run -- COMMAND...` sets.

The daemons run in the foreground (-f) as children of this process, die
with it (PR_SET_PDEATHSIG), and are stopped by Gateway.stop(). A gateway
that cannot start raises GatewayError with the daemons' logs: a test that
needs it fails, it never skips.

A small S3 client (Signature Version 4 written here, independent of curl's)
makes buckets and checks what the code under test stored."""
import base64
import ctypes
import datetime
import hashlib
import hmac
import http.client
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

REGION = "us-east-1"
DAEMONS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin",
           "monmaptool", "osdmaptool")
S3NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
# Deadlines that only stop a hang: on a loaded machine (load 40, tests at
# nice 19) the start took more than 60 s and radosgw more than 20 s to
# stop on SIGTERM, and every test of the session failed with them.
STOP_SECONDS = 120


class GatewayError(Exception):
    """The gateway did not start or stopped badly; the message has its
    logs."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cephx_key():
    """A new cephx secret as a keyring holds it: type 1 (AES), creation
    time, length 16, 16 random bytes, in base64."""
    head = struct.pack("<HIIH", 1, int(time.time()), 0, 16)
    return base64.b64encode(head + os.urandom(16)).decode()


def _die_with_parent():
    """In the child before exec: SIGKILL when the test process dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---- Signature Version 4, for the tests' own requests ----

def _quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def _hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _signing_key(secret, date, region):
    k = _hmac(("AWS4" + secret).encode(), date)
    return _hmac(_hmac(_hmac(k, region), "s3"), "aws4_request")


def _canonical_query(query):
    return "&".join("%s=%s" % (_quote(k), _quote(v))
                    for k, v in sorted(query))


def sign(method, host, path, query, headers, payload_hash, access, secret,
         region=REGION, now=None):
    """Add x-amz-date, x-amz-content-sha256 and Authorization to `headers`
    (a dict with lower-case names) for a request of `path` (already
    URI-encoded) with `query` (a list of (name, value))."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amzdate = now.strftime("%Y%m%dT%H%M%SZ")
    date = amzdate[:8]
    headers["host"] = host
    headers["x-amz-date"] = amzdate
    headers["x-amz-content-sha256"] = payload_hash
    names = sorted(headers)
    canon = "\n".join([
        method, path, _canonical_query(query),
        "".join("%s:%s\n" % (n, " ".join(str(headers[n]).split()))
                for n in names),
        ";".join(names), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                     hashlib.sha256(canon.encode()).hexdigest()])
    sig = hmac.new(_signing_key(secret, date, region), sts.encode(),
                   hashlib.sha256).hexdigest()
    headers["authorization"] = (
        "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
        "Signature=%s" % (access, scope, ";".join(names), sig))
    return headers


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def error_code(self):
        """<Code> of an S3 error body, or ''."""
        try:
            code = ET.fromstring(self.body).find("Code")
        except ET.ParseError:
            return ""
        return code.text if code is not None else ""

    def __repr__(self):
        return "<S3 %d %r>" % (self.status, self.body[:300])


class S3:
    """A signed path-style S3 client on one persistent connection."""

    def __init__(self, host, port, access, secret, region=REGION):
        self.host, self.port = host, port
        self.access, self.secret, self.region = access, secret, region
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def request(self, method, path, query=(), body=b"", headers=None,
                signed=True, timeout=60):
        """One request; `path` is /bucket[/key] (not encoded)."""
        epath = _quote(path, safe="-_.~/")
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        if signed:
            sign(method, "%s:%d" % (self.host, self.port), epath,
                 list(query), hdrs, hashlib.sha256(body).hexdigest(),
                 self.access, self.secret, self.region)
        url = epath
        if query:
            url += "?" + _canonical_query(query)
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=timeout)
            try:
                self.conn.request(method, url, body=body, headers=hdrs)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.close()  # a kept-alive connection the server closed
                if attempt:
                    raise
        return Response(r.status, {k.lower(): v for k, v in
                                   r.getheaders()}, data)

    def ok(self, *args, **kw):
        r = self.request(*args, **kw)
        assert 200 <= r.status < 300, (args, r)
        return r

    def create_bucket(self, bucket):
        return self.ok("PUT", "/" + bucket)

    def put(self, bucket, key, data, headers=None):
        return self.ok("PUT", "/%s/%s" % (bucket, key), body=data,
                       headers=headers)

    def get(self, bucket, key, headers=None):
        return self.request("GET", "/%s/%s" % (bucket, key),
                            headers=headers)

    def delete(self, bucket, key):
        return self.ok("DELETE", "/%s/%s" % (bucket, key))

    def uploads(self, bucket):
        """Multipart uploads in progress: [(key, upload id)]."""
        r = self.ok("GET", "/" + bucket, query=[("uploads", "")])
        root = ET.fromstring(r.body)
        return [(u.findtext(S3NS + "Key"), u.findtext(S3NS + "UploadId"))
                for u in root.iter(S3NS + "Upload")]

    def drop_bucket(self, bucket):
        """Delete every object and unfinished upload, then the bucket."""
        for key in self.list(bucket):
            self.delete(bucket, key)
        for key, upload in self.uploads(bucket):
            self.ok("DELETE", "/%s/%s" % (bucket, key),
                    query=[("uploadId", upload)])
        self.ok("DELETE", "/" + bucket)

    def list(self, bucket, prefix=""):
        """Every key of a bucket under a prefix: {key: size}."""
        out, token = {}, None
        while True:
            q = [("list-type", "2"), ("prefix", prefix)]
            if token:
                q.append(("continuation-token", token))
            r = self.ok("GET", "/" + bucket, query=q)
            root = ET.fromstring(r.body)
            for c in root.iter(S3NS + "Contents"):
                out[c.find(S3NS + "Key").text] = \
                    int(c.find(S3NS + "Size").text)
            if root.findtext(S3NS + "IsTruncated") != "true":
                return out
            token = root.findtext(S3NS + "NextContinuationToken")


# ---- a way to the gateway that can be cut ----

class Proxy:
    """A TCP relay on 127.0.0.1 to the gateway, for fault tests: while
    cut(), new connections are refused and those open are closed (the
    store is unreachable); mend() lets them through again on the same
    port."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.conns = []
        self.sock = None
        self.stopping = False
        self.mend()

    def _listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        return s

    def _pump(self, a, b):
        try:
            while True:
                data = a.recv(1 << 16)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self, lsock):
        while True:
            try:
                c, _ = lsock.accept()
            except OSError:
                return  # cut or stopped
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b),
                                 daemon=True).start()

    def mend(self):
        with self.lock:
            if self.sock:
                return
            self.sock = self._listen()
            threading.Thread(target=self._accept, args=(self.sock,),
                             daemon=True).start()

    def cut(self):
        with self.lock:
            s, self.sock = self.sock, None
            conns, self.conns = self.conns, []
        if s:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    stop = cut


# ---- the cluster ----

CONF = """[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
keyring = {dir}/keyring
run dir = {dir}/run
admin socket = {dir}/run/$name.asok
pid file = {dir}/run/$name.pid
log file = {dir}/log/$name.log
mon data = {dir}/mon.$id
osd data = {dir}/osd.$id
osd objectstore = memstore
memstore device bytes = {device_bytes}
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# a quorum of one commits at once rather than after 1 s
paxos propose interval = 0.05
auth allow insecure global id reclaim = false
# a client whose first request finds no OSD up asks for the next map only
# on its tick (5 s by default)
objecter tick interval = 0.2
# the OSD stops without telling the monitor (on by default in 16.2): its
# "mark me down" made the monitor propose a new map just before stop()
# sent it SIGTERM, and ceph-mon 16.2.15 aborts when a commit finishes
# after its shutdown began (ceph_assert(mon.is_leader()) in
# Paxos::commit_proposal); the cluster is thrown away, nothing needs the map
osd fast shutdown notify mon = false

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {dir}/rgw
rgw dns name = localhost
# deleted objects are freed in seconds, not hours: memstore is RAM
rgw gc obj min wait = 2
rgw gc processor period = 5
rgw gc processor max time = 5
{extra}
"""

KEYRING = """[mon.]
\tkey = {mon}
\tcaps mon = "allow *"
[client.admin]
\tkey = {admin}
\tcaps mon = "allow *"
\tcaps osd = "allow *"
\tcaps mgr = "allow *"
[osd.0]
\tkey = {osd}
\tcaps mon = "allow profile osd"
\tcaps osd = "allow *"
\tcaps mgr = "allow profile osd"
[client.rgw.a]
\tkey = {rgw}
\tcaps mon = "allow rw"
\tcaps osd = "allow rwx"
"""


class Gateway:
    """A single-node Ceph cluster with a RADOS Gateway on loopback.

    `root` is a fresh directory (made if missing); `device_bytes` is the
    memstore's size (held in RAM, about twice over, as it fills);
    `extra_conf` lines go into the gateway's section."""

    def __init__(self, root=None, device_bytes=1 << 30, extra_conf="",
                 timeout=300):
        self.own_root = root is None
        self.root = pathlib.Path(root or tempfile.mkdtemp(prefix="sfs-rgw-"))
        self.device_bytes = device_bytes
        self.extra_conf = extra_conf
        self.timeout = timeout
        self.procs = {}
        self.access_key = "SFS" + uuid.uuid4().hex[:17].upper()
        self.secret_key = base64.b64encode(os.urandom(30)).decode()
        self.region = REGION
        self.host = "127.0.0.1"
        self.port = None
        self.start_seconds = None  # daemons started -> signed S3 answered
        self.setup_seconds = None  # mkfs of the monitor and the OSD
        self._buckets = 0

    @property
    def endpoint(self):
        return "http://%s:%d" % (self.host, self.port)

    # -- logs --

    def logs(self, lines=40):
        """The last lines of every daemon's log and output."""
        out = []
        logdir = self.root / "log"
        for f in sorted(logdir.glob("*")) if logdir.is_dir() else []:
            try:
                text = f.read_text(errors="replace").splitlines()
            except OSError:
                continue
            if text:
                out.append("---- %s\n%s" % (f.name,
                                            "\n".join(text[-lines:])))
        return "\n".join(out) or "(no logs in %s)" % logdir

    def _fail(self, what):
        raise GatewayError("ceph gateway in %s: %s\n%s"
                           % (self.root, what, self.logs()))

    # -- start --

    def _run(self, *argv, timeout=None):
        try:
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=timeout or self.timeout)
        except FileNotFoundError:
            self._fail("%s is not installed (packaging/install-deps.sh "
                       "installs ceph-mon, ceph-osd, radosgw and "
                       "ceph-common)" % argv[0])
        except subprocess.TimeoutExpired:
            self._fail("%s did not finish in %d s" % (
                " ".join(argv[:3]), timeout or self.timeout))
        if p.returncode:
            self._fail("%s exited %d:\n%s%s" % (" ".join(argv), p.returncode,
                                                p.stdout[-2000:],
                                                p.stderr[-2000:]))
        return p.stdout

    def _spawn(self, name, *argv):
        out = open(self.root / "log" / (name + ".out"), "wb")
        try:
            self.procs[name] = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        except FileNotFoundError:
            self._fail("%s is not installed" % argv[0])
        finally:
            out.close()

    def _check_alive(self):
        for name, p in self.procs.items():
            if p.poll() is not None:
                self._fail("%s exited %d while starting" % (name,
                                                           p.returncode))

    def _configure(self):
        for sub in ("run", "log", "mon.a", "osd.0", "rgw"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.fsid = str(uuid.uuid4())
        self.mon_port, self.port = free_port(), free_port()
        self.conf = self.root / "ceph.conf"
        self.conf.write_text(CONF.format(
            fsid=self.fsid, mon_port=self.mon_port, rgw_port=self.port,
            dir=self.root, device_bytes=self.device_bytes,
            extra=self.extra_conf))
        (self.root / "keyring").write_text(KEYRING.format(
            mon=cephx_key(), admin=cephx_key(), osd=cephx_key(),
            rgw=cephx_key()))
        os.chmod(self.root / "keyring", 0o600)

    def _mkfs(self):
        """The monitor's store, seeded with an OSD map that already has
        osd.0 (so no `ceph osd new` round trip), and the OSD's."""
        r, c = str(self.root), str(self.conf)
        self._run("monmaptool", "--create", "--clobber", "--fsid",
                  self.fsid, "--addv", "a",
                  "[v2:127.0.0.1:%d]" % self.mon_port, r + "/monmap")
        self._run("osdmaptool", "--createsimple", "1", "--clobber",
                  r + "/osdmap")
        self._run("ceph-mon", "-c", c, "-i", "a", "--mkfs", "--monmap",
                  r + "/monmap", "--osdmap", r + "/osdmap", "--keyring",
                  r + "/keyring")
        self._run("ceph-osd", "-c", c, "-i", "0", "--mkfs",
                  "--no-mon-config", "--osd-uuid", str(uuid.uuid4()))

    def _wait_s3(self, deadline):
        """Until the gateway answers HTTP (anonymously)."""
        while True:
            self._check_alive()
            try:
                c = http.client.HTTPConnection(self.host, self.port,
                                               timeout=2)
                c.request("GET", "/")
                c.getresponse().read()
                c.close()
                return
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > deadline:
                self._fail("S3 did not answer within %d s" % self.timeout)
            time.sleep(0.02)

    def start(self):
        """Make the cluster, start it and the user; raise GatewayError
        (with the logs) if it is not answering signed S3 requests within
        the timeout."""
        try:
            t0 = time.monotonic()
            self._configure()
            self._mkfs()
            t1 = time.monotonic()
            self.setup_seconds = t1 - t0
            c = str(self.conf)
            self._spawn("mon.a", "ceph-mon", "-f", "-c", c, "-i", "a")
            self._spawn("osd.0", "ceph-osd", "-f", "-c", c, "-i", "0")
            self._spawn("rgw.a", "radosgw", "-f", "-c", c, "-n",
                        "client.rgw.a")
            deadline = t1 + self.timeout
            # after the gateway has made its zone: run at the same time,
            # radosgw-admin and radosgw race to make it and one waits
            # seconds for the other
            self._wait_s3(deadline)
            self._run("radosgw-admin", "-c", c, "-n", "client.admin",
                      "user", "create", "--uid", "speechfs",
                      "--display-name", "speechfs tests", "--access-key",
                      self.access_key, "--secret-key", self.secret_key)
            s3 = self.client()
            while True:
                self._check_alive()
                r = s3.request("GET", "/")
                if r.status == 200:
                    break
                if time.monotonic() > deadline:
                    self._fail("a signed request is still refused: %r" % r)
                time.sleep(0.02)
            s3.close()
            self.start_seconds = time.monotonic() - t1
        except BaseException:
            self.stop(check=False)
            raise
        return self

    # -- use --

    def client(self):
        return S3(self.host, self.port, self.access_key, self.secret_key,
                  self.region)

    def make_bucket(self, prefix="sfs"):
        """A new, empty bucket with a name of its own."""
        self._buckets += 1
        name = "%s-%d-%s" % (prefix, self._buckets, uuid.uuid4().hex[:8])
        s3 = self.client()
        try:
            s3.create_bucket(name)
        finally:
            s3.close()
        return name

    def env(self, bucket=None):
        """The environment that tells a C test where the gateway is."""
        e = {"SFS_S3_ENDPOINT": self.endpoint,
             "SFS_S3_REGION": self.region,
             "SFS_S3_ACCESS_KEY": self.access_key,
             "SFS_S3_SECRET_KEY": self.secret_key}
        if bucket:
            e["SFS_S3_BUCKET"] = bucket
        return e

    def alive(self):
        return all(p.poll() is None for p in self.procs.values())

    # -- stop --

    def stop(self, check=True):
        """Stop the gateway, then the OSD, then the monitor (each waits
        seconds for the monitor if it is gone first; the OSD leaves the
        monitor nothing to commit, see CONF): SIGTERM, SIGKILL after
        STOP_SECONDS. With `check`, raise GatewayError if a daemon had
        died before (crashed) or did not exit cleanly."""
        bad = []
        for name, p in reversed(list(self.procs.items())):
            if p.poll() is not None:
                bad.append("%s had exited %d" % (name, p.returncode))
                continue
            p.send_signal(signal.SIGTERM)
            try:
                rc = p.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                bad.append("%s did not stop on SIGTERM" % name)
                continue
            if rc not in (0, -signal.SIGTERM):
                bad.append("%s exited %d at stop" % (name, rc))
        self.procs = {}
        if check and bad:
            self._fail("; ".join(bad))

    def remove(self):
        """Remove the gateway's directory (after stop)."""
        shutil.rmtree(self.root, ignore_errors=True)


def main(argv):
    """`rgw.py run [--keep] -- COMMAND...`: start a gateway and a bucket,
    run COMMAND with SFS_S3_* set, stop; exit with COMMAND's status.
    `rgw.py time`: start, print how long S3 took to answer, stop."""
    if len(argv) < 2 or argv[1] not in ("run", "time"):
        print(main.__doc__, file=sys.stderr)
        return 2
    keep = "--keep" in argv
    g = Gateway()
    try:
        g.start()
        print("rgw: %s answers signed S3 %.2f s after start (mkfs %.2f s)"
              % (g.endpoint, g.start_seconds, g.setup_seconds),
              file=sys.stderr)
        if argv[1] == "time":
            return 0
        cmd = argv[argv.index("--") + 1:] if "--" in argv else []
        if not cmd:
            print("rgw: no command after --", file=sys.stderr)
            return 2
        env = dict(os.environ, **g.env(g.make_bucket()))
        return subprocess.call(cmd, env=env)
    except GatewayError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        g.stop(check=False)
        if not keep and g.own_root:
            g.remove()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
