// Small SVG charts for the dashboard. No library: every label is set with
// textContent, so names that came from senders are never parsed as markup.
// Labels are measured once drawn, so none is ever cut off at an edge.
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

/** Width of a drawn text element in the SVG's own units (0 when not laid out). */
function textWidth(el) {
  try {
    return el.getComputedTextLength();
  } catch (_) {
    return 0;
  }
}

// Horizontal bars: one per protocol, packets in blue with the anomalous part
// in red. The label column is as wide as the longest name; a count that would
// run past the right edge is drawn inside its bar instead.
function protocolChart(svg, rows) {
  clear(svg);
  const width = 420, rowH = 26, pad = 6;
  const shown = rows.slice(0, 8);
  const height = Math.max(60, shown.length * rowH + 10);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (shown.length === 0) {
    svg.appendChild(svgEl("text", { x: 10, y: 30 }, "No traffic in this range."));
    return;
  }
  const labels = shown.map((r, i) => {
    const t = svgEl("text", { x: 0, y: 6 + i * rowH + 15, "text-anchor": "end", class: "label" }, r.protocol);
    svg.appendChild(t);
    return t;
  });
  // Not laid out (a hidden page): guess 7 units a character.
  const measured = Math.max(...labels.map(textWidth));
  const labelW = measured > 0 ? measured : 7 * Math.max(...shown.map((r) => r.protocol.length));
  const left = Math.ceil(labelW) + 2 * pad;
  labels.forEach((t) => t.setAttribute("x", String(left - pad)));
  const max = Math.max(1, ...shown.map((r) => r.packets));
  const span = width - left - pad;
  shown.forEach((r, i) => {
    const y = 6 + i * rowH;
    const w = (r.packets / max) * span;
    const wBad = (r.anomalies / max) * span;
    const bar = svgEl("rect", { x: left, y, width: Math.max(1, w), height: rowH - 8, rx: 3, class: "bar" });
    bar.appendChild(svgEl("title", {}, `${r.protocol}: ${r.packets} packets, ${r.anomalies} anomalies`));
    svg.appendChild(bar);
    if (r.anomalies > 0) {
      svg.appendChild(svgEl("rect", { x: left, y, width: Math.max(2, wBad), height: rowH - 8, rx: 3, class: "bar-bad" }));
    }
    const value = svgEl("text", { x: left + w + pad, y: y + 15, class: "value" }, `${compact(r.packets)} / ${compact(r.anomalies)}`);
    svg.appendChild(value);
    if (left + w + pad + textWidth(value) > width - 2) {
      value.setAttribute("x", String(left + w - pad));
      value.setAttribute("text-anchor", "end");
      value.setAttribute("class", "value inbar");
    }
  });
}

/** A bucket's start as the axis shows it: the clock, with the day for long ranges. */
function bucketLabel(iso, bucketSeconds) {
  const d = new Date(iso);
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  if (bucketSeconds < 900) return time;
  return `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

// Packets per bucket above, anomalies per bucket below on their own axis (so
// a burst of anomalies shows however much traffic there is). The last
// bucket, still filling, is drawn dashed and hollow and says so.
function timeChart(svg, data) {
  clear(svg);
  const points = data.points || [];
  const bucket = data.bucket_seconds || 60;
  const width = 640, height = 250, left = 48, right = 12;
  const top = { y0: 10, y1: 140 }, low = { y0: 164, y1: 222 };
  const n = Math.max(1, points.length - 1);
  const x = (i) => left + (i / n) * (width - left - right);
  const last = points[points.length - 1];
  const now = data.now ? Date.parse(data.now) : Date.now();
  const filled = last ? Math.min(1, Math.max(0, (now - Date.parse(last.minute)) / (bucket * 1000))) : 1;
  const partial = last && filled < 1;

  const panel = (p, key, cls, name) => {
    const max = Math.max(1, ...points.map((q) => q[key]));
    const y = (v) => p.y0 + (1 - v / max) * (p.y1 - p.y0);
    svg.appendChild(svgEl("line", { x1: left, y1: p.y1, x2: width - right, y2: p.y1, class: "axis" }));
    svg.appendChild(svgEl("line", { x1: left, y1: p.y0, x2: left, y2: p.y1, class: "axis" }));
    svg.appendChild(svgEl("text", { x: left - 6, y: p.y0 + 8, "text-anchor": "end" }, compact(max)));
    svg.appendChild(svgEl("text", { x: left - 6, y: p.y1, "text-anchor": "end" }, "0"));
    svg.appendChild(svgEl("text", { x: left + 6, y: p.y0 + 8, class: "panel-name" }, name));
    const whole = partial ? points.slice(0, -1) : points;
    svg.appendChild(svgEl("polyline", {
      points: whole.map((q, i) => `${x(i).toFixed(1)},${y(q[key]).toFixed(1)}`).join(" "),
      class: cls,
    }));
    if (partial && points.length > 1) {
      const i = points.length - 1;
      svg.appendChild(svgEl("polyline", {
        points: `${x(i - 1).toFixed(1)},${y(points[i - 1][key]).toFixed(1)} ${x(i).toFixed(1)},${y(last[key]).toFixed(1)}`,
        class: `${cls} partial`,
      }));
    }
    if (partial) {
      const dot = svgEl("circle", { cx: x(points.length - 1), cy: y(last[key]), r: 3.5, class: `${cls}-dot partial` });
      dot.appendChild(svgEl("title", {}, `${last[key]} ${name} so far: this bucket is ${Math.round(100 * filled)}% over`));
      svg.appendChild(dot);
    }
    return y;
  };
  panel(top, "packets", "line", "packets");
  const yBad = panel(low, "anomalies", "line-bad", "anomalies");
  points.forEach((p, i) => {
    if (p.anomalies > 0 && !(partial && i === points.length - 1)) {
      const dot = svgEl("circle", { cx: x(i), cy: yBad(p.anomalies), r: 2.5, class: "dot-bad" });
      dot.appendChild(svgEl("title", {}, `${bucketLabel(p.minute, bucket)}: ${p.anomalies} anomalies of ${p.packets} packets`));
      svg.appendChild(dot);
    }
  });
  if (points.length > 0) {
    svg.appendChild(svgEl("text", { x: left, y: height - 6 }, bucketLabel(points[0].minute, bucket)));
    const end = svgEl("text", { x: width - right, y: height - 6, "text-anchor": "end" },
      partial ? `${bucketLabel(last.minute, bucket)} (partial)` : bucketLabel(last.minute, bucket));
    svg.appendChild(end);
  }
}

window.NSCharts = { protocolChart, timeChart, compact };
