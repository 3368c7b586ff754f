"""The order engine driven by scripted quotes: order types, time in force, checks, reservations, fills, levels."""

from decimal import Decimal

import pytest

from domain.errors import BadRequest, Forbidden, NotFound
from domain.ledger import identity_gap
from domain.market import Quote
from domain.orders import KEEP, CheckContext, OrderEngine, Rejection, TradeResult
from domain.trading import (
    Commission,
    EventKind,
    IdSequence,
    MarketState,
    OrderRequest,
    OrderStatus,
    OrderType,
    PortfolioLedger,
    RejectReason,
    Side,
    TimeInForce,
)

USER, OTHER = "u1", "u2"
CASH = 10_000_000  # 100,000.00
PRICE = 10_000  # 100.00; the default quote is bid 99.95 / ask 100.05
MARKET_OFFSET = 5_000_000


class World:
    """One engine with two portfolios (P1 of u1, P2 of u2), scripted quotes and a clock that moves per call."""

    def __init__(self, cash: int = CASH, **options):
        self.engine = OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"), **options)
        self.ledger = PortfolioLedger("P1", USER, "Main", cash, cash)
        self.other = PortfolioLedger("P2", OTHER, "Theirs", cash, cash)
        self.engine.add_portfolio(self.ledger)
        self.engine.add_portfolio(self.other)
        self.now = 1_000
        self.day = 0
        self.version = 0
        self.quotes: dict[str, Quote] = {}
        self.quote()

    def quote(self, price: int = PRICE, *, symbol: str = "ACME", bid: int | None = None, ask: int | None = None,
              bid_size: int = 1_000, ask_size: int = 1_000) -> Quote:
        """Publish a new quote (a new version) for `symbol`."""
        self.version += 1
        self.quotes[symbol] = Quote(
            symbol, symbol.title(), "Tech", price, price - 5 if bid is None else bid, price + 5 if ask is None else ask,
            bid_size, ask_size, price, price, price, price, 0, self.now, self.now + MARKET_OFFSET, self.version,
        )
        return self.quotes[symbol]

    def submit(self, side: str, order_type: str, quantity, *, limit=None, stop=None, tif: str = "DAY",
               symbol: str = "ACME", state: str = "OPEN", user: str = USER, portfolio: str = "P1",
               client_order_id: str | None = None) -> TradeResult:
        self.now += 1
        request = OrderRequest(portfolio, symbol, Side(side), OrderType(order_type), quantity, limit, stop,
                               TimeInForce(tif), client_order_id)
        return self.engine.submit(user, request, self.quotes.get(symbol), now_ms=self.now,
                                  market_ms=self.now + MARKET_OFFSET, day_index=self.day, market_state=state)

    def tick(self, price: int | None = None, **quote_options) -> TradeResult:
        """A new quote for one symbol (if a price or option is given), then one market tick over all quotes."""
        if price is not None or quote_options:
            self.quote(PRICE if price is None else price, **quote_options)
        self.now += 1
        return self.engine.on_quotes(self.quotes, now_ms=self.now, market_ms=self.now + MARKET_OFFSET)

    def position(self, symbol: str = "ACME", ledger: PortfolioLedger | None = None):
        return (ledger or self.ledger).positions[symbol]

    def holding(self, quantity: int, price: int = PRICE, *, symbol: str = "ACME") -> None:
        """Buy `quantity` shares at once (ask = price) and make the book look fresh again."""
        self.quote(price - 5, symbol=symbol, ask_size=quantity)
        assert kinds(self.submit("BUY", "MARKET", quantity, symbol=symbol))[-1] == "ORDER_FILLED"
        self.quote(symbol=symbol)


def kinds(result) -> list[str]:
    return [str(event.kind) for event in result]


def fills(result) -> list[tuple[int, int]]:
    return [(e.fill.quantity, e.fill.price_cents) for e in result if e.kind is EventKind.EXECUTION_REPORT]


def last_order(result):
    return result[-1].order


def assert_books_balance(world: World) -> None:
    for ledger in (world.ledger, world.other):
        assert identity_gap(ledger) == 0
        assert 0 <= ledger.reserved_cash_cents <= ledger.cash_cents
        open_buys = [o for o in world.engine.open_orders(portfolio_id=ledger.portfolio_id) if o.side is Side.BUY]
        assert ledger.reserved_cash_cents == sum(o.reserved_cash_cents for o in open_buys)
        for symbol, held in ledger.positions.items():
            sells = world.engine.open_orders(portfolio_id=ledger.portfolio_id)
            assert held.reserved_quantity == sum(
                o.remaining_quantity for o in sells if o.side is Side.SELL and o.symbol == symbol
            )
            assert 0 <= held.reserved_quantity <= held.quantity


# ----- MARKET ------------------------------------------------------------------------------------------------


def test_market_buy_fills_at_the_ask_at_once_and_books_cash_and_position():
    w = World()
    result = w.submit("BUY", "MARKET", 10)
    assert kinds(result) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_FILLED"]
    assert fills(result) == [(10, 10_005)]
    order = last_order(result)
    assert (order.status, order.filled_quantity, order.remaining_quantity) == (OrderStatus.FILLED, 10, 0)
    assert w.ledger.cash_cents == CASH - 100_050
    assert (w.position().quantity, w.position().cost_basis_cents) == (10, 100_050)
    assert w.ledger.reserved_cash_cents == 0
    assert w.engine.open_orders() == []
    assert_books_balance(w)


def test_market_sell_fills_at_the_bid():
    w = World()
    w.holding(10)
    result = w.submit("SELL", "MARKET", 4)
    assert fills(result) == [(4, 9_995)]
    assert w.position().quantity == 6
    assert w.position().realized_pnl_cents == 4 * (9_995 - 10_000)
    assert_books_balance(w)


def test_market_buy_larger_than_displayed_size_fills_over_next_ticks():
    w = World()
    w.quote(ask_size=100)
    result = w.submit("BUY", "MARKET", 250, tif="GTC")
    assert kinds(result) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_PARTIALLY_FILLED"]
    assert last_order(result).filled_quantity == 100
    assert kinds(w.tick()) == []  # same quote version: its displayed size is used up
    result = w.tick(ask_size=100, ask=10_010)
    assert fills(result) == [(100, 10_010)]
    assert last_order(result).status is OrderStatus.PARTIALLY_FILLED
    result = w.tick(ask_size=100, ask=10_020)
    assert fills(result) == [(50, 10_020)]
    assert kinds(result) == ["EXECUTION_REPORT", "ORDER_FILLED"]
    assert w.position().quantity == 250
    assert_books_balance(w)


