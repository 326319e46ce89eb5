"""The tenant matrix, generated from the daemon's own route table (its
OpenAPI document): every route on a file x eight callers (the owner, the
owner's read-only key, a colleague without a share, a VIEW share, an
EDIT share, another tenant, no key, a revoked key) x PRIVATE and
INTERNAL files. Each cell is refused exactly when the caller's scope or
permission is short of the route's (401, 403 or 404 with the matching
error type, and nothing changed), and otherwise gets past the checks;
listings never show a file to a caller who may not see it."""
import base64

import requests

from conftest import API

# What each route on a file needs: (scope, permission). A route in the
# document but not here fails the test: a new route needs a policy.
POLICY = {
    ("get", "/{id}"): ("read", "VIEW"),
    ("patch", "/{id}"): ("write", "EDIT"),
    ("delete", "/{id}"): ("delete", "OWNER"),
    ("get", "/{id}/content"): ("read", "VIEW"),
    ("put", "/{id}/content"): ("write", "EDIT"),
    ("get", "/{id}/xattrs"): ("read", "VIEW"),
    ("put", "/{id}/xattrs"): ("write", "EDIT"),
    ("delete", "/{id}/xattrs"): ("write", "EDIT"),
    ("post", "/{id}/uploads"): ("write", "EDIT"),
    # a session of nobody's (its id well formed): past the checks it is
    # 404 upload_not_found, a session being its maker's alone
    ("get", "/{id}/uploads/{uploadId}"): ("write", "EDIT"),
    ("delete", "/{id}/uploads/{uploadId}"): ("write", "EDIT"),
    ("get", "/{id}/uploads/{uploadId}/content"): ("write", "EDIT"),
    ("post", "/{id}/discard-content"): ("write", "OWNER"),
    ("post", "/{id}/restore"): ("write", "OWNER"),
    ("post", "/{id}/signed-url"): ("read", "VIEW"),
    ("post", "/{id}/sync"): ("write", "EDIT"),
    ("get", "/{id}/listening-audio/stream"): ("read", "VIEW"),
    ("post", "/{id}/listening-audio/generate"): ("write", "EDIT"),
    ("delete", "/{id}/listening-audio"): ("delete", "OWNER"),
    ("post", "/{id}/listening-audio/purge"): ("write", "OWNER"),
    ("get", "/{id}/listening-audio/peaks"): ("read", "VIEW"),
    ("get", "/{fileId}/shares"): ("read", "OWNER"),
    ("post", "/{fileId}/shares"): ("share", "OWNER"),
    ("delete", "/{fileId}/shares/{shareId}"): ("share", "OWNER"),
}
RANK = {None: 0, "VIEW": 1, "EDIT": 2, "OWNER": 3}
# the owner acts last: its destructive calls come after every refusal
CALLERS = ["alice_ro", "bob", "vic", "eve", "carol", "none", "revoked",
           "alice"]
DENIALS = {401: {"unauthenticated"}, 403: {"forbidden",
                                           "insufficient_scope"},
           404: {"file_not_found"}}


def denials(route, status):
    """The error types a refusal may carry: on a session's route, one
    not the caller's is not found before its file is looked at."""
    extra = {"upload_not_found"} if "{uploadId}" in route and \
        status == 404 else set()
    return DENIALS.get(status, set()) | extra


def file_routes(c):
    doc = requests.get(c.base + "/api/v1/openapi.json", timeout=10).json()
    out = []
    for path, ops in doc["paths"].items():
        if not path.startswith(API + "/{"):
            continue
        for method in ops:
            if method in ("get", "post", "patch", "put", "delete"):
                out.append((method, path[len(API):]))
    return sorted(out)


def setup_callers(c):
    t = c.tenants["a"]
    for name in ("vic", "eve"):
        if name not in c.keys:
            c.users[name] = c.admin("user", "create", "--tenant", t,
                                    "--name", name)["id"]
            c.keys[name] = c.admin("key", "create", "--user",
                                   c.users[name])["key"]
    if "revoked" not in c.keys:
        k = c.admin("key", "create", "--user", c.users["alice"])
        c.admin("key", "revoke", "--id", k["id"])
        c.keys["revoked"] = k["key"]


def perm_of(caller, mode):
    return {"alice": "OWNER", "alice_ro": "OWNER", "vic": "VIEW",
            "eve": "EDIT", "bob": "VIEW" if mode == "INTERNAL" else None,
            "carol": None}.get(caller)


def scopes_of(caller):
    if caller == "alice_ro":
        return {"read"}
    if caller in ("none", "revoked"):
        return set()
    return {"read", "write", "delete", "share"}


