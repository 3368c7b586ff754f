/* The teacher's view: market controls, the scenario (choose, preview, start, skip, stop), live connection statistics
   (/api/stats), the class leaderboard and each student's portfolio, read-only. The class risk feed is filled by
   risk.js. */

import { store, subscribe } from "../store.js";
import { $, el, money, signedMoney, integer, fraction, number, direction, fillKv, clock } from "../format.js";
import { classroom, scenarios } from "../api.js";
import { loadLeaderboard, leaderboardRows } from "./leaderboard.js";
import { summaryRows } from "./portfolio.js";
import { showJournal } from "./journal.js";

const STATS_MS = 3000;
const CLASS_MS = 10000;
const SCENARIO_MS = 5000;
let appRef;
let statsTimer = 0;
let classTimer = 0;
let scenarioTimer = 0;
let catalogue = [];   // GET /api/scenarios: {name, title, description, events, days, uploaded}
let previewing = null;  // the name of the scenario whose preview is shown instead of the current run's timeline
let student = null;   // {portfolioId, name, portfolio, positions: Map}

export function init(app) {
  appRef = app;
  const channel = app.channels.portfolio;

  app.onView("teacher", () => { refreshStats(); refreshClass(); loadScenarios(); });
  $("#class-refresh").addEventListener("click", refreshClass);
  $("#scenario-select").addEventListener("change", describeScenario);
  $("#scenario-preview").addEventListener("click", previewScenario);
  $("#scenario-form").addEventListener("submit", (event) => {
    event.preventDefault();
    scenarioAction(() => scenarios.start($("#scenario-select").value), "Started");
  });
  $("#scenario-skip").addEventListener("click", () => scenarioAction(scenarios.skip, "Skipped to the next event"));
  $("#scenario-stop").addEventListener("click", () => scenarioAction(scenarios.stop, "Stopped"));
  app.channels.market.on("NEWS", () => { if (appRef.view === "teacher") refreshScenario(); });
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
  clearTimeout(scenarioTimer);
  previewing = null;
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

/* Scenarios ------------------------------------------------------------------------------------------------- */

async function loadScenarios() {
  try {
    const listed = await scenarios.list();
    catalogue = listed.scenarios || [];
    const select = $("#scenario-select");
    const chosen = select.value || listed.current || (catalogue[0] && catalogue[0].name) || "";
    select.replaceChildren(...catalogue.map((s) => el("option", { value: s.name }, s.title)));
    select.value = catalogue.some((s) => s.name === chosen) ? chosen : (catalogue[0] ? catalogue[0].name : "");
    describeScenario();
  } catch (failure) {
    showResult(`Scenarios unavailable: ${failure.message}`, "error");
  }
  refreshScenario();
}

function describeScenario() {
  const chosen = catalogue.find((s) => s.name === $("#scenario-select").value);
  $("#scenario-description").textContent = chosen
    ? `${chosen.events} events over ${chosen.days} day${chosen.days === 1 ? "" : "s"}. ${chosen.description}` : "";
}

async function previewScenario() {
  const name = $("#scenario-select").value;
  if (!name) return;
  try {
    const preview = await scenarios.preview(name);
    previewing = name;
    renderTimeline(`Preview: ${preview.scenario.title}`, preview.timeline);
  } catch (failure) {
    showResult(`Refused: ${failure.message}`, "error");
  }
}

async function scenarioAction(call, done) {
  showResult("Sending…", "");
  try {
    const answer = await call();
    previewing = null;
    renderCurrent(answer);
    showResult(done, "ok");
  } catch (failure) {
    showResult(`Refused: ${failure.message}`, "error");
  }
}

async function refreshScenario() {
  clearTimeout(scenarioTimer);
  if (appRef.view !== "teacher") return;
  try {
    renderCurrent(await scenarios.current());
  } catch (failure) {
    fillKv($("#scenario-current"), [["Scenario", `unavailable: ${failure.message}`]]);
  }
  scenarioTimer = setTimeout(refreshScenario, SCENARIO_MS);
}

function showResult(text, state) {
  const out = $("#scenario-result");
  out.dataset.state = state;
  out.textContent = text;
}

function renderCurrent(answer) {
  const run = answer.current;
  $("#scenario-card").dataset.running = run && !run.finished ? "yes" : "no";
  $("#scenario-skip").disabled = !run || !run.nextEvent;
  $("#scenario-stop").disabled = !run;
  if (!run) {
    fillKv($("#scenario-current"), [["Playing", "no scenario"]]);
    if (!previewing) renderTimeline("", []);
    return;
  }
  const next = run.nextEvent;
  fillKv($("#scenario-current"), [
    ["Playing", run.finished ? `${run.title} (finished)` : run.title],
    ["Events", `${run.happened} of ${run.events} happened`],
    ["Next event", next ? `${describeWhen(next)}: ${next.news ? next.news.headline : describeEffects(next)}` : "none left"],
  ]);
  if (!previewing) renderTimeline(`Timeline: ${run.title}`, run.timeline);
}

function describeWhen(event) {
  return `Day ${event.day} ${event.time}${event.at ? ` (market ${clock(event.at)})` : ""}`;
}

function describeTarget(effect) {
  if (effect.market) return "the market";
  if (effect.sector) return effect.sector;
  return (effect.symbols || []).join(", ");
}

function describeEffects(event) {
  const moves = (event.move || []).map((m) => `${describeTarget(m)} ${m.percent > 0 ? "+" : ""}${m.percent}% over ${m.over}`);
  const volatility = (event.volatility || []).map((v) => `volatility of ${describeTarget(v)} ×${v.multiplier} for ${v.over}`);
  return [...moves, ...volatility].join("; ");
}

function renderTimeline(title, events) {
  const heading = $("#scenario-timeline-title");
  heading.textContent = title;
  heading.hidden = !title;
  const nextNumber = (events.find((e) => !e.happened) || {}).number;
  $("#scenario-timeline").replaceChildren(...events.map((event) => el("li", {
      dataset: { number: String(event.number), happened: event.happened ? "yes" : "no",
                 next: event.at && event.number === nextNumber ? "yes" : "no" } },
    el("span", { class: "when" }, describeWhen(event)), " ",
    event.news ? el("span", { class: "headline" }, event.news.headline) : null,
    describeEffects(event) ? el("span", { class: "effects" }, describeEffects(event)) : null)));
}
