// mltrail lineage page: pointing at (or tabbing to) a node highlights its edges and neighbours.
// The graph itself is server-rendered SVG; this only toggles classes (no markup is built here).
"use strict";
(function () {
  const svg = document.getElementById("lineage-graph");
  if (!svg) return;
  const nodes = Array.from(svg.querySelectorAll("a.node"));
  const edges = Array.from(svg.querySelectorAll("path.edge"));
  const byKey = new Map(nodes.map((n) => [n.dataset.key, n]));

  function light(key) {
    svg.classList.add("focusing");
    byKey.get(key).classList.add("lit");
    edges.forEach((e) => {
      const src = e.dataset.src;
      const dst = e.dataset.dst;
      if (src !== key && dst !== key) return;
      e.classList.add("lit");
      const other = byKey.get(src === key ? dst : src);
      if (other) other.classList.add("lit");
    });
  }

  function clear() {
    svg.classList.remove("focusing");
    svg.querySelectorAll(".lit").forEach((el) => el.classList.remove("lit"));
  }

  // A graph a little wider than the page is shrunk to fit (a whole pipeline at a glance); a much
  // wider one keeps its size and scrolls, since shrinking it further makes the labels unreadable.
  function fit() {
    const natural = Number(svg.getAttribute("width"));
    const room = svg.parentElement.clientWidth - 2;
    svg.style.width = natural > room && natural <= room * 1.6 ? room + "px" : "";
    svg.style.height = "auto";
  }
  fit();
  window.addEventListener("resize", fit);

  nodes.forEach((n) => {
    n.addEventListener("mouseenter", () => light(n.dataset.key));
    n.addEventListener("mouseleave", clear);
    n.addEventListener("focus", () => light(n.dataset.key));
    n.addEventListener("blur", clear);
  });
})();
