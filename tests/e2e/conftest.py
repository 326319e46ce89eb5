"""Fixtures of the REST end-to-end tests: a real speechfsd on a free
127.0.0.1 port with a fresh store made by the admin CLI (two users of one
tenant, one of another), waited for on /healthz, stopped with SIGTERM at
teardown, where it must exit 0.

The blob backend: a module that sets BLOB_BACKENDS = ["local", "s3"] runs
every test of it once per backend (the `blobs` fixture). For s3, each
store is pointed at a prefix of its own in a bucket of the run's Ceph
RADOS Gateway (tests/rgw.py) by `speechfsd blob migrate --to s3` right
after `init`, so every process that opens it (daemon, admin CLI, mount)
follows the store's record, with the credentials in AWS_* as a
deployment might give them.

The metadata backend: a module that sets META_BACKENDS = ["sqlite",
"pg"] runs every test of it once per backend too (the `meta` fixture).
For pg, each store is made by `init -c` with db.url, a database of the
run's PostgreSQL server (tests/pg.py) for the module and a schema of its
own per store; every process that opens the store follows STORE/db.url.

The mount kind: a mount module that sets MOUNT_KINDS = ["local",
"remote"] runs every test of it once per kind (the autouse `mount_kind`
fixture; fsutil.Mount says what a remote mount is). A test whose subject
a remote mount does not have (the local store's syncs, -o commit's
window) says so with @pytest.mark.mount_kinds("local")."""
import itertools
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest
import requests

import fsutil

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
API = "/api/v1/speech-services/files"

# Generous limits for the functional tests; limits have their own daemon.
BASE_CONFIG = {
    "http.rate_per_second": "1000",
    "http.rate_burst": "1000",
    "http.upload_rate_per_second": "1000",
    "http.upload_rate_burst": "1000",
    "http.max_upload_bytes": str(4 * 1024 * 1024),
    "http.auth_failures_burst": "100000",
}


class Blobs:
    """Where the stores of a test module keep their blobs."""

    serial = itertools.count(1)

    def __init__(self, kind, gateway=None, bucket=None, endpoint=None):
        self.kind = kind
        self.gateway = gateway
        self.bucket = bucket
        self.endpoint = endpoint or (gateway.endpoint if gateway else None)
        self.prefix = None

    def init(self, store):
        """Point a fresh store (after `init`) at its own prefix."""
        if self.kind != "s3":
            return
        self.prefix = "e2e/%d-%d/" % (os.getpid(), next(self.serial))
        p = subprocess.run(
            [str(SFSD), "blob", "migrate", "--to", "s3", "--store",
             str(store), "--endpoint", self.endpoint, "--bucket",
             self.bucket, "--prefix", self.prefix, "--json"],
            capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert json.loads(p.stdout)["switched"] is True

    def objects(self, store=None):
        """{key: size} of the bucket (for s3)."""
        s3 = self.gateway.client()
        try:
            return s3.list(self.bucket)
        finally:
            s3.close()


AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


@pytest.fixture(scope="module")
def blobs(request):
    """The blob backend of the module's stores (BLOB_BACKENDS)."""
    if request.param != "s3":
        yield Blobs("local")
        return
    gw = request.getfixturevalue("rgw_gateway")
    bucket = gw.make_bucket("e2e")
    saved = {k: os.environ.get(k) for k in AWS_KEYS}
    os.environ.update(AWS_ACCESS_KEY_ID=gw.access_key,
                      AWS_SECRET_ACCESS_KEY=gw.secret_key,
                      AWS_REGION=gw.region)
    try:
        yield Blobs("s3", gw, bucket)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        s3 = gw.client()
        try:
            s3.drop_bucket(bucket)
        finally:
            s3.close()


class Meta:
    """Where the stores of a test module keep their metadata: url None
    for SQLite (STORE/speechfs.db), else a PostgreSQL database."""

    serial = itertools.count(1)

    def __init__(self, kind, url=None):
        self.kind = kind
        self.url = url

    def init(self, store):
        """`init` a store (a schema of its own on PostgreSQL)."""
        if self.kind != "pg":
            admin(store, "init")
            return
        conf = store.parent / "init.conf"
        conf.write_text("store = %s\ndb.url = %s\ndb.schema = e2e_%d_%d\n"
                        % (store, self.url, os.getpid(), next(self.serial)))
        admin(store, "init", "-c", str(conf))
        assert (store / "db.url").exists()
        assert not (store / "speechfs.db").exists()


@pytest.fixture(scope="module")
def meta(request):
    """The metadata backend of the module's stores (META_BACKENDS)."""
    if request.param != "pg":
        yield Meta("sqlite")
        return
    server = request.getfixturevalue("pg_server")
    name = server.new_database()
    try:
        yield Meta("pg", server.url(name))
    finally:
        server.drop_database(name)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "mount_kinds(*kinds): the mount kinds of MOUNT_KINDS "
        "this test runs on (its subject is not the others')")


