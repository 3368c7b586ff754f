"""Scenarios: the file format and its validation, the shipped scenarios, and a run's timing, skips and storage."""

import json
import math
import random
from pathlib import Path

import pytest

from domain.errors import BadRequest, Conflict
from domain.market import FactorScope, FactorWindow
from domain.scenarios import (
    Move,
    News,
    Scenario,
    ScenarioError,
    ScenarioRun,
    Sessions,
    Target,
    VolatilityChange,
    parse_scenario,
    scenario_from_dict,
)
from domain.universe import DEFAULT_UNIVERSE

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
START = 1_764_126_000_000
DAY = 23_400_000  # the default session: 6.5 h of market time, 09:30-16:00
MINUTE = 60_000
SESSIONS = Sessions(START, DAY, DAY)  # no exchange hours: the next session opens as one ends

EXAMPLE = """
name = "Novatex week"
description = "A bad week for one chip maker."

[[events]]
day = 3
time = "10:00"

[events.news]
headline = "Novatex misses earnings"
body = "Sales to data centres fell."
symbols = ["NVTX"]

[[events.move]]
symbols = ["NVTX"]
percent = -12
over = "20m"

[[events.move]]
sector = "Technology"
percent = -3
over = "1h"

[[events]]
day = 5

[[events.volatility]]
market = true
multiplier = 2
over = "1d"

[[events]]
day = 1
time = "11:15"

[events.news]
headline = "Novatex to report on Wednesday"
"""


def parse(text: str = EXAMPLE) -> Scenario:
    return parse_scenario(text, DEFAULT_UNIVERSE)


def problems_of(text: str, fmt: str = "toml"):
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, DEFAULT_UNIVERSE, fmt=fmt)
    return caught.value.problems


def one_event(body: str, header: str = 'name = "x"\n') -> str:
    return f"{header}\n[[events]]\nday = 1\n{body}\n"


def news_times(text: str, times: list[int], sessions: Sessions = SESSIONS, start: int = START):
    run = ScenarioRun(parse(text))
    run.start(start, sessions)
    return run, [(t, item) for t in times for item in run.due(t).news]


# ----- the format ------------------------------------------------------------------------------------------------


def test_a_scenario_file_parses_into_events_in_time_order_keeping_their_file_numbers():
    scenario = parse()
    assert scenario.name == "Novatex week" and scenario.description == "A bad week for one chip maker."
    assert [(e.number, e.day, e.time) for e in scenario.events] == [(3, 1, "11:15"), (1, 3, "10:00"), (2, 5, "09:30")]
    first, earnings, calm = scenario.events
    assert first.news == News("Novatex to report on Wednesday", "", ()) and first.effects == ()
    assert earnings.news == News("Novatex misses earnings", "Sales to data centres fell.", ("NVTX",))
    assert earnings.moves == (Move(Target(FactorScope.SYMBOL, ("NVTX",)), -12.0, 20),
                              Move(Target(FactorScope.SECTOR, ("Technology",)), -3.0, 60))
    assert calm.news is None and calm.minute == 0
    assert calm.volatility == (VolatilityChange(Target(FactorScope.MARKET), 2.0, 390),)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.name)
def test_the_shipped_scenarios_parse_against_the_default_universe_and_tell_a_story(path):
    scenario = parse(path.read_text())
    news = [e.news for e in scenario.events if e.news is not None]
    assert scenario.name and len(scenario.description) > 100
    assert len(news) >= 5
    assert all(len(n.headline) <= 80 and len(n.body) >= 200 for n in news)  # a headline, and a body that teaches
    assert any(e.moves for e in scenario.events) and any(e.volatility for e in scenario.events)
    assert len({e.day for e in scenario.events}) >= 5


def test_the_example_in_the_docs_parses():
    page = (SCENARIOS.parent / "docs" / "scenarios.md").read_text()
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    scenario = parse(example)
    assert [(e.day, e.time, len(e.moves), len(e.volatility)) for e in scenario.events] == [(3, "10:00", 2, 0),
                                                                                         (5, "09:30", 0, 1)]


def test_the_three_scenarios_of_the_issue_are_shipped():
    assert sorted(p.name for p in SCENARIOS.glob("*.toml")) == [
        "crash-and-recovery.toml", "earnings-season.toml", "sector-rotation.toml"]


def test_json_scenarios_read_like_toml_and_to_dict_round_trips():
    scenario = parse()
    data = scenario.to_dict()
    assert [e["day"] for e in data["events"]] == [3, 5, 1]  # the file's order, so numbers survive
    assert scenario_from_dict(data, DEFAULT_UNIVERSE) == scenario
    assert parse_scenario(json.dumps(data), DEFAULT_UNIVERSE, fmt="json") == scenario


