/* Signals: per-symbol model signals with confidence, measured model performance, and the portfolio optimiser
   whose rebalance orders go through the ordinary order path. Says "not available" without /ws/ml-signals. */

import { store, subscribe, changed } from "../store.js";
import { $, el, fraction, number, integer, dateTime, fillKv, explain } from "../format.js";
import { submitOrder } from "./orders.js";

const signals = new Map();   // symbol -> Map(model -> signal)
let appRef;
let result = null;
let subscribed = false;

function markUnsupported() {
  appRef.channels.signals.unsupported = true;   // the endpoint answers, but not signal messages: say so
  for (const node of document.querySelectorAll('[data-unavailable="signals"]')) node.hidden = false;
}

export function init(app) {
  appRef = app;
  const channel = app.channels.signals;

  channel.onReady(() => { subscribed = false; subscribeSignals(); requestPerformance(); });
  subscribe("symbols", () => subscribeSignals());

  channel.on("SIGNAL_UPDATE", (data) => {
    for (const signal of data.signals || []) {
      if (!signals.has(signal.symbol)) signals.set(signal.symbol, new Map());
      signals.get(signal.symbol).set(signal.model, signal);
      changed("signals", signal.symbol);
    }
  });
  channel.on("MODEL_PERFORMANCE", (data) => renderModels(data.models || []));
  channel.on("OPTIMIZATION_RESULT", (data) => { result = data; renderResult(); });
  channel.on("ERROR", (data) => {
    if (data.code === "UNKNOWN_TYPE" && /SIGNAL|MODEL|OPTIMI/.test(data.requestType || "")) markUnsupported();
  });

  subscribe("signals", renderSignals);
  $("#models-refresh").addEventListener("click", requestPerformance);
  app.onView("signals", () => { requestPerformance(); renderSignals(); });
  $("#optimiser").addEventListener("submit", optimise);
  $("#rebalance-place").addEventListener("click", placeRebalance);
}

export function signedOut() {
  result = null;
  $("#optimiser-result").hidden = true;
}

function subscribeSignals() {
  const channel = appRef.channels.signals;
  if (!channel.ready || subscribed || !store.symbols.length) return;
  subscribed = true;
  channel.request("SUBSCRIBE_SIGNALS", { symbols: store.symbols.map((s) => s.symbol) }).catch((failure) => {
    if (failure.code === "UNKNOWN_TYPE") markUnsupported();
  });
}

function requestPerformance() {
  appRef.channels.signals.send("REQUEST_MODEL_PERFORMANCE", {});
}

/* The signal to headline for a symbol: the ensemble's when there is one, else the most confident. */
export function headline(models) {
  const list = [...models.values()];
  return models.get("ensemble") || list.sort((a, b) => (b.confidence ?? 0) - (a.confidence ?? 0))[0];
}

function renderSignals() {
  if (appRef && appRef.view !== "signals" && document.querySelector("#signals tbody").children.length) return;
  const order = store.symbols.length ? store.symbols.map((s) => s.symbol) : [...signals.keys()];
  $("#signals tbody").replaceChildren(...order.filter((s) => signals.has(s)).map((symbol) => {
    const models = signals.get(symbol);
    const main = headline(models);
    const kind = (main.signal || "HOLD").toLowerCase();
    return el("tr", { dataset: { symbol, signal: main.signal } },
      el("th", { scope: "row" }, el("a", { href: `#/symbol/${symbol}` }, symbol)),
      el("td", { class: `signal ${kind}` }, main.signal),
      el("td", { dataset: { f: "confidence" } },
        el("meter", { min: 0, max: 1, value: main.confidence ?? 0, "aria-label": `Confidence ${fraction(main.confidence, 0)}` }),
        ` ${fraction(main.confidence, 0)}`),
      el("td", {}, number(main.score)),
      el("td", { class: "wide muted" }, [...models.values()].filter((s) => s !== main)
        .map((s) => `${s.model} ${s.signal} ${fraction(s.confidence, 0)}`).join(" · ")),
      el("td", { class: "wide" }, main.horizon ?? "—"));
  }));
}

function renderModels(models) {
  $("#models tbody").replaceChildren(...models.map((m) => el("tr", { dataset: { model: m.model } },
    el("th", { scope: "row" }, m.model),
    el("td", {}, integer(m.predictions)),
    el("td", { dataset: { f: "hitRate" } }, m.hitRate == null ? "—" : fraction(m.hitRate, 1)),
    el("td", {}, m.averageReturn == null ? "—" : fraction(m.averageReturn, 3)),
    el("td", { class: "wide" }, m.since ? dateTime(m.since) : "—"))));
}

