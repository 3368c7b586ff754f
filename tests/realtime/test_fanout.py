"""Real-time quote fan-out: changed quotes only, one shared frame per subscription, coalescing, slow consumers."""

import itertools
import json
import random

import pytest

from domain.market import MarketSimulator
from realtime.broker import InMemoryBroker
from realtime.fanout import (
    DEFAULT_INTERVAL_MS,
    MIN_INTERVAL_MS,
    QUOTES,
    QuoteFanout,
    decode_quotes,
    encode_quotes,
)
from realtime.protocol import CloseCode, encode_data
from realtime.wire import market as wire_market

SYMBOLS = ("AAPL", "MSFT", "GOOG", "TSLA")

_ids = itertools.count(1)


class FakeMarket:
    """Prices by symbol and a version that moves by one per tick; each tick's changed quotes go to its listeners as
    wire JSON (the market's side of the broker)."""

    def __init__(self, symbols=SYMBOLS):
        self.version = 0
        self.prices = dict.fromkeys(symbols, 100.0)
        self.listeners = []

    def tick(self, *symbols, step=1.0):
        self.version += 1
        for symbol in symbols:
            self.prices[symbol] += step
        changed = {symbol: json.dumps({"symbol": symbol, "price": self.prices[symbol]}) for symbol in symbols}
        for listener in self.listeners:
            listener(self.version, changed)


class FakeConnection:
    """Records frames and closes; its unsent backlog is whatever the test sets."""

    def __init__(self, accepts=True):
        self.session_id = f"s{next(_ids)}"
        self.backlog = 0
        self.accepts = accepts
        self.raw = []
        self.closed = []

    def buffered_bytes(self):
        return self.backlog

    def send_json(self, message_type, data_json, request_id=None, *, backlog=None):
        self.raw.append((message_type, data_json, request_id))
        return self.accepts

    def close(self, code, reason):
        self.closed.append((code, reason))

    @property
    def frames(self):
        return [json.loads(data_json) for _, data_json, _ in self.raw]

    def prices(self, frame_index=-1):
        return {quote["symbol"]: quote["price"] for quote in self.frames[frame_index]["quotes"]}


def fanout_for(market, **options):
    fanout = QuoteFanout(**options)
    market.listeners.append(fanout.update)
    return fanout


def setup(*connections, symbols=("AAPL", "MSFT", "GOOG"), interval=1000, **options):
    market = FakeMarket()
    fanout = fanout_for(market, **options)
    for conn in connections:
        fanout.subscribe(conn, symbols, interval)
    return market, fanout


# what is sent -------------------------------------------------------------------


def test_connection_gets_every_changed_subscribed_quote_in_one_frame():
    conn = FakeConnection()
    market, fanout = setup(conn)
    market.tick("AAPL", "TSLA")
    market.tick("MSFT")
    assert fanout.flush(1000) == 1
    assert len(conn.raw) == 1
    message_type, data_json, request_id = conn.raw[0]
    assert message_type == "REAL_TIME_UPDATE"
    assert request_id is None
    assert conn.prices() == {"AAPL": 101.0, "MSFT": 101.0}
    assert [quote["symbol"] for quote in conn.frames[0]["quotes"]] == ["AAPL", "MSFT"]


def test_nothing_is_sent_when_the_market_has_not_moved():
    conn = FakeConnection()
    _, fanout = setup(conn)
    assert fanout.flush(1000) == 0
    assert conn.raw == []


def test_nothing_is_sent_when_only_unsubscribed_symbols_changed():
    conn = FakeConnection()
    market, fanout = setup(conn)
    market.tick("TSLA")
    assert fanout.flush(1000) == 0
    assert conn.raw == []


def test_next_frame_carries_only_what_changed_since_the_last_one():
    conn = FakeConnection()
    market, fanout = setup(conn)
    market.tick("AAPL", "MSFT")
    fanout.flush(1000)
    assert fanout.flush(1000) == 0
    market.tick("GOOG")
    market.tick("GOOG")
    fanout.flush(1000)
    assert len(conn.raw) == 2
    assert conn.prices() == {"GOOG": 102.0}


