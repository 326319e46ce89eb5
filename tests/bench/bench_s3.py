#!/usr/bin/env python3
"""Object-store backend benchmark, side by side against one throwaway Ceph
RADOS Gateway (tests/rgw.py, memstore) in one run, as ratios:

1. part size and parallel parts of the core's S3 client: a 1 GiB object
   put through it (tests/bench/helpers/s3_put.c) for several settings,
   against `curl -T` of the same file signed by curl (the numbers that
   chose blob.s3.part_size_mb and blob.s3.parallel);
2. upload 1 GiB through speechfsd (curl -F) vs curl -T straight to the
   gateway; the daemon's peak RSS during the upload;
3. download 1 GiB through speechfsd vs a signed curl GET from the
   gateway, and with http.redirect_to_object_store (curl -L);
4. the mount: a cold sequential read of 1 GiB (fresh mount, empty block
   cache) vs the same curl GET; a warm read (best of 5, after a sync:
   the cold read's block-cache writes are not the warm read's) vs a warm
   read of the same file on a mount of a local-backend store.

Best of SFS_BENCH_S3_ROUNDS (default 2) alternating rounds; the machine
is shared, so ratios are the figures. SFS_BENCH_S3_MB scales the file
(default 1024); SFS_BENCH_S3_TUNE=0 skips part 1. Everything started is
stopped, temp dirs removed, even on failure. Exits non-zero when the
benchmark could not run; a missed target is reported, not an error."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
SPEECHFS = BUILD / "speechfs"
API = "/api/v1/speech-services/files"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "bench"))
import rgw  # noqa: E402
from bench_fs import stop_mount  # noqa: E402


class BenchError(Exception):
    pass


def log(msg):
    print("bench_s3: " + msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv, env=None, ok=(0,)):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    secs = time.monotonic() - t
    if p.returncode not in ok:
        raise BenchError("%s: exit %d: %s" % (argv[0], p.returncode,
                                              (p.stdout + p.stderr)[-500:]))
    return p.stdout, secs


def proc_kb(pid, key):
    for ln in open("/proc/%d/status" % pid):
        if ln.startswith(key + ":"):
            return int(ln.split()[1])
    return 0


class Run:
    """The gateway, the stores, the daemons and mounts of one run."""

    def __init__(self, work, mb):
        self.work = work
        self.mb = mb
        self.size = mb << 20
        self.procs = []
        self.mounts = []
        self.gw = rgw.Gateway(work / "rgw", device_bytes=5 << 30)
        self.env = None

    def start(self):
        t = time.monotonic()
        self.gw.start()
        log("gateway answers %.2f s after start (total %.2f s)" % (
            self.gw.start_seconds, time.monotonic() - t))
        self.bucket = self.gw.make_bucket("bench")
        self.env = dict(os.environ, AWS_ACCESS_KEY_ID=self.gw.access_key,
                        AWS_SECRET_ACCESS_KEY=self.gw.secret_key,
                        AWS_REGION=self.gw.region,
                        **self.gw.env(self.bucket))
        self.sig = ["--aws-sigv4", "aws:amz:%s:s3" % self.gw.region,
                    "--user", "%s:%s" % (self.gw.access_key,
                                         self.gw.secret_key),
                    "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]

    def url(self, key):
        return "%s/%s/%s" % (self.gw.endpoint, self.bucket, key)

    def delete(self, key):
        s3 = self.gw.client()
        try:
            s3.request("DELETE", "/%s/%s" % (self.bucket, key))
        finally:
            s3.close()

    def drop_prefix(self, prefix):
        s3 = self.gw.client()
        try:
            for k in s3.list(self.bucket, prefix):
                s3.delete(self.bucket, k)
        finally:
            s3.close()

    def admin(self, store, *args):
        p = subprocess.run([str(SFSD), *args, "--store", str(store),
                            "--json"], capture_output=True, text=True,
                           env=self.env)
        if p.returncode:
            raise BenchError("admin %s: %s" % (args, p.stderr[-500:]))
        return json.loads(p.stdout.strip().splitlines()[-1])

    def store(self, name, s3=True):
        d = self.work / name
        self.admin(d, "init")
        if s3:
            p = subprocess.run(
                [str(SFSD), "blob", "migrate", "--to", "s3", "--store",
                 str(d), "--endpoint", self.gw.endpoint, "--bucket",
                 self.bucket, "--prefix", name + "/"], env=self.env,
                capture_output=True, text=True)
            if p.returncode:
                raise BenchError("blob migrate: " + p.stderr[-500:])
        t = self.admin(d, "tenant", "create", "--name", "t")["id"]
        u = self.admin(d, "user", "create", "--tenant", t, "--name",
                       "u")["id"]
        k = self.admin(d, "key", "create", "--user", u)["key"]
        return d, u, k

    def daemon(self, store, extra=None):
        port = free_port()
        conf = self.work / ("sfsd-%d.conf" % port)
        cfg = {"http.max_upload_bytes": str(self.size + (64 << 20)),
               "http.rate_per_second": "1000", "http.rate_burst": "1000",
               "http.upload_rate_per_second": "1000",
               "http.upload_rate_burst": "1000"}
        cfg.update(extra or {})
        conf.write_text("".join("%s = %s\n" % kv for kv in cfg.items()))
        logf = open(self.work / ("sfsd-%d.log" % port), "wb")
        p = subprocess.Popen([str(SFSD), "--store", str(store), "--listen",
                              "127.0.0.1:%d" % port, "--config", str(conf),
                              "--no-workers"], stdout=logf,
                             stderr=subprocess.STDOUT, env=self.env)
        self.procs.append(p)
        base = "http://127.0.0.1:%d" % port
        deadline = time.time() + 20
        while True:
            if p.poll() is not None:
                raise BenchError("speechfsd exited %d" % p.returncode)
            try:
                if requests.get(base + "/healthz", timeout=1).ok:
                    return p, base + API
            except requests.ConnectionError:
                pass
            if time.time() > deadline:
                raise BenchError("speechfsd did not start")
            time.sleep(0.05)

    def mount(self, store, user):
        d = pathlib.Path(tempfile.mkdtemp(prefix="sfs-bench-mnt-"))
        logf = open(str(d) + ".log", "wb")
        p = subprocess.Popen([str(SPEECHFS), "--store", str(store),
                              "--user", user, str(d), "-f",
                              "-o", "no_workers"], stdout=logf,
                             stderr=subprocess.STDOUT, env=self.env)
        self.mounts.append((p, d))
        deadline = time.time() + 20
        while not os.path.ismount(d):
            if p.poll() is not None or time.time() > deadline:
                raise BenchError("the mount did not come up")
            time.sleep(0.05)
        return p, d

    def unmount(self, p, d):
        stop_mount(p, d, timeout=30)
        if (p, d) in self.mounts:
            self.mounts.remove((p, d))

    def stop(self):
        for p, d in list(self.mounts):
            self.unmount(p, d)
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.gw.stop(check=False)


def best(rounds, fn):
    return min(fn() for _ in range(rounds))


def tune(run, big, rows):
    """The client's part size and parallel parts against curl -T."""
    exe = BUILD / "bench" / "helpers" / "s3_put"
    if not os.access(exe, os.X_OK):
        raise BenchError("%s missing: build first (make)" % exe)
    for part, par in ((8, 4), (16, 4), (32, 4), (64, 4), (16, 8), (32, 8),
                      (16, 2)):
        out, _ = timed([str(exe), str(big), "tune", str(part), str(par)],
                       env=run.env)
        ours = float(out.strip())
        run.delete("tune")
        _, base = timed(["curl", "-sS", "-o", "/dev/null", "-T", str(big),
                         *run.sig, run.url("curl")])
        run.delete("curl")
        rows.append(("client PUT, parts %d MiB x %d" % (part, par),
                     "%.0f MB/s" % (run.size / ours / 1e6),
                     "%.0f MB/s" % (run.size / base / 1e6),
                     base / ours, None, "vs curl -T"))
        log(rows[-1][0] + ": %.2f" % (base / ours))


