"""/ws/portfolio over a real WebSocket: list, snapshots, pushes on fills, positions, levels, analytics, access."""

import pytest

pytestmark = pytest.mark.gen_test(timeout=30)

PORTFOLIO, ORDERS = "/ws/portfolio", "/ws/orders"
PORTFOLIO_FIELDS = {"portfolioId", "name", "ownerId", "cash", "reservedCash", "buyingPower", "positionsValue",
                    "totalValue", "totalCost", "unrealizedPnL", "realizedPnL", "totalReturn", "totalReturnPercent",
                    "dayChange", "diversificationScore", "positions"}
POSITION_FIELDS = {"symbol", "quantity", "averageCost", "costBasis", "marketPrice", "marketValue", "unrealizedPnL",
                   "unrealizedPnLPercent", "realizedPnL", "weight", "dayChange", "stopLoss", "takeProfit"}


@pytest.fixture
def account(ws, make_user, services):
    """A user with a portfolio connection (PORTFOLIO_LIST read) and an orders connection."""

    async def open_account(username="alice", role="student"):
        user, token = make_user(username, role=role)
        portfolio = await ws(PORTFOLIO, token=token)
        listing = await portfolio.expect("PORTFOLIO_LIST")
        orders = await ws(ORDERS, token=token)
        await orders.expect("ACTIVE_ORDERS")
        return portfolio, orders, listing["data"]["portfolios"], user

    return open_account


async def buy(orders, portfolio_id, symbol="NVTX", quantity=10):
    await orders.send("SUBMIT_ORDER", {"portfolioId": portfolio_id, "symbol": symbol, "side": "BUY",
                                       "orderType": "MARKET", "quantity": quantity})
    return await orders.wait_for("ORDER_FILLED", timeout=10)


async def test_portfolio_list_on_open_shows_the_starting_cash(account):
    _, _, portfolios, user = await account()
    assert len(portfolios) == 1
    assert portfolios[0]["cash"] == 100000.0 and portfolios[0]["totalValue"] == 100000.0
    assert portfolios[0]["ownerId"] == str(user.id) and "positions" not in portfolios[0]


async def test_subscribe_sends_snapshot_then_a_fill_pushes_values_and_positions_at_once(account):
    portfolio, orders, portfolios, _ = await account()
    pid = portfolios[0]["portfolioId"]
    await portfolio.send("SUBSCRIBE_PORTFOLIO", {"portfolioId": pid, "updateType": "ALL", "updateInterval": 60_000},
                         request_id="s")
    confirmed = await portfolio.expect("SUBSCRIPTION_CONFIRMED")
    assert confirmed["requestId"] == "s"
    assert confirmed["data"] == {"action": "SUBSCRIBE", "portfolioId": pid, "updateType": "ALL",
                                 "updateInterval": 60_000}
    snapshot = (await portfolio.expect("PORTFOLIO_SNAPSHOT"))["data"]["portfolio"]
    assert set(snapshot) >= PORTFOLIO_FIELDS and snapshot["positions"] == []
    mark = len(portfolio.received)
    filled = await buy(orders, pid)
    await portfolio.drain(0.5)
    pushed = {m["type"]: m for m in portfolio.received[mark:]}
    # values are due only every 60 s: a PORTFOLIO_UPDATE now can only be the fill's own push
    update, position_update = pushed["PORTFOLIO_UPDATE"], pushed["POSITION_UPDATE"]
    (position,) = position_update["data"]["positions"]
    assert set(position) >= POSITION_FIELDS
    assert position["symbol"] == "NVTX" and position["quantity"] == 10
    assert position["averageCost"] == filled["data"]["order"]["averageFillPrice"]
    cost = round(10 * filled["data"]["order"]["averageFillPrice"], 2)
    assert update["data"]["cash"] == round(100000.0 - cost, 2)
    assert update["data"]["totalCost"] == cost and "positions" not in update["data"]


async def test_value_updates_arrive_on_their_own_schedule(account):
    portfolio, _, portfolios, _ = await account()
    pid = portfolios[0]["portfolioId"]
    await portfolio.send("SUBSCRIBE_PORTFOLIO", {"portfolioId": pid, "updateType": "VALUE", "updateInterval": 600})
    assert (await portfolio.expect("SUBSCRIPTION_CONFIRMED"))["data"]["updateInterval"] == 600
    await portfolio.expect("PORTFOLIO_SNAPSHOT")
    first = await portfolio.wait_for("PORTFOLIO_UPDATE", timeout=3)
    second = await portfolio.wait_for("PORTFOLIO_UPDATE", timeout=3)
    assert second["seq"] > first["seq"]
    assert all(m["type"] != "POSITION_UPDATE" for m in portfolio.received)
    await portfolio.send("UNSUBSCRIBE_PORTFOLIO", {"portfolioId": pid})
    assert (await portfolio.wait_for("SUBSCRIPTION_CONFIRMED"))["data"] == {"action": "UNSUBSCRIBE",
                                                                           "portfolioId": pid}


