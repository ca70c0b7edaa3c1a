// Cosmic Horizons dashboard: plain JavaScript, no build step. The job table
// is kept live by the /api/v1/ws stream, which resumes after a disconnect
// from the last stream position it saw (epoch + offset) and reloads over
// REST when the server answers with a resync notice.
"use strict";

const $ = (id) => document.getElementById(id);
const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED"];
const state = {
  jobs: new Map(),     // id -> job (REST shape)
  pos: null,           // last stream position {epoch, offset}
  ws: null,
  retry: null,
  cfg: { aladin_url: "", hips: "NRAO/P/VLASS-Quicklook-MedianStack", hips_fallback: "P/DSS2/color" },
  detail: null,        // id of the job shown in the detail view
  heat: [],            // GPU usage samples for the heatmap
  metrics: [],         // parsed /metrics samples for the charts
  timers: [],
};

$("token").value = sessionStorage.getItem("horizons-token") || "";
function token() { return $("token").value.trim(); }

async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: { "Authorization": "Bearer " + token(), "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error || {};
    const err = new Error(res.status + " " + (e.field ? e.field + ": " : "") + (e.message || res.statusText));
    err.status = res.status; err.field = e.field || ""; err.detail = e.message || res.statusText;
    throw err;
  }
  return data;
}

function showErr(e) { $("err").textContent = e ? e.message : ""; }
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") n.className = v; else if (k === "text") n.textContent = v; else n.setAttribute(k, v);
  }
  n.append(...kids);
  return n;
}
function fmtTime(t) { return (t || "").replace("T", " ").slice(0, 19); }
function pct(p) { return Math.max(0, Math.min(100, Number(p) || 0)); }

// ---- views -----------------------------------------------------------------

function route() {
  const h = location.hash || "#/";
  let view = "jobs";
  state.detail = null;
  if (h.startsWith("#/job/")) { view = "job"; state.detail = decodeURIComponent(h.slice(6)); }
  else if (h === "#/sky") view = "sky";
  else if (h === "#/workflows") view = "workflows";
  else if (h === "#/cluster") view = "cluster";
  else if (h === "#/admin") view = "admin";
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + view;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === view || (view === "job" && a.dataset.view === "jobs"));
  state.timers.forEach(clearInterval); state.timers = [];
  if (!token()) return;
  if (view === "job") showJob(state.detail).catch(showErr);
  if (view === "sky") showSky().catch(showErr);
  if (view === "workflows") showWorkflows();
  if (view === "cluster") { pollCluster(); state.timers.push(setInterval(pollCluster, 2000)); }
  if (view === "admin") showAdmin();
}

// ---- job table ---------------------------------------------------------------

function renderJobs() {
  const rows = [...state.jobs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  const tb = $("jobs");
  tb.replaceChildren();
  for (const j of rows) {
    const tr = el("tr", { "data-job": j.id, "data-state": j.state });
    const cell = (content, cls) => { const td = el("td", cls ? { class: cls } : {}); td.append(content); tr.append(td); return td; };
    cell(el("a", { href: "#/job/" + j.id, title: j.id, text: j.id.slice(0, 8) }), "id");
    cell(j.agent || ""); cell(j.dataset_id || ""); cell(String(j.gpus ?? ""));
    cell(j.state || "", "state " + (j.state || ""));
    const bar = el("span", { class: "bar", role: "progressbar", "aria-valuenow": String(pct(j.progress)) }, el("span", { style: "width:" + pct(j.progress) + "%" }));
    cell(bar).append(" " + Math.round(pct(j.progress)) + "%");
    cell(String(j.attempts ?? "")); cell(fmtTime(j.updated_at)); cell(j.error || "");
    const act = cell("");
    if (!TERMINAL.includes(j.state)) {
      const b = el("button", { text: "Cancel" });
      b.onclick = () => api("POST", "/api/v1/jobs/" + j.id + "/cancel").then(upsert).catch(showErr);
      act.append(b);
    }
    tb.append(tr);
  }
}

function upsert(j) { const old = state.jobs.get(j.id) || {}; state.jobs.set(j.id, Object.assign(old, j)); renderJobs(); }

// An event carries a snapshot of its job; apply it only if it is newer.
function applyEvent(ev) {
  const d = ev.data || {};
  const j = state.jobs.get(ev.subject) || { id: ev.subject, created_at: ev.time };
  if ((j._seq || 0) >= ev.sequence) return;
  Object.assign(j, {
    agent: d.agent, dataset_id: d.dataset_id, gpus: d.gpus, state: d.state, progress: d.progress,
    attempts: d.attempt, error: d.error || (d.state === "FAILED" ? d.reason : j.error) || "", updated_at: ev.time, _seq: ev.sequence,
  });
  if (d.result) j._result = d.result;
  state.jobs.set(j.id, j);
  renderJobs();
  if (state.detail === ev.subject) { addTimeline(ev); renderDetail(j); }
}

async function loadJobs() {
  const page = await api("GET", "/api/v1/jobs?limit=200");
  state.jobs.clear();
  page.jobs.forEach((j) => state.jobs.set(j.id, j));
  renderJobs();
}

// ---- live stream with resume ------------------------------------------------------

function openStream() {
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  let url = proto + location.host + "/api/v1/ws?token=" + encodeURIComponent(token());
  if (state.pos) url += "&epoch=" + encodeURIComponent(state.pos.epoch) + "&offset=" + state.pos.offset;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.stream) state.pos = msg.stream;
    if (msg.type === "stream.connected") { setStatus("live", msg.resumed ? "live (resumed, " + msg.replayed + " replayed)" : "live"); return; }
    if (msg.type === "stream.resync") { setStatus("live", "live (resynced)"); loadJobs().catch(showErr); return; }
    if (msg.type.startsWith("workflow.")) { applyRunEvent(msg); return; }
    if (msg.type.startsWith("job.")) applyEvent(msg);
  };
  ws.onclose = () => { setStatus("", "disconnected, retrying"); state.retry = setTimeout(openStream, 2000); };
}

