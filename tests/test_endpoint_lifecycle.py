"""An Endpoint driven through a fake transport: no socket, no event loop, only its state machine and the protocol."""

import json
import random

import pytest

import stockquest
from domain.clock import FakeClock
from handlers.base import ConnectionState, RequestInfo
from handlers.market_data import MarketDataEndpoint
from handlers.orders import REPLAY_WAIT_S, OrdersEndpoint
from services.auth import hash_password
from services.config import Config


class FakeTransport:
    """Records what the endpoint sends and how it asks to close; the test decides when the transport ends."""

    kind = "fake"

    def __init__(self):
        self.frames: list[dict] = []
        self.closed: list[tuple[int, str]] = []
        self.backlog = 0  # bytes the client has not read yet

    def send_text(self, text: str) -> bool:
        self.frames.append(json.loads(text))
        return True

    def close_transport(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    def buffered_bytes(self) -> int:
        return self.backlog

    @property
    def types(self) -> list[str]:
        return [frame["type"] for frame in self.frames]


class ManualScheduler:
    """Timers that fire only when the test moves the fake clock forward."""

    def __init__(self, clock: FakeClock):
        self.clock, self.pending = clock, []

    def call_later(self, delay_s, callback):
        timer = _Timer(self.clock.now() + delay_s, callback)
        self.pending.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        for timer in [t for t in self.pending if t.due <= self.clock.now() and not t.cancelled]:
            self.pending.remove(timer)
            timer.callback()


class _Timer:
    def __init__(self, due, callback):
        self.due, self.callback, self.cancelled = due, callback, False

    def cancel(self):
        self.cancelled = True


@pytest.fixture
def clock():
    return FakeClock(1_764_126_000.0)


@pytest.fixture
def world(tmp_path, clock):
    config = Config(data_dir=tmp_path, jwt_secret="s" * 40, seed=5, password_hash_n=2**10, signal_warmup_bars=30)
    services = stockquest.build_services(config, clock=clock, rng=random.Random(5))
    services.scheduler = ManualScheduler(clock)
    yield services
    services.storage.close()


def connect(services, endpoint_cls, *, token=None, origin=None):
    transport = FakeTransport()
    endpoint = endpoint_cls(services, transport,
                            RequestInfo(token=token, origin=origin, host="127.0.0.1:8080", remote_ip="127.0.0.1"))
    return endpoint, transport


def test_an_endpoint_opens_answers_refuses_garbage_closes_and_releases_everything(world):
    endpoint, transport = connect(world, MarketDataEndpoint)
    assert endpoint.state is ConnectionState.CONNECTING
    endpoint.start()
    assert endpoint.state is ConnectionState.OPEN
    assert transport.frames[0]["type"] == "CONNECTION_ESTABLISHED" and transport.frames[0]["seq"] == 1
    assert len(world.hub) == 1

    endpoint.receive('{"type": "REQUEST_QUOTE", "data": {"symbol": "nvtx"}, "requestId": "q"}')
    reply = transport.frames[-1]
    assert (reply["type"], reply["requestId"], reply["data"]["quotes"][0]["symbol"]) == ("QUOTE_RESPONSE", "q", "NVTX")

    endpoint.receive("{not json")
    assert transport.frames[-1]["data"]["code"] == "INVALID_MESSAGE"
    assert endpoint.state is ConnectionState.OPEN and transport.closed == []

    endpoint.receive('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"]}}')
    assert world.fanout.active(endpoint) == ["NVTX"]

    endpoint.close(4008, "slow consumer")
    assert endpoint.state is ConnectionState.CLOSING and transport.closed == [(4008, "slow consumer")]
    sent = len(transport.frames)
    endpoint.receive('{"type": "HEARTBEAT"}')
    assert not endpoint.send("HEARTBEAT", {})
    assert len(transport.frames) == sent  # nothing is read or sent while closing

    endpoint.finish()
    assert endpoint.state is ConnectionState.CLOSED
    assert len(world.hub) == 0 and world.fanout.active(endpoint) == []
    endpoint.finish()  # a second end report changes nothing
    assert endpoint.state is ConnectionState.CLOSED


def test_a_foreign_origin_is_refused_before_the_connection_ever_opens(world):
    endpoint, transport = connect(world, MarketDataEndpoint, origin="https://evil.example")
    endpoint.start()
    assert endpoint.state is ConnectionState.CLOSING
    assert transport.types == ["ERROR"] and transport.frames[0]["data"]["code"] == "FORBIDDEN"
    assert transport.closed == [(1008, "origin not allowed")]
    assert len(world.hub) == 0


def test_an_endpoint_that_needs_a_user_closes_4401_when_the_sign_in_deadline_passes(world):
    endpoint, transport = connect(world, OrdersEndpoint)
    endpoint.start()
    assert endpoint.state is ConnectionState.OPEN and transport.types == ["CONNECTION_ESTABLISHED"]
    world.scheduler.advance(world.config.auth_timeout_s - 1)
    assert endpoint.state is ConnectionState.OPEN
    world.scheduler.advance(1)
    assert endpoint.state is ConnectionState.CLOSING
    assert transport.frames[-1]["data"]["code"] == "UNAUTHORIZED" and transport.closed[0][0] == 4401


def test_signing_in_cancels_the_deadline_and_the_token_expiry_closes_the_connection(world, clock):
    user = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    endpoint, transport = connect(world, OrdersEndpoint)
    endpoint.start()
    endpoint.receive(json.dumps({"type": "AUTH", "data": {"token": world.users.token_for(user)}, "requestId": "a"}))
    assert transport.types[1:] == ["AUTHENTICATED", "ACTIVE_ORDERS"]
    world.scheduler.advance(world.config.auth_timeout_s + 1)
    assert endpoint.state is ConnectionState.OPEN
    world.scheduler.advance(world.config.token_ttl_s)
    assert endpoint.state is ConnectionState.CLOSING
    assert transport.frames[-1]["data"]["error"] == "token expired" and transport.closed[0][0] == 4401


def signed_in_orders(world, user, name):
    endpoint, transport = connect(world, OrdersEndpoint, token=world.users.token_for(user))
    endpoint.start()
    assert transport.types[-1] == "ACTIVE_ORDERS", name
    return endpoint, transport


def far_order(world, user) -> str:
    """SUBMIT_ORDER data for a LIMIT buy far below the market: it rests, one event per order."""
    portfolio_id = world.book.ids_of(str(user.id))[0]
    return json.dumps({"portfolioId": portfolio_id, "symbol": "NVTX", "side": "BUY", "orderType": "LIMIT",
                       "quantity": 1, "limitPrice": 1.0, "timeInForce": "GTC"})


def order_events(transport) -> list[tuple[int, str | None]]:
    return [(frame["data"]["eventId"], frame.get("requestId")) for frame in transport.frames
            if frame["type"].startswith("ORDER_")]


def test_a_connection_hears_its_replies_and_the_users_other_events_in_event_id_order_and_each_once(world):
    """Replies travel with the pushes: a reply never overtakes an earlier event, and a replay is not repeated."""
    user = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    far = far_order(world, user)
    flooder, _ = signed_in_orders(world, user, "flooder")
    subscriber, heard = signed_in_orders(world, user, "subscriber")
    subscriber.receive('{"type": "SUBSCRIBE_ORDERS", "data": {}}')
    world.broker.drain()

    for _ in range(3):  # events 1..3, published but not yet delivered when the subscriber's own order is placed
        flooder.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}}}')
    subscriber.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}, "requestId": "mine"}}')
    late, replayed = signed_in_orders(world, user, "late")
    late.receive('{"type": "SUBSCRIBE_ORDERS", "data": {"sinceEventId": 0}}')
    world.broker.drain()

    assert order_events(heard) == [(1, None), (2, None), (3, None), (4, "mine")]
    assert order_events(replayed) == [(1, None), (2, None), (3, None), (4, None)]


