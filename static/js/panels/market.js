/* Market: the watchlist of every symbol (live, flashing on change), the market overview and the market status. */

import { store, putQuotes, subscribe, changed, takePrevious } from "../store.js";
import { $, el, money, signedMoney, percent, integer, direction } from "../format.js";

const UPDATE_INTERVAL_MS = 250;
const rows = new Map();  // symbol -> {row, cells}
const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)");

export function init(app) {
  const market = app.channels.market;

  market.onReady(() => market.send("REQUEST_SYMBOLS"));
  market.on("SYMBOL_LIST", (data) => {
    store.symbols = data.symbols || [];
    buildRows();
    changed("symbols");
    market.send("SUBSCRIBE", { symbols: store.symbols.map((s) => s.symbol), subscriptionType: "REAL_TIME",
                               updateInterval: UPDATE_INTERVAL_MS });
  });
  for (const type of ["INITIAL_DATA", "REAL_TIME_UPDATE", "QUOTE_RESPONSE"]) {
    market.on(type, (data) => putQuotes(data.quotes || []));
  }
  market.on("MARKET_OVERVIEW", (data) => {
    store.overview = data;
    if (data.marketStatus) store.market.status = data.marketStatus;
    if (data.speed != null) store.market.speed = data.speed;
    changed("overview");
    changed("market");
  });
  market.on("MARKET_STATUS", (data) => {
    Object.assign(store.market, { status: data.status, speed: data.speed, marketTime: data.marketTime });
    changed("market");
    const event = data.event || {};
    if (event.action === "SHOCK") {
      app.toast(`Market shock: ${event.percent > 0 ? "+" : ""}${event.percent}% on ${(event.symbols || []).join(", ")}`,
                { severity: "WARNING", title: "Market" });
    } else if (event.action === "PAUSE" || event.action === "RESUME") {
      app.toast(event.action === "PAUSE" ? "The market is paused" : "The market is open again", { title: "Market" });
    }
  });

  market.onStatus((channel) => {
    const stale = channel.state !== "connected" && store.market.status != null;
    $("#market-status").dataset.stale = stale ? "yes" : "no";
    renderStatus();
  });

  subscribe("quotes", renderQuotes);
  subscribe("overview", renderOverview);
  subscribe("market", renderStatus);
}

function buildRows() {
  const body = $("#watchlist tbody");
  rows.clear();
  body.replaceChildren(...store.symbols.map(({ symbol, name, sector }) => {
    const cells = {};
    const cell = (f, cls) => (cells[f] = el("td", { class: cls, dataset: { f } }));
    const row = el("tr", { dataset: { symbol, sector } },
      el("th", { scope: "row" }, el("a", { href: `#/symbol/${encodeURIComponent(symbol)}` }, symbol)),
      el("td", { class: "name" }, name),
      cell("price"), cell("change"), cell("pct"), cell("bid", "wide"), cell("ask", "wide"), cell("volume", "wide"));
    rows.set(symbol, { row, cells });
    return row;
  }));
  for (const symbol of store.quotes.keys()) renderQuote(symbol);
}

function renderQuotes(symbols) {
  for (const symbol of symbols) renderQuote(symbol);
}

function renderQuote(symbol) {
  const entry = rows.get(symbol);
  const quote = store.quotes.get(symbol);
  const before = takePrevious(symbol);
  if (!entry || !quote) return;
  const { cells } = entry;
  const dir = direction(quote.change);
  cells.price.textContent = money(quote.price);
  cells.change.textContent = signedMoney(quote.change);
  cells.pct.textContent = percent(quote.changePercent);
  cells.change.className = cells.pct.className = dir;
  cells.bid.textContent = money(quote.bid);
  cells.ask.textContent = money(quote.ask);
  cells.volume.textContent = integer(quote.volume);
  if (before && before.price !== quote.price) {
    // The Web Animations API restarts the flash without forcing a layout per row (no offsetWidth trick).
    const up = quote.price > before.price;
    cells.price.dataset.flash = up ? "up" : "down";
    if (!reducedMotion.matches && cells.price.animate) {
      cells.price.animate([{ backgroundColor: up ? "#b9e8c6" : "#f7c6c1" }, { backgroundColor: "transparent" }],
                          { duration: 900, easing: "ease-out" });
    }
  }
}

function moverList(target, movers) {
  $(target).replaceChildren(...(movers || []).map((m) => el("li", {},
    el("a", { href: `#/symbol/${encodeURIComponent(m.symbol)}` }, m.symbol), " ",
    el("span", {}, money(m.price)), " ",
    el("span", { class: direction(m.changePercent) }, percent(m.changePercent)),
    target === "#active" ? el("span", { class: "muted" }, ` ${integer(m.volume)}`) : null)));
}

function renderOverview() {
  const data = store.overview;
  if (!data) return;
  $("#indices").replaceChildren(...(data.indices || []).map((index) => el("li", { dataset: { symbol: index.symbol } },
    el("strong", { title: index.symbol }, index.name), " ",
    el("span", {}, money(index.value)), " ",
    el("span", { class: direction(index.change) }, `${signedMoney(index.change)} (${percent(index.changePercent)})`))));
  $("#breadth").textContent = data.advancers != null ? `${data.advancers} advancing, ${data.decliners} declining` : "";
  moverList("#gainers", data.topGainers);
  moverList("#losers", data.topLosers);
  moverList("#active", data.mostActive);
}

function renderStatus() {
  const { status, speed } = store.market;
  const node = $("#market-status");
  node.dataset.status = status || "";
  $("[data-field=status]", node).textContent = status ? { OPEN: "Open", PAUSED: "Paused", CLOSED: "Closed" }[status] || status : "…";
  $("[data-field=speed]", node).textContent = (speed != null ? `· speed ×${speed}` : "") +
    (node.dataset.stale === "yes" ? " (last known)" : "");
}
