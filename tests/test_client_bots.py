"""stockquest_client and the example bots against a real server process, and the client against a hostile one.

Each bot runs for a few seconds of wall time on a fast server (`--tick-ms 50 --speed 60`: a simulated minute
a second), then what it did is checked over the wire by a second client of the same user: its orders in
ORDER_HISTORY, its fills in POSITION_DETAILS, its portfolio. The library's own promises (ERROR → ServerError
with the code, timeouts, resume by eventId across dropped sockets, surviving garbage frames) are checked
against the real server where it can show them and against a scripted in-process server where it cannot.
"""

import asyncio
import json
import socket
from collections import Counter
from decimal import Decimal

import pytest
import tornado.web
import tornado.websocket

from examples import buy_and_hold, market_maker, momentum
from stockquest_client import (
    Client,
    MalformedMessage,
    Order,
    Quote,
    RequestTimeout,
    ServerError,
    Signal,
    parse_envelope,
)
from stockquest_client.connection import Connection

FAST = ("--tick-ms", "50", "--speed", "60")
PASSWORD = "bots are people too"


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture
def server_url(start_server):
    _, port = start_server(*FAST)
    return f"http://127.0.0.1:{port}"


async def _history_and_trades(url, username, symbols):
    """The user's orders and, per symbol, position and trades, read by a client of its own."""
    async with await Client.login(url, username, PASSWORD) as checker:
        orders = await checker.orders.history(limit=500)
        details = {symbol: await checker.portfolio.position_details(symbol) for symbol in symbols}
        portfolio = await checker.portfolio.snapshot()
    return orders, details, portfolio


# the example bots ------------------------------------------------------------------------------------------

def test_buy_and_hold_holds_positions_whose_fills_match_its_orders(server_url):
    async def scenario():
        await (await Client.register(server_url, "holder", PASSWORD)).close()
        report = await buy_and_hold.main(["--url", server_url, "--username", "holder", "--password", PASSWORD,
                                          "--duration", "3", "--symbols", "NVTX,QBIT,MCRS"])
        return report, await _history_and_trades(server_url, "holder", ["NVTX", "QBIT", "MCRS"])

    report, (orders, details, portfolio) = run(scenario())
    assert [r.accepted for r in report.orders] == [True, True, True]
    assert {o.order_id for o in orders} == {r.order.order_id for r in report.orders}
    for order in orders:
        assert order.status == "FILLED" and order.side == "BUY" and order.order_type == "MARKET"
        trades = details[order.symbol].trades
        assert sum(t.quantity for t in trades) == order.quantity == details[order.symbol].position.quantity
        assert {t.order_id for t in trades} == {order.order_id}
    assert Counter(f.execution_id for f in report.fills) == Counter(
        t.execution_id for d in details.values() for t in d.trades)
    spent = sum(t.quantity * t.price for d in details.values() for t in d.trades)
    assert portfolio.cash == Decimal("100000.00") - spent
    assert {p.symbol: p.quantity for p in portfolio.positions} == {o.symbol: o.quantity for o in orders}


def test_market_maker_rests_limit_orders_on_both_sides_and_cleans_up(server_url):
    async def scenario():
        await (await Client.register(server_url, "maker", PASSWORD)).close()
        report = await market_maker.main(["--url", server_url, "--username", "maker", "--password", PASSWORD,
                                          "--duration", "6", "--symbol", "NVTX", "--size", "20"])
        return report, await _history_and_trades(server_url, "maker", ["NVTX"])

    report, (orders, details, portfolio) = run(scenario())
    limits = [o for o in orders if o.order_type == "LIMIT"]
    assert {o.side for o in limits} == {"BUY", "SELL"}
    assert {o.order_id for o in limits} == {o.order_id for o in report.placed}
    assert not [o for o in orders if o.is_open], "orders left resting after the bot stopped"
    assert any(o.filled_quantity for o in limits), "no limit order filled in 6 simulated minutes"
    by_id = {o.order_id: o for o in orders}
    for trade in details["NVTX"].trades:  # a limit fills at its price or better
        order = by_id[trade.order_id]
        if order.order_type == "LIMIT":
            assert trade.price <= order.limit_price if order.side == "BUY" else trade.price >= order.limit_price
    bought = sum(t.quantity for t in details["NVTX"].trades if t.side == "BUY")
    sold = sum(t.quantity for t in details["NVTX"].trades if t.side == "SELL")
    assert details["NVTX"].position.quantity == bought - sold
    assert sorted(f.execution_id for f in report.fills) == sorted(t.execution_id for t in details["NVTX"].trades)