def test_changes_made_before_subscribing_are_not_pushed():
    market = FakeMarket()
    fanout = fanout_for(market)
    market.tick("AAPL")
    conn = FakeConnection()
    fanout.subscribe(conn, ["AAPL"], 1000)
    assert fanout.flush(1000) == 0
    market.tick("AAPL")
    fanout.flush(1000)
    assert conn.prices() == {"AAPL": 102.0}


def test_a_refused_send_is_not_counted():
    conn = FakeConnection(accepts=False)
    market, fanout = setup(conn)
    market.tick("AAPL")
    assert fanout.flush(1000) == 0
    assert len(conn.raw) == 1


def test_flushing_an_interval_nobody_uses_sends_nothing():
    conn = FakeConnection()
    market, fanout = setup(conn)
    market.tick("AAPL")
    assert fanout.flush(250) == 0
    assert conn.raw == []


# intervals ----------------------------------------------------------------------


@pytest.mark.parametrize("requested, interval", [
    (None, DEFAULT_INTERVAL_MS),
    (0, MIN_INTERVAL_MS),
    (-5, MIN_INTERVAL_MS),
    (50, MIN_INTERVAL_MS),
    (99, MIN_INTERVAL_MS),
    (100, 100),
    (250, 250),
    (1000, 1000),
    (60_000, 60_000),
])
def test_normalise_interval_raises_short_intervals_to_the_minimum(requested, interval):
    assert QuoteFanout.normalise_interval(requested) == interval


def test_default_and_minimum_intervals_follow_the_protocol():
    assert (DEFAULT_INTERVAL_MS, MIN_INTERVAL_MS) == (1000, 100)


def test_run_due_flushes_each_interval_on_its_own_schedule():
    fast, slow = FakeConnection(), FakeConnection()
    market = FakeMarket()
    fanout = fanout_for(market)
    fanout.subscribe(fast, ["AAPL"], 200)
    fanout.subscribe(slow, ["AAPL"], 1000)
    market.tick("AAPL")
    assert fanout.run_due(0) == 0          # first sight of an interval only schedules it
    assert fanout.run_due(199) == 0
    assert fanout.run_due(200) == 1
    assert (len(fast.raw), len(slow.raw)) == (1, 0)
    market.tick("AAPL")
    assert fanout.run_due(300) == 0
    assert fanout.run_due(400) == 1
    assert fanout.run_due(1000) == 1
    assert (len(fast.raw), len(slow.raw)) == (2, 1)
    assert slow.prices() == {"AAPL": 102.0}


def test_a_symbol_subscribed_again_moves_to_the_new_interval():
    conn = FakeConnection()
    market, fanout = setup(conn, symbols=["AAPL", "MSFT"], interval=1000)
    fanout.subscribe(conn, ["AAPL"], 200)
    assert fanout.active(conn) == ["AAPL", "MSFT"]
    market.tick("AAPL", "MSFT")
    fanout.flush(200)
    assert conn.prices() == {"AAPL": 101.0}
    fanout.flush(1000)
    assert conn.prices() == {"MSFT": 101.0}
    assert len(conn.raw) == 2


def test_moving_every_symbol_leaves_nothing_at_the_old_interval():
    conn = FakeConnection()
    market, fanout = setup(conn, symbols=["AAPL"], interval=1000)
    fanout.subscribe(conn, ["AAPL"], 500)
    market.tick("AAPL")
    assert fanout.flush(1000) == 0
    assert fanout.flush(500) == 1
    assert fanout.active(conn) == ["AAPL"]


def test_subscribing_again_at_the_same_interval_adds_symbols():
    conn = FakeConnection()
    market, fanout = setup(conn, symbols=["AAPL"])
    fanout.subscribe(conn, ["MSFT", "AAPL"], 1000)
    assert fanout.active(conn) == ["AAPL", "MSFT"]
    market.tick("AAPL", "MSFT")
    fanout.flush(1000)
    assert conn.prices() == {"AAPL": 101.0, "MSFT": 101.0}


