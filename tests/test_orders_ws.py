"""/ws/orders over a real WebSocket: submit, fills from the simulated market, cancel, modify, history, replay."""

import asyncio

import pytest

pytestmark = pytest.mark.gen_test(timeout=30)

ORDERS = "/ws/orders"


@pytest.fixture
def trader(ws, make_user, services):
    """A signed-in user with an orders connection: returns (client, user, portfolio_id)."""

    async def connect(username="alice", role="student"):
        user, token = make_user(username, role=role)
        client = await ws(ORDERS, token=token)
        active = await client.expect("ACTIVE_ORDERS")
        assert active["data"] == {"orders": []}
        portfolio_id = services.storage.portfolio_ids_of(str(user.id))[0]
        return client, user, portfolio_id, token

    return connect


def order_message(portfolio_id, symbol="NVTX", side="BUY", order_type="MARKET", quantity=10, **extra):
    return {"portfolioId": portfolio_id, "symbol": symbol, "side": side, "orderType": order_type,
            "quantity": quantity, **extra}


async def test_market_buy_fills_and_reports_execution_then_filled(trader, services):
    client, user, portfolio_id, _ = await trader()
    quote = services.market.quote("NVTX")
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, quantity=5, clientOrderId="c1"), request_id="s1")
    submitted = await client.expect("ORDER_SUBMITTED")
    assert submitted["requestId"] == "s1"
    order = submitted["data"]["order"]
    assert order["status"] in ("NEW", "PARTIALLY_FILLED", "FILLED") and order["clientOrderId"] == "c1"
    assert order["userId"] == str(user.id) and order["portfolioId"] == portfolio_id
    assert submitted["data"]["eventId"] == 1
    report = await client.wait_for("EXECUTION_REPORT")
    assert "requestId" not in report
    fill = report["data"]
    assert fill["orderId"] == order["orderId"] and fill["fillQuantity"] >= 1
    assert abs(fill["fillPrice"] - quote.ask / 100) < quote.ask / 100 * 0.05
    done = await client.wait_for("ORDER_FILLED", timeout=10)
    assert done["data"]["order"]["filledQuantity"] == 5
    assert done["data"]["eventId"] > fill["eventId"] > 1


@pytest.mark.parametrize("data, reason", [
    ({"symbol": "ZZZZ"}, "UNKNOWN_SYMBOL"),
    ({"quantity": 0}, "INVALID_QUANTITY"),
    ({"quantity": 1.5}, "INVALID_QUANTITY"),
    ({"orderType": "LIMIT"}, "INVALID_PRICE"),
    ({"orderType": "LIMIT", "limitPrice": 10.001}, "INVALID_PRICE"),
    ({"orderType": "LIMIT", "limitPrice": -5}, "INVALID_PRICE"),
    ({"quantity": 1_000_000}, "INSUFFICIENT_FUNDS"),
    ({"side": "SELL"}, "INSUFFICIENT_SHARES"),
])
async def test_rejected_order_is_recorded_with_its_reason(trader, data, reason):
    client, _, portfolio_id, _ = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, **data), request_id="r")
    rejected = await client.expect("ORDER_REJECTED")
    assert rejected["requestId"] == "r"
    assert rejected["data"]["reason"] == reason and rejected["data"]["error"]
    assert rejected["data"]["order"]["status"] == "REJECTED"
    assert rejected["data"]["order"]["rejectReason"] == reason
    assert rejected["data"]["eventId"] == 1


async def test_paused_market_rests_limit_and_rejects_ioc(trader, services):
    client, _, portfolio_id, _ = await trader()
    services.market.pause()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, timeInForce="IOC"))
    assert (await client.expect("ORDER_REJECTED"))["data"]["reason"] == "MARKET_CLOSED"
    await client.send("SUBMIT_ORDER", order_message(portfolio_id))
    resting = await client.expect("ORDER_SUBMITTED")
    await client.drain(0.5)
    assert all(m["type"] != "EXECUTION_REPORT" for m in client.received)
    services.market.resume()
    try:
        filled = await client.wait_for("ORDER_FILLED", timeout=5)
    except asyncio.TimeoutError:
        raise AssertionError([(m["type"], m["data"]) for m in client.received[-5:]]
                             + [services.book.ledger(portfolio_id)]) from None
    assert filled["data"]["order"]["orderId"] == resting["data"]["order"]["orderId"]


