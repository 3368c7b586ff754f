"""/ws/risk-monitoring over a real WebSocket: snapshots, limits, pre-trade rejection, alerts once per crossing."""

import pytest

pytestmark = pytest.mark.gen_test(timeout=30)

RISK, ORDERS = "/ws/risk-monitoring", "/ws/orders"
METRICS = {"var95", "var99", "cvar95", "volatility", "beta", "maxDrawdown", "currentDrawdown", "grossExposure",
           "netExposure", "leverage", "largestPositionWeight", "concentrationHHI", "sectorExposure", "dailyPnL"}
LIMITS = {"maxPositionWeight", "maxSectorWeight", "maxDailyLoss", "maxDrawdown", "maxVar95", "maxOrderValue"}


@pytest.fixture
def config_overrides():
    return {"risk_evaluate_ms": 200, "risk_update_ms": 300}


@pytest.fixture
def student(ws, make_user, services):
    async def open_student(username="alice", role="student"):
        user, token = make_user(username, role=role)
        risk = await ws(RISK, token=token)
        orders = await ws(ORDERS, token=token)
        await orders.expect("ACTIVE_ORDERS")
        return risk, orders, services.storage.portfolio_ids_of(str(user.id))[0]

    return open_student


async def buy(orders, pid, symbol="NVTX", quantity=10):
    await orders.send("SUBMIT_ORDER", {"portfolioId": pid, "symbol": symbol, "side": "BUY", "orderType": "MARKET",
                                       "quantity": quantity})
    return await orders.wait_for("ORDER_FILLED", timeout=10)


async def test_subscribe_gives_snapshot_then_periodic_updates(student):
    risk, _, pid = await student()
    await risk.send("SUBSCRIBE_RISK", {"portfolioId": pid}, request_id="s")
    confirmed = await risk.expect("SUBSCRIPTION_CONFIRMED")
    assert confirmed["requestId"] == "s" and confirmed["data"]["portfolioId"] == pid
    snapshot = (await risk.expect("RISK_SNAPSHOT"))["data"]
    assert set(snapshot) >= {"portfolioId", "metrics", "limits", "breaches", "alerts"}
    assert set(snapshot["metrics"]) >= METRICS and set(snapshot["limits"]) == LIMITS
    update = await risk.wait_for("RISK_UPDATE", timeout=3)
    assert update["data"]["portfolioId"] == pid and set(update["data"]["metrics"]) >= METRICS
    await risk.send("UNSUBSCRIBE_RISK", {"portfolioId": pid})
    assert (await risk.wait_for("SUBSCRIPTION_CONFIRMED"))["data"]["action"] == "UNSUBSCRIBE"


async def test_set_limits_is_stored_and_enforced_before_trading(student, services):
    risk, orders, pid = await student()
    await risk.send("SET_RISK_LIMITS", {"portfolioId": pid, "limits": {"maxOrderValue": 1000}}, request_id="l")
    updated = await risk.expect("RISK_LIMITS_UPDATED")
    assert updated["requestId"] == "l" and updated["data"]["limits"]["maxOrderValue"] == 1000.0
    assert services.storage.all_limits()[pid]["maxOrderValue"] == 1000.0
    await orders.send("SUBMIT_ORDER", {"portfolioId": pid, "symbol": "NVTX", "side": "BUY", "orderType": "MARKET",
                                       "quantity": 10})
    rejected = await orders.expect("ORDER_REJECTED")
    assert rejected["data"]["reason"] == "RISK_LIMIT"
    assert "maxOrderValue" in rejected["data"]["error"] and "by" in rejected["data"]["error"]


async def test_position_weight_limit_rejects_a_buy_that_would_cross_it(student):
    risk, orders, pid = await student()
    await risk.send("SET_RISK_LIMITS", {"portfolioId": pid, "limits": {"maxPositionWeight": 0.01}})
    await risk.expect("RISK_LIMITS_UPDATED")
    await orders.send("SUBMIT_ORDER", {"portfolioId": pid, "symbol": "NVTX", "side": "BUY", "orderType": "LIMIT",
                                       "limitPrice": 150, "quantity": 10})
    rejected = await orders.expect("ORDER_REJECTED")
    assert rejected["data"]["reason"] == "RISK_LIMIT" and "maxPositionWeight" in rejected["data"]["error"]