# unsubscribe / remove -------------------------------------------------------------


def test_unsubscribing_some_symbols_keeps_the_rest():
    conn = FakeConnection()
    market, fanout = setup(conn)
    fanout.unsubscribe(conn, ["AAPL", "TSLA"])
    assert fanout.active(conn) == ["GOOG", "MSFT"]
    market.tick("AAPL", "MSFT")
    fanout.flush(1000)
    assert conn.prices() == {"MSFT": 101.0}


def test_unsubscribing_everything_stops_all_updates():
    conn = FakeConnection()
    market, fanout = setup(conn)
    fanout.subscribe(conn, ["TSLA"], 200)
    fanout.unsubscribe(conn)
    assert fanout.active(conn) == []
    market.tick(*SYMBOLS)
    assert fanout.flush(1000) + fanout.flush(200) == 0
    assert conn.raw == []


def test_unsubscribing_across_intervals():
    conn = FakeConnection()
    market, fanout = setup(conn, symbols=["AAPL", "MSFT"])
    fanout.subscribe(conn, ["GOOG"], 200)
    fanout.unsubscribe(conn, ["MSFT", "GOOG"])
    assert fanout.active(conn) == ["AAPL"]
    market.tick("AAPL", "MSFT", "GOOG")
    assert fanout.flush(200) == 0
    fanout.flush(1000)
    assert conn.prices() == {"AAPL": 101.0}


def test_remove_forgets_the_connection_and_leaves_others_alone():
    gone, staying = FakeConnection(), FakeConnection()
    market, fanout = setup(gone, staying)
    fanout.remove(gone)
    fanout.remove(gone)
    fanout.remove(FakeConnection())
    assert fanout.active(gone) == []
    assert fanout.subscriber_count() == 1
    market.tick("AAPL")
    assert fanout.flush(1000) == 1
    assert gone.raw == []
    assert staying.prices() == {"AAPL": 101.0}


def test_active_lists_symbols_sorted_across_intervals():
    conn = FakeConnection()
    fanout = fanout_for(FakeMarket())
    fanout.subscribe(conn, ["MSFT", "AAPL"], 1000)
    fanout.subscribe(conn, ["TSLA", "GOOG"], 100)
    assert fanout.active(conn) == ["AAPL", "GOOG", "MSFT", "TSLA"]
    assert fanout.active(FakeConnection()) == []


# sharing ------------------------------------------------------------------------------


def test_connections_with_the_same_subscription_share_one_built_frame():
    first, second, third = FakeConnection(), FakeConnection(), FakeConnection()
    market, fanout = setup(first, second, third)
    market.tick("AAPL", "GOOG")
    assert fanout.flush(1000) == 3
    assert fanout.frames_built == 1
    texts = [conn.raw[0][1] for conn in (first, second, third)]
    assert all(text is texts[0] for text in texts)


def test_different_subscriptions_get_their_own_frames():
    first, second = FakeConnection(), FakeConnection()
    market = FakeMarket()
    fanout = fanout_for(market)
    fanout.subscribe(first, ["AAPL"], 1000)
    fanout.subscribe(second, ["AAPL", "MSFT"], 1000)
    market.tick("AAPL", "MSFT")
    fanout.flush(1000)
    assert fanout.frames_built == 2
    assert first.prices() == {"AAPL": 101.0}
    assert second.prices() == {"AAPL": 101.0, "MSFT": 101.0}


