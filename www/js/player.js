// The listening player: the file's listening MP3 streamed from the API
// (the session's cookie authenticates it; Range requests make seeking
// instant), a waveform of the peaks the listening-audio job computed,
// speed 0.5-2x, the keyboard, and the position remembered per file.

import * as api from "./api.js";
import { $, fmtTime, errText, notify } from "./util.js";

const POS_KEY = "sfs.pos.";
const SPEED_KEY = "sfs.speed";
const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2];

function store(key, value) {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, String(value));
  } catch (e) {
    /* private mode or full: the position is only a convenience */
  }
}

function load(key) {
  try {
    return localStorage.getItem(key);
  } catch (e) {
    return null;
  }
}

export class Player {
  constructor() {
    this.el = $("player");
    this.audio = $("p-audio");
    this.wave = $("p-wave");
    this.canvas = $("p-canvas");
    this.file = null;
    this.peaks = null;
    this.pendingSeek = null;
    this.savedAt = 0;
    this.poll = 0;
    this.frame = 0;
    this.onChange = () => {};
    const speed = Number(load(SPEED_KEY));
    this.speed = SPEEDS.includes(speed) ? speed : 1;
    $("p-speed").value = String(this.speed);
    this.bind();
  }

  bind() {
    const a = this.audio;
    $("p-play").addEventListener("click", () => this.toggle());
    $("p-back").addEventListener("click", () => this.seekBy(-10));
    $("p-fwd").addEventListener("click", () => this.seekBy(10));
    $("p-close").addEventListener("click", () => this.close());
    $("p-speed").addEventListener("change", (ev) => this.setSpeed(Number(ev.target.value)));
    a.addEventListener("loadedmetadata", () => this.ready());
    a.addEventListener("play", () => this.update());
    a.addEventListener("pause", () => {
      this.remember(true);
      this.update();
    });
    a.addEventListener("playing", () => this.setState(""));
    a.addEventListener("waiting", () => this.setState("Loading\u2026"));
    a.addEventListener("timeupdate", () => {
      this.remember(false);
      this.update();
    });
    a.addEventListener("seeked", () => {
      this.remember(true);
      this.update();
    });
    a.addEventListener("ended", () => {
      if (this.file) store(POS_KEY + this.file.id, null);
      this.update();
    });
    a.addEventListener("error", () => this.failed());
    this.wave.addEventListener("click", (ev) => {
      const r = this.wave.getBoundingClientRect();
      if (r.width > 0) this.seekFraction((ev.clientX - r.left) / r.width);
      this.wave.focus();
    });
    this.wave.addEventListener("keydown", (ev) => {
      const d = this.duration();
      const steps = { ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5, PageDown: -30, PageUp: 30 };
      if (ev.key in steps) this.seekBy(steps[ev.key]);
      else if (ev.key === "Home") this.seek(0);
      else if (ev.key === "End" && d) this.seek(Math.max(0, d - 1));
      else return;
      ev.preventDefault();
      ev.stopPropagation();
    });
    new ResizeObserver(() => this.draw()).observe(this.wave);
    document.addEventListener("keydown", (ev) => this.key(ev));
  }

  // Space/k play and pause, arrows move 5 s, j and l 10 s, < and > speed.
  key(ev) {
    if (!this.file || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const t = ev.target;
    const tag = t && t.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (t && t.isContentEditable)) return;
    if (document.querySelector("dialog[open]")) return;
    const onControl = tag === "BUTTON" || tag === "A" || tag === "SUMMARY";
    switch (ev.key) {
      case " ":
        if (onControl) return; // the control's own click
        this.toggle();
        break;
      case "k": this.toggle(); break;
      case "j": this.seekBy(-10); break;
      case "l": this.seekBy(10); break;
      case "ArrowLeft": this.seekBy(-5); break;
      case "ArrowRight": this.seekBy(5); break;
      case "<": this.stepSpeed(-1); break;
      case ">": this.stepSpeed(1); break;
      default: return;
    }
    ev.preventDefault();
  }

