"""/ws/ml-signals over a real WebSocket: signals, pushes, measured performance, optimisation, access."""

import pytest
import ujson

pytestmark = pytest.mark.gen_test(timeout=30)

SIGNALS = "/ws/ml-signals"
SIGNAL_FIELDS = {"symbol", "model", "signal", "score", "confidence", "horizon", "features", "generatedAt"}
MODELS = ["momentum", "meanReversion", "trend", "online", "ensemble"]


async def test_request_signal_gives_every_model_for_the_symbol(ws):
    client = await ws(SIGNALS)
    await client.send("REQUEST_SIGNAL", {"symbol": "nvtx"}, request_id="r")
    reply = await client.expect("SIGNAL_UPDATE")
    assert reply["requestId"] == "r"
    signals = reply["data"]["signals"]
    assert [s["model"] for s in signals] == MODELS
    for signal in signals:
        assert set(signal) >= SIGNAL_FIELDS and signal["symbol"] == "NVTX"
        assert signal["signal"] in ("BUY", "SELL", "HOLD")
        assert -1 <= signal["score"] <= 1 and 0 <= signal["confidence"] <= 1


async def test_subscribe_confirms_then_sends_signals_of_the_chosen_models(ws):
    client = await ws(SIGNALS)
    await client.send("SUBSCRIBE_SIGNALS", {"symbols": ["NVTX", "QBIT", "NOPE"], "models": ["trend", "online"]},
                      request_id="s")
    confirmed = await client.expect("SUBSCRIPTION_CONFIRMED")
    assert confirmed["data"]["symbols"] == ["NVTX", "QBIT"] and confirmed["data"]["models"] == ["trend", "online"]
    assert confirmed["data"]["rejected"] == [{"symbol": "NOPE", "reason": "UNKNOWN_SYMBOL"}]
    update = await client.expect("SIGNAL_UPDATE")
    assert update["requestId"] == "s"
    assert {(s["symbol"], s["model"]) for s in update["data"]["signals"]} == {
        ("NVTX", "trend"), ("NVTX", "online"), ("QBIT", "trend"), ("QBIT", "online")}
    await client.send("UNSUBSCRIBE_SIGNALS", {"symbols": ["QBIT"]})
    assert (await client.expect("SUBSCRIPTION_CONFIRMED"))["data"] == {
        "action": "UNSUBSCRIBE", "symbols": ["QBIT"], "active": ["NVTX"]}


@pytest.mark.parametrize("config_overrides", [{"speed": 600.0}])
async def test_signals_are_pushed_as_bars_close_and_performance_is_measured(ws, services):
    client = await ws(SIGNALS)
    await client.send("SUBSCRIBE_SIGNALS", {"symbols": ["NVTX"]})
    await client.expect("SUBSCRIPTION_CONFIRMED")
    await client.expect("SIGNAL_UPDATE")
    pushed = await client.wait_for("SIGNAL_UPDATE", timeout=10)  # a simulated minute passes every 0.1 s
    assert "requestId" not in pushed and pushed["data"]["signals"]
    await client.drain(2.0)
    await client.send("REQUEST_MODEL_PERFORMANCE", {}, request_id="p")
    performance = (await client.wait_for("MODEL_PERFORMANCE"))["data"]["models"]
    assert [m["model"] for m in performance] == MODELS
    for record in performance:
        assert set(record) >= {"model", "predictions", "hitRate", "averageReturn", "since"}
    assert sum(m["predictions"] for m in performance) > 0  # live calls whose horizon passed were scored
    await client.send("REQUEST_MODEL_PERFORMANCE", {"model": "online"})
    assert [m["model"] for m in (await client.wait_for("MODEL_PERFORMANCE"))["data"]["models"]] == ["online"]