def test_frames_are_joined_from_the_quote_json_the_market_published_without_serializing_again(monkeypatch):
    monkeypatch.setattr("realtime.fanout.encode_data", lambda data: pytest.fail("the fan-out serialized a quote"))
    conns = [FakeConnection() for _ in range(3)]
    market = FakeMarket()
    fanout = fanout_for(market)
    fanout.subscribe(conns[0], ["AAPL"], 100)
    fanout.subscribe(conns[1], ["AAPL", "MSFT"], 1000)
    fanout.subscribe(conns[2], ["AAPL", "MSFT", "GOOG"], 1000)
    market.tick("AAPL", "MSFT")
    fanout.flush(100)
    fanout.flush(1000)
    published = json.dumps({"symbol": "AAPL", "price": 101.0})
    assert all(published in conn.raw[0][1] for conn in conns)
    assert conns[2].prices() == {"AAPL": 101.0, "MSFT": 101.0}


# the broker's ticks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator():
    return MarketSimulator(rng=random.Random(3), start_market_ms=1_764_126_000_000, history_days=3,
                           minute_history_days=1)


def test_a_tick_carries_each_changed_quote_as_its_exact_wire_json(simulator):
    quotes = [simulator.quote("NVTX"), simulator.quote("QBIT")]
    version, by_symbol = decode_quotes(encode_quotes(41, quotes))
    assert version == 41
    assert by_symbol == {q.symbol: encode_data(wire_market.quote(q)) for q in quotes}


def test_the_fan_out_learns_prices_from_ticks_published_on_the_broker(simulator):
    broker = InMemoryBroker()
    fanout = QuoteFanout()
    broker.subscribe(QUOTES, fanout.on_quotes)
    conn = FakeConnection()
    fanout.subscribe(conn, ["NVTX", "QBIT"], 1000)
    broker.publish(QUOTES, encode_quotes(1, [simulator.quote("NVTX")]))
    assert fanout.flush(1000) == 0  # not delivered yet
    broker.drain()
    assert fanout.flush(1000) == 1
    assert conn.frames[0] == {"quotes": [wire_market.quote(simulator.quote("NVTX"))]}


# slow consumers -------------------------------------------------------------------------


def test_slow_reader_is_skipped_then_gets_only_the_latest_quotes():
    slow, fast = FakeConnection(), FakeConnection()
    market, fanout = setup(slow, fast, soft_buffer=1000, hard_buffer=10_000)
    slow.backlog = 1001
    market.tick("AAPL")                      # AAPL 101
    fanout.flush(1000)
    market.tick("AAPL", "MSFT")              # AAPL 102
    fanout.flush(1000)
    assert slow.raw == []
    assert len(fast.raw) == 2
    slow.backlog = 0
    market.tick("GOOG")
    assert fanout.flush(1000) == 2
    assert len(slow.raw) == 1
    assert slow.frames[0]["quotes"] == [
        {"symbol": "AAPL", "price": 102.0},
        {"symbol": "GOOG", "price": 101.0},
        {"symbol": "MSFT", "price": 101.0},
    ]
    assert fast.prices() == {"GOOG": 101.0}
    assert slow.closed == []


def test_backlog_at_the_soft_limit_still_gets_frames():
    conn = FakeConnection()
    market, fanout = setup(conn, soft_buffer=1000, hard_buffer=10_000)
    conn.backlog = 1000
    market.tick("AAPL")
    assert fanout.flush(1000) == 1


def test_backlog_between_soft_and_hard_limit_is_not_closed():
    conn = FakeConnection()
    market, fanout = setup(conn, soft_buffer=1000, hard_buffer=10_000)
    conn.backlog = 10_000
    market.tick("AAPL")
    assert fanout.flush(1000) == 0
    assert conn.closed == []


def test_reader_past_the_hard_limit_is_closed_4008():
    slow, fast = FakeConnection(), FakeConnection()
    market, fanout = setup(slow, fast, soft_buffer=1000, hard_buffer=10_000)
    slow.backlog = 10_001
    market.tick("AAPL")
    assert fanout.flush(1000) == 1
    assert slow.raw == []
    assert len(slow.closed) == 1
    assert slow.closed[0][0] == CloseCode.SLOW_CONSUMER == 4008
    assert fast.prices() == {"AAPL": 101.0}


