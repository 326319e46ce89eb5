"""The web page in a real headless Chromium (Debian's, through chromedriver)
against a real speechfsd: sign in; browse with breadcrumbs, sort, search
and tag filters; upload two files by the picker and by drag and drop and
watch each progress bar reach 100 %; import from a URL and follow its
status; play, seek on the waveform, speed, keys, the position remembered;
edit tags (seen in the API); delete with undo, restore and purge from the
trash; sign out and be refused; the phone width; the keyboard alone; and
axe-core (vendored) on every main screen. Screenshots of the screens go
to the build's test-artefacts/web/."""
import http.server
import json
import pathlib
import subprocess
import threading
import time

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from conftest import ROOT, start
from webutil import Browser, fetch_json, missing

AXE = ROOT / "tests" / "e2e" / "vendor" / "axe-core" / "axe.min.js"
SESSION = "/api/v1/speech-services/session"


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Speech made here: three recordings of a few seconds."""
    d = tmp_path_factory.mktemp("audio")
    texts = {
        "weekly-meeting": "Welcome to the weekly meeting. Today we look at "
                          "the player, the waveform and the trash.",
        "standup": "Short standup. Yesterday I fixed the upload. Today I "
                   "test the page in a browser.",
        "interview": "This is an interview with a customer about the "
                     "speech store and its web page.",
    }
    out = {}
    for name, text in texts.items():
        p = d / f"{name}.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(p), text],
                       check=True, timeout=60)
        out[name] = p
    return out


class Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture(scope="module")
def origin(audio):
    """A web server of our own on loopback for imports."""
    directory = str(next(iter(audio.values())).parent)

    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=directory, **kw)

        def log_message(self, *a):
            pass

    srv = Origin(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, audio):
    """A daemon with files of alice's (and one of bob's), imports allowed
    from loopback."""
    if missing():
        pytest.fail("the browser tests need " + missing() +
                    ": run packaging/install-deps.sh")
    d, c = start(tmp_path_factory, {"import.allow": "127.0.0.1"})
    data = {k: p.read_bytes() for k, p in audio.items()}
    c.files = {
        "weekly-meeting": c.new_file(
            data=data["weekly-meeting"], name="weekly-meeting",
            filename="weekly-meeting.wav", listening="true",
            path="/meetings/", tags='["Engineering", "Meeting"]'),
        "standup": c.new_file(
            data=data["standup"], name="standup", filename="standup.wav",
            listening="true", tags='["Engineering"]'),
        "interview": c.new_file(
            data=data["interview"], name="interview",
            filename="interview.wav", listening="true",
            tags='["Customer"]'),
    }
    c.new_file(who="bob", data=data["standup"], name="bobs-notes",
               listening="false", tags='["Roadmap"]')
    for f in c.files.values():
        wait_listening(c, f["id"])
    yield c
    c.http.close()
    d.stop()


def wait_listening(c, fid, timeout=120):
    deadline = time.time() + timeout
    while True:
        f = c.get(f"/{fid}").json()
        la = f["listeningAudio"]
        if la and la["status"] in ("COMPLETED", "FAILED"):
            assert la["status"] == "COMPLETED", f
            return f
        assert time.time() < deadline, f
        time.sleep(0.1)


@pytest.fixture(scope="module")
def browser(site):
    b = Browser(site.base)
    yield b
    b.quit()


@pytest.fixture
def page(browser, site):
    """The browser signed in as alice on her home folder, at desktop
    width; no script error may happen during the test."""
    browser.d.set_window_size(1280, 900)
    browser.open("/")
    browser.wait(lambda b: b.visible("signin") or b.visible("files"), 30,
                 "the page to start")
    if browser.visible("signin"):
        browser.sign_in(site.keys["alice"])
    browser.js("location.hash = '#/files/'")
    browser.wait_rows()
    browser.js("localStorage.clear()")
    yield browser
    errors = browser.script_errors()
    browser.console.clear()
    assert not errors, errors


def axe(b, what):
    """axe-core on the page as it is: no serious or critical violation."""
    b.js(AXE.read_text())
    res = b.js_async("""
        const done = arguments[arguments.length - 1];
        axe.run(document, {resultTypes: ["violations"]})
           .then(r => done(r.violations.map(v => ({id: v.id,
               impact: v.impact, help: v.help,
               nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}))))
           .catch(e => done([{id: "axe-error", impact: "critical",
                              help: String(e), nodes: []}]));
    """)
    bad = [v for v in res if v["impact"] in ("serious", "critical")]
    assert not bad, f"{what}: " + json.dumps(bad, indent=1)
    return res


def audio_state(b):
    return b.js("""const a = document.getElementById('p-audio');
        return {t: a.currentTime, d: a.duration, paused: a.paused,
                rate: a.playbackRate, ready: a.readyState,
                src: a.currentSrc};""")


def click_play(b, name):
    b.wait_row(name).find_element(By.CSS_SELECTOR, ".play").click()
    b.wait(lambda b: not audio_state(b)["paused"] and
           audio_state(b)["t"] > 0, 30, f"'{name}' playing")


# ---- sign in, browse ------------------------------------------------------

def test_sign_in(browser, site):
    b = browser
    b.d.delete_all_cookies()
    b.open("/")
    b.wait_visible("signin")
    b.shot("sign-in")
    axe(b, "sign-in")
    key = b.by_id("signin-key")
    key.send_keys("sfs_" + "0" * 64)
    b.by_id("signin-form").submit()
    b.wait(lambda b: "not valid" in b.text("signin-error"), 10,
           "the refusal")
    assert b.visible("signin") and not b.visible("files")
    key.clear()
    key.send_keys(site.keys["alice"])
    b.by_id("signin-form").submit()
    b.wait_visible("files")
    b.wait_rows()
    # the key is not kept: not in the form, not in storage; the session
    # cookie is out of the page's reach (HttpOnly)
    assert b.by_id("signin-key").get_attribute("value") == ""
    stored = b.js("return JSON.stringify([Object.entries(localStorage),"
                  " Object.entries(sessionStorage), document.cookie])")
    assert site.keys["alice"] not in stored and "sfss_" not in stored
    cookie = b.d.get_cookie("sfs_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert b.script_errors() == []


def test_browse_folders_and_sort(page, site):
    b = page
    assert b.dir_names() == ["meetings"]
    assert sorted(b.row_names()) == ["interview", "standup"]
    assert "bobs-notes" not in b.row_names()
    b.shot("files")
    axe(b, "file list")
    # into the folder and back by the breadcrumbs
    b.css("#rows tr.dir a")[0].click()
    b.wait(lambda b: b.row_names() == ["weekly-meeting"], 20, "the folder")
    crumbs = [a.text for a in b.css("#crumbs a")]
    assert crumbs == ["Home", "meetings"]
    assert b.css("#crumbs a")[-1].get_attribute("aria-current") == "page"
    b.css("#crumbs a")[0].click()
    b.wait(lambda b: b.dir_names() == ["meetings"], 20, "home again")
    # sort by name, both ways
    sel = b.by_id("sort")
    sel.find_element(By.CSS_SELECTOR, "option[value='name,asc']").click()
    b.wait(lambda b: b.row_names() == ["interview", "standup"], 20, "A-Z")
    sel.find_element(By.CSS_SELECTOR, "option[value='name,desc']").click()
    b.wait(lambda b: b.row_names() == ["standup", "interview"], 20, "Z-A")


def test_search_and_tag_filter(page, site):
    b = page
    b.by_id("search").send_keys("stand")
    b.wait(lambda b: b.row_names() == ["standup"], 20, "search results")
    b.by_id("search").clear()
    b.by_id("search").send_keys("MEET")  # any case, in subfolders too
    b.wait(lambda b: b.row_names() == ["weekly-meeting"], 20, "search")
    assert "/meetings/" in b.row("weekly-meeting").text
    b.by_id("search").send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    tags = b.by_id("tags-filter")
    tags.send_keys("Engineering, Customer")
    b.wait(lambda b: b.row_names() == [], 20, "all of two tags: none")
    b.by_id("tags-match").find_element(
        By.CSS_SELECTOR, "option[value='any']").click()
    b.wait(lambda b: sorted(b.row_names()) ==
           ["interview", "standup", "weekly-meeting"], 20, "any tag")
    tags.clear()
    tags.send_keys("engineering")
    b.wait(lambda b: sorted(b.row_names()) == ["standup", "weekly-meeting"],
           20, "one tag")


def test_paging_as_you_scroll(page, site):
    b = page
    for i in range(250):
        site.new_file(data=b"x", name=f"p{i:03d}", filename=f"p{i:03d}.txt",
                      path="/long/")
    b.js("location.hash = '#/files/long/'")
    b.wait(lambda b: len(b.row_names()) == 100, 20, "the first page")
    assert b.text("list-status") == "250 files, 100 shown"
    # a reader who scrolls to the end (and stays there) gets every page
    b.wait(lambda b: b.js("window.scrollTo(0, document.body.scrollHeight);"
                          " return document.querySelectorAll("
                          "'#rows tr').length") == 250, 30, "every page")
    assert b.text("list-status") == "250 files"
    assert not b.visible("more")
    # each row once: a page follows the one before
    assert sorted(b.row_names()) == [f"p{i:03d}" for i in range(250)]


# Added to the next document: the rows of the list's first insertion,
# looked at in the frame that follows it.
FIRST_BATCH = """
new MutationObserver((recs, mo) => {
  for (const r of recs) {
    if (r.target.id !== "rows" || !r.addedNodes.length) continue;
    mo.disconnect();
    const rows = [...r.target.children];
    requestAnimationFrame(() => {
      window.sfsFirst = {
        n: rows.length, height: innerHeight,
        bottom: rows[rows.length - 1].getBoundingClientRect().bottom,
        later: rows.filter(tr => tr.classList.contains("later")).length};
    });
    return;
  }
}).observe(document, {childList: true, subtree: true});
"""


def test_the_first_screenful_fills_the_screen(page, site):
    """A long folder's first page is drawn in two steps: first the rows
    that fill the screen below the list's top (measured), laid out at once
    (not "later": no content-visibility), then the others, "later". The
    first step leaves no gap at the bottom of the screen and is not the
    whole page."""
    b = page
    for i in range(60):
        site.new_file(data=b"x", name=f"s{i:02d}", filename=f"s{i:02d}.txt",
                      path="/screenful/")
    sid = b.d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                              {"source": FIRST_BATCH})["identifier"]
    try:
        b.open("/?first#/files/screenful/")
        b.wait(lambda b: len(b.row_names()) == 60, 20, "the folder")
        got = b.wait(lambda b: b.js("return window.sfsFirst"), 10,
                     "the first batch seen")
    finally:
        b.d.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                            {"identifier": sid})
    assert 4 <= got["n"] < 60, got
    assert got["later"] == 0, got
    assert got["bottom"] >= got["height"], got  # no gap below the rows
    assert b.js("return document.querySelectorAll('#rows tr.later')"
                ".length") == 60 - got["n"]


def test_the_pages_files_come_from_the_cache(page, site):
    b = page
    b.open("/?again#/files/")  # a visit, the page seen before
    b.wait_rows()
    got = b.js("return performance.getEntriesByType('resource')"
               ".filter(e => e.name.includes('/v/'))"
               ".map(e => [e.name, e.transferSize])")
    names = sorted(n.rsplit("/", 1)[-1] for n, _ in got)
    assert names == sorted(["style.css", "boot.js", "app.js", "api.js",
                            "util.js", "list.js", "player.js", "details.js",
                            "uploads.js"]), got
    assert all(size == 0 for _, size in got), got  # none asked again


def test_the_first_requests_go_out_while_the_page_is_parsed(page, site):
    """boot.js asks for the session and the folder's first page from the
    head of the document: both requests start before the parser reaches
    the end (the modules run only after it), and the list uses that very
    answer (no second request for it)."""
    b = page
    b.open("/?early#/files/meetings/")
    b.wait_rows()
    assert b.row_names() == ["weekly-meeting"]
    got = b.js("""
      const nav = performance.getEntriesByType("navigation")[0];
      return {parsed: nav.domInteractive,
              api: performance.getEntriesByType("resource")
                .filter(e => e.name.includes("/api/"))
                .map(e => [e.name.replace(location.origin, ""),
                           e.startTime])};""")
    names = [n for n, _ in got["api"]]
    listing = [n for n in names if n.startswith(
        "/api/v1/speech-services/files?")]
    assert "/api/v1/speech-services/session" in names, got
    assert len(listing) == 1 and "path=%2Fmeetings%2F" in listing[0], got
    for n, start in got["api"]:
        if n == listing[0] or n.endswith("/session"):
            assert start < got["parsed"], got



APPEARED = """
const done = arguments[arguments.length - 1];
let row = 0;
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) if (e.identifier === "sfs-rows") row = e.renderTime;
}).observe({type: "element", buffered: true});
const ok = () => {
  const fcp = performance.getEntriesByName("first-contentful-paint");
  if (!fcp.length || (sfsBoot.shownBy() === "rows" && !row)) {
    setTimeout(ok, 5);
    return;
  }
  done({by: sfsBoot.shownBy(), fcp: fcp[0].startTime, row,
        held: document.documentElement.classList.contains("boot")});
};
ok();
"""


def test_the_page_appears_with_its_first_rows(page, site):
    """Nothing of the page is laid out or painted before it has something
    to show (index.html's class "boot", removed by js/boot.js's show()):
    the first frame with content is the one that shows the first rows, not
    a bare page the rows come after. boot.js shows the page anyway 500 ms
    after the navigation (shownBy() says "deadline"), so on a slow machine
    the bare page may come first; then only the rest is asserted."""
    b = page
    b.open("/?appear#/files/meetings/")
    b.wait_rows()
    got = b.js_async(APPEARED)
    assert not got["held"], got
    assert got["by"] in ("rows", "deadline"), got
    if got["by"] == "rows":
        assert got["fcp"] >= got["row"], got  # nothing painted before


def test_the_page_appears_when_the_list_fails(page, site):
    """A first listing that fails shows the page with the reason and a way
    to try again (not a page held back until the deadline)."""
    b = page
    b.d.execute_cdp_cmd("Network.enable", {})
    b.d.execute_cdp_cmd("Network.setBlockedURLs",
                        {"urls": ["*/speech-services/files?*"]})
    try:
        b.open("/?fails#/files/")
        b.wait(lambda b: b.visible("list-retry"), 30, "the retry button")
        assert "Cannot reach speechfs" in b.text("list-status")
        by = b.js("return sfsBoot.shownBy()")
        assert by in ("error", "deadline"), by
    finally:
        b.d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        b.d.execute_cdp_cmd("Network.disable", {})
    b.by_id("list-retry").click()
    b.wait(lambda b: "standup" in b.row_names(), 20, "the list again")

# ---- upload and import ----------------------------------------------------

WATCH_PROGRESS = """
window.sfsProgress = {};
new MutationObserver(ms => {
  for (const m of ms) {
    const bars = m.type === "childList"
      ? [...m.addedNodes].flatMap(n => n.querySelectorAll ?
          [...n.querySelectorAll("progress")] : [])
      : [m.target];
    for (const p of bars) {
      if (p.tagName !== "PROGRESS") continue;
      const k = p.getAttribute("aria-label");
      (window.sfsProgress[k] = window.sfsProgress[k] || [])
        .push(p.hasAttribute("value") ? Number(p.value) : null);
    }
  }
}).observe(document.getElementById("upload-list"),
           {subtree: true, childList: true, attributes: true,
            attributeFilter: ["value"]});
