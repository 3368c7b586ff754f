"""In Debian's Chromium, the dashboard served by a gateway of a cluster: it trades through the engine in another
process, and says plainly when that engine stops answering and when it is back."""

import json
import time
import urllib.request
from pathlib import Path

import pytest

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "screenshots"


def engine_seen(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return json.loads(response.read()).get("engine") in ("here", "elsewhere")


def wait_until(predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


PRICE = __import__("re").compile(r"\d+\.\d\d")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    yield page
    context.close()


def test_the_dashboard_on_a_gateway_says_when_the_engine_is_away_and_when_it_is_back(page, redis_server,
                                                                                     start_server, tmp_path):
    common = ("--redis-url", redis_server.url, "--tick-ms", "100")
    engine_args = ("--role", "engine", *common)
    engine, engine_port = start_server(*engine_args, data_dir=tmp_path / "engine")
    _, gateway = start_server("--role", "gateway", *common, data_dir=tmp_path / "gateway")
    wait_until(lambda: engine_seen(gateway))

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"http://127.0.0.1:{gateway}/")
    status = page.locator("#connection")
    expect(status).to_have_text("Connected (websocket)", timeout=15_000)
    price = page.locator("#watchlist tbody tr").first.locator("td").nth(2)
    expect(price).to_have_text(PRICE, timeout=15_000)  # quotes from the engine, through the gateway
    page.screenshot(path=str(ARTIFACTS / "cluster-gateway.png"))

    engine.kill()
    expect(status).to_contain_text("trading is paused", timeout=10_000)
    expect(status).to_have_attribute("data-service", "degraded")
    page.screenshot(path=str(ARTIFACTS / "cluster-engine-away.png"))

    start_server(*engine_args, data_dir=tmp_path / "engine", port=engine_port)
    expect(status).to_have_text("Connected (websocket)", timeout=20_000)
    expect(status).to_have_attribute("data-service", "")
