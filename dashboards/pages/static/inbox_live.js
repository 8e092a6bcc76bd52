// The message centre, live (dashboards/inbox_live.py): joins the user's own inbox room over
// Socket.IO and tells the centre (hotline/static/messages.js) when its inbox changed and
// whether the connection is up (on every connect it fetches what it missed).
//
// The Socket.IO client is the one the page already has (a board loads it: both namespaces
// then share one connection), else it is loaded from /vendor beside this script. Without it
// (assets not installed) the centre keeps asking every 15 seconds.
(function () {
  "use strict";
  if (!document.getElementById("message-centre")) return;
  var here = document.currentScript && document.currentScript.src;

  function tell(name, detail) {
    document.dispatchEvent(new CustomEvent(name, { detail: detail }));
  }

  function start() {
    if (!window.io) return;
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
  }

  if (window.io || !here) {
    start();
    return;
  }
  var client = document.createElement("script");
  client.src = new URL("../../vendor/socket.io.min.js", here).href;
  client.onload = start;
  document.head.appendChild(client);
})();
