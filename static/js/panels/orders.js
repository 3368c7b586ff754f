/* Orders: the user's order events (resumed from the last eventId after any reconnect), open orders with
   cancel and modify, fills as they arrive, and the order history. */

import { store, subscribe, changed } from "../store.js";
import { $, el, money, integer, clock, dateTime, setEmpty, explain } from "../format.js";
import { validateModify } from "../validation.js";
import { loadLeaderboard } from "./leaderboard.js";

const OPEN = new Set(["NEW", "PARTIALLY_FILLED"]);
const ORDER_EVENTS = ["ORDER_SUBMITTED", "ORDER_REJECTED", "ORDER_MODIFIED", "ORDER_PARTIALLY_FILLED",
                      "ORDER_FILLED", "ORDER_CANCELLED"];
const RECENT_EVENTS = 100;   // a fresh tab replays this many recent events to show recent fills
const MAX_FILLS = 200;

const seen = new Set();      // eventIds applied (replays and live pushes may overlap)
let appRef = null;
let history = { orders: [], nextCursor: null };
let historyTimer = 0;
let editing = null;          // orderId whose modify form is open

function noteEvent(eventId) {
  if (eventId == null) return true;
  if (seen.has(eventId)) return false;
  seen.add(eventId);
  if (store.lastEventId == null || eventId > store.lastEventId) {
    store.lastEventId = eventId;
  }
  return true;
}

/* Keep an order's latest state: an event older than the one already applied to it changes nothing. */
function upsert(order, eventId = null) {
  const known = store.orders.get(order.orderId);
  if (known && eventId != null && known.eventId != null && eventId < known.eventId) return;
  store.orders.set(order.orderId, { order, eventId: eventId ?? (known ? known.eventId : null) });
  changed("orders", order.orderId);
}

export function init(app) {
  appRef = app;
  const channel = app.channels.orders;

  channel.onReady(() => resume(channel));
  channel.on("ACTIVE_ORDERS", (data) => {
    for (const order of data.orders || []) upsert(order);
    // open orders we think exist but the server no longer lists were closed while we were away: ask
    const listed = new Set((data.orders || []).map((o) => o.orderId));
    for (const { order } of store.orders.values()) {
      if (OPEN.has(order.status) && !listed.has(order.orderId)) channel.send("REQUEST_ORDER_STATUS", { orderId: order.orderId });
    }
  });
  channel.on("ORDER_STATUS", (data) => upsert(data.order));
  for (const type of ORDER_EVENTS) {
    channel.on(type, (data, message) => {
      if (!noteEvent(data.eventId)) return;
      upsert(data.order, data.eventId);
      if (type === "ORDER_REJECTED" && !message.requestId) {
        app.toast(explain(data.reason, data.error), { severity: "WARNING", title: `${data.order.symbol} order rejected` });
      }
      if (type === "ORDER_CANCELLED" && data.order.status === "EXPIRED") {
        app.toast(`${data.order.side} ${data.order.quantity} ${data.order.symbol} expired at the end of the day`,
                  { title: "Order expired" });
      }
      if (!OPEN.has(data.order.status)) scheduleHistory();
    });
  }
  channel.on("EXECUTION_REPORT", (data) => {
    if (!noteEvent(data.eventId)) return;
    if (store.fills.some((f) => f.executionId === data.executionId)) return;
    store.fills.unshift(data);
    store.fills.sort((a, b) => (b.eventId ?? 0) - (a.eventId ?? 0));
    if (store.fills.length > MAX_FILLS) store.fills.length = MAX_FILLS;
    changed("fills", data.executionId);
    if (data.portfolioId == null || data.portfolioId === store.portfolioId) changed("ownFill");
  });
  channel.on("ORDER_HISTORY", (data, message) => {
    if (message.requestId !== history.requestId) return;
    history.orders = history.append ? history.orders.concat(data.orders || []) : (data.orders || []);
    history.nextCursor = data.nextCursor;
    renderHistory();
  });
  channel.on("SUBSCRIPTION_CONFIRMED", (data, message) => {
    if (message.requestId !== channel.subscribeRequest) return;
    const last = data.lastEventId ?? 0;
    if (data.recovered === false) {
      // We remember more than the server has (a reset data folder): start again from what it has.
      seen.clear();
      store.lastEventId = last;
      requestHistory();
      return;
    }
    if (channel.freshTab) {
      channel.freshTab = false;
      if (store.lastEventId == null) store.lastEventId = last;
      if (last > 0) channel.subscribeRequest = channel.send("SUBSCRIBE_ORDERS", { sinceEventId: Math.max(0, last - RECENT_EVENTS) });
    }
  });

  subscribe("orders", renderOpenOrders);
  subscribe("fills", renderFills);
  subscribe("portfolioId", () => { editing = null; requestHistory(); });
  subscribe("userNames", () => { renderOpenOrders(null); renderHistory(); });
  app.onView("trade", () => requestHistory());
  $("#history-more").addEventListener("click", () => requestHistory(true));
}

