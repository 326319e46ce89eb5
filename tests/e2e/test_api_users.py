"""The users directory (an extension): GET /api/v1/speech-services/users
lists the id and name of the users of the caller's own tenant, by name
prefix (ignoring case), paged; never a user of another tenant; the id it
gives is what a share takes."""

# every test once per metadata backend too (conftest.py)
META_BACKENDS = ["sqlite", "pg"]

USERS = "/api/v1/speech-services/users"


def names(r):
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"users", "page", "size", "total"}
    for u in body["users"]:
        assert set(u) == {"id", "name"}
    assert body["size"] == len(body["users"])
    return [u["name"] for u in body["users"]]


def test_directory_of_the_own_tenant(sfsd):
    r = sfsd.get(USERS)
    assert names(r) == ["alice", "bob", "slow"]
    assert r.json()["total"] == 3
    ids = {u["name"]: u["id"] for u in r.json()["users"]}
    assert ids["bob"] == sfsd.users["bob"]
    # carol is of another tenant: never listed, whatever the prefix
    assert names(sfsd.get(USERS, params={"name": "car"})) == []
    assert names(sfsd.get(USERS, who="carol")) == ["carol"]
    # a prefix, ignoring case
    assert names(sfsd.get(USERS, params={"name": "B"})) == ["bob"]
    assert names(sfsd.get(USERS, params={"name": "AL"})) == ["alice"]
    assert names(sfsd.get(USERS, params={"name": "%"})) == []
    assert names(sfsd.get(USERS, params={"name": ""})) == \
        ["alice", "bob", "slow"]


def test_directory_pages(sfsd):
    r = sfsd.get(USERS, params={"size": 2, "page": 1})
    assert names(r) == ["slow"]
    assert r.json()["page"] == 1 and r.json()["total"] == 3
    assert names(sfsd.get(USERS, params={"size": 2, "page": 5})) == []


def test_directory_errors(sfsd):
    for params in ({"size": 0}, {"size": 101}, {"size": "x"},
                   {"page": -1}, {"name": "x" * 200}):
        r = sfsd.get(USERS, params=params)
        body = sfsd.assert_error(r, 400)
        assert body["validation_errors"], params
    sfsd.assert_error(sfsd.get(USERS, who=None), 401)
    # read scope is enough, and required
    assert sfsd.get(USERS, who="alice_ro").status_code == 200
    sfsd.assert_error(sfsd.post(USERS, json={}), 405)


def test_the_id_found_is_what_a_share_takes(sfsd):
    f = sfsd.new_file(name="for-bob")
    (bob,) = sfsd.get(USERS, params={"name": "bo"}).json()["users"]
    r = sfsd.post(f"/{f['id']}/shares", json={"userId": bob["id"]})
    assert r.status_code == 201, r.text
    # the seed's share request keeps its rule: userId is an id
    r = sfsd.post(f"/{f['id']}/shares", json={"userId": "bob"})
    sfsd.assert_error(r, 400)
