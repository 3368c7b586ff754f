"""The running market: ticks published on the broker, status changes on the market channel, controls validated."""

import json
import random

import pytest

from domain.clock import FakeClock, MarketClock
from domain.errors import BadRequest
from domain.market import MarketSimulator
from realtime import channels
from realtime.broker import InMemoryBroker
from realtime.fanout import QUOTES, decode_quotes
from realtime.protocol import encode_data
from realtime.wire import market as wire
from services.market import MarketService

DAY_MS = 60_000


class RecordingHub:
    """The hub as a service sees it: publications are recorded, nobody listens."""

    def __init__(self):
        self.published = []

    def publish(self, names, message_type, data_json, **_):
        self.published.append((names, message_type, json.loads(data_json)))

    def channels(self, prefix):
        return []

    def statuses(self):
        return [data for names, message_type, data in self.published if message_type == "MARKET_STATUS"]


@pytest.fixture
def world():
    wall = FakeClock(1_800_000_000.0)
    clock = MarketClock(wall)
    simulator = MarketSimulator(rng=random.Random(5), start_market_ms=int(clock.now() * 1000), wall_ms=wall.now_ms(),
                                day_length_ms=DAY_MS, exchange_hours=True, closed_ms=30_000,
                                history_days=30, minute_history_days=1)
    broker, hub = InMemoryBroker(), RecordingHub()
    ticks = []
    broker.subscribe(QUOTES, lambda channel, message: ticks.append(decode_quotes(message)))
    return wall, MarketService(simulator, clock, wall, broker=broker, hub=hub), broker, ticks, hub


def test_tick_publishes_each_changed_quote_as_wire_json_with_the_market_version(world):
    wall, market, broker, ticks, _ = world
    wall.advance(1)
    tick = market.tick()
    broker.drain()
    assert tick.version == market.version
    assert ticks == [(tick.version, {q.symbol: encode_data(wire.quote(q)) for q in tick.quotes})]
    assert {q.symbol for q in tick.quotes} == {s.symbol for s in market.specs()}
    assert all(q is market.quote(q.symbol) for q in tick.quotes)


def test_every_current_quote_can_be_published_for_a_fan_out_that_starts_now(world):
    _, market, broker, ticks, _ = world
    market.publish_quotes()
    broker.drain()
    assert ticks == [(market.version, {q.symbol: encode_data(wire.quote(q)) for q in market.quotes().values()})]


def test_paused_market_publishes_nothing_until_resumed(world):
    wall, market, broker, ticks, hub = world
    market.pause()
    wall.advance(5)
    assert market.tick() is None
    broker.drain()
    assert ticks == []
    assert hub.statuses()[-1]["status"] == "PAUSED"
    market.resume()
    wall.advance(1)
    assert market.tick() is not None
    assert hub.statuses()[-1]["status"] == "OPEN" and hub.statuses()[-1]["event"] == {"action": "RESUME"}
    assert {names for names, _, _ in hub.published} == {channels.MARKET}


def test_exchange_hours_announce_close_and_reopen_once_each(world):
    wall, market, _, _, hub = world
    for _ in range(100):  # one second steps across a 60 s session, a 30 s close, and the next session
        wall.advance(1)
        market.tick()
    statuses = hub.statuses()
    assert [s["event"]["action"] for s in statuses] == ["CLOSE", "OPEN"]
    assert statuses[0]["status"] == "CLOSED" and statuses[1]["status"] == "OPEN"


@pytest.mark.parametrize("speed", [0, -1, 20_000])
def test_speed_out_of_range_is_bad_request(world, speed):
    _, market, _, _, _ = world
    with pytest.raises(BadRequest):
        market.set_speed(speed)


def test_shock_moves_a_sector_and_announces_it(world):
    _, market, _, _, hub = world
    sector = market.specs()[0].sector
    members = [s.symbol for s in market.specs() if s.sector == sector]
    before = {s: market.quote(s).price for s in members}
    status = market.shock(-10, sector=sector)
    for symbol in members:
        assert market.quote(symbol).price == pytest.approx(before[symbol] * 0.9, rel=0.01)
    assert hub.statuses()[-1] == json.loads(encode_data(status))
    assert status["event"]["action"] == "SHOCK" and sorted(status["event"]["symbols"]) == sorted(members)


def test_overview_is_the_market_overview_with_status_speed_and_clock_last(world):
    wall, market, _, _, hub = world
    wall.advance(1)
    market.tick()
    market.set_speed(120)
    data = market.overview()
    assert list(data) == ["indices", "topGainers", "topLosers", "mostActive", "advancers", "decliners", "unchanged",
                          "marketStatus", "speed", "marketTime"]  # fmt: skip
    assert data["marketStatus"] == "OPEN" and data["speed"] == 120
    assert data["marketTime"] == int(market.clock.now() * 1000)
    assert [i["symbol"] for i in data["indices"]] == ["SQX", "SQTECH", "SQVAL"]
    assert data["advancers"] + data["decliners"] + data["unchanged"] == len(market.specs())
    market.publish_overview()
    assert hub.published[-1] == (channels.MARKET, "MARKET_OVERVIEW", data)


def test_the_overview_follows_every_tick_pause_and_speed_and_always_carries_the_clock_now(world):
    """It is built once per tick for the many connections that ask, but never goes stale."""
    wall, market, _, _, _ = world
    wall.advance(1)
    market.tick()
    first = market.overview()
    wall.advance(0.1)
    again = market.overview()
    assert again["marketTime"] == first["marketTime"] + 100 and again["indices"] == first["indices"]
    market.shock(-10, symbols=[spec.symbol for spec in market.specs()])
    shocked = market.overview()
    assert shocked["indices"] != first["indices"] and shocked["decliners"] > first["decliners"]
    market.pause()
    assert market.overview()["marketStatus"] == "PAUSED"
    market.resume()
    market.set_speed(60)
    assert (market.overview()["marketStatus"], market.overview()["speed"]) == ("OPEN", 60)
