"""The native WebSocket transport: Tornado's WebSocketHandler carrying one Endpoint of any kind."""

import asyncio

import tornado.httputil
import tornado.websocket

from services.auth import bearer_token
from services.container import Services

from .base import Endpoint, RequestInfo

__all__ = ["WebSocketTransport", "request_token", "SOCKJS_GREETING"]

SOCKJS_GREETING = "Welcome to SockJS!\n"


def request_token(request: tornado.httputil.HTTPServerRequest) -> str | None:
    """The token from `?token=` or `Authorization: Bearer`."""
    token = request.query_arguments.get("token")
    if token:
        return token[-1].decode("utf-8", "replace")
    return bearer_token(request.headers.get("Authorization"))


class WebSocketTransport(tornado.websocket.WebSocketHandler):
    """Native WebSocket transport for any Endpoint class (route kwargs: endpoint_cls, services)."""

    kind = "websocket"

    def initialize(self, endpoint_cls: type[Endpoint], services: Services) -> None:
        self.endpoint_cls = endpoint_cls
        self.services = services
        self.endpoint: Endpoint | None = None

    async def get(self, *args, **kwargs):
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            # The same path is the SockJS prefix: answer its greeting like sockjs-node does.
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish(SOCKJS_GREETING)
            return
        await super().get(*args, **kwargs)

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
            self.endpoint.receive_binary()
        else:
            self.endpoint.receive(message)

    def on_pong(self, data: bytes) -> None:
        if self.endpoint is not None:
            self.endpoint.touch()

    def on_ping(self, data: bytes) -> None:
        if self.endpoint is not None:
            self.endpoint.touch()

    def on_close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.finish()

    # Transport ----------------------------------------------------------------
    def send_text(self, text: str) -> bool:
        try:
            self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            return False
        return True

    def close_transport(self, code: int, reason: str) -> None:
        self.close(code, reason)

    def buffered_bytes(self) -> int:
        connection = self.ws_connection
        stream = getattr(connection, "stream", None)
        return getattr(stream, "_write_buffer_size", 0) if stream is not None else 0
