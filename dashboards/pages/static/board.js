// Live board: keeps the server-rendered board current over Socket.IO (dashboards/socket.py).
// Every value from the server is written with textContent, never as HTML.
//
// Nothing is lost when updates are: every update names the one before it ("previous"). When
// that is not the last one this board got (Redis was away, the connection dropped), or after
// a reconnect, the board asks the server for the tickets after the newest one it holds
// ("catch_up") and adds those it has not shown.
(function () {
  "use strict";

  var FEED_MAX = 50;
  var board = document.getElementById("board");
  if (!board) return;
  var room = board.dataset.room;
  var namespace = board.dataset.namespace;
  var statusEl = board.querySelector('[data-testid="status"]');
  var initial = JSON.parse(document.getElementById("snapshot-data").textContent);
  var chart = null;

  function $(testid) {
    return board.querySelector('[data-testid="' + testid + '"]');
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Every ticket on the board opens its ticket page (board viewers may open them all: a
  // district's board shows only tickets located in it, as its leader's scope).
  function ticketLink(number, className, text) {
    var a = el("a", className, text);
    a.href = "/tickets/" + encodeURIComponent(number);
    return a;
  }

  function numberCell(number) {
    var td = el("td", "text");
    td.append(ticketLink(number, null, number));
    return td;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function clock(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  // "12/4 08:00": a deadline in a narrow column.
  function shortWhen(iso) {
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    return (d.getMonth() + 1) + "/" + d.getDate() + " " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function pct(value) {
    return value === null || value === undefined ? "—" : (value * 100).toFixed(1) + "%";
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    statusEl.textContent = text;
  }

  function counters(today, asOf) {
    $("intake-today").textContent = today.received;
    $("dispatched-today").textContent = today.dispatched;
    $("signed-today").textContent = today.signed;
    $("overdue-count").textContent = today.overdue;
    $("as-of").textContent = clock(asOf);
    [["by-channel", today.by_channel], ["by-type", today.by_type]].forEach(function (pair) {
      var body = $(pair[0]).tBodies[0];
      body.replaceChildren();
      pair[1].forEach(function (item) {
        var tr = el("tr");
        tr.dataset.code = item.code;
        tr.append(el("td", "text", item.label), el("td", "num", item.count));
        body.append(tr);
      });
    });
  }

  function rateRow(row, name) {
    var tr = el("tr");
    tr.append(
      el("td", "text", name),
      el("td", "num", row.dispatched),
      el("td", "num", pct(row.response_rate)),
      el("td", "num", pct(row.resolution_rate)),
      el("td", "num", pct(row.satisfaction_rate))
    );
    return tr;
  }

  function rates(testid, period) {
    var body = $(testid).tBodies[0];
    body.replaceChildren();
    period.rows.forEach(function (row) {
      var tr = rateRow(row, row.name);
      tr.dataset.code = row.code || "";
      body.append(tr);
    });
    if (!period.rows.length) {
      var empty = el("tr");
      var cell = el("td", "text", "暂无派单工单");
      cell.colSpan = 5;
      empty.append(cell);
      body.append(empty);
    }
    if (period.total) {
      var total = rateRow(period.total, period.total.name + "合计");
      total.className = "total";
      body.append(total);
    }
  }

  function overdue(items) {
    var body = $("overdue").tBodies[0];
    body.replaceChildren();
    items.forEach(function (item) {
      var tr = el("tr");
      tr.dataset.ticket = item.number;
      tr.append(
        numberCell(item.number),
        el("td", "text", item.title),
        el("td", "text", item.unit),
        el("td", null, shortWhen(item.due)),
        el("td", "num", item.hours)
      );
      body.append(tr);
    });
    if (!items.length) {
      var tr = el("tr");
      var cell = el("td", "text", "暂无超期工单");
      cell.colSpan = 5;
      tr.append(cell);
      body.append(tr);
    }
  }

  function feedItem(item) {
    var li = el("li");
    li.dataset.ticket = item.number;
    li.dataset.id = item.id;
    li.append(
      el("span", "time", clock(item.received_at)),
      el("span", "tag", item.channel),
      el("span", "tag", item.type),
      el("span", "place", item.place),
      document.createTextNode(" "),
      el("span", "category", item.category),
      ticketLink(item.number, "title", item.title)
    );
    return li;
  }

  // The feed: newest ticket first (by its id, the order tickets were received in), each
  // ticket once, at most FEED_MAX; tickets a catch-up brings back go where they belong.
  function feed(items, replace) {
    var list = $("feed");
    if (replace) list.replaceChildren();
    var empty = list.querySelector(".empty");
    if (empty) empty.remove();
    var added = false;
    for (var i = 0; i < items.length; i++) {
      if (list.querySelector('[data-ticket="' + CSS.escape(items[i].number) + '"]')) continue;
      list.append(feedItem(items[i]));
      added = true;
    }
    if (added) {
      var rows = Array.prototype.slice.call(list.children);
      rows.sort(function (a, b) {
        return Number(b.dataset.id) - Number(a.dataset.id);
      });
      list.replaceChildren.apply(list, rows.slice(0, FEED_MAX));
    }
    if (!list.children.length) list.append(el("li", "empty", "今日暂无新工单"));
  }

  function trend(data) {
    if (!window.echarts) return;
    if (!chart) chart = window.echarts.init(document.getElementById("trend-chart"), "dark");
    chart.setOption({
      backgroundColor: "transparent",
      // Drawn on the canvas: ECharts' HTML tooltip writes style="…" attributes, which the
      // page's Content-Security-Policy (style-src 'self', hotline/headers.py) refuses.
      tooltip: { trigger: "axis", renderMode: "richText" },
      // ECharts 6 puts the legend at the bottom by default, over the hour labels: it goes
      // above the plot, right of the axis' top, with the plot starting below it.
      legend: { data: ["今日", "昨日"], top: 0, right: 8, textStyle: { fontSize: 14 } },
      // (ECharts 6 keeps the axis labels inside the grid's bounds by itself.)
      grid: { left: 8, right: 16, top: 34, bottom: 4 },
      xAxis: { type: "category", data: data.hours, axisLabel: { fontSize: 13 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: 13 } },
      series: [
        { name: "今日", type: "line", smooth: true, data: data.today },
        { name: "昨日", type: "line", smooth: true, data: data.yesterday, lineStyle: { type: "dashed" } },
      ],
    });
  }

  // The map of the room's areas (districts on the city board, streets on a district's),
  // coloured by today's intake or the current overdue count of each, by where the problem
  // is. The outlines come once from the dashboards API; the figures with every snapshot and
  // update.
  var MAP_NAME = "board-" + room;
  var METRICS = {
    received: { label: "今日受理", colors: ["#17324f", "#2f7fc1", "#4fc3f7"] },
    overdue: { label: "当前超期", colors: ["#17324f", "#b85c38", "#ff7043"] },
  };
  var mapPanel = board.querySelector(".map-panel");
  var mapChart = null;
  var mapReady = false;
  var mapMetric = "received";
  var mapData = initial.map;

  function mapNames() {
    var names = {};
    mapData.areas.forEach(function (area) {
      names[area.code] = area;
    });
    return names;
  }

  function drawMap() {
    if (!mapReady) return;
    var byCode = mapNames();
    var metric = METRICS[mapMetric];
    var max = 0;
    var data = mapData.areas.map(function (area) {
      max = Math.max(max, area[mapMetric]);
      return { name: area.code, value: area[mapMetric] };
    });
    mapChart.setOption({
      backgroundColor: "transparent",
      tooltip: {
        trigger: "item",
        renderMode: "richText",
        formatter: function (p) {
          var area = byCode[p.name];
          if (!area) return "";
          return area.name + "\n今日受理 " + area.received + " 件\n当前超期 " + area.overdue + " 件";
        },
      },
      visualMap: {
        type: "continuous",
        min: 0,
        max: Math.max(max, 1),
        left: 8,
        bottom: 8,
        itemHeight: 110,
        text: ["多", "少"],
        calculable: false,
        inRange: { color: metric.colors },
        textStyle: { color: "#cfe3ff", fontSize: 14 },
      },
      series: [
        {
          type: "map",
          map: MAP_NAME,
          nameProperty: "code",
          roam: false,
          left: 70,
          right: 8,
          top: 8,
          bottom: 8,
          selectedMode: false,
          // Small neighbouring areas: their labels move apart rather than overlap.
          labelLayout: { moveOverlap: "shiftY" },
          itemStyle: { borderColor: "#0b1726", borderWidth: 1.5, areaColor: "#17324f" },
          emphasis: { label: { color: "#fff" }, itemStyle: { areaColor: "#3d6f9e" } },
          label: {
            show: true,
            color: "#fff",
            fontSize: 15,
            textBorderColor: "#0b1726",
            textBorderWidth: 3,
            formatter: function (p) {
              var area = byCode[p.name];
              return area ? area.name + "\n" + area[mapMetric] : "";
            },
          },
          data: data,
        },
      ],
    }, { replaceMerge: ["series"] });
  }

  function mapFigures(map) {
    mapData = map;
    var place = map.level === "district" ? "区县" : "街道乡镇";
    var u = map.unplaced;
    $("map-unplaced").textContent = u.received || u.overdue
      ? "未定位到" + place + "：今日受理 " + u.received + " 件，当前超期 " + u.overdue + " 件"
      : "";
    var body = $("map-data").tBodies[0];
    body.replaceChildren();
    map.areas.forEach(function (area) {
      var tr = el("tr");
      tr.dataset.code = area.code;
      tr.append(el("td", "text", area.name), el("td", null, area.received), el("td", null, area.overdue));
      body.append(tr);
    });
    drawMap();
  }

  function loadMap() {
    var url = board.dataset.mapUrl;
    if (!window.echarts || !url || !window.fetch) return;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        return r.json();
      })
      .then(function (body) {
        if (!body || !body.success || !body.data.features.length) return;
        window.echarts.registerMap(MAP_NAME, body.data);
        $("map-approximate").hidden = !body.data.approximate;
        mapPanel.classList.add("drawn");
        mapChart = window.echarts.init(document.getElementById("area-map"), "dark");
        mapReady = true;
        drawMap();
      })
      .catch(function () {
        // No outlines: the page keeps the figures as a table.
      });
  }

  mapPanel.querySelectorAll(".toggle button").forEach(function (button) {
    button.addEventListener("click", function () {
      mapMetric = button.dataset.metric;
      mapPanel.querySelectorAll(".toggle button").forEach(function (other) {
        other.setAttribute("aria-pressed", String(other === button));
      });
      $("map-metric").textContent = METRICS[mapMetric].label;
      $("map").setAttribute("aria-label", "各区域" + METRICS[mapMetric].label + "地图");
      drawMap();
    });
  });

  // 热点问题: the room's five hottest open hot issues (refreshed with every update, and by
  // the update a "hotspot.changed" event brings).
  function hotIssues(items) {
    var list = $("hot-issues");
    if (!list || !items) return;
    list.replaceChildren();
    items.forEach(function (item) {
      var li = el("li");
      li.dataset.id = item.id;
      var a = el("a", "title", item.title);
      a.href = "/hotspots/" + encodeURIComponent(item.id);
      var growth = el("span", "growth" + (item.recent > item.previous ? " up" : ""),
        item.recent + " / " + item.previous);
      li.append(a, el("span", "size", item.size + " 件"), growth);
      list.append(li);
    });
    if (!items.length) list.append(el("li", "empty", "暂无热点问题"));
  }

  // The early warnings' banner (预警): the room's open warnings, newest (sudden) first.
  function warningBanner(data) {
    var banner = $("warning-banner");
    if (!banner || !data) return;
    banner.hidden = !data.count;
    banner.classList.toggle("red", data.items.length > 0 && data.items[0].level === "red");
    $("warning-count").textContent = data.count;
    var list = $("warning-items");
    list.replaceChildren();
    data.items.forEach(function (item) {
      var li = el("li", "level-" + item.level);
      li.dataset.id = item.id;
      var link = el("a", null, item.title);
      link.href = "/warnings/" + encodeURIComponent(item.id);
      li.append(el("span", "warning-kind", item.label), link);
      list.append(li);
    });
  }

  function render(snapshot, replaceFeed) {
    warningBanner(snapshot.warnings);
    counters(snapshot.today, snapshot.as_of);
    if (snapshot.map) mapFigures(snapshot.map);
    rates("rates-today", snapshot.rates.today);
    rates("rates-month", snapshot.rates.month);
    overdue(snapshot.overdue);
    trend(snapshot.trend);
    feed(snapshot.feed, replaceFeed);
    noteFeed(snapshot.feed);
    hotIssues(snapshot.hot_issues);
  }

  // The newest ticket the board holds (the catch-up cursor) and the last update it got
  // (null right after a snapshot: the room was joined before it was computed, so the next
  // update, whatever it follows, misses nothing).
  var newestId = 0;
  var lastAsOf = null;
  function noteFeed(items) {
    for (var i = 0; i < items.length; i++) {
      if (items[i].id > newestId) newestId = items[i].id;
    }
  }
  noteFeed(initial.feed);

  // One catch-up at a time; a gap noticed meanwhile asks again when it is answered.
  var catchingUp = false;
  var askAgain = false;
  function catchUp() {
    if (catchingUp) {
      askAgain = true;
      return;
    }
    catchingUp = true;
    socket.timeout(10000).emit("catch_up", { after: newestId }, function (error, answer) {
      catchingUp = false;
      if (!error && answer && answer.ok) {
        feed(answer.feed, false);
        noteFeed(answer.feed);
      }
      if (askAgain) {
        askAgain = false;
        catchUp();
      }
    });
  }

  // Server-rendered times are ISO; show them as local clock times.
  board.querySelectorAll(".feed .time").forEach(function (node) {
    node.textContent = clock(node.dataset.at);
  });
  board.querySelectorAll("[data-testid=overdue] time").forEach(function (node) {
    node.textContent = shortWhen(node.dataset.at);
  });
  $("as-of").textContent = clock(initial.as_of);
  trend(initial.trend);
  loadMap();
  window.addEventListener("resize", function () {
    if (chart) chart.resize();
    if (mapChart) mapChart.resize();
  });

  if (!window.io) {
    setStatus("offline", "实时组件未安装，显示的是打开页面时的数据");
    return;
  }
  var socket = window.io(namespace, { auth: { room: room }, transports: ["websocket", "polling"] });
  socket.on("connect", function () {
    setStatus("online", "实时连接中");
  });
  socket.on("disconnect", function () {
    setStatus("offline", "已断开，正在重连…");
  });
  socket.on("connect_error", function () {
    // Refused by the server (not logged in any more, or not this board's viewer): the
    // client does not retry on its own.
    if (!socket.active) setStatus("denied", "无权查看该看板或登录已过期，请刷新页面重新登录");
    else setStatus("offline", "已断开，正在重连…");
  });
  var connectedBefore = false;
  socket.on("snapshot", function (snapshot) {
    // A first snapshot replaces the page's; after a reconnect, what came meanwhile is
    // fetched and added instead (the snapshot has only the newest tickets).
    render(snapshot, !connectedBefore);
    lastAsOf = null;
    if (connectedBefore) catchUp();
    connectedBefore = true;
  });
  socket.on("update", function (update) {
    var missed = lastAsOf !== null && update.previous !== lastAsOf;
    render(update, false);
    lastAsOf = update.as_of;
    if (missed) catchUp();
  });
})();
