#!/usr/bin/env python3
"""The web page's speed in a real headless Chromium against a real
speechfsd, each figure beside its baselines measured in the same run:

1. A folder of 10,000 files opens to its first rows: the time from a
   navigation to the first row painted on screen (Element Timing API:
   the presentation of the frame that shows it; signed in, the page's
   files in the browser's cache), in rounds, each round visiting in turn:
   - the page at the folder's address;
   - the browser alone showing the same listing: its JSON opened as a
     document, navigation to its text painted (first-contentful-paint);
   - a static page of one table row, served by the same daemon: the
     browser's floor for painting a row (its row's Element Timing);
   - an empty document from the same daemon: Chromium reports no paint
     for it, so its figure is the first frame the browser begins (the
     first requestAnimationFrame callback after the navigation);
   and the API's own time for the same listing (GET of the first page,
   keep-alive, from Python), before and after the visits.
   The target line judges what issue 17 asks, as it asks it: the page
   minus the API's listing time from an HTTP client, < 100 ms. That
   figure holds the browser's own cost of any navigation (committing the
   document to a renderer, its first frame, presenting it), which no page
   can take out; so the page's own share is printed beside it, paired
   round by round: the page minus the browser alone showing the listing,
   minus the one-row page and minus the empty document's first frame.
   Those lines inform; they do not change the verdict.
   Beside it, the steps of a visit (medians from the navigation, the
   first three from Resource/Navigation Timing, the others from marks set
   by a script the benchmark adds to every document through the DevTools
   protocol: the first row put in the list, the next frame begun), the
   time until all 100 rows of the page are in the list, then paging on:
   scrolling to the end of the list ten times (100 rows a page), the
   time per page and the longest task that blocked the page's main
   thread (Long Tasks API).
   Then the same folder opened inside the page, as a person browsing
   does: the page at its parent folder, a click on the folder's row, to
   the new folder's first row painted (Element Timing, from the click),
   against the same API time. Both lines judge "the page adds < 100 ms":
   the navigation line holds the browser's cost of loading any document,
   the in-page line only what the page does to open a folder.
2. Playback: from a click on a row's play button to the audio element's
   "playing" event, on a warm cache (played once before), against the
   API's own time to the first 64 KiB of the same listening MP3. Target:
   under 300 ms.

Medians of SFS_BENCH_WEB_ROUNDS rounds (default 15), spreads as min-max;
the load average is printed before and after. The folder is filled
through core's bulk create (tests/bench/helpers/fs_tree.c, built by make).
Exits non-zero when the benchmark could not run; a missed target is
reported, not an error.
"""
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import conftest  # noqa: E402  (tests/e2e: the daemon and the store)
import webutil  # noqa: E402  (tests/e2e: the browser)
from bench_fs import tree_helper  # noqa: E402

ROUNDS = int(os.environ.get("SFS_BENCH_WEB_ROUNDS", "15"))
NFILES = 10000
FOLDER = "/tree/d0000/"


def log(msg):
    print("bench_web: " + msg, flush=True)


def median(xs):
    return statistics.median(xs)


def api_listing_ms(c, rounds):
    s = requests.Session()
    h = {"X-API-Key": c.keys["alice"]}
    q = {"path": FOLDER, "page": 0, "size": 100, "sort": "creationDate,desc"}
    s.get(c.api, params=q, headers=h, timeout=30)  # warm
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = s.get(c.api, params=q, headers=h, timeout=30)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200 and len(r.json()["files"]) == 100
    s.close()
    return out


# Added to every document before its own scripts (DevTools protocol):
# marks the first row put in the page's list and the frame begun after it,
# and the first frame begun after the navigation (requestAnimationFrame).
STEPS = """
(() => {
  const mark = (n) => {
    if (!performance.getEntriesByName(n).length) performance.mark(n);
  };
  requestAnimationFrame(() => mark("bench:frame0"));
  new MutationObserver((recs, mo) => {
    for (const r of recs) {
      if (r.target.id !== "rows" || !r.addedNodes.length) continue;
      mark("bench:dom");
      requestAnimationFrame(() => mark("bench:frame"));
      mo.disconnect();
      return;
    }
  }).observe(document, {childList: true, subtree: true});
})();
"""

# The bare pages of the browser's floor, served by the same daemon.
FLOOR = {
    "bench-empty.html": "<!doctype html>\n<html lang=\"en\"><head>"
                        "<meta charset=\"utf-8\"><title>empty</title>"
                        "</head><body></body></html>\n",
    "bench-one.html": "<!doctype html>\n<html lang=\"en\"><head>"
                      "<meta charset=\"utf-8\"><title>one row</title>"
                      "</head><body><table><tr><td elementtiming="
                      "\"sfs-rows\">one row</td></tr></table></body>"
                      "</html>\n",
}