class NextTurn:
    """The loop's next turn, run when the test says: what the server's group commit is scheduled on."""

    def __init__(self):
        self.callbacks = []

    def __call__(self, callback):
        self.callbacks.append(callback)

    def run(self):
        callbacks, self.callbacks = self.callbacks, []
        for callback in callbacks:
            callback()


def replies(transport) -> list[tuple[str | None, str, str | None]]:
    """(requestId, type, orderId or ERROR code) of every order event and ERROR the connection heard."""
    heard = [frame for frame in transport.frames if frame["type"] == "ERROR" or frame["type"].startswith("ORDER_")]
    return [(frame.get("requestId"), frame["type"], frame["data"]["code"] if frame["type"] == "ERROR"
             else frame["data"].get("order", frame["data"]).get("orderId")) for frame in heard]


@pytest.fixture
def group_commit(world, monkeypatch):
    """Group commit on a turn the test runs; counts the transactions."""
    turn, commits = NextTurn(), []
    save = world.storage.save_trading
    monkeypatch.setattr(world.storage, "save_trading", lambda *a, **kw: commits.append(1) or save(*a, **kw))
    world.trading.commit_later(turn)
    return turn, commits


def test_orders_of_one_loop_turn_share_one_transaction_and_are_acknowledged_only_after_it(world, group_commit):
    turn, commits = group_commit
    ada = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    bob = world.users.create("bob", "Bob", hash_password("correct horse", n=2**10))
    ada_orders, ada_heard = signed_in_orders(world, ada, "ada")
    bob_orders, bob_heard = signed_in_orders(world, bob, "bob")
    ada_orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, ada)}, "requestId": "a1"}}')
    ada_orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, ada)}, "requestId": "a2"}}')
    bob_orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, bob)}, "requestId": "b1"}}')
    world.broker.drain()
    assert replies(ada_heard) == replies(bob_heard) == [] and commits == []
    assert world.storage.last_event_id(str(ada.id)) == 0  # nothing acknowledged, nothing stored

    turn.run()
    world.broker.drain()
    assert commits == [1]
    assert [(request, kind) for request, kind, _ in replies(ada_heard)] == [("a1", "ORDER_SUBMITTED"),
                                                                          ("a2", "ORDER_SUBMITTED")]
    assert [(request, kind) for request, kind, _ in replies(bob_heard)] == [("b1", "ORDER_SUBMITTED")]
    assert world.storage.last_event_id(str(ada.id)) == 2 and world.storage.last_event_id(str(bob.id)) == 1


