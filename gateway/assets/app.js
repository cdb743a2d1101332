// videocounter dashboard: plain JavaScript, no build step.
// State flows one way: the server's windows and status land in `state`,
// and `render*` functions draw the page from it.
"use strict";

const WATCHED_KEY = "videocounter.watched";
// The per-video rates a load test replaced, so stopping it puts them back.
const LOAD_TEST_KEY = "videocounter.ratesBeforeLoadTest";
const CHART_WINDOWS = 15;
const RECENT = 12;

const state = {
  windowTypes: ["1min", "5min", "10min"],
  watched: [],            // video ids, in card order
  windows: new Map(),     // video -> type -> Map(window_start -> {count, window_start, window_end})
  rates: {},              // per-video generator rates (likes/min)
  paused: null,           // the per-video rates a running load test replaced
  generator: null,        // last GET /generator
  recent: null,           // last `recent` event: the most recently counted videos
  clockSkew: 0,           // server now - browser now, ms
  feed: null,             // EventSource
  feedState: "connecting",
};

const $ = (sel, root = document) => root.querySelector(sel);

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text }; }
  if (!res.ok) {
    const err = new Error((data && data.error) || `${method} ${path}: HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;
const serverNow = () => Date.now() + state.clockSkew;

// ---- messages -------------------------------------------------------------

let messageTimer = null;
function say(text, kind = "info") {
  const el = $("#message");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(messageTimer);
  messageTimer = setTimeout(() => { el.hidden = true; }, kind === "error" ? 8000 : 3000);
}

// ---- window labels ----------------------------------------------------------

function typeMillis(type) {
  const m = /^(\d+)(min|s|ms)$/.exec(type);
  if (!m) return Number.MAX_SAFE_INTEGER;
  return Number(m[1]) * { min: 60000, s: 1000, ms: 1 }[m[2]];
}

function typeShort(type) {
  const m = /^(\d+)min$/.exec(type);
  return m ? `${m[1]}′` : type;
}

function sortedTypes() {
  const seen = new Set(state.windowTypes);
  for (const byType of state.windows.values()) for (const t of byType.keys()) seen.add(t);
  return [...seen].sort((a, b) => typeMillis(a) - typeMillis(b));
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const numberFmt = new Intl.NumberFormat();

// ---- counts -----------------------------------------------------------------

function windowsOf(video, type) {
  let byType = state.windows.get(video);
  if (!byType) state.windows.set(video, (byType = new Map()));
  let wins = byType.get(type);
  if (!wins) byType.set(type, (wins = new Map()));
  return wins;
}

function applyRecord(rec) {
  windowsOf(rec.video_uid, rec.type).set(rec.window_start, {
    count: rec.count, window_start: rec.window_start, window_end: rec.window_end,
  });
}

/** The count of the window that contains now; 0 once it has ended. */
function currentCount(video, type) {
  const now = serverNow();
  const size = typeMillis(type);
  const wins = state.windows.get(video)?.get(type);
  if (!wins) return { count: 0, start: Math.floor(now / size) * size };
  for (const w of wins.values()) {
    if (w.window_start <= now && now < w.window_end) return { count: w.count, start: w.window_start };
  }
  return { count: 0, start: Math.floor(now / size) * size };
}

// ---- live feed ----------------------------------------------------------------

// One stream carries everything the page shows: the watched videos' windows
// (it opens with the kept ones), every change to them, and the recently
// counted list, so the cards and the list always agree.
function connectFeed() {
  if (state.feed) state.feed.close();
  const videos = state.watched.length ? `&videos=${state.watched.map(enc).join(",")}` : "";
  const src = new EventSource(`/events?recent=${RECENT}${videos}`);
  state.feed = src;
  setFeedState("connecting");
  src.onopen = () => setFeedState("live");
  src.onerror = () => setFeedState(src.readyState === EventSource.CLOSED ? "down" : "connecting");
  src.addEventListener("count", (ev) => {
    applyRecord(JSON.parse(ev.data));
    scheduleRender();
  });
  src.addEventListener("recent", (ev) => {
    state.recent = JSON.parse(ev.data);
    scheduleRender();
  });
  // Fell behind: a new stream starts over from the kept windows.
  src.addEventListener("resync", connectFeed);
}

function setFeedState(s) {
  state.feedState = s;
  const pill = $("#status-feed");
  pill.dataset.state = { live: "ok", idle: "unknown", connecting: "warn", down: "bad" }[s];
  $("b", pill).textContent = s;
}

// ---- cards ------------------------------------------------------------------

function saveWatched() {
  localStorage.setItem(WATCHED_KEY, JSON.stringify(state.watched));
}

function watch(video, { persist = true } = {}) {
  if (state.watched.includes(video)) return false;
  state.watched.push(video);
  if (persist) saveWatched();
  buildCard(video);
  return true;
}

function unwatch(video) {
  state.watched = state.watched.filter((v) => v !== video);
  saveWatched();
  cardOf(video)?.remove();
  connectFeed();
  scheduleRender();
}

function cardOf(video) {
  return [...document.querySelectorAll("#cards .card")].find((c) => c.dataset.video === video);
}

function buildCard(video) {
  const card = $("#card-template").content.firstElementChild.cloneNode(true);
  card.dataset.video = video;
  $(".video-id", card).textContent = video;
  $(".video-id", card).title = video;
  $(".remove", card).addEventListener("click", () => unwatch(video));
  $(".like", card).addEventListener("click", () => like(video, card));
  const rate = $(".rate-input", card);
  rate.value = state.rates[video] ?? "";
  rate.addEventListener("change", () => setRate(video, rate.value));
  $("#cards").append(card);
}

async function like(video, card) {
  const button = $(".like", card);
  button.disabled = true;
  try {
    await api("POST", `/videos/${enc(video)}/likes`);
    card.classList.remove("liked");
    void card.offsetWidth; // restart the animation
    card.classList.add("liked");
  } catch (e) {
    say(`Like for ${video} failed: ${e.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function renderCard(card, types) {
  const video = card.dataset.video;
  const box = $(".windows", card);
  if (box.dataset.types !== types.join(",")) {
    box.replaceChildren(...types.map((t) => {
      const cell = document.createElement("div");
      cell.className = "window";
      cell.dataset.window = t;
      cell.innerHTML = '<span class="value" data-count="0">0</span>' +
        '<span class="caption"><span class="caption-type"></span><span class="caption-since"></span></span>';
      return cell;
    }));
    box.dataset.types = types.join(",");
  }
  for (const cell of box.children) {
    const t = cell.dataset.window;
    const { count, start } = currentCount(video, t);
    const value = $(".value", cell);
    const text = numberFmt.format(count);
    if (value.textContent !== text) {
      value.textContent = text;
      value.dataset.count = String(count);
      cell.classList.remove("bump");
      void cell.offsetWidth;
      cell.classList.add("bump");
    }
    $(".caption-type", cell).textContent = typeShort(t);
    $(".caption-since", cell).textContent = `since ${timeFmt.format(new Date(start))}`;
  }
  renderChart(card, video, types[0]);
  const rate = $(".rate-input", card);
  const paused = state.paused !== null;
  rate.disabled = paused;
  rate.title = paused ? "Paused while the load test runs; Stop load test puts it back" : "";
  if (document.activeElement !== rate) rate.value = (paused ? state.paused[video] : state.rates[video]) ?? "";
}

/** Bars of the last CHART_WINDOWS windows of the smallest size; the current one highlighted. */
function renderChart(card, video, type) {
  const svg = $(".chart", card);
  const size = typeMillis(type);
  const now = serverNow();
  const currentStart = Math.floor(now / size) * size;
  const wins = state.windows.get(video)?.get(type) ?? new Map();
  const bars = [];
  for (let i = CHART_WINDOWS - 1; i >= 0; i--) {
    const start = currentStart - i * size;
    bars.push({ start, count: wins.get(start)?.count ?? 0, current: i === 0 });
  }
  const max = Math.max(1, ...bars.map((b) => b.count));
  const W = 300, H = 84, gap = 4, bw = (W - gap * (CHART_WINDOWS - 1)) / CHART_WINDOWS;
  const ns = "http://www.w3.org/2000/svg";
  const nodes = [];
  for (const frac of [0.5, 1]) {
    const line = document.createElementNS(ns, "line");
    const y = H - 2 - (H - 14) * frac;
    Object.entries({ x1: 0, x2: W, y1: y, y2: y, class: "grid" }).forEach(([k, v]) => line.setAttribute(k, v));
    nodes.push(line);
  }
  bars.forEach((b, i) => {
    const h = b.count === 0 ? 1.5 : Math.max(3, ((H - 14) * b.count) / max);
    const rect = document.createElementNS(ns, "rect");
    Object.entries({
      x: i * (bw + gap), y: H - 2 - h, width: bw, height: h, rx: 2.5,
      class: b.current ? "bar current" : "bar",
    }).forEach(([k, v]) => rect.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${timeFmt.format(new Date(b.start))}: ${numberFmt.format(b.count)} likes`;
    rect.append(title);
    nodes.push(rect);
  });
  const peak = document.createElementNS(ns, "text");
  Object.entries({ x: 0, y: 9, class: "peak" }).forEach(([k, v]) => peak.setAttribute(k, v));
  peak.textContent = `max ${numberFmt.format(max)}`;
  nodes.push(peak);
  svg.replaceChildren(...nodes);
  svg.setAttribute("aria-label", `Likes per ${typeShort(type)} window, last ${CHART_WINDOWS}`);
  $(".axis-start", card).textContent = timeFmt.format(new Date(bars[0].start));
  $(".axis-caption", card).textContent = `likes per ${typeShort(type)} window`;
  $(".axis-end", card).textContent = "now";
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const types = sortedTypes();
    document.querySelectorAll("#cards .card").forEach((c) => renderCard(c, types));
    $("#empty").hidden = state.watched.length > 0;
    renderKnown(types[0]);
  });
}

// ---- generator --------------------------------------------------------------

function savedRates() {
  try { return JSON.parse(localStorage.getItem(LOAD_TEST_KEY) || "null"); } catch { return null; }
}

const plural = (n, word) => `${numberFmt.format(n)} ${word}${n === 1 ? "" : "s"}`;

function applyGenerator(g) {
  state.generator = g;
  const loadTest = g.spec.mode === "spread";
  state.rates = loadTest ? {} : { ...g.spec.rates };
  state.paused = loadTest ? (savedRates()?.rates ?? {}) : null;
  const toggle = $("#gen-toggle");
  toggle.textContent = loadTest ? "Stop load test" : g.running ? "Stop" : "Start";
  toggle.classList.toggle("btn-danger", g.running || loadTest);
  toggle.classList.toggle("btn-primary", !g.running && !loadTest);
  const rate = numberFmt.format(Math.round(g.total_per_minute));
  const what = loadTest
    ? `${plural(g.videos, "video")} (${g.spec.distribution})`
    : plural(g.videos, "video");
  $("#gen-summary").textContent =
    `${loadTest ? "load test " : ""}${g.running ? "running" : "stopped"} · ${rate} likes/min over ${what} · ` +
    `${numberFmt.format(g.sent)} sent` + (g.failed ? ` · ${numberFmt.format(g.failed)} failed` : "");
  $("#gen-summary").dataset.running = String(g.running);
  $("#gen-summary").dataset.mode = g.spec.mode;
  renderSpreadNote();
  scheduleRender();
}

/** What Run will do, said before it does it. */
function renderSpreadNote() {
  const note = $("#spread-note");
  const g = state.generator;
  if (!g) return;
  if (g.spec.mode === "spread") {
    note.textContent = "A load test is on. Stop load test (next to the summary) ends it and puts the per-video rates back.";
    return;
  }
  const rates = Object.values(g.spec.rates).filter((r) => r > 0);
  const total = rates.reduce((a, b) => a + b, 0);
  note.textContent = rates.length
    ? `Sends likes to ids video-1, video-2, … instead of the per-video rates: while it runs, the ` +
      `${plural(rates.length, "video")} with a rate (${numberFmt.format(total)} likes/min) get no generated likes. ` +
      `Stop load test puts their rates back.`
    : "Sends likes to ids video-1, video-2, … until you press Stop load test.";
}

async function setRate(video, value) {
  const rate = value === "" ? 0 : Number(value);
  if (!Number.isFinite(rate) || rate < 0) {
    say("Likes per minute must be a number ≥ 0", "error");
    return;
  }
  const rates = { ...state.rates };
  if (rate === 0) delete rates[video]; else rates[video] = rate;
  try {
    applyGenerator(await api("PUT", "/generator", { mode: "per_video", rates }));
    if (rate > 0 && !state.generator.running) say(`${video}: ${rate} likes/min — press Start to generate`);
  } catch (e) {
    say(e.message, "error");
  }
}

async function toggleGenerator() {
  if (state.generator?.spec.mode === "spread") return stopLoadTest();
  const running = state.generator?.running;
  try {
    applyGenerator(await api("POST", running ? "/generator/stop" : "/generator/start"));
    if (!running && state.generator.total_per_minute === 0) {
      say("The generator runs, but no video has a rate yet: set likes/min on a card");
    }
  } catch (e) {
    say(e.message, "error");
  }
}

async function runSpread(form) {
  const f = new FormData(form);
  const spec = {
    mode: "spread",
    videos: Number(f.get("videos")),
    rate_per_minute: Number(f.get("rate")),
    distribution: f.get("distribution"),
    zipf_s: Number(f.get("s")),
  };
  const before = state.generator;
  if (before && before.spec.mode === "per_video") {
    localStorage.setItem(LOAD_TEST_KEY, JSON.stringify({ rates: { ...before.spec.rates }, running: before.running }));
  }
  try {
    await api("PUT", "/generator", spec);
    applyGenerator(await api("POST", "/generator/start"));
    form.closest("details").open = false;
    say(`Load test: ${plural(spec.videos, "video")}, ${spec.rate_per_minute} likes/min each (${spec.distribution}); ` +
      "Stop load test puts the per-video rates back");
  } catch (e) {
    if (state.generator?.spec.mode !== "spread") localStorage.removeItem(LOAD_TEST_KEY);
    say(e.message, "error");
  }
}

/** Ends a load test: the per-video rates and the running state from before it come back. */
async function stopLoadTest() {
  const saved = savedRates() ?? { rates: {}, running: false };
  try {
    await api("POST", "/generator/stop");
    let g = await api("PUT", "/generator", { mode: "per_video", rates: saved.rates });
    if (saved.running) g = await api("POST", "/generator/start");
    localStorage.removeItem(LOAD_TEST_KEY);
    applyGenerator(g);
    const n = Object.keys(saved.rates).length;
    say(`Load test stopped; ${plural(n, "per-video rate")} restored` +
      (saved.running ? ", generator running again" : ""));
  } catch (e) {
    say(e.message, "error");
  }
}

// ---- status strip and known videos ------------------------------------------

function setPill(id, kind, text, title = "") {
  const pill = $(id);
  pill.dataset.state = kind;
  $("b", pill).textContent = text;
  pill.title = title;
}

function renderStatus(s) {
  state.clockSkew = s.now - Date.now();
  if (s.kafka_reachable === null) setPill("#status-kafka", "unknown", "checking");
  else if (s.kafka_reachable) setPill("#status-kafka", "ok", "reachable");
  else setPill("#status-kafka", "bad", "unreachable", s.kafka_error || "");

  const details = s.workers.map((w) => `${w.url}: ${w.ready === null ? "unknown" : w.ready ? "ready" : "not ready"}`).join("\n");
  if (s.workers_total === 0) setPill("#status-workers", "unknown", "not configured", "Pass --worker-url to the gateway");
  else if (s.checked_at === null) setPill("#status-workers", "unknown", "checking");
  else {
    const kind = s.workers_ready === s.workers_total ? "ok" : s.workers_ready > 0 ? "warn" : "bad";
    setPill("#status-workers", kind, `${s.workers_ready}/${s.workers_total} ready`, details);
  }
  if (s.lag === null) setPill("#status-lag", "unknown", "unknown", "No worker reports its lag");
  else setPill("#status-lag", s.lag > 1000 ? "warn" : "ok", numberFmt.format(Math.round(s.lag)), "Records not yet processed");
  applyGenerator(s.generator);
}

/** A listed video's count in its current `type` window: a watched one's is its card's. */
function knownCount(v, type) {
  if (state.watched.includes(v.video_id)) return currentCount(v.video_id, type).count;
  const w = v.latest[type];
  const now = serverNow();
  return w && w.window_start <= now && now < w.window_end ? w.count : 0;
}

/** The recently counted list, from the feed's latest `recent` event; redrawn in place. */
function renderKnown(type) {
  const data = state.recent;
  if (!data || !type) return;
  $("#known-total").textContent = data.total ? `(${numberFmt.format(data.total)})` : "";
  const list = $("#known-list");
  const ids = JSON.stringify(data.videos.map((v) => v.video_id));
  if (list.dataset.ids !== ids) {
    list.replaceChildren(...data.videos.map((v) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "known-item";
      button.dataset.video = v.video_id;
      const name = document.createElement("span");
      name.className = "known-id";
      name.textContent = v.video_id;
      const count = document.createElement("span");
      count.className = "known-count";
      button.append(name, count);
      button.addEventListener("click", () => { if (watch(v.video_id)) { connectFeed(); scheduleRender(); } });
      li.append(button);
      return li;
    }));
    list.dataset.ids = ids;
  }
  data.videos.forEach((v, i) => {
    const button = list.children[i].firstElementChild;
    button.title = `${v.video_id}: ${state.watched.includes(v.video_id) ? "on the dashboard" : "click to watch"}`;
    const count = knownCount(v, type);
    const text = `${numberFmt.format(count)} in ${typeShort(type)}`;
    const el = $(".known-count", button);
    if (el.textContent !== text) el.textContent = text;
    el.dataset.count = String(count);
  });
}

async function poll() {
  try {
    renderStatus(await api("GET", "/status"));
  } catch (e) {
    setPill("#status-kafka", "unknown", "gateway unreachable", e.message);
  }
}

// ---- start ------------------------------------------------------------------

async function main() {
  try {
    const config = await api("GET", "/config");
    if (Array.isArray(config.window_types) && config.window_types.length) state.windowTypes = config.window_types;
  } catch (e) {
    say(`Cannot read the gateway configuration: ${e.message}`, "error");
  }
  try {
    applyGenerator(await api("GET", "/generator"));
  } catch (e) {
    say(e.message, "error");
  }
  let saved = [];
  try { saved = JSON.parse(localStorage.getItem(WATCHED_KEY) || "[]"); } catch { saved = []; }
  const fromUrl = new URLSearchParams(location.search).getAll("video");
  const initial = [...new Set([...fromUrl, ...saved, ...Object.keys(state.rates)])];
  initial.forEach((v) => watch(v, { persist: false }));
  saveWatched();
  connectFeed();

  $("#add-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = $("#add-input");
    const video = input.value.trim();
    if (!video) return;
    if (!watch(video)) say(`${video} is already on the dashboard`);
    input.value = "";
    connectFeed();
    scheduleRender();
  });
  $("#gen-toggle").addEventListener("click", toggleGenerator);
  $("#spread-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSpread(ev.target); });

  scheduleRender();
  poll();
  setInterval(poll, 2000);
  setInterval(scheduleRender, 1000); // windows roll over even without updates
}

main();
