"""The pre-trade checks on their own: each rule's submit and modify texts, the judged price and the reserve price."""

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.market import Quote
from domain.orders import CheckContext, OrderRules, Rejection, judged_price
from domain.orders.checks import first_rejection
from domain.trading import (
    Commission,
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
)

RULES = OrderRules(commission=Commission(per_order_cents=100), max_quantity=1_000, price_tick_cents=5)
ACME = Quote("ACME", "Acme", "Tech", 10_000, 9_995, 10_005, 100, 100, 10_000, 10_000, 10_000, 10_000, 0, 0, 0, 1)


def book(cash: int = 1_000_000, shares: int = 0, reserved_shares: int = 0) -> PortfolioLedger:
    ledger = PortfolioLedger("P1", "u1", "Main", cash, cash)
    if shares:
        ledger.positions["ACME"] = Position("ACME", shares, reserved_shares)
    return ledger


def request(side: str = "BUY", order_type: str = "LIMIT", quantity: int = 10, *, limit: int | None = 10_000,
            stop: int | None = None, tif: str = "DAY", symbol: str = "ACME") -> OrderRequest:
    return OrderRequest("P1", symbol, Side(side), OrderType(order_type), quantity, limit, stop, TimeInForce(tif))


def open_order(req: OrderRequest, *, filled: int = 0, reserved_cash: int = 0) -> Order:
    return Order("O1", None, "P1", "u1", req.symbol, req.side, req.order_type, req.quantity, req.limit_price,
                 req.stop_price, req.time_in_force, OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW,
                 0, 0, 0, filled_quantity=filled, reserved_cash_cents=reserved_cash)


def submitted(req: OrderRequest, ledger: PortfolioLedger | None = None, *, quote: Quote | None = ACME,
              state: MarketState = MarketState.OPEN) -> Rejection | None:
    return first_rejection(RULES.checks(), CheckContext(ledger or book(), req, quote, state))


def modified(order: Order, ledger: PortfolioLedger | None = None, *, quote: Quote | None = ACME,
             reserve_price: int = 0, state: MarketState = MarketState.CLOSED, **changes) -> Rejection | None:
    proposed = request(str(order.side), str(order.order_type), changes.get("quantity", order.quantity),
                       limit=changes.get("limit", order.limit_price), stop=changes.get("stop", order.stop_price),
                       tif=str(order.time_in_force))
    context = CheckContext(ledger or book(), proposed, quote, state, order, reserve_price)
    return first_rejection(RULES.checks(), context)


def test_the_judged_price_is_the_limit_else_the_ask_for_a_buy_and_the_bid_for_a_sell():
    assert judged_price(request(limit=9_000), ACME) == 9_000
    assert judged_price(request("SELL", "STOP_LIMIT", limit=9_000, stop=9_500), ACME) == 9_000
    assert judged_price(request(order_type="MARKET", limit=None), ACME) == 10_005
    assert judged_price(request(order_type="STOP", limit=None, stop=10_100), ACME) == 10_100
    assert judged_price(request(order_type="STOP", limit=None, stop=9_000), ACME) == 10_005
    assert judged_price(request("SELL", "MARKET", limit=None), ACME) == 9_995
    assert judged_price(request("SELL", "STOP", limit=None, stop=9_000), ACME) == 9_995


def test_a_buy_reserves_at_its_judged_price_with_the_market_buffer_when_its_fill_price_is_unknown():
    def reserve_price(req, quote=ACME, kept=0):
        return RULES.reserve_price(CheckContext(book(), req, quote, MarketState.OPEN, None, kept))

    assert reserve_price(request(limit=9_000)) == 9_000
    assert reserve_price(request(order_type="MARKET", limit=None)) == 10_506  # 100.05 × 1.05 = 105.0525, up
    assert reserve_price(request(order_type="STOP", limit=None, stop=10_100)) == 10_605
    assert reserve_price(request(order_type="MARKET", limit=None), replace(ACME, ask=0)) == 1
    assert reserve_price(request(order_type="MARKET", limit=None), None, kept=10_600) == 10_600
    assert OrderRules(market_buffer=Decimal(0)).buffered(10_005) == 10_005