  // The audio element gave up: ask the API why (the element cannot say:
  // a 410 and a broken file are both "not supported" to it).
  async failed() {
    const a = this.audio;
    const mine = this.file;
    if (!mine || !a.error) return;
    if (a.error.code === MediaError.MEDIA_ERR_NETWORK) {
      this.setState("The audio stopped loading: the connection failed. Press play to try again.");
      return;
    }
    const e = await api.whyNot(api.fileUrl(mine.id, "/listening-audio/stream"));
    if (this.file !== mine) return;
    this.setState(e ? `Cannot play: ${errText(e)}` : "This browser cannot play the audio.");
  }

  duration() {
    const d = this.audio.duration;
    if (Number.isFinite(d) && d > 0) return d;
    return this.peaks ? this.peaks.durationSeconds : 0;
  }

  setState(text) {
    $("p-state").textContent = text;
  }

  // Play a file (its JSON from the API); `autoplay` from a click.
  async open(file, { autoplay = true } = {}) {
    this.stop();
    this.file = file;
    this.peaks = null;
    this.pendingSeek = null;
    this.el.hidden = false;
    document.body.classList.remove("no-player");
    $("p-name").textContent = file.name;
    this.onChange(file);
    this.draw();
    const la = file.listeningAudio;
    if (!la) {
      this.setState("This recording has no listening audio.");
      return;
    }
    if (la.deleted || la.isPurged) {
      this.setState("The listening audio was deleted.");
      return;
    }
    if (la.status === "FAILED") {
      this.setState(`The listening audio could not be made: ${la.error || "unknown error"}`);
      return;
    }
    if (la.status !== "COMPLETED") {
      this.setState("Preparing the listening audio\u2026");
      this.waitReady(file.id, autoplay);
      return;
    }
    this.setState(autoplay ? "Loading\u2026" : "");
    const saved = Number(load(POS_KEY + file.id));
    if (saved > 1) this.pendingSeek = saved;
    this.audio.src = api.fileUrl(file.id, "/listening-audio/stream");
    this.audio.playbackRate = this.speed;
    this.audio.defaultPlaybackRate = this.speed;
    if (autoplay) {
      this.audio.play().catch((e) => {
        if (e.name !== "AbortError") this.setState("Press play to listen.");
      });
    }
    this.loadPeaks(file.id);
  }

  async waitReady(id, autoplay) {
    const mine = this.file;
    for (;;) {
      await new Promise((r) => { this.poll = setTimeout(r, 1000); });
      if (this.file !== mine) return;
      let f;
      try {
        f = await api.get(api.fileUrl(id));
      } catch (e) {
        this.setState(errText(e));
        return;
      }
      if (this.file !== mine) return;
      const la = f.listeningAudio;
      if (!la || la.status === "COMPLETED" || la.status === "FAILED") {
        this.open(f, { autoplay });
        return;
      }
    }
  }

  async loadPeaks(id) {
    const mine = this.file;
    try {
      const p = await api.get(api.fileUrl(id, "/listening-audio/peaks"));
      if (this.file !== mine) return;
      this.peaks = p;
    } catch (e) {
      // old listening audio has none: a plain bar still seeks
      if (this.file === mine) this.peaks = null;
    }
    this.wave.dataset.peaks = this.peaks ? String(this.peaks.count) : "0";
    this.update();
  }

  ready() {
    const d = this.duration();
    if (this.pendingSeek !== null && d) {
      const t = this.pendingSeek;
      this.pendingSeek = null;
      if (t < d - 1) {
        this.audio.currentTime = t;
        notify(`Resumed at ${fmtTime(t)}`, { ms: 3000 });
      }
    }
    this.update();
  }

  toggle() {
    if (!this.file || !this.audio.src) return;
    if (this.audio.error) {
      // after a failure the element needs its source loaded again
      const t = this.audio.currentTime;
      this.audio.load();
      if (t > 0) this.pendingSeek = t;
      this.setState("Loading\u2026");
    }
    if (this.audio.paused) this.audio.play().catch(() => {});
    else this.audio.pause();
  }

