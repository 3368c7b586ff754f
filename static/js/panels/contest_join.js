/* The student's side of class contests, over /ws/portfolio: join by code (JOIN_CONTEST), and "My contests": each
   joined contest's name, status and schedule, its ranking (SUBSCRIBE_CONTEST → CONTEST_SNAPSHOT, then
   CONTEST_UPDATE) and the student's checklist (the snapshot's progress, then ASSIGNMENT_PROGRESS). Joining switches
   the page to the contest's portfolio. Everything a person typed (names, nicknames, task texts) goes in as text. */

import { store, subscribe, changed } from "../store.js";
import { $, $$, el, money, percent, direction, dateTime, clock, setEmpty, explain } from "../format.js";
import { addPortfolio, choose } from "./switcher.js";

const WAITING_FOR_TEAM_MS = 10_000;   // re-ask while a team contest has not put the student in a team yet
const JOIN_ERRORS = {
  NOT_FOUND: "No contest has that code: check it with your teacher",
  FORBIDDEN: "Wrong or missing password for this contest",
  CONFLICT: "That nickname is already taken in this contest, or you have already joined it",
  BAD_REQUEST: "The contest cannot be joined",
  UNKNOWN_TYPE: "Contests are not available on this server yet",
};
const TASK_MARKS = { DONE: "✓", MISSED: "✗", PENDING: "…" };

let appRef;
let unsupported = false;
const snapshots = new Map();   // contestId -> CONTEST_SNAPSHOT data (ranking and progress kept up to date)
const subscribed = new Set();  // contestIds subscribed on the current connection
let waitingTimer = 0;

/* A contest the user plays in. Lists give every contest a myPortfolioId: a student's are the ones they joined (null
   until a team contest puts them in a team); a teacher's own come with null and are run from the teacher's card. */
const playing = (contest) => !contest.default && contest.myPortfolioId !== undefined &&
  (contest.myPortfolioId !== null || !appRef.isTeacher());

export function init(app) {
  appRef = app;
  const channel = app.channels.portfolio;

  channel.onReady(() => {
    subscribed.clear();
    requestContests();
  });
  channel.on("CONTEST_LIST", (data) => {
    store.contests = new Map((data.contests || []).map((c) => [String(c.contestId), c]));
    for (const contestId of [...snapshots.keys()]) if (!store.contests.has(contestId)) snapshots.delete(contestId);
    for (const contest of store.contests.values()) {
      learnPortfolio(contest, contest.myPortfolioId);
      if (playing(contest)) subscribeContest(contest.contestId);
    }
    changed("contests");
  });
  channel.on("CONTEST_JOINED", (data) => joined(data.contest, data.portfolioId));
  channel.on("CONTEST_SNAPSHOT", (data) => {
    if (!data.contest) return;
    const contestId = String(data.contest.contestId);
    snapshots.set(contestId, data);
    const known = store.contests.get(contestId) || {};
    const myPortfolioId = data.myPortfolioId !== undefined ? data.myPortfolioId : known.myPortfolioId;
    store.contests.set(contestId, { ...known, ...data.contest, myPortfolioId });
    learnPortfolio(data.contest, myPortfolioId);
    for (const p of data.participants || []) if (p.userId != null) store.userNames.set(String(p.userId), p.nickname);
    changed("userNames");
    changed("contests");
  });
  channel.on("CONTEST_UPDATE", (data) => {
    const contestId = String(data.contestId);
    const contest = store.contests.get(contestId);
    if (contest && data.status) contest.status = data.status;
    const snapshot = snapshots.get(contestId);
    if (snapshot) {
      if (data.status) snapshot.contest.status = data.status;
      if (data.ranking) snapshot.ranking = data.ranking;
    }
    changed("contests");
  });
  channel.on("ASSIGNMENT_PROGRESS", (data) => {
    const snapshot = snapshots.get(String(data.contestId));
    if (!snapshot) return;
    const mine = store.contests.get(String(data.contestId));
    if (mine && mine.myPortfolioId != null && data.portfolioId != null && data.portfolioId !== mine.myPortfolioId) return;
    snapshot.progress = data.tasks || [];
    changed("contests");
  });

  $("#contest-join-form").addEventListener("submit", (event) => { event.preventDefault(); join(); });
  $("#contest-join-form").addEventListener("input", () => { $("#contest-join-error").textContent = ""; });
  app.onView("contests", () => requestContests());
  subscribe("contests", render);
  subscribe("portfolioId", render);
  render();
}

