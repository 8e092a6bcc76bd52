// A hot issue's timeline (热点问题时间线): tickets per day as bars, the key moments as marks.
// The page lists the moments without script; this draws the chart when ECharts loaded.
(function () {
  "use strict";
  var node = document.getElementById("timeline-chart");
  var data = document.getElementById("timeline-data");
  if (!node || !data || typeof echarts === "undefined") return;
  var chart = JSON.parse(data.textContent);
  var days = chart.days.map(function (d) { return d.date; });
  var counts = chart.days.map(function (d) { return d.count; });
  // Each moment's local date comes from the server (config TIMEZONE), as the days do.
  var marks = chart.moments
    .filter(function (m) { return m.day && days.indexOf(m.day) >= 0; })
    .map(function (m) { return { xAxis: m.day, name: m.label }; });
  var plot = echarts.init(node);
  plot.setOption({
    animation: false,
    grid: { left: 40, right: 20, top: 30, bottom: 40 },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: days },
    yAxis: { type: "value", minInterval: 1, name: "件" },
    series: [{
      type: "bar",
      name: "工单数",
      data: counts,
      itemStyle: { color: "#b71c1c" },
      markLine: {
        symbol: "none",
        label: { formatter: "{b}", fontSize: 11 },
        lineStyle: { color: "#1e88e5", type: "dashed" },
        data: marks,
      },
    }],
  });
  window.addEventListener("resize", function () { plot.resize(); });
})();
