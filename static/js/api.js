/* REST calls: sign-in, leaderboard, market controls, scenarios, statistics, journals and contests, with the tab's
   bearer token; and authenticated downloads. */

import { store } from "./store.js";

/* A refused REST call. The body is {"error": "words", "code": "CODE"}, or {"error": {"code", "message"}}. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = body && body.error;
    const nested = error && typeof error === "object";
    super((nested ? error.message : error) || `HTTP ${status}`);
    this.status = status;
    this.code = nested ? error.code : body && body.code;
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

const contestPath = (id, rest = "") => `/api/contests/${encodeURIComponent(id)}${rest}`;

/* Class contests (docs: the contest contract): teachers create and run them, students join by code. */
export const contests = {
  list: () => api("GET", "/api/contests"),
  get: (id) => api("GET", contestPath(id)),
  create: (body) => api("POST", "/api/contests", body),
  update: (id, body) => api("PATCH", contestPath(id), body),
  open: (id) => api("POST", contestPath(id, "/open"), {}),
  finish: (id) => api("POST", contestPath(id, "/finish"), {}),
  join: (body) => api("POST", "/api/contests/join", body),
  formTeam: (id, body) => api("POST", contestPath(id, "/teams"), body),
  addMember: (id, teamId, userId) => api("POST", contestPath(id, `/teams/${encodeURIComponent(teamId)}/members`), { userId }),
  removeMember: (id, teamId, userId) =>
    api("DELETE", contestPath(id, `/teams/${encodeURIComponent(teamId)}/members/${encodeURIComponent(userId)}`)),
  addAssignment: (id, body) => api("POST", contestPath(id, "/assignments"), body),
  progress: (id) => api("GET", contestPath(id, "/progress")),
  accounts: (id, body) => api("POST", contestPath(id, "/accounts"), body),
  reportPath: (id, format) => contestPath(id, `/report.${format}`),
};

/* Fetch `path` with the bearer token and save it as `filename` (an <a download> on a blob URL): a plain link
   cannot carry the Authorization header. */
export async function download(path, filename) {
  const headers = {};
  if (store.user && store.user.token) headers.Authorization = `Bearer ${store.user.token}`;
  let response;
  try {
    response = await fetch(path, { headers, cache: "no-store" });
  } catch {
    throw new ApiError(0, { error: "the server cannot be reached" });
  }
  if (!response.ok) {
    let payload = null;
    try { payload = await response.json(); } catch { payload = null; }
    throw new ApiError(response.status, payload);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
