"""Shipping: the Debian package (built with `make deb`, its contents,
lintian, installed with dpkg, the installed daemon and admin CLI at work,
a purge that keeps the store unless asked, purged at teardown whatever
happened), the man pages and the shipped default configuration. The
units under systemd are in test_pkg_systemd.py, `make run` in
test_make_run.py.

These tests install a package system-wide: they need root, as the test
machine is (a disposable one)."""
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest
import requests

import readme
from pkgtest import (API, BUILD, ROOT, VERSION, clean_env, deb,  # noqa: F401
                     dpkg, free_port, installed, mounts,
                     packaged_admin, purge, readme_pkg_blocks, run, stop,
                     unit_value, wait_healthy)

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="installs a package: needs root")


# ---- the sources: man pages and the default configuration ---------------

MAN = [ROOT / "packaging/man/speechfs.1", ROOT / "packaging/man/speechfsd.8"]


@pytest.mark.parametrize("page", MAN, ids=[p.name for p in MAN])
def test_man_page_renders_without_warnings(page):
    p = run(["groff", "-man", "-ww", "-z", str(page)])
    assert p.stderr == ""
    p = run(["man", "-l", str(page)], env=clean_env(MANWIDTH="80"))
    assert p.stderr == "", p.stderr
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES",
                    "EXIT STATUS", "EXAMPLES"):
        assert f"\n{section}\n" in p.stdout, section


def c_keys(path, pattern):
    return set(re.findall(pattern, (ROOT / path).read_text()))


def test_man_and_config_name_every_option():
    """Every core and daemon key (read from the sources) is in the shipped
    configuration, commented out, and in speechfsd(8); every long option of
    the daemon and the admin CLI is in speechfsd(8), of the mount in
    speechfs(1)."""
    core = c_keys("core/store.c", r'\b(?:I64|INT|BOOL|STR)\("([a-z0-9_.]+)"')
    daemon = c_keys("httpd/config.c", r'K\("(http\.[a-z_]+)"')
    assert len(core) >= 19 and len(daemon) >= 14, (core, daemon)
    conf = (ROOT / "packaging/debian/speechfsd.conf").read_text()
    shown = set(re.findall(r"^#([a-z0-9_.]+) =", conf, re.M))
    # the unit passes only --config: where the daemon is lives in the file
    active = dict(re.findall(r"^([a-z][a-z0-9_.]*) = (.*)$", conf, re.M))
    assert active == {"store": "/var/lib/speechfs/store",
                      "listen": "127.0.0.1:8080"}, active
    own = {"log.level", "jobs.enabled"}
    assert shown | set(active) == core | daemon | own | {"store", "listen"}, \
        (shown ^ (core | daemon | own))
    man8 = (ROOT / "packaging/man/speechfsd.8").read_text()
    man8 = man8.replace("\\-", "-")
    for k in core | daemon | own:
        assert k in man8, k
    # every option of the daemon and of the admin table (test_man.py
    # compares each command's --help with its own section)
    longopts = c_keys("httpd/main.c", r'\{\s*"([a-z-]+)", (?:required|no)_arg')
    assert {"store", "listen", "config", "no-workers"} <= longopts
    admin = c_keys("httpd/admin.c", r'\[O_[A-Z_]+\] = \{ "([a-z-]+)"')
    assert {"store", "json", "name", "max-bytes", "scopes"} <= admin
    for opt in longopts | admin:
        assert f"--{opt}" in man8, opt
    man1 = (ROOT / "packaging/man/speechfs.1").read_text().replace("\\-", "-")
    for opt in ("--store", "--user", "--config", "-f", "-d", "-s", "ro",
                "allow_other", "uid=", "umask=", "no_workers", "listening=",
                "generate=", "--version"):
        assert opt in man1, opt


