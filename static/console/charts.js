// Daily spend charts on the overview, drawn with uPlot from the page's own JSON.
(function () {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const palette = ["#3450a1", "#e07b39", "#2a9d8f", "#b5179e", "#8ab17d", "#e9c46a", "#6c757d"];
  const dollars = (v) => v == null ? "" : v === 0 ? "$0" : "$" + (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4));
  function draw(id, chart) {
    const el = document.getElementById(id);
    if (!el) return;
    if (!chart.series.length) {
      el.innerHTML = '<p class="empty">No spend this month yet.</p>';
      return;
    }
    const opts = {
      width: el.clientWidth,
      height: 240,
      scales: { x: { time: true } },
      axes: [{}, { values: (u, vals) => vals.map(dollars), size: 60 }],
      series: [{}].concat(chart.series.map((s, i) => ({
        label: s.label, stroke: palette[i % palette.length], width: 2,
        fill: palette[i % palette.length] + "22", value: (u, v) => dollars(v), points: { size: 5 },
      }))),
    };
    new uPlot(opts, [chart.x].concat(chart.series.map((s) => s.values)), el);
  }
  draw("chart-team", data.team);
  draw("chart-model", data.model);
})();