def test_momentum_acts_on_every_signal_by_its_rule_and_says_why_when_it_does_not(server_url):
    symbols = ["NVTX", "QBIT", "SUNM", "HYDL", "CRVL", "MCRS"]

    async def scenario():
        await (await Client.register(server_url, "surfer", PASSWORD)).close()
        report = await momentum.main(["--url", server_url, "--username", "surfer", "--password", PASSWORD,
                                      "--duration", "5", "--symbols", ",".join(symbols)])
        return report, await _history_and_trades(server_url, "surfer", symbols)

    report, (orders, details, portfolio) = run(scenario())
    assert report.decisions, "no signal reached the bot"
    held = set()
    for decision in report.decisions:  # the rule, replayed: a confident BUY buys what is not held, a SELL sells
        signal = decision.signal
        assert signal.model == "momentum" and signal.symbol in symbols
        confident = signal.confidence >= 0.3
        expected = ("BUY" if signal.signal == "BUY" and confident and signal.symbol not in held else
                    "SELL" if signal.signal == "SELL" and confident and signal.symbol in held else "NONE")
        assert decision.action == expected and decision.why, decision
        if expected != "NONE":
            assert decision.result.accepted, decision.result
            (held.add if expected == "BUY" else held.discard)(signal.symbol)
    traded = [d for d in report.decisions if d.action != "NONE"]
    assert sorted(o.order_id for o in orders) == sorted(d.result.order.order_id for d in traded)
    for decision in traded:
        order = next(o for o in orders if o.order_id == decision.result.order.order_id)
        assert (order.side, order.symbol, order.status) == (decision.action, decision.signal.symbol, "FILLED")
    assert {p.symbol for p in portfolio.positions} == held
    for symbol in symbols:
        net = sum(t.quantity if t.side == "BUY" else -t.quantity for t in details[symbol].trades)
        assert details[symbol].position.quantity == net


def test_momentum_decision_buys_on_a_confident_buy_and_sells_all_on_a_confident_sell(server_url):
    def call(action, confidence):
        return Signal(symbol="QBIT", model="momentum", signal=action, score=confidence, confidence=confidence)

    async def scenario():
        async with await Client.guest(server_url, "decider") as client:
            held: dict[str, int] = {}
            timid = await momentum.decide(client, call("BUY", 0.1), held, Decimal("5000"), 0.3)
            bought = await momentum.decide(client, call("BUY", 0.9), held, Decimal("5000"), 0.3)
            again = await momentum.decide(client, call("BUY", 0.9), held, Decimal("5000"), 0.3)
            await client.orders.wait_closed(bought.result.order.order_id)
            sold = await momentum.decide(client, call("SELL", 0.9), held, Decimal("5000"), 0.3)
            await client.orders.wait_closed(sold.result.order.order_id)
            return timid, bought, again, sold, held, await client.portfolio.snapshot()

    timid, bought, again, sold, held, portfolio = run(scenario())
    assert (timid.action, again.action) == ("NONE", "NONE") and "confidence" in timid.why and "holding" in again.why
    assert bought.action == "BUY" and bought.result.accepted and bought.result.order.quantity > 0
    assert sold.action == "SELL" and sold.result.order.quantity == bought.result.order.quantity
    assert held == {"QBIT": 0} and portfolio.position("QBIT") is None


# the library against the real server ----------------------------------------------------------------------

def test_error_reply_raises_server_error_carrying_the_code(server_url):
    async def scenario():
        async with await Client.guest(server_url, "errors") as client:
            with pytest.raises(ServerError) as bad:
                await client.market.history("NVTX", "7m")
            with pytest.raises(ServerError) as forbidden:
                await client.orders.status("O999999")
            assert isinstance(await client.market.quote("NVTX"), Quote)  # the socket survived both
            return bad.value, forbidden.value

    bad, forbidden = run(scenario())
    assert (bad.code, bad.request_type) == ("BAD_REQUEST", "REQUEST_HISTORICAL") and "interval" in bad.message
    assert (forbidden.code, forbidden.request_type) == ("FORBIDDEN", "REQUEST_ORDER_STATUS")


