// spanlab report page: the tree table (sortable), and the latency histogram of the
// selected path. Everything it needs is in the page: no network.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("spanlab-data").textContent);
  // Row fields, in the order html/mod.rs writes them.
  var F = { path: 0, depth: 1, calls: 2, total: 3, self: 4, mean: 5, std: 6, min: 7,
            p50: 8, p95: 9, p99: 10, max: 11, errors: 12, panics: 13, hist: 14 };
  var rows = data.paths;
  var measured = data.measured_ns || 1;
  var order = rows.map(function (_, i) { return i; });
  var sortKey = null, ascending = false;

  function human(ns) {
    if (ns < 1e3) return Math.round(ns) + " ns";
    var s = ns / 1e9;
    if (s >= 3600) return Math.floor(s / 3600) + "h" + String(Math.floor(s % 3600 / 60)).padStart(2, "0") + "m";
    if (s >= 60) return Math.floor(s / 60) + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    var v, u;
    if (ns < 1e6) { v = ns / 1e3; u = "\u00b5s"; } else if (ns < 1e9) { v = ns / 1e6; u = "ms"; } else { v = s; u = "s"; }
    return v.toFixed(v < 9.995 ? 2 : v < 99.95 ? 1 : 0) + " " + u;
  }
  function thousands(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  var body = document.querySelector("#paths tbody");
  function render() {
    var html = [];
    for (var k = 0; k < order.length; k++) {
      var i = order[k], r = rows[i];
      var names = r[F.path].split(" > ");
      var indent = sortKey === null ? (r[F.depth] - 1) * 1.2 : 0;
      var label = sortKey === null ? names[names.length - 1] : r[F.path];
      var share = 100 * r[F.total] / measured;
      html.push('<tr data-i="' + i + '" data-path="' + esc(r[F.path]) + '" title="' + esc(r[F.path]) + '">' +
        '<td style="padding-left:' + (0.5 + indent) + 'em">' + esc(label) + "</td>" +
        "<td>" + thousands(r[F.calls]) + "</td>" +
        "<td>" + human(r[F.total]) + "</td>" +
        '<td><span class="share" style="width:' + Math.min(100, share).toFixed(1) * 0.6 + 'px"></span> ' + share.toFixed(1) + "%</td>" +
        "<td>" + human(r[F.self]) + "</td>" +
        "<td>" + human(r[F.mean]) + "</td><td>" + human(r[F.std]) + "</td>" +
        "<td>" + human(r[F.min]) + "</td><td>" + human(r[F.p50]) + "</td>" +
        "<td>" + human(r[F.p95]) + "</td><td>" + human(r[F.p99]) + "</td>" +
        "<td>" + human(r[F.max]) + "</td><td>" + r[F.errors] + "</td><td>" + r[F.panics] + "</td></tr>");
    }
    body.innerHTML = html.join("");
    var ths = document.querySelectorAll("#paths th");
    for (var t = 0; t < ths.length; t++) {
      var th = ths[t], key = th.getAttribute("data-key");
      th.className = key === sortKey || (sortKey === null && key === "path") ? "sorted" + (ascending ? " asc" : "") : "";
    }
  }

  function sortBy(key) {
    if (key === "path") {
      sortKey = null; ascending = false;
      order = rows.map(function (_, i) { return i; });
    } else {
      ascending = sortKey === key ? !ascending : false;
      sortKey = key;
      var f = key === "share" ? F.total : F[key];
      order.sort(function (a, b) {
        var d = rows[a][f] - rows[b][f];
        return (ascending ? d : -d) || a - b;
      });
    }
    render();
  }

  function drawHistogram(i) {
    var r = rows[i], bins = data.histograms[r[F.hist]] || [];
    var box = document.getElementById("histogram");
    var title = '<div><b>' + esc(r[F.path]) + "</b>: " + thousands(r[F.calls]) + " calls, wall time per call " +
      '<span class="muted">(log scale of time; bars: calls per bin)</span></div>';
    if (bins.length === 0) { box.innerHTML = title; return; }
    var W = 640, H = 160, pad = 24, max = 0;
    bins.forEach(function (b) { max = Math.max(max, b[2]); });
    var lo = Math.log(Math.max(1, bins[0][0])), hi = Math.log(Math.max(2, bins[bins.length - 1][1] + 1));
    if (hi <= lo) hi = lo + 1;
    var x = function (v) { return pad + (W - 2 * pad) * (Math.log(Math.max(1, v)) - lo) / (hi - lo); };
    var svg = ['<svg class="histogram" width="' + W + '" height="' + (H + 30) + '" viewBox="0 0 ' + W + " " + (H + 30) + '">'];
    bins.forEach(function (b) {
      var x0 = x(b[0]), x1 = Math.max(x0 + 2, x(b[1] + 1));
      var h = (H - 10) * b[2] / max;
      svg.push('<rect x="' + x0.toFixed(1) + '" y="' + (H - h).toFixed(1) + '" width="' + (x1 - x0 - 0.5).toFixed(1) +
        '" height="' + h.toFixed(1) + '"><title>' + human(b[0]) + " \u2013 " + human(b[1]) + ": " + thousands(b[2]) + " calls</title></rect>");
    });
    svg.push('<text x="' + pad + '" y="' + (H + 18) + '">' + human(bins[0][0]) + "</text>");
    svg.push('<text x="' + (W - pad) + '" y="' + (H + 18) + '" text-anchor="end">' + human(bins[bins.length - 1][1]) + "</text>");
    svg.push('<text x="' + W / 2 + '" y="' + (H + 18) + '" text-anchor="middle">p50 ' + human(r[F.p50]) + ", p95 " + human(r[F.p95]) + "</text>");
    svg.push("</svg>");
    box.innerHTML = title + svg.join("");
  }

  function select(i) {
    var old = body.querySelector("tr.selected");
    if (old) old.classList.remove("selected");
    var tr = body.querySelector('tr[data-i="' + i + '"]');
    if (tr) tr.classList.add("selected");
    drawHistogram(i);
  }

  document.querySelector("#paths thead").addEventListener("click", function (e) {
    var th = e.target.closest("th");
    if (th) sortBy(th.getAttribute("data-key"));
  });
  body.addEventListener("click", function (e) {
    var tr = e.target.closest("tr");
    if (tr) select(Number(tr.getAttribute("data-i")));
  });

  render();
  if (rows.length > 0) select(0);
  document.body.setAttribute("data-ready", "1");
})();
