"""Scenarios on the wire (classroom REST): the scenarios to choose from, a scenario's timeline, the one being played,
and what is wrong with a scenario a teacher wrote.

An event of a timeline is written as in the scenario file (`day`, `time`, `news`, `move`, `volatility`, the keys of
docs/scenarios.md), with its number in the file and, once the scenario is being played, when it happens (`at`),
when its last effect ends (`endsAt`) on the market clock, and whether it has happened.
"""

from domain.scenarios import Problem, Scenario, ScenarioRun, TimelineEntry

from . import iso_ms

__all__ = ["summary", "timeline", "current", "problem"]


def summary(name: str, scenario: Scenario, *, uploaded: bool) -> dict:
    """One scenario of GET /api/scenarios: `name` is what a teacher starts it by, `title` the scenario's own name."""
    return {
        "name": name,
        "title": scenario.name,
        "description": scenario.description,
        "events": len(scenario.events),
        "days": max(event.day for event in scenario.events),
        "uploaded": uploaded,
    }


def timeline(scenario: Scenario, entries: tuple[TimelineEntry, ...]) -> list[dict]:
    """The events in the order they happen."""
    written = scenario.to_dict()["events"]  # in file order: the event numbered n is written[n - 1]
    return [_event(entry, written[entry.event.number - 1]) for entry in entries]


def _event(entry: TimelineEntry, written: dict) -> dict:
    return {
        "number": entry.event.number,
        "day": written["day"],
        "time": written["time"],
        "news": written.get("news"),
        "move": written.get("move", []),
        "volatility": written.get("volatility", []),
        "at": None if entry.at_ms is None else iso_ms(entry.at_ms),
        "endsAt": None if entry.ends_at_ms is None else iso_ms(entry.ends_at_ms),
        "happened": entry.happened,
    }


def current(name: str | None, run: ScenarioRun | None, market_ms: int, *, uploaded: bool) -> dict:
    """GET /api/scenarios/current, and the answer to start, skip and stop: the scenario being played (null when
    none is), with its whole timeline and its next event, and the market clock now."""
    if run is None:
        return {"current": None, "marketTime": iso_ms(market_ms)}
    events = timeline(run.scenario, run.preview())
    return {
        "current": {
            **summary(name, run.scenario, uploaded=uploaded),
            "startedAt": iso_ms(run.started_at_ms),
            "finished": run.finished,
            "happened": sum(event["happened"] for event in events),
            "nextEvent": next((event for event in events if not event["happened"]), None),
            "timeline": events,
        },
        "marketTime": iso_ms(market_ms),
    }


def problem(p: Problem) -> dict:
    """One mistake in a scenario: its message, the event's number in the file, the field, the TOML line."""
    return {"message": p.message, "event": p.event, "field": p.field, "line": p.line, "text": str(p)}
