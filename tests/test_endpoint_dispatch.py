"""The Endpoint base class with a test endpoint: faults become INTERNAL, per-message auth, handler replies."""

import pytest
import tornado.web

from handlers.base import Endpoint, Reply, handles
from handlers.websocket import WebSocketTransport
from realtime.schema import Int

pytestmark = pytest.mark.gen_test(timeout=10)


class ProbeEndpoint(Endpoint):
    """An endpoint whose handlers misbehave on purpose."""

    name = "probe"

    @handles("BOOM")
    def boom(self):
        raise RuntimeError("secret internals")

    @handles("MEMBERS_ONLY", auth=True)
    def members_only(self):
        return Reply("MEMBERS_OK", {"userId": self.user_id})

    @handles("TWO_REPLIES", n=Int(required=True, min=1, max=3))
    def two_replies(self, n):
        return [Reply("FIRST", {"n": n}), Reply("SECOND", None)]


@pytest.fixture
def app(services, io_loop):
    return tornado.web.Application([(r"/ws/probe", WebSocketTransport,
                                     dict(endpoint_cls=ProbeEndpoint, services=services))])


async def test_handler_fault_is_internal_error_without_details_and_connection_survives(ws):
    client = await ws("/ws/probe")
    await client.send("BOOM", request_id="b1")
    error = await client.expect("ERROR")
    assert error["requestId"] == "b1"
    assert error["data"] == {"code": "INTERNAL", "error": "internal error", "requestType": "BOOM"}
    await client.send("HEARTBEAT", request_id="h")
    assert (await client.expect("HEARTBEAT"))["requestId"] == "h"


async def test_message_marked_auth_needs_a_user_but_does_not_close(ws, make_user):
    client = await ws("/ws/probe")
    await client.send("MEMBERS_ONLY")
    assert (await client.expect("ERROR"))["data"]["code"] == "UNAUTHORIZED"
    user, token = make_user()
    await client.send("AUTH", {"token": token})
    await client.expect("AUTHENTICATED")
    await client.send("MEMBERS_ONLY")
    assert (await client.expect("MEMBERS_OK"))["data"] == {"userId": str(user.id)}


async def test_every_reply_of_a_handler_carries_the_request_id(ws):
    client = await ws("/ws/probe")
    await client.send("TWO_REPLIES", {"n": 2}, request_id="t")
    first, second = await client.expect("FIRST"), await client.expect("SECOND")
    assert first["requestId"] == second["requestId"] == "t"
    assert first["data"] == {"n": 2} and second["data"] is None


async def test_second_auth_for_another_user_is_bad_request(ws, make_user):
    _, alice = make_user("alice")
    _, bob = make_user("bobby")
    client = await ws("/ws/probe", token=alice)
    await client.send("AUTH", {"token": bob})
    assert (await client.expect("ERROR"))["data"]["code"] == "BAD_REQUEST"
    await client.send("AUTH", {"token": alice}, request_id="again")
    assert (await client.expect("AUTHENTICATED"))["requestId"] == "again"
