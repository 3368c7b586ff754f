"""What the engine lets differ between portfolios and orders: per-portfolio terms (commission, short selling), gate
checks, the journal note, who placed an order, and stopping a portfolio's trading."""

from decimal import Decimal

import pytest

from domain.errors import BadRequest
from domain.ledger import apply_fill, identity_gap
from domain.market import Quote
from domain.orders import OrderEngine, Rejection
from domain.orders.checks import note_problem
from domain.trading import (
    MAX_NOTE_LENGTH,
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
    TradingTerms,
)

CASH = 10_000_000
HOUSE = Commission(500, Decimal("1"))        # the engine's own: 5.00 an order, 1 cent a share
CONTEST = Commission(199, Decimal("0.35"))   # P2's own terms


def quote(price: int = 10_000, *, version: int = 1, size: int = 1_000) -> Quote:
    return Quote("ACME", "Acme", "Tech", price, price - 5, price + 5, size, size, price, price, price, price, 0, 0, 0,
                 version)


def engine(**options) -> OrderEngine:
    built = OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"), commission=HOUSE, **options)
    built.add_portfolio(PortfolioLedger("P1", "u1", "House terms", CASH, CASH))
    built.add_portfolio(PortfolioLedger("P2", "u2", "Contest terms", CASH, CASH))
    return built


def request(portfolio: str, side: str = "BUY", quantity: int = 100, order_type: str = "MARKET", *,
            limit: int | None = None, stop: int | None = None, note: str | None = None) -> OrderRequest:
    return OrderRequest(portfolio, "ACME", Side(side), OrderType(order_type), quantity, limit, stop, TimeInForce.GTC,
                        note=note)


def submit(eng: OrderEngine, user: str, req: OrderRequest, q: Quote | None = None, **options):
    return eng.submit(user, req, q or quote(), now_ms=10, market_ms=10, day_index=0, market_state="OPEN", **options)


def contest_terms(portfolio_id: str) -> TradingTerms | None:
    return TradingTerms(CONTEST, allow_short=True) if portfolio_id == "P2" else None


def test_a_portfolio_with_its_own_terms_pays_its_own_commission_and_the_others_pay_the_engines():
    eng = engine(terms_for=contest_terms)
    house = submit(eng, "u1", request("P1", quantity=101))
    contest = submit(eng, "u2", request("P2", quantity=101))
    assert house.fills[0].commission_cents == 500 + 101
    assert contest.fills[0].commission_cents == 199 + 35  # 0.35 × 101 = 35.35, half-even to 35
    for ledger in eng.portfolios():
        assert identity_gap(ledger) == 0
    assert eng.portfolio("P2").cash_cents == CASH - 101 * 10_005 - 234


def test_a_buy_reserves_the_worst_case_commission_of_its_own_portfolio():
    eng = engine(terms_for=contest_terms)
    submit(eng, "u2", request("P2", quantity=10, order_type="LIMIT", limit=9_000))
    assert eng.portfolio("P2").reserved_cash_cents == 10 * 9_000 + 199 + 4  # 0.35 × 10 = 3.5, up to 4
    submit(eng, "u1", request("P1", quantity=10, order_type="LIMIT", limit=9_000))
    assert eng.portfolio("P1").reserved_cash_cents == 10 * 9_000 + 500 + 10


def test_the_funds_check_counts_the_portfolios_own_commission():
    eng = engine(terms_for=lambda pid: TradingTerms(Commission(CASH)) if pid == "P2" else None)
    rejected = submit(eng, "u2", request("P2", quantity=1, order_type="LIMIT", limit=100))
    assert rejected[0].order.reject_reason is RejectReason.INSUFFICIENT_FUNDS
    assert submit(eng, "u1", request("P1", quantity=1, order_type="LIMIT", limit=100))[0].kind == "ORDER_SUBMITTED"


