"""The native WebSocket transport: Tornado's WebSocketHandler carrying one Endpoint of any kind."""

import asyncio

import tornado.httputil
import tornado.iostream
import tornado.websocket

from realtime.protocol import CloseCode
from services.auth import bearer_token
from services.container import Services
from sockjs_compat import unsent_bytes

from .base import Endpoint, RequestInfo

__all__ = ["WebSocketTransport", "request_token", "keep_alive", "SOCKJS_GREETING"]

SOCKJS_GREETING = "Welcome to SockJS!\n"

# permessage-deflate (`--compression`). Memory is what limits it: zlib's defaults (a 32 KiB window, mem_level 8)
# hold ~210 KiB per connection once the window has filled, 2 GiB at 10,000 connections. A 4 KiB window still
# holds the previous update (10 quotes are ~3 KB, and consecutive ones are alike) and mem_level 2 a smaller hash
# table: ~24 KiB per connection for 11x instead of 11.8x on quote frames, and faster (docs/performance.md).
COMPRESSION_OPTIONS = {"compression_level": 6, "mem_level": 2}
SERVER_MAX_WINDOW_BITS = 12


def request_token(request: tornado.httputil.HTTPServerRequest) -> str | None:
    """The token from `?token=` or `Authorization: Bearer`."""
    token = request.query_arguments.get("token")
    if token:
        return token[-1].decode("utf-8", "replace")
    return bearer_token(request.headers.get("Authorization"))


class _Protocol(tornado.websocket.WebSocketProtocol13):
    """RFC 6455 §8.1: a text frame that is not UTF-8 fails the connection with 1007 (Tornado drops the socket)."""

    def _handle_message(self, opcode, data):
        if opcode == 0x1 and not self._frame_compressed and not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.close(CloseCode.INVALID_PAYLOAD, "text frame is not valid UTF-8")
                return None
        return super()._handle_message(opcode, data)

    def _create_compressors(self, side, agreed_parameters, compression_options=None):
        """Cap the server's window at SERVER_MAX_WINDOW_BITS (or the client's offer, if lower).

        RFC 7692 §7.1.2.1 lets a server's response add `server_max_window_bits` the client did not offer; Tornado
        writes the response from this same dict after this call, so the client learns the cap."""
        if side == "server":
            offered = agreed_parameters.get("server_max_window_bits")
            bits = min(int(offered), SERVER_MAX_WINDOW_BITS) if offered else SERVER_MAX_WINDOW_BITS
            agreed_parameters["server_max_window_bits"] = str(bits)
        super()._create_compressors(side, agreed_parameters, compression_options)


class WebSocketTransport(tornado.websocket.WebSocketHandler):
    """Native WebSocket transport for any Endpoint class (route kwargs: endpoint_cls, services)."""

    kind = "websocket"

    def initialize(self, endpoint_cls: type[Endpoint], services: Services) -> None:
        self.endpoint_cls = endpoint_cls
        self.services = services
        self.endpoint: Endpoint | None = None
        self._next_ping_at = services.clock.now() + services.config.ping_interval_s
        self._pinged_at: float | None = None  # when the ping not yet answered went out

    async def get(self, *args, **kwargs):
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            # The same path is the SockJS prefix: answer its greeting like sockjs-node does.
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish(SOCKJS_GREETING)
            return
        await super().get(*args, **kwargs)

    def get_websocket_protocol(self):
        standard = super().get_websocket_protocol()
        return None if standard is None else _Protocol(self, False, standard.params)

    def get_compression_options(self) -> dict | None:
        """permessage-deflate when `--compression` is on and the client offers it (off by default: CPU)."""
        return COMPRESSION_OPTIONS if self.services.config.compression else None

    def check_origin(self, origin: str) -> bool:
        """Accept the handshake; the Endpoint checks Origin and closes 1008 with an ERROR saying why."""
        return True

    def open(self, *args, **kwargs) -> None:
        self.set_nodelay(True)
        info = RequestInfo(
            token=request_token(self.request),
            origin=self.request.headers.get("Origin"),
            host=self.request.host,
            remote_ip=self.request.remote_ip,
        )
        self.endpoint = self.endpoint_cls(self.services, self, info)
        self.endpoint.start()

    async def on_message(self, message) -> None:
        # Yield to the loop first: Tornado reads already-buffered frames without returning to it, so one
        # client pipelining requests would otherwise be served for seconds while every other one waits.
        await asyncio.sleep(0)
        if self.endpoint is None:
            return
        if isinstance(message, bytes):
            self.endpoint.receive_non_text("binary frames")
        else:
            self.endpoint.receive(message)

    def on_pong(self, data: bytes) -> None:
        self._pinged_at = None
        if self.endpoint is not None:
            self.endpoint.touch()

    def keep_alive(self, now: float, interval: float, timeout: float) -> None:
        """Ping every `interval` seconds; close a connection whose ping goes `timeout` seconds unanswered.

        Called for every connection by one sweep a second (`keep_alive`): Tornado's own pings run an asyncio
        Task per connection, which cost ~1.7 KB and a tenth of a handshake's CPU each (issue 10's figures).
        """
        if self._pinged_at is not None:
            if now - self._pinged_at >= timeout:
                self.close(reason="ping timed out")
            return
        if now >= self._next_ping_at:
            self._pinged_at, self._next_ping_at = now, now + interval
            try:
                self.ping()
            except tornado.websocket.WebSocketClosedError:
                pass

    def on_ping(self, data: bytes) -> None:
        if self.endpoint is not None:
            self.endpoint.touch()

    def on_close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.finish()

    # Transport ----------------------------------------------------------------
    def send_text(self, text: str) -> bool:
        """Frame the text here and send it straight to the socket while nothing waits in the stream; only what
        the kernel does not take goes through the IOStream (in order, and counted as backlog).

        `write_message` would make an asyncio Task per frame and the stream a Future per write: with the
        socket calls, the largest costs of a fan-out (issue 10's profiles). With permessage-deflate negotiated the
        payload goes through the connection's own compressor first (RSV1 set): its context carries from frame to
        frame, so every data frame to that client must pass through it, in the order sent."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return False
        stream = connection.stream
        compressor = connection._compressor  # Tornado's, made at the handshake when the extension was agreed
        if compressor is None:
            frame = text_frame(text.encode())
        else:
            frame = text_frame(compressor.compress(text.encode()), compressed=True)
        try:
            if not stream.writing() and type(stream) is tornado.iostream.IOStream:  # not TLS, nothing queued
                try:
                    sent = stream.socket.send(frame)
                except BlockingIOError:
                    sent = 0
                if sent == len(frame):
                    return True
                frame = memoryview(frame)[sent:]
            stream.write(frame)
        except (tornado.iostream.StreamClosedError, OSError):
            return False
        return True

    def close_transport(self, code: int, reason: str) -> None:
        self.close(code, reason)

    def buffered_bytes(self) -> int:
        return unsent_bytes(getattr(self.ws_connection, "stream", None))


def keep_alive(connections, now: float, *, interval: float, timeout: float) -> None:
    """One sweep of the native WebSocket pings over `connections` (the hub's; SockJS has its own heartbeat)."""
    for connection in connections:
        transport = connection.transport
        if transport.kind == WebSocketTransport.kind:
            transport.keep_alive(now, interval, timeout)


def text_frame(payload: bytes, compressed: bool = False) -> bytes:
    """One unfragmented, unmasked RFC 6455 text frame, as a server sends it; `compressed`: a permessage-deflate
    payload, flagged by RSV1 (RFC 7692 §6)."""
    first = 0xC1 if compressed else 0x81
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size <= 0xFFFF:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload
