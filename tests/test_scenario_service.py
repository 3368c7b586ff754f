"""The scenario service on a real market with a fake clock: what it publishes when, one run at a time, skipping,
stopping, and the state file that lets a run go on after a restart."""

import json
import logging
import random
from pathlib import Path

import pytest

from domain.clock import FakeClock, MarketClock
from domain.errors import BadRequest, Conflict, NotFound
from domain.market import MarketSimulator
from domain.scenarios import ScenarioError, parse_scenario
from domain.universe import DEFAULT_UNIVERSE
from realtime import channels
from realtime.broker import InMemoryBroker
from realtime.protocol import iso_ms
from services.market import MarketService
from services.scenarios import NEWS_KEPT, UPLOADED, FileState, ScenarioService, load_scenarios

ROOT = Path(__file__).resolve().parent.parent
DAY_MS = 390_000  # a 6.5-minute session: one scenario minute is one second of market time
WEEK = """\
name = "Test week"
description = "Three events."

[[events]]
day = 1
time = "09:30"
[events.news]
headline = "First"
body = "NVTX slides."
symbols = ["NVTX"]
[[events.move]]
symbols = ["NVTX"]
percent = -20
over = "10m"

[[events]]
day = 1
time = "10:30"
[events.news]
headline = "Second"

[[events]]
day = 2
[events.news]
headline = "Third"
"""


class RecordingHub:
    """The hub as a service sees it: publications recorded with their offsets."""

    def __init__(self):
        self.published = []

    def publish(self, names, message_type, data_json, *, reply_to=None, offset=None):
        self.published.append((names, message_type, json.loads(data_json), offset))

    def channels(self, prefix):
        return []

    def news(self):
        return [data["headline"] for _, message_type, data, _ in self.published if message_type == "NEWS"]


class World:
    """A market on a fake wall clock, and a scenario service over it writing to `state_path`."""

    def __init__(self, state_path, *, start=1_800_000_000.0, seed=5, exchange_hours=False, shipped=None):
        self.wall = FakeClock(start)
        clock = MarketClock(self.wall)
        simulator = MarketSimulator(rng=random.Random(seed), start_market_ms=int(clock.now() * 1000),
                                    wall_ms=self.wall.now_ms(), day_length_ms=DAY_MS, exchange_hours=exchange_hours,
                                    closed_ms=210_000, history_days=5, minute_history_days=1)
        self.hub = RecordingHub()
        self.market = MarketService(simulator, clock, self.wall, broker=InMemoryBroker(), hub=self.hub)
        specs = self.market.specs()
        self.service = ScenarioService(
            market=self.market, hub=self.hub, clock=self.wall, state=FileState(state_path),
            shipped=shipped if shipped is not None else {"week": parse_scenario(WEEK, specs)})

    def run_for(self, seconds, step=1.0):
        """Ticks as the exchange runs them: the scenario's due news first, then the market."""
        for _ in range(round(seconds / step)):
            self.wall.advance(step)
            self.service.due()
            self.market.tick()


@pytest.fixture
def state_path(tmp_path):
    return tmp_path / "scenario.json"


@pytest.fixture
def world(state_path):
    return World(state_path)


def test_the_shipped_scenarios_load_from_the_scenarios_folder_by_file_name():
    shipped = load_scenarios(ROOT / "scenarios", DEFAULT_UNIVERSE)
    assert list(shipped) == ["crash-and-recovery", "earnings-season", "sector-rotation"]
    assert shipped["crash-and-recovery"].name == "Crash and recovery"


def test_a_scenario_file_that_does_not_parse_is_left_out_and_named_in_the_log(tmp_path, caplog):
    (tmp_path / "good.toml").write_text(WEEK)
    (tmp_path / "bad.toml").write_text('name = "Bad"\n[[events]]\nday = 0\n')
    (tmp_path / f"{UPLOADED}.toml").write_text(WEEK)
    with caplog.at_level(logging.ERROR, logger="services.scenarios"):
        shipped = load_scenarios(tmp_path, DEFAULT_UNIVERSE)
    assert list(shipped) == ["good"]
    assert "bad.toml is left out" in caplog.text and "event 1, day" in caplog.text
    assert f"{UPLOADED}.toml is left out" in caplog.text


