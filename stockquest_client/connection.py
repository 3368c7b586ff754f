"""One endpoint's WebSocket, kept open: requests matched by requestId, pushes to listeners, reconnect with backoff.

A `Connection` owns the socket of one endpoint (/ws/orders, ...) for the life of the client. It reconnects on
its own when the socket drops; the endpoint object on top of it (endpoints.py) says, through `on_open`, what
to send on every new socket before anything else (subscriptions; for orders, the resume by eventId). A
request sent on a socket that then drops is sent again on the next one only when it was marked
`retry=True` (safe to repeat: reads, and orders that carry a clientOrderId); any other raises ConnectionLost,
since its outcome is unknown.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import tornado.httpclient
import tornado.websocket

from .errors import ClientClosed, ConnectionLost, MalformedMessage, RequestTimeout, ServerError
from .messages import Envelope, ErrorReply, parse_envelope

__all__ = ["Connection", "RateLimiter", "TokenSource", "FATAL_CLOSE_CODES"]

log = logging.getLogger("stockquest_client")

TokenSource = Callable[[bool], Awaitable[str | None]]  # (refresh) -> token; refresh=True after a 4401
FATAL_CLOSE_CODES = {1008: "forbidden origin", 4401: "unauthorized"}  # reconnecting would be refused again
_DROPPED = object()  # what a pending request's future gets when its socket goes away


class RateLimiter:
    """A token bucket on the client's side, so a busy bot stays under the server's 20 messages/s (bursts of 40)."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.stamp = float(burst), time.monotonic()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self.tokens) / self.rate)

    def pause(self, seconds: float) -> None:
        """The server said RATE_LIMITED: send nothing more for `seconds`."""
        self.tokens = min(self.tokens, 0.0) - seconds * self.rate


@dataclass(eq=False)
class _Pending:
    request_id: str
    type: str
    data: dict
    expect: frozenset[str]
    retry: bool
    future: asyncio.Future | None = None
    sent_on: int | None = None  # the socket generation it was last sent on


@dataclass
class Stats:
    """What a connection has been through; tests and curious bots read it."""

    connects: int = 0
    drops: int = 0
    malformed: int = 0
    rate_limited: int = 0
    last_close: tuple[int | None, str | None] = (None, None)
    sent: int = 0
    received: int = 0
    heartbeats: int = 0
    errors: list[ErrorReply] = field(default_factory=list)  # ERRORs that answered no request of ours


