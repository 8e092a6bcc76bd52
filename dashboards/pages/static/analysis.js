/* The 民情分析 report's charts: ECharts over the figures the page carries (#analysis-charts,
   the report's own numbers), each copied to an <img> that the print layout shows instead of
   the chart, so a printed or saved PDF holds sharp, A4-wide pictures. Without ECharts (assets
   not installed) the tables still say everything. */
(function () {
  "use strict";
  var source = document.getElementById("analysis-charts");
  var button = document.querySelector(".print-button");
  if (button) button.addEventListener("click", function () { window.print(); });
  if (!source || !window.echarts) return;
  var data = JSON.parse(source.textContent);
  var font = '"PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", "WenQuanYi Zen Hei", sans-serif';
  var current = "#b71c1c";
  var previous = "#90a4ae";

  function pairedBars(rows, horizontal, previousName) {
    var names = rows.map(function (r) { return r.name; });
    var category = { type: "category", data: names, axisLabel: { interval: 0 } };
    var value = { type: "value", minInterval: 1 };
    if (horizontal) { category.inverse = true; } else { category.axisLabel.rotate = 30; }
    return {
      tooltip: { trigger: "axis" },
      legend: { top: 4 },
      grid: { left: 12, right: 24, top: 36, bottom: 12, containLabel: true },
      xAxis: horizontal ? value : category,
      yAxis: horizontal ? category : value,
      series: [
        { name: "本期", type: "bar", barMaxWidth: 36, data: rows.map(function (r) { return r.current; }), itemStyle: { color: current } },
        { name: previousName, type: "bar", barMaxWidth: 36, data: rows.map(function (r) { return r.previous; }), itemStyle: { color: previous } }
      ]
    };
  }

  var previousName = data.trend.previous_name;
  var builders = {
    trend: function (d) {
      return {
        title: { text: "受理量趋势", left: 8, top: 4, textStyle: { fontSize: 14 } },
        tooltip: { trigger: "axis" },
        legend: { top: 4 },
        grid: { left: 12, right: 24, top: 40, bottom: 12, containLabel: true },
        xAxis: { type: "category", data: d.labels, boundaryGap: false },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: d.current_name, type: "line", data: d.current, symbolSize: 4, itemStyle: { color: current }, areaStyle: { opacity: 0.08 } },
          { name: d.previous_name, type: "line", data: d.previous, symbolSize: 3, itemStyle: { color: previous }, lineStyle: { type: "dashed" } }
        ]
      };
    },
    channel: function (rows) {
      return {
        title: { text: "按渠道", left: 8, top: 4, textStyle: { fontSize: 14 } },
        tooltip: { trigger: "item", formatter: "{b}：{c} 件（{d}%）" },
        series: [{
          type: "pie", radius: ["35%", "65%"], center: ["50%", "56%"],
          label: { formatter: "{b}\n{c} 件" },
          data: rows
        }]
      };
    },
    category: function (rows) {
      var option = pairedBars(rows, true, previousName);
      option.title = { text: "按一级分类", left: 8, top: 4, textStyle: { fontSize: 14 } };
      option.legend.right = 8;
      return option;
    },
    area: function (rows) {
      var option = pairedBars(rows, false, previousName);
      option.title = { text: "按区域", left: 8, top: 4, textStyle: { fontSize: 14 } };
      return option;
    },
    quality: function (rows) {
      function pct(key) { return rows.map(function (r) { return r[key] === null ? null : Math.round(r[key] * 1000) / 10; }); }
      return {
        title: { text: "解决率与满意率（%）", left: 8, top: 4, textStyle: { fontSize: 14 } },
        tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + "%"; } },
        legend: { top: 4 },
        grid: { left: 12, right: 24, top: 40, bottom: 12, containLabel: true },
        xAxis: { type: "category", data: rows.map(function (r) { return r.name; }), axisLabel: { interval: 0, rotate: 30 } },
        yAxis: { type: "value", min: 0, max: 100 },
        series: [
          { name: "解决率", type: "bar", barMaxWidth: 36, data: pct("resolution"), itemStyle: { color: "#1565c0" } },
          { name: "满意率", type: "bar", barMaxWidth: 36, data: pct("satisfaction"), itemStyle: { color: "#2e7d32" } }
        ]
      };
    },
    keywords: function (rows) {
      var option = pairedBars(rows, true, previousName);
      option.title = { text: "关键词（提及工单件数）", left: 8, top: 4, textStyle: { fontSize: 14 } };
      option.legend.right = 8;
      return option;
    }
  };

  var charts = [];
  document.querySelectorAll("[data-chart]").forEach(function (box) {
    var name = box.getAttribute("data-chart");
    var figures = data[name];
    var empty = !figures || (Array.isArray(figures) && figures.length === 0);
    if (empty) {
      box.classList.add("empty");
      box.textContent = "本期无数据";
      return;
    }
    var chart = window.echarts.init(box, null, { renderer: "canvas" });
    var option = builders[name](figures);
    option.animation = false;
    option.textStyle = { fontFamily: font };
    chart.setOption(option);
    var image = document.createElement("img");
    image.className = "chart-image";
    image.decoding = "sync";
    image.alt = box.getAttribute("aria-label") || "";
    // Once, as first drawn (animation off: drawn at setOption). Not again on a resize: a
    // print started meanwhile would catch the picture half loaded.
    image.src = chart.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
    box.parentNode.insertBefore(image, box.nextSibling);
    charts.push(chart);
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
  document.body.setAttribute("data-charts", String(charts.length));
})();
