// The store dashboard's page: it listens to the dashboard's Server-Sent Events and
// draws the camera tiles, the charts (uPlot), the alert feed and the health panel.
// Colours come from the dashboard (client/palette), never from here.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";
const page = { hello: null, history: [], tiles: {}, charts: {}, colors: {}, types: {}, seenAlerts: new Set(), since: Date.now() };

function el(tag, attrs = {}, ...kids) {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  e.append(...kids);
  return e;
}

function ink(hex) { // black text on light colours, white on dark (as the CLI's --draw)
  const n = parseInt(hex.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
  return 299 * r + 587 * g + 114 * b > 160000 ? "#000" : "#fff";
}

// drawBoxes fills an <svg> with the detections of a w x h frame.
function drawBoxes(svg, w, h, dets) {
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const fs = Math.max(12, Math.round(h / 13)), stroke = Math.max(2, Math.round(h / 160));
  for (const d of dets || []) {
    const [x0, y0, x1, y1] = d.box, c = page.types[d.type] || page.types.other;
    svg.append(el("svg:rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: c, "stroke-width": stroke }));
    const text = d.label || d.type, tw = text.length * fs * 0.6 + 8;
    const ty = y0 - fs - 4 >= 0 ? y0 - fs - 4 : y0;
    const tx = Math.min(Math.max(0, x0), w - tw);
    svg.append(el("svg:rect", { x: tx, y: ty, width: tw, height: fs + 4, fill: c, class: "label" }));
    svg.append(el("svg:text", { x: tx + 4, y: ty + fs - 1, fill: ink(c), "font-size": fs, text }));
  }
}

// ---- camera tiles ----

function makeTile(cam) {
  const t = $("#tile-tpl").content.firstElementChild.cloneNode(true);
  t.dataset.camera = cam.name;
  $(".name", t).textContent = cam.name;
  $(".name", t).title = cam.source;
  $("#cameras").append(t);
  const tile = { el: t, img: $("img", t), svg: $("svg", t), loading: false, next: null, shown: 0 };
  page.tiles[cam.name] = tile;
  page.charts[cam.name] = makeChart($(".chart", t), 90, cam.name);
}

// showFrame loads a tile's newest frame; frames that arrive while one loads replace
// each other, so a slow browser shows fewer frames rather than older ones.
function showFrame(name, v) {
  const tile = page.tiles[name];
  if (!tile) return;
  tile.next = v;
  if (tile.loading) return;
  const f = tile.next;
  tile.next = null;
  tile.loading = true;
  const pre = new Image();
  pre.onload = () => {
    tile.img.src = pre.src;
    tile.el.querySelector(".frame").style.aspectRatio = `${f.w} / ${f.h}`;
    drawBoxes(tile.svg, f.w, f.h, f.dets);
    tile.shown = f.id;
    tile.el.dataset.frame = f.id;
    tile.el.dataset.boxes = (f.dets || []).length;
    done();
  };
  pre.onerror = done;
  pre.src = f.src; // names this dashboard process: ids start again at 1 in the next
  function done() {
    tile.loading = false;
    if (tile.next) showFrame(name, tile.next);
  }
}

function updateTiles(cams) {
  for (const [name, s] of Object.entries(cams)) {
    const tile = page.tiles[name];
    if (!tile) continue;
    tile.el.dataset.state = s.state;
    $(".state", tile.el).textContent = s.state;
    $(".fps", tile.el).textContent = s.state === "live" ? `${s.fps.toFixed(1)} fps` : "– fps";
    // lag: capture to answer, of the last answer; age: how old the frame shown is,
    // which keeps growing when answers stop.
    const lag = s.state === "live" ? [`lag ${fmtMS(s.lag_ms)}`] : [];
    $(".lag", tile.el).textContent = [...lag, ...(s.age_ms ? [`age ${fmtMS(s.age_ms)}`] : [])].join(" · ");
    let problem = s.problem || "";
    if (!problem && s.frame_error) problem = `last frame error: ${s.frame_error}`;
    $(".problem", tile.el).textContent = problem;
  }
}

function fmtMS(ms) { return ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`; }

// fmtCount is a chart's axis label, at most four characters: 950, 1.2k, 12k, 120k, 1.2M.
function fmtCount(n) {
  const short = (v, unit) => (v < 10 ? +v.toFixed(1) : Math.round(v)) + unit;
  if (Math.abs(n) < 1000) return String(+n.toFixed(1));
  if (Math.abs(n) < 999500) return short(n / 1000, "k");
  return short(n / 1e6, "M");
}

// ---- charts: stacked areas of the tallies over time ----

function makeChart(container, height, camera) {
  return { container, height, camera, plot: null, cats: "" };
}

// stack returns uPlot data: x, then the cumulative series, largest first, so that each
// filled area drawn over the previous one shows its own band.
function stack(samples, pick, cats) {
  const xs = samples.map(s => s.t / 1000);
  let acc = xs.map(() => 0);
  const cum = cats.map(c => (acc = acc.map((v, i) => v + (pick(samples[i])[c] || 0))));
  return [xs, ...cum.reverse()];
}

function categories() { // every category seen, in the dashboard's order (by garment type, then name)
  const seen = new Set();
  for (const s of page.history) for (const m of Object.values(s.cams)) for (const c of Object.keys(m)) seen.add(c);
  return [...page.order.filter(c => seen.has(c)), ...[...seen].filter(c => !page.order.includes(c)).sort()];
}

function drawChart(ch, cats) {
  const pick = ch.camera ? s => s.cams[ch.camera] || {} : s => {
    const sum = {};
    for (const m of Object.values(s.cams)) for (const [c, n] of Object.entries(m)) sum[c] = (sum[c] || 0) + n;
    return sum;
  };
  const data = stack(page.history, pick, cats);
  const key = cats.join("|") + "/" + cats.map(c => page.colors[c]).join();
  const width = Math.max(200, ch.container.clientWidth);
  if (!ch.plot || ch.cats !== key) {
    if (ch.plot) ch.plot.destroy();
    const series = [{}, ...[...cats].reverse().map(c => {
      const col = page.colors[c] || "#a0a0a0";
      return { label: c, stroke: col, fill: col, width: 1, points: { show: false } };
    })];
    const axis = { stroke: "#fff", grid: { stroke: "#333" }, ticks: { stroke: "#555" }, font: "15px system-ui", size: 36 };
    ch.plot = new uPlot({
      width, height: ch.height, series, legend: { show: false }, cursor: { show: false },
      scales: { x: { time: true, range: (u, lo, hi) => [Math.min(lo, hi - 60), hi] }, y: { range: (u, lo, hi) => [0, Math.max(4, hi)] } },
      axes: [{ ...axis, size: 28 }, { ...axis, size: 48, values: (u, splits) => splits.map(fmtCount) }],
    }, data, ch.container);
    ch.cats = key;
  } else {
    ch.plot.setData(data);
  }
  ch.container.dataset.points = page.history.length;
  ch.container.dataset.total = data.length > 1 ? data[1].reduce((a, b) => Math.max(a, b), 0) : 0;
}

function drawCharts() {
  const cats = categories();
  for (const ch of Object.values(page.charts)) drawChart(ch, cats);
}

new ResizeObserver(() => {
  for (const ch of Object.values(page.charts)) if (ch.plot) ch.plot.setSize({ width: Math.max(200, ch.container.clientWidth), height: ch.height });
}).observe(document.body);

function updateWear(st) {
  const top = $("#top-cats");
  top.replaceChildren(...st.top.slice(0, 5).map(s => el("li", {},
    el("span", { class: "swatch", style: `background:${s.color}` }), el("span", { text: s.name }),
    el("b", { text: `${s.count} · ${Math.round(100 * s.share)}%` }))));
  if (!st.top.length) top.append(el("li", { class: "muted", text: "nothing seen yet" }));
  $("#types").replaceChildren(...st.types.map(s => el("span", { style: `width:${100 * s.share}%;background:${s.color}`, title: s.name })));
  $("#types-legend").replaceChildren(...st.types.map(s => el("li", {},
    el("span", { class: "swatch", style: `background:${s.color}` }), `${s.name} ${Math.round(100 * s.share)}%`)));
}

// ---- alerts ----

function addAlert(a, fresh) {
  if (page.seenAlerts.has(a.seq)) return;
  page.seenAlerts.add(a.seq);
  const thumb = el("div", { class: "thumb" });
  if (a.thumb) {
    thumb.append(el("img", { src: a.thumb, alt: `frame ${a.frame_id} of ${a.camera}` }));
    const svg = el("svg:svg", { preserveAspectRatio: "none", "data-w": a.w, "data-h": a.h });
    drawBoxes(svg, a.w, a.h, a.dets);
    thumb.append(svg);
  }
  const time = new Date(a.time);
  const li = el("li", {
    class: "alert" + (fresh ? " new" : ""), "data-seq": a.seq, "data-camera": a.camera, "data-label": a.label,
    "data-rule": a.rule, "data-frame": a.frame_id, "data-capture-ms": time.getTime(), "data-shown-ms": Date.now(),
  }, thumb, el("div", {},
    el("div", { class: "what" }, `${a.label} at ${a.camera}`, el("span", { class: "badge", text: "NEW" })),
    el("div", { class: "meta", text: `rule ${a.rule} · score ${a.score.toFixed(2)} · ${time.toLocaleTimeString()}` })));
  $("#alerts").prepend(li);
  while ($("#alerts").children.length > 50) $("#alerts").lastElementChild.remove();
  if (fresh) {
    setTimeout(() => li.classList.remove("new"), 10000);
    if ($("#sound").checked) beep();
    if ($("#notify").checked && window.Notification && Notification.permission === "granted") {
      new Notification(`${a.label} at ${a.camera}`, { body: `rule ${a.rule}, score ${a.score.toFixed(2)}`, tag: `atelier-${a.seq}` });
    }
  }
}

let audio;
function beep() {
  audio = audio || new AudioContext();
  const o = audio.createOscillator(), g = audio.createGain();
  o.frequency.value = 880;
  g.gain.setValueAtTime(0.2, audio.currentTime);
  g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
  o.connect(g).connect(audio.destination);
  o.start();
  o.stop(audio.currentTime + 0.4);
}

for (const id of ["sound", "notify"]) { // off by default; the choice is remembered
  const box = $("#" + id);
  box.checked = localStorage.getItem("atelier-" + id) === "on";
  box.addEventListener("change", async () => {
    if (id === "notify" && box.checked && window.Notification && Notification.permission !== "granted") {
      box.checked = (await Notification.requestPermission()) === "granted";
    }
    localStorage.setItem("atelier-" + id, box.checked ? "on" : "off");
  });
}

// ---- health and connection ----

function setConn(state, text) {
  const c = $("#conn");
  c.dataset.state = state;
  c.textContent = text || state;
}

function updateHealth(st) {
  const c = st.conn;
  let text = c.state;
  if (c.state !== "connected" && c.retry_in_s) text += ` · retry in ${Math.ceil(c.retry_in_s)} s`;
  if (!page.streamLost) setConn(c.state, text);
  $("#server").textContent = `atelierd ${page.hello.addr} · ${c.health}`;
  const since = c.since && !c.since.startsWith("0001") ? new Date(c.since).toLocaleTimeString() : "–";
  const rows = [["atelierd", page.hello.addr], ["connection", `${c.state} since ${since}`], ["server health", c.health],
    ["gRPC channel", c.channel], ["alert feed", st.alerts.watching ? "watching" : `not watching${st.alerts.problem ? ": " + st.alerts.problem : ""}`],
    ["open pages", `${st.pages} of ${st.max_pages}${st.pages_refused ? `, ${st.pages_refused} refused` : ""}`]];
  if (c.attempt) rows.splice(2, 0, ["attempt", `${c.attempt}${c.retry_in_s ? `, next in ${c.retry_in_s.toFixed(1)} s` : ""}`]);
  $("#health-list").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
  $("#models").replaceChildren(...(c.models || []).map(m => el("li", { text: `${m.name}: ${m.role}, version ${m.versions.join(", ")}${m.labels ? `, ${m.labels} labels` : ""}` })));
  const problems = [];
  if (page.streamLost) problems.push("Lost the dashboard's event stream; reconnecting…");
  if (c.state !== "connected" && c.problem) problems.push(`${c.problem}. ${c.state === "reconnecting" ? "Reconnecting" : "Retrying"}${c.retry_in_s ? ` in ${Math.ceil(c.retry_in_s)} s` : ""} (attempt ${c.attempt}).`);
  if (page.hello.problem) problems.push(page.hello.problem);
  problems.push(...(st.rule_problems || []));
  for (const [name, s] of Object.entries(st.cameras)) if (s.state === "source error" || s.state === "refused") problems.push(`Camera ${name}: ${s.problem}`);
  $("#problems").replaceChildren(...problems.map(p => el("p", { text: p })));
}

// ---- events ----

function onHello(h) {
  if (page.hello && page.hello.boot !== h.boot) {
    // Another dashboard process (restarted, perhaps with other cameras): its alerts
    // count from 1 again and would pass for ones already shown. Start afresh.
    location.reload();
    return;
  }
  page.hello = h;
  page.history = h.history || [];
  page.types = h.types;
  if (!Object.keys(page.tiles).length) {
    page.charts.store = makeChart($("#store-chart"), 220, "");
    for (const cam of h.cameras) makeTile(cam);
    $("#rules").replaceChildren(...h.rules.map(r => el("li", { text: `${r.camera}: ${r.name} = ${r.categories.join(", ")} (score ≥ ${r.min_score.toFixed(2)}, ${r.min_frames} frames, cooldown ${r.cooldown})` })));
    if (!h.rules.length) $("#rules").append(el("li", { class: "muted", text: "no rules" }));
    $("#window").textContent = `· tallies over ${h.tally_window}`;
  }
  for (const a of [...(h.feed || [])].reverse()) addAlert(a, false);
  page.streamLost = false;
  onState(h.state, false);
}

function onState(st, record) {
  if (record) { // keep --history, as the dashboard does
    page.history.push(st.sample);
    const from = st.sample.t - 1000 * page.hello.history_s;
    page.history = page.history.filter(s => s.t > from);
  }
  page.colors = st.colors || {};
  page.order = st.order || [];
  updateTiles(st.cameras);
  updateWear(st);
  updateHealth(st);
  drawCharts();
}

function connect() {
  const es = page.es = new EventSource("api/events");
  es.addEventListener("hello", e => onHello(JSON.parse(e.data)));
  es.addEventListener("state", e => onState(JSON.parse(e.data), true));
  es.addEventListener("frames", e => { for (const [name, v] of Object.entries(JSON.parse(e.data))) showFrame(name, v); });
  es.addEventListener("alert", e => addAlert(JSON.parse(e.data), true));
  es.addEventListener("alertdets", e => { // the boxes of an alert's frame, when its answer came after the alert
    const d = JSON.parse(e.data), svg = $(`.alert[data-seq="${d.seq}"] svg`);
    if (svg) drawBoxes(svg, +svg.dataset.w, +svg.dataset.h, d.dets);
  });
  es.onerror = async () => {
    page.streamLost = true;
    if (es.readyState !== EventSource.CLOSED) { // the browser reconnects by itself
      setConn("reconnecting", "reconnecting");
      $("#problems").replaceChildren(el("p", { text: "Lost the dashboard's event stream; reconnecting…" }));
      return;
    }
    // The dashboard answered with an error, which EventSource does not retry: find
    // out why, say so, and try again (unless the login was refused).
    const [state, text, retryS] = await whyRefused();
    setConn(state, state);
    $("#problems").replaceChildren(el("p", { text }));
    if (retryS) setTimeout(() => { if (page.es === es) connect(); }, retryS * 1000);
  };
}

// A page the browser keeps in its back/forward cache after the user went elsewhere
// would hold its event stream, and its place under --max-pages, until evicted: it
// lets go of it, and connects again if it is shown again.
addEventListener("pagehide", () => { if (page.es) page.es.close(); page.es = null; });
addEventListener("pageshow", e => { if (e.persisted && !page.es) connect(); });

// whyRefused asks the dashboard why the event stream was refused: the login (401),
// too many open pages (--max-pages), or something else.
async function whyRefused() {
  try {
    const r = await fetch("api/pages", { cache: "no-store" });
    if (r.status === 401) {
      return ["login refused", "The dashboard refused this login (the user was removed or its password changed). Reload the page to log in again.", 0];
    }
    if (r.ok) {
      const p = await r.json();
      if (p.open >= p.max) {
        return ["too many open pages", `Cannot connect: too many open pages (the dashboard serves ${p.max} at once). Close another dashboard tab or window; trying again in 5 s…`, 5];
      }
    }
  } catch (e) { /* the dashboard is unreachable: the generic message below */ }
  return ["reconnecting", "Cannot connect to the dashboard's event stream; trying again in 5 s…", 5];
}

connect();
