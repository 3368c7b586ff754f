"""The connection hub: admission limits, the indexes by endpoint and user, broadcast, idle detection, stats."""

import itertools
import json

import pytest

import realtime.hub
from domain.clock import FakeClock
from realtime.broker import InMemoryBroker
from realtime.hub import ConnectionHub, ConnectionRefused
from realtime.protocol import CloseCode, ErrorCode, iso_timestamp

MARKET = "market-data"
ORDERS = "orders"

_ids = itertools.count(1)


class FakeConnection:
    """Just the hub's view of a connection: ids, times, and a send that records and says whether it took."""

    def __init__(self, clock, endpoint=MARKET, user_id=None, accepts=True):
        self.session_id = f"s{next(_ids)}"
        self.endpoint = endpoint
        self.user_id = user_id
        self.opened_at = clock.now()
        self.last_inbound = clock.now()
        self.accepts = accepts
        self.is_open = True
        self.sent = []
        self.offsets = []
        self.closed = []

    def send_json(self, message_type, data_json, request_id=None):
        self.sent.append((message_type, data_json, request_id))
        return self.accepts

    def deliver(self, message_type, data_json, request_id, offset):
        self.offsets.append(offset)
        return self.send_json(message_type, data_json, request_id)

    def close(self, code, reason):
        self.closed.append((code, reason))


def make_hub(clock=None, max_total=100, max_per_user=10, broker=None):
    return ConnectionHub(clock=clock or FakeClock(), broker=broker or InMemoryBroker(), max_total=max_total,
                         max_per_user=max_per_user)


def signed_in(hub, clock, user_id, endpoint=MARKET):
    """Admit and bind the way the connection layer does: bind first, then remember the user on the connection."""
    conn = FakeConnection(clock, endpoint)
    hub.admit(conn)
    hub.bind_user(conn, user_id)
    conn.user_id = user_id
    return conn


# limits -----------------------------------------------------------------------


def test_admit_refuses_past_the_server_total_with_close_1013():
    clock = FakeClock()
    hub = make_hub(clock, max_total=3)
    for _ in range(3):
        hub.admit(FakeConnection(clock))
    with pytest.raises(ConnectionRefused) as caught:
        hub.admit(FakeConnection(clock))
    assert caught.value.close_code == CloseCode.TRY_AGAIN_LATER == 1013
    assert caught.value.code == ErrorCode.LIMIT_EXCEEDED
    assert "3" in caught.value.message
    assert len(hub) == 3


def test_a_freed_slot_can_be_taken_again():
    clock = FakeClock()
    hub = make_hub(clock, max_total=1)
    first = FakeConnection(clock)
    hub.admit(first)
    hub.remove(first)
    hub.admit(FakeConnection(clock))
    assert len(hub) == 1


def test_bind_user_refuses_past_the_per_user_limit_on_one_endpoint_with_close_4429():
    clock = FakeClock()
    hub = make_hub(clock, max_per_user=2)
    signed_in(hub, clock, "u1")
    signed_in(hub, clock, "u1")
    third = FakeConnection(clock)
    hub.admit(third)
    with pytest.raises(ConnectionRefused) as caught:
        hub.bind_user(third, "u1")
    assert caught.value.close_code == CloseCode.TOO_MANY == 4429
    assert caught.value.code == ErrorCode.LIMIT_EXCEEDED
    assert len(hub.of_user("u1")) == 2


def test_per_user_limit_does_not_touch_other_endpoints_or_other_users():
    clock = FakeClock()
    hub = make_hub(clock, max_per_user=2)
    signed_in(hub, clock, "u1", MARKET)
    signed_in(hub, clock, "u1", MARKET)
    signed_in(hub, clock, "u1", ORDERS)
    signed_in(hub, clock, "u1", ORDERS)
    signed_in(hub, clock, "u2", MARKET)
    assert len(hub.of_user("u1", MARKET)) == 2
    assert len(hub.of_user("u1", ORDERS)) == 2
    assert len(hub.of_user("u2")) == 1


def test_binding_the_same_connection_again_does_not_count_it_twice():
    clock = FakeClock()
    hub = make_hub(clock, max_per_user=1)
    conn = signed_in(hub, clock, "u1")
    hub.bind_user(conn, "u1")
    assert hub.of_user("u1") == [conn]


