"""speechfsd as a client sees it before any file: health, OpenAPI, metrics,
authentication (401), scopes (403), routing (404, 405), the error body and
X-Request-Id on every response, and hostile input answered with a clear 4xx
while the daemon keeps serving."""
import socket
import uuid

import requests

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

API = "/api/v1/speech-services/files"


def test_healthz_needs_no_auth(sfsd):
    r = sfsd.get("/healthz", who=None)
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert len(r.headers["X-Request-Id"]) == 36


def test_openapi_document(sfsd):
    r = sfsd.get("/api/v1/openapi.json", who=None)
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for p in [API, API + "/shared-with-me", API + "/{id}",
              API + "/{id}/content", API + "/{id}/listening-audio/stream",
              API + "/{fileId}/shares/{shareId}"]:
        assert p in paths, p
    assert set(paths[API + "/{id}"]) == {"get", "patch", "delete"}


def test_metrics_count_requests(sfsd):
    sfsd.get("")
    sfsd.get("", who=None)
    r = sfsd.get("/metrics", who=None)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    t = r.text
    assert 'speechfs_http_requests_total{route="files_list",status="200"}' \
        in t
    assert 'route="files_list",status="401"' in t
    assert "speechfs_http_request_duration_seconds_bucket" in t
    assert "speechfs_http_bytes_out_total" in t


def test_request_ids_are_unique(sfsd):
    ids = {sfsd.get("/healthz", who=None).headers["X-Request-Id"]
           for _ in range(5)}
    assert len(ids) == 5


