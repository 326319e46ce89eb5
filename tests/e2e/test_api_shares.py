"""Shares and isolation through the API: VIEW reads, EDIT patches, only the
owner deletes, discards and shares; a user of another tenant sees 404 for
everything; INTERNAL publishing reaches the whole tenant; shared-with-me."""
import uuid

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]


def test_other_tenant_gets_404_everywhere(sfsd):
    f = sfsd.new_file()
    fid = f["id"]
    for method, path, kw in [
            ("GET", f"/{fid}", {}), ("GET", f"/{fid}/content", {}),
            ("PATCH", f"/{fid}", {"json": {"name": "x"}}),
            ("DELETE", f"/{fid}", {}),
            ("POST", f"/{fid}/discard-content", {}),
            ("POST", f"/{fid}/restore", {}),
            ("POST", f"/{fid}/signed-url", {"json": {}}),
            ("GET", f"/{fid}/listening-audio/stream", {}),
            ("POST", f"/{fid}/listening-audio/generate", {}),
            ("DELETE", f"/{fid}/listening-audio", {}),
            ("POST", f"/{fid}/listening-audio/purge", {}),
            ("GET", f"/{fid}/shares", {}),
            ("POST", f"/{fid}/shares",
             {"json": {"userId": sfsd.users["carol"]}}),
            ("DELETE", f"/{fid}/shares/{uuid.uuid4()}", {})]:
        r = sfsd.req(method, path, who="carol", **kw)
        sfsd.assert_error(r, 404)
    # even published INTERNAL, it stays invisible to another tenant
    assert sfsd.patch(f"/{fid}", json={"publishMode": "INTERNAL"}) \
        .status_code == 200
    sfsd.assert_error(sfsd.get(f"/{fid}", who="carol"), 404)
    j = sfsd.get("/shared-with-me", who="carol").json()
    assert fid not in [x["id"] for x in j["files"]]
    assert sfsd.get(f"/{fid}").json()["isDeleted"] is False


def test_same_tenant_without_share_403(sfsd):
    fid = sfsd.new_file()["id"]
    sfsd.assert_error(sfsd.get(f"/{fid}", who="bob"), 403)
    sfsd.assert_error(sfsd.get(f"/{fid}/content", who="bob"), 403)
    sfsd.assert_error(sfsd.patch(f"/{fid}", who="bob",
                                 json={"name": "x"}), 403)


def test_view_share_reads_only(sfsd):
    data = b"shared bytes"
    fid = sfsd.new_file(data=data)["id"]
    r = sfsd.post(f"/{fid}/shares", json={"userId": sfsd.users["bob"]})
    assert r.status_code == 201, r.text
    sh = r.json()
    assert sh["fileId"] == fid and sh["userId"] == sfsd.users["bob"]
    assert sh["permission"] == "VIEW"
    assert sh["createdBy"] == sfsd.users["alice"] and sh["createdAt"]
    assert sfsd.get(f"/{fid}", who="bob").status_code == 200
    assert sfsd.get(f"/{fid}/content", who="bob").content == data
    sfsd.assert_error(sfsd.patch(f"/{fid}", who="bob",
                                 json={"name": "x"}), 403)
    sfsd.assert_error(sfsd.delete(f"/{fid}", who="bob"), 403)
    sfsd.assert_error(sfsd.post(f"/{fid}/discard-content", who="bob"), 403)
    sfsd.assert_error(sfsd.post(f"/{fid}/shares", who="bob",
                                json={"userId": sfsd.users["slow"]}), 403)
    sfsd.assert_error(sfsd.get(f"/{fid}/shares", who="bob"), 403)
    j = sfsd.get("/shared-with-me", who="bob").json()
    mine = [x for x in j["files"] if x["id"] == fid]
    assert len(mine) == 1
    assert mine[0]["accessType"] == "DIRECT_SHARE"
    assert mine[0]["permission"] == "VIEW"
    assert mine[0]["sharedBy"] == sfsd.users["alice"]


