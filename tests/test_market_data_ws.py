"""/ws/market-data over a real WebSocket: every message type of PROTOCOL.md's Market data section."""

import asyncio

import pytest

from domain.universe import DEFAULT_UNIVERSE

pytestmark = pytest.mark.gen_test(timeout=20)

MD = "/ws/market-data"
A, B, C = (spec.symbol for spec in DEFAULT_UNIVERSE[:3])
QUOTE_FIELDS = {"symbol", "name", "sector", "price", "bid", "ask", "bidSize", "askSize", "open", "high", "low",
                "previousClose", "change", "changePercent", "volume", "time", "marketTime"}


async def subscribe(client, symbols, request_id="sub", **extra):
    await client.send("SUBSCRIBE", {"symbols": symbols, "subscriptionType": "REAL_TIME", **extra},
                      request_id=request_id)
    confirmed = await client.expect("SUBSCRIPTION_CONFIRMED")
    initial = await client.expect("INITIAL_DATA")
    return confirmed, initial


async def test_subscribe_confirms_sends_initial_data_overview_then_live_updates(ws, services):
    client = await ws(MD)
    confirmed, initial = await subscribe(client, [A, B.lower(), "NOPE"], updateInterval=200)
    assert confirmed["requestId"] == initial["requestId"] == "sub"
    assert confirmed["data"] == {"action": "SUBSCRIBE", "symbols": [A, B], "rejected": [
        {"symbol": "NOPE", "reason": "UNKNOWN_SYMBOL"}], "active": sorted([A, B]),
        "subscriptionType": "REAL_TIME", "updateInterval": 200}
    quotes = initial["data"]["quotes"]
    assert [q["symbol"] for q in quotes] == [A, B]
    assert set(quotes[0]) == QUOTE_FIELDS
    assert quotes[0]["bid"] < quotes[0]["ask"]
    overview = await client.expect("MARKET_OVERVIEW")
    assert {"indices", "topGainers", "topLosers", "mostActive", "advancers", "decliners",
            "marketStatus"} <= set(overview["data"])
    assert len(overview["data"]["indices"]) == 3
    update = await client.wait_for("REAL_TIME_UPDATE", timeout=3)
    assert "requestId" not in update
    symbols = [q["symbol"] for q in update["data"]["quotes"]]
    assert symbols and set(symbols) <= {A, B} and len(symbols) == len(set(symbols))
    assert abs(update["data"]["quotes"][0]["time"] - services.clock.now_ms()) < 5_000


async def test_updates_arrive_at_the_requested_interval(ws):
    client = await ws(MD)
    await subscribe(client, [A], updateInterval=300)
    await client.expect("MARKET_OVERVIEW")
    loop = asyncio.get_running_loop()
    await client.wait_for("REAL_TIME_UPDATE")
    start = loop.time()
    for _ in range(3):
        await client.wait_for("REAL_TIME_UPDATE")
    per_update = (loop.time() - start) / 3
    assert 0.2 < per_update < 0.6


async def test_update_interval_below_minimum_is_raised_and_confirmation_says_so(ws):
    client = await ws(MD)
    confirmed, _ = await subscribe(client, [A], updateInterval=10)
    assert confirmed["data"]["updateInterval"] == 100
    assert "100" in confirmed["data"]["note"]


async def test_unsubscribe_some_then_all_stops_updates(ws):
    client = await ws(MD)
    await subscribe(client, [A, B], updateInterval=100)
    await client.send("UNSUBSCRIBE", {"symbols": [A]}, request_id="u1")
    reply = await client.wait_for("SUBSCRIPTION_CONFIRMED")
    assert reply["requestId"] == "u1"
    assert reply["data"] == {"action": "UNSUBSCRIBE", "symbols": [A], "active": [B]}
    await client.send("UNSUBSCRIBE", {})
    reply = await client.wait_for("SUBSCRIPTION_CONFIRMED")
    assert reply["data"] == {"action": "UNSUBSCRIBE", "symbols": [B], "active": []}
    await client.drain(0.3)  # a frame already in flight may still arrive
    count = len(client.received)
    await client.drain(0.6)
    later = [m["type"] for m in client.received[count:]]
    assert "REAL_TIME_UPDATE" not in later


async def test_request_quote_single_and_several_with_not_found(ws):
    client = await ws(MD)
    await client.send("REQUEST_QUOTE", {"symbol": A}, request_id="q1")
    reply = await client.expect("QUOTE_RESPONSE")
    assert reply["requestId"] == "q1" and [q["symbol"] for q in reply["data"]["quotes"]] == [A]
    await client.send("REQUEST_QUOTE", {"symbols": [B, "ZZZZ", C]})
    reply = await client.expect("QUOTE_RESPONSE")
    assert [q["symbol"] for q in reply["data"]["quotes"]] == [B, C]
    assert reply["data"]["notFound"] == ["ZZZZ"]


