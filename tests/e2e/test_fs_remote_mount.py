"""Mounting a server's store as a new user does it, from the README and
speechfs(1): an /etc/fstab entry through the package's helper
(packaging/debian/mount.fuse.speechfs, run as mount(8) runs it, the
mount in the background as from fstab), against a real speechfsd on
127.0.0.1; what the mount says and how it ends when given bad input."""
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
import requests

import readme
from conftest import ROOT
from fsutil import SPEECHFS, Server, is_mounted, store  # noqa: F401

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


def helper(tmp, *args):
    """The package's fstab helper as mount(8) runs it (as root, with the
    entry's first two fields and its options), calling the speechfs under
    test instead of /usr/bin/speechfs."""
    h = tmp / "mount.fuse.speechfs"
    h.write_text(HELPER.read_text().replace("/usr/bin/speechfs",
                                            str(SPEECHFS)))
    h.chmod(0o755)
    return subprocess.run([str(h), *args], capture_output=True, text=True,
                          timeout=60)


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

