// Small SVG charts for the dashboard. No library: every label is set with
// textContent, so names that came from senders are never parsed as markup.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function clear(svg) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
}

function compact(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(0) + "k";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return String(n);
}

// Horizontal bars: one per protocol, packets in blue with the anomalous part in red.
function protocolChart(svg, rows) {
  clear(svg);
  const width = 420, rowH = 26, left = 80, right = 60;
  const shown = rows.slice(0, 8);
  const height = Math.max(60, shown.length * rowH + 10);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (shown.length === 0) {
    svg.appendChild(svgEl("text", { x: 10, y: 30 }, "No traffic yet."));
    return;
  }
  const max = Math.max(1, ...shown.map((r) => r.packets));
  const span = width - left - right;
  shown.forEach((r, i) => {
    const y = 6 + i * rowH;
    const w = (r.packets / max) * span;
    const wBad = (r.anomalies / max) * span;
    svg.appendChild(svgEl("text", { x: left - 8, y: y + 15, "text-anchor": "end" }, r.protocol));
    const bar = svgEl("rect", { x: left, y, width: Math.max(1, w), height: rowH - 8, rx: 3, class: "bar" });
    bar.appendChild(svgEl("title", {}, `${r.protocol}: ${r.packets} packets, ${r.anomalies} anomalies`));
    svg.appendChild(bar);
    if (r.anomalies > 0) {
      svg.appendChild(svgEl("rect", { x: left, y, width: Math.max(2, wBad), height: rowH - 8, rx: 3, class: "bar-bad" }));
    }
    svg.appendChild(svgEl("text", { x: left + w + 6, y: y + 15 }, `${compact(r.packets)} / ${compact(r.anomalies)}`));
  });
}

// Two lines over time: packets and anomalies per minute, with a shared y axis.
function timeChart(svg, points) {
  clear(svg);
  const width = 640, height = 230, left = 44, bottom = 22, top = 10, right = 10;
  const max = Math.max(1, ...points.map((p) => p.packets));
  const n = Math.max(1, points.length - 1);
  const x = (i) => left + (i / n) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  svg.appendChild(svgEl("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), class: "axis" }));
  svg.appendChild(svgEl("line", { x1: left, y1: top, x2: left, y2: y(0), class: "axis" }));
  svg.appendChild(svgEl("text", { x: left - 6, y: top + 8, "text-anchor": "end" }, compact(max)));
  svg.appendChild(svgEl("text", { x: left - 6, y: y(0), "text-anchor": "end" }, "0"));
  if (points.length > 0) {
    const label = (p) => new Date(p.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.appendChild(svgEl("text", { x: left, y: height - 4 }, label(points[0])));
    svg.appendChild(svgEl("text", { x: width - right, y: height - 4, "text-anchor": "end" }, label(points[points.length - 1])));
  }
  const path = (key) => points.map((p, i) => `${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  svg.appendChild(svgEl("polyline", { points: path("packets"), class: "line" }));
  svg.appendChild(svgEl("polyline", { points: path("anomalies"), class: "line-bad" }));
  points.forEach((p, i) => {
    if (p.anomalies > 0) {
      const dot = svgEl("circle", { cx: x(i), cy: y(p.anomalies), r: 2.5, class: "dot-bad" });
      dot.appendChild(svgEl("title", {}, `${p.anomalies} anomalies of ${p.packets} packets`));
      svg.appendChild(dot);
    }
  });
}

window.NSCharts = { protocolChart, timeChart, compact };