@pytest.mark.parametrize("limits", [
    {"maxPositionWeight": 2},
    {"maxPositionWeight": -0.1},
    {"maxDailyLoss": "lots"},
    {"noSuchLimit": 1},
    {"maxVar95": 0},
])
async def test_bad_limits_are_refused_and_change_nothing(student, services, limits):
    risk, _, pid = await student()
    await risk.send("SET_RISK_LIMITS", {"portfolioId": pid, "limits": limits})
    assert (await risk.expect("ERROR"))["data"]["code"] == "BAD_REQUEST"
    assert pid not in services.storage.all_limits()


async def test_crossing_a_limit_alerts_once_then_acknowledge(student, services):
    risk, orders, pid = await student()
    await buy(orders, pid, quantity=20)
    await risk.send("SUBSCRIBE_RISK", {"portfolioId": pid})
    await risk.expect("SUBSCRIPTION_CONFIRMED")
    await risk.expect("RISK_SNAPSHOT")
    await risk.send("SET_RISK_LIMITS", {"portfolioId": pid, "limits": {"maxPositionWeight": 0.01}})
    alert = await risk.wait_for("RISK_ALERT", timeout=3)
    assert alert["data"]["rule"] == "maxPositionWeight" and alert["data"]["severity"] == "CRITICAL"
    assert alert["data"]["portfolioId"] == pid and alert["data"]["threshold"] == 0.01
    await risk.drain(1.0)  # five more evaluations while the limit stays crossed
    alerts = [m for m in risk.received if m["type"] == "RISK_ALERT" and m["data"]["rule"] == "maxPositionWeight"]
    assert len(alerts) == 1
    await risk.send("ACKNOWLEDGE_ALERT", {"alertId": alert["data"]["alertId"]}, request_id="ack")
    acknowledged = await risk.wait_for("ALERT_ACKNOWLEDGED")
    assert acknowledged["requestId"] == "ack" and acknowledged["data"] == {"alertId": alert["data"]["alertId"]}
    await risk.send("REQUEST_RISK_SNAPSHOT", {"portfolioId": pid})
    snapshot = (await risk.wait_for("RISK_SNAPSHOT"))["data"]
    listed = {a["alertId"]: a for a in snapshot["alerts"]}
    assert listed[alert["data"]["alertId"]]["acknowledged"] is True


async def test_market_drop_raises_exactly_one_critical_alert_per_crossed_limit(student, services):
    risk, orders, pid = await student()
    await buy(orders, pid, quantity=100)
    await risk.send("SET_RISK_LIMITS", {"portfolioId": pid, "limits": {
        "maxDailyLoss": 500, "maxDrawdown": 0.01, "maxPositionWeight": 1, "maxSectorWeight": 1, "maxVar95": None}})
    await risk.expect("RISK_LIMITS_UPDATED")
    await risk.send("SUBSCRIBE_RISK", {"portfolioId": pid})
    await risk.expect("SUBSCRIPTION_CONFIRMED")
    await risk.expect("RISK_SNAPSHOT")
    services.risk.on_values(services.portfolios.record_values())  # what the 10 s value timer does
    services.market.shock(-30, symbols=["NVTX"])
    await risk.wait_for("RISK_ALERT", timeout=3)
    await risk.drain(1.5)
    critical = [m["data"]["rule"] for m in risk.received
                if m["type"] == "RISK_ALERT" and m["data"]["severity"] == "CRITICAL"]
    assert sorted(critical) == ["maxDailyLoss", "maxDrawdown"]


