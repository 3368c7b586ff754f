"""The scenario file format: a teacher's timed news and market moves, parsed from TOML or JSON and validated against
the universe, with every problem reported at once by event, field and (in TOML) line.

docs/scenarios.md is the format's reference; this module is its single implementation.
"""

import difflib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import time as time_of_day

from domain.errors import BadRequest
from domain.market import FactorScope
from domain.universe import SymbolSpec

__all__ = [
    "Scenario",
    "ScenarioEvent",
    "News",
    "Target",
    "Move",
    "VolatilityChange",
    "Problem",
    "ScenarioError",
    "parse_scenario",
    "scenario_from_dict",
    "SESSION_OPEN",
    "SESSION_CLOSE",
    "SESSION_MINUTES",
    "MIN_PERCENT",
    "MAX_PERCENT",
    "MIN_MULTIPLIER",
    "MAX_MULTIPLIER",
    "MAX_DAY",
    "MAX_DURATION_MIN",
]

SESSION_OPEN = "09:30"  # the session's times of day: day_length_ms of market time maps onto 09:30-16:00
SESSION_CLOSE = "16:00"
SESSION_MINUTES = 390
_OPEN_MIN = 9 * 60 + 30
MIN_PERCENT, MAX_PERCENT = -90.0, 100.0  # the bounds of the classroom shock
MIN_MULTIPLIER, MAX_MULTIPLIER = 0.1, 10.0
MAX_DAY = 365
MAX_DURATION_MIN = 30 * SESSION_MINUTES
MAX_HEADLINE, MAX_BODY, MAX_NAME, MAX_DESCRIPTION = 200, 4000, 100, 4000

_SCENARIO_KEYS = ("name", "description", "events")
_EVENT_KEYS = ("day", "time", "news", "move", "volatility")
_NEWS_KEYS = ("headline", "body", "symbols")
_TARGET_KEYS = ("symbols", "sector", "market")
_MOVE_KEYS = (*_TARGET_KEYS, "percent", "over")
_VOLATILITY_KEYS = (*_TARGET_KEYS, "multiplier", "over")
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_EVENTS_HEADER = re.compile(r"^\s*\[\[\s*events\s*\]\]\s*(#.*)?$")
_AT_LINE = re.compile(r"at line (\d+)")


@dataclass(frozen=True, slots=True)
class News:
    """A news item as the teacher wrote it; published to the contest as NEWS when its event happens."""

    headline: str
    body: str
    symbols: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """What an effect acts on: the whole market, one sector, or some symbols (each through its own factor)."""

    scope: FactorScope
    names: tuple[str, ...] = ()  # the symbols, or the one sector; () for the market


@dataclass(frozen=True, slots=True)
class Move:
    """A price move of `percent` spread evenly over `over_min` minutes of session time."""

    target: Target
    percent: float
    over_min: int


