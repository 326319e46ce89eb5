"""The daemon's streaming multipart/form-data parser, as clients stress it:
delimiters split across reads at every position, file bytes that look
like the start of a delimiter, preamble and epilogue, padding, quoted
boundaries; and malformed bodies, each a 400 with the error body while the
daemon keeps serving."""
import hashlib
import json
import os
import socket
import time
import urllib.parse

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]

API = "/api/v1/speech-services/files"


def part(name, value, filename=None, ctype=None):
    disp = 'form-data; name="%s"' % name
    if filename is not None:
        disp += '; filename="%s"' % filename
    head = "Content-Disposition: %s\r\n" % disp
    if ctype:
        head += "Content-Type: %s\r\n" % ctype
    return head.encode() + b"\r\n" + value


def body_of(boundary, parts, preamble=b"", epilogue=b"", pad=b""):
    b = boundary.encode()
    out = preamble + b"--" + b + pad + b"\r\n"
    out += (b"\r\n--" + b + pad + b"\r\n").join(parts)
    return out + b"\r\n--" + b + b"--" + epilogue


def raw_post(sfsd, body, ctype, pieces, pause=0.002):
    """POST body over a raw socket in pieces of the given sizes (cycled),
    pausing between them so the daemon reads them one by one."""
    u = urllib.parse.urlsplit(sfsd.base)
    s = socket.create_connection((u.hostname, u.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = ("POST %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (
                API, sfsd.keys["alice"], ctype, len(body))).encode()
    s.sendall(head)
    off = i = 0
    while off < len(body):
        n = pieces[i % len(pieces)]
        s.sendall(body[off:off + n])
        off += n
        i += 1
        if pause:
            time.sleep(pause)
    resp = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        resp += chunk
    s.close()
    status = int(resp.split(b" ", 2)[1])
    return status, resp.split(b"\r\n\r\n", 1)[1]


def content(sfsd, fid):
    r = sfsd.get(f"/{fid}/content")
    assert r.status_code == 200
    return r.content


def test_delimiter_split_at_every_position(sfsd):
    # file bytes full of near-delimiters: CRLF, "--", the boundary alone
    bnd = "sfs-Boundary-0123456789"
    data = (b"\r\n--sfs-Boundary-012345678X" + b"\r\n-\r\n--\r" +
            b"--sfs-Boundary-0123456789" + b"\r" * 50 + b"\r\n--sfs" +
            os.urandom(700) + b"\r\n--sfs-Boundary-01234567")
    body = body_of(bnd, [part("name", b"split"),
                         part("file", data, "s.bin"),
                         part("generateListeningAudio", b"false")])
    dlen = len(bnd) + 4
    for first in range(1, dlen + 3, 3):
        status, resp = raw_post(sfsd, body,
                                "multipart/form-data; boundary=" + bnd,
                                [first, 1, 2, dlen - 1, dlen, 7, 97])
        assert status == 201, (first, resp)
        f = json.loads(resp)
        assert f["size"] == len(data), first
        assert f["sha256"] == hashlib.sha256(data).hexdigest(), first
        assert f["name"] == "split" and f["filename"] == "s.bin"
    assert content(sfsd, f["id"]) == data


def test_file_ends_with_a_delimiter_prefix(sfsd):
    # the last bytes before the real delimiter start one themselves
    for tail in (b"\r", b"\r\n", b"\r\n-", b"\r\n--", b"\r\n--B",
                 b"\r\n--BB"):
        data = b"abc" + tail
        body = body_of("BBB", [part("file", data, "t.bin"),
                               part("name", b"t")])
        r = sfsd.post("", data=body, headers={
            "Content-Type": "multipart/form-data; boundary=BBB"})
        assert r.status_code == 201, (tail, r.text)
        assert content(sfsd, r.json()["id"]) == data, tail


def test_preamble_epilogue_padding_quoted_boundary(sfsd):
    data = os.urandom(5000)
    bnd = "----=_Part 7:x"
    body = body_of(bnd, [part("name", b"pre"),
                         part("file", data, "p.bin",
                              "application/octet-stream")],
                   preamble=b"This is the preamble.\r\n",
                   epilogue=b"\r\nand an epilogue\r\n", pad=b" \t ")
    r = sfsd.post("", data=body, headers={
        "Content-Type": 'multipart/form-data; charset=utf-8; '
                        'boundary="%s"' % bnd})
    assert r.status_code == 201, r.text
    assert content(sfsd, r.json()["id"]) == data
    # header names in any case, parameters in any order
    body = (b"--q\r\ncontent-disposition: form-data; filename=\"x.bin\"; "
            b"name=\"file\"\r\n\r\nXYZ\r\n--q\r\n"
            b"CONTENT-DISPOSITION: form-data; name=name\r\n\r\nlower\r\n"
            b"--q--")
    r = sfsd.post("", data=body, headers={
        "Content-Type": "multipart/form-data; boundary=q"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "lower" and r.json()["filename"] == "x.bin"
    assert content(sfsd, r.json()["id"]) == b"XYZ"


def test_big_file_in_odd_pieces(sfsd_factory):
    # past the stage's pipeline threshold, read in pieces that put the
    # delimiter across reads
    sfsd = sfsd_factory({"http.max_upload_bytes": str(64 << 20)})
    data = os.urandom(9 * 1024 * 1024 + 17)
    body = body_of("zz", [part("name", b"big"), part("file", data, "b")])
    status, resp = raw_post(sfsd, body, "multipart/form-data; boundary=zz",
                            [65536 * 3 + 5, 1, 3, 4093], pause=0)
    assert status == 201, resp
    f = json.loads(resp)
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert content(sfsd, f["id"]) == data


def test_malformed_bodies_400(sfsd):
    ct = "multipart/form-data; boundary=B"
    good_file = part("file", b"1", "f")
    cases = [
        # no Content-Disposition
        b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--",
        # not form-data, or without a name
        b"--B\r\nContent-Disposition: attachment; name=\"name\"\r\n\r\n"
        b"x\r\n--B--",
        b"--B\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\n"
        b"x\r\n--B--",
        # a part without any header
        b"--B\r\n\r\nx\r\n--B--",
        # junk after a delimiter
        b"--B\r\n" + good_file + b"\r\n--Bjunk\r\n" + part("name", b"n") +
        b"\r\n--B--",
        # an unterminated quoted name
        b"--B\r\nContent-Disposition: form-data; name=\"name\r\n\r\n"
        b"x\r\n--B--",
        # headers that never end
        b"--B\r\nContent-Disposition: form-data; name=\"name\"\r\n" +
        b"X-Pad: " + b"p" * 20000 + b"\r\n\r\nx\r\n--B--",
        # the close delimiter missing
        b"--B\r\n" + good_file + b"\r\n--B\r\n" + part("name", b"n"),
        # no delimiter at all
        b"just some bytes",
    ]
    for body in cases:
        r = sfsd.post("", data=body, headers={"Content-Type": ct})
        sfsd.assert_error(r, 400)
        assert r.json()["error_type"] == "invalid_multipart", body[:60]
    for bad in ("multipart/form-data; boundary=" + "x" * 71,
                "multipart/form-data; boundary=",
                'multipart/form-data; boundary="open'):
        r = sfsd.post("", data=b"--x\r\n", headers={"Content-Type": bad})
        sfsd.assert_error(r, 400)
    # and the daemon still takes a good upload
    assert sfsd.upload().status_code == 201
