"""The file endpoints as a REST client uses them: upload (multipart) and
import (JSON), get, download with Range / If-Range, PATCH, delete, purge,
restore, discard, and the lists with their query parameters; every failure
a clear 4xx with the error body."""
import hashlib
import os
import time
import urllib.parse
import uuid

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]


def test_upload_returns_the_file(sfsd):
    data = os.urandom(3000)
    r = sfsd.upload(data=data, name="meeting", filename="m.wav",
                    description="weekly", path="/meetings/2026/",
                    metadata='{"department":"eng"}',
                    tags='["Meeting","Engineering"]')
    assert r.status_code == 201, r.text
    assert len(r.headers["X-Request-Id"]) == 36
    f = r.json()
    uuid.UUID(f["id"])
    assert f["name"] == "meeting"
    assert f["filename"] == "m.wav"
    assert f["description"] == "weekly"
    assert f["path"] == "/meetings/2026/"
    assert f["size"] == 3000
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert f["metadata"] == {"department": "eng"}
    assert f["tags"] == ["Engineering", "Meeting"]
    assert f["isDeleted"] is False and f["isPurged"] is False
    assert f["isContentDiscarded"] is False
    assert f["ingestionStatus"] is None
    assert f["listeningAudio"] is None
    assert sfsd.get(f"/{f['id']}").json() == f


def test_upload_parts_in_any_order_and_empty_file(sfsd):
    body = (b"--XyZ\r\n"
            b'Content-Disposition: form-data; name="generateListeningAudio"'
            b"\r\n\r\nfalse\r\n--XyZ\r\n"
            b'Content-Disposition: form-data; name="file"; filename="e.bin"'
            b"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
            b"--XyZ\r\n"
            b'Content-Disposition: form-data; name="name"\r\n\r\nempty\r\n'
            b"--XyZ--\r\n")
    r = sfsd.post("", data=body, headers={
        "Content-Type": "multipart/form-data; boundary=XyZ"})
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 0
    r = sfsd.get(f"/{r.json()['id']}/content")
    assert r.status_code == 200 and r.content == b""


def test_upload_missing_parts_400(sfsd):
    r = sfsd.post("", files={"x": ("a", b"1")}, data={"name": "n"})
    body = sfsd.assert_error(r, 400)
    assert [v["location"] for v in body["validation_errors"]] == ["file"]
    r = sfsd.post("", files={"file": ("a", b"1")}, data={})
    body = sfsd.assert_error(r, 400)
    assert [v["location"] for v in body["validation_errors"]] == ["name"]


def test_upload_bad_parts_400_name_the_part(sfsd):
    cases = [({"metadata": "{not json"}, "metadata"),
             ({"metadata": "[1]"}, "metadata"),
             ({"tags": '"x"'}, "tags"),
             ({"tags": "[1, 2]"}, "tags"),
             ({"tags": "[oops"}, "tags"),
             ({"generateListeningAudio": "maybe"},
              "generateListeningAudio")]
    for parts, loc in cases:
        r = sfsd.upload(**parts)
        body = sfsd.assert_error(r, 400)
        assert loc in [v["location"] for v in body["validation_errors"]], \
            (parts, body)
    # several at once: all named
    r = sfsd.upload(metadata="x", tags="y")
    body = sfsd.assert_error(r, 400)
    assert {v["location"] for v in body["validation_errors"]} == \
        {"metadata", "tags"}


def test_upload_core_validation_400(sfsd):
    body = sfsd.assert_error(sfsd.upload(path="no-slashes"), 400)
    assert body["validation_errors"]
    sfsd.assert_error(sfsd.upload(name=""), 400)
    sfsd.assert_error(sfsd.upload(name="x" * 300), 400)


def test_upload_duplicate_part_400(sfsd):
    r = sfsd.post("", files=[("file", ("a", b"1")), ("name", (None, "a")),
                             ("name", (None, "b"))])
    sfsd.assert_error(r, 400)
    r = sfsd.post("", files=[("file", ("a", b"1")), ("file", ("b", b"2")),
                             ("name", (None, "a"))])
    sfsd.assert_error(r, 400)