async def test_position_details_list_the_trades(account):
    portfolio, orders, portfolios, _ = await account()
    pid = portfolios[0]["portfolioId"]
    filled = await buy(orders, pid, quantity=4)
    await portfolio.send("REQUEST_POSITION_DETAILS", {"portfolioId": pid, "symbol": "nvtx"}, request_id="d")
    details = await portfolio.expect("POSITION_DETAILS")
    assert details["requestId"] == "d"
    assert details["data"]["position"]["quantity"] == 4
    trades = details["data"]["trades"]
    assert sum(t["quantity"] for t in trades) == 4
    assert {t["orderId"] for t in trades} == {filled["data"]["order"]["orderId"]}


async def test_stop_loss_and_take_profit_are_set_kept_and_cleared(account, services):
    portfolio, orders, portfolios, _ = await account()
    pid = portfolios[0]["portfolioId"]
    await buy(orders, pid, quantity=3)
    price = services.market.quote("NVTX").price / 100
    await portfolio.send("UPDATE_POSITION", {"portfolioId": pid, "symbol": "NVTX", "stopLoss": round(price * 0.5, 2),
                                             "takeProfit": round(price * 2, 2)}, request_id="u")
    update = await portfolio.expect("POSITION_UPDATE")
    assert update["requestId"] == "u"
    (position,) = update["data"]["positions"]
    assert position["stopLoss"] == round(price * 0.5, 2) and position["takeProfit"] == round(price * 2, 2)
    await portfolio.send("UPDATE_POSITION", {"portfolioId": pid, "symbol": "NVTX", "takeProfit": None})
    (position,) = (await portfolio.expect("POSITION_UPDATE"))["data"]["positions"]
    assert position["stopLoss"] == round(price * 0.5, 2) and position["takeProfit"] is None


async def test_stop_loss_reached_places_a_market_sell(account, services):
    portfolio, orders, portfolios, _ = await account()
    pid = portfolios[0]["portfolioId"]
    await buy(orders, pid, quantity=5)
    await orders.send("SUBSCRIBE_ORDERS", {})
    await orders.wait_for("SUBSCRIPTION_CONFIRMED")
    price = services.market.quote("NVTX").price / 100
    await portfolio.send("UPDATE_POSITION", {"portfolioId": pid, "symbol": "NVTX", "stopLoss": round(price * 0.9, 2)})
    await portfolio.expect("POSITION_UPDATE")
    services.market.shock(-20, symbols=["NVTX"])
    sell = await orders.wait_for("ORDER_SUBMITTED", timeout=5)
    assert sell["data"]["order"]["side"] == "SELL" and sell["data"]["order"]["orderType"] == "MARKET"
    assert sell["data"]["order"]["quantity"] == 5
    await orders.wait_for("ORDER_FILLED", timeout=10)


async def test_analytics_have_every_field(account, services):
    portfolio, orders, portfolios, _ = await account()
    pid = portfolios[0]["portfolioId"]
    await buy(orders, pid, quantity=2)
    for _ in range(3):
        services.portfolios.record_values()
    await portfolio.send("REQUEST_PORTFOLIO_ANALYTICS", {"portfolioId": pid})
    data = (await portfolio.expect("PORTFOLIO_ANALYTICS"))["data"]
    assert set(data) >= {"portfolioId", "totalCost", "unrealizedPnL", "realizedPnL", "diversificationScore",
                         "sectorAllocation", "returns", "volatility", "sharpeRatio", "maxDrawdown", "beta", "winRate"}
    assert set(data["returns"]) == {"day", "total"} and data["portfolioId"] == pid


async def test_someone_elses_portfolio_is_forbidden_without_data(account):
    _, _, alice_portfolios, _ = await account("alice")
    mallory, _, _, _ = await account("mallory")
    alice_pid = alice_portfolios[0]["portfolioId"]
    for message_type, data in [
        ("SUBSCRIBE_PORTFOLIO", {"portfolioId": alice_pid}),
        ("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": alice_pid}),
        ("REQUEST_POSITION_DETAILS", {"portfolioId": alice_pid, "symbol": "NVTX"}),
        ("UPDATE_POSITION", {"portfolioId": alice_pid, "symbol": "NVTX", "stopLoss": 1}),
        ("REQUEST_PORTFOLIO_ANALYTICS", {"portfolioId": alice_pid}),
    ]:
        await mallory.send(message_type, data)
        error = await mallory.expect("ERROR")
        assert error["data"]["code"] == "FORBIDDEN", (message_type, error)
        assert "100000" not in error["data"]["error"]