function setStatus(cls, text) { const s = $("status"); s.className = "status " + cls; s.textContent = text; }

async function connect() {
  sessionStorage.setItem("horizons-token", token());
  showErr(null);
  clearTimeout(state.retry);
  state.pos = null;
  try { await loadJobs(); } catch (e) { showErr(e); setStatus("", "not connected"); return; }
  openStream();
  route();
}

// ---- submission form with validation ------------------------------------------------

function fieldMsg(field, text) {
  for (const m of document.querySelectorAll("#submit-form .msg")) {
    if (m.dataset.for === field) m.textContent = text;
  }
  const input = document.querySelector('#submit-form [name="' + field + '"]');
  if (input) input.classList.toggle("invalid", !!text);
}

function clearMsgs() { for (const m of document.querySelectorAll("#submit-form .msg")) fieldMsg(m.dataset.for, ""); }

// validateForm returns the request body, or null after showing a message
// next to each bad field. The server checks again and its field errors are
// shown the same way.
function validateForm() {
  clearMsgs();
  let ok = true;
  const bad = (f, t) => { fieldMsg(f, t); ok = false; };
  const dataset = $("dataset").value.trim();
  if (!dataset) bad("dataset_id", "dataset is required");
  const gpus = Number($("gpus").value);
  if ($("gpus").value === "" || !Number.isInteger(gpus) || gpus < 0 || gpus > 64) bad("gpus", "GPUs must be a whole number from 0 to 64");
  const priority = Number($("priority").value);
  if (!Number.isInteger(priority) || priority < -100 || priority > 100) bad("priority", "priority must be a whole number from -100 to 100");
  let params = {};
  try {
    params = JSON.parse($("params").value || "{}");
    if (params === null || typeof params !== "object" || Array.isArray(params)) bad("params", "params must be a JSON object");
  } catch (e) { bad("params", "params is not valid JSON: " + e.message); }
  if (!ok) return null;
  return { agent: $("agent").value, dataset_id: dataset, gpus, priority, params,
    idempotency_key: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random() };
}

$("submit-form").onsubmit = async (ev) => {
  ev.preventDefault();
  showErr(null);
  const body = validateForm();
  if (!body) return;
  try { upsert(await api("POST", "/api/v1/jobs", body)); }
  catch (e) {
    const f = e.field.startsWith("params") ? "params" : ["dataset_id", "gpus", "priority"].includes(e.field) ? e.field : "";
    fieldMsg(f, e.detail || e.message);
  }
};

// ---- job detail ----------------------------------------------------------------

function addTimeline(ev) {
  const ol = $("timeline");
  if (ol.querySelector('[data-event="' + ev.id + '"]')) return;
  const d = ev.data || {};
  let what = ev.type;
  if (ev.type === "job.progress") what += " " + Math.round(pct(d.progress)) + "%";
  if (d.reason) what += ": " + d.reason;
  if (d.error) what += ": " + d.error;
  const li = el("li", { "data-event": ev.id, "data-type": ev.type, "data-seq": String(ev.sequence) }, el("time", { text: fmtTime(ev.time) }), what);
  // Keep sequence order even if a live event overtakes the REST load.
  const after = [...ol.children].find((c) => Number(c.dataset.seq) > ev.sequence);
  ol.insertBefore(li, after || null);
}

