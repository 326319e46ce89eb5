// The file list: a folder of the virtual tree with breadcrumbs, "shared
// with me", or the trash; sorted, searched by name as you type, filtered
// by tags (all or any), a page of 100 at a time (more on scrolling), with
// the actions each row allows.

import * as api from "./api.js";
import { $, h, clear, fmtSize, fmtTime, fmtDate, debounce, notify, confirmDialog, errText } from "./util.js";

const { folderHash, listRequest, show } = self.sfsBoot; // js/boot.js

// The rows of a view's first page that fill the screen below the list's
// top are drawn first, the others once those are on screen. A folder's
// row is the lowest (a line and its padding, 34 px at the page's 16 px),
// so as many rows of it as fit: never a gap, at most a few rows too many.
const MIN_ROW = 34;
const firstRows = (tbody) =>
  Math.max(4, Math.ceil((window.innerHeight - Math.max(0, tbody.getBoundingClientRect().top)) / MIN_ROW));

const SVG = "http://www.w3.org/2000/svg";

function folderIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 20 16");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const p = document.createElementNS(SVG, "path");
  p.setAttribute("d", "M1 2.5A1.5 1.5 0 0 1 2.5 1h5l2 2h8A1.5 1.5 0 0 1 19 4.5v9a1.5 1.5 0 0 1-1.5 1.5h-15A1.5 1.5 0 0 1 1 13.5z");
  svg.append(p);
  return svg;
}

// A cell of a row (its role is explicit: the list is drawn as a grid).
const cell = (cls, ...children) => h("td", { class: cls, role: "cell" }, ...children);

// Whether a row can be played: content that was fetched, audio or not yet.
function playable(f) {
  return f.ingestionStatus !== "FAILED" && !(f.isContentDiscarded && !f.listeningAudio);
}

function stateLine(f) {
  if (f.ingestionStatus === "PENDING" || f.ingestionStatus === "PROCESSING") return ["Importing\u2026", ""];
  if (f.ingestionStatus === "FAILED") return [`Import failed: ${f.ingestionError || "unknown error"}`, "failed"];
  const la = f.listeningAudio;
  if (la && (la.status === "PENDING" || la.status === "PROCESSING")) return ["Preparing audio\u2026", ""];
  if (la && la.status === "FAILED") return ["No listening audio: it could not be made", "failed"];
  return null;
}

// Once the first rows are on screen: when the browser reports their
// paint (Element Timing API), else after the next frame and a moment.
function painted() {
  return new Promise((resolve) => {
    let po = null;
    const done = () => {
      clearTimeout(t);
      if (po) po.disconnect();
      resolve();
    };
    const t = setTimeout(done, 250);
    if ((PerformanceObserver.supportedEntryTypes || []).includes("element")) {
      po = new PerformanceObserver((l) => {
        if (l.getEntries().some((e) => e.identifier === "sfs-rows")) done();
      });
      po.observe({ type: "element" });
    } else {
      requestAnimationFrame(() => setTimeout(done, 0));
    }
  });
}

export class FileList {
  constructor(player, { onDetails }) {
    this.player = player;
    this.onDetails = onDetails;
    this.view = "files";
    this.path = "/";
    this.page = 0;
    this.total = 0;
    this.loaded = 0;
    this.loading = false;
    this.gen = 0; // a newer load makes older answers stale
    this.rowsById = new Map();
    this.tbody = $("rows");
    this.bind();
  }