async def test_teacher_reads_a_students_portfolio_but_cannot_change_it(account):
    _, _, student_portfolios, _ = await account("stu")
    teacher, _, _, _ = await account("tea", role="teacher")
    pid = student_portfolios[0]["portfolioId"]
    await teacher.send("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": pid})
    assert (await teacher.expect("PORTFOLIO_SNAPSHOT"))["data"]["portfolio"]["portfolioId"] == pid
    await teacher.send("UPDATE_POSITION", {"portfolioId": pid, "symbol": "NVTX", "stopLoss": 1})
    assert (await teacher.expect("ERROR"))["data"]["code"] == "FORBIDDEN"


async def test_another_portfolio_can_be_created_up_to_the_limit(account):
    portfolio, _, _, _ = await account()
    for n in range(4):
        await portfolio.send("CREATE_PORTFOLIO", {"name": f"Fund {n}"})
        created = (await portfolio.expect("PORTFOLIO_CREATED"))["data"]["portfolio"]
        assert created["name"] == f"Fund {n}" and created["cash"] == 100000.0
    await portfolio.send("CREATE_PORTFOLIO", {"name": "One too many"})
    assert (await portfolio.expect("ERROR"))["data"]["code"] == "LIMIT_EXCEEDED"


@pytest.mark.parametrize("message_type, data, code", [
    ("SUBSCRIBE_PORTFOLIO", {"portfolioId": "404"}, "FORBIDDEN"),  # to a student, an unknown id is not theirs
    ("SUBSCRIBE_PORTFOLIO", {"portfolioId": "1", "updateType": "EVERYTHING"}, "BAD_REQUEST"),
    ("SUBSCRIBE_PORTFOLIO", {"portfolioId": ["1"]}, "INVALID_MESSAGE"),
    ("REQUEST_POSITION_DETAILS", {"portfolioId": "1", "symbol": "ZZZZ"}, "NOT_FOUND"),
    ("UPDATE_POSITION", {"portfolioId": "1", "symbol": "NVTX", "stopLoss": 10}, "BAD_REQUEST"),
    ("UPDATE_POSITION", {"portfolioId": "1", "symbol": "NVTX", "stopLoss": "1e999"}, "BAD_REQUEST"),
    ("CREATE_PORTFOLIO", {"name": ""}, "BAD_REQUEST"),
])
async def test_bad_portfolio_requests_get_errors_and_the_connection_stays(account, message_type, data, code):
    portfolio, _, _, _ = await account()
    await portfolio.send(message_type, data)
    assert (await portfolio.expect("ERROR"))["data"]["code"] == code
    await portfolio.send("HEARTBEAT", request_id="ok")
    assert (await portfolio.expect("HEARTBEAT"))["requestId"] == "ok"


async def test_a_demoted_teacher_stops_hearing_students_data_at_once_but_keeps_their_own(account, ws, make_user,
                                                                                          services):
    _, _, (students,), _ = await account("sam")
    teacher_view, _, (own,), _ = await account("tom", role="teacher")
    for portfolio_id in (students["portfolioId"], own["portfolioId"]):
        await teacher_view.send("SUBSCRIBE_PORTFOLIO", {"portfolioId": portfolio_id, "updateInterval": 500})
        await teacher_view.wait_for("PORTFOLIO_SNAPSHOT")
    risk = await ws("/ws/risk-monitoring", token=services.users.token_for(services.users.by_name("tom")))
    await risk.send("SUBSCRIBE_RISK", {"scope": "ALL"})
    await risk.wait_for("RISK_RANKING")

    services.storage.set_role("tom", "student")
    for client in (teacher_view, risk):
        error = await client.wait_for("ERROR", timeout=5)
        assert error["data"]["code"] == "FORBIDDEN" and "role changed" in error["data"]["error"]
    teacher_view.received.clear()
    await teacher_view.drain(1.5)
    heard = {m["data"]["portfolioId"] for m in teacher_view.received if m["type"] == "PORTFOLIO_UPDATE"}
    assert heard == {own["portfolioId"]}
    assert [conn for conn in services.hub.connections("risk-monitoring") if services.hub.subscriptions(conn)] == []
