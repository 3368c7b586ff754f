/* News: the ticker of a scenario's news on the market view, newest first and open, with a toast as each arrives.
   A connection is first sent the latest items (NEWS_HISTORY), then each NEWS once; ids keep both from repeating. */

import { $, el, clock } from "../format.js";

const KEPT = 10;
const items = new Map();  // id -> NEWS data

export function init(app) {
  const market = app.channels.market;
  market.on("NEWS_HISTORY", (data) => {
    items.clear();
    for (const item of data.items || []) items.set(item.id, item);
    render();
  });
  market.on("NEWS", (data) => {
    if (items.has(data.id)) return;
    items.set(data.id, data);
    render();
    app.toast(data.headline, { title: "News", id: `news-${data.id}` });
  });
}

function render() {
  const latest = [...items.values()].sort((a, b) => b.id - a.id).slice(0, KEPT);
  for (const id of [...items.keys()]) if (!latest.some((item) => item.id === id)) items.delete(id);
  $("#news").replaceChildren(...latest.map((item, index) => el("li", { dataset: { newsId: String(item.id) } },
    el("details", { open: index === 0 },
      el("summary", {},
        el("time", { datetime: item.time, title: "Market time" }, clock(item.time)), " ",
        el("strong", { class: "headline" }, item.headline), " ",
        ...(item.symbols || []).map((symbol) => el("a", { class: "tag", href: `#/symbol/${encodeURIComponent(symbol)}` }, symbol))),
      item.body ? el("p", {}, item.body) : null,
      item.scenario ? el("p", { class: "muted source" }, `Scenario: ${item.scenario}`) : null))));
  $("#news-card").hidden = latest.length === 0;
}