def test_short_selling_follows_the_portfolios_terms_whatever_the_engine_allows():
    eng = engine(terms_for=contest_terms)  # the engine itself allows no shorts; P2's terms do
    assert submit(eng, "u1", request("P1", "SELL", 5))[0].order.reject_reason is RejectReason.INSUFFICIENT_SHARES
    sold = submit(eng, "u2", request("P2", "SELL", 5))
    assert sold[-1].kind == "ORDER_FILLED" and eng.portfolio("P2").positions["ACME"].quantity == -5

    strict = engine(allow_short=True, terms_for=lambda pid: TradingTerms() if pid == "P2" else None)
    assert submit(strict, "u2", request("P2", "SELL", 5))[0].order.reject_reason is RejectReason.INSUFFICIENT_SHARES
    assert submit(strict, "u1", request("P1", "SELL", 5))[-1].kind == "ORDER_FILLED"


def test_gate_checks_run_before_the_engines_own_so_their_reason_wins():
    def closed(context):
        return Rejection(RejectReason.CONTEST_NOT_OPEN, "not now") if context.ledger.portfolio_id == "P2" else None

    eng = engine(gate_checks=(closed,))
    nonsense = OrderRequest("P2", "NOPE", Side.BUY, OrderType.MARKET, -3)
    rejected = eng.submit("u2", nonsense, None, now_ms=1, market_ms=1, day_index=0, market_state="CLOSED")
    assert (rejected[0].order.reject_reason, rejected[0].order.error) == (RejectReason.CONTEST_NOT_OPEN, "not now")
    assert submit(eng, "u1", request("P1"))[-1].kind == "ORDER_FILLED"


def test_a_gate_check_refuses_a_modify_with_its_text():
    state = {"open": True}

    def gate(context):
        return None if state["open"] else Rejection(RejectReason.CONTEST_NOT_OPEN, "the contest has ended")

    eng = engine(gate_checks=(gate,))
    order = submit(eng, "u1", request("P1", order_type="LIMIT", limit=9_000))[0].order
    state["open"] = False
    with pytest.raises(BadRequest, match="the contest has ended"):
        eng.modify("u1", order.order_id, quantity=50, quote=quote(), now_ms=20, market_ms=20, market_state="OPEN")


def test_a_note_is_recorded_on_the_order_and_survives_a_modify():
    eng = engine()
    placed = submit(eng, "u1", request("P1", order_type="LIMIT", limit=9_000, note="cheap after the dip"))
    assert placed[0].order.note == "cheap after the dip"
    modified = eng.modify("u1", placed[0].order.order_id, quantity=50, quote=quote(), now_ms=20, market_ms=20,
                          market_state="OPEN")
    assert modified[0].order.note == "cheap after the dip"
    assert submit(eng, "u1", request("P1"))[0].order.note is None


@pytest.mark.parametrize("note, problem", [
    ("x" * (MAX_NOTE_LENGTH + 1), "the note has 501 characters; at most 500 are allowed"),
    ("buy\x00now", "the note must not contain control characters"),
    ("bell\x07", "the note must not contain control characters"),
    (42, "the note must be text"),
])
def test_an_invalid_note_rejects_the_order_with_its_reason(note, problem):
    rejected = submit(engine(), "u1", request("P1", note=note))
    assert rejected.events[0].kind is EventKind.ORDER_REJECTED
    assert (rejected[0].order.reject_reason, rejected[0].order.error) == (RejectReason.INVALID_NOTE, problem)
    assert not rejected.fills


def test_a_note_may_be_500_characters_over_several_lines_with_any_script():
    assert note_problem("x" * MAX_NOTE_LENGTH) is None
    assert note_problem("Why:\n\t- earnings beat\r\n- 📈 ÄÖÜ 株") is None
    assert submit(engine(), "u1", request("P1", note="é" * MAX_NOTE_LENGTH))[-1].kind == "ORDER_FILLED"


