"""Crash durability: a server killed with SIGKILL in the middle of an order flood loses nothing it acknowledged.

The real `stockquest.py` process takes a flood of orders from several users over several /ws/orders
connections each (MARKET buys and sells, LIMITs at the touch that fill over time, far LIMITs that rest,
cancels, rejections) while the market fills them every 50 ms tick. Mid-flood, with a big MARKET order
still filling, it is killed with SIGKILL and restarted on the same data directory and port (PROTOCOL.md,
Orders: "a server killed at any moment restarts with them, and cash and positions reconcile exactly").

Checked on the files the killed process left (a copy, so the restart still recovers the real ones), then
again after the restart and a clean stop:
- every acknowledged order (ORDER_SUBMITTED / ORDER_REJECTED a client read) is stored, with its first
  event exactly as sent; every event and every EXECUTION_REPORT a client read is stored exactly as sent;
- every portfolio reconciles exactly with the stored fills (`Storage.reconcile`);
- SUBSCRIBE_ORDERS with the last eventId a client read replays the rest in order, eventIds contiguous;
- an acknowledged clientOrderId sent again returns the original (same `data`, same eventId); a request
  that was in flight at the kill, sent again, returns the stored order if it was stored, else a new one;
  nothing is placed twice (order counts);
- open orders reload: the big MARKET order keeps filling after the restart, and a new order fills.
"""

import asyncio
import os
import random
import shutil
import signal
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import pytest
import tornado.websocket
import ujson

from domain.clock import SystemClock
from services.storage import Storage

# High speed and a fast tick so fills happen quickly; a large starting cash so funds never run out
# (a big order reserves millions) and the flood's rejections are the ones it asks for.
SERVER_FLAGS = ("--tick-ms", "50", "--speed", "60", "--starting-cash", "100000000")
USERS = 4
FLOOD_CONNECTIONS = 6  # per user, plus one subscriber: within the limit of 10 per user per endpoint
SEND_RATE, SEND_BURST = 10.0, 20  # per connection; the server allows 20 messages/s with bursts of 40
WINDOW = 5  # requests outstanding per flood connection
FLOOD_SYMBOLS = ("NVTX", "QBIT", "MCRS", "BKNR", "SUNM", "TLXA")
# Thin books (100 to 500 shares shown a tick), one per user: 150 000 shares take at least 300 ticks
# (15 s at 50 ms), so the big order is certainly still filling at the kill and after the restart.
BIG_SYMBOLS = ("HYDL", "HOMY", "FDLT", "VLTR")
BIG_QUANTITY = 150_000
NEVER_HELD = "CRVL"  # sells of it are rejected INSUFFICIENT_SHARES
KILL_BURST = 6  # requests per flood connection sent at once just before the kill
MIN_ACKS_BEFORE_KILL = 400
MIN_FILLS_BEFORE_KILL = 40
REPEATS_PER_USER = 30
FLOOD_TIMEOUT_S = 40.0
AFTER_RESTART_TIMEOUT_S = 30.0
ORDER_EVENT_TYPES = {"ORDER_SUBMITTED", "ORDER_REJECTED", "ORDER_MODIFIED", "EXECUTION_REPORT",
                     "ORDER_PARTIALLY_FILLED", "ORDER_FILLED", "ORDER_CANCELLED"}


# client side -------------------------------------------------------------------------------------

