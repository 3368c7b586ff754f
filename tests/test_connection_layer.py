"""The shared connection layer over real WebSockets: envelope, errors, auth, limits, timeouts, Origin."""

import asyncio
import gc
import logging
import os
import re
import socket

import jwt
import pytest
import ujson
from tornado.httpclient import HTTPClientError

from handlers.base import ConnectionState

pytestmark = pytest.mark.gen_test(timeout=20)

MD = "/ws/market-data"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def assert_still_usable(client, request_id="alive"):
    await client.send("HEARTBEAT", request_id=request_id)
    reply = await client.wait_for("HEARTBEAT")
    assert reply["requestId"] == request_id


async def test_connection_established_carries_session_and_heartbeat_interval(ws, http_port):
    client = await ws(MD, expect_established=False)
    hello = await client.expect("CONNECTION_ESTABLISHED")
    assert hello["seq"] == 1 and hello["id"] and TIMESTAMP.match(hello["timestamp"])
    data = hello["data"]
    assert data["endpoint"] == "market-data" and data["userId"] is None
    assert data["heartbeatInterval"] == 30_000 and TIMESTAMP.match(data["serverTime"])
    assert len(data["sessionId"]) >= 16


async def test_every_server_message_has_unique_id_and_consecutive_seq(ws):
    client = await ws(MD)
    for n in range(3):
        await client.send("HEARTBEAT", request_id=f"h{n}")
    replies = [await client.expect("HEARTBEAT") for _ in range(3)]
    assert [r["seq"] for r in replies] == [2, 3, 4]
    assert [r["requestId"] for r in replies] == ["h0", "h1", "h2"]
    assert len({r["id"] for r in client.received}) == len(client.received)


@pytest.mark.parametrize("payload, code", [
    ("not json", "INVALID_MESSAGE"),
    ("[1, 2]", "INVALID_MESSAGE"),
    ('"HEARTBEAT"', "INVALID_MESSAGE"),
    ("null", "INVALID_MESSAGE"),
    ('{"data": {}}', "INVALID_MESSAGE"),
    ('{"type": 42}', "INVALID_MESSAGE"),
    ('{"type": "SUBSCRIBE", "data": [1]}', "INVALID_MESSAGE"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": 5}}', "INVALID_MESSAGE"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"], "updateInterval": "fast"}}', "INVALID_MESSAGE"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"], "updateInterval": NaN}}', "BAD_REQUEST"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"], "updateInterval": 1e300}}', "BAD_REQUEST"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"], "updateInterval": '
     '123456789012345678901234567890}}', "BAD_REQUEST"),
    ('{"type": "SUBSCRIBE", "data": {}}', "BAD_REQUEST"),
    ('{"type": "REQUEST_QUOTE", "data": {"symbol": ["A", {"x": 1}]}}', "INVALID_MESSAGE"),
    ('{"type": "NO_SUCH_THING", "data": {}}', "UNKNOWN_TYPE"),
    ('{"type": "HEARTBEAT", "requestId": "\\ud800"}', "INVALID_MESSAGE"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": ["\\udfff"]}}', "INVALID_MESSAGE"),
    ('{"type": "HEART BEAT"}', "INVALID_MESSAGE"),
    ('{"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"]}, "requestId": {"a": 1}}', "INVALID_MESSAGE"),
])
async def test_hostile_input_gets_error_and_connection_stays_usable(ws, payload, code):
    client = await ws(MD)
    await client.send_raw(payload)
    error = await client.expect("ERROR")
    assert error["data"]["code"] == code, error
    assert error["data"]["error"]
    await assert_still_usable(client)


async def test_error_echoes_request_id_and_request_type(ws):
    client = await ws(MD)
    await client.send("REQUEST_HISTORICAL", {"symbol": "NVTX", "interval": "2m"}, request_id="r-9")
    error = await client.expect("ERROR")
    assert error["requestId"] == "r-9"
    assert error["data"] == {"code": "BAD_REQUEST", "error": error["data"]["error"],
                             "requestType": "REQUEST_HISTORICAL"}
    assert "interval" in error["data"]["error"]


async def test_numeric_request_id_is_echoed_as_string(ws):
    client = await ws(MD)
    await client.send_raw('{"type": "heartbeat", "requestId": 17}')
    reply = await client.expect("HEARTBEAT")
    assert reply["requestId"] == "17"


