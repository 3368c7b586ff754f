"""The HTTP server itself: forwarding headers believed only from trusted proxies, and slow requests dropped."""

import asyncio
import socket
import time

import pytest
import tornado.escape
import tornado.httpclient
import tornado.web

from handlers.server import make_server
from services.config import Config

pytestmark = pytest.mark.gen_test(timeout=20)


class WhoAmI(tornado.web.RequestHandler):
    def get(self):
        self.write({"ip": self.request.remote_ip, "protocol": self.request.protocol})


@pytest.fixture
def serve(io_loop):
    """Serve a tiny app with the server's own settings: `port = serve(**config)`."""
    servers = []

    def start(**config):
        server = make_server(tornado.web.Application([("/", WhoAmI)]), Config(**config), max_body_size=1024)
        sock, port = _listening_socket()
        server.add_sockets([sock])
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.stop()


def _listening_socket():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock, sock.getsockname()[1]


async def who(port, **headers):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/", headers=headers)
    return tornado.escape.json_decode(response.body)


FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


async def test_forwarding_headers_are_ignored_unless_the_peer_is_a_trusted_proxy(serve):
    assert await who(serve(), **FORWARDED) == {"ip": "127.0.0.1", "protocol": "http"}
    assert await who(serve(trusted_proxies=("10.0.0.0/8",)), **FORWARDED) == {"ip": "127.0.0.1", "protocol": "http"}


async def test_a_trusted_proxy_names_the_client_and_its_own_hops_are_skipped(serve):
    port = serve(trusted_proxies=("127.0.0.0/8", "192.0.2.1"))
    assert await who(port, **FORWARDED) == {"ip": "203.0.113.9", "protocol": "https"}
    chain = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 192.0.2.1"}
    assert (await who(port, **chain))["ip"] == "203.0.113.9"  # the last hop that is not a trusted proxy
    assert await who(port) == {"ip": "127.0.0.1", "protocol": "http"}  # nothing forwarded: the peer


async def test_a_half_sent_request_is_dropped_after_the_header_timeout(serve):
    port = serve(header_timeout_s=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # closed by the server
    assert 0.4 < time.monotonic() - started < 3
    writer.close()
