// The live page is the export page itself (same drawing, same numbers) plus
// /live.js and its window, epoch and timeout controls: the page's policy
// gains script-src 'self' (for /live.js) and connect-src 'self' (for
// /events, /level and /probes), nothing else. live.js runs before the page's
// own script so it can note the window listeners that script adds; on each
// new data event it removes them, swaps the data block and runs the page's
// script again (the same text, so its CSP hash still allows it), at the view
// the user had zoomed to. The controls never reload the page: they rewrite
// its URL and reopen the event stream.
//
// Zoom into a long window: a page of more than 7 days embeds epochs of an
// hour and more only. When the view is narrow enough that the page would
// draw minute epochs, live.js fetches them for the range shown (and half a
// view each side, cut at the embedded epochs' bounds) from /level, and then
// single probes of a short range from /probes, splices them into the data
// and runs the page's script again on it. The page's script never learns
// about it: it sees a data block whose finest level has minute epochs inside
// the fetched range and the embedded hours outside it, and single probes of
// that range while the view lies inside it. live.js learns the view from the
// page's "Showing ..." line (local time to the second) and keeps the exact
// view it set itself.

import Reports
import Store

/// The epoch widths offered in the page; "auto" picks by zoom like the export.
/// A width names the same epochs as `pingem report --epoch` (UTC-aligned).
let liveEpochChoices = ["auto", "1s", "10s", "1m", "5m", "15m", "1h", "6h", "1d"]

/// The export page `html` made live. `defaultLast` is serve's `--last`: the
/// window a URL without one shows, so the control shows it too.
func livePage(_ html: String, defaultLast: String = "1h") -> String {
    var page = html
    page = page.replacingOccurrences(of: "connect-src 'none'", with: "connect-src 'self'")
    page = page.replacingOccurrences(of: "script-src 'sha256-", with: "script-src 'self' 'sha256-")
    let controls = """
        <div class="controls" id="live">
        <label>Window <select id="live-last" data-default="\(escapeHTML(defaultLast))">\(["15m", "1h", "6h", "24h", "7d"].map { "<option>\($0)</option>" }.joined())</select></label>
        <label>Epoch <select id="live-epoch">\(liveEpochChoices.map { "<option>\($0)</option>" }.joined())</select></label>
        <label>Timeout <select id="live-timeout">\(["500ms", "1s", "2s", "5s"].map { "<option>\($0)</option>" }.joined())</select></label>
        <span id="live-status">connecting</span>
        <span id="live-zoom"></span>
        </div>
        """
    if let header = page.range(of: "</header>") { page.replaceSubrange(header, with: controls + "\n</header>") }
    if let data = page.range(of: "<script type=\"application/json\" id=\"data\">") {
        page.replaceSubrange(data, with: "<script src=\"/live.js\"></script>\n" + page[data])
    }
    return page
}

/// The finest epoch live.js fetches for a zoom into a long window: what a
/// 7-day page embeds as its finest.
let liveFineEpochNs: Nanoseconds = 60_000_000_000

