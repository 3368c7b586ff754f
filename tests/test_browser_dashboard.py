"""The dashboard in Debian's Chromium against the real server process: sign-in, live quotes, trading, the teacher's
market controls, SockJS over xhr-streaming, and resuming order events after a server restart.

Screenshots of the main views (desktop and phone width) go to artifacts/screenshots/ (git-ignored). With
STOCKQUEST_UPDATE_SCREENSHOT=1 the desktop symbol page is also copied to docs/screenshot.png for the README.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "screenshots"
WAIT = 20_000          # ms: generous, for a loaded 2-core machine
expect.set_options(timeout=WAIT)  # assertions wait as long as actions: a loaded 2-core machine is slow
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PROJECTOR = {"width": 1920, "height": 1080}
TEACHER_PASSWORD = "a long teacher password"






@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    """One server for the tests that leave the market as they found it (each signs in its own guest); the tests
    that pause the market or restart the server start their own with `start_server`."""
    folder = tmp_path_factory.mktemp("dashboard")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = folder / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "stockquest.py"), "--data-dir", str(folder / "data"), "--seed", "3",
             "--log-level", "WARNING", "--tick-ms", "100", "--port", str(port)],
            cwd=folder, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"server did not start: {log_path.read_text()}"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in_as_guest(page, base_url, nickname="Ada", query=""):
    page.goto(f"{base_url}/{query}")
    page.fill("#guest-nickname", nickname)
    page.click("#guest-form button[type=submit]")
    expect(page.locator("#account [data-field=name]")).to_have_text(nickname)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


def sign_in_as_teacher(page, base_url, view="teacher"):
    """Log in as the teacher `add_teacher` made, and open `view`."""
    page.goto(base_url + "/")
    page.fill("#login-username", "msmith")
    page.fill("#login-password", TEACHER_PASSWORD)
    page.click("#login-button")
    expect(page.locator("#account .role")).to_have_text("teacher")
    page.click(f"#nav a[data-view={view}]")


def watch_volume_changes(page, symbol="NVTX"):
    """Wait until the watchlist's volume for `symbol` shows a new value: quotes are visibly arriving."""
    cell = page.locator(f'#watchlist tr[data-symbol="{symbol}"] [data-f="volume"]')
    expect(cell).not_to_have_text("")
    first = cell.inner_text()
    page.wait_for_function(
        "([symbol, first]) => document.querySelector(`#watchlist tr[data-symbol='${symbol}'] [data-f=volume]`)"
        ".textContent !== first", arg=[symbol, first], timeout=WAIT)


def volumes(page):
    return page.eval_on_selector_all(
        "#watchlist tbody tr",
        "rows => rows.map(r => r.querySelector('[data-f=volume]').textContent + '|' + "
        "r.querySelector('[data-f=price]').textContent)")


def place_order(page, symbol, side="BUY", order_type="MARKET", quantity=1, limit=None, stop=None, tif="DAY",
                note=None):
    page.goto(page.url.split("#")[0] + f"#/trade/{symbol}")
    expect(page.locator("#ticket-symbol")).to_have_value(symbol)
    page.check(f"#ticket input[name=side][value={side}]")
    page.select_option("#ticket-type", order_type)
    page.fill("#ticket-quantity", str(quantity))
    if limit is not None:
        page.fill("#ticket-limit", str(limit))
    if stop is not None:
        page.fill("#ticket-stop", str(stop))
    page.select_option("#ticket-tif", tif)
    if note is not None:
        page.fill("#ticket-note", note)
    page.click("#ticket-submit")


def ask_of(page, symbol):
    text = page.locator(f'#watchlist tr[data-symbol="{symbol}"] [data-f=ask]').inner_text()
    return Decimal(text.replace(",", ""))


def no_horizontal_scroll(page):
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


# -- tests --------------------------------------------------------------------------------------------------