export function signedIn() {
  store.contests = new Map();
  store.userNames = new Map();
  snapshots.clear();
  subscribed.clear();
  clearTimeout(waitingTimer);
  waitingTimer = 0;
  $("#contest-join-form").reset();
  $("#contest-join-error").textContent = "";
  $("#contest-join-result").textContent = "";
  changed("contests");
}

export const signedOut = signedIn;

/* A portfolio the switcher should offer for `contest` (a team portfolio may be missing from PORTFOLIO_LIST). */
function learnPortfolio(contest, portfolioId) {
  if (contest && !contest.default && portfolioId != null) addPortfolio({ portfolioId, name: contest.name }, { learnt: true });
}

function requestContests() {
  const channel = appRef.channels.portfolio;
  if (!channel.ready || unsupported) return;
  channel.request("REQUEST_CONTESTS", {}).catch((failure) => {
    if (failure.code === "UNKNOWN_TYPE") {
      unsupported = true;
      for (const node of $$("[data-contests-unavailable]")) node.hidden = false;
      render();
    }
  });
}

function subscribeContest(contestId) {
  const channel = appRef.channels.portfolio;
  if (subscribed.has(String(contestId)) || !channel.ready) return;
  subscribed.add(String(contestId));
  channel.request("SUBSCRIBE_CONTEST", { contestId: String(contestId) }).catch(() => subscribed.delete(String(contestId)));
}

async function join() {
  const error = $("#contest-join-error");
  const result = $("#contest-join-result");
  error.textContent = "";
  result.textContent = "";
  const code = $("#contest-join-code").value.trim().toUpperCase();
  const nickname = $("#contest-join-nickname").value.trim();
  const password = $("#contest-join-password").value;
  if (!code) { error.textContent = "Type the contest's code (like QX7-42K)"; return; }
  if (!nickname) { error.textContent = "Choose a nickname for this contest"; return; }
  const data = { code, nickname };
  if (password) data.password = password;
  const button = $("#contest-join-submit");
  button.disabled = true;
  try {
    const reply = await appRef.channels.portfolio.request("JOIN_CONTEST", data);
    $("#contest-join-form").reset();
    // CONTEST_JOINED's listener has already switched; say where the student is now
    const contest = reply.data.contest || {};
    result.textContent = reply.data.portfolioId == null
      ? `Joined ${contest.name}: your teacher will put you in a team, then you can trade.`
      : `Joined ${contest.name}: you are now trading its portfolio.`;
  } catch (failure) {
    error.dataset.code = failure.code || "";
    // the server's own words too where they add something (a finished contest, a malformed code)
    error.textContent = JOIN_ERRORS[failure.code]
      ? `${JOIN_ERRORS[failure.code]}${failure.message && failure.code === "BAD_REQUEST" ? `: ${failure.message}` : ""}`
      : explain(failure.code, failure.message);
  } finally {
    button.disabled = false;
  }
}

function joined(contest, portfolioId) {
  if (!contest) return;
  const contestId = String(contest.contestId);
  store.contests.set(contestId, { ...contest, myPortfolioId: portfolioId ?? null });
  learnPortfolio(contest, portfolioId);
  if (portfolioId != null) choose(portfolioId);
  subscribeContest(contestId);
  changed("contests");
}

/* While a team contest has not given the student a portfolio, ask again now and then (the team is formed by the
   teacher; only a fresh snapshot says so). */
function watchForTeams() {
  if (waitingTimer) return;
  const waiting = () => [...store.contests.values()]
    .filter((c) => playing(c) && c.myPortfolioId == null && c.status !== "FINISHED");
  if (!waiting().length) return;
  waitingTimer = setTimeout(() => {
    waitingTimer = 0;
    const channel = appRef.channels.portfolio;
    for (const contest of waiting()) channel.send("SUBSCRIBE_CONTEST", { contestId: String(contest.contestId) });
    watchForTeams();
  }, WAITING_FOR_TEAM_MS);
}

export function describeSchedule(schedule) {
  if (!schedule) return "—";
  if (schedule.kind === "DAYS") return `Trading days ${schedule.firstDay}–${schedule.lastDay}`;
  if (schedule.kind === "WALL") return `${dateTime(schedule.start)} to ${clock(schedule.end)}`;
  return "—";
}