function renderDetail(j) {
  $("job-id").textContent = j.id;
  $("job-state").textContent = j.state || "";
  $("job-state").className = j.state || "";
  $("job-progress").firstElementChild.style.width = pct(j.progress) + "%";
  const dl = $("job-fields");
  dl.replaceChildren();
  for (const k of ["agent", "dataset_id", "gpus", "priority", "attempts", "backend", "correlation_id", "created_at", "started_at", "finished_at", "error"]) {
    if (j[k] === undefined || j[k] === null || j[k] === "") continue;
    dl.append(el("dt", { text: k }), el("dd", { text: String(j[k]) }));
  }
  if (j._result) {
    $("outputs").textContent = JSON.stringify(j._result, null, 2);
    drawSky($("job-sky"), positionsOf(j.id, j._result), false, footprintsOf(j.id, j._result, j.params));
  }
}

async function showJob(id) {
  $("timeline").replaceChildren();
  $("outputs").textContent = "(none yet)";
  $("job-sky").replaceChildren();
  state.notes = [];
  const [j, evs] = await Promise.all([api("GET", "/api/v1/jobs/" + encodeURIComponent(id)), api("GET", "/api/v1/jobs/" + encodeURIComponent(id) + "/events")]);
  const cur = Object.assign(state.jobs.get(id) || {}, j);
  for (const ev of evs.events) {
    addTimeline(ev);
    if (ev.data && ev.data.result) cur._result = ev.data.result;
  }
  state.jobs.set(id, cur);
  renderDetail(cur);
  loadAnnotations(id);
  loadSnapshots(id);
}

async function loadAnnotations(id) {
  const ul = $("annotations");
  ul.replaceChildren();
  state.notes = [];
  try {
    const a = await api("GET", "/api/v1/jobs/" + encodeURIComponent(id) + "/annotations");
    state.notes = a.annotations || [];
    for (const n of state.notes) {
      ul.append(el("li", { "data-note": n.id }, n.ra_deg.toFixed(5) + ", " + n.dec_deg.toFixed(5) + (n.detection ? " [" + n.detection + "]" : "") + ": " + n.text + " (" + n.author + ")"));
    }
    if (!ul.children.length) ul.append(el("li", { class: "note", text: "no annotations" }));
  } catch (e) { ul.append(el("li", { class: "note", text: e.status === 404 ? "annotations are not available on this server" : e.message })); }
  const j = state.jobs.get(id);
  if (j && j._result) drawSky($("job-sky"), positionsOf(id, j._result), false, footprintsOf(id, j._result, j.params));
}

function noteMsg(field, text) {
  for (const m of document.querySelectorAll("#note-form .msg")) if (m.dataset.for === field) m.textContent = text;
}

$("note-form").onsubmit = async (ev) => {
  ev.preventDefault();
  for (const m of document.querySelectorAll("#note-form .msg")) m.textContent = "";
  const ra = Number($("note-ra").value), dec = Number($("note-dec").value), text = $("note-text").value.trim();
  let ok = true;
  if ($("note-ra").value === "" || !(ra >= 0 && ra < 360)) { noteMsg("ra_deg", "RA must be 0 to 360 degrees"); ok = false; }
  if ($("note-dec").value === "" || !(dec >= -90 && dec <= 90)) { noteMsg("dec_deg", "Dec must be -90 to 90 degrees"); ok = false; }
  if (!text) { noteMsg("text", "write a note"); ok = false; }
  if (!ok) return;
  try {
    await api("POST", "/api/v1/jobs/" + encodeURIComponent(state.detail) + "/annotations", { ra_deg: ra, dec_deg: dec, detection: $("note-det").value.trim(), text });
    $("note-text").value = "";
    await loadAnnotations(state.detail);
  } catch (e) { noteMsg(e.field || "text", e.detail || e.message); }
};

// pick fills the note form from a clicked marker.
function pick(p) {
  $("note-ra").value = p.ra.toFixed(6);
  $("note-dec").value = p.dec.toFixed(6);
  $("note-det").value = p.kind === "annotation" ? "" : p.name || "";
  $("note-text").focus();
}

async function loadSnapshots(id) {
  const ul = $("snapshots");
  ul.replaceChildren();
  try {
    const l = await api("GET", "/api/v1/jobs/" + encodeURIComponent(id) + "/snapshots");
    for (const sn of l.snapshots) {
      const res = await fetch(sn.url, { headers: { "Authorization": "Bearer " + token() } });
      const img = el("img", { alt: "snapshot " + sn.id, src: URL.createObjectURL(await res.blob()) });
      ul.append(el("li", { "data-snapshot": sn.id }, img, fmtTime(sn.created_at) + " by " + sn.author + ", " + sn.width + "x" + sn.height + ", kept until " + fmtTime(sn.expires_at)));
    }
  } catch (e) { ul.append(el("li", { class: "note", text: e.status === 404 ? "snapshots are not available on this server" : e.message })); }
}

