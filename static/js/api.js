/* REST calls: sign-in, leaderboard, market controls, scenarios, statistics and journals, with the tab's bearer
   token. */

import { store } from "./store.js";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (store.user && store.user.token) headers.Authorization = `Bearer ${store.user.token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body),
                                   cache: "no-store" });
  } catch {
    throw new ApiError(0, { error: "the server cannot be reached" });
  }
  let payload = null;
  try { payload = await response.json(); } catch { payload = null; }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

export const auth = {
  guest: (nickname) => api("POST", "/api/auth/guest", { nickname }),
  login: (username, password) => api("POST", "/api/auth/login", { username, password }),
  register: (username, password) => api("POST", "/api/auth/register", { username, password }),
  changePassword: (currentPassword, newPassword) =>
    api("POST", "/api/auth/password", { currentPassword, newPassword }),
};

export const classroom = {
  leaderboard: () => api("GET", "/api/leaderboard"),
  control: (body) => api("POST", "/api/market/control", body),
  stats: () => api("GET", "/api/stats"),
  metrics: (since) => api("GET", since == null ? "/api/metrics" : `/api/metrics?since=${encodeURIComponent(since)}`),
  journal: (userId, { limit = 20, before = null } = {}) => api("GET", `/api/journal?userId=${encodeURIComponent(userId)}` +
    `&limit=${limit}${before ? `&before=${encodeURIComponent(before)}` : ""}`),
};

export const scenarios = {
  list: () => api("GET", "/api/scenarios"),
  preview: (name) => api("GET", `/api/scenarios/${encodeURIComponent(name)}/preview`),
  current: () => api("GET", "/api/scenarios/current"),
  start: (name) => api("POST", "/api/scenarios/start", { name }),
  skip: () => api("POST", "/api/scenarios/skip", {}),
  stop: () => api("POST", "/api/scenarios/stop", {}),
};
