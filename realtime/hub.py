"""The connection hub: this node's open connections and their channel subscriptions, limits and statistics."""

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Protocol

import ujson

from .broker import Broker
from .protocol import CloseCode, ErrorCode, encode_data, iso_timestamp

__all__ = ["Connection", "ConnectionHolder", "ConnectionHub", "ConnectionRefused", "Publisher", "PUBLICATIONS"]

log = logging.getLogger(__name__)

DURATION_BUCKETS = ((60, "<1m"), (300, "1-5m"), (1800, "5-30m"), (float("inf"), "30m+"))


class Connection(Protocol):
    """What the hub needs of a connection (any transport)."""

    session_id: str
    endpoint: str
    user_id: str | None
    opened_at: float
    last_inbound: float
    is_open: bool  # greeted (CONNECTION_ESTABLISHED sent) and not yet closing: what broadcasts go to

    def send_json(self, message_type: str, data_json: str, request_id: str | None = None, *,
                  backlog: int | None = None) -> bool: ...

    def deliver(self, message_type: str, data_json: str, request_id: str | None, offset: int | None) -> bool:
        """A publication: `request_id` when it answers this connection's request, `offset` its place in a stream."""

    def close(self, code: int, reason: str) -> None: ...


class ConnectionHolder(Protocol):
    """Something else that keeps per-connection state (the quote fan-out): told when a connection ends."""

    def remove(self, conn: Connection) -> None: ...


class Publisher(Protocol):
    """What a service needs of the hub: publish to channels, and see which channels anyone listens to."""

    def publish(self, channels: str | Iterable[str], message_type: str, data_json: str, *,
                reply_to: tuple[str, str | None] | None = None, offset: int | None = None) -> None: ...

    def channels(self, prefix: str) -> list[str]: ...


PUBLICATIONS = "hub"
"""The broker channel every hub publication travels on; each node's hub delivers it to its own subscribers."""


class ConnectionRefused(Exception):
    """A connection over a limit: answered with ERROR `code`, then closed with `close_code`."""

    def __init__(self, message: str, close_code: int, code: str = ErrorCode.LIMIT_EXCEEDED):
        super().__init__(message)
        self.message, self.close_code, self.code = message, close_code, code