// snapshot renders the job's sky plot to a PNG and saves it with the job.
$("snap").onclick = async () => {
  $("snap-msg").textContent = "";
  const svg = $("job-sky").querySelector("svg");
  if (!svg) { $("snap-msg").textContent = "nothing to save yet"; return; }
  try {
    const clone = svg.cloneNode(true);
    clone.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    clone.setAttribute("width", "1200"); clone.setAttribute("height", "600");
    const style = el("style", { text: "rect{fill:#0b1020} text{fill:#aab;font:10px sans-serif} .sky-marker{fill:none;stroke:#ffcc33;stroke-width:1.5} .sky-marker.transient{stroke:#ff5f56} .sky-marker.annotated{stroke:#5fd7ff}" });
    clone.prepend(style);
    const url = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(new XMLSerializer().serializeToString(clone));
    const img = new Image();
    await new Promise((ok, bad) => { img.onload = ok; img.onerror = () => bad(new Error("cannot render the plot")); img.src = url; });
    const cv = el("canvas", { width: "1200", height: "600" });
    const g = cv.getContext("2d");
    g.fillStyle = "#0b1020"; g.fillRect(0, 0, 1200, 600);
    g.drawImage(img, 0, 0, 1200, 600);
    const blob = await new Promise((ok) => cv.toBlob(ok, "image/png"));
    const res = await fetch("/api/v1/jobs/" + encodeURIComponent(state.detail) + "/snapshots", { method: "POST", headers: { "Authorization": "Bearer " + token(), "Content-Type": "image/png" }, body: blob });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(res.status + " " + ((data.error || {}).message || res.statusText));
    $("snap-msg").textContent = "saved " + data.width + "x" + data.height + " (" + data.bytes + " bytes)";
    await loadSnapshots(state.detail);
  } catch (e) { $("snap-msg").textContent = e.message; }
};

// ---- sky -------------------------------------------------------------------------

// positionsOf finds every object with numeric ra_deg and dec_deg in a result
// document (detections, transients, fields), with the key it came from.
function positionsOf(job, result) {
  const out = [];
  const walk = (v, kind) => {
    if (Array.isArray(v)) { v.forEach((x) => walk(x, kind)); return; }
    if (v && typeof v === "object") {
      if (typeof v.ra_deg === "number" && typeof v.dec_deg === "number") {
        out.push({ job, kind, ra: v.ra_deg, dec: v.dec_deg, name: v.name || v.id || v.kind || "" });
      }
      for (const [k, x] of Object.entries(v)) if (x && typeof x === "object") walk(x, k);
    }
  };
  walk(result, "result");
  return out;
}

// footprintsOf finds imaged fields: a phase centre and, from the result or
// the job's params, image_size x cell_arcsec for the side of the square.
function footprintsOf(job, result, params) {
  const out = [], p = params || {};
  const walk = (v) => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (!v || typeof v !== "object") return;
    if (typeof v.phase_centre_ra_deg === "number" && typeof v.phase_centre_dec_deg === "number") {
      const side = (v.image_size || p.image_size || 0) * (v.cell_arcsec || p.cell_arcsec || 0) / 3600;
      out.push({ job, ra: v.phase_centre_ra_deg, dec: v.phase_centre_dec_deg, size: side > 0 ? side : 0 });
    }
    for (const x of Object.values(v)) if (x && typeof x === "object") walk(x);
  };
  walk(result);
  return out;
}

let aladinLoad = null;
function loadAladin() {
  if (!state.cfg.aladin_url) return Promise.reject(new Error("no Aladin Lite URL configured"));
  if (!aladinLoad) {
    aladinLoad = new Promise((resolve, reject) => {
      const s = el("script", { src: state.cfg.aladin_url });
      const t = setTimeout(() => reject(new Error("Aladin Lite did not load within 8 s")), 8000);
      s.onload = () => { clearTimeout(t); window.A ? resolve(window.A) : reject(new Error("Aladin Lite loaded without its A object")); };
      s.onerror = () => { clearTimeout(t); reject(new Error("cannot load Aladin Lite from " + state.cfg.aladin_url)); };
      document.head.append(s);
    });
  }
  return aladinLoad;
}

