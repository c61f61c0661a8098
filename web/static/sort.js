// Sortable tables: click a header of a table.sortable to sort by that column (again: reverse).
// Cells may carry data-value (a number) when the text is formatted (e.g. "82.5%").
(function () {
  "use strict";
  function key(cell, numeric) {
    var raw = cell.getAttribute("data-value");
    var text = raw !== null ? raw : cell.textContent.trim();
    if (!numeric) { return text; }
    var n = parseFloat(text);
    return isNaN(n) ? -Infinity : n;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, index) {
      th.classList.add("sort");
      th.setAttribute("tabindex", "0");
      th.setAttribute("role", "button");
      function sort() {
        var numeric = th.getAttribute("data-sort") === "num";
        var asc = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("thead th").forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[index], numeric), y = key(b.cells[index], numeric);
          var c = numeric ? x - y : String(x).localeCompare(String(y), "zh");
          return asc ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
    });
  });
}());