def test_every_event_carries_a_snapshot_taken_right_after_it():
    w = World()
    w.quote(ask_size=40)
    result = w.submit("BUY", "MARKET", 100)
    submitted, report, partial = result
    assert (submitted.order.status, submitted.order.filled_quantity) == (OrderStatus.NEW, 0)
    assert (report.order.filled_quantity, partial.order.status) == (40, OrderStatus.PARTIALLY_FILLED)
    w.tick(ask_size=100)
    assert (submitted.order.status, partial.order.filled_quantity) == (OrderStatus.NEW, 40)  # untouched since


def test_average_fill_price_is_exact_over_fills_at_different_prices():
    w = World()
    w.quote(ask=10_001, ask_size=1)
    w.submit("BUY", "MARKET", 3)
    w.tick(ask=10_002, ask_size=1)
    result = w.tick(ask=10_004, ask_size=5)
    order = last_order(result)
    assert order.average_fill_price == Decimal(30_007) / 3
    assert order.filled_notional_cents == 30_007
    report = result[0]
    assert report.kind is EventKind.EXECUTION_REPORT and report.order.average_fill_price == Decimal(30_007) / 3
    assert (report.order.filled_quantity, report.order.remaining_quantity) == (3, 0)


# ----- LIMIT -------------------------------------------------------------------------------------------------


def test_limit_buy_fills_when_ask_drops_to_limit():
    w = World()
    result = w.submit("BUY", "LIMIT", 10, limit=9_900)
    assert kinds(result) == ["ORDER_SUBMITTED"]
    assert kinds(w.tick(9_950)) == []  # ask 99.55 is above the limit
    result = w.tick(9_880)  # ask 98.85: fills at the ask, better than the limit
    assert fills(result) == [(10, 9_885)]
    assert w.ledger.cash_cents == CASH - 98_850 and w.ledger.reserved_cash_cents == 0
    assert_books_balance(w)


def test_limit_sell_fills_when_bid_rises_to_limit():
    w = World()
    w.holding(10)
    assert kinds(w.submit("SELL", "LIMIT", 10, limit=10_100, tif="GTC")) == ["ORDER_SUBMITTED"]
    assert kinds(w.tick(10_100)) == []  # bid 100.95
    assert fills(w.tick(10_105)) == [(10, 10_100)]  # bid exactly at the limit
    assert w.position().quantity == 0
    assert_books_balance(w)


def test_marketable_limit_buy_fills_at_once_at_the_ask():
    w = World()
    assert fills(w.submit("BUY", "LIMIT", 5, limit=10_100)) == [(5, 10_005)]


# ----- STOP and STOP_LIMIT -----------------------------------------------------------------------------------


def test_stop_sell_becomes_market_when_price_trades_through_stop():
    w = World()
    w.holding(10)
    result = w.submit("SELL", "STOP", 10, stop=9_500)
    assert kinds(result) == ["ORDER_SUBMITTED"] and not last_order(result).stop_triggered
    assert kinds(w.tick(9_600)) == []
    result = w.tick(9_400)  # trades through the stop: sells at the bid as a market order
    assert fills(result) == [(10, 9_395)]
    assert last_order(result).stop_triggered
    assert_books_balance(w)


def test_stop_buy_triggers_when_price_reaches_stop_and_fills_at_the_ask():
    w = World()
    w.submit("BUY", "STOP", 10, stop=10_200)
    assert kinds(w.tick(10_199)) == []
    assert fills(w.tick(10_200)) == [(10, 10_205)]
    assert_books_balance(w)


def test_stop_limit_becomes_limit_after_trigger_and_waits_for_its_price():
    w = World()
    result = w.submit("BUY", "STOP_LIMIT", 10, stop=10_200, limit=10_250)
    assert kinds(result) == ["ORDER_SUBMITTED"]
    result = w.tick(10_300)  # triggers; ask 103.05 is above the limit
    assert kinds(result) == []
    assert [o.stop_triggered for o in result.orders] == [True]  # persisted although there is no event
    assert w.engine.open_orders()[0].stop_triggered
    assert kinds(w.tick(10_190)) == ["EXECUTION_REPORT", "ORDER_FILLED"]  # below the stop, but already a limit


def test_stop_limit_sell_triggered_below_its_limit_does_not_sell_until_bid_recovers():
    w = World()
    w.holding(10)
    w.submit("SELL", "STOP_LIMIT", 10, stop=9_800, limit=9_750)
    assert kinds(w.tick(9_700)) == []  # triggered; bid 96.95 is below the limit
    assert fills(w.tick(9_760)) == [(10, 9_755)]


def test_stop_already_through_at_submission_triggers_at_once():
    w = World()
    assert fills(w.submit("BUY", "STOP", 5, stop=9_000)) == [(5, 10_005)]


# ----- time in force -----------------------------------------------------------------------------------------


def test_day_order_expires_at_day_end_gtc_survives():
    w = World()
    day = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000)).order_id
    gtc = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000, tif="GTC")).order_id
    assert w.ledger.reserved_cash_cents == 180_000
    assert kinds(w.engine.expire_day(0, now_ms=w.now)) == []  # accepted on day 0: not before day 0
    result = w.engine.expire_day(1, now_ms=w.now + 1)
    assert kinds(result) == ["ORDER_CANCELLED"]
    order = last_order(result)
    assert (order.order_id, order.status) == (day, OrderStatus.EXPIRED)
    assert result[0].order.error == "the trading day ended"
    assert [o.order_id for o in w.engine.open_orders()] == [gtc]
    assert w.ledger.reserved_cash_cents == 90_000
    assert [p.portfolio_id for p in result.portfolios] == ["P1"]
    assert_books_balance(w)


def test_partially_filled_day_order_expires_with_its_fills_kept():
    w = World()
    w.quote(ask_size=3)
    w.submit("BUY", "MARKET", 10)
    order = last_order(w.engine.expire_day(1, now_ms=w.now))
    assert (order.status, order.filled_quantity, order.remaining_quantity) == (OrderStatus.EXPIRED, 3, 0)
    assert w.ledger.reserved_cash_cents == 0 and w.position().quantity == 3


def test_ioc_cancels_rest_after_partial_fill():
    w = World()
    w.quote(ask_size=30)
    result = w.submit("BUY", "LIMIT", 100, limit=10_010, tif="IOC")
    assert kinds(result) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_PARTIALLY_FILLED", "ORDER_CANCELLED"]
    order = last_order(result)
    assert (order.status, order.filled_quantity, order.remaining_quantity) == (OrderStatus.CANCELLED, 30, 0)
    assert w.ledger.reserved_cash_cents == 0 and w.engine.open_orders() == []
    assert_books_balance(w)


