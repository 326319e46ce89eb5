#!/usr/bin/env python3
"""REST daemon benchmark: a real speechfsd and an nginx serving the same
bytes as static files, side by side in one run, as ratios.

1. wrk on GET /files/{id} and on a 20-item directory listing vs nginx
   serving the same JSON bytes from a file (best of SFS_BENCH_HTTP_ROUNDS,
   default 2, alternating: the machine is shared); targets 0.6 and 0.45.
   wrk repeats one request, and a repeated request is what the daemon's
   answer cache (httpd/respcache.c) is for, so the targets are measured
   with http.response_cache = 0: every answer is made afresh (routing,
   credentials, rate limit, query, JSON). One more round with a second
   daemon on the same store and the cache on shows what a repeat costs;
   then a bounded load under the default rate limits, where every answer
   must be a 200 (404 for a missing id) or a 429;
2. a 1 GiB multipart upload (curl -F) vs `openssl dgst -sha256` of the
   same file, and the daemon's peak RSS during the upload;
3. an unthrottled 1 GiB download vs nginx serving the same file;
4. slowloris (issue 13): a good client's GET /files/{id}, each on a new
   connection, from an address of its own and from behind each attacking
   one, while SFS_BENCH_HTTP_LORIS (default 1,000) connections from 16
   loopback addresses (127.0.0.2-17) hold request heads open, beside the
   same requests to the same daemon with none (the baseline, just before):
   median and slowest, and the ratios; target: every request served
   within a second. The daemon runs with the default connection limits
   (512 in all, 64 per address, a 10 s head deadline); the attack runs in
   a process of its own, so the client's times are the daemon's.

Workers: each server runs its own best default. nginx gets
`worker_processes auto` (one event-driven worker per CPU; more only adds
switches: 4 workers on 2 CPUs served ~30% fewer requests). speechfsd keeps
its default pool of 4 threads (http.threads): its handlers block in SQLite
(WAL read locks, the shared-memory mutex), so with one thread per CPU it
served ~40% fewer requests. SFS_BENCH_HTTP_THREADS and
SFS_BENCH_HTTP_WORKERS override them. SFS_BENCH_HTTP_MB scales the big
file down (default 1024); SFS_BENCH_HTTP_SECS sets wrk's duration
(default 10); SFS_BENCH_HTTP_ONLY=requests runs part 1 alone,
SFS_BENCH_HTTP_ONLY=slowloris part 4 alone. Beside the rates, the daemon's CPU time per request is
shown: on a shared machine it moves far less than req/s do. Everything
(daemons, temp dirs) is cleaned up even on failure. Exits non-zero when the benchmark could not run; a missed target
is reported, not an error.
"""
import json
import multiprocessing
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
import edgeutil  # noqa: E402  (the slowloris attack, raw requests)

BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
API = "/api/v1/speech-services/files"
NLIST = 20
CHUNK = 1 << 20


class BenchError(Exception):
    pass


