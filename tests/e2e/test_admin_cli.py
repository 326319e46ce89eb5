"""The admin CLI as an operator meets it: --help everywhere, --opt=value
and --opt value, errors that name the option and exit 2 having changed
nothing, quiet success, -v; the daemon's --listen forms and configuration
errors that name the file, the line and the key."""
import json
import os
import pathlib
import signal
import socket
import sqlite3
import subprocess
import time

import pytest
import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BUILD = pathlib.Path(os.environ.get("SFS_BUILD", ROOT / "build"))
SFSD = BUILD / "speechfsd"
NOBODY = "00000000-0000-0000-0000-000000000000"


def run(*args, env=None):
    return subprocess.run([str(SFSD), *map(str, args)], capture_output=True,
                          text=True, timeout=30, env=env)


def ok(*args):
    p = run(*args)
    assert p.returncode == 0, (args, p.stderr)
    assert p.stderr == "", (args, p.stderr)     # quiet on success
    return p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rows(store):
    """How many tenants, users and keys the store holds (read-only)."""
    db = sqlite3.connect(f"file:{store}/speechfs.db?mode=ro", uri=True)
    try:
        return tuple(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("tenant", "user", "api_key"))
    finally:
        db.close()


@pytest.fixture
def store(tmp_path):
    s = tmp_path / "store"
    ok("init", "--store", s)
    t = ok("tenant", "create", "--store", s, "--name", "acme").strip()
    u = ok("user", "create", "--store", s, "--tenant", t, "--name",
           "alice").strip()
    return s, t, u


def test_group_help_lists_the_verbs():
    for group, verbs in (("tenant", ("create", "list", "quota")),
                         ("user", ("create", "list", "show", "rate")),
                         ("key", ("create", "list", "revoke"))):
        for asked in ([group, "--help"], [group, "-h"], ["help", group]):
            p = run(*asked)
            assert p.returncode == 0 and p.stderr == "", asked
            assert p.stdout.startswith(f"usage: speechfsd {group} VERB")
            for v in verbs:
                assert f"\n  {v} " in p.stdout, (group, v)
        # no verb: the same list on stderr, a usage error
        p = run(group)
        assert p.returncode == 2 and p.stdout == ""
        assert f"usage: speechfsd {group} VERB" in p.stderr
        p = run(group, "frobnicate", "--store", "x")
        assert p.returncode == 2
        assert "unknown verb 'frobnicate'" in p.stderr


def test_help_of_a_command_wins_over_missing_options():
    p = run("key", "create", "--help")
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("usage: speechfsd key create --store DIR "
                               "--user USER_ID")
    assert "\nexample:\n  speechfsd key create " in p.stdout
    assert run("help", "key", "create").stdout == p.stdout


def test_equals_and_separate_values(tmp_path):
    s = tmp_path / "store"
    ok("init", f"--store={s}")
    t1 = ok("tenant", "create", f"--store={s}", "--name=eq",
            "--max-bytes=100").strip()
    t2 = ok("tenant", "create", "--store", s, "--name", "sep",
            "--max-bytes", "100").strip()
    for t in (t1, t2):
        q = json.loads(ok("tenant", "quota", "--store", s, "--id", t,
                          "--json"))
        assert q["maxBytes"] == 100