async def test_duplicate_client_order_id_returns_original_or_rejects_different(trader):
    client, _, portfolio_id, _ = await trader()
    far = order_message(portfolio_id, orderType="LIMIT", limitPrice=1.00, quantity=3, clientOrderId="dup")
    await client.send("SUBMIT_ORDER", far, request_id="a")
    first = await client.expect("ORDER_SUBMITTED")
    await client.send("SUBMIT_ORDER", far, request_id="b")
    again = await client.expect("ORDER_SUBMITTED")
    assert again["requestId"] == "b"
    assert again["data"] == first["data"]  # the original order and its original eventId
    await client.send("SUBMIT_ORDER", {**far, "quantity": 4}, request_id="c")
    different = await client.expect("ORDER_REJECTED")
    assert different["data"]["reason"] == "DUPLICATE_CLIENT_ORDER_ID"
    assert different["data"]["order"]["clientOrderId"] is None and "dup" in different["data"]["error"]
    assert different["data"]["eventId"] == first["data"]["eventId"] + 1


async def test_far_limit_order_is_modified_then_cancelled(trader):
    client, _, portfolio_id, _ = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=1.00,
                                                    timeInForce="GTC"))
    order_id = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    await client.send("MODIFY_ORDER", {"orderId": order_id, "quantity": 20, "limitPrice": 2.5}, request_id="m")
    modified = await client.expect("ORDER_MODIFIED")
    assert modified["requestId"] == "m"
    assert modified["data"]["order"]["quantity"] == 20 and modified["data"]["order"]["limitPrice"] == 2.5
    await client.send("CANCEL_ORDER", {"orderId": order_id}, request_id="x")
    cancelled = await client.expect("ORDER_CANCELLED")
    assert cancelled["requestId"] == "x" and cancelled["data"]["order"]["status"] == "CANCELLED"
    await client.send("CANCEL_ORDER", {"orderId": order_id})
    error = await client.expect("ERROR")
    assert error["data"]["code"] == "BAD_REQUEST" and "no longer open" in error["data"]["error"]
    await client.send("REQUEST_ORDER_STATUS", {"orderId": order_id})
    assert (await client.expect("ORDER_STATUS"))["data"]["order"]["status"] == "CANCELLED"