def test_a_closed_connection_frees_its_per_user_slot():
    clock = FakeClock()
    hub = make_hub(clock, max_per_user=1)
    hub.remove(signed_in(hub, clock, "u1"))
    signed_in(hub, clock, "u1")
    assert len(hub.of_user("u1")) == 1


# registry ---------------------------------------------------------------------


def test_connections_are_found_by_session_endpoint_and_user():
    clock = FakeClock()
    hub = make_hub(clock)
    market = signed_in(hub, clock, "u1", MARKET)
    orders = signed_in(hub, clock, "u1", ORDERS)
    anonymous = FakeConnection(clock, MARKET)
    hub.admit(anonymous)
    assert hub.get(market.session_id) is market
    assert set(hub.connections()) == {market, orders, anonymous}
    assert set(hub.connections(MARKET)) == {market, anonymous}
    assert hub.connections("risk-monitoring") == []
    assert set(hub.of_user("u1")) == {market, orders}
    assert hub.of_user("u1", ORDERS) == [orders]
    assert hub.of_user("nobody") == []


def test_remove_cleans_every_index():
    clock = FakeClock()
    hub = make_hub(clock)
    conn = signed_in(hub, clock, "u1", ORDERS)
    hub.remove(conn)
    assert len(hub) == 0
    assert hub.get(conn.session_id) is None
    assert hub.connections() == []
    assert hub.connections(ORDERS) == []
    assert hub.of_user("u1") == []
    assert hub.stats()["uniqueUsers"] == 0
    assert hub.stats()["totalConnections"] == 0


def test_remove_keeps_the_users_other_connections():
    clock = FakeClock()
    hub = make_hub(clock)
    first = signed_in(hub, clock, "u1")
    second = signed_in(hub, clock, "u1")
    hub.remove(first)
    assert hub.of_user("u1") == [second]
    assert hub.stats()["uniqueUsers"] == 1


def test_removing_twice_or_removing_a_stranger_is_harmless():
    clock = FakeClock()
    hub = make_hub(clock)
    conn = signed_in(hub, clock, "u1")
    hub.remove(conn)
    hub.remove(conn)
    hub.remove(FakeConnection(clock))
    assert hub.closed_count == 1


def test_connections_returns_a_copy_safe_to_change_while_iterating():
    clock = FakeClock()
    hub = make_hub(clock)
    for _ in range(5):
        hub.admit(FakeConnection(clock))
    for conn in hub.connections():
        hub.remove(conn)
    for conn in hub.connections(MARKET):
        hub.remove(conn)
    assert len(hub) == 0


# broadcast --------------------------------------------------------------------


def test_broadcast_serializes_once_and_sends_the_same_text_to_everyone(monkeypatch):
    clock = FakeClock()
    hub = make_hub(clock)
    conns = [FakeConnection(clock) for _ in range(4)]
    for conn in conns:
        hub.admit(conn)
    calls = []
    real_encode_data = realtime.hub.encode_data

    def counting_encode_data(data):
        calls.append(data)
        return real_encode_data(data)

    monkeypatch.setattr(realtime.hub, "encode_data", counting_encode_data)
    assert hub.broadcast("HEARTBEAT", {"serverTime": "2025-11-26T03:00:00.000Z"}) == 4
    assert len(calls) == 1
    texts = [conn.sent[0][1] for conn in conns]
    assert all(text is texts[0] for text in texts)
    assert json.loads(texts[0]) == {"serverTime": "2025-11-26T03:00:00.000Z"}
    assert all(conn.sent[0][0] == "HEARTBEAT" and conn.sent[0][2] is None for conn in conns)


def test_broadcast_counts_only_connections_that_took_the_message():
    clock = FakeClock()
    hub = make_hub(clock)
    good = [FakeConnection(clock) for _ in range(3)]
    gone = [FakeConnection(clock, accepts=False) for _ in range(2)]
    for conn in good + gone:
        hub.admit(conn)
    assert hub.broadcast("MARKET_STATUS", {"status": "PAUSED"}) == 3
    assert all(len(conn.sent) == 1 for conn in good + gone)


