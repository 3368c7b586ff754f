"""The order engine: pre-trade checks, reservations, matching against the simulated quotes, fills and their events."""

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, Decimal

from domain.errors import BadRequest, Forbidden, NotFound
from domain.ledger import (
    apply_fill,
    position,
    release_cash,
    release_shares,
    reserve_cash,
    reserve_shares,
    snapshot_ledger,
)
from domain.market import Quote
from domain.money import money_text
from domain.trading import (
    Commission,
    EventKind,
    Fill,
    IdSequence,
    MarketState,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    PortfolioLedger,
    Position,
    RejectReason,
    Side,
    TimeInForce,
    TradeEvent,
)

__all__ = ["OrderEngine", "TradeResult", "LevelTrigger", "ExtraCheck", "KEEP"]

ExtraCheck = Callable[[PortfolioLedger, OrderRequest, Quote], "tuple[RejectReason, str] | None"]
"""A pre-trade check run after the engine's own: a (reason, message) rejects the order with them."""

_CLOSED_MEMORY = 100_000  # closed order ids remembered, so a late CANCEL/MODIFY gets "no longer open"
_STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT)
_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)


class _Keep:
    """The default of set_position_levels' arguments: leave that level as it is (None clears it)."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


@dataclass(frozen=True, slots=True)
class LevelTrigger:
    """A stop-loss or take-profit level the price reached, and the market sell it placed (None if nothing to sell)."""

    portfolio_id: str
    user_id: str
    symbol: str
    kind: str  # "STOP_LOSS" | "TAKE_PROFIT"
    level_cents: int
    price_cents: int
    order_id: str | None


class TradeResult(list[TradeEvent]):
    """The order events of one engine call, in the order they happened (it is a `list[TradeEvent]`), plus
    exactly what the call changed, for one storage transaction.

    `orders` holds a final snapshot of every order the call created or changed, in the order they were first
    touched, including a stop that only triggered (which has no event); `fills` every execution in order;
    `portfolios` a snapshot of every ledger whose cash, reservations, positions or levels changed (a cleared
    stop-loss with nothing to sell changes a ledger without any event); `triggers` the stop-loss and
    take-profit levels reached (on_quotes only), for the risk layer's alerts.
    `total += other` merges another result in (events and fills appended, later snapshots win).
    """

    __slots__ = ("orders", "fills", "portfolios", "triggers")

    def __init__(
        self,
        events: Iterable[TradeEvent] = (),
        orders: Iterable[Order] = (),
        fills: Iterable[Fill] = (),
        portfolios: Iterable[PortfolioLedger] = (),
        triggers: Iterable["LevelTrigger"] = (),
    ):
        super().__init__(events)
        self.orders: list[Order] = list(orders)
        self.fills: list[Fill] = list(fills)
        self.portfolios: list[PortfolioLedger] = list(portfolios)
        self.triggers: list[LevelTrigger] = list(triggers)

    @property
    def events(self) -> list[TradeEvent]:
        return list(self)

    @property
    def changed(self) -> bool:
        """Whether there is anything to persist."""
        return bool(self.orders or self.portfolios)

    def __iadd__(self, other: Iterable[TradeEvent]) -> "TradeResult":
        self.extend(other)
        if isinstance(other, TradeResult):
            orders = {order.order_id: order for order in self.orders}
            orders.update((order.order_id, order) for order in other.orders)
            self.orders = list(orders.values())
            ledgers = {ledger.portfolio_id: ledger for ledger in self.portfolios}
            ledgers.update((ledger.portfolio_id, ledger) for ledger in other.portfolios)
            self.portfolios = list(ledgers.values())
            self.fills += other.fills
            self.triggers += other.triggers
        return self

    def __repr__(self) -> str:
        return (f"TradeResult({list.__repr__(self)}, orders={len(self.orders)}, fills={len(self.fills)}, "
                f"portfolios={len(self.portfolios)}, triggers={self.triggers!r})")


@dataclass(slots=True)
class _Batch:
    """Collects what one engine call changes, as it happens."""

    events: list[TradeEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    ledgers: dict[str, PortfolioLedger] = field(default_factory=dict)
    triggers: list[LevelTrigger] = field(default_factory=list)

    def event(self, kind: EventKind, order: Order, fill: Fill | None = None) -> None:
        self.events.append(TradeEvent(kind, order.snapshot(), fill))
        self.orders.setdefault(order.order_id, order)

    def touch(self, order: Order) -> None:
        self.orders.setdefault(order.order_id, order)

    def ledger(self, ledger: PortfolioLedger) -> None:
        self.ledgers.setdefault(ledger.portfolio_id, ledger)

    def result(self) -> TradeResult:
        return TradeResult(
            self.events,
            [order.snapshot() for order in self.orders.values()],
            self.fills,
            [snapshot_ledger(ledger) for ledger in self.ledgers.values()],
            self.triggers,
        )


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _market_state(state: MarketState | str) -> MarketState:
    try:
        return MarketState(state)
    except ValueError:
        raise ValueError(f"market_state must be one of {[str(s) for s in MarketState]}, not {state!r}") from None


class OrderEngine:
    """Owns open orders and the portfolios' ledgers: pre-trade checks, reservations, matching against the
    simulated quotes, fills.

    Every changing method returns a `TradeResult`: the order events in the order they happened (each carrying a
    snapshot of its order taken right after it) plus the orders, fills and ledgers to persist. Closed orders leave
    the engine after their final event; storage keeps the history.

    Matching: a buy is marketable when it is a MARKET order (or a triggered STOP) or the ask is at or below its
    limit, and fills at the ask up to the displayed ask size; a sell likewise at the bid. The displayed size of a
    quote (one symbol, one `version`) is shared by every order matched against it, in time priority, whether at
    submission or in `on_quotes`; the rest fills against later quotes. Call `on_quotes` only while the market is
    open: a paused or closed market fills nothing.

    Buys reserve `remaining x reserve price + Commission.worst_case(remaining)`, where the reserve price is the
    limit (LIMIT, STOP_LIMIT) or the ask, or the stop if higher, times (1 + market_buffer) rounded up to a cent
    (MARKET, STOP). A buy fill never takes more than the buying power plus the order's own reservation, keeping
    the reservation of what is left: at an ask above the reserve price it fills only what is affordable, and
    an order that can afford nothing at the current ask is cancelled. Sells reserve their remaining shares;
    a sell's commission is taken from its proceeds and capped at them, so a sell never lowers cash.
    """

    def __init__(
        self,
        *,
        order_ids: IdSequence,
        execution_ids: IdSequence,
        commission: Commission = Commission(),
        allow_short: bool = False,
        max_quantity: int = 1_000_000,
        market_buffer: Decimal = Decimal("0.05"),
        price_tick_cents: int = 1,
        max_price_cents: int = 100_000_000,
        extra_checks: Sequence[ExtraCheck] = (),
    ):
        if not _whole(max_quantity) or max_quantity < 1:
            raise ValueError("max_quantity must be a positive integer")
        if not _whole(price_tick_cents) or price_tick_cents < 1:
            raise ValueError("price_tick_cents must be a positive integer")
        if not _whole(max_price_cents) or max_price_cents < price_tick_cents:
            raise ValueError("max_price_cents must be an integer of at least one tick")
        market_buffer = Decimal(market_buffer)
        if not market_buffer.is_finite() or market_buffer < 0:
            raise ValueError("market_buffer must be a non-negative Decimal")
        self._order_ids = order_ids
        self._execution_ids = execution_ids
        self.commission = commission
        self.allow_short = bool(allow_short)
        self.max_quantity = max_quantity
        self.market_buffer = market_buffer
        self.price_tick_cents = price_tick_cents
        self.max_price_cents = max_price_cents
        self.extra_checks: tuple[ExtraCheck, ...] = tuple(extra_checks)
        self.day_index = 0  # the latest simulated day seen; stop-loss / take-profit orders are accepted in it
        self._ledgers: dict[str, PortfolioLedger] = {}
        self._open: dict[str, Order] = {}  # insertion order is time priority
        self._reserve_price: dict[str, int] = {}  # open buys: the per-share price their reservation is based on
        self._closed: OrderedDict[str, str] = OrderedDict()  # recently closed order id -> user id
        self._taken: dict[str, list[int]] = {}  # symbol -> [quote version, ask shares taken, bid shares taken]

    # ----- portfolios --------------------------------------------------------------------------------------

    def add_portfolio(self, ledger: PortfolioLedger) -> None:
        """Take a ledger over (the engine mutates it from now on); ValueError if its id is taken."""
        if ledger.portfolio_id in self._ledgers:
            raise ValueError(f"portfolio {ledger.portfolio_id} is already in the engine")
        self._ledgers[ledger.portfolio_id] = ledger

    def portfolio(self, portfolio_id: str) -> PortfolioLedger:
        """The live ledger (read it, do not change it); NotFound if unknown."""
        ledger = self._ledgers.get(portfolio_id) if isinstance(portfolio_id, str) else None
        if ledger is None:
            raise NotFound(f"unknown portfolio {portfolio_id!r}")
        return ledger

    def portfolios(self) -> list[PortfolioLedger]:
        """Every live ledger, in the order they were added."""
        return list(self._ledgers.values())

    def _owned(self, user_id: str, portfolio_id: str) -> PortfolioLedger:
        ledger = self.portfolio(portfolio_id)
        if ledger.owner_id != user_id:
            raise Forbidden("that portfolio belongs to someone else")
        return ledger

    # ----- restore -----------------------------------------------------------------------------------------

    def load_open_orders(self, orders: Iterable[Order]) -> None:
        """Take over the open orders storage kept (after a restart) and recompute every reservation from them.

        The engine mutates the given Order objects from now on; closed ones are ignored. Their ledgers must have
        been added. Time priority follows `created_at_ms` (ties keep the given order). A MARKET or STOP buy keeps
        the reserve price implied by its stored `reserved_cash_cents`.
        """
        incoming = [order for order in orders if order.is_open]
        for order in incoming:
            if order.portfolio_id not in self._ledgers:
                raise NotFound(f"order {order.order_id} belongs to unknown portfolio {order.portfolio_id!r}")
            if order.order_id in self._open:
                raise ValueError(f"order {order.order_id} is already open in the engine")
        merged = sorted([*self._open.values(), *incoming], key=lambda order: order.created_at_ms)
        self._open = {order.order_id: order for order in merged}
        for order in incoming:
            if order.side is Side.BUY:
                price = self._restored_reserve_price(order)
                self._reserve_price[order.order_id] = price
                order.reserved_cash_cents = self._buy_reservation(price, order)
            else:
                order.reserved_cash_cents = 0
        for ledger in self._ledgers.values():
            ledger.reserved_cash_cents = 0
            for held in ledger.positions.values():
                held.reserved_quantity = 0
        for order in self._open.values():
            ledger = self._ledgers[order.portfolio_id]
            if order.side is Side.BUY:
                ledger.reserved_cash_cents += order.reserved_cash_cents
            else:
                position(ledger, order.symbol).reserved_quantity += order.remaining_quantity

    def _restored_reserve_price(self, order: Order) -> int:
        if order.order_type in _LIMIT_TYPES:
            return order.limit_price
        remaining = order.remaining_quantity
        for_price = order.reserved_cash_cents - self.commission.worst_case(remaining, order.filled_quantity > 0)
        price = max(0, -(-for_price // remaining))
        if order.order_type is OrderType.STOP and not price:
            price = self._buffered(order.stop_price)
        return price

    # ----- submit ------------------------------------------------------------------------------------------

    def submit(
        self,
        user_id: str,
        request: OrderRequest,
        quote: Quote | None,
        *,
        now_ms: int,
        market_ms: int,
        day_index: int,
        market_state: str,
    ) -> TradeResult:
        """Check, record and (if the market is OPEN) match one order at once against `quote`.

        NotFound for an unknown portfolio and Forbidden for someone else's: nothing is created. Otherwise an order
        record always comes out: ORDER_REJECTED (checks in this order: UNKNOWN_SYMBOL, INVALID_QUANTITY,
        INVALID_PRICE, MARKET_CLOSED, INSUFFICIENT_SHARES, INSUFFICIENT_FUNDS, then the extra checks), or
        ORDER_SUBMITTED followed by whatever matching did at once (fills; IOC's and FOK's cancellation).
        A PAUSED market accepts every order but IOC and FOK and matches nothing; a CLOSED one also rejects MARKET.
        """
        state = _market_state(market_state)
        ledger = self._owned(user_id, request.portfolio_id)
        self.day_index = day_index
        batch = _Batch()
        self._submit(batch, ledger, user_id, request, quote, now_ms, market_ms, day_index, state, self.extra_checks)
        return batch.result()

    def reject(
        self,
        user_id: str,
        request: OrderRequest,
        reason: RejectReason,
        message: str,
        *,
        now_ms: int,
        day_index: int,
    ) -> TradeResult:
        """Record a rejection decided outside the engine (DUPLICATE_CLIENT_ORDER_ID: recorded without the id)."""
        self._owned(user_id, request.portfolio_id)
        reason = RejectReason(reason)
        client_order_id = None if reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID else request.client_order_id
        batch = _Batch()
        order = self._new_order(user_id, request, now_ms, day_index, client_order_id)
        self._reject(batch, order, reason, message)
        return batch.result()

    def _new_order(
        self, user_id: str, request: OrderRequest, now_ms: int, day_index: int, client_order_id: str | None
    ) -> Order:
        return Order(
            order_id=self._order_ids(),
            client_order_id=client_order_id,
            portfolio_id=request.portfolio_id,
            user_id=user_id,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            time_in_force=request.time_in_force,
            status=OrderStatus.NEW,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            day_index=day_index,
        )

    def _reject(self, batch: _Batch, order: Order, reason: RejectReason, message: str) -> None:
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        order.error = message
        self._remember_closed(order)
        batch.event(EventKind.ORDER_REJECTED, order)

    def _submit(
        self,
        batch: _Batch,
        ledger: PortfolioLedger,
        user_id: str,
        request: OrderRequest,
        quote: Quote | None,
        now_ms: int,
        market_ms: int,
        day_index: int,
        state: str,
        checks: Sequence[ExtraCheck],
    ) -> Order:
        order = self._new_order(user_id, request, now_ms, day_index, request.client_order_id)
        verdict = self._pre_trade(ledger, request, quote, state, checks)
        if isinstance(verdict, tuple):
            self._reject(batch, order, *verdict)
            return order
        self._open[order.order_id] = order
        if order.side is Side.BUY:
            self._reserve_price[order.order_id] = verdict
            order.reserved_cash_cents = self._buy_reservation(verdict, order)
            reserve_cash(ledger, order.reserved_cash_cents)
        else:
            reserve_shares(ledger, order.symbol, order.quantity, allow_short=self.allow_short)
        batch.ledger(ledger)
        batch.event(EventKind.ORDER_SUBMITTED, order)
        if state == "OPEN":
            self._execute_at_once(batch, ledger, order, quote, now_ms, market_ms)
        return order

    def _pre_trade(
        self,
        ledger: PortfolioLedger,
        request: OrderRequest,
        quote: Quote | None,
        state: str,
        checks: Sequence[ExtraCheck],
    ) -> tuple[RejectReason, str] | int:
        """The rejection, or (accepted) the reserve price of a buy (0 for a sell)."""
        if quote is None:
            return RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {request.symbol!r}"
        problem = self._quantity_problem(request.quantity, 1)
        if problem:
            return RejectReason.INVALID_QUANTITY, problem
        problem = self._prices_problem(request.order_type, request.limit_price, request.stop_price)
        if problem:
            return RejectReason.INVALID_PRICE, problem
        tif = request.time_in_force
        if state == "PAUSED" and tif in (TimeInForce.IOC, TimeInForce.FOK):
            return RejectReason.MARKET_CLOSED, f"the market is paused: {tif} orders cannot rest until it resumes"
        if state == "CLOSED" and (request.order_type is OrderType.MARKET or tif in (TimeInForce.IOC, TimeInForce.FOK)):
            return RejectReason.MARKET_CLOSED, "the market is closed: MARKET, IOC and FOK orders cannot rest"
        reserve_price = 0
        if request.side is Side.SELL:
            if not self.allow_short:
                held = ledger.positions.get(request.symbol)
                available = 0 if held is None else held.quantity - held.reserved_quantity
                if request.quantity > available:
                    return (
                        RejectReason.INSUFFICIENT_SHARES,
                        f"only {max(available, 0)} {request.symbol} shares are available to sell",
                    )
        else:
            reserve_price = self._reserve_price_for(request.order_type, request.limit_price, request.stop_price, quote)
            needed = request.quantity * reserve_price + self.commission.worst_case(request.quantity, False)
            if needed > ledger.buying_power_cents:
                return (
                    RejectReason.INSUFFICIENT_FUNDS,
                    f"the order needs {money_text(needed)} including commission; buying power is "
                    f"{money_text(ledger.buying_power_cents)}",
                )
        for check in checks:
            verdict = check(ledger, request, quote)
            if verdict is not None:
                reason, message = verdict
                return RejectReason(reason), message
        return reserve_price

    def _quantity_problem(self, quantity: object, minimum: int) -> str | None:
        if not _whole(quantity) or not minimum <= quantity <= self.max_quantity:
            return f"quantity must be a whole number from {minimum} to {self.max_quantity}"
        return None

    def _price_problem(self, name: str, cents: object) -> str | None:
        if not _whole(cents) or cents <= 0:
            return f"{name} must be positive"
        if cents > self.max_price_cents:
            return f"{name} must be at most {money_text(self.max_price_cents)}"
        if cents % self.price_tick_cents:
            return f"{name} must be a multiple of {money_text(self.price_tick_cents)}"
        return None

    def _prices_problem(self, order_type: OrderType, limit_price: object, stop_price: object) -> str | None:
        for name, value, needed in (
            ("limit price", limit_price, order_type in _LIMIT_TYPES),
            ("stop price", stop_price, order_type in _STOP_TYPES),
        ):
            if value is None:
                if needed:
                    return f"a {order_type} order needs a {name}"
            elif not needed:
                return f"a {order_type} order takes no {name}"
            else:
                problem = self._price_problem(name, value)
                if problem:
                    return problem
        return None

    def _buffered(self, cents: int) -> int:
        return int((Decimal(cents) * (1 + self.market_buffer)).to_integral_value(rounding=ROUND_CEILING))

    def _reserve_price_for(self, order_type: OrderType, limit_price: int | None, stop_price: int | None,
                           quote: Quote) -> int:
        if order_type in _LIMIT_TYPES:
            return limit_price
        base = quote.ask if order_type is OrderType.MARKET else max(quote.ask, stop_price)
        return max(1, self._buffered(base))

    def _buy_reservation(self, reserve_price: int, order: Order, remaining: int | None = None) -> int:
        remaining = order.remaining_quantity if remaining is None else remaining
        if remaining <= 0:
            return 0
        return remaining * reserve_price + self.commission.worst_case(remaining, order.filled_quantity > 0)

    # ----- matching ----------------------------------------------------------------------------------------

    def _execute_at_once(
        self, batch: _Batch, ledger: PortfolioLedger, order: Order, quote: Quote, now_ms: int, market_ms: int
    ) -> None:
        if order.time_in_force is TimeInForce.FOK:
            self._trigger(batch, order, quote, now_ms)
            shares, _, _ = self._fillable(ledger, order, quote)
            if shares == order.remaining_quantity:
                self._match(batch, ledger, order, quote, now_ms, market_ms)
            if order.is_open:
                self._close(batch, ledger, order, OrderStatus.CANCELLED, now_ms,
                            "fill or kill: the whole quantity could not fill at once")
            return
        self._match(batch, ledger, order, quote, now_ms, market_ms)
        if order.time_in_force is TimeInForce.IOC and order.is_open:
            self._close(batch, ledger, order, OrderStatus.CANCELLED, now_ms,
                        "immediate or cancel: the quantity that could not fill at once was cancelled")

    def _trigger(self, batch: _Batch, order: Order, quote: Quote, now_ms: int) -> None:
        if order.order_type not in _STOP_TYPES or order.stop_triggered:
            return
        if quote.price >= order.stop_price if order.side is Side.BUY else quote.price <= order.stop_price:
            order.stop_triggered = True
            order.updated_at_ms = now_ms
            batch.touch(order)

    def _displayed(self, quote: Quote, buy: bool) -> int:
        taken = self._taken.get(quote.symbol)
        size = quote.ask_size if buy else quote.bid_size
        if taken is not None and taken[0] == quote.version:
            size -= taken[1 if buy else 2]
        return size

    def _take(self, quote: Quote, buy: bool, shares: int) -> None:
        taken = self._taken.get(quote.symbol)
        if taken is None or taken[0] != quote.version:
            taken = self._taken[quote.symbol] = [quote.version, 0, 0]
        taken[1 if buy else 2] += shares

    def _fillable(self, ledger: PortfolioLedger, order: Order, quote: Quote) -> tuple[int, int, bool]:
        """(shares that can fill now, at what price, whether funds alone stopped a marketable buy)."""
        buy = order.side is Side.BUY
        price = quote.ask if buy else quote.bid
        if price <= 0 or (order.order_type in _STOP_TYPES and not order.stop_triggered):
            return 0, price, False
        if order.order_type in _LIMIT_TYPES and (price > order.limit_price if buy else price < order.limit_price):
            return 0, price, False
        shares = min(order.remaining_quantity, self._displayed(quote, buy))
        if shares <= 0:
            return 0, price, False
        if buy:
            shares = self._affordable(ledger, order, price, shares)
            # At or below the reserve price only per-share commission rounding (a cent) can stand in the way of
            # a partial fill, and the whole remaining quantity always fits: such an order waits, it is not cancelled.
            return shares, price, shares == 0 and price > self._reserve_price[order.order_id]
        return shares, price, False

    def _affordable(self, ledger: PortfolioLedger, order: Order, price: int, most: int) -> int:
        """The most shares, up to `most`, a buy can take at `price` and still reserve for what it leaves."""
        budget = ledger.buying_power_cents + order.reserved_cash_cents
        reserve_price = self._reserve_price[order.order_id]
        first = order.filled_quantity == 0
        remaining = order.remaining_quantity

        def cost(shares: int) -> int:
            left = remaining - shares
            keep = left * reserve_price + self.commission.worst_case(left, True) if left else 0
            return shares * price + self.commission.for_fill(shares, first) + keep

        if cost(most) <= budget:
            return most
        best, low, high = 0, 1, most - 1
        while low <= high:  # cost grows with shares when the price is above the reserve price
            middle = (low + high) // 2
            if cost(middle) <= budget:
                best, low = middle, middle + 1
            else:
                high = middle - 1
        return best

    def _match(
        self, batch: _Batch, ledger: PortfolioLedger, order: Order, quote: Quote, now_ms: int, market_ms: int
    ) -> None:
        self._trigger(batch, order, quote, now_ms)
        shares, price, short_of_funds = self._fillable(ledger, order, quote)
        if shares:
            self._fill(batch, ledger, order, quote, shares, price, now_ms, market_ms)
        elif short_of_funds:
            self._close(batch, ledger, order, OrderStatus.CANCELLED, now_ms, "insufficient funds at the current ask")

    def _fill(
        self,
        batch: _Batch,
        ledger: PortfolioLedger,
        order: Order,
        quote: Quote,
        shares: int,
        price: int,
        now_ms: int,
        market_ms: int,
    ) -> None:
        buy = order.side is Side.BUY
        commission = self.commission.for_fill(shares, order.filled_quantity == 0)
        if not buy:
            commission = min(commission, shares * price)
        fill = Fill(
            execution_id=self._execution_ids(),
            order_id=order.order_id,
            portfolio_id=order.portfolio_id,
            user_id=order.user_id,
            symbol=order.symbol,
            side=order.side,
            quantity=shares,
            price_cents=price,
            commission_cents=commission,
            time_ms=now_ms,
            market_time_ms=market_ms,
        )
        self._take(quote, buy, shares)
        if buy:
            release_cash(ledger, order.reserved_cash_cents)
        else:
            release_shares(ledger, order.symbol, shares)
        apply_fill(ledger, fill)
        order.filled_quantity += shares
        order.filled_notional_cents += shares * price
        order.commission_cents += commission
        order.updated_at_ms = now_ms
        done = order.filled_quantity == order.quantity
        order.status = OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED
        if buy:
            order.reserved_cash_cents = 0 if done else self._buy_reservation(self._reserve_price[order.order_id], order)
            reserve_cash(ledger, order.reserved_cash_cents)
        if done:
            self._forget(order)
        batch.fills.append(fill)
        batch.ledger(ledger)
        batch.event(EventKind.EXECUTION_REPORT, order, fill)
        batch.event(EventKind.ORDER_FILLED if done else EventKind.ORDER_PARTIALLY_FILLED, order)

    def _close(
        self,
        batch: _Batch,
        ledger: PortfolioLedger,
        order: Order,
        status: OrderStatus,
        now_ms: int,
        error: str | None,
    ) -> None:
        """Cancel or expire an open order: release what it holds, announce it, drop it."""
        if order.side is Side.BUY:
            release_cash(ledger, order.reserved_cash_cents)
            order.reserved_cash_cents = 0
        else:
            release_shares(ledger, order.symbol, order.remaining_quantity)
        order.status = status
        order.error = error
        order.updated_at_ms = now_ms
        self._forget(order)
        batch.ledger(ledger)
        batch.event(EventKind.ORDER_CANCELLED, order)

    def _forget(self, order: Order) -> None:
        self._open.pop(order.order_id, None)
        self._reserve_price.pop(order.order_id, None)
        self._remember_closed(order)

    def _remember_closed(self, order: Order) -> None:
        self._closed[order.order_id] = order.user_id
        if len(self._closed) > _CLOSED_MEMORY:
            self._closed.popitem(last=False)

    # ----- the market tick ---------------------------------------------------------------------------------

    def on_quotes(
        self, quotes: Mapping[str, Quote], *, now_ms: int, market_ms: int, day_index: int | None = None
    ) -> TradeResult:
        """One tick of an open market: trigger stops, match open orders in time priority, then protective levels.

        A position whose price is at or below its `stop_loss_cents`, or at or above its `take_profit_cents`,
        gets a MARKET DAY sell of its unreserved shares (extra checks skipped: it only reduces risk), matched
        like any order; both levels are cleared and the trigger is reported in `TradeResult.triggers`.
        `day_index` (default: the latest seen) is the day such orders are accepted in.
        """
        if day_index is not None:
            self.day_index = day_index
        batch = _Batch()
        for order in list(self._open.values()):
            quote = quotes.get(order.symbol)
            if quote is not None and order.is_open:
                self._match(batch, self._ledgers[order.portfolio_id], order, quote, now_ms, market_ms)
        self._protect(batch, quotes, now_ms, market_ms)
        return batch.result()

    def _protect(self, batch: _Batch, quotes: Mapping[str, Quote], now_ms: int, market_ms: int) -> None:
        for ledger in list(self._ledgers.values()):
            for held in list(ledger.positions.values()):
                if held.quantity <= 0 or (held.stop_loss_cents is None and held.take_profit_cents is None):
                    continue
                quote = quotes.get(held.symbol)
                if quote is None:
                    continue
                if held.stop_loss_cents is not None and quote.price <= held.stop_loss_cents:
                    kind, level = "STOP_LOSS", held.stop_loss_cents
                elif held.take_profit_cents is not None and quote.price >= held.take_profit_cents:
                    kind, level = "TAKE_PROFIT", held.take_profit_cents
                else:
                    continue
                held.stop_loss_cents = held.take_profit_cents = None
                batch.ledger(ledger)
                shares = min(held.quantity - held.reserved_quantity, self.max_quantity)
                order_id = None
                if shares > 0:
                    request = OrderRequest(ledger.portfolio_id, held.symbol, Side.SELL, OrderType.MARKET, shares)
                    order = self._submit(batch, ledger, ledger.owner_id, request, quote, now_ms, market_ms,
                                         self.day_index, MarketState.OPEN, ())
                    order_id = order.order_id
                batch.triggers.append(
                    LevelTrigger(ledger.portfolio_id, ledger.owner_id, held.symbol, kind, level, quote.price, order_id)
                )

    # ----- cancel, modify, expire --------------------------------------------------------------------------

    def _own_open_order(self, user_id: str, order_id: str) -> Order:
        order = self._open.get(order_id) if isinstance(order_id, str) else None
        if order is None:
            owner = self._closed.get(order_id) if isinstance(order_id, str) else None
            if owner is None:
                raise NotFound(f"unknown order {order_id!r}")
            if owner != user_id:
                raise Forbidden("that order belongs to someone else")
            raise BadRequest("order is no longer open")
        if order.user_id != user_id:
            raise Forbidden("that order belongs to someone else")
        return order

    def cancel(self, user_id: str, order_id: str, *, now_ms: int) -> TradeResult:
        """Cancel an open order and release what it holds.

        NotFound if the engine does not know the order (it remembers the last 100 000 closed ones: for older
        ones the caller, who has storage, decides); Forbidden if it is not the user's; BadRequest if closed.
        """
        order = self._own_open_order(user_id, order_id)
        batch = _Batch()
        self._close(batch, self._ledgers[order.portfolio_id], order, OrderStatus.CANCELLED, now_ms, None)
        return batch.result()

    def modify(
        self,
        user_id: str,
        order_id: str,
        *,
        quantity: int | None = None,
        limit_price: int | None = None,
        stop_price: int | None = None,
        quote: Quote | None,
        now_ms: int,
        market_ms: int,
        market_state: str,
    ) -> TradeResult:
        """Cancel-replace in place: same order id, the filled part kept, time priority kept.

        `quantity` is the new total and must exceed the filled quantity; prices follow the submit rules and only
        the ones the order type has can change. The reservation is recomputed (a MARKET or STOP buy re-prices it
        at `quote`) and checked against buying power, then the extra checks see the new remaining quantity.
        Any failure raises BadRequest and leaves the order unchanged. Emits ORDER_MODIFIED, then matches at once
        if the market is OPEN.
        """
        state = _market_state(market_state)
        order = self._own_open_order(user_id, order_id)
        if quantity is None and limit_price is None and stop_price is None:
            raise BadRequest("nothing to modify: give a quantity, limit price or stop price")
        new_quantity = order.quantity if quantity is None else quantity
        problem = self._quantity_problem(new_quantity, order.filled_quantity + 1)
        if problem:
            raise BadRequest(f"{problem} (more than the {order.filled_quantity} already filled)"
                             if order.filled_quantity else problem)
        new_limit = order.limit_price if limit_price is None else limit_price
        new_stop = order.stop_price if stop_price is None else stop_price
        for name, given, has in (("limit price", limit_price, order.order_type in _LIMIT_TYPES),
                                 ("stop price", stop_price, order.order_type in _STOP_TYPES)):
            if given is not None:
                problem = f"a {order.order_type} order has no {name}" if not has else self._price_problem(name, given)
                if problem:
                    raise BadRequest(problem)
        ledger = self._ledgers[order.portfolio_id]
        remaining = new_quantity - order.filled_quantity
        if order.side is Side.SELL:
            held = position(ledger, order.symbol)
            available = held.quantity - held.reserved_quantity + order.remaining_quantity
            if not self.allow_short and remaining > available:
                raise BadRequest("insufficient shares for the modified order")
        else:
            reserve_price = self._reserve_price[order.order_id]
            if order.order_type in _LIMIT_TYPES:
                reserve_price = new_limit
            elif quote is not None:
                reserve_price = self._reserve_price_for(order.order_type, None, new_stop, quote)
            reservation = self._buy_reservation(reserve_price, order, remaining)
            if reservation > ledger.buying_power_cents + order.reserved_cash_cents:
                raise BadRequest("insufficient funds for the modified order")
        if quote is not None:
            request = OrderRequest(order.portfolio_id, order.symbol, order.side, order.order_type, remaining,
                                   new_limit, new_stop, order.time_in_force, order.client_order_id)
            for check in self.extra_checks:
                verdict = check(ledger, request, quote)
                if verdict is not None:
                    raise BadRequest(verdict[1])

        if order.side is Side.SELL:
            release_shares(ledger, order.symbol, order.remaining_quantity)
            order.quantity = new_quantity
            reserve_shares(ledger, order.symbol, remaining, allow_short=self.allow_short)
        else:
            release_cash(ledger, order.reserved_cash_cents)
            order.quantity = new_quantity
            self._reserve_price[order.order_id] = reserve_price
            order.reserved_cash_cents = reservation
            reserve_cash(ledger, reservation)
        order.limit_price, order.stop_price = new_limit, new_stop
        order.updated_at_ms = now_ms
        batch = _Batch()
        batch.ledger(ledger)
        batch.event(EventKind.ORDER_MODIFIED, order)
        if state == "OPEN" and quote is not None:
            self._match(batch, ledger, order, quote, now_ms, market_ms)
        return batch.result()

    def expire_day(self, day_index: int, *, now_ms: int) -> TradeResult:
        """Expire every open DAY order accepted before `day_index` (ORDER_CANCELLED events, status EXPIRED)."""
        self.day_index = day_index
        batch = _Batch()
        for order in list(self._open.values()):
            if order.time_in_force is TimeInForce.DAY and order.day_index < day_index:
                self._close(batch, self._ledgers[order.portfolio_id], order, OrderStatus.EXPIRED, now_ms,
                            "the trading day ended")
        return batch.result()

    # ----- protective levels -------------------------------------------------------------------------------

    def set_position_levels(
        self,
        user_id: str,
        portfolio_id: str,
        symbol: str,
        *,
        stop_loss_cents: "int | None | _Keep" = KEEP,
        take_profit_cents: "int | None | _Keep" = KEEP,
    ) -> Position:
        """Set (an int), clear (None) or keep (KEEP, the default) a long position's stop loss and take profit.

        NotFound / Forbidden for an unknown / someone else's portfolio; BadRequest without a long position in
        `symbol`, for a level that is not a valid price, or for a stop loss at or above the take profit.
        Returns a copy of the position; the caller persists `portfolio(portfolio_id)`.
        """
        ledger = self._owned(user_id, portfolio_id)
        held = ledger.positions.get(symbol) if isinstance(symbol, str) else None
        if held is None or held.quantity <= 0:
            raise BadRequest(f"no position in {symbol!r}")
        stop = held.stop_loss_cents if stop_loss_cents is KEEP else stop_loss_cents
        take = held.take_profit_cents if take_profit_cents is KEEP else take_profit_cents
        for name, value in (("stop loss", stop), ("take profit", take)):
            problem = None if value is None else self._price_problem(name, value)
            if problem:
                raise BadRequest(problem)
        if stop is not None and take is not None and stop >= take:
            raise BadRequest("the stop loss must be below the take profit")
        held.stop_loss_cents, held.take_profit_cents = stop, take
        return replace(held)

    # ----- reading -----------------------------------------------------------------------------------------

    def open_orders(self, *, user_id: str | None = None, portfolio_id: str | None = None) -> list[Order]:
        """Snapshots of the open orders, in time priority, optionally of one user and/or one portfolio."""
        return [
            order.snapshot()
            for order in self._open.values()
            if (user_id is None or order.user_id == user_id)
            and (portfolio_id is None or order.portfolio_id == portfolio_id)
        ]

    def order(self, order_id: str) -> Order | None:
        """A snapshot of an open order, None for anything else (closed orders live in storage only)."""
        order = self._open.get(order_id) if isinstance(order_id, str) else None
        return None if order is None else order.snapshot()