def test_guest_sign_in_shows_live_quotes_chart_and_analytics(new_page, base_url):
    page = new_page()
    page.goto(base_url + "/")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#nav a[data-view=trade]")).to_be_hidden()
    sign_in_as_guest(page, base_url, "Ada")
    expect(page.locator("#account .role")).to_have_text("student")
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#connection")).to_have_attribute("data-transport", "websocket")
    assert page.locator("#watchlist tbody tr").count() >= 30
    watch_volume_changes(page)
    expect(page.locator("#market-status")).to_have_attribute("data-status", "OPEN")
    expect(page.locator("#indices li").first).to_be_visible()
    expect(page.locator("#gainers li").first).to_be_visible()
    screenshot(page, "market-desktop")
    page.set_viewport_size(PROJECTOR)
    assert no_horizontal_scroll(page)
    screenshot(page, "market-projector")
    page.set_viewport_size(DESKTOP)

    page.click('#watchlist tr[data-symbol="NVTX"] a')
    expect(page.locator("#symbol-title")).to_contain_text("NVTX")
    chart = page.locator("#chart")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.bars || 0) > 20", timeout=WAIT)
    expect(chart.locator("canvas").first).to_be_visible()
    expect(page.locator('#analytics [data-key="SMA 20"] dd')).not_to_have_text("")
    expect(page.locator('#analytics [data-key="RSI 14"] dd')).not_to_have_text("")
    # live quotes extend the last candle
    page.wait_for_function("() => document.querySelector('#chart').dataset.lastClose !== undefined", timeout=WAIT)
    path = screenshot(page, "symbol-desktop")
    if os.environ.get("STOCKQUEST_UPDATE_SCREENSHOT"):
        shutil.copyfile(path, ROOT / "docs" / "screenshot.png")

    page.click("#sign-out")
    expect(page.locator("#signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('stockquest.user')") is None
    assert page.errors == []


def test_market_buy_shows_up_as_fill_and_position(new_page, base_url):
    page = new_page()
    sign_in_as_guest(page, base_url, "Bo")
    place_order(page, "NVTX", quantity=7)
    expect(page.locator("#ticket-result")).to_contain_text("Order placed: BUY 7 NVTX")
    fill = page.locator("#fills tbody tr").filter(has_text="NVTX")
    expect(fill.first).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#fills tbody tr')].reduce((n, r) => n + "
        "Number(r.querySelector('[data-f=quantity]').textContent), 0) === 7", timeout=WAIT)
    expect(page.locator('#order-history tr[data-status="FILLED"]').first).to_be_visible()
    screenshot(page, "trade-desktop")

    page.click("#nav a[data-view=portfolio]")
    position = page.locator('#positions tr[data-symbol="NVTX"]')
    expect(position.locator("[data-f=quantity]")).to_have_text("7")
    expect(page.locator('#portfolio-summary [data-key="Cash"] dd')).not_to_have_text("100,000.00")
    expect(page.locator('#portfolio-analytics [data-key="Total return"] dd')).to_be_visible()
    screenshot(page, "portfolio-desktop")

    # client-side checks mirror the server's: nothing is sent, the reason is in words
    place_order(page, "NVTX", side="SELL", quantity=8)
    expect(page.locator("#ticket-error")).to_have_attribute("data-reason", "INSUFFICIENT_SHARES")
    place_order(page, "NVTX", order_type="LIMIT", quantity=1, limit="1.234")
    expect(page.locator("#ticket-error")).to_have_attribute("data-reason", "INVALID_PRICE")
    expect(page.locator("#ticket-error")).to_contain_text("whole cents")
    place_order(page, "NVTX", quantity="0")
    expect(page.locator("#ticket-error")).to_have_attribute("data-reason", "INVALID_QUANTITY")
    # stop-loss / take-profit editing
    page.click("#nav a[data-view=portfolio]")
    price = Decimal(position.locator("[data-f=price]").inner_text().replace(",", ""))
    position.get_by_label("Stop loss for NVTX").fill(str((price * Decimal("0.5")).quantize(Decimal("0.01"))))
    position.get_by_label("Take profit for NVTX").fill(str((price * Decimal("2")).quantize(Decimal("0.01"))))
    position.get_by_role("button", name="Save levels for NVTX").click()
    expect(page.locator(".toast").filter(has_text="Levels saved for NVTX")).to_be_visible()
    # a reload keeps the tab signed in; recent fills are replayed from the order events
    page.reload()
    expect(page.locator("#account [data-field=name]")).to_have_text("Bo")
    expect(page.locator('#positions tr[data-symbol="NVTX"] [data-f=quantity]')).to_have_text("7")
    page.click("#nav a[data-view=trade]")
    expect(page.locator("#fills tbody tr").filter(has_text="NVTX").first).to_be_visible()
    assert page.errors == []


