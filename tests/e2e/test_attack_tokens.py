"""Forged, tampered and invalid credentials against a real daemon: 30
JWTs (bad signatures, algorithms, claims, encodings) and 22 signed URLs
altered to reach more than their grant. Every one is refused (401, or
403/404/410 where the grant's own checks refuse it), with the error
body, and none is served the file; the untouched ones work, so the
refusals are about the alteration."""
import base64
import hashlib
import json
import time
import urllib.parse

import requests

import edgeutil as eu

READ = "speech:files:read"


def jwt_vectors(c):
    """(name, token) pairs that must all be refused."""
    sub = c.users["alice"]
    now = int(time.time())
    good = {"sub": sub, "exp": now + 600, "scope": READ}
    secret = eu.store_secret(c.store)
    hs = {"alg": "HS256", "typ": "JWT"}
    ok = eu.forge(c.store, good)
    h, p, s = ok.split(".")
    flip = s[:-2] + ("A" if s[-2] != "A" else "B") + s[-1]
    v = [
        ("wrong key", eu.forge(c.store, good, key=b"x" * 32)),
        ("empty key", eu.forge(c.store, good, key=b"")),
        ("secret with its last byte changed", eu.forge(
            c.store, good, key=secret[:-1] + bytes([secret[-1] ^ 1]))),
        ("HS512 with the secret", eu.forge(c.store, good, header={
            "alg": "HS512", "typ": "JWT"}, alg=hashlib.sha512)),
        ("HS384 with the secret", eu.forge(c.store, good, header={
            "alg": "HS384", "typ": "JWT"}, alg=hashlib.sha384)),
        ("alg none, no signature", h.replace(h, eu.b64(json.dumps(
            {"alg": "none", "typ": "JWT"}).encode())) + "." + p + "."),
        ("alg None", eu.b64(json.dumps({"alg": "None"}).encode()) + "." +
         p + "."),
        ("alg RS256 signed as HS256", eu.forge(c.store, good, header={
            "alg": "RS256", "typ": "JWT"})),
        ("no alg", eu.forge(c.store, good, header={"typ": "JWT"})),
        ("crit header", eu.forge(c.store, good, header=dict(
            hs, crit=["exp"]))),
        ("signature flipped", h + "." + p + "." + flip),
        ("signature missing", h + "." + p + "."),
        ("signature of another payload", h + "." + eu.b64(json.dumps(
            dict(good, scope=READ + " speech:files:delete")).encode()) +
         "." + s),
        ("two parts", h + "." + p),
        ("four parts", ok + "." + s),
        ("padding in base64", h + "==." + p + "." + s),
        ("standard base64 alphabet", ok.replace("-", "+").replace("_", "/")
         if ("-" in ok or "_" in ok) else ok + "+"),
        ("payload not JSON", eu.forge(c.store, b"not json")),
        ("payload an array", eu.forge(c.store, b"[1,2]")),
        ("header not JSON", eu.forge(c.store, good, header=b"{alg")),
        ("expired", eu.forge(c.store, dict(good, exp=now - 120))),
        ("not yet valid", eu.forge(c.store, dict(good, nbf=now + 3600))),
        ("no exp", eu.forge(c.store, {"sub": sub, "scope": READ})),
        ("exp beyond max_ttl", eu.forge(c.store, dict(
            good, exp=now + 40 * 86400))),
        ("exp as a string", eu.forge(c.store, dict(good,
                                                   exp=str(now + 600)))),
        ("no sub", eu.forge(c.store, {"exp": now + 600, "scope": READ})),
        ("unknown sub", eu.forge(c.store, dict(
            good, sub="00000000-0000-4000-8000-000000000000"))),
        ("sub not a UUID", eu.forge(c.store, dict(good, sub="alice"))),
        ("sub a number", eu.forge(c.store, dict(good, sub=1))),
        ("empty token", ""),
    ]
    return ok, v


def test_jwt_vectors_refused(sfsd):
    fid = sfsd.new_file(name="jwt target")["id"]
    ok, vectors = jwt_vectors(sfsd)
    assert len(vectors) >= 27
    r = sfsd.get(f"/{fid}", who="jwt:" + ok)
    assert r.status_code == 200, r.text
    accepted = []
    for name, tok in vectors:
        for path in (f"/{fid}", ""):
            r = sfsd.get(path, who="jwt:" + tok)
            if r.status_code != 401:
                accepted.append((name, path, r.status_code, r.text[:200]))
                continue
            body = sfsd.assert_error(r, 401)
            assert body["message"], name
            assert "jwt target" not in r.text
    assert accepted == []
    # and the good one still works: nothing above locked alice out
    assert sfsd.get(f"/{fid}", who="jwt:" + ok).status_code == 200


