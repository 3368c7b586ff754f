"""A scenario played on a running server, over real sockets: its NEWS reaches every market-data connection once
(native and SockJS, signed in or not), skipping brings the next event now, a late joiner reads NEWS_HISTORY, the
scripted moves show in the bars, and a run outlives a restart of the services."""

import asyncio
import random

import pytest
import ujson
from tornado.httpclient import HTTPClientError

import stockquest
from realtime import channels
from realtime.protocol import encode_data
from tests.test_sockjs_endpoints import messages, sockjs_session

pytestmark = pytest.mark.gen_test(timeout=40)

MD = "/ws/market-data"
NEWS_FIELDS = {"id", "headline", "body", "symbols", "time", "scenario"}
STORY = """\
name = "Novatex week"

[[events]]
day = 1
[events.news]
headline = "Novatex misses earnings"
body = "Fewer chips sold than expected."
symbols = ["NVTX"]
[[events.move]]
symbols = ["NVTX"]
percent = -20
over = "10m"

[[events]]
day = 3
time = "10:00"
[events.news]
headline = "Novatex names a new chief executive"
symbols = ["NVTX"]
"""


async def rest(http_client, base_url, path, token, body=None):
    try:
        response = await http_client.fetch(base_url + path, method="POST" if body is not None else "GET",
                                           headers={"Authorization": f"Bearer {token}"},
                                           body=None if body is None else ujson.dumps(body))
    except HTTPClientError as error:
        return error.code, ujson.loads(error.response.body)
    return response.code, ujson.loads(response.body)


async def news_seen(client, seconds):
    """The NEWS a client has received once `seconds` more have passed."""
    await client.drain(seconds)
    return [m["data"] for m in client.received if m["type"] == "NEWS"]


async def test_a_started_scenarios_news_reaches_every_market_data_connection_exactly_once(
        ws, http_client, base_url, http_port, make_user, services):
    _, student = make_user("sam")
    _, teacher = make_user("tina", role="teacher")
    anonymous = await ws(MD)
    signed_in = await ws(MD, token=student)
    watcher = await ws(MD)
    await watcher.send("SUBSCRIBE", {"symbols": ["NVTX"], "updateInterval": 100})
    await watcher.wait_for("REAL_TIME_UPDATE")
    sockjs = asyncio.ensure_future(sockjs_session(f"http://127.0.0.1:{http_port}{MD}", "xhr-streaming",
                                                  until="NEWS", count=2, timeout_ms=5_000))
    for _ in range(100):
        if any(conn.transport.kind == "sockjs" for conn in services.hub.connections("market-data")):
            break
        await asyncio.sleep(0.05)
    code, started = await rest(http_client, base_url, "/api/scenarios/start", teacher, {"toml": STORY})
    assert code == 200, started
    at = started["current"]["timeline"][0]["at"]
    for client in (anonymous, signed_in, watcher):
        news = await news_seen(client, 1.0)
        assert news == [{"id": 1, "headline": "Novatex misses earnings", "body": "Fewer chips sold than expected.",
                         "symbols": ["NVTX"], "time": at, "scenario": "Novatex week"}]
    code, events, stderr = await sockjs
    assert code == 2, stderr  # it waited for a second NEWS that never came
    assert [m["data"]["id"] for m in messages(events) if m["type"] == "NEWS"] == [1]


async def test_skip_makes_the_next_event_happen_now_for_everyone(ws, http_client, base_url, make_user, services):
    _, teacher = make_user("tina", role="teacher")
    clients = [await ws(MD), await ws(MD)]
    await rest(http_client, base_url, "/api/scenarios/start", teacher, {"toml": STORY})
    for client in clients:
        await client.wait_for("NEWS")
    code, skipped = await rest(http_client, base_url, "/api/scenarios/skip", teacher, {})
    assert code == 200 and skipped["current"]["timeline"][1]["happened"]
    assert skipped["current"]["timeline"][1]["at"] <= skipped["marketTime"]
    for client in clients:
        news = (await client.wait_for("NEWS", timeout=2))["data"]
        assert (news["id"], news["headline"]) == (2, "Novatex names a new chief executive")
        assert news["time"] == skipped["current"]["timeline"][1]["at"]
    assert skipped["current"]["nextEvent"] is None and services.scenarios.current().run.next_event is None


async def test_a_late_joiner_is_sent_the_news_so_far_as_news_history_and_never_twice(ws, make_user, services):
    services.scenarios.start(text=STORY)
    services.scenarios.skip()
    late = await ws(MD)
    history = await late.expect("NEWS_HISTORY")
    assert [(item["id"], item["headline"]) for item in history["data"]["items"]] == [
        (1, "Novatex misses earnings"), (2, "Novatex names a new chief executive")]
    assert set(history["data"]["items"][0]) == NEWS_FIELDS and "requestId" not in history
    # an item of the history published again (as a NEWS delivered late would be) is not sent again; a new one is
    item = history["data"]["items"][1]
    services.hub.publish(channels.MARKET, "NEWS", encode_data(item), offset=2)
    services.hub.publish(channels.MARKET, "NEWS", encode_data({**item, "id": 3}), offset=3)
    assert [news["id"] for news in await news_seen(late, 0.5)] == [3]


async def test_a_connection_before_any_news_is_sent_no_history(ws):
    client = await ws(MD)
    await client.send("REQUEST_SYMBOLS", request_id="r")
    assert (await client.recv())["type"] == "SYMBOL_LIST"


@pytest.mark.parametrize("config_overrides", [{"speed": 600.0}])
async def test_a_scripted_move_shows_in_the_one_minute_bars(ws, services):
    client = await ws(MD)

    async def closes(symbol, limit=30):
        await client.send("REQUEST_HISTORICAL", {"symbol": symbol, "interval": "1m", "limit": limit})
        bars = (await client.wait_for("HISTORICAL_DATA"))["data"]["bars"]
        return [(bar["time"], bar["close"]) for bar in bars]

    before = {symbol: (await closes(symbol))[-1][1] for symbol in ("NVTX", "PWRG")}
    start_ms = services.scenarios.start(text=STORY).run.started_at_ms
    while services.market.market_ms < start_ms + 12 * 60_000:  # the 10-minute move and two more minutes
        await asyncio.sleep(0.1)
    nvtx = await closes("NVTX")
    assert nvtx[-1][1] / before["NVTX"] == pytest.approx(0.80, abs=0.03)
    during = [close for time, close in nvtx if start_ms + 60_000 <= time < start_ms + 10 * 60_000]
    assert len(during) >= 8 and during[0] > during[len(during) // 2] > during[-1]  # a slide, not a jump
    assert (await closes("PWRG"))[-1][1] / before["PWRG"] == pytest.approx(1.0, abs=0.03)


def test_the_run_and_its_news_survive_a_restart_of_the_services(config):
    first = stockquest.build_services(config, rng=random.Random(1))
    first.scenarios.start(text=STORY)
    started_at = first.scenarios.current().run.started_at_ms
    first.storage.close()

    second = stockquest.build_services(config, rng=random.Random(2))
    try:
        current = second.scenarios.current()
        assert current.run is not None and current.run.scenario.name == "Novatex week"
        assert current.run.started_at_ms >= started_at
        assert [entry.happened for entry in current.run.preview()] == [True, False]
        last, history = second.scenarios.news_history()
        assert last == 1 and ujson.loads(history)["items"][0]["headline"] == "Novatex misses earnings"
        second.scenarios.skip()
        assert second.scenarios.news_history()[0] == 2
    finally:
        second.storage.close()
