// The page: sign in and out, the views (#/files/<folder>/, #/shared,
// #/trash), and the parts that work together: the list, the player, the
// details dialog, uploads and imports.

import * as api from "./api.js";
import { $, notify, errText } from "./util.js";
import { Player } from "./player.js";
import { FileList } from "./list.js";
import { Details } from "./details.js";
import { Uploads } from "./uploads.js";

const { folderHash, viewOf, dropEarly, show } = self.sfsBoot; // js/boot.js

const player = new Player();
const details = new Details({ onSaved: (f) => list.update(f) });
const list = new FileList(player, { onDetails: (f, view) => details.open(f, view) });
let session = null;

player.onChange = (f) => list.markPlaying(f ? f.id : null);

const refresh = (() => {
  let t = 0;
  return () => {
    clearTimeout(t);
    t = setTimeout(() => list.reload(), 300);
  };
})();

new Uploads({
  folder: () => (session && list.view === "files" ? list.path : null),
  onDone: () => refresh(),
});

function showSignIn(message) {
  show("sign-in");
  session = null;
  player.close();
  for (const d of document.querySelectorAll("dialog[open]")) d.close();
  $("files").hidden = true;
  $("uploads").hidden = true;
  $("views").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
  document.title = "Sign in \u2014 speechfs";
  $("signin-key").focus();
}

function signedIn(s) {
  session = s;
  $("signin").hidden = true;
  $("files").hidden = false;
  $("views").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = s.userName ? `Signed in as ${s.userName}` : "Signed in";
  route();
}

function route() {
  if (!session) return;
  const where = viewOf(location.hash);
  if (!where) {
    location.replace(folderHash("/"));
    return;
  }
  const { view, path } = where;
  for (const a of document.querySelectorAll("#views a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const names = { files: "My files", shared: "Shared with me", trash: "Trash" };
  document.title = `${view === "files" && path !== "/" ? path + " \u2014 " : ""}${names[view]} \u2014 speechfs`;
  list.show(view, path);
}

$("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("signin-key");
  const key = input.value.trim();
  const button = ev.target.querySelector("button");
  button.disabled = true;
  $("signin-error").textContent = "";
  try {
    const s = await api.signIn(key);
    input.value = ""; // the key is not kept, not even in the form
    signedIn(s);
  } catch (e) {
    $("signin-error").textContent = e.status === 401
      ? "That key is not valid (unknown, malformed or revoked)."
      : `Cannot sign in: ${errText(e)}`;
    input.select();
  } finally {
    button.disabled = false;
  }
});

$("sign-out").addEventListener("click", async () => {
  try {
    await api.signOut();
  } catch (e) {
    /* the session may already be gone: signed out either way */
  }
  showSignIn("You are signed out.");
});

$("newdir-btn").addEventListener("click", () => {
  const d = $("newdir");
  $("n-form").reset();
  $("n-error").textContent = "";
  $("n-cancel").onclick = () => d.close();
  $("n-form").onsubmit = (ev) => {
    ev.preventDefault();
    const name = $("n-name").value.trim();
    if (!name || name.includes("/") || name === "." || name === "..") {
      $("n-error").textContent = "A folder name cannot be empty, \u201c.\u201d, \u201c..\u201d or hold \u201c/\u201d.";
      return;
    }
    d.close();
    location.hash = folderHash(list.path + name + "/");
  };
  d.showModal();
  $("n-name").focus();
});

api.whenSignedOut((e) => {
  if (session) showSignIn(e.type === "session_expired" ? "Your session has expired: sign in again." : "Your session has ended: sign in again.");
});

window.addEventListener("hashchange", route);

(async () => {
  document.body.classList.add("no-player");
  let s = null;
  try {
    s = await api.currentSession(); // asked by boot.js, with the first page
  } catch (e) {
    show("error");
    notify(`The server did not answer: ${errText(e)}`, { error: true });
  }
  if (s) signedIn(s); // the list takes the first page boot.js asked for
  else showSignIn();
  dropEarly(); // what was not taken now would be stale later
})();
