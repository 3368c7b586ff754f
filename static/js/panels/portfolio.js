/* Portfolio: summary, positions with live P&L, stop-loss / take-profit levels, and analytics. */

import { store, subscribe, changed } from "../store.js";
import { $, el, money, signedMoney, percent, fraction, number, integer, direction, fillKv, setEmpty, explain } from "../format.js";
import { toCents } from "../validation.js";

const ANALYTICS_REFRESH_MS = 15_000;
let appRef;
let analyticsTimer = 0;
let reconcileTimer = 0;
const rows = new Map();   // symbol -> {row, cells, stop, take}

export function init(app) {
  appRef = app;
  const channel = app.channels.portfolio;

  channel.on("PORTFOLIO_SNAPSHOT", (data) => {
    const portfolio = data.portfolio;
    if (!portfolio || portfolio.portfolioId !== store.portfolioId) return;
    store.portfolio = portfolio;
    store.positions = new Map((portfolio.positions || []).filter((p) => p.quantity).map((p) => [p.symbol, p]));
    changed("portfolio");
    changed("positions");
  });
  channel.on("PORTFOLIO_UPDATE", (data) => {
    if (data.portfolioId !== store.portfolioId || !store.portfolio) return;
    const { positions, ...values } = data;
    Object.assign(store.portfolio, values);
    changed("portfolio");
  });
  channel.on("POSITION_UPDATE", (data) => {
    if (data.portfolioId !== store.portfolioId) return;
    for (const position of data.positions || []) {
      if (position.quantity) store.positions.set(position.symbol, position);
      else store.positions.delete(position.symbol);
    }
    changed("positions");
  });
  channel.on("PORTFOLIO_ANALYTICS", (data) => {
    if (data.portfolioId === store.portfolioId) renderAnalytics(data);
  });
  // A fill may close a position; one snapshot afterwards settles what the pushes say.
  subscribe("ownFill", () => {
    clearTimeout(reconcileTimer);
    reconcileTimer = setTimeout(() => {
      if (store.portfolioId) channel.send("REQUEST_PORTFOLIO_SNAPSHOT", { portfolioId: store.portfolioId });
    }, 300);
  });

  // the switcher (switcher.js) chose another portfolio: what is shown of the old one goes
  subscribe("portfolioId", () => {
    $("#portfolio-analytics").replaceChildren();
    $("#sector-allocation").replaceChildren();
    if (app.view === "portfolio") requestAnalytics();
  });
  $("#portfolio-analytics-refresh").addEventListener("click", () => requestAnalytics());
  app.onView("portfolio", () => {
    requestAnalytics();
    clearInterval(analyticsTimer);
    analyticsTimer = setInterval(() => { if (app.view === "portfolio") requestAnalytics(); }, ANALYTICS_REFRESH_MS);
  });

  subscribe("portfolio", renderSummary);
  subscribe("positions", renderPositions);
  subscribe("quotes", (symbols) => {
    for (const symbol of symbols) if (rows.has(symbol)) renderPositionValues(symbol);
  });
}

export function signedIn() {
  store.portfolioId = null;
  store.portfolio = null;
  store.positions = new Map();
  rows.clear();
  $("#positions tbody").replaceChildren();
  changed("portfolio");
  changed("positions");
}

export const signedOut = signedIn;

function requestAnalytics() {
  if (store.portfolioId) appRef.channels.portfolio.send("REQUEST_PORTFOLIO_ANALYTICS", { portfolioId: store.portfolioId });
}

export function summaryRows(p) {
  const pnl = (p.unrealizedPnL ?? 0) + (p.realizedPnL ?? 0);
  return [
    ["Total value", money(p.totalValue)],
    ["Cash", money(p.cash)],
    ["Buying power", money(p.buyingPower)],
    ["Reserved", money(p.reservedCash)],
    ["Positions value", money(p.positionsValue)],
    ["P&L", signedMoney(pnl), direction(pnl)],
    ["Unrealized P&L", signedMoney(p.unrealizedPnL), direction(p.unrealizedPnL)],
    ["Realized P&L", signedMoney(p.realizedPnL), direction(p.realizedPnL)],
    ["Return", `${signedMoney(p.totalReturn)} (${percent(p.totalReturnPercent)})`, direction(p.totalReturn)],
    ["Day change", signedMoney(p.dayChange), direction(p.dayChange)],
    ["Diversification", p.diversificationScore == null ? "—" : `${number(p.diversificationScore, 0)} / 100`],
  ];
}

function renderSummary() {
  const p = store.portfolio;
  fillKv($("#portfolio-summary"), p ? summaryRows(p) : []);
}