def test_ioc_with_nothing_marketable_is_cancelled_without_a_fill():
    w = World()
    result = w.submit("BUY", "LIMIT", 10, limit=9_000, tif="IOC")
    assert kinds(result) == ["ORDER_SUBMITTED", "ORDER_CANCELLED"]
    assert w.ledger.reserved_cash_cents == 0


def test_fok_cancels_whole_order_when_size_is_short():
    w = World()
    w.quote(ask_size=99)
    result = w.submit("BUY", "MARKET", 100, tif="FOK")
    assert kinds(result) == ["ORDER_SUBMITTED", "ORDER_CANCELLED"]
    assert last_order(result).filled_quantity == 0
    assert w.ledger.cash_cents == CASH and w.ledger.reserved_cash_cents == 0
    assert result[-1].order.error == "fill or kill: the whole quantity could not fill at once"


def test_fok_fills_whole_when_size_and_price_suffice():
    w = World()
    w.holding(100)
    w.quote(bid_size=100)
    result = w.submit("SELL", "LIMIT", 100, limit=9_990, tif="FOK")
    assert kinds(result) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_FILLED"]


def test_fok_limit_that_is_not_marketable_is_cancelled():
    w = World()
    assert kinds(w.submit("BUY", "LIMIT", 10, limit=10_000, tif="FOK")) == ["ORDER_SUBMITTED", "ORDER_CANCELLED"]


def test_fok_stop_not_yet_triggered_is_cancelled():
    w = World()
    assert kinds(w.submit("BUY", "STOP", 10, stop=10_500, tif="FOK")) == ["ORDER_SUBMITTED", "ORDER_CANCELLED"]


# ----- market states -----------------------------------------------------------------------------------------


def test_paused_market_accepts_limit_but_rejects_ioc():
    w = World()
    assert kinds(w.submit("BUY", "LIMIT", 10, limit=10_100, state="PAUSED")) == ["ORDER_SUBMITTED"]  # rests
    for tif in ("IOC", "FOK"):
        result = w.submit("BUY", "LIMIT", 10, limit=10_100, tif=tif, state="PAUSED")
        assert kinds(result) == ["ORDER_REJECTED"]
        assert last_order(result).reject_reason is RejectReason.MARKET_CLOSED
    result = w.submit("BUY", "MARKET", 10, state="PAUSED")
    assert kinds(result) == ["ORDER_SUBMITTED"]  # rests until resume
    assert [o.status for o in w.engine.open_orders()] == [OrderStatus.NEW, OrderStatus.NEW]


def test_orders_resting_through_a_pause_fill_on_the_first_tick_after_resume():
    w = World()
    w.submit("BUY", "MARKET", 10, state="PAUSED")
    w.submit("BUY", "STOP", 10, stop=9_000, state="PAUSED")  # already through, but a paused market triggers nothing
    assert w.engine.open_orders()[1].stop_triggered is False
    result = w.tick(PRICE)
    assert fills(result) == [(10, 10_005), (10, 10_005)]


def test_closed_market_rejects_market_orders():
    w = World()
    for order_type, tif, extra in [("MARKET", "DAY", {}), ("MARKET", "GTC", {}), ("LIMIT", "IOC", {"limit": 10_100}),
                                   ("LIMIT", "FOK", {"limit": 10_100})]:
        result = w.submit("BUY", order_type, 10, tif=tif, state="CLOSED", **extra)
        assert last_order(result).reject_reason is RejectReason.MARKET_CLOSED, (order_type, tif)
    assert kinds(w.submit("BUY", "LIMIT", 10, limit=10_100, state="CLOSED")) == ["ORDER_SUBMITTED"]
    assert kinds(w.submit("BUY", "STOP", 10, stop=9_000, tif="GTC", state="CLOSED")) == ["ORDER_SUBMITTED"]
    assert len(w.engine.open_orders()) == 2


# ----- rejections --------------------------------------------------------------------------------------------


def test_unknown_symbol_is_rejected_with_an_order_record():
    w = World()
    result = w.submit("BUY", "MARKET", 10, symbol="NOPE", client_order_id="c1")
    assert kinds(result) == ["ORDER_REJECTED"]
    order = last_order(result)
    assert (order.status, order.reject_reason, order.client_order_id) == (
        OrderStatus.REJECTED, RejectReason.UNKNOWN_SYMBOL, "c1")
    assert result[0].order.error == "unknown symbol 'NOPE'"
    assert [o.order_id for o in result.orders] == [order.order_id] and result.portfolios == []


@pytest.mark.parametrize("quantity", [0, -5, 1_000_001, True])
def test_quantity_that_is_not_a_positive_whole_number_up_to_the_maximum_is_rejected(quantity):
    w = World()
    assert last_order(w.submit("BUY", "MARKET", quantity)).reject_reason is RejectReason.INVALID_QUANTITY


@pytest.mark.parametrize(
    "order_type, limit, stop",
    [
        ("LIMIT", None, None),
        ("LIMIT", 10_000, 9_000),
        ("MARKET", 10_000, None),
        ("MARKET", None, 10_000),
        ("STOP", None, None),
        ("STOP", 10_000, 9_000),
        ("STOP_LIMIT", 10_000, None),
        ("STOP_LIMIT", None, 10_000),
        ("LIMIT", 0, None),
        ("LIMIT", -100, None),
        ("LIMIT", 100_000_001, None),
        ("LIMIT", 10_003, None),  # not a multiple of the 5-cent tick
        ("STOP_LIMIT", 10_000, 10_002),
    ],
)
def test_prices_that_do_not_fit_the_order_type_or_the_price_rules_are_rejected(order_type, limit, stop):
    w = World(price_tick_cents=5)
    result = w.submit("BUY", order_type, 1, limit=limit, stop=stop)
    assert last_order(result).reject_reason is RejectReason.INVALID_PRICE
    assert result[0].order.error


def test_insufficient_shares_counts_shares_held_by_open_sells():
    w = World()
    w.holding(10)
    assert kinds(w.submit("SELL", "LIMIT", 6, limit=11_000)) == ["ORDER_SUBMITTED"]
    result = w.submit("SELL", "MARKET", 5)
    assert last_order(result).reject_reason is RejectReason.INSUFFICIENT_SHARES
    assert "only 4" in last_order(result).error
    assert last_order(w.submit("SELL", "MARKET", 1, symbol="ACME", user=USER)).status is OrderStatus.FILLED
    w.quote(symbol="OTHR")
    assert last_order(w.submit("SELL", "MARKET", 1, symbol="OTHR")).reject_reason is RejectReason.INSUFFICIENT_SHARES