let liveScript = #"""
"use strict";
(function () {
// Listeners the page's script adds to window and media queries: removed
// before it runs again, so old drawings do not linger.
const added = [];
const addWindow = window.addEventListener;
window.addEventListener = function (type, fn, options) { added.push([window, type, fn, options]); return addWindow.call(window, type, fn, options); };
if (window.MediaQueryList) {
  const addMedia = MediaQueryList.prototype.addEventListener;
  MediaQueryList.prototype.addEventListener = function (type, fn, options) { added.push([this, type, fn, options]); return addMedia.call(this, type, fn, options); };
}
// serve's data (the page's own, then each data event's); what the page runs
// on is this plus the zoom's finer epochs.
let base = null, baseParsed = null;
function baseData() {
  if (base === null) base = document.getElementById("data").textContent;
  if (baseParsed === null || baseParsed.text !== base) baseParsed = { text: base, data: JSON.parse(base) };
  return baseParsed.data;
}
function runPage(text) {
  added.splice(0).forEach(function (a) { a[0].removeEventListener(a[1], a[2], a[3]); });
  ["reset", "scale"].forEach(function (id) { const b = document.getElementById(id); const c = b.cloneNode(true); b.replaceWith(c); });
  const data = document.getElementById("data"), old = data.nextElementSibling;
  data.textContent = text;
  document.getElementById("panels").textContent = "";
  const again = document.createElement("script"); again.textContent = old.textContent;
  old.replaceWith(again);
}
let updates = 0;
function rerun(json) {
  base = json;
  zoom.update();
  updates += 1;
  document.documentElement.dataset.liveUpdates = String(updates);
}
function setStatus(text) { const s = document.getElementById("live-status"); if (s) s.textContent = text; }

const zoom = (function () {
  const FINE_MS = \#(liveFineEpochNs / 1_000_000), RAW_SPAN_MS = \#(levelRawSpanLimitNs / 1_000_000), MAX_EPOCHS = \#(levelMaximumEpochs);
  // The page's plot is its canvas less these margins (its script's M.left + M.right).
  const PLOT_MARGINS_PX = 70;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  // fine: a fetched level of minute epochs; raw: fetched single probes; each
  // { key, since, until, sig, level | probes, stale }. pending: the fetch under way.
  // whole: the next drawing shows the whole window (a new window was chosen).
  let fine = null, raw = null, pending = null, failed = null, failure = "", set = null, whole = false;
  const viewEl = document.getElementById("view");
  function epochName(ms) { return ms % 86400000 === 0 ? ms / 86400000 + " d" : ms % 3600000 === 0 ? ms / 3600000 + " h" : ms / 60000 + " min"; }
  function note(text) { const n = document.getElementById("live-zoom"); if (n) n.textContent = text; }
  // The view shown: the exact one live.js set, else read from the page's line.
  function currentView(D) {
    const text = viewEl.textContent;
    if (set && set.text === text) return set.view;
    const m = [...text.matchAll(/(\d+) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d)/g)];
    if (m.length !== 2) return null;
    const at = function (x) { return new Date(+x[3], MONTHS.indexOf(x[2]), +x[1], +x[4], +x[5], +x[6]).getTime(); };
    // The page keeps a view inside its window itself; with the data at hand, so does this.
    return D ? [Math.max(D.since_ms, at(m[0])), Math.min(D.until_ms, at(m[1]))] : [at(m[0]), at(m[1])];
  }
  function plotWidth() { const c = document.querySelector("#panels .graph canvas"); return c ? c.parentElement.clientWidth - PLOT_MARGINS_PX : 0; }
  function absBounds(D, L) { return L.bounds_ms.map(function (b) { return D.since_ms + b; }); }
  // What the embedded finest level says of [a, b): changes when anything in it does.
  function signature(D, a, b) {
    const L = D.levels[0], t = absBounds(D, L), out = [];
    for (let k = 0; k + 1 < t.length; k++) if (t[k] < b && t[k + 1] > a) out.push(t[k], t[k + 1], L.targets.map(function (c) { return [c.sent[k], c.lost[k], c.late[k], c.errors[k], c.unknown[k], c.coverage[k], c.path ? c.path[k] : null]; }));
    return JSON.stringify(out);
  }
  // The finest level with the fetched minute epochs in place of the embedded
  // ones between the first and last bound both have; null when they share none.
  function spliced(D, F) {
    const L = D.levels[0], t = absBounds(D, L), f = F.level.bounds_ms.map(function (b) { return F.since + b; });
    if (F.level.targets.length !== L.targets.length) return null;
    const inF = new Set(f);
    let kA = -1, kB = -1;
    for (let k = 0; k < t.length; k++) if (inF.has(t[k])) { if (kA < 0) kA = k; kB = k; }
    if (kA < 0 || kB <= kA) return null;
    const fA = f.indexOf(t[kA]), fB = f.indexOf(t[kB]);
    F.shown = [t[kA], t[kB]];
    return {
      epoch_ms: F.level.epoch_ms,
      bounds_ms: L.bounds_ms.slice(0, kA).concat(f.slice(fA, fB).map(function (x) { return x - D.since_ms; }), L.bounds_ms.slice(kB)),
      targets: L.targets.map(function (cols, i) {
        // A column only one side has (the hop strip's, where the other had no
        // path rounds) is null, no rounds, on the other.
        const o = {}, theirs = F.level.targets[i], keys = Object.keys(cols).concat(Object.keys(theirs).filter(function (k) { return !(k in cols); }));
        function column(c, key) { return c[key] || c.sent.map(function () { return null; }); }
        keys.forEach(function (key) { o[key] = column(cols, key).slice(0, kA).concat(column(theirs, key).slice(fA, fB), column(cols, key).slice(kB)); });
        return o;
      }),
    };
  }
  function inside(r, view) { return r && r.shown && view[0] >= r.shown[0] && view[1] <= r.shown[1]; }
  // Runs the page's script on serve's data and what zoom fetched, at the view shown.
  function show() {
    // Another window or a chosen epoch: what was fetched belongs to the old one.
    if (!zoomable()) { fine = null; raw = null; }
    if (!fine && !raw) { runAt(base, whole ? null : currentView(null)); whole = false; return; }
    const view = whole ? null : currentView(baseData());
    whole = false;
    const D = JSON.parse(base);
    if (fine) {
      const level = spliced(D, fine);
      if (level) D.levels.unshift(level);
      else { failed = fine.key; failure = "the 1-minute epochs from pingem serve no longer fit the page's: showing the embedded " + epochName(D.levels[0].epoch_ms) + " epochs"; fine = null; }
    }
    if (raw && view && view[0] >= raw.since && view[1] <= raw.until && raw.probes.length === D.targets.length) {
      D.probes = raw.probes.map(function (p) { return { dt_ms: p.dt_ms.map(function (dt, j) { return j === 0 ? dt + raw.since - D.since_ms : dt; }), outcome: p.outcome }; });
    }
    runAt(JSON.stringify(D), view);
  }
  function runAt(text, view) {
    const hash = location.hash, keep = hash.replace(/^#/, "").split("&").filter(function (p) { return p && !/^(from|to)=/.test(p); });
    if (view) keep.unshift("from=" + view[0], "to=" + view[1]);
    history.replaceState(null, "", location.pathname + location.search + (keep.length ? "#" + keep.join("&") : ""));
    runPage(text);
    history.replaceState(null, "", location.pathname + location.search + hash);
    set = view ? { text: viewEl.textContent, view: view } : null;
  }
  function boundAtOrBefore(t, x) { let b = t[0]; for (let k = 0; k < t.length && t[k] <= x; k++) b = t[k]; return b; }
  function boundAtOrAfter(t, x) { for (let k = 0; k < t.length; k++) if (t[k] >= x) return t[k]; return t[t.length - 1]; }
  // Minute epochs of the view and half a view each side, cut at the embedded
  // epochs' bounds so they splice in; the whole view alone if that is too long.
  function levelWanted(D, view) {
    const t = absBounds(D, D.levels[0]), span = view[1] - view[0];
    for (const pad of [span / 2, 0]) {
      const a = boundAtOrBefore(t, view[0] - pad), b = boundAtOrAfter(t, view[1] + pad);
      if (b - a <= RAW_SPAN_MS && (b - a) / FINE_MS <= MAX_EPOCHS) return { path: "/level", since: a, until: b, epoch: FINE_MS };
    }
    return null;
  }
  // Single probes once the page would draw them (at most 1.5 a pixel in every
  // panel, counted from the fetched minute epochs the view touches).
  function probesWanted(D, view, width) {
    const f = fine.level.bounds_ms.map(function (b) { return fine.since + b; });
    const most = Math.max.apply(null, fine.level.targets.map(function (c) {
      let n = 0; for (let k = 0; k + 1 < f.length; k++) if (f[k] < view[1] && f[k + 1] > view[0]) n += c.sent[k]; return n;
    }));
    if (most > width * 1.5) return null;
    const span = view[1] - view[0];
    for (const pad of [span / 2, 0]) {
      const a = Math.max(D.since_ms, Math.floor((view[0] - pad) / FINE_MS) * FINE_MS), b = Math.min(D.until_ms, Math.ceil((view[1] + pad) / FINE_MS) * FINE_MS);
      if (b - a <= RAW_SPAN_MS) return { path: "/probes", since: a, until: b };
    }
    return null;
  }
  function load(want) {
    if (pending) pending.controller.abort();
    const me = { key: want.key, controller: new AbortController() };
    pending = me;
    const q = new URLSearchParams(location.search);
    ["last", "since", "until", "epoch"].forEach(function (k) { q.delete(k); });
    q.set("since", String(want.since)); q.set("until", String(want.until));
    if (want.epoch) q.set("epoch", want.epoch / 1000 + "s");
    const what = want.epoch ? "1-minute epochs" : "single probes";
    note("loading " + what + " from pingem serve");
    fetch(want.path + "?" + q.toString(), { signal: me.controller.signal, cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : r.text().then(function (t) { throw new Error(t.replace(/^pingem: /, "").trim()); }); })
      .then(function (json) {
        if (pending !== me) return;
        pending = null; failed = null;
        const got = { key: want.key, since: want.since, until: want.until, sig: signature(baseData(), want.since, want.until), shown: [want.since, want.until] };
        if (want.epoch) { got.level = json; fine = got; } else { got.probes = json; raw = got; }
        show();
      }, function (error) {
        if (pending !== me || me.controller.signal.aborted) return;
        pending = null; failed = want.key;
        if (want.epoch) fine = null; else raw = null;
        failure = "could not load " + what + " (" + error.message + "): showing the embedded " + epochName(baseData().levels[0].epoch_ms) + " epochs";
        show();
      });
  }
  // Whether serve's data lacks minute epochs and single probes (a window of
  // more than 7 days), read without parsing it: a week's data is megabytes,
  // and may come every second. A quote inside a JSON string is escaped, so
  // the key cannot be matched inside a target's name.
  function coarse(text) {
    const key = '"levels":[{"epoch_ms":', i = text.indexOf(key);
    return i >= 0 && text.endsWith('"probes":null}') && parseInt(text.slice(i + key.length, i + key.length + 16), 10) > FINE_MS;
  }
  function zoomable() {
    const chosen = new URLSearchParams(location.search).get("epoch");
    return !(chosen && chosen !== "auto") && coarse(base);
  }
  // After each drawing: what the view needs that is not shown yet.
  function check() {
    if (base === null) base = document.getElementById("data").textContent;
    // A window of 7 days or less embeds minute epochs (and single probes up
    // to 6 hours) itself; a chosen epoch draws that epoch and nothing finer.
    if (!zoomable()) { note(""); return; }
    const D = baseData();
    const view = currentView(D) || [D.since_ms, D.until_ms], width = plotWidth();
    if (raw && raw.shown && !(view[0] >= raw.since && view[1] <= raw.until)) { raw = null; show(); return; }
    let want = null;
    if (width > 0 && (view[1] - view[0]) / FINE_MS <= width) {
      if (!inside(fine, view) || fine.stale) want = levelWanted(D, view);
      else if (!inside(raw, view) || raw.stale) want = probesWanted(D, view, width);
    }
    if (want) want.key = want.path + " " + want.since + " " + want.until;
    if (!want) { if (pending) { pending.controller.abort(); pending = null; } }
    else if (failed !== want.key && !(pending && pending.key === want.key)) load(want);
    const level = document.documentElement.dataset.level;
    note(want && failed === want.key ? failure : pending ? document.getElementById("live-zoom").textContent
      : level === "probes" ? "single probes from pingem serve" : level === FINE_MS / 1000 + "s" ? "1-minute epochs from pingem serve" : "");
  }
  new MutationObserver(function () { if (document.getElementById("data")) check(); }).observe(viewEl, { childList: true, characterData: true, subtree: true });
  return {
    // New data from serve: what zoom fetched stays shown, and is fetched
    // again once serve's epochs of its range changed.
    update: function () {
      if (fine || raw) {
        const D = baseData();
        [fine, raw].forEach(function (r) { if (r && signature(D, r.since, r.until) !== r.sig) r.stale = true; });
      }
      show();
    },
    // Another window, epoch or timeout chosen: its first data shows it whole.
    reset: function () { fine = null; raw = null; set = null; whole = true; if (pending) { pending.controller.abort(); pending = null; } },
  };
})();

document.addEventListener("DOMContentLoaded", function () {
  // The controls change the query, not the page: the URL is rewritten in
  // place and the event stream reopened, whose first event redraws.
  const params = new URLSearchParams(location.search);
  let events = null;
  function connect() {
    if (events) events.close();
    const query = params.toString(), stream = new EventSource("/events" + (query ? "?" + query : ""));
    events = stream;
    let first = true;
    stream.addEventListener("data", function (e) {
      if (stream !== events) return;
      // The first event may repeat what the page was built with.
      if (first && e.data === base) { first = false; setStatus("live"); return; }
      first = false;
      rerun(e.data);
      setStatus("live, updated " + new Date().toLocaleTimeString());
    });
    stream.addEventListener("status", function (e) { if (stream === events) setStatus(e.data); });
    stream.onerror = function () { if (stream === events) setStatus("connection to pingem serve lost, retrying"); };
  }
  // Without a choice in the URL a control shows what serve used: its --last
  // (data-default) and --timeout (the data's timeout_ms).
  const timeoutMs = baseData().timeout_ms;
  const serveTimeout = timeoutMs % 1000 === 0 ? timeoutMs / 1000 + "s" : timeoutMs + "ms";
  [["live-last", "last", document.getElementById("live-last").dataset.default || "1h"], ["live-epoch", "epoch", "auto"], ["live-timeout", "timeout", serveTimeout]].forEach(function (c) {
    const select = document.getElementById(c[0]), value = params.get(c[1]) || c[2];
    if (![].some.call(select.options, function (o) { return o.value === value; })) { const o = document.createElement("option"); o.textContent = value; select.appendChild(o); }
    select.value = value;
    select.addEventListener("change", function () {
      if (select.value === "auto") params.delete(c[1]); else params.set(c[1], select.value);
      if (c[1] === "last") { params.delete("since"); params.delete("until"); }
      history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
      setStatus("loading " + c[1] + " " + select.value);
      zoom.reset();
      connect();
    });
  });
  connect();
});
})();
"""#
