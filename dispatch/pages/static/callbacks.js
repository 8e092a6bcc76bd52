// 回访台 (followup_callbacks.html). Without this script the page still works: the filter has
// its own button (<noscript>) and the server refuses an impossible mix of answers.
(function () {
  "use strict";
  // The "仅显示到期" filter applies as soon as it is ticked.
  document.querySelectorAll("input[data-submit-on-change]").forEach(function (input) {
    input.addEventListener("change", function () { input.form.submit(); });
  });
  // Solved and satisfied are asked only when the call was answered: switch them off otherwise
  // (a disabled fieldset is not submitted).
  document.querySelectorAll("form.call").forEach(function (form) {
    function sync() {
      var chosen = form.querySelector('input[name="outcome"]:checked');
      var off = chosen !== null && chosen.value !== "answered";
      form.querySelectorAll("fieldset.answer").forEach(function (set) { set.disabled = off; });
    }
    form.querySelectorAll('input[name="outcome"]').forEach(function (radio) {
      radio.addEventListener("change", sync);
    });
    sync();
  });
})();
