"""Assignments a teacher sets in a contest, checked by the server from what the portfolio did, never self-reported.

A task is data (its kind and parameters); an Assignment is a task with a due time. An AssignmentTracker follows
one portfolio: it is fed the order events, ledger snapshots and largest-position-weight samples in time order, and
keeps each task's progress as it goes, so checking again after every fill costs little. All times, the due time
included, are wall-clock epoch ms (Order.created_at_ms, Fill.time_ms, when a ledger or weight was seen); what
happens after the due time does not count, and a task once done stays done.
"""

import enum
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from typing import ClassVar

from domain.errors import BadRequest
from domain.risk.limits import percent_text
from domain.trading import MAX_NOTE_LENGTH, EventKind, OrderType, PortfolioLedger, Side, TradeEvent
from domain.valuation import UNKNOWN_SECTOR

from .rules import parse_weight

__all__ = [
    "TaskKind",
    "PlaceOrder",
    "HoldSectors",
    "KeepWeightUnder",
    "SetStopLoss",
    "TradeRationales",
    "Task",
    "task_from_params",
    "task_params",
    "Assignment",
    "TaskState",
    "AssignmentProgress",
    "AssignmentTracker",
    "evaluate_assignments",
]

_MAX_COUNT = 1_000
_MAX_HOLD_MS = 366 * 86_400_000


class TaskKind(enum.StrEnum):
    PLACE_ORDER = "PLACE_ORDER"
    HOLD_SECTORS = "HOLD_SECTORS"
    KEEP_WEIGHT_UNDER = "KEEP_WEIGHT_UNDER"
    SET_STOP_LOSS = "SET_STOP_LOSS"
    TRADE_RATIONALES = "TRADE_RATIONALES"


