"""Replies that libmicrohttpd makes by itself (issue 13, defect 3): a bad or
huge Content-Length, a header block beyond its buffer, control characters,
broken chunked framing, an HTTP version it does not speak. Each must be
one well-framed response with the documented error body and X-Request-Id,
and nothing may follow it on the connection (libmicrohttpd 0.9.75 sent the
status line and headers twice)."""
import pytest

import edgeutil as eu

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

API = "/api/v1/speech-services/files"

BAD = {
    "content-length-letters": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: abc\r\n\r\n", 400),
    "content-length-huge": (
        b"POST " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 99999999999999999999999\r\n\r\n", 413),
    "content-length-sign": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: -1\r\n\r\n", 400),
    "header-block-huge": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Junk: " +
        b"y" * 300000 + b"\r\n\r\n", 431),
    "uri-huge": (
        b"GET /" + b"a" * 300000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "control-in-name": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"X-API-Key: KEY\r\nX-B\x01d: 1\r\n\r\n", 400),
    "space-before-colon": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"X-API-Key: KEY\r\nX-Bad : 1\r\n\r\n", 400),
    "no-colon": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"NoColonHere\r\n\r\n", 400),
    "http-version-2": (
        b"GET " + API.encode() + b" HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    "http-version-junk": (
        b"GET " + API.encode() + b" HTTP/x.y\r\nHost: x\r\n\r\n", 400),
    "chunk-size-junk": (
        b"PATCH " + API.encode() + b"/00000000-0000-4000-8000-000000000000"
        b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"X-API-Key: KEY\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400),
    "no-host-1.1": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nX-API-Key: KEY\r\n\r\n",
        400),
    "space-in-uri": (
        b"GET " + API.encode() + b"?a=b c HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "control-in-value": (
        b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"X-API-Key: KEY\r\nX-Bad: a\x01b\r\n\r\n", 400),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_library_replies_are_ours_and_framed_once(sfsd, name):
    data, want = BAD[name]
    data = data.replace(b"KEY", sfsd.keys["alice"].encode())
    with eu.connect(sfsd.base) as s:
        s.sendall(data)
        r, rest = eu.read_response(s)
        body = eu.assert_error_body(r, want)
        assert body["message"], body
        assert r.header("Connection") == "close"
        # nothing after the one response: no second status line
        assert eu.rest_until_close(s, rest) == b""
    assert sfsd.get("/healthz", who=None).status_code == 200


def test_library_reply_after_a_good_request_on_the_same_connection(sfsd):
    key = sfsd.keys["alice"].encode()
    good = (b"GET " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"X-API-Key: " + key + b"\r\n\r\n")
    with eu.connect(sfsd.base) as s:
        s.sendall(good)
        r, rest = eu.read_response(s)
        assert r.status == 200
        s.sendall(BAD["content-length-letters"][0])
        r, rest = eu.read_response(s, rest)
        eu.assert_error_body(r, 400)
        assert eu.rest_until_close(s, rest) == b""
        # pipelined: the good one is answered, then the bad one
    with eu.connect(sfsd.base) as s:
        s.sendall(good + BAD["content-length-letters"][0])
        r, rest = eu.read_response(s)
        assert r.status == 200
        r, rest = eu.read_response(s, rest)
        eu.assert_error_body(r, 400)
        assert eu.rest_until_close(s, rest) == b""


def test_expect_continue_still_works(sfsd):
    """The interim 100 of libmicrohttpd passes untouched."""
    key = sfsd.keys["alice"].encode()
    fid = sfsd.new_file()["id"]
    body = b'{"name": "continued"}'
    with eu.connect(sfsd.base) as s:
        s.sendall(b"PATCH " + API.encode() + b"/" + fid.encode() +
                  b" HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key +
                  b"\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: " +
                  str(len(body)).encode() + b"\r\n\r\n")
        r, rest = eu.read_response(s)
        assert r.status == 100
        s.sendall(body)
        r, rest = eu.read_response(s, rest)
        assert r.status == 200 and r.json()["name"] == "continued"


def test_head_request_error_has_no_body(sfsd):
    r = eu.get(sfsd.base, API + "/nope", method="HEAD")
    assert r.status == 401 and r.body == b""
