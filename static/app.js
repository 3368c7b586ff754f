/* Stock Quest live market board: one connection to /ws/market-data, native WebSocket or SockJS. */
"use strict";

const params = new URLSearchParams(location.search);
const wantSockJS = params.get("transport") === "sockjs";
const state = { quotes: new Map(), pending: new Map(), rows: new Map(), frame: 0, attempt: 0, socket: null,
                transport: null, heartbeat: 0, nativeFailed: false };

const $ = (selector) => document.querySelector(selector);
const money = (value) => value == null ? "—" : value.toFixed(2);

function setConnection(stateName, text) {
  const el = $("#connection");
  el.dataset.state = stateName;
  el.dataset.transport = state.transport || "";
  el.textContent = text;
}

function notice(text) {
  const el = $("#notice");
  el.hidden = !text;
  el.textContent = text || "";
}

function send(type, data) {
  if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify({ type, data }));
}

function open() {
  const useSockJS = wantSockJS || state.nativeFailed;
  let socket;
  if (useSockJS) {
    if (typeof window.SockJS !== "function") {
      notice("The SockJS library is missing (node_modules not installed: run `make run` or `npm ci`).");
      setConnection("reconnecting", "Cannot connect: SockJS library missing");
      return;
    }
    const only = params.get("sockjs");  // e.g. ?transport=sockjs&sockjs=xhr-streaming
    socket = new window.SockJS(`${location.origin}/ws/market-data`, null, only ? { transports: only.split(",") } : {});
  } else {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/ws/market-data`);
  }
  state.socket = socket;
  let opened = false;
  socket.onopen = () => {
    opened = true;
    state.attempt = 0;
    state.transport = useSockJS ? `sockjs/${socket.transport || "?"}` : "websocket";
    setConnection("connected", `Connected (${state.transport})`);
    send("REQUEST_SYMBOLS");
    clearInterval(state.heartbeat);
    state.heartbeat = setInterval(() => send("HEARTBEAT"), 25000);
  };
  socket.onmessage = (event) => handle(JSON.parse(event.data));
  socket.onclose = (event) => {
    clearInterval(state.heartbeat);
    if (!opened && !useSockJS) state.nativeFailed = true;  // WebSocket blocked on the way: fall back
    const delay = Math.min(30000, 500 * 2 ** state.attempt) * (0.5 + Math.random() / 2);
    state.attempt += 1;
    setConnection("reconnecting", `Reconnecting in ${Math.round(delay / 1000)} s (closed ${event.code})`);
    setTimeout(open, delay);
  };
}

function handle(message) {
  const data = message.data || {};
  switch (message.type) {
    case "SYMBOL_LIST":
      buildRows(data.symbols);
      send("SUBSCRIBE", { symbols: data.symbols.map((s) => s.symbol), subscriptionType: "REAL_TIME",
                          updateInterval: 250 });
      break;
    case "INITIAL_DATA":
    case "REAL_TIME_UPDATE":
    case "QUOTE_RESPONSE":
      for (const quote of data.quotes) state.pending.set(quote.symbol, quote);
      if (!state.frame) state.frame = requestAnimationFrame(render);
      break;
    case "MARKET_OVERVIEW":
      renderIndices(data.indices);
      $("#market-status [data-field=status]").textContent = data.marketStatus;
      break;
    case "MARKET_STATUS":
      $("#market-status [data-field=status]").textContent = `${data.status} ×${data.speed}`;
      break;
    case "ERROR":
      notice(`Server: ${data.error}`);
      break;
  }
}

function buildRows(symbols) {
  const body = $("#watchlist tbody");
  body.replaceChildren();
  state.rows.clear();
  for (const { symbol, name } of symbols) {
    const row = document.createElement("tr");
    row.dataset.symbol = symbol;
    row.innerHTML = `<td></td><td class="name"></td><td data-f="price"></td><td data-f="change"></td>
      <td data-f="pct"></td><td class="wide" data-f="bid"></td><td class="wide" data-f="ask"></td>
      <td class="wide" data-f="volume"></td>`;
    row.cells[0].textContent = symbol;
    row.cells[1].textContent = name;
    body.append(row);
    state.rows.set(symbol, row);
  }
}

/* Apply every quote that arrived since the last frame at once: smooth with many symbols. */
function render() {
  state.frame = 0;
  for (const [symbol, quote] of state.pending) {
    const row = state.rows.get(symbol);
    const before = state.quotes.get(symbol);
    state.quotes.set(symbol, quote);
    if (!row) continue;
    const cell = (f) => row.querySelector(`[data-f="${f}"]`);
    const direction = quote.change > 0 ? "up" : quote.change < 0 ? "down" : "";
    cell("price").textContent = money(quote.price);
    cell("change").textContent = (quote.change > 0 ? "+" : "") + money(quote.change);
    cell("pct").textContent = (quote.changePercent > 0 ? "+" : "") + quote.changePercent.toFixed(2);
    for (const f of ["change", "pct"]) cell(f).className = direction;
    cell("bid").textContent = money(quote.bid);
    cell("ask").textContent = money(quote.ask);
    cell("volume").textContent = quote.volume.toLocaleString();
    if (before && before.price !== quote.price) {
      const price = cell("price");
      price.classList.remove("flash-up", "flash-down");
      void price.offsetWidth;
      price.classList.add(quote.price > before.price ? "flash-up" : "flash-down");
    }
  }
  state.pending.clear();
}

function renderIndices(indices) {
  $("#indices").replaceChildren(...indices.map((index) => {
    const item = document.createElement("li");
    const direction = index.change > 0 ? "up" : index.change < 0 ? "down" : "";
    item.innerHTML = `<strong></strong> <span></span> <span class="${direction}"></span>`;
    item.children[0].textContent = index.name;
    item.children[1].textContent = index.value.toFixed(2);
    item.children[2].textContent = `${index.changePercent > 0 ? "+" : ""}${index.changePercent.toFixed(2)}%`;
    return item;
  }));
}

open();
