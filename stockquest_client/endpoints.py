"""The five endpoints as objects: requests as coroutines returning typed values, pushes as async iterators.

Each endpoint remembers what it subscribed to and subscribes again on every new socket (`_restore`), so a
bot's `async for` loops go on across reconnects. Orders also resume its event stream where it left off:
SUBSCRIBE_ORDERS {sinceEventId: the last eventId seen} replays what the dropped socket missed, and events
are numbered per user, so dropping every eventId already seen gives each event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Generic, TypeVar

from .connection import Connection
from .errors import MalformedMessage, ServerError
from .messages import (
    ORDER_EVENT_TYPES,
    Bar,
    Envelope,
    ModelPerformance,
    Order,
    OrderEvent,
    OrderResult,
    Portfolio,
    PositionDetails,
    Quote,
    RiskAlert,
    RiskSnapshot,
    Signal,
    SymbolInfo,
)

if TYPE_CHECKING:
    from .client import Client

__all__ = ["Subscription", "MarketData", "Orders", "Portfolios", "Risk", "Signals"]

log = logging.getLogger("stockquest_client")
T = TypeVar("T")
_END = object()


def _items(data: dict, key: str) -> list[dict]:
    """The list of objects under `key` (absent: none); MalformedMessage if it is anything else."""
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MalformedMessage(f"{key!r} is not a list of objects")
    return items


class Subscription(Generic[T]):
    """Pushed values as an async iterator: `async for quote in client.market.quotes(["NVTX"])`.

    It starts listening when it is created (so nothing sent meanwhile is missed) and sends its subscribe
    request on the first iteration. Leaving `async with` or calling `aclose()` unsubscribes. With `maxsize`,
    a reader that falls behind loses the oldest values (quotes: only the latest matter); without, nothing is lost.
    """

    def __init__(self, *, maxsize: int = 0, start: Callable[[], Awaitable[None]] | None = None,
                 stop: Callable[[], Awaitable[None]] | None = None):
        self._queue: asyncio.Queue = asyncio.Queue(maxsize)
        self._start, self._stop = start, stop
        self._ended = False
        self.dropped = 0

    def put(self, item: T) -> None:
        if self._ended:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(item)

    def end(self) -> None:
        """No more values: the iteration stops once the queued ones are read."""
        if not self._ended:
            self._ended = True
            if self._queue.full():
                self._queue.get_nowait()
            self._queue.put_nowait(_END)

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self._start is not None:
            start, self._start = self._start, None
            await start()
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self.end()
        if self._stop is not None:
            stop, self._stop = self._stop, None
            await stop()

    async def __aenter__(self) -> Subscription[T]:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()


class _Endpoint:
    """What every endpoint has: a lazily opened Connection, its typed requests, and its live subscriptions."""

    path = ""

    def __init__(self, client: Client):
        self._client = client
        self._connection: Connection | None = None
        self._subscriptions: set[Subscription] = set()

    @property
    def connection(self) -> Connection:
        """The socket, opened on first use."""
        if self._connection is None:
            self._connection = self._client._connection(self.path, self._restore)
            self._attach(self._connection)
            self._connection.start()
        return self._connection

    def _attach(self, connection: Connection) -> None:
        """Register the listeners this endpoint needs (once, before the socket opens)."""

    async def _restore(self) -> None:
        """Sent first on every new socket: the subscriptions the bot holds."""

    async def _request(self, message_type: str, data: dict | None, expect: str | Iterable[str], *,
                       retry: bool = True, opening: bool = False, timeout: float | None = None) -> Envelope:
        expect = (expect,) if isinstance(expect, str) else tuple(expect)
        return await self.connection.request(message_type, data, expect=expect, retry=retry, opening=opening,
                                             timeout=timeout)

    def _stream(self, *, maxsize: int = 0, start=None, stop=None) -> Subscription:
        subscription = Subscription(maxsize=maxsize, start=start, stop=stop)
        self._subscriptions.add(subscription)
        return subscription

    async def _forget(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    async def heartbeat(self) -> str:
        """Ask the server for its time (HEARTBEAT); proves the socket is alive end to end."""
        reply = await self._request("HEARTBEAT", {}, "HEARTBEAT")
        return str(reply.data.get("serverTime"))

    async def close(self) -> None:
        for subscription in list(self._subscriptions):
            subscription.end()
        if self._connection is not None:
            await self._connection.close()


# market data --------------------------------------------------------------------------------------------

class MarketData(_Endpoint):
    """/ws/market-data: quotes (pushed and on request), history, the symbol list."""

    path = "/ws/market-data"

    def __init__(self, client: Client):
        super().__init__(client)
        self._wanted: dict[str, int] = {}  # symbol -> update interval (ms), restored on every socket
        self._holders: Counter[str] = Counter()  # symbol -> open quote streams that want it

    def quotes(self, symbols: Iterable[str], interval_ms: int = 1000, *, maxsize: int = 1000) -> Subscription[Quote]:
        """Quotes of `symbols` as they change (at most every `interval_ms`), starting with the current ones."""
        symbols = [s.upper() for s in symbols]
        wanted = set(symbols)

        def on_quotes(envelope: Envelope) -> None:
            for item in _items(envelope.data, "quotes"):
                if item.get("symbol") in wanted:
                    subscription.put(Quote.from_wire(item))

        unlisten = None

        async def start() -> None:
            nonlocal unlisten
            unlisten = self.connection.listen(("REAL_TIME_UPDATE", "INITIAL_DATA"), on_quotes)
            await self._request("SUBSCRIBE", {"symbols": symbols, "updateInterval": interval_ms},
                                "SUBSCRIPTION_CONFIRMED")
            for symbol in symbols:  # noted once subscribed: from now on every new socket subscribes again
                self._wanted[symbol] = interval_ms
                self._holders[symbol] += 1

        async def stop() -> None:
            await self._forget(subscription)
            if unlisten is None:
                return
            unlisten()
            self._holders.subtract(symbols)
            unused = [s for s in symbols if self._holders[s] <= 0]
            for symbol in unused:
                self._wanted.pop(symbol, None)
                del self._holders[symbol]
            if unused and self.connection.is_ready:
                await self._request("UNSUBSCRIBE", {"symbols": unused}, "SUBSCRIPTION_CONFIRMED", retry=False)

        subscription = self._stream(maxsize=maxsize, start=start, stop=stop)
        return subscription

    async def _restore(self) -> None:
        by_interval: dict[int, list[str]] = {}
        for symbol, interval in self._wanted.items():
            by_interval.setdefault(interval, []).append(symbol)
        for interval, symbols in by_interval.items():
            await self._request("SUBSCRIBE", {"symbols": symbols, "updateInterval": interval},
                                "SUBSCRIPTION_CONFIRMED", opening=True)

    async def quote(self, symbol: str) -> Quote:
        reply = await self._request("REQUEST_QUOTE", {"symbol": symbol}, "QUOTE_RESPONSE")
        quotes = _items(reply.data, "quotes")
        if not quotes:
            raise ServerError("NOT_FOUND", f"no quote for {symbol}", "REQUEST_QUOTE")
        return Quote.from_wire(quotes[0])

    async def history(self, symbol: str, interval: str = "1m", limit: int = 100) -> list[Bar]:
        """Bars oldest first; the last one is still forming."""
        reply = await self._request("REQUEST_HISTORICAL", {"symbol": symbol, "interval": interval, "limit": limit},
                                    "HISTORICAL_DATA")
        return [Bar.from_wire(bar) for bar in _items(reply.data, "bars")]

    async def symbols(self) -> list[SymbolInfo]:
        reply = await self._request("REQUEST_SYMBOLS", {}, "SYMBOL_LIST")
        return [SymbolInfo.from_wire(s) for s in _items(reply.data, "symbols")]


# orders -------------------------------------------------------------------------------------------------

class Orders(_Endpoint):
    """/ws/orders: place, change and cancel orders; hear every order event of the user, each once, in order.

    `last_event_id` is the last event handed on; save it to resume after a restart of the bot with
    `resume_after()`. `orders` holds each order as its latest event left it.
    """

    path = "/ws/orders"

    def __init__(self, client: Client):
        super().__init__(client)
        self.last_event_id = 0
        self.orders: dict[str, Order] = {}
        self.duplicates = 0  # events heard twice (a replay overlapping live events), dropped
        self.gaps = 0  # times an eventId was skipped: should stay 0
        self._resume = False
        self._changed: asyncio.Future | None = None

    def resume_after(self, event_id: int) -> None:
        """Hear events after `event_id` (e.g. saved by an earlier run); call before the first use."""
        self.last_event_id, self._resume = event_id, True

    def _attach(self, connection: Connection) -> None:
        connection.listen(ORDER_EVENT_TYPES, self._on_event)
        connection.listen("ACTIVE_ORDERS", self._on_active)

    async def _restore(self) -> None:
        data = {"sinceEventId": self.last_event_id} if self._resume else {}
        reply = await self._request("SUBSCRIBE_ORDERS", data, "SUBSCRIPTION_CONFIRMED", opening=True)
        last = reply.data.get("lastEventId")
        if not self._resume and isinstance(last, int):
            self.last_event_id = max(self.last_event_id, last)  # earlier events are history, not news
        if reply.data.get("recovered") is False:
            log.warning("orders: the server has no events after %s (it knows up to %s)", self.last_event_id, last)
        self._resume = True

    def _on_active(self, envelope: Envelope) -> None:
        for item in _items(envelope.data, "orders"):
            order = Order.from_wire(item)
            self.orders[order.order_id] = order
        self._notify()

    def _on_event(self, envelope: Envelope) -> None:
        event = OrderEvent.from_envelope(envelope)
        if event.event_id <= self.last_event_id:
            self.duplicates += 1
            return
        if self.last_event_id and event.event_id != self.last_event_id + 1:
            self.gaps += 1
            log.warning("orders: event %d follows %d", event.event_id, self.last_event_id)
        self.last_event_id = event.event_id
        if event.order is not None:
            self.orders[event.order.order_id] = event.order
        for subscription in list(self._subscriptions):
            subscription.put(event)
        self._notify()

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    def events(self) -> Subscription[OrderEvent]:
        """Every order event of the user from now on (fills of orders placed elsewhere too), each once, in order.

        Create it before placing the orders whose events you want: it listens from the moment it exists.
        """
        self.connection.start()  # open the socket now, so that events start flowing
        subscription = self._stream()

        async def stop() -> None:
            await self._forget(subscription)

        subscription._stop = stop
        return subscription

    async def submit(self, symbol: str, side: str, quantity: int, order_type: str | None = None, *,
                     limit_price: Decimal | str | None = None, stop_price: Decimal | str | None = None,
                     time_in_force: str = "DAY", portfolio_id: str | None = None,
                     client_order_id: str | None = None, note: str | None = None,
                     timeout: float | None = None) -> OrderResult:
        """Place an order; its ORDER_SUBMITTED or ORDER_REJECTED (a rejection is a result, not an exception).

        `order_type` defaults to LIMIT with a `limit_price`, else MARKET. A clientOrderId is made up when not
        given, so that sending it again after a dropped connection returns the same order, never a second one.
        `note`: the trade journal's "why" (at most 500 characters), which the teacher reads.
        """
        order_type = order_type or ("LIMIT" if limit_price is not None else "MARKET")
        data = {"portfolioId": portfolio_id or await self._client.portfolio_id(), "symbol": symbol,
                "side": side.upper(), "orderType": order_type.upper(), "quantity": quantity,
                "timeInForce": time_in_force.upper(),
                "clientOrderId": client_order_id or f"{self._client.order_id_prefix}-{uuid.uuid4().hex[:20]}"}
        if limit_price is not None:
            data["limitPrice"] = str(Decimal(limit_price))
        if stop_price is not None:
            data["stopPrice"] = str(Decimal(stop_price))
        if note is not None:
            data["note"] = note
        reply = await self._request("SUBMIT_ORDER", data, ("ORDER_SUBMITTED", "ORDER_REJECTED"), timeout=timeout)
        result = OrderResult.from_event(OrderEvent.from_envelope(reply))
        self.orders.setdefault(result.order.order_id, result.order)
        return result

    async def buy(self, symbol: str, quantity: int, limit_price=None, **options) -> OrderResult:
        return await self.submit(symbol, "BUY", quantity, limit_price=limit_price, **options)

    async def sell(self, symbol: str, quantity: int, limit_price=None, **options) -> OrderResult:
        return await self.submit(symbol, "SELL", quantity, limit_price=limit_price, **options)

    async def cancel(self, order_id: str) -> Order:
        """Cancel an open order. Not repeated after a dropped connection (ConnectionLost): check its status."""
        reply = await self._request("CANCEL_ORDER", {"orderId": order_id}, "ORDER_CANCELLED", retry=False)
        return OrderEvent.from_envelope(reply).order

    async def modify(self, order_id: str, *, quantity: int | None = None, limit_price=None, stop_price=None) -> Order:
        """Change an open order in place (it keeps its id, its fills and its place); `quantity` is the new total."""
        data: dict = {"orderId": order_id}
        if quantity is not None:
            data["quantity"] = quantity
        if limit_price is not None:
            data["limitPrice"] = str(Decimal(limit_price))
        if stop_price is not None:
            data["stopPrice"] = str(Decimal(stop_price))
        reply = await self._request("MODIFY_ORDER", data, "ORDER_MODIFIED", retry=False)
        return OrderEvent.from_envelope(reply).order

    async def status(self, order_id: str) -> Order:
        reply = await self._request("REQUEST_ORDER_STATUS", {"orderId": order_id}, "ORDER_STATUS")
        return Order.from_wire(reply.data.get("order") or {})

    async def history(self, *, portfolio_id: str | None = None, symbol: str | None = None,
                      status: str | None = None, limit: int = 100) -> list[Order]:
        """Up to `limit` orders, newest first, following the server's pages."""
        orders: list[Order] = []
        before = None
        while len(orders) < limit:
            data = {key: value for key, value in (("portfolioId", portfolio_id), ("symbol", symbol),
                                                  ("status", status), ("before", before)) if value is not None}
            data["limit"] = min(500, limit - len(orders))
            reply = await self._request("REQUEST_ORDER_HISTORY", data, "ORDER_HISTORY")
            orders += [Order.from_wire(o) for o in _items(reply.data, "orders")]
            before = reply.data.get("nextCursor")
            if not before:
                break
        return orders

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """The open orders this client knows of (from ACTIVE_ORDERS and the events since)."""
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    async def wait_closed(self, order_id: str, timeout: float = 30.0) -> Order:
        """Wait until the order is FILLED, CANCELLED, REJECTED or EXPIRED, as its events tell; the order then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if order_id not in self.orders:
            self.orders[order_id] = await self.status(order_id)
        while self.orders[order_id].is_open:
            if self._changed is None:
                self._changed = loop.create_future()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise asyncio.TimeoutError(f"order {order_id} still {self.orders[order_id].status}")
            await asyncio.wait_for(asyncio.shield(self._changed), remaining)
        return self.orders[order_id]


# portfolio ----------------------------------------------------------------------------------------------

class Portfolios(_Endpoint):
    """/ws/portfolio: the user's portfolios, snapshots with positions, trades, and pushed updates."""

    path = "/ws/portfolio"

    def __init__(self, client: Client):
        super().__init__(client)
        self._listed: list[Portfolio] | None = None
        self._list_seen = asyncio.Event()
        self._watched: dict[str, str] = {}  # portfolio id -> update type, restored on every socket

    def _attach(self, connection: Connection) -> None:
        def on_list(envelope: Envelope) -> None:
            self._listed = [Portfolio.from_wire(p) for p in _items(envelope.data, "portfolios")]
            self._list_seen.set()

        connection.listen("PORTFOLIO_LIST", on_list)

    async def list(self) -> list[Portfolio]:
        """The user's portfolios (without positions) as the server listed them when the socket opened."""
        await self.connection.wait_ready()
        await asyncio.wait_for(self._list_seen.wait(), self.connection.request_timeout)
        return list(self._listed or ())

    async def _id(self, portfolio_id: str | None) -> str:
        return portfolio_id or await self._client.portfolio_id()

    async def snapshot(self, portfolio_id: str | None = None) -> Portfolio:
        """The portfolio now, with its positions."""
        reply = await self._request("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": await self._id(portfolio_id)},
                                    "PORTFOLIO_SNAPSHOT")
        return Portfolio.from_wire(reply.data.get("portfolio") or {})

    async def position_details(self, symbol: str, portfolio_id: str | None = None) -> PositionDetails:
        """A position and its trades (newest first); quantity 0 for a symbol not held."""
        reply = await self._request("REQUEST_POSITION_DETAILS",
                                    {"portfolioId": await self._id(portfolio_id), "symbol": symbol}, "POSITION_DETAILS")
        return PositionDetails.from_wire(reply.data)

    def updates(self, portfolio_id: str | None = None, update_type: str = "VALUE") -> Subscription[Portfolio]:
        """The portfolio's values as the server pushes them (PORTFOLIO_SNAPSHOT first, then PORTFOLIO_UPDATE)."""
        chosen: list[str] = []

        def on_portfolio(envelope: Envelope) -> None:
            data = envelope.data.get("portfolio") if envelope.type == "PORTFOLIO_SNAPSHOT" else envelope.data
            if isinstance(data, dict) and chosen and str(data.get("portfolioId")) == chosen[0]:
                subscription.put(Portfolio.from_wire(data))

        unlisten = None

        async def start() -> None:
            nonlocal unlisten
            chosen.append(await self._id(portfolio_id))
            unlisten = self.connection.listen(("PORTFOLIO_SNAPSHOT", "PORTFOLIO_UPDATE"), on_portfolio)
            await self._request("SUBSCRIBE_PORTFOLIO", {"portfolioId": chosen[0], "updateType": update_type},
                                "SUBSCRIPTION_CONFIRMED")
            self._watched[chosen[0]] = update_type

        async def stop() -> None:
            await self._forget(subscription)
            if unlisten is not None:
                unlisten()
                self._watched.pop(chosen[0], None)
                if self.connection.is_ready:
                    await self._request("UNSUBSCRIBE_PORTFOLIO", {"portfolioId": chosen[0]},
                                        "SUBSCRIPTION_CONFIRMED", retry=False)

        subscription = self._stream(start=start, stop=stop)
        return subscription

    async def _restore(self) -> None:
        for portfolio_id, update_type in self._watched.items():
            await self._request("SUBSCRIBE_PORTFOLIO", {"portfolioId": portfolio_id, "updateType": update_type},
                                "SUBSCRIPTION_CONFIRMED", opening=True)


