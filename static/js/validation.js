/* Client-side order checks that mirror the server's (docs/protocol.md, SUBMIT_ORDER), in the server's order:
   INVALID_QUANTITY, INVALID_PRICE, MARKET_CLOSED, INSUFFICIENT_SHARES, INSUFFICIENT_FUNDS, RISK_LIMIT, with the
   limits the server states in the page (server.js), then the journal note's. The server stays the judge: what it
   rejects anyway is shown with its reason. */

import { ORDER_RULES } from "./server.js";

const { maxQuantity: MAX_QUANTITY, maxPrice: MAX_PRICE, marketBuffer: MARKET_BUFFER } = ORDER_RULES;
const MAX_QUANTITY_TEXT = MAX_QUANTITY.toLocaleString("en-US");
const MAX_PRICE_TEXT = MAX_PRICE.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const LIMIT_TYPES = new Set(["LIMIT", "STOP_LIMIT"]);
const STOP_TYPES = new Set(["STOP", "STOP_LIMIT"]);

/* A decimal text to integer cents, or NaN when it is not a number or has fractions of a cent. */
export function toCents(text) {
  const value = String(text ?? "").trim();
  if (!/^\d+(\.\d+)?$/.test(value)) return NaN;
  const [whole, fractionPart = ""] = value.split(".");
  if (fractionPart.replace(/0+$/, "").length > 2) return NaN;
  return Number(whole) * 100 + Number((fractionPart + "00").slice(0, 2));
}

function priceProblem(name, text) {
  const cents = toCents(text);
  if (Number.isNaN(cents)) return `The ${name} must be a positive amount in whole cents`;
  if (cents <= 0) return `The ${name} must be positive`;
  if (cents > Math.round(MAX_PRICE * 100)) return `The ${name} must be at most ${MAX_PRICE_TEXT}`;
  return null;
}

/* The problem with an order, as {reason, message}, or null. `context`: {quote, marketStatus, buyingPower,
   availableShares, maxOrderValue}; checks whose context is unknown are left to the server. */
export function validateOrder(order, context = {}) {
  const { side, orderType, timeInForce } = order;
  const quantityText = String(order.quantity ?? "").trim();
  if (!/^\d+$/.test(quantityText) || Number(quantityText) < 1 || Number(quantityText) > MAX_QUANTITY) {
    return { reason: "INVALID_QUANTITY", message: `The quantity must be a whole number of shares from 1 to ${MAX_QUANTITY_TEXT}` };
  }
  const quantity = Number(quantityText);
  for (const [name, text, needed] of [["limit price", order.limitPrice, LIMIT_TYPES.has(orderType)],
                                       ["stop price", order.stopPrice, STOP_TYPES.has(orderType)]]) {
    const given = text != null && String(text).trim() !== "";
    if (needed && !given) return { reason: "INVALID_PRICE", message: `A ${label(orderType)} order needs a ${name}` };
    if (!needed && given) return { reason: "INVALID_PRICE", message: `A ${label(orderType)} order takes no ${name}` };
    if (needed) {
      const problem = priceProblem(name, text);
      if (problem) return { reason: "INVALID_PRICE", message: problem };
    }
  }
  const status = context.marketStatus;
  const cannotRest = timeInForce === "IOC" || timeInForce === "FOK";
  if (status === "PAUSED" && cannotRest) {
    return { reason: "MARKET_CLOSED", message: `The market is paused: ${timeInForce} orders cannot wait until it resumes` };
  }
  if (status === "CLOSED" && (cannotRest || orderType === "MARKET")) {
    return { reason: "MARKET_CLOSED", message: "The market is closed: MARKET, IOC and FOK orders cannot wait" };
  }
  if (side === "SELL" && !ORDER_RULES.allowShort && context.availableShares != null && quantity > context.availableShares) {
    return { reason: "INSUFFICIENT_SHARES",
             message: `Only ${context.availableShares} shares are available to sell (short selling is off)` };
  }
  const estimate = estimatedPrice(order, context.quote);
  if (side === "BUY" && estimate != null && context.buyingPower != null) {
    const reserve = side === "BUY" ? reservePrice(order, context.quote) : null;
    if (reserve != null && quantity * reserve > context.buyingPower + 1e-9) {
      return { reason: "INSUFFICIENT_FUNDS",
               message: `The order needs about ${(quantity * reserve).toFixed(2)}; buying power is ${context.buyingPower.toFixed(2)}` };
    }
  }
  if (context.maxOrderValue != null && estimate != null && quantity * estimate > context.maxOrderValue) {
    return { reason: "RISK_LIMIT",
             message: `The order's value (about ${(quantity * estimate).toFixed(2)}) is over your maximum order value ${context.maxOrderValue.toFixed(2)}` };
  }
  const note = noteProblem(order.note);
  if (note) return { reason: "INVALID_NOTE", message: note };
  return null;
}

