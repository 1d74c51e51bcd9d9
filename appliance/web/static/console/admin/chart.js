// Charts drawn as inline SVG from the appliance's own numbers: no library, no CDN.
//
// lineChart({series: [{name, points: [[x, y], ...]}], xLabel, yLabel, format}) and
// barChart({bars: [{label, value}], yLabel, format}) return an <figure> whose SVG has
// role="img" and an aria-label naming the series, and whose numbers are also in a visually
// hidden table (what a screen reader, and a test, reads).

const NS = "http://www.w3.org/2000/svg";
const COLOURS = ["#0b5cff", "#d92d20", "#1b7f46", "#a15c00", "#7a5af8", "#0e9384"];
const W = 560;
const H = 200;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function frame(label, yMax, format) {
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label, class: "chart" });
  const plotH = H - PAD.top - PAD.bottom;
  for (let i = 0; i <= 4; i += 1) {
    const y = PAD.top + plotH - (plotH * i) / 4;
    svg.appendChild(el("line", { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: "chart-grid" }));
    svg.appendChild(el("text", { x: PAD.left - 6, y: y + 4, "text-anchor": "end", class: "chart-tick" },
      format((yMax * i) / 4)));
  }
  return svg;
}

function dataTable(caption, head, rows) {
  const table = document.createElement("table");
  table.className = "sr-only";
  const cap = document.createElement("caption");
  cap.textContent = caption;
  table.appendChild(cap);
  const tr = document.createElement("tr");
  for (const cell of head) {
    const th = document.createElement("th");
    th.textContent = cell;
    tr.appendChild(th);
  }
  table.appendChild(tr);
  for (const row of rows) {
    const line = document.createElement("tr");
    for (const cell of row) {
      const td = document.createElement("td");
      td.textContent = cell;
      line.appendChild(td);
    }
    table.appendChild(line);
  }
  return table;
}

function figure(title, svg, legend, table) {
  const fig = document.createElement("figure");
  fig.className = "chart-figure";
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap, svg);
  if (legend) fig.appendChild(legend);
  fig.appendChild(table);
  return fig;
}

/** x values are numbers (e.g. epoch ms); `xFormat` renders them on the axis and in the table;
 * `xDomain` ([min, max]) fixes the axis, so charts of sparse series line up. */
export function lineChart({ title, series, format = String, xFormat = String, xDomain = null }) {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMin = xDomain ? xDomain[0] : xs.length ? Math.min(...xs) : 0;
  const xMax = xDomain ? xDomain[1] : xs.length ? Math.max(...xs) : 1;
  const yMax = niceMax(Math.max(0, ...ys));
  const svg = frame(`${title}: ${series.map((s) => s.name).join(", ")}`, yMax, format);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const px = (x) => PAD.left + (xs.length || xDomain ? ((x - xMin) / (xMax - xMin || 1)) * plotW : 0);
  const py = (y) => PAD.top + plotH - (y / yMax) * plotH;
  for (const x of xMax > xMin ? [xMin, xMax] : [xMin]) {
    svg.appendChild(el("text", { x: px(x), y: H - 8, "text-anchor": x === xMin ? "start" : "end",
      class: "chart-tick" }, xFormat(x)));
  }
  const legend = document.createElement("p");
  legend.className = "chart-legend";
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = s.points.map((p) => `${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
    if (s.points.length > 1) svg.appendChild(el("polyline", { points, fill: "none", stroke: colour,
      "stroke-width": 2, class: "chart-line" }));
    for (const p of s.points) svg.appendChild(el("circle", { cx: px(p[0]), cy: py(p[1]), r: 2.5, fill: colour }));
    const key = document.createElement("span");
    key.className = "chart-key";
    key.style.setProperty("--key", colour);
    key.textContent = s.name;
    legend.appendChild(key);
  });
  const rows = series.flatMap((s) => s.points.map((p) => [s.name, xFormat(p[0]), format(p[1])]));
  return figure(title, svg, legend, dataTable(title, ["series", "x", "y"], rows));
}

export function barChart({ title, bars, format = String }) {
  const yMax = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const svg = frame(title, yMax, format);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, bars.length);
  bars.forEach((b, i) => {
    const height = (Math.max(0, b.value) / yMax) * plotH;
    const x = PAD.left + i * slot + slot * 0.15;
    const rect = el("rect", { x, y: PAD.top + plotH - height, width: slot * 0.7, height, fill: COLOURS[0],
      class: "chart-bar" });
    rect.appendChild(el("title", {}, `${b.label}: ${format(b.value)}`));
    svg.appendChild(rect);
    if (bars.length <= 14 || i % Math.ceil(bars.length / 10) === 0) {
      svg.appendChild(el("text", { x: x + slot * 0.35, y: H - 8, "text-anchor": "middle", class: "chart-tick" },
        b.label));
    }
  });
  return figure(title, svg, null, dataTable(title, ["label", "value"], bars.map((b) => [b.label, format(b.value)])));
}
