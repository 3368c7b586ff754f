"""A contest's rules enforced by the order engine: open or not, notes, allowed symbols, position weight, commission
and short selling per contest, and a portfolio outside every contest left as it was."""

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.contests import Contest, ContestChecks, ContestRules, ContestStatus, DaySchedule, Moment
from domain.errors import BadRequest
from domain.ledger import identity_gap
from domain.market import Quote
from domain.orders import OrderEngine
from domain.risk import RiskLimits, pre_trade_check
from domain.trading import (
    Commission,
    EventKind,
    IdSequence,
    OrderRequest,
    OrderType,
    PortfolioLedger,
    RejectReason,
    Side,
    TimeInForce,
)

CASH = 10_000_000
SECTORS = {"ACME": "Tech", "OIL": "Energy", "BANK": "Finance"}


class Classroom:
    """One engine holding a contest portfolio (PC, Ada's) and an ordinary one (PO, Bob's), a clock and quotes."""

    def __init__(self, **rules):
        self.contest = Contest("C1", "Class 9B", "t1", "QX7-42K", ContestRules(**rules), DaySchedule(1, 3))
        self.moment = Moment(0, 1)
        self.quotes = {symbol: self.quote(symbol, 10_000, 1) for symbol in SECTORS}
        self.checks = ContestChecks(lambda pid: self.contest if pid == "PC" else None, lambda: self.moment,
                                    lambda: self.quotes)
        house_risk = pre_trade_check(lambda pid: RiskLimits(max_order_value=CASH), lambda: self.quotes)
        self.engine = OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"),
                                  commission=Commission(1_000), gate_checks=(self.checks.gate,),
                                  extra_checks=(self.checks.rules, house_risk), terms_for=self.checks.terms_for)
        cash = self.contest.rules.starting_cash_cents
        self.engine.add_portfolio(PortfolioLedger("PC", "ada", "Ada", cash, cash))
        self.engine.add_portfolio(PortfolioLedger("PO", "bob", "Bob", CASH, CASH))
        self.now = 0

    @staticmethod
    def quote(symbol: str, price: int, version: int) -> Quote:
        return Quote(symbol, symbol, SECTORS[symbol], price, price - 5, price + 5, 10_000, 10_000, price, price, price,
                     price, 0, 0, 0, version)

    def submit(self, side: str = "BUY", quantity: int = 10, *, symbol: str = "ACME", portfolio: str = "PC",
               order_type: str = "MARKET", limit: int | None = None, note: str | None = "why not"):
        self.now += 1
        user = "ada" if portfolio == "PC" else "bob"
        request = OrderRequest(portfolio, symbol, Side(side), OrderType(order_type), quantity, limit, None,
                               TimeInForce.GTC, note=note)
        return self.engine.submit(user, request, self.quotes.get(symbol), now_ms=self.now, market_ms=self.now,
                                  day_index=self.moment.day_index, market_state="OPEN")

    def rejection(self, result):
        assert result[0].kind is EventKind.ORDER_REJECTED and not result.fills
        return result[0].order.reject_reason, result[0].order.error


def test_a_draft_contest_rejects_orders_with_when_it_opens():
    room = Classroom()
    room.moment = Moment(0, 0)
    assert room.rejection(room.submit()) == (
        RejectReason.CONTEST_NOT_OPEN, 'the contest "Class 9B" has not started yet: it opens on simulated day 1')
    assert room.submit(portfolio="PO")[-1].kind is EventKind.ORDER_FILLED


def test_after_the_end_every_order_is_rejected_for_the_contest_whatever_else_is_wrong_with_it():
    room = Classroom(note_required=True)
    room.moment = Moment(0, 4)
    for result in (room.submit(), room.submit(quantity=0, note=None), room.submit(symbol="NOPE"),
                   room.submit("SELL", 10**9)):
        assert room.rejection(result) == (RejectReason.CONTEST_NOT_OPEN,
                                          'the contest "Class 9B" has ended: it takes no more orders')


def test_a_teacher_finishing_early_closes_the_contest_at_once():
    room = Classroom()
    room.contest = room.contest.finish(room.moment)
    assert room.rejection(room.submit())[0] is RejectReason.CONTEST_NOT_OPEN


def test_a_modify_after_the_end_is_refused_with_the_contests_reason():
    room = Classroom()
    order = room.submit(order_type="LIMIT", limit=9_000)[0].order
    room.moment = Moment(0, 4)
    with pytest.raises(BadRequest, match="has ended"):
        room.engine.modify("ada", order.order_id, quantity=5, quote=room.quotes["ACME"], now_ms=50, market_ms=50,
                           market_state="OPEN")


def test_a_contest_that_wants_notes_rejects_an_order_without_one():
    room = Classroom(note_required=True)
    for missing in (None, "", "   \n"):
        assert room.rejection(room.submit(note=missing)) == (
            RejectReason.NOTE_REQUIRED, 'the contest "Class 9B" asks for a note with every order: say why you trade')
    assert room.submit(note="earnings tomorrow")[-1].kind is EventKind.ORDER_FILLED
    assert room.submit(portfolio="PO", note=None)[-1].kind is EventKind.ORDER_FILLED