async function drawSky(box, pts, useAladin, fps) {
  fps = fps || [];
  if (useAladin) {
    try {
      const A = await loadAladin();
      if (A.init) await A.init;
      box.replaceChildren();
      const c = pts.length ? pts[0] : { ra: 0, dec: 0 };
      const al = A.aladin(box, { survey: state.cfg.hips, fov: 1.5, target: c.ra + " " + c.dec });
      al.on && al.on("error", () => al.setImageSurvey(state.cfg.hips_fallback));
      const cat = A.catalog({ name: "detections", sourceSize: 12, color: "#ffcc33" });
      al.addCatalog(cat);
      cat.addSources(pts.map((p) => A.source(p.ra, p.dec, { name: p.name, kind: p.kind, job: p.job })));
      if (fps.length && A.graphicOverlay && A.polygon) {
        const ov = A.graphicOverlay({ color: "#5fd7ff", lineWidth: 2 });
        al.addOverlay(ov);
        for (const f of fps.filter((f) => f.size > 0)) {
          const h = f.size / 2, hr = h / Math.max(0.01, Math.cos(f.dec * Math.PI / 180));
          ov.add(A.polygon([[f.ra - hr, f.dec - h], [f.ra + hr, f.dec - h], [f.ra + hr, f.dec + h], [f.ra - hr, f.dec + h]]));
        }
      }
      $("sky-note").textContent = "Aladin Lite over " + state.cfg.hips + " (fallback " + state.cfg.hips_fallback + ")";
      return;
    } catch (e) {
      $("sky-note").textContent = e.message + "; showing the dashboard's own plot of the same " + pts.length + " positions.";
    }
  }
  // On the job's own plot, its annotations are markers too.
  const notes = box.id === "job-sky" ? (state.notes || []).map((n) => ({ job: n.job_id, kind: "annotation", ra: n.ra_deg, dec: n.dec_deg, name: n.text })) : [];
  box.replaceChildren(skySVG(pts.concat(notes), fps));
}

// skySVG plots positions in a box around them: RA grows to the left, as
// on the sky.
function skySVG(pts, fps) {
  fps = (fps || []).filter((f) => f.size > 0);
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 600 300");
  svg.setAttribute("class", "sky-plot");
  svg.setAttribute("data-count", String(pts.length));
  svg.setAttribute("data-footprints", String(fps.length));
  const add = (tag, attrs, text) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; svg.append(n); return n; };
  if (!pts.length) { add("text", { x: 20, y: 30 }, "no positions in the results yet"); return svg; }
  const hw = (f) => f.size / 2 / Math.max(0.01, Math.cos(f.dec * Math.PI / 180));
  let ra0 = Math.min(...pts.map((p) => p.ra), ...fps.map((f) => f.ra - hw(f))), ra1 = Math.max(...pts.map((p) => p.ra), ...fps.map((f) => f.ra + hw(f)));
  let de0 = Math.min(...pts.map((p) => p.dec), ...fps.map((f) => f.dec - f.size / 2)), de1 = Math.max(...pts.map((p) => p.dec), ...fps.map((f) => f.dec + f.size / 2));
  const pad = Math.max(0.05, (ra1 - ra0) * 0.1, (de1 - de0) * 0.1);
  ra0 -= pad; ra1 += pad; de0 -= pad; de1 += pad;
  const x = (ra) => 40 + (ra1 - ra) / (ra1 - ra0) * 540, y = (de) => 280 - (de - de0) / (de1 - de0) * 260;
  add("rect", { x: 40, y: 20, width: 540, height: 260, fill: "none", stroke: "#334" });
  add("text", { x: 40, y: 14 }, "RA " + ra1.toFixed(3) + "°");
  add("text", { x: 520, y: 14 }, "RA " + ra0.toFixed(3) + "°");
  add("text", { x: 2, y: 30 }, de1.toFixed(2) + "°");
  add("text", { x: 2, y: 280 }, de0.toFixed(2) + "°");
  for (const f of fps) {
    const r = add("rect", { x: x(f.ra + hw(f)).toFixed(1), y: y(f.dec + f.size / 2).toFixed(1),
      width: (x(f.ra - hw(f)) - x(f.ra + hw(f))).toFixed(1), height: (y(f.dec - f.size / 2) - y(f.dec + f.size / 2)).toFixed(1), class: "sky-footprint" });
    const t = document.createElementNS(NS, "title");
    t.textContent = "imaged field " + f.size.toFixed(3) + "° around RA " + f.ra.toFixed(4) + " Dec " + f.dec.toFixed(4);
    r.append(t);
  }
  for (const p of pts) {
    const c = add("circle", { cx: x(p.ra).toFixed(1), cy: y(p.dec).toFixed(1), r: 5, class: "sky-marker " + (p.kind === "annotation" ? "annotated" : /transient/i.test(p.kind) ? "transient" : "") });
    c.addEventListener("click", () => pick(p));
    const t = document.createElementNS(NS, "title");
    t.textContent = (p.name ? p.name + " " : "") + "(" + p.kind + ") RA " + p.ra.toFixed(5) + " Dec " + p.dec.toFixed(5);
    c.append(t);
  }
  return svg;
}

async function showSky() {
  const done = [...state.jobs.values()].filter((j) => j.state === "COMPLETED").slice(0, 50);
  const pts = [], fps = [];
  await Promise.all(done.map(async (j) => {
    if (!j._result) {
      const evs = await api("GET", "/api/v1/jobs/" + j.id + "/events").catch(() => ({ events: [] }));
      for (const ev of evs.events) if (ev.data && ev.data.result) j._result = ev.data.result;
    }
    if (j._result) { pts.push(...positionsOf(j.id, j._result)); fps.push(...footprintsOf(j.id, j._result, j.params)); }
  }));
  const tb = $("sky-list");
  tb.replaceChildren();
  for (const p of pts) tb.append(el("tr", {}, el("td", { class: "id" }, el("a", { href: "#/job/" + p.job, text: p.job.slice(0, 8) })), el("td", { text: p.kind }), el("td", { text: p.name }), el("td", { text: p.ra.toFixed(5) }), el("td", { text: p.dec.toFixed(5) })));
  await drawSky($("sky"), pts, true, fps);
}