# risk ---------------------------------------------------------------------------------------------------

class Risk(_Endpoint):
    """/ws/risk-monitoring: a portfolio's risk metrics, its limits, and alerts."""

    path = "/ws/risk-monitoring"

    def __init__(self, client: Client):
        super().__init__(client)
        self._watched: set[str] = set()

    async def snapshot(self, portfolio_id: str | None = None) -> RiskSnapshot:
        portfolio_id = portfolio_id or await self._client.portfolio_id()
        reply = await self._request("REQUEST_RISK_SNAPSHOT", {"portfolioId": portfolio_id}, "RISK_SNAPSHOT")
        return RiskSnapshot.from_wire(reply.data)

    async def set_limits(self, limits: dict, portfolio_id: str | None = None) -> dict:
        """Change some limits (wire names: maxOrderValue, ...; None removes one); all six as now in force."""
        portfolio_id = portfolio_id or await self._client.portfolio_id()
        # SET_RISK_LIMITS takes JSON numbers only (order prices also take decimal strings); a float's shortest
        # repr of an amount in cents is that amount's decimal text, so nothing is lost on the wire.
        limits = {k: (float(v) if isinstance(v, Decimal) else v) for k, v in limits.items()}
        reply = await self._request("SET_RISK_LIMITS", {"portfolioId": portfolio_id, "limits": limits},
                                    "RISK_LIMITS_UPDATED", retry=True)
        return dict(reply.data.get("limits") or {})

    def alerts(self, portfolio_id: str | None = None) -> Subscription[RiskAlert]:
        """RISK_ALERTs of the portfolio from now on (limit crossings, stop-loss and take-profit triggers)."""
        chosen: list[str] = []

        def on_alert(envelope: Envelope) -> None:
            if chosen and str(envelope.data.get("portfolioId")) == chosen[0]:
                subscription.put(RiskAlert.from_wire(envelope.data))

        async def start() -> None:
            chosen.append(portfolio_id or await self._client.portfolio_id())
            self.connection.listen("RISK_ALERT", on_alert)
            await self._request("SUBSCRIBE_RISK", {"portfolioId": chosen[0]}, "SUBSCRIPTION_CONFIRMED")
            self._watched.add(chosen[0])

        subscription = self._stream(start=start)
        return subscription

    async def _restore(self) -> None:
        for portfolio_id in self._watched:
            await self._request("SUBSCRIBE_RISK", {"portfolioId": portfolio_id}, "SUBSCRIPTION_CONFIRMED",
                                opening=True)


