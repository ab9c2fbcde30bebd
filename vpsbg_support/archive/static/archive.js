// vpsbg-support archive index: sort by any column, filter by text and status.
// Runs from file:// with no server. The table is complete without it; this only reorders and
// hides rows. No network access, no eval, no inline handlers (the page's CSP forbids them).
"use strict";

(function () {
  const table = document.getElementById("tickets");
  const controls = document.getElementById("controls");
  if (!table || !controls) return;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const filterInput = document.getElementById("filter");
  const statusSelect = document.getElementById("status");
  const shown = document.getElementById("shown");
  const headers = Array.from(table.tHead.rows[0].cells);
  // Lower-cased text of each row, computed once: filtering 10,000 rows stays instant.
  const texts = rows.map((row) => row.textContent.toLowerCase());

  function cellValue(row, column, type) {
    const text = row.cells[column].textContent.trim();
    if (type === "number") {
      const value = Number(text);
      return Number.isNaN(value) ? -Infinity : value;
    }
    return text.toLowerCase();
  }

  function sortBy(column) {
    const header = headers[column];
    const type = header.dataset.type;
    const direction = header.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    const keyed = rows.map((row, index) => [cellValue(row, column, type), index, row]);
    keyed.sort((a, b) => {
      if (a[0] < b[0]) return -direction;
      if (a[0] > b[0]) return direction;
      return a[1] - b[1];
    });
    headers.forEach((h) => h.removeAttribute("aria-sort"));
    header.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
    const fragment = document.createDocumentFragment();
    keyed.forEach((entry) => fragment.appendChild(entry[2]));
    body.appendChild(fragment);
  }

  function applyFilter() {
    const words = filterInput.value.toLowerCase().split(/\s+/).filter(Boolean);
    const status = statusSelect.value;
    let count = 0;
    rows.forEach((row, index) => {
      const visible =
        (!status || row.dataset.status === status) &&
        words.every((word) => texts[index].includes(word));
      row.hidden = !visible;
      if (visible) count += 1;
    });
    shown.textContent = String(count);
  }

  headers.forEach((header, column) => {
    const button = header.querySelector("button");
    if (button) button.addEventListener("click", () => sortBy(column));
  });
  filterInput.addEventListener("input", applyFilter);
  statusSelect.addEventListener("change", applyFilter);
  controls.addEventListener("submit", (event) => event.preventDefault());
  controls.hidden = false;
  applyFilter();
})();