// ---- workflows: runs, catalogue, builder ------------------------------------

const runs = new Map();

function renderRuns() {
  const tb = $("runs");
  tb.replaceChildren();
  const rows = [...runs.values()].sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
  for (const r of rows) {
    const steps = el("td", {});
    for (const st of r.steps || []) steps.append(el("span", { class: "badge " + st.state, "data-step": st.name, text: st.name + ": " + st.state }));
    tb.append(el("tr", { "data-run": r.id, "data-state": r.state }, el("td", { class: "id", text: r.id.slice(0, 8), title: r.id }),
      el("td", { text: r.workflow + " v" + r.version }), el("td", { class: r.state, text: r.state }), steps, el("td", { text: fmtTime(r.created_at) })));
  }
  if (!rows.length) tb.append(el("tr", {}, el("td", { class: "note", text: "no runs yet" })));
}

async function loadRun(id) {
  try { const r = await api("GET", "/api/v1/workflow-runs/" + encodeURIComponent(id)); runs.set(r.id, r); renderRuns(); }
  catch (e) { /* a run we may not see */ }
}

// A workflow event names its run; the run document has every step's state.
function applyRunEvent(ev) { if (ev.subject) loadRun(ev.subject); }

async function showWorkflows() {
  try {
    const l = await api("GET", "/api/v1/workflow-runs?limit=50");
    runs.clear();
    (l.runs || []).forEach((r) => runs.set(r.id, r));
    renderRuns();
  } catch (e) { $("runs").replaceChildren(el("tr", {}, el("td", { class: "note", text: e.status === 404 ? "workflows are not available on this server" : e.message }))); }
  try {
    const l = await api("GET", "/api/v1/workflows");
    const tb = $("workflows");
    tb.replaceChildren();
    for (const w of l.workflows || []) {
      const run = el("button", { type: "button", text: "Run", "data-workflow": w.name });
      run.onclick = () => api("POST", "/api/v1/workflow-runs", { workflow: w.name }).then((r) => { runs.set(r.id, r); renderRuns(); }).catch(showErr);
      tb.append(el("tr", { "data-workflow": w.name }, el("td", { text: w.name }), el("td", { text: String(w.current_version) }),
        el("td", { text: String(((w.definition || {}).steps || []).length) }), el("td", { text: (w.definition || {}).description || "" }), el("td", {}, run)));
    }
  } catch (e) { /* shown with the runs */ }
  if (!$("wf-steps").children.length) { addStep("calibrate", "alphacal", "VLASS3.1.T01t01", ""); addStep("image", "image-reconstruction", "VLASS3.1.T01t01", "calibrate"); }
  validateWorkflow();
}

function addStep(name, agent, dataset, deps) {
  const sel = el("select", { name: "agent" });
  for (const a of ["alphacal", "image-reconstruction", "anomaly-detection"]) sel.append(el("option", { text: a }));
  sel.value = agent || "alphacal";
  const del = el("button", { type: "button", text: "Remove" });
  const tr = el("tr", { class: "step" },
    el("td", {}, el("input", { name: "name", size: "12", value: name || "" })), el("td", {}, sel),
    el("td", {}, el("input", { name: "dataset_id", size: "16", value: dataset || "" })),
    el("td", {}, el("input", { name: "gpus", type: "number", value: "1", min: "0", max: "64" })),
    el("td", {}, el("input", { name: "depends_on", size: "22", value: deps || "" })), el("td", {}, del));
  del.onclick = () => { tr.remove(); validateWorkflow(); };
  $("wf-steps").append(tr);
  validateWorkflow();
}

function readWorkflow() {
  const steps = [...$("wf-steps").querySelectorAll("tr.step")].map((tr) => {
    const v = (n) => tr.querySelector('[name="' + n + '"]').value.trim();
    return { name: v("name"), agent: v("agent"), dataset_id: v("dataset_id"), gpus: Number(v("gpus")),
      depends_on: v("depends_on").split(",").map((d) => d.trim()).filter(Boolean) };
  });
  return { name: $("wf-name").value.trim(), description: $("wf-desc").value.trim(), steps };
}