def test_broken_multipart_400(sfsd):
    h = {"Content-Type": "multipart/form-data; boundary=B"}
    truncated = (b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n"
                 b"\r\nx\r\n--B\r\nContent-Disposition: form-data; "
                 b"name=\"file\"; filename=\"f\"\r\n\r\nabcdef")
    sfsd.assert_error(sfsd.post("", data=truncated, headers=h), 400)
    sfsd.assert_error(sfsd.post("", data=b"garbage", headers=h), 400)
    sfsd.assert_error(sfsd.post("", data=b"x", headers={
        "Content-Type": "multipart/form-data"}), 400)
    assert sfsd.get("").status_code == 200


def test_upload_too_large_413(sfsd):
    r = sfsd.upload(data=b"\0" * (4 * 1024 * 1024 + 1))
    sfsd.assert_error(r, 413)
    r = sfsd.upload(data=b"\0" * (4 * 1024 * 1024))
    assert r.status_code == 201, r.text


def test_import_json_201_pending(sfsd):
    r = sfsd.post("", json={"uri": "https://example.invalid/a.wav",
                            "name": "imp", "path": "/imports/",
                            "metadata": {"k": "v"},
                            "generateListeningAudio": False})
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["ingestionStatus"] in ("PENDING", "PROCESSING", "FAILED")
    assert f["name"] == "imp" and f["path"] == "/imports/"
    assert f["metadata"] == {"k": "v"}
    # not ingested: content is not ready
    r = sfsd.get(f"/{f['id']}/content")
    assert r.status_code in (410, 422)
    sfsd.assert_error(r, r.status_code)


def test_import_bad_bodies_400(sfsd):
    cases = [({"name": "x"}, "uri"),
             ({"uri": 5, "name": "x"}, "uri"),
             ({"uri": "https://e.invalid/a"}, "name"),
             ({"uri": "https://e.invalid/a", "name": ["x"]}, "name"),
             ({"uri": "https://e.invalid/a", "name": "x",
               "metadata": "str"}, "metadata"),
             ({"uri": "https://e.invalid/a", "name": "x",
               "generateListeningAudio": "yes"}, "generateListeningAudio"),
             ({"uri": "https://e.invalid/a", "name": "x",
               "description": 1}, "description")]
    for body, loc in cases:
        b = sfsd.assert_error(sfsd.post("", json=body), 400)
        assert loc in [v["location"] for v in b["validation_errors"]], \
            (body, b)
    sfsd.assert_error(sfsd.post("", data=b"{", headers={
        "Content-Type": "application/json"}), 400)


def test_download_headers_and_bytes(sfsd):
    data = os.urandom(5000)
    f = sfsd.new_file(data=data, filename="talk.wav")
    r = sfsd.get(f"/{f['id']}/content")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["Content-Type"] == "application/octet-stream"
    assert r.headers["Content-Length"] == "5000"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["ETag"] == '"%s"' % hashlib.sha256(data).hexdigest()
    assert r.headers["Content-Disposition"] == \
        'attachment; filename="talk.wav"'
    assert len(r.headers["X-Request-Id"]) == 36


def test_download_non_ascii_filename_rfc6266(sfsd):
    name = "réunion été 2026.wav"
    f = sfsd.new_file(filename=name)
    cd = sfsd.get(f"/{f['id']}/content").headers["Content-Disposition"]
    assert cd.startswith('attachment; filename="')
    fallback = cd.split('filename="')[1].split('"')[0]
    assert all(32 <= ord(c) < 127 for c in fallback)
    star = cd.split("filename*=UTF-8''")[1]
    assert urllib.parse.unquote(star) == name


