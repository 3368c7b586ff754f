"""permessage-deflate (`--compression`): negotiated only when on, compressed quotes arrive intact, and compressed
input can neither exhaust memory nor slip past the protocol's checks."""

import asyncio
import base64
import os
import socket
import tracemalloc
import zlib
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket
import ujson

from handlers.base import ConnectionState

ROOT = Path(__file__).resolve().parent.parent
MD = "/ws/market-data"
COMPRESSED = {"compression": True}
gen_test = pytest.mark.gen_test(timeout=20)


class Client:
    """A Tornado WebSocket client that offers permessage-deflate (`compression_options={}`)."""

    def __init__(self, conn):
        self.conn = conn

    @classmethod
    async def open(cls, port: int) -> "Client":
        request = tornado.httpclient.HTTPRequest(f"ws://127.0.0.1:{port}{MD}")
        return cls(await tornado.websocket.websocket_connect(request, compression_options={}))

    @property
    def extensions(self) -> str:
        return self.conn.headers.get("Sec-WebSocket-Extensions", "")

    async def send(self, message_type: str, data=None, request_id=None) -> None:
        message = {"type": message_type, "data": data}
        if request_id is not None:
            message["requestId"] = request_id
        await self.conn.write_message(ujson.dumps(message))

    async def wait_for(self, message_type: str, timeout: float = 5.0) -> dict:
        async def read():
            while True:
                text = await self.conn.read_message()
                if text is None:
                    raise ConnectionError(f"closed: {self.conn.close_code} {self.conn.close_reason}")
                if (message := ujson.loads(text))["type"] == message_type:
                    return message
        return await asyncio.wait_for(read(), timeout)


@pytest.fixture
def clients(http_port, server):
    opened = []

    async def connect() -> Client:
        client = await Client.open(http_port)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.conn.close()


def endpoint_of(services, index: int = -1):
    return services.hub.connections("market-data")[index]


@gen_test
@pytest.mark.parametrize("config_overrides", [COMPRESSED])
async def test_with_the_flag_a_client_offering_deflate_gets_it_and_reads_compressed_quotes(clients, services):
    client = await clients()
    assert client.extensions == "permessage-deflate; server_max_window_bits=12"
    await client.wait_for("CONNECTION_ESTABLISHED")
    assert endpoint_of(services).transport.ws_connection._compressor is not None
    symbols = [spec.symbol for spec in services.market.specs()][:10]
    await client.send("SUBSCRIBE", {"symbols": symbols, "updateInterval": 100})
    await client.wait_for("INITIAL_DATA")
    for _ in range(5):  # several frames: the compression context carries from one to the next
        update = await client.wait_for("REAL_TIME_UPDATE")
        assert sorted(quote["symbol"] for quote in update["data"]["quotes"]) == sorted(symbols)
    protocol = client.conn.protocol
    assert protocol._wire_bytes_in * 3 < protocol._message_bytes_in  # really compressed on the wire


@gen_test
async def test_without_the_flag_no_extension_is_negotiated_and_frames_are_plain(clients, services):
    client = await clients()
    assert client.extensions == ""
    await client.wait_for("CONNECTION_ESTABLISHED")
    assert endpoint_of(services).transport.ws_connection._compressor is None
    await client.send("HEARTBEAT", request_id="plain")
    assert (await client.wait_for("HEARTBEAT"))["requestId"] == "plain"


# hostile input over raw sockets -----------------------------------------------------------------

async def raw_handshake(port: int, *, deflate: bool, rcvbuf: int | None = None):
    """A market-data WebSocket opened by hand; returns (reader, writer, the response's extensions header)."""
    sock = socket.socket()
    if rcvbuf:  # before connecting, so the TCP window is negotiated small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
    writer.write(f"GET {MD} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n{offer}\r\n".encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 101")
    extensions = [line.split(":", 1)[1].strip() for line in head.split("\r\n")
                  if line.lower().startswith("sec-websocket-extensions:")]
    return reader, writer, extensions[0] if extensions else ""


def client_frame(payload: bytes, *, rsv1: bool) -> bytes:
    """A masked client text frame; `rsv1` marks the payload as deflated."""
    mask, size = os.urandom(4), len(payload)
    if size < 126:
        length = bytes([0x80 | size])
    elif size <= 0xFFFF:
        length = bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        length = bytes([0x80 | 127]) + size.to_bytes(8, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0xC1 if rsv1 else 0x81]) + length + mask + masked


