"""An Endpoint on a gateway, driven through a fake transport and a link the test answers: what it forwards, what
waits behind an unanswered call, and what it does with the engine's answer (or with none).

The answers come from the real engine side (handlers.remote.EngineDesk) over the same services, called in-process,
so these are the handlers' own replies; tests/test_cluster.py does the same with real processes and Redis."""

import random
from dataclasses import replace

import pytest

import stockquest
from handlers.base import ConnectionState
from handlers.market_data import MarketDataEndpoint
from handlers.orders import OrdersEndpoint
from handlers.remote import EngineDesk
from services.auth import hash_password
from tests.test_endpoint_lifecycle import ManualScheduler, clock, connect  # noqa: F401 (the clock fixture)

OK = {"status": "OK", "broker": "CONNECTED", "engine": "AVAILABLE"}


class EngineHere:
    """The engine side's link: the engine runs here."""

    local, node, announced = True, "engine", OK

    def __init__(self):
        self.view = None


class Gateway:
    """A gateway's link whose calls the test answers, one at a time, with the engine's real answer or None."""

    local, node, announced, view = False, "gateway", OK, None

    def __init__(self, desk: EngineDesk):
        self.desk, self.calls, self.told = desk, [], []

    def call(self, call, answered):
        self.calls.append((call, answered))

    def tell(self, message):
        self.told.append(message)

    def answer(self, reply="engine"):
        call, answered = self.calls.pop(0)
        answered(self.desk.answer({**call, "node": self.node}) if reply == "engine" else reply)
        return call


@pytest.fixture
def world(tmp_path, clock):  # noqa: F811
    config = stockquest.Config(data_dir=tmp_path, jwt_secret="s" * 40, seed=5, password_hash_n=2**10,
                               signal_warmup_bars=30)
    services = stockquest.build_services(config, clock=clock, rng=random.Random(5))
    services.scheduler = ManualScheduler(clock)
    desk = EngineDesk(replace(services, engine_link=EngineHere()), stockquest.ENDPOINTS)
    desk.open()
    services.engine_link = Gateway(desk)
    yield services
    services.storage.close()


def token_for(services, name="ada"):
    user = services.storage.create_user(name, name.title(), hash_password("correct horse", n=2**10), "student",
                                        10_000_000)
    return user, services.tokens.issue(user)


def test_a_forwarded_request_is_answered_by_the_engines_handler_and_its_subscription_lands_on_the_connection(world):
    endpoint, transport = connect(world, MarketDataEndpoint)
    endpoint.start()
    endpoint.receive('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX", "NOPE"]}, "requestId": "s"}')
    assert transport.types == ["CONNECTION_ESTABLISHED"]  # nothing until the engine answers
    call = world.engine_link.answer()
    assert call["kind"] == "handle" and call["state"]["session"] == endpoint.session_id
    assert transport.types == ["CONNECTION_ESTABLISHED", "SUBSCRIPTION_CONFIRMED", "INITIAL_DATA", "MARKET_OVERVIEW"]
    assert transport.frames[1]["requestId"] == "s" and transport.frames[1]["data"]["active"] == ["NVTX"]
    assert world.fanout.active(endpoint) == ["NVTX"]  # the quote subscription is this process's
    assert [f["seq"] for f in transport.frames] == [1, 2, 3, 4]


def test_messages_wait_behind_an_unanswered_call_and_are_handled_in_their_order(world):
    endpoint, transport = connect(world, MarketDataEndpoint)
    endpoint.start()
    endpoint.receive('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"]}, "requestId": "1"}')
    endpoint.receive('{"type": "HEARTBEAT", "requestId": "2"}')
    endpoint.receive('{"type": "UNSUBSCRIBE", "requestId": "3"}')
    assert len(world.engine_link.calls) == 1 and transport.types == ["CONNECTION_ESTABLISHED"]
    world.engine_link.answer()  # SUBSCRIBE; then the HEARTBEAT is answered here, and UNSUBSCRIBE goes out
    assert [f.get("requestId") for f in transport.frames[1:]] == ["1", "1", "1", "2"]
    assert world.engine_link.calls[0][0]["type"] == "UNSUBSCRIBE"
    world.engine_link.answer()
    assert transport.frames[-1]["requestId"] == "3" and world.fanout.active(endpoint) == []


def test_a_call_nobody_answers_is_an_unavailable_error_and_the_next_message_goes_on(world):
    endpoint, transport = connect(world, MarketDataEndpoint)
    endpoint.start()
    endpoint.receive('{"type": "REQUEST_QUOTE", "data": {"symbol": "NVTX"}, "requestId": "q1"}')
    endpoint.receive('{"type": "REQUEST_QUOTE", "data": {"symbol": "NVTX"}, "requestId": "q2"}')
    world.engine_link.answer(None)
    error = transport.frames[-1]
    assert (error["type"], error["requestId"], error["data"]["code"]) == ("ERROR", "q1", "UNAVAILABLE")
    assert error["data"]["requestType"] == "REQUEST_QUOTE"
    world.engine_link.answer()
    assert transport.frames[-1]["type"] == "QUOTE_RESPONSE" and transport.frames[-1]["requestId"] == "q2"
    assert endpoint.state is ConnectionState.OPEN


def test_a_reply_that_reached_the_client_before_the_calls_answer_was_lost_is_no_unavailable_error(world):
    _, token = token_for(world)
    endpoint, transport = connect(world, OrdersEndpoint, token=token)
    endpoint.start()
    world.engine_link.answer()  # the token check
    world.engine_link.answer()  # ready(): ACTIVE_ORDERS
    endpoint.receive('{"type": "CANCEL_ORDER", "data": {"orderId": "O1"}, "requestId": "c"}')
    endpoint.deliver("ORDER_CANCELLED", '{"order": {}}', "c", 1)  # as the hub would, before the call's answer
    world.engine_link.answer(None)  # ... which was then lost
    assert [f["type"] for f in transport.frames if f.get("requestId") == "c"] == ["ORDER_CANCELLED"]


def test_frames_sent_while_the_engine_checks_the_token_wait_for_it_and_a_flood_of_them_closes_the_connection(world):
    _, token = token_for(world)
    endpoint, transport = connect(world, MarketDataEndpoint, token=token)
    endpoint.start()
    assert endpoint.state is ConnectionState.CONNECTING and transport.frames == []
    endpoint.receive('{"type": "HEARTBEAT", "requestId": "early"}')
    world.engine_link.answer()
    assert transport.types == ["CONNECTION_ESTABLISHED", "HEARTBEAT"]
    assert transport.frames[0]["data"]["userId"] and transport.frames[1]["requestId"] == "early"

    flooding, flooded = connect(world, MarketDataEndpoint, token=token)
    flooding.start()
    for _ in range(world.config.rate_limit_burst + 1):
        flooding.receive('{"type": "HEARTBEAT"}')
    assert flooded.closed == [(4429, "too many messages before the connection was open")]


def test_a_token_the_engine_refuses_closes_the_connection_4401_before_it_is_greeted(world):
    endpoint, transport = connect(world, MarketDataEndpoint, token="not.a.token")
    endpoint.start()
    world.engine_link.answer()
    assert transport.types == ["ERROR"] and transport.frames[0]["data"]["code"] == "UNAUTHORIZED"
    assert transport.closed[0][0] == 4401