def test_range_requests(sfsd):
    data = bytes(range(256)) * 4          # 1024 bytes
    f = sfsd.new_file(data=data)
    url = f"/{f['id']}/content"

    def rng(h, **extra):
        return sfsd.get(url, headers=dict({"Range": h}, **extra))
    r = rng("bytes=0-0")
    assert r.status_code == 206 and r.content == data[:1]
    assert r.headers["Content-Range"] == "bytes 0-0/1024"
    assert r.headers["Content-Length"] == "1"
    r = rng("bytes=-10")
    assert r.status_code == 206 and r.content == data[-10:]
    assert r.headers["Content-Range"] == "bytes 1014-1023/1024"
    r = rng("bytes=1000-")
    assert r.status_code == 206 and r.content == data[1000:]
    r = rng("bytes=100-99999")
    assert r.status_code == 206 and r.content == data[100:]
    assert r.headers["Content-Range"] == "bytes 100-1023/1024"
    r = rng("bytes=-5000")              # suffix longer than the file
    assert r.status_code == 206 and r.content == data
    for bad in ["bytes=1024-", "bytes=5000-6000", "bytes=-0"]:
        r = rng(bad)
        sfsd.assert_error(r, 416)
        assert r.headers["Content-Range"] == "bytes */1024"
    # ignored: served whole
    for ign in ["bytes=5-2", "items=0-1", "bytes=abc", "bytes=0-1,5-6"]:
        r = rng(ign)
        assert r.status_code == 200 and r.content == data, ign
    etag = r.headers["ETag"]
    r = rng("bytes=0-9", **{"If-Range": etag})
    assert r.status_code == 206 and r.content == data[:10]
    r = rng("bytes=0-9", **{"If-Range": '"0000"'})
    assert r.status_code == 200 and r.content == data
    # no Last-Modified while the second of the upload lasts: wait it out
    end = time.monotonic() + 5
    while "Last-Modified" not in r.headers:
        assert time.monotonic() < end
        time.sleep(0.05)
        r = sfsd.get(url)
    lm = r.headers["Last-Modified"]
    r = rng("bytes=0-9", **{"If-Range": lm})
    assert r.status_code == 206
    r = rng("bytes=0-9", **{"If-Range": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert r.status_code == 200


def test_patch_fields(sfsd):
    f = sfsd.new_file(description="d", metadata='{"a":1}', tags='["x"]')
    url = f"/{f['id']}"
    r = sfsd.patch(url, json={"name": "renamed", "path": "/p/q/",
                              "tags": ["B", "a"], "metadata": {"b": 2},
                              "publishMode": "INTERNAL",
                              "unknownField": 1})
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["name"] == "renamed" and g["path"] == "/p/q/"
    assert g["tags"] == ["a", "B"]
    assert g["metadata"] == {"b": 2}
    assert g["description"] == "d"          # omitted: unchanged
    assert g["publishMode"] == "INTERNAL" and g["publishedAt"]
    r = sfsd.patch(url, json={"description": None, "tags": []})
    g = r.json()
    assert g["description"] is None and g["tags"] == []
    assert g["name"] == "renamed"
    assert sfsd.get(url).json() == g


def test_patch_wrong_types_400_naming_the_field(sfsd):
    f = sfsd.new_file()
    url = f"/{f['id']}"
    for body, loc in [({"name": 5}, "name"), ({"name": None}, "name"),
                      ({"description": 3}, "description"),
                      ({"path": ["/"]}, "path"),
                      ({"metadata": "x"}, "metadata"),
                      ({"tags": "x"}, "tags"), ({"tags": [1]}, "tags"),
                      ({"publishMode": "PUBLIC"}, "publishMode"),
                      ({"publishMode": 1}, "publishMode")]:
        b = sfsd.assert_error(sfsd.patch(url, json=body), 400)
        assert loc in [v["location"] for v in b["validation_errors"]], \
            (body, b)
    sfsd.assert_error(sfsd.patch(url, json={"path": "nope"}), 400)
    assert sfsd.get(url).json()["name"] == f["name"]


def test_delete_restore_purge(sfsd):
    f = sfsd.new_file()
    url = f"/{f['id']}"
    r = sfsd.delete(url)
    assert r.status_code == 204 and r.content == b""
    g = sfsd.get(url).json()
    assert g["isDeleted"] is True and g["deletedAt"] and g["purgeAt"]
    sfsd.assert_error(sfsd.delete(url), 409)
    sfsd.assert_error(sfsd.get(url + "/content"), 410)
    sfsd.assert_error(sfsd.patch(url, json={"name": "x"}), 409)
    r = sfsd.post(url + "/restore")
    assert r.status_code == 200 and r.json()["isDeleted"] is False
    assert sfsd.get(url + "/content").status_code == 200
    sfsd.assert_error(sfsd.post(url + "/restore"), 409)
    sfsd.assert_error(sfsd.delete(url + "?purge=maybe"), 400)
    assert sfsd.delete(url + "?purge=true").status_code == 204
    g = sfsd.get(url).json()
    assert g["isDeleted"] is True and g["isPurged"] is True
    sfsd.assert_error(sfsd.get(url + "/content"), 410)
    sfsd.assert_error(sfsd.post(url + "/restore"), 410)


def test_discard_content(sfsd):
    f = sfsd.new_file()
    url = f"/{f['id']}"
    assert sfsd.post(url + "/discard-content").status_code == 204
    g = sfsd.get(url).json()
    assert g["isContentDiscarded"] is True and g["contentDiscardedAt"]
    sfsd.assert_error(sfsd.get(url + "/content"), 410)
    sfsd.assert_error(sfsd.post(url + "/discard-content"), 409)
    assert sfsd.delete(url).status_code == 204
    sfsd.assert_error(sfsd.post(url + "/discard-content"), 409)


def test_list_and_query_parameters(sfsd):
    tag = "lst" + uuid.uuid4().hex[:8]
    made = [sfsd.new_file(who="bob", name=f"{tag}-{i}",
                          path=f"/{tag}/" + ("sub/" if i == 2 else ""),
                          tags=f'["{tag}"]') for i in range(3)]
    r = sfsd.get(f"?path=/{tag}/", who="bob")
    assert r.status_code == 200, r.text
    j = r.json()
    assert {f["id"] for f in j["files"]} == {made[0]["id"], made[1]["id"]}
    assert j["directories"] == ["sub"]
    assert j["total"] == 2 and j["size"] == 2
    j = sfsd.get(f"?path=/{tag}/&recursive=true&sort=name,asc",
                 who="bob").json()
    assert [f["name"] for f in j["files"]] == [f"{tag}-{i}"
                                               for i in range(3)]
    j = sfsd.get(f"?recursive=true&tags={tag.upper()}&size=1&page=1"
                 "&sort=name,desc&whatever=ignored", who="bob").json()
    assert j["total"] == 3 and len(j["files"]) == 1
    assert j["files"][0]["name"] == f"{tag}-1"
    j = sfsd.get(f"?recursive=true&name={tag}-2", who="bob").json()
    assert [f["id"] for f in j["files"]] == [made[2]["id"]]
    j = sfsd.get(f"?recursive=true&sha256={made[0]['sha256']}"
                 f"&name={tag}", who="bob").json()
    assert j["total"] == 3       # same bytes: same sha256


def test_list_bad_values_400(sfsd):
    for q in ["page=-1", "page=x", "size=0", "size=101", "isDeleted=maybe",
              "sort=color,asc", "sort=name,up", "ingestionStatus=DONE",
              "createdAfter=yesterday", "tagsMatch=some",
              "publishMode=PUBLIC", "path=nope", "recursive=2"]:
        body = sfsd.assert_error(sfsd.get("?" + q), 400)
        assert body["validation_errors"], q
    assert sfsd.get("?unknownParam=1").status_code == 200


def test_shared_with_me_bad_values_400(sfsd):
    sfsd.assert_error(sfsd.get("/shared-with-me?accessType=NOPE"), 400)
    assert sfsd.get("/shared-with-me?accessType=INTERNAL").status_code \
        == 200


# ---- cursor pages of GET /files ------------------------------------------

def walk(c, size, sort="creationDate,asc", **params):
    """Every page of a listing by nextCursor: (ids, pages' answers)."""
    ids, answers, cursor = [], [], None
    while True:
        q = dict(params, sort=sort, size=size)
        if cursor:
            q["cursor"] = cursor
        r = c.get("", params=q)
        assert r.status_code == 200, r.text
        j = r.json()
        answers.append(j)
        ids += [f["id"] for f in j["files"]]
        cursor = j["nextCursor"]
        if cursor is None:
            return ids, answers
        assert len(answers) < 100, "the walk does not end"


def test_cursor_pages_walk_the_listing_in_its_order(sfsd):
    """nextCursor continues a listing by creationDate (either direction)
    from its last file: the same files, in the same order, as the seed's
    pages; null on the last page and for other orders; every page
    carries the total counted at the first."""
    c = sfsd
    made = [c.new_file(name="c%02d" % i, path="/cur/")["id"]
            for i in range(11)]
    c.new_file(name="elsewhere", path="/cur2/")
    deep = c.new_file(name="deep", path="/cur/deep/")["id"]
    for sort in ("creationDate,asc", "creationDate,desc"):
        whole = c.get("", params={"path": "/cur/", "sort": sort,
                                  "size": 100}).json()
        assert whole["nextCursor"] is None and whole["total"] == 11
        ids, pages = walk(c, 3, sort=sort, path="/cur/")
        assert ids == [f["id"] for f in whole["files"]]
        assert sorted(ids) == sorted(made)
        assert [len(p["files"]) for p in pages] == [3, 3, 3, 2]
        assert all(p["total"] == 11 and p["size"] == len(p["files"])
                   for p in pages)
    # the seed's paging says where to go on too, but only by creationDate
    r = c.get("", params={"path": "/cur/", "size": 3, "page": 1,
                          "sort": "creationDate,asc"}).json()
    assert r["nextCursor"] is not None
    r = c.get("", params={"path": "/cur/", "size": 3, "sort": "name,asc"})
    assert r.json()["nextCursor"] is None and r.json()["total"] == 11
    # recursive, and other filters, walk the same way
    ids, _ = walk(c, 5, path="/cur/", recursive="true")
    assert ids == made + [deep]


def test_cursor_walk_neither_skips_nor_repeats_when_files_go(sfsd):
    """Files deleted behind the walk's position shift the seed's pages
    (a file is skipped); a cursor is a position, not a count: nothing is
    skipped, and a file made meanwhile comes at the end."""
    c = sfsd
    made = [c.new_file(name="s%02d" % i, path="/shift/")["id"]
            for i in range(8)]
    q = {"path": "/shift/", "sort": "creationDate,asc", "size": 3}
    first = c.get("", params=q).json()
    assert [f["id"] for f in first["files"]] == made[:3]
    for fid in made[:3]:
        assert c.delete("/" + fid).status_code == 204
    late = c.new_file(name="late", path="/shift/")["id"]
    seen = []
    cursor = first["nextCursor"]
    while cursor:
        j = c.get("", params=dict(q, cursor=cursor)).json()
        seen += [f["id"] for f in j["files"]]
        cursor = j["nextCursor"]
    assert seen == made[3:] + [late]
    # the seed's page 1 now starts past made[3..5]: what a cursor avoids
    assert [f["id"] for f in c.get("", params=dict(q, page=1))
            .json()["files"]] == made[6:] + [late]


def test_cursor_arguments(sfsd):
    """A cursor is checked: it must be one of this caller's listings'
    (another user's or tenant's file is no position, whether it exists or
    not), in the order it was made in, without a page."""
    c = sfsd
    for i in range(3):
        c.new_file(name="a%d" % i, path="/arg/")
    q = {"path": "/arg/", "sort": "creationDate,desc", "size": 1}
    cur = c.get("", params=q).json()["nextCursor"]
    assert cur and c.get("", params=dict(q, cursor=cur)).status_code == 200
    bob = c.new_file(who="bob", name="b", path="/arg/")["id"]
    carol = c.new_file(who="carol", name="c", path="/arg/")["id"]
    bad = ["", "x", "d" + bob + ".3", "d" + carol + ".3",
           "d00000000-0000-4000-8000-000000000000.3", cur[:-2],
           cur[0] + cur[1:37] + ".-1", cur[0] + cur[1:37].upper() + ".3",
           "q" + cur[1:]]
    for v in bad:
        r = c.get("", params=dict(q, cursor=v))
        c.assert_error(r, 400)
        assert r.json()["validation_errors"][0]["location"] == "cursor", v
    r = c.get("", params=dict(q, cursor=cur, sort="creationDate,asc"))
    c.assert_error(r, 400)
    assert r.json()["validation_errors"][0]["location"] == "cursor"
    r = c.get("", params=dict(q, cursor=cur, page=1))
    c.assert_error(r, 400)
    assert r.json()["validation_errors"][0]["location"] == "page"
    # a cursor continues the filters it was made for (its total is
    # theirs), not others; size is not a filter
    for other in ({"path": "/"}, {"recursive": "true"}, {"tags": "x"},
                  {"name": "a"}, {"isDeleted": "true"}):
        r = c.get("", params=dict(q, cursor=cur, **other))
        c.assert_error(r, 400)
        assert r.json()["validation_errors"][0]["location"] == "cursor", \
            other
    assert c.get("", params=dict(q, cursor=cur, size=2)).status_code == 200
    # shared-with-me has no cursor, and refuses one rather than ignore it
    assert "nextCursor" not in c.get("/shared-with-me", who="bob").json()
    r = c.get("/shared-with-me", params={"cursor": cur})
    c.assert_error(r, 400)
    assert r.json()["validation_errors"][0]["location"] == "cursor"
