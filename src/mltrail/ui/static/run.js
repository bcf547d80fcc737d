// mltrail UI, run page: one chart per metric (fetched as it scrolls into view, sketched at
// once, made interactive when plotly.js has loaded, redrawn on x axis / smoothing / log
// changes) and artifact previews shown without leaving the page.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const runPath = "/runs/" + encodeURIComponent(data.run_id);

  // -- charts ------------------------------------------------------------------------------
  mt.charts.board(
    document.getElementById("chart-controls"),
    Array.from(document.querySelectorAll(".chart-card")),
    async (card) => {
      const key = card.dataset.key;
      const s = await mt.getJSON(
        "/ui/data/runs/" + encodeURIComponent(data.run_id) + "/metrics/" + mt.charts.keyPath(key));
      s.name = key;
      return { series: [s], note: mt.charts.pointsNote([s]) };
    },
    "No points in this series.",
    false,
  );

  // -- artifact previews -------------------------------------------------------------------
  const pane = document.getElementById("artifact-preview");
  if (!pane) return;
  document.addEventListener("click", async (ev) => {
    const link = ev.target.closest("a[data-preview]");
    if (!link || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    const path = link.dataset.preview;
    const inList = document.querySelector(".artifact-list") &&
      link.closest(".artifacts") !== null;
    if (!inList) return; // e.g. the code section's diff link: a normal navigation
    ev.preventDefault();
    pane.setAttribute("aria-busy", "true");
    try {
      const reply = await fetch(runPath + "/artifacts/preview?path=" + encodeURIComponent(path),
        { headers: { Accept: "text/html" } });
      if (!reply.ok) throw new Error(reply.statusText);
      // The fragment is our own server-rendered template (every value escaped by Jinja2).
      pane.innerHTML = await reply.text();
      document.querySelectorAll(".files tr.focus").forEach((r) => r.classList.remove("focus"));
      const row = link.closest("tr");
      if (row) row.classList.add("focus");
      history.replaceState(null, "", runPath + "?file=" + encodeURIComponent(path) + "#artifacts");
    } catch (err) {
      location.assign(link.href); // the page itself can show the preview too
    } finally {
      pane.removeAttribute("aria-busy");
    }
  });
});
