// mltrail UI: metric line charts on plotly.js (run page, compare page).
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
  function whenVisible(elements, fn) {
    if (!("IntersectionObserver" in window)) { elements.forEach(fn); return; }
    const seen = new IntersectionObserver((entries) => {
      entries.forEach((e) => {
        if (e.isIntersecting) { seen.unobserve(e.target); fn(e.target); }
      });
    }, { rootMargin: "400px" });
    elements.forEach((el) => seen.observe(el));
  }

  // A URL path segment for a metric key (slashes included, so the key stays one value).
  function keyPath(key) { return encodeURIComponent(key); }

  return {
    palette, plotText, ema, traces, draw, message, clear, pointsNote, loadOptions, saveOptions,
    controls, whenVisible, keyPath,
  };
})();
