/* Risk: metrics, the limits editor, alerts as toasts and as a list with acknowledge; for teachers also the
   class-wide feed (a contest's own feed is shown by the Contests card, with the rows and alert items made here).
   Says "not available" while the server has no /ws/risk-monitoring. */

import { store, subscribe } from "../store.js";
import { $, el, money, signedMoney, fraction, number, fillKv, setEmpty, explain, dateTime, direction } from "../format.js";
import { namesByPortfolio } from "./leaderboard.js";

const WEIGHT_LIMITS = new Set(["maxPositionWeight", "maxSectorWeight", "maxDrawdown"]);  // fractions on the wire
const LIMIT_NAMES = ["maxPositionWeight", "maxSectorWeight", "maxDailyLoss", "maxDrawdown", "maxVar95", "maxOrderValue"];
const RULES = {
  maxPositionWeight: "Position weight", maxSectorWeight: "Sector weight", maxDailyLoss: "Daily loss",
  maxDrawdown: "Drawdown", maxVar95: "Value at risk (95%)", maxOrderValue: "Order value",
  STOP_LOSS: "Stop loss", TAKE_PROFIT: "Take profit",
};

let appRef;
let limits = null;
let unsupported = false;
const alerts = new Map();        // alertId -> alert (own portfolio)
const classAlerts = new Map();   // alertId -> alert (teacher's class feed)
let subscribedTo = null;

/* Portfolios whose alerts another feed shows (the contest the teacher watches in the Contests card): a RISK_ALERT
   names no contest, and the class feed is the portfolios in none. */
export const watchedElsewhere = new Set();

export const riskLimits = () => limits;

export function init(app) {
  appRef = app;
  const channel = app.channels.risk;

  channel.onReady(() => { subscribedTo = null; subscribeRisk(); });
  subscribe("portfolioId", () => subscribeRisk());

  channel.on("RISK_SNAPSHOT", (data) => {
    if (data.portfolioId != null && data.portfolioId !== store.portfolioId) return;
    renderMetrics(data.metrics, data.breaches);
    if (data.limits) setLimits(data.limits);
    for (const alert of data.alerts || []) alerts.set(alert.alertId, alert);
    renderAlerts();
  });
  channel.on("RISK_UPDATE", (data) => {
    if (data.portfolioId === store.portfolioId) renderMetrics(data.metrics, data.breaches);
  });
  channel.on("RISK_LIMITS_UPDATED", (data) => {
    if (data.portfolioId === store.portfolioId) setLimits(data.limits, true);
  });
  channel.on("RISK_ALERT", (alert) => {
    if (alert.portfolioId === store.portfolioId) {
      if (!alerts.has(alert.alertId)) {
        alerts.set(alert.alertId, alert);
        app.toast(alert.message || `${RULES[alert.rule] || alert.rule} limit crossed`,
                  { severity: alert.severity || "WARNING", title: `Risk alert · ${RULES[alert.rule] || alert.rule}`,
                    id: alert.alertId, timeout: alert.severity === "CRITICAL" ? 20000 : 10000 });
      }
      renderAlerts();
    }
    if (app.isTeacher() && !watchedElsewhere.has(alert.portfolioId)) {
      classAlerts.set(alert.alertId, alert);
      renderClassAlerts();
    }
  });
  channel.on("RISK_RANKING", (data) => { if (data.contestId == null) renderRanking(data.entries || []); });
  channel.on("ALERT_ACKNOWLEDGED", (data) => {
    for (const map of [alerts, classAlerts]) {
      const alert = map.get(data.alertId);
      if (alert) alert.acknowledged = true;
    }
    renderAlerts();
    renderClassAlerts();
  });
  channel.on("ERROR", (data) => {
    if (data.code === "UNKNOWN_TYPE" && /RISK/.test(data.requestType || "")) markUnsupported();
  });

  $("#risk-limits").addEventListener("input", (event) => { event.target.dataset.dirty = "1"; });
  $("#risk-limits").addEventListener("submit", saveLimits);
}

export function signedIn() {
  limits = null;
  alerts.clear();
  classAlerts.clear();
  subscribedTo = null;
  renderAlerts();
  renderClassAlerts();
}

export const signedOut = signedIn;

function markUnsupported() {
  unsupported = true;
  appRef.channels.risk.unsupported = true;   // the endpoint answers, but not risk messages: say so
  for (const node of document.querySelectorAll('[data-unavailable="risk"]')) node.hidden = false;
}

function subscribeRisk() {
  const channel = appRef.channels.risk;
  if (!channel.ready || !store.portfolioId || subscribedTo === store.portfolioId) return;
  if (subscribedTo) channel.send("UNSUBSCRIBE_RISK", { portfolioId: subscribedTo });
  subscribedTo = store.portfolioId;
  channel.request("SUBSCRIBE_RISK", { portfolioId: store.portfolioId }).catch((failure) => {
    if (failure.code === "UNKNOWN_TYPE") markUnsupported();
  });
  if (appRef.isTeacher()) channel.send("SUBSCRIBE_RISK", { scope: "ALL" });
}

