// The finish form's live reply check (办结审核): while the handler types the result, ask
// POST /api/v1/tickets/<number>/reply-check (debounced) and show the automatic check's
// verdict and reasons in Chinese, with textContent only. The handler may still submit a
// flagged reply (it then waits for the hotline's review); without this script the form works
// the same, the check then runs only when the reply is submitted.
(function () {
  "use strict";
  var text = document.getElementById("finish-result");
  var box = document.getElementById("reply-check");
  if (!text || !box) return;
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var url = text.getAttribute("data-reply-check");
  var verdict = box.querySelector(".reply-check-verdict");
  var list = box.querySelector(".reply-check-reasons");
  var DELAY = 500;
  var timer = null, seq = 0, last = null;

  function show(data) {
    while (list.firstChild) list.removeChild(list.firstChild);
    box.hidden = false;
    box.classList.toggle("poor", !!data.poor);
    verdict.textContent = data.poor
      ? "自动检查：答复疑似不合格，提交后须经热线审核才发送诉求人。建议修改："
      : "自动检查：答复说明了办理情况，未发现问题。";
    (data.reasons || []).forEach(function (reason) {
      var item = document.createElement("li");
      item.textContent = reason;
      list.appendChild(item);
    });
  }

  function check() {
    var value = text.value.trim();
    if (!value) { box.hidden = true; last = null; return; }
    if (value === last) return;
    last = value;
    var mine = ++seq;
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ result: value })
    }).then(function (r) { return r.json(); }).then(function (j) {
      if (mine === seq && j && j.success) show(j.data);
    }).catch(function () { /* the check is a help: the form works without it */ });
  }

  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(check, DELAY);
  });
  if (text.value.trim()) check();
})();
