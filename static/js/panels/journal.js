/* A student's trade journal in the teacher's view (GET /api/journal): the orders they placed with a note, newest
   first, a page at a time. Kept apart from teacher.js, which only calls showJournal. */

import { $, el, integer, dateTime } from "../format.js";
import { classroom } from "../api.js";

const PAGE = 20;
let shown = null;   // {userId, entries}: the journal on screen, or null

/* Show the journal of `student` (a leaderboard entry: {userId, name}) from its newest entry, or the page before
   the cursor `before` under what is shown; null clears it. */
export async function showJournal(student, before = null) {
  const body = $("#student-journal tbody");
  const status = $("#student-journal-status");
  const more = $("#student-journal-more");
  more.hidden = true;
  if (!student) {
    shown = null;
    body.replaceChildren();
    status.textContent = "";
    return;
  }
  if (!before || !shown || shown.userId !== student.userId) {
    shown = { userId: student.userId, entries: [] };
    body.replaceChildren();
  }
  const asked = shown;
  status.textContent = "Loading the journal…";
  try {
    const page = await classroom.journal(student.userId, { limit: PAGE, before });
    if (shown !== asked) return;  // another student was picked meanwhile
    asked.entries.push(...page.entries);
    body.replaceChildren(...asked.entries.flatMap(entryRows));
    status.textContent = asked.entries.length ? `Why ${page.name} traded, newest first.`
      : `${page.name} has not written a note with any order yet.`;
    more.hidden = !page.nextCursor;
    more.onclick = () => showJournal(student, page.nextCursor);
  } catch (failure) {
    if (shown === asked) status.textContent = `The journal is unavailable: ${failure.message}`;
  }
}

/* An entry as two rows, the order and then its note across the table: the card is narrow. */
function entryRows(entry) {
  return [
    el("tr", { dataset: { orderId: entry.orderId, status: entry.status } },
      el("td", {}, dateTime(entry.time)),
      el("td", { class: "sym" }, el("span", { class: entry.side === "BUY" ? "up" : "down" }, entry.side),
         ` ${integer(entry.quantity)} ${entry.symbol}`),
      el("td", {}, entry.status.replace("_", " "))),
    el("tr", { class: "journal-note", dataset: { noteFor: entry.orderId } },
      el("td", { class: "note", colspan: 3 }, entry.note)),
  ];
}