async function optimise(event) {
  event.preventDefault();
  const error = $("#optimiser-error");
  error.textContent = "";
  const symbols = $("#optimiser-symbols").value.split(/[\s,]+/).map((s) => s.trim().toUpperCase()).filter(Boolean);
  const unknown = symbols.filter((s) => !store.symbols.some((x) => x.symbol === s));
  if (unknown.length) { error.textContent = `Unknown symbol: ${unknown.join(", ")}`; return; }
  const maxWeight = Number($("#optimiser-max").value);
  if (!(maxWeight > 0 && maxWeight <= 100)) { error.textContent = "Max weight: a percentage from 1 to 100"; return; }
  // the server's rule: weights sum to 1, so n symbols (with the holdings) × max weight must reach 100 %
  const universe = new Set(symbols.length ? [...symbols, ...store.positions.keys()] : []);
  if (universe.size && universe.size * maxWeight < 100) {
    error.textContent = `With ${universe.size} symbols the max weight must be at least ${Math.ceil(100 / universe.size)}%`;
    return;
  }
  if (symbols.length === 1 && store.positions.size === 0) { error.textContent = "Give at least two symbols"; return; }
  const data = { portfolioId: store.portfolioId, objective: $("#optimiser-objective").value,
                 constraints: { maxWeight: maxWeight / 100 } };
  if (symbols.length) data.symbols = symbols;
  $("#optimiser-run").disabled = true;
  try {
    await appRef.channels.signals.request("REQUEST_OPTIMIZATION", data, { timeout: 30000 });
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  } finally {
    $("#optimiser-run").disabled = false;
  }
}

function renderResult() {
  if (!result) return;
  $("#optimiser-result").hidden = false;
  fillKv($("#optimiser-figures"), [
    ["Objective", result.objective], ["Expected return", fraction(result.expectedReturn)],
    ["Expected volatility", fraction(result.expectedVolatility)], ["Sharpe ratio", number(result.sharpeRatio)],
  ]);
  const weights = (Array.isArray(result.weights) ? result.weights.map((w) => [w.symbol, w.weight])
    : Object.entries(result.weights || {})).sort((a, b) => b[1] - a[1]);
  $("#optimiser-weights tbody").replaceChildren(...weights.map(([symbol, w]) =>
    el("tr", {}, el("th", { scope: "row" }, symbol), el("td", {}, fraction(w, 1)))));
  $("#rebalance tbody").replaceChildren(...(result.rebalance || []).map((r, i) =>
    el("tr", { dataset: { index: i, symbol: r.symbol } }, el("th", { scope: "row" }, r.symbol), el("td", {}, r.side),
       el("td", {}, integer(r.quantity)), el("td", { dataset: { f: "status" } }, ""))));
  $("#rebalance-place").disabled = !(result.rebalance || []).length;
  $("#rebalance-result").textContent = (result.rebalance || []).length ? "" : "Nothing to rebalance.";
}

/* Sells first (they free cash for the buys), each as an ordinary MARKET DAY order. */
async function placeRebalance() {
  if (!result) return;
  const button = $("#rebalance-place");
  button.disabled = true;
  const items = (result.rebalance || []).map((r, i) => ({ ...r, i })).sort((a, b) => (a.side === "SELL" ? -1 : 1) - (b.side === "SELL" ? -1 : 1));
  let placed = 0, rejected = 0;
  for (const item of items) {
    const cell = $(`#rebalance tr[data-index="${item.i}"] [data-f=status]`);
    try {
      const reply = await submitOrder({ symbol: item.symbol, side: item.side, orderType: "MARKET", quantity: item.quantity });
      if (reply.type === "ORDER_REJECTED") { rejected++; cell.textContent = explain(reply.data.reason); }
      else { placed++; cell.textContent = reply.data.order.status.replace("_", " ").toLowerCase(); }
    } catch (failure) {
      rejected++;
      cell.textContent = explain(failure.code, failure.message);
    }
  }
  $("#rebalance-result").textContent = `${placed} order${placed === 1 ? "" : "s"} placed` + (rejected ? `, ${rejected} not placed` : "") + ".";
  button.disabled = false;
}
