/* Formatting and small DOM helpers shared by the panels. */

const moneyFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const intFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

export function money(value) {
  return value == null || Number.isNaN(value) ? "—" : moneyFormat.format(value);
}

export function signedMoney(value) {
  return value == null ? "—" : (value > 0 ? "+" : "") + moneyFormat.format(value);
}

export function integer(value) {
  return value == null ? "—" : intFormat.format(value);
}

/* A percentage given in percent units (changePercent: 0.76 means 0.76 %). */
export function percent(value, digits = 2) {
  return value == null ? "—" : `${value > 0 ? "+" : ""}${value.toFixed(digits)}%`;
}

/* A fraction shown as a percentage (weight 0.0182 → 1.82%). */
export function fraction(value, digits = 2) {
  return value == null ? "—" : `${(value * 100).toFixed(digits)}%`;
}

export function number(value, digits = 2) {
  return value == null || Number.isNaN(value) ? "—" : Number(value).toFixed(digits);
}

export function direction(value) {
  return value > 0 ? "up" : value < 0 ? "down" : "";
}

export function clock(value) {
  if (value == null) return "—";
  const date = typeof value === "number" ? new Date(value) : new Date(value);
  return date.toLocaleTimeString("en-GB", { hour12: false });
}

export function dateTime(value) {
  if (value == null) return "—";
  return new Date(value).toLocaleString("en-GB", { hour12: false });
}

/* Build an element: el("td", {class: "up", dataset: {f: "price"}}, "text", child...). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/* Fill a <dl> with [label, value, className?] rows. */
export function fillKv(dl, rows) {
  dl.replaceChildren(...rows.map(([label, value, cls]) => el("div", { dataset: { key: label } },
    el("dt", {}, label), el("dd", { class: cls || null }, value))));
}

/* Show or hide the "nothing here" line that belongs to a table. */
export function setEmpty(tableId, empty) {
  const note = document.querySelector(`[data-empty-for="${tableId}"]`);
  if (note) note.hidden = !empty;
}

/* Plain words for reject reasons and error codes from the server. */
export const REASONS = {
  INSUFFICIENT_FUNDS: "Not enough buying power for this order",
  INSUFFICIENT_SHARES: "You don't hold enough shares to sell (short selling is off)",
  UNKNOWN_SYMBOL: "That symbol is not traded here",
  INVALID_QUANTITY: "The quantity must be a whole number of shares from 1 to 1,000,000",
  INVALID_PRICE: "The price is missing, not allowed for this order type, or not a valid amount",
  RISK_LIMIT: "The order would break one of your risk limits",
  DUPLICATE_CLIENT_ORDER_ID: "This order was already sent with different details",
  MARKET_CLOSED: "The market is closed or paused: this kind of order cannot wait",
  INVALID_NOTE: "The note is too long or holds control characters",
  CONTEST_NOT_OPEN: "This contest is not open for trading (not started yet, or finished)",
  NOTE_REQUIRED: "This contest wants a note on every order: say why in the trade journal box",
  SYMBOL_NOT_ALLOWED: "This contest does not trade that symbol",
  CONFLICT: "That clashes with something that already exists",
  BAD_REQUEST: "The server did not accept the request",
  FORBIDDEN: "You are not allowed to do that",
  NOT_FOUND: "Not found",
  RATE_LIMITED: "Too many requests: slow down a little",
  UNAUTHORIZED: "Please sign in again",
  NOT_CONNECTED: "Not connected right now: try again in a moment",
  TIMEOUT: "The server did not answer in time",
  CLOSED: "The connection dropped before the server answered; an order that reached it shows up here once reconnected",
  UNAVAILABLE: "Not available on this server yet",
};

export function explain(code, text) {
  const words = REASONS[code] || code || "Error";
  return text && text !== words ? `${words}: ${text}` : words;
}