def test_insufficient_funds_counts_reserved_cash_and_commission():
    w = World(cash=100_000, commission=Commission(per_order_cents=100))
    assert kinds(w.submit("BUY", "LIMIT", 5, limit=10_000)) == ["ORDER_SUBMITTED"]  # reserves 50,100
    assert w.ledger.buying_power_cents == 49_900
    result = w.submit("BUY", "LIMIT", 5, limit=9_960)  # needs 49,900: exactly the buying power
    assert kinds(result) == ["ORDER_SUBMITTED"]
    result = w.submit("BUY", "LIMIT", 1, limit=100)
    assert last_order(result).reject_reason is RejectReason.INSUFFICIENT_FUNDS
    assert "2.00" in last_order(result).error and "0.00" in last_order(result).error


def test_extra_check_rejects_with_its_reason_and_message_after_the_engines_own_checks():
    seen = []

    def max_order_value(check: CheckContext):
        seen.append((check.ledger.portfolio_id, check.request.quantity, check.quote.symbol))
        if check.request.quantity * check.quote.price > 500_000:
            return RejectReason.RISK_LIMIT, "order value above the 5,000.00 limit"
        return None

    w = World(extra_checks=[max_order_value])
    result = w.submit("BUY", "MARKET", 51)
    assert (last_order(result).reject_reason, last_order(result).error) == (
        RejectReason.RISK_LIMIT, "order value above the 5,000.00 limit")
    assert w.ledger.reserved_cash_cents == 0
    assert last_order(w.submit("BUY", "MARKET", 50)).status is OrderStatus.FILLED
    w.submit("BUY", "MARKET", 0)  # rejected before the extra checks run
    assert seen == [("P1", 51, "ACME"), ("P1", 50, "ACME")]


def test_checks_run_in_the_documented_order():
    w = World(cash=0)
    assert last_order(w.submit("SELL", "LIMIT", 0, symbol="NOPE")).reject_reason is RejectReason.UNKNOWN_SYMBOL
    assert last_order(w.submit("SELL", "LIMIT", 0)).reject_reason is RejectReason.INVALID_QUANTITY
    assert last_order(w.submit("SELL", "LIMIT", 1, tif="IOC", state="PAUSED")).reject_reason is (
        RejectReason.INVALID_PRICE)
    assert last_order(w.submit("SELL", "MARKET", 1, state="CLOSED")).reject_reason is RejectReason.MARKET_CLOSED
    assert last_order(w.submit("SELL", "MARKET", 1)).reject_reason is RejectReason.INSUFFICIENT_SHARES
    assert last_order(w.submit("BUY", "MARKET", 1)).reject_reason is RejectReason.INSUFFICIENT_FUNDS


def test_submit_into_someone_elses_portfolio_is_forbidden_and_creates_nothing():
    w = World()
    with pytest.raises(Forbidden):
        w.submit("BUY", "MARKET", 1, portfolio="P2")
    with pytest.raises(NotFound):
        w.submit("BUY", "MARKET", 1, portfolio="P9")
    assert w.engine._order_ids.last == 0
    assert w.other.cash_cents == CASH


def test_reject_records_duplicate_client_order_id_without_the_id():
    w = World()
    request = OrderRequest("P1", "ACME", Side.BUY, OrderType.MARKET, 10, client_order_id="c1")
    result = w.engine.reject(USER, request, RejectReason.DUPLICATE_CLIENT_ORDER_ID, "clientOrderId 'c1' reused",
                             now_ms=5, day_index=0)
    order = last_order(result)
    assert kinds(result) == ["ORDER_REJECTED"]
    assert (order.client_order_id, order.reject_reason, order.error) == (
        None, RejectReason.DUPLICATE_CLIENT_ORDER_ID, "clientOrderId 'c1' reused")
    other = last_order(w.engine.reject(USER, request, RejectReason.INVALID_PRICE, "bad", now_ms=6, day_index=0))
    assert other.client_order_id == "c1"
    with pytest.raises(Forbidden):
        w.engine.reject(OTHER, request, RejectReason.INVALID_PRICE, "bad", now_ms=6, day_index=0)


# ----- reservations ------------------------------------------------------------------------------------------


def test_limit_buy_reserves_quantity_times_limit_plus_worst_case_commission():
    w = World(commission=Commission(per_order_cents=150, per_share_cents=Decimal("0.35")))
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    assert order.reserved_cash_cents == 10 * 9_000 + 150 + 4  # 3.5 cents of per-share commission rounded up
    assert w.ledger.reserved_cash_cents == order.reserved_cash_cents
    assert w.ledger.buying_power_cents == CASH - order.reserved_cash_cents


def test_market_buy_reserves_at_ask_plus_buffer_and_stop_at_the_higher_of_ask_and_stop():
    w = World(market_buffer=Decimal("0.10"))
    w.quote(ask_size=0)
    assert last_order(w.submit("BUY", "MARKET", 10)).reserved_cash_cents == 10 * 11_006  # 100.05 * 1.1 rounded up
    assert last_order(w.submit("BUY", "STOP", 10, stop=10_500)).reserved_cash_cents == 10 * 11_550
    assert last_order(w.submit("BUY", "STOP", 10, stop=9_000)).reserved_cash_cents == 10 * 11_006
    assert w.ledger.reserved_cash_cents == 10 * (11_006 + 11_550 + 11_006)


def test_partial_fill_shrinks_buy_reservation_to_the_remaining():
    w = World(commission=Commission(per_order_cents=100, per_share_cents=Decimal("0.5")))
    w.quote(ask_size=4)
    result = w.submit("BUY", "LIMIT", 10, limit=10_100, tif="GTC")
    order = last_order(result)
    assert order.filled_quantity == 4
    assert order.reserved_cash_cents == 6 * 10_100 + 3  # the per-order part was charged with the first fill
    assert w.ledger.reserved_cash_cents == order.reserved_cash_cents
    assert w.ledger.cash_cents == CASH - 4 * 10_005 - 100 - 2
    assert_books_balance(w)


def test_sell_reserves_shares_and_fills_release_them():
    w = World()
    w.holding(10)
    w.quote(bid_size=3)
    w.submit("SELL", "MARKET", 8, tif="GTC")
    assert (w.position().quantity, w.position().reserved_quantity) == (7, 5)
    w.tick(bid_size=5)
    assert (w.position().quantity, w.position().reserved_quantity) == (2, 0)
    assert_books_balance(w)


