"""Scenarios: a teacher's script of timed news and market moves, and the run that plays one on the market clock.

`format` parses and validates scenario files (TOML or JSON; docs/scenarios.md); `run` places a scenario's events
on the market clock, says what is due at each tick, and turns its moves into the simulator's factor windows.
"""

from .format import (
    MAX_DAY,
    MAX_DURATION_MIN,
    MAX_MULTIPLIER,
    MAX_PERCENT,
    MIN_MULTIPLIER,
    MIN_PERCENT,
    SESSION_CLOSE,
    SESSION_MINUTES,
    SESSION_OPEN,
    Move,
    News,
    Problem,
    Scenario,
    ScenarioError,
    ScenarioEvent,
    Target,
    VolatilityChange,
    parse_scenario,
    scenario_from_dict,
)
from .run import Due, NewsItem, ScenarioRun, Sessions, TimelineEntry

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
    "Sessions",
    "NewsItem",
    "TimelineEntry",
    "Due",
    "ScenarioRun",
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