def test_jwt_scope_is_its_grant(sfsd):
    fid = sfsd.new_file()["id"]
    now = int(time.time())
    ro = eu.forge(sfsd.store, {"sub": sfsd.users["alice"],
                               "exp": now + 600, "scope": READ})
    sfsd.assert_error(sfsd.delete(f"/{fid}", who="jwt:" + ro), 403)
    sfsd.assert_error(sfsd.patch(f"/{fid}", who="jwt:" + ro,
                                 json={"name": "x"}), 403)
    assert sfsd.get(f"/{fid}").json()["name"] != "x"


def signed_url(c, fid, who="alice", **body):
    r = c.post(f"/{fid}/signed-url", who=who, json=body)
    assert r.status_code == 200, r.text
    return c.base + r.json()["url"]


def with_args(url, **changes):
    """url with query arguments replaced (None removes one)."""
    u = urllib.parse.urlsplit(url)
    q = urllib.parse.parse_qsl(u.query, keep_blank_values=True)
    out, seen = [], set()
    for k, v in q:
        if k in changes:
            seen.add(k)
            if changes[k] is None:
                continue
            v = changes[k]
        out.append((k, v))
    out += [(k, v) for k, v in changes.items()
            if k not in seen and v is not None]
    return urllib.parse.urlunsplit(u._replace(
        query=urllib.parse.urlencode(out)))


def test_signed_url_vectors_refused(sfsd):
    data = b"granted bytes " * 50
    fid = sfsd.new_file(data=data)["id"]
    other = sfsd.new_file(data=b"other bytes " * 50)["id"]
    bobs = sfsd.new_file(who="bob", data=b"bob's bytes " * 50)["id"]
    url = signed_url(sfsd, fid, expiresInSeconds=300)
    r = requests.get(url, timeout=10)
    assert r.status_code == 200 and r.content == data
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    sig, exp, uid = q["sig"], q["exp"], q["uid"]
    flip = ("0" if sig[0] != "0" else "1") + sig[1:]
    vectors = [
        ("another file", url.replace(fid, other)),
        ("another user's file", url.replace(fid, bobs)),
        ("the listening stream", url.replace(
            "/content?", "/listening-audio/stream?")),
        ("the file's JSON", url.replace("/content?", "?")),
        ("the listing", url.replace(f"/{fid}/content?", "?")),
        ("exp later", with_args(url, exp=str(int(exp) + 3600))),
        ("exp earlier", with_args(url, exp=str(int(exp) - 1))),
        ("exp in the past", with_args(url, exp=str(int(time.time()) - 10))),
        ("exp not a number", with_args(url, exp="soon")),
        ("exp twice", url + "&exp=" + str(int(exp) + 3600)),
        ("uid of bob", with_args(url, uid=sfsd.users["bob"])),
        ("uid of carol", with_args(url, uid=sfsd.users["carol"])),
        ("uid removed", with_args(url, uid=None)),
        ("uid twice", url + "&uid=" + sfsd.users["bob"]),
        ("sig flipped", with_args(url, sig=flip)),
        ("sig cut", with_args(url, sig=sig[:-2])),
        ("sig upper case of another", with_args(url, sig=flip.upper())),
        ("sig removed", with_args(url, sig=None)),
        ("sig empty", with_args(url, sig="")),
        ("sig twice", url + "&sig=" + flip),
        ("sig in base64", with_args(url, sig=base64.b64encode(
            bytes.fromhex(sig)).decode() if all(
                x in "0123456789abcdefABCDEF" for x in sig) else "x")),
        ("sig of another file's URL", with_args(
            url, sig=dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
                signed_url(sfsd, other)).query))["sig"])),
    ]
    assert len(vectors) >= 20
    served = []
    for name, u in vectors:
        r = requests.get(u, timeout=10)
        if r.status_code in (200, 206) or data in r.content:
            served.append((name, u, r.status_code))
            continue
        assert r.status_code in (400, 401, 403, 404, 410), (name, r.status_code)
        sfsd.assert_error(r, r.status_code)
    assert served == []
    # with a key as well: ambiguous, never "first wins"
    r = requests.get(url, headers={"X-API-Key": sfsd.keys["bob"]},
                     timeout=10)
    sfsd.assert_error(r, 400, "ambiguous_credentials")
    # the URL itself still works, and only for GET
    assert requests.get(url, timeout=10).content == data
    assert requests.delete(url, timeout=10).status_code in (401, 405)
    assert sfsd.get(f"/{fid}").status_code == 200
