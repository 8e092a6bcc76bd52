// The header's message centre (base.html): the bell's unread count, the newest items of the
// user's own inbox in a panel, mark one read, mark all read (JSON API, hotline/api/inbox.py,
// with the session's CSRF token in X-CSRF-Token).
//
// Kept current without reloading: a live script (dashboards/pages/static/inbox_live.js, over
// Socket.IO) sends "hotline:inbox-changed" when the inbox changed and "hotline:inbox-live"
// when its connection comes or goes. While it is connected the centre refreshes on each change
// (and, should a message be lost, once a minute); without it, it asks every 15 seconds.
(function () {
  "use strict";
  var root = document.getElementById("message-centre");
  if (!root) return;
  var POLL_MS = 15000;
  var LIVE_CHECK_MS = 60000;
  var bell = root.querySelector(".mc-bell");
  var panel = root.querySelector(".mc-panel");
  var list = root.querySelector(".mc-list");
  var empty = root.querySelector(".mc-empty");
  var problem = root.querySelector(".mc-error");
  var count = root.querySelector(".mc-count");
  var readAll = root.querySelector(".mc-read-all");
  var token = (document.querySelector("meta[name=csrf-token]") || {}).content || "";
  var newest = 0;
  var live = false;
  var timer = null;
  var loading = null;
  var again = false;

  function showCount(unread) {
    count.textContent = unread > 99 ? "99+" : String(unread);
    count.hidden = unread === 0;
    root.dataset.unread = String(unread);
    bell.setAttribute("aria-label", unread ? "消息中心，" + unread + " 条未读" : "消息中心，没有未读消息");
    readAll.disabled = unread === 0;
  }

  function say(text) {
    problem.textContent = text || "";
    problem.hidden = !text;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Every text from the server goes in as text: titles name tickets, never markup.
  function render(items) {
    list.textContent = "";
    newest = 0;
    items.forEach(function (item) {
      if (item.id > newest) newest = item.id;
      var li = element("li", "mc-item level-" + item.level.value + (item.read_at ? " read" : " unread"));
      li.dataset.id = String(item.id);
      var head = element("div", "mc-line");
      head.appendChild(element("span", "mc-level level-" + item.level.value, item.badge));
      head.appendChild(element("span", "mc-title", item.title));
      li.appendChild(head);
      var meta = element("div", "mc-meta");
      meta.appendChild(element("time", "mc-time", item.created_local));
      if (item.ticket) {
        var link = element("a", "mc-ticket", item.ticket);
        link.href = "/tickets/" + encodeURIComponent(item.ticket);
        if (!item.read_at) {
          // Opening the ticket is reading the message.
          link.addEventListener("click", function () {
            post(root.dataset.readPrefix + item.id + "/read", null, true);
          });
        }
        meta.appendChild(link);
      }
      if (!item.read_at) {
        var mark = element("button", "mc-mark", "标为已读");
        mark.type = "button";
        mark.addEventListener("click", function () {
          post(root.dataset.readPrefix + item.id + "/read").then(refresh);
        });
        meta.appendChild(mark);
      }
      li.appendChild(meta);
      list.appendChild(li);
    });
    empty.hidden = items.length > 0;
  }

  function post(url, body, keepalive) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive: !!keepalive,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!answer.success) throw new Error(answer.error ? answer.error.message : "操作失败");
        say("");
        return answer.data;
      });
    }).catch(function (error) {
      say(error.message && /[\u4e00-\u9fff]/.test(error.message) ? error.message : "网络不通，请稍后重试");
    });
  }

  // One request at a time; a change noticed meanwhile asks once more when it is answered.
  function refresh() {
    if (loading) {
      again = true;
      return loading;
    }
    loading = fetch(root.dataset.summary, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) throw new Error("登录已过期，请刷新页面重新登录");
        return response.json();
      })
      .then(function (answer) {
        if (!answer.success) throw new Error(answer.error ? answer.error.message : "读取消息失败");
        showCount(answer.data.unread);
        render(answer.data.items);
        say("");
      })
      .catch(function (error) {
        say(error.message && /[\u4e00-\u9fff]/.test(error.message) ? error.message : "网络不通，消息稍后更新");
      })
      .then(function () {
        loading = null;
        if (again) {
          again = false;
          refresh();
        }
      });
    return loading;
  }

  function schedule() {
    if (timer) clearInterval(timer);
    timer = setInterval(refresh, live ? LIVE_CHECK_MS : POLL_MS);
  }

  function open(show) {
    panel.hidden = !show;
    bell.setAttribute("aria-expanded", show ? "true" : "false");
    root.classList.toggle("open", show);
    if (show) refresh();
  }

  bell.addEventListener("click", function (event) {
    // The bell is a link to the full list (without scripts); with them it opens the panel.
    event.preventDefault();
    open(panel.hidden);
  });
  document.addEventListener("click", function (event) {
    if (!panel.hidden && !root.contains(event.target)) open(false);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !panel.hidden) {
      open(false);
      bell.focus();
    }
  });
  readAll.addEventListener("click", function () {
    post(root.dataset.readAll, newest ? { up_to: newest } : {}).then(refresh);
  });
  document.addEventListener("hotline:inbox-changed", function () {
    refresh();
  });
  document.addEventListener("hotline:inbox-live", function (event) {
    live = !!(event.detail && event.detail.connected);
    root.dataset.live = live ? "1" : "0";
    schedule();
    // (Re)connected: whatever changed while away is fetched now (the catch-up).
    if (live) refresh();
  });
  showCount(parseInt(root.dataset.unread || count.textContent, 10) || 0);
  schedule();
})();