async def test_someone_elses_portfolio_and_orders_are_forbidden_and_create_nothing(trader, services):
    alice, _, alice_portfolio, _ = await trader("alice")
    await alice.send("SUBMIT_ORDER", order_message(alice_portfolio, orderType="LIMIT", limitPrice=1.0))
    alice_order = (await alice.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    mallory, mallory_user, _, _ = await trader("mallory")
    for message_type, data in [
        ("SUBMIT_ORDER", order_message(alice_portfolio)),
        ("CANCEL_ORDER", {"orderId": alice_order}),
        ("MODIFY_ORDER", {"orderId": alice_order, "quantity": 50}),
        ("REQUEST_ORDER_STATUS", {"orderId": alice_order}),
        ("REQUEST_ORDER_HISTORY", {"portfolioId": alice_portfolio}),
        ("SUBSCRIBE_ORDERS", {"portfolioId": alice_portfolio}),
    ]:
        await mallory.send(message_type, data)
        error = await mallory.expect("ERROR")
        assert error["data"]["code"] == "FORBIDDEN", (message_type, error)
        assert "NVTX" not in error["data"]["error"]  # nothing of alice's order leaks
    assert services.storage.last_event_id(str(mallory_user.id)) == 0
    assert services.storage.order_by_id(alice_order).quantity == 10


async def test_teacher_reads_but_cannot_trade_a_students_orders(trader):
    student, _, portfolio_id, _ = await trader("stu")
    await student.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0))
    order_id = (await student.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    teacher, _, _, _ = await trader("tea", role="teacher")
    await teacher.send("REQUEST_ORDER_STATUS", {"orderId": order_id})
    assert (await teacher.expect("ORDER_STATUS"))["data"]["order"]["orderId"] == order_id
    await teacher.send("REQUEST_ORDER_HISTORY", {"portfolioId": portfolio_id})
    assert [o["orderId"] for o in (await teacher.expect("ORDER_HISTORY"))["data"]["orders"]] == [order_id]
    await teacher.send("CANCEL_ORDER", {"orderId": order_id})
    assert (await teacher.expect("ERROR"))["data"]["code"] == "FORBIDDEN"


async def test_events_reach_other_subscribed_connections_and_replay_from_event_id(trader, ws):
    client, _, portfolio_id, token = await trader()
    other = await ws(ORDERS, token=token)
    await other.expect("ACTIVE_ORDERS")
    await other.send("SUBSCRIBE_ORDERS", {}, request_id="sub")
    confirmed = await other.expect("SUBSCRIPTION_CONFIRMED")
    assert confirmed["data"] == {"action": "SUBSCRIBE", "portfolioId": None, "recovered": True, "lastEventId": 0}
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, quantity=2))
    submitted = await other.expect("ORDER_SUBMITTED")
    assert "requestId" not in submitted
    filled = await other.wait_for("ORDER_FILLED", timeout=10)
    last = filled["data"]["eventId"]
    late = await ws(ORDERS, token=token)
    await late.expect("ACTIVE_ORDERS")
    await late.send("SUBSCRIBE_ORDERS", {"sinceEventId": 1}, request_id="resume")
    replayed = []
    while True:
        message = await late.recv()
        if message["type"] == "SUBSCRIPTION_CONFIRMED":
            break
        assert "requestId" not in message
        replayed.append(message["data"]["eventId"])
    assert replayed == list(range(2, last + 1))
    assert message["requestId"] == "resume" and message["data"]["recovered"] is True
    await late.send("SUBSCRIBE_ORDERS", {"sinceEventId": last + 5})
    assert (await late.expect("SUBSCRIPTION_CONFIRMED"))["data"]["recovered"] is False


async def test_order_history_pages_newest_first(trader):
    client, _, portfolio_id, _ = await trader()
    ids = []
    for price in (1.0, 1.5, 2.0):
        await client.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=price))
        ids.append((await client.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"])
    await client.send("REQUEST_ORDER_HISTORY", {"limit": 2})
    page = (await client.expect("ORDER_HISTORY"))["data"]
    assert [o["orderId"] for o in page["orders"]] == ids[::-1][:2] and page["nextCursor"]
    await client.send("REQUEST_ORDER_HISTORY", {"limit": 2, "before": page["nextCursor"]})
    page = (await client.expect("ORDER_HISTORY"))["data"]
    assert [o["orderId"] for o in page["orders"]] == ids[:1] and page["nextCursor"] is None
    await client.send("REQUEST_ORDER_HISTORY", {"before": "garbage!"})
    assert (await client.expect("ERROR"))["data"]["code"] == "BAD_REQUEST"


async def test_active_orders_on_open_lists_open_orders(trader, ws):
    client, _, portfolio_id, token = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0))
    order_id = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    again = await ws(ORDERS, token=token)
    active = await again.expect("ACTIVE_ORDERS")
    assert [o["orderId"] for o in active["data"]["orders"]] == [order_id]


@pytest.mark.parametrize("data, code", [
    ({"portfolioId": "1", "symbol": "NVTX", "side": "HOLD", "orderType": "MARKET", "quantity": 1}, "BAD_REQUEST"),
    ({"portfolioId": "1", "symbol": "NVTX", "side": "BUY", "orderType": "MARKET", "quantity": "ten"},
     "INVALID_MESSAGE"),
    ({"portfolioId": {"id": 1}, "symbol": "NVTX", "side": "BUY", "orderType": "MARKET", "quantity": 1},
     "INVALID_MESSAGE"),
    ({"symbol": "NVTX", "side": "BUY", "orderType": "MARKET", "quantity": 1}, "BAD_REQUEST"),
    ({"portfolioId": "999", "symbol": "NVTX", "side": "BUY", "orderType": "MARKET", "quantity": 1}, "FORBIDDEN"),
])
async def test_malformed_submit_is_an_error_not_an_order(trader, services, data, code):
    client, user, _, _ = await trader()
    await client.send("SUBMIT_ORDER", data)
    assert (await client.expect("ERROR"))["data"]["code"] == code
    assert services.storage.last_event_id(str(user.id)) == 0
    await client.send("HEARTBEAT", request_id="ok")
    assert (await client.expect("HEARTBEAT"))["requestId"] == "ok"


