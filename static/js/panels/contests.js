/* The teacher's Contests card (REST, /api/contests): create a contest with its rules and schedule, list the
   teacher's contests with their join codes shown large, and run the chosen one: edit it while a draft, open and
   finish it, its roster and ranking, its live risk feed (/ws/risk-monitoring, SUBSCRIBE_RISK with its contestId),
   form teams and change their members, add assignments, generate printed student accounts, the class checklist and
   the report downloads. Names, nicknames and task texts are always inserted as text. */

import { store, subscribe } from "../store.js";
import { $, $$, el, dateTime, setEmpty, explain, fraction } from "../format.js";
import { contests, download } from "../api.js";
import { describeSchedule, rankingRows, taskItem } from "./contest_join.js";
import { alertItem, newestFirst, riskRankingRows, watchedElsewhere } from "./risk.js";

const DETAIL_MS = 5000;
const PARAMS = {   // each assignment kind's parameters: [name, label, input attributes, to wire value]
  PLACE_ORDER: [
    ["orderType", "Order type", { choices: ["LIMIT", "MARKET", "STOP", "STOP_LIMIT"] }],
    ["count", "How many", { type: "number", min: 1, max: 100, step: 1, value: 1 }, Number],
  ],
  HOLD_SECTORS: [["sectors", "Different sectors at once", { type: "number", min: 1, max: 100, step: 1, value: 3 }, Number]],
  KEEP_WEIGHT_UNDER: [
    ["maxWeight", "Max weight (%)", { type: "number", min: 1, max: 100, step: 0.1, value: 30 }, (v) => Number(v) / 100],
    ["holdMinutes", "For (minutes)", { type: "number", min: 1, max: 1440, step: 1, value: 30 }, Number],
  ],
  SET_STOP_LOSS: [["count", "How many positions", { type: "number", min: 1, max: 100, step: 1, value: 1 }, Number]],
  TRADE_RATIONALES: [
    ["trades", "Trades", { type: "number", min: 1, max: 100, step: 1, value: 3 }, Number],
    ["minChars", "Note of at least (characters)", { type: "number", min: 1, max: 500, step: 1, value: 40 }, Number],
  ],
};

let appRef;
let listed = [];          // GET /api/contests
let selectedId = null;    // the contest whose detail is shown
let detail = null;        // GET /api/contests/{id}
let detailTimer = 0;
let sheet = null;         // the last generated accounts' printable page (HTML text)
let watching = null;      // the contest whose risk feed is subscribed
let riskEntries = [];     // its latest RISK_RANKING entries
const riskAlerts = new Map();   // alertId -> RISK_ALERT of its portfolios
let editBase = null;      // the edit form read as prefilled: what the teacher changed is the difference
const NULLABLE_RULES = new Set(["allowedSectors", "maxPositionWeight", "maxTeamSize"]);  // a cleared field sends null

export function init(app) {
  appRef = app;
  app.onView("teacher", () => { refreshList(); refreshDetail(); watchRisk(selectedId); });
  app.onLeave("teacher", () => watchRisk(null));
  $("#contests-refresh").addEventListener("click", () => { refreshList(); refreshDetail(); });
  const createForm = $("#contest-create-form");
  const editForm = buildEditForm(createForm);
  createForm.addEventListener("submit", (event) => { event.preventDefault(); create(); });
  editForm.addEventListener("submit", (event) => { event.preventDefault(); saveEdit(); });
  for (const form of [createForm, editForm]) {
    for (const radio of $$("input[name=schedule-kind]", form)) radio.addEventListener("change", () => toggleSchedule(form));
  }
  $("#contest-edit").addEventListener("toggle", () => { if ($("#contest-edit").open) prefillEdit(); });
  $("#contest-open").addEventListener("click", () => act(contests.open, "Opened"));
  $("#contest-finish").addEventListener("click", () => act(contests.finish, "Finished"));
  $("#contest-report-csv").addEventListener("click", () => report("csv"));
  $("#contest-report-html").addEventListener("click", () => report("html"));
  $("#contest-team-form").addEventListener("submit", (event) => { event.preventDefault(); formTeam(); });
  $("#contest-assignment-kind").addEventListener("change", renderParams);
  $("#contest-assignment-form").addEventListener("submit", (event) => { event.preventDefault(); addAssignment(); });
  $("#contest-accounts-form").addEventListener("submit", (event) => { event.preventDefault(); generateAccounts(); });
  $("#contest-print-sheet").addEventListener("click", printSheet);
  $("#contest-progress-refresh").addEventListener("click", refreshProgress);
  subscribe("symbols", () => {
    for (const select of [$("#contest-sectors"), $("#contest-edit-sectors")]) {
      const chosen = new Set([...select.selectedOptions].map((o) => o.value));
      select.replaceChildren(...sectors().map((s) => el("option", { value: s, selected: chosen.has(s) }, s)));
    }
  });

  const risk = app.channels.risk;
  risk.on("RISK_RANKING", (data) => {
    if (data.contestId == null || String(data.contestId) !== watching) return;
    riskEntries = data.entries || [];
    for (const entry of riskEntries) watchedElsewhere.add(entry.portfolioId);
    renderRisk();
  });
  risk.on("RISK_ALERT", (alert) => {
    if (!watching || !watchedElsewhere.has(alert.portfolioId)) return;
    riskAlerts.set(alert.alertId, alert);
    renderRiskAlerts();
  });
  risk.onReady(() => {   // a new connection holds no subscription: ask again
    const again = watching;
    watching = null;
    if (again && appRef.view === "teacher") watchRisk(again);
  });
  toggleSchedule(createForm);
  toggleSchedule(editForm);
  renderParams();
}