VISIT = """
const [what, done] = [arguments[0], arguments[arguments.length - 1]];
// what: "rows" (Element Timing of "sfs-rows" and, for the page, its
// 100 rows in the list), "fcp" (first-contentful-paint) or "frame" (the
// first frame begun); then where the time went
let painted = 0;
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    if (e.identifier === "sfs-rows" && !painted) painted = e.renderTime;
  }
}).observe({type: "element", buffered: true});
const mark = (n) => {
  const m = performance.getEntriesByName(n);
  return m.length ? m[m.length - 1].startTime : 0;
};
const ready = () => {
  if (what === "fcp") {
    const p = performance.getEntriesByName("first-contentful-paint");
    return p.length ? p[0].startTime : 0;
  }
  if (what === "frame") return mark("bench:frame0");
  if (!painted) return 0;
  if (document.getElementById("rows") && (!mark("sfs:rows") ||
      document.querySelectorAll("#rows tr").length < 100)) return 0;
  return painted;
};
const ok = () => {
  const t = ready();
  if (!t) {
    setTimeout(ok, 5);
    return;
  }
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const js = res.filter(e => e.name.includes("/js/"));
  const list = res.filter(e => e.name.includes("/files?"));
  done({painted: t, html: nav.responseEnd, parsed: nav.domInteractive,
        ready: nav.domContentLoadedEventStart, frame0: mark("bench:frame0"),
        scripts: js.length ? Math.max(...js.map(e => e.responseEnd)) : 0,
        asked: list.length ? list[0].startTime : 0,
        listed: list.length ? list[0].responseEnd : 0,
        dom: mark("bench:dom"), frame: mark("bench:frame"),
        rows: mark("sfs:rows")});
};
ok();
"""

LISTING = ("page=0&size=100&sort=creationDate%2Cdesc"
           "&path=%2Ftree%2Fd0000%2F")

# what is visited in each round: (name, address, what ends the visit)
VISITS = [
    ("page", "/?round={i}#/files/tree/d0000/", "rows"),
    ("json", "/api/v1/speech-services/files?" + LISTING + "&round={i}",
     "fcp"),
    ("one", "/bench-one.html?round={i}", "rows"),
    ("empty", "/bench-empty.html?round={i}", "frame"),
]


def first_rows_ms(b, rounds):
    """Each round visits the page, the listing's JSON, the one-row page
    and the empty document (a new URL each time: a real navigation, not a
    hash change), in that order; the first round only fills the
    browser's cache. {name: [{step: ms from the navigation}]}"""
    b.d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                        {"source": STEPS})
    out = {}
    for i in range(rounds + 1):
        for name, url, what in VISITS:
            b.open(url.format(i=i))
            r = b.js_async(VISIT, what)
            if i:
                out.setdefault(name, []).append(r)
    return out


# Opening a folder inside the page (a click on its row in the parent
# folder): from the click to the new folder's first row painted, and the
# listing's request as the browser saw it (Resource Timing).
OPEN = """
const [name, done] = [arguments[0], arguments[arguments.length - 1]];
const link = [...document.querySelectorAll("#rows tr.dir a")].find(a =>
  a.textContent === name);
// the parent folder's first row (Element Timing's element): the click
// waits until it is painted, and its entry is not the new folder's
const parent = document.querySelector("#rows [elementtiming=sfs-rows]");
let shown = false, painted = 0, t0 = 0;
const po = new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    if (e.identifier !== "sfs-rows") continue;
    if (e.element === parent) shown = true;
    else if (t0 && !painted && e.renderTime > t0) painted = e.renderTime;
  }
});
po.observe({type: "element", buffered: true});
const ok = () => {
  const rows = performance.getEntriesByName("sfs:rows").filter(m =>
    m.startTime > t0);
  if (!painted || !rows.length ||
      document.querySelectorAll("#rows tr").length < 100) {
    setTimeout(ok, 5);
    return;
  }
  po.disconnect();
  const list = performance.getEntriesByType("resource").filter(e =>
    e.name.includes("/files?") && e.startTime > t0);
  done({painted: painted - t0,
        asked: list.length ? list[0].startTime - t0 : 0,
        listed: list.length ? list[0].responseEnd - t0 : 0,
        rows: rows[0].startTime - t0});
};
const click = () => {
  if (!shown) {
    setTimeout(click, 5);
    return;
  }
  t0 = performance.now();
  link.click();
  ok();
};
click();
"""