"""


def test_upload_two_with_progress(page, site, audio, tmp_path):
    b = page
    b.js("location.hash = '#/files/uploads/'")
    b.wait(lambda b: b.text("list-status") == "Nothing here yet.", 20,
           "an empty folder")
    b.js(WATCH_PROGRESS)
    one = tmp_path / "first-upload.wav"
    two = tmp_path / "second-upload.wav"
    one.write_bytes(audio["interview"].read_bytes())
    two.write_bytes(audio["standup"].read_bytes())
    # a slow uplink, so the bars move through values on their way
    b.d.set_network_conditions(offline=False, latency=5,
                               download_throughput=50 * 1024 * 1024,
                               upload_throughput=128 * 1024)
    try:
        b.by_id("upload-input").send_keys(f"{one}\n{two}")
        b.wait(lambda b: len(b.css("#upload-list li[data-state='done']"))
               == 2, 60, "both uploads to finish")
    finally:
        b.d.delete_network_conditions()
    b.shot("uploads")
    seen = b.js("return window.sfsProgress")
    for name in ("first-upload.wav", "second-upload.wav"):
        vals = [v for v in seen[f"Progress of {name}"] if v is not None]
        assert vals[-1] == 100, (name, vals)
        assert any(0 < v < 100 for v in vals), (name, vals)
        assert vals == sorted(vals), (name, vals)
    for bar in b.css("#upload-list progress"):
        assert bar.get_attribute("value") == "100"
    b.wait(lambda b: sorted(b.row_names()) ==
           ["first-upload", "second-upload"], 30, "the new rows")
    j = site.get("", params={"path": "/uploads/"}).json()
    assert sorted(f["name"] for f in j["files"]) == \
        ["first-upload", "second-upload"]
    assert all(f["path"] == "/uploads/" for f in j["files"])
    axe(b, "uploads")


DROP = """
const [b64, name, done] = arguments;
const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
const dt = new DataTransfer();
dt.items.add(new File([bytes], name, {type: "audio/wav"}));
const zone = document.getElementById("drop-zone");
for (const type of ["dragenter", "dragover"])
  zone.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true,
                                          cancelable: true}));
