/* 我要反映 (templates/citizen/submit.html): the extras over the plain form, which works without
   this script. "使用我的位置" fills lng/lat with the device's WGS-84 position (the server
   converts it to the map's GCJ-02); 获取验证码 asks POST /citizen/codes and counts down;
   while the citizen types, POST /citizen/suggest shows "可能属于：类别" and, for an emergency
   wording, the line to call (emergency_seen=1 is then sent with the request); 匿名反映 hides
   the phone fields; the submit button is disabled after the first tap. */
(function () {
  "use strict";
  var form = document.getElementById("citizen-form");
  if (!form) return;
  var csrf = form.querySelector("input[name=csrf_token]").value;

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () {
        return { success: false, error: { message: "网络异常或页面已过期，请刷新页面后重试" } };
      });
    });
  }

  // -- 匿名反映 ------------------------------------------------------------------------------
  var phoneBlock = document.getElementById("contact-phone");
  var notice = document.getElementById("anonymous-notice");
  function contactChanged() {
    var anonymous = form.querySelector("input[name=contact][value=anonymous]").checked;
    phoneBlock.hidden = anonymous;
    notice.classList.toggle("c-warn", anonymous);
  }
  form.querySelectorAll("input[name=contact]").forEach(function (radio) {
    radio.addEventListener("change", contactChanged);
  });
  contactChanged();

  // -- 使用我的位置 ----------------------------------------------------------------------------
  var locate = document.getElementById("locate");
  var status = document.getElementById("position-status");
  function say(text) { status.textContent = text; status.hidden = false; }
  if (navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      say("正在获取位置…");
      navigator.geolocation.getCurrentPosition(function (position) {
        document.getElementById("lng").value = position.coords.longitude.toFixed(6);
        document.getElementById("lat").value = position.coords.latitude.toFixed(6);
        document.getElementById("position_source").value = "device";
        var accuracy = Math.round(position.coords.accuracy || 0);
        say("已获取您的位置" + (accuracy ? "（精度约 " + accuracy + " 米）" : "") + "，可再补充详细地址");
      }, function (error) {
        say(error.code === 1 ? "未获得定位权限，请手动填写地址" : "暂时无法获取位置，请手动填写地址");
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  // -- 获取验证码 ---------------------------------------------------------------------------
  var codeButton = document.getElementById("get-code");
  var codeStatus = document.getElementById("code-status");
  var resend = parseInt(form.dataset.resend, 10) || 60;
  function countdown(seconds) {
    codeButton.disabled = true;
    var left = seconds;
    codeButton.textContent = left + " 秒后重新获取";
    var timer = setInterval(function () {
      left -= 1;
      if (left <= 0) {
        clearInterval(timer);
        codeButton.disabled = false;
        codeButton.textContent = "获取验证码";
      } else {
        codeButton.textContent = left + " 秒后重新获取";
      }
    }, 1000);
  }
  codeButton.addEventListener("click", function (event) {
    event.preventDefault();
    codeStatus.hidden = false;
    codeStatus.classList.remove("c-field-error");
    codeStatus.textContent = "正在发送…";
    codeButton.disabled = true;
    post(form.dataset.codes, { phone: document.getElementById("phone").value }).then(function (answer) {
      if (answer.success) {
        codeStatus.textContent = "验证码已发送，请查收短信（5 分钟内有效）";
        countdown(answer.data.resend_after || resend);
        document.getElementById("code").focus();
      } else {
        codeButton.disabled = false;
        codeStatus.classList.add("c-field-error");
        codeStatus.textContent = answer.error.message;
      }
    }, function () {
      codeButton.disabled = false;
      codeStatus.classList.add("c-field-error");
      codeStatus.textContent = "网络异常，请稍后重试";
    });
  });

  // -- 可能属于 / 紧急提示 -------------------------------------------------------------------
  var content = document.getElementById("content");
  var suggestion = document.getElementById("suggestion");
  var emergency = document.getElementById("emergency");
  var seen = document.getElementById("emergency_seen");
  var asked = "";
  var wait = null;
  function show(data) {
    suggestion.hidden = !data.category;
    suggestion.textContent = data.category ? "可能属于：" + data.category : "";
    emergency.hidden = !data.emergency;
    if (data.emergency) {
      document.getElementById("emergency-line").textContent = data.emergency;
      document.getElementById("emergency-call-line").textContent = data.emergency;
      document.getElementById("emergency-call").href = "tel:" + data.emergency;
      seen.value = "1";
    }
  }
  function ask() {
    var text = content.value.trim();
    if (text === asked || text.length < 4) return;
    asked = text;
    post(form.dataset.suggest, { content: text }).then(function (answer) {
      if (answer.success && asked === text) show(answer.data);
    }, function () { /* the suggestion is a help, never a requirement */ });
  }
  content.addEventListener("input", function () {
    clearTimeout(wait);
    wait = setTimeout(ask, 600);
  });
  if (content.value.trim()) ask();

  // -- one request per tap ------------------------------------------------------------------
  var submit = document.getElementById("submit");
  form.addEventListener("submit", function (event) {
    if (event.submitter && event.submitter !== submit) return;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    submit.textContent = "正在提交…";
    setTimeout(function () { submit.disabled = true; }, 0);
  });
})();
