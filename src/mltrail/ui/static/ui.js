// mltrail UI: shared helpers and keyboard navigation for tables marked data-keynav.
"use strict";
window.mt = window.mt || {};

// Fetch JSON; an error reply ({message, hint}) becomes an Error carrying both.
mt.getJSON = async function (url, options) {
  const reply = await fetch(url, Object.assign({ headers: { Accept: "application/json" } }, options));
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const err = new Error(body.message || reply.statusText);
    err.hint = body.hint;
    throw err;
  }
  return body;
};

// Arrow keys move between rows, Home/End jump, Enter opens the row's first link.
mt.keynav = function (table) {
  const rows = () => Array.from(table.tBodies[0] ? table.tBodies[0].rows : []);
  rows().forEach((r) => { if (!r.hasAttribute("tabindex")) r.tabIndex = -1; });
  if (rows().length) rows()[0].tabIndex = 0;
  table.addEventListener("keydown", (ev) => {
    const all = rows();
    const row = ev.target.closest("tr");
    const i = all.indexOf(row);
    if (i < 0) return;
    let next = null;
    if (ev.key === "ArrowDown") next = all[Math.min(i + 1, all.length - 1)];
    else if (ev.key === "ArrowUp") next = all[Math.max(i - 1, 0)];
    else if (ev.key === "Home" && ev.ctrlKey) next = all[0];
    else if (ev.key === "End" && ev.ctrlKey) next = all[all.length - 1];
    else if (ev.key === "Enter" && ev.target === row) {
      const link = row.querySelector("a[href]");
      if (link) link.click();
      return;
    } else if (ev.key === " " && ev.target === row) {
      const box = row.querySelector("input[type=checkbox]");
      if (box) { box.click(); ev.preventDefault(); }
      return;
    }
    if (next) {
      all.forEach((r) => { r.tabIndex = -1; });
      next.tabIndex = 0;
      next.focus();
      ev.preventDefault();
    }
  });
};

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table[data-keynav]").forEach(mt.keynav);
});
