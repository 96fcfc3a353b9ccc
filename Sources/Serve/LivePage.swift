// The live page is the export page itself (same drawing, same numbers) plus
// /live.js and its window, epoch and timeout controls: the page's policy
// gains script-src 'self' (for /live.js) and connect-src 'self' (for
// /events), nothing else. live.js runs before the page's own script so it
// can note the window listeners that script adds; on each new data event it
// removes them, swaps the data block and runs the page's script again (the
// same text, so its CSP hash still allows it). The controls never reload the
// page: they rewrite its URL and reopen the event stream.

import Reports

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
        </div>
        """
    if let header = page.range(of: "</header>") { page.replaceSubrange(header, with: controls + "\n</header>") }
    if let data = page.range(of: "<script type=\"application/json\" id=\"data\">") {
        page.replaceSubrange(data, with: "<script src=\"/live.js\"></script>\n" + page[data])
    }
    return page
}

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
let updates = 0;
function rerun(json) {
  added.splice(0).forEach(function (a) { a[0].removeEventListener(a[1], a[2], a[3]); });
  ["reset", "scale"].forEach(function (id) { const b = document.getElementById(id); const c = b.cloneNode(true); b.replaceWith(c); });
  const data = document.getElementById("data"), old = data.nextElementSibling;
  data.textContent = json;
  document.getElementById("panels").textContent = "";
  const again = document.createElement("script"); again.textContent = old.textContent;
  old.replaceWith(again);
  updates += 1;
  document.documentElement.dataset.liveUpdates = String(updates);
}
function setStatus(text) { const s = document.getElementById("live-status"); if (s) s.textContent = text; }
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
      if (first && e.data === document.getElementById("data").textContent) { first = false; setStatus("live"); return; }
      first = false;
      rerun(e.data);
      setStatus("live, updated " + new Date().toLocaleTimeString());
    });
    stream.addEventListener("status", function (e) { if (stream === events) setStatus(e.data); });
    stream.onerror = function () { if (stream === events) setStatus("connection to pingem serve lost, retrying"); };
  }
  // Without a choice in the URL a control shows what serve used: its --last
  // (data-default) and --timeout (the data's timeout_ms).
  const timeoutMs = JSON.parse(document.getElementById("data").textContent).timeout_ms;
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
      connect();
    });
  });
  connect();
});
})();
"""#