def test_a_note_longer_than_500_characters_is_rejected_in_a_contest_too():
    room = Classroom(note_required=True)
    assert room.rejection(room.submit(note="x" * 501))[0] is RejectReason.INVALID_NOTE


def test_a_symbol_outside_the_allowed_symbols_and_sectors_is_rejected_on_either_side():
    room = Classroom(allowed_sectors={"Energy"}, allowed_symbols={"ACME"}, short_selling=True)
    assert room.rejection(room.submit(symbol="BANK")) == (
        RejectReason.SYMBOL_NOT_ALLOWED,
        'BANK (Finance) is not traded in the contest "Class 9B": it allows the sector Energy and the symbol ACME')
    assert room.rejection(room.submit("SELL", symbol="BANK"))[0] is RejectReason.SYMBOL_NOT_ALLOWED
    assert room.submit(symbol="OIL")[-1].kind is EventKind.ORDER_FILLED
    assert room.submit(symbol="ACME")[-1].kind is EventKind.ORDER_FILLED
    assert room.submit(symbol="BANK", portfolio="PO")[-1].kind is EventKind.ORDER_FILLED


def test_an_order_taking_a_position_past_the_contests_weight_cap_is_rejected_as_a_risk_limit():
    room = Classroom(max_position_weight=Decimal("0.2"), house_risk_limits=False)
    assert room.submit(quantity=150)[-1].kind is EventKind.ORDER_FILLED  # 15 % of 100,000.00
    reason, message = room.rejection(room.submit(quantity=60))
    assert reason is RejectReason.RISK_LIMIT
    assert message == ('position ACME would be 21.00% of value, over maxPositionWeight 20.00% by 1.00% '
                       '(a rule of the contest "Class 9B")')
    assert room.submit("SELL", 100)[-1].kind is EventKind.ORDER_FILLED  # shrinking a position always passes
    assert room.submit(quantity=500, portfolio="PO")[-1].kind is EventKind.ORDER_FILLED


def test_a_modify_growing_a_position_past_the_cap_is_refused():
    room = Classroom(max_position_weight=Decimal("0.2"))
    order = room.submit(order_type="LIMIT", limit=9_000, quantity=100)[0].order
    with pytest.raises(BadRequest, match="maxPositionWeight 20.00%"):
        room.engine.modify("ada", order.order_id, quantity=300, quote=room.quotes["ACME"], now_ms=50, market_ms=50,
                           market_state="OPEN")


def test_a_contest_portfolio_pays_the_contests_commission_and_an_ordinary_one_the_engines():
    room = Classroom(commission=Commission(250, Decimal("0.5")))
    contest_fill = room.submit(quantity=7).fills[0]
    ordinary_fill = room.submit(quantity=7, portfolio="PO").fills[0]
    assert (contest_fill.commission_cents, ordinary_fill.commission_cents) == (250 + 4, 1_000)  # 3.5 → 4, half-even
    assert all(identity_gap(ledger) == 0 for ledger in room.engine.portfolios())


def test_short_selling_is_the_contests_to_allow():
    off, on = Classroom(), Classroom(short_selling=True)
    assert off.rejection(off.submit("SELL", 5))[0] is RejectReason.INSUFFICIENT_SHARES
    assert on.submit("SELL", 5)[-1].kind is EventKind.ORDER_FILLED
    assert on.engine.portfolio("PC").positions["ACME"].quantity == -5
    assert on.rejection(on.submit("SELL", 5, portfolio="PO"))[0] is RejectReason.INSUFFICIENT_SHARES


def test_the_contests_starting_cash_is_what_its_portfolio_starts_with():
    room = Classroom(starting_cash_cents=50_000)
    assert room.engine.portfolio("PC").cash_cents == 50_000
    assert room.rejection(room.submit(quantity=10))[0] is RejectReason.INSUFFICIENT_FUNDS


def test_the_gate_reads_the_clock_so_a_stale_stored_status_never_lets_an_order_through():
    room = Classroom()
    room.contest = room.contest.at(room.moment)
    assert room.contest.status is ContestStatus.OPEN
    room.moment = Moment(0, 9)  # nobody has stored FINISHED yet
    assert room.rejection(room.submit())[0] is RejectReason.CONTEST_NOT_OPEN


def test_rules_never_change_under_an_open_order_so_reservations_stay_exact():
    room = Classroom(commission=Commission(300))
    room.submit(order_type="LIMIT", limit=9_000)
    assert room.engine.portfolio("PC").reserved_cash_cents == 10 * 9_000 + 300
    with pytest.raises(BadRequest):
        room.contest.revised(room.moment, rules=replace(room.contest.rules, commission=Commission(0)))