async def test_a_write_the_database_refuses_is_answered_internal_and_changes_nothing(trader, services):
    client, user, portfolio_id, _ = await trader()
    far = order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0, timeInForce="GTC")
    await client.send("SUBMIT_ORDER", far, request_id="a")
    first = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    reserved = services.book.ledger(portfolio_id).reserved_cash_cents
    services.storage._db.execute("PRAGMA query_only = 1")  # the disk refuses every write from now on
    await client.send("SUBMIT_ORDER", far, request_id="b")
    refused = await client.expect("ERROR")
    assert (refused["requestId"], refused["data"]["code"]) == ("b", "INTERNAL")
    assert refused["data"]["requestType"] == "SUBMIT_ORDER" and "nothing was done" in refused["data"]["error"]
    assert [order.order_id for order in services.trading.open_orders(str(user.id))] == [first]
    assert services.book.ledger(portfolio_id).reserved_cash_cents == reserved
    await asyncio.sleep(0.2)  # ticks come and go while the disk refuses

    services.storage._db.execute("PRAGMA query_only = 0")
    await client.send("SUBMIT_ORDER", far, request_id="c")
    second = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    assert [order.order_id for order in services.trading.open_orders(str(user.id))] == [first, second]
    assert services.storage.reconcile(portfolio_id)["ok"]


# -- the trade journal note -------------------------------------------------------------------------------------

NOTE = "Earnings beat <b>&amp;</b> \"quotes\"; buying the dip.\nSecond line\twith a tab, ünïcödé ✓"


async def replay(client, since_event_id):
    """The events a SUBSCRIBE_ORDERS {sinceEventId} replays, up to its confirmation."""
    await client.send("SUBSCRIBE_ORDERS", {"sinceEventId": since_event_id}, request_id="replay")
    replayed = []
    while (message := await client.recv())["type"] != "SUBSCRIPTION_CONFIRMED":
        replayed.append(message)
    return replayed


async def test_a_note_goes_with_its_order_everywhere_orders_go_and_survives_modify_and_cancel(trader, ws):
    client, _, portfolio_id, token = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0,
                                                    timeInForce="GTC", note=f"  {NOTE}\n "), request_id="s")
    submitted = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]
    assert submitted["note"] == NOTE  # trimmed, otherwise exactly as sent
    assert submitted["placedBy"] is None
    order_id = submitted["orderId"]
    await client.send("MODIFY_ORDER", {"orderId": order_id, "quantity": 12})
    modified = (await client.expect("ORDER_MODIFIED"))["data"]["order"]
    assert (modified["quantity"], modified["note"]) == (12, NOTE)
    await client.send("REQUEST_ORDER_STATUS", {"orderId": order_id})
    assert (await client.expect("ORDER_STATUS"))["data"]["order"]["note"] == NOTE
    again = await ws(ORDERS, token=token)
    assert [o["note"] for o in (await again.expect("ACTIVE_ORDERS"))["data"]["orders"]] == [NOTE]
    await client.send("CANCEL_ORDER", {"orderId": order_id})
    assert (await client.expect("ORDER_CANCELLED"))["data"]["order"]["note"] == NOTE
    await client.send("REQUEST_ORDER_HISTORY", {"portfolioId": portfolio_id})
    history = (await client.expect("ORDER_HISTORY"))["data"]["orders"]
    assert [(o["orderId"], o["status"], o["note"]) for o in history] == [(order_id, "CANCELLED", NOTE)]
    replayed = await replay(again, 0)
    assert [m["type"] for m in replayed] == ["ORDER_SUBMITTED", "ORDER_MODIFIED", "ORDER_CANCELLED"]
    assert {m["data"]["order"]["note"] for m in replayed} == {NOTE}


async def test_the_fills_of_a_market_order_carry_its_note(trader):
    client, _, portfolio_id, _ = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, quantity=3, note="momentum"))
    assert (await client.expect("ORDER_SUBMITTED"))["data"]["order"]["note"] == "momentum"
    filled = await client.wait_for("ORDER_FILLED", timeout=10)
    assert filled["data"]["order"]["note"] == "momentum" and filled["data"]["order"]["placedBy"] is None