def test_cancel_releases_reservations():
    w = World()
    w.holding(10)
    buy = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    sell = last_order(w.submit("SELL", "LIMIT", 10, limit=11_000))
    result = w.engine.cancel(USER, buy.order_id, now_ms=w.now)
    assert kinds(result) == ["ORDER_CANCELLED"]
    assert last_order(result).status is OrderStatus.CANCELLED and last_order(result).error is None
    w.engine.cancel(USER, sell.order_id, now_ms=w.now)
    assert w.ledger.reserved_cash_cents == 0 and w.position().reserved_quantity == 0
    assert_books_balance(w)


def test_buy_at_an_ask_above_the_reserve_price_fills_only_what_is_affordable():
    # 10 shares reserved at 105.06 (ask 100.05 + 5%) = 1,050.60 of 1,060.00 cash; the price then gaps up.
    w = World(cash=106_000)
    w.quote(ask_size=0)
    order = last_order(w.submit("BUY", "MARKET", 10, tif="GTC"))
    assert order.reserved_cash_cents == 105_060
    result = w.tick(ask=12_000)
    # k shares at 120.00 plus (10 - k) still reserved at 105.06 must fit in 1,060.00: k <= 0.63 -> nothing.
    assert kinds(result) == ["ORDER_CANCELLED"]
    assert last_order(result).error == "insufficient funds at the current ask"
    assert w.ledger.cash_cents == 106_000 and w.ledger.reserved_cash_cents == 0

    w = World(cash=200_000)
    w.quote(ask_size=0)
    w.submit("BUY", "MARKET", 10, tif="GTC")  # reserves 1,050.60 of 2,000.00
    result = w.tick(ask=30_000)
    # k * 300.00 + (10 - k) * 105.06 <= 2,000.00  ->  k <= 4.87
    assert fills(result) == [(4, 30_000)]
    assert w.ledger.cash_cents == 80_000 and w.ledger.reserved_cash_cents == 6 * 10_506
    assert w.ledger.cash_cents >= w.ledger.reserved_cash_cents
    assert_books_balance(w)


def test_a_marketable_buy_never_drives_cash_negative():
    w = World(cash=50_000)
    w.quote(ask_size=0)
    w.submit("BUY", "MARKET", 4, tif="GTC")  # reserves 4 * 105.06 = 420.24
    assert fills(w.tick(ask=12_500, ask_size=1)) == [(1, 12_500)]  # 125.00 + 3 * 105.06 fits in 500.00
    assert (w.ledger.cash_cents, w.ledger.reserved_cash_cents) == (37_500, 3 * 10_506)
    assert fills(w.tick(ask=12_500, ask_size=10)) == [(3, 12_500)]  # the whole rest costs exactly the cash left
    assert (w.ledger.cash_cents, w.ledger.reserved_cash_cents) == (0, 0)
    assert_books_balance(w)


def test_commission_rounding_never_cancels_a_limit_buy_at_its_limit():
    # 3 shares at 0.6 cents each reserve ceil(1.8) = 2 cents; one share now would cost round(0.6) = 1 cent while the
    # two left still need ceil(1.2) = 2: a cent more than is there. The order waits for size instead.
    w = World(cash=3 * 10_005 + 2, commission=Commission(per_share_cents=Decimal("0.6")))
    w.quote(ask_size=0)
    w.submit("BUY", "LIMIT", 3, limit=10_005, tif="GTC")
    assert w.ledger.buying_power_cents == 0
    assert kinds(w.tick(ask_size=1)) == []
    assert fills(w.tick(ask_size=3)) == [(3, 10_005)]
    assert (w.ledger.cash_cents, w.ledger.commissions_cents) == (0, 2)


# ----- commissions -------------------------------------------------------------------------------------------


def test_per_order_commission_is_charged_on_first_fill_only():
    w = World(commission=Commission(per_order_cents=495))
    w.quote(ask_size=3)
    first = w.submit("BUY", "MARKET", 5)
    second = w.tick(ask_size=3)
    assert [e.fill.commission_cents for e in first + second if e.fill] == [495, 0]
    assert last_order(second).commission_cents == 495
    assert w.ledger.commissions_cents == 495
    assert w.ledger.cash_cents == CASH - 5 * 10_005 - 495


def test_per_share_commission_is_rounded_half_even_per_fill():
    w = World(commission=Commission(per_share_cents=Decimal("0.5")))
    w.quote(ask_size=1)
    w.submit("BUY", "MARKET", 6, tif="GTC")  # 1 share: 0.5 -> 0
    w.tick(ask_size=3)  # 1.5 -> 2
    result = w.tick(ask_size=5)  # 2 shares: 1.0
    assert last_order(result).commission_cents == 0 + 2 + 1
    assert w.ledger.commissions_cents == 3
    assert identity_gap(w.ledger) == 0


def test_sell_commission_is_capped_at_the_proceeds():
    w = World(commission=Commission(per_order_cents=1_000))
    w.holding(1, price=500)
    w.quote(500)
    cash = w.ledger.cash_cents
    result = w.submit("SELL", "MARKET", 1)
    assert [e.fill.commission_cents for e in result if e.fill] == [495]
    assert w.ledger.cash_cents == cash
    assert identity_gap(w.ledger) == 0


# ----- modify ------------------------------------------------------------------------------------------------


def test_modify_quantity_recomputes_reservation():
    w = World()
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    result = w.engine.modify(USER, order.order_id, quantity=25, quote=w.quotes["ACME"], now_ms=w.now + 1,
                             market_ms=0, market_state="OPEN")
    assert kinds(result) == ["ORDER_MODIFIED"]
    modified = last_order(result)
    assert (modified.order_id, modified.quantity, modified.reserved_cash_cents) == (order.order_id, 25, 225_000)
    assert modified.updated_at_ms == w.now + 1 and modified.created_at_ms == order.created_at_ms
    assert w.ledger.reserved_cash_cents == 225_000
    assert_books_balance(w)


def test_modify_limit_makes_order_marketable_and_it_fills_at_once():
    w = World()
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    result = w.engine.modify(USER, order.order_id, limit_price=10_005, quote=w.quotes["ACME"], now_ms=w.now,
                             market_ms=0, market_state="OPEN")
    assert kinds(result) == ["ORDER_MODIFIED", "EXECUTION_REPORT", "ORDER_FILLED"]
    assert w.ledger.reserved_cash_cents == 0
    assert_books_balance(w)


def test_modify_in_a_paused_market_does_not_match():
    w = World()
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    result = w.engine.modify(USER, order.order_id, limit_price=10_100, quote=w.quotes["ACME"], now_ms=w.now,
                             market_ms=0, market_state="PAUSED")
    assert kinds(result) == ["ORDER_MODIFIED"]


