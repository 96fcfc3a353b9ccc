// The page around the data: static HTML, CSS and hand-written canvas drawing.
// Nothing here depends on user input except the escaped title and the data
// block, so the inline script and style are constants whose hashes go in the
// Content-Security-Policy, and default-src 'none' forbids every request.

func htmlPage(title: String, data: String) -> String {
    let csp = "default-src 'none'; script-src \(cspHash(pageScript)); style-src \(cspHash(pageStyle)); "
        + "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta http-equiv="Content-Security-Policy" content="\(csp)">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="pingem">
        <title>\(title)</title>
        <style>\(pageStyle)</style>
        </head>
        <body>
        <header>
        <h1 id="title">\(title)</h1>
        <p id="subtitle"></p>
        <div class="controls">
        <button type="button" id="scale">Log scale</button>
        <button type="button" id="reset">Reset zoom</button>
        <span id="view"></span>
        <span class="hint">Wheel or drag to zoom, Shift+drag to pan, double-click to reset.</span>
        </div>
        <div id="legend">
        <span><i class="sw smoke"></i>RTT min&ndash;max, p90, p99 (smoke)</span>
        <span><i class="sw median"></i>median RTT</span>
        <span>loss per epoch <i class="sw l1"></i>&lt;1&nbsp;% <i class="sw l2"></i>1&ndash;5&nbsp;% <i class="sw l3"></i>5&ndash;20&nbsp;% <i class="sw l4"></i>&gt;20&nbsp;%</span>
        <span><i class="sw late"></i>late reply</span>
        <span><i class="sw err"></i>ICMP/send error</span>
        <span><i class="sw outage"></i>outage</span>
        <span><i class="sw nodata"></i>no data: recorder not running</span>
        <span id="legend-hops" hidden>hops: <i class="sw hopok"></i>answered <i class="sw quiet"></i>no answer, later hops did (not loss) <i class="sw l3"></i>forward loss</span>
        </div>
        </header>
        <main id="panels"></main>
        <div id="tip" hidden></div>
        <footer><span id="drawn"></span></footer>
        <pre id="errors"></pre>
        <script type="application/json" id="data">\(data)</script>
        <script>\(pageScript)</script>
        </body>
        </html>

        """
}

let pageStyle = #"""
:root { --bg:#ffffff; --fg:#1d2330; --muted:#5f6b7a; --grid:#e3e7ee; --panel:#f7f9fc; --border:#d5dbe5;
  --smoke:#2f6fd0; --median:#0d3f8f; --loss:#e0201b; --l1:#f5a623; --l2:#ec6a1c; --l3:#d81b1b; --l4:#7d0a0a; --late:#0a9f9f; --err:#8e2fc9; --nodata:#8a94a3; --outage:#e0201b;
  --hopok:#b9e2c2; --quiet:#c9ced6;
  color-scheme: light dark; }
@media (prefers-color-scheme: dark) {
  :root { --bg:#14171c; --fg:#e4e8ee; --muted:#9aa5b4; --grid:#2b313b; --panel:#1b1f26; --border:#343b47;
    --smoke:#6ea8ff; --median:#cfe1ff; --loss:#ff4d47; --l1:#ffb84d; --l2:#ff8033; --l3:#ff3b3b; --l4:#ff9ecf; --late:#3fd0d0; --err:#c77dff; --nodata:#6b7482; --outage:#ff4d47;
    --hopok:#2c5a38; --quiet:#4d5561; }
}
* { box-sizing: border-box; }
body { margin:0; padding:12px 16px; background:var(--bg); color:var(--fg); font:13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size:18px; margin:0 0 2px; }
#subtitle { margin:0 0 8px; color:var(--muted); }
.controls { display:flex; gap:8px; align-items:center; flex-wrap:wrap; margin-bottom:6px; }
button { font:inherit; padding:3px 10px; border:1px solid var(--border); border-radius:4px; background:var(--panel); color:var(--fg); cursor:pointer; }
.hint, #view { color:var(--muted); }
#legend { display:flex; flex-wrap:wrap; gap:4px 14px; color:var(--muted); margin-bottom:8px; }
.sw { display:inline-block; width:14px; height:10px; margin-right:4px; vertical-align:-1px; border-radius:2px; }
.sw.smoke { background:var(--smoke); opacity:.45; } .sw.median { background:var(--median); height:3px; vertical-align:2px; }
.sw.l1 { background:var(--l1); } .sw.l2 { background:var(--l2); } .sw.l3 { background:var(--l3); } .sw.l4 { background:var(--l4); } .sw.late { background:var(--late); } .sw.err { background:var(--err); }
.sw.outage { background:var(--outage); opacity:.3; }
.sw.hopok { background:var(--hopok); } .sw.quiet { background:var(--quiet); }
.graph .hop-label { position:absolute; pointer-events:none; font-size:9px; line-height:9px; padding:0 3px; border-radius:2px;
  background:var(--panel); opacity:.85; white-space:nowrap; }
.sw.nodata { background:repeating-linear-gradient(45deg, var(--nodata) 0 2px, transparent 2px 5px); border:1px solid var(--nodata); }
.panel { display:flex; gap:12px; border:1px solid var(--border); border-radius:6px; background:var(--panel); padding:8px; margin-bottom:8px; break-inside:avoid; }
.graph { flex:1 1 auto; min-width:0; position:relative; }
.graph h2 { font-size:14px; margin:0 0 4px; overflow-wrap:anywhere; }
.graph h2 .host { font-weight:normal; color:var(--muted); }
.graph canvas { display:block; width:100%; }
.graph canvas.overlay { position:absolute; left:0; cursor:crosshair; }
.summary { flex:0 0 250px; font-size:12px; font-variant-numeric:tabular-nums; }
.summary canvas { display:block; width:250px; height:64px; }
.summary table { border-collapse:collapse; width:100%; margin-top:4px; }
.summary td { padding:1px 4px; } .summary td:first-child { color:var(--muted); } .summary td:last-child { text-align:right; }
.summary .bad { color:var(--loss); font-weight:600; }
#tip { position:fixed; z-index:10; pointer-events:none; background:var(--bg); color:var(--fg); border:1px solid var(--border); border-radius:4px;
  padding:6px 8px; box-shadow:0 2px 8px rgba(0,0,0,.25); font-variant-numeric:tabular-nums; white-space:pre; }
footer { color:var(--muted); font-size:11px; }
#errors { color:var(--loss); white-space:pre-wrap; }
#errors:empty { display:none; }
@media print { .controls, #tip { display:none; } body { padding:0; } .panel { border-color:#999; } }
"""#

let pageScript = #"""
"use strict";
(function () {
const errBox = document.getElementById("errors");
window.onerror = function (message, source, line) { errBox.textContent += "JS error: " + message + " (line " + line + ")\n"; };
window.addEventListener("unhandledrejection", function (e) { errBox.textContent += "JS error: " + e.reason + "\n"; });
const t0 = performance.now();
const D = JSON.parse(document.getElementById("data").textContent);
const since = D.since_ms, until = D.until_ms;
let v0 = since, v1 = until, logScale = false, hoverT = null, drag = null;

// Single probes: absolute send times from the deltas.
const probes = D.probes ? D.probes.map(function (p) {
  const t = new Float64Array(p.dt_ms.length); let at = since;
  for (let i = 0; i < t.length; i++) { at += p.dt_ms[i]; t[i] = at; }
  return { t: t, v: p.outcome };
}) : null;

function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function zoneName(t) {
  const off = -new Date(t).getTimezoneOffset(), sign = off < 0 ? "-" : "+", a = Math.abs(off);
  let name = ""; try { name = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  return (name ? name + ", " : "") + "UTC" + sign + pad(Math.floor(a / 60)) + ":" + pad(a % 60);
}
function fmtDate(t) { const d = new Date(t); return DAYS[d.getDay()] + " " + d.getDate() + " " + MONTHS[d.getMonth()] + " " + d.getFullYear(); }
function fmtTime(t, secs) { const d = new Date(t); return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (secs ? ":" + pad(d.getSeconds()) : ""); }
function fmtFull(t, secs) { return fmtDate(t) + " " + fmtTime(t, secs); }
function fmtMs(us) { if (us === null || us === undefined) return "–"; const ms = us / 1000; return (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + " ms"; }
function fmtDur(ms) { const s = ms / 1000; if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + " s"; if (s < 3600) return (s / 60).toFixed(1) + " min"; if (s < 86400) return (s / 3600).toFixed(1) + " h"; return (s / 86400).toFixed(1) + " d"; }
function fmtPct(p) { return p === null || p === undefined ? "–" : (p === 0 ? "0" : p < 0.01 ? p.toFixed(4) : p < 1 ? p.toFixed(3) : p.toFixed(2)) + " %"; }

document.getElementById("title").textContent = "pingem: " + fmtFull(since) + " – " + fmtFull(until);
document.getElementById("subtitle").textContent = "Times in local time (" + zoneName(since) + "). Generated " + fmtFull(D.generated_ms, true)
  + ". Loss timeout " + D.timeout_ms + " ms; an outage is " + D.outage_min + " or more lost probes in a row."
  + (D.percentiles === "approximate" ? " Percentiles of whole hours come from hourly summaries (within 1 %); pingem export html --exact reads every probe." : "");

function colors() {
  const s = getComputedStyle(document.documentElement), c = {};
  ["bg", "fg", "muted", "grid", "panel", "smoke", "median", "loss", "l1", "l2", "l3", "l4", "late", "err", "nodata", "outage", "hopok", "quiet"].forEach(function (k) { c[k] = s.getPropertyValue("--" + k).trim(); });
  return c;
}
let C = colors();

// Panels: names go in with textContent, never as markup.
const panelsEl = document.getElementById("panels");
const panels = D.targets.map(function (target, i) {
  const section = document.createElement("section"); section.className = "panel"; section.dataset.target = String(i);
  const graph = document.createElement("div"); graph.className = "graph";
  const h2 = document.createElement("h2"); h2.className = "target-name"; h2.textContent = target.target;
  if (target.host !== target.target || target.addresses.length) {
    const host = document.createElement("span"); host.className = "host";
    const addrs = target.addresses.filter(function (a) { return a !== target.host; });
    host.textContent = "  " + (target.host !== target.target ? target.host : "") + (addrs.length ? " (" + addrs.join(", ") + ")" : "");
    h2.appendChild(host);
  }
  const canvas = document.createElement("canvas"), overlay = document.createElement("canvas"); overlay.className = "overlay";
  graph.appendChild(h2); graph.appendChild(canvas); graph.appendChild(overlay);
  // The hop strip's row labels: TTL and address, "* * *" for a hop that never answered.
  const hops = target.path || [], labels = hops.map(function (h) {
    const label = document.createElement("span"); label.className = "hop-label";
    label.textContent = h.ttl + "  " + (h.address === null ? "* * *" : h.address) + (h.target ? "  (target)" : "");
    graph.appendChild(label); return label;
  });
  section.dataset.hopRows = String(hops.length);
  const aside = document.createElement("aside"); aside.className = "summary";
  const hist = document.createElement("canvas"); aside.appendChild(hist);
  const table = document.createElement("table"); aside.appendChild(table);
  const s = target.summary, r = s.rtt_us;
  let worst = null; target.outages.forEach(function (o) { if (!worst || o[1] - o[0] > worst[1] - worst[0]) worst = o; });
  const rows = [
    ["Loss", fmtPct(s.loss_pct) + " (" + s.lost + ")", s.lost > 0],
    ["Probes sent", String(s.sent), false],
    ["Late / errors", s.late + " / " + s.errors, s.late + s.errors > 0],
    ["Unknown", String(s.unknown), false],
    ["Recorded", (s.coverage * 100).toFixed(1) + " % of window", false],
    ["RTT avg", fmtMs(r.avg), false], ["RTT p50", fmtMs(r.p50), false], ["RTT p90", fmtMs(r.p90), false],
    ["RTT p99", fmtMs(r.p99), false], ["RTT min / max", fmtMs(r.min) + " / " + fmtMs(r.max), false],
    ["Jitter", fmtMs(r.jitter), false],
    ["Outages", target.outages.length ? target.outages.length + ", worst " + fmtDur(worst[1] - worst[0]) : "none", target.outages.length > 0],
  ];
  if (worst && worst[3]) rows.push(["Worst outage", worst[3], true]);
  rows.forEach(function (row) {
    const tr = document.createElement("tr"), a = document.createElement("td"), b = document.createElement("td");
    a.textContent = row[0]; b.textContent = row[1]; if (row[2]) b.className = "bad";
    tr.appendChild(a); tr.appendChild(b); table.appendChild(tr);
  });
  section.appendChild(graph); section.appendChild(aside); panelsEl.appendChild(section);
  return { i: i, target: target, canvas: canvas, overlay: overlay, hist: hist, labels: labels, geom: null };
});
document.getElementById("legend-hops").hidden = !D.targets.some(function (t) { return t.path && t.path.length; });

const M = { left: 58, right: 12, top: 6, plotH: 170, strip: 20, axis: 34, hopRow: 11 };
const HOP_TOP = M.top + M.plotH + M.strip + M.axis + 4;
function X(g, t) { return M.left + (t - v0) / (v1 - v0) * g.w; }
function T(g, x) { return v0 + (x - M.left) / g.w * (v1 - v0); }

function pickLevel(g) {
  const span = v1 - v0;
  for (let k = 0; k < D.levels.length; k++) if (span / D.levels[k].epoch_ms <= g.w) return D.levels[k];
  return D.levels[D.levels.length - 1];
}
// Single probes once they no longer crowd: at most 1.5 per pixel in every panel.
function useProbes(g) {
  if (!probes) return false;
  for (let i = 0; i < probes.length; i++) if (lowerBound(probes[i].t, v1) - lowerBound(probes[i].t, v0) > g.w * 1.5) return false;
  return true;
}
function lowerBound(a, x) { let lo = 0, hi = a.length; while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] < x) lo = m + 1; else hi = m; } return lo; }

function niceLinear(max) {
  const raw = max / 5, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p, ticks = [];
  for (let v = 0; ; v += step) { ticks.push(v); if (v >= max) break; }
  return ticks;
}
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800].map(function (s) { return s * 1000; });

// Epochs are not all one width (a local day can be 23 or 25 hours): their
// bounds come with the data, as the report cut them.
function epochRange(L, k) { return [since + L.bounds_ms[k], since + L.bounds_ms[k + 1]]; }
function epochIndex(L, t) { let lo = 0, hi = L.bounds_ms.length; while (lo < hi) { const m = (lo + hi) >> 1; if (since + L.bounds_ms[m] <= t) lo = m + 1; else hi = m; } return lo - 1; }

// Loss classes, not a faint gradient: one lost probe in 300 is as visible as the class colour.
function lossColor(frac) { return frac < 0.01 ? C.l1 : frac < 0.05 ? C.l2 : frac < 0.2 ? C.l3 : C.l4; }

// An epoch's hop cell (hopCells in ExportHTML.swift) as [sent, answered,
// forward lost] per row of `rows`; null without rounds.
function hopCounts(cell, rows) {
  if (!cell) return null;
  const parts = cell.split(" "), head = parts[0].split("/"), R = +head[0], m = +head[1], odd = {};
  for (let j = 1; j < parts.length; j++) { const f = parts[j].split(":"); odd[f[0]] = [+f[1], +f[2], +f[3]]; }
  return rows.map(function (h) { const key = h.target ? "t" : String(h.ttl); return odd[key] || (h.target || h.ttl <= m ? [R, R, 0] : [0, 0, 0]); });
}
// The hop strip: one row per hop (the target last), one cell per epoch of the
// level drawn. Forward loss (that hop and every later one lost) in the loss
// classes; a hop that did not answer while later ones did is a router that
// merely does not reply: pale grey, never loss; no rounds: empty.
function drawHops(p, ctx, g, L) {
  const rows = p.target.path || [], cells = L.targets[p.i].path;
  p.labels.forEach(function (label, j) { label.style.left = (M.left + 2) + "px"; label.style.top = (p.canvas.offsetTop + HOP_TOP + j * M.hopRow) + "px"; });
  if (!rows.length) return;
  ctx.save(); ctx.beginPath(); ctx.rect(M.left, HOP_TOP, g.w, rows.length * M.hopRow); ctx.clip();
  const k0 = Math.max(0, epochIndex(L, v0)), k1 = Math.min(L.bounds_ms.length - 1, epochIndex(L, v1) + 2);
  for (let k = k0; cells && k < k1; k++) {
    const counts = hopCounts(cells[k], rows); if (!counts) continue;
    const r = epochRange(L, k), x0 = X(g, r[0]), w = Math.max(1, X(g, r[1]) - x0);
    counts.forEach(function (c, j) {
      if (c[0] === 0) return;
      ctx.fillStyle = c[2] > 0 ? lossColor(c[2] / c[0]) : c[1] < c[0] ? C.quiet : C.hopok;
      ctx.fillRect(x0, HOP_TOP + j * M.hopRow, w, M.hopRow - 2);
    });
  }
  ctx.restore();
  ctx.fillStyle = C.muted; ctx.textAlign = "right"; ctx.textBaseline = "middle"; ctx.font = "10px system-ui, sans-serif";
  ctx.fillText("hops", M.left - 6, HOP_TOP + 4);
}
function hopsHeight(p) { const n = (p.target.path || []).length; return n ? 4 + n * M.hopRow : 0; }

function draw(p) {
  const dpr = window.devicePixelRatio || 1, cssW = p.canvas.parentElement.clientWidth;
  const cssH = M.top + M.plotH + M.strip + M.axis + hopsHeight(p);
  [p.canvas, p.overlay].forEach(function (c) { c.width = Math.round(cssW * dpr); c.height = Math.round(cssH * dpr); c.style.height = cssH + "px"; });
  p.overlay.style.top = p.canvas.offsetTop + "px";
  const g = { w: cssW - M.left - M.right, cssW: cssW };
  p.geom = g;
  const ctx = p.canvas.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = C.bg; ctx.fillRect(0, 0, cssW, cssH);
  const L = pickLevel(g), cols = L.targets[p.i], raw = useProbes(g) ? probes[p.i] : null;
  const k0 = Math.max(0, epochIndex(L, v0)), k1 = Math.min(cols.sent.length, epochIndex(L, v1) + 2);
  let j0 = 0, j1 = 0; if (raw) { j0 = lowerBound(raw.t, v0); j1 = lowerBound(raw.t, v1); }
  // Y range from what is visible: p99 tops the linear scale so one spike does not flatten the rest.
  let top = 0, bottom = Infinity;
  if (raw) { for (let j = j0; j < j1; j++) { const v = raw.v[j]; if (v >= 0) { if (v > top) top = v; if (v < bottom) bottom = v; } } }
  else for (let k = k0; k < k1; k++) { if (cols.p99[k] !== null) { if (cols.p99[k] > top) top = cols.p99[k]; if (cols.min[k] < bottom) bottom = cols.min[k]; } }
  if (!(top > 0)) { top = 10000; bottom = 1000; }
  top = top / 1000 * 1.12; bottom = Math.max(0.01, bottom / 1000 / 1.3);
  let yTicks, Y;
  const plotTop = M.top, plotBottom = M.top + M.plotH;
  if (logScale) {
    const lo = Math.log10(bottom), hi = Math.log10(Math.max(top, bottom * 10));
    Y = function (us) { const v = Math.log10(Math.max(us / 1000, bottom)); return plotBottom - (v - lo) / (hi - lo) * M.plotH; };
    yTicks = []; for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) [1, 2, 5].forEach(function (m) { const v = m * Math.pow(10, e); if (v >= bottom && v <= Math.pow(10, hi)) yTicks.push(v); });
  } else {
    yTicks = niceLinear(top); const ymax = yTicks[yTicks.length - 1];
    Y = function (us) { return plotBottom - Math.min(us / 1000, ymax * 1.02) / ymax * M.plotH; };
  }
  // Grid and y axis.
  ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle"; ctx.textAlign = "right";
  ctx.strokeStyle = C.grid; ctx.lineWidth = 1; ctx.fillStyle = C.muted;
  yTicks.forEach(function (v) { const y = Math.round(Y(v * 1000)) + 0.5; ctx.beginPath(); ctx.moveTo(M.left, y); ctx.lineTo(M.left + g.w, y); ctx.stroke(); ctx.fillText(String(+v.toPrecision(3)), M.left - 6, y); });
  ctx.save(); ctx.translate(12, plotTop + M.plotH / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center"; ctx.fillText("RTT (ms" + (logScale ? ", log" : "") + ")", 0, 0); ctx.restore();
  ctx.textAlign = "right";
  const stripTop = plotBottom + 4;
  ctx.fillText("loss", M.left - 6, stripTop + 4); ctx.fillText("late/err", M.left - 6, stripTop + 13);
  ctx.save(); ctx.beginPath(); ctx.rect(M.left, 0, g.w, cssH); ctx.clip();
  // No data: hatched, never loss.
  const hatch = document.createElement("canvas"); hatch.width = hatch.height = 8;
  const hc = hatch.getContext("2d"); hc.strokeStyle = C.nodata; hc.lineWidth = 1.2; hc.beginPath(); hc.moveTo(0, 8); hc.lineTo(8, 0); hc.moveTo(-2, 2); hc.lineTo(2, -2); hc.moveTo(6, 10); hc.lineTo(10, 6); hc.stroke();
  const pattern = ctx.createPattern(hatch, "repeat");
  // From the finest epochs, whatever the level drawn, so a short stop shows in a week's view.
  const NL = D.levels[0], ncols = NL.targets[p.i];
  const n0 = Math.max(0, epochIndex(NL, v0)), n1 = Math.min(ncols.sent.length, epochIndex(NL, v1) + 2);
  ctx.fillStyle = pattern;
  for (let k = n0; k < n1; k++) if (ncols.sent[k] === 0) {
    let e = k; while (e + 1 < n1 && ncols.sent[e + 1] === 0) e++;
    const x0 = X(g, epochRange(NL, k)[0]), x1 = X(g, epochRange(NL, e)[1]);
    ctx.fillRect(x0, plotTop, Math.max(1, x1 - x0), stripTop + 18 - plotTop); k = e;
  }
  // Outages, each labelled with its where where there is room.
  ctx.fillStyle = C.outage;
  let labelEnd = -Infinity;
  p.target.outages.forEach(function (o) {
    if (o[1] < v0 || o[0] > v1) return;
    const x0 = X(g, o[0]), w = Math.max(2, X(g, o[1]) - x0);
    ctx.globalAlpha = 0.16; ctx.fillRect(x0, plotTop, w, M.plotH); ctx.globalAlpha = 0.9; ctx.fillRect(x0, plotTop, w, 3);
    if (o[3] && x0 >= labelEnd) {
      ctx.save(); ctx.globalAlpha = 1; ctx.font = "10px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText(o[3], Math.max(M.left, x0) + 2, plotTop + 5); labelEnd = Math.max(M.left, x0) + ctx.measureText(o[3]).width + 8; ctx.restore();
    }
  });
  ctx.globalAlpha = 1;
  if (raw) {
    ctx.fillStyle = C.median;
    const r = g.w / (v1 - v0) * 400 > 3 ? 2 : 1.3;
    for (let j = j0; j < j1; j++) {
      const v = raw.v[j], x = X(g, raw.t[j]);
      if (v >= 0) { ctx.fillStyle = C.median; ctx.fillRect(x - r, Y(v) - r, 2 * r, 2 * r); continue; }
      const color = v === -1 ? C.l3 : v === -2 ? C.late : v === -3 ? C.err : C.nodata;
      ctx.fillStyle = color; ctx.globalAlpha = 0.18; ctx.fillRect(x - 1, plotTop, 2, M.plotH); ctx.globalAlpha = 1;
      ctx.fillRect(x - 1, v === -1 || v === -4 ? stripTop : stripTop + 9, Math.max(2, r), 8);
    }
  } else {
    // Smoke: nested min–max, min–p99 and min–p90 bands thicken where most RTTs lie.
    ctx.fillStyle = C.smoke;
    [["max", 0.16], ["p99", 0.18], ["p90", 0.28]].forEach(function (band) {
      ctx.globalAlpha = band[1]; const hiCol = cols[band[0]];
      for (let k = k0; k < k1; k++) { if (cols.min[k] === null) continue; const r = epochRange(L, k), x0 = X(g, r[0]), x1 = X(g, r[1]);
        const yTop = Y(hiCol[k]), yBot = Y(cols.min[k]); ctx.fillRect(x0, yTop, Math.max(1, x1 - x0), Math.max(1, yBot - yTop)); }
    });
    ctx.globalAlpha = 1;
    // Median line, broken where an epoch has no replies.
    ctx.strokeStyle = C.median; ctx.lineWidth = 1.6; ctx.beginPath(); let open = false;
    for (let k = k0; k < k1; k++) {
      if (cols.p50[k] === null) { open = false; continue; }
      const r = epochRange(L, k), y = Y(cols.p50[k]);
      if (!open) { ctx.moveTo(X(g, r[0]), y); open = true; } else ctx.lineTo(X(g, r[0]), y);
      ctx.lineTo(X(g, r[1]), y);
    }
    ctx.stroke();
    // Loss: a column tint and a strip; even one lost probe gets a clearly coloured pixel column.
    for (let k = k0; k < k1; k++) {
      const r = epochRange(L, k), x0 = X(g, r[0]), w = Math.max(1.5, X(g, r[1]) - x0), judged = cols.sent[k] - cols.unknown[k];
      if (cols.lost[k] > 0 && judged > 0) {
        const silent = cols.lost[k] - cols.late[k] - cols.errors[k], frac = cols.lost[k] / judged;
        if (frac >= 0.05) { ctx.fillStyle = lossColor(frac); ctx.globalAlpha = Math.min(0.35, frac); ctx.fillRect(x0, plotTop, w, M.plotH); ctx.globalAlpha = 1; }
        if (silent > 0) { ctx.fillStyle = lossColor(silent / judged); ctx.fillRect(x0, stripTop, w, 8); }
      }
      if (cols.late[k] > 0) { ctx.globalAlpha = 1; ctx.fillStyle = C.late; ctx.fillRect(x0, stripTop + 9, w, 4); }
      if (cols.errors[k] > 0) { ctx.globalAlpha = 1; ctx.fillStyle = C.err; ctx.fillRect(x0, stripTop + 13, w, 4); }
      if (cols.unknown[k] > 0 && cols.unknown[k] === cols.sent[k]) { ctx.globalAlpha = 0.6; ctx.fillStyle = C.nodata; ctx.fillRect(x0, stripTop, w, 8); }
      ctx.globalAlpha = 1;
    }
  }
  ctx.restore();
  ctx.strokeStyle = C.muted; ctx.lineWidth = 1; ctx.strokeRect(M.left + 0.5, plotTop + 0.5, g.w - 1, M.plotH);
  ctx.strokeStyle = C.grid; ctx.strokeRect(M.left + 0.5, stripTop + 0.5, g.w - 1, 17);
  // Time axis in local time; ticks on local boundaries.
  const span = v1 - v0; let step = TIME_STEPS[TIME_STEPS.length - 1];
  for (let s = 0; s < TIME_STEPS.length; s++) if (span / TIME_STEPS[s] <= g.w / 80) { step = TIME_STEPS[s]; break; }
  const off = -new Date(v0).getTimezoneOffset() * 60000;
  ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.fillStyle = C.muted; ctx.strokeStyle = C.grid;
  const axisY = stripTop + 20;
  for (let t = Math.ceil((v0 + off) / step) * step - off; t <= v1; t += step) {
    const x = Math.round(X(g, t)) + 0.5, d = new Date(t), midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0;
    ctx.beginPath(); ctx.moveTo(x, plotTop); ctx.lineTo(x, plotTop + M.plotH); ctx.stroke();
    ctx.fillText(step >= 86400000 ? DAYS[d.getDay()] + " " + d.getDate() + " " + MONTHS[d.getMonth()] : fmtTime(t, step < 60000), x, axisY);
    if (step < 86400000 && (midnight || t - step < v0)) ctx.fillText(DAYS[d.getDay()] + " " + d.getDate() + " " + MONTHS[d.getMonth()], x, axisY + 13);
  }
  ctx.textAlign = "right"; ctx.fillText(raw ? "single probes" : "epoch " + fmtDur(L.epoch_ms), M.left + g.w, axisY + 13);
  drawHops(p, ctx, g, L);
  p.Y = Y;
  document.documentElement.dataset.level = raw ? "probes" : String(L.epoch_ms / 1000) + "s";
  drawOverlay(p);
}

function drawHistogram(p) {
  const h = p.target.histogram, c = p.hist, dpr = window.devicePixelRatio || 1, W = 250, H = 64;
  c.width = W * dpr; c.height = H * dpr; const ctx = c.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H); ctx.font = "10px system-ui, sans-serif"; ctx.fillStyle = C.muted;
  if (!h) { ctx.fillText("no replies", 4, 30); return; }
  const max = Math.max.apply(null, h.counts), bw = W / h.counts.length;
  ctx.fillStyle = C.smoke;
  h.counts.forEach(function (n, k) { if (n > 0) { const bh = Math.max(1, n / max * (H - 16)); ctx.fillRect(k * bw, H - 14 - bh, bw - 0.5, bh); } });
  ctx.fillStyle = C.muted; ctx.textBaseline = "bottom"; ctx.textAlign = "left"; ctx.fillText(fmtMs(h.lo_us), 0, H);
  ctx.textAlign = "right"; ctx.fillText(fmtMs(h.hi_us), W, H); ctx.textAlign = "center"; ctx.fillText("RTT histogram (log)", W / 2, H);
}

function drawOverlay(p) {
  const g = p.geom, dpr = window.devicePixelRatio || 1, ctx = p.overlay.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, g.cssW, p.overlay.height / dpr);
  if (drag && drag.zoom) { const a = Math.min(drag.x0, drag.x1), b = Math.max(drag.x0, drag.x1); ctx.fillStyle = C.smoke; ctx.globalAlpha = 0.2; ctx.fillRect(a, M.top, b - a, M.plotH); ctx.globalAlpha = 1; }
  if (hoverT === null || hoverT < v0 || hoverT > v1) return;
  const x = Math.round(X(g, hoverT)) + 0.5; ctx.strokeStyle = C.fg; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
  ctx.beginPath(); ctx.moveTo(x, M.top); ctx.lineTo(x, M.top + M.plotH + M.strip); ctx.stroke(); ctx.setLineDash([]);
}