BAD = [
    # (arguments after the store, what stderr must name)
    (("tenant", "create", "--name", "x", "--max-byte", "100"),
     "unknown option '--max-byte' (did you mean '--max-bytes'?)"),
    (("tenant", "create", "--name", "x", "--log-level", "warn"),
     "unknown option '--log-level'"),
    (("tenant", "create", "--name", "x", "--max-bytes", "lots"),
     "--max-bytes: 'lots' is not a whole number"),
    (("tenant", "create", "--name", "x", "--max-files", "-3"),
     "--max-files: '-3' is not a whole number >= 0"),
    (("tenant", "create", "--name"), "option '--name' needs a value"),
    (("tenant", "create"), "--name is required"),
    (("tenant", "create", "--name", "x", "extra"),
     "unexpected argument 'extra'"),
    (("tenant", "create", "--name", "x", "--json=yes"),
     "option '--json' takes no value"),
    (("tenant", "create", "--name", ""), "--name: the value is empty"),
    (("user", "create", "--tenant", "T", "--name", "bob",
      "--download-bps", "fast"), "--download-bps: 'fast'"),
    (("key", "create", "--user", "U", "--scopes", "fly"),
     "unknown scope 'fly'"),
    (("key", "create", "--user", "U", "--label"),
     "option '--label' needs a value"),
    (("jwt", "--user", "U", "--ttl", "0"), "--ttl: '0' is not a whole"),
    (("user", "rate", "--id", "U"), "--download-bps is required"),
    (("key", "revoke"), "--id is required"),
    (("fsck", "--repair", "--really"), "unknown option '--really'"),
]


