"""A scenario being played: its events placed on the market clock, the news due at each tick, the factor windows
that carry its moves into the simulator, skipping ahead, and its whole state as plain data."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.errors import BadRequest, Conflict
from domain.market import FactorWindow
from domain.universe import SymbolSpec

from .format import SESSION_MINUTES, Move, Scenario, ScenarioEvent, scenario_from_dict

__all__ = ["Sessions", "NewsItem", "TimelineEntry", "Due", "ScenarioRun"]

_NOMINAL_DAY_MS = SESSION_MINUTES * 60_000  # 09:30-16:00, onto which day_length_ms of market time is mapped


@dataclass(frozen=True, slots=True)
class Sessions:
    """The market's trading sessions: one opens at open_ms + k * cycle_ms for every whole k, for day_length_ms.

    From a MarketSimulator: Sessions(sim.day_start_ms, sim.day_length_ms, sim.cycle_ms).
    """

    open_ms: int
    day_length_ms: int
    cycle_ms: int

    def __post_init__(self):
        values = (self.open_ms, self.day_length_ms, self.cycle_ms)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise BadRequest("sessions are given in whole milliseconds")
        if not 1 <= self.day_length_ms <= self.cycle_ms:
            raise BadRequest("a session lasts at least 1 ms and at most its cycle")


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A news item to publish to the contest (NEWS {headline, body, symbols, time}); time_ms is its event's time."""

    headline: str
    body: str
    symbols: tuple[str, ...]
    time_ms: int


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One event in the preview: the event, when it happens and its effects end on the market clock (None until the
    run has started), and whether it has happened."""

    event: ScenarioEvent
    at_ms: int | None
    ends_at_ms: int | None
    happened: bool


@dataclass(frozen=True, slots=True)
class Due:
    """What one call of `ScenarioRun.due` found: the news to publish now, in time order, the events they belong to
    (every event that happened since the last call), the factor windows in force now, and whether the run is over."""

    news: tuple[NewsItem, ...]
    events: tuple[ScenarioEvent, ...]
    active: tuple[FactorWindow, ...]
    finished: bool


class ScenarioRun:
    """Owns one scenario's progress on the market clock: when each event happens, which have happened, the skips.

    A scenario counts **trading time**: day N at HH:MM is (N - 1) sessions plus the share of a session that HH:MM is
    past 09:30 (the session's day_length_ms is mapped onto 09:30-16:00, so a scenario plays the same on a ten-minute
    classroom day), and a duration likewise. So with exchange hours an effect still running at the close goes on at
    the next open, and skipping never puts an event in a closed period. Day 1 is the session the run starts in, or
    the next one when it starts while the market is closed; an event timed before the start happens at the start.

    The run is pure data driven by the caller's market time, which it never lets go backwards. The market service:
    `start(at_ms, sessions)`, then hands `factor_windows()` to `MarketSimulator.set_factor_windows`; on each tick,
    calls `due(now_ms)` and publishes its news; after `skip_to_next_event` (and after `from_dict`) hands
    `factor_windows()` to the simulator again, since skipping moves the events that have not happened yet.
    """

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self._sessions: Sessions | None = None
        self._day_one_ms = 0
        self._offsets: list[int] = []  # per event, in time order: trading ms after day 1's open
        self._happened = 0
        self._clock_ms = 0
        self._started_at_ms: int | None = None

    # ----- the clock ---------------------------------------------------------------------------------------------

    def _trading_ms(self, minutes: int) -> int:
        return minutes * 60_000 * self._sessions.day_length_ms // _NOMINAL_DAY_MS

    def _event_offset(self, event: ScenarioEvent) -> int:
        return (event.day - 1) * self._sessions.day_length_ms + self._trading_ms(event.minute)

    def _to_market(self, offset: int) -> int:
        """The market time of a trading-time offset; an offset at a session's end is the next session's open."""
        day, into = divmod(offset, self._sessions.day_length_ms)
        return self._day_one_ms + day * self._sessions.cycle_ms + into

    def _to_offset(self, market_ms: int) -> int:
        """Trading time elapsed at market_ms: a closed period counts as the end of the session before it."""
        elapsed = market_ms - self._day_one_ms
        if elapsed <= 0:
            return 0
        day, into = divmod(elapsed, self._sessions.cycle_ms)
        return day * self._sessions.day_length_ms + min(into, self._sessions.day_length_ms)

    def _segments(self, offset: int, length: int) -> Iterable[tuple[int, int, int]]:
        """[offset, offset + length) of trading time as (start_ms, end_ms, length) pieces, one per session."""
        day_ms, end = self._sessions.day_length_ms, offset + length
        while offset < end:
            day = offset // day_ms
            stop = min(end, (day + 1) * day_ms)
            base = self._day_one_ms + day * self._sessions.cycle_ms - day * day_ms
            yield base + offset, base + stop, stop - offset
            offset = stop

    def _duration(self, over_min: int) -> int:
        return max(1, self._trading_ms(over_min))

    def _ends_at(self, k: int) -> int:
        event, offset = self.scenario.events[k], self._offsets[k]
        if not event.effects:
            return self._to_market(offset)
        longest = max(self._duration(effect.over_min) for effect in event.effects)
        return list(self._segments(offset, longest))[-1][1]

    def _require_started(self) -> None:
        if self._sessions is None:
            raise Conflict("the scenario has not started")

    # ----- playing -----------------------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._sessions is not None

    @property
    def started_at_ms(self) -> int | None:
        return self._started_at_ms

    @property
    def finished(self) -> bool:
        """Every event has happened and every effect has run its course, by the latest market time seen."""
        if self._sessions is None or self._happened < len(self._offsets):
            return False
        return all(self._ends_at(k) <= self._clock_ms for k in range(len(self._offsets)))

    @property
    def next_event(self) -> ScenarioEvent | None:
        """The next event to happen (None when all have); before the start, the first one."""
        events = self.scenario.events
        return events[self._happened] if self._happened < len(events) else None

    def start(self, at_ms: int, sessions: Sessions) -> None:
        """Start at market time at_ms (Conflict if already started); day 1 is the session holding at_ms, or the next.

        Call `due(at_ms)` next to hear what happens at once.
        """
        if self._sessions is not None:
            raise Conflict("the scenario has already started")
        if not isinstance(sessions, Sessions):
            raise BadRequest("sessions must be a Sessions value")
        at_ms = int(at_ms)
        self._sessions = sessions
        day = (at_ms - sessions.open_ms) // sessions.cycle_ms
        opening = sessions.open_ms + day * sessions.cycle_ms
        self._day_one_ms = opening if at_ms - opening < sessions.day_length_ms else opening + sessions.cycle_ms
        now = self._to_offset(at_ms)
        self._offsets = [max(self._event_offset(e), now) for e in self.scenario.events]
        self._happened = 0
        self._clock_ms = self._started_at_ms = at_ms

    def due(self, now_ms: int) -> Due:
        """Everything that has happened since the last call, up to now_ms; each event is reported exactly once,
        however many ticks or events a step spans. A now_ms before the latest one seen counts as that one."""
        self._require_started()
        self._clock_ms = now = max(int(now_ms), self._clock_ms)
        events, news = [], []
        while self._happened < len(self._offsets):
            at = self._to_market(self._offsets[self._happened])
            if at > now:
                break
            event = self.scenario.events[self._happened]
            events.append(event)
            if event.news is not None:
                news.append(NewsItem(event.news.headline, event.news.body, event.news.symbols, at))
            self._happened += 1
        active = tuple(w for w in self.factor_windows() if w.start_ms <= now < w.end_ms)
        return Due(tuple(news), tuple(events), active, self.finished)

    def skip_to_next_event(self, now_ms: int) -> ScenarioEvent:
        """Bring the next event to now_ms (to the next open while the market is closed) and every later one forward
        by as much, so the rest keeps its rhythm; effects already under way keep their times. Returns that event;
        the following `due(now_ms)` reports it. Conflict when every event has happened."""
        self._require_started()
        if self._happened == len(self._offsets):
            raise Conflict("every event of the scenario has happened")
        self._clock_ms = now = max(int(now_ms), self._clock_ms)
        ahead = self._offsets[self._happened] - self._to_offset(now)
        if ahead > 0:
            for k in range(self._happened, len(self._offsets)):
                self._offsets[k] -= ahead
        return self.scenario.events[self._happened]

    def factor_windows(self) -> tuple[FactorWindow, ...]:
        """Every effect of every event as FactorWindows on the market clock, for MarketSimulator.set_factor_windows.

        A move of p percent is a drift of log(1 + p / 100) over its duration, split across sessions in proportion to
        the trading time in each; the simulator applies the part of a window each of its steps overlaps.
        """
        if self._sessions is None:
            return ()
        out = []
        for event, offset in zip(self.scenario.events, self._offsets, strict=True):
            for effect in event.effects:
                length = self._duration(effect.over_min)
                scope, names = effect.target.scope, effect.target.names or ("",)
                for start, end, piece in self._segments(offset, length):
                    for name in names:
                        if isinstance(effect, Move):
                            drift = math.log1p(effect.percent / 100) * piece / length
                            out.append(FactorWindow(start, end, scope, name, drift=drift))
                        else:
                            out.append(FactorWindow(start, end, scope, name, volatility=effect.multiplier))
        return tuple(out)

    def preview(self) -> tuple[TimelineEntry, ...]:
        """The whole timeline in time order, with market times once started (before, day and time say when)."""
        if self._sessions is None:
            return tuple(TimelineEntry(e, None, None, False) for e in self.scenario.events)
        return tuple(TimelineEntry(e, self._to_market(offset), self._ends_at(k), k < self._happened)
                     for k, (e, offset) in enumerate(zip(self.scenario.events, self._offsets, strict=True)))

    # ----- storing -----------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The run as plain JSON-ready data; `from_dict` gives back a run with the same future."""
        sessions = self._sessions
        return {
            "scenario": self.scenario.to_dict(),
            "sessions": None if sessions is None else {
                "open_ms": sessions.open_ms, "day_length_ms": sessions.day_length_ms, "cycle_ms": sessions.cycle_ms,
            },
            "started_at_ms": self._started_at_ms,
            "day_one_ms": self._day_one_ms,
            "offsets_ms": list(self._offsets),
            "happened": self._happened,
            "clock_ms": self._clock_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping, universe: Iterable[SymbolSpec]) -> "ScenarioRun":
        """A run from `to_dict` data, its scenario validated again against `universe` (which may have changed)."""
        if not isinstance(data, Mapping):
            raise BadRequest("a stored scenario run is a mapping")
        run = cls(scenario_from_dict(data.get("scenario"), universe))
        if data.get("sessions") is None:
            return run
        try:
            sessions = Sessions(**data["sessions"])
            offsets, happened = data["offsets_ms"], data["happened"]
            numbers = [data["day_one_ms"], data["clock_ms"], data["started_at_ms"], happened, *offsets]
        except (KeyError, TypeError) as error:
            raise BadRequest(f"a stored scenario run lacks {error}") from None
        if (not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers)
                or len(offsets) != len(run.scenario.events) or not 0 <= happened <= len(offsets)
                or list(offsets) != sorted(offsets) or any(v < 0 for v in offsets)):
            raise BadRequest("a stored scenario run does not fit its scenario")
        run._sessions = sessions
        run._day_one_ms, run._clock_ms, run._started_at_ms = data["day_one_ms"], data["clock_ms"], data["started_at_ms"]
        run._offsets, run._happened = list(offsets), happened
        return run
