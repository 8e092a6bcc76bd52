// The dispatch form: a suggested unit's button makes it the lead unit (one click). Without
// this script the first suggestion is preselected and the select works on its own.
(function () {
  "use strict";
  var buttons = document.querySelectorAll("button[data-pick]");
  Array.prototype.forEach.call(buttons, function (button) {
    var form = button.form;
    var select = form && form.elements[button.getAttribute("data-pick")];
    if (!select) return;
    function mark() {
      Array.prototype.forEach.call(buttons, function (b) {
        b.setAttribute("aria-pressed", String(b.getAttribute("data-value") === select.value));
      });
    }
    button.addEventListener("click", function () {
      select.value = button.getAttribute("data-value");
      select.dispatchEvent(new Event("change", { bubbles: true }));
      mark();
    });
    select.addEventListener("change", mark);
    mark();
  });
})();