function renderMetrics(metrics, breaches) {
  if (!metrics) return;
  const m = metrics;
  fillKv($("#risk-metrics"), [
    ["VaR 95% (1 day)", money(m.var95)], ["VaR 99% (1 day)", money(m.var99)], ["CVaR 95%", money(m.cvar95)],
    ["Volatility", fraction(m.volatility, 1)], ["Beta", number(m.beta)],
    ["Max drawdown", fraction(m.maxDrawdown)], ["Current drawdown", fraction(m.currentDrawdown)],
    ["Gross exposure", money(m.grossExposure)], ["Net exposure", money(m.netExposure)], ["Leverage", number(m.leverage)],
    ["Largest position", `${m.largestPositionSymbol ? `${m.largestPositionSymbol} ` : ""}${fraction(m.largestPositionWeight, 1)}`],
    ["Concentration (HHI)", number(m.concentrationHHI, 3)],
    ["Daily P&L", money(m.dailyPnL)],
  ]);
  $("#risk-breaches").replaceChildren(...(breaches || []).map((b) =>
    el("li", { class: `breach ${(b.severity || "").toLowerCase()}` }, el("strong", {}, b.severity || ""), " ",
       b.message || `${RULES[b.rule] || b.rule}: ${b.value} over ${b.threshold}`)));
}

function setLimits(next, fromSave = false) {
  limits = next;
  for (const name of LIMIT_NAMES) {
    const input = $(`#limit-${name}`);
    if (!input || (input.dataset.dirty && !fromSave)) continue;
    delete input.dataset.dirty;
    const value = next[name];
    input.value = value == null ? "" : WEIGHT_LIMITS.has(name) ? +(value * 100).toFixed(4) : value.toFixed(2);
  }
}

async function saveLimits(event) {
  event.preventDefault();
  const error = $("#risk-limits-error");
  const result = $("#risk-limits-result");
  error.textContent = result.textContent = "";
  const next = {};
  for (const name of LIMIT_NAMES) {
    const text = $(`#limit-${name}`).value.trim();
    if (!text) { next[name] = null; continue; }
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) { error.textContent = `${RULES[name]}: a positive number, or empty for no limit`; return; }
    if (WEIGHT_LIMITS.has(name)) {
      if (value > 100) { error.textContent = `${RULES[name]}: at most 100%`; return; }
      next[name] = Math.round(value * 100) / 10000;   // percent on screen, fraction on the wire
    } else {
      next[name] = Math.round(value * 100) / 100;
    }
  }
  try {
    await appRef.channels.risk.request("SET_RISK_LIMITS", { portfolioId: store.portfolioId, limits: next });
    result.textContent = "Limits saved.";
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

/* An alert as a list item; `name` (a student's name, or "portfolio 12") for the class feeds, where the teacher
   reads but cannot acknowledge it. */
export function alertItem(alert, { showPortfolio = false, name = null, acknowledge = true } = {}) {
  const ack = el("button", { type: "button", class: "small secondary", "aria-label": `Acknowledge alert: ${alert.message}`,
                             onclick: () => appRef.channels.risk.send("ACKNOWLEDGE_ALERT", { alertId: alert.alertId }) },
                 "Acknowledge");
  return el("li", { class: `alert ${(alert.severity || "").toLowerCase()}`,
                    dataset: { alertId: alert.alertId, acknowledged: alert.acknowledged ? "yes" : "no" } },
    el("strong", {}, alert.severity || "ALERT"), " ",
    name != null ? el("span", { class: "muted" }, `${name}: `)
      : showPortfolio ? el("span", { class: "muted" }, `portfolio ${alert.portfolioId}: `) : null,
    el("span", {}, alert.message || `${RULES[alert.rule] || alert.rule}`), " ",
    el("span", { class: "muted" }, alert.createdAt ? dateTime(alert.createdAt) : ""), " ",
    alert.acknowledged ? el("span", { class: "muted" }, "acknowledged") : acknowledge ? ack : null);
}

export const newestFirst = (list) => list.reverse().sort((a, b) => String(b.createdAt || "").localeCompare(String(a.createdAt || "")));

function renderAlerts() {
  const list = newestFirst([...alerts.values()]);
  $("#alerts").replaceChildren(...list.map((a) => alertItem(a)));
  setEmpty("alerts", list.length === 0);
}

function renderClassAlerts() {
  const list = newestFirst([...classAlerts.values()]).slice(0, 100);
  $("#class-risk").replaceChildren(...list.map((a) => alertItem(a, { showPortfolio: true })));
}

export const isUnsupported = () => unsupported;

/* RISK_RANKING entries as table rows: rank, name, VaR 95 (and of value), largest position, then `last(metrics)`'s
   cells (the class feed: daily P&L; a contest's: drawdown). */
export function riskRankingRows(entries, { nameOf, last }) {
  return entries.slice(0, 50).map((entry) => {
    const m = entry.metrics || {};
    return el("tr", { dataset: { testid: "risk-row", portfolioId: entry.portfolioId } },
      el("td", {}, String(entry.rank)),
      el("th", { scope: "row", dataset: { f: "name" } }, nameOf(entry.portfolioId)),
      el("td", { dataset: { f: "var95" } }, `${money(m.var95)} (${fraction(entry.relativeVar95)})`),
      el("td", { dataset: { f: "largest" } },
        m.largestPositionSymbol ? `${m.largestPositionSymbol} ${fraction(m.largestPositionWeight, 1)}` : "—"),
      ...last(m));
  });
}

function renderRanking(entries) {
  $("#class-risk-ranking tbody").replaceChildren(...riskRankingRows(entries, {
    nameOf: (id) => namesByPortfolio.get(id) || (id === store.portfolioId ? "You" : `portfolio ${id}`),
    last: (m) => [el("td", { class: direction(m.dailyPnL) }, signedMoney(m.dailyPnL))],
  }));
}
