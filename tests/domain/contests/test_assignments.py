"""Assignments checked from what a portfolio did: each task kind, due times, progress sentences, and the same
answer whether the tracker followed along or read the whole history at once."""

from decimal import Decimal
from fractions import Fraction

import hypothesis.strategies as st
import pytest
from hypothesis import given

from domain.contests import (
    Assignment,
    AssignmentTracker,
    HoldSectors,
    KeepWeightUnder,
    PlaceOrder,
    SetStopLoss,
    TaskKind,
    TaskState,
    TradeRationales,
    evaluate_assignments,
    task_from_params,
    task_params,
)
from domain.errors import BadRequest
from domain.trading import (
    EventKind,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    PortfolioLedger,
    Position,
    Side,
    TimeInForce,
    TradeEvent,
)

DUE = 100_000
SECTORS = {"ACME": "Tech", "SOFT": "Tech", "OIL": "Energy", "BANK": "Finance", "PILL": "Health"}
HOUR = 3_600_000


def order(order_id: str, order_type: str = "LIMIT", *, side: str = "BUY", symbol: str = "ACME", at: int = 10,
          note: str | None = None) -> Order:
    return Order(order_id, None, "P1", "u1", symbol, Side(side), OrderType(order_type), 10, 1_000, 900,
                 TimeInForce.GTC, OrderStatus.NEW, at, at, 0, note=note)


def submitted(o: Order) -> TradeEvent:
    return TradeEvent(EventKind.ORDER_SUBMITTED, o)


def filled(o: Order, at: int) -> TradeEvent:
    fill = Fill(f"E-{o.order_id}-{at}", o.order_id, "P1", "u1", o.symbol, o.side, 5, 1_000, 0, at, at)
    return TradeEvent(EventKind.EXECUTION_REPORT, o, fill)


def ledger(*held: tuple[str, int], stop: dict[str, int] | None = None) -> PortfolioLedger:
    book = PortfolioLedger("P1", "u1", "Main", 1_000_000, 1_000_000)
    for symbol, quantity in held:
        book.positions[symbol] = Position(symbol, quantity, stop_loss_cents=(stop or {}).get(symbol))
    return book


def tracker(*tasks, due: int = DUE) -> AssignmentTracker:
    return AssignmentTracker([Assignment(f"A{n}", task, due) for n, task in enumerate(tasks, start=1)], SECTORS)


def only(t: AssignmentTracker, now_ms: int = 0):
    [progress] = t.progress(now_ms)
    return progress


# ----- tasks as data -----------------------------------------------------------------------------------------


def test_a_task_is_its_kind_and_parameters_and_round_trips_through_plain_values():
    for task in (PlaceOrder(), PlaceOrder("STOP_LIMIT", 2), HoldSectors(4), KeepWeightUnder(Decimal("0.25"), HOUR),
                 SetStopLoss(2), TradeRationales(5, 20)):
        assert task_from_params(task.kind, task_params(task)) == task
    assert task_params(KeepWeightUnder(0.3)) == {"max_weight": "0.3", "hold_ms": 86_400_000}
    assert task_from_params("PLACE_ORDER", {}) == PlaceOrder(OrderType.LIMIT, 1)


@pytest.mark.parametrize("kind, params, problem", [
    ("HOMEWORK", {}, "unknown task kind"),
    ("PLACE_ORDER", {"order_type": "ICEBERG"}, "order_type"),
    ("PLACE_ORDER", {"count": 0}, "count"),
    ("PLACE_ORDER", {"colour": "red"}, "no parameter 'colour'"),
    ("HOLD_SECTORS", {"sectors": True}, "sectors"),
    ("KEEP_WEIGHT_UNDER", {"max_weight": 0}, "max_weight"),
    ("KEEP_WEIGHT_UNDER", {"hold_ms": -5}, "hold_ms"),
    ("TRADE_RATIONALES", {"min_chars": 501}, "min_chars"),
])
def test_a_task_a_teacher_got_wrong_is_a_bad_request(kind, params, problem):
    with pytest.raises(BadRequest, match=problem):
        task_from_params(kind, params)


# ----- each kind ---------------------------------------------------------------------------------------------


def test_placing_a_limit_order_counts_accepted_limit_orders_once_each():
    t = tracker(PlaceOrder(OrderType.LIMIT, 2))
    first = order("O1", at=5)
    t.observe_event(submitted(order("O0", "MARKET", at=4)))
    t.observe_event(submitted(first))
    t.observe_event(submitted(first))  # seen twice, counted once
    t.observe_event(TradeEvent(EventKind.ORDER_REJECTED, order("O9", at=6)))
    assert (only(t).state, only(t).text) == (TaskState.PENDING, "1 of 2 LIMIT orders placed")
    t.observe_event(submitted(order("O2", at=7)))
    progress = only(t)
    assert (progress.state, progress.done_at_ms, progress.current, progress.target) == (TaskState.DONE, 7, 2, 2)


