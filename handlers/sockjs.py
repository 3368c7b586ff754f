"""The SockJS transport: the same Endpoint classes as native WebSocket, behind sockjs-tornado (via sockjs_compat)."""

from sockjs_compat import SockJSConnection, make_sockjs_router, pending_bytes  # noqa: I001 (before sockjs.tornado)
from services.auth import bearer_token
from services.container import Services

from .base import Endpoint, RequestInfo

__all__ = ["SockJSTransport", "sockjs_routes"]


class SockJSTransport(SockJSConnection):
    """A SockJS session carrying one Endpoint; `endpoint_cls` and `services` are bound per application."""

    kind = "sockjs"
    endpoint_cls: type[Endpoint]
    services: Services

    def on_open(self, info) -> None:
        request = RequestInfo(
            token=info.get_argument("token") or bearer_token(info.get_header("authorization")),
            origin=info.get_header("origin"),
            host=info.get_header("host"),
            remote_ip=info.ip,
        )
        self.endpoint = self.endpoint_cls(self.services, self, request)
        self.endpoint.start()

    def on_message(self, message) -> None:
        if isinstance(message, str):
            self.endpoint.receive(message)
        else:  # a SockJS frame is a JSON array of strings; a hand-made one may hold anything
            self.endpoint.receive_non_text("SockJS messages that are not strings")

    def on_close(self) -> None:
        endpoint = getattr(self, "endpoint", None)
        if endpoint is not None:
            endpoint.finish()

    # Transport ----------------------------------------------------------------
    def send_text(self, text: str) -> bool:
        if self.is_closed:
            return False
        self.send(text)
        return True

    def close_transport(self, code: int, reason: str) -> None:
        self.close(code, reason)

    def buffered_bytes(self) -> int:
        return pending_bytes(self)


# The iframe-based transports load the same sockjs-client the page uses, from this server (no CDN).
SOCKJS_SETTINGS = {"sockjs_url": "/vendor/sockjs-client/sockjs.min.js"}


def sockjs_routes(prefix: str, endpoint_cls: type[Endpoint], services: Services) -> list:
    """URL rules serving `endpoint_cls` over SockJS at `prefix`."""
    bound = type(f"SockJS{endpoint_cls.__name__}", (SockJSTransport,),
                 {"endpoint_cls": endpoint_cls, "services": services})
    return make_sockjs_router(bound, prefix, settings=SOCKJS_SETTINGS).urls