# signals ------------------------------------------------------------------------------------------------

class Signals(_Endpoint):
    """/ws/ml-signals: model calls (BUY / SELL / HOLD) per symbol, their measured hit rates, the optimiser."""

    path = "/ws/ml-signals"

    def __init__(self, client: Client):
        super().__init__(client)
        self._wanted: dict[tuple[str, ...] | None, set[str]] = {}  # models -> symbols, restored on every socket

    def updates(self, symbols: Iterable[str], models: Iterable[str] | None = None) -> Subscription[Signal]:
        """Signals of `symbols` (from `models`, default all five) when they change and every 10 s."""
        symbols = [s.upper() for s in symbols]
        models = tuple(models) if models else None
        wanted = set(symbols)

        def on_signals(envelope: Envelope) -> None:
            for item in _items(envelope.data, "signals"):
                if item.get("symbol") in wanted and (
                        models is None or item.get("model") in models):
                    subscription.put(Signal.from_wire(item))

        async def start() -> None:
            self.connection.listen("SIGNAL_UPDATE", on_signals)
            await self._subscribe(symbols, models, opening=False)
            self._wanted.setdefault(models, set()).update(symbols)

        subscription = self._stream(start=start)
        return subscription

    async def _subscribe(self, symbols, models, opening: bool) -> None:
        data: dict = {"symbols": list(symbols)}
        if models:
            data["models"] = list(models)
        await self._request("SUBSCRIBE_SIGNALS", data, "SUBSCRIPTION_CONFIRMED", opening=opening)

    async def _restore(self) -> None:
        for models, symbols in self._wanted.items():
            await self._subscribe(sorted(symbols), models, opening=True)

    async def signal(self, symbol: str, models: Iterable[str] | None = None) -> list[Signal]:
        data: dict = {"symbol": symbol}
        if models:
            data["models"] = list(models)
        reply = await self._request("REQUEST_SIGNAL", data, "SIGNAL_UPDATE")
        return [Signal.from_wire(s) for s in _items(reply.data, "signals")]

    async def performance(self, model: str | None = None) -> list[ModelPerformance]:
        reply = await self._request("REQUEST_MODEL_PERFORMANCE", {"model": model} if model else {},
                                    "MODEL_PERFORMANCE")
        return [ModelPerformance.from_wire(m) for m in _items(reply.data, "models")]

    async def optimize(self, objective: str = "MAX_SHARPE", *, symbols: Iterable[str] | None = None,
                       portfolio_id: str | None = None, lookback: int = 60) -> dict:
        """OPTIMIZATION_RESULT's data as sent (weights, figures, `rebalance` orders to send yourself)."""
        data: dict = {"objective": objective, "lookback": lookback}
        if symbols:
            data["symbols"] = list(symbols)
        if portfolio_id:
            data["portfolioId"] = portfolio_id
        reply = await self._request("REQUEST_OPTIMIZATION", data, "OPTIMIZATION_RESULT")
        return dict(reply.data)
