"""The README cannot rot: every fenced block of README.md carries a
`<!-- test: KIND -->` marker, and its commands are run here (admin and
demo blocks) or in test_pkg.py (pkg blocks); blocks that are not commands
are checked against what they describe. See tests/e2e/readme.py."""
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time

import pytest
import requests

import readme

ROOT = readme.ROOT
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
API = "/api/v1/speech-services/files"


def of_kind(kind):
    return [b for b in readme.blocks() if b.kind == kind]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mounted(path):
    return subprocess.run(["mountpoint", "-q", str(path)]).returncode == 0


def healthy(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz",
                            timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def session_env(home, **extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(HOME=str(home), PATH=f"{BUILD}:{env.get('PATH', '')}",
               LC_ALL="C.UTF-8")
    env.update(extra)
    return env


# ---- the blocks themselves ------------------------------------------------

def test_every_block_has_a_known_marker():
    bs = readme.blocks()
    assert len(bs) >= 10
    for b in bs:
        assert b.kind in readme.KINDS, \
            f"{b}: a block needs <!-- test: KIND --> before it, one of " \
            f"{sorted(readme.KINDS)}"
    for kind in ("admin", "demo", "pkg"):
        assert of_kind(kind), kind


def test_command_splitter():
    text = ("A=1  # set\ncurl -X POST \\\n  -d '{\"a\":\n 1}' x | \n"
            "  tee f\n\n# only a comment\necho \"a # b\"\n")
    assert readme.commands(text) == [
        "A=1", "curl -X POST    -d '{\"a\":\n 1}' x |    tee f",
        "echo \"a # b\""]


def test_two_commands_are_what_ci_and_test_pkg_run():
    (b,) = of_kind("two-commands")
    assert readme.commands(b.text) == ["make run", "make test"]
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines()
          if ln and not ln.startswith("#")]
    assert ci[-1] == "make test"
    pkg = (ROOT / "tests/e2e/test_make_run.py").read_text()
    assert re.search(r'\["make", "run"\]', pkg)
    assert "def test_make_run_on_a_terminal" in pkg


def test_systemd_blocks_name_shipped_units():
    # debhelper's names: PACKAGE.UNIT.service, or UNIT.service
    units = {re.sub(r"^speechfs\.(?=.+\.service$)", "", p.name)
             for p in (ROOT / "packaging/debian").iterdir()}
    seen = 0
    for b in of_kind("systemd"):
        for cmd in readme.commands(b.text):
            m = re.match(r"sudo systemctl (\w+) (?:--now )?([\w@.-]+)", cmd)
            if not m:
                assert cmd.startswith(("journalctl -u ",
                                       "sudo editor /etc/speechfs/")), cmd
                continue
            seen += 1
            name = m.group(2)
            unit = re.sub(r"@.*", "@", name) + ".service"
            assert unit in units, name
    assert seen >= 3


def test_mount_config_block_has_the_example_keys():
    (b,) = of_kind("config")
    keys = [ln.split("=", 1)[0] for ln in b.text.splitlines() if "=" in ln]
    ex = (ROOT / "packaging/debian/mount-example.conf").read_text()
    ex_keys = [ln.split("=", 1)[0] for ln in ex.splitlines()
               if re.match(r"[A-Z]+=", ln)]
    assert keys == ex_keys
    unit = (ROOT / "packaging/debian/speechfs@.service").read_text()
    for k in keys:
        assert "$" + k in unit or "${" + k + "}" in unit, k


def test_fstab_line_is_what_the_helper_takes():
    (b,) = of_kind("fstab")
    store, mnt, fstype, opts, dump, passno = b.text.split()
    assert fstype == "fuse.speechfs" and (dump, passno) == ("0", "0")
    assert store.startswith("/") and mnt.startswith("/")
    helper = (ROOT / "packaging/debian/mount.fuse.speechfs").read_text()
    for o in opts.split(","):
        name = o.split("=")[0]
        assert name in helper, f"{name} is not handled by the helper"


def test_nginx_block_is_a_valid_configuration(tmp_path):
    (b,) = of_kind("nginx")
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text("pid %s/nginx.pid;\nerror_log stderr;\n"
                    "events {}\nhttp {\nclient_body_temp_path %s/tmp;\n"
                    "proxy_temp_path %s/tmp;\n%s\n}\n"
                    % (tmp_path, tmp_path, tmp_path, b.text))
    p = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c",
                        str(conf), "-e", "stderr"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


# ---- a fresh store: admin CLI, serve, mount ----------------------------------

def test_admin_blocks_on_a_fresh_store(tmp_path):
    port = free_port()
    sh = readme.Session(tmp_path, session_env(tmp_path), subst=[
        ("/srv/speechfs", str(tmp_path / "store")),
        ("127.0.0.1:8080", f"127.0.0.1:{port}")])
    daemon = None
    key = None
    try:
        for b in of_kind("admin"):
            for cmd in readme.commands(b.text):
                if re.match(r"speechfsd --store \S+ --listen", cmd):
                    daemon = sh.start(cmd, lambda: healthy(port))
                    continue
                out = sh.run(cmd, retry_for=0)
                if "key create" in cmd:
                    key = json.loads(out.splitlines()[-1])["key"]
                if cmd.startswith("ls -a"):
                    assert {".listening", ".shared", ".trash"} <= \
                        set(out.split())
        # what the blocks made: a store whose key works on the daemon, and
        # the mount came and went
        assert key and daemon
        r = requests.get(f"http://127.0.0.1:{port}{API}",
                         headers={"X-API-Key": key}, timeout=10)
        assert r.status_code == 200 and r.json()["files"] == []
        assert not mounted(tmp_path / "speech")
        rc, out = sh.raw(f"kill -TERM {daemon}; wait {daemon}", 60)
        assert rc == 0, out
        sh.bg.remove(daemon)
    finally:
        if mounted(tmp_path / "speech"):
            subprocess.run(["fusermount3", "-u", str(tmp_path / "speech")])
        sh.close()


# ---- against `make run` ------------------------------------------------------

@pytest.fixture
def demo(tmp_path):
    """packaging/run-demo.sh (what `make run` runs after building) with its
    store and mount in tmp_path, which is also where the README's demo
    commands run (`var/`, `mnt/`, `build/` relative to it); stopped with
    SIGINT like Ctrl-C, and it must exit 0 and unmount."""
    port = free_port()
    (tmp_path / "build").symlink_to(BUILD)
    log = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen(
        [str(ROOT / "packaging/run-demo.sh")], cwd=tmp_path, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
        env=session_env(tmp_path, B=os.path.relpath(BUILD, ROOT),
                        SPEECHFS_PORT=str(port),
                        SPEECHFS_VAR=str(tmp_path / "var"),
                        SPEECHFS_MNT=str(tmp_path / "mnt")))
    try:
        deadline = time.time() + 60
        while not (healthy(port) and mounted(tmp_path / "mnt")):
            # read by name: a seek of log moves the demo's own offset,
            # and a line it wrote then went over its first ones
            said = pathlib.Path(log.name).read_text(errors="replace")
            assert proc.poll() is None, said
            assert time.time() < deadline, said
            time.sleep(0.2)
        yield port
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        log.seek(0)
        text = log.read()
        log.close()
        if mounted(tmp_path / "mnt"):
            subprocess.run(["fusermount3", "-u", str(tmp_path / "mnt")])
            pytest.fail("make run left its mount behind:\n" + text)
        assert rc == 0, text


def test_demo_blocks_against_make_run(demo, tmp_path):
    port = demo
    env = dict(l.split("=", 1) for l in
               (tmp_path / "var/demo.env").read_text().split())
    home = tmp_path / "home"    # tools write dotfiles to HOME
    home.mkdir()
    sh = readme.Session(tmp_path, session_env(home))
    before = set(os.listdir(tmp_path))
    try:
        for b in of_kind("demo"):
            for cmd in readme.commands(b.text):
                sh.run(cmd)
        # the demo's files are under var/: the checkout stays clean
        assert set(os.listdir(tmp_path)) == before
        assert sh.run("pwd").strip() == str(tmp_path)
        # the upload went in whole, the MP3s are real, and the last state
        # of the mount example is what the API says
        var = tmp_path / "var"
        assert (var / "original.wav").read_bytes() == \
            (var / "meeting-2026-02-25.wav").read_bytes()
        for mp3 in ("listening.mp3", "listening-part.mp3"):
            p = subprocess.run(["mpg123", "-q", "-t", str(var / mp3)],
                               capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
        h = {"X-API-Key": env["SPEECHFS_KEY"]}
        base = f"http://127.0.0.1:{port}{API}"
        r = requests.get(base, params={"path": "/archive/"}, headers=h,
                         timeout=10)
        (f,) = r.json()["files"]
        assert f["isDeleted"] is False and f["publishMode"] == "INTERNAL"
        assert sorted(f["tags"]) == ["Engineering", "Meeting"]
        r = requests.get(f"{base}/{f['id']}/shares", headers=h, timeout=10)
        other = sh.run('echo "$OTHER"').strip()
        assert [(s["userId"], s["permission"]) for s in r.json()["shares"]] \
            == [(other, "VIEW")]
        # the README's error body has the keys a real error has
        (b,) = of_kind("error-body")
        r = requests.get(f"{base}/00000000-0000-4000-8000-000000000000",
                         headers=h, timeout=10)
        assert r.status_code == 404
        assert set(json.loads(b.text)) == set(r.json())
    finally:
        sh.close()


# ---- a store in a bucket: against the run's Ceph RADOS Gateway ---------------

def s3_config(gw, bucket, prefix):
    """The README's configuration, naming the test gateway's bucket."""
    (b,) = of_kind("bucket-config")
    out = []
    for ln in b.text.splitlines():
        k, v = (x.strip() for x in ln.split("=", 1))
        v = {"blob.s3.endpoint": gw.endpoint, "blob.s3.bucket": bucket,
             "blob.s3.prefix": prefix}.get(k, v)
        out.append(f"{k} = {v}")
    assert [ln.split(" = ")[0] for ln in out] == [
        "blob.backend", "blob.s3.endpoint", "blob.s3.bucket",
        "blob.s3.prefix", "blob.s3.region"]
    return "\n".join(out) + "\n"


def test_bucket_blocks_against_the_gateway(tmp_path, s3_bucket):
    gw, bucket = s3_bucket
    port = free_port()
    sh = readme.Session(tmp_path, session_env(tmp_path), subst=[
        ("AWS_ACCESS_KEY_ID=...", f"AWS_ACCESS_KEY_ID={gw.access_key}"),
        ("AWS_SECRET_ACCESS_KEY=...",
         f"AWS_SECRET_ACCESS_KEY={gw.secret_key}"),
        ("127.0.0.1:8080", f"127.0.0.1:{port}")])
    first, second = of_kind("bucket")
    try:
        # a new store in the bucket: the daemon records it at start
        (tmp_path / "speechfsd.conf").write_text(
            s3_config(gw, bucket, "new/"))
        sh.run(f"S={tmp_path / 'new'}", retry_for=0)
        daemon = None
        for cmd in readme.commands(first.text):
            if re.match(r"speechfsd --store \S+ --config", cmd):
                daemon = sh.start(cmd, lambda: healthy(port))
            else:
                sh.run(cmd, retry_for=0)
        assert daemon
        out = sh.run("speechfsd blob show --store $S", retry_for=0)
        # (the session's output has the daemon's log lines too)
        assert out.strip().splitlines()[-1].startswith(
            f"s3 s3://{bucket}/new/"), out
        rc, out = sh.raw(f"kill -TERM {daemon}; wait {daemon}", 60)
        assert rc == 0, out
        sh.bg.remove(daemon)
        # an existing store with a file moves into the bucket
        (tmp_path / "speechfsd.conf").write_text(
            s3_config(gw, bucket, "moved/"))
        old = tmp_path / "old"
        sh.run(f"S={old}; speechfsd init --store $S", retry_for=0)
        sh.run("T=$(speechfsd tenant create --store $S --name t) && "
               "U=$(speechfsd user create --store $S --tenant $T --name u)"
               " && speechfsd key create --store $S --user $U --json "
               "> key.json", retry_for=0)
        key = json.loads((tmp_path / "key.json").read_text())["key"]
        sh.start(f"speechfsd --store {old} --listen 127.0.0.1:{port}",
                 lambda: healthy(port))
        # (past blobs.inline_max: small files stay in the database)
        moved = os.urandom(100000)
        r = requests.post(f"http://127.0.0.1:{port}{API}",
                          headers={"X-API-Key": key},
                          files={"file": ("a.wav", moved)},
                          data={"name": "a",
                                "generateListeningAudio": "false"},
                          timeout=30)
        assert r.status_code == 201, r.text
        pid = sh.bg.pop()
        rc, out = sh.raw(f"kill -TERM {pid}; wait {pid}", 60)
        assert rc == 0, out
        outs = [sh.run(cmd, retry_for=0)
                for cmd in readme.commands(second.text)]
        assert "copied" in outs[0]
        assert outs[1].strip().splitlines()[-1].startswith(
            f"s3 s3://{bucket}/moved/"), outs[1]
        s3 = gw.client()
        try:
            keys = s3.list(bucket, "moved/")
        finally:
            s3.close()
        assert list(keys.values()) == [len(moved)]
    finally:
        sh.close()