def open_folder_ms(b, rounds):
    """Each round loads the page at the folder's parent, waits for its
    rows, then clicks the folder (the first round only warms up).
    [{step: ms from the click}]"""
    parent, name = FOLDER.rstrip("/").rsplit("/", 1)
    out = []
    for i in range(rounds + 1):
        b.open(f"/?open={i}#/files{parent}/")
        b.wait(lambda b: b.js(
            "return [...document.querySelectorAll('#rows tr.dir a')]"
            ".some(a => a.textContent === arguments[0])", name),
            30, "the folder's row")
        r = b.js_async(OPEN, name)
        # the rows must be the new folder's: painted after its listing
        if not r["listed"] or r["painted"] < r["listed"]:
            raise RuntimeError(f"opening {FOLDER}: no listing before the "
                               f"rows painted ({r})")
        if i:
            out.append(r)
    return out


def spread(xs):
    return f"{min(xs):.1f}-{max(xs):.1f}"


SCROLL = """
const done = arguments[arguments.length - 1];
const longest = [];
const po = new PerformanceObserver(l => {
  for (const e of l.getEntries()) longest.push(e.duration);
});
po.observe({type: "longtask", buffered: false});
const times = [];
const rows = () => document.querySelectorAll("#rows tr").length;
let want = rows() + 100, t = performance.now(), pages = 0;
const step = () => {
  if (rows() >= want) {
    times.push(performance.now() - t);
    if (++pages === 10) {
      po.disconnect();
      done({times, longest: longest.length ? Math.max(...longest) : 0,
            rows: rows()});
      return;
    }
    want = rows() + 100;
    t = performance.now();
    window.scrollTo(0, document.body.scrollHeight);
  }
  setTimeout(step, 2);
};
window.scrollTo(0, document.body.scrollHeight);
step();
"""


PLAY = """
const [name, done] = [arguments[0], arguments[arguments.length - 1]];
const a = document.getElementById("p-audio");
const row = [...document.querySelectorAll("#rows tr")].find(tr =>
  tr.querySelector(".name-btn") &&
  tr.querySelector(".name-btn").textContent === name);
let t0 = 0;
a.addEventListener("playing", () => done(performance.now() - t0),
                   {once: true});
t0 = performance.now();
row.querySelector(".play").click();
"""


def playback_ms(b, rounds):
    out = []
    for i in range(rounds + 1):
        b.open(f"/?play={i}#/files/play/")
        b.wait(lambda b: b.row("speech"), 30, "the row")
        b.js("document.getElementById('p-close').click()")
        ms = b.js_async(PLAY, "speech")
        if i:  # the first play warms the caches
            out.append(ms)
    return out


def api_stream_ms(c, fid, rounds):
    s = requests.Session()
    h = {"X-API-Key": c.keys["alice"], "Range": "bytes=0-65535"}
    url = f"{c.api}/{fid}/listening-audio/stream"
    s.get(url, headers=h, timeout=30)
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        r = s.get(url, headers=h, timeout=30)
        out.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 206
    s.close()
    return out