def test_starting_publishes_the_news_already_due_once_on_the_market_channel_with_its_id_as_offset(world):
    started_at = world.market.market_ms
    current = world.service.start("week")
    assert current.name == "week" and current.run.started_at_ms == started_at
    assert world.hub.published == [(channels.MARKET, "NEWS", {
        "id": 1, "headline": "First", "body": "NVTX slides.", "symbols": ["NVTX"], "time": iso_ms(started_at),
        "scenario": "Test week"}, 1)]
    world.run_for(30)
    assert world.hub.news() == ["First"]
    world.run_for(31)
    assert world.hub.news() == ["First", "Second"]
    assert world.hub.published[-1][2]["time"] == iso_ms(started_at + 60_000)
    assert world.hub.published[-1][3] == 2


def test_a_long_step_publishes_every_event_it_spans_once_in_time_order(world):
    world.service.start("week")
    world.run_for(DAY_MS / 1000 + 5, step=DAY_MS / 1000 + 5)
    world.run_for(3)
    assert world.hub.news() == ["First", "Second", "Third"]
    assert [offset for *_, offset in world.hub.published] == [1, 2, 3]


def test_skip_brings_the_next_event_to_now_and_the_later_ones_forward_by_as_much(world):
    world.service.start("week")
    world.run_for(10)
    now = world.market.market_ms
    current = world.service.skip()
    assert world.hub.news() == ["First", "Second"]
    assert world.hub.published[-1][2]["time"] == iso_ms(now)
    third = current.run.preview()[2]
    assert not third.happened and third.at_ms == now + (DAY_MS - 60_000)
    assert current.run.next_event.number == 3


def test_one_scenario_runs_at_a_time_and_a_finished_one_is_replaced(world):
    with pytest.raises(Conflict, match="no scenario is running"):
        world.service.skip()
    with pytest.raises(Conflict, match="no scenario is running"):
        world.service.stop()
    world.service.start("week")
    with pytest.raises(Conflict, match="'Test week' is running: stop it"):
        world.service.start("week")
    world.service.skip()
    world.service.skip()
    with pytest.raises(Conflict, match="every event of the scenario has happened"):
        world.service.skip()
    world.run_for(11)  # the 10-minute move runs its course
    assert world.service.current().run.finished
    with pytest.raises(Conflict, match="no scenario is running"):
        world.service.skip()
    assert world.service.start("week").run.next_event.number == 2


def test_start_needs_a_known_name_or_the_text_of_a_scenario(world):
    with pytest.raises(NotFound, match="no scenario named 'nope'; scenarios: week"):
        world.service.start("nope")
    with pytest.raises(BadRequest, match="not both"):
        world.service.start()
    with pytest.raises(BadRequest, match="not both"):
        world.service.start("week", text=WEEK)
    assert world.service.current().run is None and world.hub.published == []


def test_a_scripted_move_lands_against_the_same_market_without_it(state_path, tmp_path):
    played, plain = World(state_path), World(tmp_path / "other.json")
    before = played.market.quote("NVTX").price
    played.service.start("week")
    for world in (played, plain):
        world.run_for(12)
    ratio = played.market.quote("NVTX").price / plain.market.quote("NVTX").price
    assert ratio == pytest.approx(0.80, abs=0.01)
    assert plain.market.quote("NVTX").price == pytest.approx(before, rel=0.05)


def test_stopping_ends_the_moves_as_if_the_scenario_had_never_run(state_path, tmp_path):
    stopped, plain = World(state_path), World(tmp_path / "other.json")
    stopped.service.start("week")
    assert stopped.service.stop().run is None
    for world in (stopped, plain):
        world.run_for(12)
    assert stopped.market.quotes() == plain.market.quotes()
    assert stopped.service.current().run is None


def test_an_upload_is_checked_in_full_replaces_the_last_one_and_can_be_started(world):
    with pytest.raises(ScenarioError) as refused:
        world.service.upload('name = "Mine"\n[[events]]\nday = 1\ntime = "17:00"\n[events.news]\nheadline = "x"\n'
                             'symbols = ["NVTZ"]\n')
    assert [str(p) for p in refused.value.problems] == [
        "line 2, event 1, time: 17:00 is outside the session: from 09:30 to before 16:00",
        "line 2, event 1, news.symbols: unknown symbol 'NVTZ' (did you mean NVTX?)"]
    assert [name for name, _ in world.service.catalogue()] == ["week"]
    world.service.upload(WEEK.replace("Test week", "Mine"))
    current = world.service.start(text=WEEK.replace("Test week", "Yours"))
    assert current.name == UPLOADED and current.run.scenario.name == "Yours"
    assert [(name, s.name) for name, s in world.service.catalogue()] == [("week", "Test week"), (UPLOADED, "Yours")]


