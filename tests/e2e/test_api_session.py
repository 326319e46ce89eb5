"""Sign-in sessions through the API (an extension): an API key exchanged
for an HttpOnly, SameSite=Strict cookie (Secure behind TLS), the cookie
acting as the key's user with the key's scopes, the CSRF header that
unsafe methods need, sign-out, and a revoked key ending its sessions."""
import requests

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

SESSION = "/api/v1/speech-services/session"


def sign_in(c, who="alice", headers=None):
    h = {"X-API-Key": c.keys[who]}
    h.update(headers or {})
    return requests.post(c.base + SESSION, headers=h, timeout=30)


def browser(c, who="alice"):
    """A requests session that holds the cookie, as a browser would, and
    the session's JSON (with its CSRF token)."""
    r = sign_in(c, who)
    assert r.status_code == 201, r.text
    s = requests.Session()
    s.cookies.set("sfs_session", r.cookies["sfs_session"])
    return s, r.json()


def cookie_attrs(r):
    raw = r.headers["Set-Cookie"]
    parts = [p.strip() for p in raw.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    return name, value, attrs


def test_sign_in_sets_a_strict_http_only_cookie(sfsd):
    r = sign_in(sfsd)
    assert r.status_code == 201, r.text
    name, value, attrs = cookie_attrs(r)
    assert name == "sfs_session" and value.startswith("sfss_")
    assert len(value) == 69
    assert "httponly" in attrs and attrs["samesite"] == "Strict"
    assert attrs["path"] == "/" and attrs["max-age"] == "43200"
    assert "secure" not in attrs  # plain HTTP on loopback
    body = r.json()
    assert set(body) == {"id", "userId", "tenantId", "scopes", "createdAt",
                         "expiresAt", "idleExpiresAt", "csrfToken"}
    assert body["userId"] == sfsd.users["alice"]
    assert body["tenantId"] == sfsd.tenants["a"]
    assert body["scopes"] == ["speech:files:read", "speech:files:write",
                              "speech:files:delete", "speech:files:share"]
    assert len(body["csrfToken"]) == 64
    assert value not in r.text  # the token is only in the cookie


def test_secure_behind_tls(sfsd):
    for h in ({"X-Forwarded-Proto": "https"},
              {"Forwarded": "for=192.0.2.1;proto=https"}):
        _, _, attrs = cookie_attrs(sign_in(sfsd, headers=h))
        assert "secure" in attrs, h
    _, _, attrs = cookie_attrs(sign_in(sfsd, headers={
        "X-Forwarded-Proto": "http"}))
    assert "secure" not in attrs


def test_the_cookie_acts_as_the_user(sfsd):
    s, ses = browser(sfsd)
    mine = sfsd.new_file(name="mine")
    r = s.get(sfsd.api + "/" + mine["id"], timeout=30)
    assert r.status_code == 200 and r.json()["name"] == "mine"
    r = s.get(sfsd.base + SESSION, timeout=30)
    assert r.status_code == 200
    assert r.json()["csrfToken"] == ses["csrfToken"]
    assert r.json()["id"] == ses["id"]
    # bob's cookie cannot read alice's private file
    b, _ = browser(sfsd, "bob")
    sfsd.assert_error(b.get(sfsd.api + "/" + mine["id"], timeout=30), 403)


def test_unsafe_methods_need_the_csrf_header(sfsd):
    s, ses = browser(sfsd)
    f = sfsd.new_file(name="csrf")
    url = sfsd.api + "/" + f["id"]
    body = {"description": "changed"}
    sfsd.assert_error(s.patch(url, json=body, timeout=30), 403,
                      "csrf_failed")
    sfsd.assert_error(s.patch(url, json=body, timeout=30,
                              headers={"X-CSRF-Token": "0" * 64}),
                      403, "csrf_failed")
    _, other = browser(sfsd)  # another session's token is no good here
    sfsd.assert_error(s.patch(url, json=body, timeout=30, headers={
        "X-CSRF-Token": other["csrfToken"]}), 403, "csrf_failed")
    assert sfsd.get("/" + f["id"]).json()["description"] is None
    r = s.patch(url, json=body, timeout=30,
                headers={"X-CSRF-Token": ses["csrfToken"]})
    assert r.status_code == 200 and r.json()["description"] == "changed"
    # an upload and a delete likewise
    r = s.post(sfsd.api, files={"file": ("a.wav", b"abc")},
               data={"name": "up"}, timeout=30)
    sfsd.assert_error(r, 403, "csrf_failed")
    r = s.post(sfsd.api, files={"file": ("a.wav", b"abc")},
               data={"name": "up"}, timeout=30,
               headers={"X-CSRF-Token": ses["csrfToken"]})
    assert r.status_code == 201, r.text
    sfsd.assert_error(s.delete(sfsd.api + "/" + r.json()["id"], timeout=30),
                      403, "csrf_failed")


def test_sign_out_revokes(sfsd):
    s, ses = browser(sfsd)
    sfsd.assert_error(s.delete(sfsd.base + SESSION, timeout=30), 403,
                      "csrf_failed")
    assert s.get(sfsd.api, timeout=30).status_code == 200
    r = s.delete(sfsd.base + SESSION, timeout=30,
                 headers={"X-CSRF-Token": ses["csrfToken"]})
    assert r.status_code == 204
    name, value, attrs = cookie_attrs(r)
    assert name == "sfs_session" and value == "" and attrs["max-age"] == "0"
    # the same cookie, kept by a client that ignores the reset: refused
    body = sfsd.assert_error(s.get(sfsd.api, timeout=30), 401,
                             "invalid_session")
    assert "signed out" in body["message"]
    sfsd.assert_error(s.get(sfsd.base + SESSION, timeout=30), 401,
                      "invalid_session")


def test_bad_sign_ins(sfsd):
    r = requests.post(sfsd.base + SESSION, timeout=30)
    sfsd.assert_error(r, 401, "unauthenticated")
    r = requests.post(sfsd.base + SESSION, timeout=30,
                      headers={"X-API-Key": "sfs_" + "0" * 64})
    sfsd.assert_error(r, 401)
    assert "Set-Cookie" not in r.headers
    r = sign_in(sfsd, headers={"Authorization": "Bearer x"})
    sfsd.assert_error(r, 400, "ambiguous_credentials")
    r = requests.get(sfsd.base + SESSION, timeout=30)
    sfsd.assert_error(r, 401, "invalid_session")
    r = requests.get(sfsd.api, timeout=30,
                     cookies={"sfs_session": "sfss_" + "0" * 64})
    sfsd.assert_error(r, 401, "invalid_session")
    assert cookie_attrs(r)[2]["max-age"] == "0"  # told to forget it
    r = requests.get(sfsd.api, timeout=30,
                     cookies={"sfs_session": "junk"})
    sfsd.assert_error(r, 401, "invalid_session")
    r = requests.get(sfsd.api, timeout=30,
                     cookies={"sfs_session": "junk\x7f"})
    sfsd.assert_error(r, 400, "bad_request")  # a control character


def test_a_header_credential_wins_over_the_cookie(sfsd):
    s, _ = browser(sfsd, "alice")
    r = s.get(sfsd.base + "/api/v1/speech-services/files", timeout=30,
              headers={"X-API-Key": sfsd.keys["bob"]})
    assert r.status_code == 200
    f = sfsd.new_file(who="bob", name="bobs")
    # acting as bob: bob's file is there without a CSRF header
    r = s.patch(sfsd.api + "/" + f["id"], json={"description": "b"},
                headers={"X-API-Key": sfsd.keys["bob"]}, timeout=30)
    assert r.status_code == 200


def test_scopes_of_the_key(sfsd):
    s, ses = browser(sfsd, "alice_ro")
    assert ses["scopes"] == ["speech:files:read"]
    assert s.get(sfsd.api, timeout=30).status_code == 200
    r = s.post(sfsd.api, files={"file": ("a.wav", b"abc")},
               data={"name": "up"}, timeout=30,
               headers={"X-CSRF-Token": ses["csrfToken"]})
    sfsd.assert_error(r, 403, "insufficient_scope")


def test_revoking_the_key_ends_its_sessions(sfsd):
    u = sfsd.users["alice"]
    k = sfsd.admin("key", "create", "--user", u)
    sfsd.keys["temp"] = k["key"]
    s, _ = browser(sfsd, "temp")
    assert s.get(sfsd.api, timeout=30).status_code == 200
    sfsd.admin("key", "revoke", "--id", k["id"])
    sfsd.assert_error(s.get(sfsd.api, timeout=30), 401, "invalid_session")
    sfsd.assert_error(sign_in(sfsd, "temp"), 401)


def test_session_failures_are_not_throttled_as_guesses(sfsd_factory):
    c = sfsd_factory({"http.auth_failures_burst": "3",
                      "http.auth_failures_per_second": "0.01"})
    for _ in range(10):
        r = requests.get(c.api, timeout=30,
                         cookies={"sfs_session": "sfss_" + "1" * 64})
        assert r.status_code == 401
    # wrong keys still are
    codes = [requests.get(c.api, timeout=30, headers={
        "X-API-Key": "sfs_" + "2" * 64}).status_code for _ in range(6)]
    assert 429 in codes
    codes = [requests.post(c.base + SESSION, timeout=30, headers={
        "X-API-Key": "sfs_" + "2" * 64}).status_code for _ in range(2)]
    assert codes == [429, 429]
