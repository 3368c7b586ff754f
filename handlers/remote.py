"""The engine's side of a gateway's calls: each request runs on a copy of the caller's endpoint, built from the
connection's state as the gateway sent it; what the handler did to the connection (sends, channel and quote
subscriptions, its state) is recorded and sent back, and the gateway does the same to the real connection
(`Endpoint.apply_remote`). So every message type is handled by the one handler that serves it in one process.

Pushes never come this way: services publish on the hub, and every process's hub delivers to its own connections.
"""

import asyncio
import logging
import time
from dataclasses import replace

import ujson

from domain.users import Role
from realtime.protocol import Inbound
from services.auth import AuthError
from services.cluster.link import CALLS, node_channel, user_from_call, user_to_call
from services.cluster.view import ClusterView
from services.container import Services

from .base import ConnectionState, Endpoint, RequestInfo

__all__ = ["EngineDesk"]

log = logging.getLogger(__name__)


class _RecordingHub:
    """The hub as an endpoint's copy sees it: the connection's channels, each change recorded for the gateway."""

    def __init__(self, hub, channels: list[str], ops: list):
        self._hub, self._channels, self._ops = hub, set(channels), ops

    def subscribe(self, _conn, channel: str) -> bool:
        if channel in self._channels:
            return False
        self._channels.add(channel)
        self._ops.append(["sub", channel])
        return True

    def unsubscribe(self, _conn, channel: str) -> bool:
        if channel not in self._channels:
            return False
        self._channels.discard(channel)
        self._ops.append(["unsub", channel])
        return True

    def subscriptions(self, _conn, prefix: str = "") -> list[str]:
        return sorted(c for c in self._channels if c.startswith(prefix))

    def publish(self, *args, **kwargs) -> None:
        self._hub.publish(*args, **kwargs)

    def channels(self, prefix: str) -> list[str]:
        return self._hub.channels(prefix)

    def record_sent(self, ok: bool) -> None:
        """Counted where the message really goes out: on the gateway."""

    def record_error(self) -> None:
        """As record_sent."""


class _RecordingFanout:
    """The quote fan-out as an endpoint's copy sees it: the connection's symbols, each change recorded."""

    def __init__(self, fanout, symbols: list[str], ops: list):
        self._fanout, self._symbols, self._ops = fanout, set(symbols), ops

    def normalise_interval(self, interval_ms):
        return self._fanout.normalise_interval(interval_ms)

    def subscribe(self, _conn, symbols, interval_ms: int) -> None:
        self._symbols.update(symbols)
        self._ops.append(["fanout", list(symbols), interval_ms])

    def unsubscribe(self, _conn, symbols=None) -> None:
        self._symbols = set() if symbols is None else self._symbols - set(symbols)
        self._ops.append(["unfanout", None if symbols is None else list(symbols)])

    def active(self, _conn) -> list[str]:
        return sorted(self._symbols)


class _Copy:
    """Mixed into an endpoint class: what the copy sends or closes is recorded; a timer runs at once."""

    _ops: list

    def send_json(self, message_type, data_json, request_id=None, *, backlog=None) -> bool:
        self._ops.append(["send", message_type, data_json, request_id])
        return True

    def close(self, code, reason) -> None:
        self._ops.append(["close", int(code), reason])
        self.state = ConnectionState.CLOSING

    def buffered_bytes(self) -> int:
        return 0

    def _arm_timer(self, name, delay_s, callback) -> None:
        callback()  # only a replay's next page arms one on a copy (its client's backlog is the gateway's)


class _NoTransport:
    kind = "gateway"

    def send_text(self, text):
        raise AssertionError("a copy records what it sends")

    def close_transport(self, code, reason):
        raise AssertionError("a copy records its close")

    def buffered_bytes(self):
        return 0