def test_rejected_order_is_a_result_and_repeating_its_client_order_id_returns_the_same_order(server_url):
    async def scenario():
        async with await Client.guest(server_url, "idem") as client:
            rejected = await client.orders.sell("NVTX", 5)  # holds nothing: INSUFFICIENT_SHARES
            first = await client.orders.buy("NVTX", 2, client_order_id="same-one")
            again = await client.orders.buy("NVTX", 2, client_order_id="same-one")
            return rejected, first, again, await client.orders.history()

    rejected, first, again, history = run(scenario())
    assert not rejected.accepted and rejected.reason == "INSUFFICIENT_SHARES" and rejected.order.status == "REJECTED"
    assert again.order.order_id == first.order.order_id and again.event_id == first.event_id
    assert Counter(o.client_order_id for o in history)["same-one"] == 1


def test_a_bot_writes_a_journal_note_with_its_order_and_reads_it_back(server_url):
    async def scenario():
        async with await Client.guest(server_url, "journal") as client:
            placed = await client.orders.buy("NVTX", 1, note="momentum up 3 days running")
            return placed, await client.orders.history()

    placed, history = run(scenario())
    assert placed.order.note == "momentum up 3 days running" and placed.order.placed_by is None
    assert [o.note for o in history if o.order_id == placed.order.order_id] == ["momentum up 3 days running"]


def test_dropped_orders_socket_resumes_events_by_event_id_without_gap_or_repeat(start_server):
    _, port = start_server("--tick-ms", "100", "--speed", "60", "--starting-cash", "1000000")
    url = f"http://127.0.0.1:{port}"

    async def scenario():
        async with await Client.guest(url, "resume", backoff=(1.0, 2.0)) as client:
            await client.risk.set_limits({"maxOrderValue": Decimal("400000"), "maxPositionWeight": 1})
            events = client.orders.events()
            placed = await client.orders.buy("HYDL", 5000)  # a thin book: fills over many ticks
            received, drops = [], 0
            async with events:
                async for event in events:
                    received.append(event)
                    if event.type == "EXECUTION_REPORT" and drops < 2:
                        client.orders.connection.drop()  # fills go on while the client is away
                        drops += 1
                    if event.type in ("ORDER_FILLED", "ORDER_CANCELLED"):
                        break
            return placed, received, client.orders.connection.stats, client.token

    placed, received, stats, token = run(scenario())
    stored = run(_replay_all(port, token))
    ids = [e.event_id for e in received]
    assert stats.connects == 3
    assert ids == list(range(1, len(ids) + 1)) == stored
    fills = [e.execution for e in received if e.execution]
    assert len({f.execution_id for f in fills}) == len(fills)
    assert received[-1].type == "ORDER_FILLED" and sum(f.fill_quantity for f in fills) == placed.order.quantity


async def _replay_all(port, token):
    """Every stored order event id of the user, read with a bare socket (no client library)."""
    conn = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/orders?token={token}")
    await conn.write_message(json.dumps({"type": "SUBSCRIBE_ORDERS", "data": {"sinceEventId": 0}, "requestId": "r"}))
    ids = []
    while True:
        message = json.loads(await asyncio.wait_for(conn.read_message(), 5))
        if message["type"] == "SUBSCRIPTION_CONFIRMED":
            conn.close()
            return ids
        if "eventId" in (message.get("data") or {}):
            ids.append(message["data"]["eventId"])


def test_request_with_no_answer_raises_request_timeout_and_the_socket_goes_on(server_url):
    async def scenario():
        async with await Client.guest(server_url, "timeout") as client:
            connection = client.market.connection
            with pytest.raises(RequestTimeout) as timed_out:  # the server answers HEARTBEAT, never NO_SUCH_TYPE
                await connection.request("HEARTBEAT", {}, expect=("NO_SUCH_TYPE",), timeout=0.5)
            return timed_out.value, await client.market.heartbeat()

    timed_out, server_time = run(scenario())
    assert timed_out.request_type == "HEARTBEAT" and timed_out.timeout == 0.5
    assert server_time.endswith("Z")


# the library against a scripted server --------------------------------------------------------------------

HOSTILE_FRAMES = [
    "not json", "[1, 2]", "42", '"text"', "{}", '{"type": 5}', '{"type": ""}', '{"type": "X", "data": [1]}',
    '{"type": "X", "data": NaN}', "[" * 100_000 + "]" * 100_000, '{"type": "ERROR", "data": {"code": 7}}',
    '{"type": "REAL_TIME_UPDATE", "data": {"quotes": [{"symbol": "NVTX", "price": "cheap"}]}}',
    '{"type": "REAL_TIME_UPDATE", "data": {"quotes": 17}}',
]


