"""keepDirs=true (an extension for remote mounts), against a real daemon:
a directory the API made (implicit) that a call empties stays, made
explicit in that call's transaction, for each call that can empty one
(DELETE and PATCH /files/{id}, DELETE /directories, POST
/directories/rename); without it the seed's rule holds (it vanishes), in
the same daemon, also while other requests keep theirs at the same time.
A bad value is 400 and changes nothing; the document names the flag."""
import concurrent.futures

import requests

from conftest import API

# on SQLite and on PostgreSQL (conftest.py): the rule is core's counting
META_BACKENDS = ["sqlite", "pg"]

DIRS = "/api/v1/speech-services/directories"
KEEP = {"keepDirs": "true"}


def state(c, path):
    """(status, explicit, descendantCount) of GET …/directories?path=."""
    r = c.get(DIRS, params={"path": path})
    if r.status_code != 200:
        return r.status_code, None, None
    return 200, r.json()["explicit"], r.json()["descendantCount"]


def test_a_delete_keeps_the_directory_it_empties(sfsd):
    c = sfsd
    a = c.new_file(path="/kd/del/a/")["id"]
    b = c.new_file(path="/kd/del/a/")["id"]
    # not its last file: nothing changes
    assert c.delete("/" + b, params=KEEP).status_code == 204
    assert state(c, "/kd/del/a/") == (200, False, 1)
    r = c.delete("/" + a, params=KEEP)
    assert r.status_code == 204, r.text
    assert state(c, "/kd/del/a/") == (200, True, 0)
    # its parent holds it: still there, still implicit
    assert state(c, "/kd/del/") == (200, False, 1)
    # kept until removed, as a mkdir's; then its parent goes (no flag)
    assert c.delete(DIRS, params={"path": "/kd/del/a/"}).status_code == 204
    assert state(c, "/kd/del/")[0] == 404
    # a delete that purges at once keeps it too
    p = c.new_file(path="/kd/purge/")["id"]
    assert c.delete("/" + p, params={**KEEP, "purge": "true"}) \
        .status_code == 204
    assert state(c, "/kd/purge/") == (200, True, 0)


def test_without_the_flag_the_directory_vanishes(sfsd):
    """The seed's rule: an implicit directory goes with its last file,
    for a delete, a move out, a directory moved out and the removal of
    the last subdirectory; false is the same."""
    c = sfsd
    a = c.new_file(path="/kv/del/")["id"]
    assert c.delete("/" + a, params={"keepDirs": "false"}).status_code == 204
    assert state(c, "/kv/del/")[0] == 404
    m = c.new_file(path="/kv/mv/")["id"]
    r = c.patch("/" + m, json={"path": "/kv/to/"})
    assert r.status_code == 200, r.text
    assert state(c, "/kv/mv/")[0] == 404
    c.new_file(path="/kv/dir/sub/")
    r = c.post(DIRS + "/rename", json={"from": "/kv/dir/sub/",
                                       "to": "/kv/to/sub/"})
    assert r.status_code == 200, r.text
    assert state(c, "/kv/dir/")[0] == 404
    assert c.post(DIRS, json={"path": "/kv/rm/sub/"}).status_code == 201
    assert state(c, "/kv/rm/") == (200, False, 1)
    assert c.delete(DIRS, params={"path": "/kv/rm/sub/"}).status_code == 204
    assert state(c, "/kv/rm/")[0] == 404


