"""kill -9 in the middle of uploads, ten times over one store: every
upload the daemon acknowledged (201) is there afterwards with its bytes,
none is lost; what a killed process left in staging/ is found by the
next process that opens the store (`speechfsd fsck` here), reported and
removed, and fsck finds the blob store consistent."""
import hashlib
import json
import os
import random
import subprocess
import threading
import time

import requests

from conftest import API, SFSD, Daemon, make_store

CYCLES = 10


def uploader(base, key, stop, acked, sizes, seed):
    rnd = random.Random(seed)
    http = requests.Session()
    http.headers["X-API-Key"] = key
    i = 0
    while not stop.is_set():
        data = rnd.randbytes(rnd.choice(sizes))
        i += 1
        try:
            r = http.post(base + API, files={"file": ("k%d.wav" % i, data)},
                          data={"name": "kill %d %d" % (seed, i),
                                "path": "/kill/",
                                "generateListeningAudio": "false"},
                          timeout=30)
        except requests.RequestException:
            return  # the daemon is gone
        if r.status_code == 201:
            acked.append((r.json()["id"], hashlib.sha256(data).hexdigest(),
                          len(data)))
    http.close()


def staging_parts(store):
    """Files under staging/ other than the per-process lock files and
    the resumable upload sessions (.uploads/: they outlive a restart)."""
    out = []
    for root, dirs, files in os.walk(store / "staging"):
        dirs[:] = [x for x in dirs if x != ".uploads"]
        out += [os.path.join(root, f) for f in files if f != "lock"]
    return out


def test_kill_9_mid_upload_loses_no_acknowledged_upload(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    store, _, _, keys = make_store(root)
    key = keys["alice"]
    acked = []
    stale_seen = reported = 0
    rnd = random.Random(13)
    # small (inline in the database) and larger (blob files) uploads
    sizes = [300, 5000, 70_000, 400_000, 3_000_000]
    cfg = {"http.rate_per_second": "100000", "http.rate_burst": "100000",
           "http.upload_rate_per_second": "100000",
           "http.upload_rate_burst": "100000"}
    for cycle in range(CYCLES):
        d = Daemon(root, store, cfg)
        try:
            stop = threading.Event()
            ts = [threading.Thread(target=uploader, args=(
                d.base, key, stop, acked, sizes, cycle * 10 + k))
                for k in range(4)]
            for t in ts:
                t.start()
            time.sleep(0.4 + rnd.random())
            d.proc.kill()
            d.proc.wait()
        finally:
            stop.set()
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d.logf.close()
        for t in ts:
            t.join(timeout=60)
            assert not t.is_alive()
        left = staging_parts(store)
        stale_seen += bool(left)
        p = subprocess.run([str(SFSD), "fsck", "-v", "--store", str(store)],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        if left:
            assert "stale staging" in p.stderr, (left, p.stderr)
            reported += 1
        assert staging_parts(store) == [], p.stderr
    print("kill -9: %d cycles, %d acknowledged, stale staging after %d" % (
        CYCLES, len(acked), stale_seen))
    assert len(acked) > 3 * CYCLES, len(acked)
    # a kill in the middle of an upload leaves its stage most of the time
    assert stale_seen >= 1 and reported == stale_seen
    d = Daemon(root, store, cfg)
    try:
        http = requests.Session()
        http.headers["X-API-Key"] = key
        lost = []
        for fid, sha, size in acked:
            r = http.get(d.base + API + "/" + fid, timeout=30)
            if r.status_code != 200 or r.json()["sha256"] != sha or \
                    r.json()["size"] != size:
                lost.append((fid, r.status_code, r.text[:200]))
                continue
            c = http.get(d.base + API + "/" + fid + "/content", timeout=60)
            if hashlib.sha256(c.content).hexdigest() != sha:
                lost.append((fid, "content"))
        assert lost == [], "%d of %d acknowledged uploads lost: %s" % (
            len(lost), len(acked), lost[:5])
        http.close()
    finally:
        d.stop()
    p = subprocess.run([str(SFSD), "fsck", "--store", str(store), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    rep = json.loads(p.stdout)
    assert rep["orphanFiles"] == rep["missingFiles"] == \
        rep["badRefcounts"] == 0, rep
    assert rep["blobsChecked"] > 0, rep