// The outage at t (within a pixel), with its where: the report's words.
function outageLine(p, t) {
  const slack = (v1 - v0) / p.geom.w;
  const o = p.target.outages.find(function (o) { return t >= o[0] - slack && t < o[1] + slack; });
  return o ? "\noutage " + fmtFull(o[0], true) + " – " + fmtTime(o[1], true) + ", " + o[2] + " lost" + (o[3] ? "\n" + o[3] : "") : "";
}
function describe(p, t) { return describeAt(p, t) + outageLine(p, t); }
// A hop strip cell: the hop's counts in that epoch of the level drawn.
function describeHop(p, t, j) {
  const h = p.target.path[j], L = pickLevel(p.geom), k = epochIndex(L, t), cells = L.targets[p.i].path;
  let s = p.target.target + "\n" + (h.target ? "target " : "hop ") + h.ttl + ", " + (h.address === null ? "* * *" : h.address) + "\n";
  if (k < 0 || k >= L.bounds_ms.length - 1) return s;
  const r = epochRange(L, k), secs = L.epoch_ms < 60000, counts = cells ? hopCounts(cells[k], p.target.path) : null, c = counts ? counts[j] : [0, 0, 0];
  s += fmtFull(r[0], secs) + " – " + fmtTime(r[1], secs) + "  (" + fmtDur(L.epoch_ms) + " epoch)\n";
  if (c[0] === 0) return s + "no path rounds";
  s += "sent " + c[0] + ", answered " + c[1] + ", forward lost " + c[2];
  const quiet = c[0] - c[1] - c[2];
  if (quiet > 0) s += "\n" + quiet + " unanswered while later hops answered: not loss";
  return s;
}
function hopRowAt(p, y) {
  const j = Math.floor((y - HOP_TOP) / M.hopRow), n = (p.target.path || []).length;
  return y >= HOP_TOP && j < n ? j : -1;
}

