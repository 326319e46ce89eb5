#!/usr/bin/env python3
"""FUSE mount benchmark: speechfs side by side with the native file system
and bindfs (a pass-through FUSE mount) in one run, printed as ratios.

1. sequential read (dd bs=1M) of a big file, warm and cold page cache:
   through the mount, straight from the blob under STORE/blobs (native)
   and through bindfs of the blob directory;
2. cp of a big file into the mount (close returns after the durable
   commit and the hash) vs cp to a plain directory + sync + openssl dgst
   -sha256 of it;
3. creating many small files (the same 100 bytes each, and distinct
   bytes each: close() returns after a durable commit, bindfs syncs
   nothing), `ls -l` of the directory holding them and `find` over a tree
   of 100,000 files in 1,000 directories: speechfs vs bindfs of a plain
   directory. The tree is made beforehand, in the store through core's
   bulk create (tests/bench/helpers/fs_tree.c, built here) and as plain
   files. Before each `ls -l`/`find` both mounts are remounted (empty
   kernel dentry/attr caches) and the page cache is dropped.

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
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
SPEECHFS = BUILD / "speechfs"
CHUNK = 1 << 20


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
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", str(path)], timeout=60)
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-uz", str(path)], timeout=60)


class SfsMount:
    """`speechfs -f` of one user on a mountpoint."""

    def __init__(self, store, user, mnt, logpath):
        self.store, self.user, self.mnt = store, user, mnt
        self.logpath = logpath
        self.proc = None

    def start(self):
        self.log = open(self.logpath, "a")
        self.proc = subprocess.Popen(
            [str(SPEECHFS), "--store", str(self.store), "--user",
             self.user, str(self.mnt), "-f", "-o", "no_workers"],
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


def create_files(d, n, distinct=False):
    """n small files in directory d; returns seconds."""
    body = b"x" * 100
    t0 = time.monotonic()
    for i in range(n):
        fd = os.open(os.path.join(d, "f%05d.txt" % i),
                     os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"%08d" % i + body[8:] if distinct else body)
        finally:
            os.close(fd)
    return time.monotonic() - t0


PER_DIR = 100


def build_helper(work):
    """Compile the tree filler against the built core library."""
    exe = work / "fs_tree"
    libs = subprocess.run(
        ["pkg-config", "--libs", "sqlite3", "jansson", "openssl",
         "libcurl", "sndfile"], capture_output=True, text=True)
    if libs.returncode != 0:
        raise BenchError("pkg-config: %s" % libs.stderr.strip())
    cmd = [os.environ.get("CC", "cc"), "-O2", "-D_GNU_SOURCE",
           "-I%s" % (ROOT / "include"), "-o", str(exe),
           str(ROOT / "tests" / "bench" / "helpers" / "fs_tree.c"),
           str(BUILD / "libspeechfs.a"), *libs.stdout.split(),
           "-lmp3lame", "-lm", "-pthread"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError("building fs_tree: %s" % p.stderr.strip()[-500:])
    return exe


def make_trees(work, store, user, plain, ntree):
    """ntree files under /tree/ of the store and of plain/, 100 a dir."""
    ndirs = max(1, (ntree + PER_DIR - 1) // PER_DIR)
    exe = build_helper(work)
    p = subprocess.run([str(exe), str(store), user, str(ndirs),
                        str(ntree)], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        raise BenchError("fs_tree: %s" % p.stderr.strip()[-500:])
    for i in range(ntree):
        if i % PER_DIR == 0:
            d = plain / "tree" / ("d%04d" % (i // PER_DIR))
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

        # 4. creating nfiles small files: mount vs bindfs of plain/
        bind.start()
        log("creating %d small files (speechfs, bindfs)" % nfiles)
        os.mkdir(mnt / "many")
        os.mkdir(bmnt / "many")
        c_s = create_files(mnt / "many", nfiles)
        c_b = create_files(bmnt / "many", nfiles)
        rows.append(("create %d files" % nfiles,
                     "%.0f /s" % (nfiles / c_s), "%.0f /s" % (nfiles / c_b),
                     c_b / c_s, 1.0, ">= 1.0"))
        ndist = max(1, nfiles // 5)
        os.mkdir(mnt / "distinct")
        os.mkdir(bmnt / "distinct")
        d_s = create_files(mnt / "distinct", ndist, True)
        d_b = create_files(bmnt / "distinct", ndist, True)
        rows.append(("  %d, distinct bytes" % ndist,
                     "%.0f /s" % (ndist / d_s), "%.0f /s" % (ndist / d_b),
                     d_b / d_s, None, ""))
        notes.append("create: close() returns after a durable commit "
                     "(one fdatasync of the WAL per file; distinct bytes "
                     "add fsync of the blob and of its directory); "
                     "bindfs syncs nothing")

        # 3. ls -l and find, each after a remount of both + drop_caches
        def fresh():
            if sfs.stop() not in (0, None):
                raise BenchError("speechfs exited non-zero")
            bind.stop()
            drop_caches()
            sfs.start()
            bind.start()

        log("ls -l of %d files, find (remount + drop_caches each)" %
            nfiles)
        ls_s = ls_b = f_s = f_b = None
        for _ in range(2):
            fresh()
            t = timed(["ls", "-l", str(mnt / "many")])
            ls_s = t if ls_s is None else min(ls_s, t)
            t = timed(["ls", "-l", str(bmnt / "many")])
            ls_b = t if ls_b is None else min(ls_b, t)
            fresh()
            t = timed(["find", str(mnt / "tree")])
            f_s = t if f_s is None else min(f_s, t)
            t = timed(["find", str(bmnt / "tree")])
            f_b = t if f_b is None else min(f_b, t)
        nfind = sum(1 for _ in os.walk(bmnt / "tree")) + sum(
            len(f) for _, _, f in os.walk(bmnt / "tree"))
        rows.append(("ls -l %d files (cold)" % nfiles,
                     "%.3f s" % ls_s, "%.3f s" % ls_b, ls_b / ls_s, 2.0,
                     ">= 2.0"))
        rows.append(("find, %d entries (cold)" % nfind,
                     "%.3f s" % f_s, "%.3f s" % f_b, f_b / f_s, 1.0,
                     ">= 1.0"))
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
        notes.append("find: the tree of %d files in %d directories; the "
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
        for d in (work / "mnt", work / "bind"):
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