def test_broadcast_to_chosen_connections_only():
    clock = FakeClock()
    hub = make_hub(clock)
    market = FakeConnection(clock, MARKET)
    orders = FakeConnection(clock, ORDERS)
    hub.admit(market)
    hub.admit(orders)
    assert hub.broadcast("MARKET_OVERVIEW", {"indices": []}, hub.connections(MARKET)) == 1
    assert len(market.sent) == 1
    assert orders.sent == []


def test_broadcast_to_nobody_sends_nothing():
    hub = make_hub()
    assert hub.broadcast("HEARTBEAT", {}) == 0
    assert hub.broadcast("HEARTBEAT", {}, []) == 0


def test_broadcast_survives_a_connection_leaving_while_it_is_sent_to():
    clock = FakeClock()
    hub = make_hub(clock)

    class LeavingConnection(FakeConnection):
        def send_json(self, message_type, data_json, request_id=None):
            hub.remove(self)
            return False

    leaving = LeavingConnection(clock)
    staying = FakeConnection(clock)
    hub.admit(leaving)
    hub.admit(staying)
    assert hub.broadcast("HEARTBEAT", {}) == 1
    assert len(staying.sent) == 1
    assert hub.connections() == [staying]


# idle -------------------------------------------------------------------------


def test_idle_lists_connections_silent_for_longer_than_the_timeout():
    clock = FakeClock()
    hub = make_hub(clock)
    quiet = FakeConnection(clock)
    chatty = FakeConnection(clock)
    hub.admit(quiet)
    hub.admit(chatty)
    clock.advance(200)
    chatty.last_inbound = clock.now()
    clock.advance(100)
    assert hub.idle(300) == []
    clock.advance(0.001)
    assert hub.idle(300) == [quiet]
    clock.advance(200)
    assert set(hub.idle(300)) == {quiet, chatty}


def test_removed_connections_are_never_idle():
    clock = FakeClock()
    hub = make_hub(clock)
    conn = FakeConnection(clock)
    hub.admit(conn)
    hub.remove(conn)
    clock.advance(1000)
    assert hub.idle(300) == []


# stats ------------------------------------------------------------------------

STATS_FIELDS = {
    "totalConnections", "uniqueUsers", "connectionsByType", "connectionsByDuration",
    "averageConnectionDuration", "messagesSent", "messagesFailed", "sendSuccessRate",
    "averageResponseTimeMs", "errorRate", "timestamp",
}


def test_stats_has_every_field_of_the_protocol_page():
    assert STATS_FIELDS <= set(make_hub().stats())


def test_stats_of_an_empty_hub():
    clock = FakeClock()
    stats = make_hub(clock).stats()
    assert {key: stats[key] for key in STATS_FIELDS} == {
        "totalConnections": 0,
        "uniqueUsers": 0,
        "connectionsByType": {},
        "connectionsByDuration": {"<1m": 0, "1-5m": 0, "5-30m": 0, "30m+": 0},
        "averageConnectionDuration": 0.0,
        "messagesSent": 0,
        "messagesFailed": 0,
        "sendSuccessRate": 1.0,
        "averageResponseTimeMs": 0.0,
        "errorRate": 0.0,
        "timestamp": iso_timestamp(clock.now()),
    }
    json.dumps(stats)


def test_stats_count_connections_users_types_and_durations():
    clock = FakeClock()
    hub = make_hub(clock)
    signed_in(hub, clock, "u1", ORDERS)           # 40 min old at the end
    clock.advance(30 * 60)
    signed_in(hub, clock, "u1", MARKET)           # 10 min old
    clock.advance(8 * 60)
    signed_in(hub, clock, "u2", MARKET)           # 2 min old
    clock.advance(90)
    hub.admit(FakeConnection(clock, MARKET))      # 30 s old, anonymous
    clock.advance(30)
    stats = hub.stats()
    assert stats["totalConnections"] == 4
    assert stats["uniqueUsers"] == 2
    assert stats["connectionsByType"] == {MARKET: 3, ORDERS: 1}
    assert stats["connectionsByDuration"] == {"<1m": 1, "1-5m": 1, "5-30m": 1, "30m+": 1}
    assert stats["averageConnectionDuration"] == pytest.approx((2400 + 600 + 120 + 30) / 4)
    assert stats["timestamp"] == iso_timestamp(clock.now())


