/* The dashboard's wiring: the five channels, the signed-in session, the views and the connection indicator. */

import { Channel, transport } from "./connection.js";
import { store, tabMemory } from "./store.js";
import { $, $$ } from "./format.js";
import { toast } from "./toasts.js";
import { CLASS_ROLES } from "./server.js";
import * as signin from "./panels/signin.js";
import * as market from "./panels/market.js";
import * as news from "./panels/news.js";
import * as chart from "./panels/chart.js";
import * as orders from "./panels/orders.js";
import * as ticket from "./panels/ticket.js";
import * as portfolio from "./panels/portfolio.js";
import * as risk from "./panels/risk.js";
import * as signals from "./panels/signals.js";
import * as leaderboard from "./panels/leaderboard.js";
import * as teacher from "./panels/teacher.js";
import * as metrics from "./panels/metrics.js";
import * as switcher from "./panels/switcher.js";
import * as contestJoin from "./panels/contest_join.js";
import * as contests from "./panels/contests.js";

const channels = {
  market: new Channel("market-data"),
  orders: new Channel("orders", { authRequired: true }),
  portfolio: new Channel("portfolio", { authRequired: true }),
  risk: new Channel("risk-monitoring", { authRequired: true }),
  signals: new Channel("ml-signals"),
};
const SIGNED_IN_CHANNELS = ["orders", "portfolio", "risk"];
const VIEWS = ["market", "symbol", "trade", "portfolio", "risk", "signals", "leaderboard", "contests", "teacher",
               "metrics"];

const app = {
  channels,
  toast,
  view: null,
  viewHooks: new Map(),   // view -> [fn(args)] run when the view is shown
  leaveHooks: new Map(),  // view -> [fn()] run when another view replaces it
  onView(view, fn) {
    if (!this.viewHooks.has(view)) this.viewHooks.set(view, []);
    this.viewHooks.get(view).push(fn);
  },
  onLeave(view, fn) {
    if (!this.leaveHooks.has(view)) this.leaveHooks.set(view, []);
    this.leaveHooks.get(view).push(fn);
  },
  navigate(hash) { location.hash = hash; },
  signIn: (user) => startSession(user),
  signOut: (why) => endSession(why),
  isTeacher: () => !!store.user && CLASS_ROLES.includes(store.user.role),
};
window.stockquest = app;  // for the browser console and tests

function notice(text) {
  const node = $("#notice");
  node.hidden = !text;
  node.textContent = text || "";
}

function checkLibraries() {
  const missing = [];
  if (typeof window.SockJS !== "function") missing.push("sockjs-client");
  if (typeof window.LightweightCharts !== "object") missing.push("lightweight-charts");
  if (missing.length) {
    notice(`Missing browser libraries: ${missing.join(", ")}. They come from the npm registry: run ` +
           "`npm ci` (or `make test`) in the server's folder, then reload. " +
           (missing.includes("lightweight-charts") ? "Charts are off until then. " : "") +
           (missing.includes("sockjs-client") ? "Only native WebSockets can be used until then." : ""));
  }
  document.body.dataset.missingLibraries = missing.join(" ");
}

/* What the server last said of itself (SERVICE_STATUS, sent only when it runs as several processes). */
let service = { status: "OK" };

/* One indicator for the whole page: connected, reconnecting (and why), and the transport in use. */
function renderConnection() {
  const active = Object.values(channels).filter((c) => !["idle", "stopped"].includes(c.state));
  const counted = active.filter((c) => c.state !== "unavailable");
  const node = $("#connection");
  let state = "connected";
  if (counted.some((c) => c.state === "reconnecting")) state = "reconnecting";
  else if (counted.some((c) => c.state === "connecting")) state = "connecting";
  else if (counted.some((c) => c.state === "unauthorized")) state = "unauthorized";
  const name = channels.market.transportName || (transport.useSockJS ? "sockjs" : "websocket");
  node.dataset.state = state;
  node.dataset.transport = state === "connected" ? name : "";
  const down = counted.find((c) => c.state === "reconnecting");
  const text = {
    connected: `Connected (${name})`,
    connecting: "Connecting…",
    reconnecting: down ? `Reconnecting… (${down.detail}${down.retryAt > Date.now()
      ? `; next try in ${Math.max(1, Math.round((down.retryAt - Date.now()) / 1000))} s` : ""})` : "Reconnecting…",
    unauthorized: "Sign-in needed",
  }[state];
  const degraded = state === "connected" && service.status !== "OK";
  node.dataset.service = degraded ? "degraded" : "";
  node.textContent = !degraded ? text : service.engine !== "AVAILABLE"
    ? "Connected, but trading is paused: the trading engine is not answering (orders will be refused until it is back)"
    : "Connected, but live updates are paused: the server lost its message broker";
  node.title = active.map((c) => `${c.name}: ${c.state}${c.detail ? ` (${c.detail})` : ""}`).join("\n");
  for (const c of Object.values(channels)) {
    for (const marker of $$(`[data-unavailable="${c.name === "risk-monitoring" ? "risk" : c.name === "ml-signals" ? "signals" : c.name}"]`)) {
      marker.hidden = c.state !== "unavailable" && !c.unsupported;
    }
  }
}