def expected_denial(caller, mode, scope, perm):
    """None when the cell must get past the checks, else the statuses
    (and error types) it may be refused with."""
    if caller in ("none", "revoked"):
        return {401}
    if scope not in scopes_of(caller):
        return {403}
    have = perm_of(caller, mode)
    if RANK[have] >= RANK[perm]:
        return None
    if caller == "carol":
        return {404}          # another tenant's files do not exist
    return {403, 404}


def make_file(c, mode, tag):
    f = c.new_file(name="matrix %s" % tag, path="/matrix/",
                   data=b"matrix bytes")
    fid = f["id"]
    if mode == "INTERNAL":
        r = c.patch(f"/{fid}", json={"publishMode": "INTERNAL"})
        assert r.status_code == 200, r.text
    shares = {}
    for who, perm in (("vic", "VIEW"), ("eve", "EDIT")):
        r = c.post(f"/{fid}/shares", json={"userId": c.users[who],
                                           "permission": perm})
        assert r.status_code in (200, 201), r.text
        shares[who] = r.json()["id"]
    return fid, shares


def call(c, caller, method, route, fid, share_id):
    path = route.replace("{id}", fid).replace("{fileId}", fid) \
        .replace("{shareId}", share_id).replace("{uploadId}", "0" * 32)
    kw = {}
    if method == "patch":
        kw["json"] = {"name": "by " + caller}
    elif route.endswith("/xattrs") and method == "put":
        kw["json"] = {"name": "user.m", "value": base64.b64encode(
            b"by " + caller.encode()).decode()}
    elif route.endswith("/xattrs") and method == "delete":
        kw["params"] = {"name": "user.m"}
    elif method == "put":
        kw["data"] = b"by " + caller.encode()
    elif route.endswith("/shares") and method == "post":
        kw["json"] = {"userId": c.users["bob"], "permission": "VIEW"}
    elif route.endswith("/signed-url"):
        kw["json"] = {}
    who = None if caller == "none" else caller
    return c.req(method.upper(), path, who=who, **kw)


def test_tenant_matrix(sfsd):
    c = sfsd
    setup_callers(c)
    routes = file_routes(c)
    missing = [r for r in routes if r not in POLICY]
    assert missing == [], "routes without a policy: %s" % missing
    assert len(routes) >= 15
    cells = wrong = 0
    failures = []
    for mode in ("PRIVATE", "INTERNAL"):
        for method, route in routes:
            scope, perm = POLICY[(method, route)]
            fid, shares = make_file(c, mode, "%s %s" % (method, route))
            for caller in CALLERS:
                cells += 1
                r = call(c, caller, method, route, fid, shares["vic"])
                deny = expected_denial(caller, mode, scope, perm)
                try:
                    etype = r.json().get("error_type")
                except ValueError:
                    etype = None
                cell = (mode, method, route, caller, r.status_code, etype)
                assert r.status_code < 500, (cell, r.text)
                if deny is None:
                    if r.status_code in DENIALS and \
                            etype in DENIALS[r.status_code]:
                        wrong += 1
                        failures.append(("refused", cell))
                    continue
                if r.status_code not in deny or \
                        etype not in denials(route, r.status_code):
                    wrong += 1
                    failures.append(("allowed", cell, r.text[:120]))
                    continue
                assert "matrix bytes" not in r.text, cell
                # nothing changed: the owner still sees it as it was
                g = c.get(f"/{fid}")
                assert g.status_code == 200, (cell, g.text)
                assert g.json()["name"] != "by " + caller, cell
                assert not g.json()["isDeleted"], cell
                if method == "put" and route.endswith("/content"):
                    assert c.get(f"/{fid}/content").content != \
                        b"by " + caller.encode(), cell
    assert cells >= 240
    assert failures == [], "%d of %d cells wrong: %s" % (
        wrong, cells, failures[:10])


def test_listings_show_only_what_may_be_seen(sfsd):
    c = sfsd
    setup_callers(c)
    seen = {}
    for mode in ("PRIVATE", "INTERNAL"):
        fid, _ = make_file(c, mode, "listing " + mode)
        seen[mode] = fid
    for caller in ("alice", "alice_ro", "bob", "vic", "eve", "carol"):
        own = {x["id"] for x in c.get("?path=/matrix/", who=caller)
               .json()["files"]}
        shared = {x["id"] for x in c.get("/shared-with-me?size=100",
                                         who=caller).json()["files"]}
        for mode, fid in seen.items():
            owner = caller in ("alice", "alice_ro")
            assert (fid in own) == owner, (caller, mode)
            may = caller in ("vic", "eve") or (caller == "bob" and
                                               mode == "INTERNAL")
            assert (fid in shared) == may, (caller, mode, shared)
