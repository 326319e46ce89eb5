"""The OpenAPI document and the metrics as tools read them: httpd/openapi.json
is OpenAPI 3.1, lints clean with Redocly's CLI (installed by
packaging/install-deps.sh; never downloaded here), is what the daemon
serves byte for byte, documents every route of the router's table with
its scope (and nothing else), and its schemas have exactly the keys of
real responses. /metrics passes promtool (Prometheus's own checker)."""
import json
import os
import pathlib
import re
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
DOC = ROOT / "httpd/openapi.json"
API = "/api/v1/speech-services/files"
SCOPES = {"R": "speech:files:read", "W": "speech:files:write",
          "D": "speech:files:delete", "S": "speech:files:share"}


def tool(name):
    path = shutil.which(name)
    assert path, f"{name} is missing: run packaging/install-deps.sh"
    return path


def test_document_lints_clean(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "REDOCLY_TELEMETRY": "off",
           "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}
    p = subprocess.run([tool("redocly"), "lint", "--format=json",
                        "--config", str(ROOT / "httpd/redocly.yaml"),
                        str(DOC)], capture_output=True, text=True,
                       timeout=120, env=env, cwd=tmp_path)
    out = json.loads(p.stdout)
    problems = [f"{x['severity']} {x['ruleId']}: {x['message']} "
                f"({x['location'][0]['pointer']})" for x in out["problems"]]
    assert out["totals"]["errors"] == 0, problems
    assert out["totals"]["warnings"] == 0, problems
    assert p.returncode == 0, p.stderr


def test_document_is_3_1_with_security_where_due():
    doc = json.loads(DOC.read_text())
    assert doc["openapi"] == "3.1.0"
    assert "nullable" not in DOC.read_text()    # 3.0's keyword
    for path in ("/healthz", "/metrics", "/api/v1/openapi.json"):
        assert doc["paths"][path]["get"]["security"] == [], path
    for path in (API + "/{id}/content", API + "/{id}/listening-audio/stream"):
        op = doc["paths"][path]["get"]
        names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
        assert {"exp", "uid", "sig"} <= names, path
        assert {"signedUrl": []} in op["security"]


def routes():
    """(method, path, scope) of every route in httpd/router.c's table."""
    src = (ROOT / "httpd/router.c").read_text()
    out = []
    for m in re.finditer(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*'
                         r'(?:B(?:\s*"([^"]*)")?|"([^"]*)"),\s*(\w+),', src):
        path = API + (m.group(2) or "") if m.group(3) is None \
            else m.group(3)
        if path != "/*":    # the web page's files (www.c), not the API
            out.append((m.group(1).lower(), path, m.group(4)))
    assert len(out) >= 20, out
    return out


def test_every_route_is_documented_with_its_scope():
    doc = json.loads(DOC.read_text())
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(m, p) for m, p, _ in routes()}
    for method, path, scope in routes():
        op = doc["paths"][path][method]
        assert op.get("operationId") and op.get("summary"), (method, path)
        if scope == "0" and path.endswith("/session"):
            # sign-in sessions authenticate themselves (api_session.c)
            assert op["security"], (method, path)
        elif scope == "0":
            assert op["security"] == [], (method, path)
        else:
            assert op["x-required-scope"] == SCOPES[scope], (method, path)
            assert {"apiKey": []} in op["security"], (method, path)
            assert "401" in op["responses"], (method, path)


def test_route_column_says_what_the_document_marks():
    """The router's api column (what http.extensions = false keeps) and
    the document agree: ROUTE_EXT is an operation marked "(extension)",
    ROUTE_SEED an operation of the seed's Files API that is not, ROUTE_OWN
    the daemon's own (no credentials)."""
    src = (ROOT / "httpd/router.c").read_text()
    doc = json.loads(DOC.read_text())
    rows = re.findall(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*'
                      r'(?:B(?:\s*"([^"]*)")?|"([^"]*)"),[^{}]*?'
                      r'(?:\{\w+\}[^{}]*?)*(ROUTE_\w+)\s*\}', src)
    assert len(rows) == len(routes()) + 1, rows    # + the web page's
    kinds = set()
    for method, tail, full, kind in rows:
        path = API + tail if full == "" else full
        kinds.add(kind)
        if path == "/*":
            assert kind == "ROUTE_OWN"
            continue
        op = doc["paths"][path][method.lower()]
        ext = op["summary"].endswith("(extension)")
        assert (kind == "ROUTE_EXT") == ext, (method, path, kind)
        if kind == "ROUTE_SEED":
            assert path.startswith(API) and op["security"], (method, path)
        if kind == "ROUTE_OWN":
            assert op["security"] == [], (method, path)
    assert kinds == {"ROUTE_SEED", "ROUTE_OWN", "ROUTE_EXT"}


def props(doc, name):
    return set(doc["components"]["schemas"][name]["properties"])


def test_schemas_have_the_keys_of_real_responses(sfsd):
    doc = json.loads(DOC.read_text())
    f = sfsd.new_file(data=b"RIFF....WAVE", name="schema")
    r = sfsd.get(f"/{f['id']}")
    assert set(r.json()) == props(doc, "File")
    assert set(r.json()["listeningAudio"] or {}) <= \
        props(doc, "ListeningAudio")
    r = sfsd.get("")
    assert set(r.json()) <= props(doc, "FilesList")
    r = sfsd.post(f"/{f['id']}/shares", json={"userId":
                                               sfsd.users["bob"]})
    assert set(r.json()) == props(doc, "Share")
    r = sfsd.post(f"/{f['id']}/signed-url", json={})
    assert set(r.json()) == props(doc, "SignedUrl")
    r = sfsd.get("/00000000-0000-4000-8000-000000000000")
    assert set(r.json()) == props(doc, "Error")
    r = sfsd.get("/api/v1/speech-services/users")
    assert set(r.json()) == props(doc, "UserList")
    assert set(r.json()["users"][0]) == props(doc, "User")
    assert set(sfsd.get("/healthz", who=None).json()) == set(
        doc["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
        ["application/json"]["schema"]["properties"])


def test_served_document_is_the_file(sfsd):
    r = sfsd.get("/api/v1/openapi.json", who=None)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.content == DOC.read_bytes()


def test_metrics_pass_promtool(sfsd, tmp_path):
    sfsd.new_file(name="metric")
    sfsd.get("/00000000-0000-4000-8000-000000000000")
    text = sfsd.get("/metrics", who=None).text
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    helped = set(re.findall(r"^# HELP (\S+) \S", text, re.M))
    assert families and families == helped, families ^ helped
    p = subprocess.run([tool("promtool"), "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and \
        not p.stderr.strip(), p.stdout + p.stderr
