// 承办单位 form: filter the areas served by name or code, and count what is ticked per
// district. The checkboxes are the form; without this script they work the same.
(function () {
  "use strict";
  document.querySelectorAll("[data-area-checklist]").forEach(function (box) {
    var filter = box.querySelector(".area-filter");
    var groups = Array.prototype.slice.call(box.querySelectorAll(".area-group"));

    function count(group) {
      var n = group.querySelectorAll("input[type=checkbox]:checked").length;
      group.querySelector(".picked-count").textContent = n ? "已选 " + n : "";
    }
    groups.forEach(function (group) {
      group.addEventListener("change", function () { count(group); });
    });

    filter.hidden = false;
    filter.addEventListener("input", function () {
      var q = filter.value.trim().toLowerCase();
      groups.forEach(function (group) {
        var summary = group.querySelector("summary").textContent.toLowerCase();
        var whole = q && summary.indexOf(q) >= 0;
        var any = false;
        group.querySelectorAll("label.check").forEach(function (label) {
          var hit = !q || whole || label.textContent.toLowerCase().indexOf(q) >= 0;
          label.hidden = !hit;
          any = any || hit;
        });
        group.hidden = !any;
        if (q && any) group.open = true;
      });
    });
  });
})();