class Pacer:
    """A client-side token bucket, so the flood stays under the server's per-connection rate limit."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    async def wait(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)


@dataclass
class Pending:
    type: str
    data: dict
    reply: asyncio.Future


class Connection:
    """One WebSocket client: paced requests with requestIds, and a reader that files every message it reads."""

    def __init__(self, conn, name: str, on_message, rate=SEND_RATE, burst=SEND_BURST):
        self.conn, self.name, self.on_message = conn, name, on_message
        self.pacer = Pacer(rate, burst)
        self.pending: dict[str, Pending] = {}
        self.unanswered: list[Pending] = []  # requests without a reply when the connection closed
        self.messages: list[dict] = []
        self.count = 0
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, name: str, on_message, **pacing) -> "Connection":
        conn = await asyncio.wait_for(tornado.websocket.websocket_connect(url), 15)
        return cls(conn, name, on_message, **pacing)

    @property
    def closed(self) -> bool:
        return self.reader.done()

    async def _read(self) -> None:
        try:
            while True:
                text = await self.conn.read_message()
                if text is None:
                    break
                message = ujson.loads(text)
                self.messages.append(message)
                pending = self.pending.pop(message.get("requestId"), None)
                self.on_message(self, message, pending)
                if pending is not None and not pending.reply.done():
                    pending.reply.set_result(message)
        finally:
            self.unanswered = list(self.pending.values())
            self.pending.clear()
            for pending in self.unanswered:
                if not pending.reply.done():
                    pending.reply.set_result(None)

    async def send(self, message_type: str, data: dict, paced: bool = True) -> asyncio.Future:
        """Send one request (paced); the returned future gets the direct reply, or None if the socket closed first."""
        if paced:
            await self.pacer.wait()
        self.count += 1
        request_id = f"{self.name}-{self.count}"
        pending = Pending(message_type, data, asyncio.get_running_loop().create_future())
        if self.closed:
            pending.reply.set_result(None)
            return pending.reply
        self.pending[request_id] = pending
        try:
            await self.conn.write_message(ujson.dumps({"type": message_type, "data": data, "requestId": request_id}))
        except tornado.websocket.WebSocketClosedError:  # never left this process: not in flight
            if self.pending.pop(request_id, None) is not None:
                pending.reply.set_result(None)
        return pending.reply

    async def call(self, message_type: str, data: dict, timeout: float = 15.0) -> dict:
        reply = await asyncio.wait_for(await self.send(message_type, data), timeout)
        assert reply is not None, f"{self.name}: connection closed before the reply to {message_type} {data}"
        return reply

    async def first(self, message_type: str, timeout: float = 15.0) -> dict:
        await until(lambda: any(m["type"] == message_type for m in self.messages) or self.closed, timeout,
                    lambda: f"{message_type} on {self.name}")
        found = [m for m in self.messages if m["type"] == message_type]
        assert found, f"{self.name} closed before {message_type}: {self.messages[-3:]}"
        return found[0]

    async def close(self) -> None:
        self.conn.close()
        try:
            await asyncio.wait_for(self.reader, 10)
        except asyncio.TimeoutError:
            self.reader.cancel()


async def until(predicate, timeout: float, what) -> None:
    """Wait for a condition (polled every 10 ms); fail saying what was awaited, and the state, on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.01)


def cents(price: float) -> int:
    return round(price * 100)


@dataclass
class Ack:
    """An acknowledged SUBMIT_ORDER as a client read it: the request it answered and the reply."""

    username: str
    request: dict
    type: str
    data: dict

    @property
    def order_id(self) -> str:
        return self.data["order"]["orderId"]


@dataclass
class Trader:
    """One registered user as the flood sees it: token, portfolio, what it holds and what it saw."""

    username: str
    token: str
    user_id: str
    portfolio_id: str = ""
    big_symbol: str = ""
    big_request: dict | None = None
    big_order_id: str | None = None
    held: Counter = field(default_factory=Counter)     # shares bought minus sold, from the fills seen
    selling: Counter = field(default_factory=Counter)  # shares in sells not yet filled, cancelled or rejected
    resting: list = field(default_factory=list)         # acknowledged LIMIT order ids, candidates to cancel
    events: dict = field(default_factory=dict)          # eventId -> (type, data), first copy read on any connection
    subscriber_ids: list = field(default_factory=list)  # eventIds in the order the subscribed connection read them
    fills: dict = field(default_factory=dict)           # orderId -> its EXECUTION_REPORTs read
    sequence: int = 0

    def next_client_order_id(self) -> str:
        self.sequence += 1
        return f"{self.username}-{self.sequence}"

    def sellable(self, symbol: str) -> int:
        return self.held[symbol] - self.selling[symbol]

    def on_event(self, message_type: str, data: dict) -> None:
        """Track holdings and open orders from each order event once, whichever connection read it first."""
        event_id = data["eventId"]
        if event_id in self.events:
            assert self.events[event_id] == (message_type, data), \
                f"{self.username}: event {event_id} arrived twice with different contents"
            return
        self.events[event_id] = (message_type, data)
        if message_type == "EXECUTION_REPORT":
            self.fills.setdefault(data["orderId"], []).append(data)
            quantity = data["fillQuantity"]
            if data["side"] == "BUY":
                self.held[data["symbol"]] += quantity
            else:
                self.held[data["symbol"]] -= quantity
                self.selling[data["symbol"]] -= quantity
            return
        order = data["order"]
        if message_type in ("ORDER_REJECTED", "ORDER_CANCELLED") and order["side"] == "SELL" \
                and order["symbol"] != NEVER_HELD:
            self.selling[order["symbol"]] -= order["remainingQuantity"] if message_type == "ORDER_CANCELLED" \
                else order["quantity"]
        if message_type in ("ORDER_FILLED", "ORDER_CANCELLED") and order["orderId"] in self.resting:
            self.resting.remove(order["orderId"])