def test_modify_to_a_quantity_not_above_the_filled_quantity_is_refused():
    w = World()
    w.quote(ask_size=4)
    order = last_order(w.submit("BUY", "MARKET", 10, tif="GTC"))
    for quantity in (4, 3, 0):
        with pytest.raises(BadRequest, match="more than the 4 already filled"):
            w.engine.modify(USER, order.order_id, quantity=quantity, quote=w.quotes["ACME"], now_ms=w.now,
                            market_ms=0, market_state="OPEN")
    w.quote(ask_size=0)
    result = w.engine.modify(USER, order.order_id, quantity=5, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                             market_state="OPEN")
    assert (last_order(result).remaining_quantity, last_order(result).reserved_cash_cents) == (1, 10_506)


def test_modify_refused_for_insufficient_funds_leaves_the_order_unchanged():
    w = World(cash=100_000)
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    with pytest.raises(BadRequest, match="insufficient funds for the modified order"):
        w.engine.modify(USER, order.order_id, quantity=12, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                        market_state="OPEN")
    with pytest.raises(BadRequest, match="insufficient funds for the modified order"):
        w.engine.modify(USER, order.order_id, limit_price=10_001, quote=w.quotes["ACME"], now_ms=w.now,
                        market_ms=0, market_state="OPEN")
    assert w.engine.order(order.order_id) == order
    assert w.ledger.reserved_cash_cents == 90_000
    result = w.engine.modify(USER, order.order_id, quantity=11, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                             market_state="CLOSED")  # 99,000 fits in buying power plus its own 90,000
    assert last_order(result).reserved_cash_cents == 99_000


def test_modify_sell_beyond_the_available_shares_is_refused():
    w = World()
    w.holding(10)
    order = last_order(w.submit("SELL", "LIMIT", 6, limit=11_000))
    with pytest.raises(BadRequest, match="insufficient shares"):
        w.engine.modify(USER, order.order_id, quantity=11, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                        market_state="OPEN")
    w.engine.modify(USER, order.order_id, quantity=10, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                    market_state="OPEN")
    assert w.position().reserved_quantity == 10


def test_modify_refuses_prices_the_order_type_does_not_have_or_breaks_and_needs_something_to_change():
    w = World(price_tick_cents=5)
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    stop = last_order(w.submit("BUY", "STOP", 10, stop=11_000))
    q = w.quotes["ACME"]
    for target, changes, message in [
        (order, {"stop_price": 9_500}, "has no stop price"),
        (stop, {"limit_price": 9_500}, "has no limit price"),
        (order, {"limit_price": 9_001}, "multiple of"),
        (order, {"limit_price": 0}, "positive"),
        (order, {}, "nothing to modify"),
        (order, {"quantity": 1_000_001}, "whole number"),
    ]:
        with pytest.raises(BadRequest, match=message):
            w.engine.modify(USER, target.order_id, quote=q, now_ms=w.now, market_ms=0, market_state="OPEN", **changes)
    result = w.engine.modify(USER, stop.order_id, stop_price=12_000, quote=q, now_ms=w.now, market_ms=0,
                             market_state="OPEN")
    assert last_order(result).reserved_cash_cents == 10 * 12_600
    with pytest.raises(Forbidden):
        w.engine.modify(OTHER, order.order_id, quantity=5, quote=q, now_ms=w.now, market_ms=0, market_state="OPEN")


def test_modify_runs_the_extra_checks_on_the_new_remaining_quantity():
    def at_most_20(check: CheckContext):
        return Rejection(RejectReason.RISK_LIMIT, "too many shares") if check.remaining_quantity > 20 else None

    w = World(extra_checks=[at_most_20])
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    with pytest.raises(BadRequest, match="too many shares"):
        w.engine.modify(USER, order.order_id, quantity=21, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                        market_state="OPEN")
    assert w.engine.order(order.order_id).quantity == 10
    w.quote(ask_size=4)
    partly = last_order(w.submit("BUY", "MARKET", 10, tif="GTC"))
    assert partly.filled_quantity == 4
    w.engine.modify(USER, partly.order_id, quantity=24, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                    market_state="PAUSED")  # 20 left to buy
    with pytest.raises(BadRequest, match="too many shares"):
        w.engine.modify(USER, partly.order_id, quantity=25, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                        market_state="PAUSED")


def test_submit_and_modify_run_one_list_of_checks_that_sees_the_order_being_replaced():
    seen = []

    def record(check: CheckContext):
        replaced = None if check.replacing is None else check.replacing.order_id
        seen.append((check.request.quantity, check.request.limit_price, check.market_state, replaced))
        return None

    w = World(extra_checks=[record])
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000, state="PAUSED"))
    w.engine.modify(USER, order.order_id, limit_price=9_100, quote=w.quotes["ACME"], now_ms=w.now, market_ms=0,
                    market_state="CLOSED")
    assert seen == [(10, 9_000, MarketState.PAUSED, None), (10, 9_100, MarketState.CLOSED, order.order_id)]
    assert not hasattr(w.engine, "extra_checks")  # injected at construction only


def test_modify_without_a_quote_keeps_the_reserve_price_and_skips_what_needs_one():
    w = World()
    w.quote(ask_size=4)
    order = last_order(w.submit("BUY", "MARKET", 10, tif="GTC"))
    assert order.reserved_cash_cents == 6 * 10_506  # the ask 100.05 plus 5 %, rounded up to a cent
    result = w.engine.modify(USER, order.order_id, quantity=8, quote=None, now_ms=w.now, market_ms=0,
                             market_state="OPEN")
    assert kinds(result) == ["ORDER_MODIFIED"]
    assert last_order(result).reserved_cash_cents == 4 * 10_506
    assert_books_balance(w)


# ----- cancel ------------------------------------------------------------------------------------------------


def test_cancel_is_not_found_for_unknown_forbidden_for_others_and_bad_request_once_closed():
    w = World()
    order = last_order(w.submit("BUY", "LIMIT", 10, limit=9_000))
    with pytest.raises(NotFound):
        w.engine.cancel(USER, "O999", now_ms=w.now)
    with pytest.raises(Forbidden):
        w.engine.cancel(OTHER, order.order_id, now_ms=w.now)
    w.engine.cancel(USER, order.order_id, now_ms=w.now)
    with pytest.raises(BadRequest, match="order is no longer open"):
        w.engine.cancel(USER, order.order_id, now_ms=w.now)
    with pytest.raises(Forbidden):
        w.engine.cancel(OTHER, order.order_id, now_ms=w.now)
    filled = last_order(w.submit("BUY", "MARKET", 1))
    with pytest.raises(BadRequest, match="order is no longer open"):
        w.engine.cancel(USER, filled.order_id, now_ms=w.now)
    with pytest.raises(BadRequest, match="order is no longer open"):
        w.engine.modify(USER, filled.order_id, quantity=5, quote=None, now_ms=w.now, market_ms=0,
                        market_state="OPEN")
    assert w.engine.order(order.order_id) is None