def test_market_buy_shows_filled_on_the_ticket_and_a_journal_note_is_checked_and_counted(new_page, base_url):
    page = new_page()
    sign_in_as_guest(page, base_url, "Hal")
    watch_volume_changes(page)
    page.goto(page.url.split("#")[0] + "#/trade/NVTX")
    counter = page.locator("#ticket-note-count")
    expect(counter).to_have_text("0 / 500")
    page.fill("#ticket-note", "bell\x07 in my note")
    expect(counter).to_have_text("16 / 500")
    page.click("#ticket-submit")  # refused here, as the server would: nothing is sent
    expect(page.locator("#ticket-error")).to_have_attribute("data-reason", "INVALID_NOTE")
    expect(page.locator("#ticket-error")).to_contain_text("control characters")
    expect(page.locator("#ticket-result")).to_have_text("")

    place_order(page, "NVTX", quantity=30, note="Breaking out on volume.\nSmall size.")
    result = page.locator("#ticket-result")
    expect(result).to_contain_text("Order placed: BUY 30 NVTX market")
    expect(result).to_have_attribute("data-status", "FILLED")  # it follows the order's events until closed
    expect(result).to_contain_text(re.compile(r"\(filled: 30 at [\d,]+\.\d\d average\)"))
    expect(page.locator("#ticket-note")).to_have_value("")  # a note goes with one order
    expect(counter).to_have_text("0 / 500")
    order_id = result.get_attribute("data-order-id")
    history_row = page.locator(f'#order-history tr[data-order-id="{order_id}"]')
    expect(history_row).to_have_attribute("data-status", "FILLED")

    # an IOC limit far under the ask cannot fill: cancelled at once, with the server's reason
    far = (ask_of(page, "NVTX") / 2).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    place_order(page, "NVTX", order_type="LIMIT", quantity=2, limit=far, tif="IOC")
    expect(result).to_have_attribute("data-status", "CANCELLED")
    expect(result).to_contain_text("Order placed: BUY 2 NVTX limit (cancelled — immediate or cancel:")
    assert page.errors == []


HISTORY_DIRECTLY = """
async ([url, symbol, interval]) => {
  const socket = new WebSocket(url);
  return await new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error("no HISTORICAL_DATA")), 15000);
    socket.onopen = () => socket.send(JSON.stringify({type: "REQUEST_HISTORICAL", requestId: "h",
                                                      data: {symbol, interval, limit: 300}}));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "ERROR") reject(new Error(event.data));
      if (message.type === "HISTORICAL_DATA") { socket.close(); resolve(message.data.bars); }
    };
  });
}
"""