const hint = !document.getElementById("drop-hint").hidden;
zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true,
                                          cancelable: true}));
done(hint);
"""


def test_drag_and_drop(page, site, audio):
    import base64
    b = page
    b.js("location.hash = '#/files/dropped/'")
    b.wait(lambda b: b.text("list-status") == "Nothing here yet.", 20,
           "an empty folder")
    data = base64.b64encode(audio["standup"].read_bytes()).decode()
    assert b.js_async(DROP, data, "dropped.wav") is True  # the hint showed
    b.wait(lambda b: b.row_names() == ["dropped"], 30, "the dropped file")
    assert b.by_id("drop-hint").get_attribute("hidden") is not None
    j = site.get("", params={"path": "/dropped/"}).json()
    assert [f["filename"] for f in j["files"]] == ["dropped.wav"]


def test_import_from_url(page, site, origin):
    b = page
    b.by_id("import-btn").click()
    b.wait_visible("import")
    b.by_id("i-uri").send_keys(origin + "/interview.wav")
    assert b.by_id("i-name").get_attribute("value") == "interview"
    b.by_id("i-name").clear()
    b.by_id("i-name").send_keys("imported-interview")
    b.shot("import")
    axe(b, "import dialog")
    b.by_id("i-form").submit()
    b.wait(lambda b: any("Imported" in li.text for li in
                         b.css("#upload-list li")), 60, "the import")
    b.wait_row("imported-interview")
    # a failing one says why
    b.by_id("import-btn").click()
    b.by_id("i-uri").send_keys(origin + "/missing.wav")
    b.by_id("i-form").submit()
    b.wait(lambda b: any("Import failed" in li.text and "404" in li.text
                         for li in b.css("#upload-list li")), 60,
           "the failed import")


# ---- listening ------------------------------------------------------------

def test_play_and_seek_on_the_waveform(page, site):
    b = page
    click_play(b, "interview")
    assert b.text("p-name") == "interview"
    b.wait(lambda b: int(b.by_id("p-wave").get_attribute("data-peaks") or 0)
           > 100, 20, "the waveform's peaks")
    st = audio_state(b)
    assert st["src"].endswith(
        f"/files/{site.files['interview']['id']}/listening-audio/stream")
    d = st["d"]
    assert 3 < d < 10
    wave = b.by_id("p-wave")
    w = wave.size["width"]
    for frac in (0.75, 0.25, 0.5):
        # selenium 4.8 offsets from the element's centre
        ActionChains(b.d).move_to_element_with_offset(
            wave, int(w * (frac - 0.5)), 0).click().perform()
        b.wait(lambda b: abs(audio_state(b)["t"] - frac * d) < 0.35, 10,
               f"currentTime at {frac} of the recording")
    b.shot("player")
    axe(b, "player")
    # a row plays, the row shows it
    assert "playing" in b.row("interview").get_attribute("class")


def test_speed_and_keys(page, site):
    b = page
    click_play(b, "standup")
    sel = b.by_id("p-speed")
    sel.find_element(By.CSS_SELECTOR, "option[value='1.5']").click()
    b.wait(lambda b: audio_state(b)["rate"] == 1.5, 10, "1.5x")
    b.by_id("p-wave").click()  # focus the player, away from the select
    b.js("document.activeElement.blur()")
    body = b.d.find_element(By.TAG_NAME, "body")
    body.send_keys(">")
    b.wait(lambda b: audio_state(b)["rate"] == 1.75, 10, "> speeds up")
    for _ in range(6):
        body.send_keys("<")
    b.wait(lambda b: audio_state(b)["rate"] == 0.5, 10, "< down to 0.5x")
    body.send_keys("<")
    assert audio_state(b)["rate"] == 0.5  # the slowest
    body.send_keys("k")
    b.wait(lambda b: audio_state(b)["paused"], 10, "k pauses")
    body.send_keys(" ")
    b.wait(lambda b: not audio_state(b)["paused"], 10, "space plays")
    body.send_keys(" ")
    b.wait(lambda b: audio_state(b)["paused"], 10, "space pauses")
    b.js("document.getElementById('p-audio').currentTime = 0")
    body.send_keys("l")
    b.wait(lambda b: audio_state(b)["t"] >= 2.5, 10,
           "l moves on (10 s, or to the end)")
    body.send_keys("j")
    b.wait(lambda b: audio_state(b)["t"] < 0.1, 10, "j moves back")
    body.send_keys(Keys.ARROW_RIGHT)
    b.wait(lambda b: 4.9 < audio_state(b)["t"] or
           audio_state(b)["t"] >= audio_state(b)["d"] - 0.1, 10, "right")
    b.js("document.getElementById('p-audio').currentTime = 3")
    body.send_keys(Keys.ARROW_LEFT)
    b.wait(lambda b: audio_state(b)["t"] < 0.1, 10, "left moves back")
    # the slider itself takes arrows when focused
    wave = b.by_id("p-wave")
    wave.send_keys(Keys.END)
    b.wait(lambda b: audio_state(b)["t"] > audio_state(b)["d"] - 1.5, 10,
           "End")
    assert int(wave.get_attribute("aria-valuenow")) >= 1
    wave.send_keys(Keys.HOME)
    b.wait(lambda b: audio_state(b)["t"] < 0.1, 10, "Home")
    # the speed is remembered for the next recording
    assert b.js("return localStorage.getItem('sfs.speed')") == "0.5"


def test_position_remembered(page, site):
    b = page
    click_play(b, "interview")
    b.js("const a = document.getElementById('p-audio');"
         " a.pause(); a.currentTime = 2.5;")
    b.wait(lambda b: abs(audio_state(b)["t"] - 2.5) < 0.05, 10, "2.5 s")
    fid = site.files["interview"]["id"]
    b.wait(lambda b: b.js(f"return localStorage.getItem('sfs.pos.{fid}')")
           == "2.5", 10, "the position stored")
    b.by_id("p-close").click()
    assert not b.visible("player")
    # later (a reload, even): the same file starts where it was left
    b.d.refresh()
    b.wait_visible("files")
    b.wait_rows()
    click_play(b, "interview")
    assert audio_state(b)["t"] >= 2.4


# ---- edit, share, delete --------------------------------------------------

def open_details(b, name):
    b.wait_row(name).find_element(By.CSS_SELECTOR, ".name-btn").click()
    b.wait_visible("details")


def test_edit_tags_seen_in_the_api(page, site):
    b = page
    open_details(b, "standup")
    b.shot("details")
    axe(b, "details dialog")
    chips = [c.text.split("\n")[0] for c in b.css("#d-tags .chip")]
    assert chips == ["Engineering"]
    # suggestions from the tenant's tags, bob's among them
    inp = b.by_id("d-tag-input")
    inp.send_keys("Ro")
    b.wait(lambda b: [o.get_attribute("value") for o in
                      b.css("#d-tag-suggestions option")] == ["Roadmap"],
           10, "the suggestion")
    inp.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    inp.send_keys("Roadmap", Keys.ENTER)
    inp.send_keys("Retro", Keys.ENTER)
    b.css("#d-tags .chip button[aria-label='Remove tag Engineering']")[0] \
        .click()
    desc = b.by_id("d-desc")
    desc.clear()
    desc.send_keys("Tuesday's standup")
    b.css("#d-publish input[value='INTERNAL']")[0].click()
    b.by_id("d-save").click()
    b.wait(lambda b: not b.visible("details"), 10, "the dialog to close")
    f = site.get(f"/{site.files['standup']['id']}").json()
    assert f["tags"] == ["Retro", "Roadmap"]
    assert f["description"] == "Tuesday's standup"
    assert f["publishMode"] == "INTERNAL"
    b.wait(lambda b: [t.text for t in b.row("standup").find_elements(
        By.CSS_SELECTOR, ".tag")] == ["Retro", "Roadmap"], 10, "the row")
    # a bad name is refused with the API's reason, nothing changes
    open_details(b, "standup")
    b.js("document.getElementById('d-name').removeAttribute('maxlength')")
    b.js("document.getElementById('d-name').value = 'x'.repeat(300)")
    b.by_id("d-save").click()
    b.wait(lambda b: b.text("d-error") != "", 10, "the error")
    b.by_id("d-cancel").click()
    assert site.get(f"/{site.files['standup']['id']}").json()["name"] == \
        "standup"


def test_delete_undo_restore_purge(page, site):
    b = page
    fid = site.files["interview"]["id"]
    b.wait_row("interview").find_element(
        By.CSS_SELECTOR, "button[aria-label='Delete interview']").click()
    b.wait(lambda b: b.row("interview") is None, 10, "the row gone")
    assert site.get(f"/{fid}").json()["isDeleted"] is True
    undo = b.wait(lambda b: [x for x in b.css(".toast button")
                             if x.text == "Undo"], 10, "Undo")[0]
    undo.click()
    b.wait(lambda b: b.row("interview") is not None, 10, "back by undo")
    assert site.get(f"/{fid}").json()["isDeleted"] is False
    # delete again, restore from the trash
    b.row("interview").find_element(
        By.CSS_SELECTOR, "button[aria-label='Delete interview']").click()
    b.wait(lambda b: b.row("interview") is None, 10, "the row gone")
    b.css("#views a[data-view='trash']")[0].click()
    b.wait(lambda b: b.row("interview") is not None, 20, "in the trash")
    b.shot("trash")
    axe(b, "trash")
    b.row("interview").find_element(
        By.CSS_SELECTOR, "button[aria-label='Restore interview']").click()
    b.wait(lambda b: b.row("interview") is None, 10, "restored")
    assert site.get(f"/{fid}").json()["isDeleted"] is False
    # and purge it for good
    b.js("location.hash = '#/files/'")
    b.wait_row("interview").find_element(
        By.CSS_SELECTOR, "button[aria-label='Delete interview']").click()
    b.wait(lambda b: b.row("interview") is None, 10, "the row gone")
    b.js("location.hash = '#/trash'")
    b.wait_row("interview").find_element(
        By.CSS_SELECTOR,
        "button[aria-label='Delete for good interview']").click()
    b.wait_visible("confirm")
    axe(b, "confirm dialog")
    b.by_id("c-yes").click()
    b.wait(lambda b: b.row("interview") is None, 10, "purged")
    f = site.get(f"/{fid}").json()
    assert f["isPurged"] is True
    b.d.refresh()
    b.wait_rows()
    assert b.row("interview") is None  # the trash leaves purged files out


def test_share_with_a_colleague_by_name(page, site):
    b = page
    fid = site.files["weekly-meeting"]["id"]
    b.js("location.hash = '#/files/meetings/'")
    open_details(b, "weekly-meeting")
    b.wait(lambda b: "Nobody yet." in b.text("d-share-list"), 10,
           "no shares yet")
    who = b.by_id("d-share-name")
    # somebody unknown is refused in words, nothing is shared
    who.send_keys("nobody-here", Keys.ENTER)
    b.wait(lambda b: "Nobody in your organisation is called" in
           b.text("d-share-error"), 10, "the refusal")
    who.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    # the directory suggests by prefix, any case
    who.send_keys("BO")
    b.wait(lambda b: [o.get_attribute("value") for o in
                      b.css("#d-people option")] == ["bob"], 10,
           "bob suggested")
    who.send_keys(Keys.CONTROL, "a", Keys.BACKSPACE)
    who.send_keys("bob")
    b.by_id("d-share-perm").find_element(
        By.CSS_SELECTOR, "option[value='EDIT']").click()
    b.by_id("d-share-form").submit()
    b.wait(lambda b: "bob \u2014 can edit" in b.text("d-share-list"), 10,
           "the share listed")
    b.shot("share")
    axe(b, "sharing")
    shares = site.get(f"/{fid}/shares").json()["shares"]
    assert [(s["userId"], s["permission"]) for s in shares] == \
        [(site.users["bob"], "EDIT")]
    b.by_id("d-cancel").click()
    # bob signs in and finds it in his "Shared with me"
    b.by_id("sign-out").click()
    b.wait_visible("signin")
    b.sign_in(site.keys["bob"])
    b.js("location.hash = '#/shared'")
    b.wait(lambda b: "weekly-meeting" in b.row_names(), 20,
           "the share in bob's view")
    open_details(b, "weekly-meeting")
    assert "you can edit" in b.text("d-info")
    b.by_id("d-cancel").click()
    b.by_id("sign-out").click()
    b.wait_visible("signin")
    # alice stops sharing
    b.sign_in(site.keys["alice"])
    b.js("location.hash = '#/files/meetings/'")
    open_details(b, "weekly-meeting")
    b.wait(lambda b: b.css("#d-share-list button"), 10, "the share's button")
    b.css("#d-share-list button[aria-label='Stop sharing with bob']")[0] \
        .click()
    b.wait(lambda b: "Nobody yet." in b.text("d-share-list"), 10,
           "the share gone")
    assert site.get(f"/{fid}/shares").json()["shares"] == []
    b.by_id("d-cancel").click()


def test_shared_with_me(page, site):
    b = page
    bob = site.get("", who="bob").json()["files"]
    (notes,) = [f for f in bob if f["name"] == "bobs-notes"]
    r = site.post(f"/{notes['id']}/shares", who="bob",
                  json={"userId": site.users["alice"], "permission": "VIEW"})
    assert r.status_code in (200, 201), r.text
    b.css("#views a[data-view='shared']")[0].click()
    b.wait(lambda b: b.row_names() == ["bobs-notes"], 20, "bob's file")
    assert b.css("#views a[data-view='shared']")[0] \
        .get_attribute("aria-current") == "page"
    assert not b.visible("folder-actions")  # no uploads into others' files
    b.shot("shared")
    axe(b, "shared with me")
    open_details(b, "bobs-notes")
    assert "you can listen" in b.text("d-info")
    assert not b.visible("d-save") and not b.by_id("d-name").is_enabled()
    b.by_id("d-cancel").click()
    # bob takes it back: gone from the view
    site.delete(f"/{notes['id']}/shares/{r.json()['id']}", who="bob")
    b.js("location.hash = '#/files/'")
    b.wait_rows()
    b.js("location.hash = '#/shared'")
    b.wait(lambda b: b.text("list-status") == "Nothing here yet.", 20,
           "the share gone")


# ---- errors, said to people ----------------------------------------------

ERR_TEXT = """
const done = arguments[arguments.length - 1];
Promise.all([import("/js/util.js"), import("/js/api.js")]).then(([u, a]) =>
  done([
    u.errText(new a.ApiError(500, {message: "internal error",
                                   request_id: "r-1"})),
    u.errText(new a.ApiError(429, {message: "too many requests"}, 7)),
    u.errText(new a.ApiError(429, {message: "too many requests"})),
    u.errText(new a.ApiError(400, {message: "invalid", validation_errors:
        [{location: "name", message: "too long"}]})),
    u.errText(new a.ApiError(0, {message: a.OFFLINE})),
  ]));
