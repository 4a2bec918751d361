// ecsmesh GUI: live filtering of the rows on the page and an optional
// reload every 10 s. No inline code: the page's CSP allows this file only.
"use strict";
(function () {
  function filterRows(box) {
    var table = document.querySelector(box.getAttribute("data-table"));
    if (!table) { return; }
    var needle = box.value.trim().toLowerCase();
    var rows = table.tBodies[0].rows, shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var hit = needle === "" || rows[i].textContent.toLowerCase().indexOf(needle) >= 0;
      rows[i].hidden = !hit;
      if (hit) { shown++; }
    }
    table.setAttribute("data-shown", String(shown));
  }
  document.querySelectorAll("input.filter-box").forEach(function (box) {
    box.addEventListener("input", function () { filterRows(box); });
  });

  var auto = document.getElementById("autorefresh");
  if (auto) {
    var key = "ecsmesh-gui-autorefresh", timer = null;
    var arm = function () {
      if (timer) { clearTimeout(timer); timer = null; }
      if (auto.checked) { timer = setTimeout(function () { window.location.reload(); }, 10000); }
    };
    try { auto.checked = window.localStorage.getItem(key) === "1"; } catch (e) { /* storage off */ }
    auto.addEventListener("change", function () {
      try { window.localStorage.setItem(key, auto.checked ? "1" : "0"); } catch (e) { /* storage off */ }
      arm();
    });
    arm();
  }
})();
