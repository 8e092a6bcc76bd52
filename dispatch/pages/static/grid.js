// Grid worker pages: fill the position from the device, and send each form once.
// Browsers report WGS-84; the form says so (position_source=device) and the server converts.
(function () {
  "use strict";
  document.querySelectorAll("[data-locate]").forEach(function (button) {
    var form = button.form;
    var status = form.querySelector("[data-locate-status]");
    button.addEventListener("click", function () {
      if (!navigator.geolocation) {
        status.textContent = "此设备或浏览器不支持定位，请手动填写经纬度";
        return;
      }
      status.textContent = "正在获取定位…";
      navigator.geolocation.getCurrentPosition(
        function (position) {
          form.elements.lng.value = position.coords.longitude.toFixed(6);
          form.elements.lat.value = position.coords.latitude.toFixed(6);
          form.elements.position_source.value = "device";
          status.textContent = "已获取定位（精度约 " + Math.round(position.coords.accuracy) + " 米）";
        },
        function (error) {
          var why = error.code === 1 ? "未允许使用定位" : "暂时无法获取位置";
          status.textContent = "定位失败：" + why + "，请手动填写经纬度";
        },
        { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
      );
    });
  });
  // Numbers typed by hand are read off a Chinese map (GCJ-02), not the device's.
  document.querySelectorAll("input[name=lng], input[name=lat]").forEach(function (input) {
    input.addEventListener("input", function () {
      input.form.elements.position_source.value = "manual";
    });
  });
  // A second tap while the first submission is on its way would only be refused.
  document.querySelectorAll("form[data-once]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
        button.textContent = "提交中…";
      }
    });
  });
})();