def test_times_of_day_may_be_toml_times_and_durations_count_session_minutes():
    scenario = parse(one_event('time = 10:05:00\n[[events.move]]\nmarket = true\npercent = 1\nover = "1d2h30m"'))
    event = scenario.events[0]
    assert event.time == "10:05" and event.minute == 35
    assert event.moves[0].over_min == 390 + 150


def test_a_single_symbol_may_be_written_as_text():
    event = parse(one_event('[[events.move]]\nsymbols = "NVTX"\npercent = 5\nover = "5m"')).events[0]
    assert event.moves[0].target == Target(FactorScope.SYMBOL, ("NVTX",))


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ('dya = 2\n[events.news]\nheadline = "h"', "dya", "did you mean day"),
        ('time = "25:00"\n[events.news]\nheadline = "h"', "time", "HH:MM"),
        ('time = "9:15"\n[events.news]\nheadline = "h"', "time", "outside the session"),
        ('time = "16:00"\n[events.news]\nheadline = "h"', "time", "outside the session"),
        ('time = "10:5"\n[events.news]\nheadline = "h"', "time", "HH:MM"),
        ("time = 10:00:30\n[events.news]\nheadline = \"h\"", "time", "hours and minutes only"),
        ('[events.news]\nbody = "no headline"', "news.headline", "missing"),
        ('[events.news]\nheadline = "h"\nsymbols = ["NVTXX"]', "news.symbols", "did you mean NVTX"),
        ('[events.news]\nheadline = "h"\nsymbols = [1]', "news.symbols", "list of symbols"),
        ('[events.news]\nheadline = "h"\nsource = "x"', "news.source", "unknown key"),
        ('[[events.move]]\nsymbols = ["ZZZZ"]\npercent = 5\nover = "5m"', "move[1].symbols", "unknown symbol 'ZZZZ'"),
        ('[[events.move]]\nsector = "TECH"\npercent = 5\nover = "5m"', "move[1].sector", "sectors: Technology"),
        ('[[events.move]]\nsector = "Tech"\npercent = 5\nover = "5m"', "move[1].sector", "unknown sector"),
        ('[[events.move]]\nmarket = true\npercent = -95\nover = "5m"', "move[1].percent", "from -90 to 100"),
        ('[[events.move]]\nmarket = true\npercent = 150\nover = "5m"', "move[1].percent", "from -90 to 100"),
        ('[[events.move]]\nmarket = true\npercent = 0\nover = "5m"', "move[1].percent", "non-zero"),
        ('[[events.move]]\nmarket = true\npercent = "-12%"\nover = "5m"', "move[1].percent", "'-12%'"),
        ('[[events.move]]\nmarket = true\npercent = true\nover = "5m"', "move[1].percent", "non-zero"),
        ('[[events.move]]\nmarket = true\npercent = nan\nover = "5m"', "move[1].percent", "non-zero"),
        ('[[events.move]]\nmarket = true\nover = "5m"', "move[1].percent", "missing"),
        ('[[events.move]]\nmarket = true\npercent = 5\npercnt = 5\nover = "5m"', "move[1].percnt",
         "did you mean percent"),
        ('[[events.move]]\nmarket = true\npercent = 5', "move[1].over", "missing"),
        ('[[events.move]]\nmarket = true\npercent = 5\nover = "20 minutes"', "move[1].over", "a duration like"),
        ('[[events.move]]\nmarket = true\npercent = 5\nover = 20', "move[1].over", "a duration like"),
        ('[[events.move]]\nmarket = true\npercent = 5\nover = "0m"', "move[1].over", "from 1 minute"),
        ('[[events.move]]\nmarket = true\npercent = 5\nover = "31d"', "move[1].over", "30 days"),
        ('[[events.move]]\npercent = 5\nover = "5m"', "move[1]", "name exactly one"),
        ('[[events.move]]\nmarket = true\nsector = "Energy"\npercent = 5\nover = "5m"', "move[1]", "sector and market"),
        ('[[events.move]]\nmarket = false\npercent = 5\nover = "5m"', "move[1].market", "must be true"),
        ('[[events.move]]\nsymbols = []\npercent = 5\nover = "5m"', "move[1].symbols", "at least one"),
        ('[[events.volatility]]\nmarket = true\nmultiplier = 20\nover = "1d"', "volatility[1].multiplier", "0.1 to 10"),
        ('[[events.volatility]]\nmarket = true\nmultiplier = 0\nover = "1d"', "volatility[1].multiplier", "0.1 to 10"),
        ('[[events.volatility]]\nmarket = true\nover = "1d"', "volatility[1].multiplier", "missing"),
        ('[[events.volatility]]\nmarket = true\nmultiplier = 2\npercent = 5\nover = "1d"', "volatility[1].percent",
         "unknown key"),
        ("move = 5", "move", "list of tables"),
        ("news = 5", "news", "table of headline"),
        ("", "", "needs news, a move or a volatility change"),
    ],
)
def test_each_mistake_is_reported_with_its_event_field_and_line(body, field, words):
    problems = problems_of(one_event(body))
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.event, problem.field, problem.line) == (1, field, 3)
    assert words in problem.message
    assert str(problem).startswith(f"line 3, event 1{', ' + field if field else ''}: ")


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("[[events]]\nday = 1\n[events.news]\nheadline = 'h'", "name", "missing"),
        ('name = "  "\n[[events]]\nday = 1\n[events.news]\nheadline = "h"', "name", "non-empty"),
        ('name = "x"', "events", "at least one event"),
        ('name = "x"\nevents = []', "events", "at least one event"),
        ('name = "x"\nauthor = "me"\n[[events]]\nday = 1\n[events.news]\nheadline = "h"', "author", "unknown key"),
    ],
)
def test_mistakes_outside_the_events_name_the_field(text, field, words):
    problems = problems_of(text)
    assert [(p.event, p.field, p.line) for p in problems] == [(None, field, None)]
    assert words in problems[0].message