def deflated(text: bytes) -> bytes:
    """`text` as a permessage-deflate payload (RFC 7692 §7.2.1: the trailing 00 00 ff ff removed)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


async def close_code(reader: asyncio.StreamReader) -> int | None:
    """Skip server frames until a close; its code, or None when the connection ends without one."""
    while True:
        try:
            first, second = await asyncio.wait_for(reader.readexactly(2), 5)
        except asyncio.IncompleteReadError:
            return None
        size = second & 0x7F
        if size >= 126:
            size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
        payload = await reader.readexactly(size)
        if first & 0x0F == 0x8:
            return int.from_bytes(payload[:2], "big")


async def assert_still_usable(client: Client) -> None:
    await client.send("HEARTBEAT", request_id="alive")
    assert (await client.wait_for("HEARTBEAT"))["requestId"] == "alive"


@gen_test
@pytest.mark.parametrize("config_overrides", [COMPRESSED])
async def test_a_small_deflated_frame_expanding_past_the_message_limit_closes_1009_without_inflating_it(
        clients, http_port, services):
    """Tornado inflates at most max_message_bytes (64 KiB) and refuses the rest: a 16 KiB frame of a 16 MiB
    message costs the server kilobytes, not megabytes."""
    bystander = await clients()
    await bystander.wait_for("CONNECTION_ESTABLISHED")
    reader, writer, extensions = await raw_handshake(http_port, deflate=True)
    assert extensions.startswith("permessage-deflate")
    bomb = deflated(b'{"type":"HEARTBEAT","pad":"' + b" " * (16 << 20) + b'"}')
    assert len(bomb) < services.config.max_message_bytes
    tracemalloc.start()
    try:
        writer.write(client_frame(bomb, rsv1=True))
        assert await close_code(reader) == 1009
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"{peak} bytes allocated at the peak"
    await assert_still_usable(bystander)
    writer.close()


@gen_test
async def test_a_deflated_frame_where_no_extension_was_agreed_fails_only_that_connection(
        clients, http_port, services):
    """RFC 6455 §5.2: RSV1 without an extension defining it fails the connection (Tornado drops it, no close frame)."""
    bystander = await clients()
    await bystander.wait_for("CONNECTION_ESTABLISHED")
    reader, writer, extensions = await raw_handshake(http_port, deflate=True)  # offered, but the flag is off
    assert extensions == ""
    writer.write(client_frame(deflated(b'{"type":"HEARTBEAT"}'), rsv1=True))
    assert await close_code(reader) in (None, 1002)
    while len(services.hub) > 1:
        await asyncio.sleep(0.01)
    await assert_still_usable(bystander)
    writer.close()


# slow consumers -------------------------------------------------------------------------------

@gen_test
@pytest.mark.parametrize("config_overrides", [COMPRESSED])
async def test_a_compressed_client_that_stops_reading_is_closed_4008_once_its_backlog_passes_the_cap(
        clients, services):
    """The backlog counts compressed bytes, so the pads are random (incompressible) text."""
    client = await clients()  # a Tornado client reads one frame ahead of the test, then leaves the rest in the socket
    await client.wait_for("CONNECTION_ESTABLISHED")
    endpoint = endpoint_of(services)
    sent = 0
    while endpoint.send("PAD", {"pad": base64.b64encode(os.urandom(768 << 10)).decode()}):
        sent += 1
        assert sent < 64, "the backlog never passed the cap"
    assert endpoint.state is ConnectionState.CLOSING
    pads = 0
    while (message := await client.conn.read_message()) is not None:
        pads += ujson.loads(message)["type"] == "PAD"
    assert (pads, client.conn.close_code, client.conn.close_reason) == (sent, 4008, "slow consumer")


@gen_test
@pytest.mark.parametrize("config_overrides", [{**COMPRESSED, "max_buffered_bytes": 64 * 1024,
                                               "slow_consumer_s": 1.0}])
async def test_compressed_quote_subscribers_that_stop_reading_are_closed_4008_and_a_reader_hears_on(
        clients, http_port, services, caplog):
    symbols = [spec.symbol for spec in services.market.specs()]
    reader = await clients()
    reader_id = (await reader.wait_for("CONNECTION_ESTABLISHED"))["data"]["sessionId"]
    await reader.send("SUBSCRIBE", {"symbols": symbols, "updateInterval": 100})
    await reader.wait_for("INITIAL_DATA")
    stalled = []
    for _ in range(3):
        _, writer, extensions = await raw_handshake(http_port, deflate=True, rcvbuf=4096)
        assert extensions.startswith("permessage-deflate")
        subscribe = {"type": "SUBSCRIBE", "data": {"symbols": symbols, "updateInterval": 100}}
        writer.write(client_frame(ujson.dumps(subscribe).encode(), rsv1=False))
        stalled.append(writer)
    while len(services.hub) < 4:
        await asyncio.sleep(0.01)
    endpoints = [conn for conn in services.hub.connections("market-data") if conn.session_id != reader_id]
    for endpoint in endpoints:  # as over a real network: loopback's kernel buffers would take megabytes first
        endpoint.transport.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    started = asyncio.get_running_loop().time()
    while any(endpoint.is_open for endpoint in endpoints):
        assert asyncio.get_running_loop().time() - started < 15, "the stalled subscribers were not closed"
        await reader.wait_for("REAL_TIME_UPDATE")
    closings = [r for r in caplog.records if r.getMessage() == "closing slow consumer"]
    assert len(closings) == 3
    await reader.wait_for("REAL_TIME_UPDATE")  # the reader hears on
    for writer in stalled:
        writer.close()


# Chromium (last: its module-scoped browser holds the thread's event loop) ----------------------

NEGOTIATED_EXTENSIONS = """
async (url) => {
  const socket = new WebSocket(url);
  return await new Promise((resolve, reject) => {
    setTimeout(() => reject(new Error("no live quotes")), 10000);
    socket.onopen = () => socket.send(JSON.stringify({type: "SUBSCRIBE",
                                                      data: {symbols: ["NVTX", "QBIT"], updateInterval: 200}}));
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "REAL_TIME_UPDATE") {
        socket.close();
        resolve({extensions: socket.extensions, symbols: message.data.quotes.map((q) => q.symbol)});
      }
    };
  });
}
"""


@pytest.mark.parametrize("flags, negotiated", [
    (["--compression"], "permessage-deflate; server_max_window_bits=12"),
    ([], ""),
])
def test_chromium_negotiates_permessage_deflate_only_with_the_flag(browser, start_server, flags, negotiated):
    _, port = start_server("--tick-ms", "100", *flags)
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        result = page.evaluate(NEGOTIATED_EXTENSIONS, f"ws://127.0.0.1:{port}{MD}")
    finally:
        page.close()
    assert result["extensions"] == negotiated
    assert result["symbols"] and set(result["symbols"]) <= {"NVTX", "QBIT"}
