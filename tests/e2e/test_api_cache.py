"""Caching and browsers (issue 13, defect 9): ETags and 304s on a file's
JSON, listings, content and listening stream; Cache-Control on each kind
of answer (content named by its sha256 is immutable); CORS when
http.cors_origins is set, preflights answered."""
import datetime
import email.utils
import os
import subprocess
import tempfile
import time

import requests

import edgeutil as eu

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]


def revalidates(sfsd, path, inm, etag=None, **kw):
    r = sfsd.get(path, headers={"If-None-Match": inm}, **kw)
    assert r.status_code == 304, (r.status_code, r.text[:200])
    assert r.content == b""
    assert r.headers["ETag"] == (etag or inm)
    assert r.headers["X-Request-Id"]
    return r


def test_file_json_and_listing_etag_304(sfsd):
    f = sfsd.new_file(data=b"etag me", path="/cache/")
    fid = f["id"]
    r = sfsd.get(f"/{fid}")
    assert r.status_code == 200
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert r.headers["Cache-Control"] == "private, no-cache"
    revalidates(sfsd, f"/{fid}", etag)
    # weak form, lists and * match too (If-None-Match compares weakly)
    revalidates(sfsd, f"/{fid}", 'W/' + etag, etag)
    revalidates(sfsd, f"/{fid}", '"nope", ' + etag, etag)
    assert sfsd.get(f"/{fid}", headers={"If-None-Match": "*"}
                    ).status_code == 304
    assert sfsd.get(f"/{fid}", headers={"If-None-Match": '"other"'}
                    ).status_code == 200
    # a change makes a new ETag: the old one gets the new JSON
    sfsd.patch(f"/{fid}", json={"description": "changed"})
    r = sfsd.get(f"/{fid}", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.json()["description"] == "changed"
    assert r.headers["ETag"] != etag
    # a listing
    r = sfsd.get("?path=/cache/")
    lt = r.headers["ETag"]
    revalidates(sfsd, "?path=/cache/", lt)
    sfsd.new_file(data=b"another", path="/cache/")
    assert sfsd.get("?path=/cache/", headers={"If-None-Match": lt}
                    ).status_code == 200
    # shares of a file
    r = sfsd.get(f"/{fid}/shares")
    revalidates(sfsd, f"/{fid}/shares", r.headers["ETag"])
    # the same ETag means the same bytes, whoever asks
    assert sfsd.get(f"/{fid}").headers["ETag"] == \
        sfsd.get(f"/{fid}").headers["ETag"]


def dated(sfsd, path, deadline=5.0):
    """The first answer with a Last-Modified: the daemon sends none while
    the second of the last change lasts (a later change in it would share
    the date), so this waits out that second -- a condition, not a fixed
    sleep."""
    end = time.monotonic() + deadline
    while True:
        r = sfsd.get(path)
        assert r.status_code == 200, r.text[:200]
        if "Last-Modified" in r.headers:
            return r
        assert time.monotonic() < end, "no Last-Modified after %s s" % (
            deadline)
        time.sleep(0.05)


def http_date(secs):
    return email.utils.formatdate(secs, usegmt=True)


def test_dates_stay_exact_over_a_new_version_in_the_same_second(sfsd):
    """A client holds the Last-Modified; the bytes are replaced at once
    (PUT content), most likely within the very second that date names:
    the old date must get neither a 304 nor a range of the new bytes."""
    old, new = b"first version " * 50, b"second version " * 50
    fid = sfsd.new_file(data=old)["id"]
    held = dated(sfsd, f"/{fid}/content").headers["Last-Modified"]
    r = sfsd.req("PUT", f"/{fid}/content", data=new)
    assert r.status_code == 200, r.text
    for h in ({"If-Modified-Since": held},
              {"If-Range": held, "Range": "bytes=0-9"}):
        r = sfsd.get(f"/{fid}/content", headers=h)
        assert r.status_code == 200 and r.content == new, h
        # no date while the second of the new bytes lasts; after it, a
        # later one than the copy's
        lm = r.headers.get("Last-Modified")
        assert lm is None or email.utils.parsedate_to_datetime(lm) > \
            email.utils.parsedate_to_datetime(held)
    r = dated(sfsd, f"/{fid}/content")
    assert r.content == new and r.headers["Last-Modified"] != held
    r = sfsd.get(f"/{fid}/content", headers={
        "If-Modified-Since": r.headers["Last-Modified"]})
    assert r.status_code == 304


def test_content_etag_304_and_immutable_by_sha256(sfsd):
    data = b"content addressed" * 100
    f = sfsd.new_file(data=data)
    fid, sha = f["id"], f["sha256"]
    r = sfsd.get(f"/{fid}/content")
    assert r.status_code == 200 and r.content == data
    assert r.headers["ETag"] == '"%s"' % sha
    assert r.headers["Cache-Control"] == "private, no-cache"
    revalidates(sfsd, f"/{fid}/content", '"%s"' % sha)
    r = dated(sfsd, f"/{fid}/content")
    lm = r.headers["Last-Modified"]
    r = sfsd.get(f"/{fid}/content", headers={"If-Modified-Since": lm})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["Last-Modified"] == lm
    # Last-Modified is the end of the second of the change, never before
    # it: a date within that second may belong to a copy from before a
    # second change in it, so it is weak and no proof of a current copy
    made = datetime.datetime.fromisoformat(
        f["creationDate"].replace("Z", "+00:00")).timestamp()
    assert email.utils.parsedate_to_datetime(lm).timestamp() == \
        int(made) + 1
    for stale in (http_date(int(made)), http_date(int(made) - 60)):
        r = sfsd.get(f"/{fid}/content",
                     headers={"If-Modified-Since": stale})
        assert r.status_code == 200 and r.content == data, stale
        r = sfsd.get(f"/{fid}/content",
                     headers={"If-Range": stale, "Range": "bytes=0-9"})
        assert r.status_code == 200 and r.content == data, stale
    # a later date is current for If-Modified-Since, but If-Range takes
    # the Last-Modified alone; a date in the future is no date
    r = sfsd.get(f"/{fid}/content",
                 headers={"If-Modified-Since": http_date(int(made) + 2)})
    assert r.status_code in (200, 304)  # 304 once that second has come
    r = sfsd.get(f"/{fid}/content",
                 headers={"If-Modified-Since": http_date(time.time() + 3600)})
    assert r.status_code == 200 and r.content == data
    r = sfsd.get(f"/{fid}/content",
                 headers={"If-Range": lm, "Range": "bytes=0-9"})
    assert r.status_code == 206 and r.content == data[:10]
    # If-None-Match wins over If-Modified-Since
    r = sfsd.get(f"/{fid}/content", headers={"If-Modified-Since": lm,
                                             "If-None-Match": '"x"'})
    assert r.status_code == 200 and r.content == data
    # a Range request with a current ETag is a 304 too
    r = sfsd.get(f"/{fid}/content", headers={"If-None-Match": '"%s"' % sha,
                                             "Range": "bytes=0-9"})
    assert r.status_code == 304
    # named by its sha256: cached for good
    r = sfsd.get(f"/{fid}/content?sha256={sha}")
    assert r.status_code == 200 and r.content == data
    assert r.headers["Cache-Control"] == \
        "private, max-age=31536000, immutable"
    r = sfsd.get(f"/{fid}/content?sha256={sha.upper()}")
    assert r.status_code == 200
    body = sfsd.assert_error(
        sfsd.get(f"/{fid}/content?sha256={'0' * 64}"), 409,
        "content_changed")
    assert "sha256" in body["message"]
    # errors are never stored
    r = sfsd.get(f"/{fid}/content?sha256={'0' * 64}")
    assert r.headers["Cache-Control"] == "no-store"


def test_listening_stream_etag_304(sfsd):
    with tempfile.TemporaryDirectory() as d:
        wav = os.path.join(d, "a.wav")
        subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", wav,
                        "synth", "1", "sine", "440"], check=True)
        f = sfsd.new_file(data=open(wav, "rb").read(), listening="true")
    fid = f["id"]
    deadline = time.monotonic() + 30
    while True:
        la = sfsd.get(f"/{fid}").json()["listeningAudio"]
        if la and la["status"] == "COMPLETED":
            break
        assert time.monotonic() < deadline, la
        time.sleep(0.1)
    r = sfsd.get(f"/{fid}/listening-audio/stream")
    assert r.status_code == 200 and r.content[:3] in (b"ID3", b"\xff\xfb")
    etag = r.headers["ETag"]
    revalidates(sfsd, f"/{fid}/listening-audio/stream", etag)