def test_a_group_commit_the_database_refuses_answers_each_of_its_requests_internal_and_keeps_nothing(world,
                                                                                                   group_commit):
    turn, _ = group_commit
    ada = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    bob = world.users.create("bob", "Bob", hash_password("correct horse", n=2**10))
    ada_orders, ada_heard = signed_in_orders(world, ada, "ada")
    bob_orders, bob_heard = signed_in_orders(world, bob, "bob")
    world.storage._db.execute("PRAGMA query_only = 1")  # the disk refuses every write from now on
    ada_orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, ada)}, "requestId": "a1"}}')
    bob_orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, bob)}, "requestId": "b1"}}')
    turn.run()
    world.broker.drain()

    assert replies(ada_heard) == [("a1", "ERROR", "INTERNAL")] and replies(bob_heard) == [("b1", "ERROR", "INTERNAL")]
    assert ada_heard.frames[-1]["data"]["requestType"] == "SUBMIT_ORDER"
    assert world.trading.open_orders(str(ada.id)) == world.trading.open_orders(str(bob.id)) == []
    world.storage._db.execute("PRAGMA query_only = 0")
    ada_orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, ada)}, "requestId": "a2"}}')
    turn.run()
    world.broker.drain()
    assert [(request, kind) for request, kind, _ in replies(ada_heard)][-1] == ("a2", "ORDER_SUBMITTED")
    assert ada_orders.state is ConnectionState.OPEN and bob_orders.state is ConnectionState.OPEN


def test_a_client_order_id_repeated_before_its_commit_is_answered_with_the_one_order(world, group_commit):
    """The repeat must see the first use although it is not stored yet: one order, and the same answer twice."""
    turn, _ = group_commit
    ada = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    orders, heard = signed_in_orders(world, ada, "ada")
    data = json.dumps({**json.loads(far_order(world, ada)), "clientOrderId": "lesson-1"})
    orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {data}, "requestId": "first"}}')
    orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {data}, "requestId": "again"}}')
    turn.run()
    world.broker.drain()

    (_, first_kind, first_id), (_, again_kind, again_id) = replies(heard)
    assert (first_kind, again_kind) == ("ORDER_SUBMITTED", "ORDER_SUBMITTED") and first_id == again_id
    assert [order.order_id for order in world.trading.open_orders(str(ada.id))] == [first_id]