def test_symbol_page_analytics_follow_the_chart_interval_and_volume_is_drawn_under_the_candles(new_page, base_url):
    page = new_page()
    sign_in_as_guest(page, base_url, "Ivy")
    page.goto(base_url + "/#/symbol/NVTX")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.bars || 0) > 20", timeout=WAIT)
    analytics = page.locator("#analytics")
    expect(analytics).to_have_attribute("data-interval", "5m")
    expect(analytics.locator('[data-key="Interval"] dd')).to_have_text("5m bars, as on the chart")
    page.select_option("#chart-interval", "15m")
    expect(analytics).to_have_attribute("data-interval", "15m")  # asked again, for the chart's new interval
    expect(analytics.locator('[data-key="Interval"] dd')).to_have_text("15m bars, as on the chart")
    expect(analytics.locator('[data-key="RSI 14"] dd')).not_to_have_text("")
    expect(page.locator("#chart-status")).to_contain_text("· 15m")

    # the volume series, read back from the chart library: its own pane, one bar per candle, the server's volumes
    page.wait_for_function("() => window.stockquest.chartSeries('volume').data.length > 20", timeout=WAIT)
    candles, volume = page.evaluate("['candles', 'volume'].map((name) => window.stockquest.chartSeries(name))")
    assert (candles["pane"], volume["pane"]) == (0, 1)
    assert [p["time"] for p in volume["data"]] == [p["time"] for p in candles["data"]]
    other = new_page()
    other.goto(base_url + "/healthz")
    bars = other.evaluate(HISTORY_DIRECTLY, [base_url.replace("http", "ws") + "/ws/market-data", "NVTX", "15m"])
    server = {bar["time"] / 1000: bar["volume"] for bar in bars[:-2]}  # closed bars: they no longer change
    drawn = {p["time"]: p["value"] for p in volume["data"]}
    common = server.keys() & drawn.keys()
    assert len(common) >= len(server) - 2 and len(common) > 20
    assert {t: drawn[t] for t in common} == {t: server[t] for t in common}
    assert any(value > 0 for value in drawn.values())
    assert all(p["color"] in ("rgba(10,125,50,.45)", "rgba(179,38,30,.45)") for p in volume["data"])

    page.select_option("#chart-interval", "5m")
    expect(analytics).to_have_attribute("data-interval", "5m")
    page.wait_for_function("() => window.stockquest.chartSeries('volume').data.length > 20", timeout=WAIT)
    page.mouse.move(0, 0)  # no crosshair in the picture
    path = screenshot(page, "symbol-volume-desktop")
    if os.environ.get("STOCKQUEST_UPDATE_SCREENSHOT"):
        shutil.copyfile(path, ROOT / "docs" / "symbol-volume.png")
    assert page.errors == [] and other.errors == []


def test_far_limit_order_is_modified_then_cancelled(new_page, base_url):
    page = new_page()
    sign_in_as_guest(page, base_url, "Cy")
    watch_volume_changes(page, "QBIT")
    far = (ask_of(page, "QBIT") / 2).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    place_order(page, "QBIT", order_type="LIMIT", quantity=3, limit=far, tif="GTC")
    expect(page.locator("#ticket-result")).to_contain_text("Order placed: BUY 3 QBIT limit")
    row = page.locator("#open-orders tbody tr[data-order-id]").filter(has_text="QBIT")
    expect(row).to_have_count(1)
    expect(row.locator("[data-f=status]")).to_have_text("NEW")
    order_id = row.get_attribute("data-order-id")

    row.get_by_role("button", name="Modify BUY QBIT order").click()
    form = page.locator(f'form.modify-form[data-order-id="{order_id}"]')
    form.get_by_label("New total quantity").fill("5")
    lower = (far - Decimal("1.00")).quantize(Decimal("0.01"))
    form.get_by_label("New limit price").fill(str(lower))
    form.get_by_role("button", name="Save").click()
    row = page.locator(f'#open-orders tbody tr[data-order-id="{order_id}"]')
    expect(row.locator("[data-f=quantity]")).to_have_text("5")
    expect(row.locator("[data-f=limit]")).to_have_text(f"{lower:,.2f}")
    screenshot(page, "open-orders-desktop")

    expect(page.locator("#ticket-result")).to_have_attribute("data-status", "NEW")
    row.get_by_role("button", name="Cancel BUY QBIT order").click()
    expect(row).to_have_count(0)
    expect(page.locator("#ticket-result")).to_have_attribute("data-status", "CANCELLED")  # the ticket follows it
    expect(page.locator("#ticket-result")).to_contain_text("Order placed: BUY 5 QBIT limit (cancelled)")
    expect(page.locator("[data-empty-for=open-orders]")).to_be_visible()
    expect(page.locator(f'#order-history tr[data-order-id="{order_id}"]')).to_have_attribute("data-status", "CANCELLED")
    assert page.errors == []