  seek(t) {
    const d = this.duration();
    if (!this.file) return;
    if (d) t = Math.min(Math.max(0, t), d);
    if (this.audio.readyState < 1) {
      this.pendingSeek = t;
      return;
    }
    this.audio.currentTime = t;
    this.update();
  }

  seekBy(delta) {
    this.seek((this.audio.currentTime || 0) + delta);
  }

  seekFraction(f) {
    const d = this.duration();
    if (d) this.seek(Math.min(Math.max(f, 0), 1) * d);
  }

  setSpeed(r) {
    if (!SPEEDS.includes(r)) return;
    this.speed = r;
    this.audio.playbackRate = r;
    this.audio.defaultPlaybackRate = r;
    $("p-speed").value = String(r);
    store(SPEED_KEY, r);
  }

  stepSpeed(dir) {
    const i = SPEEDS.indexOf(this.speed) + dir;
    if (i >= 0 && i < SPEEDS.length) {
      this.setSpeed(SPEEDS[i]);
      notify(`Speed ${SPEEDS[i]}\u00d7`, { ms: 1500 });
    }
  }

  // The position, at most once a second while playing.
  remember(now) {
    if (!this.file || this.audio.readyState < 1) return;
    const t = this.audio.currentTime;
    if (!now && Math.abs(t - this.savedAt) < 1) return;
    this.savedAt = t;
    store(POS_KEY + this.file.id, t > 1 ? t.toFixed(1) : null);
  }

  stop() {
    clearTimeout(this.poll);
    if (this.file) this.remember(true);
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    delete this.wave.dataset.peaks;
  }

  close() {
    this.stop();
    this.file = null;
    this.el.hidden = true;
    document.body.classList.add("no-player");
    this.onChange(null);
  }

  update() {
    const a = this.audio;
    const d = this.duration();
    const t = a.currentTime || 0;
    const playing = !a.paused && !a.ended;
    const btn = $("p-play");
    btn.textContent = playing ? "\u275a\u275a" : "\u25b6";
    btn.setAttribute("aria-label", playing ? "Pause" : "Play");
    $("p-cur").textContent = fmtTime(t);
    $("p-dur").textContent = fmtTime(d);
    this.wave.setAttribute("aria-valuemax", String(Math.round(d)));
    this.wave.setAttribute("aria-valuenow", String(Math.round(t)));
    this.wave.setAttribute("aria-valuetext", `${fmtTime(t)} of ${fmtTime(d)}`);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  // Bars of the peaks (or a plain bar), played part in the accent colour.
  draw() {
    if (!this.file) return; // closed: nothing to draw (nor to lay out for)
    const c = this.canvas;
    const rect = this.wave.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(rect.width * dpr));
    const hgt = Math.max(1, Math.round(rect.height * dpr));
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
    }
    const g = c.getContext("2d");
    const css = getComputedStyle(document.documentElement);
    const base = css.getPropertyValue("--wave").trim() || "#7a8a9e";
    const played = css.getPropertyValue("--wave-played").trim() || "#0a58c2";
    g.clearRect(0, 0, w, hgt);
    const d = this.duration();
    const at = d ? Math.min(1, (this.audio.currentTime || 0) / d) * w : 0;
    const p = this.peaks;
    if (!p || !p.count) {
      g.fillStyle = base;
      g.fillRect(0, hgt / 2 - dpr, w, 2 * dpr);
      g.fillStyle = played;
      g.fillRect(0, hgt / 2 - 2 * dpr, at, 4 * dpr);
      return;
    }
    const step = Math.max(1, Math.round(2 * dpr)); // a bar per 2 CSS px
    for (let x = 0; x < w; x += step) {
      const i0 = Math.floor((x / w) * p.count);
      const i1 = Math.max(i0 + 1, Math.floor(((x + step) / w) * p.count));
      let v = 0;
      for (let i = i0; i < i1 && i < p.count; i++) v = Math.max(v, p.peaks[i]);
      const bh = Math.max(dpr, Math.pow(v / 255, 0.7) * (hgt - 4 * dpr));
      g.fillStyle = x < at ? played : base;
      g.fillRect(x, (hgt - bh) / 2, Math.max(1, step - dpr), bh);
    }
  }
}