class EngineDesk:
    """Answers gateways' calls while this process runs the engine (subscribed to `engine.calls` only then)."""

    def __init__(self, services: Services, endpoints: dict[str, type[Endpoint]]):
        self._services = services
        self._copies = {name: type(f"Engine{cls.__name__}", (_Copy, cls), {}) for name, cls in endpoints.items()}
        self._subscription = None
        self.calls = 0
        self.view: ClusterView | None = None

    def open(self) -> None:
        """Start answering (this process was elected): with a view of the cluster that the gateways fill again."""
        self.view = ClusterView(max_per_user=self._services.config.max_connections_per_user)
        self._services.engine_link.view = self.view
        self._services.hub.remote_channels = self.view.channels  # the gateways' subscribers are published to too
        for conn in self._services.hub.connections():  # this process's own signed-in connections count too
            if conn.user_id is not None:
                self.view.bind(self._services.engine_link.node, conn.session_id, conn.user_id, conn.endpoint)
        if self._subscription is None:
            self._subscription = self._services.broker.subscribe(CALLS, self._on_call)

    def close(self) -> None:
        self._services.engine_link.view = self.view = None
        self._services.hub.remote_channels = None
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    def _on_call(self, _channel: str, message: bytes) -> None:
        call = ujson.loads(message)
        self.calls += 1
        if "id" not in call:  # told, not asked
            self._told(call)
            return
        try:
            reply = self.answer(call)
        except Exception:
            log.exception("engine call %s failed", call.get("kind"))
            return  # the gateway's timeout tells the client
        reply["id"] = call["id"]
        encoded = ujson.dumps(reply).encode()
        # After what the request caused: a group commit scheduled by it runs first and publishes its events.
        asyncio.get_running_loop().call_soon(self._services.broker.publish, node_channel(call["node"]), encoded)

    def _told(self, message: dict) -> None:
        if message["kind"] == "alive":
            self.view.heard(message["node"], message["stats"], message["counters"], message.get("sessions"),
                            message.get("channels"))
        elif message["kind"] == "unbind":
            self.view.unbind(message["session"])

    def answer(self, call: dict) -> dict:
        kind = call["kind"]
        if kind == "auth":
            return self._auth(call)
        if kind == "roles":
            users = self._services.users
            return {"roles": {user_id: str(role) for user_id in call["userIds"]
                              if (role := _stored_role(users, user_id)) is not None}}
        endpoint, ops = self._copy(call)
        if kind == "ready":
            endpoint._guarded(None, None, endpoint.ready)
        else:
            message = Inbound(call["type"], call["data"], call["requestId"])
            endpoint._guarded(message.request_id, message.type, lambda: endpoint.dispatch(message))
        for op in ops:  # published to from now, not only once the gateway's next report says so
            if op[0] == "sub":
                self.view.hold(call["node"], op[1])
        return {"ops": ops, "grants": sorted(endpoint.role_grants),
                "attributes": {name: getattr(endpoint, name) for name in endpoint.remote_attributes}}

    def _auth(self, call: dict) -> dict:
        """The token check of a gateway's connection; a good one also counts against the user's cluster-wide limit."""
        users, state = self._services.users, call["state"]
        try:
            user, expires_at = users.signed_in(call["token"])
        except AuthError as error:
            return {"refused": str(error)}
        if not self.view.bind(call["node"], state["session"], str(user.id), state["endpoint"]):
            return {"limited": f"at most {self.view.max_per_user} connections per user to {state['endpoint']}"}
        return {"user": user_to_call(user), "expiresAt": expires_at, "portfolioIds": users.portfolio_ids(user)}

    def _copy(self, call: dict) -> tuple[Endpoint, list]:
        state = call["state"]
        ops: list = []
        services = self._services
        hub = _RecordingHub(services.hub, state["channels"], ops)
        copy_services = replace(services, hub=hub, fanout=_RecordingFanout(services.fanout, state["symbols"], ops))
        endpoint = self._copies[state["endpoint"]](copy_services, _NoTransport(), RequestInfo(None, None, None, None))
        endpoint._ops = ops
        endpoint.session_id = state["session"]
        endpoint.user = user_from_call(state["user"])
        endpoint.user_id = None if endpoint.user is None else str(endpoint.user.id)
        endpoint.role_grants = set(state["grants"])
        endpoint.received_at = time.perf_counter()
        endpoint.state = ConnectionState.OPEN
        for name, value in state["attributes"].items():
            setattr(endpoint, name, value)
        endpoint.log = logging.LoggerAdapter(logging.getLogger("handlers.base"), {
            "session_id": endpoint.session_id, "endpoint": endpoint.name, "user_id": endpoint.user_id})
        return endpoint, ops


def _stored_role(users, user_id: str) -> Role | None:
    user = users.by_id(int(user_id)) if user_id.isdigit() else None
    return None if user is None else user.role