def test_phone_width_views_fit_the_screen(new_page, base_url):
    page = new_page(PHONE)
    sign_in_as_guest(page, base_url, "Di")
    watch_volume_changes(page)
    assert no_horizontal_scroll(page)
    screenshot(page, "market-phone")
    place_order(page, "NVTX", quantity=2)
    expect(page.locator("#fills tbody tr").first).to_be_visible()
    assert no_horizontal_scroll(page)
    screenshot(page, "trade-phone")
    page.click("#nav a[data-view=portfolio]")
    expect(page.locator('#positions tr[data-symbol="NVTX"] [data-f=quantity]')).to_have_text("2")
    assert no_horizontal_scroll(page)
    screenshot(page, "portfolio-phone")
    page.goto(base_url + "/#/symbol/NVTX")
    page.wait_for_function("() => Number(document.querySelector('#chart').dataset.bars || 0) > 20", timeout=WAIT)
    screenshot(page, "symbol-phone")
    # keyboard: the nav is reachable and works with Enter
    page.focus("#nav a[data-view=leaderboard]")
    page.keyboard.press("Enter")
    expect(page.locator("#view-leaderboard")).to_be_visible()
    expect(page.locator("#leaderboard tbody tr").filter(has_text="Di")).to_have_count(1)
    assert page.errors == []


JOURNAL_NOTE = "Earnings next week <b>and</b> momentum;\nsmall size first."


def add_teacher(data_dir, name="msmith"):
    result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "user", "add", name, "--role", "teacher",
                             "--data-dir", str(data_dir)], input=TEACHER_PASSWORD + "\n", capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_teacher_pauses_market_and_student_prices_stop(new_page, start_server, tmp_path):
    data_dir = tmp_path / "class"
    add_teacher(data_dir)
    _, port = start_server("--tick-ms", "100", data_dir=data_dir)
    base = f"http://127.0.0.1:{port}"

    student = new_page()
    sign_in_as_guest(student, base, "Eve")
    place_order(student, "NVTX", quantity=4, note=JOURNAL_NOTE)
    expect(student.locator("#fills tbody tr").first).to_be_visible()
    place_order(student, "QBIT", quantity=1)  # no note: not in the journal
    student.click("#nav a[data-view=market]")
    watch_volume_changes(student)

    teacher = new_page()
    sign_in_as_teacher(teacher, base)
    expect(teacher.locator('#stats [data-key="Connections"] dd')).not_to_have_text("")
    board_row = teacher.locator("#class-board tbody tr").filter(has_text="Eve")
    expect(board_row).to_have_count(1)
    board_row.get_by_role("button", name="View Eve's portfolio").click()
    expect(teacher.locator('#student-positions tr[data-symbol="NVTX"]')).to_contain_text("4")
    # her trade journal: the noted order only, its note shown as the text she wrote (markup not interpreted)
    journal = teacher.locator("#student-journal tbody tr[data-order-id]")
    expect(journal).to_have_count(1)
    expect(journal).to_contain_text("BUY 4 NVTX")
    note = teacher.locator(f'#student-journal tr[data-note-for="{journal.get_attribute("data-order-id")}"] td.note')
    expect(note).to_have_text(JOURNAL_NOTE)
    assert note.locator("b").count() == 0

    # the class-wide risk feed ranks every student's portfolio
    expect(teacher.locator("#class-risk-ranking tbody tr").filter(has_text="Eve")).to_have_count(1)

    teacher.click("#control-pause")
    expect(teacher.locator("#control-result")).to_contain_text("paused")
    expect(student.locator("#market-status")).to_have_attribute("data-status", "PAUSED")
    expect(student.locator(".toast").filter(has_text="paused")).to_be_visible()
    # updates already in flight when the pause was announced may still land: wait for a quiet second first
    paused = volumes(student)
    for _ in range(10):
        student.wait_for_timeout(1000)
        settled, paused = paused, volumes(student)
        if settled == paused:
            break
    student.wait_for_timeout(2000)  # then no update at all for eight update intervals
    assert volumes(student) == paused
    # an IOC order cannot rest while paused: the ticket says so before sending
    place_order(student, "NVTX", quantity=1, tif="IOC")
    expect(student.locator("#ticket-error")).to_have_attribute("data-reason", "MARKET_CLOSED")
    screenshot(teacher, "teacher-desktop")

    teacher.click("#control-resume")
    expect(student.locator("#market-status")).to_have_attribute("data-status", "OPEN")
    student.click("#nav a[data-view=market]")
    watch_volume_changes(student)
    teacher.fill("#control-speed-value", "5")
    teacher.click("#control-speed button[type=submit]")
    expect(student.locator("#market-status [data-field=speed]")).to_contain_text("×5")
    assert student.errors == [] and teacher.errors == []


