// The first requests of a visit, sent while the page is still being
// parsed. This is a classic script, not a module: index.html loads it in
// its head, where it runs before the parser goes on (a module would wait
// for the whole document), and asks at once for the session and for the
// first page of the view in the address, so both answers are on their way
// while the page's modules load. The modules find what it defines in
// self.sfsBoot.
//
// The views, their addresses and the list's query live here too, so the
// early request is the very one the list would make.
"use strict";

(() => {
  const BASE = "/api/v1/speech-services";
  const FILES = BASE + "/files";
  const PAGE = 100; // rows a page
  const SHOW_BY = 500; // ms after the navigation: the page is shown, ready or not
  const SORT = "creationDate,desc"; // the sort a visit starts with

  // "#/files/a/b/" <-> "/a/b/"
  function folderHash(path) {
    const parts = path.split("/").filter(Boolean).map(encodeURIComponent);
    return "#/files/" + (parts.length ? parts.join("/") + "/" : "");
  }

  function folderOfHash(rest) {
    const parts = rest.split("/").filter(Boolean).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (e) {
        return p;
      }
    });
    return "/" + (parts.length ? parts.join("/") + "/" : "");
  }

  // The view and folder of a location's hash; null for an unknown one.
  function viewOf(hash) {
    hash = hash || "#/files/";
    if (hash.startsWith("#/shared")) return { view: "shared", path: "/" };
    if (hash.startsWith("#/trash")) return { view: "trash", path: "/" };
    if (hash.startsWith("#/files/")) return { view: "files", path: folderOfHash(hash.slice("#/files/".length)) };
    return null;
  }

  // The request for a page of a view: { url, query }. `name` searches by
  // name, `tags` (comma-separated) filters by tags, all or any (`match`).
  function listRequest(view, path, page, { sort = SORT, name = "", tags = "", match = "all" } = {}) {
    const query = { page, size: PAGE, sort };
    if (name) query.name = name;
    if (view === "shared") return { url: FILES + "/shared-with-me", query };
    if (tags) {
      query.tags = tags;
      query.tagsMatch = match;
    }
    if (view === "trash") {
      query.isDeleted = "true";
      query.isPurged = "false";
      query.recursive = "true";
    } else {
      query.path = path;
      if (name || tags) query.recursive = "true";
    }
    return { url: FILES, query };
  }

  // A request's address with its query (empty values left out).
  function withQuery(url, query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query || {})) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return s ? url + (url.includes("?") ? "&" : "?") + s : url;
  }

  // The early requests: promises of their answers (a failure to connect
  // rejects, as fetch does), each taken once.
  const early = new Map();

  // What api.js reads of a fetch Response, from an XMLHttpRequest.
  const answerOf = (x) => ({
    status: x.status,
    ok: x.status >= 200 && x.status < 300,
    headers: { get: (name) => x.getResponseHeader(name) },
  });

  // An answer is read to its end here ({ r, text }). XMLHttpRequest, not
  // fetch: its one load event hands the page the whole answer, where
  // fetch resolves with the head and its text() with the body, each in a
  // task of its own; with fetch the first rows went into the list 15-35 ms
  // later (bench_web, paired rounds).
  function ask(url) {
    const p = new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("GET", url);
      x.onload = () => resolve({ r: answerOf(x), text: x.responseText });
      x.onerror = x.onabort = x.ontimeout = () => reject(new TypeError("network error"));
      x.send();
    });
    p.catch(() => {}); // whoever takes it reports a failure
    early.set(url, p);
  }

  // The answer to an early GET of url, or null (not asked, or taken).
  function takeEarly(url) {
    const p = early.get(url) || null;
    early.delete(url);
    return p;
  }

  // Drop what was asked early and not taken (later it would be stale).
  function dropEarly() {
    early.clear();
  }

  // The page is shown (index.html holds it back with the class "boot") when
  // it has something to show: the first rows of the list, the sign-in form
  // or an error. Before, the browser would draw the bare page and then the
  // list in a second frame, and that first frame's work (style, layout,
  // paint of everything) stood between the answer and the rows. Whatever
  // happens, the page is shown SHOW_BY ms after the navigation started.
  // `shownBy` says which came first (the tests read it).
  let shownBy = "";
  function show(why) {
    if (shownBy) return;
    shownBy = why || "page";
    document.documentElement.classList.remove("boot");
  }
  setTimeout(() => show("deadline"), Math.max(0, SHOW_BY - performance.now()));

  ask(BASE + "/session");
  const where = viewOf(location.hash);
  if (where) {
    const { url, query } = listRequest(where.view, where.path, 0);
    ask(withQuery(url, query));
  }

  self.sfsBoot = Object.freeze({
    BASE, FILES, PAGE, SORT, folderHash, folderOfHash, viewOf, listRequest, withQuery, takeEarly, dropEarly, show,
    shownBy: () => shownBy,
  });
})();
