#!/usr/bin/env python3
"""FUSE mount benchmark: speechfs side by side with the native file system
and bindfs (a pass-through FUSE mount) in one run, printed as ratios.

1. sequential read (dd bs=1M) of a big file, warm and cold page cache:
   through the mount, straight from the blob under STORE/blobs (native)
   and through bindfs of the blob directory;
2. cp of a big file into the mount (close returns after the durable
   commit and the hash) vs cp to a plain directory + sync + openssl dgst
   -sha256 of it;
3. creating many small files of 100 B - 4 KiB, distinct bytes: close()
   returns after a durable commit; the baseline is the same files on the
   same ext4 with an fsync per file, the two taking five turns (the
   disk's fsync time swings with the neighbours). Then four writers at once against
   one (group commit), and a mount with -o commit=1000 (its changes
   batched: one transaction committed and synced within 1 s) against
   bindfs, which syncs nothing, again in five turns. Then `ls -l` of a
   directory of such files and `find` over a tree
   of 100,000 files in 1,000 directories: speechfs vs bindfs of a plain
   directory. The tree is made beforehand, in the store through core's
   bulk create (tests/bench/helpers/fs_tree.c, built by make) and as plain
   files. Before each `ls -l`/`find` both mounts are remounted (empty
   kernel dentry/attr caches) and the page cache is dropped; the cold
   `find` takes five turns on each side (medians).

SFS_BENCH_FS_MB scales the big file (default 1024), SFS_BENCH_FS_FILES the
number of small files (default 10000), SFS_BENCH_FS_TREE the files of the
find tree (default 100000, 100 per directory). Must run as root
(drop_caches).
Everything (mounts, processes, temp dirs) is cleaned up even on failure.
Exits non-zero when the benchmark could not run; a missed target is
reported, not an error.
"""
import glob
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
SPEECHFS = BUILD / "speechfs"
CHUNK = 1 << 20

sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from fsutil import is_mounted  # noqa: E402


class BenchError(Exception):
    pass


def log(msg):
    print("bench_fs: " + msg, flush=True)