def test_core_flow_over_sockjs_xhr_streaming(new_page, base_url):
    page = new_page()
    sign_in_as_guest(page, base_url, "Flo", query="?transport=sockjs&sockjs=xhr-streaming")
    expect(page.locator("#connection")).to_have_attribute("data-transport", "sockjs/xhr-streaming")
    transports = page.evaluate("Object.values(window.stockquest.channels).filter(c => c.state === 'connected')"
                               ".map(c => c.transportName)")
    assert set(transports) == {"sockjs/xhr-streaming"} and len(transports) >= 3
    watch_volume_changes(page)
    place_order(page, "NVTX", quantity=6)
    expect(page.locator("#ticket-result")).to_contain_text("Order placed: BUY 6 NVTX")
    expect(page.locator("#fills tbody tr").filter(has_text="NVTX").first).to_be_visible()
    page.click("#nav a[data-view=portfolio]")
    expect(page.locator('#positions tr[data-symbol="NVTX"] [data-f=quantity]')).to_have_text("6")
    screenshot(page, "portfolio-sockjs-desktop")
    assert page.errors == []


BLOCK_NATIVE_WEBSOCKETS = """
window.WebSocket = class BlockedWebSocket extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      const event = new CloseEvent("close", {code: 1006, wasClean: false});
      if (this.onerror) this.onerror(new Event("error"));
      if (this.onclose) this.onclose(event);
      this.dispatchEvent(event);
    }, 50);
  }
  send() { throw new Error("not open"); }
  close() {}
};
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
"""


def test_falls_back_to_sockjs_when_native_websockets_are_blocked(new_page, base_url):
    page = new_page()
    page.add_init_script(BLOCK_NATIVE_WEBSOCKETS)   # as behind a proxy that refuses WebSocket upgrades
    page.goto(base_url + "/")
    status = page.locator("#connection")
    expect(status).to_have_attribute("data-state", "connected")
    assert status.get_attribute("data-transport").startswith("sockjs/")
    assert status.get_attribute("data-transport") != "sockjs/websocket"
    watch_volume_changes(page)
    assert page.errors == []


def test_page_says_clearly_when_browser_libraries_are_missing(new_page, base_url):
    page = new_page()
    page.route("**/vendor/**", lambda route: route.fulfill(status=404, body="not installed"))
    page.goto(base_url + "/#/symbol/NVTX")
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("lightweight-charts")
    expect(notice).to_contain_text("sockjs-client")
    expect(notice).to_contain_text("npm ci")
    expect(page.locator("#chart-status")).to_contain_text("Charts are unavailable")
    # everything else still works over native WebSockets
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    page.click("#nav a[data-view=market]")
    watch_volume_changes(page)
    assert page.errors == []