def test_missing_credentials_401(sfsd):
    r = sfsd.get("", who=None)
    body = sfsd.assert_error(r, 401)
    assert "X-API-Key" in body["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # an error to a request without a body keeps the connection alive
    assert "close" not in r.headers.get("Connection", "").lower()


def test_bad_api_key_401(sfsd):
    r = sfsd.get("", headers={"X-API-Key": "sfs_" + "0" * 64}, who=None)
    sfsd.assert_error(r, 401)
    r = sfsd.get("", headers={"X-API-Key": "nonsense"}, who=None)
    sfsd.assert_error(r, 401)


def test_bad_jwt_401(sfsd):
    sfsd.assert_error(sfsd.get("", who="jwt:abc.def.ghi"), 401)
    sfsd.assert_error(sfsd.get("", who="jwt:"), 401)
    r = sfsd.get("", who=None, headers={"Authorization": "Basic eDp5"})
    sfsd.assert_error(r, 401)


def test_jwt_from_admin_cli_works_and_scopes_apply(sfsd):
    tok = sfsd.admin("jwt", "--user", sfsd.users["alice"],
                     "--scopes", "read", "--ttl", "60")["token"]
    assert sfsd.get("", who="jwt:" + tok).status_code == 200
    r = sfsd.upload(who="jwt:" + tok)
    sfsd.assert_error(r, 403)


def test_tampered_jwt_401(sfsd):
    tok = sfsd.admin("jwt", "--user", sfsd.users["alice"],
                     "--scopes", "read")["token"]
    h, p, sig = tok.split(".")
    bad = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    sfsd.assert_error(sfsd.get("", who=f"jwt:{h}.{p}.{bad}"), 401)
    # the payload of another user under alice's signature
    tok_b = sfsd.admin("jwt", "--user", sfsd.users["bob"])["token"]
    sfsd.assert_error(sfsd.get("", who=f"jwt:{h}.{tok_b.split('.')[1]}."
                               f"{sig}"), 401)


def test_read_only_key_403_on_write_delete_share(sfsd):
    f = sfsd.new_file()
    fid = f["id"]
    assert sfsd.get(f"/{fid}", who="alice_ro").status_code == 200
    sfsd.assert_error(sfsd.upload(who="alice_ro"), 403)
    sfsd.assert_error(sfsd.patch(f"/{fid}", who="alice_ro",
                                 json={"name": "x"}), 403)
    sfsd.assert_error(sfsd.delete(f"/{fid}", who="alice_ro"), 403)
    sfsd.assert_error(sfsd.post(f"/{fid}/shares", who="alice_ro",
                                json={"userId": sfsd.users["bob"]}), 403)
    # read+write still may not delete or share
    sfsd.assert_error(sfsd.delete(f"/{fid}", who="alice_rw"), 403)
    sfsd.assert_error(sfsd.post(f"/{fid}/shares", who="alice_rw",
                                json={"userId": sfsd.users["bob"]}), 403)
    assert sfsd.get(f"/{fid}").json()["isDeleted"] is False


def test_revoked_key_401(sfsd):
    k = sfsd.admin("key", "create", "--user", sfsd.users["bob"])
    h = {"X-API-Key": k["key"]}
    assert sfsd.get("", who=None, headers=h).status_code == 200
    sfsd.admin("key", "revoke", "--id", k["id"])
    sfsd.assert_error(sfsd.get("", who=None, headers=h), 401)


def test_unknown_route_404_with_body(sfsd):
    sfsd.assert_error(sfsd.get("/api/v1/nothing"), 404, "not_found")
    sfsd.assert_error(sfsd.get("/" + str(uuid.uuid4()) + "/nothing"), 404)
    # outside /api/ is the web page's (test_web_static): only its files
    sfsd.assert_error(sfsd.get("http://" + sfsd.base.split("//")[1] +
                               "/nothing.html"), 404, "not_found")


def test_wrong_method_405_with_allow(sfsd):
    fid = str(uuid.uuid4())
    r = sfsd.req("PUT", f"/{fid}")
    sfsd.assert_error(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    r = sfsd.req("DELETE", "")
    sfsd.assert_error(r, 405)
    assert set(r.headers["Allow"].split(", ")) == {"GET", "POST"}


def test_bad_uuid_400_names_the_parameter(sfsd):
    for path in ["/not-a-uuid", "/1234/content", "/" + "a" * 200,
                 "/zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz/shares"]:
        body = sfsd.assert_error(sfsd.get(path), 400)
        assert body["validation_errors"][0]["location"] in ("id", "fileId")
    fid = sfsd.new_file()["id"]
    body = sfsd.assert_error(sfsd.delete(f"/{fid}/shares/xyz"), 400)
    assert body["validation_errors"][0]["location"] == "shareId"


def test_unknown_file_404(sfsd):
    sfsd.assert_error(sfsd.get(f"/{uuid.uuid4()}"), 404)
    sfsd.assert_error(sfsd.get(f"/{uuid.uuid4()}/content"), 404)


def test_malformed_json_400(sfsd):
    fid = sfsd.new_file()["id"]
    for body in [b"{", b"[1,2]", b"nul", b"\xff\xfe", b'{"name": "a",}',
                 b'{"name":"a","name":"b"}']:
        r = sfsd.patch(f"/{fid}", data=body,
                       headers={"Content-Type": "application/json"})
        sfsd.assert_error(r, 400)
    r = sfsd.patch(f"/{fid}", data=b"",
                   headers={"Content-Type": "application/json"})
    sfsd.assert_error(r, 400)


def test_post_files_other_content_type_415(sfsd):
    r = sfsd.post("", data=b"hello", headers={"Content-Type": "text/plain"})
    sfsd.assert_error(r, 415)
    r = sfsd.post("", data=b"hello")   # no Content-Type at all
    sfsd.assert_error(r, 415)


def test_very_long_url_and_headers(sfsd):
    r = sfsd.get("?name=" + "x" * 10000)
    sfsd.assert_error(r, 414)
    r = sfsd.get("", headers={"X-Junk": "y" * 20000})
    sfsd.assert_error(r, 431)
    # and beyond what libmicrohttpd buffers: still a 4xx, not a hang
    r = sfsd.get("", headers={"X-Junk": "y" * 200000})
    assert 400 <= r.status_code < 500
    assert sfsd.get("/healthz", who=None).status_code == 200


def test_garbage_request_line_keeps_serving(sfsd):
    host, port = sfsd.base.split("//")[1].split(":")
    for junk in [b"\x00\x01\x02garbage\r\n\r\n",
                 b"GET / HTTP/9.9\r\n\r\n",
                 b"POST " + API.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Length: 99999999999999999999\r\n\r\n"]:
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(junk)
        try:
            s.recv(4096)
        except OSError:
            pass
        s.close()
    assert sfsd.get("/healthz", who=None).status_code == 200
    assert sfsd.get("").status_code == 200


def test_error_on_every_status_has_request_id(sfsd):
    r = requests.get(sfsd.base + API, timeout=5)
    assert r.status_code == 401
    assert r.headers["X-Request-Id"] == r.json()["request_id"]


def test_json_body_limits_and_type(sfsd):
    fid = sfsd.new_file()["id"]
    big = b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = sfsd.patch(f"/{fid}", data=big,
                   headers={"Content-Type": "application/json"})
    sfsd.assert_error(r, 413)

    def chunks():                   # no Content-Length: caught streaming
        yield b'{"name": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'
    r = sfsd.patch(f"/{fid}", data=chunks(),
                   headers={"Content-Type": "application/json"})
    sfsd.assert_error(r, 413)
    r = sfsd.patch(f"/{fid}", data=b'{"name":"x"}',
                   headers={"Content-Type": "text/plain"})
    sfsd.assert_error(r, 415)
    r = sfsd.patch(f"/{fid}", data=b'{"name":"ok"}',
                   headers={"Content-Type":
                            "application/json; charset=utf-8"})
    assert r.status_code == 200 and r.json()["name"] == "ok"