def _count(value: object, what: str, low: int = 1, high: int = _MAX_COUNT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise BadRequest(f"{what} must be a whole number from {low} to {high}")
    return value


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """Place `count` orders of `order_type` that are accepted (a rejected order does not count)."""

    kind: ClassVar[TaskKind] = TaskKind.PLACE_ORDER
    order_type: OrderType = OrderType.LIMIT
    count: int = 1

    def __post_init__(self):
        try:
            object.__setattr__(self, "order_type", OrderType(self.order_type))
        except ValueError:
            raise BadRequest(f"order_type must be one of {', '.join(OrderType)}") from None
        _count(self.count, "count")


@dataclass(frozen=True, slots=True)
class HoldSectors:
    """Hold positions in at least `sectors` different sectors at the same time."""

    kind: ClassVar[TaskKind] = TaskKind.HOLD_SECTORS
    sectors: int = 3

    def __post_init__(self):
        _count(self.sectors, "sectors", 1, 100)


@dataclass(frozen=True, slots=True)
class KeepWeightUnder:
    """Keep the largest position's weight under `max_weight` (a fraction of value) for `hold_ms` without a break,
    while holding something: a sample with no position (weight 0 or None) breaks the run, so sitting in cash does
    not count. The run is measured from its first sample to its latest one."""

    kind: ClassVar[TaskKind] = TaskKind.KEEP_WEIGHT_UNDER
    max_weight: Decimal = Decimal("0.30")
    hold_ms: int = 86_400_000

    def __post_init__(self):
        object.__setattr__(self, "max_weight", parse_weight(self.max_weight, "max_weight"))
        _count(self.hold_ms, "hold_ms", 1, _MAX_HOLD_MS)


@dataclass(frozen=True, slots=True)
class SetStopLoss:
    """Protect `count` different symbols with a stop loss: a stop-loss level on a long position, or an accepted
    STOP or STOP_LIMIT sell."""

    kind: ClassVar[TaskKind] = TaskKind.SET_STOP_LOSS
    count: int = 1

    def __post_init__(self):
        _count(self.count, "count")


@dataclass(frozen=True, slots=True)
class TradeRationales:
    """Write a rationale for `trades` trades: orders that filled (at least partly) with a note of at least
    `min_chars` characters besides surrounding blanks."""

    kind: ClassVar[TaskKind] = TaskKind.TRADE_RATIONALES
    trades: int = 5
    min_chars: int = 1

    def __post_init__(self):
        _count(self.trades, "trades")
        _count(self.min_chars, "min_chars", 1, MAX_NOTE_LENGTH)


Task = PlaceOrder | HoldSectors | KeepWeightUnder | SetStopLoss | TradeRationales
_TASKS: dict[TaskKind, type] = {cls.kind: cls for cls in (PlaceOrder, HoldSectors, KeepWeightUnder, SetStopLoss,
                                                          TradeRationales)}


def task_from_params(kind: object, params: Mapping[str, object]) -> Task:
    """A task from its kind and parameters as stored or sent (snake_case names; missing ones take the defaults).
    BadRequest for an unknown kind, an unknown parameter or a bad value."""
    try:
        cls = _TASKS[TaskKind(kind)]
    except ValueError:
        raise BadRequest(f"unknown task kind {kind!r}: one of {', '.join(TaskKind)}") from None
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise BadRequest(f"a {cls.kind} task has no parameter {unknown[0]!r}: it takes {', '.join(sorted(names))}")
    return cls(**params)


def task_params(task: Task) -> dict[str, object]:
    """A task's parameters as plain values (an order type as its name, a weight as decimal text), for storage."""
    out = {}
    for f in fields(task):
        value = getattr(task, f.name)
        out[f.name] = str(value) if isinstance(value, OrderType | Decimal) else value
    return out


@dataclass(frozen=True, slots=True)
class Assignment:
    """A task a contest's portfolios must do by `due_ms` (wall-clock epoch ms)."""

    assignment_id: str
    task: Task
    due_ms: int

    def __post_init__(self):
        if not isinstance(self.task, PlaceOrder | HoldSectors | KeepWeightUnder | SetStopLoss | TradeRationales):
            raise BadRequest("an assignment needs a task")
        if not isinstance(self.due_ms, int) or isinstance(self.due_ms, bool) or self.due_ms < 0:
            raise BadRequest("an assignment needs a due time")


class TaskState(enum.StrEnum):
    """PENDING (not done, still time), DONE (done by the due time), MISSED (the due time passed first)."""

    PENDING = "PENDING"
    DONE = "DONE"
    MISSED = "MISSED"


@dataclass(frozen=True, slots=True)
class AssignmentProgress:
    """How far one portfolio is with one assignment: `current` of `target` (counts, or ms for KEEP_WEIGHT_UNDER,
    capped at the target), when it was done, and a sentence for the student ("3 of 5 trades with a rationale")."""

    assignment_id: str
    kind: TaskKind
    state: TaskState
    done_at_ms: int | None
    current: int
    target: int
    text: str


def _duration_text(ms: int) -> str:
    """A duration for a sentence, in its two largest units: "1d 4h", "3h 20m", "45m", "30s"."""
    seconds = ms // 1000
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return " ".join(parts[:2]) if parts else "0s"


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


class _Progress:
    """One assignment's running state. Each kind overrides the observations that move it (the others leave it as
    it is) and gives `figures()`: (current, target, the sentence for the student)."""

    def __init__(self, assignment: Assignment):
        self.assignment = assignment
        self.done_at: int | None = None

    def counts(self, time_ms: int) -> bool:
        return time_ms <= self.assignment.due_ms

    def on_event(self, time_ms: int, event: TradeEvent) -> None:
        return

    def on_ledger(self, time_ms: int, ledger: PortfolioLedger, sectors: Mapping[str, str]) -> None:
        return

    def on_weight(self, time_ms: int, weight: Fraction | None) -> None:
        return


class _Distinct(_Progress):
    """Counts distinct things (orders, symbols) until the target is reached."""

    target: int

    def __init__(self, assignment: Assignment, target: int):
        super().__init__(assignment)
        self.target = target
        self.seen: set[str] = set()

    def add(self, key: str, time_ms: int) -> None:
        if key in self.seen or self.done_at is not None:
            return
        self.seen.add(key)
        if len(self.seen) >= self.target:
            self.done_at = time_ms


class _PlaceOrder(_Distinct):
    def on_event(self, time_ms, event):
        task = self.assignment.task
        if event.kind is EventKind.ORDER_SUBMITTED and event.order.order_type is task.order_type:
            self.add(event.order.order_id, time_ms)

    def figures(self):
        n, task = min(len(self.seen), self.target), self.assignment.task
        return n, self.target, f"{n} of {self.target} {task.order_type} {_plural(self.target, 'order')} placed"


class _SetStopLoss(_Distinct):
    def on_event(self, time_ms, event):
        order = event.order
        if (event.kind is EventKind.ORDER_SUBMITTED and order.side is Side.SELL
                and order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)):
            self.add(order.symbol, time_ms)

    def on_ledger(self, time_ms, ledger, sectors):
        for held in ledger.positions.values():
            if held.stop_loss_cents is not None and held.quantity > 0:
                self.add(held.symbol, time_ms)

    def figures(self):
        n = min(len(self.seen), self.target)
        return n, self.target, f"{n} of {self.target} {_plural(self.target, 'position')} with a stop loss"


