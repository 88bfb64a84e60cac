// vidroute search page: calls /v1/search, draws the routing weights and the hits. Text is only ever set with
// textContent (never innerHTML), so nothing from a query or an index can inject markup.
"use strict";

const COLORS = {
  visual: "#3b82f6",
  audio: "#f59e0b",
  transcription: "#10b981",
  metadata: "#a855f7",
  bm25: "#ec4899",
};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function color(signal) {
  return COLORS[signal] || "#64748b";
}

function pct(x) {
  return `${Math.round(Math.max(0, Math.min(1, x)) * 100)}%`;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function bar(signal, value, { label, small } = {}) {
  const shown = label ?? value.toFixed(2);
  return el(
    "div",
    { class: small ? "bar small" : "bar", "data-signal": signal, title: `${signal}: ${shown}` },
    el("span", { class: "bar-label", text: signal }),
    el(
      "span",
      { class: "bar-track" },
      el("span", { class: "bar-fill", style: { width: pct(value), background: color(signal) } }),
    ),
    el("span", { class: "bar-value", text: shown }),
  );
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function renderRouting(data) {
  // The router's weights over every signal; a signal fusion did not use (weight under the skip threshold, or
  // no vector for it in this index) is dimmed.
  const route = data.route;
  const used = data.weights || {};
  const weights = route ? route.weights : used;
  const container = $("weights");
  container.replaceChildren(
    ...Object.entries(weights).map(([signal, w]) => {
      const row = bar(signal, w, { label: pct(w) });
      if (!(signal in used)) {
        row.classList.add("unused");
        row.title = `${signal}: ${pct(w)} (not used in this search)`;
      }
      return row;
    }),
  );
  let dominant = route ? route.dominant : null;
  if (!dominant) {
    const entries = Object.entries(weights);
    dominant = entries.length ? entries.reduce((a, b) => (b[1] > a[1] ? b : a))[0] : "—";
  }
  const badge = $("dominant");
  badge.textContent = dominant;
  badge.style.background = color(dominant);
  $("confidence").textContent = route ? pct(route.confidence) : "n/a (weights given)";
  $("escalated").hidden = !(route && route.escalated);
  const routeMs = data.timings && data.timings.route_ms;
  const parts = [];
  if (routeMs !== undefined) parts.push(`routing ${routeMs.toFixed(1)} ms`);
  parts.push(`total ${data.latency_ms.toFixed(0)} ms`);
  if (route && route.model) parts.push(route.model);
  $("timing").textContent = parts.join(" · ");
  $("routing").hidden = false;
}

function play(hit) {
  if (!hit.media_url) return;
  const video = $("player");
  const start = Math.max(0, hit.start);
  // Media fragment: the browser fetches with Range requests and starts at the segment.
  video.src = `${hit.media_url}#t=${start.toFixed(2)},${hit.end.toFixed(2)}`;
  video.addEventListener(
    "loadedmetadata",
    () => {
      if (Math.abs(video.currentTime - start) > 0.5) video.currentTime = start;
    },
    { once: true },
  );
  $("player-title").textContent = `${hit.title || hit.filename} · ${clock(hit.start)}–${clock(hit.end)}`;
  $("player-panel").hidden = false;
  video.play().catch(() => {});
  $("player-panel").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function renderHit(hit, rank) {
  const thumb = hit.keyframe_url
    ? el("img", { class: "thumb", src: hit.keyframe_url, alt: `keyframe at ${clock(hit.start)}`, loading: "lazy" })
    : el("div", { class: "thumb placeholder", text: "no keyframe" });
  const thumbButton = el(
    "button",
    { type: "button", class: "thumb-btn", "aria-label": `play from ${clock(hit.start)}` },
    thumb,
    el("span", { class: "time", text: `${clock(hit.start)}–${clock(hit.end)}` }),
  );
  if (hit.media_url) thumbButton.addEventListener("click", () => play(hit));
  else thumbButton.disabled = true;

  const scores = el(
    "div",
    { class: "bars scores", "aria-label": "per-signal scores" },
    ...Object.entries(hit.scores || {}).map(([signal, s]) => bar(signal, s, { small: true })),
  );
  const body = el(
    "div",
    { class: "hit-body" },
    el(
      "div",
      { class: "hit-head" },
      el("span", { class: "rank", text: `#${rank}` }),
      el("span", { class: "hit-title", text: hit.title || hit.filename }),
      el("span", { class: "score", text: `score ${hit.score.toFixed(3)}` }),
    ),
    el("div", { class: "hit-meta muted small", text: `${hit.filename} · ${clock(hit.start)}–${clock(hit.end)}` }),
    hit.transcript ? el("p", { class: "transcript", text: `“${hit.transcript}”` }) : null,
    scores,
  );
  return el("li", { class: "hit", "data-segment": hit.segment_id }, thumbButton, body);
}

function renderResults(data) {
  $("summary").textContent = data.count
    ? `${data.count} result${data.count === 1 ? "" : "s"} for “${data.query}”`
    : `No results for “${data.query}”.`;
  $("results").replaceChildren(...data.data.map((hit, i) => renderHit(hit, i + 1)));
}

async function search(query) {
  const k = Number($("k").value);
  const fusion = $("fusion").value;
  const button = $("search-btn");
  button.disabled = true;
  document.body.classList.add("busy");
  showError("");
  try {
    const response = await fetch("/v1/search", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ query, k, fusion }),
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      const message = payload && payload.error ? payload.error.message : `HTTP ${response.status}`;
      throw new Error(message);
    }
    renderRouting(payload);
    renderResults(payload);
  } catch (err) {
    showError(`Search failed: ${err.message}`);
  } finally {
    button.disabled = false;
    document.body.classList.remove("busy");
  }
}

async function checkStatus() {
  const status = $("status");
  try {
    const response = await fetch("/readyz");
    const body = await response.json();
    status.textContent = response.ok ? "ready" : "not ready";
    status.className = response.ok ? "status ok" : "status bad";
    if (!response.ok) status.title = JSON.stringify(body.checks || {});
  } catch (_) {
    status.textContent = "offline";
    status.className = "status bad";
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const query = $("q").value.trim();
  if (!query) return;
  const url = new URL(window.location.href);
  url.searchParams.set("q", query);
  window.history.replaceState(null, "", url);
  search(query);
});

$("player-close").addEventListener("click", () => {
  const video = $("player");
  video.pause();
  video.removeAttribute("src");
  video.load();
  $("player-panel").hidden = true;
});

checkStatus();
const initial = new URL(window.location.href).searchParams.get("q");
if (initial) {
  $("q").value = initial;
  search(initial);
}
