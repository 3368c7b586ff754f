"""The dashboard's risk and signals panels in Debian's Chromium against the real server process: a risk limit set low
raises an alert toast that can be acknowledged; signals show confidence; model performance is listed; the optimiser's
rebalance orders go through the ordinary order path. Until /ws/risk-monitoring and /ws/ml-signals exist, the panels
must say "not available" instead (test_panels_say_whether_risk_and_signals_are_available covers both states).
"""

import urllib.error
import urllib.request
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "screenshots"
WAIT = 20_000
expect.set_options(timeout=WAIT)  # assertions wait as long as actions: a loaded 2-core machine is slow
DESKTOP = {"width": 1280, "height": 900}




@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: "Content Security Policy" in message.text and page.errors.append(message.text))
    yield page
    context.close()


@pytest.fixture
def base_url(start_server):
    _, port = start_server("--tick-ms", "100")
    return f"http://127.0.0.1:{port}"


def served(base_url, endpoint):
    """Whether the server has `endpoint` (its SockJS greeting answers 200; a missing endpoint 404)."""
    try:
        with urllib.request.urlopen(f"{base_url}/ws/{endpoint}", timeout=5) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in_as_guest(page, base_url, nickname):
    page.goto(base_url + "/")
    page.fill("#guest-nickname", nickname)
    page.click("#guest-form button[type=submit]")
    expect(page.locator("#account [data-field=name]")).to_have_text(nickname)
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")


def buy(page, symbol, quantity):
    page.goto(page.url.split("#")[0] + f"#/trade/{symbol}")
    expect(page.locator("#ticket-symbol")).to_have_value(symbol)
    page.select_option("#ticket-type", "MARKET")
    page.fill("#ticket-quantity", str(quantity))
    page.click("#ticket-submit")
    expect(page.locator("#ticket-result")).to_contain_text(f"Order placed: BUY {quantity} {symbol}")
    expect(page.locator("#fills tbody tr").filter(has_text=symbol).first).to_be_visible()


def test_panels_say_whether_risk_and_signals_are_available(page, base_url):
    sign_in_as_guest(page, base_url, "Hal")
    for view, endpoint in (("risk", "risk-monitoring"), ("signals", "ml-signals")):
        page.click(f"#nav a[data-view={view}]")
        notice = page.locator(f'#view-{view} [data-unavailable="{view}"]')
        if served(base_url, endpoint):
            expect(notice).to_be_hidden()
        else:
            expect(notice).to_be_visible()
            expect(notice).to_contain_text("not available")
    # the rest of the page is unaffected
    expect(page.locator("#connection")).to_have_attribute("data-state", "connected")
    assert page.errors == []


def test_risk_limit_set_low_raises_alert_toast_that_can_be_acknowledged(page, base_url):
    assert served(base_url, "risk-monitoring"), "the server has no /ws/risk-monitoring yet"
    sign_in_as_guest(page, base_url, "Ivy")
    buy(page, "NVTX", 20)
    page.click("#nav a[data-view=risk]")
    expect(page.locator('#view-risk [data-unavailable="risk"]')).to_be_hidden()
    expect(page.locator('#risk-metrics [data-key="VaR 95% (1 day)"] dd')).not_to_have_text("")
    expect(page.locator("#limit-maxPositionWeight")).not_to_have_value("")
    page.fill("#limit-maxPositionWeight", "1")
    page.click("#risk-limits-save")
    expect(page.locator("#risk-limits-result")).to_have_text("Limits saved.")
    toast = page.locator(".toast").filter(has_text="Position weight")
    expect(toast.first).to_be_visible()
    alert = page.locator("#alerts li").first
    expect(alert).to_have_attribute("data-acknowledged", "no")
    screenshot(page, "risk-desktop")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#alerts li").first).to_have_attribute("data-acknowledged", "yes")
    assert page.errors == []


def test_signals_show_confidence_and_measured_model_performance(page, base_url):
    assert served(base_url, "ml-signals"), "the server has no /ws/ml-signals yet"
    sign_in_as_guest(page, base_url, "Jo")
    page.click("#nav a[data-view=signals]")
    expect(page.locator('#view-signals [data-unavailable="signals"]')).to_be_hidden()
    rows = page.locator("#signals tbody tr")
    expect(rows.first).to_be_visible()
    page.wait_for_function("() => document.querySelectorAll('#signals tbody tr').length >= 30", timeout=WAIT)
    first = rows.first
    assert first.get_attribute("data-signal") in {"BUY", "SELL", "HOLD"}
    expect(first.locator("[data-f=confidence] meter")).to_have_count(1)
    expect(first.locator("[data-f=confidence]")).to_contain_text("%")
    models = page.locator("#models tbody tr")
    expect(models.first).to_be_visible()
    names = models.evaluate_all("rows => rows.map(r => r.dataset.model)")
    assert {"momentum", "meanReversion", "trend", "online", "ensemble"} <= set(names)
    screenshot(page, "signals-desktop")
    assert page.errors == []


def test_optimiser_rebalance_orders_go_through_the_order_path(page, base_url):
    assert served(base_url, "ml-signals"), "the server has no /ws/ml-signals yet"
    sign_in_as_guest(page, base_url, "Kim")
    page.click("#nav a[data-view=signals]")
    page.select_option("#optimiser-objective", "MIN_VARIANCE")
    # six symbols at most 20 % each: weights can sum to 1, and no order breaks the default risk limits
    page.fill("#optimiser-symbols", "NVTX, QBIT, BKNR, HYDL, PWRG, CAPX")
    page.fill("#optimiser-max", "20")
    page.click("#optimiser-run")
    expect(page.locator("#optimiser-result")).to_be_visible()
    expect(page.locator("#optimiser-weights tbody tr").first).to_be_visible()
    rebalance = page.locator("#rebalance tbody tr")
    expect(rebalance.first).to_be_visible()
    planned = rebalance.count()
    page.click("#rebalance-place")
    expect(page.locator("#rebalance-result")).to_contain_text("placed")
    assert "0 orders placed" not in page.locator("#rebalance-result").inner_text()
    screenshot(page, "optimiser-desktop")
    page.click("#nav a[data-view=trade]")
    # every placed order is an ordinary order: it is in the history (and its fills in the fills list)
    page.wait_for_function("(n) => document.querySelectorAll('#order-history tbody tr').length >= n",
                           arg=planned, timeout=WAIT)
    expect(page.locator("#fills tbody tr").first).to_be_visible()
    assert page.errors == []
