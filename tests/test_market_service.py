"""The running market: ticks published on the broker, status changes announced, controls validated."""

import random

import pytest

from domain.clock import FakeClock, MarketClock
from domain.errors import BadRequest
from domain.market import MarketSimulator
from realtime.pubsub import InMemoryBroker
from services.market import STATUS, TICKS, MarketService

DAY_MS = 60_000


@pytest.fixture
def world():
    wall = FakeClock(1_800_000_000.0)
    clock = MarketClock(wall)
    simulator = MarketSimulator(rng=random.Random(5), start_market_ms=int(clock.now() * 1000), wall_ms=wall.now_ms(),
                                day_length_ms=DAY_MS, exchange_hours=True, closed_ms=30_000,
                                history_days=30, minute_history_days=1)
    broker = InMemoryBroker()
    ticks, statuses = [], []
    broker.subscribe(TICKS, ticks.append)
    broker.subscribe(STATUS, statuses.append)
    return wall, MarketService(simulator, clock, wall, broker), ticks, statuses


def test_tick_publishes_the_changed_quotes_with_the_market_version(world):
    wall, market, ticks, _ = world
    wall.advance(1)
    tick = market.tick()
    assert ticks == [tick]
    assert tick.version == market.simulator.version
    assert {q.symbol for q in tick.quotes} == {s.symbol for s in market.simulator.specs()}
    assert all(q is market.simulator.quote(q.symbol) for q in tick.quotes)


def test_paused_market_publishes_nothing_until_resumed(world):
    wall, market, ticks, statuses = world
    market.pause()
    wall.advance(5)
    assert market.tick() is None and ticks == []
    assert statuses[-1]["status"] == "PAUSED"
    market.resume()
    wall.advance(1)
    assert market.tick() is not None
    assert statuses[-1]["status"] == "OPEN" and statuses[-1]["event"] == {"action": "RESUME"}


def test_exchange_hours_announce_close_and_reopen_once_each(world):
    wall, market, _, statuses = world
    for _ in range(100):  # one second steps across a 60 s session, a 30 s close, and the next session
        wall.advance(1)
        market.tick()
    actions = [s["event"]["action"] for s in statuses]
    assert actions == ["CLOSE", "OPEN"]
    assert statuses[0]["status"] == "CLOSED" and statuses[1]["status"] == "OPEN"


@pytest.mark.parametrize("speed", [0, -1, 20_000])
def test_speed_out_of_range_is_bad_request(world, speed):
    _, market, _, _ = world
    with pytest.raises(BadRequest):
        market.set_speed(speed)


def test_shock_moves_a_sector_and_announces_it(world):
    _, market, _, statuses = world
    sector = market.simulator.specs()[0].sector
    members = [s.symbol for s in market.simulator.specs() if s.sector == sector]
    before = {s: market.simulator.quote(s).price for s in members}
    market.shock(-10, sector=sector)
    for symbol in members:
        assert market.simulator.quote(symbol).price == pytest.approx(before[symbol] * 0.9, rel=0.01)
    assert statuses[-1]["event"]["action"] == "SHOCK" and sorted(statuses[-1]["event"]["symbols"]) == sorted(members)


def test_overview_is_the_market_overview_with_status_speed_and_clock_last(world):
    wall, market, _, _ = world
    wall.advance(1)
    market.tick()
    market.set_speed(120)
    data = market.overview()
    assert list(data) == ["indices", "topGainers", "topLosers", "mostActive", "advancers", "decliners", "unchanged",
                          "marketStatus", "speed", "marketTime"]  # fmt: skip
    assert data["marketStatus"] == "OPEN" and data["speed"] == 120
    assert data["marketTime"] == int(market.clock.now() * 1000)
    assert [i["symbol"] for i in data["indices"]] == market.simulator.index_symbols()
    assert data["advancers"] + data["decliners"] + data["unchanged"] == len(market.simulator.specs())
