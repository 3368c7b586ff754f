/* The order ticket: every order type and time in force and a trade journal note, checked here as the server
   would, and the server's answer (or its reject reason, in words) shown next to it, following the order's events
   (fills, a cancellation and its reason) until it is closed. */

import { store, subscribe } from "../store.js";
import { $, $$, el, money, integer, explain } from "../format.js";
import { validateOrder, estimatedPrice, reservePrice, label, MAX_NOTE_LENGTH } from "../validation.js";
import { submitOrder, availableShares } from "./orders.js";
import { riskLimits } from "./risk.js";

const OPEN = new Set(["NEW", "PARTIALLY_FILLED"]);

let form;
let followed = null;   // {orderId, placed, reason}: the order the ticket last placed, while it is open

function values() {
  const type = $("#ticket-type").value;
  return {
    symbol: $("#ticket-symbol").value,
    side: $$("input[name=side]", form).find((i) => i.checked).value,
    orderType: type,
    quantity: $("#ticket-quantity").value,
    limitPrice: ["LIMIT", "STOP_LIMIT"].includes(type) ? $("#ticket-limit").value : "",
    stopPrice: ["STOP", "STOP_LIMIT"].includes(type) ? $("#ticket-stop").value : "",
    timeInForce: $("#ticket-tif").value,
    note: $("#ticket-note").value,
  };
}

function context(order) {
  const portfolio = store.portfolio;
  const limits = riskLimits();
  return {
    quote: store.quotes.get(order.symbol),
    marketStatus: store.market.status,
    buyingPower: portfolio ? portfolio.buyingPower : null,
    availableShares: portfolio ? availableShares(order.symbol) : null,
    maxOrderValue: limits ? limits.maxOrderValue : null,
  };
}

