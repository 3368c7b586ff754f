/* The class leaderboard from GET /api/leaderboard, refreshed while it is on screen. */

import { store, changed } from "../store.js";
import { $, el, money, percent, direction, dateTime } from "../format.js";
import { classroom } from "../api.js";

const REFRESH_MS = 10_000;
let timer = 0;

/* portfolioId -> student name, from the latest leaderboard (RISK_RANKING names portfolios only). */
export const namesByPortfolio = new Map();

export async function loadLeaderboard() {
  const board = await classroom.leaderboard();
  for (const entry of board.entries || []) {
    namesByPortfolio.set(entry.portfolioId, entry.name);
    if (entry.userId != null) store.userNames.set(String(entry.userId), entry.name);
  }
  changed("userNames");
  return board;
}

export function leaderboardRows(entries, { actions = null } = {}) {
  return entries.map((entry) => el("tr", {
      dataset: { userId: entry.userId, portfolioId: entry.portfolioId },
      class: store.user && entry.userId === store.user.userId ? "me" : null },
    el("td", {}, String(entry.rank)),
    el("th", { scope: "row" }, entry.name),
    el("td", {}, money(entry.totalValue)),
    el("td", { class: direction(entry.totalReturnPercent) }, percent(entry.totalReturnPercent)),
    actions ? el("td", { class: "actions" }, actions(entry)) : null));
}

async function refresh(app) {
  try {
    const board = await loadLeaderboard();
    $("#leaderboard tbody").replaceChildren(...leaderboardRows(board.entries || []));
    $("#leaderboard-updated").textContent = `Updated ${dateTime(board.timestamp)}`;
  } catch (failure) {
    $("#leaderboard-updated").textContent = `Could not load the leaderboard: ${failure.message}`;
  }
  clearTimeout(timer);
  if (app.view === "leaderboard") timer = setTimeout(() => refresh(app), REFRESH_MS);
}

export function init(app) {
  app.onView("leaderboard", () => refresh(app));
  $("#leaderboard-refresh").addEventListener("click", () => refresh(app));
}

export function signedOut() {
  clearTimeout(timer);
  $("#leaderboard tbody").replaceChildren();
}