async def test_binary_frame_is_answered_invalid_message(ws):
    client = await ws(MD)
    await client.send_raw(b"\x00\x01binary", binary=True)
    error = await client.expect("ERROR")
    assert error["data"]["code"] == "INVALID_MESSAGE"
    await assert_still_usable(client)


async def test_garbage_from_one_client_does_not_disturb_another(ws):
    noisy, quiet = await ws(MD), await ws(MD)
    await quiet.send("SUBSCRIBE", {"symbols": ["NVTX"], "updateInterval": 100})
    await quiet.wait_for("INITIAL_DATA")
    for _ in range(5):
        await noisy.send_raw("{{{{")
    update = await quiet.wait_for("REAL_TIME_UPDATE")
    assert [q["symbol"] for q in update["data"]["quotes"]] == ["NVTX"]
    assert all(m["type"] != "ERROR" for m in quiet.received)


@pytest.mark.parametrize("config_overrides", [{"max_message_bytes": 1024}])
async def test_oversized_frame_closes_1009(ws):
    client = await ws(MD)
    await client.send("SUBSCRIBE", {"symbols": ["X" * 2000]})
    code, _ = await client.closed()
    assert code == 1009


@pytest.mark.parametrize("config_overrides", [{"rate_limit_per_s": 2, "rate_limit_burst": 3,
                                               "rate_limit_abuse_count": 10}])
async def test_rate_limit_answers_rate_limited_then_closes_sustained_abuse_4429(ws):
    client = await ws(MD)
    for n in range(4):
        await client.send("HEARTBEAT", request_id=str(n))
    replies = [await client.recv() for _ in range(4)]
    assert [r["type"] for r in replies[:3]] == ["HEARTBEAT"] * 3
    assert replies[3]["type"] == "ERROR" and replies[3]["data"]["code"] == "RATE_LIMITED"
    assert (replies[3]["requestId"], replies[3]["data"]["requestType"]) == ("3", "HEARTBEAT")
    assert 0 < replies[3]["data"]["retryAfter"] <= 0.5  # 2 a second: the next token within half a second
    for _ in range(20):
        await client.send("HEARTBEAT")
    code, _ = await client.closed()
    assert code == 4429


async def test_foreign_origin_gets_forbidden_and_1008(ws):
    client = await ws(MD, headers={"Origin": "http://evil.example"}, expect_established=False)
    error = await client.expect("ERROR")
    assert error["data"]["code"] == "FORBIDDEN"
    assert (await client.closed())[0] == 1008


async def test_same_host_origin_is_accepted(ws, http_port):
    client = await ws(MD, headers={"Origin": f"http://127.0.0.1:{http_port}"})
    await assert_still_usable(client)


@pytest.mark.parametrize("config_overrides", [{"allow_origin": ("http://school.example",)}])
async def test_configured_origin_is_accepted(ws):
    client = await ws(MD, headers={"Origin": "http://school.example"})
    await assert_still_usable(client)


# auth -----------------------------------------------------------------------

def _token(secret, **claims):
    base = {"sub": "1", "name": "x", "role": "student", "exp": 4_000_000_000}
    base.update(claims)
    return jwt.encode(base, secret, algorithm="HS256")


def _alg_none_token(user_id):
    import base64
    def part(obj):
        return base64.urlsafe_b64encode(ujson.dumps(obj).encode()).rstrip(b"=").decode()
    return part({"alg": "none", "typ": "JWT"}) + "." + part({"sub": user_id, "exp": 4_000_000_000}) + "."


@pytest.mark.parametrize("kind", ["expired", "forged", "alg_none", "garbage", "unknown_user"])
async def test_bad_token_is_refused_4401_even_where_anonymous_is_allowed(ws, make_user, services, kind):
    user, good = make_user()
    secret = services.config.jwt_secret
    token = {
        "expired": _token(secret, sub=str(user.id), exp=1_000_000),
        "forged": _token("not-the-secret-" + "y" * 32, sub=str(user.id)),
        "alg_none": _alg_none_token(str(user.id)),
        "garbage": "abc.def.ghi",
        "unknown_user": _token(secret, sub="999999"),
    }[kind]
    client = await ws(MD, token=token, expect_established=False)
    error = await client.expect("ERROR")
    assert error["data"]["code"] == "UNAUTHORIZED"
    assert (await client.closed())[0] == 4401


