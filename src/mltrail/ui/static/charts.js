// mltrail UI: metric line charts on plotly.js (run page, compare page).
//
// plotly.js is 4.8 MB and takes about a second to load and evaluate, during which the page
// cannot draw. So a chart's data is fetched at once and first drawn as a plain SVG sketch
// (sketch(), no plotly); plotly.js is loaded only once the charts in view are sketched
// (loadPlotlyAfter) and then replaces each sketch, in the same box, with the interactive chart.
//
// A series is what /ui/data/... returns: {name, step[], time[] (ms), value[] (null = gap),
// total, downsampled}. Every text that plotly draws (trace names, tick labels) goes through
// mt.charts.plotText first: plotly reads a subset of HTML in its strings, so a run named
// "<img onerror=...>" must reach it as entities, which it shows as plain characters.
"use strict";
window.mt = window.mt || {};

mt.charts = (function () {
  const palette = [
    "#1f5fbf", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#0c8599", "#c2255c", "#5c940d",
    "#1864ab", "#862e9c", "#a61e4d", "#087f5b", "#364fc7", "#e67700", "#495057", "#0b7285",
  ];

  // Plotly-safe text: &, < and > become entities, which plotly shows as those characters. With
  // no "<" left, no tag (<a href>, <img>, ...) can form; plotly knows no &quot;, so quotes stay.
  function plotText(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // Exponential moving average with TensorBoard's debiasing: the first points are not pulled
  // towards 0, and gaps (null) stay gaps without resetting the average.
  function ema(values, weight) {
    if (!(weight > 0)) return values.slice();
    const out = new Array(values.length);
    let last = 0;
    let n = 0;
    for (let i = 0; i < values.length; i++) {
      const y = values[i];
      if (y === null || !isFinite(y)) { out[i] = y; continue; }
      last = last * weight + (1 - weight) * y;
      n++;
      out[i] = last / (1 - Math.pow(weight, n));
    }
    return out;
  }

  // Relative time's unit, from the longest series on the chart.
  function relativeUnit(series) {
    let span = 0;
    series.forEach((s) => {
      if (s.time.length) span = Math.max(span, Math.max(...s.time) - Math.min(...s.time));
    });
    if (span >= 3 * 3600e3) return { div: 3600e3, label: "hours" };
    if (span >= 3 * 60e3) return { div: 60e3, label: "minutes" };
    return { div: 1e3, label: "seconds" };
  }

  function xOf(s, mode, unit) {
    if (mode === "time") return s.time.map((ms) => new Date(ms));
    if (mode === "relative") {
      const t0 = s.time.length ? Math.min(...s.time) : 0;
      return s.time.map((ms) => (ms - t0) / unit.div);
    }
    return s.step;
  }

  // Plotly traces for series drawn with opts {x, smoothing, log}: with smoothing, the raw line
  // stays faint behind the smoothed one, as in TensorBoard.
  function traces(series, opts) {
    const unit = relativeUnit(series);
    const out = [];
    series.forEach((s, i) => {
      const color = s.color || palette[i % palette.length];
      const x = xOf(s, opts.x, unit);
      const name = plotText(s.name);
      const smooth = opts.smoothing > 0;
      const mode = s.value.length === 1 ? "markers" : "lines";
      if (smooth) {
        out.push({
          x, y: s.value, type: "scatter", mode, name, legendgroup: String(i), showlegend: false,
          line: { color, width: 1 }, opacity: 0.25, hoverinfo: "skip",
        });
      }
      out.push({
        x, y: smooth ? ema(s.value, opts.smoothing) : s.value, type: "scatter", mode, name,
        legendgroup: String(i), line: { color, width: 1.6 }, marker: { color, size: 5 },
        connectgaps: false,
        hovertemplate: "%{y:.6g}<extra>" + name + "</extra>",
      });
    });
    return { data: out, unit };
  }

  const X_TITLES = { step: "step", time: "wall time" };

  function layout(opts, unit, legend) {
    return {
      margin: { l: 56, r: 12, t: 8, b: 40 },
      showlegend: !!legend,
      legend: { orientation: "h", y: -0.22, font: { size: 11 } },
      hovermode: "closest",
      xaxis: {
        title: { text: X_TITLES[opts.x] || "relative time (" + unit.label + ")", font: { size: 12 } },
        type: opts.x === "time" ? "date" : "linear",
        automargin: true, zeroline: false,
      },
      yaxis: { type: opts.log ? "log" : "linear", automargin: true, zeroline: false, exponentformat: "e" },
      // Zoom survives redraws (smoothing) but not a change of axes.
      uirevision: opts.x + (opts.log ? ":log" : ":lin"),
      font: { family: "system-ui, sans-serif", size: 12, color: "#1d2430" },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    };
  }

  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] };

  // Draw (or redraw) series into el; legend when several runs share the chart.
  function draw(el, series, opts, legend) {
    const { data, unit } = traces(series, opts);
    clear(el);
    return Plotly.react(el, data, layout(opts, unit, legend), CONFIG);
  }

  // Draw series into el with plotly once it has loaded; until then as a sketch, or (for what a
  // sketch cannot show) a note that the chart is on its way.
  function show(el, series, opts, legend) {
    if (window.Plotly) return draw(el, series, opts, legend);
    if (!sketch(el, series, opts, legend)) message(el, "Loading chart…", "muted loading");
    return null;
  }

  // Empty el of messages before plotly draws in it (never a plot plotly already drew there:
  // Plotly.react updates that in place).
  function clear(el) {
    if (!el.classList.contains("js-plotly-plot")) el.textContent = "";
  }

  // A message in place of a chart (loading, empty, error), as plain text.
  function message(el, text, cls) {
    if (el.classList.contains("js-plotly-plot") && window.Plotly) {
      Plotly.purge(el);
      el.classList.remove("js-plotly-plot");
    }
    el.textContent = "";
    const p = document.createElement("p");
    p.className = cls || "muted";
    p.textContent = text;
    el.appendChild(p);
  }

  // "2,000 of 1,000,000 points" etc. for a chart's note.
  function pointsNote(series) {
    const shown = series.reduce((n, s) => n + s.value.length, 0);
    const total = series.reduce((n, s) => n + s.total, 0);
    const fmt = (n) => n.toLocaleString("en-US");
    if (shown < total) return fmt(shown) + " of " + fmt(total) + " points shown (min and max per bucket kept)";
    return fmt(total) + (total === 1 ? " point" : " points");
  }

  // Chart options kept across pages in localStorage: {x, smoothing, log}.
  function loadOptions() {
    const opts = { x: "step", smoothing: 0, log: false };
    try {
      Object.assign(opts, JSON.parse(localStorage.getItem("mt.chartOptions") || "{}"));
    } catch (e) { /* unreadable: defaults */ }
    if (!["step", "time", "relative"].includes(opts.x)) opts.x = "step";
    opts.smoothing = Math.min(Math.max(Number(opts.smoothing) || 0, 0), 0.99);
    opts.log = !!opts.log;
    return opts;
  }

  function saveOptions(opts) {
    try { localStorage.setItem("mt.chartOptions", JSON.stringify(opts)); } catch (e) { /* private mode */ }
  }

  // Wire the x/smoothing/log controls in box to opts; onChange() redraws.
  function controls(box, opts, onChange) {
    const x = box.querySelector("[data-control=x]");
    const smoothing = box.querySelector("[data-control=smoothing]");
    const shown = box.querySelector("output");
    const log = box.querySelector("[data-control=log]");
    x.value = opts.x;
    smoothing.value = String(opts.smoothing);
    shown.textContent = opts.smoothing.toFixed(2);
    log.checked = opts.log;
    let pending = null;
    const changed = () => {
      opts.x = x.value;
      opts.smoothing = Number(smoothing.value);
      opts.log = log.checked;
      shown.textContent = opts.smoothing.toFixed(2);
      saveOptions(opts);
      // Dragging the slider fires many events: redraw once per frame.
      if (pending === null) pending = requestAnimationFrame(() => { pending = null; onChange(); });
    };
    x.addEventListener("change", changed);
    smoothing.addEventListener("input", changed);
    log.addEventListener("change", changed);
  }

  // Run fn(el) when el first comes near the viewport (charts load as they are scrolled to).
  // Those near it already run now, not at the observer's first report (after the first paint):
  // their data is on its way while the page paints. The promise settles when their fn calls
  // (async) have, so the page knows when its first charts are drawn.
  function whenVisible(elements, fn) {
    const margin = 400;
    const near = (el) => {
      const r = el.getBoundingClientRect();
      return (r.width || r.height) && r.bottom >= -margin && r.top <= innerHeight + margin;
    };
    const now = "IntersectionObserver" in window ? elements.filter(near) : elements;
    const first = Promise.allSettled(now.map(fn)).then(() => undefined);
    const later = elements.filter((el) => !now.includes(el));
    if (later.length) {
      const seen = new IntersectionObserver((entries) => {
        entries.forEach((e) => {
          if (e.isIntersecting) { seen.unobserve(e.target); fn(e.target); }
        });
      }, { rootMargin: margin + "px" });
      later.forEach((el) => seen.observe(el));
    }
    return first;
  }

  // fn(item) for each item, one per task: when plotly replaces several sketches, the first is
  // interactive (and the page answers input) before the last is redrawn.
  function eachInTurn(items, fn) {
    items.forEach((item) => setTimeout(() => fn(item), 0));
  }

  // A URL path segment for a metric key (slashes included, so the key stays one value).
  function keyPath(key) { return encodeURIComponent(key); }

  // -- loading plotly.js -------------------------------------------------------------------
  // The page names plotly.js on charts.js's own script tag (data-plotly) instead of loading it
  // in <head>, where it would hold up the whole page for its second of parsing.
  const PLOTLY_URL = document.currentScript && document.currentScript.dataset.plotly;
  let plotlyArrived = null;
  const plotlyReady = new Promise((resolve, reject) => {
    plotlyArrived = { resolve, reject };
  });
  plotlyReady.catch(() => { /* each chart that waits says so itself */ });
  let plotlyAsked = false;

  // Plotly once it has loaded (this does not load it: loadPlotly does).
  function plotly() { return plotlyReady; }

  // Load plotly.js (once), after the next paint: whatever was just drawn is on screen before
  // plotly's parsing blocks the page.
  function loadPlotly() {
    if (plotlyAsked) return;
    plotlyAsked = true;
    if (window.Plotly) { plotlyArrived.resolve(window.Plotly); return; }
    requestAnimationFrame(() => setTimeout(() => {
      const tag = document.createElement("script");
      tag.src = PLOTLY_URL;
      tag.onload = () => plotlyArrived.resolve(window.Plotly);
      tag.onerror = () => plotlyArrived.reject(new Error("plotly.js did not load"));
      document.head.appendChild(tag);
    }, 0));
  }

  // Load plotly.js when first (the charts in view sketched) settles, or after ms at the latest
  // (a slow series should not keep the other charts from becoming interactive).
  function loadPlotlyAfter(first, ms) {
    first.then(loadPlotly, loadPlotly);
    setTimeout(loadPlotly, ms);
  }

  // -- the sketch: a first paint without plotly --------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  const MARGIN = { l: 56, r: 12, t: 8, b: 40 }; // as layout() asks of plotly: no jump on upgrade

  // An SVG element with attributes, appended to parent. Text only ever goes in via textContent.
  function svg(name, attrs, parent, text) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach((k) => node.setAttribute(k, attrs[k]));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

  // A tick label: short, like plotly's (1M, 0.25, 1e-5).
  function tickText(v) {
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1e4) return compact.format(v).replace("K", "k");
    if (a < 1e-3) return Number(v.toPrecision(2)).toExponential();
    return String(Number(v.toPrecision(4)));
  }

  // About n round values (steps of 1, 2 or 5 times a power of 10) between lo and hi.
  function niceTicks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => (hi - lo) / st <= n) || 10 * mag;
    const out = [];
    for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) out.push(k * step);
    return out;
  }

  // Draw series into el as a plain SVG line chart (frame, a few ticks, one path per line,
  // legend), with opts {x, smoothing, log}. False when the sketch cannot show opts.x (wall
  // time: date ticks are plotly's job) or el has no size; then the chart waits for plotly.
  function sketch(el, series, opts, legend) {
    const W = el.clientWidth;
    const H = el.clientHeight;
    if (opts.x === "time" || !W || !H) return false;
    const unit = relativeUnit(series);
    const lines = [];
    series.forEach((s, i) => {
      const color = s.color || palette[i % palette.length];
      const x = xOf(s, opts.x, unit);
      if (opts.smoothing > 0) {
        lines.push({ x, y: s.value, color, width: 1, opacity: 0.25 });
        lines.push({ x, y: ema(s.value, opts.smoothing), color, width: 1.6, opacity: 1 });
      } else {
        lines.push({ x, y: s.value, color, width: 1.6, opacity: 1 });
      }
    });
    // Ranges over the points a line can show (log: positive values only).
    const ok = (y) => y !== null && isFinite(y) && (!opts.log || y > 0);
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    lines.forEach((ln) => {
      for (let i = 0; i < ln.y.length; i++) {
        if (!ok(ln.y[i])) continue;
        x0 = Math.min(x0, ln.x[i]); x1 = Math.max(x1, ln.x[i]);
        y0 = Math.min(y0, ln.y[i]); y1 = Math.max(y1, ln.y[i]);
      }
    });
    if (x0 > x1) return false; // nothing drawable (e.g. log of values all <= 0): plotly says so
    const ty = opts.log ? Math.log10 : (v) => v;
    let lo = ty(y0), hi = ty(y1);
    if (lo === hi) { lo -= 1; hi += 1; }
    const pad = (hi - lo) * 0.04;
    lo -= pad; hi += pad;
    if (x0 === x1) { x0 -= 1; x1 += 1; }

    // Legend rows under the axis title; widths estimated from the name's length.
    const names = legend ? series.map((s, i) => ({
      full: String(s.name), text: short(String(s.name), 30),
      color: s.color || palette[i % palette.length],
    })) : [];
    const rows = [];
    let row = [], used = 0;
    names.forEach((n) => {
      const w = 26 + n.text.length * 6.6;
      if (row.length && used + w > W - MARGIN.l) { rows.push(row); row = []; used = 0; }
      row.push(Object.assign(n, { at: used })); used += w;
    });
    if (row.length) rows.push(row);
    const top = MARGIN.t;
    const left = MARGIN.l;
    const pw = Math.max(W - MARGIN.l - MARGIN.r, 10);
    const ph = Math.max(H - MARGIN.t - MARGIN.b - rows.length * 18, 10);
    const X = (v) => left + ((v - x0) / (x1 - x0)) * pw;
    const Y = (v) => top + (1 - (ty(v) - lo) / (hi - lo)) * ph;

    const xTitle = X_TITLES[opts.x] || "relative time (" + unit.label + ")";
    // What the drawing shows, for screen readers: "Chart of loss: step 0 to 999k, values ...".
    const label = (el.getAttribute("aria-label") || "Chart") +
      (series.length > 1 ? ", " + series.length + " runs" : "") +
      ": " + xTitle + " " + tickText(x0) + " to " + tickText(x1) +
      ", values " + tickText(y0) + " to " + tickText(y1) + (opts.log ? " (log scale)" : "");
    const root = svg("svg", {
      class: "chart-sketch", role: "img", "aria-label": label,
      width: W, height: H, viewBox: "0 0 " + W + " " + H,
    });
    const axes = svg("g", { class: "axes" }, root);
    // Log axis: ticks at powers of 10 when it spans two or more, else round values.
    const decades = opts.log && Math.floor(hi) - Math.ceil(lo) >= 1;
    const yTicks = decades
      ? niceTicks(Math.ceil(lo), Math.floor(hi), 5).filter(Number.isInteger).map((k) => 10 ** k)
      : niceTicks(opts.log ? y0 : lo, opts.log ? y1 : hi, 5);
    yTicks.forEach((v) => {
      const y = Y(v).toFixed(1);
      svg("line", { class: "grid", x1: left, x2: left + pw, y1: y, y2: y }, axes);
      svg("text", { x: left - 6, y, "text-anchor": "end", "dominant-baseline": "middle" },
        axes, tickText(v));
    });
    niceTicks(x0, x1, Math.max(2, Math.min(6, Math.floor(pw / 90)))).forEach((v) => {
      svg("text", { x: X(v).toFixed(1), y: top + ph + 16, "text-anchor": "middle" },
        axes, tickText(v));
    });
    svg("rect", { class: "frame", x: left, y: top, width: pw, height: ph }, axes);
    svg("text", { class: "title", x: left + pw / 2, y: top + ph + 34, "text-anchor": "middle" },
      axes, xTitle);

    lines.forEach((ln) => {
      // One path per line; a gap (null, or <= 0 on a log axis) starts a new stretch ("M").
      let d = "";
      let pen = "M";
      for (let i = 0; i < ln.y.length; i++) {
        if (!ok(ln.y[i])) { pen = "M"; continue; }
        d += pen + X(ln.x[i]).toFixed(1) + "," + Y(ln.y[i]).toFixed(1);
        pen = "L";
      }
      if (ln.y.length === 1) d += "h0.01"; // a lone point: a dot (round caps), as plotly's marker
      svg("path", {
        d, fill: "none", stroke: ln.color, "stroke-width": ln.y.length === 1 ? 6 : ln.width,
        "stroke-opacity": ln.opacity, "stroke-linejoin": "round", "stroke-linecap": "round",
      }, root);
    });

    const key = svg("g", { class: "legend" }, root);
    rows.forEach((r, k) => {
      const y = top + ph + 52 + k * 18;
      r.forEach((n) => {
        const at = "translate(" + (left + n.at).toFixed(1) + "," + y + ")";
        const item = svg("g", { transform: at }, key);
        svg("title", {}, item, n.full);
        svg("line", { x1: 0, x2: 18, y1: 0, y2: 0, stroke: n.color, "stroke-width": 2 }, item);
        svg("text", { x: 22, y: 0, "dominant-baseline": "middle" }, item, n.text);
      });
    });

    el.textContent = "";
    el.appendChild(root);
    return true;
  }

  function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "…" : s; }

  // The metric charts of a page: the controls in box, one .chart-card per metric. Each card's
  // series come from load(card) -> {series, note} as it scrolls into view; they are sketched at
  // once and drawn again with plotly when it has loaded, and on every change of the controls.
  // empty is the message for a card with nothing to draw; legend says whether lines get names.
  function board(box, cards, load, empty, legend) {
    if (!box || !cards.length) return;
    const opts = loadOptions();
    const loaded = new Map(); // card -> [series]
    const drawCard = (card) => {
      const series = loaded.get(card);
      const el = card.querySelector(".chart");
      if (!series.length || !series[0].value.length) { message(el, empty); return; }
      show(el, series, opts, legend);
    };
    controls(box, opts, () => loaded.forEach((_, card) => drawCard(card)));
    // The sketches become plotly charts when it arrives; charts fetched later draw with it.
    plotly().then(() => eachInTurn(Array.from(loaded.keys()), drawCard), (err) => {
      box.insertAdjacentElement("afterend", Object.assign(document.createElement("p"), {
        className: "error", textContent: err.message + ": the charts stay plain drawings.",
      }));
    });
    const first = whenVisible(cards, async (card) => {
      try {
        const { series, note } = await load(card);
        loaded.set(card, series);
        card.querySelector(".chart-note").textContent = note;
        drawCard(card);
      } catch (err) {
        message(card.querySelector(".chart"), "Could not load this chart: " + err.message, "error");
      }
    });
    loadPlotlyAfter(first, 1500);
  }

  return {
    board,
    palette, plotText, ema, traces, draw, show, sketch, message, clear, pointsNote, loadOptions,
    saveOptions, controls, whenVisible, eachInTurn, keyPath, plotly, loadPlotly, loadPlotlyAfter,
  };
})();
