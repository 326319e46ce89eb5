"""Everyday tools over the mount: tar -x of an archive into it and tar -c
out of it give identical trees (bytes, file and directory mtimes, user.*
attributes with --xattrs); du counts what stat says; find lists every
entry, the special trees included, without complaints."""
import os
import pathlib
import subprocess

from fsutil import mnt, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."
SPECIAL = (".listening", ".trash", ".shared")
TAR_X = ["--xattrs", "--xattrs-include=user.*"]


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def make_tree(root):
    """A tree with nested, empty and odd-named directories, files of odd
    sizes with nanosecond mtimes, and a user.* attribute."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "empty dir").mkdir()
    (root / "deep" / "er" / "est").mkdir(parents=True)
    files = {
        "top.txt": b"top level\n",
        "a/one.wav": os.urandom(70001),
        "a/b/zero.bin": b"",
        "a/b/two words.txt": b"two words\n" * 100,
        "deep/er/est/Ünïcödé 会议.flac": os.urandom(513),
    }
    for i, (rel, data) in enumerate(sorted(files.items())):
        p = root / rel
        p.write_bytes(data)
        t = 1_600_000_000_000_000_000 + i * 1_000_000_123
        os.utime(p, ns=(t, t))
    os.setxattr(root / "top.txt", "user.origin", b"recorder 7")
    os.setxattr(root / "a" / "one.wav", "user.note", "ä\0binary".encode())
    for i, rel in enumerate(["a/b", "a", "empty dir", "deep/er/est",
                             "deep/er", "deep"]):
        t = 1_500_000_000_000_000_000 + i * 86_400_000_000_001
        os.utime(root / rel, ns=(t, t))
    return files


def snapshot(root, xattrs=True):
    """{relative path: (kind, bytes, mtime_ns, user.* attributes)} of a
    tree, skipping the mount's special directories and its own
    user.speechfs.* / derived attributes."""
    root = pathlib.Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if pathlib.Path(dirpath) == root:
            dirnames[:] = [d for d in dirnames if d not in SPECIAL]
        for n in dirnames + filenames:
            p = pathlib.Path(dirpath) / n
            rel = str(p.relative_to(root))
            st = os.stat(p)
            attrs = {}
            if xattrs:
                for a in os.listxattr(p):
                    if a.startswith("user.") and not a.startswith(P) and \
                            a not in ("user.mime_type",
                                      "user.xdg.origin.url"):
                        attrs[a] = os.getxattr(p, a)
            if n in filenames:
                out[rel] = ("f", p.read_bytes(), st.st_mtime_ns, attrs)
            else:
                out[rel] = ("d", None, st.st_mtime_ns, attrs)
    return out


def test_tar_in_and_out(mnt, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    make_tree(src)
    want = snapshot(src)
    # --xattrs makes a POSIX archive: nanosecond mtimes and attributes
    arc = tmp_path / "in.tar"
    run("tar", *TAR_X, "-cf", str(arc), "-C", str(src), ".").check_returncode()
    p = run("tar", *TAR_X, "-xf", str(arc), "-C", str(mnt.dir))
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert snapshot(mnt.dir) == want
    assert xget(mnt.path("a", "one.wav"), P + "sha256") == \
        run("sha256sum", str(src / "a" / "one.wav")).stdout.split()[0]
    # tar -c out of the mount: no "file changed as we read it", and the
    # archive extracts to the same tree
    out_arc = tmp_path / "out.tar"
    p = run("tar", *TAR_X, *["--exclude=./" + s for s in SPECIAL], "-cf",
            str(out_arc), "-C", str(mnt.dir), ".")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    back = tmp_path / "back"
    back.mkdir()
    p = run("tar", *TAR_X, "-xf", str(out_arc), "-C", str(back))
    assert p.returncode == 0, p.stderr
    assert snapshot(back) == want
    # the listings of both archives agree (names, sizes, full times)
    lists = [run("tar", "--full-time", "-tvf", str(a)).stdout for a in
             (arc, out_arc)]
    norm = [sorted(" ".join(line.split()[2:]) for line in lst.splitlines()
                   if not line.rstrip().endswith(" ./"))
            for lst in lists]
    assert norm[0] == norm[1]


def test_tar_of_the_mount_restores_into_it(mnt, tmp_path):
    """An archive made of the mount carries its user.speechfs.*
    attributes; extracting it back into the mount succeeds (the read-only
    ones are refused quietly, the writable ones are applied)."""
    os.mkdir(mnt.path("orig"))
    f = mnt.path("orig", "talk.wav")
    f.write_bytes(b"RIFF talk")
    os.setxattr(f, P + "tags", b"board,2026")
    os.setxattr(f, P + "description", b"the board talk")
    os.utime(f, ns=(1_650_000_000_000_000_005, 1_650_000_000_000_000_005))
    arc = tmp_path / "m.tar"
    run("tar", *TAR_X, "-cf", str(arc), "-C", str(mnt.path("orig")),
        ".").check_returncode()
    os.mkdir(mnt.path("copy"))
    p = run("tar", *TAR_X, "-xf", str(arc), "-C", str(mnt.path("copy")))
    assert p.returncode == 0, p.stderr
    g = mnt.path("copy", "talk.wav")
    assert g.read_bytes() == b"RIFF talk"
    assert os.stat(g).st_mtime_ns == 1_650_000_000_000_000_005
    assert xget(g, P + "tags") == "2026,board"
    assert xget(g, P + "description") == "the board talk"
    assert xget(g, P + "id") != xget(f, P + "id")


def test_du(mnt):
    sizes = {"z.bin": 0, "one.bin": 1, "b511.bin": 511, "b512.bin": 512,
             "b513.bin": 513, "big.bin": 100_000}
    os.makedirs(mnt.path("d", "sub"))
    for n, size in sizes.items():
        mnt.path("d", n).write_bytes(b"x" * size)
    mnt.path("d", "sub", "s.bin").write_bytes(b"y" * 1000)
    for n, size in sizes.items():
        p = str(mnt.path("d", n))
        assert os.stat(p).st_blocks == (size + 511) // 512
        assert int(run("du", "-B1", p).stdout.split()[0]) == \
            (size + 511) // 512 * 512
        assert int(run("du", "-b", p).stdout.split()[0]) == size
    ndirs = 2
    dir_blocks = os.stat(mnt.path("d")).st_blocks * 512
    want = sum((s + 511) // 512 * 512 for s in sizes.values()) + 1024 + \
        ndirs * dir_blocks
    p = run("du", "-s", "-B1", str(mnt.path("d")))
    assert p.returncode == 0 and p.stderr == ""
    assert int(p.stdout.split()[0]) == want
    apparent = sum(sizes.values()) + 1000 + ndirs * \
        os.stat(mnt.path("d")).st_size
    assert int(run("du", "-sb", str(mnt.path("d"))).stdout.split()[0]) == \
        apparent
    # a file being written counts with its current size
    fd = os.open(mnt.path("d", "open.bin"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"w" * 5000)
        assert int(run("du", "-b", str(mnt.path("d", "open.bin")))
                   .stdout.split()[0]) == 5000
    finally:
        os.close(fd)
    # the whole mount, special trees and all, without complaints
    p = run("du", "-s", str(mnt.dir))
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_find_lists_everything(mnt, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = make_tree(src)
    run("cp", "-a", str(src) + "/.", str(mnt.dir)).check_returncode()
    mnt.path("gone.txt").write_bytes(b"soon in the trash")
    os.unlink(mnt.path("gone.txt"))
    dirs = {"a", "a/b", "empty dir", "deep", "deep/er", "deep/er/est"}
    p = run("find", str(mnt.dir), "-mindepth", "1")
    assert p.returncode == 0 and p.stderr == "", p.stderr
    found = {os.path.relpath(x, mnt.dir) for x in p.stdout.splitlines()}
    plain = {x for x in found if x.split("/")[0] not in SPECIAL}
    assert plain == dirs | set(files)
    assert ".trash/gone.txt" in found
    assert {".listening", ".trash", ".shared"} <= found
    # the listening mirror repeats the directory tree
    assert {".listening/" + d for d in dirs} <= found
    # -type and -size work from the attributes
    p = run("find", str(mnt.dir), "-path", str(mnt.path(".*")), "-prune",
            "-o", "-type", "f", "-size", "+1k", "-print")
    big = {os.path.relpath(x, mnt.dir) for x in p.stdout.splitlines()}
    assert big == {n for n, d in files.items() if len(d) > 1024}
    p = run("find", str(mnt.dir), "-path", str(mnt.path(".*")), "-prune",
            "-o", "-type", "d", "-empty", "-print")
    assert {os.path.relpath(x, mnt.dir) for x in p.stdout.splitlines()} \
        == {"empty dir"}
    # every entry has a distinct inode (no "file system loop")
    inos = {}
    for rel in plain:
        inos.setdefault(os.lstat(mnt.path(rel)).st_ino, []).append(rel)
    assert all(len(v) == 1 for v in inos.values()), inos