export function rankingRows(entries, myPortfolioId = null) {
  return (entries || []).map((entry) => el("tr", {
      dataset: { portfolioId: entry.portfolioId }, class: entry.portfolioId === myPortfolioId ? "me" : null },
    el("td", {}, String(entry.rank)),
    el("th", { scope: "row" }, entry.name),
    el("td", {}, money(entry.totalValue)),
    el("td", { class: direction(entry.totalReturnPercent) }, percent(entry.totalReturnPercent)),
    el("td", { class: "wide" }, entry.sharpeRatio == null ? "—" : Number(entry.sharpeRatio).toFixed(2)),
    el("td", { class: "wide" }, entry.maxDrawdownPercent == null ? "—" : percent(-Math.abs(entry.maxDrawdownPercent)))));
}

/* One checklist line: ✓ done, ✗ missed, … pending; "current/target"; the task's words and when it is due. */
export function taskItem(task) {
  return el("li", { class: `task ${String(task.state || "PENDING").toLowerCase()}`,
                    dataset: { testid: "contest-task", assignmentId: String(task.assignmentId), state: task.state || "PENDING" } },
    el("span", { class: "mark", "aria-hidden": "true" }, TASK_MARKS[task.state] || TASK_MARKS.PENDING),
    el("span", { class: "visually-hidden" }, { DONE: "Done: ", MISSED: "Missed: " }[task.state] || "Pending: "),
    el("span", { class: "task-text" }, task.text || task.kind),
    el("span", { class: "task-count muted", dataset: { testid: "contest-task-count" } },
       task.target == null ? "" : `${task.current ?? 0}/${task.target}`),
    el("span", { class: "task-due muted" }, task.state === "DONE" && task.doneAt ? `done ${dateTime(task.doneAt)}`
       : task.due ? `due ${dateTime(task.due)}` : ""));
}

function contestCard(contest) {
  const contestId = String(contest.contestId);
  const snapshot = snapshots.get(contestId);
  const status = (snapshot && snapshot.contest.status) || contest.status;
  const mine = contest.myPortfolioId;
  const ranking = snapshot && snapshot.ranking;
  const progress = (snapshot && snapshot.progress) || [];
  const trading = mine != null && mine === store.portfolioId;
  return el("article", { class: "my-contest", dataset: { testid: "my-contest", contestId, status: status || "" } },
    el("div", { class: "row" },
      el("h4", { class: "contest-name" }, contest.name),
      el("span", { class: "status-tag", dataset: { status: status || "", testid: "my-contest-status" } }, status || "—")),
    el("p", { class: "muted" }, describeSchedule(contest.schedule),
       contest.teacherName ? ` · teacher ${contest.teacherName}` : ""),
    mine == null
      ? el("p", { class: "muted", dataset: { testid: "my-contest-waiting" } }, "Waiting for your teacher to put you in a team.")
      : el("p", {}, trading ? el("span", { class: "muted" }, "You are trading this contest's portfolio.")
          : el("button", { type: "button", class: "small secondary", dataset: { testid: "my-contest-switch" },
                           onclick: () => choose(mine) }, "Trade this contest's portfolio")),
    el("h5", {}, ranking && ranking.final ? "Final ranking" : "Ranking"),
    el("div", { class: "table-wrap" }, el("table", { class: "contest-ranking", dataset: { testid: "contest-ranking" } },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Rank"), el("th", { scope: "col" }, "Name"),
        el("th", { scope: "col" }, "Value"), el("th", { scope: "col" }, "Return"),
        el("th", { scope: "col", class: "wide" }, "Sharpe"), el("th", { scope: "col", class: "wide" }, "Max drawdown"))),
      el("tbody", {}, rankingRows(ranking ? ranking.entries : [], mine)))),
    el("h5", {}, "Checklist"),
    progress.length
      ? el("ul", { class: "checklist", dataset: { testid: "contest-checklist" } }, progress.map(taskItem))
      : el("p", { class: "muted" }, "No assignments yet."));
}

function render() {
  const list = [...store.contests.values()].filter(playing);
  $("#my-contests").replaceChildren(...list.map(contestCard));
  setEmpty("my-contests", list.length === 0 && !unsupported);
  watchForTeams();
}
