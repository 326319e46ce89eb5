"""Several daemons on one store (issue 16's scaling out): the metadata in
one PostgreSQL database (tests/pg.py's server), the blobs in one bucket
of the run's RADOS Gateway, three speechfsd that each have a store
directory of their own -- as on three machines, sharing nothing but
STORE/db.url's record -- behind an nginx that sends requests round robin,
and two mounts on two more such directories.

What must hold: a change acknowledged by one daemon is read through it
and through the others at once (their answers are made afresh: no
answer cache on a store on PostgreSQL unless configured); concurrent
uploads, PATCHes, renames and deletes through different daemons all
land, each present once; two PATCHes of one file through two daemons
both land (the database serialises them: last writer wins per field);
what a mount writes, renames or deletes, the daemons and the other mount
see, and what goes through a daemon, the mounts show (woken by the
database's NOTIFY); each job runs once; a daemon killed in the middle of a job leaves it to
another, which completes it when the lease has run out."""
import concurrent.futures
import hashlib
import http.server
import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import AWS_KEYS, Blobs, Client, Daemon, Meta, free_port, \
    make_store
from fsutil import Mount, eventually, need_fuse, stop_all, xget
from test_api_listening import wav

LEASE_S = 5  # jobs.lease_seconds: how long a killed daemon's job waits

NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_max_body_size 16m;
    client_body_temp_path {work}/nginx-tmp/body;
    proxy_temp_path {work}/nginx-tmp/proxy;
    fastcgi_temp_path {work}/nginx-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-tmp/uwsgi;
    scgi_temp_path {work}/nginx-tmp/scgi;
    upstream speechfs {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://speechfs;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_next_upstream error;
        }}
    }}
}}
"""


def machine_dir(path, first):
    """A store directory for another machine: the record of where the
    metadata are (a copy of STORE/db.url, 0600), and its staging/."""
    path.mkdir(mode=0o700)  # (its parent exists)
    (path / "staging").mkdir(mode=0o700)
    (path / "blobs").mkdir()
    shutil.copy(first / "db.url", path / "db.url")
    os.chmod(path / "db.url", 0o600)
    return path


def start_nginx(work, ports):
    (work / "nginx-tmp").mkdir()
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(
        user=user, work=work, port=port,
        servers="".join("        server 127.0.0.1:%d;\n" % p
                        for p in ports)))
    proc = subprocess.Popen(["nginx", "-p", str(work), "-c", str(conf),
                             "-e", str(work / "nginx-error.log")],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    deadline = time.time() + 15
    while True:
        assert proc.poll() is None, \
            (work / "nginx-error.log").read_text()
        try:
            requests.get(base + "/healthz", timeout=1)
            return proc, base
        except (requests.ConnectionError, requests.Timeout):
            pass
        assert time.time() < deadline, "nginx did not start"
        time.sleep(0.05)


class Cluster:
    pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_server, rgw_gateway):
    gw = rgw_gateway
    bucket = gw.make_bucket("multi")
    saved = {k: os.environ.get(k) for k in AWS_KEYS}
    os.environ.update(AWS_ACCESS_KEY_ID=gw.access_key,
                      AWS_SECRET_ACCESS_KEY=gw.secret_key,
                      AWS_REGION=gw.region)
    db = pg_server.new_database()
    cl = Cluster()
    cl.daemons, cl.clients, cl.killed = [], [], set()
    nginx = None
    try:
        root = tmp_path_factory.mktemp("multi")
        for i in (1, 2, 3):
            (root / ("m%d" % i)).mkdir()
        store, tenants, users, keys = make_store(
            root / "m1", Blobs("s3", gw, bucket),
            Meta("pg", pg_server.url(db)))
        cl.store, cl.alice = store, users["alice"]
        cl.pg = lambda sql: pg_server.psql(
            db, "SET search_path = %s; %s" % (
                (store / "db.url").read_text().split(
                    "db.schema = ")[1].strip(), sql))
        dirs = [store] + [machine_dir(root / ("m%d" % i) / "store", store)
                          for i in (2, 3)]
        for d in dirs:
            cl.daemons.append(Daemon(
                d.parent, d, {"jobs.lease_seconds": str(LEASE_S),
                              "import.allow": "127.0.0.1"}))
        nginx, base = start_nginx(root, [d.port for d in cl.daemons])
        for d in cl.daemons + [None]:
            c = Client(d.base if d else base, store)
            c.tenants, c.users, c.keys = tenants, users, keys
            cl.clients.append(c)
        cl.lb = cl.clients.pop()
        yield cl
    finally:
        if nginx:
            nginx.terminate()
            nginx.wait(timeout=30)
        for c in cl.clients:
            c.http.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            for i, d in enumerate(cl.daemons):
                if i in cl.killed:
                    d.logf.close()
            stop_all(d for i, d in enumerate(cl.daemons)
                     if i not in cl.killed)
        finally:
            pg_server.drop_database(db)
            s3 = gw.client()
            try:
                s3.drop_bucket(bucket)
            finally:
                s3.close()


def live(cl):
    return [c for i, c in enumerate(cl.clients) if i not in cl.killed]


def read(c, fid):
    """File fid as daemon c answers it now. No waiting: a store on
    PostgreSQL keeps no answers in its daemons (http.response_cache's
    default there), so each answer is what the database holds."""
    r = c.get("/" + fid)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_change_through_one_is_seen_through_all_at_once(cluster):
    a, b, c = live(cluster)[:3]
    data = os.urandom(5000)
    f = a.new_file(data=data, name="shared", path="/one/")
    # a new file: no daemon has kept an answer about it
    for other in (b, c):
        g = other.get("/" + f["id"])
        assert g.status_code == 200, g.text
        assert g.json()["sha256"] == hashlib.sha256(data).hexdigest()
        assert other.get("/%s/content" % f["id"]).content == data
    for _ in range(3):
        r = b.patch("/" + f["id"], json={"name": "renamed", "path": "/two/"})
        assert r.status_code == 200, r.text
        # the daemon of the change: at once
        g = b.get("/" + f["id"]).json()
        assert (g["name"], g["path"]) == ("renamed", "/two/"), g
        for other in (a, c):
            g = read(other, f["id"])
            assert (g["name"], g["path"]) == ("renamed", "/two/"), g
        r = c.patch("/" + f["id"], json={"name": "back", "path": "/one/"})
        assert r.status_code == 200, r.text
        assert c.get("/" + f["id"]).json()["name"] == "back"
        for other in (a, b):
            g = read(other, f["id"])
            assert (g["name"], g["path"]) == ("back", "/one/"), g
    assert c.delete("/" + f["id"]).status_code == 204
    assert c.get("/" + f["id"]).json()["isDeleted"] is True
    for other in (a, b):
        assert read(other, f["id"])["isDeleted"]
        assert f["id"] not in [g["id"] for g in listed(other, "/one/")]


def listed(client, path):
    """Every file under path (recursive), page by page."""
    out, page = [], 0
    while True:
        j = client.get("?path=%s&recursive=true&size=100&page=%d&sort="
                       "name,asc" % (path, page)).json()
        out += j["files"]
        if len(j["files"]) < 100:
            return out
        page += 1


def test_concurrent_changes_through_the_balancer_land_once(cluster):
    lb = cluster.lb
    top = "/c%s/" % uuid.uuid4().hex[:8]
    acked, deleted, renamed = {}, set(), {}
    mu = threading.Lock()

    def worker(w):
        rnd = random.Random(w)
        mine = []
        for i in range(12):
            f = lb.new_file(data=os.urandom(300 + i), name="w%d-%d" % (w, i),
                            path=top + "w%d/" % w)
            with mu:
                acked[f["id"]] = f["name"]
            mine.append(f["id"])
            op = rnd.choice(("rename", "move", "delete", "keep"))
            fid = rnd.choice(mine)
            if op == "rename":
                r = lb.patch("/" + fid, json={"name": "r%d-%d" % (w, i)})
                assert r.status_code == 200, r.text
                with mu:
                    renamed[fid] = ("r%d-%d" % (w, i), None)
            elif op == "move":
                r = lb.patch("/" + fid, json={"path": top + "moved/"})
                assert r.status_code == 200, r.text
                with mu:
                    renamed[fid] = (renamed.get(fid, (None,))[0],
                                    top + "moved/")
            elif op == "delete":
                assert lb.delete("/" + fid).status_code == 204
                mine.remove(fid)
                with mu:
                    deleted.add(fid)
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        for fut in [ex.submit(worker, w) for w in range(6)]:
            fut.result()
    want = set(acked) - deleted
    for c in live(cluster):
        files = listed(c, top)
        ids = [f["id"] for f in files]
        assert len(ids) == len(set(ids)), "a file listed twice"
        assert set(ids) == want
        by_id = {f["id"]: f for f in files}
        for fid, (name, path) in renamed.items():
            if fid in deleted:
                continue
            if name:
                assert by_id[fid]["name"] == name
            if path:
                assert by_id[fid]["path"] == path


def test_two_patches_of_one_file_through_two_daemons_both_land(cluster):
    a, b = live(cluster)[:2]
    f = a.new_file(name="both")
    start = threading.Barrier(2)

    def patch(c, body):
        start.wait()
        return c.patch("/" + f["id"], json=body)
    for rnd in range(10):
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            r1 = ex.submit(patch, a, {"name": "n%d" % rnd})
            r2 = ex.submit(patch, b, {"tags": ["t%d" % rnd]})
            assert r1.result().status_code == 200, r1.result().text
            assert r2.result().status_code == 200, r2.result().text
        for c in (a, b):
            g = read(c, f["id"])
            assert g["name"] == "n%d" % rnd and g["tags"] == ["t%d" % rnd]


CHANGES = "/api/v1/speech-services/changes"


def test_a_long_poll_on_one_daemon_wakes_on_a_change_through_another(
        cluster):
    a, b = live(cluster)[:2]
    r = b.get(CHANGES)
    assert r.status_code == 200, r.text
    cur = r.json()["cursor"]

    def poll():
        return b.get(CHANGES, params={"cursor": cur, "timeout": "100"},
                     timeout=150)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(poll)
        # the poll waits on b (its gauge), then a change lands through a
        deadline = time.time() + 20
        while "speechfs_http_changes_waiting 1" not in b.get(
                "/metrics", who=None).text:
            assert time.time() < deadline, "no poll waits"
            time.sleep(0.02)
        f = a.new_file(name="fed", path="/feed/")
        # well before the poll's 100 s (30 s: a deadline for a broken
        # wake-up, not a speed target)
        r = fut.result(timeout=30)
    assert r.status_code == 200, r.text
    got = {x["fileId"] for x in r.json()["changes"] if x["type"] == "file"}
    assert f["id"] in got


def test_two_mounts_and_the_daemons_see_each_others_changes(
        cluster, tmp_path_factory):
    """Two mounts of alice's, each on a store directory of its own (two
    more machines), with the three daemons: every change through one is
    seen through all the others."""
    need_fuse()
    root = tmp_path_factory.mktemp("mounts")
    daemons = live(cluster)
    top = "/m%s/" % uuid.uuid4().hex[:8]
    mounts = []
    try:
        for i in (1, 2):
            (root / ("m%d" % i)).mkdir()
            mounts.append(Mount(machine_dir(root / ("m%d" % i) / "store",
                                            cluster.store), cluster.alice))
        m1, m2 = mounts

        def shown(m, name, data):
            p = m.path(top.strip("/"), name)
            return lambda: p.exists() and p.read_bytes() == data

        # a daemon's upload: both mounts show it
        d1 = os.urandom(3000)
        f = daemons[0].new_file(data=d1, name="fromapi", path=top)
        for m in mounts:
            assert eventually(shown(m, "fromapi.wav", d1)), os.listdir(m.dir)
        # a mount's new file: every daemon has it at close, the other
        # mount shows it
        d2 = os.urandom(5000)
        m1.path(top.strip("/"), "frommount.txt").write_bytes(d2)
        mid = xget(m1.path(top.strip("/"), "frommount.txt"),
                   "user.speechfs.id")
        for c in daemons:
            g = c.get("/" + mid).json()
            assert (g["name"], g["path"]) == ("frommount", top), g
            assert c.get("/%s/content" % mid).content == d2
        assert eventually(shown(m2, "frommount.txt", d2))
        # the other mount renames it: the daemons and the first mount
        os.rename(m2.path(top.strip("/"), "frommount.txt"),
                  m2.path(top.strip("/"), "renamed.txt"))
        for c in daemons:
            assert read(c, mid)[
                "name"] == "renamed"
        assert eventually(lambda: sorted(os.listdir(m1.path(
            top.strip("/")))) == ["fromapi.wav", "renamed.txt"])
        # a daemon renames and tags, another deletes: the mounts follow
        r = daemons[-1].patch("/" + f["id"], json={"name": "patched",
                                                   "tags": ["x"]})
        assert r.status_code == 200, r.text
        assert daemons[1].delete("/" + mid).status_code == 204
        for m in mounts:
            assert eventually(lambda: sorted(os.listdir(m.path(
                top.strip("/")))) == ["patched.wav"]), os.listdir(
                m.path(top.strip("/")))
            assert xget(m.path(top.strip("/"), "patched.wav"),
                        "user.speechfs.tags") == "x"
            assert "renamed.txt" in os.listdir(m.path(".trash"))
        # both mounts and the balancer write at once, into one directory
        conc = top + "conc/"
        os.mkdir(m1.path(conc.strip("/")))
        want = set()

        def write(m, k):
            for i in range(8):
                m.path(conc.strip("/"), "m%d-%d.txt" % (k, i)).write_bytes(
                    b"%d" % i)

        def upload():
            for i in range(8):
                cluster.lb.new_file(data=b"u", name="u-%d" % i, path=conc)
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            for fut in [ex.submit(write, m1, 1), ex.submit(write, m2, 2),
                        ex.submit(upload)]:
                fut.result()
        want = {"m%d-%d" % (k, i) for k in (1, 2) for i in range(8)} | \
            {"u-%d" % i for i in range(8)}
        for c in daemons:
            names = [g["name"] for g in listed(c, conc)]
            assert len(names) == len(want) and set(names) == want, names
        for m in mounts:
            assert eventually(lambda: {n.rsplit(".", 1)[0] for n in
                                       os.listdir(m.path(conc.strip("/")))}
                              == want)
            assert len(os.listdir(m.path(conc.strip("/")))) == len(want)
    finally:
        stop_all(mounts)


def test_rate_limits_are_per_daemon(cluster, tmp_path_factory):
    """A user's request budget is kept by each daemon (README, Scaling
    out: a shared budget would cost a database write per request): two
    daemons with a burst of 4 and next to no refill each take 4 requests
    of bob's and refuse the fifth, whatever the other took."""
    root = tmp_path_factory.mktemp("limits")
    cfg = {"http.rate_per_second": "0.01", "http.rate_burst": "4"}
    ds = []
    try:
        for i in (1, 2):
            (root / ("l%d" % i)).mkdir()
            ds.append(Daemon(root / ("l%d" % i), machine_dir(
                root / ("l%d" % i) / "store", cluster.store), cfg))
        for d in ds:
            c = Client(d.base, cluster.store)
            c.keys = cluster.lb.keys
            codes = [c.get("?size=1", who="bob").status_code
                     for _ in range(5)]
            c.http.close()
            assert codes == [200] * 4 + [429], codes
    finally:
        stop_all(ds)


