"""The shared connection layer: one Endpoint per client connection, whatever its transport.

An `Endpoint` subclass declares its message types with `@handles`; the base class does the
rest of the protocol (PROTOCOL.md): envelope in and out, field validation, auth, Origin,
rate limits, heartbeats, and turning every refusal into an ERROR frame. Transports (native
WebSocket in websocket.py, SockJS in sockjs.py) only pass text in and out through the `Transport` interface,
so an Endpoint runs as well on a fake transport in a test, with no socket and no event loop.
"""

import enum
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from domain.errors import DomainError
from domain.users import CLASS_ROLES
from realtime.hub import ConnectionRefused
from realtime.protocol import CloseCode, ErrorCode, ProtocolError, decode, encode, encode_data, iso_timestamp
from realtime.ratelimit import TokenBucket
from realtime.scheduler import Cancellable
from realtime.schema import Field, validate
from services.auth import AuthError
from services.cluster.link import user_from_call, user_to_call
from services.container import Services

__all__ = ["Endpoint", "ConnectionState", "Transport", "RequestInfo", "Reply", "handles"]

log = logging.getLogger(__name__)


class ConnectionState(enum.Enum):
    """Where a connection is in its life; it only ever moves forward (python-websockets' `State`)."""

    CONNECTING = 1  # the transport is up; the endpoint has not yet admitted and greeted it
    OPEN = 2  # admitted and greeted: messages flow both ways
    CLOSING = 3  # the server asked the transport to close: nothing more is read or sent
    CLOSED = 4  # the transport has ended: subscriptions and timers are released


_SENDING = frozenset({ConnectionState.CONNECTING, ConnectionState.OPEN})  # CONNECTING: a refusal's ERROR


class Transport(Protocol):
    """What an Endpoint needs of its transport: send text, close, and say how much is still unsent."""

    kind: str

    def send_text(self, text: str) -> bool: ...

    def close_transport(self, code: int, reason: str) -> None: ...

    def buffered_bytes(self) -> int: ...


@dataclass(frozen=True)
class RequestInfo:
    """What the opening request told us: a token (query or Bearer header), Origin, Host, address."""

    token: str | None
    origin: str | None
    host: str | None
    remote_ip: str | None


@dataclass(frozen=True)
class Reply:
    """A message answering a request: with the request's requestId when `direct`, else a push caused by it.

    `data_json` carries data serialized earlier (a stored event's exact payload) instead of `data`.
    """

    type: str
    data: dict | None = None
    data_json: str | None = None
    direct: bool = True


def handles(message_type: str, *, auth: bool = False, **fields: Field) -> Callable:
    """Declare that a method answers `message_type`, with the wire fields it takes (validated, snake_cased).

    `auth=True` makes the message need a signed-in user even on an endpoint open to anonymous clients.
    """

    def mark(method):
        method.handles = (message_type, auth, fields)
        return method

    return mark


