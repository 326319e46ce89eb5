// The public API of speechfsd, as the page uses it: JSON requests with the
// session's CSRF token on unsafe methods, the one error body turned into an
// ApiError, and a hook for "signed out" (any 401).

const { BASE, FILES, withQuery, takeEarly } = self.sfsBoot; // js/boot.js

export { BASE, FILES };

let csrf = "";
let onSignedOut = () => {};

export class ApiError extends Error {
  constructor(status, body, retryAfter = 0) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.type = (body && body.error_type) || "";
    this.body = body;
    this.retryAfter = retryAfter; // seconds, from a 429 or 503
  }
}

// What a person is told when the daemon cannot be reached at all.
export const OFFLINE = "cannot reach speechfs: check the network connection, then try again";

function retryAfter(r) {
  const v = Number(r.headers.get("Retry-After"));
  return Number.isFinite(v) && v > 0 ? v : 0;
}

export function setCsrf(token) {
  csrf = token || "";
}

export function csrfToken() {
  return csrf;
}

export function whenSignedOut(fn) {
  onSignedOut = fn;
}

async function errorOf(r) {
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  return new ApiError(r.status, body, retryAfter(r));
}

// fetch, with a failure to connect turned into an ApiError (status 0).
async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error_type: "offline", message: OFFLINE });
  }
}

// An answer read to its end (text) as the page wants it: the parsed body
// (null for 204), or an ApiError; any 401 but the session's own is a
// sign-out.
function answer(r, text, path) {
  if (!r.ok) {
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (e) {
      body = null;
    }
    const err = new ApiError(r.status, body, retryAfter(r));
    if (r.status === 401 && !path.endsWith("/session")) onSignedOut(err);
    throw err;
  }
  return r.status === 204 ? null : JSON.parse(text);
}

// An early answer (boot.js: { r, text }, read to its end, so the page
// goes on without waiting for another task), or null when it failed.
async function early(url) {
  const p = takeEarly(url);
  try {
    return p ? await p : null;
  } catch (e) {
    return null; // asked again, so that a failure is reported as any other
  }
}

// One request: JSON in and out. Returns the parsed body (null for 204),
// or throws ApiError. A GET that boot.js sent early takes its answer.
export async function call(method, path, { body, headers, query, signal } = {}) {
  const h = Object.assign({}, headers);
  const url = withQuery(path, query);
  if (method !== "GET" && method !== "HEAD" && csrf) h["X-CSRF-Token"] = csrf;
  let payload;
  if (body !== undefined) {
    h["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const a = method === "GET" && !headers && !signal ? await early(url) : null;
  if (a) return answer(a.r, a.text, path);
  const r = await send(url, { method, headers: h, body: payload, credentials: "same-origin", signal });
  return answer(r, await r.text(), path);
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, body, opts = {}) => call("POST", path, Object.assign({ body }, opts));
export const patch = (path, body, opts = {}) => call("PATCH", path, Object.assign({ body }, opts));
export const del = (path, opts) => call("DELETE", path, opts);

// The session: sign in with a key (sent once, in a header; never kept),
// read it back after a reload, sign out.
export async function signIn(key) {
  const r = await send(BASE + "/session", {
    method: "POST", headers: { "X-API-Key": key }, credentials: "same-origin",
  });
  if (!r.ok) throw await errorOf(r);
  const s = await r.json();
  setCsrf(s.csrfToken);
  return s;
}

export async function currentSession() {
  let a = await early(BASE + "/session");
  if (!a) {
    const r = await send(BASE + "/session", { credentials: "same-origin" });
    a = { r, text: await r.text() };
  }
  if (a.r.status === 401) return null;
  const s = answer(a.r, a.text, BASE + "/session");
  setCsrf(s.csrfToken);
  return s;
}

export async function signOut() {
  try {
    await call("DELETE", BASE + "/session");
  } finally {
    setCsrf("");
  }
}

export const fileUrl = (id, rest = "") => `${FILES}/${encodeURIComponent(id)}${rest}`;

// An upload with progress (fetch has no upload progress): multipart, the
// CSRF header, onProgress(fraction). Resolves with the new file.
export function upload(file, fields, onProgress) {
  return new Promise((resolve, reject) => {
    const fd = new FormData();
    for (const [k, v] of Object.entries(fields)) fd.append(k, v);
    fd.append("file", file, file.name);
    const x = new XMLHttpRequest();
    x.open("POST", FILES);
    x.withCredentials = true;
    if (csrf) x.setRequestHeader("X-CSRF-Token", csrf);
    x.responseType = "json";
    x.upload.onprogress = (ev) => {
      if (ev.lengthComputable && ev.total > 0) onProgress(ev.loaded / ev.total);
    };
    x.onload = () => {
      if (x.status === 201) {
        onProgress(1);
        resolve(x.response);
        return;
      }
      const ra = Number(x.getResponseHeader("Retry-After"));
      const err = new ApiError(x.status, x.response, Number.isFinite(ra) && ra > 0 ? ra : 0);
      if (x.status === 401) onSignedOut(err);
      reject(err);
    };
    x.onerror = () => reject(new ApiError(0, { error_type: "offline", message: OFFLINE }));
    x.onabort = () => reject(new ApiError(0, { message: "the upload was cancelled" }));
    x.send(fd);
  });
}

// Why a URL the page cannot use directly (an <audio> source) fails: the
// error of a one-byte ranged GET, or null when it answers.
export async function whyNot(url) {
  let r;
  try {
    r = await send(url, { headers: { Range: "bytes=0-0" }, credentials: "same-origin" });
  } catch (e) {
    return e;
  }
  if (r.ok) return null;
  const err = await errorOf(r);
  if (r.status === 401) onSignedOut(err);
  return err;
}
