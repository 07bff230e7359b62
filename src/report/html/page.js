"use strict";
// The per-client part of a large HTML report (see html_report.rs): the table one page at a
// time, and one client's detail and charts when it is opened (#client-<id>), drawn from the
// data embedded in the page. Nothing is loaded from anywhere.
(function () {
  const data = JSON.parse(document.getElementById("loadmon-data").textContent);
  const col = {};
  data.cols.forEach((c, i) => { col[c] = i; });
  const rows = data.clients;
  const byId = new Map(rows.map(r => [r[col.id], r]));
  const PAGE = 100;
  const NS = "http://www.w3.org/2000/svg";
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const digit = {};
  for (let i = 0; i < B64.length; i++) digit[B64[i]] = i;
  const MIB = 1048576;

  function el(tag, attrs, text) {
    const e = tag.startsWith("svg:") ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
  function get(r, name) { return r[col[name]]; }

  // The table's columns: header, cell text, sort key, class.
  const columns = [
    ["Client", r => get(r, "id"), r => get(r, "id")],
    ["Status", r => get(r, "status"), r => get(r, "status"), r => "l " + get(r, "status").split(" ")[0]],
    ["Time ran (s)", r => fmt(get(r, "time_ran_s"), 2), r => get(r, "time_ran_s")],
    ["Files", r => get(r, "files_written"), r => get(r, "files_written")],
    ["File / chunk (MB)", r => get(r, "file_size_mb") + " / " + get(r, "chunk_size_mb"), r => get(r, "file_size_mb")],
    ["Written (MB)", r => fmt(get(r, "written_mb"), 1), r => get(r, "written_mb")],
    ["MB/s", r => fmt(get(r, "throughput_mb_s"), 2), r => get(r, "throughput_mb_s")],
    ["Avg CPU %", r => fmt(get(r, "cpu_avg_pct"), 2), r => get(r, "cpu_avg_pct")],
    ["Avg MEM %", r => fmt(get(r, "mem_avg_pct"), 2), r => get(r, "mem_avg_pct")],
    ["Peak RSS (MiB)", r => fmt(get(r, "rss_peak_mib"), 1), r => get(r, "rss_peak_mib")],
    ["Clients in process", r => fmt(get(r, "process_clients"), 0), r => get(r, "process_clients")],
    ["Chunk p50 / p99 (ms)", r => fmt(get(r, "chunk_p50_ms"), 2) + " / " + fmt(get(r, "chunk_p99_ms"), 2), r => get(r, "chunk_p99_ms")],
    ["Heartbeats", r => get(r, "heartbeats"), r => get(r, "heartbeats")],
    ["Reason", r => get(r, "reason") || "", r => get(r, "reason") || "", () => "l"],
  ];

  let view = rows, page = 0, sortBy = 0, sortDir = 1;
  const table = document.getElementById("clients");
  const body = table.querySelector("tbody");
  const status = document.getElementById("status-filter");
  const search = document.getElementById("search");
  const pager = document.getElementById("pager-text");
  const prev = document.getElementById("prev"), next = document.getElementById("next");

  const counts = new Map();
  for (const r of rows) counts.set(get(r, "status"), (counts.get(get(r, "status")) || 0) + 1);
  status.append(el("option", { value: "" }, "every status (" + rows.length + ")"));
  for (const [s, n] of counts) status.append(el("option", { value: s }, s + " (" + n + ")"));

  function compare(a, b) {
    const key = columns[sortBy][2];
    const x = key(a), y = key(b);
    if (x === y) return get(a, "id") - get(b, "id");
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * sortDir;
  }

  function apply() {
    const s = status.value, q = search.value.trim().toLowerCase();
    view = rows.filter(r => (!s || get(r, "status") === s) &&
      (!q || String(get(r, "id")) === q || (get(r, "reason") || "").toLowerCase().includes(q) ||
        (get(r, "peer") || "").toLowerCase().includes(q)));
    view.sort(compare);
    page = 0;
    render();
  }

  function render() {
    const pages = Math.max(1, Math.ceil(view.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const from = page * PAGE, to = Math.min(view.length, from + PAGE);
    body.replaceChildren();
    for (const r of view.slice(from, to)) {
      const tr = el("tr", { "data-client": get(r, "id") });
      columns.forEach(([, text, , cls], i) => {
        const td = el("td", cls ? { class: cls(r) } : {});
        if (i === 0) td.append(el("a", { href: "#client-" + get(r, "id") }, String(text(r))));
        else td.textContent = String(text(r));
        tr.append(td);
      });
      body.append(tr);
    }
    pager.textContent = view.length === 0 ? "no client matches" :
      "clients " + (from + 1) + "–" + to + " of " + view.length + " (page " + (page + 1) + " of " + pages + ")";
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
  }

  table.querySelectorAll("thead th").forEach((th, i) => {
    th.classList.add("sortable");
    th.title = (th.title ? th.title + " — " : "") + "click to sort";
    th.addEventListener("click", () => {
      sortDir = sortBy === i ? -sortDir : 1;
      sortBy = i;
      apply();
    });
  });
  status.addEventListener("change", apply);
  search.addEventListener("input", apply);
  prev.addEventListener("click", () => { page--; render(); });
  next.addEventListener("click", () => { page++; render(); });

  // A client's series: 6 characters a point (time, MB/s, CPU %, 12 bits each, scaled to the
  // run's length and to the client's own maxima).
  function decode(r) {
    const s = get(r, "series") || "", tpMax = get(r, "tp_max") || 0, cpuMax = get(r, "cpu_max") || 0;
    const q = i => digit[s[i]] * 64 + digit[s[i + 1]];
    const pts = [];
    for (let i = 0; i + 6 <= s.length; i += 6) {
      pts.push({ t: q(i) / 4095 * data.t_max, tp: q(i + 2) / 4095 * tpMax, cpu: q(i + 4) / 4095 * cpuMax });
    }
    return pts;
  }

  function niceCeiling(max) {
    if (!(max > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(max)));
    for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
    return 10 * p;
  }

  function chart(title, unit, label, pts, field) {
    const W = 760, H = 260, L = 60, R = 30, T = 30, B = 40, pw = W - L - R, ph = H - T - B;
    const svg = el("svg:svg", { class: "chart", viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": title });
    let x0 = Infinity, x1 = -Infinity, ymax = 0;
    for (const p of pts) { x0 = Math.min(x0, p.t); x1 = Math.max(x1, p.t); ymax = Math.max(ymax, p[field]); }
    // Under a second of points (one point, all at one time): 2 s from the whole second
    // before them, so that the ticks read distinct times.
    if (!isFinite(x0)) { x0 = 0; x1 = 2; }
    else if (x1 - x0 < 1) { x0 = Math.max(Math.floor((x0 + x1) / 2 - 1), Math.min(0, x0)); x1 = x0 + 2; }
    const y1 = niceCeiling(ymax);
    const sx = x => L + (x - x0) / (x1 - x0) * pw, sy = y => T + ph - y / y1 * ph;
    svg.append(el("svg:text", { x: L, y: 18, "font-weight": "bold" }, title + " (" + unit + ")"));
    const decimals = x1 - x0 >= 20 ? 0 : x1 - x0 >= 2 ? 1 : 2;
    for (let i = 0; i <= 4; i++) {
      const y = y1 * i / 4, x = x0 + (x1 - x0) * i / 4;
      svg.append(el("svg:line", { x1: L, x2: L + pw, y1: sy(y).toFixed(1), y2: sy(y).toFixed(1), stroke: "#ddd" }));
      svg.append(el("svg:text", { x: L - 6, y: (sy(y) + 4).toFixed(1), "text-anchor": "end", "font-size": 11 }, String(+y.toPrecision(3))));
      svg.append(el("svg:text", { x: sx(x).toFixed(1), y: T + ph + 16, "text-anchor": "middle", "font-size": 11 }, x.toFixed(decimals) + " s"));
    }
    svg.append(el("svg:rect", { x: L, y: T, width: pw, height: ph, fill: "none", stroke: "#999" }));
    const colour = "#0072B2";
    svg.append(el("svg:polyline", {
      class: "series", "data-client": label, "data-points": pts.length, fill: "none", stroke: colour,
      "stroke-width": 2, points: pts.map(p => sx(p.t).toFixed(1) + "," + sy(p[field]).toFixed(1)).join(" "),
    }));
    for (const p of pts) {
      const c = el("svg:circle", { cx: sx(p.t).toFixed(1), cy: sy(p[field]).toFixed(1), r: 2.5, fill: colour });
      c.append(el("svg:title", {}, label + " at " + p.t.toFixed(1) + " s: " + (+p[field].toPrecision(3))));
      svg.append(c);
    }
    return svg;
  }

  const detail = document.getElementById("detail");
  function open(id) {
    const r = byId.get(id);
    if (!r) { detail.hidden = true; return; }
    const label = "client " + id;
    const fields = [
      ["Status", get(r, "status")], ["Reason", get(r, "reason") || "–"], ["Peer", get(r, "peer") || "–"],
      ["Protocol version", get(r, "protocol_version") || "seed"],
      ["Start / end (s after the server started)", fmt(get(r, "start_s"), 2) + " / " + fmt(get(r, "end_s"), 2)],
      ["Time ran (s)", fmt(get(r, "time_ran_s"), 2)],
      ["Files written", get(r, "files_written")],
      ["Written (MB)", fmt(get(r, "written_mb"), 1)], ["MB/s", fmt(get(r, "throughput_mb_s"), 2)],
      ["Avg CPU % / per core", fmt(get(r, "cpu_avg_pct"), 2) + " / " + fmt(get(r, "cpu_core_avg_pct"), 2)],
      ["Avg MEM %", fmt(get(r, "mem_avg_pct"), 2)], ["Peak RSS (MiB)", fmt(get(r, "rss_peak_mib"), 1)],
      ["Clients in process", fmt(get(r, "process_clients"), 0)],
      ["Chunk p50 / p99 (ms)", fmt(get(r, "chunk_p50_ms"), 2) + " / " + fmt(get(r, "chunk_p99_ms"), 2)],
      ["Heartbeats / stats reports", get(r, "heartbeats") + " / " + get(r, "stats_reports")],
    ];
    // The host's I/O view (latest sample): n/a where the client could not measure it.
    const io = get(r, "host_io") || [], na = (i, d) => io[i] === null || io[i] === undefined ? "n/a" : Number(io[i]).toFixed(d);
    fields.push(
      ["Device util % / write await (ms) / queue depth", na(0, 1) + " / " + na(1, 2) + " / " + na(2, 2)],
      ["Device MB/s", na(3, 1)], ["I/O pressure some / full %", na(4, 2) + " / " + na(5, 2)],
      ["Dirty / writeback (MiB)", na(6, 1) + " / " + na(7, 1)]);
    const dl = el("table", { class: "fields" });
    for (const [k, v] of fields) {
      const tr = el("tr");
      tr.append(el("th", {}, k), el("td", { class: "l" }, String(v)));
      dl.append(tr);
    }
    const pts = decode(r);
    const parts = [el("h3", {}, "Client " + id + " "), dl];
    parts[0].append(el("a", { href: "#" }, "close"));
    if (pts.length) {
      parts.push(chart("Throughput of " + label, "MB/s", label, pts, "tp"));
      parts.push(chart("CPU of " + label, "%", label, pts, "cpu"));
      const note = el("p");
      note.append(el("small", {},
        "Points as the page keeps them (to 1/4096 of each chart's range, at most " + data.points +
        " a client); the JSON report has the exact series."));
      parts.push(note);
    } else {
      parts.push(el("p", {}, "No stats samples from this client: no charts."));
    }
    detail.replaceChildren(...parts);
    detail.hidden = false;
  }
  function route() {
    const m = /^#client-(\d+)$/.exec(location.hash);
    if (m) open(Number(m[1])); else detail.hidden = true;
  }
  window.addEventListener("hashchange", () => {
    route();
    if (!detail.hidden) detail.scrollIntoView({ block: "start" });
  });
  apply();
  route();
})();
