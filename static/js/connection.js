/* The socket layer: one Channel per endpoint over a native WebSocket or SockJS, signed in with AUTH,
   reconnecting with backoff and jitter, replaying its subscriptions after every reconnect, and falling
   back to SockJS when a native WebSocket cannot get through. */

const params = new URLSearchParams(location.search);

/* Shared by every channel of the page: once native WebSockets are known to be blocked, all use SockJS. */
export const transport = {
  forceSockJS: params.get("transport") === "sockjs",
  sockjsTransports: params.get("sockjs") ? params.get("sockjs").split(",") : null,  // e.g. xhr-streaming
  nativeBlocked: false,
  get useSockJS() { return this.forceSockJS || this.nativeBlocked; },
};

export const BACKOFF = { baseMs: 500, capMs: 8000, unavailableMs: 30000 };
const HEARTBEAT_MS = 25000;

/* Exponential backoff with jitter: half fixed, half random, so a class of tabs does not reconnect in step. */
export function backoffDelay(attempt, base = BACKOFF.baseMs, cap = BACKOFF.capMs) {
  const ceiling = Math.min(cap, base * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}

export class ProtocolError extends Error {
  constructor(data) {
    super((data && data.error) || "error");
    this.code = data && data.code;
    this.data = data;
  }
}

let requestCounter = 0;

/* Channel owns one endpoint's connection: state, requests awaiting replies, listeners by message type. */
export class Channel {
  constructor(name, { token = null, authRequired = false } = {}) {
    this.name = name;
    this.token = token;
    this.authRequired = authRequired;
    this.state = "idle";        // idle | connecting | connected | reconnecting | unavailable | unauthorized | stopped
    this.transportName = "";
    this.detail = "";
    this.retryAt = 0;
    this.socket = null;
    this.attempt = 0;
    this.listeners = new Map();  // type -> Set(fn)
    this.readyHooks = [];        // run after every (re)connect: resubscribe
    this.statusHooks = new Set();
    this.pending = new Map();    // requestId -> {resolve, reject, timer}
    this.timer = 0;
    this.heartbeat = 0;
    this.userId = null;
  }

  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  onReady(fn) { this.readyHooks.push(fn); if (this.state === "connected") fn(); }

  onStatus(fn) { this.statusHooks.add(fn); fn(this); }

  get ready() { return this.state === "connected"; }

  start() {
    if (this.state !== "idle" && this.state !== "stopped" && this.state !== "unauthorized") return;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.setState("stopped");
    clearTimeout(this.timer);
    clearInterval(this.heartbeat);
    const socket = this.socket;
    this.socket = null;
    if (socket) { socket.onclose = null; socket.onmessage = null; socket.close(1000, "signed out"); }
    this.failPending(new ProtocolError({ code: "CLOSED", error: "connection closed" }));
  }

  /* Send a message; returns its requestId, or null when not connected. */
  send(type, data = null) {
    if (!this.socket || this.socket.readyState !== 1 || this.state !== "connected") return null;
    return this.rawSend(type, data);
  }

  rawSend(type, data) {
    const requestId = `${this.name[0]}${++requestCounter}`;
    this.socket.send(JSON.stringify({ type, data, requestId }));
    return requestId;
  }

  /* Send and wait for the direct reply (resolved with the message) or ERROR (rejected with ProtocolError). */
  request(type, data = null, { timeout = 15000 } = {}) {
    return new Promise((resolve, reject) => {
      const requestId = this.send(type, data);
      if (requestId === null) {
        reject(new ProtocolError({ code: this.state === "unavailable" ? "UNAVAILABLE" : "NOT_CONNECTED",
                                   error: `not connected to ${this.name}` }));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new ProtocolError({ code: "TIMEOUT", error: `no answer from ${this.name}` }));
      }, timeout);
      this.pending.set(requestId, { resolve, reject, timer });
    });
  }

  setState(state, detail = "") {
    this.state = state;
    this.detail = detail;
    for (const fn of this.statusHooks) fn(this);
  }

  connect() {
    clearTimeout(this.timer);
    const sockjs = transport.useSockJS;
    this.setState(this.attempt === 0 && this.state !== "reconnecting" ? "connecting" : "reconnecting",
                  this.detail);
    let socket;
    try {
      if (sockjs) {
        if (typeof window.SockJS !== "function") {
          this.setState("unavailable", "the SockJS library is missing");
          return;
        }
        const options = transport.sockjsTransports ? { transports: transport.sockjsTransports } : {};
        socket = new window.SockJS(`${location.origin}/ws/${this.name}`, null, options);
      } else {
        const scheme = location.protocol === "https:" ? "wss" : "ws";
        socket = new WebSocket(`${scheme}://${location.host}/ws/${this.name}`);
      }
    } catch (error) {
      this.scheduleReconnect(`could not open: ${error.message}`);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.onopen = () => {
      opened = true;
      this.transportName = sockjs ? `sockjs/${socket.transport || "?"}` : "websocket";
      if (this.token) socket.send(JSON.stringify({ type: "AUTH", data: { token: this.token }, requestId: "auth" }));
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.send("HEARTBEAT"), HEARTBEAT_MS);
    };
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      this.receive(message);
    };
    socket.onclose = (event) => {
      if (socket !== this.socket) return;
      clearInterval(this.heartbeat);
      this.socket = null;
      this.failPending(new ProtocolError({ code: "CLOSED", error: "connection closed" }));
      if (event.code === 4401) {
        this.setState("unauthorized", "sign-in needed or expired");
        this.emit({ type: "_UNAUTHORIZED", data: { code: event.code, reason: event.reason } });
        return;
      }
      if (event.code === 1008) {
        this.setState("unavailable", "this page's origin is not allowed by the server");
        return;
      }
      if (event.code === 4429 || event.code === 1013 || event.code === 4008) this.attempt = Math.max(this.attempt, 3);
      if (!opened) {
        this.diagnose(sockjs);
      } else {
        this.scheduleReconnect(`closed ${event.code}`);
      }
    };
  }

  /* A connection that never opened: server down, endpoint missing, or WebSockets blocked on the way. */
  async diagnose(wasSockJS) {
    let status = 0;
    try {
      const response = await fetch(`/ws/${this.name}`, { cache: "no-store" });
      status = response.status;
    } catch {
      status = 0;  // the server cannot be reached at all: keep the transport, back off
    }
    if (this.state === "stopped") return;
    if (status === 404) {
      this.setState("unavailable", `${this.name} is not served here`);
      this.emit({ type: "_UNAVAILABLE", data: {} });
      this.timer = setTimeout(() => this.connect(), backoffDelay(0, BACKOFF.unavailableMs, BACKOFF.unavailableMs));
      return;
    }
    if (status >= 200 && status < 500 && !wasSockJS && !transport.nativeBlocked) {
      transport.nativeBlocked = true;  // HTTP gets through but the WebSocket did not: use SockJS from now on
      this.connect();
      return;
    }
    this.scheduleReconnect(status ? `HTTP ${status}` : "server unreachable");
  }

  scheduleReconnect(why) {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this.setState("reconnecting", why);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  failPending(error) {
    for (const { reject, timer } of this.pending.values()) { clearTimeout(timer); reject(error); }
    this.pending.clear();
  }

  receive(message) {
    const data = message.data || {};
    if (message.type === "CONNECTION_ESTABLISHED") {
      this.userId = data.userId;
      if (!this.token) this.becomeReady();
    } else if (message.type === "AUTHENTICATED" && message.requestId === "auth") {
      this.userId = data.userId;
      this.becomeReady();
      return;
    } else if (message.type === "ERROR" && message.requestId === "auth") {
      return;  // followed by close 4401
    }
    const waiting = message.requestId != null && this.pending.get(String(message.requestId));
    if (waiting) {
      this.pending.delete(String(message.requestId));
      clearTimeout(waiting.timer);
      if (message.type === "ERROR") waiting.reject(new ProtocolError(data));
      else waiting.resolve(message);
    }
    this.emit(message);
  }

  becomeReady() {
    this.attempt = 0;
    this.setState("connected");
    for (const hook of this.readyHooks) {
      try { hook(); } catch (error) { console.error(error); }
    }
  }

  emit(message) {
    for (const key of [message.type, "*"]) {
      const set = this.listeners.get(key);
      if (!set) continue;
      for (const fn of [...set]) {
        try { fn(message.data || {}, message); } catch (error) { console.error(error); }
      }
    }
  }
}