  bind() {
    const reload = debounce(() => this.reload(), 200);
    $("search").addEventListener("input", reload);
    $("tags-filter").addEventListener("input", reload);
    $("tags-match").addEventListener("change", () => this.reload());
    $("sort").addEventListener("change", () => this.reload());
    $("more").addEventListener("click", () => this.more());
    // more rows when the "Show more" button scrolls into view
    this.io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.more();
    }, { rootMargin: "400px" });
    this.io.observe($("more"));
  }

  // After a page: observing afresh reports where the button is now, so a
  // reader who is still at the end gets the next page (the browser's
  // scroll anchoring can keep the button in view across the insertion,
  // which the observer would never report as a change).
  watchMore() {
    this.io.unobserve($("more"));
    if (this.loaded < this.total) this.io.observe($("more"));
  }

  filtering() {
    return $("search").value.trim() !== "" || (this.view !== "shared" && $("tags-filter").value.trim() !== "");
  }

  request(page) {
    return listRequest(this.view, this.path, page, {
      sort: $("sort").value,
      name: $("search").value.trim(),
      tags: this.view === "shared" ? "" : $("tags-filter").value.split(",").map((t) => t.trim()).filter(Boolean).join(","),
      match: $("tags-match").value,
    });
  }

  get(page) {
    const { url, query } = this.request(page);
    return api.get(url, { query });
  }

  show(view, path) {
    const changed = view !== this.view || path !== this.path;
    this.view = view;
    this.path = path || "/";
    const titles = { files: "My files", shared: "Shared with me", trash: "Trash" };
    $("files-title").textContent = titles[view];
    $("list-caption").textContent = titles[view];
    $("folder-actions").hidden = view !== "files";
    $("tagfilter").hidden = view === "shared";
    this.crumbs();
    if (changed) $("search").value = "";
    return this.reload();
  }

  crumbs() {
    const nav = $("crumbs");
    clear(nav);
    if (this.view !== "files") {
      nav.hidden = true;
      return;
    }
    nav.hidden = false;
    const parts = this.path.split("/").filter(Boolean);
    const ol = h("ol");
    const items = [["Home", "/"]];
    parts.forEach((p, i) => items.push([p, "/" + parts.slice(0, i + 1).join("/") + "/"]));
    items.forEach(([label, path], i) => {
      const last = i === items.length - 1;
      ol.append(h("li", null, h("a", { href: folderHash(path), "aria-current": last ? "page" : null }, label)));
    });
    nav.append(ol);
  }

  async reload() {
    const gen = ++this.gen;
    this.page = 0;
    this.loaded = 0;
    this.loading = true;
    $("list-status").textContent = "Loading\u2026";
    let j;
    try {
      j = await this.get(0);
    } catch (e) {
      if (gen !== this.gen) return;
      this.loading = false;
      clear(this.tbody);
      this.rowsById.clear();
      this.failed(`Cannot list: ${errText(e)}`, () => this.reload());
      return;
    }
    if (gen !== this.gen) return;
    clear(this.tbody);
    this.rowsById.clear();
    if (!(await this.render(j, true, gen))) return;
    this.loading = false;
    this.watchMore();
    performance.mark("sfs:rows");
    document.dispatchEvent(new CustomEvent("sfs:rows", { detail: { total: j.total } }));
  }

  async more() {
    if (this.loading || this.loaded >= this.total) return;
    const gen = this.gen;
    this.loading = true;
    $("list-status").textContent = "Loading more\u2026";
    try {
      const j = await this.get(this.page + 1);
      if (gen !== this.gen) return;
      this.page++;
      this.render(j, false);
      this.loading = false;
      this.watchMore();
    } catch (e) {
      if (gen === this.gen) this.failed(`Cannot list more: ${errText(e)}`, () => this.more());
    } finally {
      if (gen === this.gen) this.loading = false;
    }
  }

  // A listing failed: say why, with a button that tries again.
  failed(text, again) {
    show("error");
    const st = $("list-status");
    st.textContent = text + " ";
    st.append(h("button", { type: "button", class: "link", id: "list-retry", onclick: again }, "Try again"));
    $("more").hidden = true;
  }

  // A page's rows. Of a first page, those that fill the screen are drawn
  // at once and the others after the browser has shown them (a person
  // sees the top of the list sooner: the page lays out and paints a
  // screenful, not a hundred rows); false when a newer load came meanwhile.
  async render(j, first, gen) {
    const rows = [];
    if (first && this.view === "files" && !this.filtering()) {
      for (const d of j.directories || []) rows.push(() => this.dirRow(d));
    }
    for (const f of j.files) rows.push(() => this.row(f));
    show("rows"); // the first visit's page appears with these rows
    const n = first ? Math.min(firstRows(this.tbody), rows.length) : rows.length;
    const shown = n < rows.length ? painted() : null;
    this.append(rows.slice(0, n), first);
    if (shown) {
      await shown;
      if (gen !== this.gen) return false;
      this.append(rows.slice(n), false);
    }
    this.total = j.total;
    this.loaded += j.files.length;
    const dirs = first && !this.filtering() ? (j.directories || []).length : 0;
    let status;
    if (!this.total && !dirs) {
      status = this.filtering() ? "Nothing matches." : this.view === "trash" ? "The trash is empty." : "Nothing here yet.";
    } else {
      status = `${this.total} file${this.total === 1 ? "" : "s"}` + (this.loaded < this.total ? `, ${this.loaded} shown` : "");
    }
    $("list-status").textContent = status;
    $("more").hidden = this.loaded >= this.total;
    return true;
  }

  // Rows (functions that make them) at the end of the list. The first
  // row of a view's first page names its text for the Element Timing
  // API: when it is painted, a person sees the list (tests/bench/). Rows
  // after the first screenful are "later": off screen, the browser
  // neither lays out nor paints them (style.css).
  append(makers, first) {
    const frag = document.createDocumentFragment();
    for (const make of makers) frag.append(make());
    if (!first) for (const tr of frag.children) tr.classList.add("later");
    if (first && frag.firstElementChild) {
      const name = frag.firstElementChild.querySelector(".c-name > a, .c-name > button");
      if (name) name.setAttribute("elementtiming", "sfs-rows");
    }
    this.tbody.append(frag);
  }

  dirRow(name) {
    const path = this.path + name + "/";
    return h("tr", { class: "dir", role: "row" },
      cell("c-play"),
      cell("c-name", h("a", { href: folderHash(path) }, folderIcon(), name)),
      cell("c-tags"), cell("c-dur"), cell("c-size"), cell("c-date"), cell("c-act"));
  }

  row(f) {
    const tr = h("tr", { role: "row", dataset: { id: f.id } });
    this.fill(tr, f);
    this.rowsById.set(f.id, tr);
    return tr;
  }

  // (Re)fill a row from a file's JSON.
  fill(tr, f) {
    clear(tr);
    tr.file = f;
    tr.classList.toggle("playing", !!(this.player.file && this.player.file.id === f.id));
    const trash = this.view === "trash";
    const st = stateLine(f);
    const name = cell("c-name",
      h("button", { type: "button", class: "link name-btn", onclick: () => this.onDetails(f, this.view) }, f.name));
    if (this.filtering() || trash || this.view === "shared") name.append(h("span", { class: "path" }, f.path));
    if (st) name.append(h("span", { class: "state " + st[1] }, st[0]));
    if (trash && f.purgeAt) name.append(h("span", { class: "state" }, `Deleted for good on ${fmtDate(f.purgeAt)}`));
    const acts = cell("c-act");
    if (trash) {
      acts.append(h("button", { type: "button", onclick: () => this.restore(f) , "aria-label": `Restore ${f.name}` }, "Restore"), " ",
        h("button", { type: "button", class: "danger", onclick: () => this.purge(f), "aria-label": `Delete for good ${f.name}` }, "Delete for good"));
    } else {
      if (f.sha256 && !f.isContentDiscarded) {
        acts.append(h("a", { href: api.fileUrl(f.id, "/content"), download: f.filename || f.name,
          "aria-label": `Download ${f.name}` }, "Download"), " ");
      }
      if (this.view === "files") {
        acts.append(h("button", { type: "button", class: "icon-btn", onclick: () => this.remove(f),
          "aria-label": `Delete ${f.name}` }, "Delete"));
      }
    }
    tr.append(
      cell("c-play", trash || !playable(f) ? null : h("button", {
        type: "button", class: "icon-btn play", "aria-label": `Play ${f.name}`,
        onclick: () => this.player.open(f),
      }, "\u25b6")),
      name,
      cell("c-tags", (f.tags || []).map((t) => h("span", { class: "tag" }, t))),
      cell("c-dur", f.durationSeconds ? fmtTime(f.durationSeconds) : ""),
      cell("c-size", fmtSize(f.size)),
      cell("c-date", fmtDate(f.creationDate)),
      acts);
  }

  update(f) {
    const tr = this.rowsById.get(f.id);
    if (tr) this.fill(tr, f);
  }

  markPlaying(id) {
    for (const [fid, tr] of this.rowsById) tr.classList.toggle("playing", fid === id);
  }

  drop(f) {
    const tr = this.rowsById.get(f.id);
    if (tr) {
      // keep the keyboard user's place: focus moves to a neighbour
      const next = tr.nextElementSibling || tr.previousElementSibling;
      tr.remove();
      this.rowsById.delete(f.id);
      const focus = next && next.querySelector("button, a");
      if (focus) focus.focus();
      else $("main").focus();
    }
    this.total = Math.max(0, this.total - 1);
    this.loaded = Math.max(0, this.loaded - 1);
  }

  // Delete with undo: to the trash, and a notice that brings it back.
  async remove(f) {
    try {
      await api.del(api.fileUrl(f.id));
    } catch (e) {
      notify(`Cannot delete: ${errText(e)}`, { error: true });
      return;
    }
    if (this.player.file && this.player.file.id === f.id) this.player.close();
    this.drop(f);
    notify(`Moved \u201c${f.name}\u201d to the trash.`, {
      action: () => this.restore(f), actionLabel: "Undo", ms: 10000,
    });
  }

  async restore(f) {
    try {
      await api.post(api.fileUrl(f.id, "/restore"));
    } catch (e) {
      notify(`Cannot restore: ${errText(e)}`, { error: true });
      return;
    }
    notify(`Restored \u201c${f.name}\u201d.`);
    this.reload();
  }

  async purge(f) {
    const yes = await confirmDialog("Delete for good?",
      `\u201c${f.name}\u201d and its listening audio will be gone; this cannot be undone.`, "Delete for good");
    if (!yes) return;
    try {
      await api.del(api.fileUrl(f.id), { query: { purge: "true" } });
    } catch (e) {
      notify(`Cannot delete: ${errText(e)}`, { error: true });
      return;
    }
    this.drop(f);
    notify(`Deleted \u201c${f.name}\u201d for good.`);
  }
}