export function signedOut() {
  clearTimeout(detailTimer);
  listed = [];
  selectedId = null;
  detail = null;
  sheet = null;
  watching = null;   // the risk channel is closed: the server forgets the subscription with it
  forgetRisk();
  editBase = null;
  $("#contest-edit").open = false;
  $("#contests-list tbody").replaceChildren();
  $("#contest-detail").hidden = true;
  $("#contest-accounts-result").hidden = true;
  $("#contest-accounts tbody").replaceChildren();
}

const sectors = () => [...new Set(store.symbols.map((s) => s.sector).filter(Boolean))].sort();

function say(node, text, state = "") {
  node.textContent = text;
  node.dataset.state = state;
}

function unavailable(failure) {
  if (failure.status !== 404 && failure.status !== 405) return false;
  for (const node of $$("[data-contests-unavailable]")) node.hidden = false;
  return true;
}

/* Datetime-local input value → ISO-8601 UTC without milliseconds ("2026-12-07T09:00:00Z"), or null. */
function isoFromLocal(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/* ISO time → a datetime-local input's value (local time, to the minute). */
function localFromIso(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/* A due time to start from: a lesson's end, else a week from now. */
function defaultDue(schedule) {
  if (schedule && schedule.kind === "WALL" && schedule.end) return localFromIso(schedule.end);
  return localFromIso(new Date(Date.now() + 7 * 86_400_000).toISOString());
}

/* The list ------------------------------------------------------------------------------------------------------ */

async function refreshList() {
  if (appRef.view !== "teacher") return;
  try {
    listed = (await contests.list()).contests || [];
    renderList();
  } catch (failure) {
    if (!unavailable(failure)) say($("#contests-status"), `Contests unavailable: ${failure.message}`, "error");
  }
}

function renderList() {
  const own = listed.filter((c) => !c.default);
  $("#contests-list tbody").replaceChildren(...own.map((c) => el("tr", {
      dataset: { testid: "contest-row", contestId: String(c.contestId), status: c.status },
      class: String(c.contestId) === selectedId ? "me" : null },
    el("th", { scope: "row" }, c.name),
    el("td", { dataset: { f: "status" } }, c.status),
    el("td", { class: "join-code-cell", dataset: { f: "code", testid: "contest-row-code" } }, c.joinCode),
    el("td", {}, String(c.participantCount ?? 0)),
    el("td", { class: "actions" }, el("button", { type: "button", class: "small secondary",
      dataset: { testid: "contest-select" }, "aria-label": `Show ${c.name}`, onclick: () => select(c.contestId) }, "Show")))));
  setEmpty("contests-list", own.length === 0);
}

function select(contestId) {
  selectedId = String(contestId);
  detail = null;
  sheet = null;
  editBase = null;
  $("#contest-edit").open = false;
  $("#contest-teams-error").textContent = "";
  watchRisk(selectedId);
  $("#contest-accounts-result").hidden = true;
  $("#contest-accounts tbody").replaceChildren();
  $("#contest-progress tbody").replaceChildren();
  $("#contest-assignment-due").value = "";
  say($("#contest-action-result"), "");
  renderList();
  refreshDetail();
  refreshProgress();
}

/* Create -------------------------------------------------------------------------------------------------------- */

function toggleSchedule(form) {
  const kind = $("input[name=schedule-kind]:checked", form).value;
  for (const block of $$("[data-schedule]", form)) block.hidden = block.dataset.schedule !== kind;
}

/* A contest form (the create form, ids "contest-…", or its copy for editing, "contest-edit-…") as
   {name, rules, schedule}, or a message saying what is wrong. */
function readContestForm(form, prefix) {
  const field = (name) => $(`#${prefix}-${name}`);
  const name = field("name").value.trim();
  if (!name) return { problem: "Give the contest a name" };
  const rules = {};
  const amount = (id, key, { min = 0, label }) => {
    const text = field(id).value.trim();
    if (!text) return null;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min) return `${label}: a number of at least ${min}`;
    rules[key] = value;
    return null;
  };
  const problem = amount("cash", "startingCash", { min: 1, label: "Starting cash" })
    || amount("commission-order", "commissionPerOrder", { label: "Commission per order" })
    || amount("commission-share", "commissionPerShare", { label: "Commission per share" });
  if (problem) return { problem };
  rules.shortSelling = field("short").checked;
  rules.houseRiskLimits = field("house-limits").checked;
  rules.noteRequired = field("note-required").checked;
  // unset rules are left out (the server's defaults: every sector, no weight cap, no teams)
  const chosenSectors = [...field("sectors").selectedOptions].map((o) => o.value);
  if (chosenSectors.length) rules.allowedSectors = chosenSectors;
  const weight = field("max-weight").value.trim();
  if (weight) {
    const value = Number(weight);
    if (!(value > 0 && value <= 100)) return { problem: "Max position weight: a percentage above 0, at most 100" };
    rules.maxPositionWeight = value / 100;
  }
  const team = field("team-size").value;
  if (team) rules.maxTeamSize = Number(team);
  let schedule;
  if ($("input[name=schedule-kind]:checked", form).value === "DAYS") {
    const first = field("first-day").value.trim();
    const last = field("last-day").value.trim();
    if (!/^\d+$/.test(first) || !/^\d+$/.test(last)) return { problem: "Schedule: the first and last day are whole numbers" };
    if (Number(last) < Number(first)) return { problem: "Schedule: the last day cannot come before the first" };
    schedule = { kind: "DAYS", firstDay: Number(first), lastDay: Number(last) };
  } else {
    const start = isoFromLocal(field("start").value);
    const end = isoFromLocal(field("end").value);
    if (!start || !end) return { problem: "Schedule: give the lesson's start and end" };
    if (end <= start) return { problem: "Schedule: the end must come after the start" };
    schedule = { kind: "WALL", start, end };
  }
  return { body: { name, rules, schedule } };
}

async function create() {
  const error = $("#contest-create-error");
  error.textContent = "";
  const { problem, body } = readContestForm($("#contest-create-form"), "contest");
  if (problem) { error.textContent = problem; return; }
  if ($("#contest-password").value) body.password = $("#contest-password").value;
  const button = $("#contest-create-submit");
  button.disabled = true;
  try {
    const answer = await contests.create(body);
    $("#contest-create-form").reset();
    toggleSchedule($("#contest-create-form"));
    $("#contest-create").open = false;
    say($("#contests-status"), `Created ${answer.contest.name}: join code ${answer.contest.joinCode}`, "ok");
    listed = [...listed.filter((c) => c.contestId !== answer.contest.contestId), answer.contest];
    select(answer.contest.contestId);
    refreshList();
  } catch (failure) {
    if (!unavailable(failure)) error.textContent = explain(failure.code, failure.message);
  } finally {
    button.disabled = false;
  }
}

/* Edit a draft ---------------------------------------------------------------------------------------------------- */

/* The create form's fields, copied once into the chosen contest's "Edit rules" (ids and test ids contest-edit-…), a
   password field that keeps the password when left empty, and a box to remove it. */
function buildEditForm(source) {
  const form = source.cloneNode(true);
  const renamed = (value) => value.replace(/^contest-(create-)?/, "contest-edit-");
  for (const node of form.querySelectorAll("[id]")) node.id = renamed(node.id);
  for (const node of form.querySelectorAll("[data-testid]")) node.dataset.testid = renamed(node.dataset.testid);
  form.id = "contest-edit-form";
  form.dataset.testid = "contest-edit-form";
  const password = $("#contest-edit-password", form);
  password.closest("label").firstChild.textContent = "New password (leave empty to keep) ";
  password.closest("label").after(el("div", { class: "row checks" }, el("label", {},
    el("input", { type: "checkbox", id: "contest-edit-remove-password", dataset: { testid: "contest-edit-remove-password" } }),
    " Remove the password")));
  $("#contest-edit-submit", form).textContent = "Save changes";
  $("#contest-edit").append(form);
  return form;
}

/* Fill the edit form from the chosen contest, and remember it as read back: the baseline of what changed. */
function prefillEdit() {
  if (!detail) return;
  const { contest } = detail;
  const rules = contest.rules || {};
  const field = (name) => $(`#contest-edit-${name}`);
  const shown = (value) => (value == null ? "" : String(value));
  field("name").value = contest.name;
  field("cash").value = shown(rules.startingCash);
  field("commission-order").value = shown(rules.commissionPerOrder);
  field("commission-share").value = shown(rules.commissionPerShare);
  field("short").checked = !!rules.shortSelling;
  field("house-limits").checked = rules.houseRiskLimits !== false;
  field("note-required").checked = !!rules.noteRequired;
  const allowed = new Set(rules.allowedSectors || []);
  for (const option of field("sectors").options) option.selected = allowed.has(option.value);
  field("max-weight").value = rules.maxPositionWeight == null ? "" : String(Math.round(rules.maxPositionWeight * 1000) / 10);
  field("team-size").value = shown(rules.maxTeamSize);
  const schedule = contest.schedule || { kind: "DAYS" };
  const form = $("#contest-edit-form");
  for (const radio of $$("input[name=schedule-kind]", form)) radio.checked = radio.value === schedule.kind;
  field("first-day").value = shown(schedule.firstDay);
  field("last-day").value = shown(schedule.lastDay);
  field("start").value = schedule.start ? localFromIso(schedule.start) : "";
  field("end").value = schedule.end ? localFromIso(schedule.end) : "";
  field("password").value = "";
  field("remove-password").checked = false;
  field("error").textContent = "";
  toggleSchedule(form);
  editBase = readContestForm(form, "contest-edit").body || null;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/* The PATCH body: only what differs from the form as prefilled (a cleared sector list, weight cap or team size
   sends null; a cleared amount keeps the contest's). */
function changes(body, base) {
  if (!base) return body;
  const patch = {};
  if (body.name !== base.name) patch.name = body.name;
  const rules = {};
  for (const key of new Set([...Object.keys(body.rules), ...Object.keys(base.rules)])) {
    if (same(body.rules[key], base.rules[key])) continue;
    if (key in body.rules) rules[key] = body.rules[key];
    else if (NULLABLE_RULES.has(key)) rules[key] = null;
  }
  if (Object.keys(rules).length) patch.rules = rules;
  if (!same(body.schedule, base.schedule)) patch.schedule = body.schedule;
  return patch;
}

async function saveEdit() {
  const error = $("#contest-edit-error");
  error.textContent = "";
  if (!selectedId || !detail) return;
  const { problem, body } = readContestForm($("#contest-edit-form"), "contest-edit");
  if (problem) { error.textContent = problem; return; }
  const patch = changes(body, editBase);
  if ($("#contest-edit-remove-password").checked) patch.password = null;
  else if ($("#contest-edit-password").value) patch.password = $("#contest-edit-password").value;
  if (!Object.keys(patch).length) { error.textContent = "Nothing changed"; return; }
  const asked = selectedId;
  const button = $("#contest-edit-submit");
  button.disabled = true;
  try {
    const answer = await contests.update(asked, patch);
    if (asked !== selectedId) return;
    detail.contest = answer.contest;
    $("#contest-edit").open = false;
    say($("#contest-action-result"), "Changes saved", "ok");
    renderDetail();
    refreshList();
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  } finally {
    button.disabled = false;
  }
}

/* The chosen contest's risk feed ------------------------------------------------------------------------------------ */

/* Watch `contestId`'s risk (null: none), leaving the one watched before. */
function watchRisk(contestId) {
  if (contestId === watching) return;
  const channel = appRef.channels.risk;
  if (watching) channel.send("UNSUBSCRIBE_RISK", { contestId: watching });
  watching = null;
  forgetRisk();
  if (!contestId || appRef.view !== "teacher") return;
  watching = contestId;
  riskStatus("Waiting for the risk feed…");
  channel.request("SUBSCRIBE_RISK", { scope: "ALL", contestId }).then(() => {
    if (watching === contestId) riskStatus("");
  }, (failure) => {
    if (watching !== contestId) return;
    const words = failure.code === "NOT_CONNECTED" ? "Risk feed: reconnecting…" : `Risk feed unavailable: ${explain(failure.code, failure.message)}`;
    riskStatus(words, failure.code === "NOT_CONNECTED" ? "" : "error");
  });
}

function riskStatus(text, state = "") {
  const node = $("#contest-risk-status");
  say(node, text, state);
  node.hidden = !text;
}

function forgetRisk() {
  riskEntries = [];
  riskAlerts.clear();
  watchedElsewhere.clear();
  $("#contest-risk tbody").replaceChildren();
  $("#contest-risk-alerts").replaceChildren();
  riskStatus("");
}

/* portfolioId -> the name the contest gives it: the player's nickname, or the team's name. */
function contestNames() {
  const names = new Map();
  if (!detail) return names;
  for (const p of detail.participants || []) if (p.portfolioId != null) names.set(String(p.portfolioId), p.nickname);
  for (const t of detail.teams || []) if (t.portfolioId != null) names.set(String(t.portfolioId), t.name);
  for (const s of (detail.ranking || {}).entries || []) names.set(String(s.portfolioId), s.name);
  return names;
}

function renderRisk() {
  if (!watching) return;
  const names = contestNames();
  for (const id of names.keys()) watchedElsewhere.add(id);
  $("#contest-risk tbody").replaceChildren(...riskRankingRows(riskEntries, {
    nameOf: (id) => names.get(String(id)) || `portfolio ${id}`,
    last: (m) => [el("td", { dataset: { f: "drawdown" } }, `${fraction(m.currentDrawdown)} (${fraction(m.maxDrawdown)})`)],
  }));
  if (!riskEntries.length) riskStatus("No portfolio in this contest yet.");
  else if ($("#contest-risk-status").dataset.state !== "error") riskStatus("");
}

function renderRiskAlerts() {
  const names = contestNames();
  const list = newestFirst([...riskAlerts.values()]).slice(0, 50);
  $("#contest-risk-alerts").replaceChildren(...list.map((a) => alertItem(a, {
    name: names.get(String(a.portfolioId)) || `portfolio ${a.portfolioId}`, acknowledge: false })));
}

/* The chosen contest ---------------------------------------------------------------------------------------------- */

async function refreshDetail() {
  clearTimeout(detailTimer);
  if (!selectedId || appRef.view !== "teacher") return;
  const asked = selectedId;
  try {
    const answer = await contests.get(asked);
    if (asked !== selectedId) return;
    detail = answer;
    renderDetail();
    refreshProgress();
  } catch (failure) {
    if (asked === selectedId) say($("#contest-action-result"), `Could not load the contest: ${failure.message}`, "error");
  }
  if (asked === selectedId) detailTimer = setTimeout(refreshDetail, DETAIL_MS);
}

function renderDetail() {
  const { contest } = detail;
  const rules = contest.rules || {};
  $("#contest-detail").hidden = false;
  $("#contest-detail").dataset.contestId = String(contest.contestId);
  $("#contest-detail").dataset.status = contest.status;
  $("#contest-detail-name").textContent = contest.name;
  $("#contest-detail-status").textContent = contest.status;
  $("#contest-detail-status").dataset.status = contest.status;
  $("#contest-detail-code").textContent = contest.joinCode;
  const facts = [
    ["Schedule", describeSchedule(contest.schedule)],
    ["Students", String(contest.participantCount ?? (detail.participants || []).length)],
    ["Password", contest.requiresPassword ? "required" : "none"],
    ["Starting cash", rules.startingCash == null ? "server default" : rules.startingCash.toLocaleString("en-US")],
    ["Short selling", rules.shortSelling ? "allowed" : "off"],
    ["Sectors", rules.allowedSectors && rules.allowedSectors.length ? rules.allowedSectors.join(", ") : "all"],
    ["Max position weight", rules.maxPositionWeight == null ? "no cap" : `${Math.round(rules.maxPositionWeight * 1000) / 10}%`],
    ["Notes", rules.noteRequired ? "required on every order" : "optional"],
    ["Teams", rules.maxTeamSize ? `up to ${rules.maxTeamSize}` : "no teams"],
  ];
  if (contest.openedAt) facts.push(["Opened", dateTime(contest.openedAt)]);
  if (contest.finishedAt) facts.push(["Finished", dateTime(contest.finishedAt)]);
  $("#contest-detail-facts").replaceChildren(...facts.map(([k, v]) => el("div", { dataset: { key: k } },
    el("dt", {}, k), el("dd", {}, v))));
  if (!$("#contest-assignment-due").value) $("#contest-assignment-due").value = defaultDue(contest.schedule);
  $("#contest-open").disabled = contest.status !== "DRAFT";
  $("#contest-finish").disabled = contest.status !== "OPEN";
  const edit = $("#contest-edit");   // rules and schedule are fixed once it has started (the server says 400)
  edit.hidden = contest.status !== "DRAFT";
  if (edit.hidden) edit.open = false;

  const ranking = detail.ranking || { entries: [] };
  $("#contest-ranking tbody").replaceChildren(...rankingRows(ranking.entries));

  const teams = new Map((detail.teams || []).map((t) => [String(t.teamId), t]));
  const participants = detail.participants || [];
  $("#contest-roster tbody").replaceChildren(...participants.map((p) => el("tr", {
      dataset: { testid: "contest-roster-row", userId: String(p.userId) } },
    el("th", { scope: "row" }, p.nickname),
    el("td", {}, dateTime(p.joinedAt)),
    el("td", {}, p.teamId != null && teams.has(String(p.teamId)) ? teams.get(String(p.teamId)).name : "—"))));

  $("#contest-team-form").hidden = !rules.maxTeamSize;
  const free = participants.filter((p) => p.teamId == null);
  renderTeamPicker(free);
  renderTeams(detail.teams || [], participants, free, rules.maxTeamSize);
  renderRisk();
  renderRiskAlerts();

  $("#contest-assignments").replaceChildren(...(detail.assignments || []).map((a) => el("li", {
      dataset: { testid: "contest-assignment", assignmentId: String(a.assignmentId) } },
    el("span", {}, a.text || describeTask(a)), a.due ? el("span", { class: "muted" }, ` · due ${dateTime(a.due)}`) : null)));
}

/* An assignment in words when the server gives no text (the teacher's view has no progress to take it from). */
function describeTask(a) {
  const kind = $(`#contest-assignment-kind option[value="${a.kind}"]`);
  const params = Object.entries(a.params || {}).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(", ") : v}`);
  return `${kind ? kind.textContent : a.kind}${params.length ? ` (${params.join(", ")})` : ""}`;
}

/* Checkboxes for students without a team; those ticked stay ticked across refreshes, in the order picked. */
let picked = [];   // userIds, in the order the teacher ticked them (the first is the captain)

function renderTeamPicker(free) {
  const box = $("#contest-team-members");
  const legend = box.querySelector("legend");
  const ids = free.map((p) => String(p.userId));
  picked = picked.filter((id) => ids.includes(id));
  box.replaceChildren(legend, ...free.map((p) => {
    const id = String(p.userId);
    const input = el("input", { type: "checkbox", value: id, checked: picked.includes(id),
                                dataset: { testid: "contest-team-member" } });
    input.addEventListener("change", () => {
      picked = input.checked ? [...picked.filter((x) => x !== id), id] : picked.filter((x) => x !== id);
    });
    return el("label", { dataset: { userId: id } }, input, " ", p.nickname);
  }));
  if (!free.length) box.append(el("p", { class: "muted" }, "Every student who joined is in a team."));
}

/* Each team with its members (the captain first, the others with a remove button) and an Add select of the
   students without a team; a choice in a select survives the detail's refresh. */
function renderTeams(teams, participants, free, maxSize) {
  const block = $("#contest-teams-block");
  block.hidden = !maxSize || !teams.length;
  const nicknames = new Map(participants.map((p) => [String(p.userId), p.nickname]));
  const chosen = new Map($$("#contest-teams select").map((s) => [s.dataset.teamId, s.value]));
  $("#contest-teams").replaceChildren(...teams.map((team) => {
    const teamId = String(team.teamId);
    const members = (team.members || []).map(String);
    const full = maxSize && members.length >= maxSize;
    const select = el("select", { dataset: { teamId, testid: "contest-team-add-select" }, "aria-label": `Student to add to ${team.name}` },
      el("option", { value: "" }, "Add a student…"),
      ...free.map((p) => el("option", { value: String(p.userId) }, p.nickname)));
    select.value = free.some((p) => String(p.userId) === chosen.get(teamId)) ? chosen.get(teamId) : "";
    const add = full ? el("span", { class: "muted" }, `full (${maxSize})`)
      : !free.length ? el("span", { class: "muted" }, "every student has a team")
      : el("span", { class: "row" }, select, el("button", { type: "button", class: "small secondary",
          dataset: { testid: "contest-team-add" }, onclick: () => addMember(team, select.value) }, "Add"));
    return el("li", { dataset: { testid: "contest-team", teamId } },
      el("strong", {}, team.name), " ",
      el("ul", { class: "contest-team-members" }, members.map((userId, index) => {
        const nickname = nicknames.get(userId) || `student ${userId}`;
        return el("li", { dataset: { testid: "contest-team-player", userId } }, nickname,
          index === 0 ? el("span", { class: "muted" }, " (captain)")
            : el("button", { type: "button", class: "small secondary remove", dataset: { testid: "contest-team-remove" },
                             "aria-label": `Remove ${nickname} from ${team.name}`,
                             onclick: () => removeMember(team, userId, nickname) }, "×"));
      })),
      add);
  }));
}

async function addMember(team, userId) {
  const error = $("#contest-teams-error");
  error.textContent = "";
  if (!userId) { error.textContent = `Choose a student to add to ${team.name}`; return; }
  const nickname = ((detail && detail.participants) || []).find((p) => String(p.userId) === userId)?.nickname || "Student";
  try {
    await contests.addMember(selectedId, team.teamId, userId);
    say($("#contest-action-result"), `${nickname} added to ${team.name}`, "ok");
    refreshDetail();
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

async function removeMember(team, userId, nickname) {
  const error = $("#contest-teams-error");
  error.textContent = "";
  try {
    await contests.removeMember(selectedId, team.teamId, userId);
    say($("#contest-action-result"), `${nickname} removed from ${team.name}`, "ok");
    refreshDetail();
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

async function act(call, done) {
  if (!selectedId) return;
  const out = $("#contest-action-result");
  say(out, "Sending…");
  try {
    const answer = await call(selectedId);
    if (detail && answer.contest) detail.contest = answer.contest;
    say(out, done, "ok");
    if (detail) renderDetail();
    refreshDetail();
    refreshList();
  } catch (failure) {
    say(out, `Refused: ${explain(failure.code, failure.message)}`, "error");
  }
}

async function formTeam() {
  const error = $("#contest-team-error");
  error.textContent = "";
  const name = $("#contest-team-name").value.trim();
  const max = detail && detail.contest.rules ? detail.contest.rules.maxTeamSize : null;
  if (picked.length < 2) { error.textContent = "Pick at least two students"; return; }
  if (max && picked.length > max) { error.textContent = `A team has at most ${max} students`; return; }
  if (!name) { error.textContent = "Give the team a name"; return; }
  try {
    const answer = await contests.formTeam(selectedId, { name, members: picked });
    picked = [];
    $("#contest-team-name").value = "";
    say($("#contest-action-result"), `Team ${answer.team ? answer.team.name : name} formed`, "ok");
    refreshDetail();
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

function renderParams() {
  const kind = $("#contest-assignment-kind").value;
  $("#contest-assignment-params").replaceChildren(...PARAMS[kind].map(([name, label, options]) => {
    let input;
    if (options.choices) {
      input = el("select", {}, options.choices.map((c) => el("option", { value: c }, c.replace("_", " ").toLowerCase())));
    } else {
      const { type, min, max, step, value } = options;
      input = el("input", { type, min, max, step, value });
    }
    input.dataset.param = name;
    input.dataset.testid = `contest-assignment-${name}`;
    return el("label", {}, label, " ", input);
  }));
}

/* The assignment form as {kind, params, due}, or a message saying what is wrong. */
function readAssignment() {
  const kind = $("#contest-assignment-kind").value;
  const params = {};
  for (const [name, label, options, convert] of PARAMS[kind]) {
    const input = $(`#contest-assignment-params [data-param="${name}"]`);
    if (options.choices) {
      params[name] = input.value;
    } else {
      const value = Number(input.value);
      if (input.value.trim() === "" || !(value >= options.min && value <= options.max)) {
        return { problem: `${label}: from ${options.min} to ${options.max}` };
      }
      params[name] = convert ? convert(input.value) : value;
    }
  }
  const due = isoFromLocal($("#contest-assignment-due").value);
  if (!due) return { problem: "Give the assignment a due time" };
  return { body: { kind, params, due } };
}