def test_edit_share_patches_but_does_not_delete(sfsd):
    fid = sfsd.new_file()["id"]
    r = sfsd.post(f"/{fid}/shares", json={"userId": sfsd.users["bob"],
                                          "permission": "EDIT"})
    assert r.status_code == 201
    r = sfsd.patch(f"/{fid}", who="bob", json={"name": "by-bob"})
    assert r.status_code == 200 and r.json()["name"] == "by-bob"
    sfsd.assert_error(sfsd.delete(f"/{fid}", who="bob"), 403)
    sfsd.assert_error(sfsd.post(f"/{fid}/shares", who="bob",
                                json={"userId": sfsd.users["slow"]}), 403)
    assert sfsd.get(f"/{fid}").json()["name"] == "by-bob"


def test_share_update_200_list_and_revoke(sfsd):
    fid = sfsd.new_file()["id"]
    r1 = sfsd.post(f"/{fid}/shares", json={"userId": sfsd.users["bob"],
                                           "permission": "VIEW"})
    assert r1.status_code == 201
    r2 = sfsd.post(f"/{fid}/shares", json={"userId": sfsd.users["bob"],
                                           "permission": "EDIT"})
    assert r2.status_code == 200
    assert r2.json()["id"] == r1.json()["id"]
    assert r2.json()["permission"] == "EDIT"
    j = sfsd.get(f"/{fid}/shares").json()
    assert [s["id"] for s in j["shares"]] == [r1.json()["id"]]
    assert j["shares"][0]["permission"] == "EDIT"
    sid = r1.json()["id"]
    assert sfsd.delete(f"/{fid}/shares/{sid}").status_code == 204
    sfsd.assert_error(sfsd.delete(f"/{fid}/shares/{sid}"), 404)
    sfsd.assert_error(sfsd.get(f"/{fid}", who="bob"), 403)
    assert sfsd.get(f"/{fid}/shares").json() == {"shares": []}


def test_share_bad_requests_400(sfsd):
    fid = sfsd.new_file()["id"]
    url = f"/{fid}/shares"
    for body, loc in [({}, "userId"), ({"userId": 5}, "userId"),
                      ({"userId": "bob"}, "userId"),
                      ({"userId": sfsd.users["bob"], "permission": "OWN"},
                       "permission"),
                      ({"userId": sfsd.users["bob"], "permission": 1},
                       "permission")]:
        b = sfsd.assert_error(sfsd.post(url, json=body), 400)
        assert loc in [v["location"] for v in b["validation_errors"]], b
    # with oneself, an unknown user, a user of another tenant
    for u in [sfsd.users["alice"], str(uuid.uuid4()), sfsd.users["carol"]]:
        sfsd.assert_error(sfsd.post(url, json={"userId": u}), 400)
    sfsd.assert_error(sfsd.post(url, data=b"[]", headers={
        "Content-Type": "application/json"}), 400)


def test_internal_publish_reaches_tenant(sfsd):
    fid = sfsd.new_file(data=b"internal")["id"]
    sfsd.assert_error(sfsd.get(f"/{fid}", who="bob"), 403)
    assert sfsd.patch(f"/{fid}", json={"publishMode": "INTERNAL"}) \
        .status_code == 200
    assert sfsd.get(f"/{fid}", who="bob").status_code == 200
    assert sfsd.get(f"/{fid}/content", who="bob").content == b"internal"
    sfsd.assert_error(sfsd.patch(f"/{fid}", who="bob",
                                 json={"name": "x"}), 403)
    j = sfsd.get("/shared-with-me?accessType=INTERNAL", who="bob").json()
    hit = [x for x in j["files"] if x["id"] == fid]
    assert hit and hit[0]["accessType"] == "INTERNAL"
    j = sfsd.get("/shared-with-me?accessType=DIRECT_SHARE",
                 who="bob").json()
    assert fid not in [x["id"] for x in j["files"]]


def test_unknown_file_shares_404(sfsd):
    fid = str(uuid.uuid4())
    sfsd.assert_error(sfsd.get(f"/{fid}/shares"), 404)
    sfsd.assert_error(sfsd.post(f"/{fid}/shares",
                                json={"userId": sfsd.users["bob"]}), 404)