def test_a_slow_reader_does_not_hold_back_a_shared_frame():
    slow, fast = FakeConnection(), FakeConnection()
    market, fanout = setup(slow, fast, soft_buffer=1000)
    slow.backlog = 5000
    market.tick("AAPL")
    fanout.flush(1000)
    slow.backlog = 0
    market.tick("MSFT")
    fanout.flush(1000)
    assert slow.prices() == {"AAPL": 101.0, "MSFT": 101.0}
    assert fast.prices() == {"MSFT": 101.0}
    assert fanout.frames_built == 3


def test_a_reader_behind_for_the_stall_time_on_end_is_closed_4008_and_one_that_catches_up_is_not():
    stalled, recovering = FakeConnection(), FakeConnection()
    market, fanout = setup(stalled, recovering, soft_buffer=1000, hard_buffer=10_000, stall_ms=10_000)
    stalled.backlog = recovering.backlog = 1001
    for second in range(10):
        market.tick("AAPL")
        fanout.flush(1000, now_ms=second * 1000)
        if second == 5:
            recovering.backlog = 0  # it read: the clock starts again when it falls behind next
        if second == 6:
            recovering.backlog = 1001
    assert stalled.closed == [] and recovering.closed == []
    market.tick("AAPL")
    fanout.flush(1000, now_ms=10_000)
    assert stalled.closed == [(4008, "slow consumer")]
    assert recovering.closed == []


def test_a_subscriber_at_the_tick_interval_gets_every_tick_though_ticks_jitter():
    """Flushed right after each tick, with half a tick of slack: 4 updates a second asked, 4 fresh ones sent."""
    conn = FakeConnection()
    market = FakeMarket()
    fanout = fanout_for(market, tick_ms=250)
    fanout.subscribe(conn, ["AAPL"], 250)
    fanout.run_due(0)
    for now_ms in (249, 498, 760, 1001, 1240, 1502):  # a 250 ms tick, arriving a little early or late
        market.tick("AAPL")
        assert fanout.run_due(now_ms) == 1, now_ms
    assert len(conn.raw) == 6


def test_an_interval_of_four_ticks_is_sent_a_quarter_a_tick_each_connection_once_an_interval_with_fresh_quotes():
    """The burst a tick sends is 1/4 of the subscribers, so the last one waits a quarter as long."""
    connections = [FakeConnection() for _ in range(8)]
    market, fanout = setup(*connections, symbols=("AAPL",), interval=1000, tick_ms=250)
    fanout.run_due(0)
    per_tick = []
    for now_ms in range(250, 3001, 250):
        market.tick("AAPL")
        per_tick.append(fanout.run_due(now_ms))
    assert per_tick[3:] == [2] * 9  # from the first interval on: two of the eight every tick
    counts = [len(conn.raw) for conn in connections]
    assert max(counts) - min(counts) <= 1 and sum(counts) == sum(per_tick)
    for conn in connections:  # each frame carries the quote its tick just made, never an older one
        assert [frame["quotes"][0]["price"] for frame in conn.frames] == sorted(
            {frame["quotes"][0]["price"] for frame in conn.frames})


def test_a_phase_keeps_its_cadence_while_empty_so_a_newcomer_is_not_bunched_with_the_others():
    stay, leaver, newcomer = FakeConnection(), FakeConnection(), FakeConnection()
    market, fanout = setup(stay, leaver, symbols=("AAPL",), interval=500, tick_ms=250)  # one in each phase
    fanout.run_due(0)
    fanout.unsubscribe(leaver)
    sent = []
    for now_ms in range(250, 1751, 250):
        if now_ms == 1000:
            fanout.subscribe(newcomer, ["AAPL"], 500)  # into the phase the leaver emptied
        market.tick("AAPL")
        sent.append(fanout.run_due(now_ms))
    assert sent == [0, 1, 0, 1, 1, 1, 1]  # never two in one tick
    assert (len(stay.raw), len(newcomer.raw)) == (3, 2)