class _TradeRationales(_Distinct):
    def on_event(self, time_ms, event):
        note = event.order.note
        if (event.kind is EventKind.EXECUTION_REPORT and note is not None
                and len(note.strip()) >= self.assignment.task.min_chars):
            self.add(event.order.order_id, time_ms)

    def figures(self):
        n = min(len(self.seen), self.target)
        return n, self.target, f"{n} of {self.target} {_plural(self.target, 'trade')} with a rationale"


class _HoldSectors(_Progress):
    def __init__(self, assignment: Assignment):
        super().__init__(assignment)
        self.best = 0

    def on_ledger(self, time_ms, ledger, sectors):
        held = {sectors.get(p.symbol, UNKNOWN_SECTOR) for p in ledger.positions.values() if p.quantity}
        self.best = max(self.best, len(held))
        if self.done_at is None and self.best >= self.assignment.task.sectors:
            self.done_at = time_ms

    def figures(self):
        target = self.assignment.task.sectors
        n = min(self.best, target)
        return n, target, f"positions in {n} of {target} {_plural(target, 'sector')} at once"


class _KeepWeightUnder(_Progress):
    def __init__(self, assignment: Assignment):
        super().__init__(assignment)
        self.limit = Fraction(assignment.task.max_weight)
        self.run_from: int | None = None  # when the current run under the limit began
        self.last: int | None = None
        self.best = 0

    def on_weight(self, time_ms, weight):
        if self.last is not None and time_ms < self.last:
            return  # an older sample: the run is measured on one forward clock
        self.last = time_ms
        if weight is None or not 0 < weight < self.limit:
            self.run_from = None
            return
        if self.run_from is None:
            self.run_from = time_ms
        self.best = max(self.best, time_ms - self.run_from)
        if self.done_at is None and self.best >= self.assignment.task.hold_ms:
            self.done_at = time_ms

    def figures(self):
        task = self.assignment.task
        held = min(self.best, task.hold_ms)
        return held, task.hold_ms, (f"largest position under {percent_text(task.max_weight)} for "
                                    f"{_duration_text(held)} of {_duration_text(task.hold_ms)}")


_PROGRESS = {
    TaskKind.PLACE_ORDER: lambda a: _PlaceOrder(a, a.task.count),
    TaskKind.SET_STOP_LOSS: lambda a: _SetStopLoss(a, a.task.count),
    TaskKind.TRADE_RATIONALES: lambda a: _TradeRationales(a, a.task.trades),
    TaskKind.HOLD_SECTORS: _HoldSectors,
    TaskKind.KEEP_WEIGHT_UNDER: _KeepWeightUnder,
}


def _weight(value: Decimal | Fraction | float | int | None) -> Fraction | None:
    """An exact weight; a float is read through its repr (risk metrics report 4-dp floats: 0.3 is 3/10)."""
    if value is None:
        return None
    return Fraction(repr(value)) if isinstance(value, float) else Fraction(value)