function route() {
  const [, view = "market", ...args] = (location.hash || "#/market").split("/");
  let name = VIEWS.includes(view) ? view : "market";
  const needsAuth = ["trade", "portfolio", "risk", "leaderboard", "contests", "teacher", "metrics"].includes(name);
  if (needsAuth && !store.user) name = "market";
  if ((name === "teacher" || name === "metrics") && !app.isTeacher()) name = "market";
  const left = app.view;
  app.view = name;
  if (left && left !== name) for (const fn of app.leaveHooks.get(left) || []) fn();
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== name;
  for (const link of $$("#nav a")) {
    if (link.dataset.view === (name === "symbol" ? "market" : name)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = name;
  for (const fn of app.viewHooks.get(name) || []) fn(args.map(decodeURIComponent));
}

function renderAccount() {
  const user = store.user;
  $("#account").hidden = !user;
  $("#signin").hidden = !!user;
  document.body.dataset.signedIn = user ? "yes" : "no";
  for (const link of $$("#nav a[data-auth]")) link.hidden = !user || (link.hasAttribute("data-teacher") && !app.isTeacher());
  for (const node of $$("[data-auth-only]")) node.hidden = !user;
  if (user) {
    $("#account [data-field=name]").textContent = user.name;
    $("#account [data-field=role]").textContent = user.role;
    $("#password-change").hidden = (user.username || "").startsWith("guest-");  // a guest has no password
  }
}

function startSession(user) {
  store.user = user;
  tabMemory.set("user", user);
  renderAccount();
  for (const key of SIGNED_IN_CHANNELS) {
    channels[key].token = user.token;
    channels[key].start();
  }
  channels.signals.stop();
  channels.signals.token = user.token;
  channels.signals.start();
  if (channels.market.state === "unauthorized") {
    channels.market.token = user.token;
    channels.market.start();
  }
  for (const panel of [switcher, orders, portfolio, risk, signals, teacher, contestJoin]) panel.signedIn?.(app);
  route();
}

function endSession(why) {
  for (const key of SIGNED_IN_CHANNELS) channels[key].stop();
  for (const panel of [switcher, orders, portfolio, risk, signals, teacher, leaderboard, metrics, contestJoin, contests]) {
    panel.signedOut?.(app);
  }
  store.user = null;
  tabMemory.set("user", null);
  channels.signals.stop();
  channels.signals.token = null;
  channels.signals.start();
  if (channels.market.token) {
    channels.market.stop();
    channels.market.token = null;
    channels.market.start();
  }
  renderAccount();
  if (why) notice(why);
  location.hash = "#/market";
  route();
}

function boot() {
  checkLibraries();
  channels.market.on("SERVICE_STATUS", (data) => { service = data; renderConnection(); });
  for (const channel of Object.values(channels)) {
    channel.onStatus(() => renderConnection());
    channel.on("_UNAUTHORIZED", () => {
      if (store.user && channel.token) endSession("Your sign-in has expired or is no longer valid: please sign in again.");
    });
  }
  setInterval(renderConnection, 1000);
  for (const panel of [signin, market, news, chart, switcher, orders, ticket, portfolio, risk, signals, leaderboard, teacher,
                       metrics, contestJoin, contests]) {
    panel.init(app);
  }
  $("#sign-out").addEventListener("click", () => endSession());
  window.addEventListener("hashchange", route);
  channels.market.start();
  channels.signals.start();
  const saved = tabMemory.get("user");
  if (saved && saved.token) startSession(saved);
  else { renderAccount(); route(); }
}

boot();
