/* The portfolio switcher: which of the user's portfolios the page works with. store.portfolioId is the one value
   every panel reads (portfolio, ticket, orders, risk, analytics); only choose() changes it, and announces the change
   as the "portfolioId" topic. The list comes from PORTFOLIO_LIST (sent on every /ws/portfolio open), grows with
   PORTFOLIO_CREATED and a contest join, and contest portfolios are labelled by their contest's name. */

import { store, subscribe, changed, tabMemory } from "../store.js";
import { $, el } from "../format.js";

let appRef;

export function init(app) {
  appRef = app;
  const channel = app.channels.portfolio;

  channel.on("PORTFOLIO_LIST", (data) => {
    const listed = data.portfolios || [];
    // keep portfolios learnt otherwise (a team portfolio owned by the captain) that the list does not name
    const extra = store.portfolios.filter((p) => p.learnt && !listed.some((l) => l.portfolioId === p.portfolioId));
    store.portfolios = [...listed, ...extra];
    const remembered = tabMemory.get("portfolioId");
    const ids = store.portfolios.map((p) => p.portfolioId);
    const chosen = ids.includes(store.portfolioId) ? store.portfolioId : ids.includes(remembered) ? remembered : ids[0];
    render();
    // every (re)connect: subscribe again, even to the same portfolio
    if (chosen) choose(chosen, { force: true });
  });
  channel.on("PORTFOLIO_CREATED", (data) => {
    if (data.portfolio) addPortfolio(data.portfolio);
  });

  $("#portfolio-switcher").addEventListener("change", (event) => choose(event.target.value));
  subscribe("contests", render);
  subscribe("portfolio", () => {
    // the chosen portfolio's own name, once its snapshot arrives (a learnt entry may have had none)
    const entry = store.portfolios.find((p) => p.portfolioId === store.portfolioId);
    if (entry && store.portfolio && store.portfolio.name && entry.name !== store.portfolio.name) {
      entry.name = store.portfolio.name;
      render();
    }
  });
}

export function signedIn() {
  store.portfolios = [];
  store.portfolioId = null;
  render();
}

export const signedOut = signedIn;

/* Add a portfolio the list does not name yet ({portfolioId, name?}); `learnt` marks one PORTFOLIO_LIST may omit. */
export function addPortfolio(portfolio, { learnt = false } = {}) {
  if (!portfolio || !portfolio.portfolioId) return;
  const known = store.portfolios.find((p) => p.portfolioId === portfolio.portfolioId);
  if (known) {
    if (!known.name && portfolio.name) known.name = portfolio.name;
  } else {
    store.portfolios = [...store.portfolios, { ...portfolio, learnt }];
  }
  render();
}

/* Work with `portfolioId` from now on: unsubscribe the old one, subscribe the new one, tell every panel. */
export function choose(portfolioId, { force = false } = {}) {
  if (!portfolioId) return;
  const channel = appRef.channels.portfolio;
  const previous = store.portfolioId;
  if (previous === portfolioId && !force) return;
  if (previous && previous !== portfolioId) channel.send("UNSUBSCRIBE_PORTFOLIO", { portfolioId: previous });
  if (previous !== portfolioId) {
    store.portfolio = null;
    store.positions = new Map();
  }
  store.portfolioId = portfolioId;
  tabMemory.set("portfolioId", portfolioId);
  channel.send("SUBSCRIBE_PORTFOLIO", { portfolioId, updateType: "ALL", updateInterval: 1000 });
  $("#portfolio-switcher").value = portfolioId;
  document.body.dataset.portfolioId = portfolioId;
  changed("portfolioId");
  changed("portfolio");
  changed("positions");
  changed("orders");
  changed("fills");
}

/* The contest a portfolio belongs to (its myPortfolioId), or null. */
export function contestOf(portfolioId) {
  for (const contest of store.contests.values()) {
    if (!contest.default && contest.myPortfolioId != null && contest.myPortfolioId === portfolioId) return contest;
  }
  return null;
}

export function portfolioLabel(portfolio) {
  const contest = contestOf(portfolio.portfolioId);
  if (contest) return `${contest.name} (contest)`;
  return `${portfolio.name || "Portfolio"} (${portfolio.portfolioId})`;
}

function render() {
  const select = $("#portfolio-switcher");
  select.replaceChildren(...store.portfolios.map((p) => el("option", {
    value: p.portfolioId, dataset: { contest: contestOf(p.portfolioId) ? "yes" : "no" } }, portfolioLabel(p))));
  if (store.portfolioId) select.value = store.portfolioId;
  $("#portfolio-switch").hidden = store.portfolios.length < 2;
}
