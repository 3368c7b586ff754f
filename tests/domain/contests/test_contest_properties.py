"""Random classroom sessions under a contest's random rules, through its start and past its end: no short position
when short selling is off, commissions to the cent, the cash identity, nothing filled in a symbol the contest does
not allow, and no order accepted (nor anything filled) outside the contest's time."""

from collections import defaultdict
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.contests import (
    Contest,
    ContestChecks,
    ContestRules,
    ContestStatus,
    DaySchedule,
    Moment,
    Roster,
)
from domain.errors import BadRequest, Forbidden, NotFound
from domain.ledger import identity_gap
from domain.market import Quote
from domain.orders import OrderEngine, TradeResult
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

SECTORS = {"AAA": "Tech", "BBB": "Energy", "CCC": "Finance"}
SYMBOLS = tuple(SECTORS)
HOUSE = Commission(777, Decimal("0.9"))  # what a portfolio outside the contest pays
SOLO, TEAM, OUTSIDE = "PS", "PT", "PO"
OWNERS = {SOLO: "ada", TEAM: "cap", OUTSIDE: "bob"}
PEOPLE = ("ada", "cap", "mia", "bob", "eve")
NOTES = [None, "", "  ", "because the trend is up", "because the trend is up", "earnings", "x" * 501]
MEMBERS = {SOLO: ("ada",), TEAM: ("cap", "mia"), OUTSIDE: ("bob",)}


def _half_even(value: Fraction) -> int:
    """Round half to even, written out here so the test does not check the engine with its own arithmetic."""
    whole = value.numerator // value.denominator
    rest = value - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2):
        whole += 1
    return whole