def log(msg):
    print("bench_httpd: " + msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def admin(store, *args):
    cmd = [str(SFSD), *args, "--store", str(store), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise BenchError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return json.loads(p.stdout)


def wait_http(url, proc, logpath, what):
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            raise BenchError("%s exited %s:\n%s" % (
                what, proc.returncode, tail(logpath)))
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise BenchError("%s did not start" % what)
        time.sleep(0.05)


def tail(path, n=3000):
    try:
        return pathlib.Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop(proc, sig=signal.SIGTERM):
    """Stop a child we started: a signal, then SIGKILL after 20 s."""
    if proc is None or proc.poll() is not None:
        return None
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def make_big(path, mb):
    """mb MiB of incompressible bytes (the store does not compress, but
    a repeated block would flatter nothing here either way)."""
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(CHUNK))


def start_sfsd(work, threads, store_key=None, extra=None):
    """A daemon on a new store (or on store_key's (store, key)), with
    generous limits and the extra configuration."""
    if store_key:
        store, key = store_key
    else:
        store = work / "store"
        admin(store, "init")
        tenant = admin(store, "tenant", "create", "--name", "bench")["id"]
        user = admin(store, "user", "create", "--tenant", tenant, "--name",
                     "bench", "--download-bps", "0")["id"]
        key = admin(store, "key", "create", "--user", user, "--scopes",
                    "read,write,delete,share")["key"]
    port = free_port()
    cfg = {
        "http.rate_per_second": "1000000",
        "http.rate_burst": "1000000",
        "http.upload_rate_per_second": "1000000",
        "http.upload_rate_burst": "1000000",
        "http.max_upload_bytes": str(4 << 30),
        "http.connection_limit": "4096",
        "http.per_ip_connection_limit": "4096",
    }
    if threads:
        cfg["http.threads"] = threads
    cfg.update(extra or {})
    # None in extra: the daemon's default
    cfg = {k: v for k, v in cfg.items() if v is not None}
    conf = work / ("speechfsd-%d.conf" % port)
    conf.write_text("".join("%s = %s\n" % kv for kv in cfg.items()))
    logpath = work / ("speechfsd-%d.log" % port)
    with open(logpath, "wb") as logf:
        proc = subprocess.Popen(
            [str(SFSD), "--store", str(store), "--listen",
             "127.0.0.1:%d" % port, "--config", str(conf),
             "--log-level", "warn"],
            stdout=logf, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    return proc, base, key, logpath, store


NGINX_CONF = """\
{user}
worker_processes {workers};
daemon off;
master_process on;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type application/octet-stream;
    types {{ application/json json; }}
    client_body_temp_path {work}/nginx-tmp/body;
    proxy_temp_path {work}/nginx-tmp/proxy;
    fastcgi_temp_path {work}/nginx-tmp/fastcgi;
    uwsgi_temp_path {work}/nginx-tmp/uwsgi;
    scgi_temp_path {work}/nginx-tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"""


def start_nginx(work, www, workers):
    port = free_port()
    (work / "nginx-tmp").mkdir()
    user = ""
    if os.geteuid() == 0:
        # workers would drop to nobody, who cannot enter the 0700 temp dir
        user = "user %s;" % pwd.getpwuid(0).pw_name
    conf = work / "nginx.conf"
    conf.write_text(NGINX_CONF.format(user=user, workers=workers, work=work,
                                      port=port, www=www))
    logpath = work / "nginx-error.log"
    proc = subprocess.Popen(
        ["nginx", "-p", str(work), "-c", str(conf), "-e", str(logpath)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    wait_http(base + "/healthz", proc, logpath, "nginx")
    return proc, base


def cpu_ticks(pid):
    """User + system clock ticks a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def tree_ticks(pid):
    """cpu_ticks of a process and its children (nginx's workers)."""
    total = cpu_ticks(pid)
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        kids = []
    for k in kids:
        try:
            total += cpu_ticks(k)
        except OSError:
            pass
    return total


def wrk(url, secs, key=None, pid=None):
    """Requests per second of wrk -t2 -c64; every answer must be 2xx.
    With pid: also the CPU microseconds per request of that process and
    its children, which a busy shared machine disturbs much less than the
    rate."""
    cmd = ["wrk", "-t2", "-c64", "-d%ds" % secs]
    if key:
        cmd += ["-H", "X-API-Key: " + key]
    cmd.append(url)
    t0 = tree_ticks(pid) if pid else 0
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=secs + 60)
    t1 = tree_ticks(pid) if pid else 0
    if p.returncode != 0:
        raise BenchError("wrk failed: %s" % p.stderr.strip())
    out = p.stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not m:
        raise BenchError("wrk printed no rate:\n" + out)
    for bad in ("Non-2xx or 3xx responses", "Socket errors"):
        if bad in out:
            raise BenchError("wrk on %s: %s" % (url, out))
    if not pid:
        return float(m.group(1))
    n = re.search(r"(\d+) requests in", out)
    us = (t1 - t0) * 1e6 / os.sysconf("SC_CLK_TCK") / max(int(n.group(1)), 1)
    return float(m.group(1)), us


def timed(cmd):
    """Run cmd; its stdout and the wall time in seconds."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError("%s: exit %d: %s" % (cmd[0], p.returncode,
                                              p.stderr.strip()))
    return p.stdout, secs


def proc_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def download(url, size, key=None):
    """Seconds to fetch url to /dev/null with curl; checks status + size."""
    cmd = ["curl", "-s", "-o", "/dev/null", "-w",
           "%{http_code} %{size_download}"]
    if key:
        cmd += ["-H", "X-API-Key: " + key]
    out, secs = timed(cmd + [url])
    code, got = out.split()
    if code != "200" or int(got) != size:
        raise BenchError("download %s: HTTP %s, %s of %d bytes" % (
            url, code, got, size))
    return secs


def mark(ok):
    return "ok" if ok else "MISSED"


WRK_STATUS_LUA = """
statuses = {}
threads = {}
function setup(thread)
    table.insert(threads, thread)
end
function init(args)
    counts = {}
end
function response(status, headers, body)
    counts[status] = (counts[status] or 0) + 1
end
function done(summary, latency, requests)
    local all = {}
    for _, t in ipairs(threads) do
        local c = t:get("counts")
        for k, v in pairs(c) do all[k] = (all[k] or 0) + v end
    end
    for k, v in pairs(all) do io.write(string.format("status %d %d\\n", k, v)) end
end
"""


def load_run(work, store, key, ids, secs, threads, rows):
    """A bounded load under the default limits (50 requests a second per
    user, bursts of 100): wrk on a file, a listing and a missing id from
    one user. Every answer must be 200, 404 for the missing id, or 429
    -- nothing else, no socket errors."""
    script = work / "status.lua"
    script.write_text(WRK_STATUS_LUA)
    d, base, _, dlog, _ = start_sfsd(work, threads, (store, key), {
        "http.rate_per_second": "50", "http.rate_burst": "100"})
    try:
        wait_http(base + "/healthz", d, dlog, "speechfsd (default limits)")
        api = base + API
        got = {}
        for url in ("%s/%s" % (api, ids[1]), api + "?path=/bench/",
                    "%s/%s" % (api, "00000000-0000-4000-8000-000000000000")):
            p = subprocess.run(
                ["wrk", "-t2", "-c16", "-d%ds" % secs, "-s", str(script),
                 "-H", "X-API-Key: " + key, url],
                capture_output=True, text=True, timeout=secs + 60)
            if p.returncode != 0 or "Socket errors" in p.stdout:
                raise BenchError("wrk (load): %s %s" % (p.stdout, p.stderr))
            for code, n in re.findall(r"status (\d+) (\d+)", p.stdout):
                got[int(code)] = got.get(int(code), 0) + int(n)
    finally:
        stop(d)
    bad = {k: v for k, v in got.items() if k not in (200, 404, 429)}
    rows.append(("load, default limits (3 x %d s)" % secs,
                 " ".join("%d:%d" % kv for kv in sorted(got.items())),
                 "-", None, not bad and got.get(429, 0) > 0 and
                 got.get(200, 0) > 0,
                 "only 200, 404 and 429"))


LORIS_SOURCES = ["127.0.0.%d" % i for i in range(2, 18)]


def loris_attack(base, n, live, closed, done):
    """The attack, in a process of its own: n slow heads held until done;
    live and closed report its connections open and cut so far."""
    attack = edgeutil.Slowloris(base, n, LORIS_SOURCES)
    attack.thread.start()
    while not done.wait(0.05):
        live.value, closed.value = attack.live, attack.closed
    attack.stop.set()
    attack.thread.join(10)


def good_gets(base, url, key, rounds):
    """Seconds each GET of a good client took, a new connection each:
    12 from 127.0.0.1, then one from each attacking address, `rounds`
    times; every answer must be a 200."""
    who = ["127.0.0.1"] * 12 + LORIS_SOURCES
    took = []
    for _ in range(rounds):
        for src in who:
            t0 = time.monotonic()
            r = edgeutil.get(base, url, [("X-API-Key", key)], source=src,
                             timeout=30)
            took.append(time.monotonic() - t0)
            if r.status != 200:
                raise BenchError("good client from %s: HTTP %d %r" % (
                    src, r.status, r.body[:200]))
            time.sleep(0.2)
    return took


def slowloris_run(work, store, key, file_id, threads, n, rows):
    """Part 4: the good client's GETs without and with n slow heads held,
    one daemon with the default connection limits."""
    d, base, _, dlog, _ = start_sfsd(work, threads, (store, key), {
        "http.rate_per_second": "1000", "http.rate_burst": "1000",
        "http.connection_limit": None,
        "http.per_ip_connection_limit": None})
    ctx = multiprocessing.get_context("fork")
    live, closed = ctx.Value("i", 0), ctx.Value("i", 0)
    done = ctx.Event()
    attacker = None
    url = "%s/%s" % (API, file_id)
    try:
        wait_http(base + "/healthz", d, dlog, "speechfsd (slowloris)")
        edgeutil.get(base, url, [("X-API-Key", key)])  # warm
        alone = good_gets(base, url, key, 2)
        attacker = ctx.Process(target=loris_attack,
                               args=(base, n, live, closed, done))
        attacker.start()
        deadline = time.monotonic() + 60
        while live.value < n * 9 // 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        if live.value < n * 9 // 10:
            raise BenchError("the attack holds only %d of %d connections"
                             % (live.value, n))
        held = live.value
        attacked = good_gets(base, url, key, 2)
        if closed.value == 0:
            raise BenchError("no connection of the attack was cut")
        cut = closed.value
    finally:
        done.set()
        if attacker is not None:
            attacker.join(30)
            if attacker.is_alive():
                attacker.kill()
                attacker.join()
        rc = stop(d)
        if rc not in (0, None):
            log("speechfsd (slowloris) exited %s:\n%s" % (rc, tail(dlog)))
    med_a, med_b = median(attacked), median(alone)
    rows.append(("GET, %d slowloris conns" % n, "%.1f ms" % (med_a * 1e3),
                 "%.1f ms" % (med_b * 1e3), med_a / med_b, None,
                 "median of %d, attacked / none (%d held, %d cut)" % (
                     len(attacked), held, cut)))
    rows.append(("  slowest GET, attacked",
                 "%.1f ms" % (max(attacked) * 1e3),
                 "%.1f ms" % (max(alone) * 1e3), max(attacked) / max(alone),
                 max(attacked) < 1.0, "< 1 s (issue 13)"))


def median(xs):
    xs = sorted(xs)
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def run(work, mb, secs, rounds, threads, workers, rows, only, loris):
    www = work / "www"
    www.mkdir()
    big = work / "big"
    size = mb * CHUNK
    if only != "slowloris":
        log("writing a %d MiB file" % mb)
        make_big(big, mb)

    sfsd, base, key, sfsd_log, store = start_sfsd(
        work, threads, extra={"http.response_cache": "0"})
    procs = {"speechfsd": sfsd}
    try:
        wait_http(base + "/healthz", sfsd, sfsd_log, "speechfsd")
        procs["nginx"], nbase = start_nginx(work, www, workers)
        http = requests.Session()
        http.headers["X-API-Key"] = key
        api = base + API

        # 20 small files in /bench/ for the listing, one of them for GET
        ids = []
        for i in range(NLIST):
            r = http.post(api, files={"file": ("rec%02d.wav" % i,
                                                b"x" * (1000 + i))},
                          data={"name": "recording %02d" % i,
                                "path": "/bench/",
                                "generateListeningAudio": "false"},
                          timeout=30)
            if r.status_code != 201:
                raise BenchError("upload: %d %s" % (r.status_code, r.text))
            ids.append(r.json()["id"])
        get_url = "%s/%s" % (api, ids[0])
        list_url = api + "?path=/bench/"
        r = http.get(get_url, timeout=30)
        r.raise_for_status()
        (www / "file.json").write_bytes(r.content)
        r = http.get(list_url, timeout=30)
        r.raise_for_status()
        if len(r.json().get("files", [])) != NLIST:
            raise BenchError("the listing does not hold %d files: %s" % (
                NLIST, r.text[:300]))
        (www / "list.json").write_bytes(r.content)
        http.close()
        if only == "slowloris":
            log("slowloris: %d connections" % loris)
            slowloris_run(work, store, key, ids[0], threads, loris, rows)
            return

        # 1. request rates, alternating servers
        log("wrk -t2 -c64 -d%ds: GET, listing (speechfsd, nginx) x %d" % (
            secs, rounds))
        g_s = g_n = l_s = l_n = 0.0
        g_us = l_us = g_nus = l_nus = float("inf")
        npid = procs["nginx"].pid
        for _ in range(rounds):
            rate, us = wrk(get_url, secs, key, sfsd.pid)
            g_s, g_us = max(g_s, rate), min(g_us, us)
            rate, us = wrk(nbase + "/file.json", secs, pid=npid)
            g_n, g_nus = max(g_n, rate), min(g_nus, us)
        for _ in range(rounds):
            rate, us = wrk(list_url, secs, key, sfsd.pid)
            l_s, l_us = max(l_s, rate), min(l_us, us)
            rate, us = wrk(nbase + "/list.json", secs, pid=npid)
            l_n, l_nus = max(l_n, rate), min(l_nus, us)
        rows.append(("GET /files/{id}", "%.0f req/s" % g_s,
                     "%.0f req/s" % g_n, g_s / g_n, 0.6, ">= 0.6"))
        rows.append(("  CPU per GET", "%.0f us" % g_us,
                     "%.0f us" % g_nus, g_nus / g_us, None,
                     "nginx / speechfsd, least of the rounds"))
        rows.append(("GET /files?path= (%d)" % NLIST, "%.0f req/s" % l_s,
                     "%.0f req/s" % l_n, l_s / l_n, 0.45, ">= 0.45"))
        rows.append(("  CPU per listing", "%.0f us" % l_us,
                     "%.0f us" % l_nus, l_nus / l_us, None,
                     "nginx / speechfsd, least of the rounds"))

        # the same from the answer cache (http.response_cache default):
        # a second daemon on the same store, one round, for the record
        log("the same from the answer cache, one round")
        ca, ca_base, _, ca_log, _ = start_sfsd(work, threads, (store, key))
        procs["speechfsd (cache)"] = ca
        wait_http(ca_base + "/healthz", ca, ca_log, "speechfsd (cache)")
        ca_api = ca_base + API
        rate, us = wrk("%s/%s" % (ca_api, ids[0]), secs, key, ca.pid)
        rows.append(("  GET, from the answer cache", "%.0f req/s" % rate,
                     "%.0f req/s" % g_n, rate / g_n, None,
                     "%.0f us CPU per GET" % us))
        rate, us = wrk(ca_api + "?path=/bench/", secs, key, ca.pid)
        rows.append(("  listing, from the answer cache", "%.0f req/s" % rate,
                     "%.0f req/s" % l_n, rate / l_n, None,
                     "%.0f us CPU per listing" % us))
        stop(procs.pop("speechfsd (cache)"))

        # 1b. a bounded load under the default rate limits
        log("bounded load under the default limits")
        load_run(work, store, key, ids, min(secs, 5), threads, rows)
        if only == "requests":
            return

        # 2. upload vs openssl dgst -sha256 (run twice: the first warms)
        log("openssl dgst -sha256, upload of %d MiB" % mb)
        timed(["openssl", "dgst", "-sha256", str(big)])
        _, ssl_s = timed(["openssl", "dgst", "-sha256", str(big)])
        hwm_before = proc_kb(sfsd.pid, "VmHWM")
        try:
            # reset the peak to the current RSS (Linux >= 4.0)
            with open("/proc/%d/clear_refs" % sfsd.pid, "w") as f:
                f.write("5")
        except OSError:
            pass
        resp = work / "upload.json"
        out, up_s = timed([
            "curl", "-s", "-o", str(resp), "-w", "%{http_code}",
            "-H", "X-API-Key: " + key,
            "-F", "file=@%s" % big, "-F", "name=big",
            "-F", "generateListeningAudio=false", api])
        if out.strip() != "201":
            raise BenchError("big upload: HTTP %s %s" % (
                out, tail(resp, 500)))
        hwm = proc_kb(sfsd.pid, "VmHWM")
        big_id = json.loads(resp.read_text())["id"]
        up = size / up_s / 1e6
        ssl = size / ssl_s / 1e6
        rows.append(("upload %d MiB (curl -F)" % mb, "%.0f MB/s" % up,
                     "%.0f MB/s" % ssl, up / ssl, 0.6,
                     ">= 0.6 of sha256"))
        rows.append(("  speechfsd peak RSS (VmHWM)",
                     "%.1f MiB" % (hwm / 1024), "-", None,
                     hwm < 64 * 1024, "< 64 MiB"))
        # the disk's durable write speed, for context
        _, dd_s = timed(["dd", "if=%s" % big, "of=%s" % (work / "dd"),
                         "bs=1M", "conv=fsync"])
        os.unlink(work / "dd")
        rows.append(("  dd conv=fsync (write ceiling)",
                     "%.0f MB/s" % (size / dd_s / 1e6), "-", up / (
                         size / dd_s / 1e6), None, "upload / dd"))

        # 3. download: warm both, then best of 3 alternating
        log("download of %d MiB (speechfsd, nginx) x 3" % mb)
        try:
            os.link(big, www / "big")
        except OSError:
            shutil.copyfile(big, www / "big")
        s_url = "%s/%s/content" % (api, big_id)
        n_url = nbase + "/big"
        download(s_url, size, key)
        download(n_url, size)
        s_best = n_best = None
        for _ in range(3):
            t = download(s_url, size, key)
            s_best = t if s_best is None else min(s_best, t)
            t = download(n_url, size)
            n_best = t if n_best is None else min(n_best, t)
        ds = size / s_best / 1e6
        dn = size / n_best / 1e6
        rows.append(("download %d MiB (best of 3)" % mb, "%.0f MB/s" % ds,
                     "%.0f MB/s" % dn, ds / dn, 0.9, ">= 0.9"))
        rows.append(("  (peak RSS before the upload)",
                     "%.1f MiB" % (hwm_before / 1024), "-", None, None,
                     "-"))

        # 4. a good client under slowloris
        log("slowloris: %d connections" % loris)
        slowloris_run(work, store, key, ids[0], threads, loris, rows)
    finally:
        stop(procs.get("speechfsd (cache)"))
        rc = stop(procs.get("speechfsd"))
        stop(procs.get("nginx"), signal.SIGQUIT)
        if rc not in (0, None):
            log("speechfsd exited %s:\n%s" % (rc, tail(sfsd_log)))


def main():
    mb = int(os.environ.get("SFS_BENCH_HTTP_MB", "1024"))
    secs = int(os.environ.get("SFS_BENCH_HTTP_SECS", "10"))
    rounds = int(os.environ.get("SFS_BENCH_HTTP_ROUNDS", "2"))
    workers = os.environ.get("SFS_BENCH_HTTP_WORKERS", "auto")
    threads = os.environ.get("SFS_BENCH_HTTP_THREADS", "")
    only = os.environ.get("SFS_BENCH_HTTP_ONLY", "")
    loris = int(os.environ.get("SFS_BENCH_HTTP_LORIS", "1000"))
    for tool in ("wrk", "nginx", "curl", "openssl"):
        if not shutil.which(tool):
            log("%s is not installed" % tool)
            return 1
    if not SFSD.exists():
        log("%s is not built (make)" % SFSD)
        return 1
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-bench-httpd-"))
    rows = []
    try:
        run(work, mb, secs, rounds, threads, workers, rows, only, loris)
    except (BenchError, requests.RequestException, OSError,
            edgeutil.Framing) as exc:
        log("FAILED: %s" % exc)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("bench_httpd: speechfsd (http.threads %s, http.response_cache 0)"
          " vs nginx %s "
          "(worker_processes %s, %d CPUs), wrk -t2 -c64 -d%ds best of %d "
          "alternating, %d MiB file, load average %.1f" % (
              threads or "default 4", nginx_version(), workers,
              os.cpu_count() or 1, secs, rounds, mb, os.getloadavg()[0]))
    print("  %-30s %14s %14s %7s  %s" % ("measure", "speechfsd",
                                         "baseline", "ratio", "target"))
    for name, val, basev, ratio, want, label in rows:
        if isinstance(want, bool):
            verdict = mark(want)
        elif want is None:
            verdict = ""
        else:
            verdict = mark(ratio >= want)
        print("  %-30s %14s %14s %7s  %s %s" % (
            name, val, basev, "-" if ratio is None else "%.2f" % ratio,
            label, verdict))
    return 0


def nginx_version():
    p = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    m = re.search(r"nginx/(\S+)", p.stderr)
    return m.group(1) if m else "?"


if __name__ == "__main__":
    sys.exit(main())