class ConnectionHub:
    """Owns this node's open connections and their channel subscriptions: limits, statistics, and every push.

    Services publish to channels (`publish`) and never touch a connection. A publication travels through the
    broker, so that with a remote broker every node hears it, and each node's hub hands it to its own
    subscribers, once per connection however many of the publication's channels that connection holds.
    When a connection ends, `remove` drops all its subscriptions, here and in the attached holders (the quote
    fan-out, which keeps its own subscriptions because it coalesces). The hub knows connections only through
    `send_json`, `deliver` and `close`, never their transport.
    """

    def __init__(self, *, clock, broker: Broker, max_total: int, max_per_user: int):
        self._clock = clock
        self._broker = broker
        self.max_total, self.max_per_user = max_total, max_per_user
        self._sessions: dict[str, Connection] = {}
        self._by_endpoint: dict[str, set[str]] = defaultdict(set)
        self._by_user: dict[str, set[str]] = defaultdict(set)
        self._subscribers: dict[str, set[Connection]] = {}  # channel -> connections
        self._subscriptions: dict[str, set[str]] = {}  # session id -> channels
        self._under: dict[str, set[str]] = {}  # "portfolio:17:" -> the channels named under it
        self._holders: list[ConnectionHolder] = []
        self.channel_changes: set[str] | None = None  # when set: the channels whose first subscriber came or last went
        self.remote_channels = None  # when set: prefix -> the channels other processes' connections hold under it
        broker.subscribe(PUBLICATIONS, self._deliver)
        self.messages_sent = 0
        self.messages_failed = 0
        self.messages_received = 0
        self.errors_sent = 0
        self.slow_consumer_closes = 0
        self._response_ms_total = 0.0
        self._responses = 0
        self.closed_durations_total = 0.0
        self.closed_count = 0

    # registry -------------------------------------------------------------
    def admit(self, conn: Connection) -> None:
        """Register a new connection, or raise ConnectionRefused when the server is full."""
        if len(self._sessions) >= self.max_total:
            raise ConnectionRefused(f"server connection limit ({self.max_total}) reached",
                                    CloseCode.TRY_AGAIN_LATER)
        self._sessions[conn.session_id] = conn
        self._by_endpoint[conn.endpoint].add(conn.session_id)

    def bind_user(self, conn: Connection, user_id: str) -> None:
        """Record who a connection belongs to, or raise ConnectionRefused past the per-user limit."""
        same = [sid for sid in self._by_user.get(user_id, ())
                if self._sessions[sid].endpoint == conn.endpoint and sid != conn.session_id]
        if len(same) >= self.max_per_user:
            raise ConnectionRefused(
                f"at most {self.max_per_user} connections per user to {conn.endpoint}", CloseCode.TOO_MANY)
        self._by_user[user_id].add(conn.session_id)

    def attach(self, holder: ConnectionHolder) -> None:
        """Tell `holder` of every connection's end from now on."""
        self._holders.append(holder)

    def remove(self, conn: Connection) -> None:
        """Forget a connection that ended, with every subscription it held; harmless if it was never admitted."""
        if self._sessions.pop(conn.session_id, None) is None:
            return
        for channel in self._subscriptions.pop(conn.session_id, ()):
            self._drop(conn, channel)
        for holder in self._holders:
            holder.remove(conn)
        self._by_endpoint[conn.endpoint].discard(conn.session_id)
        if conn.user_id is not None:
            sessions = self._by_user.get(conn.user_id)
            if sessions is not None:
                sessions.discard(conn.session_id)
                if not sessions:
                    del self._by_user[conn.user_id]
        self.closed_durations_total += self._clock.now() - conn.opened_at
        self.closed_count += 1

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> Connection | None:
        return self._sessions.get(session_id)

    def connections(self, endpoint: str | None = None) -> list[Connection]:
        """A copy, so callers may close connections while iterating."""
        if endpoint is None:
            return list(self._sessions.values())
        return [self._sessions[sid] for sid in self._by_endpoint.get(endpoint, ())]

    def of_user(self, user_id: str, endpoint: str | None = None) -> list[Connection]:
        conns = [self._sessions[sid] for sid in self._by_user.get(user_id, ())]
        return conns if endpoint is None else [c for c in conns if c.endpoint == endpoint]

    # channels -------------------------------------------------------------
    def subscribe(self, conn: Connection, channel: str) -> bool:
        """Deliver `channel`'s publications to `conn` until it unsubscribes or ends; False if it was already."""
        if conn.session_id not in self._sessions:
            return False
        held = self._subscriptions.setdefault(conn.session_id, set())
        if channel in held:
            return False
        held.add(channel)
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            subscribers = self._subscribers[channel] = set()
            for prefix in channel_prefixes(channel):
                self._under.setdefault(prefix, set()).add(channel)
            if self.channel_changes is not None:
                self.channel_changes.add(channel)
        subscribers.add(conn)
        return True

    def unsubscribe(self, conn: Connection, channel: str) -> bool:
        """Stop `channel` for `conn`; False if it was not subscribed."""
        held = self._subscriptions.get(conn.session_id)
        if not held or channel not in held:
            return False
        held.discard(channel)
        self._drop(conn, channel)
        return True

    def _drop(self, conn: Connection, channel: str) -> None:
        subscribers = self._subscribers.get(channel)
        if subscribers is None:
            return
        subscribers.discard(conn)
        if subscribers:
            return
        del self._subscribers[channel]
        if self.channel_changes is not None:
            self.channel_changes.add(channel)
        for prefix in channel_prefixes(channel):
            names = self._under[prefix]
            names.discard(channel)
            if not names:
                del self._under[prefix]

    def subscriptions(self, conn: Connection, prefix: str = "") -> list[str]:
        """The channels `conn` holds (those starting with `prefix`), sorted."""
        return sorted(c for c in self._subscriptions.get(conn.session_id, ()) if c.startswith(prefix))

    def channels(self, prefix: str) -> list[str]:
        """The channels named under `prefix` (up to and including a ':') that a connection holds: of this node, and
        past one process, where the engine runs, of every node (`remote_channels`)."""
        here = self._under.get(prefix, ())
        if self.remote_channels is None:
            return sorted(here)
        return sorted(set(here).union(self.remote_channels(prefix)))

    def held(self, channel: str) -> bool:
        """Whether a connection of this node holds `channel`."""
        return channel in self._subscribers

    def held_channels(self) -> list[str]:
        """Every channel a connection of this node holds."""
        return list(self._subscribers)

    def publish(self, channels: str | Iterable[str], message_type: str, data_json: str, *,
                reply_to: tuple[str, str | None] | None = None, offset: int | None = None) -> None:
        """Send `data_json` as `message_type` to the subscribers of `channels`, on every node.

        `reply_to` (session id, request id) makes it the answer to that connection's request: a reply travels
        with the pushes, so a connection hears its replies and pushes in publication order. `offset` is its
        place in a stream (an order event's eventId), for the connection to drop what it has already sent.
        Returns at once; delivery happens when the broker delivers (on a later turn of the loop).
        """
        header = {"channels": [channels] if isinstance(channels, str) else list(channels), "type": message_type}
        if reply_to is not None:
            header["replyTo"] = reply_to
        if offset is not None:
            header["offset"] = offset
        self._broker.publish(PUBLICATIONS, f"{encode_data(header)}\n{data_json}".encode())

    def _deliver(self, _broker_channel: str, message: bytes) -> None:
        header, _, data_json = message.decode().partition("\n")
        publication = ujson.loads(header)
        targets: set[Connection] = set()
        for channel in publication["channels"]:
            targets.update(self._subscribers.get(channel, ()))
        message_type, offset = publication["type"], publication.get("offset")
        reply_session, request_id = publication.get("replyTo") or (None, None)
        for conn in targets:
            conn.deliver(message_type, data_json, request_id if conn.session_id == reply_session else None, offset)

    # broadcast ------------------------------------------------------------
    def broadcast(self, message_type: str, data, connections: Iterable[Connection] | None = None) -> int:
        """Serialize once and send now to each of this node's open connections (all by default; one still waiting
        for its greeting hears nothing before CONNECTION_ESTABLISHED); how many took it."""
        data_json = encode_data(data)
        targets = self._sessions.values() if connections is None else connections
        return sum(1 for conn in list(targets) if conn.is_open and conn.send_json(message_type, data_json))

    def idle(self, timeout_s: float) -> list[Connection]:
        cutoff = self._clock.now() - timeout_s
        return [conn for conn in self._sessions.values() if conn.last_inbound < cutoff]

    # statistics -----------------------------------------------------------
    def record_sent(self, ok: bool) -> None:
        if ok:
            self.messages_sent += 1
        else:
            self.messages_failed += 1

    def record_received(self) -> None:
        self.messages_received += 1

    def record_error(self) -> None:
        self.errors_sent += 1

    def record_slow_consumer(self) -> None:
        self.slow_consumer_closes += 1

    def counters(self) -> dict[str, int]:
        """The cumulative counters the metrics sample each second (services.metrics.COUNTERS)."""
        return {"messagesIn": self.messages_received, "messagesOut": self.messages_sent,
                "messagesFailed": self.messages_failed, "errors": self.errors_sent,
                "slowConsumerCloses": self.slow_consumer_closes}

    def connection_counts(self) -> dict[str, int]:
        return {name: len(sids) for name, sids in self._by_endpoint.items() if sids}

    def record_response(self, elapsed_ms: float) -> None:
        self._response_ms_total += elapsed_ms
        self._responses += 1

    def stats(self) -> dict:
        """The /api/stats document (PROTOCOL.md, Operations)."""
        now = self._clock.now()
        conns = list(self._sessions.values())
        durations = [now - c.opened_at for c in conns]
        by_duration = Counter()
        for duration in durations:
            by_duration[next(label for limit, label in DURATION_BUCKETS if duration < limit)] += 1
        attempts = self.messages_sent + self.messages_failed
        return {
            "totalConnections": len(conns),
            "uniqueUsers": len(self._by_user),
            "connectionsByType": {name: len(sids) for name, sids in sorted(self._by_endpoint.items())},
            "connectionsByDuration": {label: by_duration.get(label, 0) for _, label in DURATION_BUCKETS},
            "averageConnectionDuration": round(sum(durations) / len(durations), 3) if durations else 0.0,
            "messagesSent": self.messages_sent,
            "messagesFailed": self.messages_failed,
            "messagesReceived": self.messages_received,
            "sendSuccessRate": round(self.messages_sent / attempts, 6) if attempts else 1.0,
            "averageResponseTimeMs": round(self._response_ms_total / self._responses, 3) if self._responses else 0.0,
            "errorRate": round(self.errors_sent / self.messages_received, 6) if self.messages_received else 0.0,
            "timestamp": iso_timestamp(now),
        }


def channel_prefixes(channel: str) -> list[str]:
    """"portfolio:17:positions" -> ["portfolio:", "portfolio:17:"]."""
    return [channel[:i + 1] for i, char in enumerate(channel) if char == ":"]