export function init(app) {
  form = $("#ticket");
  const error = $("#ticket-error");
  const result = $("#ticket-result");

  subscribe("symbols", () => {
    const select = $("#ticket-symbol");
    const current = select.value;
    select.replaceChildren(...store.symbols.map((s) => el("option", { value: s.symbol }, `${s.symbol} · ${s.name}`)));
    if (current) select.value = current;
  });
  app.onView("trade", ([symbol]) => {
    if (symbol) $("#ticket-symbol").value = symbol.toUpperCase();
    showQuote();
  });
  subscribe("quotes", (symbols) => { if (symbols.has($("#ticket-symbol").value)) showQuote(); });
  subscribe("portfolio", () => showQuote());

  $("#ticket-type").addEventListener("change", () => { toggleFields(); showQuote(); });
  form.addEventListener("input", () => { error.textContent = ""; showQuote(); });
  form.addEventListener("change", () => showQuote());
  $("#ticket-note").addEventListener("input", countNote);
  toggleFields();
  countNote();

  // The placed order's later events: the orders panel keeps its latest state in the store; a system
  // cancellation's reason travels only in the event.
  subscribe("orders", (keys) => { if (followed && keys.has(followed.orderId)) showPlaced(); });
  app.channels.orders.on("ORDER_CANCELLED", (data) => {
    if (followed && data.order && data.order.orderId === followed.orderId && data.reason) {
      followed.reason = data.reason;
      showPlaced();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    result.textContent = "";
    result.dataset.state = "";
    const order = values();
    const problem = validateOrder(order, context(order));
    if (problem) {
      error.textContent = problem.message;
      error.dataset.reason = problem.reason;
      return;
    }
    const data = { symbol: order.symbol, side: order.side, orderType: order.orderType, quantity: Number(order.quantity),
                   timeInForce: order.timeInForce };
    if (order.limitPrice) data.limitPrice = order.limitPrice.trim();
    if (order.stopPrice) data.stopPrice = order.stopPrice.trim();
    if (order.note.trim()) data.note = order.note.trim();
    const button = $("#ticket-submit");
    button.disabled = true;
    followed = null;
    delete result.dataset.status;
    delete result.dataset.orderId;
    try {
      const reply = await submitOrder(data);
      if (reply.type === "ORDER_REJECTED") {
        result.dataset.state = "rejected";
        result.dataset.status = "REJECTED";
        result.textContent = `Rejected — ${explain(reply.data.reason, reply.data.error)}`;
      } else {
        followed = { orderId: reply.data.order.orderId, placed: reply.data.order, reason: null };
        $("#ticket-note").value = "";
        countNote();
        showPlaced();
      }
    } catch (failure) {
      result.dataset.state = "error";
      result.textContent = `Not placed — ${explain(failure.code, failure.message)}`;
    } finally {
      button.disabled = false;
    }
  });
}

/* The placed order as it is now: its status in words, with what has filled, until it is closed. */
function showPlaced() {
  const result = $("#ticket-result");
  const known = store.orders.get(followed.orderId);
  const o = known ? known.order : followed.placed;
  const placed = `Order placed: ${o.side} ${o.quantity} ${o.symbol} ${label(o.orderType)}`;
  const average = o.averageFillPrice == null ? "" : ` at ${money(o.averageFillPrice)} average`;
  const words = {
    NEW: "new, waiting to fill",
    PARTIALLY_FILLED: `partially filled: ${integer(o.filledQuantity)} of ${integer(o.quantity)}${average}`,
    FILLED: `filled: ${integer(o.filledQuantity)}${average}`,
    CANCELLED: `cancelled${o.filledQuantity ? ` after ${integer(o.filledQuantity)} filled${average}` : ""}` +
               (followed.reason ? ` — ${followed.reason}` : ""),
    EXPIRED: `expired at the end of the day${o.filledQuantity ? ` after ${integer(o.filledQuantity)} filled` : ""}`,
    REJECTED: `rejected — ${explain(o.rejectReason)}`,
  }[o.status] || o.status.toLowerCase();
  result.dataset.state = OPEN.has(o.status) ? "submitted" : o.status.toLowerCase();
  result.dataset.status = o.status;
  result.dataset.orderId = o.orderId;
  result.textContent = `${placed} (${words})`;
  if (!OPEN.has(o.status)) followed = null;
}

function countNote() {
  const length = $("#ticket-note").value.length;
  const counter = $("#ticket-note-count");
  counter.textContent = `${length} / ${MAX_NOTE_LENGTH}`;
  counter.dataset.state = length >= MAX_NOTE_LENGTH ? "full" : "";
}

function toggleFields() {
  const type = $("#ticket-type").value;
  const limit = ["LIMIT", "STOP_LIMIT"].includes(type);
  const stop = ["STOP", "STOP_LIMIT"].includes(type);
  $("[data-for=limit]", form).hidden = !limit;
  $("[data-for=stop]", form).hidden = !stop;
  $("#ticket-limit").required = limit;
  $("#ticket-stop").required = stop;
}

function showQuote() {
  const order = values();
  const quote = store.quotes.get(order.symbol);
  $("#ticket-quote").textContent = quote
    ? `Last ${money(quote.price)} · bid ${money(quote.bid)} × ${quote.bidSize} · ask ${money(quote.ask)} × ${quote.askSize}`
    : "";
  const quantity = Number(order.quantity);
  const price = estimatedPrice(order, quote);
  const parts = [];
  if (quantity > 0 && price != null && !Number.isNaN(price)) parts.push(`Estimated value ${money(quantity * price)}`);
  if (order.side === "BUY" && store.portfolio) {
    const reserve = reservePrice(order, quote);
    if (reserve != null && !Number.isNaN(reserve) && quantity > 0) parts.push(`reserves ${money(quantity * reserve)}`);
    parts.push(`buying power ${money(store.portfolio.buyingPower)}`);
  }
  if (order.side === "SELL" && store.portfolio) parts.push(`${availableShares(order.symbol)} shares available`);
  $("#ticket-estimate").textContent = parts.join(" · ");
}