export const MAX_NOTE_LENGTH = 500;
// Control characters (Unicode's Cc) other than a line break or a tab, which the server refuses in a note.
const NOTE_CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;

/* The problem with a trade journal note, as the server judges it once trimmed, or null. */
export function noteProblem(note) {
  const text = String(note ?? "").trim();
  const length = [...text].length;  // the server counts code points, not UTF-16 units
  if (length > MAX_NOTE_LENGTH) return `The note has ${length} characters; at most ${MAX_NOTE_LENGTH} are allowed`;
  if (NOTE_CONTROLS.test(text)) return "The note must not contain control characters";
  return null;
}

/* What one share is expected to cost: the limit for limit types, else the side's quote (or the stop). */
export function estimatedPrice(order, quote) {
  if (LIMIT_TYPES.has(order.orderType)) return toCents(order.limitPrice) / 100;
  if (!quote) return null;
  const market = order.side === "BUY" ? quote.ask : quote.bid;
  if (order.orderType === "STOP") {
    const stop = toCents(order.stopPrice) / 100;
    return order.side === "BUY" ? Math.max(market, stop) : stop;
  }
  return market;
}

/* What a buy reserves per share on the server: the limit, or the ask (or stop, if higher) plus the market buffer. */
export function reservePrice(order, quote) {
  if (LIMIT_TYPES.has(order.orderType)) return toCents(order.limitPrice) / 100;
  if (!quote) return null;
  const base = order.orderType === "STOP" ? Math.max(quote.ask, toCents(order.stopPrice) / 100) : quote.ask;
  return Math.ceil(base * 100 * (1 + MARKET_BUFFER)) / 100;
}

export function label(orderType) {
  return { MARKET: "market", LIMIT: "limit", STOP: "stop", STOP_LIMIT: "stop-limit" }[orderType] || orderType;
}

/* MODIFY_ORDER checks: new total quantity above what has filled, prices the order type has, in whole cents. */
export function validateModify(order, changes) {
  if (changes.quantity != null) {
    const text = String(changes.quantity).trim();
    if (!/^\d+$/.test(text) || Number(text) <= order.filledQuantity || Number(text) > MAX_QUANTITY) {
      return `The quantity must be a whole number above the ${order.filledQuantity} already filled, at most ${MAX_QUANTITY_TEXT}`;
    }
  }
  if (changes.limitPrice != null) {
    if (!LIMIT_TYPES.has(order.orderType)) return "This order has no limit price";
    const problem = priceProblem("limit price", changes.limitPrice);
    if (problem) return problem;
  }
  if (changes.stopPrice != null) {
    if (!STOP_TYPES.has(order.orderType)) return "This order has no stop price";
    const problem = priceProblem("stop price", changes.stopPrice);
    if (problem) return problem;
  }
  if (changes.quantity == null && changes.limitPrice == null && changes.stopPrice == null) return "Nothing to change";
  return null;
}
