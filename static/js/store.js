/* The page's state, filled only from protocol messages and REST answers. Changes are announced once per
   animation frame: 30+ symbols at several updates a second cost one render pass per frame. */

export const store = {
  user: null,            // {userId, name, role, token}
  symbols: [],           // [{symbol, name, sector}]
  quotes: new Map(),     // symbol -> latest quote
  previous: new Map(),   // symbol -> the quote before the latest (for flashes)
  market: { status: null, speed: null, marketTime: null },
  overview: null,
  portfolios: [],        // PORTFOLIO_LIST summaries (and portfolios learnt since: created, joined)
  portfolioId: null,     // the one being traded: chosen only by panels/switcher.js
  contests: new Map(),   // contestId -> Contest (CONTEST_LIST / CONTEST_JOINED), with myPortfolioId
  userNames: new Map(),  // userId -> nickname, from contest rosters (who placed a team's orders)
  portfolio: null,       // full Portfolio of portfolioId
  positions: new Map(),  // symbol -> Position of portfolioId
  orders: new Map(),     // orderId -> {order, eventId}
  fills: [],             // EXECUTION_REPORT data, newest first
  lastEventId: null,
};

const listeners = new Map();   // topic -> Set(fn)
const dirty = new Map();       // topic -> Set of keys changed (or true)
let frame = 0;

export function subscribe(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

/* Mark `topic` changed (optionally which keys); listeners run on the next animation frame. */
export function changed(topic, key) {
  if (!dirty.has(topic)) dirty.set(topic, new Set());
  if (key !== undefined) dirty.get(topic).add(key);
  if (!frame) frame = requestAnimationFrame(flush);
}

function flush() {
  frame = 0;
  const batch = [...dirty.entries()];
  dirty.clear();
  for (const [topic, keys] of batch) {
    for (const fn of listeners.get(topic) || []) {
      try { fn(keys); } catch (error) { console.error(error); }
    }
  }
}

export function putQuotes(quotes) {
  for (const quote of quotes) {
    const before = store.quotes.get(quote.symbol);
    if (before && !store.previous.has(quote.symbol)) store.previous.set(quote.symbol, before);
    store.quotes.set(quote.symbol, quote);
    changed("quotes", quote.symbol);
  }
}

/* The quote a renderer compares against for its flash; cleared once rendered. */
export function takePrevious(symbol) {
  const before = store.previous.get(symbol);
  store.previous.delete(symbol);
  return before;
}

/* Tab-scoped memory (sessionStorage): the token and the last order eventId survive reloads of this tab only. */
export const tabMemory = {
  get(key) {
    try { return JSON.parse(sessionStorage.getItem(`stockquest.${key}`)); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value == null) sessionStorage.removeItem(`stockquest.${key}`);
      else sessionStorage.setItem(`stockquest.${key}`, JSON.stringify(value));
    } catch { /* storage disabled: the tab still works until reloaded */ }
  },
};