def _event_time(event: TradeEvent) -> int | None:
    """When an event counts: an order's acceptance when it was created, a fill when it executed; others never."""
    if event.kind is EventKind.ORDER_SUBMITTED:
        return event.order.created_at_ms
    if event.kind is EventKind.EXECUTION_REPORT and event.fill is not None:
        return event.fill.time_ms
    return None


class AssignmentTracker:
    """Owns one portfolio's progress on a contest's assignments.

    Feed it, in time order, the portfolio's order events (`observe_event`: every TradeResult's events), its ledger
    after each change (`observe_ledger`: TradeResult.portfolios, and after stop-loss levels are set) and its largest
    position weight whenever risk is measured (`observe_weight`: RiskMetrics.largest_position_weight, None when
    flat). Each call costs O(assignments × positions); evidence later than an assignment's due time is ignored, and
    feeding the same event twice counts it once. `progress(now_ms)` reads where every assignment stands.
    """

    def __init__(self, assignments: Iterable[Assignment], sectors: Mapping[str, str]):
        self.sectors = sectors
        self._progress = [_PROGRESS[a.task.kind](a) for a in assignments]

    def observe_event(self, event: TradeEvent) -> None:
        time_ms = _event_time(event)
        if time_ms is None:
            return
        for progress in self._progress:
            if progress.counts(time_ms):
                progress.on_event(time_ms, event)

    def observe_ledger(self, time_ms: int, ledger: PortfolioLedger) -> None:
        for progress in self._progress:
            if progress.counts(time_ms):
                progress.on_ledger(time_ms, ledger, self.sectors)

    def observe_weight(self, time_ms: int, weight: Decimal | Fraction | float | None) -> None:
        exact = _weight(weight)
        for progress in self._progress:
            if progress.counts(time_ms):
                progress.on_weight(time_ms, exact)

    def progress(self, now_ms: int) -> list[AssignmentProgress]:
        """Every assignment's progress at `now_ms`, in the order the assignments were given."""
        out = []
        for progress in self._progress:
            assignment = progress.assignment
            current, target, text = progress.figures()
            if progress.done_at is not None:
                state = TaskState.DONE
            elif now_ms > assignment.due_ms:
                state = TaskState.MISSED
            else:
                state = TaskState.PENDING
            out.append(AssignmentProgress(assignment.assignment_id, assignment.task.kind, state, progress.done_at,
                                          current, target, text))
        return out


def evaluate_assignments(
    assignments: Iterable[Assignment],
    *,
    sectors: Mapping[str, str],
    now_ms: int,
    events: Iterable[TradeEvent] = (),
    ledgers: Iterable[tuple[int, PortfolioLedger]] = (),
    weights: Iterable[tuple[int, Decimal | Fraction | float | None]] = (),
) -> list[AssignmentProgress]:
    """Every assignment's progress from a portfolio's whole history at once (after a restart, or for a report):
    the three kinds of evidence merged in time order (at one time: events, then ledgers, then weights) into a fresh
    AssignmentTracker, so the answer is the one a tracker fed as things happened gives."""
    tracker = AssignmentTracker(assignments, sectors)
    timed_events = sorted(((t, 0, i, e) for i, e in enumerate(events) if (t := _event_time(e)) is not None),
                          key=lambda item: item[:3])
    timed_ledgers = sorted(((t, 1, i, ledger) for i, (t, ledger) in enumerate(ledgers)), key=lambda item: item[:3])
    timed_weights = sorted(((t, 2, i, w) for i, (t, w) in enumerate(weights)), key=lambda item: item[:3])
    for time_ms, stream, _, item in heapq.merge(timed_events, timed_ledgers, timed_weights,
                                                key=lambda entry: entry[:3]):
        if stream == 0:
            tracker.observe_event(item)
        elif stream == 1:
            tracker.observe_ledger(time_ms, item)
        else:
            tracker.observe_weight(time_ms, item)
    return tracker.progress(now_ms)
