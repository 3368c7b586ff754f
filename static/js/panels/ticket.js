/* The order ticket: every order type and time in force, checked here as the server would, and the server's
   answer (or its reject reason, in words) shown next to it. */

import { store, subscribe } from "../store.js";
import { $, $$, el, money, explain } from "../format.js";
import { validateOrder, estimatedPrice, reservePrice } from "../validation.js";
import { submitOrder, availableShares } from "./orders.js";
import { riskLimits } from "./risk.js";

let form;

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
  toggleFields();

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
    const button = $("#ticket-submit");
    button.disabled = true;
    try {
      const reply = await submitOrder(data);
      const placed = reply.data.order;
      if (reply.type === "ORDER_REJECTED") {
        result.dataset.state = "rejected";
        result.textContent = `Rejected — ${explain(reply.data.reason, reply.data.error)}`;
      } else {
        result.dataset.state = "submitted";
        result.textContent = `Order placed: ${placed.side} ${placed.quantity} ${placed.symbol} ` +
          `${placed.orderType.replace("_", " ").toLowerCase()} (${placed.status.replace("_", " ").toLowerCase()})`;
      }
    } catch (failure) {
      result.dataset.state = "error";
      result.textContent = `Not placed — ${explain(failure.code, failure.message)}`;
    } finally {
      button.disabled = false;
    }
  });
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