def tsan_reports():
    """The ThreadSanitizer reports written so far under `make tsan`
    (SFS_TSAN_LOGS: the directory of TSAN_OPTIONS' log_path), taken out
    of it; "" elsewhere."""
    logs = os.environ.get("SFS_TSAN_LOGS")
    if not logs:
        return ""
    text = ""
    for p in sorted(pathlib.Path(logs).glob("*")):
        text += "%s:\n%s\n" % (p.name, p.read_text(errors="replace"))
        p.unlink()
    return text


def fail_on_tsan_reports():
    """Fail (the test, or the fixture's teardown) on what a process of the
    test reported (the mount, a daemon, the admin CLI)."""
    text = tsan_reports()
    if text:
        pytest.fail("ThreadSanitizer reported:\n" + text[-30000:])


@pytest.fixture(autouse=True)
def no_tsan_report():
    """A ThreadSanitizer report made during a test fails it (mount_kind
    looks again once the servers of its mounts have stopped)."""
    yield
    fail_on_tsan_reports()


def pytest_sessionfinish(session, exitstatus):
    """A report written after the last test looked (a module's daemon
    stopped at the module's end) fails the run."""
    text = tsan_reports()
    if text:
        print("\nThreadSanitizer reported after the tests:\n" + text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def mount_kind(request):
    """"local" or "remote": the kind of every fsutil.Mount of the test
    (MOUNT_KINDS of the module; local where it has none). The servers of
    the remote mounts are stopped after the test, each must exit 0."""
    kind = getattr(request, "param", "local")
    fsutil.KIND["now"] = kind
    try:
        yield kind
    finally:
        fsutil.KIND["now"] = "local"
        fsutil.stop_servers()
        fail_on_tsan_reports()


def pytest_generate_tests(metafunc):
    """Each blob backend with SQLite; PostgreSQL with the last blob
    backend listed (s3 where the module has it: a store that no one
    machine holds). Each mount kind of MOUNT_KINDS: a remote mount with
    the first of those stores only (the server's blobs and database are
    not the mount's concern; the API suites cover them behind a daemon)."""
    names = [n for n in ("blobs", "meta") if n in metafunc.fixturenames]
    kinds = getattr(metafunc.module, "MOUNT_KINDS", None)
    only = metafunc.definition.get_closest_marker("mount_kinds")
    if kinds and only:
        kinds = [k for k in kinds if k in only.args]
    if "mount_kind" not in metafunc.fixturenames:
        kinds = None
    if not names:
        return      # no store, no mount: nothing remote to run
    blob_kinds = getattr(metafunc.module, "BLOB_BACKENDS", ["local"])
    meta_kinds = getattr(metafunc.module, "META_BACKENDS", ["sqlite"])
    combos = [(b, "sqlite") for b in blob_kinds]
    if "pg" in meta_kinds:
        combos.append((blob_kinds[-1], "pg"))
    if names == ["blobs"]:
        combos = [(b,) for b in blob_kinds]
    elif names == ["meta"]:
        combos = [(m,) for m in meta_kinds]
    ids = ["-".join(x for x in c if x != "sqlite") or c[0] for c in combos]
    if kinds:
        combos2 = [c + (k,) for k in kinds for c in combos
                   if k == "local" or c == combos[0]]
        ids = ["%s-%s" % ("-".join(x for x in c[:-1] if x != "sqlite")
                          or c[0], c[-1]) for c in combos2]
        metafunc.parametrize(names + ["mount_kind"], combos2,
                             indirect=True, scope="module", ids=ids)
        return
    if len(names) == 1:
        metafunc.parametrize(names[0], [c[0] for c in combos],
                             indirect=True, scope="module")
    else:
        metafunc.parametrize(names, combos, indirect=True, scope="module",
                             ids=ids)


def admin(store, *args):
    """Run an admin command with --json and return its parsed output."""
    cmd = [str(SFSD), *args, "--store", str(store), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"{cmd}: {p.stderr}"
    return json.loads(p.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """A base URL, users and their credentials, and request helpers."""

    def __init__(self, base, store):
        self.base = base
        self.api = base + API
        self.store = store
        self.users = {}
        self.tenants = {}
        self.keys = {}
        self.http = requests.Session()

    def admin(self, *args):
        return admin(self.store, *args)

    def quota_user(self, max_bytes, max_files):
        """A user "q" (its API key in keys) alone in a new tenant with
        these quotas; returns the tenant's id."""
        t = self.admin("tenant", "create", "--name", "small", "--max-bytes",
                       str(max_bytes), "--max-files", str(max_files))["id"]
        u = self.admin("user", "create", "--tenant", t, "--name", "q")["id"]
        self.keys["q"] = self.admin("key", "create", "--user", u)["key"]
        return t

    def hdr(self, who):
        if who is None:
            return {}
        if who.startswith("jwt:"):
            return {"Authorization": "Bearer " + who[4:]}
        return {"X-API-Key": self.keys[who]}

    def req(self, method, path, who="alice", headers=None, **kw):
        h = self.hdr(who)
        h.update(headers or {})
        if path.startswith("http"):
            url = path
        elif path.startswith("/api/") or path in ("/healthz", "/metrics"):
            url = self.base + path
        else:
            url = self.api + path
        kw.setdefault("timeout", 30)
        return self.http.request(method, url, headers=h, **kw)

    def get(self, path, who="alice", **kw):
        return self.req("GET", path, who, **kw)

    def post(self, path, who="alice", **kw):
        return self.req("POST", path, who, **kw)

    def patch(self, path, who="alice", **kw):
        return self.req("PATCH", path, who, **kw)

    def delete(self, path, who="alice", **kw):
        return self.req("DELETE", path, who, **kw)

    def upload(self, who="alice", data=b"hello world", name="rec",
               filename="rec.wav", listening="false", **parts):
        """POST a multipart upload; extra parts as keyword arguments."""
        fields = {"name": name}
        if listening is not None:
            fields["generateListeningAudio"] = listening
        fields.update(parts)
        return self.post("", who, files={"file": (filename, data)},
                         data=fields)

    def new_file(self, who="alice", data=b"hello world", **kw):
        r = self.upload(who, data, **kw)
        assert r.status_code == 201, r.text
        return r.json()

    @staticmethod
    def assert_error(r, status, error_type=None):
        """The one error body and X-Request-Id of every non-2xx response."""
        assert r.status_code == status, (r.status_code, r.text)
        rid = r.headers.get("X-Request-Id")
        assert rid and len(rid) == 36
        body = r.json()
        assert set(body) == {"status_code", "error_type", "message",
                             "validation_errors", "request_id"}, body
        assert body["status_code"] == status
        assert body["request_id"] == rid
        assert isinstance(body["message"], str) and body["message"]
        assert isinstance(body["validation_errors"], list)
        for v in body["validation_errors"]:
            assert set(v) == {"error_type", "location", "message"}
        if error_type:
            assert body["error_type"] == error_type, body
        return body


def make_store(root, blobs=None, meta=None):
    store = root / "store"
    if meta:
        meta.init(store)
    else:
        admin(store, "init")
    if blobs:
        blobs.init(store)
    ta = admin(store, "tenant", "create", "--name", "acme")["id"]
    tb = admin(store, "tenant", "create", "--name", "other")["id"]
    users = {
        "alice": admin(store, "user", "create", "--tenant", ta,
                       "--name", "alice")["id"],
        "bob": admin(store, "user", "create", "--tenant", ta,
                     "--name", "bob")["id"],
        "carol": admin(store, "user", "create", "--tenant", tb,
                       "--name", "carol")["id"],
        "slow": admin(store, "user", "create", "--tenant", ta,
                      "--name", "slow", "--download-bps", "65536")["id"],
    }
    keys = {n: admin(store, "key", "create", "--user", u)["key"]
            for n, u in users.items()}
    keys["alice_ro"] = admin(store, "key", "create", "--user",
                             users["alice"], "--scopes", "read")["key"]
    keys["alice_rw"] = admin(store, "key", "create", "--user",
                             users["alice"], "--scopes",
                             "read,write")["key"]
    return store, {"a": ta, "b": tb}, users, keys


class Daemon:
    def __init__(self, root, store, config=None, args=(), prefix=()):
        self.root = root
        self.store = store
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        cfg = dict(BASE_CONFIG)
        cfg.update(config or {})
        self.config = root / f"speechfsd-{self.port}.conf"
        self.config.write_text("".join(f"{k} = {v}\n"
                                       for k, v in cfg.items()))
        self.log = root / f"speechfsd-{self.port}.log"
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [*prefix, str(SFSD), "--store", str(store), "--listen",
             f"127.0.0.1:{self.port}", "--config", str(self.config),
             *args], stdout=self.logf, stderr=subprocess.STDOUT,
            **fsutil.STOPPABLE)
        deadline = time.time() + 15
        while True:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(self.base + "/healthz",
                                timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.time() < deadline, "speechfsd did not start"
            time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "timeout"
        self.logf.close()
        assert rc == 0, f"speechfsd exited {rc}:\n" + \
            self.log.read_text()[-3000:]


def start(tmp_path_factory, config=None, args=(), blobs=None, prefix=(),
          meta=None):
    """A store and a daemon on it; prefix: a command the daemon runs
    under (it must exec the daemon, so that signals reach it)."""
    root = tmp_path_factory.mktemp("sfsd")
    store, tenants, users, keys = make_store(root, blobs, meta)
    d = Daemon(root, store, config, args, prefix)
    c = Client(d.base, store)
    c.tenants, c.users, c.keys = tenants, users, keys
    c.daemon = d
    c.blobs = blobs
    c.meta = meta
    return d, c


@pytest.fixture(scope="module")
def sfsd(tmp_path_factory, blobs, meta):
    """A daemon per test module with generous limits; yields a Client."""
    d, c = start(tmp_path_factory, blobs=blobs, meta=meta)
    yield c
    c.http.close()
    d.stop()


@pytest.fixture
def sfsd_factory(tmp_path_factory, blobs, meta):
    """Start daemons with a given config; all stopped (exit 0) after."""
    started = []

    def make(config=None, args=()):
        d, c = start(tmp_path_factory, config, args, blobs, meta=meta)
        started.append((d, c))
        return c
    yield make
    for d, c in started:
        c.http.close()
        d.stop()