def test_an_order_records_the_team_member_who_placed_it_for_the_owner():
    eng = engine()
    by_member = submit(eng, "u1", request("P1", order_type="LIMIT", limit=9_000), placed_by="u7")
    assert (by_member[0].order.user_id, by_member[0].order.placed_by, by_member[0].order.placer) == ("u1", "u7", "u7")
    by_owner = submit(eng, "u1", request("P1"), placed_by="u1")
    assert by_owner[0].order.placed_by is None and by_owner[0].order.placer == "u1"
    assert all(fill.user_id == "u1" for fill in by_owner.fills)
    refused = eng.reject("u1", request("P1"), RejectReason.DUPLICATE_CLIENT_ORDER_ID, "dup", now_ms=30, day_index=0,
                         placed_by="u7")
    assert refused[0].order.placed_by == "u7"
    eng.cancel("u1", by_member[0].order.order_id, now_ms=40)  # the owner's id reaches every order of the portfolio


def test_stop_trading_expires_the_portfolios_orders_and_clears_its_levels_so_no_tick_trades_for_it():
    eng = engine()
    submit(eng, "u1", request("P1", quantity=10))
    submit(eng, "u2", request("P2", quantity=10))
    for user, portfolio in (("u1", "P1"), ("u2", "P2")):
        eng.set_position_levels(user, portfolio, "ACME", stop_loss_cents=9_000)
        submit(eng, user, request(portfolio, quantity=5, order_type="LIMIT", limit=8_000))

    stopped = eng.stop_trading(["P1", "missing"], now_ms=50, reason="the contest ended")
    assert [(e.kind, e.order.portfolio_id, e.order.status, e.order.error) for e in stopped] == [
        (EventKind.ORDER_CANCELLED, "P1", OrderStatus.EXPIRED, "the contest ended")]
    assert [ledger.portfolio_id for ledger in stopped.portfolios] == ["P1"]
    assert eng.portfolio("P1").reserved_cash_cents == 0
    assert eng.portfolio("P1").positions["ACME"].stop_loss_cents is None

    crash = eng.on_quotes({"ACME": quote(7_000, version=2)}, now_ms=60, market_ms=60)
    assert {fill.portfolio_id for fill in crash.fills} == {"P2"}  # P2's limit buy and its stop-loss sell
    assert [trigger.portfolio_id for trigger in crash.triggers] == ["P2"]
    assert not eng.stop_trading(["P1"], now_ms=70, reason="again")  # nothing left to stop


def test_a_stop_loss_reached_while_the_gate_is_shut_places_a_rejected_sell_and_trades_nothing():
    shut = {"P1": False}

    def gate(context):
        return Rejection(RejectReason.CONTEST_NOT_OPEN, "ended") if shut[context.ledger.portfolio_id] else None

    def refuse_everything(context):
        return Rejection(RejectReason.RISK_LIMIT, "no")

    eng = engine(gate_checks=(gate,))
    submit(eng, "u1", request("P1", quantity=10))
    eng.set_position_levels("u1", "P1", "ACME", stop_loss_cents=9_000)
    shut["P1"] = True
    crash = eng.on_quotes({"ACME": quote(8_000, version=2)}, now_ms=60, market_ms=60)
    assert [(e.kind, e.order.reject_reason) for e in crash] == [(EventKind.ORDER_REJECTED,
                                                                 RejectReason.CONTEST_NOT_OPEN)]
    assert not crash.fills and crash.triggers[0].order_id == crash[0].order.order_id
    assert eng.portfolio("P1").positions["ACME"].quantity == 10

    risky = engine(extra_checks=(refuse_everything,))  # the extra checks never hold a protective sell back
    apply_fill(risky.portfolio("P1"), Fill("S", "SEED", "P1", "u1", "ACME", Side.BUY, 10, 10_000, 0, 0, 0))
    risky.set_position_levels("u1", "P1", "ACME", stop_loss_cents=9_000)
    assert risky.on_quotes({"ACME": quote(8_000, version=2)}, now_ms=60, market_ms=60)[-1].kind \
        is EventKind.ORDER_FILLED