async def test_token_in_query_identifies_user(ws, make_user):
    user, token = make_user()
    client = await ws(MD, token=token, expect_established=False)
    hello = await client.expect("CONNECTION_ESTABLISHED")
    assert hello["data"]["userId"] == str(user.id)


async def test_bearer_header_identifies_user(ws, make_user):
    user, token = make_user()
    client = await ws(MD, headers={"Authorization": f"Bearer {token}"}, expect_established=False)
    assert (await client.expect("CONNECTION_ESTABLISHED"))["data"]["userId"] == str(user.id)


async def test_auth_message_signs_in_anonymous_connection_with_stored_role(ws, make_user, services):
    user, token = make_user("tess", role="student")
    services.storage.set_role("tess", "teacher")  # the token still says student: the stored role wins
    client = await ws(MD)
    await client.send("AUTH", {"token": token}, request_id="a1")
    reply = await client.expect("AUTHENTICATED")
    assert reply["requestId"] == "a1"
    assert reply["data"] == {"userId": str(user.id), "name": "Tess", "role": "teacher",
                             "portfolioIds": services.book.ids_of(str(user.id))}  # where a bot may trade
    assert len(reply["data"]["portfolioIds"]) == 1


async def test_auth_message_with_bad_token_is_refused_4401(ws):
    client = await ws(MD)
    await client.send("AUTH", {"token": "nope"}, request_id="a2")
    error = await client.expect("ERROR")
    assert error["data"]["code"] == "UNAUTHORIZED" and error["requestId"] == "a2"
    assert (await client.closed())[0] == 4401


@pytest.mark.parametrize("config_overrides", [{"anonymous_market_data": False, "auth_timeout_s": 0.3}])
class TestAuthRequired:
    async def test_other_message_before_auth_is_refused_4401(self, ws):
        client = await ws(MD)
        await client.send("REQUEST_SYMBOLS", request_id="s1")
        error = await client.expect("ERROR")
        assert error["data"]["code"] == "UNAUTHORIZED" and error["requestId"] == "s1"
        assert (await client.closed())[0] == 4401

    async def test_silence_past_auth_timeout_closes_4401(self, ws):
        client = await ws(MD)
        error = await client.expect("ERROR", timeout=3)
        assert error["data"]["code"] == "UNAUTHORIZED"
        assert (await client.closed())[0] == 4401

    async def test_auth_in_time_keeps_connection(self, ws, make_user):
        _, token = make_user()
        client = await ws(MD)
        await client.send("AUTH", {"token": token})
        await client.expect("AUTHENTICATED")
        await asyncio.sleep(0.5)
        await client.send("REQUEST_SYMBOLS")
        assert (await client.expect("SYMBOL_LIST"))["data"]["symbols"]


@pytest.mark.parametrize("config_overrides", [{"token_ttl_s": 1}])
async def test_token_expiring_while_connected_closes_4401(ws, make_user):
    _, token = make_user()
    client = await ws(MD, token=token)
    error = await client.wait_for("ERROR", timeout=5)
    assert error["data"]["code"] == "UNAUTHORIZED" and "expired" in error["data"]["error"]
    assert (await client.closed())[0] == 4401


# limits and timeouts ----------------------------------------------------------

@pytest.mark.parametrize("config_overrides", [{"max_connections_per_user": 2}])
async def test_per_user_limit_refuses_extra_connection_4429(ws, make_user):
    _, token = make_user()
    first, second = await ws(MD, token=token), await ws(MD, token=token)
    third = await ws(MD, token=token, expect_established=False)
    error = await third.expect("ERROR")
    assert error["data"]["code"] == "LIMIT_EXCEEDED"
    assert (await third.closed())[0] == 4429
    await assert_still_usable(first)
    second.close()
    await asyncio.sleep(0.2)
    fourth = await ws(MD, token=token)
    await assert_still_usable(fourth)