async def test_optimisation_over_symbols_weights_sum_to_one(ws):
    client = await ws(SIGNALS)
    await client.send("REQUEST_OPTIMIZATION", {"symbols": ["NVTX", "QBIT", "MEDX"], "objective": "MIN_VARIANCE",
                                               "constraints": {"maxWeight": 0.6}}, request_id="o")
    result = (await client.expect("OPTIMIZATION_RESULT"))["data"]
    assert set(result) >= {"objective", "weights", "expectedReturn", "expectedVolatility", "sharpeRatio",
                           "rebalance"}
    assert abs(sum(result["weights"].values()) - 1) < 1e-9 and max(result["weights"].values()) <= 0.6 + 1e-9
    assert result["rebalance"] == []


async def test_optimising_a_portfolio_gives_rebalance_orders_and_needs_its_owner(ws, make_user, services):
    user, token = make_user()
    pid = services.storage.portfolio_ids_of(str(user.id))[0]
    anonymous = await ws(SIGNALS)
    await anonymous.send("REQUEST_OPTIMIZATION", {"portfolioId": pid, "symbols": ["NVTX", "QBIT"],
                                                  "objective": "RISK_PARITY"})
    assert (await anonymous.expect("ERROR"))["data"]["code"] == "UNAUTHORIZED"
    owner = await ws(SIGNALS, token=token)
    await owner.send("REQUEST_OPTIMIZATION", {"portfolioId": pid, "symbols": ["NVTX", "QBIT"],
                                              "objective": "RISK_PARITY"})
    result = (await owner.expect("OPTIMIZATION_RESULT"))["data"]
    assert result["portfolioId"] == pid
    assert {o["symbol"] for o in result["rebalance"]} == {"NVTX", "QBIT"}
    assert all(o["side"] == "BUY" and o["quantity"] > 0 for o in result["rebalance"])
    _, other = make_user("mallory")
    intruder = await ws(SIGNALS, token=other)
    await intruder.send("REQUEST_OPTIMIZATION", {"portfolioId": pid, "symbols": ["NVTX", "QBIT"],
                                                 "objective": "MAX_SHARPE"})
    assert (await intruder.expect("ERROR"))["data"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("message_type, data, code", [
    ("REQUEST_SIGNAL", {"symbol": "ZZZZ"}, "NOT_FOUND"),
    ("REQUEST_SIGNAL", {"symbol": "NVTX", "models": ["astrology"]}, "BAD_REQUEST"),
    ("REQUEST_OPTIMIZATION", {"symbols": ["NVTX"], "objective": "MIN_VARIANCE"}, "BAD_REQUEST"),
    ("REQUEST_OPTIMIZATION", {"symbols": ["NVTX", "ZZZZ"], "objective": "MIN_VARIANCE"}, "BAD_REQUEST"),
    ("REQUEST_OPTIMIZATION", {"symbols": ["NVTX", "QBIT"], "objective": "MIN_VARIANCE",
                              "constraints": {"maxWeight": 0.3}}, "BAD_REQUEST"),
    ("REQUEST_OPTIMIZATION", {"symbols": ["NVTX", "QBIT"], "objective": "GET_RICH"}, "BAD_REQUEST"),
    ("REQUEST_OPTIMIZATION", {"symbols": ["NVTX", "QBIT"], "objective": "MIN_VARIANCE", "constraints": [1]},
     "INVALID_MESSAGE"),
    ("SUBSCRIBE_SIGNALS", {"symbols": 7}, "INVALID_MESSAGE"),
])
async def test_bad_signal_requests_get_clear_errors_and_the_connection_stays(ws, message_type, data, code):
    client = await ws(SIGNALS)
    await client.send(message_type, data)
    error = await client.expect("ERROR")
    assert error["data"]["code"] == code and error["data"]["error"]
    await client.send("HEARTBEAT", request_id="ok")
    assert (await client.expect("HEARTBEAT"))["requestId"] == "ok"


async def test_healthz_counts_the_symbols_still_warming_up_until_every_model_has_learnt(http_client, base_url,
                                                                                        services):
    async def warming() -> int:
        return ujson.loads((await http_client.fetch(base_url + "/healthz")).body)["signalsWarmingUp"]

    symbols = len(services.market.specs())
    assert 0 < await warming() <= symbols
    while services.signals.warm_next():
        pass
    assert await warming() == 0