// validateWorkflow checks what the server will check, as the user types:
// names, agents, datasets, GPUs, unknown dependencies and cycles.
function validateWorkflow() {
  const wf = readWorkflow(), problems = [];
  if (!/^[a-z][a-z0-9_-]{0,63}$/.test(wf.name)) problems.push("name: 1-64 lower-case letters, digits, _ or -, starting with a letter");
  if (!wf.steps.length) problems.push("steps: add at least one step");
  const names = new Set();
  for (const [i, st] of wf.steps.entries()) {
    const at = "step " + (i + 1) + (st.name ? " (" + st.name + ")" : "");
    if (!/^[a-z][a-z0-9_-]{0,63}$/.test(st.name)) problems.push(at + ": name must be lower-case letters, digits, _ or -");
    else if (names.has(st.name)) problems.push(at + ": name is used twice");
    names.add(st.name);
    if (!st.dataset_id) problems.push(at + ": dataset is required");
    if (!Number.isInteger(st.gpus) || st.gpus < 0 || st.gpus > 64) problems.push(at + ": GPUs must be 0 to 64");
  }
  for (const st of wf.steps) for (const d of st.depends_on) if (!names.has(d)) problems.push("step " + st.name + ": depends on unknown step " + JSON.stringify(d));
  const deps = new Map(wf.steps.map((st) => [st.name, st.depends_on]));
  const state = new Map();
  const cyc = (n, path) => {
    if (state.get(n) === 1) return path.concat(n);
    if (state.get(n) === 2 || !deps.has(n)) return null;
    state.set(n, 1);
    for (const d of deps.get(n)) { const c = cyc(d, path.concat(n)); if (c) return c; }
    state.set(n, 2);
    return null;
  };
  for (const st of wf.steps) { const c = cyc(st.name, []); if (c) { problems.push("cycle: " + c.join(" -> ")); break; } }
  const ul = $("wf-problems");
  ul.replaceChildren(...problems.map((p) => el("li", { text: p })));
  $("wf-create").disabled = problems.length > 0;
  drawDAG(wf, problems.length === 0);
  return problems.length ? null : wf;
}

// drawDAG lays the steps out by depth, dependencies on the left.
function drawDAG(wf, ok) {
  const box = $("wf-dag");
  box.replaceChildren();
  if (!ok) return;
  const depth = new Map();
  const d = (n) => { if (depth.has(n)) return depth.get(n); const st = wf.steps.find((s) => s.name === n); const v = st && st.depends_on.length ? 1 + Math.max(...st.depends_on.map(d)) : 0; depth.set(n, v); return v; };
  wf.steps.forEach((st) => d(st.name));
  const cols = new Map();
  const pos = new Map();
  for (const st of wf.steps) { const c = depth.get(st.name); const r = cols.get(c) || 0; cols.set(c, r + 1); pos.set(st.name, { x: 10 + c * 170, y: 10 + r * 50 }); }
  const NS = "http://www.w3.org/2000/svg", svg = document.createElementNS(NS, "svg");
  const w = 20 + 170 * (Math.max(...depth.values()) + 1), h = 20 + 50 * Math.max(...cols.values());
  svg.setAttribute("viewBox", "0 0 " + w + " " + h); svg.setAttribute("width", w); svg.setAttribute("height", h);
  const add = (tag, attrs, text) => { const n = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; svg.append(n); };
  for (const st of wf.steps) for (const dep of st.depends_on) { const a = pos.get(dep), b = pos.get(st.name); add("line", { x1: a.x + 130, y1: a.y + 15, x2: b.x, y2: b.y + 15 }); }
  for (const st of wf.steps) { const p = pos.get(st.name); add("rect", { x: p.x, y: p.y, width: 130, height: 30, rx: 4, "data-step": st.name }); add("text", { x: p.x + 6, y: p.y + 19, "font-size": 11 }, st.name + " (" + st.agent + ")"); }
  box.append(svg);
}

$("wf-form").addEventListener("input", validateWorkflow);
$("wf-add").onclick = () => addStep("", "alphacal", "VLASS3.1.T01t01", "");
$("wf-form").onsubmit = async (ev) => {
  ev.preventDefault();
  const wf = validateWorkflow();
  if (!wf) return;
  try {
    await api("POST", "/api/v1/workflows", wf);
    await showWorkflows();
  } catch (e) { $("wf-problems").replaceChildren(el("li", { text: "server: " + e.message })); }
};

// ---- cluster: heatmap and charts ------------------------------------------------------

async function pollCluster() {
  try {
    const u = await api("GET", "/api/v1/cluster/usage");
    const gpus = u.backends.flatMap((b) => b.gpus.map((g) => ({ key: b.name + "/" + g.node + "/" + g.index, util: g.utilization })));
    state.heat.push({ t: u.time, gpus });
    if (state.heat.length > 90) state.heat.shift();
    const errs = u.backends.filter((b) => b.error).map((b) => b.name + ": " + b.error);
    $("heatmap-note").textContent = gpus.length + " GPUs on " + u.backends.length + " backend(s)" + (errs.length ? "; " + errs.join("; ") : "");
    drawHeatmap();
  } catch (e) { $("heatmap-note").textContent = e.message; }
  try {
    const res = await fetch("/metrics");
    state.metrics.push(parseMetrics(await res.text()));
    if (state.metrics.length > 90) state.metrics.shift();
    drawCharts();
  } catch (e) { /* metrics are optional for the charts */ }
}

