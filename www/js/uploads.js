// Uploads into the folder on screen, by drag and drop or the file picker,
// several at once, each with its own progress bar; and imports from a URL,
// whose status is shown until the daemon has fetched them.

import * as api from "./api.js";
import { $, h, errText, notify } from "./util.js";

const POLL_MS = 1000;

function stem(filename) {
  const i = filename.lastIndexOf(".");
  return i > 0 ? filename.slice(0, i) : filename;
}

export class Uploads {
  constructor({ folder, onDone }) {
    this.folder = folder; // () => the virtual path on screen, or null
    this.onDone = onDone;
    this.bind();
  }

  bind() {
    const input = $("upload-input");
    $("upload-btn").addEventListener("click", () => input.click());
    input.addEventListener("change", () => {
      this.start([...input.files]);
      input.value = "";
    });
    const zone = $("drop-zone");
    const hint = $("drop-hint");
    let depth = 0;
    const accepts = (ev) => this.folder() !== null && ev.dataTransfer &&
      [...ev.dataTransfer.types].includes("Files");
    zone.addEventListener("dragenter", (ev) => {
      if (!accepts(ev)) return;
      ev.preventDefault();
      depth++;
      zone.classList.add("dragging");
      hint.hidden = false;
    });
    zone.addEventListener("dragover", (ev) => {
      if (!accepts(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "copy";
    });
    zone.addEventListener("dragleave", () => {
      if (--depth <= 0) {
        depth = 0;
        zone.classList.remove("dragging");
        hint.hidden = true;
      }
    });
    zone.addEventListener("drop", (ev) => {
      if (!accepts(ev)) return;
      ev.preventDefault();
      depth = 0;
      zone.classList.remove("dragging");
      hint.hidden = true;
      this.start([...ev.dataTransfer.files]);
    });
    $("uploads-clear").addEventListener("click", () => {
      for (const li of [...$("upload-list").children]) {
        if (li.dataset.state !== "busy") li.remove();
      }
      if (!$("upload-list").children.length) $("uploads").hidden = true;
    });
    $("import-btn").addEventListener("click", () => this.importDialog());
  }

  item(label) {
    const bar = h("progress", { max: "100", value: "0", "aria-label": `Progress of ${label}` });
    const status = h("span", { class: "st" }, "Waiting\u2026");
    const li = h("li", { dataset: { state: "busy" } }, h("span", { class: "nm" }, label), bar, status);
    $("upload-list").append(li);
    $("uploads").hidden = false;
    return { li, bar, status };
  }

  finish(it, ok, text) {
    it.li.dataset.state = ok ? "done" : "failed";
    it.status.className = "st " + (ok ? "done" : "failed");
    it.status.textContent = text;
  }

  start(files) {
    const path = this.folder();
    if (path === null || !files.length) return;
    for (const file of files) this.one(file, path);
  }

  async one(file, path) {
    const it = this.item(file.name);
    try {
      const f = await api.upload(file, {
        name: stem(file.name), path, generateListeningAudio: "true",
      }, (frac) => {
        const pct = Math.round(frac * 100);
        it.bar.value = pct;
        it.status.textContent = `${pct}%`;
      });
      it.bar.value = 100;
      this.finish(it, true, "Uploaded");
      this.onDone(f);
    } catch (e) {
      this.finish(it, false, `Failed: ${errText(e)}`);
    }
  }

  importDialog() {
    const d = $("import");
    const form = $("i-form");
    $("i-error").textContent = "";
    form.reset();
    $("i-cancel").onclick = () => d.close();
    $("i-uri").oninput = () => {
      if (!$("i-name").dataset.touched) {
        const last = $("i-uri").value.split(/[?#]/)[0].split("/").pop() || "";
        $("i-name").value = stem(decodeURIComponent(last));
      }
    };
    $("i-name").oninput = () => { $("i-name").dataset.touched = "1"; };
    delete $("i-name").dataset.touched;
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const path = this.folder();
      let f;
      try {
        f = await api.post(api.FILES, { uri: $("i-uri").value.trim(), name: $("i-name").value.trim(), path });
      } catch (e) {
        $("i-error").textContent = errText(e);
        return;
      }
      d.close();
      this.follow(f);
    };
    d.showModal();
    $("i-uri").focus();
  }

  // An import's status until it is fetched (or failed).
  async follow(f) {
    const it = this.item(`${f.name} (import)`);
    it.bar.removeAttribute("value"); // indeterminate while it runs
    for (;;) {
      it.status.textContent = `Import ${f.ingestionStatus.toLowerCase()}`;
      if (f.ingestionStatus === "COMPLETED") {
        it.bar.value = 100;
        this.finish(it, true, "Imported");
        this.onDone(f);
        return;
      }
      if (f.ingestionStatus === "FAILED") {
        it.bar.value = 0;
        this.finish(it, false, `Import failed: ${f.ingestionError || "unknown error"}`);
        notify(`Import of \u201c${f.name}\u201d failed.`, { error: true });
        this.onDone(f);
        return;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
      try {
        f = await api.get(api.fileUrl(f.id));
      } catch (e) {
        this.finish(it, false, errText(e));
        return;
      }
    }
  }
}