def test_default_config_uncommented_is_accepted(tmp_path):
    """The shipped configuration with every line uncommented (the defaults)
    starts the daemon; one misspelt key stops it with status 2."""
    sfsd = BUILD / "speechfsd"
    conf = (ROOT / "packaging/debian/speechfsd.conf").read_text()
    active = tmp_path / "all.conf"
    active.write_text(re.sub(r"^#([a-z0-9_.]+ =)", r"\1", conf, flags=re.M))
    store = tmp_path / "store"
    run([str(sfsd), "init", "--store", str(store)])
    port = free_port()
    proc = subprocess.Popen([str(sfsd), "--store", str(store), "--listen",
                             f"127.0.0.1:{port}", "--config", str(active)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        stop(proc)
    bad = tmp_path / "bad.conf"
    bad.write_text("http.thraeds = 4\n")
    p = run([str(sfsd), "--store", str(store), "--listen",
             f"127.0.0.1:{free_port()}", "--config", str(bad)], check=False)
    assert p.returncode == 2 and "bad.conf:1" in p.stderr, p.stderr


def test_make_install_installs_binaries_and_man_pages(tmp_path):
    dest = tmp_path / "dest"
    run(["make", "-C", str(ROOT), f"B={BUILD}", "install", "PREFIX=/usr",
         f"DESTDIR={dest}"], timeout=300, env=clean_env())
    for f in ("usr/bin/speechfs", "usr/sbin/speechfsd",
              "usr/share/man/man1/speechfs.1",
              "usr/share/man/man8/speechfsd.8"):
        assert (dest / f).is_file(), f
    assert os.access(dest / "usr/sbin/speechfsd", os.X_OK)
    p = run([str(dest / "usr/sbin/speechfsd"), "--version"])
    assert p.stdout.strip() == f"speechfsd {VERSION}"
    p = run([str(dest / "usr/bin/speechfs"), "--version"])
    assert p.stdout.startswith(f"speechfs {VERSION} ")


# ---- the Debian package ----------------------------------------------------

def test_deb_contents(deb):
    listing = run(["dpkg-deb", "-c", str(deb)]).stdout
    files = {ln.split()[5].lstrip(".") for ln in listing.splitlines()}
    for f in ("/usr/sbin/speechfsd", "/usr/bin/speechfs",
              "/usr/share/man/man1/speechfs.1.gz",
              "/usr/share/man/man8/speechfsd.8.gz",
              "/etc/speechfs/speechfsd.conf",
              "/lib/systemd/system/speechfsd.service",
              "/lib/systemd/system/speechfs@.service",
              "/usr/share/doc/speechfs/copyright",
              "/usr/share/doc/speechfs/examples/mount-example.conf",
              "/sbin/mount.fuse.speechfs",
              "/usr/share/man/man8/mount.fuse.speechfs.8.gz"):
        assert f in files, f
    # the web page: every file of www/
    www = ROOT / "www"
    page = {"/usr/share/speechfs/www/" + str(p.relative_to(www))
            for p in www.rglob("*") if p.is_file()}
    assert "/usr/share/speechfs/www/index.html" in page
    assert page <= files, sorted(page - files)
    assert re.search(r"^-rwxr-xr-x root/root .* ./usr/sbin/speechfsd$",
                     listing, re.M)
    with tempfile.TemporaryDirectory() as d:
        run(["dpkg-deb", "-e", str(deb), d])
        conffiles = pathlib.Path(d, "conffiles").read_text().split()
        assert conffiles == ["/etc/speechfs/speechfsd.conf"]
        postinst = pathlib.Path(d, "postinst").read_text()
        assert "adduser --system" in postinst
        assert "deb-systemd-helper enable 'speechfsd.service'" in postinst
        assert "speechfs@" not in postinst  # templates are not enabled
    fields = run(["dpkg-deb", "-f", str(deb), "Version", "Depends"]).stdout
    assert f"Version: {VERSION}\n" in fields
    depends = fields.split("Depends:")[1]
    for d in ("libmicrohttpd12", "libfuse3-3", "libsqlite3-0", "fuse3",
              "adduser"):
        assert d in depends, d


def test_make_deb_refuses_a_version_without_changelog_entry(tmp_path):
    """VERSION is the one version: a package is not built under another."""
    deb_dir = tmp_path / "packaging/debian"
    deb_dir.mkdir(parents=True)
    for f in ("build-deb.sh", "changelog"):
        shutil.copy2(ROOT / "packaging/debian" / f, deb_dir / f)
    (tmp_path / "VERSION").write_text("9.9.9\n")
    p = run([str(deb_dir / "build-deb.sh")], check=False, cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert f"changelog is at {VERSION} but VERSION says 9.9.9" in p.stderr
    assert not (tmp_path / "build").exists()


def test_lintian_has_no_errors(deb):
    p = run(["lintian", "--no-tag-display-limit", str(deb)], check=False,
            timeout=300)
    errors = [ln for ln in p.stdout.splitlines() if ln.startswith("E:")]
    assert not errors, p.stdout
    assert p.returncode == 0, p.stdout + p.stderr


def start_as_unit():
    """The daemon as speechfsd.service runs it (its ExecStart, as its user,
    on the packaged configuration, which the user must be able to read),
    on a free port (--listen over the file's) in case a systemd runs the
    unit itself; (process, port)."""
    (execstart,) = unit_value("speechfsd.service", "ExecStart")
    argv = execstart.split()
    assert argv == ["/usr/sbin/speechfsd", "--config",
                    "/etc/speechfs/speechfsd.conf"]
    port = free_port()
    proc = subprocess.Popen(["setpriv", "--reuid=speechfs",
                             "--regid=speechfs", "--init-groups", *argv,
                             "--listen", f"127.0.0.1:{port}"],
                            cwd="/", stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    return proc, port


def test_installed_package_serves(installed, tmp_path):
    # the postinst made the system user and its store
    run(["id", "speechfs"])
    state = pathlib.Path("/var/lib/speechfs/store")
    assert (state / "speechfs.db").is_file()
    st = state.stat()
    assert st.st_mode & 0o777 == 0o700
    assert run(["stat", "-c", "%U", str(state)]).stdout.strip() == "speechfs"
    assert pathlib.Path("/etc/speechfs/speechfsd.conf").is_file()
    p = run(["/usr/sbin/speechfsd", "--version"])
    assert p.stdout.strip() == f"speechfsd {VERSION}"
    p = run(["/usr/bin/speechfs", "--version"])
    assert p.stdout.startswith(f"speechfs {VERSION} ")
    p = run(["man", "-w", "speechfsd"])
    assert "/usr/share/man/man8/speechfsd.8.gz" in p.stdout
    for unit in ("speechfsd.service", "speechfs@.service"):
        if shutil.which("systemd-analyze"):
            if unit.startswith("speechfs@"):
                mc = pathlib.Path("/etc/speechfs/mount-pkgtest.conf")
                mc.write_text("STORE=/var/lib/speechfs/store\n"
                              "USER=x\nMOUNTPOINT=/srv/pkgtest\n")
                unit = "speechfs@pkgtest.service"
            try:
                run(["systemd-analyze", "verify", unit])
            finally:
                pathlib.Path("/etc/speechfs/mount-pkgtest.conf").unlink(
                    missing_ok=True)

    # a store of our own, made with the installed admin CLI
    store = tmp_path / "store"
    cli = "/usr/sbin/speechfsd"

    def admin(*args):
        return json.loads(run([cli, *args, "--store", str(store),
                               "--json"]).stdout)

    admin("init")
    tenant = admin("tenant", "create", "--name", "pkg")["id"]
    user = admin("user", "create", "--tenant", tenant, "--name", "u")["id"]
    key = admin("key", "create", "--user", user, "--scopes",
                "read,write,delete,share")["key"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([cli, "--store", str(store), "--listen",
                             f"127.0.0.1:{port}", "--config",
                             "/etc/speechfs/speechfsd.conf"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_healthy(base, proc)
        h = {"X-API-Key": key}
        r = requests.post(base + API, headers=h,
                          files={"file": ("hello.txt", b"hello, package")},
                          data={"name": "hello"}, timeout=30)
        assert r.status_code == 201, r.text
        fid = r.json()["id"]
        r = requests.get(base + API, headers=h, timeout=30)
        assert r.status_code == 200
        assert [f["id"] for f in r.json()["files"]] == [fid]
        r = requests.get(f"{base}{API}/{fid}/content", headers=h, timeout=30)
        assert r.content == b"hello, package"
        r = requests.get(base + API, headers={"X-API-Key": "x" * 43},
                         timeout=30)
        assert r.status_code == 401
        # the page, from the package's files, with the modules it names
        r = requests.get(base + "/", timeout=30)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert "<title>speechfs</title>" in r.text
        scripts = re.findall(r'src="(v/[0-9a-f]{16}/js/[a-z]+\.js)"', r.text)
        assert "js/boot.js" in " ".join(scripts) and \
            "js/app.js" in " ".join(scripts), scripts
        for src in scripts:
            r = requests.get(f"{base}/{src}", timeout=30)
            assert r.status_code == 200 and r.content, src
            assert r.content == (ROOT / "www" / src[19:]).read_bytes(), src
    finally:
        stop(proc)

    # the unit's own command line, as the unit's user, on the packaged
    # store and configuration (another port, in case a systemd runs it)
    assert unit_value("speechfsd.service", "User") == ["speechfs"]
    proc, port = start_as_unit()
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        stop(proc)


@pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse")
def test_installed_fstab_helper_mounts(installed, tmp_path):
    """`mount -t fuse.speechfs STORE MOUNTPOINT -o user=ID,...` (what an
    /etc/fstab entry runs) mounts through /sbin/mount.fuse.speechfs, with
    mount(8)'s own options dropped; only root may use it."""
    store = tmp_path / "store"
    cli = "/usr/sbin/speechfsd"
    run([cli, "init", "--store", str(store)])
    tenant = run([cli, "tenant", "create", "--store", str(store), "--name",
                  "t"]).stdout.strip()
    user = run([cli, "user", "create", "--store", str(store), "--tenant",
                tenant, "--name", "u"]).stdout.strip()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run(["mount", "-t", "fuse.speechfs", str(store), str(mnt), "-o",
         f"user={user},no_workers,nofail,_netdev,noauto"])
    try:
        assert str(mnt) in mounts()
        assert sorted(os.listdir(mnt)) == [".listening", ".shared", ".trash"]
        (mnt / "note.txt").write_bytes(b"via fstab")
        assert (mnt / "note.txt").read_bytes() == b"via fstab"
    finally:
        run(["umount", str(mnt)], check=False)
    assert str(mnt) not in mounts()
    p = run(["setpriv", "--reuid=nobody", "--regid=nogroup",
             "--clear-groups", "/sbin/mount.fuse.speechfs", str(store),
             str(mnt), "-o", f"user={user}"], check=False)
    assert p.returncode == 1 and "mounted by root" in p.stderr
    assert str(mnt) not in mounts()


def test_readme_service_user_block_and_fstab_line(installed):
    """The README's commands for the packaged service (a tenant, a user and
    a key made as the service user, then a request) against the unit's own
    command line, and its /etc/fstab line mounted with `mount -T` from a
    scratch fstab (as `mount` would from /etc/fstab)."""
    proc, port = start_as_unit()
    scratch = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))
    mnt = scratch / "speech"
    sh = readme.Session(scratch, clean_env(), subst=[
        ("127.0.0.1:8080", f"127.0.0.1:{port}")])
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        out = ""
        for cmd in readme_pkg_blocks()[1]:
            out = sh.run(cmd, retry_for=0)
        assert json.loads(out)["files"] == [], out
        user = sh.run('echo "$U"').strip()
        assert re.fullmatch(r"[0-9a-f-]{36}", user), user

        (line,) = [b.text for b in readme.blocks() if b.kind == "fstab"]
        store, where = line.split()[:2]
        assert store == "/var/lib/speechfs/store"   # the package's store
        line = line.replace(where, str(mnt)).replace("USER_ID", user)
        os.chmod(scratch, 0o755)
        mnt.mkdir()
        shutil.chown(mnt, "speechfs", "speechfs")
        (scratch / "fstab").write_text(line)
        # Debian's udev rule makes /dev/fuse 0666, so that users mount
        # through the setuid fusermount3; a container's /dev may not
        fuse_mode = os.stat("/dev/fuse").st_mode & 0o777
        os.chmod("/dev/fuse", 0o666)
        try:
            run(["mount", "-T", str(scratch / "fstab"), str(mnt)])
        finally:
            os.chmod("/dev/fuse", fuse_mode)
        try:
            assert str(mnt) in mounts()
            # without allow_other, only the mounting user sees inside
            ls = run(["runuser", "-u", "speechfs", "--", "ls", "-A",
                      str(mnt)])
            assert ls.stdout.split() == [".listening", ".shared", ".trash"]
        finally:
            run(["umount", str(mnt)], check=False)
        assert str(mnt) not in mounts()
    finally:
        sh.close()
        stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def test_purge_keeps_the_store_unless_asked(installed):
    """dpkg --purge keeps the store and its owner by default and says
    where it is; a new installation uses it again; only the answer 'yes'
    to the package's question removes it."""
    tenant = packaged_admin("tenant", "create", "--name", "kept")
    show = run(["debconf-show", "speechfs"]).stdout
    assert "speechfs/purge_store: false" in show, show
    p = purge()
    assert p.returncode == 0, p.stderr
    assert "the store /var/lib/speechfs/store was kept" in p.stdout + p.stderr
    st = run(["dpkg-query", "-W", "-f=${Status}", "speechfs"], check=False)
    assert "not-installed" in st.stdout or st.returncode != 0
    assert not os.path.exists("/usr/sbin/speechfsd")
    assert not os.path.exists("/etc/speechfs/speechfsd.conf")
    assert pathlib.Path("/var/lib/speechfs/store/speechfs.db").is_file()
    run(["id", "speechfs"])
    # installed again: the same store, the tenant still there
    dpkg("-i", str(installed))
    q = json.loads(packaged_admin("tenant", "quota", "--id", tenant,
                                  "--json"))
    assert q["name"] == "kept"
    # the administrator says yes: the store and its owner go
    p = purge(remove_store=True)
    assert p.returncode == 0, p.stderr
    assert not os.path.exists("/var/lib/speechfs")
    assert run(["id", "speechfs"], check=False).returncode != 0
    assert not os.path.exists("/etc/speechfs/speechfsd.conf")


def test_apt_remove_keeps_everything(installed):
    tenant = packaged_admin("tenant", "create", "--name", "kept")
    dpkg("--remove", "speechfs")
    assert not os.path.exists("/usr/sbin/speechfsd")
    assert pathlib.Path("/etc/speechfs/speechfsd.conf").is_file()
    assert pathlib.Path("/var/lib/speechfs/store/speechfs.db").is_file()
    dpkg("-i", str(installed))
    q = json.loads(packaged_admin("tenant", "quota", "--id", tenant,
                                  "--json"))
    assert q["name"] == "kept"