def test_submit_checks_run_in_order_and_say_what_is_wrong():
    assert submitted(request(quantity=0, symbol="NOPE"), quote=None) == (
        RejectReason.UNKNOWN_SYMBOL, "unknown symbol 'NOPE'")
    assert submitted(request(quantity=1_001, limit=3)) == (
        RejectReason.INVALID_QUANTITY, "quantity must be a whole number from 1 to 1000")
    assert submitted(request(limit=None, tif="IOC"), state=MarketState.PAUSED) == (
        RejectReason.INVALID_PRICE, "a LIMIT order needs a limit price")
    assert submitted(request(stop=9_000)) == (RejectReason.INVALID_PRICE, "a LIMIT order takes no stop price")
    assert submitted(request(limit=10_003)) == (RejectReason.INVALID_PRICE, "limit price must be a multiple of 0.05")
    assert submitted(request(tif="FOK"), state=MarketState.PAUSED) == (
        RejectReason.MARKET_CLOSED, "the market is paused: FOK orders cannot rest until it resumes")
    assert submitted(request(order_type="MARKET", limit=None), state=MarketState.CLOSED) == (
        RejectReason.MARKET_CLOSED, "the market is closed: MARKET, IOC and FOK orders cannot rest")
    assert submitted(request("SELL", quantity=5), book(shares=6, reserved_shares=2)) == (
        RejectReason.INSUFFICIENT_SHARES, "only 4 ACME shares are available to sell")
    assert submitted(request(quantity=10), book(cash=100_099)) == (
        RejectReason.INSUFFICIENT_FUNDS, "the order needs 1,001.00 including commission; buying power is 1,000.99")
    assert submitted(request(quantity=10), book(cash=100_100)) is None


def test_modify_checks_the_quantity_against_what_is_filled_and_only_the_prices_it_changes():
    order = open_order(request(quantity=10), filled=4)
    assert modified(order, quantity=4) == (
        RejectReason.INVALID_QUANTITY,
        "quantity must be a whole number from 5 to 1000 (more than the 4 already filled)",
    )
    assert modified(open_order(request()), quantity=0) == (
        RejectReason.INVALID_QUANTITY, "quantity must be a whole number from 1 to 1000")
    assert modified(order, stop=9_000) == (RejectReason.INVALID_PRICE, "a LIMIT order has no stop price")
    assert modified(order, limit=0) == (RejectReason.INVALID_PRICE, "limit price must be positive")
    off_tick = open_order(request(limit=10_003))  # accepted under other rules: not judged again unless changed
    assert modified(off_tick, quantity=12, reserve_price=10_003) is None


def test_modify_skips_the_symbol_and_market_checks_and_counts_what_the_order_already_holds():
    sell = open_order(request("SELL", quantity=6))
    ledger = book(shares=10, reserved_shares=6)
    assert modified(sell, ledger, quote=None, state=MarketState.CLOSED, quantity=10) is None
    assert modified(sell, ledger, quantity=11) == (
        RejectReason.INSUFFICIENT_SHARES, "insufficient shares for the modified order")
    buy = open_order(request(order_type="MARKET", limit=None, quantity=10), filled=4, reserved_cash=6 * 10_600)
    ledger = book(cash=100_000)
    ledger.reserved_cash_cents = buy.reserved_cash_cents  # 63,600 held, 36,400 free: 100,000 for what is left
    assert modified(buy, ledger, quote=None, reserve_price=10_600, quantity=13) is None  # 9 × 106.00 = 95,400
    assert modified(buy, ledger, quote=None, reserve_price=10_600, quantity=14) == (
        RejectReason.INSUFFICIENT_FUNDS, "insufficient funds for the modified order")


def test_an_extra_check_may_answer_a_plain_pair_with_the_reasons_name():
    context = CheckContext(book(), request(), ACME, MarketState.OPEN)
    assert first_rejection([lambda c: None, lambda c: ("RISK_LIMIT", "too big")], context) == Rejection(
        RejectReason.RISK_LIMIT, "too big")
    assert first_rejection([], context) is None


def test_the_rules_refuse_limits_that_make_no_sense():
    for options in ({"max_quantity": 0}, {"price_tick_cents": True}, {"max_price_cents": 0},
                    {"market_buffer": Decimal("NaN")}):
        with pytest.raises(ValueError):
            OrderRules(**options)