@pytest.mark.parametrize(("day", "words"), [(0, "from 1 to 365"), (366, "from 1 to 365"), ('"3"', "'3'"),
                                            ("true", "True"), ("2.5", "2.5")])
def test_a_day_is_a_whole_number_from_one(day, words):
    problems = problems_of(f'name = "x"\n[[events]]\nday = {day}\n[events.news]\nheadline = "h"')
    assert [(p.field, p.line) for p in problems] == [("day", 2)] and words in problems[0].message


def test_an_event_without_a_day_is_refused():
    problems = problems_of('name = "x"\n[[events]]\ntime = "10:00"\n[events.news]\nheadline = "h"')
    assert [(p.field, p.message) for p in problems] == [("day", "missing; day 1 is the day the scenario starts")]


def test_every_problem_is_reported_at_once_each_at_its_events_line():
    text = EXAMPLE.replace('percent = -12', 'percent = -120').replace('sector = "Technology"', 'sector = "Tek"')
    text = text.replace("day = 5", "day = 5\ntime = \"17:00\"")
    problems = problems_of(text)
    assert [(p.event, p.field, p.line) for p in problems] == [
        (1, "move[1].percent", 5), (1, "move[2].sector", 5), (2, "time", 24)]
    error = ScenarioError(problems)
    assert isinstance(error, BadRequest) and error.code == "BAD_REQUEST"
    assert error.message.startswith("the scenario has 3 problems: line 5, event 1, move[1].percent: ")


def test_a_file_that_is_not_toml_or_json_is_refused_with_its_line():
    problems = problems_of('name = "x"\n\n[[events]\nday = 1\n')
    assert problems[0].line == 3 and "not valid TOML" in problems[0].message
    problems = problems_of('{"name": "x",\n "events": [,]}', fmt="json")
    assert problems[0].line == 2 and "not valid JSON" in problems[0].message
    assert problems_of("[1, 2]", fmt="json")[0].message.startswith("a scenario is a table")
    with pytest.raises(BadRequest):
        parse_scenario(EXAMPLE, DEFAULT_UNIVERSE, fmt="yaml")


def test_symbols_and_sectors_are_checked_against_the_universe_given():
    small = [s for s in DEFAULT_UNIVERSE if s.sector == "Energy"]
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(EXAMPLE, small)
    assert {(p.event, p.field) for p in caught.value.problems} == {
        (1, "news.symbols"), (1, "move[1].symbols"), (1, "move[2].sector")}


# ----- playing a scenario ------------------------------------------------------------------------------------------


def test_before_the_start_the_preview_has_days_and_times_and_nothing_is_due():
    run = ScenarioRun(parse())
    assert not run.started and run.factor_windows() == () and not run.finished
    assert [(entry.event.day, entry.event.time, entry.at_ms, entry.happened) for entry in run.preview()] == [
        (1, "11:15", None, False), (3, "10:00", None, False), (5, "09:30", None, False)]
    assert run.next_event.day == 1
    for call in (lambda: run.due(START), lambda: run.skip_to_next_event(START)):
        with pytest.raises(Conflict):
            call()


