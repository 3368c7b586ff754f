"""A gateway's way to the engine: calls carried by the broker, each answered on the calling process's own channel.

A call is one JSON message on `engine.calls`, which only the engine leader subscribes to; the leader answers on
`node.<id>` of the caller. Both travel through the same broker as the hub's publications, and the engine publishes
its answer after what the request caused (the order events of a SUBMIT_ORDER), so a gateway hears them in that
order (Redis delivers a subscriber's messages in the order their PUBLISHes ran).

A call not answered within the timeout is answered None: the engine may be gone (its standby takes over within a
few seconds), and the caller tells its client so rather than leaving it waiting. For a second after a timeout, new
calls are answered None at once instead of each waiting out its own timeout; so are calls made while the broker
is disconnected or no engine has been heard for two seconds.
"""

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

import ujson

from domain.users import Role, User
from realtime.broker import Broker

__all__ = ["CALLS", "EngineLink", "node_channel", "user_from_call", "user_to_call"]

log = logging.getLogger(__name__)

CALLS = "engine.calls"
"""The broker channel of calls to the engine; only the leader subscribes to it."""

BEATS = "engine.beat"
"""The leader says it is alive, and where (its node, fencing token and URL), twice a second."""

BEAT_MS = 500
SILENT_S = 2.0  # no beat for this long: the engine is away

FAIL_FAST_S = 1.0


def node_channel(node: str) -> str:
    """The broker channel on which the engine answers the calls of process `node`."""
    return f"node.{node}"


def user_to_call(user: User | None) -> dict | None:
    """A signed-in user as a call carries it (the password hash stays with the engine)."""
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "displayName": user.display_name, "role": str(user.role),
            "createdAt": user.created_at}


def user_from_call(data: dict | None) -> User | None:
    if data is None:
        return None
    return User(id=data["id"], username=data["username"], display_name=data["displayName"], role=Role(data["role"]),
                created_at=data["createdAt"])


class EngineLink:
    """This process's calls to the engine, and whether the engine runs here (`local`: then nobody calls)."""

    def __init__(self, broker: Broker, *, node: str, timeout_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.node, self.timeout_s = node, timeout_s
        self.local = False
        self._broker, self._monotonic = broker, monotonic
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[Callable, asyncio.TimerHandle]] = {}
        self._failing_until = 0.0
        self.timeouts = 0
        self.leader: dict | None = None  # the last beat: {"node", "token", "url"}
        self._beat_at: float | None = None
        self.view = None  # the engine's ClusterView, while the engine runs here
        self.announced = self.service_status()  # the SERVICE_STATUS this process's connections were last told
        self.new_leader = False  # a leader this process has not yet told its signed-in connections
        broker.subscribe(node_channel(node), self._on_reply)
        broker.subscribe(BEATS, self._on_beat)

    @property
    def engine_heard(self) -> bool:
        """The engine runs here, or its beat came within SILENT_S."""
        return self.local or (self._beat_at is not None and self._monotonic() - self._beat_at < SILENT_S)

    def service_status(self) -> dict:
        """SERVICE_STATUS's data now (without its time): DEGRADED while the broker is down or the engine silent."""
        broker = "CONNECTED" if self._broker.connected else "DISCONNECTED"
        engine = "AVAILABLE" if self.engine_heard else "UNAVAILABLE"
        return {"status": "OK" if broker == "CONNECTED" and engine == "AVAILABLE" else "DEGRADED",
                "broker": broker, "engine": engine}

    def beat(self, token: int, url: str) -> None:
        """From the leader, every BEAT_MS."""
        self._broker.publish(BEATS, ujson.dumps({"node": self.node, "token": token, "url": url}).encode())

    def _on_beat(self, _channel: str, message: bytes) -> None:
        beat = ujson.loads(message)
        if self.leader is None or beat["token"] >= self.leader["token"]:  # a deposed leader's late beat is ignored
            if self.leader is None or beat["token"] != self.leader["token"]:
                log.info("the engine runs on %s (fencing token %d)", beat["node"], beat["token"])
                self._failing_until = 0.0
                self.new_leader = True
                if self.leader is not None and not self.local:
                    self.fail_pending()  # sent to a leader that is gone: say so now, not when each times out
            self.leader, self._beat_at = beat, self._monotonic()

    def call(self, call: dict, answered: Callable[[dict | None], None]) -> None:
        """Send `call` to the engine; `answered(reply)` runs on the loop later, with None if it did not answer."""
        loop = asyncio.get_running_loop()
        if self._monotonic() < self._failing_until or not self._broker.connected or not self.engine_heard:
            loop.call_soon(answered, None)  # no waiting out a timeout when nothing can answer
            return
        call_id = next(self._ids)
        timer = loop.call_later(self.timeout_s, self._expire, call_id, call["kind"])
        self._pending[call_id] = (answered, timer)
        self._broker.publish(CALLS, ujson.dumps({**call, "id": call_id, "node": self.node}).encode())

    def tell(self, message: dict) -> None:
        """Send the engine something that needs no answer (a connection's end, this process's statistics)."""
        self._broker.publish(CALLS, ujson.dumps({**message, "node": self.node}).encode())

    def _on_reply(self, _channel: str, message: bytes) -> None:
        reply = ujson.loads(message)
        pending = self._pending.pop(reply["id"], None)
        if pending is None:  # answered after its timeout: the client has been told already
            return
        answered, timer = pending
        timer.cancel()
        self._failing_until = 0.0
        answered(reply)

    def _expire(self, call_id: int, kind: str) -> None:
        pending = self._pending.pop(call_id, None)
        if pending is None:
            return
        self.timeouts += 1
        self._failing_until = self._monotonic() + FAIL_FAST_S
        log.warning("the engine did not answer a %s call in %.1f s", kind, self.timeout_s)
        pending[0](None)

    def fail_pending(self) -> None:
        """Answer every unanswered call None now (this process stops, or the engine is known to be gone)."""
        pending, self._pending = self._pending, {}
        for answered, timer in pending.values():
            timer.cancel()
            answered(None)