@dataclass(frozen=True, slots=True)
class VolatilityChange:
    """Every random shock of the target multiplied by `multiplier` for `over_min` minutes of session time."""

    target: Target
    multiplier: float
    over_min: int


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    """One moment of a scenario: day (1 = the day the scenario starts), time of day, and what happens then.

    `number` is the event's position in the file (1-based), which error messages and the preview name.
    """

    number: int
    day: int
    time: str  # "HH:MM", from SESSION_OPEN to before SESSION_CLOSE
    news: News | None = None
    moves: tuple[Move, ...] = ()
    volatility: tuple[VolatilityChange, ...] = ()

    @property
    def minute(self) -> int:
        """Minutes into the session (0 at the open)."""
        hours, minutes = self.time.split(":")
        return int(hours) * 60 + int(minutes) - _OPEN_MIN

    @property
    def effects(self) -> tuple[Move | VolatilityChange, ...]:
        return (*self.moves, *self.volatility)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario: its name, description and events in time order (ties keep the file's order)."""

    name: str
    description: str
    events: tuple[ScenarioEvent, ...]

    def to_dict(self) -> dict:
        """The scenario as plain data in the file's own shape, events in file order: what a stored run keeps."""
        return {
            "name": self.name,
            "description": self.description,
            "events": [_event_dict(e) for e in sorted(self.events, key=lambda e: e.number)],
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a scenario: where (event number, field path, TOML line when known) and what."""

    message: str
    event: int | None = None  # 1-based position in the file
    field: str = ""  # e.g. "move[2].percent", 1-based within the event
    line: int | None = None

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        if self.event is not None:
            where.append(f"event {self.event}")
        if self.field:
            where.append(self.field)
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ScenarioError(BadRequest):
    """A scenario that cannot be played; `problems` lists everything wrong with it, for the teacher to fix at once."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = tuple(problems)
        count = len(self.problems)
        super().__init__(f"the scenario has {count} problem{'s' * (count != 1)}: "
                         + "; ".join(str(p) for p in self.problems))


def parse_scenario(text: str, universe: Iterable[SymbolSpec], *, fmt: str = "toml") -> Scenario:
    """Parse a scenario file's text ("toml" or "json") and validate it against `universe`; ScenarioError if bad."""
    if fmt == "toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            found = _AT_LINE.search(str(error))
            raise ScenarioError([Problem(f"not valid TOML: {error}", line=int(found[1]) if found else None)]) from None
        lines = [n for n, line in enumerate(text.splitlines(), 1) if _EVENTS_HEADER.match(line)]
    elif fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ScenarioError([Problem(f"not valid JSON: {error.msg}", line=error.lineno)]) from None
        lines = []
    else:
        raise BadRequest(f"unknown scenario format {fmt!r}; use toml or json")
    return _Validator(universe, lines).scenario(data)


def scenario_from_dict(data: object, universe: Iterable[SymbolSpec]) -> Scenario:
    """Validate already-decoded scenario data (a file's content, or `Scenario.to_dict()`) against `universe`."""
    return _Validator(universe, []).scenario(data)


class _Validator:
    """Collects every problem of one scenario rather than stopping at the first, so the teacher fixes them in one go."""

    def __init__(self, universe: Iterable[SymbolSpec], event_lines: list[int]):
        specs = tuple(universe)
        self._symbols = {s.symbol for s in specs}
        self._sectors = list(dict.fromkeys(s.sector for s in specs))
        self._event_lines = event_lines
        self._problems: list[Problem] = []
        self._event: int | None = None

    def _problem(self, path: str, message: str) -> None:
        line = None
        if self._event is not None and len(self._event_lines) == self._event_count:
            line = self._event_lines[self._event - 1]
        self._problems.append(Problem(message, self._event, path, line))

    def scenario(self, data: object) -> Scenario:
        self._event_count = 0
        if not isinstance(data, Mapping):
            raise ScenarioError([Problem("a scenario is a table of name, description and events")])
        self._keys(data, _SCENARIO_KEYS, "")
        name = self._text(data, "name", MAX_NAME, required=True)
        description = self._text(data, "description", MAX_DESCRIPTION)
        raw_events = data.get("events")
        events = []
        if not isinstance(raw_events, list) or not raw_events:
            self._problem("events", "a scenario needs at least one event ([[events]])")
        else:
            self._event_count = len(raw_events)
            for number, raw in enumerate(raw_events, 1):
                self._event = number
                event = self._scenario_event(number, raw)
                if event is not None:
                    events.append(event)
            self._event = None
        if self._problems:
            raise ScenarioError(self._problems)
        events.sort(key=lambda e: (e.day, e.minute))
        return Scenario(name, description, tuple(events))

    def _scenario_event(self, number: int, raw: object) -> ScenarioEvent | None:
        if not isinstance(raw, Mapping):
            self._problem("", "an event is a table of day, time, news, move and volatility")
            return None
        before = len(self._problems)
        self._keys(raw, _EVENT_KEYS, "")
        day = raw.get("day")
        if "day" not in raw:
            self._problem("day", "missing; day 1 is the day the scenario starts")
        elif not _is_int(day) or not 1 <= day <= MAX_DAY:
            self._problem("day", f"must be a whole number from 1 to {MAX_DAY}, not {day!r}")
        clock = self._time(raw.get("time", SESSION_OPEN))
        news = self._news(raw["news"]) if "news" in raw else None
        moves = self._effects(raw, "move", _MOVE_KEYS, self._move)
        volatility = self._effects(raw, "volatility", _VOLATILITY_KEYS, self._volatility)
        if news is None and not moves and not volatility and len(self._problems) == before:
            self._problem("", "an event needs news, a move or a volatility change")
        if len(self._problems) > before:
            return None
        return ScenarioEvent(number, day, clock, news, tuple(moves), tuple(volatility))

    def _time(self, value: object) -> str:
        if isinstance(value, time_of_day):  # TOML's own local time: time = 10:00:00
            if value.second or value.microsecond or value.tzinfo is not None:
                self._problem("time", "give hours and minutes only, e.g. 10:00")
                return SESSION_OPEN
            value = f"{value.hour:02d}:{value.minute:02d}"
        found = _CLOCK.fullmatch(value) if isinstance(value, str) else None
        hours, minutes = (int(found[1]), int(found[2])) if found else (99, 99)
        if hours > 23 or minutes > 59:
            self._problem("time", f'must be a time of day "HH:MM", not {value!r}')
            return SESSION_OPEN
        if not _OPEN_MIN <= hours * 60 + minutes < _OPEN_MIN + SESSION_MINUTES:
            self._problem("time", f"{value} is outside the session: from {SESSION_OPEN} to before {SESSION_CLOSE}")
            return SESSION_OPEN
        return f"{hours:02d}:{minutes:02d}"

    def _news(self, raw: object) -> News | None:
        if not isinstance(raw, Mapping):
            self._problem("news", "must be a table of headline, body and symbols ([events.news])")
            return None
        self._keys(raw, _NEWS_KEYS, "news.")
        headline = self._text(raw, "headline", MAX_HEADLINE, required=True, path="news.")
        body = self._text(raw, "body", MAX_BODY, path="news.")
        symbols = self._symbol_list(raw.get("symbols", []), "news.symbols")
        return News(headline, body, symbols)

    def _effects(self, raw: Mapping, key: str, keys: tuple[str, ...], build) -> list:
        if key not in raw:
            return []
        items = raw[key]
        if isinstance(items, Mapping):
            items = [items]
        if not isinstance(items, list):
            self._problem(key, f"must be a list of tables ([[events.{key}]])")
            return []
        out = []
        for k, item in enumerate(items, 1):
            path = f"{key}[{k}]"
            if not isinstance(item, Mapping):
                self._problem(path, "must be a table")
                continue
            self._keys(item, keys, path + ".")
            target = self._target(item, path)
            over = self._duration(item, path)
            effect = build(item, path, target, over)
            if effect is not None:
                out.append(effect)
        return out

    def _move(self, item: Mapping, path: str, target: Target | None, over: int | None) -> Move | None:
        percent = item.get("percent")
        ok = _is_number(percent) and MIN_PERCENT <= percent <= MAX_PERCENT and percent != 0
        if "percent" not in item:
            self._problem(path + ".percent", "missing, e.g. percent = -12")
        elif not ok:
            self._problem(path + ".percent",
                          f"must be a non-zero percent from {MIN_PERCENT:g} to {MAX_PERCENT:g}, not {percent!r}")
        if not ok or target is None or over is None:
            return None
        return Move(target, float(percent), over)

    def _volatility(self, item: Mapping, path: str, target: Target | None, over: int | None) -> VolatilityChange | None:
        multiplier = item.get("multiplier")
        ok = _is_number(multiplier) and MIN_MULTIPLIER <= multiplier <= MAX_MULTIPLIER
        if "multiplier" not in item:
            self._problem(path + ".multiplier", "missing, e.g. multiplier = 2")
        elif not ok:
            self._problem(path + ".multiplier",
                          f"must be a number from {MIN_MULTIPLIER:g} to {MAX_MULTIPLIER:g}, not {multiplier!r}")
        if not ok or target is None or over is None:
            return None
        return VolatilityChange(target, float(multiplier), over)

    def _target(self, item: Mapping, path: str) -> Target | None:
        named = [key for key in _TARGET_KEYS if key in item]
        if len(named) != 1:
            self._problem(path, "name exactly one of symbols, sector or market = true"
                          + (f", not {' and '.join(named)}" if named else ""))
            return None
        key = named[0]
        value = item[key]
        if key == "market":
            if value is not True:
                self._problem(path + ".market", "must be true (leave it out to name symbols or a sector)")
                return None
            return Target(FactorScope.MARKET)
        if key == "sector":
            if value not in self._sectors:
                self._problem(path + ".sector", f"unknown sector {value!r}{_suggest(value, self._sectors)}; "
                              f"sectors: {', '.join(self._sectors)}")
                return None
            return Target(FactorScope.SECTOR, (value,))
        before = len(self._problems)
        symbols = self._symbol_list(value, path + ".symbols")
        if len(self._problems) > before:
            return None
        if not symbols:
            self._problem(path + ".symbols", "name at least one symbol")
            return None
        return Target(FactorScope.SYMBOL, symbols)

    def _symbol_list(self, value: object, path: str) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            self._problem(path, f'must be a list of symbols, e.g. ["NVTX"], not {value!r}')
            return ()
        for symbol in value:
            if symbol not in self._symbols:
                self._problem(path, f"unknown symbol {symbol!r}{_suggest(symbol, self._symbols)}")
        return tuple(dict.fromkeys(value))

    def _duration(self, item: Mapping, path: str) -> int | None:
        if "over" not in item:
            self._problem(path + ".over", 'missing, e.g. over = "20m"')
            return None
        value = item["over"]
        found = _DURATION.fullmatch(value) if isinstance(value, str) and value else None
        if found is None:
            self._problem(path + ".over", f'must be a duration like "20m", "1h30m" or "1d" (a whole session), '
                          f"not {value!r}")
            return None
        days, hours, minutes = (int(g or 0) for g in found.groups())
        total = days * SESSION_MINUTES + hours * 60 + minutes
        if not 1 <= total <= MAX_DURATION_MIN:
            self._problem(path + ".over", f"must be from 1 minute to {MAX_DURATION_MIN // SESSION_MINUTES} days")
            return None
        return total

    def _text(self, raw: Mapping, key: str, limit: int, *, required: bool = False, path: str = "") -> str:
        value = raw.get(key, None if required else "")
        if value is None:
            self._problem(path + key, "missing")
            return ""
        if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
            self._problem(path + key, f"must be {'non-empty ' if required else ''}text of at most {limit} characters")
            return ""
        return value.strip()

    def _keys(self, raw: Mapping, allowed: tuple[str, ...], path: str) -> None:
        for key in raw:
            if key not in allowed:
                self._problem(path + str(key), f"unknown key{_suggest(key, allowed)}; expected {', '.join(allowed)}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _suggest(value: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _format_duration(minutes: int) -> str:
    days, rest = divmod(minutes, SESSION_MINUTES)
    hours, minutes = divmod(rest, 60)
    return "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)


def _target_dict(target: Target) -> dict:
    if target.scope == FactorScope.MARKET:
        return {"market": True}
    if target.scope == FactorScope.SECTOR:
        return {"sector": target.names[0]}
    return {"symbols": list(target.names)}


def _event_dict(event: ScenarioEvent) -> dict:
    out: dict = {"day": event.day, "time": event.time}
    if event.news is not None:
        out["news"] = {"headline": event.news.headline, "body": event.news.body, "symbols": list(event.news.symbols)}
    if event.moves:
        out["move"] = [{**_target_dict(m.target), "percent": m.percent, "over": _format_duration(m.over_min)}
                       for m in event.moves]
    if event.volatility:
        out["volatility"] = [{**_target_dict(v.target), "multiplier": v.multiplier,
                              "over": _format_duration(v.over_min)} for v in event.volatility]
    return out