def test_a_read_or_a_market_tick_commits_what_is_pending_first(world, group_commit, clock):
    """No reader sees the engine ahead of storage, and a tick stores its fills with the orders they fill."""
    turn, commits = group_commit
    ada = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    orders, heard = signed_in_orders(world, ada, "ada")
    orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {far_order(world, ada)}, "requestId": "a1"}}')
    orders.receive('{"type": "REQUEST_ORDER_HISTORY", "data": {}, "requestId": "h"}')
    assert [len(frame["data"]["orders"]) for frame in heard.frames if frame["type"] == "ORDER_HISTORY"] == [1]
    assert commits == [1]

    portfolio_id = world.book.ids_of(str(ada.id))[0]
    market = json.dumps({"portfolioId": portfolio_id, "symbol": "NVTX", "side": "BUY", "orderType": "MARKET",
                         "quantity": 1})
    orders.receive(f'{{"type": "SUBMIT_ORDER", "data": {market}, "requestId": "m"}}')
    clock.advance(1)
    world.exchange.tick()
    assert commits == [1, 1] and turn.callbacks  # the tick's fill went in the same transaction as its order
    turn.run()  # and the scheduled commit finds nothing left to do
    world.broker.drain()
    assert commits == [1, 1]
    assert [(request, kind) for request, kind, _ in replies(heard)][-2:] in (
        [("m", "ORDER_SUBMITTED"), (None, "EXECUTION_REPORT")], [("m", "ORDER_SUBMITTED"), (None, "ORDER_FILLED")])
    assert world.storage.reconcile(portfolio_id)["ok"]


def test_a_long_replay_goes_page_by_page_as_the_client_reads_and_live_events_wait_for_its_end(world, monkeypatch):
    """Every stored event is replayed (none capped), never faster than the client reads, and nothing overtakes it."""
    monkeypatch.setattr(OrdersEndpoint, "replay_page", 3)
    user = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    far = far_order(world, user)
    placer, _ = signed_in_orders(world, user, "placer")
    for _ in range(7):
        placer.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}}}')
    world.broker.drain()
    reader, heard = signed_in_orders(world, user, "reader")
    heard.backlog = world.config.max_buffered_bytes  # the client is still reading something else
    reader.receive('{"type": "SUBSCRIBE_ORDERS", "data": {"sinceEventId": 0}, "requestId": "resume"}')
    world.scheduler.advance(10 * REPLAY_WAIT_S)
    assert order_events(heard) == []

    heard.backlog = 0
    world.scheduler.advance(REPLAY_WAIT_S)
    assert order_events(heard) == [(1, None), (2, None), (3, None)]
    placer.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}}}')  # 8: another connection's, read from storage
    reader.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}, "requestId": "mine"}}')  # 9: its reply waits
    world.broker.drain()
    assert order_events(heard)[-1] == (3, None)
    for _ in range(3):
        world.scheduler.advance(0)
    assert [frame["type"] for frame in heard.frames[-2:]] == ["SUBSCRIPTION_CONFIRMED", "ORDER_SUBMITTED"]
    confirmed = heard.frames[-2]
    assert (confirmed["requestId"], confirmed["data"]["recovered"], confirmed["data"]["lastEventId"]) == \
        ("resume", True, 9)
    assert order_events(heard) == [*((n, None) for n in range(1, 10)), (9, "mine")]

    placer.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}}}')  # 10: live, on the user's channel
    world.broker.drain()
    assert order_events(heard)[-1] == (10, None)


def test_a_replay_after_the_connections_own_later_events_still_sends_everyone_elses(world, monkeypatch):
    monkeypatch.setattr(OrdersEndpoint, "replay_page", 2)
    user = world.users.create("ada", "Ada", hash_password("correct horse", n=2**10))
    far = far_order(world, user)
    other, _ = signed_in_orders(world, user, "other")
    reader, heard = signed_in_orders(world, user, "reader")
    for _ in range(3):
        other.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}}}')  # 1..3: not on the reader's channels
    reader.receive(f'{{"type": "SUBMIT_ORDER", "data": {far}, "requestId": "own"}}')  # 4: its own
    world.broker.drain()
    assert order_events(heard) == [(4, "own")]
    reader.receive('{"type": "SUBSCRIBE_ORDERS", "data": {"sinceEventId": 0}}')
    for _ in range(3):
        world.scheduler.advance(0)
    assert [event_id for event_id, _ in order_events(heard)] == [4, 1, 2, 3, 4]
