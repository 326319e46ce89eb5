"""The answer cache of GET /files/{id}, GET /files and shared-with-me
(httpd/respcache.c): a repeated read is served from it, and never once
the store changed -- through this daemon, another daemon on the same
store, or the admin CLI -- nor to another user, nor past a revoked key."""
import re

import pytest

from conftest import Daemon, Client, start

# on PostgreSQL the daemons and the admin CLI on one store directory share
# its generations as on SQLite (keycache.c): the same guarantees, once the
# cache is asked for (it is off there by default: test_default_by_backend)
META_BACKENDS = ["sqlite", "pg"]
ON = {"http.response_cache": "1024"}


@pytest.fixture(scope="module")
def sfsd(tmp_path_factory, blobs, meta):
    """The module's daemon, its answer cache on whatever the backend."""
    d, c = start(tmp_path_factory, ON, blobs=blobs, meta=meta)
    yield c
    c.http.close()
    d.stop()


def cache_counts(c):
    text = c.get("/metrics", who=None).text
    got = dict(re.findall(
        r'speechfs_http_response_cache_total\{result="(\w+)"\} (\d+)', text))
    return int(got.get("hit", -1)), int(got.get("miss", -1))


def test_repeated_reads_are_hits_and_identical(sfsd):
    f = sfsd.new_file(name="cached one", path="/rc/")
    h0, _ = cache_counts(sfsd)
    a = sfsd.get(f"/{f['id']}")
    b = sfsd.get(f"/{f['id']}")
    la = sfsd.get("?path=/rc/")
    lb = sfsd.get("?path=/rc/")
    for x, y in ((a, b), (la, lb)):
        assert x.status_code == y.status_code == 200
        assert x.content == y.content
        assert x.headers["ETag"] == y.headers["ETag"]
        assert x.headers["X-Request-Id"] != y.headers["X-Request-Id"]
        assert x.headers["Content-Type"] == y.headers["Content-Type"]
    h1, _ = cache_counts(sfsd)
    assert h1 - h0 >= 2, (h0, h1)
    # a 304 from the cache as from the handler
    r = sfsd.get(f"/{f['id']}", headers={"If-None-Match": a.headers["ETag"]})
    assert r.status_code == 304 and r.headers["ETag"] == a.headers["ETag"]
    # the query is part of the key
    other = sfsd.get("?path=/rc/&size=1")
    assert other.status_code == 200 and other.json()["files"]


def test_changes_through_this_daemon_are_seen_at_once(sfsd):
    f = sfsd.new_file(name="before", path="/rc2/")
    for _ in range(2):
        assert sfsd.get(f"/{f['id']}").json()["name"] == "before"
        assert [x["name"] for x in sfsd.get("?path=/rc2/").json()
                ["files"]] == ["before"]
    for i in range(20):
        name = "after %d" % i
        r = sfsd.patch(f"/{f['id']}", json={"name": name})
        assert r.status_code == 200, r.text
        assert sfsd.get(f"/{f['id']}").json()["name"] == name
        assert [x["name"] for x in sfsd.get("?path=/rc2/").json()
                ["files"]] == [name]
    g = sfsd.new_file(name="second", path="/rc2/")
    names = [x["name"] for x in sfsd.get("?path=/rc2/").json()["files"]]
    assert sorted(names) == ["after 19", "second"]
    assert sfsd.delete(f"/{g['id']}").status_code in (200, 204)
    names = [x["name"] for x in sfsd.get("?path=/rc2/").json()["files"]]
    assert names == ["after 19"]


def test_changes_by_another_process_are_seen_at_once(sfsd_factory,
                                                     tmp_path_factory):
    a = sfsd_factory(ON)
    d2 = Daemon(tmp_path_factory.mktemp("second"), a.store)
    b = Client(d2.base, a.store)
    b.keys = a.keys
    try:
        f = a.new_file(name="v0", path="/rc3/")
        for i in range(1, 11):
            assert a.get(f"/{f['id']}").json()["name"] == "v%d" % (i - 1)
            assert a.get("?path=/rc3/").json()["files"][0]["name"] == \
                "v%d" % (i - 1)
            r = b.patch(f"/{f['id']}", json={"name": "v%d" % i})
            assert r.status_code == 200, r.text
            assert a.get(f"/{f['id']}").json()["name"] == "v%d" % i
            assert a.get("?path=/rc3/").json()["files"][0]["name"] == \
                "v%d" % i
        # the admin CLI's key revocation: the cached answer is not served
        k = a.admin("key", "create", "--user", a.users["alice"])
        a.keys["k2"] = k["key"]
        for _ in range(2):
            assert a.get(f"/{f['id']}", who="k2").status_code == 200
        a.admin("key", "revoke", "--id", k["id"])
        a.assert_error(a.get(f"/{f['id']}", who="k2"), 401)
    finally:
        b.http.close()
        d2.stop()


def test_answers_are_per_user(sfsd):
    f = sfsd.new_file(name="alice private", path="/rc4/")
    assert sfsd.get(f"/{f['id']}").status_code == 200
    assert sfsd.get(f"/{f['id']}").status_code == 200
    # bob (same tenant, no share) and carol (other tenant) never get it
    for who in ("bob", "carol"):
        r = sfsd.get(f"/{f['id']}", who=who)
        assert r.status_code in (403, 404), (who, r.status_code, r.text)
        listing = sfsd.get("?path=/rc4/", who=who).json()["files"]
        assert listing == [], (who, listing)
    # a share is a change: bob sees it at once, alice's answer is hers
    r = sfsd.post(f"/{f['id']}/shares", json={
        "userId": sfsd.users["bob"], "permission": "VIEW"})
    assert r.status_code in (200, 201), r.text
    bob = sfsd.get(f"/{f['id']}", who="bob")
    assert bob.status_code == 200
    assert bob.json()["id"] == f["id"]
    shared = sfsd.get("/shared-with-me", who="bob").json()["files"]
    assert [x["permission"] for x in shared if x["id"] == f["id"]] == \
        ["VIEW"]
    # and a listing of alice's is never bob's: his own directory is empty
    assert sfsd.get("?path=/rc4/", who="bob").json()["files"] == []


def test_cache_off(sfsd_factory):
    c = sfsd_factory({"http.response_cache": "0"})
    f = c.new_file(name="x")
    for _ in range(3):
        assert c.get(f"/{f['id']}").status_code == 200
    assert cache_counts(c) == (0, 0)


def test_default_by_backend(sfsd_factory, meta):
    """Unconfigured, the cache is on for a store on SQLite (one machine:
    every commit is seen at once) and off for one on PostgreSQL, where a
    daemon would learn of another machine's commit only by its notice, a
    moment after that commit was acknowledged."""
    c = sfsd_factory()
    f = c.new_file(name="y")
    for _ in range(3):
        assert c.get(f"/{f['id']}").status_code == 200
    hits, misses = cache_counts(c)
    if meta.kind == "pg":
        assert (hits, misses) == (0, 0)
    else:
        assert hits >= 2 and misses >= 1, (hits, misses)