def admin(store, *args):
    cmd = [str(SFSD), *args, "--store", str(store), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise BenchError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return json.loads(p.stdout.strip().splitlines()[-1])


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def wait_mount(path, proc, what):
    deadline = time.monotonic() + 15
    while not os.path.ismount(path):
        if proc is not None and proc.poll() is not None:
            raise BenchError("%s exited %s" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise BenchError("%s did not mount %s" % (what, path))
        time.sleep(0.05)


def umount(path):
    """Unmount path, lazily when a plain unmount could not (the mount
    table says: a FUSE mount whose process died is no os.path.ismount)."""
    if is_mounted(path):
        subprocess.run(["fusermount3", "-u", str(path)], timeout=60)
    if is_mounted(path):
        subprocess.run(["fusermount3", "-uz", str(path)], timeout=60)


def stop_mount(proc, path, timeout=60):
    """Unmount a mount made by proc (speechfs or rclone in the
    foreground), wait for proc (killed after timeout s), clear what is
    left and remove the mountpoint."""
    if is_mounted(path):
        subprocess.run(["fusermount3", "-u", str(path)],
                       capture_output=True, timeout=60)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    umount(path)
    shutil.rmtree(path, ignore_errors=True)


class SfsMount:
    """`speechfs -f` of one user on a mountpoint."""

    def __init__(self, store, user, mnt, logpath, *opts):
        self.store, self.user, self.mnt = store, user, mnt
        self.logpath = logpath
        self.opts = opts
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen(
            [str(SPEECHFS), "--store", str(self.store), "--user",
             self.user, str(self.mnt), "-f", "-o", "no_workers",
             *self.opts],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_mount(self.mnt, self.proc, "speechfs")

    def stop(self):
        if self.proc is None:
            return None
        umount(self.mnt)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc


class BindMount:
    """bindfs (foreground, single process) of src on mnt."""

    def __init__(self, src, mnt):
        self.src, self.mnt = src, mnt
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["bindfs", "-f", str(self.src), str(self.mnt)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_mount(self.mnt, self.proc, "bindfs")

    def stop(self):
        if self.proc is None:
            return None
        umount(self.mnt)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc


def timed(cmd, **kw):
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, **kw)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError("%s: exit %d %s" % (" ".join(map(str, cmd)),
                                             p.returncode,
                                             p.stderr.strip()[-500:]))
    return secs


def make_big(path, mb):
    """mb MiB of incompressible, non-repeating bytes."""
    seed = os.urandom(CHUNK)
    with open(path, "wb") as f:
        for i in range(mb):
            f.write(i.to_bytes(8, "little") + seed[8:])
        f.flush()
        os.fsync(f.fileno())


def dd_read(path):
    return timed(["dd", "if=%s" % path, "of=/dev/null", "bs=1M"])


def create_files(d, n):
    """n small files of the same 100 bytes in directory d; seconds."""
    body = b"x" * 100
    t0 = time.monotonic()
    for i in range(n):
        fd = os.open(os.path.join(d, "f%05d.txt" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
    return time.monotonic() - t0


def small_bodies(n):
    """n distinct contents of 100 B to 4 KiB."""
    seed = os.urandom(4096)
    return [i.to_bytes(8, "little") + seed[:92 + (i * 397) % 3997]
            for i in range(n)]


def write_bodies(d, bodies, fsync=False):
    """One file per body in d (made), fsync'd before close if asked."""
    os.makedirs(d, exist_ok=True)
    for i, b in enumerate(bodies):
        fd = os.open(os.path.join(d, "s%05d.bin" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)


def create_rate(d, bodies, writers=1, fsync=False):
    """Files per second creating bodies under d by `writers` threads at
    once, each into a directory of its own."""
    parts = [bodies[k::writers] for k in range(writers)]
    errs = []

    def one(k):
        try:
            write_bodies(os.path.join(d, "w%d" % k), parts[k], fsync)
        except OSError as exc:
            errs.append(exc)
    threads = [threading.Thread(target=one, args=(k,))
               for k in range(writers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - t0
    if errs:
        raise BenchError("creating files: %s" % errs[0])
    return len(bodies) / secs


PER_DIR = 100
ROUNDS = 5  # turns of the durable-create comparison
FIND_ROUNDS = 5  # turns of the cold find


def proc_cpu(pid):
    """CPU seconds (user + system) process pid has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_helper():
    """The tree filler, built by make beside the benchmarks."""
    exe = BUILD / "bench" / "helpers" / "fs_tree"
    if not os.access(exe, os.X_OK):
        raise BenchError("%s missing: build first (make)" % exe)
    return exe


def make_trees(work, store, user, plain, ntree, per_dir=PER_DIR):
    """ntree empty files under /tree/dNNNN/ of the store and of plain/,
    per_dir a directory (fs_tree's layout: file i in directory i / per)."""
    ndirs = max(1, (ntree + per_dir - 1) // per_dir)
    per = (ntree + ndirs - 1) // ndirs
    exe = tree_helper()
    p = subprocess.run([str(exe), str(store), user, str(ndirs),
                        str(ntree)], capture_output=True, text=True,
                       timeout=1200)
    if p.returncode != 0:
        raise BenchError("fs_tree: %s" % p.stderr.strip()[-500:])
    for i in range(ntree):
        if i % per == 0:
            d = plain / "tree" / ("d%04d" % (i // per))
            d.mkdir(parents=True)
        with open(d / ("f%07d.txt" % i), "wb"):
            pass


def mark(ok):
    return "ok" if ok else "MISSED"


def mbs(size, secs):
    return "%.0f MB/s" % (size / secs / 1e6)


def run(work, mb, nfiles, ntree, rows, notes):
    store = work / "store"
    plain = work / "plain"
    mnt = work / "mnt"
    bmnt = work / "bind"
    for d in (plain, mnt, bmnt):
        d.mkdir()
    size = mb * CHUNK
    src = work / "src.wav"
    log("writing a %d MiB source file" % mb)
    make_big(src, mb)

    admin(store, "init")
    tenant = admin(store, "tenant", "create", "--name", "t",
                   "--max-bytes", "0")["id"]
    user = admin(store, "user", "create", "--tenant", tenant, "--name",
                 "bench")["id"]
    log("a tree of %d files, in the store (bulk) and as plain files" %
        ntree)
    t0 = time.monotonic()
    make_trees(work, store, user, plain, ntree)
    log("  made in %.1f s" % (time.monotonic() - t0))
    sfs = SfsMount(store, user, mnt, work / "speechfs.log")
    bind = BindMount(plain, bmnt)
    try:
        sfs.start()

        # 2. writing: cp into the mount vs cp + sync + sha256
        log("cp %d MiB into the mount vs cp + sync + openssl dgst" % mb)
        drop_caches()
        timed(["cat", str(src)])            # source warm for both
        w_s = timed(["cp", str(src), str(mnt / "big.wav")])
        w_n = timed(["cp", str(src), str(plain / "big.wav")])
        w_n += timed(["sync", str(plain / "big.wav")])
        w_n += timed(["openssl", "dgst", "-sha256",
                      str(plain / "big.wav")])
        rows.append(("write %d MiB (cp)" % mb, mbs(size, w_s),
                     mbs(size, w_n), w_n / w_s, 0.7,
                     ">= 0.7 of cp+sync+sha256"))
        os.unlink(plain / "big.wav")
        dd_s = timed(["dd", "if=%s" % src, "of=%s" % (work / "dd"),
                      "bs=1M", "conv=fsync"])
        os.unlink(work / "dd")
        rows.append(("  dd conv=fsync (ceiling)", mbs(size, dd_s), "-",
                     None, None, ""))

        # 1. sequential read: mount, native blob, bindfs of blobs/
        sha = os.getxattr(mnt / "big.wav",
                          "user.speechfs.sha256").decode()
        blobs = glob.glob(str(store / "blobs" / "*" / "*" / sha))
        if len(blobs) != 1:
            raise BenchError("blob %s not found under %s" % (
                sha, store / "blobs"))
        blob = pathlib.Path(blobs[0])
        rel = blob.relative_to(store / "blobs")
        bind_blobs = BindMount(store / "blobs", bmnt)
        bind_blobs.start()
        try:
            paths = {"speechfs": mnt / "big.wav", "native": blob,
                     "bindfs": bmnt / rel}
            cold = {}
            warm = {}
            log("sequential read, cold (drop_caches before each), x2")
            for _ in range(2):
                for k, p in paths.items():
                    drop_caches()
                    t = dd_read(p)
                    cold[k] = min(cold.get(k, t), t)
            log("sequential read, warm, best of 3")
            for k, p in paths.items():
                dd_read(p)
            for _ in range(3):
                for k, p in paths.items():
                    t = dd_read(p)
                    warm[k] = min(warm.get(k, t), t)
        finally:
            bind_blobs.stop()
        rows.append(("read warm vs native", mbs(size, warm["speechfs"]),
                     mbs(size, warm["native"]),
                     warm["native"] / warm["speechfs"], 0.4, ">= 0.4"))
        rows.append(("read warm vs bindfs", mbs(size, warm["speechfs"]),
                     mbs(size, warm["bindfs"]),
                     warm["bindfs"] / warm["speechfs"], 2.0, ">= 2.0"))
        rows.append(("read cold vs bindfs", mbs(size, cold["speechfs"]),
                     mbs(size, cold["bindfs"]),
                     cold["bindfs"] / cold["speechfs"], 1.0, ">= 1.0"))
        rows.append(("  read cold native", mbs(size, cold["native"]), "-",
                     None, None, ""))

        # 4. small files, durable creates: the disk with an fsync per
        # file is the baseline; then four writers at once; then bulk
        # loads with -o commit vs bindfs (which syncs nothing)
        bind.start()
        log("creating %d small files of 100 B - 4 KiB (speechfs, native "
            "+ fsync, bindfs)" % nfiles)
        bodies = small_bodies(nfiles)
        # the disk's fsync time swings several-fold within minutes on a
        # shared machine (529-3,695 files/s at load 3): both sides take
        # turns, a fifth of the files each, and the rates are the totals
        t_nat = t_one = 0.0
        turns = []
        for k in range(ROUNDS):
            part = bodies[k::ROUNDS]
            rn = create_rate(plain / "small-native" / ("r%d" % k), part,
                             fsync=True)
            rs = create_rate(mnt / "small-one" / ("r%d" % k), part)
            t_nat += len(part) / rn
            t_one += len(part) / rs
            turns.append(rs / rn)
        r_nat = nfiles / t_nat
        r_one = nfiles / t_one
        rows.append(("create %d durable" % nfiles, "%.0f /s" % r_one,
                     "%.0f /s" % r_nat, r_one / r_nat, 0.8,
                     ">= 0.8 of ext4 + fsync"))
        notes.append("create durable: %d turns each, ratio per turn "
                     "%.2f-%.2f" % (ROUNDS, min(turns), max(turns)))
        r_four = create_rate(mnt / "small-four", bodies, writers=4)
        rows.append(("  4 writers at once", "%.0f /s" % r_four,
                     "%.0f /s" % r_one, r_four / r_one, 2.0,
                     ">= 2.0 of 1 writer"))
        r_nat4 = create_rate(plain / "small-native4", bodies, writers=4,
                             fsync=True)
        rows.append(("  ext4 + fsync, 4 writers", "%.0f /s" % r_nat4,
                     "%.0f /s" % r_nat, r_nat4 / r_nat, None, ""))
        bulk = SfsMount(store, user, work / "mnt-bulk",
                        work / "speechfs-bulk.log", "-o", "commit=1000")
        (work / "mnt-bulk").mkdir()
        bulk.start()
        # in turns too: bindfs's rate is ext4's create, which swings
        # 5-10x within minutes here (1,000-30,000 files/s)
        t_bulk = t_bind = 0.0
        bturns = []
        try:
            for k in range(ROUNDS):
                part = bodies[k::ROUNDS]
                rs = create_rate(work / "mnt-bulk" / "small-bulk" /
                                 ("r%d" % k), part)
                rb = create_rate(bmnt / "small-bind" / ("r%d" % k), part)
                t_bulk += len(part) / rs
                t_bind += len(part) / rb
                bturns.append(rs / rb)
        finally:
            if bulk.stop() not in (0, None):
                raise BenchError("speechfs -o commit exited non-zero")
        r_bulk = nfiles / t_bulk
        r_bind = nfiles / t_bind
        rows.append(("create -o commit=1000", "%.0f /s" % r_bulk,
                     "%.0f /s" % r_bind, r_bulk / r_bind, 1.0,
                     ">= 1.0 of bindfs"))
        notes.append("create -o commit=1000: %d turns each, ratio per "
                     "turn %.2f-%.2f" % (ROUNDS, min(bturns), max(bturns)))
        os.mkdir(mnt / "many")
        os.mkdir(bmnt / "many")
        c_s = create_files(mnt / "many", nfiles)
        c_b = create_files(bmnt / "many", nfiles)
        rows.append(("  %d, the same 100 B" % nfiles,
                     "%.0f /s" % (nfiles / c_s), "%.0f /s" % (nfiles / c_b),
                     c_b / c_s, None, "vs bindfs"))
        notes.append("create: close() returns after a durable commit (one "
                     "fdatasync of the WAL shared by the closes of that "
                     "moment; contents up to 64 KiB live in the database); "
                     "native = the same files on the same ext4 with an "
                     "fsync per file; bindfs syncs nothing; -o commit=1000 "
                     "batches the mount's changes: one transaction "
                     "committed and synced within 1 s")

        # 3. ls -l and find, each after a remount of both + drop_caches
        def fresh():
            rc = sfs.stop()
            if rc not in (0, None):
                raise BenchError("speechfs exited %s:\n%s" % (
                    rc, (work / "speechfs.log").read_text()[-3000:]))
            bind.stop()
            drop_caches()
            sfs.start()
            bind.start()

        log("ls -l of %d files, find (remount + drop_caches each)" %
            nfiles)
        ls_s = ls_b = None
        for _ in range(2):
            fresh()
            t = timed(["ls", "-l", str(mnt / "many")])
            ls_s = t if ls_s is None else min(ls_s, t)
            t = timed(["ls", "-l", str(bmnt / "many")])
            ls_b = t if ls_b is None else min(ls_b, t)
        # find: a cold walk takes 0.2-0.5 s and swings 2-3x with the
        # neighbours' load (0.71-1.54 in three rounds at load 11): both
        # sides in turns, who goes first alternating, each after a
        # remount + drop_caches; medians, and the mount's CPU per walk
        fs_t, fb_t, f_cpu, b_cpu = [], [], [], []
        for k in range(FIND_ROUNDS):
            sides = [(mnt, sfs, fs_t, f_cpu), (bmnt, bind, fb_t, b_cpu)]
            for where, who, times, cpu in sides[::1 if k % 2 == 0 else -1]:
                fresh()
                c0 = proc_cpu(who.proc.pid)
                times.append(timed(["find", str(where / "tree")]))
                cpu.append(proc_cpu(who.proc.pid) - c0)
        f_s = statistics.median(fs_t)
        f_b = statistics.median(fb_t)
        nfind = sum(1 for _ in os.walk(bmnt / "tree")) + sum(
            len(f) for _, _, f in os.walk(bmnt / "tree"))
        rows.append(("ls -l %d files (cold)" % nfiles,
                     "%.3f s" % ls_s, "%.3f s" % ls_b, ls_b / ls_s, 2.0,
                     ">= 2.0"))
        rows.append(("find, %d entries (cold)" % nfind,
                     "%.3f s" % f_s, "%.3f s" % f_b, f_b / f_s, 1.5,
                     ">= 1.5"))
        notes.append("find (cold): medians of %d turns each; ratio per "
                     "turn %s; speechfs %.3f-%.3f s, bindfs %.3f-%.3f s; "
                     "CPU per walk (median): speechfs %.3f s, bindfs "
                     "%.3f s" % (
                         FIND_ROUNDS, " ".join(
                             "%.2f" % (b / s) for s, b in zip(fs_t, fb_t)),
                         min(fs_t), max(fs_t), min(fb_t), max(fb_t),
                         statistics.median(f_cpu),
                         statistics.median(b_cpu)))
        # the /.listening/ mirror of the tree (what updatedb and backup
        # tools walk too) against the tree itself, each after a remount
        # + drop_caches, best of 2
        la_s = tr_s = None
        for _ in range(2):
            fresh()
            t = timed(["find", str(mnt / ".listening" / "tree")])
            la_s = t if la_s is None else min(la_s, t)
            fresh()
            t = timed(["find", str(mnt / "tree")])
            tr_s = t if tr_s is None else min(tr_s, t)
        rows.append(("find /.listening/tree (cold)", "%.3f s" % la_s,
                     "%.3f s" % tr_s, tr_s / la_s, 0.8,
                     ">= 0.8 of the tree's walk"))
        t = timed(["ls", "-l", str(mnt / "many")])
        t2 = timed(["ls", "-l", str(bmnt / "many")])
        rows.append(("  ls -l warm (2nd run)", "%.3f s" % t,
                     "%.3f s" % t2, t2 / t, None, ""))
        fresh()
        t = timed(["find", str(mnt / "tree")])
        t2 = timed(["find", str(bmnt / "tree")])
        rows.append(("  find warm (remounted)", "%.3f s" % t,
                     "%.3f s" % t2, t2 / t, None, ""))
        t = timed(["find", str(mnt)])
        t2 = timed(["find", str(bmnt)])
        rows.append(("  find whole mount (warm)", "%.3f s" % t,
                     "%.3f s" % t2, t2 / t, None, ""))
        notes.append("find: the tree of %d files in %d directories; "
                     "/.listening/tree mirrors its directories (its files "
                     "have no listening audio: the mirror lists none); the "
                     "whole mount also walks /.listening/, which mirrors "
                     "every directory" % (ntree, max(1, ntree // PER_DIR)))
    finally:
        rc = sfs.stop()
        bind.stop()
        if rc not in (0, None):
            log("speechfs exited %s:\n%s" % (
                rc, (work / "speechfs.log").read_text()[-3000:]))


def main():
    mb = int(os.environ.get("SFS_BENCH_FS_MB", "1024"))
    nfiles = int(os.environ.get("SFS_BENCH_FS_FILES", "10000"))
    ntree = int(os.environ.get("SFS_BENCH_FS_TREE", "100000"))
    for tool in ("bindfs", "fusermount3", "openssl", "dd", "cc",
                 "pkg-config"):
        if not shutil.which(tool):
            log("%s is not installed" % tool)
            return 1
    for b in (SFSD, SPEECHFS, BUILD / "libspeechfs.a"):
        if not b.exists():
            log("%s is not built (make)" % b)
            return 1
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        log("needs root (drop_caches) and /dev/fuse")
        return 1
    work = pathlib.Path(tempfile.mkdtemp(prefix="sfs-bench-fs-",
                                         dir="/var/tmp"))
    rows = []
    notes = []
    t0 = time.monotonic()
    try:
        run(work, mb, nfiles, ntree, rows, notes)
    except (BenchError, OSError, subprocess.SubprocessError) as exc:
        log("FAILED: %s" % exc)
        return 1
    finally:
        for d in (work / "mnt", work / "bind", work / "mnt-bulk"):
            umount(d)
        shutil.rmtree(work, ignore_errors=True)
    print("bench_fs: speechfs vs native and bindfs, %d MiB file, %d small "
          "files, tree of %d, %d CPUs, %.0f s, load average %.1f" % (
              mb, nfiles, ntree, os.cpu_count() or 1,
              time.monotonic() - t0, os.getloadavg()[0]))
    print("  %-28s %14s %14s %7s  %s" % ("measure", "speechfs",
                                         "baseline", "ratio", "target"))
    for name, val, basev, ratio, want, label in rows:
        verdict = "" if want is None else mark(ratio >= want)
        print("  %-28s %14s %14s %7s  %s %s" % (
            name, val, basev, "-" if ratio is None else "%.2f" % ratio,
            label, verdict))
    for n in notes:
        print("  note: " + n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