PLACE_FILL_DIRECTLY = """
async ([url, token, quantity]) => {
  const socket = new WebSocket(url);
  return await new Promise((resolve, reject) => {
    const executions = [];
    setTimeout(() => reject(new Error("no fill; executions " + executions.join(","))), 15000);
    socket.onopen = () => socket.send(JSON.stringify({type: "AUTH", data: {token}, requestId: "a"}));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "PORTFOLIO_LIST" || message.type === "ERROR") reject(new Error(event.data));
      if (message.type === "AUTHENTICATED") {
        socket.send(JSON.stringify({type: "SUBMIT_ORDER", requestId: "o", data: {portfolioId: window.portfolioId,
          symbol: "NVTX", side: "BUY", orderType: "MARKET", quantity, timeInForce: "DAY"}}));
      }
      if (message.type === "ORDER_REJECTED") reject(new Error(event.data));
      if (message.type === "EXECUTION_REPORT") executions.push(message.data.executionId);
      if (message.type === "ORDER_FILLED") { socket.close(); resolve(executions); }
    };
  });
}
"""


def test_reconnect_after_restart_resumes_without_losing_a_fill(new_page, start_server, tmp_path, free_port):
    data_dir, port = tmp_path / "restart", free_port()
    process, _ = start_server("--tick-ms", "100", port=port, data_dir=data_dir)
    base = f"http://127.0.0.1:{port}"
    page = new_page()
    sign_in_as_guest(page, base, "Gus")
    place_order(page, "NVTX", quantity=5)
    expect(page.locator("#fills tbody tr")).to_have_count(1)
    token = page.evaluate("JSON.parse(sessionStorage.getItem('stockquest.user')).token")
    portfolio_id = page.evaluate("JSON.parse(sessionStorage.getItem('stockquest.portfolioId'))")

    # The page loses the server and cannot reach it again until we let it (network off for this tab only).
    page.context.set_offline(True)
    process.terminate()
    assert process.wait(timeout=20) == 0
    expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    start_server("--tick-ms", "100", port=port, data_dir=data_dir)

    # While the page is away, the same user buys 7 more from another client.
    other = new_page()
    other.goto(base + "/healthz")
    other.evaluate("(id) => { window.portfolioId = id; }", portfolio_id)
    executions = other.evaluate(PLACE_FILL_DIRECTLY, [f"ws://127.0.0.1:{port}/ws/orders", token, 7])
    assert executions
    screenshot(page, "reconnecting-desktop")

    page.context.set_offline(False)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected", timeout=30_000)
    for execution_id in executions:
        expect(page.locator(f'#fills tr[data-execution-id="{execution_id}"]')).to_have_count(1)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#fills tbody tr')].reduce((n, r) => n + "
        "Number(r.querySelector('[data-f=quantity]').textContent), 0) === 12", timeout=WAIT)
    watch_volume_changes(page)   # market data resubscribed
    page.click("#nav a[data-view=portfolio]")
    expect(page.locator('#positions tr[data-symbol="NVTX"] [data-f=quantity]')).to_have_text("12")
    assert page.errors == []


def test_a_registered_student_changes_their_password_and_a_guest_is_not_offered_to(new_page, base_url):
    page = new_page()
    page.goto(f"{base_url}/")
    page.fill("#login-username", "pat")
    page.fill("#login-password", "first password")
    page.click("#login-form button[value=register]")
    expect(page.locator("#account [data-field=name]")).to_have_text("pat")
    page.click("#password-change summary")
    page.fill("#password-current", "not my password")
    page.fill("#password-new", "second password")
    page.click("#password-form button[type=submit]")
    expect(page.locator("#password-status")).to_have_text("The current password is not right.")
    page.fill("#password-current", "first password")
    page.fill("#password-new", "second password")
    page.click("#password-form button[type=submit]")
    expect(page.locator("#password-status")).to_contain_text("Password changed")

    def login(password):
        request = urllib.request.Request(f"{base_url}/api/auth/login", method="POST",
                                         data=json.dumps({"username": "pat", "password": password}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
    assert (login("first password"), login("second password")) == (401, 200)

    guest = new_page()
    sign_in_as_guest(guest, base_url, nickname="Gus")
    expect(guest.locator("#password-change")).to_be_hidden()