def test_a_move_keeps_the_directory_it_empties(sfsd):
    c = sfsd
    m = c.new_file(path="/km/from/", name="m")["id"]
    r = c.patch("/" + m, params=KEEP, json={"path": "/km/to/"})
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/km/to/"
    assert state(c, "/km/from/") == (200, True, 0)
    assert state(c, "/km/to/") == (200, False, 1)
    # a change that moves nothing keeps nothing
    r = c.patch("/" + m, params=KEEP, json={"name": "n"})
    assert r.status_code == 200, r.text
    assert state(c, "/km/to/") == (200, False, 1)
    # rename(2) onto a file of another directory: the one left stays
    t = c.new_file(path="/km/onto/", name="t")["id"]
    r = c.patch("/" + m, params=KEEP,
                json={"path": "/km/onto/", "name": "t", "replaceFileId": t})
    assert r.status_code == 200, r.text
    assert c.get("/" + t).json()["isDeleted"] is True
    assert state(c, "/km/to/") == (200, True, 0)
    assert state(c, "/km/onto/") == (200, False, 1)


def test_directory_calls_keep_the_parent_they_empty(sfsd):
    c = sfsd
    # a directory moved out of its implicit parent
    c.new_file(path="/kr/p/q/")
    r = c.post(DIRS + "/rename", params=KEEP,
               json={"from": "/kr/p/q/", "to": "/kr/z/q/"})
    assert r.status_code == 200, r.text
    assert state(c, "/kr/p/") == (200, True, 0)
    # renamed within its parent: nothing leaves, nothing is kept
    c.new_file(path="/kr/in/a/")
    r = c.post(DIRS + "/rename", params=KEEP,
               json={"from": "/kr/in/a/", "to": "/kr/in/b/"})
    assert r.status_code == 200, r.text
    assert state(c, "/kr/in/") == (200, False, 1)
    # the removal of the last subdirectory of an implicit parent
    assert c.post(DIRS, json={"path": "/kr/rm/sub/"}).status_code == 201
    assert state(c, "/kr/rm/") == (200, False, 1)
    r = c.delete(DIRS, params={"path": "/kr/rm/sub/", **KEEP})
    assert r.status_code == 204, r.text
    assert state(c, "/kr/rm/") == (200, True, 0)
    assert state(c, "/kr/rm/sub/")[0] == 404


def test_a_bad_value_changes_nothing(sfsd):
    c = sfsd
    f = c.new_file(path="/kb/")["id"]
    for method, kw in (("DELETE", {}), ("PATCH", {"json": {"path": "/x/"}})):
        r = c.req(method, "/" + f, params={"keepDirs": "maybe"}, **kw)
        body = c.assert_error(r, 400, "invalid_request")
        assert [v["location"] for v in body["validation_errors"]] == \
            ["keepDirs"], body
    g = c.get("/" + f).json()
    assert g["path"] == "/kb/" and g["isDeleted"] is False
    c.assert_error(c.delete(DIRS, params={"path": "/kb/",
                                          "keepDirs": "2"}), 400)
    assert state(c, "/kb/") == (200, False, 1)


def test_requests_at_the_same_time_keep_their_own_rule(sfsd):
    """The flag is the request's, not the daemon's: deletes with and
    without it, 16 at a time on the daemon's threads, each leave their
    directory as their own flag says."""
    c = sfsd
    n = 64
    ids = [c.new_file(path="/kc/%02d/" % i, data=b"c%d" % i)["id"]
           for i in range(n)]

    def delete(i):
        with requests.Session() as s:
            return s.delete(c.api + "/" + ids[i], headers=c.hdr("alice"),
                            params=KEEP if i % 2 else None,
                            timeout=60).status_code
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        assert set(ex.map(delete, range(n))) == {204}
    for i in range(n):
        want = (200, True, 0) if i % 2 else (404, None, None)
        assert state(c, "/kc/%02d/" % i) == want, i


def test_the_document_names_it(sfsd):
    doc = sfsd.get("/api/v1/openapi.json", who=None).json()["paths"]
    for path, method in ((API + "/{id}", "delete"), (API + "/{id}", "patch"),
                         (DIRS, "delete"), (DIRS + "/rename", "post")):
        (p,) = [p for p in doc[path][method].get("parameters", [])
                if p["name"] == "keepDirs"]
        assert p["in"] == "query" and p["schema"]["type"] == "boolean"