def test_no_store_on_errors_and_public_endpoints(sfsd):
    for path in ["/healthz", "/metrics"]:
        r = sfsd.get(path, who=None)
        assert r.headers["Cache-Control"] == "no-store"
        assert "ETag" not in r.headers
    r = sfsd.get("/00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404
    assert r.headers["Cache-Control"] == "no-store"
    r = sfsd.post("", json={"uri": "ftp://x/y", "name": "n"})
    assert r.headers["Cache-Control"] == "no-store"


def test_no_cors_without_configuration(sfsd):
    r = sfsd.get("", headers={"Origin": "https://app.example.com"})
    assert r.status_code == 200
    assert not any(h.lower().startswith("access-control-")
                   for h in r.headers)
    r = requests.options(sfsd.api, headers={
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "GET"}, timeout=10)
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers
    # a plain OPTIONS says what the resource allows
    r = requests.options(sfsd.api, timeout=10)
    assert r.status_code == 204
    assert set(r.headers["Allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    r = requests.options(sfsd.base + "/api/v1/nothing", timeout=10)
    assert r.status_code == 404


def test_cors_for_listed_origins(sfsd_factory):
    c = sfsd_factory({"http.cors_origins":
                      "https://app.example.com, http://localhost:3000"})
    good = "https://app.example.com"
    fid = c.new_file()["id"]
    # preflight: no credentials needed
    r = requests.options(f"{c.api}/{fid}", headers={
        "Origin": good, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "x-api-key, content-type"},
        timeout=10)
    assert r.status_code == 204, r.text
    assert r.headers["Access-Control-Allow-Origin"] == good
    assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
    allow_h = r.headers["Access-Control-Allow-Headers"].lower()
    for h in ("x-api-key", "authorization", "content-type", "range",
              "if-none-match", "x-speechfs-content-crc32c"):
        assert h in allow_h
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in r.headers["Vary"]
    # a method the resource does not have
    r = requests.options(f"{c.api}/{fid}", headers={
        "Origin": good, "Access-Control-Request-Method": "PUT"}, timeout=10)
    assert r.status_code == 405
    # an origin not listed
    r = requests.options(f"{c.api}/{fid}", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method":
        "GET"}, timeout=10)
    c.assert_error(r, 403, "cors_origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in r.headers
    # the actual requests, success and error alike, name the origin
    for path, want in [(f"/{fid}", 200), (f"/{fid}/content", 200),
                       ("/00000000-0000-4000-8000-000000000000", 404)]:
        r = c.get(path, headers={"Origin": "http://localhost:3000"})
        assert r.status_code == want
        assert r.headers["Access-Control-Allow-Origin"] == \
            "http://localhost:3000"
        exposed = r.headers["Access-Control-Expose-Headers"].split(", ")
        for h in ("ETag", "X-Request-Id", "X-Speechfs-Content-Crc32c",
                  "X-Speechfs-Directory"):
            assert h in exposed
        assert r.headers["Vary"] == "Origin"
    r = c.get("", who=None, headers={"Origin": good})
    assert r.status_code == 401
    assert r.headers["Access-Control-Allow-Origin"] == good
    r = c.get(f"/{fid}", headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_wildcard(sfsd_factory):
    c = sfsd_factory({"http.cors_origins": "*"})
    r = c.get("", headers={"Origin": "https://anywhere.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Vary" not in r.headers


def test_cors_wildcard_among_origins(sfsd_factory):
    """A list with "*" in it allows every origin and answers "*": the
    request's Origin, whatever its size, is never echoed back."""
    c = sfsd_factory({"http.cors_origins": "https://app.example *"})
    long_origin = "https://" + "a" * 900 + ".example"
    r = c.get("", headers={"Origin": long_origin})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert r.headers["Cache-Control"]
    assert "Vary" not in r.headers