def test_stats_rates_come_from_the_recorded_messages():
    hub = make_hub()
    for ok in (True, True, True, False):
        hub.record_sent(ok)
    for _ in range(10):
        hub.record_received()
    hub.record_error()
    hub.record_response(2.0)
    hub.record_response(4.0)
    stats = hub.stats()
    assert stats["messagesSent"] == 3
    assert stats["messagesFailed"] == 1
    assert stats["sendSuccessRate"] == pytest.approx(0.75)
    assert stats["averageResponseTimeMs"] == pytest.approx(3.0)
    assert stats["errorRate"] == pytest.approx(0.1)


def test_stats_forget_a_removed_connection():
    clock = FakeClock()
    hub = make_hub(clock)
    conn = signed_in(hub, clock, "u1")
    clock.advance(120)
    hub.remove(conn)
    stats = hub.stats()
    assert stats["totalConnections"] == 0
    assert stats["uniqueUsers"] == 0
    assert stats["averageConnectionDuration"] == 0.0
    assert sum(stats["connectionsByDuration"].values()) == 0
    assert hub.closed_durations_total == pytest.approx(120)


# channels -----------------------------------------------------------------------


def channel_hub(clock=None):
    broker = InMemoryBroker()
    return make_hub(clock or FakeClock(), broker=broker), broker


def admitted(hub, clock, endpoint=MARKET):
    conn = FakeConnection(clock, endpoint)
    hub.admit(conn)
    return conn


def test_a_publication_reaches_the_channels_subscribers_once_the_broker_delivers_it():
    clock = FakeClock()
    hub, broker = channel_hub(clock)
    watcher, other = admitted(hub, clock), admitted(hub, clock)
    assert hub.subscribe(watcher, "risk:17")
    hub.subscribe(other, "risk:18")
    hub.publish("risk:17", "RISK_UPDATE", '{"portfolioId":"17"}')
    assert watcher.sent == []  # nothing is sent inside publish: it travels through the broker
    broker.drain()
    assert watcher.sent == [("RISK_UPDATE", '{"portfolioId":"17"}', None)]
    assert other.sent == []


def test_a_connection_on_several_of_a_publications_channels_gets_it_once():
    clock = FakeClock()
    hub, broker = channel_hub(clock)
    teacher, student = admitted(hub, clock), admitted(hub, clock)
    hub.subscribe(teacher, "risk:*")
    hub.subscribe(teacher, "risk:17")
    hub.subscribe(student, "risk:17")
    hub.publish(["risk:17", "risk:*"], "RISK_ALERT", "{}")
    broker.drain()
    assert teacher.sent == [("RISK_ALERT", "{}", None)]
    assert student.sent == [("RISK_ALERT", "{}", None)]


def test_a_reply_reaches_only_its_requester_with_the_request_id_in_order_with_the_pushes():
    clock = FakeClock()
    hub, broker = channel_hub(clock)
    origin, other = admitted(hub, clock, ORDERS), admitted(hub, clock, ORDERS)
    for conn in (origin, other):
        hub.subscribe(conn, "orders:user:5")
    hub.subscribe(origin, f"orders:session:{origin.session_id}")
    hub.publish("orders:user:5", "ORDER_FILLED", "{}", offset=7)
    hub.publish(["orders:user:5", f"orders:session:{origin.session_id}"], "ORDER_SUBMITTED", "{}",
                reply_to=(origin.session_id, "r1"), offset=8)
    broker.drain()
    assert origin.sent == [("ORDER_FILLED", "{}", None), ("ORDER_SUBMITTED", "{}", "r1")]
    assert other.sent == [("ORDER_FILLED", "{}", None), ("ORDER_SUBMITTED", "{}", None)]
    assert origin.offsets == other.offsets == [7, 8]


def test_unsubscribe_stops_a_channel_and_says_whether_it_was_held():
    clock = FakeClock()
    hub, broker = channel_hub(clock)
    conn = admitted(hub, clock)
    hub.subscribe(conn, "signals:NVTX:*")
    assert not hub.subscribe(conn, "signals:NVTX:*")
    assert hub.unsubscribe(conn, "signals:NVTX:*")
    assert not hub.unsubscribe(conn, "signals:NVTX:*")
    hub.publish("signals:NVTX:*", "SIGNAL_UPDATE", "{}")
    broker.drain()
    assert conn.sent == [] and hub.channels("signals:") == []


