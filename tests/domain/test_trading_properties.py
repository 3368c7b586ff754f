"""Random trading sessions against the order engine: the books balance to the cent after every step."""

import math
from collections import defaultdict
from decimal import Decimal

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.errors import BadRequest, Forbidden, NotFound
from domain.ledger import apply_fill, identity_gap, replay_fills, snapshot_ledger
from domain.market import Quote
from domain.orders import OrderEngine, TradeResult
from domain.trading import (
    Commission,
    EventKind,
    Fill,
    IdSequence,
    OrderRequest,
    OrderStatus,
    OrderType,
    PortfolioLedger,
    RejectReason,
    Side,
    TimeInForce,
)

USERS = {"P1": "u1", "P2": "u2"}
SYMBOLS = ("AAA", "BBB")
MAX_QUANTITY = 2_000


class TradingSession(RuleBasedStateMachine):
    """Two students trading two symbols through submits, modifies, cancels, ticks, pauses and day ends."""

    @initialize(
        cash=st.sampled_from([0, 20_000, 500_000, 500_000, 5_000_000, 5_000_000]),
        per_order=st.sampled_from([0, 0, 99, 1_000]),
        per_share=st.sampled_from(["0", "0", "0.5", "1.37"]),
        buffer=st.sampled_from(["0", "0.05", "0.2"]),
        prices=st.tuples(st.integers(50, 20_000), st.integers(2, 400)),
    )
    def start(self, cash, per_order, per_share, buffer, prices):
        self.engine = OrderEngine(
            order_ids=IdSequence("O"),
            execution_ids=IdSequence("E"),
            commission=Commission(per_order, Decimal(per_share)),
            max_quantity=MAX_QUANTITY,
            market_buffer=Decimal(buffer),
        )
        self.now = 1_000
        self.day = 0
        self.version = 0
        self.state = "OPEN"
        self.quotes: dict[str, Quote] = {}
        for symbol, price in zip(SYMBOLS, prices, strict=True):
            self._publish(symbol, price, 1, 50, 50)
        self.fills = defaultdict(list)  # order id -> fills
        self.portfolio_fills = defaultdict(list)  # portfolio id -> fills in execution order
        # Each student starts with `cash` to spend and 60 shares of each symbol, bought before the session.
        self.cash = cash + 60 * sum(prices)
        for portfolio_id, user_id in USERS.items():
            ledger = PortfolioLedger(portfolio_id, user_id, portfolio_id, self.cash, self.cash)
            for symbol, price in zip(SYMBOLS, prices, strict=True):
                seed = Fill(f"S-{portfolio_id}-{symbol}", "SEED", portfolio_id, user_id, symbol, Side.BUY, 60, price,
                            0, 0, 0)
                apply_fill(ledger, seed)
                self.portfolio_fills[portfolio_id].append(seed)
            self.engine.add_portfolio(ledger)
        self.latest = {}  # order id -> latest snapshot seen in a result
        self.order_ids: list[str] = []

    # ----- helpers -----------------------------------------------------------------------------------------

    def _publish(self, symbol: str, price: int, spread: int, bid_size: int, ask_size: int) -> None:
        self.version += 1
        self.quotes[symbol] = Quote(symbol, symbol, "Tech", price, max(1, price - spread), price + spread,
                                    bid_size, ask_size, price, price, price, price, 0, self.now, self.now,
                                    self.version)

    def _state(self):
        return (
            [snapshot_ledger(ledger) for ledger in self.engine.portfolios()],
            {order.order_id: order for order in self.engine.open_orders()},
        )

    def _record(self, result: TradeResult, before) -> None:
        """Check what a call says it changed against what changed, then remember its orders and fills."""
        ledgers_before, open_before = before
        ledgers_after, open_after = self._state()
        listed = {ledger.portfolio_id: ledger for ledger in result.portfolios}
        for old, new in zip(ledgers_before, ledgers_after, strict=True):
            if old != new:
                assert listed.get(new.portfolio_id) == new, f"ledger {new.portfolio_id} changed but was not listed"
        assert set(listed) <= {ledger.portfolio_id for ledger in ledgers_after}
        orders = {order.order_id: order for order in result.orders}
        for order_id in open_before.keys() | open_after.keys():
            if open_before.get(order_id) != open_after.get(order_id):
                assert order_id in orders, f"order {order_id} changed but was not listed"
        for order_id, order in open_after.items():
            if order_id in orders:
                assert orders[order_id] == order
        for trigger in result.triggers:
            event(f"{trigger.kind} {'with' if trigger.order_id else 'without'} an order")
        fills = [item.fill for item in result if item.kind is EventKind.EXECUTION_REPORT]
        assert fills == list(result.fills)
        assert {item.order.order_id for item in result} <= orders.keys()
        for item in result:
            event(str(item.kind) if item.order.reject_reason is None else f"rejected {item.order.reject_reason}")
            if item.kind is EventKind.ORDER_CANCELLED:
                event(f"{item.order.status}: {(item.order.error or 'by the user')[:30]}")
            if item.kind is EventKind.EXECUTION_REPORT:
                fill, order = item.fill, item.order
                quote = self.quotes[fill.symbol]
                assert fill.price_cents == (quote.ask if fill.side is Side.BUY else quote.bid)
                if order.limit_price is not None:
                    assert (fill.price_cents <= order.limit_price if fill.side is Side.BUY
                            else fill.price_cents >= order.limit_price)
                self.fills[fill.order_id].append(fill)
                self.portfolio_fills[fill.portfolio_id].append(fill)
        for order_id, order in orders.items():
            if order_id not in self.latest:
                self.order_ids.append(order_id)
            self.latest[order_id] = order

    def _call(self, method, *args, **kwargs) -> None:
        before = self._state()
        result = method(*args, **kwargs)
        self._record(result, before)

    def _refused(self, error, method, *args, **kwargs) -> bool:
        """Run a call that may raise `error`; if it does, nothing may have changed."""
        before = self._state()
        last_id = self.engine._order_ids.last
        try:
            result = method(*args, **kwargs)
        except error as refusal:
            event(f"refused: {refusal.message.split(':')[0][:40]}")
            assert self._state() == before and self.engine._order_ids.last == last_id
            return True
        self._record(result, before)
        return False

    # ----- rules -------------------------------------------------------------------------------------------

    def _submit(self, data, *, chaos: bool) -> None:
        portfolio_id = data.draw(st.sampled_from(sorted(USERS)))
        user_id = data.draw(st.sampled_from(["u1", "u2"])) if chaos else USERS[portfolio_id]
        symbol = data.draw(st.sampled_from(SYMBOLS + ("ZZZ",) if chaos else SYMBOLS))
        price = self.quotes.get(symbol, self.quotes["AAA"]).price
        step = max(1, price // 50)
        offset_price = st.integers(-60 if chaos else -8, 60 if chaos else 8).map(lambda k: price + k * step)
        limit = data.draw(st.one_of(st.none(), offset_price))
        stop = data.draw(st.one_of(st.none(), offset_price))
        order_type = data.draw(st.sampled_from(list(OrderType)))
        if not chaos or data.draw(st.booleans()):  # well-formed prices for the type
            limit = limit or price if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
            stop = stop or price if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) else None
        quantity = st.integers(-2, MAX_QUANTITY + 2) if chaos else st.integers(1, 40)
        request = OrderRequest(
            portfolio_id,
            symbol,
            data.draw(st.sampled_from(list(Side))),
            order_type,
            data.draw(quantity),
            limit,
            stop,
            data.draw(st.sampled_from(list(TimeInForce))),
        )
        self.now += 1
        forbidden = self._refused(
            Forbidden, self.engine.submit, user_id, request, self.quotes.get(symbol), now_ms=self.now,
            market_ms=self.now, day_index=self.day, market_state=self.state,
        )
        assert forbidden == (user_id != USERS[portfolio_id])

    @rule(data=st.data())
    def submit_anything(self, data):
        self._submit(data, chaos=True)

    @rule(data=st.data())
    def submit_a_sensible_order(self, data):
        self._submit(data, chaos=False)

    @rule(data=st.data())
    def submit_another_sensible_order(self, data):
        self._submit(data, chaos=False)

    @rule(portfolio_id=st.sampled_from(sorted(USERS)), symbol=st.sampled_from(SYMBOLS),
          order_type=st.sampled_from([OrderType.MARKET, OrderType.STOP, OrderType.LIMIT]))
    def buy_with_all_buying_power(self, portfolio_id, symbol, order_type):
        quote = self.quotes[symbol]
        rules = self.engine.rules
        price = quote.price if order_type is OrderType.LIMIT else quote.ask * (1 + rules.market_buffer)
        spend = self.engine.portfolio(portfolio_id).buying_power_cents - rules.commission.worst_case(1, False)
        quantity = min(MAX_QUANTITY, int(spend // math.ceil(price)))
        if quantity < 1:
            return
        limit = quote.price if order_type is OrderType.LIMIT else None
        stop = quote.price if order_type is OrderType.STOP else None
        request = OrderRequest(portfolio_id, symbol, Side.BUY, order_type, quantity, limit, stop, TimeInForce.GTC)
        self.now += 1
        self._call(self.engine.submit, USERS[portfolio_id], request, quote, now_ms=self.now, market_ms=self.now,
                   day_index=self.day, market_state=self.state)

    @rule(portfolio_id=st.sampled_from(sorted(USERS)))
    def reject_a_duplicate(self, portfolio_id):
        request = OrderRequest(portfolio_id, "AAA", Side.BUY, OrderType.MARKET, 5, client_order_id="dup")
        self.now += 1
        self._call(self.engine.reject, USERS[portfolio_id], request, RejectReason.DUPLICATE_CLIENT_ORDER_ID,
                   "duplicate", now_ms=self.now, day_index=self.day)

    @rule(
        moves=st.lists(
            st.tuples(st.sampled_from(SYMBOLS), st.integers(-8, 8), st.integers(0, 10), st.integers(0, 60),
                      st.integers(0, 60)),
            min_size=1, max_size=2,
        ),
    )
    def tick(self, moves):
        self.now += 1
        for symbol, percent, spread, bid_size, ask_size in moves:
            price = self.quotes[symbol].price
            price = max(2, price + price * percent // 100 + (1 if percent > 0 else -1 if percent < 0 else 0))
            self._publish(symbol, price, spread, bid_size, ask_size)
        if self.state == "OPEN":
            self._call(self.engine.on_quotes, self.quotes, now_ms=self.now, market_ms=self.now)

    @rule(moves=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(-3, 3), st.integers(0, 3), st.integers(0, 60),
                                   st.integers(0, 60)), min_size=1, max_size=2))
    def small_tick(self, moves):
        self.tick(moves)

    @rule(symbol=st.sampled_from(SYMBOLS), percent=st.integers(-30, 30), ask_size=st.integers(0, 30))
    def jump(self, symbol, percent, ask_size):
        self.tick([(symbol, percent, 1, 30 - ask_size, ask_size)])

    @rule(state=st.sampled_from(["OPEN", "OPEN", "PAUSED", "CLOSED"]))
    def market_status(self, state):
        self.state = state

    @rule()
    def end_of_day(self):
        self.day += 1
        self.now += 1
        self._call(self.engine.expire_day, self.day, now_ms=self.now)

    @precondition(lambda self: self.order_ids)
    @rule(data=st.data())
    def cancel(self, data):
        open_ids = [order.order_id for order in self.engine.open_orders()]
        order_id = data.draw(st.sampled_from(open_ids * 3 + self.order_ids + ["O999999"]))
        user_id = data.draw(st.sampled_from(["u1", "u2"]))
        self.now += 1
        order = self.latest.get(order_id)
        before = self._state()
        try:
            result = self.engine.cancel(user_id, order_id, now_ms=self.now)
        except (NotFound, Forbidden, BadRequest) as error:
            assert self._state() == before
            if order is None:
                assert isinstance(error, NotFound)
            elif order.user_id != user_id:
                assert isinstance(error, Forbidden)
            else:
                assert isinstance(error, BadRequest) and not order.is_open
            return
        assert order.user_id == user_id and order_id in before[1]
        self._record(result, before)
        assert self.latest[order_id].status is OrderStatus.CANCELLED

    @precondition(lambda self: self.engine.open_orders())
    @rule(data=st.data())
    def modify(self, data):
        order = data.draw(st.sampled_from(self.engine.open_orders()))
        step = max(1, self.quotes[order.symbol].price // 50)
        changes = data.draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "quantity": st.integers(-1, order.quantity + 80),
                    "limit_price": st.integers(-40, 40).map(lambda k: self.quotes[order.symbol].price + k * step),
                    "stop_price": st.integers(-40, 40).map(lambda k: self.quotes[order.symbol].price + k * step),
                },
            )
        )
        self.now += 1
        self._refused(BadRequest, self.engine.modify, order.user_id, order.order_id, quote=self.quotes[order.symbol],
                      now_ms=self.now, market_ms=self.now, market_state=self.state, **changes)

    @rule(data=st.data())
    def protective_levels(self, data):
        held = [(ledger, p) for ledger in self.engine.portfolios() for p in ledger.positions.values()
                if p.quantity > 0]
        if not held:
            return
        ledger, position = data.draw(st.sampled_from(held))
        price = self.quotes[position.symbol].price
        stop = data.draw(st.one_of(st.none(), st.integers(max(1, price * 8 // 10), price)))
        take = data.draw(st.one_of(st.none(), st.integers(price + 1, price * 12 // 10 + 2)))
        self.engine.set_position_levels(ledger.owner_id, ledger.portfolio_id, position.symbol,
                                        stop_loss_cents=stop, take_profit_cents=take)

    # ----- invariants --------------------------------------------------------------------------------------

    @invariant()
    def books_balance(self):
        open_orders = self.engine.open_orders()
        for ledger in self.engine.portfolios():
            assert identity_gap(ledger) == 0
            assert ledger.starting_cash_cents == self.cash
            assert 0 <= ledger.reserved_cash_cents <= ledger.cash_cents
            mine = [o for o in open_orders if o.portfolio_id == ledger.portfolio_id]
            assert ledger.reserved_cash_cents == sum(o.reserved_cash_cents for o in mine if o.side is Side.BUY)
            for symbol, held in ledger.positions.items():
                assert held.quantity >= 0
                assert 0 <= held.reserved_quantity <= held.quantity
                assert held.reserved_quantity == sum(
                    o.remaining_quantity for o in mine if o.side is Side.SELL and o.symbol == symbol
                )
                for name in ("quantity", "reserved_quantity", "cost_basis_cents", "realized_pnl_cents"):
                    assert type(getattr(held, name)) is int
            for name in ("cash_cents", "reserved_cash_cents", "commissions_cents"):
                assert type(getattr(ledger, name)) is int
            replayed = replay_fills(ledger.portfolio_id, ledger.owner_id, ledger.name, self.cash,
                                    self.portfolio_fills[ledger.portfolio_id])
            assert (replayed.cash_cents, replayed.commissions_cents) == (ledger.cash_cents, ledger.commissions_cents)
            assert {s: (p.quantity, p.cost_basis_cents, p.realized_pnl_cents) for s, p in replayed.positions.items()} \
                == {s: (p.quantity, p.cost_basis_cents, p.realized_pnl_cents) for s, p in ledger.positions.items()}

    @invariant()
    def orders_match_their_fills(self):
        for order in self.engine.open_orders():
            assert self.latest[order.order_id] == order
            assert order.reserved_cash_cents > 0 if order.side is Side.BUY else order.reserved_cash_cents == 0
        for order_id, order in self.latest.items():
            fills = self.fills[order_id]
            assert order.filled_quantity == sum(f.quantity for f in fills)
            assert order.filled_notional_cents == sum(f.quantity * f.price_cents for f in fills)
            assert order.commission_cents == sum(f.commission_cents for f in fills)
            assert 0 <= order.filled_quantity <= max(order.quantity, 0)
            assert (order.status is OrderStatus.FILLED) == (order.filled_quantity == order.quantity > 0)
            if order.status is OrderStatus.REJECTED:
                assert order.reject_reason is not None and order.error and not fills
            if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
                assert not order.is_open
            if order.time_in_force is TimeInForce.FOK:
                assert order.filled_quantity in (0, order.quantity)


TradingSession.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_trading_session = TradingSession.TestCase