function describeAt(p, t) {
  const g = p.geom, name = p.target.target;
  if (useProbes(g)) {
    const raw = probes[p.i]; let j = lowerBound(raw.t, t);
    if (j > 0 && (j === raw.t.length || t - raw.t[j - 1] < raw.t[j] - t)) j--;
    if (j >= raw.t.length) return name + "\nno probes";
    const v = raw.v[j];
    return name + "\nprobe sent " + fmtFull(raw.t[j], true) + "\n" + (v >= 0 ? "reply after " + fmtMs(v) : v === -1 ? "lost (no reply)" : v === -2 ? "late reply (lost)" : v === -3 ? "lost: ICMP or send error" : "unknown: recorder stopped before the timeout");
  }
  const L = pickLevel(g), cols = L.targets[p.i], k = epochIndex(L, t);
  if (k < 0 || k >= cols.sent.length) return name;
  const r = epochRange(L, k), secs = L.epoch_ms < 60000;
  let s = name + "\n" + fmtFull(r[0], secs) + " – " + fmtTime(r[1], secs) + "  (" + fmtDur(L.epoch_ms) + " epoch)\n";
  if (cols.sent[k] === 0) return s + "no data: the recorder was not running";
  const judged = cols.sent[k] - cols.unknown[k];
  s += "sent " + cols.sent[k] + ", lost " + cols.lost[k] + (judged > 0 ? " (" + fmtPct(cols.lost[k] / judged * 100) + ")" : "") + "\n";
  if (cols.late[k] || cols.errors[k] || cols.unknown[k]) s += "late " + cols.late[k] + ", errors " + cols.errors[k] + ", unknown " + cols.unknown[k] + "\n";
  s += "min " + fmtMs(cols.min[k]) + "  p50 " + fmtMs(cols.p50[k]) + "  p90 " + fmtMs(cols.p90[k]) + "\np99 " + fmtMs(cols.p99[k]) + "  max " + fmtMs(cols.max[k]);
  if (cols.coverage[k] < 1) s += "\nrecorded " + (cols.coverage[k] * 100).toFixed(1) + " % of the epoch";
  if (D.percentiles === "approximate") s += "\npercentiles from hourly summaries (within 1 %)";
  return s;
}