@pytest.mark.parametrize("config_overrides", [{"max_connections": 2}])
async def test_server_limit_refuses_extra_connection_1013(ws):
    await ws(MD)
    await ws(MD)
    third = await ws(MD, expect_established=False)
    error = await third.expect("ERROR")
    assert error["data"]["code"] == "LIMIT_EXCEEDED"
    assert (await third.closed())[0] == 1013


@pytest.mark.parametrize("config_overrides", [{"idle_timeout_s": 0.6}])
async def test_idle_connection_is_closed_4408_but_active_one_is_not(ws):
    idle, active = await ws(MD), await ws(MD)
    for _ in range(6):
        await asyncio.sleep(0.2)
        await active.send("HEARTBEAT")
    code, _ = await idle.closed(timeout=3)
    assert code == 4408
    await assert_still_usable(active)


@pytest.mark.parametrize("config_overrides", [{"heartbeat_ms": 200}])
async def test_server_sends_heartbeats(ws):
    client = await ws(MD)
    beat = await client.recv(keep_heartbeats=True, timeout=2)
    assert beat["type"] == "HEARTBEAT" and TIMESTAMP.match(beat["data"]["serverTime"])


# HTTP operations ----------------------------------------------------------------

async def test_healthz_is_ok(http_client, base_url):
    response = await http_client.fetch(base_url + "/healthz")
    body = ujson.loads(response.body)
    assert response.code == 200 and body["status"] == "ok" and body["marketStatus"] == "OPEN"


async def test_metrics_counts_connections_in_prometheus_format(ws, http_client, base_url):
    await ws(MD)
    response = await http_client.fetch(base_url + "/metrics")
    text = response.body.decode()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'stockquest_connections{endpoint="market-data"} 1.0' in text
    assert "stockquest_messages_sent_total" in text


async def test_stats_need_teacher_or_admin(ws, http_client, base_url, make_user):
    _, student = make_user("sam", role="student")
    _, teacher = make_user("tina", role="teacher")
    for headers, code in [({}, 401), ({"Authorization": f"Bearer {student}"}, 403)]:
        with pytest.raises(HTTPClientError) as refused:
            await http_client.fetch(base_url + "/api/stats", headers=headers)
        assert refused.value.code == code
    await ws(MD, token=teacher)
    response = await http_client.fetch(base_url + "/api/stats", headers={"Authorization": f"Bearer {teacher}"})
    stats = ujson.loads(response.body)
    assert set(stats) >= {"totalConnections", "uniqueUsers", "connectionsByType", "connectionsByDuration",
                          "averageConnectionDuration", "messagesSent", "messagesFailed", "sendSuccessRate",
                          "averageResponseTimeMs", "errorRate", "timestamp"}
    assert stats["totalConnections"] == 1 and stats["uniqueUsers"] == 1
    assert stats["connectionsByType"] == {"market-data": 1}


async def test_plain_get_on_endpoint_path_is_the_sockjs_greeting(http_client, base_url):
    response = await http_client.fetch(base_url + MD)
    assert response.body == b"Welcome to SockJS!\n"
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"


async def test_a_client_that_stops_reading_is_closed_4008_once_its_backlog_passes_the_cap(ws, services):
    client = await ws(MD)  # a Tornado client reads one frame ahead of the test, then leaves the rest in the socket
    endpoint = services.hub.connections("market-data")[0]
    sent = 0
    while endpoint.send("PAD", {"pad": "z" * (1 << 20)}):  # the kernel's socket buffers fill, then the stream's
        sent += 1
        assert sent < 64, "the backlog never passed the cap"
    assert endpoint.state is ConnectionState.CLOSING  # closed at the first send past the cap
    pads = 0
    while (message := await client.conn.read_message()) is not None:
        pads += ujson.loads(message)["type"] == "PAD"
    assert (pads, client.conn.close_code, client.conn.close_reason) == (sent, 4008, "slow consumer")


async def test_frames_still_queued_when_a_client_vanishes_are_dropped_without_a_traceback(http_port, server,
                                                                                           services, caplog):
    writer = await raw_websocket(http_port)
    while not services.hub.connections("market-data"):
        await asyncio.sleep(0.01)
    endpoint = services.hub.connections("market-data")[0]
    for _ in range(16):
        endpoint.send("PAD", {"pad": "z" * (1 << 20)})
    writer.transport.abort()  # gone, with megabytes still queued for it
    while len(services.hub):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    gc.collect()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_text_frame_that_is_not_utf8_closes_1007_and_others_are_unaffected(ws):
    bystander = await ws(MD)
    client = await ws(MD)
    await client.conn.write_message(b'{"type": "HEARTBEAT", "x": "\xff\xfe"}', binary=False)
    code, reason = await client.closed()
    assert (code, reason) == (1007, "text frame is not valid UTF-8")
    await assert_still_usable(bystander)