class ContestSession(RuleBasedStateMachine):
    """A student alone (PS) and a team of two (PT, the captain's) in one contest, and a student outside it (PO),
    trading three symbols while the simulated days run through the contest's schedule."""

    @initialize(
        cash=st.sampled_from([20_000, 500_000, 5_000_000]),
        per_order=st.sampled_from([0, 99, 1_000]),
        per_share=st.sampled_from(["0", "0.35", "0.5", "1.37"]),
        short_selling=st.booleans(),
        engine_short=st.booleans(),
        allowed=st.sampled_from([None, ("symbols", {"AAA", "BBB"}), ("sectors", {"Energy", "Finance"}),
                                 ("both", {"AAA"})]),
        note_required=st.booleans(),
        max_weight=st.sampled_from([None, None, "0.6"]),
        days=st.tuples(st.integers(0, 2), st.integers(0, 3)),
        prices=st.tuples(st.integers(50, 20_000), st.integers(2, 400), st.integers(100, 5_000)),
    )
    def start(self, cash, per_order, per_share, short_selling, engine_short, allowed, note_required, max_weight,
              days, prices):
        symbols = sectors = None
        if allowed is not None:
            how, names = allowed
            symbols = names if how in ("symbols", "both") else None
            sectors = {"Finance"} if how == "both" else names if how == "sectors" else None
        self.rules = ContestRules(
            starting_cash_cents=cash, commission=Commission(per_order, Decimal(per_share)),
            short_selling=short_selling, allowed_symbols=symbols, allowed_sectors=sectors,
            max_position_weight=max_weight, house_risk_limits=False, note_required=note_required,
            max_team_size=None,
        )
        first = days[0] + 1  # day 0 is always before the start
        self.contest = Contest("C1", "Class 9B", "t1", "QX7-42K", self.rules, DaySchedule(first, first + days[1]))
        self.roster = Roster("C1")
        admission = self.roster.admit(self.contest, user_id="ada", nickname="Ada", password=None,
                                      verify_password=lambda p, h: False, moment=Moment(0, 0))
        self.roster.enrol(admission, portfolio_id=SOLO, joined_ms=0)
        self._a_team_under_the_same_rules()
        self.contest_portfolios = {SOLO, TEAM}
        self.team_members = {"cap", "mia"}

        self.day = 0
        self.now = 1_000
        self.version = 0
        self.quotes: dict[str, Quote] = {}
        for symbol, price in zip(SYMBOLS, prices, strict=True):
            self._publish(symbol, price, 1, 50, 50)
        self.checks = ContestChecks(self._contest_for, self._moment, lambda: self.quotes)
        self.engine = OrderEngine(
            order_ids=IdSequence("O"), execution_ids=IdSequence("E"), commission=HOUSE, allow_short=engine_short,
            max_quantity=2_000, gate_checks=(self.checks.gate,), extra_checks=(self.checks.rules,),
            terms_for=self.checks.terms_for,
        )
        self.engine_short = engine_short
        for pid, owner in OWNERS.items():
            start = cash if pid in self.contest_portfolios else 5_000_000
            self.engine.add_portfolio(PortfolioLedger(pid, owner, pid, start, start))
        self.fills = defaultdict(list)          # portfolio id -> fills, in execution order
        self.first_fill_seen: set[str] = set()  # order ids with a fill
        self.placers: dict[str, str] = {}       # order id -> who placed it
        self.finished_seen = False

    def _a_team_under_the_same_rules(self):
        """A contest is played alone or in teams, so the team plays in a twin contest: the same rules and schedule,
        with teams of two."""
        team_rules = replace(self.rules, max_team_size=2)
        self.team_contest = Contest("C2", "Class 9B teams", "t1", "QX7-42M", team_rules, self.contest.schedule)
        self.team_roster = Roster("C2")
        for user in ("cap", "mia"):
            self.team_roster.enrol(self.team_roster.admit(self.team_contest, user_id=user, nickname=user.title(),
                                                          password=None, verify_password=lambda p, h: False,
                                                          moment=Moment(0, 0)),
                                   portfolio_id=None, joined_ms=0)
        plan = self.team_roster.plan_team(self.team_contest, name="Bulls", members=["cap", "mia"],
                                          moment=Moment(0, 0))
        self.team_roster.form_team(plan, team_id="T1", portfolio_id=TEAM)

    # ----- the world -------------------------------------------------------------------------------------------

    def _contest_for(self, portfolio_id: str) -> Contest | None:
        if portfolio_id == SOLO:
            return self.contest
        if portfolio_id == TEAM:
            return self.team_contest
        return None

    def _moment(self) -> Moment:
        return Moment(self.now, self.day)

    def _publish(self, symbol: str, price: int, spread: int, bid_size: int, ask_size: int) -> None:
        self.version += 1
        self.quotes[symbol] = Quote(symbol, symbol, SECTORS[symbol], price, max(1, price - spread), price + spread,
                                    bid_size, ask_size, price, price, price, price, 0, self.now, self.now,
                                    self.version)

    def _open(self) -> bool:
        return self.contest.status_at(self._moment()) is ContestStatus.OPEN

    def _roster_for(self, portfolio_id: str) -> Roster:
        return self.team_roster if portfolio_id == TEAM else self.roster

    def _record(self, result: TradeResult) -> None:
        protective = {trigger.order_id for trigger in result.triggers}
        for item in result:
            order = item.order
            event(str(item.kind) if order.reject_reason is None else f"rejected {order.reject_reason}")
            if order.portfolio_id in self.contest_portfolios and item.kind in (EventKind.ORDER_SUBMITTED,
                                                                                EventKind.EXECUTION_REPORT):
                assert self._open(), f"{item.kind} for {order.order_id} outside the contest's time"
            if (item.kind is EventKind.ORDER_SUBMITTED and order.portfolio_id in self.contest_portfolios
                    and self.rules.note_required and order.order_id not in protective):
                assert (order.note or "").strip()  # the system's stop-loss sells need no note
            if item.kind is EventKind.EXECUTION_REPORT:
                fill = item.fill
                self.fills[fill.portfolio_id].append((fill, fill.order_id not in self.first_fill_seen))
                self.first_fill_seen.add(fill.order_id)
                if order.order_id in self.placers:
                    assert order.placer == self.placers[order.order_id]

    def _ended(self) -> None:
        """What the services do when they see the contest finish: stop its portfolios' trading."""
        if self.finished_seen:
            return
        self.finished_seen = True
        event("the contest finished")
        self._record(self.engine.stop_trading(sorted(self.contest_portfolios), now_ms=self.now,
                                              reason="the contest ended"))

    # ----- rules -------------------------------------------------------------------------------------------

    @rule(data=st.data())
    def submit_as_anyone(self, data):
        self._submit(data, anyone=True)

    @rule(data=st.data())
    def submit_as_a_member(self, data):
        self._submit(data, anyone=False)

    @rule(data=st.data())
    def submit_another_as_a_member(self, data):
        self._submit(data, anyone=False)

    def _submit(self, data, *, anyone: bool):
        portfolio_id = data.draw(st.sampled_from([SOLO, TEAM, OUTSIDE]))
        person = data.draw(st.sampled_from(PEOPLE if anyone else MEMBERS[portfolio_id]))
        symbol = data.draw(st.sampled_from(SYMBOLS))
        side = data.draw(st.sampled_from(list(Side)))
        order_type = data.draw(st.sampled_from(list(OrderType)))
        price = self.quotes[symbol].price
        step = max(1, price // 50)
        limit = price + data.draw(st.integers(-8, 8)) * step if order_type in (OrderType.LIMIT,
                                                                              OrderType.STOP_LIMIT) else None
        stop = price + data.draw(st.integers(-8, 8)) * step if order_type in (OrderType.STOP,
                                                                             OrderType.STOP_LIMIT) else None
        request = OrderRequest(portfolio_id, symbol, side, order_type, data.draw(st.integers(1, 60)),
                               max(1, limit) if limit else None, max(1, stop) if stop else None,
                               data.draw(st.sampled_from(list(TimeInForce))), note=data.draw(st.sampled_from(NOTES)))
        self.now += 1
        if portfolio_id == OUTSIDE:
            owner, placed_by = OWNERS[OUTSIDE], None
        else:
            try:
                trader = self._roster_for(portfolio_id).trader(portfolio_id, person)
            except (Forbidden, NotFound):
                assert person not in (self.team_members if portfolio_id == TEAM else {"ada"})
                event("forbidden: not a member")
                return
            owner, placed_by = trader.owner_id, trader.placed_by
        was_open = self._open()
        result = self.engine.submit(owner, request, self.quotes[symbol], now_ms=self.now, market_ms=self.now,
                                    day_index=self.day, market_state="OPEN", placed_by=placed_by)
        order = result[0].order
        self.placers[order.order_id] = placed_by or owner
        if portfolio_id in self.contest_portfolios:
            if not was_open:
                assert order.reject_reason is RejectReason.CONTEST_NOT_OPEN
            elif not self.rules.allows(symbol, SECTORS[symbol]):
                assert order.reject_reason is not None  # accepted, it would wait and fill later
        self._record(result)

    @rule(moves=st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(-10, 10), st.integers(0, 10),
                                   st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=3))
    def tick(self, moves):
        self.now += 1
        for symbol, percent, spread, bid_size, ask_size in moves:
            price = self.quotes[symbol].price
            price = max(2, price + price * percent // 100 + (1 if percent > 0 else -1 if percent < 0 else 0))
            self._publish(symbol, price, spread, bid_size, ask_size)
        self._record(self.engine.on_quotes(self.quotes, now_ms=self.now, market_ms=self.now, day_index=self.day))

    @rule()
    def next_day(self):
        self.day += 1
        self.now += 1
        self._record(self.engine.expire_day(self.day, now_ms=self.now))
        before = self.contest.status
        self.contest = self.contest.at(self._moment())
        self.team_contest = self.team_contest.at(self._moment())
        if self.contest.status is ContestStatus.FINISHED and before is not ContestStatus.FINISHED:
            self._ended()

    @rule()
    def teacher_opens_early(self):
        try:
            self.contest = self.contest.open(self._moment())
            self.team_contest = self.team_contest.open(self._moment())
        except BadRequest:
            assert self.contest.status_at(self._moment()) is ContestStatus.FINISHED

    @precondition(lambda self: self.day >= 1)
    @rule()
    def teacher_finishes_early(self):
        self.contest = self.contest.finish(self._moment())
        self.team_contest = self.team_contest.finish(self._moment())
        self._ended()

    @precondition(lambda self: self.engine.open_orders())
    @rule(data=st.data())
    def cancel_or_modify(self, data):
        order = data.draw(st.sampled_from(self.engine.open_orders()))
        self.now += 1
        if data.draw(st.booleans()):
            self._record(self.engine.cancel(order.user_id, order.order_id, now_ms=self.now))
            return
        try:
            result = self.engine.modify(order.user_id, order.order_id, quantity=order.quantity + 20,
                                        quote=self.quotes[order.symbol], now_ms=self.now, market_ms=self.now,
                                        market_state="OPEN")
        except BadRequest as refusal:
            event(f"modify refused: {refusal.message[:30]}")
            return
        self._record(result)

    @rule(data=st.data())
    def set_a_stop_loss(self, data):
        """Even after the end: a level reached then must not trade."""
        held = [(ledger, p) for ledger in self.engine.portfolios() for p in ledger.positions.values()
                if p.quantity > 0]
        if not held:
            return
        ledger, position = data.draw(st.sampled_from(held))
        price = self.quotes[position.symbol].price
        self.engine.set_position_levels(ledger.owner_id, ledger.portfolio_id, position.symbol,
                                        stop_loss_cents=data.draw(st.integers(max(1, price * 8 // 10), price)))

    # ----- invariants --------------------------------------------------------------------------------------

    @invariant()
    def no_short_position_when_short_selling_is_off(self):
        for ledger in self.engine.portfolios():
            allowed = self.rules.short_selling if ledger.portfolio_id in self.contest_portfolios else self.engine_short
            if not allowed:
                assert all(p.quantity >= 0 for p in ledger.positions.values()), ledger

    @invariant()
    def commissions_are_charged_exactly(self):
        for pid, fills in self.fills.items():
            schedule = self.rules.commission if pid in self.contest_portfolios else HOUSE
            for fill, first in fills:
                expected = _half_even(Fraction(schedule.per_share_cents) * fill.quantity)
                expected += schedule.per_order_cents if first else 0
                if fill.side is Side.SELL:
                    expected = min(expected, fill.quantity * fill.price_cents)  # never more than the proceeds
                assert fill.commission_cents == expected, (fill, schedule)

    @invariant()
    def the_cash_identity_holds_to_the_cent(self):
        for ledger in self.engine.portfolios():
            fills = [fill for fill, _ in self.fills[ledger.portfolio_id]]
            bought = sum(f.quantity * f.price_cents for f in fills if f.side is Side.BUY)
            sold = sum(f.quantity * f.price_cents for f in fills if f.side is Side.SELL)
            commissions = sum(f.commission_cents for f in fills)
            assert ledger.cash_cents == ledger.starting_cash_cents - bought + sold - commissions
            assert ledger.commissions_cents == commissions
            assert identity_gap(ledger) == 0
            if ledger.portfolio_id in self.contest_portfolios:
                assert ledger.starting_cash_cents == self.rules.starting_cash_cents

    @invariant()
    def nothing_fills_in_a_symbol_the_contest_does_not_allow(self):
        for pid in self.contest_portfolios:
            for fill, _ in self.fills[pid]:
                assert self.rules.allows(fill.symbol, SECTORS[fill.symbol]), fill

    @invariant()
    def after_the_end_no_contest_order_is_open(self):
        if self.finished_seen:
            assert not [o for o in self.engine.open_orders() if o.portfolio_id in self.contest_portfolios]


ContestSession.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_contest_session = ContestSession.TestCase
