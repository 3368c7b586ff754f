/* The teacher's view: market controls, live connection statistics (/api/stats), the class leaderboard and each
   student's portfolio, read-only. The class risk feed is filled by risk.js. */

import { store, subscribe } from "../store.js";
import { $, el, money, signedMoney, integer, fraction, number, direction, fillKv } from "../format.js";
import { classroom } from "../api.js";
import { loadLeaderboard, leaderboardRows } from "./leaderboard.js";
import { summaryRows } from "./portfolio.js";
import { showJournal } from "./journal.js";

const STATS_MS = 3000;
const CLASS_MS = 10000;
let appRef;
let statsTimer = 0;
let classTimer = 0;
let student = null;   // {portfolioId, name, portfolio, positions: Map}

export function init(app) {
  appRef = app;
  const channel = app.channels.portfolio;

  app.onView("teacher", () => { refreshStats(); refreshClass(); });
  $("#class-refresh").addEventListener("click", refreshClass);
  $("#control-pause").addEventListener("click", () => control({ action: "PAUSE" }));
  $("#control-resume").addEventListener("click", () => control({ action: "RESUME" }));
  $("#control-speed").addEventListener("submit", (event) => {
    event.preventDefault();
    const speed = Number($("#control-speed-value").value);
    if (!(speed > 0 && speed <= 10000)) { $("#control-result").textContent = "Speed: above 0, at most 10000"; return; }
    control({ action: "SPEED", speed });
  });
  $("#control-shock").addEventListener("submit", (event) => {
    event.preventDefault();
    const percent = Number($("#shock-percent").value);
    const symbol = $("#shock-symbol").value;
    const sector = $("#shock-sector").value;
    if (!percent || percent < -90 || percent > 100) { $("#control-result").textContent = "Shock: a non-zero percent from −90 to 100"; return; }
    if (!symbol && !sector) { $("#control-result").textContent = "Shock: choose a symbol or a sector"; return; }
    control(symbol ? { action: "SHOCK", symbols: [symbol], percent } : { action: "SHOCK", sector, percent });
  });

  subscribe("symbols", () => {
    $("#shock-symbol").replaceChildren(el("option", { value: "" }, "—"),
      ...store.symbols.map((s) => el("option", { value: s.symbol }, s.symbol)));
    const sectors = [...new Set(store.symbols.map((s) => s.sector))].sort();
    $("#shock-sector").replaceChildren(el("option", { value: "" }, "—"), ...sectors.map((s) => el("option", { value: s }, s)));
  });

  channel.on("PORTFOLIO_SNAPSHOT", (data) => {
    if (!student || !data.portfolio || data.portfolio.portfolioId !== student.portfolioId) return;
    student.portfolio = data.portfolio;
    student.positions = new Map((data.portfolio.positions || []).map((p) => [p.symbol, p]));
    renderStudent();
  });
  channel.on("PORTFOLIO_UPDATE", (data) => {
    if (!student || data.portfolioId !== student.portfolioId || !student.portfolio) return;
    const { positions, ...values } = data;
    Object.assign(student.portfolio, values);
    renderStudent();
  });
  channel.on("POSITION_UPDATE", (data) => {
    if (!student || data.portfolioId !== student.portfolioId) return;
    for (const p of data.positions || []) {
      if (p.quantity) student.positions.set(p.symbol, p); else student.positions.delete(p.symbol);
    }
    renderStudent();
  });
  channel.onReady(() => {
    if (student) channel.send("SUBSCRIBE_PORTFOLIO", { portfolioId: student.portfolioId, updateType: "ALL", updateInterval: 2000 });
  });
}

export function signedOut() {
  clearTimeout(statsTimer);
  clearTimeout(classTimer);
  student = null;
  $("#student-summary").replaceChildren();
  $("#student-positions tbody").replaceChildren();
  showJournal(null);
}

async function control(body) {
  const out = $("#control-result");
  out.textContent = "Sending…";
  try {
    const status = await classroom.control(body);
    out.dataset.state = "ok";
    out.textContent = `Market ${status.status.toLowerCase()} · speed ×${status.speed}`;
    Object.assign(store.market, { status: status.status, speed: status.speed });
  } catch (failure) {
    out.dataset.state = "error";
    out.textContent = `Refused: ${failure.message}`;
  }
}

async function refreshStats() {
  clearTimeout(statsTimer);
  if (appRef.view !== "teacher") return;
  try {
    const s = await classroom.stats();
    const byType = Object.entries(s.connectionsByType || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    const byDuration = Object.entries(s.connectionsByDuration || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
    fillKv($("#stats"), [
      ["Connections", integer(s.totalConnections)], ["Users", integer(s.uniqueUsers)],
      ["By endpoint", byType || "—"], ["By duration", byDuration || "—"],
      ["Average duration", `${number(s.averageConnectionDuration, 0)} s`],
      ["Messages sent", integer(s.messagesSent)], ["Messages failed", integer(s.messagesFailed)],
      ["Messages received", integer(s.messagesReceived)],
      ["Send success", fraction(s.sendSuccessRate, 2)], ["Average response", `${number(s.averageResponseTimeMs, 2)} ms`],
      ["Error rate", fraction(s.errorRate, 2)],
    ]);
  } catch (failure) {
    fillKv($("#stats"), [["Statistics", `unavailable: ${failure.message}`]]);
  }
  statsTimer = setTimeout(refreshStats, STATS_MS);
}

async function refreshClass() {
  clearTimeout(classTimer);
  if (appRef.view !== "teacher") return;
  try {
    const board = await loadLeaderboard();
    $("#class-board tbody").replaceChildren(...leaderboardRows(board.entries || [], {
      actions: (entry) => el("button", { type: "button", class: "small secondary",
                                         "aria-label": `View ${entry.name}'s portfolio`,
                                         onclick: () => view(entry) }, "View"),
    }));
  } catch (failure) {
    $("#class-board tbody").replaceChildren(el("tr", {}, el("td", { colspan: 5 }, failure.message)));
  }
  classTimer = setTimeout(refreshClass, CLASS_MS);
}

function view(entry) {
  const channel = appRef.channels.portfolio;
  if (student && student.portfolioId !== store.portfolioId) channel.send("UNSUBSCRIBE_PORTFOLIO", { portfolioId: student.portfolioId });
  student = { portfolioId: entry.portfolioId, name: entry.name, portfolio: null, positions: new Map() };
  $("#student-title").textContent = `${entry.name}'s portfolio`;
  $("#student-hint").textContent = "Read-only.";
  channel.send("SUBSCRIBE_PORTFOLIO", { portfolioId: entry.portfolioId, updateType: "ALL", updateInterval: 2000 });
  showJournal(entry);
}

function renderStudent() {
  if (!student || !student.portfolio) return;
  fillKv($("#student-summary"), summaryRows(student.portfolio));
  $("#student-positions tbody").replaceChildren(...[...student.positions.values()].map((p) => el("tr", { dataset: { symbol: p.symbol } },
    el("th", { scope: "row" }, p.symbol), el("td", {}, integer(p.quantity)), el("td", {}, money(p.averageCost)),
    el("td", {}, money(p.marketPrice)), el("td", {}, money(p.marketValue)),
    el("td", { class: direction(p.unrealizedPnL) }, signedMoney(p.unrealizedPnL)), el("td", { class: "wide" }, fraction(p.weight, 1)))));
}