/* After every reconnect: replay everything after the last eventId this page saw, then go live. A page just
   opened (or reloaded) asks for the latest eventId first and replays the recent events, to list recent fills. */
function resume(channel) {
  if (store.lastEventId != null) {
    channel.freshTab = false;
    channel.subscribeRequest = channel.send("SUBSCRIBE_ORDERS", { sinceEventId: store.lastEventId });
  } else {
    channel.freshTab = true;
    channel.subscribeRequest = channel.send("SUBSCRIBE_ORDERS", {});
  }
  requestHistory();
}

export function signedIn() {
  seen.clear();
  store.orders.clear();
  store.fills = [];
  store.lastEventId = null;
  history = { orders: [], nextCursor: null };
  changed("orders");
  changed("fills");
}

export function signedOut() {
  signedIn();
  renderHistory();
}

function scheduleHistory() {
  clearTimeout(historyTimer);
  historyTimer = setTimeout(() => requestHistory(), 400);
}

function requestHistory(append = false) {
  const channel = appRef.channels.orders;
  if (!channel.ready) return;
  const data = { limit: 50 };
  if (store.portfolioId) data.portfolioId = store.portfolioId;
  if (append && history.nextCursor) data.before = history.nextCursor;
  history.append = append;
  history.requestId = channel.send("REQUEST_ORDER_HISTORY", data);
}

/* Submit through the one order path the ticket and the optimiser share. Resolves with the reply message. */
export async function submitOrder(fields) {
  const data = { portfolioId: store.portfolioId, timeInForce: "DAY",
                 clientOrderId: `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`, ...fields };
  return appRef.channels.orders.request("SUBMIT_ORDER", data);
}

/* Shares of `symbol` not already held by open sell orders. */
export function availableShares(symbol) {
  const position = store.positions.get(symbol);
  if (!position) return 0;
  let held = 0;
  for (const { order } of store.orders.values()) {
    if (order.symbol === symbol && order.side === "SELL" && OPEN.has(order.status) &&
        order.portfolioId === store.portfolioId) held += order.remainingQuantity;
  }
  return Math.max(0, position.quantity - held);
}

function renderOpenOrders(_keys, force = false) {
  const open = [...store.orders.values()].map((e) => e.order)
    .filter((o) => OPEN.has(o.status) && (!store.portfolioId || o.portfolioId === store.portfolioId))
    .sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  const body = $("#open-orders tbody");
  const typing = document.activeElement && document.activeElement.closest && document.activeElement.closest("tr.modify");
  if (typing && editing && !force) return;  // don't pull the form out from under the keyboard
  body.replaceChildren(...open.flatMap((order) => {
    const row = el("tr", { dataset: { orderId: order.orderId, status: order.status } },
      el("th", { scope: "row" }, order.symbol, placedBy(order)),
      el("td", { class: order.side === "BUY" ? "up" : "down" }, order.side),
      el("td", {}, order.orderType.replace("_", " ")),
      el("td", { dataset: { f: "quantity" } }, integer(order.quantity)),
      el("td", { dataset: { f: "filled" } }, integer(order.filledQuantity)),
      el("td", { dataset: { f: "limit" } }, money(order.limitPrice)),
      el("td", { dataset: { f: "stop" } }, money(order.stopPrice)),
      el("td", { class: "wide" }, order.timeInForce),
      el("td", { dataset: { f: "status" } }, order.status.replace("_", " ")),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "secondary small", "aria-label": `Modify ${order.side} ${order.symbol} order`,
                       onclick: () => { editing = editing === order.orderId ? null : order.orderId; renderOpenOrders(null, true); } }, "Modify"),
        el("button", { type: "button", class: "danger small", "aria-label": `Cancel ${order.side} ${order.symbol} order`,
                       onclick: (event) => cancel(order, event.currentTarget) }, "Cancel")));
    return editing === order.orderId ? [row, modifyRow(order)] : [row];
  }));
  setEmpty("open-orders", open.length === 0);
}

