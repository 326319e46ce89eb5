"""The admin CLI and the daemon's command line: store init, tenants, users,
keys (shown once, revocable), JWTs, fsck, --version, and configuration
errors refused at start with a clear message."""
import json
import os
import pathlib
import socket
import signal
import sqlite3
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SFSD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build")) / \
    "speechfsd"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, check=True):
    p = subprocess.run([str(SFSD), *args], capture_output=True, text=True,
                       timeout=30)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_version():
    p = run("--version")
    assert p.stdout.startswith("speechfsd ")


def test_admin_flow_json(tmp_path):
    store = str(tmp_path / "s")
    assert json.loads(run("init", "--store", store, "--json").stdout) == \
        {"store": store}
    # a second init of the same store is refused
    assert run("init", "--store", store, check=False).returncode != 0
    t = json.loads(run("tenant", "create", "--store", store, "--name", "t",
                       "--max-bytes", "1000", "--json").stdout)
    u = json.loads(run("user", "create", "--store", store, "--tenant",
                       t["id"], "--name", "u", "--download-bps", "0",
                       "--json").stdout)
    k = json.loads(run("key", "create", "--store", store, "--user",
                       u["id"], "--scopes", "read,share", "--label", "ci",
                       "--json").stdout)
    assert k["key"].startswith("sfs_") and k["userId"] == u["id"]
    assert k["scopes"] == ["speech:files:read", "speech:files:share"]
    j = json.loads(run("jwt", "--store", store, "--user", u["id"],
                       "--ttl", "60", "--json").stdout)
    assert j["token"].count(".") == 2
    assert json.loads(run("key", "revoke", "--store", store, "--id",
                          k["id"], "--json").stdout)["revoked"] is True
    # text output: the key is printed once, with its id
    p = run("key", "create", "--store", store, "--user", u["id"])
    assert "sfs_" in p.stdout


def test_admin_errors_are_nonzero(tmp_path):
    store = str(tmp_path / "s")
    run("init", "--store", store)
    for args in [("tenant", "create", "--store", store),
                 ("user", "create", "--store", store, "--tenant",
                  "00000000-0000-0000-0000-000000000000", "--name", "x"),
                 ("key", "create", "--store", store, "--user",
                  "00000000-0000-0000-0000-000000000000"),
                 ("key", "revoke", "--store", store, "--id",
                  "00000000-0000-0000-0000-000000000000"),
                 ("key", "create", "--store", store, "--user", "x",
                  "--scopes", "fly"),
                 ("tenant", "create", "--store", store, "--name", "x",
                  "--max-bytes", "lots"),
                 ("tenant", "frobnicate", "--store", store),
                 ("jwt", "--user", "x"),
                 ("tenant", "create", "--store", str(tmp_path / "none"),
                  "--name", "x")]:
        p = run(*args, check=False)
        assert p.returncode != 0, args
        assert p.stderr.strip(), args


def test_fsck_clean_store(tmp_path):
    store = str(tmp_path / "s")
    run("init", "--store", store)
    p = run("fsck", "--store", store, "--json")
    r = json.loads(p.stdout)
    assert r["orphanFiles"] == 0 and r["missingFiles"] == 0


def test_fsck_names_index(tmp_path):
    """The names' index is checked and repaired from the command line: a
    name waiting for the index whose file is gone is a finding (exit 3,
    badNameIndex, a line that says it); --repair builds the index again
    and the next fsck finds nothing."""
    store = tmp_path / "s"
    run("init", "--store", store)
    db = sqlite3.connect(str(store / "speechfs.db"))
    try:
        db.execute("INSERT INTO fts_pending(id) VALUES (424242)")
        db.commit()
    finally:
        db.close()
    p = run("fsck", "--store", store, "--json", check=False)
    assert p.returncode == 3, p.stdout + p.stderr
    r = json.loads(p.stdout)
    assert r["badNameIndex"] == 1 and r["repaired"] == 0, r
    assert "have no file" in p.stdout + p.stderr
    p = run("fsck", "--repair", "--store", store, "--json")
    r = json.loads(p.stdout)
    assert r["badNameIndex"] == 1 and r["repaired"] == 1, r
    p = run("fsck", "--store", store, "--json")
    assert json.loads(p.stdout)["badNameIndex"] == 0


def test_daemon_refuses_bad_config(tmp_path):
    store = str(tmp_path / "s")
    run("init", "--store", store)
    for text in ["no equals sign\n", "unknown.key = 1\n",
                 "http.rate_per_second = fast\n",
                 "http.threads = -2\n"]:
        cfg = tmp_path / "bad.conf"
        cfg.write_text(text)
        p = subprocess.run([str(SFSD), "--store", store, "--listen",
                            f"127.0.0.1:{free_port()}", "--config",
                            str(cfg)], capture_output=True, text=True,
                           timeout=10)
        assert p.returncode == 2, text
        assert "bad.conf:1" in p.stderr, p.stderr
    for args in [("--listen", "nowhere"), ("--log-level", "loud"),
                 ("--bogus",)]:
        p = subprocess.run([str(SFSD), "--store", store, *args],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, args
    p = subprocess.run([str(SFSD), "--store", str(tmp_path / "nope"),
                        "--listen", f"127.0.0.1:{free_port()}"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0 and "cannot open store" in p.stderr


def test_store_and_listen_from_the_config_file(tmp_path):
    """`store` and `listen` may live in the configuration file; the
    command line wins over it; with neither, a clear usage error."""
    import requests
    store = str(tmp_path / "s")
    run("init", "--store", store)
    port, other = free_port(), free_port()
    cfg = tmp_path / "d.conf"
    cfg.write_text(f"store = {store}\nlisten = 127.0.0.1:{port}\n")
    for argv, want in ((["--config", str(cfg)], port),
                       (["--config", str(cfg), "--listen",
                         f"127.0.0.1:{other}"], other)):
        proc = subprocess.Popen([str(SFSD), *argv, "--no-workers"],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 15
            while True:
                assert proc.poll() is None, proc.stderr.read()
                try:
                    r = requests.get(f"http://127.0.0.1:{want}/healthz",
                                     timeout=1)
                    if r.status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    pass
                assert time.time() < deadline
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    cfg.write_text("listen = 127.0.0.1:1\n")
    p = subprocess.run([str(SFSD), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "no store" in p.stderr, p.stderr
    cfg.write_text("store =\n")
    p = subprocess.run([str(SFSD), "--config", str(cfg)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2 and "d.conf:1" in p.stderr, p.stderr