async def test_stop_loss_trigger_raises_an_info_alert(student, ws, make_user, services):
    risk, orders, pid = await student()
    await buy(orders, pid, quantity=5)
    await risk.send("SUBSCRIBE_RISK", {"portfolioId": pid})
    await risk.expect("SUBSCRIPTION_CONFIRMED")
    price = services.market.quote("NVTX").price
    user = services.storage.user_by_id(int(services.book.ledger(pid).owner_id))
    services.trading.set_position_levels(user, pid, "NVTX", stop_loss_cents=price * 9 // 10)
    services.market.shock(-20, symbols=["NVTX"])
    alert = await risk.wait_for("RISK_ALERT", timeout=5)
    while alert["data"]["severity"] != "INFO":
        alert = await risk.wait_for("RISK_ALERT", timeout=5)
    assert alert["data"]["rule"] == "STOP_LOSS" and alert["data"]["symbol"] == "NVTX"


async def test_teacher_watches_the_class_and_students_may_not(student, ws, make_user):
    risk, _, _ = await student("stu")
    await risk.send("SUBSCRIBE_RISK", {"scope": "ALL"})
    assert (await risk.expect("ERROR"))["data"]["code"] == "FORBIDDEN"
    teacher, _, _ = await student("tea", role="teacher")
    await teacher.send("SUBSCRIBE_RISK", {"scope": "all"})
    assert (await teacher.expect("SUBSCRIPTION_CONFIRMED"))["data"] == {"action": "SUBSCRIBE", "scope": "ALL"}
    ranking = (await teacher.expect("RISK_RANKING"))["data"]
    assert "entries" in ranking and "timestamp" in ranking
    await teacher.wait_for("RISK_RANKING", timeout=3)


async def test_someone_elses_portfolio_is_forbidden(student):
    _, _, alice_pid = await student("alice")
    mallory, _, _ = await student("mallory")
    for message_type, data in [("SUBSCRIBE_RISK", {"portfolioId": alice_pid}),
                               ("REQUEST_RISK_SNAPSHOT", {"portfolioId": alice_pid}),
                               ("SET_RISK_LIMITS", {"portfolioId": alice_pid, "limits": {"maxOrderValue": 1}})]:
        await mallory.send(message_type, data)
        assert (await mallory.expect("ERROR"))["data"]["code"] == "FORBIDDEN", message_type


@pytest.mark.parametrize("message_type, data, code", [
    ("SUBSCRIBE_RISK", {}, "BAD_REQUEST"),
    ("SUBSCRIBE_RISK", {"scope": "SOME"}, "BAD_REQUEST"),
    ("SET_RISK_LIMITS", {"portfolioId": "1", "limits": [1]}, "INVALID_MESSAGE"),
    ("ACKNOWLEDGE_ALERT", {"alertId": "A999"}, "FORBIDDEN"),  # to a student, an unknown id is not theirs
    ("REQUEST_RISK_SNAPSHOT", {"portfolioId": "404"}, "FORBIDDEN"),
])
async def test_bad_risk_requests_get_errors_and_the_connection_stays(student, message_type, data, code):
    risk, _, _ = await student()
    await risk.send(message_type, data)
    assert (await risk.expect("ERROR"))["data"]["code"] == code
    await risk.send("HEARTBEAT", request_id="ok")
    assert (await risk.expect("HEARTBEAT"))["requestId"] == "ok"


async def test_a_teacher_reads_a_students_risk_but_neither_sets_its_limits_nor_acknowledges_its_alerts(student,
                                                                                                       services):
    risk, orders, pid = await student("stu")
    await buy(orders, pid, quantity=20)
    await risk.send("SET_RISK_LIMITS", {"portfolioId": pid, "limits": {"maxPositionWeight": 0.01}})
    await risk.expect("RISK_LIMITS_UPDATED")
    await risk.send("SUBSCRIBE_RISK", {"portfolioId": pid})
    alert = await risk.wait_for("RISK_ALERT", timeout=3)

    limits = services.risk.limits.limits_for(pid)
    teacher, _, _ = await student("tea", role="teacher")
    await teacher.send("REQUEST_RISK_SNAPSHOT", {"portfolioId": pid})
    assert (await teacher.expect("RISK_SNAPSHOT"))["data"]["portfolioId"] == pid
    for message_type, data in [("SET_RISK_LIMITS", {"portfolioId": pid, "limits": {"maxOrderValue": 0.01}}),
                               ("ACKNOWLEDGE_ALERT", {"alertId": alert["data"]["alertId"]})]:
        await teacher.send(message_type, data, request_id="t")
        error = await teacher.expect("ERROR")
        assert (error["data"]["code"], error["requestId"]) == ("FORBIDDEN", "t")
    assert services.risk.limits.limits_for(pid) == limits
    await risk.send("REQUEST_RISK_SNAPSHOT", {"portfolioId": pid})
    snapshot = (await risk.wait_for("RISK_SNAPSHOT"))["data"]
    assert {a["alertId"]: a["acknowledged"] for a in snapshot["alerts"]}[alert["data"]["alertId"]] is False
