// Small helpers: elements without innerHTML (text is never parsed as
// markup), formats, debouncing, notices, confirmations.

export const $ = (id) => document.getElementById(id);

// h("button", {type: "button", onclick: f, "aria-label": "x"}, "text", child)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function fmtSize(n) {
  if (n === null || n === undefined || n < 0) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function fmtTime(s) {
  if (!Number.isFinite(s) || s < 0) return "0:00";
  s = Math.floor(s);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});

export function fmtDate(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : dateFmt.format(d);
}

export function debounce(fn, ms) {
  let t = 0;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

// A notice in the polite live region; `action` adds a button (Undo).
export function notify(text, { error = false, action, actionLabel, ms = 6000 } = {}) {
  const box = $("toasts");
  const t = h("div", { class: "toast" + (error ? " error" : ""), role: error ? "alert" : null },
    h("span", null, text));
  let timer = 0;
  const close = () => {
    clearTimeout(timer);
    t.remove();
  };
  if (action) {
    t.append(h("button", {
      type: "button",
      onclick: () => {
        close();
        action();
      },
    }, actionLabel || "Undo"));
  }
  t.append(h("button", { type: "button", "aria-label": "Dismiss", onclick: close }, "\u00d7"));
  box.append(t);
  timer = setTimeout(close, ms);
  return close;
}

// A yes/no question in the confirm dialog; resolves true for yes.
export function confirmDialog(title, text, yes = "Yes") {
  const d = $("confirm");
  $("c-title").textContent = title;
  $("c-text").textContent = text;
  $("c-yes").textContent = yes;
  return new Promise((resolve) => {
    d.addEventListener("close", () => resolve(d.returnValue === "yes"), { once: true });
    d.returnValue = "";
    d.showModal();
    $("c-no").focus();
  });
}

// The last element of a virtual path "/a/b/" -> "b".
export function baseName(path) {
  const parts = path.split("/").filter(Boolean);
  return parts.length ? parts[parts.length - 1] : "";
}

// An error as a sentence for people: the API's message (or its field
// errors), what to do about a refusal for now, and the reference of a
// failure of the server for whoever runs it.
export function errText(e) {
  if (!e) return "Something went wrong.";
  let text;
  if (e.body && Array.isArray(e.body.validation_errors) && e.body.validation_errors.length) {
    text = e.body.validation_errors.map((v) => `${v.location}: ${v.message}`).join("; ");
  } else {
    text = e.message || String(e);
  }
  text = text.charAt(0).toUpperCase() + text.slice(1);
  if (!/[.!?]$/.test(text)) text += ".";
  if (e.status === 429 || e.status === 503) {
    text += e.retryAfter ? ` Try again in ${e.retryAfter} s.` : " Try again in a moment.";
  } else if (e.status >= 500) {
    const ref = e.body && e.body.request_id;
    text += " Try again; if it keeps failing, tell whoever runs speechfs" + (ref ? ` (reference ${ref}).` : ".");
  }
  return text;
}