def main():
    if webutil.missing():
        log("missing " + webutil.missing() + ": run packaging/install-deps.sh")
        return 1
    root = pathlib.Path(tempfile.mkdtemp(prefix="bench-web-"))
    d = b = None
    try:
        store, tenants, users, keys = conftest.make_store(root)
        exe = tree_helper()
        p = subprocess.run([str(exe), str(store), users["alice"], "1",
                            str(NFILES)], capture_output=True, text=True,
                           timeout=600)
        if p.returncode:
            log("fs_tree: " + p.stderr[-500:])
            return 1
        www = root / "www"
        shutil.copytree(ROOT / "www", www)
        for name, text in FLOOR.items():
            (www / name).write_text(text)
        d = conftest.Daemon(root, store, args=("--www", str(www)))
        c = conftest.Client(d.base, store)
        c.users, c.keys = users, keys
        wav = root / "speech.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), "This recording is "
                        "played from the page, again and again, to time "
                        "how soon it starts."], check=True, timeout=60)
        f = c.new_file(data=wav.read_bytes(), name="speech",
                       filename="speech.wav", listening="true",
                       path="/play/")
        deadline = time.time() + 120
        while (c.get(f"/{f['id']}").json()["listeningAudio"] or {}) \
                .get("status") != "COMPLETED":
            assert time.time() < deadline, "no listening audio"
            time.sleep(0.1)
        log("load: %.2f %.2f %.2f (1, 5, 15 min) before" % os.getloadavg())

        b = webutil.Browser(d.base)
        b.sign_in(keys["alice"])
        api_ms = api_listing_ms(c, ROUNDS)
        v = first_rows_ms(b, ROUNDS)
        opened = open_folder_ms(b, ROUNDS)
        api_ms += api_listing_ms(c, ROUNDS)  # before and after: same load
        log("load: %.2f %.2f %.2f (1, 5, 15 min) after" % os.getloadavg())

        def col(name, step="painted"):
            return [r[step] for r in v[name]]

        def paired(name):
            return [p - q for p, q in zip(col("page"), col(name))]

        page_ms = col("page")
        a, pg = median(api_ms), median(page_ms)
        log(f"first page of a {NFILES}-file folder: API {a:.1f} ms "
            f"({spread(api_ms)}), page (navigation to the first rows "
            f"painted) {pg:.1f} ms ({spread(page_ms)}); the page adds "
            f"{pg - a:.1f} ms (target < 100 ms: "
            f"{'met' if pg - a < 100 else 'MISSED'}); ratio {pg / a:.2f}")
        log("  the target line judges the page against the API's listing "
            "timed by an HTTP client, as issue 17 asks; that includes the "
            "browser's own cost of a navigation, shown below by pages that "
            "do nothing (these lines inform, they do not change the "
            "verdict)")
        j, o, e = (median(col("json")), median(col("one")),
                   median(col("empty")))
        log(f"  the browser's floor in the same rounds: the listing's JSON "
            f"as a document painted {j:.1f} ms ({spread(col('json'))}); "
            f"a static one-row page painted {o:.1f} ms "
            f"({spread(col('one'))}); an empty document's first frame "
            f"begun {e:.1f} ms ({spread(col('empty'))}; Chromium reports "
            f"no paint for it)")
        log("  the page's own share, paired round by round (median, "
            "min-max): page minus the JSON document "
            f"{median(paired('json')):+.1f} ms ({spread(paired('json'))}), "
            f"minus the one-row page {median(paired('one')):+.1f} ms "
            f"({spread(paired('one'))}), minus the empty document's first "
            f"frame {median(paired('empty')):+.1f} ms "
            f"({spread(paired('empty'))})")
        op = [r["painted"] for r in opened]
        o = median(op)
        log(f"opening the folder in the page (a click on its row in the "
            f"parent folder, to its first rows painted): {o:.1f} ms "
            f"({spread(op)}); the page adds {o - a:.1f} ms over the API "
            f"(target < 100 ms: {'met' if o - a < 100 else 'MISSED'}); "
            f"listing asked {median([r['asked'] for r in opened]):.1f} ms "
            f"after the click, answered "
            f"{median([r['listed'] for r in opened]):.1f}, all 100 rows "
            f"in the list {median([r['rows'] for r in opened]):.1f}")
        m = {k: median(col("page", k)) for k in v["page"][0]}
        log("  the page, medians from the navigation: HTML "
            f"{m['html']:.1f} ms, its scripts {m['scripts']:.1f}, listing "
            f"asked {m['asked']:.1f}, answered {m['listed']:.1f}, parsed "
            f"{m['parsed']:.1f}, modules run {m['ready']:.1f}, first frame "
            f"begun {m['frame0']:.1f}, first row in the list "
            f"{m['dom']:.1f}, next frame begun {m['frame']:.1f}, first "
            f"rows painted {m['painted']:.1f}, all 100 rows in the list "
            f"{m['rows']:.1f}")
        m = {k: median(col("one", k)) for k in v["one"][0]}
        log(f"  the one-row page, medians: HTML {m['html']:.1f} ms, parsed "
            f"{m['parsed']:.1f}, first frame begun {m['frame0']:.1f}, "
            f"painted {m['painted']:.1f}")
        b.open("/?scroll#/files/tree/d0000/")
        b.js_async(VISIT, "rows")
        r = b.js_async(SCROLL)
        log(f"paging on by scrolling: {r['rows']} rows after 10 pages, "
            f"median {median(r['times']):.1f} ms a page "
            f"(max {max(r['times']):.1f}); longest main-thread task "
            f"{r['longest']:.0f} ms")

        play = playback_ms(b, ROUNDS)
        stream = api_stream_ms(c, f["id"], ROUNDS)
        pm, sm = median(play), median(stream)
        log(f"playback start after a click (warm): {pm:.1f} ms "
            f"({min(play):.1f}-{max(play):.1f}); API first 64 KiB of the "
            f"MP3 {sm:.1f} ms; target < 300 ms: "
            f"{'met' if pm < 300 else 'MISSED'}; ratio {pm / sm:.1f}")
        return 0
    finally:
        if b:
            b.quit()
        if d:
            d.stop()
        subprocess.run(["rm", "-rf", str(root)])


if __name__ == "__main__":
    sys.exit(main())