"""


def test_errors_are_said_in_words(page, site):
    assert page.js_async(ERR_TEXT) == [
        "Internal error. Try again; if it keeps failing, tell whoever runs "
        "speechfs (reference r-1).",
        "Too many requests. Try again in 7 s.",
        "Too many requests. Try again in a moment.",
        "Name: too long.",
        "Cannot reach speechfs: check the network connection, then try "
        "again.",
    ]


def test_offline_list_and_try_again(page, site):
    b = page
    b.d.set_network_conditions(offline=True, latency=0,
                               download_throughput=-1, upload_throughput=-1)
    try:
        b.by_id("search").send_keys("stand")
        b.wait(lambda b: "Cannot reach speechfs" in b.text("list-status"),
               20, "the offline notice")
        assert b.row_names() == []
        assert b.visible("list-retry")
    finally:
        b.d.delete_network_conditions()
    b.by_id("list-retry").click()
    b.wait(lambda b: b.row_names() == ["standup"], 20, "the list again")


def test_upload_refused_says_why(page, site, tmp_path):
    b = page
    big = tmp_path / "too-big.wav"
    big.write_bytes(b"\0" * (4 * 1024 * 1024 + 1))  # BASE_CONFIG's limit + 1
    b.by_id("upload-input").send_keys(str(big))
    li = b.wait(lambda b: [li for li in
                           b.css("#upload-list li[data-state='failed']")
                           if "too-big.wav" in li.text], 60, "the refusal")
    assert "larger than 4194304 bytes" in li[0].text, li[0].text
    assert site.get("", params={"name": "too-big"}).json()["total"] == 0


def test_player_says_why_it_cannot_play(page, site, audio):
    b = page
    f = site.new_file(data=audio["standup"].read_bytes(), name="no-audio",
                      filename="no-audio.wav", listening="true",
                      path="/gone/")
    wait_listening(site, f["id"])
    b.js("location.hash = '#/files/gone/'")
    b.wait_row("no-audio")
    # the audio goes after the page listed it
    assert site.delete(f"/{f['id']}/listening-audio").status_code == 204
    b.wait_row("no-audio").find_element(By.CSS_SELECTOR, ".play").click()
    b.wait(lambda b: "Cannot play" in b.text("p-state"), 20, "the reason")
    assert "listening audio has been deleted" in b.text("p-state")


# ---- sign out, phone, keyboard -------------------------------------------

def test_phone_width(page, site):
    b = page
    b.d.set_window_size(390, 844)
    b.wait(lambda b: b.js("return window.innerWidth") <= 400, 10, "narrow")
    b.d.refresh()
    b.wait_rows()
    click_play(b, "standup")
    b.js("document.getElementById('p-audio').pause()")
    assert b.js("return document.documentElement.scrollWidth"
                " <= window.innerWidth")
    for i in ("p-play", "p-speed", "upload-btn", "search", "sign-out"):
        el = b.by_id(i)
        assert el.is_displayed(), i
        r = el.rect
        assert r["x"] >= 0 and r["x"] + r["width"] <= 391, (i, r)
    # the list is cards: each row's name and its play button are visible
    row = b.row("standup")
    assert row.find_element(By.CSS_SELECTOR, ".play").is_displayed()
    b.shot("phone")
    axe(b, "phone width")


def test_keyboard_only(page, site):
    b = page
    actions = ActionChains(b.d)
    target = "Play standup"

    def focused_label():
        return b.js("const e = document.activeElement;"
                    " return e ? (e.getAttribute('aria-label') ||"
                    " e.textContent) : ''")

    b.js("document.activeElement && document.activeElement.blur();"
         "window.scrollTo(0, 0)")
    for _ in range(60):
        if focused_label() == target:
            break
        actions.send_keys(Keys.TAB).perform()
    assert focused_label() == target
    # the focus is visible: an outline on :focus-visible
    assert b.js("const s = getComputedStyle(document.activeElement);"
                " return s.outlineStyle !== 'none' &&"
                " parseFloat(s.outlineWidth) >= 2")
    actions.send_keys(Keys.ENTER).perform()
    b.wait(lambda b: not audio_state(b)["paused"], 20, "Enter plays")
    actions.send_keys("k").perform()
    b.wait(lambda b: audio_state(b)["paused"], 10, "k pauses")
    # details by keyboard, Escape closes
    actions.send_keys(Keys.SHIFT + Keys.TAB).perform()
    actions.key_up(Keys.SHIFT).perform()
    assert focused_label() == "standup"
    actions.send_keys(Keys.ENTER).perform()
    b.wait_visible("details")
    assert b.js("return document.activeElement.id") == "d-name"
    actions.send_keys(Keys.ESCAPE).perform()
    b.wait(lambda b: not b.visible("details"), 10, "Escape closes")


def test_sign_out_and_be_refused(page, site):
    b = page
    cookie = b.d.get_cookie("sfs_session")["value"]
    b.by_id("sign-out").click()
    b.wait_visible("signin")
    assert "signed out" in b.text("signin-error")
    b.shot("signed-out")
    r = fetch_json(b, "/api/v1/speech-services/files")
    assert r["status"] == 401
    # the cookie it had is refused anywhere, not only forgotten
    r = requests.get(site.api, cookies={"sfs_session": cookie}, timeout=30)
    assert r.status_code == 401
    assert r.json()["error_type"] == "invalid_session"
    r = requests.get(site.base + SESSION,
                     cookies={"sfs_session": cookie}, timeout=30)
    assert r.status_code == 401
    b.open("/#/trash")
    b.wait_visible("signin")
    assert not b.visible("files")