def test_channels_lists_a_family_or_one_portfolio_with_subscribers_on_this_node():
    clock = FakeClock()
    hub, _ = channel_hub(clock)
    first, second = admitted(hub, clock), admitted(hub, clock)
    hub.subscribe(first, "portfolio:17:positions")
    hub.subscribe(first, "portfolio:17:value:5000")
    hub.subscribe(second, "portfolio:17:value:5000")
    hub.subscribe(second, "portfolio:170:positions")
    hub.subscribe(second, "risk:17")
    assert hub.channels("portfolio:17:") == ["portfolio:17:positions", "portfolio:17:value:5000"]
    assert hub.channels("portfolio:") == sorted(["portfolio:17:positions", "portfolio:17:value:5000",
                                                 "portfolio:170:positions"])
    assert hub.channels("risk:") == ["risk:17"]
    hub.unsubscribe(first, "portfolio:17:value:5000")
    assert "portfolio:17:value:5000" in hub.channels("portfolio:17:")  # second still listens
    hub.unsubscribe(second, "portfolio:17:value:5000")
    assert hub.channels("portfolio:17:") == ["portfolio:17:positions"]


def test_a_connections_end_drops_every_subscription_it_held_and_tells_the_attached_holders():
    clock = FakeClock()
    hub, broker = channel_hub(clock)
    told = []

    class Holder:
        def remove(self, conn):
            told.append(conn.session_id)

    hub.attach(Holder())
    conn = admitted(hub, clock)
    for channel in ("risk:17", "risk:*", "portfolio:17:positions"):
        hub.subscribe(conn, channel)
    hub.remove(conn)
    assert told == [conn.session_id]
    assert hub.channels("risk:") == [] and hub.channels("portfolio:") == []
    hub.publish(["risk:17", "risk:*"], "RISK_ALERT", "{}")
    broker.drain()
    assert conn.sent == []


def test_subscriptions_lists_what_one_connection_holds():
    clock = FakeClock()
    hub, _ = channel_hub(clock)
    conn = admitted(hub, clock)
    for channel in ("signals:QBIT:*", "signals:NVTX:momentum,trend", "risk:17"):
        hub.subscribe(conn, channel)
    assert hub.subscriptions(conn, "signals:") == ["signals:NVTX:momentum,trend", "signals:QBIT:*"]
    assert hub.subscriptions(conn) == ["risk:17", "signals:NVTX:momentum,trend", "signals:QBIT:*"]


def test_a_connection_that_is_not_admitted_cannot_subscribe():
    clock = FakeClock()
    hub, _ = channel_hub(clock)
    assert not hub.subscribe(FakeConnection(clock), "risk:17")
    assert hub.channels("risk:") == []


def test_a_publication_to_a_channel_nobody_holds_reaches_nobody_and_a_closed_connection_is_skipped():
    clock = FakeClock()
    hub, broker = channel_hub(clock)
    gone = FakeConnection(clock, accepts=False)
    hub.admit(gone)
    live = admitted(hub, clock)
    for conn in (gone, live):
        hub.subscribe(conn, "market")
    hub.publish("nobody", "X", "{}")
    hub.publish("market", "MARKET_STATUS", '{"status":"PAUSED"}')
    broker.drain()
    assert live.sent == [("MARKET_STATUS", '{"status":"PAUSED"}', None)]


def test_broadcast_skips_a_connection_not_yet_greeted():
    """A gateway's connection waits for the engine's token check before CONNECTION_ESTABLISHED: a HEARTBEAT or a
    SERVICE_STATUS must not come first."""
    clock = FakeClock()
    hub = make_hub(clock)
    waiting, greeted = FakeConnection(clock), FakeConnection(clock)
    waiting.is_open = False
    hub.admit(waiting)
    hub.admit(greeted)
    assert hub.broadcast("HEARTBEAT", {}) == 1
    assert waiting.sent == [] and [m[0] for m in greeted.sent] == ["HEARTBEAT"]