def updown(run, big, rounds, rows):
    store, user, key = run.store("s3store")
    hdr = ["-H", "X-API-Key: " + key]
    # 2. upload: curl -T to the gateway vs curl -F to the daemon
    up_base, up_ours, hwm = [], [], 0
    fid = None
    for i in range(rounds):
        _, t = timed(["curl", "-sS", "-o", "/dev/null", "-T", str(big),
                      *run.sig, run.url("curl-up")])
        up_base.append(t)
        run.delete("curl-up")
        run.drop_prefix("s3store/")
        proc, api = run.daemon(store)
        out, t = timed(["curl", "-sS", "-o", str(run.work / "up.json"),
                        "-w", "%{http_code}", *hdr,
                        "-F", "file=@%s" % big, "-F", "name=big",
                        "-F", "generateListeningAudio=false", api])
        if out.strip() != "201":
            raise BenchError("upload: HTTP %s %s" % (
                out, (run.work / "up.json").read_text()[:300]))
        up_ours.append(t)
        hwm = max(hwm, proc_kb(proc.pid, "VmHWM"))
        fid = json.loads((run.work / "up.json").read_text())["id"]
        if i + 1 < rounds:
            requests.delete(api + "/%s?purge=true" % fid,
                            headers={"X-API-Key": key}, timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    b, o = min(up_base), min(up_ours)
    rows.append(("upload %d MiB through speechfsd" % run.mb,
                 "%.0f MB/s" % (run.size / o / 1e6),
                 "%.0f MB/s" % (run.size / b / 1e6), b / o, 0.7,
                 ">= 0.7 x curl -T"))
    rows.append(("  speechfsd peak RSS (VmHWM)", "%.1f MiB" % (hwm / 1024),
                 "-", None, hwm < 96 * 1024, "< 96 MiB"))
    log("upload done")

    # 3. download: signed curl from the gateway vs the daemon, redirect
    s3 = run.gw.client()
    objkey = next(iter(s3.list(run.bucket, "s3store/")))
    s3.close()
    proc, api = run.daemon(store)
    rproc, rapi = run.daemon(store, {"http.redirect_to_object_store":
                                     "true"})
    gw_url = run.url(objkey)
    dl = {"curl": [], "ours": [], "redirect": []}
    for _ in range(rounds):
        _, t = timed(["curl", "-sS", "-o", "/dev/null", *run.sig, gw_url])
        dl["curl"].append(t)
        _, t = timed(["curl", "-sS", "-o", "/dev/null", *hdr,
                      api + "/%s/content" % fid])
        dl["ours"].append(t)
        _, t = timed(["curl", "-sS", "-L", "-o", "/dev/null", *hdr,
                      rapi + "/%s/content" % fid])
        dl["redirect"].append(t)
    b = min(dl["curl"])
    for what, target, want in (("ours", 0.8, ">= 0.8 x curl"),
                               ("redirect", 0.9, "= curl (>= 0.9)")):
        o = min(dl[what])
        rows.append(("download %d MiB%s" % (
            run.mb, " (302 to the store)" if what == "redirect" else ""),
            "%.0f MB/s" % (run.size / o / 1e6),
            "%.0f MB/s" % (run.size / b / 1e6), b / o, target, want))
    log("download done")
    return store, user, key, fid, b


# a warm read takes a fraction of a second: more rounds against noise
WARM_ROUNDS = 5


def mount_reads(run, big, rounds, rows, s3store, curl_s):
    store, user, _, _, _ = s3store
    cold = []
    for _ in range(rounds):
        shutil.rmtree(store / "cache", ignore_errors=True)
        p, d = run.mount(store, user)
        _, t = timed(["dd", "if=%s/big" % d, "of=/dev/null", "bs=1M"])
        cold.append(t)
        # the cold read left the block cache's 1 GiB to be written back:
        # let it reach the disk before timing page-cache reads
        subprocess.run(["sync"])
        warm_s3 = best(max(rounds, WARM_ROUNDS), lambda: timed(
            ["dd", "if=%s/big" % d, "of=/dev/null", "bs=1M"])[1])
        run.unmount(p, d)
    o = min(cold)
    rows.append(("mount: cold sequential read %d MiB" % run.mb,
                 "%.0f MB/s" % (run.size / o / 1e6),
                 "%.0f MB/s" % (run.size / curl_s / 1e6), curl_s / o, 0.8,
                 ">= 0.8 x curl GET"))
    # warm: the same file on a mount of a local-backend store
    lstore, luser, lkey = run.store("localstore", s3=False)
    proc, api = run.daemon(lstore)
    p2 = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                         "%{http_code}", "-H", "X-API-Key: " + lkey,
                         "-F", "file=@%s" % big, "-F", "name=big",
                         "-F", "generateListeningAudio=false", api],
                        capture_output=True, text=True)
    if p2.stdout.strip() != "201":
        raise BenchError("local upload: " + p2.stdout + p2.stderr)
    p, d = run.mount(lstore, luser)
    timed(["dd", "if=%s/big" % d, "of=/dev/null", "bs=1M"])
    subprocess.run(["sync"])
    warm_local = best(max(rounds, WARM_ROUNDS), lambda: timed(
        ["dd", "if=%s/big" % d, "of=/dev/null", "bs=1M"])[1])
    run.unmount(p, d)
    rows.append(("mount: warm sequential read %d MiB" % run.mb,
                 "%.0f MB/s" % (run.size / warm_s3 / 1e6),
                 "%.0f MB/s" % (run.size / warm_local / 1e6),
                 warm_local / warm_s3, 0.8, "as the local backend"))


