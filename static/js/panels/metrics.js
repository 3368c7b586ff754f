/* The metrics page (teachers and admins): the server's last hour, one point a second, from /api/metrics. The whole
   hour is asked for once when the page opens, then only the seconds that are new; one lightweight-charts chart per
   figure. Nothing is polled while the page is not shown. */

import { $, el } from "../format.js";
import { classroom } from "../api.js";

const POLL_MS = 2000;
const WINDOW_S = 3600;
const COLORS = ["#1a56c4", "#b3261e", "#0a7d32", "#a15c00", "#7b1fa2", "#00838f", "#5d4037", "#c2185b"];

const pair = (p) => (p ? [["p50", p.p50], ["p99", p.p99]] : []);
const FIGURES = [
  { id: "connections", title: "Connections by endpoint", lines: (s) => Object.entries(s.connections || {}) },
  { id: "messages", title: "Messages per second",
    lines: (s) => [["in", s.messagesInPerSecond], ["out", s.messagesOutPerSecond]] },
  { id: "send-success", title: "Send success rate", lines: (s) => [["sent / tried", s.sendSuccessRate]] },
  { id: "response", title: "Response time (ms)", byType: true,
    lines: (s, type) => pair((s.responseTimeMs || {})[type]) },
  { id: "fanout", title: "Quote fan-out delay (ms)", lines: (s) => pair(s.fanoutDelayMs) },
  { id: "acks", title: "Order acks per second", lines: (s) => [["acks/s", s.orderAcksPerSecond]] },
  { id: "ack-latency", title: "Order ack latency (ms)", lines: (s) => pair(s.orderAckMs) },
  { id: "errors", title: "Error rate (ERRORs per message in)", lines: (s) => [["error rate", s.errorRate]] },
  { id: "slow", title: "Slow-consumer closes", lines: (s) => [["closed 4008", s.slowConsumerCloses]] },
];

const view = { data: null, charts: new Map(), timer: 0, type: "ALL", app: null };

export function init(app) {
  view.app = app;
  app.onView("metrics", () => open());
}

export function signedOut() {
  clearTimeout(view.timer);
  view.data = null;
}

/* `older` with `newer`'s seconds appended, column by column (a series new to either side is padded with nulls),
   keeping the last WINDOW_S seconds. */
export function merge(older, newer) {
  if (!older) return newer;
  const before = older.seconds.length, after = newer.seconds.length;
  const join = (a, b) => {
    if (Array.isArray(a) || Array.isArray(b)) {
      return [...(a || new Array(before).fill(null)), ...(b || new Array(after).fill(null))].slice(-WINDOW_S);
    }
    if (a && typeof a === "object" || b && typeof b === "object") {
      const out = {};
      for (const key of new Set([...Object.keys(a || {}), ...Object.keys(b || {})])) out[key] = join(a?.[key], b?.[key]);
      return out;
    }
    return b ?? a;
  };
  return join(older, newer);
}

function open() {
  buildCharts();
  poll();
}

async function poll() {
  clearTimeout(view.timer);
  if (view.app.view !== "metrics") return;
  const status = $("#metrics-status");
  try {
    const last = view.data && view.data.seconds.length ? view.data.seconds[view.data.seconds.length - 1] : null;
    view.data = merge(view.data, await classroom.metrics(last));
    draw();
    status.textContent = `${view.data.seconds.length} seconds · updated ${new Date().toLocaleTimeString()}`;
    status.dataset.state = "ok";
  } catch (failure) {
    status.textContent = `Metrics unavailable: ${failure.message}`;
    status.dataset.state = "error";
  }
  view.timer = setTimeout(poll, POLL_MS);
}

function buildCharts() {
  if (view.charts.size) return;
  const lib = window.LightweightCharts;
  const grid = $("#metrics-grid");
  for (const figure of FIGURES) {
    const container = el("div", { class: "chart metric-chart", id: `metric-${figure.id}`, role: "img",
                                  "aria-label": figure.title, dataset: { points: "0" } });
    const legend = el("p", { class: "legend", id: `metric-${figure.id}-legend` });
    const head = [el("h3", {}, figure.title)];
    if (figure.byType) {
      const select = el("select", { id: "metric-response-type", "aria-label": "Message type" },
                        el("option", { value: "ALL" }, "all types"));
      select.addEventListener("change", () => { view.type = select.value; resetSeries(figure.id); draw(); });
      head.push(el("label", {}, "Type ", select));
    }
    grid.append(el("section", { class: "card", "aria-label": figure.title },
                   el("div", { class: "row" }, ...head), legend, container));
    const chart = typeof lib === "object" ? lib.createChart(container, {
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: getComputedStyle(document.body).color },
      grid: { vertLines: { color: "rgba(128,128,128,.15)" }, horzLines: { color: "rgba(128,128,128,.15)" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      localization: { timeFormatter: (t) => new Date(t * 1000).toLocaleTimeString() },
    }) : null;
    if (!chart) container.dataset.state = "missing-library";
    view.charts.set(figure.id, { figure, chart, container, legend, series: new Map() });
  }
}

function resetSeries(id) {
  const entry = view.charts.get(id);
  for (const series of entry.series.values()) entry.chart?.removeSeries(series);
  entry.series.clear();
}

function draw() {
  const data = view.data;
  if (!data) return;
  const types = Object.keys(data.responseTimeMs || {}).sort((a, b) => (a === "ALL" ? -1 : b === "ALL" ? 1 : a.localeCompare(b)));
  const select = $("#metric-response-type");
  if (select && select.options.length !== types.length) {
    select.replaceChildren(...types.map((t) => el("option", { value: t, selected: t === view.type }, t === "ALL" ? "all types" : t)));
  }
  const lib = window.LightweightCharts;
  for (const { figure, chart, container, legend, series } of view.charts.values()) {
    let points = 0;
    const items = [];
    figure.lines(data, view.type).forEach(([name, values], index) => {
      const color = COLORS[index % COLORS.length];
      const line = [];
      (values || []).forEach((value, i) => { if (value != null) line.push({ time: data.seconds[i], value }); });
      points += line.length;
      const latest = line.length ? line[line.length - 1].value : null;
      items.push(el("span", { dataset: { line: name } }, el("span", { class: "swatch", style: `background:${color}` }),
                    `${name} ${latest == null ? "—" : format(latest)}`));
      if (!chart) return;
      let s = series.get(name);
      if (!s) {
        s = chart.addSeries(lib.LineSeries, { color, lineWidth: 2, priceLineVisible: false, title: name });
        series.set(name, s);
      }
      s.setData(line);
    });
    legend.replaceChildren(...items);
    container.dataset.points = String(points);
    chart?.timeScale().fitContent();  // the whole window received so far, however long
  }
}

function format(value) {
  if (Math.abs(value) >= 100 || Number.isInteger(value)) return String(Math.round(value * 10) / 10);
  return value.toPrecision(3);
}