def test_events_are_placed_on_the_market_clock_by_day_and_time_of_session():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    entries = run.preview()
    assert [entry.at_ms for entry in entries] == [START + 105 * MINUTE, START + 2 * DAY + 30 * MINUTE, START + 4 * DAY]
    assert [entry.ends_at_ms for entry in entries] == [START + 105 * MINUTE, START + 2 * DAY + 90 * MINUTE,
                                                       START + 5 * DAY]
    with pytest.raises(Conflict):
        run.start(START, SESSIONS)


def test_session_times_scale_to_a_short_classroom_day_and_skip_closed_periods():
    short, closed = 600_000, 300_000  # a 10-minute day then 5 closed minutes
    run = ScenarioRun(parse())
    run.start(START + 1_000, Sessions(START - 5 * (short + closed), short, short + closed))
    cycle = short + closed
    assert [entry.at_ms for entry in run.preview()] == [
        START + 105 * short // 390, START + 2 * cycle + 30 * short // 390, START + 4 * cycle]
    windows = run.factor_windows()
    earnings = START + 2 * cycle + 30 * short // 390
    assert windows[0] == FactorWindow(earnings, earnings + 20 * short // 390, FactorScope.SYMBOL, "NVTX",
                                      drift=pytest.approx(math.log(0.88)))
    assert windows[-1] == FactorWindow(START + 4 * cycle, START + 4 * cycle + short, FactorScope.MARKET,
                                       volatility=2.0)


def test_news_is_due_exactly_once_at_its_time_across_ticks_of_any_size():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    scheduled = {entry.event.news.headline: entry.at_ms for entry in run.preview() if entry.event.news}
    rng = random.Random(5)
    t, seen = START, []
    while t < START + 6 * DAY:
        t += rng.choice([1, 250, 7_000, 60_000, 3_600_000, 2 * DAY])
        seen.extend((t, item) for item in run.due(t).news)
    assert [item.headline for _, item in seen] == ["Novatex to report on Wednesday", "Novatex misses earnings"]
    for reported_at, item in seen:
        assert item.time_ms == scheduled[item.headline] <= reported_at
    for step in (1, 997, 60_000):  # the first tick at or past an event reports it, not one before
        at = START + 105 * MINUTE
        _, ticks = news_times(EXAMPLE, list(range(at - 3 * step, at + 3 * step, step)))
        assert [t for t, _ in ticks] == [at]


def test_a_tick_that_jumps_over_several_events_reports_them_all_in_order():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    due = run.due(START + 10 * DAY)
    assert [e.number for e in due.events] == [3, 1, 2]
    assert [n.time_ms for n in due.news] == [START + 105 * MINUTE, START + 2 * DAY + 30 * MINUTE]
    assert due.finished and run.finished and run.next_event is None
    assert run.due(START + 11 * DAY).events == ()


def test_a_run_started_after_an_events_time_plays_it_at_once():
    start = START + 3 * 60 * MINUTE  # 12:30 on day 1, after the 11:15 news
    run = ScenarioRun(parse())
    run.start(start, SESSIONS)
    assert [entry.at_ms for entry in run.preview()][:2] == [start, START + 2 * DAY + 30 * MINUTE]
    assert [n.time_ms for n in run.due(start).news] == [start]


def test_a_run_started_while_the_market_is_closed_begins_at_the_next_open():
    cycle = DAY + 3_600_000
    run = ScenarioRun(parse())
    run.start(START + DAY + 60_000, Sessions(START, DAY, cycle))  # an hour-long night has just begun
    assert run.preview()[0].at_ms == START + cycle + 105 * MINUTE
    assert run.due(START + cycle - 1).events == ()


def test_an_effect_running_past_the_close_goes_on_at_the_next_open():
    cycle = DAY + 3_600_000
    text = one_event('time = "15:00"\n[[events.move]]\nsymbols = ["NVTX"]\npercent = 10\nover = "2h"')
    run = ScenarioRun(parse(text))
    run.start(START, Sessions(START, DAY, cycle))
    first, second = run.factor_windows()
    assert (first.start_ms, first.end_ms) == (START + 330 * MINUTE, START + DAY)
    assert (second.start_ms, second.end_ms) == (START + cycle, START + cycle + 60 * MINUTE)
    assert first.drift == second.drift == pytest.approx(math.log(1.1) / 2)
    assert run.preview()[0].ends_at_ms == START + cycle + 60 * MINUTE


def test_due_names_the_factor_windows_in_force_now_and_the_run_finishes_when_they_end():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    earnings = START + 2 * DAY + 30 * MINUTE
    assert run.due(earnings - 1).active == ()
    active = run.due(earnings + 30 * MINUTE).active
    assert [(w.name, w.drift) for w in active] == [("Technology", pytest.approx(math.log(0.97)))]
    run.due(START + 4 * DAY + 1)
    assert not run.finished  # the volatility day has begun but not ended
    assert run.due(START + 5 * DAY).finished


def test_skip_brings_the_next_event_to_now_and_every_later_one_forward_as_much():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    run.due(START + 2 * 60 * MINUTE)
    before = [entry.at_ms for entry in run.preview()]
    now = START + 3 * 60 * MINUTE
    assert run.skip_to_next_event(now).number == 1
    after = [entry.at_ms for entry in run.preview()]
    assert after[0] == before[0] and after[1] == now
    assert after[2] - after[1] == before[2] - before[1]
    due = run.due(now)
    assert [n.headline for n in due.news] == ["Novatex misses earnings"] and due.news[0].time_ms == now
    assert run.factor_windows()[0] == FactorWindow(now, now + 20 * MINUTE, FactorScope.SYMBOL, "NVTX",
                                                   drift=pytest.approx(math.log(0.88)))


def test_skip_leaves_effects_already_under_way_where_they_are():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    earnings = START + 2 * DAY + 30 * MINUTE
    run.due(earnings + 10 * MINUTE)
    under_way = run.factor_windows()[:2]
    assert run.skip_to_next_event(earnings + 11 * MINUTE).number == 2
    assert run.factor_windows()[:2] == under_way
    assert run.factor_windows()[2].start_ms == earnings + 11 * MINUTE
    assert run.due(earnings + 11 * MINUTE).events[0].number == 2
    with pytest.raises(Conflict):
        run.skip_to_next_event(earnings + 12 * MINUTE)


def test_skip_while_the_market_is_closed_brings_the_next_event_to_the_next_open():
    cycle = DAY + 3_600_000
    run = ScenarioRun(parse())
    run.start(START, Sessions(START, DAY, cycle))
    run.due(START + DAY + 60_000)  # day 1's news has happened; the market is closed
    run.skip_to_next_event(START + DAY + 60_000)
    assert run.preview()[1].at_ms == START + cycle
    assert run.preview()[2].at_ms - run.preview()[1].at_ms == cycle + DAY - 30 * MINUTE  # 2 sessions less 30 min
    assert run.due(START + cycle - 1).events == () and run.due(START + cycle).events[0].number == 1


def test_a_stored_run_resumes_with_the_same_future():
    def future(run, times):
        return [(run.due(t), run.factor_windows()) for t in times]

    run = ScenarioRun(parse())
    run.start(START + 7, SESSIONS)
    run.due(START + 3 * 60 * MINUTE)
    run.skip_to_next_event(START + 3 * 60 * MINUTE + 5)
    stored = json.loads(json.dumps(run.to_dict()))
    resumed = ScenarioRun.from_dict(stored, DEFAULT_UNIVERSE)
    assert resumed.preview() == run.preview() and resumed.to_dict() == run.to_dict()
    times = [START + 3 * 60 * MINUTE + k * 2_345_678 for k in range(1, 60)]
    assert future(resumed, times) == future(run, times)
    unstarted = ScenarioRun.from_dict(ScenarioRun(parse()).to_dict(), DEFAULT_UNIVERSE)
    assert not unstarted.started and unstarted.preview() == ScenarioRun(parse()).preview()


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("offsets_ms"),
        lambda d: d.update(offsets_ms=d["offsets_ms"][:-1]),
        lambda d: d.update(offsets_ms=list(reversed(d["offsets_ms"]))),
        lambda d: d.update(happened=9),
        lambda d: d.update(clock_ms="soon"),
        lambda d: d.update(sessions={"open_ms": 0, "day_length_ms": 0, "cycle_ms": 0}),
        lambda d: d.update(sessions={"open": 0}),
        lambda d: d["scenario"]["events"][0]["move"][0].update(symbols=["GONE"]),
    ],
)
def test_a_stored_run_that_does_not_fit_is_refused(damage):
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    data = run.to_dict()
    damage(data)
    with pytest.raises(BadRequest):
        ScenarioRun.from_dict(data, DEFAULT_UNIVERSE)


def test_market_time_never_goes_backwards_for_a_run():
    run = ScenarioRun(parse())
    run.start(START, SESSIONS)
    assert run.due(START + DAY).events
    assert run.due(START).events == () and run.to_dict()["clock_ms"] == START + DAY
