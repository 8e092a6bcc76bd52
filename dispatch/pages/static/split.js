// The split form (拆单): every row is rendered (blank rows are no children), so the form works
// without script; with it, only the first two rows and those already filled show, and
// "再添加一项" shows the next one.
(function () {
  "use strict";
  var form = document.getElementById("split-form");
  var add = document.getElementById("split-add");
  if (!form || !add) return;
  var rows = form.querySelectorAll("fieldset[data-split-row]");
  Array.prototype.forEach.call(rows, function (row, i) {
    var text = row.querySelector("textarea");
    if (i >= 2 && text && !text.value.trim()) row.hidden = true;
  });
  function hiddenRows() {
    return form.querySelectorAll("fieldset[data-split-row][hidden]");
  }
  add.hidden = hiddenRows().length === 0;
  add.addEventListener("click", function () {
    var next = hiddenRows()[0];
    if (next) {
      next.hidden = false;
      var text = next.querySelector("textarea");
      if (text) text.focus();
    }
    add.hidden = hiddenRows().length === 0;
  });
})();