function renderPositions() {
  const body = $("#positions tbody");
  for (const [symbol, entry] of rows) {
    if (!store.positions.has(symbol)) { entry.row.remove(); rows.delete(symbol); }
  }
  const symbols = [...store.positions.keys()].sort();
  for (const symbol of symbols) {
    if (!rows.has(symbol)) rows.set(symbol, buildRow(symbol));
    const entry = rows.get(symbol);
    body.append(entry.row);   // keeps order; moving a row keeps its inputs
    renderPositionValues(symbol);
    const position = store.positions.get(symbol);
    for (const [input, value] of [[entry.stop, position.stopLoss], [entry.take, position.takeProfit]]) {
      if (document.activeElement !== input && !input.dataset.dirty) input.value = value == null ? "" : value.toFixed(2);
    }
  }
  setEmpty("positions", symbols.length === 0);
}

function buildRow(symbol) {
  const cells = {};
  const cell = (f, cls) => (cells[f] = el("td", { class: cls, dataset: { f } }));
  const stop = el("input", { type: "number", step: "0.01", min: "0.01", inputmode: "decimal", "aria-label": `Stop loss for ${symbol}`,
                             dataset: { level: "stopLoss" } });
  const take = el("input", { type: "number", step: "0.01", min: "0.01", inputmode: "decimal", "aria-label": `Take profit for ${symbol}`,
                             dataset: { level: "takeProfit" } });
  for (const input of [stop, take]) input.addEventListener("input", () => { input.dataset.dirty = "1"; });
  const error = el("span", { class: "error", role: "alert" });
  const save = el("button", { type: "button", class: "small", "aria-label": `Save levels for ${symbol}`,
                              onclick: () => saveLevels(symbol, stop, take, error) }, "Save");
  const row = el("tr", { dataset: { symbol } },
    el("th", { scope: "row" }, el("a", { href: `#/symbol/${symbol}` }, symbol)),
    cell("quantity"), cell("averageCost"), cell("price"), cell("value"), cell("pnl"), cell("pnlPercent"), cell("weight", "wide"),
    el("td", {}, stop), el("td", {}, take), el("td", { class: "actions" }, save, error));
  return { row, cells, stop, take };
}

/* Values from the latest position push, re-priced with the latest live quote in between pushes. */
function renderPositionValues(symbol) {
  const entry = rows.get(symbol);
  const position = store.positions.get(symbol);
  if (!entry || !position) return;
  const quote = store.quotes.get(symbol);
  const price = quote ? quote.price : position.marketPrice;
  const value = position.quantity * price;
  const pnl = value - position.costBasis;
  const pnlPercent = position.costBasis ? (pnl / position.costBasis) * 100 : null;
  const { cells } = entry;
  cells.quantity.textContent = integer(position.quantity);
  cells.averageCost.textContent = money(position.averageCost);
  cells.price.textContent = money(price);
  cells.value.textContent = money(value);
  cells.pnl.textContent = signedMoney(pnl);
  cells.pnlPercent.textContent = percent(pnlPercent);
  cells.pnl.className = cells.pnlPercent.className = direction(pnl);
  cells.weight.textContent = fraction(position.weight, 1);
}

async function saveLevels(symbol, stopInput, takeInput, error) {
  error.textContent = "";
  const level = (input) => {
    const text = input.value.trim();
    if (!text) return null;
    const cents = toCents(text);
    if (Number.isNaN(cents) || cents <= 0) throw new Error("levels must be positive amounts in whole cents");
    return cents / 100;
  };
  let stopLoss, takeProfit;
  try {
    stopLoss = level(stopInput);
    takeProfit = level(takeInput);
  } catch (problem) {
    error.textContent = problem.message;
    return;
  }
  if (stopLoss != null && takeProfit != null && stopLoss >= takeProfit) {
    error.textContent = "The stop loss must be below the take profit";
    return;
  }
  try {
    await appRef.channels.portfolio.request("UPDATE_POSITION", { portfolioId: store.portfolioId, symbol, stopLoss, takeProfit });
    delete stopInput.dataset.dirty;
    delete takeInput.dataset.dirty;
    appRef.toast(`Levels saved for ${symbol}`, { title: "Portfolio" });
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

function renderAnalytics(a) {
  const returns = a.returns || {};
  fillKv($("#portfolio-analytics"), [
    ["Day return", fraction(returns.day)], ["Total return", fraction(returns.total)],
    ["Volatility", fraction(a.volatility, 1)], ["Sharpe ratio", number(a.sharpeRatio)],
    ["Max drawdown", fraction(a.maxDrawdown)], ["Beta", number(a.beta)], ["Win rate", fraction(a.winRate, 0)],
    ["Diversification", a.diversificationScore == null ? "—" : `${number(a.diversificationScore, 0)} / 100`],
  ]);
  const allocation = Object.entries(a.sectorAllocation || {}).sort((x, y) => y[1] - x[1]);
  $("#sector-allocation").replaceChildren(...allocation.map(([sector, share]) => el("div", { class: "bar-row" },
    el("span", {}, sector),
    el("span", { class: "bar", style: `--share:${Math.max(0, Math.min(1, share)) * 100}%`, role: "img",
                 "aria-label": `${sector} ${fraction(share, 1)}` }),
    el("span", {}, fraction(share, 1)))));
}