def main():
    mb = int(os.environ.get("SFS_BENCH_S3_MB", "1024"))
    rounds = int(os.environ.get("SFS_BENCH_S3_ROUNDS", "2"))
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-bench-s3-"))
    run = Run(work, mb)
    rows = []
    try:
        for exe in (SFSD, SPEECHFS):
            if not exe.exists():
                raise BenchError("%s is not built (make)" % exe)
        log("load: " + open("/proc/loadavg").read().strip())
        run.start()
        big = work / "big"
        with open(big, "wb") as f:
            for _ in range(mb):
                f.write(os.urandom(1 << 20))
        if os.environ.get("SFS_BENCH_S3_TUNE", "1") != "0":
            tune(run, big, rows)
        s3store = updown(run, big, rounds, rows)
        mount_reads(run, big, rounds, rows, s3store, s3store[4])
    except (BenchError, rgw.GatewayError, OSError) as exc:
        log("FAILED: %s" % exc)
        return 1
    finally:
        run.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%-42s %12s %12s %7s  %s" % ("benchmark", "result", "baseline",
                                       "ratio", "target"))
    for name, res, base, ratio, target, want in rows:
        met = ""
        if isinstance(target, bool):
            met = "met" if target else "MISSED"
        elif target is not None and ratio is not None:
            met = "met" if ratio >= target else "MISSED"
        print("%-42s %12s %12s %7s  %s %s" % (
            name, res, base, "%.2f" % ratio if ratio is not None else "-",
            want, met))
    log("load: " + open("/proc/loadavg").read().strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