function modifyRow(order) {
  const error = el("p", { class: "error", role: "alert" });
  const quantity = el("input", { type: "number", name: "quantity", min: order.filledQuantity + 1, step: 1,
                                 value: order.quantity, "aria-label": "New total quantity" });
  const limit = order.limitPrice != null
    ? el("input", { type: "number", name: "limitPrice", step: "0.01", min: "0.01", value: order.limitPrice.toFixed(2), "aria-label": "New limit price" })
    : null;
  const stop = order.stopPrice != null
    ? el("input", { type: "number", name: "stopPrice", step: "0.01", min: "0.01", value: order.stopPrice.toFixed(2), "aria-label": "New stop price" })
    : null;
  const form = el("form", { class: "row modify-form", dataset: { orderId: order.orderId } },
    el("label", {}, "Quantity ", quantity),
    limit ? el("label", {}, "Limit ", limit) : null,
    stop ? el("label", {}, "Stop ", stop) : null,
    el("button", { type: "submit", class: "small" }, "Save"),
    el("button", { type: "button", class: "secondary small", onclick: () => { editing = null; renderOpenOrders(null, true); } }, "Close"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = {};
    if (Number(quantity.value) !== order.quantity) changes.quantity = quantity.value;
    if (limit && Number(limit.value) !== order.limitPrice) changes.limitPrice = limit.value;
    if (stop && Number(stop.value) !== order.stopPrice) changes.stopPrice = stop.value;
    const problem = validateModify(order, changes);
    if (problem) { error.textContent = problem; return; }
    const data = { orderId: order.orderId };
    if (changes.quantity != null) data.quantity = Number(changes.quantity);
    if (changes.limitPrice != null) data.limitPrice = String(changes.limitPrice);
    if (changes.stopPrice != null) data.stopPrice = String(changes.stopPrice);
    try {
      await appRef.channels.orders.request("MODIFY_ORDER", data);
      editing = null;
      renderOpenOrders(null, true);
      appRef.toast(`Order ${order.symbol} modified`, { title: "Modified" });
    } catch (failure) {
      error.textContent = explain(failure.code, failure.message);
    }
  });
  setTimeout(() => quantity.focus(), 0);
  return el("tr", { class: "modify" }, el("td", { colspan: 10 }, form));
}

async function cancel(order, button) {
  button.disabled = true;
  try {
    await appRef.channels.orders.request("CANCEL_ORDER", { orderId: order.orderId });
  } catch (failure) {
    button.disabled = false;
    appRef.toast(explain(failure.code, failure.message), { severity: "WARNING", title: "Cancel failed" });
  }
}

function renderFills() {
  const fills = store.fills.filter((f) => !store.portfolioId || f.portfolioId == null || f.portfolioId === store.portfolioId);
  $("#fills tbody").replaceChildren(...fills.map((f) => el("tr", { dataset: { executionId: f.executionId, orderId: f.orderId } },
    el("td", {}, clock(f.time)),
    el("td", { class: "sym" }, f.symbol),
    el("td", { class: f.side === "BUY" ? "up" : "down" }, f.side),
    el("td", { dataset: { f: "quantity" } }, integer(f.fillQuantity)),
    el("td", {}, money(f.fillPrice)),
    el("td", { class: "wide muted" }, f.leavesQuantity ? `${f.orderId} (${f.leavesQuantity} left)` : f.orderId))));
  setEmpty("fills", fills.length === 0);
}

/* Who placed an order on a team portfolio, when it was not the portfolio's owner (placedBy is null for the owner). */
function placedBy(order) {
  if (order.placedBy == null) return null;
  const owner = store.portfolio && store.portfolio.portfolioId === order.portfolioId ? store.portfolio.ownerId : null;
  if (owner != null && String(order.placedBy) === String(owner)) return null;
  const me = store.user && String(store.user.userId) === String(order.placedBy);
  const known = store.userNames.get(String(order.placedBy));
  if (!me && !known) learnNames();
  const name = me ? "you" : known || `user ${order.placedBy}`;
  return el("span", { class: "placed-by tag", dataset: { testid: "placed-by", placedBy: String(order.placedBy) },
                      title: "Placed by this team member" }, `by ${name}`);
}

/* A teammate's name: the class leaderboard names every player by user id (a contest's roster does so only for
   its teacher). Asked at most once a minute. */
let namesAsked = 0;
function learnNames() {
  if (Date.now() - namesAsked < 60_000) return;
  namesAsked = Date.now();
  loadLeaderboard().catch(() => {});
}

function renderHistory() {
  $("#order-history tbody").replaceChildren(...history.orders.map((o) => el("tr", { dataset: { orderId: o.orderId, status: o.status } },
    el("td", {}, dateTime(o.updatedAt)),
    el("td", { class: "sym" }, o.symbol, placedBy(o)),
    el("td", {}, o.side),
    el("td", {}, o.orderType.replace("_", " ")),
    el("td", {}, integer(o.quantity)),
    el("td", {}, integer(o.filledQuantity)),
    el("td", {}, money(o.averageFillPrice)),
    el("td", {}, o.status.replace("_", " ")),
    el("td", { class: "wide" }, o.rejectReason ? explain(o.rejectReason) : ""))));
  $("#history-more").hidden = !history.nextCursor;
}
