/* Toasts: short notices in a live region, dismissable by button or Escape, gone after a while. */

import { $, el } from "./format.js";

const MAX_TOASTS = 5;

export function toast(text, { severity = "INFO", title = null, timeout = 8000, id = null } = {}) {
  const box = $("#toasts");
  const close = () => item.remove();
  const item = el("div", { class: `toast ${severity.toLowerCase()}`, role: severity === "CRITICAL" ? "alert" : "status",
                           dataset: { severity, ...(id ? { id } : {}) } },
    title ? el("strong", {}, title) : null,
    el("span", {}, text),
    el("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: close }, "×"));
  item.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  box.append(item);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  if (timeout) setTimeout(close, timeout);
  return item;
}
