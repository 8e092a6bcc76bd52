// The message centre, live (dashboards/inbox_live.py): joins the user's own inbox room over
// Socket.IO and tells the centre (hotline/static/messages.js) when its inbox changed and
// whether the connection is up (on every connect it fetches what it missed).
(function () {
  "use strict";
  if (!window.io || !document.getElementById("message-centre")) return;
  function tell(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }
  var socket = window.io("/inbox", { transports: ["websocket", "polling"] });
  socket.on("connect", function () {
    tell("hotline:inbox-live", { connected: true });
  });
  socket.on("disconnect", function () {
    tell("hotline:inbox-live", { connected: false });
  });
  socket.on("connect_error", function () {
    tell("hotline:inbox-live", { connected: false });
  });
  socket.on("changed", function () {
    tell("hotline:inbox-changed", {});
  });
})();
