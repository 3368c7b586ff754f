"""The engine's view of the cluster: per-user limits across processes, forgetting silent ones, stats added up."""

from realtime.hub import DURATION_BUCKETS
from services.cluster.view import ClusterView


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def stats(connections, by_type, received=0, response_ms=0.0):
    return {"totalConnections": connections, "uniqueUsers": 0, "connectionsByType": by_type,
            "connectionsByDuration": {label: 0 for _, label in DURATION_BUCKETS} | {"<1m": connections},
            "averageConnectionDuration": 10.0, "messagesSent": 0, "messagesFailed": 0, "messagesReceived": received,
            "sendSuccessRate": 1.0, "averageResponseTimeMs": response_ms, "errorRate": 0.0, "timestamp": "t"}


def counters(sent=0, received=0, errors=0):
    return {"messagesIn": received, "messagesOut": sent, "messagesFailed": 0, "errors": errors,
            "slowConsumerCloses": 0}


def test_a_user_limit_counts_connections_on_every_process():
    view = ClusterView(max_per_user=2)
    assert view.bind("a", "s1", "7", "orders") and view.bind("b", "s2", "7", "orders")
    assert not view.bind("b", "s3", "7", "orders")  # a third, on either process
    assert view.bind("b", "s3", "7", "portfolio") and view.bind("a", "s4", "8", "orders")  # per endpoint, per user
    assert view.bind("a", "s1", "7", "orders")  # the same connection again (a repeated AUTH) is no new one
    view.unbind("s1")
    assert view.bind("b", "s3b", "7", "orders")


def test_a_silent_process_is_forgotten_with_its_connections():
    clock = Clock()
    view = ClusterView(max_per_user=1, silent_s=5, monotonic=clock)
    view.heard("a", stats(1, {"orders": 1}), counters())
    view.bind("a", "s1", "7", "orders")
    clock.now += 3
    view.heard("b", stats(0, {}), counters())
    clock.now += 3
    assert view.sweep() == ["a"]
    assert view.bind("b", "s2", "7", "orders")  # a's connection no longer counts


def test_a_process_telling_its_connections_again_replaces_what_was_known_of_it():
    view = ClusterView(max_per_user=1)
    view.bind("a", "s1", "7", "orders")
    view.heard("a", stats(1, {"orders": 1}), counters(), sessions=[["s2", "8", "orders"]])
    assert view.bind("b", "s3", "7", "orders") and not view.bind("b", "s4", "8", "orders")


def test_stats_add_up_every_live_process():
    view = ClusterView(max_per_user=10)
    view.heard("a", stats(3, {"orders": 2, "market-data": 1}, received=10, response_ms=2.0), counters(5, 10, 1))
    view.heard("b", stats(1, {"orders": 1}, received=30, response_ms=4.0), counters(7, 30, 1))
    view.bind("a", "s1", "7", "orders")
    view.bind("b", "s2", "8", "orders")
    total = view.stats("engine", stats(0, {}), counters())
    assert total["totalConnections"] == 4
    assert total["connectionsByType"] == {"market-data": 1, "orders": 3}
    assert total["connectionsByDuration"]["<1m"] == 4
    assert (total["messagesSent"], total["messagesReceived"]) == (12, 40)
    assert total["errorRate"] == 0.05 and total["averageResponseTimeMs"] == 3.5
    assert total["uniqueUsers"] == 2
    assert [n["node"] for n in total["nodes"]] == ["engine", "a", "b"]


def test_channels_held_on_any_process_are_listed_under_their_prefixes_until_the_last_holder_drops_them():
    clock = Clock()
    view = ClusterView(max_per_user=1, silent_s=5, monotonic=clock)
    view.heard("a", stats(0, {}), counters(), channels={"held": ["risk:7", "portfolio:7:positions"]})
    view.hold("b", "risk:7")
    assert view.channels("risk:") == {"risk:7"} and view.channels("portfolio:7:") == {"portfolio:7:positions"}
    view.heard("a", stats(0, {}), counters(), channels={"dropped": ["risk:7"]})
    assert view.channels("risk:") == {"risk:7"}  # b still holds it
    view.heard("b", stats(0, {}), counters(), channels={"all": ["signals:NVTX:*"]})  # b told a new leader afresh
    assert view.channels("risk:") == set() and view.channels("signals:") == {"signals:NVTX:*"}
    clock.now += 6
    view.heard("b", stats(0, {}), counters())
    view.sweep()  # a went silent: its channels go with it
    assert view.channels("portfolio:") == set() and view.channels("signals:NVTX:") == {"signals:NVTX:*"}