class Flood:
    """The clients' side of the flood: users, connections, quotes, and everything the clients read."""

    def __init__(self, port: int, traders: list[Trader], seed: int = 20261126):
        self.port = port
        self.traders = traders
        self.rng = random.Random(seed)
        self.quotes: dict[str, dict] = {}
        self.acks: list[Ack] = []
        self.rate_limited = 0
        self.unexpected: list[str] = []  # replies a flood request should never get
        self.subscribers: dict[str, Connection] = {}
        self.flood_conns: list[tuple[Connection, Trader]] = []
        self.market: Connection | None = None

    def url(self, path: str, token: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.port}{path}" + (f"?token={token}" if token else "")

    @property
    def fill_count(self) -> int:
        return sum(len(fills) for trader in self.traders for fills in trader.fills.values())

    # message handling -----------------------------------------------------------------------
    def on_market(self, conn, message, pending) -> None:
        if message["type"] in ("INITIAL_DATA", "REAL_TIME_UPDATE", "QUOTE_RESPONSE"):
            for quote in message["data"]["quotes"]:
                self.quotes[quote["symbol"]] = quote

    def on_orders(self, trader: Trader, subscriber: bool):
        def handle(conn, message, pending):
            message_type, data = message["type"], message.get("data") or {}
            if message_type in ORDER_EVENT_TYPES:
                trader.on_event(message_type, data)
                if subscriber:
                    trader.subscriber_ids.append(data["eventId"])
            if pending is None:
                return
            if pending.type == "SUBMIT_ORDER":
                if message_type in ("ORDER_SUBMITTED", "ORDER_REJECTED"):
                    ack = Ack(trader.username, pending.data, message_type, data)
                    self.acks.append(ack)
                    if message_type == "ORDER_SUBMITTED" and pending.data["orderType"] == "LIMIT":
                        trader.resting.append(ack.order_id)
                    return
                if message_type == "ERROR" and data["code"] == "RATE_LIMITED":
                    self.rate_limited += 1  # not acknowledged: the request is as if never sent
                    if pending.data["side"] == "SELL" and pending.data["symbol"] != NEVER_HELD:
                        trader.selling[pending.data["symbol"]] -= pending.data["quantity"]
                    return
            elif pending.type == "CANCEL_ORDER":
                if message_type == "ORDER_CANCELLED" or (
                        message_type == "ERROR" and data["code"] in ("BAD_REQUEST", "RATE_LIMITED")):
                    return  # an order that filled before the cancel arrived is "no longer open"
            elif message_type != "ERROR":
                return
            self.unexpected.append(f"{conn.name}: {pending.type} {pending.data} -> {message}")
        return handle

    # the flood --------------------------------------------------------------------------------
    async def connect(self) -> None:
        self.market = await Connection.open(self.url("/ws/market-data"), "market", self.on_market)
        await self.market.call("SUBSCRIBE", {"symbols": [*FLOOD_SYMBOLS, *BIG_SYMBOLS], "updateInterval": 100})
        for trader in self.traders:
            portfolio = await Connection.open(self.url("/ws/portfolio", trader.token), "p", lambda *a: None)
            trader.portfolio_id = (await portfolio.first("PORTFOLIO_LIST"))["data"]["portfolios"][0]["portfolioId"]
            await portfolio.close()
            subscriber = await Connection.open(self.url("/ws/orders", trader.token), f"{trader.username}-sub",
                                               self.on_orders(trader, subscriber=True))
            await subscriber.first("ACTIVE_ORDERS")
            confirmed = await subscriber.call("SUBSCRIBE_ORDERS", {})
            assert confirmed["data"]["lastEventId"] == 0, confirmed
            self.subscribers[trader.username] = subscriber
            for n in range(FLOOD_CONNECTIONS):
                conn = await Connection.open(self.url("/ws/orders", trader.token), f"{trader.username}-c{n}",
                                             self.on_orders(trader, subscriber=False))
                await conn.first("ACTIVE_ORDERS")
                self.flood_conns.append((conn, trader))

    def next_request(self, trader: Trader) -> tuple[str, dict]:
        rng = self.rng
        draw = rng.random()
        if draw < 0.07 and trader.resting:
            return "CANCEL_ORDER", {"orderId": trader.resting.pop(rng.randrange(len(trader.resting)))}
        symbol = rng.choice(FLOOD_SYMBOLS)
        quote = self.quotes[symbol]
        order = {"portfolioId": trader.portfolio_id, "symbol": symbol, "clientOrderId": trader.next_client_order_id()}
        sellable = [s for s in FLOOD_SYMBOLS if trader.sellable(s) > 0]
        if 0.30 <= draw < 0.50 and sellable:   # MARKET sell of what is held
            symbol = rng.choice(sellable)
            quantity = rng.randint(1, min(5, trader.sellable(symbol)))
            trader.selling[symbol] += quantity
            order.update(symbol=symbol, side="SELL", orderType="MARKET", quantity=quantity)
        elif 0.50 <= draw < 0.58 and sellable:  # LIMIT sell at the ask: fills when the bid comes up to it
            symbol = rng.choice(sellable)
            quantity = rng.randint(1, min(3, trader.sellable(symbol)))
            trader.selling[symbol] += quantity
            order.update(symbol=symbol, side="SELL", orderType="LIMIT", quantity=quantity,
                         limitPrice=cents(self.quotes[symbol]["ask"]) / 100, timeInForce="GTC")
        elif 0.58 <= draw < 0.72:  # LIMIT buy at the bid: fills when the ask comes down to it
            order.update(side="BUY", orderType="LIMIT", quantity=rng.randint(1, 10),
                         limitPrice=cents(quote["bid"]) / 100, timeInForce="GTC")
        elif 0.72 <= draw < 0.90:  # far LIMIT buy: rests
            order.update(side="BUY", orderType="LIMIT", quantity=rng.randint(1, 5),
                         limitPrice=max(1, cents(quote["bid"]) // 2) / 100, timeInForce="GTC")
        elif 0.90 <= draw < 0.94:
            order.update(symbol="ZZZZ", side="BUY", orderType="MARKET", quantity=1)  # rejected UNKNOWN_SYMBOL
        elif 0.94 <= draw < 0.97:
            order.update(symbol=NEVER_HELD, side="SELL", orderType="MARKET", quantity=1)  # INSUFFICIENT_SHARES
        else:
            order.update(side="BUY", orderType="MARKET", quantity=rng.randint(1, 10))
        return "SUBMIT_ORDER", order

    async def pump(self, conn: Connection, trader: Trader, stop: asyncio.Event) -> None:
        """Send requests as fast as the pacer and the window allow, until told to stop or the server goes."""
        window = asyncio.Semaphore(WINDOW)
        while not stop.is_set() and not conn.closed:
            await window.acquire()
            reply = await conn.send(*self.next_request(trader))
            reply.add_done_callback(lambda _: window.release())

    async def submit_big_orders(self) -> None:
        async def submit(trader, symbol):
            trader.big_symbol = symbol
            trader.big_request = {"portfolioId": trader.portfolio_id, "symbol": symbol, "side": "BUY",
                                  "orderType": "MARKET", "quantity": BIG_QUANTITY, "timeInForce": "GTC",
                                  "clientOrderId": f"{trader.username}-big"}
            reply = await self.subscribers[trader.username].call("SUBMIT_ORDER", trader.big_request, timeout=30)
            assert reply["type"] == "ORDER_SUBMITTED", reply
            trader.big_order_id = reply["data"]["order"]["orderId"]

        await asyncio.gather(*(submit(trader, symbol) for trader, symbol in zip(self.traders, BIG_SYMBOLS,
                                                                                 strict=True)))

    def big_orders_filling(self) -> bool:
        """Every big order has fills and is not done: the kill lands while it is partially filled."""
        for trader in self.traders:
            reports = trader.fills.get(trader.big_order_id)
            if not reports:
                return False
            assert reports[-1]["leavesQuantity"] > 0, "a big order filled completely before the kill"
        return True

    def progress(self) -> str:
        return (f"{len(self.acks)} acknowledgements (want {MIN_ACKS_BEFORE_KILL}), {self.fill_count} fills "
                f"(want {MIN_FILLS_BEFORE_KILL}), {self.rate_limited} rate-limited, big orders "
                f"{[t.big_order_id for t in self.traders]}, unexpected replies {self.unexpected[:3]}")

    async def close(self) -> None:
        conns = [conn for conn, _ in self.flood_conns] + list(self.subscribers.values()) + [self.market]
        await asyncio.gather(*(conn.close() for conn in conns if conn is not None))


def register(port: int, username: str) -> Trader:
    body = ujson.dumps({"username": username, "password": "durable password"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/register", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201, response.status
        answer = ujson.loads(response.read())
    return Trader(username, answer["token"], answer["user"]["userId"])


async def flood_until_killed(flood: Flood, process) -> None:
    """Connect, flood, submit the big orders once enough is acknowledged, and SIGKILL the server mid-flood.

    Where the kill lands is drawn from the flood's seed: after 1 to 2 times the minimum acknowledgements, and
    once 5 % to 95 % of the last burst is answered.
    """
    min_acks = flood.rng.randint(MIN_ACKS_BEFORE_KILL, 2 * MIN_ACKS_BEFORE_KILL)
    answered_share = flood.rng.uniform(0.05, 0.95)
    await flood.connect()
    await until(lambda: all(s in flood.quotes for s in (*FLOOD_SYMBOLS, *BIG_SYMBOLS)), 15, "quotes")
    stop = asyncio.Event()
    pumps = [asyncio.create_task(flood.pump(conn, trader, stop)) for conn, trader in flood.flood_conns]
    try:
        await until(lambda: flood.unexpected or (len(flood.acks) >= min_acks
                                                 and flood.fill_count >= MIN_FILLS_BEFORE_KILL),
                    FLOOD_TIMEOUT_S, flood.progress)
        assert not flood.unexpected, flood.unexpected[:5]
        await flood.submit_big_orders()
        await until(lambda: flood.big_orders_filling() or flood.unexpected, FLOOD_TIMEOUT_S, flood.progress)
        assert not flood.unexpected, flood.unexpected[:5]
        # A last burst on every connection (within the server's burst allowance); the kill lands once a
        # share of it is answered, while the server is still working through the rest: some requests
        # stored and answered, some stored but not answered, some never read.
        burst = [await conn.send(*flood.next_request(trader), paced=False)
                 for conn, trader in flood.flood_conns for _ in range(KILL_BURST)]
        await until(lambda: sum(reply.done() for reply in burst) >= int(len(burst) * answered_share), FLOOD_TIMEOUT_S,
                    lambda: f"answers to the last burst: {sum(reply.done() for reply in burst)} of {len(burst)}")
        process.kill()  # SIGKILL
        process.wait(timeout=10)
        await until(lambda: all(conn.closed for conn, _ in flood.flood_conns), 15, "the clients to see the kill")
    finally:
        stop.set()
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await flood.close()


# what the killed process left ----------------------------------------------------------------------

@dataclass
class Stored:
    """What one user has in storage: orders, first events by clientOrderId, events, fills."""

    orders: dict          # orderId -> Order
    by_client_id: dict    # clientOrderId -> (Order, eventId, payload)
    events: dict          # eventId -> (type, data)
    fills: dict           # executionId -> Fill


def stored_for(storage: Storage, trader: Trader) -> Stored:
    orders, cursor = {}, None
    while True:
        page, cursor = storage.order_history(user_ids=[trader.user_id], limit=500, before=cursor)
        orders.update((order.order_id, order) for order in page)
        if cursor is None:
            break
    by_client_id = {order.client_order_id: storage.client_order(trader.user_id, order.client_order_id)
                    for order in orders.values() if order.client_order_id is not None}
    events = {event_id: (event_type, ujson.loads(payload))
              for event_id, event_type, payload in storage.events_after(trader.user_id, 0, limit=10**7)}
    fills = {fill.execution_id: fill for pid in storage.portfolio_ids_of(trader.user_id)
             for fill in storage.fills_for(pid, limit=10**7)}
    return Stored(orders, by_client_id, events, fills)


def check_everything_acknowledged_is_stored(storage: Storage, flood: Flood, when: str) -> dict[str, Stored]:
    stored = {trader.username: stored_for(storage, trader) for trader in flood.traders}
    traders = {trader.username: trader for trader in flood.traders}
    for ack in flood.acks:  # (a) every acknowledged order, with its first event exactly as the client read it
        mine = stored[ack.username]
        assert ack.order_id in mine.orders, f"{when}: acknowledged order {ack.order_id} ({ack.request}) is lost"
        client_order_id = ack.request["clientOrderId"]
        order, event_id, payload = mine.by_client_id[client_order_id]
        assert order.order_id == ack.order_id, f"{when}: {client_order_id} names {order.order_id}, not {ack.order_id}"
        assert (event_id, ujson.loads(payload)) == (ack.data["eventId"], ack.data), \
            f"{when}: first event of {ack.order_id} differs from the acknowledgement {ack.data}"
    for username, trader in traders.items():  # (b) every event and execution report read is stored as read
        mine = stored[username]
        for event_id, (message_type, data) in trader.events.items():
            assert mine.events.get(event_id) == (message_type, data), \
                f"{when}: {username}'s event {event_id} {message_type} {data} is stored as {mine.events.get(event_id)}"
            if message_type == "EXECUTION_REPORT":
                fill = mine.fills.get(data["executionId"])
                assert fill is not None, f"{when}: execution {data['executionId']} ({data}) is not in the fills"
                assert (fill.order_id, fill.quantity, fill.price_cents) == (
                    data["orderId"], data["fillQuantity"], cents(data["fillPrice"])), (when, fill, data)
        assert sorted(mine.events) == list(range(1, len(mine.events) + 1)), \
            f"{when}: {username}'s stored eventIds are not 1..n"
        for pid in storage.portfolio_ids_of(trader.user_id):  # (c) cash and positions from the fills alone
            result = storage.reconcile(pid)
            assert result["ok"], f"{when}: portfolio {pid} does not reconcile: {result['differences'][:10]}"
            assert result["fills"] > 0, f"{when}: portfolio {pid} has no fills: the flood did not trade"
    return stored


def inspect_copy(data_dir, copy_dir, flood: Flood) -> dict[str, Stored]:
    """Check a copy of the killed server's files, so that the restart still recovers the originals."""
    shutil.copytree(data_dir, copy_dir)
    with Storage.in_dir(copy_dir, SystemClock()) as storage:
        return check_everything_acknowledged_is_stored(storage, flood, "after SIGKILL")


# after the restart -------------------------------------------------------------------------------

async def resume(flood: Flood, trader: Trader, at_kill: Stored) -> dict:
    """One user reconnects: replay, repeats, in-flight resends, a new order, the big order filling on."""
    noted = {"new_in_flight": 0, "stored_in_flight": 0, "repeats": 0, "events": {}, "executions": set()}
    url = flood.url("/ws/orders", trader.token)
    conn = await Connection.open(url, f"{trader.username}-again", lambda *a: None)
    # Repeats and resends go over other connections, pipelined (each has its own rate allowance);
    # the subscribed connection then reads every new event of the user as a push, in eventId order.
    helpers = [await Connection.open(url, f"{trader.username}-helper{n}", lambda *a: None) for n in range(3)]
    try:
        active = {o["orderId"]: o for o in (await conn.first("ACTIVE_ORDERS"))["data"]["orders"]}
        big_at_kill = at_kill.orders[trader.big_order_id]
        assert big_at_kill.status.value == "PARTIALLY_FILLED", big_at_kill
        assert trader.big_order_id in active, f"open order {trader.big_order_id} was not reloaded: {list(active)}"
        assert active[trader.big_order_id]["filledQuantity"] >= big_at_kill.filled_quantity

        # (d) replay from the last eventId the subscribed client read
        seen = trader.subscriber_ids
        last_seen = seen[-1]
        assert seen == list(range(1, last_seen + 1)), f"{trader.username}: the subscriber missed events before the kill"
        confirmed = await conn.call("SUBSCRIBE_ORDERS", {"sinceEventId": last_seen})
        replayed = [m for m in conn.messages[:conn.messages.index(confirmed)] if m["type"] in ORDER_EVENT_TYPES]
        last_event_id = confirmed["data"]["lastEventId"]
        assert confirmed["data"]["recovered"] is True, confirmed
        assert [m["data"]["eventId"] for m in replayed] == list(range(last_seen + 1, last_event_id + 1)), \
            f"{trader.username}: replay after {last_seen} is not the events up to {last_event_id} in order"
        assert all("requestId" not in m for m in replayed)
        for message in replayed:
            event_id = message["data"]["eventId"]
            if event_id in at_kill.events:
                assert (message["type"], message["data"]) == at_kill.events[event_id], event_id
            if event_id in trader.events:
                assert (message["type"], message["data"]) == trader.events[event_id], event_id

        async def resend(requests):
            replies = []
            for n, request in enumerate(requests):
                replies.append(await helpers[n % len(helpers)].send("SUBMIT_ORDER", request))
            return await asyncio.wait_for(asyncio.gather(*replies), AFTER_RESTART_TIMEOUT_S)

        # a repeated clientOrderId returns the original: the last acknowledged ones and a random sample
        acks = [ack for ack in flood.acks if ack.username == trader.username]
        half = REPEATS_PER_USER // 2
        sample = acks[-half:] + flood.rng.sample(acks[:-half], half)
        for ack, again in zip(sample, await resend([ack.request for ack in sample]), strict=True):
            assert again is not None and (again["type"], again["data"]) == (ack.type, ack.data), \
                f"repeat of {ack.request['clientOrderId']} after the restart: {again} instead of {ack.data}"
            noted["repeats"] += 1

        # requests in flight at the kill, sent again: the stored order if it was stored, else a new one
        in_flight = [p.data for c, t in flood.flood_conns if t is trader for p in c.unanswered
                     if p.type == "SUBMIT_ORDER"]
        for request, again in zip(in_flight, await resend(in_flight), strict=True):
            assert again is not None and again["type"] in ("ORDER_SUBMITTED", "ORDER_REJECTED"), (request, again)
            stored = at_kill.by_client_id.get(request["clientOrderId"])
            if stored is not None:
                assert again["data"] == ujson.loads(stored[2]), (request, again, stored)
                noted["stored_in_flight"] += 1
            else:
                assert again["data"]["order"]["orderId"] not in at_kill.orders, again
                noted["new_in_flight"] += 1

        # (e) a new order fills, and the big order reloaded from storage keeps filling
        new = await conn.call("SUBMIT_ORDER", {"portfolioId": trader.portfolio_id, "symbol": "NVTX", "side": "BUY",
                                               "orderType": "MARKET", "quantity": 5,
                                               "clientOrderId": f"{trader.username}-after-restart"})
        assert new["type"] == "ORDER_SUBMITTED", new
        new_id = new["data"]["order"]["orderId"]
        assert new_id not in at_kill.orders

        def reports(order_id):
            return [m["data"] for m in conn.messages if m["type"] == "EXECUTION_REPORT"
                    and m["data"]["orderId"] == order_id and m["data"]["executionId"] not in at_kill.fills]

        await until(lambda: any(m["type"] == "ORDER_FILLED" and m["data"]["order"]["orderId"] == new_id
                                for m in conn.messages), AFTER_RESTART_TIMEOUT_S, f"{new_id} to fill")
        await until(lambda: reports(trader.big_order_id), AFTER_RESTART_TIMEOUT_S,
                    f"{trader.big_order_id} (open at the kill) to fill again after the restart")
        assert reports(trader.big_order_id)[0]["cumulativeQuantity"] > big_at_kill.filled_quantity

        # every event on the subscribed connection, replayed or live, in eventId order without a gap
        events = [m for m in conn.messages if m["type"] in ORDER_EVENT_TYPES]
        ids = [m["data"]["eventId"] for m in events]
        assert ids == list(range(last_seen + 1, last_seen + 1 + len(ids))), \
            f"{trader.username}: eventIds read after the restart are not strictly increasing without gaps: {ids}"
        noted["events"] = {m["data"]["eventId"]: (m["type"], m["data"]) for m in events}
        noted["executions"] = {m["data"]["executionId"] for m in events if m["type"] == "EXECUTION_REPORT"}
        return noted
    finally:
        await asyncio.gather(conn.close(), *(helper.close() for helper in helpers))


async def resume_all(flood: Flood, at_kill: dict[str, Stored], port: int) -> dict[str, dict]:
    flood.port = port
    results = await asyncio.gather(*(resume(flood, trader, at_kill[trader.username])
                                     for trader in flood.traders))
    return {trader.username: result for trader, result in zip(flood.traders, results, strict=True)}


# the test ------------------------------------------------------------------------------------------

KILL_ROUNDS = int(os.environ.get("STOCKQUEST_KILL_ROUNDS", "3"))  # 30: the long run (docs/reliability.md)


@pytest.mark.parametrize("kill_round", range(KILL_ROUNDS))
def test_sigkill_mid_flood_loses_no_acknowledged_order_or_fill_and_trading_resumes(start_server, tmp_path,
                                                                                    kill_round):
    data_dir = tmp_path / "data"
    process, port = start_server(*SERVER_FLAGS, data_dir=data_dir)
    traders = [register(port, f"durable{n}") for n in range(USERS)]
    flood = Flood(port, traders, seed=20261126 + kill_round)
    asyncio.run(asyncio.wait_for(flood_until_killed(flood, process), FLOOD_TIMEOUT_S * 2 + 30))
    assert process.returncode == -signal.SIGKILL
    in_flight = sum(1 for conn, _ in flood.flood_conns for p in conn.unanswered if p.type == "SUBMIT_ORDER")
    print(f"killed after {len(flood.acks)} acknowledgements, {flood.fill_count} fills, "
          f"{in_flight} submits in flight, {flood.rate_limited} rate-limited")

    at_kill = inspect_copy(data_dir, tmp_path / "at-kill", flood)

    process, port = start_server(*SERVER_FLAGS, data_dir=data_dir, port=port)
    after = asyncio.run(asyncio.wait_for(resume_all(flood, at_kill, port), AFTER_RESTART_TIMEOUT_S * 3))
    print("after the restart: " + ", ".join(
        f"{name}: {n['repeats']} repeats, in flight {n['stored_in_flight']} stored / {n['new_in_flight']} new, "
        f"{len(n['events'])} events, {len(n['executions'])} fills" for name, n in after.items()))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0, "the restarted server did not stop cleanly"

    with Storage.in_dir(data_dir, SystemClock()) as storage:
        final = check_everything_acknowledged_is_stored(storage, flood, "after the restart")
        for trader in traders:
            mine, noted = final[trader.username], after[trader.username]
            # nothing placed twice: the orders at the kill, the in-flight ones that were not stored, one new one
            assert len(mine.orders) == len(at_kill[trader.username].orders) + noted["new_in_flight"] + 1, \
                f"{trader.username}: order count after the restart shows an order placed twice"
            for event_id, event in noted["events"].items():
                assert mine.events[event_id] == event, f"{trader.username}: event {event_id} read after the restart"
            assert noted["executions"] <= mine.fills.keys()