# ----- displayed size ----------------------------------------------------------------------------------------


def test_displayed_size_is_shared_by_two_orders_in_one_tick_in_time_priority():
    w = World()
    first = last_order(w.submit("BUY", "LIMIT", 70, limit=9_900, tif="GTC")).order_id
    second = last_order(w.submit("BUY", "LIMIT", 70, limit=9_900, user=OTHER, portfolio="P2", tif="GTC")).order_id
    result = w.tick(9_800, ask_size=100)
    assert [(e.order.order_id, e.fill.quantity) for e in result if e.fill] == [(first, 70), (second, 30)]
    result = w.tick(9_800, ask_size=100)
    assert [(e.order.order_id, e.fill.quantity) for e in result if e.fill] == [(second, 40)]
    assert [p.portfolio_id for p in result.portfolios] == ["P2"]
    assert_books_balance(w)


def test_submissions_against_the_same_quote_share_its_size_and_sides_have_their_own():
    w = World()
    w.holding(50)
    w.quote(ask_size=10, bid_size=10)
    assert fills(w.submit("BUY", "MARKET", 8)) == [(8, 10_005)]
    assert fills(w.submit("BUY", "MARKET", 8)) == [(2, 10_005)]
    assert fills(w.submit("SELL", "MARKET", 8)) == [(8, 9_995)]
    assert fills(w.submit("BUY", "MARKET", 8)) == []
    w.quote(ask_size=10)
    assert fills(w.submit("BUY", "MARKET", 5)) == [(5, 10_005)]


def test_orders_on_different_symbols_do_not_share_size():
    w = World()
    w.quote(symbol="ACME", ask_size=0)
    w.quote(symbol="BOLT", ask_size=0)
    w.submit("BUY", "MARKET", 10, symbol="ACME")
    w.submit("BUY", "MARKET", 10, symbol="BOLT")
    w.quote(symbol="ACME", ask_size=10)
    w.quote(symbol="BOLT", ask_size=10)
    result = w.tick()
    assert [(e.order.symbol, e.fill.quantity) for e in result if e.fill] == [("ACME", 10), ("BOLT", 10)]


# ----- stop loss and take profit -----------------------------------------------------------------------------


def test_stop_loss_places_a_market_sell_of_the_unreserved_shares_and_clears_both_levels():
    w = World()
    w.holding(10)
    w.submit("SELL", "LIMIT", 4, limit=12_000, tif="GTC")
    held = w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=9_500, take_profit_cents=11_000)
    assert (held.stop_loss_cents, held.take_profit_cents) == (9_500, 11_000)
    assert kinds(w.tick(9_600)) == []
    result = w.tick(9_500)
    assert kinds(result) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_FILLED"]
    order = last_order(result)
    assert (order.side, order.order_type, order.time_in_force, order.quantity, order.user_id) == (
        Side.SELL, OrderType.MARKET, TimeInForce.DAY, 6, USER)
    assert [(t.portfolio_id, t.symbol, t.kind, t.level_cents, t.price_cents, t.order_id) for t in result.triggers] == [
        ("P1", "ACME", "STOP_LOSS", 9_500, 9_500, order.order_id)]
    assert (w.position().quantity, w.position().stop_loss_cents, w.position().take_profit_cents) == (4, None, None)
    assert kinds(w.tick(9_000)) == []  # cleared: fires once
    assert_books_balance(w)


def test_take_profit_places_a_market_sell_that_fills_over_ticks_when_size_is_short():
    w = World()
    w.holding(10)
    w.engine.set_position_levels(USER, "P1", "ACME", take_profit_cents=10_500)
    result = w.tick(10_600, bid_size=4)
    assert [t.kind for t in result.triggers] == ["TAKE_PROFIT"]
    assert kinds(result) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_PARTIALLY_FILLED"]
    assert fills(w.tick(10_600, bid_size=10)) == [(6, 10_595)]


def test_protective_sell_takes_what_is_left_of_the_displayed_size_after_older_orders():
    w = World()
    w.holding(10)
    w.submit("BUY", "MARKET", 5, user=OTHER, portfolio="P2")
    older = last_order(w.submit("SELL", "STOP", 5, stop=9_000, user=OTHER, portfolio="P2")).order_id
    w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=9_000)
    result = w.tick(8_900, bid_size=7)
    assert [t.kind for t in result.triggers] == ["STOP_LOSS"]
    protective = result.triggers[0].order_id
    assert [(e.order.order_id, e.fill.quantity) for e in result if e.fill] == [(older, 5), (protective, 2)]
    assert fills(w.tick(8_900, bid_size=100)) == [(8, 8_895)]
    assert_books_balance(w)


def test_level_reached_with_every_share_reserved_fires_without_an_order():
    w = World()
    w.holding(10)
    w.submit("SELL", "LIMIT", 10, limit=12_000, tif="GTC")
    w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=9_500)
    result = w.tick(9_000)
    assert kinds(result) == []
    assert [(t.kind, t.order_id) for t in result.triggers] == [("STOP_LOSS", None)]
    assert [p.portfolio_id for p in result.portfolios] == ["P1"]  # the cleared level must be persisted
    assert result.portfolios[0].positions["ACME"].stop_loss_cents is None


def test_set_position_levels_checks_owner_position_and_prices_and_keeps_what_is_not_given():
    w = World()
    with pytest.raises(BadRequest, match="no position"):
        w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=9_000)
    w.holding(10)
    with pytest.raises(Forbidden):
        w.engine.set_position_levels(OTHER, "P1", "ACME", stop_loss_cents=9_000)
    with pytest.raises(NotFound):
        w.engine.set_position_levels(USER, "P9", "ACME", stop_loss_cents=9_000)
    with pytest.raises(BadRequest, match="below the take profit"):
        w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=11_000, take_profit_cents=11_000)
    with pytest.raises(BadRequest, match="positive"):
        w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=-1)
    w.engine.set_position_levels(USER, "P1", "ACME", stop_loss_cents=9_000, take_profit_cents=12_000)
    held = w.engine.set_position_levels(USER, "P1", "ACME", take_profit_cents=None, stop_loss_cents=KEEP)
    assert (held.stop_loss_cents, held.take_profit_cents) == (9_000, None)
    held.stop_loss_cents = 1  # a copy
    assert w.position().stop_loss_cents == 9_000


