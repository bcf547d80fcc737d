// mltrail UI, runs table: run selection for Compare (kept across pages), the column picker,
// menus that apply on change, and "/" to focus the filter. The page works without it.
"use strict";

(function () {
  const table = document.querySelector("table.runs");
  const compare = document.getElementById("compare");
  const status = document.getElementById("selection");
  const clear = document.getElementById("select-clear");
  const experiment = table ? table.dataset.experiment : location.pathname.split("/").pop();
  const maxCompare = table ? Number(table.dataset.maxCompare) : 100;
  // Per tab and experiment, so runs picked on page 1 are still picked on page 3.
  const storeKey = "mltrail.runs.selected." + experiment;

  const load = () => {
    try { return new Set(JSON.parse(sessionStorage.getItem(storeKey) || "[]")); }
    catch (e) { return new Set(); }
  };
  const selected = load();
  const save = () => sessionStorage.setItem(storeKey, JSON.stringify(Array.from(selected)));

  const runBoxes = () => Array.from(document.querySelectorAll("table.runs input[name=runs]"));

  // A header box is ticked when all its runs are, half-ticked when some are.
  function mirror(box, boxes) {
    const on = boxes.filter((b) => b.checked).length;
    box.checked = boxes.length > 0 && on === boxes.length;
    box.indeterminate = on > 0 && on < boxes.length;
  }

  function refresh() {
    const boxes = runBoxes();
    boxes.forEach((b) => {
      b.checked = selected.has(b.value);
      b.closest("tr").classList.toggle("picked", b.checked);
    });
    const page = document.getElementById("select-page");
    if (page) mirror(page, boxes);
    document.querySelectorAll("input[data-group-box]").forEach((g) => {
      mirror(g, boxes.filter((b) => b.closest("tr").dataset.group === g.dataset.groupBox));
    });
    const n = selected.size;
    const here = boxes.filter((b) => b.checked).length;
    let text = "Select runs to compare";
    if (n) {
      text = n + " run" + (n === 1 ? "" : "s") + " selected";
      if (n > here) text += " (" + (n - here) + " on other pages)";
      if (n > maxCompare) text += "; compare takes at most " + maxCompare;
    }
    if (status) status.textContent = text;
    if (clear) clear.hidden = n === 0;
    if (compare) {
      compare.disabled = n < 2 || n > maxCompare;
      compare.textContent = n >= 2 ? "Compare " + n : "Compare";
    }
  }

  function setRuns(boxes, on) {
    boxes.forEach((b) => { if (on) selected.add(b.value); else selected.delete(b.value); });
    save();
    refresh();
  }

  document.addEventListener("change", (ev) => {
    const box = ev.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
    if (box.name === "runs") setRuns([box], box.checked);
    else if (box.id === "select-page") setRuns(runBoxes(), box.checked);
    else if (box.dataset.groupBox) {
      const group = box.dataset.groupBox;
      setRuns(runBoxes().filter((b) => b.closest("tr").dataset.group === group), box.checked);
    }
  });

  if (clear) clear.addEventListener("click", () => { selected.clear(); save(); refresh(); });

  if (compare) {
    compare.addEventListener("click", (ev) => {
      ev.preventDefault();
      if (selected.size < 2 || selected.size > maxCompare) return;
      const ids = Array.from(selected).map(encodeURIComponent).join(",");
      location.assign("/compare?runs=" + ids);
    });
  }

  // Column picker: narrow the list as you type; apply keeping the columns' current order.
  const picker = document.getElementById("cols-form");
  if (picker) {
    const find = picker.querySelector("[data-find]");
    find.addEventListener("input", () => {
      const word = find.value.trim().toLowerCase();
      picker.querySelectorAll("fieldset label").forEach((label) => {
        label.hidden = word !== "" && !label.textContent.toLowerCase().includes(word);
      });
    });
    find.addEventListener("keydown", (ev) => { if (ev.key === "Enter") ev.preventDefault(); });
    picker.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const ticked = Array.from(picker.querySelectorAll("input[name=cols]:checked")).map((b) => b.value);
      const before = (picker.dataset.cols || "").split(",").filter(Boolean);
      const cols = before.filter((k) => ticked.includes(k)).concat(ticked.filter((k) => !before.includes(k)));
      const query = new URLSearchParams();
      new FormData(picker).forEach((value, name) => {
        if (name !== "cols" && value !== "") query.append(name, value);
      });
      query.set("cols", cols.join(","));
      location.assign(location.pathname + "?" + query.toString());
    });
    picker.closest("details").addEventListener("toggle", (ev) => {
      if (ev.target.open) find.focus();
    });
  }

  // Menus (group by, page size) apply as soon as they change.
  document.querySelectorAll("select[data-autosubmit]").forEach((menu) => {
    menu.addEventListener("change", () => menu.form.requestSubmit());
  });

  // "/" jumps to the filter, as in many search UIs; Escape closes the column picker.
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target.closest && ev.target.closest("input, textarea, select");
    if (ev.key === "/" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      const filter = document.getElementById("filter");
      if (filter) { filter.focus(); filter.select(); ev.preventDefault(); }
    } else if (ev.key === "Escape" && picker) {
      const details = picker.closest("details");
      if (details.open) { details.open = false; details.querySelector("summary").focus(); }
    }
  });

  refresh();
})();
