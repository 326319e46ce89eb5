// A file's details: name, description, tags (with suggestions from the
// organisation's tags), who can listen; and, for its owner, the people it
// is shared with: found by name in the users directory, VIEW or EDIT,
// revoked with a button.

import * as api from "./api.js";
import { $, h, clear, debounce, errText, notify, fmtSize, fmtDate, fmtTime } from "./util.js";

const USERS = api.BASE + "/users";
const TAGS = api.BASE + "/tags";

const names = new Map(); // user id -> name, from the directory

async function people(prefix) {
  const j = await api.get(USERS, { query: { name: prefix, size: 20 } });
  for (const u of j.users) names.set(u.id, u.name);
  return j.users;
}

function fillList(datalist, values) {
  clear(datalist);
  for (const v of values) datalist.append(h("option", { value: v }));
}

export class Details {
  constructor({ onSaved }) {
    this.onSaved = onSaved;
    this.file = null;
    this.tags = [];
    this.bind();
  }

  bind() {
    const d = $("details");
    $("d-cancel").addEventListener("click", () => d.close());
    $("d-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.save();
    });
    const input = $("d-tag-input");
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        this.addTag();
      }
    });
    input.addEventListener("input", debounce(() => this.suggestTags(), 150));
    $("d-tag-add").addEventListener("click", () => this.addTag());
    $("d-share-name").addEventListener("input", debounce(() => this.suggestPeople(), 150));
    $("d-share-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.share();
    });
  }

  async suggestTags() {
    const prefix = $("d-tag-input").value.trim();
    try {
      const j = await api.get(TAGS, { query: { prefix, size: 20 } });
      fillList($("d-tag-suggestions"), j.tags.filter((t) =>
        !this.tags.some((x) => x.toLowerCase() === t.toLowerCase())));
    } catch (e) {
      fillList($("d-tag-suggestions"), []);
    }
  }

  async suggestPeople() {
    const prefix = $("d-share-name").value.trim();
    if (!prefix) return;
    try {
      fillList($("d-people"), (await people(prefix)).map((u) => u.name));
    } catch (e) {
      fillList($("d-people"), []);
    }
  }

  renderTags() {
    const box = $("d-tags");
    clear(box);
    if (!this.tags.length) box.append(h("span", { class: "help" }, "No tags"));
    this.tags.forEach((t, i) => {
      box.append(h("span", { class: "chip" }, t, h("button", {
        type: "button", "aria-label": `Remove tag ${t}`,
        onclick: () => {
          this.tags.splice(i, 1);
          this.renderTags();
          $("d-tag-input").focus();
        },
      }, "\u00d7")));
    });
  }

  addTag() {
    const input = $("d-tag-input");
    for (const t of input.value.split(",").map((x) => x.trim()).filter(Boolean)) {
      if (!this.tags.some((x) => x.toLowerCase() === t.toLowerCase())) this.tags.push(t);
    }
    input.value = "";
    this.renderTags();
    this.suggestTags();
  }

  // view: "files" (own), "shared" (permission from the listing), "trash"
  open(file, view) {
    this.file = file;
    const owner = view === "files" || view === "trash";
    const canEdit = view === "files" || (view === "shared" && file.permission === "EDIT");
    $("d-title").textContent = canEdit ? `Details of \u201c${file.name}\u201d` : `\u201c${file.name}\u201d`;
    const info = [file.filename, fmtSize(file.size), file.durationSeconds ? fmtTime(file.durationSeconds) : "",
      `added ${fmtDate(file.creationDate)}`, file.path];
    if (view === "shared") info.push(file.accessType === "INTERNAL" ? "published to your organisation" : `you can ${file.permission === "EDIT" ? "edit" : "listen"}`);
    $("d-info").textContent = info.filter(Boolean).join(" \u00b7 ");
    $("d-name").value = file.name;
    $("d-desc").value = file.description || "";
    this.tags = [...(file.tags || [])];
    this.renderTags();
    for (const r of document.querySelectorAll("#d-publish input")) r.checked = r.value === file.publishMode;
    for (const el of $("d-form").querySelectorAll("input, textarea, #d-tag-add")) el.disabled = !canEdit;
    $("d-publish").disabled = !owner || view === "trash";
    $("d-save").hidden = !canEdit || view === "trash";
    $("d-error").textContent = "";
    $("d-shares").hidden = view !== "files";
    $("d-share-error").textContent = "";
    $("d-share-form").reset();
    if (view === "files") this.loadShares();
    $("details").showModal();
    (canEdit ? $("d-name") : $("d-cancel")).focus();
    this.suggestTags();
  }

  async save() {
    const f = this.file;
    const pending = $("d-tag-input").value.trim();
    if (pending) this.addTag();
    const body = {
      name: $("d-name").value.trim(),
      description: $("d-desc").value.trim() || null,
      tags: this.tags,
    };
    const pub = document.querySelector("#d-publish input:checked");
    if (!$("d-publish").disabled && pub && pub.value !== f.publishMode) body.publishMode = pub.value;
    let saved;
    try {
      saved = await api.patch(api.fileUrl(f.id), body);
    } catch (e) {
      $("d-error").textContent = errText(e);
      return;
    }
    if (f.permission) Object.assign(saved, { permission: f.permission, accessType: f.accessType });
    this.file = saved;
    $("details").close();
    notify(`Saved \u201c${saved.name}\u201d.`);
    this.onSaved(saved);
  }

  async loadShares() {
    const f = this.file;
    const ul = $("d-share-list");
    clear(ul);
    let j;
    try {
      j = await api.get(api.fileUrl(f.id, "/shares"));
    } catch (e) {
      ul.append(h("li", null, `Cannot list the shares: ${errText(e)}`));
      return;
    }
    if (this.file !== f) return;
    if (!j.shares.length) ul.append(h("li", { class: "help" }, "Nobody yet."));
    const unknown = j.shares.some((s) => !names.has(s.userId));
    if (unknown) {
      try {
        await people("");
      } catch (e) {
        /* names stay ids */
      }
    }
    for (const s of j.shares) {
      const who = names.get(s.userId) || s.userId;
      ul.append(h("li", null,
        h("span", null, `${who} \u2014 ${s.permission === "EDIT" ? "can edit" : "can listen"}`),
        h("button", {
          type: "button", "aria-label": `Stop sharing with ${who}`,
          onclick: () => this.revoke(s, who),
        }, "Stop sharing")));
    }
  }

  async share() {
    const f = this.file;
    const typed = $("d-share-name").value.trim();
    const err = $("d-share-error");
    err.textContent = "";
    let user;
    try {
      const found = await people(typed);
      user = found.find((u) => u.name.toLowerCase() === typed.toLowerCase());
    } catch (e) {
      err.textContent = `Cannot look up colleagues: ${errText(e)}`;
      return;
    }
    if (!user) {
      err.textContent = `Nobody in your organisation is called \u201c${typed}\u201d.`;
      return;
    }
    try {
      await api.post(api.fileUrl(f.id, "/shares"), { userId: user.id, permission: $("d-share-perm").value });
    } catch (e) {
      err.textContent = errText(e);
      return;
    }
    $("d-share-form").reset();
    notify(`Shared with ${user.name}.`);
    this.loadShares();
  }

  async revoke(s, who) {
    try {
      await api.del(api.fileUrl(this.file.id, `/shares/${encodeURIComponent(s.id)}`));
    } catch (e) {
      $("d-share-error").textContent = errText(e);
      return;
    }
    notify(`No longer shared with ${who}.`);
    this.loadShares();
  }
}
