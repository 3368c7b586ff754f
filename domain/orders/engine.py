"""The order engine: every change to the order book (submit, match and fill, cancel, modify, expire, levels)."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal

from domain.errors import BadRequest
from domain.ledger import apply_fill, release_cash, release_shares, reserve_cash, reserve_shares
from domain.market import Quote
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
    TradingTerms,
)

from .book import OrderBook
from .checks import Check, CheckContext, OrderRules, first_rejection
from .levels import KEEP, _Keep, scan_levels, set_levels
from .matching import Matcher
from .result import Batch, TradeResult

__all__ = ["OrderEngine"]


def _market_state(state: MarketState | str) -> MarketState:
    try:
        return MarketState(state)
    except ValueError:
        raise ValueError(f"market_state must be one of {[str(s) for s in MarketState]}, not {state!r}") from None


class OrderEngine(OrderBook):
    """Owns every change to the order book: pre-trade checks, reservations, matching against the simulated quotes,
    fills, cancellation, modification, expiry and the sells that protective levels place.

    Every changing method returns a `TradeResult`: the order events in the order they happened (each carrying a
    snapshot of its order taken right after it) plus the orders, fills and ledgers to persist. Closed orders leave
    the engine after their final event; storage keeps the history.

    An order matches at submission and in `on_quotes`, in time priority, as `Matcher` says; what a quote's
    displayed size cannot fill waits for later quotes. Call `on_quotes` only while the market is open: a paused or
    closed market fills nothing. A buy fill never takes more than the buying power plus the order's own
    reservation, keeping the reservation of what is left: at an ask above the reserve price it fills only what is
    affordable, and an order that can afford nothing at the current ask is cancelled. A sell's commission is
    taken from its proceeds and capped at them, so a sell never lowers cash.

    The checks are `gate_checks` (whether the portfolio may trade at all now: a class contest that is not open),
    then the engine's own (`OrderRules.checks`), then `extra_checks` (the risk limits, a contest's rules), all
    given at construction: submit records the first rejection, modify raises BadRequest with its message.
    `commission` and `allow_short` hold for every portfolio that `terms_for(portfolio_id)` gives no
    TradingTerms of its own; a portfolio's terms must not change while it has open orders.
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
        extra_checks: Sequence[Check] = (),
        gate_checks: Sequence[Check] = (),
        terms_for: Callable[[str], TradingTerms | None] | None = None,
    ):
        super().__init__(OrderRules(commission, allow_short, max_quantity, market_buffer, price_tick_cents,
                                    max_price_cents, terms_for))
        # A protective sell skips the extra checks (it only reduces risk) but not the gate: a portfolio that may
        # not trade now (its contest has ended) places nothing, stop loss or not.
        self._protective_checks = (*gate_checks, *self.rules.checks())
        self._checks = (*self._protective_checks, *extra_checks)
        self._order_ids = order_ids
        self._execution_ids = execution_ids
        self._matcher = Matcher(self.rules.commission_of)
        self.day_index = 0  # the latest simulated day seen; stop-loss / take-profit orders are accepted in it

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
        placed_by: str | None = None,
    ) -> TradeResult:
        """Check, record and (if the market is OPEN) match one order at once against `quote`.

        NotFound for an unknown portfolio and Forbidden for someone else's: nothing is created. Otherwise an order
        record always comes out: ORDER_REJECTED (checks in this order: the gate checks, UNKNOWN_SYMBOL,
        INVALID_QUANTITY, INVALID_PRICE, INVALID_NOTE, MARKET_CLOSED, INSUFFICIENT_SHARES, INSUFFICIENT_FUNDS, then
        the extra checks), or ORDER_SUBMITTED followed by whatever matching did at once (fills; IOC's and FOK's
        cancellation). A PAUSED market accepts every order but IOC and FOK and matches nothing; a CLOSED one also
        rejects MARKET. `placed_by` is the team member placing it for the owner `user_id` (whom the caller has
        allowed to), recorded in `Order.placed_by`.
        """
        state = _market_state(market_state)
        ledger = self._owned(user_id, request.portfolio_id)
        self.day_index = day_index
        batch = Batch()
        self._submit(batch, ledger, user_id, request, quote, now_ms, market_ms, day_index, state, self._checks,
                     placed_by)
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
        placed_by: str | None = None,
    ) -> TradeResult:
        """Record a rejection decided outside the engine (DUPLICATE_CLIENT_ORDER_ID: recorded without the id)."""
        self._owned(user_id, request.portfolio_id)
        reason = RejectReason(reason)
        client_order_id = None if reason is RejectReason.DUPLICATE_CLIENT_ORDER_ID else request.client_order_id
        batch = Batch()
        order = self._new_order(user_id, request, now_ms, day_index, client_order_id, placed_by)
        self._reject(batch, order, reason, message)
        return batch.result()

    def _new_order(self, user_id: str, request: OrderRequest, now_ms: int, day_index: int,
                   client_order_id: str | None, placed_by: str | None) -> Order:
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
            placed_by=None if placed_by == user_id else placed_by,
            note=request.note,
        )

    def _reject(self, batch: Batch, order: Order, reason: RejectReason, message: str) -> None:
        order.status = OrderStatus.REJECTED
        order.reject_reason = reason
        order.error = message
        self._remember_closed(order)
        batch.event(EventKind.ORDER_REJECTED, order)

    def _submit(self, batch: Batch, ledger: PortfolioLedger, user_id: str, request: OrderRequest, quote: Quote | None,
                now_ms: int, market_ms: int, day_index: int, state: MarketState, checks: Sequence[Check],
                placed_by: str | None = None) -> Order:
        order = self._new_order(user_id, request, now_ms, day_index, request.client_order_id, placed_by)
        context = CheckContext(ledger, request, quote, state)
        rejection = first_rejection(checks, context)
        if rejection is not None:
            self._reject(batch, order, *rejection)
            return order
        self._open[order.order_id] = order
        if order.side is Side.BUY:
            self._reserve_price[order.order_id] = self.rules.reserve_price(context)
            order.reserved_cash_cents = self._reservation(order)
            reserve_cash(ledger, order.reserved_cash_cents)
        else:
            reserve_shares(ledger, order.symbol, order.quantity,
                           allow_short=self.rules.allow_short_of(ledger.portfolio_id))
        batch.ledger(ledger)
        batch.event(EventKind.ORDER_SUBMITTED, order)
        if state is MarketState.OPEN:
            self._execute_at_once(batch, ledger, order, quote, now_ms, market_ms)
        return order

    # ----- matching ----------------------------------------------------------------------------------------

    def _execute_at_once(
        self, batch: Batch, ledger: PortfolioLedger, order: Order, quote: Quote, now_ms: int, market_ms: int
    ) -> None:
        if order.time_in_force is TimeInForce.FOK:
            self._trigger(batch, order, quote, now_ms)
            shares, _, _ = self._matcher.fillable(ledger, order, quote, self._reserve_price.get(order.order_id))
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

    def _trigger(self, batch: Batch, order: Order, quote: Quote, now_ms: int) -> None:
        if self._matcher.trigger(order, quote):
            order.updated_at_ms = now_ms
            batch.touch(order)

    def _match(
        self, batch: Batch, ledger: PortfolioLedger, order: Order, quote: Quote, now_ms: int, market_ms: int
    ) -> None:
        self._trigger(batch, order, quote, now_ms)
        reserve_price = self._reserve_price.get(order.order_id)
        shares, price, short_of_funds = self._matcher.fillable(ledger, order, quote, reserve_price)
        if shares:
            self._fill(batch, ledger, order, quote, shares, price, now_ms, market_ms)
        elif short_of_funds:
            self._close(batch, ledger, order, OrderStatus.CANCELLED, now_ms, "insufficient funds at the current ask")

    def _fill(self, batch: Batch, ledger: PortfolioLedger, order: Order, quote: Quote, shares: int, price: int,
              now_ms: int, market_ms: int) -> None:
        buy = order.side is Side.BUY
        commission = self.rules.commission_of(order.portfolio_id).for_fill(shares, order.filled_quantity == 0)
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
        self._matcher.take(quote, buy, shares)
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
            order.reserved_cash_cents = 0 if done else self._reservation(order)
            reserve_cash(ledger, order.reserved_cash_cents)
        if done:
            self._forget(order)
        batch.fills.append(fill)
        batch.ledger(ledger)
        batch.event(EventKind.EXECUTION_REPORT, order, fill)
        batch.event(EventKind.ORDER_FILLED if done else EventKind.ORDER_PARTIALLY_FILLED, order)

    def _close(self, batch: Batch, ledger: PortfolioLedger, order: Order, status: OrderStatus, now_ms: int,
               error: str | None) -> None:
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

    # ----- the market tick ---------------------------------------------------------------------------------

    def on_quotes(
        self, quotes: Mapping[str, Quote], *, now_ms: int, market_ms: int, day_index: int | None = None
    ) -> TradeResult:
        """One tick of an open market: trigger stops, match open orders in time priority, then protective levels.

        A position whose price is at or below its `stop_loss_cents`, or at or above its `take_profit_cents`,
        gets a MARKET DAY sell of its unreserved shares, matched like any order; it runs the gate checks and the
        engine's own but not the extra checks (it only reduces risk), and a gate's refusal is recorded as
        ORDER_REJECTED. Both levels are cleared and the trigger is reported in `TradeResult.triggers`.
        `day_index` (default: the latest seen) is the day such orders are accepted in.
        """
        if day_index is not None:
            self.day_index = day_index
        batch = Batch()
        resting = self._matcher.resting
        for order in list(self._open.values()):
            quote = quotes.get(order.symbol)
            if quote is not None and order.is_open and not resting(order, quote):
                self._match(batch, self._ledgers[order.portfolio_id], order, quote, now_ms, market_ms)
        self._protect(batch, quotes, now_ms, market_ms)
        return batch.result()

    def _protect(self, batch: Batch, quotes: Mapping[str, Quote], now_ms: int, market_ms: int) -> None:
        def sell(ledger: PortfolioLedger, held: Position, quote: Quote) -> str | None:
            batch.ledger(ledger)
            shares = min(held.quantity - held.reserved_quantity, self.rules.max_quantity)
            if shares <= 0:
                return None
            request = OrderRequest(ledger.portfolio_id, held.symbol, Side.SELL, OrderType.MARKET, shares)
            return self._submit(batch, ledger, ledger.owner_id, request, quote, now_ms, market_ms, self.day_index,
                                MarketState.OPEN, self._protective_checks).order_id

        batch.triggers += scan_levels(list(self._ledgers.values()), quotes, sell)

    # ----- cancel, modify, expire --------------------------------------------------------------------------

    def cancel(self, user_id: str, order_id: str, *, now_ms: int) -> TradeResult:
        """Cancel an open order and release what it holds.

        NotFound if the engine does not know the order (it remembers the last 100 000 closed ones: for older
        ones the caller, who has storage, decides); Forbidden if it is not the user's; BadRequest if closed.
        """
        order = self._own_open_order(user_id, order_id)
        batch = Batch()
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
        the ones the order type has can change. The submit checks judge the order as it would become (not its
        symbol nor the market state): the reservation is recomputed (a MARKET or STOP buy re-prices it at `quote`)
        and checked against buying power, and the extra checks see its new remaining quantity. The first
        rejection raises BadRequest with its message and leaves the order unchanged. Emits ORDER_MODIFIED, then
        matches at once if the market is OPEN.
        """
        state = _market_state(market_state)
        order = self._own_open_order(user_id, order_id)
        if quantity is None and limit_price is None and stop_price is None:
            raise BadRequest("nothing to modify: give a quantity, limit price or stop price")
        request = OrderRequest(
            order.portfolio_id, order.symbol, order.side, order.order_type,
            order.quantity if quantity is None else quantity,
            order.limit_price if limit_price is None else limit_price,
            order.stop_price if stop_price is None else stop_price,
            order.time_in_force, order.client_order_id, order.note,
        )
        ledger = self._ledgers[order.portfolio_id]
        context = CheckContext(ledger, request, quote, state, order, self._reserve_price.get(order.order_id, 0))
        rejection = first_rejection(self._checks, context)
        if rejection is not None:
            raise BadRequest(rejection.message)

        if order.side is Side.SELL:
            release_shares(ledger, order.symbol, order.remaining_quantity)
            order.quantity = request.quantity
            reserve_shares(ledger, order.symbol, order.remaining_quantity,
                           allow_short=self.rules.allow_short_of(ledger.portfolio_id))
        else:
            release_cash(ledger, order.reserved_cash_cents)
            order.quantity = request.quantity
            self._reserve_price[order.order_id] = self.rules.reserve_price(context)
            order.reserved_cash_cents = self._reservation(order)
            reserve_cash(ledger, order.reserved_cash_cents)
        order.limit_price, order.stop_price = request.limit_price, request.stop_price
        order.updated_at_ms = now_ms
        batch = Batch()
        batch.ledger(ledger)
        batch.event(EventKind.ORDER_MODIFIED, order)
        if state is MarketState.OPEN and quote is not None:
            self._match(batch, ledger, order, quote, now_ms, market_ms)
        return batch.result()

    def expire_day(self, day_index: int, *, now_ms: int) -> TradeResult:
        """Expire every open DAY order accepted before `day_index` (ORDER_CANCELLED events, status EXPIRED)."""
        self.day_index = day_index
        batch = Batch()
        for order in list(self._open.values()):
            if order.time_in_force is TimeInForce.DAY and order.day_index < day_index:
                self._close(batch, self._ledgers[order.portfolio_id], order, OrderStatus.EXPIRED, now_ms,
                            "the trading day ended")
        return batch.result()

    def stop_trading(self, portfolio_ids: Iterable[str], *, now_ms: int, reason: str) -> TradeResult:
        """Leave these portfolios unable to trade on their own (a class contest ended): expire every open order
        (ORDER_CANCELLED events, status EXPIRED, `reason` as their error) and clear every protective level, so that
        no later tick fills or places anything for them. Unknown ids are skipped; new orders are the checks' to
        refuse."""
        batch = Batch()
        ledgers = [ledger for pid in dict.fromkeys(portfolio_ids) if (ledger := self._ledgers.get(pid)) is not None]
        chosen = {ledger.portfolio_id for ledger in ledgers}
        for order in list(self._open.values()):
            if order.portfolio_id in chosen:
                self._close(batch, self._ledgers[order.portfolio_id], order, OrderStatus.EXPIRED, now_ms, reason)
        for ledger in ledgers:
            for held in ledger.positions.values():
                if held.stop_loss_cents is not None or held.take_profit_cents is not None:
                    held.stop_loss_cents = held.take_profit_cents = None
                    batch.ledger(ledger)
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
        """Set (an int), clear (None) or keep (KEEP, the default) a long position's stop loss and take profit, as
        `set_levels` does; NotFound / Forbidden for an unknown / someone else's portfolio. The caller persists
        `portfolio(portfolio_id)`."""
        return set_levels(self._owned(user_id, portfolio_id), symbol, stop_loss_cents, take_profit_cents,
                          self.rules.price_problem)
