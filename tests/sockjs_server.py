"""The SockJS protocol test server (as sockjs-node's tests/test_server configures it), on the compat layer.

Run ``python tests/sockjs_server.py PORT`` and point the official sockjs-protocol suite at
``http://127.0.0.1:PORT``. Services: ``/echo`` (response_limit 4096), ``/disabled_websocket_echo``,
``/cookie_needed_echo`` (JSESSIONID), ``/close`` (closes with 3000 "Go away!" in ``on_open``),
``/ticker`` (``tick!`` every second), ``/amplify`` (answers ``n`` with 2**n ``x``) and ``/broadcast``.
"""

import asyncio
import logging
import math
import sys
from pathlib import Path

import tornado.web
from tornado.ioloop import PeriodicCallback

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sockjs_compat import SockJSConnection, make_sockjs_router  # noqa: E402

__all__ = ["make_app", "main"]


class Echo(SockJSConnection):
    """Sends every message back."""

    def on_message(self, message):
        self.send(message)


class Close(SockJSConnection):
    """Closes the session as soon as it opens."""

    def on_open(self, info):
        self.close(3000, "Go away!")


class Ticker(SockJSConnection):
    """Sends ``tick!`` every second until closed."""

    def on_open(self, info):
        self.timer = PeriodicCallback(lambda: self.send("tick!"), 1000)
        self.timer.start()

    def on_message(self, message):
        pass

    def on_close(self):
        self.timer.stop()


class Amplify(SockJSConnection):
    """Answers a number n (1..18, else 1) with 2**n ``x`` characters."""

    def on_message(self, message):
        try:
            n = math.floor(float(message))
        except (ValueError, OverflowError):
            n = 1
        n = n if 0 < n < 19 else 1
        self.send("x" * 2**n)


class Broadcast(SockJSConnection):
    """Sends every message to every open connection of the service (``members`` is bound per app)."""

    members: set

    def on_open(self, info):
        self.members.add(self)

    def on_message(self, message):
        self.broadcast(list(self.members), message)

    def on_close(self):
        self.members.discard(self)


def make_app() -> tornado.web.Application:
    broadcast = type("Broadcast", (Broadcast,), {"members": set()})
    routers = [
        make_sockjs_router(Echo, "/echo", settings={"response_limit": 4096}),
        make_sockjs_router(Echo, "/disabled_websocket_echo", settings={"websocket": False}),
        make_sockjs_router(Echo, "/cookie_needed_echo", settings={"jsessionid": True}),
        make_sockjs_router(Close, "/close"),
        make_sockjs_router(Ticker, "/ticker"),
        make_sockjs_router(Amplify, "/amplify"),
        make_sockjs_router(broadcast, "/broadcast"),
    ]
    return tornado.web.Application([rule for r in routers for rule in r.urls])


async def main(port: int, host: str = "127.0.0.1") -> None:
    make_app().listen(port, host)
    print(f" [*] SockJS test server on http://{host}:{port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/sockjs_server.py PORT")
    try:
        asyncio.run(main(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