@pytest.mark.parametrize("extra", [{}, {"note": None}, {"note": ""}, {"note": " \n\t "}])
async def test_an_order_without_a_note_has_a_null_note(trader, extra):
    client, _, portfolio_id, _ = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0, **extra))
    order = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]
    assert "note" in order and order["note"] is None and order["placedBy"] is None
    await client.send("REQUEST_ORDER_HISTORY", {})
    assert (await client.expect("ORDER_HISTORY"))["data"]["orders"][0]["note"] is None


@pytest.mark.parametrize("note", ["x" * 500, "é" * 500, "✓" * 499 + "\n", "line\r\nbreaks\tand tabs",
                                  "'; DROP TABLE orders; --", "<script>alert(1)</script>"])
async def test_a_note_of_up_to_500_characters_with_line_breaks_and_tabs_is_kept_verbatim(trader, services, note):
    client, _, portfolio_id, _ = await trader()
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0, note=note))
    order = (await client.expect("ORDER_SUBMITTED"))["data"]["order"]
    assert order["note"] == note.strip()
    assert services.storage.order_by_id(order["orderId"]).note == note.strip()


@pytest.mark.parametrize("note, code, words", [
    ("x" * 501, "BAD_REQUEST", "longer than 500 characters"),
    ("é" * 501, "BAD_REQUEST", "longer than 500 characters"),
    ("buy\x00now", "BAD_REQUEST", "NUL character"),  # refused where the wire is read
    ("bell\x07", "BAD_REQUEST", "control characters"),
    ("\x1b[31mred\x1b[0m", "BAD_REQUEST", "control characters"),
    ("back\x08space", "BAD_REQUEST", "control characters"),
    ("form\x0cfeed", "BAD_REQUEST", "control characters"),
    ("del\x7f", "BAD_REQUEST", "control characters"),
    ("next\x85line", "BAD_REQUEST", "control characters"),  # C1 controls are control characters too
    (42, "INVALID_MESSAGE", "note must be a string"),
    (["why"], "INVALID_MESSAGE", "note must be a string"),
    ({"why": "because"}, "INVALID_MESSAGE", "note must be a string"),
    (True, "INVALID_MESSAGE", "note must be a string"),
])
async def test_a_note_too_long_or_with_control_characters_is_refused_and_places_nothing(trader, services, note,
                                                                                       code, words):
    client, user, portfolio_id, _ = await trader()
    cash = services.book.ledger(portfolio_id).buying_power_cents
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, note=note, clientOrderId="n1"), request_id="bad")
    error = await client.expect("ERROR")
    assert (error["requestId"], error["data"]["code"]) == ("bad", code)
    assert words in error["data"]["error"] and error["data"]["requestType"] == "SUBMIT_ORDER"
    assert services.storage.last_event_id(str(user.id)) == 0 and services.trading.open_orders(str(user.id)) == []
    assert services.book.ledger(portfolio_id).buying_power_cents == cash
    await client.send("SUBMIT_ORDER", order_message(portfolio_id, clientOrderId="n1", orderType="LIMIT",
                                                    limitPrice=1.0), request_id="ok")
    assert (await client.expect("ORDER_SUBMITTED"))["data"]["eventId"] == 1  # the clientOrderId was never used


async def test_a_repeated_client_order_id_is_the_same_order_only_with_the_same_note(trader):
    client, _, portfolio_id, _ = await trader()
    far = order_message(portfolio_id, orderType="LIMIT", limitPrice=1.0, clientOrderId="j1", note="first reason")
    await client.send("SUBMIT_ORDER", far)
    first = await client.expect("ORDER_SUBMITTED")
    await client.send("SUBMIT_ORDER", far)
    assert (await client.expect("ORDER_SUBMITTED"))["data"] == first["data"]
    await client.send("SUBMIT_ORDER", {**far, "note": "another reason"})
    different = await client.expect("ORDER_REJECTED")
    assert different["data"]["reason"] == "DUPLICATE_CLIENT_ORDER_ID"
    assert different["data"]["order"]["note"] == "another reason"
