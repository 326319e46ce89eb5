"""URI import through the daemon from a real HTTP server on loopback
(allowed with import.allow, which the SSRF rules need for 127.0.0.1), and
the tenant quotas of uploads and imports (413 quota_exceeded naming the
limit; an import past the byte quota fails with the reason in
ingestionError)."""
import hashlib
import http.server
import threading
import time

import pytest

from test_api_listening import wav

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]


@pytest.fixture(scope="module")
def origin():
    """An HTTP server with /speech.wav and /big.bin; yields its base."""
    files = {"/speech.wav": wav(3.0), "/big.bin": b"\x01" * 300_000}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", files
    srv.shutdown()
    srv.server_close()


def wait_for(c, fid, pred, seconds=60, who="alice"):
    deadline = time.time() + seconds
    while True:
        f = c.get(f"/{fid}", who=who).json()
        if pred(f) or time.time() > deadline:
            return f
        time.sleep(0.2)


def test_import_completes_with_content_and_listening_audio(sfsd_factory,
                                                           origin):
    base, files = origin
    c = sfsd_factory({"import.allow": "127.0.0.1"})
    r = c.post("", json={"uri": base + "/speech.wav", "name": "imported",
                         "path": "/imports/", "tags": ["Import"]})
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["ingestionStatus"] in ("PENDING", "PROCESSING", "COMPLETED")
    f = wait_for(c, f["id"], lambda f: f["ingestionStatus"] not in
                 ("PENDING", "PROCESSING"))
    assert f["ingestionStatus"] == "COMPLETED", f
    data = files["/speech.wav"]
    assert f["size"] == len(data)
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert f["filename"] == "speech.wav" and f["mimeType"] == "audio/wav"
    assert abs(f["durationSeconds"] - 3.0) < 0.05
    assert c.get(f"/{f['id']}/content").content == data
    f = wait_for(c, f["id"], lambda f: f["listeningAudio"]["status"] in
                 ("COMPLETED", "FAILED"))
    assert f["listeningAudio"]["status"] == "COMPLETED", f
    # the origin's 404 is the import's failure, with a reason
    r = c.post("", json={"uri": base + "/missing.wav", "name": "gone"})
    assert r.status_code == 201
    g = wait_for(c, r.json()["id"], lambda f: f["ingestionStatus"] ==
                 "FAILED")
    assert g["ingestionStatus"] == "FAILED" and "404" in g["ingestionError"]
    c.assert_error(c.get(f"/{g['id']}/content"), 422)


def test_loopback_import_refused_without_allow_list(sfsd, origin):
    base, _ = origin
    r = sfsd.post("", json={"uri": base + "/speech.wav", "name": "ssrf"})
    assert r.status_code == 201
    f = wait_for(sfsd, r.json()["id"], lambda f: f["ingestionStatus"] ==
                 "FAILED")
    assert f["ingestionStatus"] == "FAILED", f
    assert "loopback" in f["ingestionError"], f


def test_upload_quotas_413(sfsd_factory):
    c = sfsd_factory()
    t = c.quota_user(1000, 2)
    assert c.upload(who="q", data=b"a" * 600).status_code == 201
    body = c.assert_error(c.upload(who="q", data=b"b" * 600), 413,
                          "quota_exceeded")
    assert "byte" in body["message"] and "1000" in body["message"], body
    assert c.upload(who="q", data=b"c" * 300).status_code == 201
    body = c.assert_error(c.upload(who="q", data=b"d"), 413,
                          "quota_exceeded")
    assert "file" in body["message"], body
    # identical content is stored once, but is still a file of the count
    c.assert_error(c.upload(who="q", data=b"a" * 600), 413, "quota_exceeded")
    # the admin raises the limits; the use is reported
    q = c.admin("tenant", "quota", "--id", t, "--max-files", "3")
    assert q["maxFiles"] == 3 and q["maxBytes"] == 1000
    assert q["usedFiles"] == 2 and q["usedBytes"] == 900
    assert c.upload(who="q", data=b"a" * 600).status_code == 201  # dedupe
    # other tenants are not limited
    assert c.upload(who="alice", data=b"e" * 5000).status_code == 201


def test_import_quotas(sfsd_factory, origin):
    base, _ = origin
    c = sfsd_factory({"import.allow": "127.0.0.1"})
    c.quota_user(100_000, 1)
    r = c.post("", json={"uri": base + "/big.bin", "name": "big"}, who="q")
    assert r.status_code == 201, r.text
    f = wait_for(c, r.json()["id"], lambda f: f["ingestionStatus"] ==
                 "FAILED", who="q")
    assert f["ingestionStatus"] == "FAILED", f
    assert "quota" in f["ingestionError"], f
    # the failed import holds the tenant's one file: a second is refused
    r = c.post("", json={"uri": base + "/big.bin", "name": "big2"}, who="q")
    body = c.assert_error(r, 413, "quota_exceeded")
    assert "file" in body["message"]