const tip = document.getElementById("tip");
function updateView() {
  document.getElementById("view").textContent = (v0 === since && v1 === until) ? "Whole window" : "Showing " + fmtFull(v0, true) + " – " + fmtFull(v1, true);
}
function drawAll() { C = colors(); panels.forEach(draw); updateView(); }
function setView(a, b) {
  const minSpan = 10000; if (b - a < minSpan) { const m = (a + b) / 2; a = m - minSpan / 2; b = m + minSpan / 2; }
  const span = Math.min(b - a, until - since); if (a < since) { a = since; b = a + span; } if (b > until) { b = until; a = b - span; }
  v0 = a; v1 = b; drawAll();
}
panels.forEach(function (p) {
  drawHistogram(p);
  const o = p.overlay;
  function localX(e) { return e.clientX - o.getBoundingClientRect().left; }
  function localY(e) { return e.clientY - o.getBoundingClientRect().top; }
  o.addEventListener("mousemove", function (e) {
    const x = localX(e);
    if (drag) { drag.x1 = x; if (!drag.zoom) { const dt = (drag.x0 - x) / p.geom.w * (drag.v1 - drag.v0); v0 = drag.v0 + dt; v1 = drag.v1 + dt; setView(v0, v1); } else drawOverlay(p); return; }
    hoverT = T(p.geom, x); panels.forEach(drawOverlay);
    if (x < M.left || x > M.left + p.geom.w) { tip.hidden = true; return; }
    const row = hopRowAt(p, localY(e));
    tip.textContent = row >= 0 ? describeHop(p, hoverT, row) : describe(p, hoverT); tip.hidden = false;
    const tx = e.clientX + 14 + tip.offsetWidth > window.innerWidth ? e.clientX - 14 - tip.offsetWidth : e.clientX + 14;
    tip.style.left = tx + "px"; tip.style.top = (e.clientY + 14) + "px";
  });
  o.addEventListener("mouseleave", function () { hoverT = null; tip.hidden = true; panels.forEach(drawOverlay); });
  o.addEventListener("mousedown", function (e) { e.preventDefault(); const x = localX(e); drag = { x0: x, x1: x, zoom: !e.shiftKey, v0: v0, v1: v1, p: p }; });
  o.addEventListener("wheel", function (e) {
    e.preventDefault(); const t = T(p.geom, localX(e)), f = e.deltaY > 0 ? 1.25 : 0.8;
    setView(t - (t - v0) * f, t + (v1 - t) * f);
  }, { passive: false });
  o.addEventListener("dblclick", function () { setView(since, until); });
});
window.addEventListener("mouseup", function () {
  if (!drag) return; const d = drag; drag = null;
  if (d.zoom && Math.abs(d.x1 - d.x0) > 4) { const a = T(d.p.geom, Math.min(d.x0, d.x1)), b = T(d.p.geom, Math.max(d.x0, d.x1)); setView(Math.max(a, since), Math.min(b, until)); }
  else panels.forEach(drawOverlay);
});
document.getElementById("reset").addEventListener("click", function () { setView(since, until); });
const scaleButton = document.getElementById("scale");
scaleButton.addEventListener("click", function () { logScale = !logScale; scaleButton.textContent = logScale ? "Linear scale" : "Log scale"; drawAll(); });
let resizeTimer = null;
window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawAll, 100); });
if (window.matchMedia) window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", function () { drawAll(); panels.forEach(drawHistogram); });
window.addEventListener("beforeprint", drawAll);
// A link can open a zoomed view: #from=<unix ms>&to=<unix ms>.
const wanted = /from=(\d+)&to=(\d+)/.exec(location.hash);
if (wanted) setView(+wanted[1], +wanted[2]); else drawAll();
// ...and &hover=<unix ms> shows the first panel's tooltip at that instant
// (&hop=<row> that of its hop strip's row).
const hovered = /hover=(\d+)/.exec(location.hash), hopRow = /hop=(\d+)/.exec(location.hash);
if (hovered && panels.length) {
  hoverT = +hovered[1]; panels.forEach(drawOverlay);
  const row = hopRow && +hopRow[1] < (panels[0].target.path || []).length ? +hopRow[1] : -1;
  tip.textContent = row >= 0 ? describeHop(panels[0], hoverT, row) : describe(panels[0], hoverT);
  tip.hidden = false; tip.style.left = "80px"; tip.style.top = "160px";
}
const ms = performance.now() - t0;
document.getElementById("drawn").textContent = "Drawn in " + ms.toFixed(0) + " ms.";
document.documentElement.dataset.drawMs = ms.toFixed(1);
document.documentElement.dataset.sinceNavigationMs = performance.now().toFixed(1);
document.documentElement.dataset.drawn = "1";
})();
"""#