# ----- restore -----------------------------------------------------------------------------------------------


def test_load_open_orders_recomputes_reservations_and_keeps_time_priority():
    w = World()
    w.holding(10)
    w.quote(ask_size=3, bid_size=0)
    w.submit("BUY", "MARKET", 10, tif="GTC")  # 3 filled, 7 reserved at 105.06
    w.submit("BUY", "LIMIT", 5, limit=9_000, user=OTHER, portfolio="P2")
    w.submit("SELL", "LIMIT", 4, limit=11_000, tif="GTC")
    stored = w.engine.open_orders()
    reserved = (w.ledger.reserved_cash_cents, w.other.reserved_cash_cents, w.position().reserved_quantity)

    fresh = OrderEngine(order_ids=IdSequence("O", 100), execution_ids=IdSequence("E", 100))
    ledgers = [PortfolioLedger(x.portfolio_id, x.owner_id, x.name, x.starting_cash_cents, x.cash_cents,
                               commissions_cents=x.commissions_cents,
                               positions={s: type(p)(s, p.quantity, 0, p.cost_basis_cents, p.realized_pnl_cents)
                                          for s, p in x.positions.items()})
               for x in (w.ledger, w.other)]
    for ledger in ledgers:
        fresh.add_portfolio(ledger)
    fresh.load_open_orders(reversed(stored))
    assert [o.order_id for o in fresh.open_orders()] == [o.order_id for o in stored]
    assert (ledgers[0].reserved_cash_cents, ledgers[1].reserved_cash_cents,
            ledgers[0].positions["ACME"].reserved_quantity) == reserved
    assert [o.reserved_cash_cents for o in fresh.open_orders()] == [o.reserved_cash_cents for o in stored]
    w.quote(ask_size=100, ask=11_000)  # above the restored order's reserve price: reservation still held
    result = fresh.on_quotes(w.quotes, now_ms=w.now, market_ms=w.now)
    assert fills(result) == [(7, 11_000)]
    with pytest.raises(NotFound):
        OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E")).load_open_orders(stored)


# ----- results and reading -----------------------------------------------------------------------------------


def test_result_lists_the_changed_orders_fills_and_ledger_snapshots():
    w = World()
    w.quote(ask_size=4)
    result = w.submit("BUY", "MARKET", 10, tif="IOC")
    assert isinstance(result, list) and result.events == list(result)
    assert [o.status for o in result.orders] == [OrderStatus.CANCELLED]
    assert [(f.quantity, f.price_cents, f.execution_id) for f in result.fills] == [(4, 10_005, "E1")]
    assert [f.order_id for f in result.fills] == [result.orders[0].order_id]
    snapshot = result.portfolios[0]
    assert snapshot == w.ledger and snapshot is not w.ledger
    assert snapshot.positions["ACME"] is not w.position()
    assert result.changed and not TradeResult().changed


def test_results_merge_with_later_snapshots_winning():
    w = World()
    w.quote(ask_size=4)
    total = TradeResult()
    total += w.submit("BUY", "MARKET", 10, tif="GTC")
    total += w.tick(ask_size=10)
    assert kinds(total) == ["ORDER_SUBMITTED", "EXECUTION_REPORT", "ORDER_PARTIALLY_FILLED", "EXECUTION_REPORT",
                            "ORDER_FILLED"]
    assert [o.status for o in total.orders] == [OrderStatus.FILLED]
    assert len(total.fills) == 2 and total.portfolios[0].positions["ACME"].quantity == 10


def test_open_orders_filter_by_user_and_portfolio_and_return_snapshots():
    w = World()
    mine = last_order(w.submit("BUY", "LIMIT", 1, limit=9_000)).order_id
    theirs = last_order(w.submit("BUY", "LIMIT", 1, limit=9_000, user=OTHER, portfolio="P2")).order_id
    assert [o.order_id for o in w.engine.open_orders(user_id=USER)] == [mine]
    assert [o.order_id for o in w.engine.open_orders(portfolio_id="P2")] == [theirs]
    assert [o.order_id for o in w.engine.open_orders()] == [mine, theirs]
    w.engine.open_orders()[0].quantity = 99
    assert w.engine.order(mine).quantity == 1
    assert w.engine.order("O999") is None


def test_ledger_amounts_stay_ints_through_buffers_and_fractional_commissions():
    w = World(commission=Commission(per_order_cents=99, per_share_cents=Decimal("0.37")),
              market_buffer=Decimal("0.033"))
    w.quote(ask_size=7, bid_size=5)
    w.submit("BUY", "MARKET", 20, tif="GTC")
    w.tick(10_123, ask_size=7)
    w.tick(10_077, ask_size=50)
    w.submit("SELL", "LIMIT", 11, limit=10_000, tif="GTC")
    w.tick(10_011, bid_size=5)
    for ledger in w.engine.portfolios():
        for name in ("starting_cash_cents", "cash_cents", "reserved_cash_cents", "commissions_cents"):
            assert type(getattr(ledger, name)) is int
        for held in ledger.positions.values():
            for name in ("quantity", "reserved_quantity", "cost_basis_cents", "realized_pnl_cents"):
                assert type(getattr(held, name)) is int
    for order in w.engine.open_orders():
        assert type(order.reserved_cash_cents) is int and type(order.filled_notional_cents) is int
    assert_books_balance(w)


def test_short_selling_when_allowed_reserves_shares_and_books_a_short():
    w = World(allow_short=True)
    result = w.submit("SELL", "MARKET", 10)
    assert fills(result) == [(10, 9_995)]
    assert (w.position().quantity, w.position().cost_basis_cents) == (-10, -99_950)
    w.submit("BUY", "MARKET", 10)
    assert (w.position().quantity, w.position().realized_pnl_cents) == (0, 99_950 - 100_050)
    assert identity_gap(w.ledger) == 0


def test_engine_options_are_validated():
    for options in ({"max_quantity": 0}, {"price_tick_cents": 0}, {"max_price_cents": 0},
                    {"market_buffer": Decimal(-1)}):
        with pytest.raises(ValueError):
            OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"), **options)
    w = World()
    with pytest.raises(ValueError):
        w.submit("BUY", "MARKET", 1, state="HALTED")
    with pytest.raises(ValueError):
        w.engine.add_portfolio(PortfolioLedger("P1", USER, "again", 0, 0))