function drawHeatmap() {
  const cv = $("heatmap"), g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const keys = [...new Set(state.heat.flatMap((s) => s.gpus.map((x) => x.key)))].sort();
  if (!keys.length) return;
  const left = 120, cw = (cv.width - left) / 90, rh = Math.min(20, cv.height / keys.length);
  g.font = "10px monospace"; g.fillStyle = "#333";
  keys.forEach((k, i) => g.fillText(k.length > 18 ? k.slice(-18) : k, 2, i * rh + rh * 0.75));
  state.heat.forEach((s, col) => {
    const m = new Map(s.gpus.map((x) => [x.key, x.util]));
    keys.forEach((k, row) => {
      const u = m.get(k) || 0;
      g.fillStyle = "hsl(" + (220 - 220 * u) + ",80%," + (92 - 50 * u) + "%)";
      g.fillRect(left + (90 - state.heat.length + col) * cw, row * rh, cw - 1, rh - 1);
    });
  });
}

// parseMetrics reads the few series the charts need from the Prometheus text.
function parseMetrics(text) {
  const s = { t: Date.now(), finished: 0, latSum: 0, latCount: 0 };
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = line.match(/^(\w+)(\{[^}]*\})? (\S+)$/);
    if (!m) continue;
    const v = Number(m[3]), labels = m[2] || "";
    if (m[1] === "horizons_events_received_total" && /type="job\.(completed|failed|cancelled)"/.test(labels)) s.finished += v;
    if (m[1] === "horizons_http_request_duration_seconds_sum" && labels.includes('route="POST /api/v1/jobs"')) s.latSum += v;
    if (m[1] === "horizons_http_request_duration_seconds_count" && labels.includes('route="POST /api/v1/jobs"')) s.latCount += v;
  }
  return s;
}

function drawCharts() {
  const thr = [], lat = [];
  for (let i = 1; i < state.metrics.length; i++) {
    const a = state.metrics[i - 1], b = state.metrics[i], dt = (b.t - a.t) / 60000;
    thr.push(dt > 0 ? (b.finished - a.finished) / dt : 0);
    const n = b.latCount - a.latCount;
    // The interval's mean, or the running mean when nothing was submitted.
    lat.push(n > 0 ? (b.latSum - a.latSum) / n * 1000 : b.latCount > 0 ? b.latSum / b.latCount * 1000 : 0);
  }
  lineChart($("chart-throughput"), thr, "#1a7f37");
  lineChart($("chart-latency"), lat, "#0969da");
}

function lineChart(cv, ys, colour) {
  const g = cv.getContext("2d");
  g.clearRect(0, 0, cv.width, cv.height);
  const max = Math.max(1e-9, ...ys);
  g.fillStyle = "#6e7781"; g.font = "10px sans-serif";
  g.fillText(max.toFixed(max < 10 ? 2 : 0), 2, 10);
  g.fillText("0", 2, cv.height - 2);
  g.strokeStyle = colour; g.lineWidth = 2; g.beginPath();
  ys.forEach((y, i) => {
    const px = 30 + i * (cv.width - 35) / 89, py = cv.height - 5 - y / max * (cv.height - 15);
    i ? g.lineTo(px, py) : g.moveTo(px, py);
  });
  g.stroke();
  cv.dataset.points = String(ys.length);
}

// ---- admin ---------------------------------------------------------------------

async function showAdmin() {
  try { $("admin-health").textContent = JSON.stringify(await api("GET", "/api/v1/admin/events/health"), null, 2); }
  catch (e) { $("admin-health").textContent = e.status === 403 ? "admin only" : e.status === 404 ? "not available on this server" : e.message; }
  const tb = $("admin-dead");
  tb.replaceChildren();
  try {
    const l = await api("GET", "/api/v1/admin/dead-letters?limit=50");
    for (const d of l.dead_letters) tb.append(el("tr", {}, ...[d.id, d.event_type, d.subject, d.handler, d.reason, d.attempts, fmtTime(d.received_at)].map((x) => el("td", { text: String(x ?? "") }))));
    if (!l.dead_letters.length) tb.append(el("tr", {}, el("td", { class: "note", text: "no dead letters" })));
  } catch (e) { tb.append(el("tr", {}, el("td", { class: "note", text: e.message }))); }
}

// ---- start --------------------------------------------------------------------------

$("connect").onclick = connect;
window.addEventListener("hashchange", route);
fetch("/api/v1/dashboard/config").then((r) => r.json()).then((c) => Object.assign(state.cfg, c)).catch(() => {}).finally(() => {
  route();
  if (token()) connect();
});
