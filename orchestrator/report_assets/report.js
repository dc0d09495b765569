/* evoforge report: draws the plots and the lineage tree from the JSON block above.
 * No libraries, nothing fetched. Data from the run is written only with textContent or as
 * SVG attributes, never as markup, so hostile candidate code stays text. */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("report-data").textContent);
  const SVGNS = "http://www.w3.org/2000/svg";
  const KINDS = ["ok", "error", "timeout", "oom", "invalid", "cancelled", "lost", "rejected", "pending"];
  const COLOR = {
    ok: "#2f9e44", error: "#e03131", timeout: "#f08c00", oom: "#9c36b5", invalid: "#c2255c",
    cancelled: "#868e96", lost: "#495057", rejected: "#adb5bd", pending: "#4dabf7",
  };
  const MAXIMIZE = D.direction !== "minimize";
  const cands = D.cands;
  const byId = new Map(cands.map((c) => [c.id, c]));
  const kids = new Map();
  for (const c of cands) {
    if (c.p && byId.has(c.p)) {
      if (!kids.has(c.p)) kids.set(c.p, []);
      kids.get(c.p).push(c);
    }
  }
  const scored = cands.filter((c) => c.s !== null && c.state !== "rejected");
  const bestId = (D.run.best_candidate_id && byId.has(D.run.best_candidate_id))
    ? D.run.best_candidate_id : (D.top.length ? D.top[0] : null);
  const seedCand = cands.find((c) => !c.p || !byId.has(c.p)) || null;
  const seedScore = D.run.seed_score !== null ? D.run.seed_score : (seedCand ? seedCand.s : null);

  // ---- small DOM helpers ----------------------------------------------------------------------
  function el(tag, cls, text, parent) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  function sv(tag, attrs, parent, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = String(text);
    if (parent) parent.appendChild(e);
    return e;
  }
  function $(id) { return document.getElementById(id); }
  function kindOf(c) { return c.state === "rejected" ? "rejected" : (c.st || "pending"); }
  function better(a, b) { return b === null || (MAXIMIZE ? a > b : a < b); }
  function fmt(x) {
    if (x === null || x === undefined) return "–";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
    const a = Math.abs(x);
    return (a !== 0 && (a < 1e-3 || a >= 1e6)) ? x.toExponential(3) : String(+x.toPrecision(6));
  }
  function fmtDelta(x) { return x === null ? "–" : (x >= 0 ? "+" : "") + fmt(x); }
  function fmtUsd(x) { return "$" + (x < 0.01 && x > 0 ? x.toFixed(4) : x.toFixed(2)); }
  function fmtDur(s) {
    if (s === null || s === undefined) return "–";
    if (s < 90) return s.toFixed(s < 10 ? 1 : 0) + " s";
    if (s < 5400) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  function fmtDate(t) { return new Date(t * 1000).toLocaleString(); }
  function pill(kind, parent) {
    const p = el("span", "pill", kind, parent);
    p.style.background = COLOR[kind] || "#868e96";
    return p;
  }
  function cidLink(id, parent, label) {
    const a = el("a", "cid", label || id, parent);
    a.href = "#" + id;
    a.addEventListener("click", (ev) => { ev.preventDefault(); select(id, true); });
    return a;
  }
  function empty(host, text) { el("p", "muted", text, host); }

  // ---- axes -------------------------------------------------------------------------------------
  function ticks(lo, hi, n) {
    if (!(hi > lo)) { hi = lo + 1; }
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
    return out;
  }
  function extent(vals, pad) {
    let lo = Math.min(...vals), hi = Math.max(...vals);
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi === lo) { const d = Math.abs(lo) * 0.05 || 0.5; lo -= d; hi += d; }
    const p = (hi - lo) * (pad || 0);
    return [lo - p, hi + p];
  }
  /** A chart frame: axes, grid, scales. Returns {svg, g, x, y}. */
  function frame(host, id, o) {
    const W = o.w || 560, H = o.h || 250, m = Object.assign({ l: 56, r: 14, t: 10, b: 34 }, o.m || {});
    const svg = sv("svg", { id: id, viewBox: `0 0 ${W} ${H}`, role: "img" }, host);
    const [x0, x1] = o.x, [y0, y1] = o.y;
    const x = (v) => m.l + (v - x0) / ((x1 - x0) || 1) * (W - m.l - m.r);
    const y = (v) => H - m.b - (v - y0) / ((y1 - y0) || 1) * (H - m.t - m.b);
    const grid = sv("g", { class: "grid" }, svg), axis = sv("g", { class: "axis" }, svg);
    for (const v of ticks(y0, y1, o.yn || 5)) {
      if (v < y0 || v > y1) continue;
      sv("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }, grid);
      sv("text", { x: m.l - 6, y: y(v) + 4, "text-anchor": "end" }, axis, (o.yfmt || fmt)(v));
    }
    if (!o.noX) {
      for (const v of ticks(x0, x1, o.xn || 8)) {
        if (v < x0 || v > x1 || (o.xint && !Number.isInteger(v))) continue;
        sv("line", { x1: x(v), x2: x(v), y1: H - m.b, y2: H - m.b + 4 }, axis);
        sv("text", { x: x(v), y: H - m.b + 16, "text-anchor": "middle" }, axis, (o.xfmt || fmt)(v));
      }
      if (o.xlabel) sv("text", { x: (W + m.l - m.r) / 2, y: H - 2, "text-anchor": "middle" }, axis, o.xlabel);
    }
    sv("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b }, axis);
    sv("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b }, axis);
    if (o.ylabel) sv("text", { x: 12, y: (H - m.b + m.t) / 2, transform: `rotate(-90 12 ${(H - m.b + m.t) / 2})`, "text-anchor": "middle" }, axis, o.ylabel);
    return { svg, g: sv("g", {}, svg), x, y, W, H, m };
  }
  function legend(host, kinds) {
    const box = el("div", "legend", null, host);
    for (const k of kinds) { const s = el("span", null, null, box); el("i", null, null, s).style.background = COLOR[k]; s.appendChild(document.createTextNode(k)); }
  }

  // ---- header and cards -----------------------------------------------------------------------
  function drawCards() {
    const r = D.run, host = $("cards");
    const evaluated = cands.filter((c) => c.st).length;
    const ok = cands.filter((c) => c.st === "ok").length;
    const rejected = cands.filter((c) => c.state === "rejected").length;
    const tokens = D.cost.llm.reduce((a, c) => a + c.tok, 0) || r.tokens_used;
    const llmUsd = D.cost.llm.reduce((a, c) => a + c.usd, 0);
    const evalUsd = D.cost.evals.reduce((a, c) => a + c.usd, 0);
    const sandboxS = D.cost.evals.reduce((a, c) => a + c.run_s, 0);
    const gain = (r.best_score !== null && seedScore !== null) ? r.best_score - seedScore : null;
    const wall = r.config.wall_s_used !== undefined ? +r.config.wall_s_used : r.updated_at - r.created_at;
    const planned = r.config.iterations ? " of " + r.config.iterations : "";
    const stats = [
      ["best score", fmt(r.best_score), gain === null ? "" : "gain " + fmtDelta(gain) + " over the seed"],
      ["seed score", fmt(seedScore), MAXIMIZE ? "higher is better" : "lower is better"],
      ["iterations", r.iterations_done + planned, cands.length + " candidates"],
      ["evaluated", evaluated, ok + " ok (" + (evaluated ? Math.round(100 * ok / evaluated) : 0) + "%), " + rejected + " rejected"],
      ["cost", fmtUsd(Math.max(r.cost_usd || 0, llmUsd + evalUsd)), tokens + " tokens, " + D.cost.llm.length + " LLM calls"],
      ["sandbox time", fmtDur(sandboxS), (r.gpu_seconds ? fmtDur(r.gpu_seconds) + " GPU" : D.cost.evals.length + " evaluations")],
      ["wall time", fmtDur(wall), r.status + (r.stop_reason ? ": " + r.stop_reason : "")],
    ];
    for (const [k, v, s] of stats) {
      const d = el("div", "stat", null, host);
      el("div", "k", k, d); el("div", "v", v, d).title = String(v); el("div", "s", s, d).title = s;
    }
    $("headline").textContent = `${r.status} · started ${fmtDate(r.created_at)} · updated ${fmtDate(r.updated_at)} · ` +
      `${MAXIMIZE ? "maximize" : "minimize"} · llm ${r.config.llm || "offline"} · report written ${fmtDate(D.generated_at)}`;
  }

  // ---- plots ------------------------------------------------------------------------------------
  function drawBest() {
    const host = $("fig-best");
    const maxIt = Math.max(1, ...cands.map((c) => c.it));
    const vals = scored.map((c) => c.s).concat(seedScore === null ? [] : [seedScore]);
    const f = frame(host, "plot-best", { x: [0, maxIt], y: extent(vals, 0.06), xint: true, xlabel: "iteration", ylabel: "score" });
    if (!scored.length) { sv("text", { x: f.W / 2, y: f.H / 2, "text-anchor": "middle" }, f.g, "no scored candidates yet"); return; }
    if (seedScore !== null) {
      sv("line", { x1: f.x(0), x2: f.x(maxIt), y1: f.y(seedScore), y2: f.y(seedScore), stroke: "#868e96", "stroke-dasharray": "4 3" }, f.g);
      sv("text", { class: "lbl", x: f.x(maxIt) - 4, y: f.y(seedScore) - 4, "text-anchor": "end" }, f.g, "seed");
    }
    for (const c of cands) {  // failures as ticks under the axis, so they are seen too
      if (c.s !== null || c.state === "rejected" || !c.st) continue;
      sv("line", { x1: f.x(c.it), x2: f.x(c.it), y1: f.H - f.m.b - 6, y2: f.H - f.m.b, stroke: COLOR[kindOf(c)], "stroke-width": 1.5 }, f.g);
    }
    const dots = sv("g", {}, f.g);
    for (const c of scored) {
      const d = sv("circle", { cx: f.x(c.it), cy: f.y(c.s), r: 2.6, fill: COLOR[kindOf(c)], "fill-opacity": 0.55, "data-id": c.id, class: "dot" }, dots);
      sv("title", {}, d, `${c.id}\niteration ${c.it} · score ${fmt(c.s)}`);
    }
    dots.addEventListener("click", (ev) => { const id = ev.target.getAttribute("data-id"); if (id) select(id, true); });
    dots.style.cursor = "pointer";
    const order = scored.slice().sort((a, b) => a.it - b.it || a.t - b.t);
    let best = null, path = "";
    for (const c of order) {
      if (better(c.s, best)) {
        path += (path ? `H${f.x(c.it)}V${f.y(c.s)}` : `M${f.x(c.it)},${f.y(c.s)}`);
        best = c.s;
      }
    }
    path += `H${f.x(maxIt)}`;
    sv("path", { d: path, fill: "none", stroke: "#1c7ed6", "stroke-width": 2.2 }, f.g);
    sv("text", { x: f.x(maxIt) - 4, y: f.y(best) + (MAXIMIZE ? 16 : -8), "text-anchor": "end", class: "lbl", style: "fill:#1c7ed6;font-weight:600" }, f.g, "best " + fmt(best));
  }

  function drawDist() {
    const host = $("fig-dist");
    const withScore = cands.filter((c) => c.s !== null);
    if (!withScore.length) { frame(host, "plot-dist", { x: [0, 1], y: [0, 1] }); empty(host, "no scored candidates yet"); return; }
    const [lo, hi] = extent(withScore.map((c) => c.s), 0);
    const nb = Math.min(24, Math.max(6, Math.round(Math.sqrt(withScore.length) * 2)));
    const w = (hi - lo) / nb;
    const kinds = KINDS.filter((k) => withScore.some((c) => kindOf(c) === k));
    const bins = Array.from({ length: nb }, () => Object.fromEntries(kinds.map((k) => [k, 0])));
    for (const c of withScore) bins[Math.min(nb - 1, Math.floor((c.s - lo) / w))][kindOf(c)] += 1;
    const top = Math.max(1, ...bins.map((b) => kinds.reduce((a, k) => a + b[k], 0)));
    const f = frame(host, "plot-dist", { x: [lo, hi], y: [0, top * 1.08], xlabel: "score", ylabel: "candidates", yn: 4 });
    bins.forEach((b, i) => {
      let acc = 0;
      for (const k of kinds) {
        if (!b[k]) continue;
        const r = sv("rect", { x: f.x(lo + i * w) + 1, width: Math.max(1, f.x(lo + w) - f.x(lo) - 2), y: f.y(acc + b[k]), height: f.y(acc) - f.y(acc + b[k]), fill: COLOR[k] }, f.g);
        sv("title", {}, r, `${k}: ${b[k]} in [${fmt(lo + i * w)}, ${fmt(lo + (i + 1) * w)})`);
        acc += b[k];
      }
    });
    for (const [v, name, col, dyl] of [[seedScore, "seed", "#868e96", 10], [D.run.best_score, "best", "#1c7ed6", 24]]) {
      if (v === null || v < lo || v > hi) continue;
      sv("line", { x1: f.x(v), x2: f.x(v), y1: f.m.t, y2: f.H - f.m.b, stroke: col, "stroke-dasharray": "4 3" }, f.g);
      const right = f.x(v) > f.W - f.m.r - 40;
      sv("text", { class: "lbl", x: f.x(v) + (right ? -3 : 3), y: f.m.t + dyl, "text-anchor": right ? "end" : "start" }, f.g, name);
    }
    legend(host, kinds);
  }

  function drawStatus() {
    const host = $("fig-status");
    const counts = {};
    for (const c of cands) counts[kindOf(c)] = (counts[kindOf(c)] || 0) + 1;
    const kinds = KINDS.filter((k) => counts[k]);
    const H = 26 + 24 * Math.max(1, kinds.length), W = 560, left = 80;
    const svg = sv("svg", { id: "plot-status", viewBox: `0 0 ${W} ${H}`, role: "img" }, host);
    const top = Math.max(1, ...kinds.map((k) => counts[k]));
    kinds.forEach((k, i) => {
      const y = 8 + i * 24, w = (W - left - 90) * counts[k] / top;
      sv("text", { x: left - 8, y: y + 13, "text-anchor": "end" }, svg, k);
      sv("rect", { x: left, y: y, width: Math.max(2, w), height: 17, rx: 3, fill: COLOR[k] }, svg);
      sv("text", { x: left + w + 6, y: y + 13 }, svg, `${counts[k]} (${Math.round(100 * counts[k] / cands.length)}%)`);
    });
    if (!kinds.length) sv("text", { x: W / 2, y: 20, "text-anchor": "middle" }, svg, "no candidates yet");
  }

  function drawCost() {
    const host = $("fig-cost");
    const series = [
      ["LLM + sandbox spend (USD)", D.cost.llm.map((c) => [c.t, c.usd]).concat(D.cost.evals.map((e) => [e.t, e.usd])), fmtUsd, "#1c7ed6"],
      ["LLM tokens", D.cost.llm.map((c) => [c.t, c.tok]), fmt, "#7048e8"],
      ["sandbox time", D.cost.evals.map((e) => [e.t, e.run_s]), fmtDur, "#2f9e44"],
    ];
    const tEnd = Math.max(1, D.run.updated_at - D.run.created_at, ...series.flatMap((s) => s[1].map((p) => p[0])));
    const W = 560, rowH = 78, svg = sv("svg", { id: "plot-cost", viewBox: `0 0 ${W} ${rowH * 3 + 30}`, role: "img" }, host);
    const l = 64, r = 14, x = (t) => l + t / tEnd * (W - l - r);
    series.forEach(([name, pts, f, col], i) => {
      const y0 = 8 + i * rowH, h = rowH - 22;
      pts.sort((a, b) => a[0] - b[0]);
      let acc = 0;
      const cum = pts.map(([t, v]) => [t, (acc += v)]);
      sv("text", { x: l, y: y0 + 2, style: "font-weight:600" }, svg, `${name}: ${f(acc)}`);
      sv("line", { x1: l, x2: W - r, y1: y0 + h + 8, y2: y0 + h + 8, stroke: "#c9ced6" }, svg);
      if (!acc) { sv("text", { x: l + 8, y: y0 + h, class: "muted" }, svg, i < 2 ? "none: no LLM calls were recorded (offline researcher)" : "no evaluations yet"); return; }
      const y = (v) => y0 + h + 8 - v / acc * (h - 6);
      let d = `M${x(0)},${y(0)}`;
      for (const [t, v] of cum) d += `H${x(t)}V${y(v)}`;
      d += `H${x(tEnd)}`;
      sv("path", { d: d, fill: "none", stroke: col, "stroke-width": 2 }, svg);
      sv("path", { d: d + `V${y(0)}H${x(0)}Z`, fill: col, "fill-opacity": 0.08, stroke: "none" }, svg);
      sv("text", { x: l - 6, y: y(acc) + 4, "text-anchor": "end" }, svg, f(acc));
    });
    for (const v of ticks(0, tEnd / 60, 8)) {
      if (v * 60 > tEnd) continue;
      sv("text", { x: x(v * 60), y: rowH * 3 + 22, "text-anchor": "middle" }, svg, fmt(v) + "m");
    }
  }

  function drawFailures() {
    const host = $("fig-failures");
    const maxIt = Math.max(1, ...cands.map((c) => c.it));
    const nb = Math.min(20, maxIt + 1), w = (maxIt + 1) / nb;
    const kinds = KINDS.filter((k) => k !== "pending" && cands.some((c) => kindOf(c) === k));
    const bins = Array.from({ length: nb }, () => Object.fromEntries(kinds.map((k) => [k, 0])));
    for (const c of cands) if (kindOf(c) !== "pending") bins[Math.min(nb - 1, Math.floor(c.it / w))][kindOf(c)] += 1;
    const f = frame(host, "plot-failures", { x: [0, maxIt + 1], y: [0, 100], h: 200, xint: true, xlabel: "iteration", ylabel: "% of candidates", yn: 4, yfmt: (v) => v + "%" });
    bins.forEach((b, i) => {
      const n = kinds.reduce((a, k) => a + b[k], 0);
      let acc = 0;
      for (const k of kinds) {
        if (!b[k]) continue;
        const pct = 100 * b[k] / n;
        const r = sv("rect", { x: f.x(i * w) + 1, width: Math.max(1, f.x(w) - f.x(0) - 2), y: f.y(acc + pct), height: f.y(acc) - f.y(acc + pct), fill: COLOR[k] }, f.g);
        sv("title", {}, r, `iterations ${Math.ceil(i * w)}–${Math.ceil((i + 1) * w) - 1}: ${b[k]} ${k} of ${n}`);
        acc += pct;
      }
    });
    legend(host, kinds);
    const box = $("failures");
    if (!D.failures.length) { empty(box, "No failures: every candidate evaluated ok."); return; }
    const t = el("table", null, null, box), hr = el("tr", null, null, el("thead", null, null, t));
    for (const h of ["kind", "stage", "reason", "n", "examples"]) el("th", h === "n" ? "num" : null, h, hr);
    const tb = el("tbody", null, null, t);
    for (const row of D.failures.slice(0, 12)) {
      const tr = el("tr", null, null, tb);
      pill(row.kind, el("td", null, null, tr));
      el("td", null, row.stage || "–", tr);
      el("td", "mono", row.reason, tr);
      el("td", "num", row.n, tr);
      const ex = el("td", null, null, tr);
      row.ids.slice(0, 3).forEach((id, i) => { if (i) ex.appendChild(document.createTextNode(" ")); cidLink(id, ex, "#" + (byId.has(id) ? byId.get(id).it : "?")); });
    }
    if (D.failures.length > 12) empty(box, `… and ${D.failures.length - 12} rarer reasons.`);
  }

  // ---- lineage tree -----------------------------------------------------------------------------
  let selected = null;
  const nodeEls = new Map();
  function ancestry(id) {
    const out = new Set();
    for (let c = byId.get(id); c && !out.has(c.id); c = byId.get(c.p)) out.add(c.id);
    return out;
  }
  const bestPath = bestId ? ancestry(bestId) : new Set();
  const insightText = new Map(D.insights.learned.concat(D.insights.available).map((i) => [i.id, i.text]));

  function drawTree() {
    const host = $("tree");
    host.textContent = "";
    nodeEls.clear();
    const mode = $("tree-y").value, showRejected = $("tree-rejected").checked;
    const shown = cands.filter((c) => showRejected || c.state !== "rejected");
    const maxIt = Math.max(1, ...cands.map((c) => c.it));
    const dx = Math.max(4, Math.min(80, 1000 / maxIt));
    const lanes = Math.max(1, ...shown.map((c) => c.y + 1));
    const top = 26, left = 20, dy = 20;
    const W = left * 2 + maxIt * dx + 60;
    const sc = scored.map((c) => c.s);
    const [lo, hi] = extent(sc.length ? sc : [0, 1], 0.04);
    const H = mode === "score" ? 460 : top + lanes * dy + 16;
    const X = (c) => left + c.it * dx;
    const Y = mode === "score"
      ? (c) => c.s === null ? H - 14 - (c.it % 3) * 4 : top + (hi - c.s) / ((hi - lo) || 1) * (H - top - 44)
      : (c) => top + c.y * dy + 8;
    const svg = sv("svg", { id: "lineage", width: W, height: H, viewBox: `0 0 ${W} ${H}` }, host);
    const axis = sv("g", { class: "axis" }, svg);
    for (const v of ticks(0, maxIt, Math.max(2, Math.floor(W / 90)))) {
      if (!Number.isInteger(v)) continue;
      sv("line", { x1: left + v * dx, x2: left + v * dx, y1: 16, y2: H, stroke: "#f1f3f5" }, axis);
      sv("text", { x: left + v * dx, y: 12, "text-anchor": "middle" }, axis, v);
    }
    if (mode === "score") sv("text", { x: 4, y: H - 4 }, axis, "failed / no score");
    const rank = new Map(scored.slice().sort((a, b) => MAXIMIZE ? a.s - b.s : b.s - a.s).map((c, i) => [c.id, scored.length > 1 ? i / (scored.length - 1) : 1]));
    const shownIds = new Set(shown.map((c) => c.id));
    let edges = "", bestEdges = "";
    for (const c of shown) {
      if (!c.p || !shownIds.has(c.p)) continue;
      const p = byId.get(c.p), x0 = X(p), y0 = Y(p), x1 = X(c), y1 = Y(c), xm = (x0 + x1) / 2;
      const seg = y0 === y1 ? `M${x0},${y0}L${x1},${y1}` : `M${x0},${y0}C${xm},${y0} ${xm},${y1} ${x1},${y1}`;
      if (bestPath.has(c.id) && bestPath.has(p.id)) bestEdges += seg; else edges += seg;
    }
    sv("path", { class: "edge", d: edges }, svg);
    sv("path", { class: "edge bestpath", d: bestEdges }, svg);
    const g = sv("g", { id: "lineage-nodes" }, svg);
    const labels = new Set(D.top.slice(0, 5));
    for (const c of shown) {
      const k = kindOf(c), rk = rank.has(c.id) ? rank.get(c.id) : null;
      const cls = "node " + k + (c.id === bestId ? " best" : "") + (c.id === selected ? " sel" : "");
      const n = sv("circle", { class: cls, cx: X(c), cy: Y(c), r: rk === null ? 3.2 : 3.5 + 4.5 * rk, fill: COLOR[k], "data-id": c.id }, g);
      sv("title", {}, n, `${c.id} · iteration ${c.it}\n${k} · score ${fmt(c.s)}\n${(c.sum || "").slice(0, 160)}`);
      nodeEls.set(c.id, n);
      if (labels.has(c.id)) sv("text", { class: "lbl", x: X(c) + 9, y: Y(c) + 4, style: "fill:#1d2330;font-weight:600" }, g, fmt(c.s));
    }
    g.addEventListener("click", (ev) => { const id = ev.target.getAttribute("data-id"); if (id) select(id, false); });
  }

  // ---- side panel -------------------------------------------------------------------------------
  function kv(host, rows) {
    const dl = el("dl", "kv", null, host);
    for (const [k, v] of rows) {
      el("dt", null, k, dl);
      const dd = el("dd", null, null, dl);
      if (v instanceof Node) dd.appendChild(v); else dd.textContent = v === null || v === undefined ? "–" : String(v);
    }
  }
  function links(ids) {
    const span = document.createElement("span");
    if (!ids.length) span.textContent = "–";
    ids.slice(0, 30).forEach((id, i) => { if (i) span.appendChild(document.createTextNode(", ")); cidLink(id, span, byId.has(id) ? "#" + byId.get(id).it : id); });
    if (ids.length > 30) span.appendChild(document.createTextNode(` … ${ids.length - 30} more`));
    return span;
  }
  function diffPre(diff, host) {
    const pre = el("pre", "diff", null, host);
    for (const line of diff.split("\n")) {
      const cls = line.startsWith("@@") ? "hunk" : line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : null;
      if (cls) el("span", cls, line, pre); else pre.appendChild(document.createTextNode(line + "\n"));
    }
    return pre;
  }
  function codePre(code, host) {
    const pre = el("pre", "code", null, host);
    code.split("\n").forEach((line, i) => { el("span", "ln", i + 1, pre); pre.appendChild(document.createTextNode(line + "\n")); });
    return pre;
  }

  /** Show candidate `id` in the panel; scroll: false, "tree" (the tree only) or true (page too). */
  function select(id, scroll) {
    const c = byId.get(id);
    if (!c) return;
    if (selected && nodeEls.has(selected)) nodeEls.get(selected).classList.remove("sel");
    selected = id;
    const node = nodeEls.get(id);
    if (node) {
      node.classList.add("sel");
      if (scroll) {
        if (scroll !== "tree") $("tree-card").scrollIntoView({ block: "start" });
        const box = $("tree"), cx = +node.getAttribute("cx"), cy = +node.getAttribute("cy");
        box.scrollLeft = Math.max(0, cx - box.clientWidth / 2);
        box.scrollTop = Math.max(0, cy - box.clientHeight / 2);
      }
    }
    if (history.replaceState) history.replaceState(null, "", "#" + id);
    const panel = $("panel");
    panel.textContent = "";
    const h = el("h3", null, c.id, panel);
    h.appendChild(document.createTextNode(" "));
    pill(kindOf(c), h);
    const parent = c.p && byId.has(c.p) ? byId.get(c.p) : null;
    const delta = parent && c.s !== null && parent.s !== null ? c.s - parent.s : null;
    kv(panel, [
      ["score", fmt(c.s) + (delta === null ? "" : `  (${fmtDelta(delta)} vs parent)`)],
      ["iteration", c.it], ["origin", c.o], ["island", c.isl], ["stage reached", c.stage],
      ["parent", c.p ? links([c.p]) : "– (seed)"],
      ["children", links((kids.get(c.id) || []).map((k) => k.id))],
      ["inspirations", links(c.insp)],
      ["insights given", c.ins ? c.ins.length : "not recorded"],
      ["reproduce", c.image ? `evolve reproduce ${c.id}  ·  docker run --rm ${c.image}` : `evolve reproduce ${c.id}`],
    ]);
    if (c.sum) { el("h4", null, c.state === "rejected" ? "why rejected" : "summary", panel); el("p", null, c.sum, panel); }
    if (c.evals.length) {
      el("h4", null, "evaluations", panel);
      const t = el("table", null, null, panel), hr = el("tr", null, null, el("thead", null, null, t));
      for (const x of ["stage", "seed", "status", "score", "runtime", "backend"]) el("th", null, x, hr);
      const tb = el("tbody", null, null, t);
      for (const e of c.evals) {
        const tr = el("tr", null, null, tb);
        el("td", null, e.stage, tr); el("td", null, e.seed, tr); pill(e.st, el("td", null, null, tr));
        el("td", "num", fmt(e.s), tr); el("td", "num", fmtDur(e.run_s), tr); el("td", null, e.backend, tr);
      }
      const last = c.evals[c.evals.length - 1];
      const m = Object.entries(last.metrics);
      if (m.length) { el("h4", null, `metrics (${last.stage}, seed ${last.seed})`, panel); kv(panel, m.map(([k, v]) => [k, fmt(v)])); }
      for (const e of c.evals) {
        if (e.error) { el("h4", null, `error (${e.stage}, seed ${e.seed})`, panel); el("pre", "err", e.error, panel); }
      }
      if (last.feedback) { el("h4", null, "feedback", panel); el("pre", "err", last.feedback, panel).style.color = "inherit"; }
    }
    if (c.ins && c.ins.length) {
      el("h4", null, "insights the researcher was given", panel);
      const ul = el("ul", null, null, panel);
      for (const iid of c.ins) el("li", null, insightText.get(iid) || iid, ul);
    }
    if (c.diff) { el("h4", null, "diff against parent", panel); diffPre(c.diff, panel); }
    const code = D.codes[c.code] || "";
    const det = el("details", null, null, panel);
    det.open = !c.diff;
    el("summary", null, `code (${code.split("\n").length} lines)`, det);
    codePre(code, det);
  }

  // ---- insights, top candidates, run -------------------------------------------------------------
  function insightList(host, title, rows, how) {
    el("h4", null, `${title} (${rows.length})`, host);
    if (!rows.length) { empty(host, "none"); return; }
    const sorted = rows.slice().sort((a, b) => (b.used || 0) - (a.used || 0) || (b.conf || 0) - (a.conf || 0));
    const shown = el("div", null, null, host), more = sorted.length > 15 ? el("details", null, null, host) : null;
    if (more) el("summary", null, `${sorted.length - 15} more`, more);
    sorted.forEach((i, n) => {
      const d = el("div", "ins", null, n < 15 ? shown : more);
      el("div", null, i.text, d);
      const meta = el("div", "meta", null, d);
      pill(i.src, meta).style.background = i.src === "analyzer" ? "#1c7ed6" : i.src === "prior" ? "#5c940d" : "#e8590c";
      meta.appendChild(document.createTextNode(` confidence ${fmt(i.conf)}` + (how === "none" ? "" : ` · reached the researcher ${i.used || 0}×`)));
      if (i.evidence.length) { meta.appendChild(document.createTextNode(" · evidence ")); meta.appendChild(links(i.evidence.slice(0, 8))); }
      if (i.run && i.run !== D.run.id) meta.appendChild(document.createTextNode(` · from run ${i.run}`));
    });
  }
  function drawInsights() {
    const host = $("insights"), I = D.insights;
    const note = {
      recorded: "Retrieval counts come from the run's insights_retrieved events.",
      prompts: "Retrieval counts: how many Researcher prompts held the insight's text.",
      skipped: "Too many prompts to count retrievals.",
      none: "This run recorded no Researcher prompts (offline), so which insights it retrieved is not known; below is what it could draw on.",
    }[I.how];
    if (note) empty(host, note);
    insightList(host, "learned in this run", I.learned, I.how);
    insightList(host, "retrieved from / available in the store (priors, people, earlier runs)", I.available, I.how);
  }
  function drawTop() {
    const host = $("top");
    if (!D.top.length) { empty(host, "No scored candidates yet."); return; }
    const t = el("table", null, null, host), hr = el("tr", null, null, el("thead", null, null, t));
    for (const h of ["#", "candidate", "score", "vs parent", "vs seed", "iteration", "origin", "what changed"]) el("th", ["score", "vs parent", "vs seed", "iteration"].includes(h) ? "num" : null, h, hr);
    const tb = el("tbody", null, null, t);
    D.top.forEach((id, i) => {
      const c = byId.get(id);
      if (!c) return;
      const p = c.p && byId.has(c.p) ? byId.get(c.p) : null, tr = el("tr", null, null, tb);
      el("td", null, i + 1, tr); cidLink(c.id, el("td", null, null, tr));
      el("td", "num", fmt(c.s), tr);
      el("td", "num", p && p.s !== null ? fmtDelta(c.s - p.s) : "–", tr);
      el("td", "num", seedScore !== null ? fmtDelta(c.s - seedScore) : "–", tr);
      el("td", "num", c.it, tr); el("td", null, c.o, tr);
      const w = el("td", null, null, tr);
      el("div", null, c.sum || "–", w);
      if (c.diff) { const d = el("details", null, null, w); el("summary", null, `diff (${c.diff.split("\n").length} lines)`, d); diffPre(c.diff, d); }
    });
  }
  function drawRun() {
    const host = $("run-info"), r = D.run;
    kv(host, [["run", r.id], ["task", r.task], ["task folder", r.task_dir], ["seed", r.seed], ["status", r.status + (r.stop_reason ? ": " + r.stop_reason : "")],
      ["best candidate", r.best_candidate_id ? links([r.best_candidate_id]) : null]].concat(Object.entries(r.config).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v])));
    if (!D.events.length) return;
    const det = el("details", null, null, host);
    el("summary", null, `events (${D.events.length})`, det);
    const t = el("table", null, null, det), tb = el("tbody", null, null, t);
    for (const e of D.events) {
      const tr = el("tr", null, null, tb);
      el("td", "num", fmtDur(e.t), tr); el("td", null, e.kind, tr); el("td", "mono", JSON.stringify(e.data), tr);
    }
  }

  // ---- init: each part on its own, so one failing part still shows the rest and is reported ---
  function part(name, fn) {
    try { fn(); } catch (err) {
      const b = document.body;
      b.dataset.errors = (b.dataset.errors ? b.dataset.errors + " | " : "") + name + ": " + (err && err.message);
      if (window.console) console.error(err);
    }
  }
  part("cards", drawCards);
  part("best", drawBest);
  part("dist", drawDist);
  part("status", drawStatus);
  part("cost", drawCost);
  part("failures", drawFailures);
  part("tree", drawTree);
  part("legend", () => {
    const host = $("legend");
    for (const k of KINDS.filter((k) => cands.some((c) => kindOf(c) === k))) {
      const s = el("span", null, null, host); el("i", null, null, s).style.background = COLOR[k]; s.appendChild(document.createTextNode(k));
    }
  });
  part("insights", drawInsights);
  part("top", drawTop);
  part("run", drawRun);
  part("controls", () => {
    $("tree-y").addEventListener("change", drawTree);
    $("tree-rejected").addEventListener("change", drawTree);
    $("tree-find").addEventListener("input", (ev) => {
      const q = ev.target.value.trim();
      const hit = q && cands.find((c) => c.id.startsWith(q) || c.id.endsWith(q));
      if (hit) select(hit.id, true);
    });
    const want = decodeURIComponent(location.hash.slice(1));
    const first = byId.has(want) ? want : bestId;
    if (first) select(first, byId.has(want) ? true : "tree");
  });
  document.body.dataset.ready = "1";
})();
