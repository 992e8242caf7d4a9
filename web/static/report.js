// The missed-call report's chart: a stacked bar chart drawn as inline SVG, no library.
//
// <div data-chart="ID"> reads the JSON in <script type="application/json" id="ID">:
//   {"title": "...", "labels": ["00", ..., "23"],
//    "series": [{"key": "unanswered", "label": "...", "values": [24 numbers]}, ...]}
// Each series is one layer of the bars (class "bar-<key>"); every bar has a <title> tooltip.
// <button data-print> prints the page.
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) {
      node.setAttribute(key, String(attrs[key]));
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A round step for the value axis: 1, 2 or 5 times a power of ten.
  function niceStep(max, ticks) {
    var raw = Math.max(max, 1) / ticks;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * power >= raw) return Math.max(1, steps[i] * power);
    }
    return Math.max(1, 10 * power);
  }

  function draw(holder, data) {
    var labels = data.labels || [];
    var series = data.series || [];
    var n = labels.length;
    var totals = labels.map(function (_, i) {
      return series.reduce(function (sum, s) { return sum + (Number(s.values[i]) || 0); }, 0);
    });
    var max = Math.max.apply(null, totals.concat([0]));
    var step = niceStep(max, 4);
    var top = Math.max(step, Math.ceil(max / step) * step);

    var width = 720, height = 240;
    var left = 40, right = 10, upper = 24, lower = 28;
    var plotW = width - left - right, plotH = height - upper - lower;
    var slot = plotW / Math.max(n, 1), barW = Math.max(2, slot * 0.7);
    var y = function (v) { return upper + plotH - (v / top) * plotH; };

    var svg = el("svg", {
      viewBox: "0 0 " + width + " " + height,
      "class": "bar-chart",
      role: "img",
      "aria-label": data.title || ""
    });
    svg.appendChild(el("title", {}, data.title || ""));

    for (var tick = 0; tick <= top; tick += step) {
      svg.appendChild(el("line", { "class": "grid", x1: left, x2: width - right, y1: y(tick), y2: y(tick) }));
      svg.appendChild(el("text", { x: left - 4, y: y(tick) + 3, "text-anchor": "end" }, String(tick)));
    }

    labels.forEach(function (label, i) {
      var x = left + i * slot + (slot - barW) / 2;
      var base = 0;
      series.forEach(function (s) {
        var value = Number(s.values[i]) || 0;
        if (value > 0) {
          var bar = el("rect", {
            "class": "bar bar-" + s.key,
            x: x.toFixed(1),
            y: y(base + value).toFixed(1),
            width: barW.toFixed(1),
            height: (y(base) - y(base + value)).toFixed(1),
            "data-hour": label,
            "data-series": s.key,
            "data-value": value
          });
          bar.appendChild(el("title", {}, label + ":00 · " + s.label + ": " + value));
          svg.appendChild(bar);
        }
        base += value;
      });
      if (n <= 24 || i % 2 === 0) {
        svg.appendChild(el("text", { x: left + i * slot + slot / 2, y: height - lower + 14, "text-anchor": "middle" }, label));
      }
    });
    svg.appendChild(el("line", { "class": "axis", x1: left, x2: width - right, y1: y(0), y2: y(0) }));
    svg.appendChild(el("line", { "class": "axis", x1: left, x2: left, y1: upper, y2: y(0) }));

    var legendX = left;
    series.forEach(function (s) {
      svg.appendChild(el("rect", { "class": "bar-" + s.key, x: legendX, y: 6, width: 10, height: 10 }));
      var text = el("text", { x: legendX + 14, y: 15 }, s.label);
      svg.appendChild(text);
      legendX += 24 + 11 * String(s.label).length;
    });

    holder.textContent = "";
    holder.appendChild(svg);
  }

  function init() {
    document.querySelectorAll("[data-chart]").forEach(function (holder) {
      var source = document.getElementById(holder.getAttribute("data-chart"));
      if (!source) return;
      try {
        draw(holder, JSON.parse(source.textContent));
      } catch (error) {
        holder.textContent = "";
        if (window.console) window.console.error("report chart:", error);
      }
    });
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