async function addAssignment() {
  const error = $("#contest-assignment-error");
  error.textContent = "";
  const { problem, body } = readAssignment();
  if (problem) { error.textContent = problem; return; }
  try {
    await contests.addAssignment(selectedId, body);
    say($("#contest-action-result"), "Assignment added", "ok");
    refreshDetail();
    refreshProgress();
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

async function generateAccounts() {
  const error = $("#contest-accounts-error");
  error.textContent = "";
  const count = Number($("#contest-accounts-count").value);
  const prefix = $("#contest-accounts-prefix").value.trim();
  if (!Number.isInteger(count) || count < 1 || count > 200) { error.textContent = "How many: a whole number from 1 to 200"; return; }
  if (!/^[A-Za-z][A-Za-z0-9_.-]{0,23}$/.test(prefix)) {
    error.textContent = "Prefix: 1 to 24 letters, digits, dots, dashes or underscores, starting with a letter"; return;
  }
  try {
    const answer = await contests.accounts(selectedId, { count, prefix });
    sheet = answer.sheet || null;
    $("#contest-accounts tbody").replaceChildren(...(answer.accounts || []).map((a) => el("tr", {
        dataset: { testid: "contest-account", username: a.username } },
      el("th", { scope: "row", dataset: { f: "username" } }, a.username),
      el("td", { class: "password", dataset: { f: "password" } }, a.password))));
    $("#contest-accounts-result").hidden = false;
    $("#contest-print-sheet").disabled = !sheet;
    refreshDetail();
  } catch (failure) {
    error.textContent = explain(failure.code, failure.message);
  }
}

/* The server's printable sheet in a window of its own (a blob URL: the page stays the only origin involved). */
function printSheet() {
  if (!sheet) return;
  const url = URL.createObjectURL(new Blob([sheet], { type: "text/html" }));
  const opened = window.open(url, "_blank");
  if (!opened) say($("#contest-action-result"), "The browser blocked the new window: allow pop-ups for this page", "error");
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

async function refreshProgress() {
  if (!selectedId) return;
  const asked = selectedId;
  try {
    const answer = await contests.progress(asked);
    if (asked !== selectedId) return;
    $("#contest-progress tbody").replaceChildren(...(answer.students || []).map((s) => el("tr", {
        dataset: { testid: "contest-progress-row", userId: String(s.userId) } },
      el("th", { scope: "row" }, s.nickname),
      el("td", { class: "sym" }, (s.tasks || []).length
        ? el("ul", { class: "checklist" }, s.tasks.map(taskItem)) : el("span", { class: "muted" }, "no assignments")))));
  } catch (failure) {
    if (asked === selectedId) {
      $("#contest-progress tbody").replaceChildren(el("tr", {}, el("td", { colspan: 2 }, failure.message)));
    }
  }
}

async function report(format) {
  if (!selectedId) return;
  const name = detail ? detail.contest.name.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-|-$/g, "") : "contest";
  try {
    await download(contests.reportPath(selectedId, format), `${name || "contest"}-report.${format}`);
    say($("#contest-action-result"), `Report (${format.toUpperCase()}) downloaded`, "ok");
  } catch (failure) {
    say($("#contest-action-result"), `Report unavailable: ${explain(failure.code, failure.message)}`, "error");
  }
}
