// 事项分类: expand or collapse every branch of the tree at once.
(function () {
  "use strict";
  document.querySelectorAll("[data-cat-expand]").forEach(function (button) {
    button.addEventListener("click", function () {
      var open = button.getAttribute("data-cat-expand") === "open";
      document.querySelectorAll(".cat-tree details").forEach(function (d) { d.open = open; });
    });
  });
})();
