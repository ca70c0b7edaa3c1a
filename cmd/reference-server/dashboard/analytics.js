// Analytics panel: historical charts from GET /api/v1/analytics/series and
// the open alerts from GET /api/v1/analytics/alerts (admins). Uses the
// bearer token the main dashboard keeps in sessionStorage.
"use strict";
const $ = (id) => document.getElementById(id);
$("token").value = sessionStorage.getItem("horizons-token") || "";

async function api(path) {
  const tok = $("token").value.trim();
  const res = await fetch(path, { headers: { "Authorization": "Bearer " + tok } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.status + " " + res.statusText);
  return body;
}

const colours = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"];

function chart(el, res) {
  el.textContent = "";
  const w = 640, h = 180, pad = 34;
  const svgNS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNS, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("class", "an-chart");
  let lo = Infinity, hi = -Infinity;
  for (const s of res.series) for (const v of s.values) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!isFinite(lo)) { el.textContent = "no data in this range"; return; }
  if (hi === lo) { hi = lo + 1; }
  const n = res.times.length;
  const x = (i) => pad + (w - 2 * pad) * (n <= 1 ? 0 : i / (n - 1));
  const y = (v) => h - pad + (pad * 2 - h) * (v - lo) / (hi - lo);
  const axis = document.createElementNS(svgNS, "text");
  axis.setAttribute("x", 2); axis.setAttribute("y", 12); axis.textContent = hi.toPrecision(3);
  svg.appendChild(axis);
  const axis2 = document.createElementNS(svgNS, "text");
  axis2.setAttribute("x", 2); axis2.setAttribute("y", h - pad); axis2.textContent = lo.toPrecision(3);
  svg.appendChild(axis2);
  const legend = document.createElement("div");
  res.series.forEach((s, k) => {
    let d = "", pen = false;
    s.values.forEach((v, i) => {
      if (v === null) { pen = false; return; }
      d += (pen ? " L" : " M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    const p = document.createElementNS(svgNS, "path");
    p.setAttribute("d", d.trim()); p.setAttribute("fill", "none");
    p.setAttribute("stroke", colours[k % colours.length]); p.setAttribute("stroke-width", "1.5");
    svg.appendChild(p);
    const l = s.labels || {};
    const tag = document.createElement("span");
    tag.style.color = colours[k % colours.length];
    tag.textContent = "■ " + ([l.agent, l.backend, l.user].filter(Boolean).join(" / ") || "all") + "  ";
    legend.appendChild(tag);
  });
  el.appendChild(svg);
  el.appendChild(legend);
  const foot = document.createElement("div");
  foot.className = "an-foot";
  foot.textContent = `${res.agg} per ${res.step_seconds}s from ${res.resolution} samples` + (res.approximate ? " (approximate)" : "") + `, ${res.times[0]} to ${res.to}`;
  el.appendChild(foot);
}

async function load() {
  $("err").textContent = "";
  sessionStorage.setItem("horizons-token", $("token").value.trim());
  const range = Number($("range").value);
  const to = Math.floor(Date.now() / 1000), from = to - range;
  const group = $("group").value;
  for (const el of document.querySelectorAll("[data-metric]")) {
    const q = new URLSearchParams({ metric: el.dataset.metric, agg: el.dataset.agg, from: String(from), to: String(to) });
    if (el.dataset.group !== "none") q.set("group_by", el.dataset.group || group);
    try { chart(el, await api("/api/v1/analytics/series?" + q)); } catch (e) { el.textContent = e.message; }
  }
  try {
    const a = await api("/api/v1/analytics/alerts?state=open");
    const tb = $("alerts");
    tb.textContent = "";
    if (a.alerts.length === 0) { tb.innerHTML = "<tr><td colspan=5>no open alerts</td></tr>"; }
    for (const al of a.alerts) {
      const tr = document.createElement("tr");
      for (const v of [al.rule, al.metric, al.value.toPrecision(4), al.threshold, al.raised_at]) {
        const td = document.createElement("td"); td.textContent = String(v); tr.appendChild(td);
      }
      tb.appendChild(tr);
    }
  } catch (e) { $("alerts").innerHTML = ""; $("alerts-note").textContent = "alerts: " + e.message; }
}
$("load").addEventListener("click", load);
$("range").addEventListener("change", load);
$("group").addEventListener("change", load);
if ($("token").value) load();