def wait_for(c, fid, pred, seconds=120):
    deadline = time.time() + seconds
    while True:
        f = c.get("/" + fid).json()
        if pred(f) or time.time() > deadline:
            return f
        time.sleep(0.2)


def test_each_job_runs_once(cluster):
    lb = cluster.lb
    made = [lb.new_file(data=wav(0.5 + i / 10), name="job-%d" % i,
                        listening="true")["id"] for i in range(9)]
    for fid in made:
        f = wait_for(lb, fid, lambda f: f["listeningAudio"]["status"]
                     in ("COMPLETED", "FAILED"))
        assert f["listeningAudio"]["status"] == "COMPLETED", f
    rows = cluster.pg(
        "SELECT j.attempts, j.state FROM job j JOIN file f"
        " ON f.id = j.file_id WHERE f.uuid IN (%s)"
        % ",".join("'%s'" % fid for fid in made)).split()
    # one job per file, claimed once
    assert len(rows) == len(made), rows
    assert all(r.split("|")[0] == "1" for r in rows), rows


def sockets_of(pid):
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    return inodes


def process_of_port(port, daemons):
    """Which daemon has the TCP socket of local port `port`."""
    with open("/proc/net/tcp") as f:
        next(f)
        inodes = [ln.split()[9] for ln in f
                  if int(ln.split()[1].split(":")[1], 16) == port]
    for i, d in enumerate(daemons):
        if d.proc.poll() is None and set(inodes) & sockets_of(d.proc.pid):
            return i
    return None


