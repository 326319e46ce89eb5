"""The web page's files as speechfsd serves them at every path outside
/api/: from the tree's www/ when run from a build (or --www DIR), with a
content type, an ETag and 304s, Cache-Control, headers that keep the page
to its own origin, HEAD, 405 for other methods, and 404 for anything that
is not one of its files, however the path is spelt."""
import os
import re
import socket
import struct
import subprocess

import pytest
import requests

from conftest import BUILD, ROOT

# The daemon names the page's files in index.html by its version.
VERSIONED = re.compile(rb'="v/([0-9a-f]{16})/')


def unversioned(body):
    return VERSIONED.sub(b'="', body)


def raw_get(port, path):
    """A request line sent as is (requests would normalise the path)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    return int(data.split(b" ", 2)[1])


def test_the_page_from_the_tree(sfsd):
    r = requests.get(sfsd.base + "/", timeout=30)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert unversioned(r.content) == \
        (ROOT / "www" / "index.html").read_bytes()
    assert r.headers["Cache-Control"] == "no-cache"
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Request-Id"]
    same = requests.get(sfsd.base + "/index.html", timeout=30)
    assert same.content == r.content
    assert same.headers["ETag"] == r.headers["ETag"]


def test_every_file_of_the_tree_with_its_type(sfsd):
    types = {".html": "text/html; charset=utf-8",
             ".js": "text/javascript; charset=utf-8",
             ".css": "text/css; charset=utf-8",
             ".svg": "image/svg+xml", ".png": "image/png",
             ".txt": "text/plain; charset=utf-8"}
    www = ROOT / "www"
    files = [p for p in www.rglob("*") if p.is_file()
             and not any(part.startswith(".") for part in
                         p.relative_to(www).parts)]
    assert len(files) >= 1
    for p in files:
        url = "/" + p.relative_to(www).as_posix()
        r = requests.get(sfsd.base + url, timeout=30)
        assert r.status_code == 200, url
        assert unversioned(r.content) == p.read_bytes(), url
        if p.suffix in types:
            assert r.headers["Content-Type"] == types[p.suffix], url


def test_conditional_get_and_head(sfsd):
    r = requests.get(sfsd.base + "/", timeout=30)
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 18
    for inm in (etag, "W/" + etag, '"a", ' + etag, "*"):
        n = requests.get(sfsd.base + "/", timeout=30,
                         headers={"If-None-Match": inm})
        assert n.status_code == 304, inm
        assert n.content == b"" and n.headers["ETag"] == etag
        assert n.headers["Cache-Control"] == "no-cache"
    for inm in ('"a"', etag[:-2] + '"', etag + "x"):
        n = requests.get(sfsd.base + "/", timeout=30,
                         headers={"If-None-Match": inm})
        assert n.status_code == 200, inm
    h = requests.head(sfsd.base + "/", timeout=30)
    assert h.status_code == 200 and h.content == b""
    assert h.headers["ETag"] == etag
    assert int(h.headers["Content-Length"]) == len(r.content)


def test_versioned_files_are_kept(sfsd):
    """index.html names the page's files by the page's version, so a
    browser keeps them without asking again until the page changes."""
    page = requests.get(sfsd.base + "/", timeout=30).content
    versions = set(VERSIONED.findall(page))
    assert len(versions) == 1, versions
    v = versions.pop().decode()
    for name in ("style.css", "js/app.js", "js/api.js", "js/list.js",
                 "favicon.svg"):
        assert f'="v/{v}/{name}"'.encode() in page, name
    assert b'href="#/files/"' in page  # links within the page stay
    plain = requests.get(sfsd.base + "/js/app.js", timeout=30)
    kept = requests.get(f"{sfsd.base}/v/{v}/js/app.js", timeout=30)
    assert kept.status_code == 200 and kept.content == plain.content
    assert kept.headers["Cache-Control"] == \
        "public, max-age=31536000, immutable"
    assert kept.headers["ETag"] == plain.headers["ETag"]
    assert plain.headers["Cache-Control"] == "no-cache"
    n = requests.get(f"{sfsd.base}/v/{v}/js/app.js", timeout=30,
                     headers={"If-None-Match": kept.headers["ETag"]})
    assert n.status_code == 304
    assert n.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # another version (a page from before a change): today's file, asked
    # again next time
    old = requests.get(sfsd.base + "/v/0123456789abcdef/js/app.js",
                       timeout=30)
    assert old.content == plain.content
    assert old.headers["Cache-Control"] == "no-cache"
    for bad in (f"/v/{v}", f"/v/{v}/nothing.js", "/v/", "/v/x/y/z.js"):
        sfsd.assert_error(requests.get(sfsd.base + bad, timeout=30), 404)


def test_version_follows_the_files(sfsd_factory, page_dir):
    (page_dir / "index.html").write_text(
        '<!doctype html><script type="module" src="sub/a.js"></script>'
        '<a href="sub/missing.js">x</a><a href="/sub/a.js">y</a>')
    one = sfsd_factory(args=("--www", str(page_dir)))
    first = requests.get(one.base + "/", timeout=30).text
    (page_dir / "sub" / "a.js").write_text("export const a = 2;\n")
    two = sfsd_factory(args=("--www", str(page_dir)))
    second = requests.get(two.base + "/", timeout=30).text
    (v1,) = re.findall(r'src="v/([0-9a-f]{16})/sub/a.js"', first)
    (v2,) = re.findall(r'src="v/([0-9a-f]{16})/sub/a.js"', second)
    assert v1 != v2
    # only names of the page's own files, relative ones, change
    assert 'href="sub/missing.js"' in second
    assert 'href="/sub/a.js"' in second


def test_only_the_pages_files(sfsd):
    for path in ("/nothing.js", "/www/index.html", "/index.html/",
                 "/%2e%2e/README.md"):
        r = requests.get(sfsd.base + path, timeout=30)
        sfsd.assert_error(r, 404, "not_found")
    for path in ("/../README.md", "/..%2fREADME.md", "/../../etc/passwd",
                 "//etc/passwd", "/./index.html/../../Makefile"):
        assert raw_get(sfsd.daemon.port, path) in (400, 404), path
    # /api/ stays the API's: 404 (not the page), and POST is not allowed
    sfsd.assert_error(requests.get(sfsd.base + "/api/nothing", timeout=30),
                      404, "not_found")
    sfsd.assert_error(requests.post(sfsd.base + "/api/nothing",
                                    timeout=30), 404)
    r = requests.post(sfsd.base + "/", timeout=30)
    sfsd.assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "GET"


@pytest.fixture
def page_dir(tmp_path):
    d = tmp_path / "page"
    (d / "sub").mkdir(parents=True)
    (d / "index.html").write_text("<!doctype html><title>mine</title>")
    (d / "sub" / "index.html").write_text("sub")
    (d / "sub" / "a.js").write_text("export const a = 1;\n")
    (d / ".hidden").write_text("secret")
    return d


def test_a_page_of_ones_own(sfsd_factory, page_dir):
    c = sfsd_factory(args=("--www", str(page_dir)))
    r = requests.get(c.base + "/", timeout=30)
    assert r.text == "<!doctype html><title>mine</title>"
    assert requests.get(c.base + "/sub/", timeout=30).text == "sub"
    r = requests.get(c.base + "/sub/a.js", timeout=30)
    assert r.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert r.text == "export const a = 1;\n"
    assert requests.get(c.base + "/.hidden", timeout=30).status_code == 404
    # loaded at start: a change shows after a restart, not before
    (page_dir / "index.html").write_text("changed")
    assert requests.get(c.base + "/", timeout=30).text.startswith(
        "<!doctype")


def test_no_page(sfsd_factory, tmp_path):
    c = sfsd_factory(args=("--www", str(tmp_path / "missing")))
    c.assert_error(requests.get(c.base + "/", timeout=30), 404)
    assert c.get("").status_code == 200  # the API is not affected


def test_make_install_installs_the_page(sfsd_factory, tmp_path):
    """What the package installs (its rules run make install with
    PREFIX=/usr): every file of www/, which the installed daemon serves."""
    dest = tmp_path / "dest"
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    p = subprocess.run(["make", "-C", str(ROOT), f"B={BUILD}", "install",
                        "PREFIX=/usr", f"DESTDIR={dest}"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    www = ROOT / "www"
    inst = dest / "usr/share/speechfs/www"
    want = sorted(q.relative_to(www).as_posix() for q in www.rglob("*")
                  if q.is_file())
    got = sorted(q.relative_to(inst).as_posix() for q in inst.rglob("*")
                 if q.is_file())
    assert got == want
    c = sfsd_factory(args=("--www", str(inst)))
    for f in want:
        r = requests.get(f"{c.base}/{f}", timeout=30)
        assert r.status_code == 200
        assert unversioned(r.content) == (www / f).read_bytes()


def test_readme_shows_the_page():
    """The README's section on the page shows a screenshot that exists
    (a copy of the player screen test_web_page.py keeps as an artefact)."""
    text = (ROOT / "README.md").read_text()
    sec = text[text.index("\n## The web page\n"):]
    sec = sec[:sec.index("\n## ", 1)]
    pics = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", sec)
    assert pics, "no picture in the section"
    for pic in pics:
        data = (ROOT / pic).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", pic
        width, height = struct.unpack(">II", data[16:24])
        assert width >= 800 and height >= 500, (pic, width, height)
