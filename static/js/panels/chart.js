/* The symbol page: a candlestick chart from HISTORICAL_DATA that grows with live quotes, the bars' volume in a pane
   below, SMA and Bollinger overlays computed from those bars, and the server's ANALYTICS_DATA figures for the
   chart's own interval (asked again whenever the interval changes). */

import { store, subscribe } from "../store.js";
import { $, money, signedMoney, percent, number, direction, fillKv } from "../format.js";

const INTERVAL_MS = { "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000 };
const PERIOD = 20;
const ANALYTICS_REFRESH_MS = 15_000;
const UP = "#0a7d32", DOWN = "#b3261e";
const UP_VOLUME = "rgba(10,125,50,.45)", DOWN_VOLUME = "rgba(179,38,30,.45)";
const volumeText = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

const view = { symbol: null, interval: "5m", bars: [], chart: null, series: {}, analyticsTimer: 0, pending: null,
               lastVolume: null };

/* Simple moving average and Bollinger bands (PERIOD, 2 standard deviations) of closes, as chart points. */
export function overlays(bars, period = PERIOD) {
  const sma = [], upper = [], lower = [];
  for (let i = period - 1; i < bars.length; i++) {
    const window = bars.slice(i - period + 1, i + 1).map((b) => b.close);
    const mean = window.reduce((a, b) => a + b, 0) / period;
    const sd = Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / period);
    const time = bars[i].time / 1000;
    sma.push({ time, value: mean });
    upper.push({ time, value: mean + 2 * sd });
    lower.push({ time, value: mean - 2 * sd });
  }
  return { sma, upper, lower };
}

export function init(app) {
  const market = app.channels.market;

  app.onView("symbol", ([symbol]) => open(app, (symbol || "").toUpperCase()));
  app.onView("market", () => close());
  for (const v of ["trade", "portfolio", "risk", "signals", "leaderboard", "teacher", "metrics"]) app.onView(v, () => close());

  $("#chart-interval").addEventListener("change", (event) => {
    view.interval = event.target.value;
    clearAnalytics();  // the figures shown were of the other interval's bars
    requestData(app);
  });
  for (const id of ["#overlay-sma", "#overlay-bollinger"]) $(id).addEventListener("change", () => drawOverlays());

  market.on("HISTORICAL_DATA", (data) => {
    if (data.symbol !== view.symbol || data.interval !== view.interval) return;
    view.bars = (data.bars || []).slice();
    draw();
  });
  market.on("ANALYTICS_DATA", (data) => {
    if (data.symbol === view.symbol && data.interval === view.interval) renderAnalytics(data);
  });
  market.onReady(() => { if (view.symbol) requestData(app); });
  subscribe("quotes", (symbols) => { if (view.symbol && symbols.has(view.symbol)) live(); });

  // For the browser console and tests: a series as the chart library holds it (its pane and its data).
  app.chartSeries = (name) => {
    const series = view.series[name];
    return series ? { pane: series.getPane().paneIndex(), data: series.data().map((point) => ({ ...point })) } : null;
  };
}

function open(app, symbol) {
  view.symbol = symbol;
  const spec = store.symbols.find((s) => s.symbol === symbol);
  $("#symbol-title").textContent = spec ? `${symbol} · ${spec.name}` : symbol;
  $("#symbol-trade").href = `#/trade/${encodeURIComponent(symbol)}`;
  $("#symbol-trade").hidden = !store.user;
  clearAnalytics();
  view.bars = [];
  ensureChart();
  clear();
  requestData(app);
  clearInterval(view.analyticsTimer);
  view.analyticsTimer = setInterval(() => requestAnalytics(app), ANALYTICS_REFRESH_MS);
  live();
}

function close() {
  view.symbol = null;
  clearInterval(view.analyticsTimer);
}

function requestData(app) {
  const market = app.channels.market;
  $("#chart-status").textContent = market.ready ? "Loading history…" : "Waiting for the connection…";
  market.send("REQUEST_HISTORICAL", { symbol: view.symbol, interval: view.interval, limit: 300 });
  requestAnalytics(app);
}

function requestAnalytics(app) {
  if (view.symbol) app.channels.market.send("REQUEST_ANALYTICS", { symbol: view.symbol, interval: view.interval });
}