def test_the_timeline_has_market_times_only_for_the_scenario_being_played(world):
    assert [entry.at_ms for entry in world.service.timeline("week")] == [None, None, None]
    world.service.start("week")
    assert [entry.happened for entry in world.service.timeline("week")] == [True, False, False]
    with pytest.raises(NotFound):
        world.service.timeline(UPLOADED)


def test_news_history_is_the_latest_items_oldest_first_serialized_once(world):
    assert world.service.news_history() is None
    many = 'name = "Many"\n' + "".join(f'[[events]]\nday = 1\n[events.news]\nheadline = "N{n}"\n'
                                       for n in range(1, NEWS_KEPT + 3))
    world.service.start(text=many)
    last, data_json = world.service.news_history()
    assert last == NEWS_KEPT + 2
    assert [item["headline"] for item in json.loads(data_json)["items"]] == [f"N{n}" for n in range(3, NEWS_KEPT + 3)]
    assert world.service.news_history()[1] is data_json


def test_a_restored_run_goes_on_from_the_trading_time_it_had_reached(state_path):
    before = World(state_path)
    before.service.upload(WEEK.replace("Test week", "Mine"))
    before.service.start("week")
    before.run_for(30)
    assert json.loads(state_path.read_text())["run"]["clock_ms"] == before.market.market_ms
    assert not state_path.with_name("scenario.json.tmp").exists()

    after = World(state_path, start=1_800_086_400.0, seed=9)  # a day later, a new market
    after.service.restore()
    current = after.service.current()
    now = after.market.market_ms
    assert current.name == "week" and after.hub.published == []
    assert [(e.happened, e.at_ms) for e in current.run.preview()][:2] == [(True, now - 30_000), (False, now + 30_000)]
    assert [name for name, _ in after.service.catalogue()] == ["week", UPLOADED]
    assert json.loads(after.service.news_history()[1])["items"][0]["headline"] == "First"
    after.run_for(31)
    assert after.hub.news() == ["Second"] and after.hub.published[-1][3] == 2


def test_progress_between_events_is_saved_every_few_seconds(state_path, world):
    world.service.start("week")
    saved = json.loads(state_path.read_text())["run"]["clock_ms"]
    world.run_for(4)
    assert json.loads(state_path.read_text())["run"]["clock_ms"] == saved
    world.run_for(1)
    assert json.loads(state_path.read_text())["run"]["clock_ms"] == world.market.market_ms == saved + 5_000


def test_a_restored_run_with_exchange_hours_falls_on_the_markets_sessions(state_path):
    before = World(state_path, exchange_hours=True)
    before.service.start("week")
    before.run_for(100)
    after = World(state_path, start=1_800_000_777.0, exchange_hours=True)
    after.service.restore()
    sessions, now = after.market.sessions(), after.market.market_ms
    third = after.service.current().run.preview()[2]  # day 2 at the open, 290 s of trading time away
    cycle = DAY_MS + 210_000
    assert not third.happened and (third.at_ms - sessions.open_ms) % cycle == 0
    assert now + 290_000 <= third.at_ms < now + 290_000 + cycle


@pytest.mark.parametrize("text", ["not json", "[]", '{"version": 9}', '{"version": 1, "news": []}',
                                  '{"version": 1, "news": [], "lastNewsId": 0, "uploaded": null, "name": "week", '
                                  '"run": {"scenario": {"name": "x"}}}'])
def test_a_state_file_that_cannot_be_used_is_logged_and_no_scenario_runs(state_path, caplog, text):
    state_path.write_text(text)
    world = World(state_path)
    with caplog.at_level(logging.ERROR, logger="services.scenarios"):
        world.service.restore()
    assert "is not usable" in caplog.text
    assert world.service.current().run is None
    world.service.start("week")  # and the next change writes a good one
    assert json.loads(state_path.read_text())["name"] == "week"


def test_a_state_file_that_cannot_be_written_is_logged_and_the_scenario_plays_on(tmp_path, caplog):
    world = World(tmp_path / "missing" / "scenario.json")
    with caplog.at_level(logging.ERROR, logger="services.scenarios"):
        world.service.start("week")
    assert "cannot save the scenario's state" in caplog.text
    world.run_for(61)
    assert world.hub.news() == ["First", "Second"]