class ScriptedHandler(tornado.websocket.WebSocketHandler):
    """Greets like the server, then answers each request after the frames its script says to send first."""

    script: list = []

    def open(self):
        self.write_message(json.dumps({"type": "CONNECTION_ESTABLISHED", "data": {"heartbeatInterval": 30000}}))

    def on_message(self, text):
        request = json.loads(text)
        for frame in type(self).script.pop(0) if type(self).script else ():
            if frame is None:
                continue  # no answer at all
            if isinstance(frame, bytes):
                self.write_message(frame, binary=True)
            else:
                self.write_message(frame.replace("$RID", request["requestId"]))


@pytest.fixture
def scripted():
    """A WebSocket server in this process, on a free port, speaking whatever the test scripts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return port


def test_garbled_frames_are_skipped_and_the_quote_stream_goes_on(scripted):
    quote = {"symbol": "NVTX", "price": 1.5, "bid": 1.49, "ask": 1.51, "bidSize": 1, "askSize": 1, "volume": 0,
             "marketTime": 0}
    confirmed = '{"type": "SUBSCRIPTION_CONFIRMED", "requestId": "$RID", "data": {}}'
    good = json.dumps({"type": "REAL_TIME_UPDATE", "data": {"quotes": [quote]}})
    ScriptedHandler.script = [[*HOSTILE_FRAMES, b"\x00\xff binary", confirmed, good], [confirmed]]

    async def scenario():
        server = tornado.web.Application([(r"/ws/.*", ScriptedHandler)]).listen(scripted, "127.0.0.1")
        client = Client(f"http://127.0.0.1:{scripted}", None)
        try:
            async with client.market.quotes(["NVTX"]) as quotes:
                first = await anext(quotes)
            return first, client.market.connection.stats
        finally:
            await client.close()
            server.stop()

    first, stats = run(scenario(), timeout=20)
    assert first.symbol == "NVTX" and first.ask == Decimal("1.51")
    assert stats.malformed == 10 + 1 + 2  # unreadable frames, the binary one, two quote pushes of the wrong shape
    assert [error.code for error in stats.errors] == ["7"]  # an ERROR answering nothing is kept, not raised
    assert stats.connects == 1 and stats.drops == 0


def test_rate_limited_request_is_sent_again_after_retry_after(scripted):
    limited = '{"type": "ERROR", "requestId": "$RID", "data": {"code": "RATE_LIMITED", "retryAfter": 0.3}}'
    ScriptedHandler.script = [[limited], ['{"type": "HEARTBEAT", "requestId": "$RID", "data": {"serverTime": "t"}}']]

    async def scenario():
        server = tornado.web.Application([(r"/ws", ScriptedHandler)]).listen(scripted, "127.0.0.1")
        connection = Connection(f"ws://127.0.0.1:{scripted}/ws", _no_token)
        loop = asyncio.get_running_loop()
        try:
            started = loop.time()
            reply = await connection.request("HEARTBEAT", {}, expect=("HEARTBEAT",), timeout=5)
            return reply, loop.time() - started, connection.stats
        finally:
            await connection.close()
            server.stop()

    reply, elapsed, stats = run(scenario())
    assert reply.data == {"serverTime": "t"} and stats.rate_limited == 1 and stats.sent == 2
    assert elapsed >= 0.3


async def _no_token(refresh):
    return None


@pytest.mark.parametrize("frame", HOSTILE_FRAMES[:10])
def test_parse_envelope_refuses_what_is_not_a_protocol_frame(frame):
    with pytest.raises(MalformedMessage):
        parse_envelope(frame)


def test_money_is_read_exactly_as_decimal_and_wrong_types_name_the_field():
    order = {"orderId": "O1", "portfolioId": 3, "symbol": "NVTX", "side": "BUY", "orderType": "LIMIT", "quantity": 10,
             "filledQuantity": 0, "remainingQuantity": 10, "timeInForce": "GTC", "status": "NEW", "limitPrice": 0.1}
    envelope = parse_envelope(json.dumps({"type": "order_status", "data": {"order": order}, "requestId": 7}))
    parsed = Order.from_wire(envelope.data["order"])
    assert envelope.type == "ORDER_STATUS" and envelope.request_id == "7"
    assert parsed.limit_price == Decimal("0.1") and parsed.portfolio_id == "3" and parsed.is_open
    for field, value in (("quantity", "ten"), ("limitPrice", "cheap"), ("quantity", True), ("symbol", None)):
        with pytest.raises(MalformedMessage, match=field):
            Order.from_wire({**order, field: value})
