// mltrail UI, compare page: metric overlays (one line per run; sketched at once, interactive
// when plotly.js has loaded), "only differences", parallel coordinates over chosen params and
// a metric, and a param/metric scatter.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("compare-data").textContent);
  const runs = data.runs;
  const P = mt.charts.palette;
  const colorOf = (i) => P[i % P.length];
  const plotText = mt.charts.plotText;
  const CONFIG = { displaylogo: false, responsive: true };

  document.querySelectorAll(".swatch[data-run-index]").forEach((el) => {
    el.style.background = colorOf(Number(el.dataset.runIndex));
  });

  // -- only differences --------------------------------------------------------------------
  const onlyDiff = document.getElementById("only-diff");
  const tables = document.getElementById("diff-tables");
  if (onlyDiff && tables) {
    const apply = () => {
      tables.classList.toggle("only-diff", onlyDiff.checked);
      const left = tables.querySelectorAll("tbody tr:not([data-same])").length;
      tables.querySelector(".all-same").hidden = !(onlyDiff.checked && left === 0);
    };
    onlyDiff.addEventListener("change", apply);
    apply();
  }

  // -- metric overlays ---------------------------------------------------------------------
  // Fewer points per run as runs grow, so a chart stays around 20k points in all.
  const points = Math.max(200, Math.min(1000, Math.floor(20000 / runs.length)));
  const ids = runs.map((r) => encodeURIComponent(r.id)).join(",");
  const byId = new Map(runs.map((r, i) => [r.id, i]));
  mt.charts.board(
    document.getElementById("chart-controls"),
    Array.from(document.querySelectorAll(".chart-card")),
    async (card) => {
      const reply = await mt.getJSON("/ui/data/metrics/" + mt.charts.keyPath(card.dataset.key) +
        "?runs=" + ids + "&points=" + points);
      const series = reply.runs.filter((s) => s.value.length).map((s) => {
        const i = byId.get(s.run_id);
        return Object.assign(s, { name: runs[i].name, color: colorOf(i) });
      });
      const missing = reply.runs.length - series.length;
      const note = mt.charts.pointsNote(series) +
        (missing ? " · " + missing + " run" + (missing > 1 ? "s" : "") + " without it" : "");
      return { series, note };
    },
    "None of these runs has points for it.",
    runs.length <= 12,
  );

  // Parallel coordinates and the scatter have no sketch: they draw when plotly.js is there.
  const withPlotly = (el, fn) => () => mt.charts.plotly().then(fn,
    (err) => mt.charts.message(el, err.message, "error"));

  // -- values for the analysis charts ------------------------------------------------------
  const valueOf = (run, ref) => {
    const [kind, ...rest] = ref.split(":");
    const key = rest.join(":");
    const v = kind === "metric" ? run.metrics[key] : run.params[key];
    return v === undefined ? null : v;
  };
  const asNumber = (v) => (v === null || v === "" ? NaN : Number(v));
  const numeric = (values) => values.every((v) => v === null || isFinite(asNumber(v))) &&
    values.some((v) => v !== null);
  const short = (s, n) => (s.length > n ? s.slice(0, n - 1) + "…" : s);

  // A parcoords dimension for values: numbers as they are, anything else as categories.
  const dimension = (label, values) => {
    if (numeric(values)) {
      return { label: plotText(short(label, 24)), values: values.map(asNumber) };
    }
    const cats = Array.from(new Set(values.map((v) => (v === null ? "—" : String(v))))).sort();
    return {
      label: plotText(short(label, 24)),
      values: values.map((v) => cats.indexOf(v === null ? "—" : String(v))),
      tickvals: cats.map((_, i) => i),
      ticktext: cats.map((c) => plotText(short(c, 16))),
      range: [0, Math.max(cats.length - 1, 1)],
    };
  };

  // -- parallel coordinates ----------------------------------------------------------------
  const pcForm = document.querySelector(".parcoords-form");
  const pcEl = document.getElementById("parcoords");
  if (pcForm && pcEl) {
    const boxes = Array.from(pcForm.querySelectorAll("input[name=pc-param]"));
    if (!boxes.some((b) => b.checked)) boxes.slice(0, 8).forEach((b) => { b.checked = true; });
    const metricSel = pcForm.querySelector("select[name=pc-metric]");
    const note = document.getElementById("parcoords-note");
    const drawParcoords = () => {
      const metric = metricSel.value;
      const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
      const used = runs.filter((r) => typeof r.metrics[metric] === "number");
      const left = runs.length - used.length;
      note.textContent = left ? left + " of " + runs.length + " runs have no value for the metric and are left out." : "";
      if (used.length < 2) {
        mt.charts.message(pcEl, "Fewer than 2 runs have a value for this metric.");
        return;
      }
      const dims = chosen.map((k) => dimension(k, used.map((r) => valueOf(r, "param:" + k))));
      const values = used.map((r) => r.metrics[metric]);
      dims.push({ label: plotText(short(metric, 24)), values });
      mt.charts.clear(pcEl);
      Plotly.react(pcEl, [{
        type: "parcoords",
        dimensions: dims,
        line: { color: values, colorscale: "Viridis", showscale: true, colorbar: { thickness: 10 } },
        labelangle: -20,
        labelfont: { size: 11 },
        tickfont: { size: 10 },
      }], { margin: { l: 60, r: 60, t: 56, b: 24 }, paper_bgcolor: "rgba(0,0,0,0)" }, CONFIG);
    };
    pcForm.addEventListener("change", withPlotly(pcEl, drawParcoords));
    mt.charts.whenVisible([pcEl], withPlotly(pcEl, drawParcoords));
  }

  // -- scatter -----------------------------------------------------------------------------
  const scForm = document.querySelector(".scatter-form");
  const scEl = document.getElementById("scatter-chart");
  if (scForm && scEl) {
    const xSel = scForm.querySelector("select[name=sc-x]");
    const ySel = scForm.querySelector("select[name=sc-y]");
    const note = document.getElementById("scatter-note");
    const label = (ref) => ref.split(":").slice(1).join(":");
    const drawScatter = () => {
      const pts = runs.map((r, i) => ({ r, i, x: valueOf(r, xSel.value), y: valueOf(r, ySel.value) }))
        .filter((p) => p.x !== null && typeof p.y === "number");
      const left = runs.length - pts.length;
      note.textContent = left ? left + " of " + runs.length + " runs lack one of the two values and are left out." : "";
      if (!pts.length) { mt.charts.message(scEl, "No run has both values."); return; }
      const isNum = numeric(pts.map((p) => p.x));
      mt.charts.clear(scEl);
      Plotly.react(scEl, [{
        type: "scatter", mode: "markers",
        x: pts.map((p) => (isNum ? asNumber(p.x) : plotText(String(p.x)))),
        y: pts.map((p) => p.y),
        text: pts.map((p) => plotText(p.r.name)),
        marker: { size: 10, color: pts.map((p) => colorOf(p.i)), line: { width: 1, color: "#fff" } },
        hovertemplate: "%{text}<br>%{x}, %{y:.6g}<extra></extra>",
      }], {
        margin: { l: 56, r: 12, t: 8, b: 48 },
        xaxis: { title: { text: plotText(label(xSel.value)) }, type: isNum ? "linear" : "category", automargin: true },
        yaxis: { title: { text: plotText(label(ySel.value)) }, automargin: true },
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      }, CONFIG);
    };
    scForm.addEventListener("change", withPlotly(scEl, drawScatter));
    mt.charts.whenVisible([scEl], withPlotly(scEl, drawScatter));
  }
});