def test_a_killed_daemons_job_is_completed_by_another(cluster):
    body = wav(2.0)
    half = threading.Event()
    release = threading.Event()
    seen, fetcher = [], []

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.client_address[1])
            # which daemon asks (while its socket is open)
            fetcher.append(process_of_port(self.client_address[1],
                                           cluster.daemons))
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                if len(seen) == 1:
                    # the first fetch stalls half way: its daemon dies
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    half.set()
                    release.wait(60)
                    return
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        lb = cluster.lb
        r = lb.post("", json={"uri": "http://127.0.0.1:%d/s.wav"
                              % srv.server_address[1], "name": "taken"})
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        assert half.wait(60), "no daemon fetched"
        victim = fetcher[0]
        assert victim is not None
        cluster.daemons[victim].proc.send_signal(signal.SIGKILL)
        cluster.daemons[victim].proc.wait(timeout=30)
        cluster.killed.add(victim)
        release.set()
        # another daemon takes the job when its lease has run out
        f = wait_for(lb, fid, lambda f: f["ingestionStatus"] in
                     ("COMPLETED", "FAILED"), seconds=120)
        assert f["ingestionStatus"] == "COMPLETED", f
        assert f["sha256"] == hashlib.sha256(body).hexdigest()
        for c in live(cluster):
            assert c.get("/%s/content" % fid).content == body
        assert len(seen) == 2
        assert fetcher[1] is not None and fetcher[1] != victim
        # the import job (kind 2) was claimed twice: by the killed
        # daemon, then by the one that completed it
        rows = cluster.pg("SELECT j.attempts FROM job j JOIN file f ON"
                          " f.id = j.file_id WHERE f.uuid = '%s'"
                          " AND j.kind = 2" % fid).split()
        assert rows == ["2"], rows
    finally:
        release.set()
        srv.shutdown()
        srv.server_close()