function ensureChart() {
  if (view.chart) return true;
  const lib = window.LightweightCharts;
  if (typeof lib !== "object") {
    $("#chart-status").textContent = "Charts are unavailable: the lightweight-charts library is not installed " +
      "(run `npm ci` in the server's folder and reload).";
    $("#chart").dataset.state = "missing-library";
    return false;
  }
  const container = $("#chart");
  view.chart = lib.createChart(container, {
    autoSize: true,
    layout: { background: { color: "transparent" }, textColor: getComputedStyle(document.body).color },
    grid: { vertLines: { color: "rgba(128,128,128,.15)" }, horzLines: { color: "rgba(128,128,128,.15)" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  view.series.candles = view.chart.addSeries(lib.CandlestickSeries, {
    priceFormat: { type: "price", precision: 2, minMove: 0.01 },
    upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
  });
  // Volume in a pane of its own under the candles, with its own price scale, a quarter of the height.
  view.series.volume = view.chart.addSeries(lib.HistogramSeries, {
    priceFormat: { type: "custom", minMove: 1, formatter: (shares) => volumeText.format(shares) },
    priceLineVisible: false, lastValueVisible: false,
  }, 1);
  const [prices, volumes] = view.chart.panes();
  prices.setStretchFactor(3);
  volumes.setStretchFactor(1);
  const line = (color, style = 0) => view.chart.addSeries(lib.LineSeries, {
    color, lineWidth: 1, lineStyle: style, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false,
  });
  view.series.sma = line("#1a73e8");
  view.series.upper = line("#9c27b0", 2);
  view.series.lower = line("#9c27b0", 2);
  return true;
}

function clear() {
  if (!view.chart) return;
  for (const series of Object.values(view.series)) series.setData([]);
}

function draw() {
  const container = $("#chart");
  container.dataset.bars = String(view.bars.length);
  $("#chart-status").textContent = view.bars.length ? `${view.bars.length} bars · ${view.interval}` : "No history yet";
  if (!ensureChart()) return;
  view.series.candles.setData(view.bars.map(toCandle));
  view.series.volume.setData(view.bars.map(toVolume));
  const quote = store.quotes.get(view.symbol);
  view.lastVolume = quote ? quote.volume : null;  // live quotes add what trades from now on to the last bar
  drawOverlays();
  view.chart.timeScale().fitContent();
}

function drawOverlays() {
  if (!view.chart) return;
  const { sma, upper, lower } = overlays(view.bars);
  view.series.sma.setData($("#overlay-sma").checked ? sma : []);
  view.series.upper.setData($("#overlay-bollinger").checked ? upper : []);
  view.series.lower.setData($("#overlay-bollinger").checked ? lower : []);
}

const toCandle = (bar) => ({ time: bar.time / 1000, open: bar.open, high: bar.high, low: bar.low, close: bar.close });
const toVolume = (bar) => ({ time: bar.time / 1000, value: bar.volume,
                             color: bar.close >= bar.open ? UP_VOLUME : DOWN_VOLUME });

/* The shares traded since the last quote seen: the quote's volume is the day's, and starts again each day. */
function tradedSince(quote) {
  const before = view.lastVolume;
  view.lastVolume = quote.volume;
  if (before == null || quote.volume == null) return 0;
  return quote.volume >= before ? quote.volume - before : quote.volume;
}

/* Fold the latest quote (price and volume) into the last bar, or open a new bar once the quote's market time passes
   the interval. */
function live() {
  const quote = store.quotes.get(view.symbol);
  if (!quote) return;
  const traded = view.bars.length ? tradedSince(quote) : 0;
  $("#symbol-quote").replaceChildren(
    `${money(quote.price)} `,
    Object.assign(document.createElement("span"), { className: direction(quote.change),
      textContent: `${signedMoney(quote.change)} (${percent(quote.changePercent)})` }),
    ` · bid ${money(quote.bid)} · ask ${money(quote.ask)}`);
  const last = view.bars[view.bars.length - 1];
  const step = INTERVAL_MS[view.interval];
  if (!last || quote.marketTime == null) return;
  let bar;
  if (step && quote.marketTime >= last.time + step) {
    const start = last.time + Math.floor((quote.marketTime - last.time) / step) * step;
    bar = { time: start, open: quote.price, high: quote.price, low: quote.price, close: quote.price, volume: traded };
    view.bars.push(bar);
    if (view.bars.length > 1000) view.bars.shift();
  } else if (quote.marketTime >= last.time) {
    bar = last;
    bar.close = quote.price;
    bar.high = Math.max(bar.high, quote.price);
    bar.low = Math.min(bar.low, quote.price);
    bar.volume += traded;
  } else {
    return;
  }
  $("#chart").dataset.bars = String(view.bars.length);
  $("#chart").dataset.lastClose = String(bar.close);
  if (!view.chart) return;
  view.series.candles.update(toCandle(bar));
  view.series.volume.update(toVolume(bar));
  const tail = overlays(view.bars.slice(-PERIOD));
  if (tail.sma.length) {
    if ($("#overlay-sma").checked) view.series.sma.update(tail.sma[0]);
    if ($("#overlay-bollinger").checked) {
      view.series.upper.update(tail.upper[0]);
      view.series.lower.update(tail.lower[0]);
    }
  }
}

function clearAnalytics() {
  $("#analytics").replaceChildren();
  delete $("#analytics").dataset.interval;
}

function renderAnalytics(a) {
  const macd = a.macd || {};
  const bands = a.bollinger || {};
  // Every figure but VWAP is of the chart's bars; VWAP is always of the latest session's minute bars.
  fillKv($("#analytics"), [
    ["Interval", `${a.interval} bars, as on the chart`],
    ["SMA 20", money(a.sma20)], ["SMA 50", money(a.sma50)],
    ["EMA 12", money(a.ema12)], ["EMA 26", money(a.ema26)],
    ["RSI 14", number(a.rsi14, 1)],
    ["MACD", `${number(macd.macd)} / signal ${number(macd.signal)} / hist ${number(macd.histogram)}`],
    ["Bollinger", `${money(bands.lower)} – ${money(bands.middle)} – ${money(bands.upper)}`],
    ["VWAP", `${money(a.vwap)} (latest session)`],
    ["Volatility", a.volatility == null ? "—" : `${(a.volatility * 100).toFixed(1)}% a year`],
  ]);
  $("#analytics").dataset.interval = a.interval;
}