async def test_a_utf8_text_frame_with_non_ascii_is_read_as_usual(ws):
    client = await ws(MD)
    await client.send("HEARTBEAT", request_id="ünïcødé 🔑")
    assert (await client.expect("HEARTBEAT"))["requestId"] == "ünïcødé 🔑"


def masked_text_frame(text: str) -> bytes:
    """A client's WebSocket text frame (clients must mask)."""
    payload, mask = text.encode(), os.urandom(4)
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return bytes([0x81]) + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_websocket(port: int) -> asyncio.StreamWriter:
    """A market-data WebSocket opened by hand, for a client that reads nothing (or vanishes) after the handshake."""
    return (await raw_websocket_pair(port))[1]


async def raw_websocket_pair(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {MD} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


async def server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next (opcode, payload) a server sends (unmasked, unfragmented)."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size >= 126:
        size = int.from_bytes(await reader.readexactly(2 if size == 126 else 8), "big")
    return first & 0x0F, await reader.readexactly(size)


@pytest.mark.parametrize("config_overrides", [{"ping_interval_s": 0.3}])
async def test_a_client_that_never_answers_pings_is_closed_and_one_that_does_stays(ws, http_port):
    """One sweep pings every native connection (no Task per connection each), and still finds a dead peer."""
    answering = await ws(MD)
    reader, writer = await raw_websocket_pair(http_port)
    opcodes = []
    while not opcodes or opcodes[-1] != 0x8:
        opcode, payload = await asyncio.wait_for(server_frame(reader), 5)
        opcodes.append(opcode)
    assert 0x9 in opcodes  # pinged, and this client never answered
    assert (int.from_bytes(payload[:2], "big"), payload[2:]) == (1000, b"ping timed out")
    await assert_still_usable(answering)
    assert answering.conn.close_code is None
    writer.close()


async def subscriber_that_never_reads(port: int, symbols: list[str]):
    """A market-data client that subscribes to quotes every 100 ms, then never reads."""
    writer = await raw_websocket(port)
    writer.write(masked_text_frame(ujson.dumps({"type": "SUBSCRIBE", "data": {"symbols": symbols,
                                                                              "updateInterval": 100}})))
    await writer.drain()
    return writer


@pytest.mark.parametrize("config_overrides", [{"max_buffered_bytes": 64 * 1024, "slow_consumer_s": 1.0}])
async def test_quote_subscribers_that_stop_reading_are_closed_4008_within_seconds_and_a_reader_hears_on(
        ws, http_port, services, caplog):
    symbols = [spec.symbol for spec in services.market.specs()]
    reader = await ws(MD)
    await reader.send("SUBSCRIBE", {"symbols": symbols, "updateInterval": 100})
    await reader.wait_for("INITIAL_DATA")
    stalled = [await subscriber_that_never_reads(http_port, symbols) for _ in range(5)]
    endpoints = [conn for conn in services.hub.connections("market-data") if conn.session_id != reader_id(reader)]
    for endpoint in endpoints:  # as over a real network: loopback's kernel buffers would take megabytes first
        endpoint.transport.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    started = asyncio.get_running_loop().time()
    heard = []
    while any(endpoint.is_open for endpoint in endpoints):
        assert asyncio.get_running_loop().time() - started < 10, "the stalled subscribers were not closed"
        heard.append((await reader.recv())["seq"])
    closings = [r for r in caplog.records if r.getMessage() == "closing slow consumer"]
    assert len(closings) == 5 and all(r.backlog > 4 * 1024 for r in closings)
    assert heard == list(range(heard[0], heard[0] + len(heard))) and len(heard) >= 5  # the reader heard on
    for writer in stalled:
        writer.close()


def reader_id(client) -> str:
    return next(m for m in client.received if m["type"] == "CONNECTION_ESTABLISHED")["data"]["sessionId"]