def test_a_task_not_done_by_its_due_time_is_missed_and_later_work_does_not_count():
    t = tracker(PlaceOrder())
    assert only(t, DUE).state is TaskState.PENDING
    assert only(t, DUE + 1).state is TaskState.MISSED
    t.observe_event(submitted(order("O1", at=DUE + 1)))
    assert (only(t, DUE + 5).state, only(t, DUE + 5).text) == (TaskState.MISSED, "0 of 1 LIMIT order placed")
    t.observe_event(submitted(order("O2", at=DUE)))  # the due time itself is in time
    assert only(t, DUE + 5).state is TaskState.DONE


def test_holding_three_sectors_needs_them_at_the_same_time():
    t = tracker(HoldSectors(3))
    t.observe_ledger(1, ledger(("ACME", 5), ("SOFT", 5)))
    t.observe_ledger(2, ledger(("ACME", 5), ("OIL", 5)))
    t.observe_ledger(3, ledger(("BANK", 5), ("ACME", 0)))
    assert only(t).text == "positions in 2 of 3 sectors at once"
    t.observe_ledger(4, ledger(("BANK", 5), ("OIL", 2), ("PILL", -3)))  # a short is a position too
    assert (only(t).state, only(t).done_at_ms) == (TaskState.DONE, 4)
    t.observe_ledger(5, ledger())
    assert only(t).state is TaskState.DONE  # done stays done


def test_keeping_the_largest_weight_under_30_percent_for_a_day_needs_an_unbroken_invested_run():
    t = tracker(KeepWeightUnder(Decimal("0.30"), 24 * HOUR), due=10 * 24 * HOUR)
    t.observe_weight(0, 0.25)
    t.observe_weight(20 * HOUR, Decimal("0.2999"))
    t.observe_weight(21 * HOUR, 0.30)  # at the limit is not under it
    t.observe_weight(22 * HOUR, 0.1)
    t.observe_weight(40 * HOUR, 0.0)   # all cash breaks the run
    t.observe_weight(41 * HOUR, 0.2)
    t.observe_weight(30 * HOUR, 0.2)   # an older sample is ignored
    t.observe_weight(60 * HOUR, None)
    assert only(t).text == "largest position under 30.00% for 20h of 1d"
    assert (only(t).current, only(t).target) == (20 * HOUR, 24 * HOUR)
    for hour in (70, 80, 94):
        t.observe_weight(hour * HOUR, 0.29)
    assert (only(t).state, only(t).done_at_ms, only(t).current) == (TaskState.DONE, 94 * HOUR, 24 * HOUR)


def test_a_stop_loss_counts_as_a_level_on_a_long_position_or_a_stop_sell_per_symbol():
    t = tracker(SetStopLoss(3))
    t.observe_ledger(1, ledger(("ACME", 5), ("OIL", 0), stop={"ACME": 900, "OIL": 800}))
    t.observe_event(submitted(order("O1", "STOP", side="SELL", symbol="ACME", at=2)))
    t.observe_event(submitted(order("O2", "STOP", side="BUY", symbol="BANK", at=3)))
    t.observe_event(submitted(order("O3", "LIMIT", side="SELL", symbol="BANK", at=4)))
    assert only(t).text == "1 of 3 positions with a stop loss"
    t.observe_event(submitted(order("O4", "STOP_LIMIT", side="SELL", symbol="BANK", at=5)))
    t.observe_ledger(6, ledger(("PILL", 5), stop={"PILL": 100}))
    assert (only(t).state, only(t).done_at_ms) == (TaskState.DONE, 6)


def test_a_rationale_counts_for_an_order_that_filled_with_a_long_enough_note():
    t = tracker(TradeRationales(3, min_chars=10))
    noted = order("O1", note="  bought the dip after earnings  ")
    t.observe_event(submitted(noted))
    assert only(t).text == "0 of 3 trades with a rationale"  # placed, not yet traded
    t.observe_event(filled(noted, 20))
    t.observe_event(filled(noted, 21))  # a second fill of one order is one trade
    t.observe_event(filled(order("O2", note="  short  "), 22))
    t.observe_event(filled(order("O3"), 23))
    assert only(t).text == "1 of 3 trades with a rationale"
    t.observe_event(filled(order("O4", "MARKET", note="sector rotation"), 24))
    t.observe_event(filled(order("O5", side="SELL", note="taking profit now"), 25))
    progress = only(t)
    assert (progress.state, progress.done_at_ms, progress.text) == (TaskState.DONE, 25,
                                                                    "3 of 3 trades with a rationale")


def test_progress_lists_every_assignment_in_order():
    t = tracker(PlaceOrder(), HoldSectors(1), TradeRationales(1))
    t.observe_event(submitted(order("O1")))
    assert [(p.assignment_id, p.kind, p.state) for p in t.progress(0)] == [
        ("A1", TaskKind.PLACE_ORDER, TaskState.DONE), ("A2", TaskKind.HOLD_SECTORS, TaskState.PENDING),
        ("A3", TaskKind.TRADE_RATIONALES, TaskState.PENDING)]