class Connection:
    """The socket of one endpoint, reopened whenever it drops, until `close()`.

    >>> conn = Connection("ws://127.0.0.1:8080/ws/orders", tokens)   # doctest: +SKIP
    >>> conn.listen("EXECUTION_REPORT", print)
    >>> reply = await conn.request("REQUEST_ORDER_STATUS", {"orderId": "O1"}, expect=("ORDER_STATUS",))
    """

    def __init__(self, url: str, tokens: TokenSource, *, name: str | None = None, request_timeout: float = 10.0,
                 rate: float = 15.0, burst: int = 30, backoff: tuple[float, float] = (0.25, 10.0),
                 connect_timeout: float = 10.0, ping_interval: float | None = 20.0,
                 on_open: Callable[[], Awaitable[None]] | None = None):
        self.url = url
        self.name = name or url.rsplit("/", 1)[-1]
        self.tokens = tokens
        self.request_timeout = request_timeout
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.ping_interval = ping_interval
        self.on_open = on_open
        self.limiter = RateLimiter(rate, burst)
        self.stats = Stats()
        self.session_id: str | None = None
        self.heartbeat_interval_s = 30.0
        self._listeners: dict[str, list[Callable[[Envelope], None]]] = {}
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{self.name[:3]}{random.randrange(16**6):06x}"
        self._ws: tornado.websocket.WebSocketClientConnection | None = None
        self._generation = 0
        self._ready = asyncio.Event()
        self._hello: asyncio.Future | None = None
        self._closed = False
        self._fatal: BaseException | None = None
        self._runner: asyncio.Task | None = None

    # life -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Open the socket in the background (idempotent); requests wait until it is ready."""
        if self._runner is None and not self._closed:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name=f"stockquest:{self.name}")

    async def close(self) -> None:
        """Close for good: pending requests raise ClientClosed, listeners stop hearing."""
        self._closed = True
        self._fail_pending(ClientClosed(f"{self.name}: client closed"))
        if self._ws is not None:
            self._ws.close(1000, "client closing")
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except (asyncio.CancelledError, Exception):
                pass

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set() and not self._closed

    def drop(self) -> None:
        """Cut the TCP stream without a closing handshake, as a failing network would; the connection reopens.

        For tests and for a bot that wants to check its own recovery.
        """
        ws = self._ws
        if ws is not None and ws.protocol is not None and ws.protocol.stream is not None:
            ws.protocol.stream.close()

    async def wait_ready(self) -> int:
        """Wait for an open, greeted socket; its generation number. ClientClosed once closed for good."""
        self.start()
        while not self._ready.is_set():
            if self._closed:
                raise self._fatal or ClientClosed(f"{self.name}: client closed")
            ready = asyncio.ensure_future(self._ready.wait())
            try:
                await ready
            finally:
                ready.cancel()
        if self._closed:
            raise self._fatal or ClientClosed(f"{self.name}: client closed")
        return self._generation

    async def _run(self) -> None:
        attempt = 0
        refreshed = False
        while not self._closed:
            try:
                opened = await self._open(refresh=refreshed)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # refused, unreachable, handshake failed: all mean "try again later"
                log.warning("%s: cannot connect (%s)", self.name, error)
                opened = False
            if opened:
                attempt = 0
                reader = self._read_task
                await asyncio.shield(reader)
            self._ws = None
            code, reason = self.stats.last_close
            if self._closed:
                break
            if code in FATAL_CLOSE_CODES:
                if code == 4401 and not refreshed:
                    refreshed = True  # one fresh token (a re-login) before giving up
                    continue
                self._fatal = ClientClosed(f"{self.name}: closed {code} {reason or FATAL_CLOSE_CODES[code]}")
                self._closed = True
                self._fail_pending(self._fatal)
                self._ready.set()  # wake waiters so they see the failure
                log.error("%s: %s; not reconnecting", self.name, self._fatal)
                break
            refreshed = refreshed and not opened
            delay = min(self.backoff[1], self.backoff[0] * 2**attempt) * (0.5 + random.random() / 2)
            attempt += 1
            self.stats.drops += 1
            log.info("%s: connection lost (close %s %s); reconnecting in %.2f s", self.name, code, reason, delay)
            await asyncio.sleep(delay)

    async def _open(self, refresh: bool) -> bool:
        """Connect, read CONNECTION_ESTABLISHED, run `on_open`; True when the socket is ready for requests."""
        token = await self.tokens(refresh)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = tornado.httpclient.HTTPRequest(self.url, headers=headers, connect_timeout=self.connect_timeout,
                                                 request_timeout=self.connect_timeout)
        self.stats.last_close = (None, None)
        ws = await tornado.websocket.websocket_connect(
            request, ping_interval=self.ping_interval, ping_timeout=self.ping_interval)
        if self._closed:
            ws.close(1000, "client closing")
            return False
        self._ws = ws
        self._generation += 1
        self.stats.connects += 1
        self._hello = asyncio.get_running_loop().create_future()
        self._read_task = asyncio.get_running_loop().create_task(self._read(ws))
        try:
            hello = await asyncio.wait_for(asyncio.shield(self._hello), self.connect_timeout)
        except (asyncio.TimeoutError, ConnectionError):
            ws.close(1000, "no greeting")
            await self._read_task
            return False
        if hello.type == "ERROR":  # refused on open (bad token, limits): the close code follows
            await self._read_task
            return False
        self.session_id = hello.data.get("sessionId")
        interval = hello.data.get("heartbeatInterval")
        if isinstance(interval, int) and interval > 0:
            self.heartbeat_interval_s = interval / 1000
        if self.on_open is not None:
            try:
                await self.on_open()
            except (ConnectionLost, ClientClosed, RequestTimeout, ServerError) as error:
                log.warning("%s: restoring the session failed (%s); reconnecting", self.name, error)
                ws.close(1000, "restore failed")
                await self._read_task
                return False
        self._ready.set()
        return True

    async def _read(self, ws) -> None:
        """Read until the socket ends; a silence past two heartbeats counts as a dead socket."""
        try:
            while True:
                silence = 2 * self.heartbeat_interval_s + 5
                try:
                    text = await asyncio.wait_for(ws.read_message(), silence)
                except asyncio.TimeoutError:
                    log.warning("%s: nothing heard for %.0f s; reopening", self.name, silence)
                    ws.close(4000, "silent")
                    self.stats.last_close = (None, "silent")
                    return
                if text is None:
                    self.stats.last_close = (ws.close_code, ws.close_reason)
                    return
                self._handle(text)
        finally:
            self._ready.clear()
            self._fail_pending(None)  # at once, so that a request waiting on this socket does not wait for its timeout
            if self._hello is not None and not self._hello.done():
                self._hello.set_exception(ConnectionError("closed before CONNECTION_ESTABLISHED"))
                self._hello.exception()  # retrieved: nobody may be waiting any more

    def _handle(self, text) -> None:
        """One frame: answer the request it names, then tell the listeners of its type. Never raises."""
        self.stats.received += 1
        try:
            envelope = parse_envelope(text)
        except MalformedMessage as error:
            self.stats.malformed += 1
            log.warning("%s: skipped a malformed frame: %s", self.name, error)
            return
        if envelope.type == "CONNECTION_ESTABLISHED" or (envelope.type == "ERROR" and not self._ready.is_set()):
            if self._hello is not None and not self._hello.done():
                self._hello.set_result(envelope)
        if envelope.type == "HEARTBEAT":
            self.stats.heartbeats += 1
        pending = self._pending.get(envelope.request_id) if envelope.request_id is not None else None
        if (pending is not None and pending.future is not None and not pending.future.done()
                and (envelope.type in pending.expect or envelope.type == "ERROR")):
            pending.future.set_result(envelope)
        elif envelope.type == "ERROR":
            try:
                reply = ErrorReply.from_wire(envelope.data, envelope.request_id)
            except MalformedMessage:
                reply = ErrorReply("UNKNOWN", "", None, envelope.request_id, None)
            self.stats.errors.append(reply)
            log.warning("%s: server error not answering a pending request: %s %s", self.name, reply.code, reply.error)
        for listener in tuple(self._listeners.get(envelope.type, ())):
            try:
                listener(envelope)
            except MalformedMessage as error:
                self.stats.malformed += 1
                log.warning("%s: skipped a malformed %s: %s", self.name, envelope.type, error)
            except Exception:
                log.exception("%s: a listener of %s failed", self.name, envelope.type)

    def _fail_pending(self, error: BaseException | None) -> None:
        """Wake requests waiting on the dead socket; `error` None means "it dropped", decided per request."""
        for pending in self._pending.values():
            if pending.future is not None and not pending.future.done():
                pending.future.set_result(_DROPPED if error is None else error)

    # listeners and requests ---------------------------------------------------------------------------------
    def listen(self, message_types: str | Iterable[str], callback: Callable[[Envelope], None]) -> Callable[[], None]:
        """Call `callback` with every frame of these types (pushes and replies alike); returns the un-listen."""
        types = [message_types] if isinstance(message_types, str) else list(message_types)
        for message_type in types:
            self._listeners.setdefault(message_type, []).append(callback)

        def remove() -> None:
            for message_type in types:
                callbacks = self._listeners.get(message_type, [])
                if callback in callbacks:
                    callbacks.remove(callback)

        return remove

    async def request(self, message_type: str, data: dict | None = None, *, expect: Iterable[str],
                      timeout: float | None = None, retry: bool = False, opening: bool = False) -> Envelope:
        """Send a request and wait for its answer: the first reply with its requestId of a type in `expect`.

        ERROR raises ServerError with the server's code. RATE_LIMITED is waited out and sent again (the server
        dropped the message). `retry`: send again on the next socket if this one drops before the answer.
        `opening`: sent from `on_open`, before the socket is ready for everyone else.
        """
        pending = _Pending(f"{self._prefix}-{next(self._ids)}", message_type, data or {}, frozenset(expect), retry)
        self._pending[pending.request_id] = pending
        timeout = self.request_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(self._drive(pending, opening), timeout)
        except asyncio.TimeoutError:
            raise RequestTimeout(message_type, pending.request_id, timeout) from None
        finally:
            self._pending.pop(pending.request_id, None)

    async def _drive(self, pending: _Pending, opening: bool) -> Envelope:
        limited = 0
        while True:
            generation = self._generation if opening else await self.wait_ready()
            if pending.sent_on is not None and pending.sent_on != generation and not pending.retry:
                raise ConnectionLost(f"{self.name}: connection dropped after {pending.type} was sent")
            pending.future = asyncio.get_running_loop().create_future()
            await self.limiter.acquire()
            ws = self._ws
            if ws is None or generation != self._generation:
                if opening:
                    raise ConnectionLost(f"{self.name}: connection dropped while reopening")
                continue
            message = {"type": pending.type, "data": pending.data, "requestId": pending.request_id}
            try:
                await ws.write_message(_dumps(message))
            except tornado.websocket.WebSocketClosedError:
                if opening or not pending.retry:
                    raise ConnectionLost(f"{self.name}: connection dropped while sending {pending.type}") from None
                await asyncio.sleep(0.05)
                continue
            pending.sent_on = generation
            self.stats.sent += 1
            outcome = await pending.future
            if outcome is _DROPPED:
                if pending.retry and not opening:
                    continue
                raise ConnectionLost(f"{self.name}: connection dropped before the answer to {pending.type}")
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome.type == "ERROR":
                reply = ErrorReply.from_wire(outcome.data, outcome.request_id)
                if reply.code == "RATE_LIMITED" and limited < 5:
                    limited += 1
                    self.stats.rate_limited += 1
                    wait = reply.retry_after if reply.retry_after and reply.retry_after > 0 else 1 / self.limiter.rate
                    self.limiter.pause(wait)
                    pending.sent_on = None  # dropped by the server: sending it again is always safe
                    continue
                raise reply.exception()
            return outcome

    async def send(self, message_type: str, data: dict | None = None) -> bool:
        """Fire and forget (no requestId, no answer awaited): False when there is no open socket."""
        await self.limiter.acquire()
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.write_message(_dumps({"type": message_type, "data": data or {}}))
        except tornado.websocket.WebSocketClosedError:
            return False
        self.stats.sent += 1
        return True


def _dumps(message: dict) -> str:
    """JSON for the server; Decimals go as decimal strings, which the server reads for prices exactly."""

    def default(value):
        if isinstance(value, Decimal):
            return str(value)
        raise TypeError(f"cannot send {type(value).__name__}")

    return json.dumps(message, default=default, separators=(",", ":"))