class Endpoint:
    """Owns one client's session on one endpoint: identity, sequence numbers, limits, and dispatch.

    Subclasses set `name` and `auth_required`, declare handlers with `@handles`, and may override
    `ready()` (what is sent once the client is known, e.g. PORTFOLIO_LIST). A handler returns a Reply,
    a list of them, or None; it raises DomainError or ProtocolError to refuse, and the base turns that
    into ERROR. Pushes reach the connection through the hub's channels, which it leaves automatically
    when it ends. Its life is `state` (ConnectionState), driven by the transport through `start`,
    `receive` and `finish`, and by the endpoint itself through `close`.
    """

    name = "base"
    auth_required = False
    standing_channels: tuple[str, ...] = ()  # hub channels every connection of this endpoint hears once admitted
    handlers: dict[str, tuple[Callable, bool, dict]] = {}
    remote_attributes: tuple[str, ...] = ()  # per-connection state the engine's copy of an endpoint reads and sets
    runs_on_gateway = False  # True: handled where the connection is, even when the engine runs in another process
    ready_on_gateway = False  # True: `ready()` runs where the connection is (it reads nothing of the engine's)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        table = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                spec = getattr(attr, "handles", None)
                if spec is not None:
                    message_type, auth, fields = spec
                    table[message_type] = (attr, auth, fields)
        cls.handlers = table

    def __init__(self, services: Services, transport: Transport, request: RequestInfo):
        self.services = services
        self.hub = services.hub
        self.config = services.config
        self.transport = transport
        self.request = request
        self.session_id = uuid.uuid4().hex
        self.endpoint = self.name
        self.user = None
        self.user_id: str | None = None
        self.opened_at = services.clock.now()
        self.last_inbound = self.opened_at
        self.seq = 0
        self.request_id: str | None = None  # of the request being handled: for replies the hub delivers later
        self.request_type: str | None = None
        self.received_at: float | None = None  # perf_counter() when the message being handled arrived
        self.role_grants: set[str] = set()  # channels held only because the user is a teacher or an admin
        self.state = ConnectionState.CONNECTING
        self._timers: dict[str, Cancellable] = {}
        self._waiting: list = []  # messages behind one the engine has not yet answered (a gateway)
        self._in_call = False  # a call to the engine is unanswered: what arrives now waits
        self._call_request: str | None = None  # that message's requestId, until something answers it
        self._portfolio_ids: list[str] | None = None  # told by the engine at sign-in, on a gateway
        self._role = None  # the stored role as last reviewed, on a gateway
        self._bucket = TokenBucket(rate=self.config.rate_limit_per_s, burst=self.config.rate_limit_burst,
                                   clock=services.clock)
        self.log = logging.LoggerAdapter(log, {"session_id": self.session_id, "endpoint": self.name})

    # lifecycle ------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self.state is ConnectionState.OPEN

    def start(self) -> None:
        """Called by the transport once it is up: check Origin, admit, sign in, greet (CONNECTING → OPEN)."""
        if self.state is not ConnectionState.CONNECTING:
            return
        if not self.origin_allowed():
            self.log.warning("forbidden origin %r", self.request.origin)
            self.refuse(ErrorCode.FORBIDDEN, "origin not allowed", CloseCode.POLICY_VIOLATION)
            return
        try:
            self.hub.admit(self)
        except ConnectionRefused as refused:
            self.refuse(refused.code, refused.message, refused.close_code)
            return
        for channel in self.standing_channels:
            self.hub.subscribe(self, channel)
        if self.request.token:
            self._check_token(self.request.token, None, self._open)
        else:
            self._open(None)

    def _open(self, verified) -> None:
        """The rest of `start`, once a token given with the request is checked (None: no token was given)."""
        if self.state is not ConnectionState.CONNECTING:
            return
        if verified is not None and not self.bind(*verified):
            return
        self.state = ConnectionState.OPEN
        self.send("CONNECTION_ESTABLISHED", {
            "sessionId": self.session_id,
            "endpoint": self.name,
            "userId": self.user_id,
            "serverTime": iso_timestamp(self.services.clock.now()),
            "heartbeatInterval": self.config.heartbeat_ms,
        })
        link = self.services.engine_link
        if link is not None and link.announced["status"] != "OK":  # what the open connections were told
            self.send("SERVICE_STATUS", {**link.announced, "time": iso_timestamp(self.services.clock.now())})
        if self.user is None and self.auth_required:
            self._arm_timer("auth", self.config.auth_timeout_s, self._auth_timed_out)
        else:
            self._ready()
        self.log.info("connection opened via %s", self.transport.kind)
        self._resume()

    def finish(self) -> None:
        """Called by the transport when the connection has ended, whoever ended it (any state → CLOSED)."""
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.hub.remove(self)  # every channel subscription and the fan-out's go with it
        link = self.services.engine_link
        if link is not None and self.user_id is not None:  # the user's cluster-wide count
            if link.view is not None:
                link.view.unbind(self.session_id)
            else:
                link.tell({"kind": "unbind", "session": self.session_id})
        self.log.info("connection closed")

    def ready(self) -> None:
        """The client is known (or anonymous and allowed): send what this endpoint sends on open."""

    def _ready(self) -> None:
        if self.ready_on_gateway:
            self.ready()
        elif type(self).ready is not Endpoint.ready:
            self._run_or_forward("ready", None, self.ready)

    # auth -------------------------------------------------------------------
    def _check_token(self, token: str, request_id: str | None, then: Callable) -> None:
        """Call `then((stored user, token expiry))` for a good token; refuse the connection (4401) for a bad one.

        The engine knows the users: on a gateway, the check is a call to it, and `then` runs when it answers.
        """
        def refuse(reason: str) -> None:
            self.log.info("token refused: %s", reason)
            self.refuse(ErrorCode.UNAUTHORIZED, f"invalid token: {reason}", CloseCode.UNAUTHORIZED,
                        request_id=request_id, request_type="AUTH" if request_id else None)

        link = self._engine_elsewhere()
        if link is None:
            try:
                verified = self.services.users.signed_in(token)
            except AuthError as error:
                refuse(str(error))
                return
            then(verified)
            return

        def answered(reply: dict) -> None:
            if "refused" in reply:
                refuse(reply["refused"])
                return
            if "limited" in reply:  # the user's connections across the cluster
                self.refuse(ErrorCode.LIMIT_EXCEEDED, reply["limited"], CloseCode.TOO_MANY)
                return
            self._portfolio_ids = reply["portfolioIds"]
            then((user_from_call(reply["user"]), reply["expiresAt"]))

        self._call(link, {"kind": "auth", "token": token}, request_id, "AUTH", answered)

    def bind(self, user, expires_at: float) -> bool:
        """Attach the connection to `user` (role as stored), within the per-user limit, until `expires_at`."""
        user_id = str(user.id)
        try:
            self.hub.bind_user(self, user_id)
        except ConnectionRefused as refused:
            self.refuse(refused.code, refused.message, refused.close_code)
            return False
        link = self.services.engine_link
        if link is not None and link.view is not None and not link.view.bind(link.node, self.session_id, user_id,
                                                                             self.name):
            self.hub.remove(self)
            self.refuse(ErrorCode.LIMIT_EXCEEDED, f"at most {link.view.max_per_user} connections per user to "
                        f"{self.name}", CloseCode.TOO_MANY)
            return False
        self.user, self.user_id = user, user_id
        self.log = logging.LoggerAdapter(log, {"session_id": self.session_id, "endpoint": self.name,
                                               "user_id": user_id})
        self._arm_timer("expiry", expires_at - self.services.clock.now(), self._token_expired)
        return True

    def _arm_timer(self, name: str, delay_s: float, callback) -> None:
        self._cancel_timer(name)
        self._timers[name] = self.services.scheduler.call_later(delay_s, callback)

    def _cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _auth_timed_out(self) -> None:
        self._timers.pop("auth", None)
        if self.is_open and self.user is None:
            self.refuse(ErrorCode.UNAUTHORIZED, "authentication required: send AUTH within "
                        f"{self.config.auth_timeout_s:g} s", CloseCode.UNAUTHORIZED)

    def _token_expired(self) -> None:
        self._timers.pop("expiry", None)
        if self.is_open:
            self.refuse(ErrorCode.UNAUTHORIZED, "token expired", CloseCode.UNAUTHORIZED)

    def authenticate(self, request_id, data: dict) -> None:
        """AUTH: sign in an anonymous or waiting connection; repeating it for the same user is harmless."""
        token = data.get("token")
        if not isinstance(token, str) or not token:
            self.refuse(ErrorCode.UNAUTHORIZED, "AUTH needs data.token", CloseCode.UNAUTHORIZED,
                        request_id=request_id, request_type="AUTH")
            return
        self._check_token(token, request_id, lambda verified: self._authenticated(request_id, *verified))

    def _authenticated(self, request_id, user, expires_at: float) -> None:
        was_waiting = self.user is None and self.auth_required
        if self.user is not None and str(user.id) != self.user_id:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "already signed in as another user", "AUTH")
        if self.user is None:
            if not self.bind(user, expires_at):
                return
        else:
            self._arm_timer("expiry", expires_at - self.services.clock.now(), self._token_expired)
        self._cancel_timer("auth")
        portfolio_ids = (self._portfolio_ids if self._portfolio_ids is not None
                         else self.services.users.portfolio_ids(user))
        self.send("AUTHENTICATED", {"userId": self.user_id, "name": user.display_name, "role": user.role,
                                    "portfolioIds": portfolio_ids}, request_id=request_id)
        if was_waiting:
            self._ready()

    def origin_allowed(self) -> bool:
        """No Origin (not a browser), the page's own host, or a configured --allow-origin."""
        origin = self.request.origin
        if not origin:
            return True
        if origin in self.config.allow_origin or "*" in self.config.allow_origin:
            return True
        return urlsplit(origin).netloc.lower() == (self.request.host or "").lower()

    # channels ---------------------------------------------------------------
    def hold_by_role(self, by_role: bool, names: Iterable[str]) -> None:
        """Note `names` (just subscribed) as granted by the user's role when `by_role` (they carry someone else's
        data, not the user's own or their team's)."""
        if by_role:
            self.role_grants.update(names)

    def review_role(self, role) -> None:
        """A demoted teacher stops hearing other students' data at once, not only on their next request (`role`:
        the user's role as stored now)."""
        self._role = role
        self.role_grants.intersection_update(self.hub.subscriptions(self))
        if not self.role_grants or role in CLASS_ROLES:
            return
        for name in self.role_grants:
            self.hub.unsubscribe(self, name)
        self.log.info("role no longer allows %d subscriptions; ended", len(self.role_grants))
        self.role_grants.clear()
        self.send_error(ErrorCode.FORBIDDEN, "your role changed: your subscriptions to other users' data ended",
                        None, None)

    def stored_role(self):
        """The user's role as stored now; on a gateway, as the engine last said (reviewed every second)."""
        if self._engine_elsewhere() is None:
            return self.services.users.role_of(self.user)
        return self._role or self.user.role

    def hold(self, prefix: str, names: Iterable[str] = ()) -> list[str]:
        """Make `names` this connection's only channels under `prefix` (a new subscription replaces an older
        one of the same thing); returns the channels it left."""
        wanted = list(names)
        left = [name for name in self.hub.subscriptions(self, prefix) if name not in wanted]
        for name in left:
            self.hub.unsubscribe(self, name)
        for name in wanted:
            self.hub.subscribe(self, name)
        return left

    # inbound ----------------------------------------------------------------
    def touch(self) -> None:
        self.last_inbound = self.services.clock.now()

    def receive(self, text: str) -> None:
        """Handle one client frame; never raises."""
        if not self.is_open:
            if self.state is ConnectionState.CONNECTING and self._in_call:  # the engine is checking the token
                if len(self._waiting) >= self.config.rate_limit_burst:  # read later, rate limited then: bounded now
                    self.refuse(ErrorCode.RATE_LIMITED, "too many messages before the connection was open",
                                CloseCode.TOO_MANY)
                    return
                self._waiting.append(text)
            return
        started = self.received_at = time.perf_counter()
        self.touch()
        hub = self.hub
        hub.record_received()
        message_type = self._guarded(None, None, lambda: self._read(text))
        elapsed_ms = (time.perf_counter() - started) * 1000
        hub.record_response(elapsed_ms)
        self.services.metrics.response_time(self._type_label(message_type), elapsed_ms)

    def _read(self, text: str, *, in_turn: bool = False) -> str | None:
        """Rate limit, decode and dispatch one frame, or queue it behind a message the engine has not answered
        (`in_turn`: it waited already, and its turn has come)."""
        allowed = self._bucket.allow()  # every frame counts, readable or not
        if not allowed and self._bucket.refused_in_a_row >= self.config.rate_limit_abuse_count:
            self.refuse(ErrorCode.RATE_LIMITED, "sustained rate-limit abuse", CloseCode.TOO_MANY)
            return None
        if len(text) > self.config.max_message_bytes:
            self.refuse(ErrorCode.INVALID_MESSAGE, "message too large", CloseCode.TOO_LARGE)
            return None
        message = decode(text)  # first, so that even a refusal carries the requestId the client waits on
        if not allowed:  # dropped; retryAfter: seconds until the next message would be taken
            self.send_error(ErrorCode.RATE_LIMITED, f"more than {self.config.rate_limit_per_s:g} messages per "
                            "second", message.request_id, message.type, retry_after_s=self._bucket.wait_s())
        elif not in_turn and (self._in_call or self._waiting):
            self._waiting.append(message)
        else:
            self._guarded(message.request_id, message.type, lambda: self.dispatch(message))
        return message.type

    def _guarded(self, request_id: str | None, message_type: str | None, handle: Callable):
        """Run `handle` (a step of handling one message); a refusal or a failure becomes ERROR, never an exception."""
        try:
            return handle()
        except ProtocolError as error:
            self.send_error(error.code, error.message, error.request_id or request_id,
                            error.request_type or message_type)
        except DomainError as error:
            self.send_error(error.code, error.message, request_id, message_type)
        except Exception:
            self.log.exception("handler failed for %s", message_type)
            self.send_error(ErrorCode.INTERNAL, "internal error", request_id, message_type)
        return message_type

    def _type_label(self, message_type: str | None) -> str:
        """The message type as a metrics label: one this endpoint handles, else INVALID (unreadable) or UNKNOWN,
        so a client cannot grow the label set."""
        if message_type is None:
            return "INVALID"
        if message_type in self.handlers or message_type in ("AUTH", "HEARTBEAT"):
            return message_type
        return "UNKNOWN"

    def receive_non_text(self, what: str) -> None:
        """A message that is not text (a binary frame, a SockJS message that is not a string): ERROR, nothing else."""
        if not self.is_open:
            return
        self.touch()
        self.hub.record_received()
        self.send_error(ErrorCode.INVALID_MESSAGE, f"{what} are not accepted; send JSON text", None, None)

    def dispatch(self, message) -> None:
        if message.type == "AUTH":
            self.authenticate(message.request_id, message.data)
            return
        if self.user is None and self.auth_required:
            self.refuse(ErrorCode.UNAUTHORIZED, "authentication required: send AUTH first",
                        CloseCode.UNAUTHORIZED, request_id=message.request_id, request_type=message.type)
            return
        if message.type == "HEARTBEAT":
            self.send("HEARTBEAT", {"serverTime": iso_timestamp(self.services.clock.now())},
                      request_id=message.request_id)
            return
        entry = self.handlers.get(message.type)
        if entry is None:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {message.type} on {self.name}")
        method, needs_auth, fields = entry
        if needs_auth and self.user is None:
            raise ProtocolError(ErrorCode.UNAUTHORIZED, f"{message.type} needs a signed-in user")
        link = None if self.runs_on_gateway else self._engine_elsewhere()
        if link is not None:
            self._call(link, {"kind": "handle", "type": message.type, "data": message.data}, message.request_id,
                       message.type, None)
            return
        self.request_id, self.request_type = message.request_id, message.type
        try:
            replies = method(self, **validate(message.data, fields))
        finally:
            self.request_id = self.request_type = None
        if isinstance(replies, Reply):
            replies = [replies]
        for reply in replies or ():
            data_json = reply.data_json if reply.data_json is not None else encode_data(reply.data)
            self.send_json(reply.type, data_json, message.request_id if reply.direct else None)

    # the engine in another process (a gateway) -------------------------------
    def _engine_elsewhere(self):
        """The link to the engine when it runs in another process, else None (it runs here)."""
        link = self.services.engine_link
        return None if link is None or link.local else link

    def _run_or_forward(self, kind: str, request_id: str | None, run: Callable) -> None:
        link = self._engine_elsewhere()
        if link is None:
            run()
        else:
            self._call(link, {"kind": kind}, request_id, None, None)

    def remote_state(self) -> dict:
        """What the engine's copy of this endpoint starts from: the connection as this process knows it."""
        return {"session": self.session_id, "endpoint": self.name, "user": user_to_call(self.user),
                "channels": self.hub.subscriptions(self), "grants": sorted(self.role_grants),
                "symbols": self.services.fanout.active(self),
                "attributes": {name: getattr(self, name) for name in self.remote_attributes}}

    def _call(self, link, call: dict, request_id: str | None, request_type: str | None, answered) -> None:
        """Ask the engine; messages that arrive meanwhile wait, so that this connection's messages keep their order.

        `answered(reply)` handles the engine's reply, or by default the reply is applied (`apply_remote`). No
        answer in time is an ERROR UNAVAILABLE, unless a reply to the request has reached the client meanwhile.
        """
        self._in_call, self._call_request = True, request_id
        link.call({**call, "requestId": request_id, "state": self.remote_state()},
                  lambda reply: self._answered(reply, request_id, request_type, answered))

    def _answered(self, reply: dict | None, request_id, request_type, answered) -> None:
        self._in_call = False
        if self.state is ConnectionState.CLOSED:
            return
        pending, self._call_request = self._call_request, None
        if reply is None and self.state is ConnectionState.CONNECTING:  # the token check of a new connection
            self.refuse(ErrorCode.UNAVAILABLE, "the trading engine did not answer in time: connect again",
                        CloseCode.TRY_AGAIN_LATER)
        elif reply is None:
            if pending is not None or request_id is None:  # nothing has answered it
                self.log.warning("the engine did not answer %s", request_type or "a call")
                self.send_error(ErrorCode.UNAVAILABLE, "the trading engine did not answer in time: try again "
                                "(an order resent with the same clientOrderId is not placed twice)",
                                request_id, request_type)
        else:
            self._guarded(request_id, request_type, lambda: (answered or self.apply_remote)(reply))
        self._resume()

    def apply_remote(self, reply: dict) -> None:
        """Do to this connection what the engine's copy of the endpoint did: sends, subscriptions, state."""
        fanout = self.services.fanout
        for op in reply["ops"]:
            kind = op[0]
            if kind == "send":
                if op[1] == "ERROR":
                    self.hub.record_error()
                self.send_json(op[1], op[2], op[3])
            elif kind == "sub":
                self.hub.subscribe(self, op[1])
            elif kind == "unsub":
                self.hub.unsubscribe(self, op[1])
            elif kind == "fanout":
                fanout.subscribe(self, op[1], op[2])
            elif kind == "unfanout":
                fanout.unsubscribe(self, op[1])
            elif kind == "close":
                self.close(op[1], op[2])
        self.role_grants = set(reply["grants"])
        for name, value in reply["attributes"].items():
            setattr(self, name, value)

    def _resume(self) -> None:
        """Read the messages that waited for the engine, until one has to wait for it again."""
        while self._waiting and not self._in_call and self.state is ConnectionState.OPEN:
            item = self._waiting.pop(0)
            if isinstance(item, str):  # a frame that came before the connection was open
                self._guarded(None, None, lambda text=item: self._read(text, in_turn=True))
            else:
                self._guarded(item.request_id, item.type, lambda message=item: self.dispatch(message))

    # outbound ---------------------------------------------------------------
    def send(self, message_type: str, data, request_id: str | None = None) -> bool:
        return self.send_json(message_type, encode_data(data), request_id)

    def send_json(self, message_type: str, data_json: str, request_id: str | None = None, *,
                  backlog: int | None = None) -> bool:
        """Send pre-serialized data in this connection's envelope; False once it is closing or gone.

        `backlog`: the unsent bytes, when the caller (the quote fan-out) has just read them.
        """
        if self.state not in _SENDING:
            return False
        if (self.transport.buffered_bytes() if backlog is None else backlog) > self.config.max_buffered_bytes:
            self.log.warning("closing slow consumer")
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer")
            return False
        if request_id is not None and request_id == self._call_request:
            self._call_request = None  # answered: a late or lost engine reply no longer means silence
        self.seq += 1
        text = encode(message_type, data_json, seq=self.seq, request_id=request_id,
                      timestamp=iso_timestamp(self.services.clock.now()))
        ok = self.transport.send_text(text)
        self.hub.record_sent(ok)
        return ok

    def deliver(self, message_type: str, data_json: str, request_id: str | None, offset: int | None) -> bool:
        """A hub publication for this connection (a reply when `request_id` is set); `offset` is for endpoints
        that replay a stream and must not send an entry twice."""
        return self.send_json(message_type, data_json, request_id)

    def send_error(self, code, message: str, request_id: str | None, request_type: str | None, *,
                   retry_after_s: float | None = None) -> None:
        self.hub.record_error()
        data = {"code": str(code), "error": message, "requestType": request_type}
        if retry_after_s is not None:
            data["retryAfter"] = math.ceil(retry_after_s * 1000) / 1000  # never early: rounded up to the ms
        self.send("ERROR", data, request_id=request_id)

    def refuse(self, code, message: str, close_code: int, *, request_id=None, request_type=None) -> None:
        """ERROR then close: for the protocol's closing cases (auth, limits, Origin, abuse)."""
        self.send_error(code, message, request_id, request_type)
        self.close(close_code, message)

    def close(self, code: int, reason: str) -> None:
        """Ask the transport to close with `code` (→ CLOSING); its end arrives later through `finish`."""
        if self.state in _SENDING:
            if code == CloseCode.SLOW_CONSUMER:
                self.hub.record_slow_consumer()
            self.state = ConnectionState.CLOSING
            self.transport.close_transport(int(code), reason[:120])

    def buffered_bytes(self) -> int:
        return self.transport.buffered_bytes()