@pytest.mark.parametrize("message_type, data", [
    ("REQUEST_QUOTE", {"symbol": "ZZZZ"}),
    ("REQUEST_QUOTE", {"symbols": ["ZZZZ"]}),
    ("REQUEST_HISTORICAL", {"symbol": "ZZZZ", "interval": "1m"}),
    ("REQUEST_ANALYTICS", {"symbol": "ZZZZ"}),
])
async def test_request_naming_one_unknown_symbol_is_not_found(ws, message_type, data):
    client = await ws(MD)
    await client.send(message_type, data, request_id="nf")
    error = await client.expect("ERROR")
    assert error["data"]["code"] == "NOT_FOUND" and error["requestId"] == "nf"
    assert error["data"]["requestType"] == message_type


@pytest.mark.parametrize("data", [
    {},
    {"symbol": "   "},
])
async def test_request_quote_without_symbol_is_bad_request(ws, data):
    client = await ws(MD)
    await client.send("REQUEST_QUOTE", data)
    error = await client.expect("ERROR")
    assert error["data"]["code"] in ("BAD_REQUEST", "NOT_FOUND")


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "1d"])
async def test_historical_bars_are_oldest_first_within_limit(ws, interval):
    client = await ws(MD)
    await client.send("REQUEST_HISTORICAL", {"symbol": A, "interval": interval, "limit": 50})
    reply = await client.expect("HISTORICAL_DATA")
    data = reply["data"]
    assert data["symbol"] == A and data["interval"] == interval
    bars = data["bars"]
    assert 0 < len(bars) <= 50
    assert [b["time"] for b in bars] == sorted(b["time"] for b in bars)
    for bar in bars:
        assert set(bar) == {"time", "open", "high", "low", "close", "volume"}
        assert bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"]) <= bar["high"]


async def test_daily_history_reaches_back_about_a_year(ws):
    client = await ws(MD)
    await client.send("REQUEST_HISTORICAL", {"symbol": A, "interval": "1d", "limit": 1000})
    bars = (await client.expect("HISTORICAL_DATA"))["data"]["bars"]
    assert len(bars) >= 250


@pytest.mark.parametrize("data", [
    {"symbol": A, "interval": "2m"},
    {"symbol": A, "limit": 1001},
    {"symbol": A, "limit": 0},
])
async def test_historical_with_bad_values_is_bad_request(ws, data):
    client = await ws(MD)
    await client.send("REQUEST_HISTORICAL", data)
    assert (await client.expect("ERROR"))["data"]["code"] == "BAD_REQUEST"


async def test_analytics_has_every_indicator(ws):
    client = await ws(MD)
    await client.send("REQUEST_ANALYTICS", {"symbol": A})
    data = (await client.expect("ANALYTICS_DATA"))["data"]
    assert data["symbol"] == A
    for name in ("sma20", "sma50", "ema12", "ema26", "rsi14", "vwap", "volatility"):
        assert isinstance(data[name], (int, float)), name
    assert set(data["macd"]) == {"macd", "signal", "histogram"}
    assert set(data["bollinger"]) == {"upper", "middle", "lower"}
    assert data["bollinger"]["lower"] < data["bollinger"]["middle"] < data["bollinger"]["upper"]
    assert 0 <= data["rsi14"] <= 100


async def test_symbol_list_has_at_least_thirty_symbols_with_sectors(ws):
    client = await ws(MD)
    await client.send("REQUEST_SYMBOLS")
    symbols = (await client.expect("SYMBOL_LIST"))["data"]["symbols"]
    assert len(symbols) >= 30
    assert all(set(s) == {"symbol", "name", "sector"} for s in symbols)
    assert len({s["sector"] for s in symbols}) >= 5


@pytest.mark.parametrize("config_overrides", [{"overview_interval_s": 0.3}])
async def test_market_overview_is_pushed_periodically(ws):
    client = await ws(MD)
    first = await client.wait_for("MARKET_OVERVIEW", timeout=2)
    second = await client.wait_for("MARKET_OVERVIEW", timeout=2)
    assert second["seq"] > first["seq"]


async def test_paused_market_sends_status_and_no_updates_until_resumed(ws, services):
    client = await ws(MD)
    await subscribe(client, [A, B, C], updateInterval=100)
    await client.wait_for("REAL_TIME_UPDATE")
    services.market.pause()
    status = await client.wait_for("MARKET_STATUS")
    assert status["data"]["status"] == "PAUSED" and status["data"]["event"]["action"] == "PAUSE"
    await client.drain(0.3)
    mark = len(client.received)
    await client.drain(0.6)
    assert all(m["type"] != "REAL_TIME_UPDATE" for m in client.received[mark:])
    services.market.resume()
    assert (await client.wait_for("MARKET_STATUS"))["data"]["status"] == "OPEN"
    await client.wait_for("REAL_TIME_UPDATE", timeout=3)


@pytest.mark.parametrize("config_overrides", [{"tick_ms": 100}])
async def test_many_clients_share_serialized_frames(ws, services):
    clients = [await ws(MD) for _ in range(5)]
    for client in clients:
        await subscribe(client, [A, B], updateInterval=100)  # one tick: one phase, all five flushed together
    for client in clients:
        await client.wait_for("REAL_TIME_UPDATE")
    built_before = services.fanout.frames_built
    for client in clients:
        await client.wait_for("REAL_TIME_UPDATE")
    # five clients, same subscription, same last version: one frame per flush, not five
    assert services.fanout.frames_built - built_before <= 3
