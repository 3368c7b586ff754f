"""In Debian's Chromium: `new WebSocket` and `new SockJS` both receive live quotes, and the page shows them."""

from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "screenshots"




@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def base_url(start_server):
    _, port = start_server("--tick-ms", "100")
    return f"http://127.0.0.1:{port}"


RECEIVE_LIVE_QUOTES = """
async ([kind, url]) => {
  const socket = kind === "websocket" ? new WebSocket(url) : new SockJS(url, null, {transports: [kind]});
  return await new Promise((resolve, reject) => {
    const seen = [];
    let transport = "websocket";
    setTimeout(() => reject(new Error("no live quotes; saw " + seen.join(","))), 10000);
    socket.onopen = () => {
      transport = socket.transport || "websocket";
      socket.send(JSON.stringify({type: "SUBSCRIBE", data: {symbols: ["NVTX", "QBIT"], updateInterval: 200}}));
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      seen.push(message.type);
      if (message.type === "REAL_TIME_UPDATE") {
        socket.close();
        resolve({types: seen, symbols: message.data.quotes.map((q) => q.symbol),
                 transport});
      }
    };
  });
}
"""


@pytest.mark.parametrize("kind", ["websocket", "sockjs-websocket", "xhr-streaming", "xhr-polling"])
def test_browser_socket_receives_live_quotes_after_subscribe(page, base_url, kind):
    page.goto(base_url + "/")
    page.wait_for_function("typeof window.SockJS === 'function'")
    if kind == "websocket":
        args = ["websocket", base_url.replace("http", "ws") + "/ws/market-data"]
    else:
        args = [kind.replace("sockjs-", ""), base_url + "/ws/market-data"]
    result = page.evaluate(RECEIVE_LIVE_QUOTES, args)
    assert result["types"][:3] == ["CONNECTION_ESTABLISHED", "SUBSCRIPTION_CONFIRMED", "INITIAL_DATA"]
    assert set(result["symbols"]) <= {"NVTX", "QBIT"} and result["symbols"]
    assert result["transport"] == args[0]


@pytest.mark.parametrize("query, transport, width", [
    ("", "websocket", 1280),
    ("?transport=sockjs&sockjs=xhr-streaming", "sockjs/xhr-streaming", 390),
])
def test_dashboard_watchlist_updates_live(page, base_url, query, transport, width):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(base_url + "/" + query)
    status = page.locator("#connection")
    playwright_api.expect(status).to_have_attribute("data-state", "connected", timeout=10_000)
    playwright_api.expect(status).to_have_attribute("data-transport", transport)
    price = page.locator('tr[data-symbol="NVTX"] [data-f="price"]')
    playwright_api.expect(price).not_to_have_text("", timeout=10_000)
    rows = page.locator("#watchlist tbody tr")
    assert rows.count() >= 30
    volume = page.locator('tr[data-symbol="NVTX"] [data-f="volume"]')
    first = volume.inner_text()
    page.wait_for_function(
        "(first) => document.querySelector('tr[data-symbol=\"NVTX\"] [data-f=\"volume\"]').textContent !== first",
        arg=first, timeout=10_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"market-{'phone' if width < 600 else 'desktop'}.png"), full_page=True)