@pytest.mark.parametrize("args,says", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_usage_errors_name_the_option_and_change_nothing(store, args, says):
    s, t, u = store
    before = rows(s)
    args = [t if a == "T" else u if a == "U" else a for a in args]
    p = run(*args, "--store", s)
    assert p.returncode == 2, p.stderr
    assert says in p.stderr, p.stderr
    assert "see 'speechfsd" in p.stderr or "needs a value" in p.stderr or \
        "takes no value" in p.stderr
    assert p.stdout == ""
    assert rows(s) == before


def test_a_store_is_required(tmp_path):
    p = run("tenant", "create", "--name", "x")
    assert p.returncode == 2 and "--store DIR is required" in p.stderr


def test_runtime_errors_exit_1_with_json(store):
    s, t, u = store
    before = rows(s)
    for args in (("user", "create", "--tenant", NOBODY, "--name", "x"),
                 ("key", "create", "--user", NOBODY),
                 ("key", "revoke", "--id", NOBODY),
                 ("tenant", "quota", "--id", NOBODY, "--max-files", "1")):
        p = run(*args, "--store", s, "--json")
        assert p.returncode == 1, (args, p.stderr)
        err = json.loads(p.stdout)
        assert err["error"].endswith("not_found") and err["message"], err
        assert err["message"] in p.stderr
    assert rows(s) == before
    p = run("tenant", "create", "--store", s.parent / "none", "--name", "x")
    assert p.returncode == 1 and "cannot open store" in p.stderr


def test_quiet_unless_verbose(store):
    s, t, u = store
    # quiet: only the result on stdout (ok() asserts an empty stderr)
    out = ok("user", "create", "--store", s, "--tenant", t, "--name", "bob")
    assert len(out.strip()) == 36
    assert ok("user", "rate", "--store", s, "--id", u, "--download-bps",
              "0") == ""
    p = run("user", "create", "--store", s, "--tenant", t, "--name",
            "carol", "-v")
    assert p.returncode == 0
    assert "info auth: created user 'carol'" in p.stderr, p.stderr


def test_config_gives_the_store(store, tmp_path):
    s, t, u = store
    cfg = tmp_path / "d.conf"
    cfg.write_text(f"# the daemon's file\nstore = {s}\nlisten = 8080\n")
    q = json.loads(ok("tenant", "quota", "--config", cfg, "--id", t,
                      "--json"))
    assert q["id"] == t
    cfg.write_text(f"store = {s}\nhttp.rate_per_second = fast\n")
    p = run("tenant", "quota", "-c", cfg, "--id", t)
    assert p.returncode == 2
    assert f"{cfg}:2: http.rate_per_second: expected a number" in p.stderr


# ---- the daemon's command line and configuration ---------------------------

def start(*args, env=None):
    return subprocess.Popen([str(SFSD), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)


def wait_healthy(url, proc, seconds=15):
    deadline = time.time() + seconds
    while True:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        assert time.time() < deadline, f"{url} did not answer"
        time.sleep(0.05)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


@pytest.mark.parametrize("form,url", [
    ("{p}", "http://127.0.0.1:{p}"),
    ("localhost:{p}", "http://127.0.0.1:{p}"),
    ("127.0.0.1:{p}", "http://127.0.0.1:{p}"),
    ("[::1]:{p}", "http://[::1]:{p}"),
])
def test_listen_forms(store, form, url):
    s, _, _ = store
    port = free_port()
    proc = start("--store", s, "--no-workers", "--listen",
                 form.format(p=port))
    try:
        wait_healthy(url.format(p=port), proc)
    finally:
        stop(proc)


def test_bad_listen_says_which_forms(store, tmp_path):
    s, _, _ = store
    for bad in ("nowhere:80", "::1:80", "[::1]", "0", "70000", "1.2.3:80",
                "[fe80::zz]:80", "127.0.0.1:"):
        p = run("--store", s, "--listen", bad)
        assert p.returncode == 2, bad
        assert "--listen: " in p.stderr and f"'{bad}'" in p.stderr
        assert "PORT" in p.stderr and "[IPV6]:PORT" in p.stderr
    cfg = tmp_path / "d.conf"
    cfg.write_text(f"store = {s}\n\nlisten = far.away:80\n")
    p = run("--config", cfg)
    assert p.returncode == 2
    assert f"{cfg}:3: listen: not an IPv4 address" in p.stderr, p.stderr


def test_config_errors_name_file_line_and_key(store, tmp_path):
    s, _, _ = store
    cfg = tmp_path / "d.conf"
    for text, says in (
            ("# c\n\nhtp.rate_per_second = 5\n", ":3: htp.rate_per_second: "
             "unknown key"),
            ("http.threads = -2\n", ":1: http.threads: expected a whole "
             "number >= 0 (got '-2')"),
            ("\nretention_seconds = soon\n", ":2: retention_seconds: "
             "expected an integer"),
            ("log.level = loud\n", ":1: log.level: expected error, warn, "
             "info or debug"),
            ("jobs.enabled = maybe\n", ":1: jobs.enabled: expected true "
             "or false"),
            ("store\n", ":1: expected 'key = value'"),
            ("listen = 8080\nstore =\n", ":2: store: empty")):
        cfg.write_text(text)
        p = run("--config", cfg, "--store", s)
        assert p.returncode == 2, text
        assert f"speechfsd: {cfg}{says}" in p.stderr, (text, p.stderr)
    p = run("--config", tmp_path / "missing.conf")
    assert p.returncode == 2 and "missing.conf" in p.stderr
    for args, says in ((["--log-level", "loud"], "--log-level: 'loud'"),
                       (["--bogus"], "unknown option '--bogus'"),
                       (["--no-workers=1"], "takes no value"),
                       (["--stor", "x"], "did you mean '--store'"),
                       (["serve"], "unexpected argument 'serve'"),
                       ([], "no store")):
        p = run(*args)
        assert p.returncode == 2 and says in p.stderr, (args, p.stderr)


def test_every_setting_lives_in_the_file(store, tmp_path):
    """store, listen, log.level and jobs.enabled from the file alone."""
    s, _, _ = store
    port = free_port()
    cfg = tmp_path / "d.conf"
    cfg.write_text(f"store = {s}\nlisten = localhost:{port}\n"
                   "log.level = debug\njobs.enabled = false\n")
    proc = start("--config", cfg)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    finally:
        stop(proc)
    log = proc.stderr.read()
    assert " debug " in log, log
    assert "worker" not in log, log


# ---- finding people ---------------------------------------------------------

def test_lists_and_lookups(store):
    s, t, alice = store
    t2 = ok("tenant", "create", "--store", s, "--name", "Other").strip()
    bob = ok("user", "create", "--store", s, "--tenant", "ACME", "--name",
             "Bob", "--download-bps", "1000").strip()
    carol = ok("user", "create", "--store", s, "--tenant", t2, "--name",
               "carol").strip()
    k = json.loads(ok("key", "create", "--store", s, "--user", alice,
                      "--scopes", "read,share", "--label", "laptop",
                      "--json"))
    k2 = json.loads(ok("key", "create", "--store", s, "--user", alice,
                       "--json"))
    ok("key", "revoke", "--store", s, "--id", k2["id"])

    tenants = json.loads(ok("tenant", "list", "--store", s, "--json"))
    assert [(x["name"], x["users"]) for x in tenants["tenants"]] == \
        [("acme", 2), ("Other", 1)]
    text = ok("tenant", "list", "--store", s).splitlines()
    assert text[0].split()[:3] == ["ID", "NAME", "USERS"]
    assert text[1].split()[:3] == [t, "acme", "2"]

    users = json.loads(ok("user", "list", "--store", s, "--json"))["users"]
    assert [(u["tenantName"], u["name"]) for u in users] == \
        [("acme", "alice"), ("acme", "Bob"), ("Other", "carol")]
    assert users[0]["keys"] == 1 and users[0]["id"] == alice
    for sel in (t2, "other"):
        only = json.loads(ok("user", "list", "--store", s, "--tenant", sel,
                             "--json"))["users"]
        assert [u["id"] for u in only] == [carol]

    # one user, by id or by name in a tenant (ignoring case)
    by_id = json.loads(ok("user", "show", "--store", s, bob, "--json"))
    by_name = json.loads(ok("user", "show", "--store", s, "--tenant", "acme",
                            "--name", "BOB", "--json"))
    assert by_id == by_name
    assert by_id["downloadBytesPerSecond"] == 1000
    assert by_id["tenantId"] == t and by_id["name"] == "Bob"
    text = ok("user", "show", "--store", s, "--tenant", t, "--name", "bob")
    assert f"id:        {bob}\n" in text and "1000 bytes/s" in text

    keys = json.loads(ok("key", "list", "--store", s, "--user", alice,
                         "--json"))["keys"]
    assert [(x["id"], x["label"], x["revokedAt"] is None) for x in keys] == \
        [(k["id"], "laptop", True), (k2["id"], None, False)]
    assert keys[0]["scopes"] == ["speech:files:read", "speech:files:share"]
    assert keys[0]["lastUsedAt"] is None
    out = ok("key", "list", "--store", s, "--user", alice)
    assert k["key"] not in out and k2["key"] not in out   # never the secret
    assert "laptop" in out and "never" in out


def test_user_names_unique_in_a_tenant(store):
    s, t, alice = store
    before = rows(s)
    p = run("user", "create", "--store", s, "--tenant", t, "--name", "ALICE",
            "--json")
    assert p.returncode == 1
    assert json.loads(p.stdout)["error"] == "user_exists"
    assert "unique in a tenant" in p.stderr
    assert rows(s) == before


def test_lookup_errors(store):
    s, t, alice = store
    ok("tenant", "create", "--store", s, "--name", "twin")
    ok("tenant", "create", "--store", s, "--name", "TWIN")
    for args, rc, says in (
            (("user", "show"), 2, "give a USER_ID, or --tenant and --name"),
            (("user", "show", alice, "--name", "x"), 2, "give a USER_ID"),
            (("user", "show", "--name", "alice"), 2, "give a USER_ID"),
            (("user", "show", NOBODY), 1, f"no user '{NOBODY}'"),
            (("user", "show", "--tenant", "acme", "--name", "zed"), 1,
             "no user named 'zed'"),
            (("user", "list", "--tenant", "nope"), 1, "no tenant 'nope'"),
            (("user", "list", "--tenant", "twin"), 1,
             "2 tenants are named 'twin': give the id"),
            (("user", "create", "--tenant", "nope", "--name", "x"), 1,
             "no tenant 'nope'"),
            (("key", "list", "--user", NOBODY), 1, "no user"),
            (("key", "list"), 2, "--user is required"),
            (("tenant", "list", "extra"), 2, "unexpected argument 'extra'")):
        p = run(*args, "--store", s)
        assert p.returncode == rc, (args, p.stderr)
        assert says in p.stderr, (args, p.stderr)


def test_schemas_agree(tmp_path, pg_database, pg_server):
    """The two schema texts (core/schema.c for SQLite, core/db_pg_schema.c
    for PostgreSQL) make the same tables with the same columns, so the core's
    one SQL text finds on either what it names. Allowed apart: SQLite's
    FTS5 name index (file_fts and its shadow tables, and fts_pending, the
    names waiting for it; PostgreSQL indexes the columns with pg_trgm
    instead), its sqlite_sequence, and
    PostgreSQL's schema_version (SQLite keeps PRAGMA user_version)."""
    lite = tmp_path / "lite"
    ok("init", "--store", lite)
    db = sqlite3.connect(f"file:{lite}/speechfs.db?mode=ro", uri=True)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        want = {(t, c[1]) for t in tables
                for c in db.execute(f"PRAGMA table_info('{t}')")}
    finally:
        db.close()
    lite_only = {(t, c) for t, c in want
                 if t.startswith("file_fts") or
                 t in ("fts_pending", "sqlite_sequence")}
    assert {t for t, _ in lite_only} >= {"file_fts", "fts_pending"}
    assert len(want - lite_only) > 100  # (the look found the tables)
    conf = tmp_path / "pg.conf"
    conf.write_text("store = %s\ndb.url = %s\ndb.schema = agree\n"
                    % (tmp_path / "pg", pg_database))
    ok("init", "-c", conf)
    name = pg_database.split("?")[0].rsplit("/", 1)[1]
    out = pg_server.psql(name, "SELECT table_name, column_name"
                         " FROM information_schema.columns"
                         " WHERE table_schema = 'agree'")
    got = {tuple(line.split("|")) for line in out.splitlines() if line}
    pg_only = {(t, c) for t, c in got if t == "schema_version"}
    assert pg_only
    assert sorted(got - pg_only - (want - lite_only)) == [], \
        "only in PostgreSQL's schema"
    assert sorted((want - lite_only) - (got - pg_only)) == [], \
        "only in SQLite's schema"


def test_init_on_postgresql(tmp_path, pg_database, pg_server):
    """`init -c` with db.url puts the metadata in PostgreSQL and records
    where in STORE/db.url (0600); later commands find the store with
    --store alone, and its rows are in that database, not in a file."""
    s = tmp_path / "store"
    conf = tmp_path / "speechfsd.conf"
    conf.write_text("store = %s\ndb.url = %s\ndb.schema = cli\n"
                    % (s, pg_database))
    assert json.loads(ok("init", "-c", conf, "--json")) == {"store": str(s)}
    assert (s / "db.url").stat().st_mode & 0o777 == 0o600
    assert not (s / "speechfs.db").exists()
    t = ok("tenant", "create", "--store", s, "--name", "acme").strip()
    ok("user", "create", "--store", s, "--tenant", t, "--name", "alice")
    tenants = json.loads(ok("tenant", "list", "--store", s, "--json"))
    assert [(x["name"], x["users"]) for x in tenants["tenants"]] == \
        [("acme", 1)]
    db = pg_database.split("?")[0].rsplit("/", 1)[1]
    out = pg_server.psql(db, "SELECT t.uuid, count(u.id) FROM cli.tenant t"
                         " JOIN cli.\"user\" u ON u.tenant_id = t.id"
                         " GROUP BY t.uuid")
    assert out.strip() == "%s|1" % t
    # twice: the store is there, and the schema holds one
    p = run("init", "-c", conf)
    assert p.returncode == 1 and "already" in p.stderr
    other = tmp_path / "other.conf"
    other.write_text("store = %s\ndb.url = %s\ndb.schema = cli\n"
                     % (tmp_path / "store2", pg_database))
    p = run("init", "-c", other)
    assert p.returncode == 1 and "holds a store" in p.stderr
    assert not (tmp_path / "store2" / "db.url").exists()