# ----- incremental and whole-history agree -------------------------------------------------------------------

EVIDENCE = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(0, 60), st.sampled_from(list(OrderType)), st.sampled_from(list(Side)),
                  st.sampled_from(sorted(SECTORS)), st.sampled_from([None, "", "why", "because the chart said so"])),
        st.tuples(st.just("fill"), st.integers(0, 60), st.integers(0, 30)),
        st.tuples(st.just("ledger"), st.integers(0, 60),
                  st.dictionaries(st.sampled_from(sorted(SECTORS)), st.tuples(st.integers(-3, 3), st.booleans()))),
        st.tuples(st.just("weight"), st.integers(0, 60),
                  st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.2999, 0.3, 0.5]))),
    ),
    max_size=40,
)
TASKS = [PlaceOrder(OrderType.LIMIT, 2), HoldSectors(2), KeepWeightUnder(Decimal("0.3"), 12), SetStopLoss(2),
         TradeRationales(2, 5)]


def _timeline(steps):
    """The steps as evidence, in time order: (time, kind, item)."""
    orders: list[Order] = []
    out = []
    for step in sorted(steps, key=lambda s: s[1]):
        kind, time = step[0], step[1]
        if kind == "order":
            _, _, order_type, side, symbol, note = step
            made = order(f"O{len(orders)}", order_type, side=side, symbol=symbol, at=time, note=note)
            orders.append(made)
            out.append((time, "event", submitted(made)))
        elif kind == "fill" and orders:
            out.append((time, "event", filled(orders[step[2] % len(orders)], time)))
        elif kind == "ledger":
            held = [(symbol, quantity) for symbol, (quantity, _) in step[2].items()]
            stops = {symbol: 500 for symbol, (_, stop) in step[2].items() if stop}
            out.append((time, "ledger", ledger(*held, stop=stops)))
        elif kind == "weight":
            out.append((time, "weight", step[2]))
    return out


@given(steps=EVIDENCE, due=st.integers(0, 70), now=st.integers(0, 80))
def test_following_along_and_reading_the_whole_history_give_the_same_progress(steps, due, now):
    timeline = _timeline(steps)
    assignments = [Assignment(f"A{n}", task, due) for n, task in enumerate(TASKS)]
    live = AssignmentTracker(assignments, SECTORS)
    for time, kind, item in timeline:
        if kind == "event":
            live.observe_event(item)
        elif kind == "ledger":
            live.observe_ledger(time, item)
        else:
            live.observe_weight(time, item)
    whole = evaluate_assignments(
        assignments, sectors=SECTORS, now_ms=now,
        events=reversed([item for _, kind, item in timeline if kind == "event"]),  # any order in: sorted by time
        ledgers=[(time, item) for time, kind, item in timeline if kind == "ledger"],
        weights=[(time, item) for time, kind, item in timeline if kind == "weight"],
    )
    assert live.progress(now) == whole


@given(steps=EVIDENCE, due=st.integers(0, 70))
def test_each_count_is_what_the_history_up_to_the_due_time_holds(steps, due):
    timeline = [(time, kind, item) for time, kind, item in _timeline(steps) if time <= due]
    progress = {p.kind: p for p in evaluate_assignments(
        [Assignment(f"A{n}", task, due) for n, task in enumerate(TASKS)], sectors=SECTORS, now_ms=0,
        events=[item for _, kind, item in timeline if kind == "event"],
        ledgers=[(time, item) for time, kind, item in timeline if kind == "ledger"],
        weights=[(time, item) for time, kind, item in timeline if kind == "weight"])}
    events = [item for _, kind, item in timeline if kind == "event"]
    limits = {e.order.order_id for e in events if e.kind is EventKind.ORDER_SUBMITTED
              and e.order.order_type is OrderType.LIMIT}
    assert progress[TaskKind.PLACE_ORDER].current == min(2, len(limits))
    rationales = {e.order.order_id for e in events if e.kind is EventKind.EXECUTION_REPORT
                  and len((e.order.note or "").strip()) >= 5}
    assert progress[TaskKind.TRADE_RATIONALES].current == min(2, len(rationales))
    ledgers = [item for _, kind, item in timeline if kind == "ledger"]
    most = max((len({SECTORS[s] for s, p in book.positions.items() if p.quantity}) for book in ledgers), default=0)
    assert progress[TaskKind.HOLD_SECTORS].current == min(2, most)
    assert (progress[TaskKind.HOLD_SECTORS].state is TaskState.DONE) == (most >= 2)
    # the longest unbroken run of invested samples under 30 %, measured first sample to last
    best, start = 0, None
    for time, kind, weight in timeline:
        if kind != "weight":
            continue
        if weight is not None and 0 < Fraction(repr(weight)) < Fraction(3, 10):
            start = time if start is None else start
            best = max(best, time - start)
        else:
            start = None
    assert progress[TaskKind.KEEP_WEIGHT_UNDER].current == min(12, best)
