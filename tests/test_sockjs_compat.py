"""The SockJS compat layer over real sockets on 127.0.0.1: each protocol fix, echo, close codes, sockjs-client."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.websocket import websocket_connect

from sockjs_compat import SockJSConnection, make_sockjs_router, pending_bytes

ROOT = Path(__file__).resolve().parent.parent
NODE_HARNESS = ROOT / "tests" / "node" / "sockjs_client.js"

pytestmark = [
    pytest.mark.filterwarnings("ignore:make_current is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:clear_current is deprecated:DeprecationWarning"),
]
gen_test = pytest.mark.gen_test(timeout=15)

CODES = {4401: "Unauthorized", 4408: "Idle timeout", 4429: "Too many connections", 4008: "Slow consumer",
         1008: "Forbidden origin", 1009: "Message too big", 1013: "Try again later", 1001: "Server shutting down"}
NO_CACHE = "no-store, no-cache, no-transform, must-revalidate, max-age=0"


# Connections served in these tests -----------------------------------------------------------------


class Recorded(SockJSConnection):
    """Remembers its instances in `opened` (a list bound per application)."""

    opened: list

    def on_open(self, info):
        self.info = info
        self.closed = False
        self.opened.append(self)

    def on_close(self):
        self.closed = True


class Echo(Recorded):
    """Echoes; `close CODE REASON` closes; `burst N SIZE` sends N messages of SIZE characters."""

    def on_message(self, message):
        command, _, rest = message.partition(" ")
        if command == "close":
            code, _, reason = rest.partition(" ")
            self.close(int(code), reason)
        elif command == "burst":
            count, size = map(int, rest.split())
            for _ in range(count):
                self.send("x" * size)
        else:
            self.send(message)


class Closer(Recorded):
    """Closes inside on_open with ?code=&reason= (default: close() without arguments, 3000 "Go away!")."""

    def on_open(self, info):
        super().on_open(info)
        code = info.get_argument("code")
        if code is None:
            self.close()
        else:
            self.close(int(code), info.get_argument("reason") or "")

    def on_message(self, message):
        pass


class SendThenClose(Recorded):
    """Sends two messages then closes with 4401, all inside on_open."""

    def on_open(self, info):
        super().on_open(info)
        self.send("first")
        self.send("second")
        self.close(4401, "Unauthorized")

    def on_message(self, message):
        pass


class WhoAmI(Recorded):
    """Answers on open with what ConnectionInfo told it."""

    def on_open(self, info):
        super().on_open(info)
        self.send(json.dumps({"type": "WHOAMI", "token": info.get_argument("token"),
                              "origin": info.get_header("Origin"),
                              "authorization": info.get_header("Authorization"),
                              "transport": info.transport, "ip": info.ip}))

    def on_message(self, message):
        pass


class Broken(Recorded):
    """Fails in on_open."""

    def on_open(self, info):
        raise RuntimeError("boom")

    def on_message(self, message):
        pass


@pytest.fixture
def opened():
    return []


@pytest.fixture
def app(opened):
    def bind(cls):
        return type(cls.__name__, (cls,), {"opened": opened})

    routers = [
        make_sockjs_router(bind(Echo), "/echo", settings={"response_limit": 4096}),
        make_sockjs_router(bind(Closer), "/close"),
        make_sockjs_router(bind(SendThenClose), "/send-then-close"),
        make_sockjs_router(bind(WhoAmI), "/whoami"),
        make_sockjs_router(bind(Echo), "/nows", settings={"websocket": False}),
        make_sockjs_router(bind(Echo), "/beat", settings={"heartbeat_delay": 0.2}),
        make_sockjs_router(bind(Broken), "/broken"),
    ]
    return tornado.web.Application([rule for router in routers for rule in router.urls])


@pytest.fixture
def ws_connect(http_server):
    """Open WebSocket clients (`await ws_connect(url_or_request)`); all closed after the test."""
    conns = []

    async def connect(target):
        conn = await websocket_connect(target)
        conns.append(conn)
        return conn

    yield connect
    for conn in conns:
        conn.close()


@pytest.fixture
def client(http_server):
    http = AsyncHTTPClient(force_instance=True)
    yield http
    http.close()


# Helpers ---------------------------------------------------------------------------------------------


def url(port, path):
    return f"http://127.0.0.1:{port}{path}"


async def fetch(http, port, path, method="GET", body=None, headers=None):
    if method == "POST" and body is None:
        body = b""
    request = HTTPRequest(url(port, path), method=method, body=body, headers=headers, request_timeout=5)
    return await http.fetch(request, raise_error=False)


async def raw_http(port, request: bytes, timeout=3.0):
    """Send a raw request; read until the server closes. Returns (status line, headers, body bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


class Streaming:
    """An HTTP streaming response read frame by frame (frames end with "\\n")."""

    def __init__(self, http, port, path, method="POST", headers=None):
        self.chunks = asyncio.Queue()
        self.buffer = ""
        request = HTTPRequest(url(port, path), method=method, body=b"" if method == "POST" else None,
                              headers=headers, streaming_callback=self.chunks.put_nowait, request_timeout=10)
        self.done = asyncio.ensure_future(http.fetch(request, raise_error=False))
        self.done.add_done_callback(lambda _f: self.chunks.put_nowait(None))

    async def frame(self, timeout=3.0):
        while "\n" not in self.buffer:
            chunk = await asyncio.wait_for(self.chunks.get(), timeout)
            if chunk is None:
                self.chunks.put_nowait(None)
                return None
            self.buffer += chunk.decode("utf-8")
        frame, _, self.buffer = self.buffer.partition("\n")
        return frame

    async def response(self, timeout=3.0):
        return await asyncio.wait_for(asyncio.shield(self.done), timeout)


async def ws_frames_until_closed(conn, timeout=3.0):
    frames = []
    while True:
        message = await asyncio.wait_for(conn.read_message(), timeout)
        if message is None:
            return frames
        frames.append(message)


# The fixes ---------------------------------------------------------------------------------------------


@gen_test
async def test_close_in_on_open_over_xhr_polling_sends_open_then_go_away_with_correct_content_length(
        http_server, http_port):
    request = b"POST /close/000/s1/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    status, headers, body = await raw_http(http_port, request)
    assert status.startswith("HTTP/1.1 200") and body == b"o\n"
    assert int(headers["content-length"]) == len(body)

    status, headers, body = await raw_http(http_port, request)
    assert body == b'c[3000,"Go away!"]\n'
    assert int(headers["content-length"]) == len(body)
    # Until the session expires, every poll gets the close frame again.
    _, _, body = await raw_http(http_port, request)
    assert body == b'c[3000,"Go away!"]\n'


@gen_test
async def test_close_in_on_open_over_jsonp_sends_open_then_close_frame(client, http_port):
    first = await fetch(client, http_port, "/close/000/s2/jsonp?c=cb")
    assert first.body == b'/**/cb("o");\r\n'
    assert int(first.headers["Content-Length"]) == len(first.body)
    second = await fetch(client, http_port, "/close/000/s2/jsonp?c=cb")
    assert second.body == b'/**/cb("c[3000,\\"Go away!\\"]");\r\n'


@gen_test
async def test_messages_sent_before_close_in_on_open_arrive_before_close_frame_on_polling(client, http_port):
    path = "/send-then-close/000/s3/xhr"
    bodies = [(await fetch(client, http_port, path, "POST")).body for _ in range(3)]
    assert bodies == [b"o\n", b'a["first","second"]\n', b'c[4401,"Unauthorized"]\n']


@gen_test
async def test_messages_sent_before_close_in_on_open_arrive_before_close_frame_on_streaming(client, http_port):
    stream = Streaming(client, http_port, "/send-then-close/000/s4/xhr_streaming")
    frames = [await stream.frame() for _ in range(4)]
    assert frames[1:] == ["o", 'a["first","second"]', 'c[4401,"Unauthorized"]']
    assert await stream.frame() is None  # the response ended


@gen_test
async def test_http10_keep_alive_streaming_response_ends_and_connection_closes(http_server, http_port):
    request = (b"POST /close/000/s5/xhr_streaming HTTP/1.0\r\nConnection: Keep-Alive\r\n"
               b"Content-Length: 0\r\n\r\n")
    status, headers, body = await raw_http(http_port, request)  # raw_http reads until the server closes
    assert status.endswith("200 OK")
    assert "transfer-encoding" not in headers and "content-length" not in headers
    assert headers["connection"].lower() == "close"
    assert body == b"h" * 2048 + b'\no\nc[3000,"Go away!"]\n'


@gen_test
async def test_raw_websocket_close_in_on_open_sends_close_frame_3000_go_away(ws_connect, http_port):
    conn = await ws_connect(f"ws://127.0.0.1:{http_port}/close/websocket")
    assert await ws_frames_until_closed(conn) == []
    assert (conn.close_code, conn.close_reason) == (3000, "Go away!")


@gen_test
async def test_websocket_transport_close_in_on_open_sends_close_frame_then_ws_close(ws_connect, http_port):
    conn = await ws_connect(f"ws://127.0.0.1:{http_port}/close/000/s7/websocket")
    assert await ws_frames_until_closed(conn) == ["o", 'c[3000,"Go away!"]']
    assert (conn.close_code, conn.close_reason) == (3000, "Go away!")


@pytest.mark.parametrize("path", ["/echo/0/0/websocket", "/echo/websocket"])
@gen_test
async def test_post_to_websocket_endpoint_is_empty_405_allowing_get(client, http_port, path):
    for headers in ({"Upgrade": "WebSocket", "Connection": "Upgrade"}, {}):
        response = await fetch(client, http_port, path, "POST", headers=headers)
        assert response.code == 405
        assert response.headers["Allow"] == "GET"
        assert "Content-Type" not in response.headers
        assert response.body == b""


@gen_test
async def test_xhr_send_204_keeps_text_plain_content_type(client, http_port):
    await fetch(client, http_port, "/echo/000/s8/xhr", "POST")
    response = await fetch(client, http_port, "/echo/000/s8/xhr_send", "POST", body=b'["x"]')
    assert response.code == 204 and response.body == b""
    assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"


@gen_test
async def test_no_cache_responses_say_no_transform(client, http_port):
    responses = [await fetch(client, http_port, "/echo/info"),
                 await fetch(client, http_port, "/echo/000/s9/xhr", "POST"),
                 await fetch(client, http_port, "/echo/000/s9/xhr_send", "POST", body=b'["x"]'),
                 await fetch(client, http_port, "/echo/000/s10/jsonp?c=cb")]
    for response in responses:
        assert response.headers["Cache-Control"] == NO_CACHE
        assert "Expires" not in response.headers and "Etag" not in response.headers


@gen_test
async def test_jsonp_body_starts_with_comment_prefix(client, http_port):
    response = await fetch(client, http_port, "/echo/000/s11/jsonp?c=%63allback")
    assert response.body == b'/**/callback("o");\r\n'
    assert response.headers["Content-Type"] == "application/javascript; charset=UTF-8"
    sent = await fetch(client, http_port, "/echo/000/s11/jsonp_send", "POST", body=b"d=%5B%22x%22%5D",
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert (sent.code, sent.body) == (200, b"ok")
    response = await fetch(client, http_port, "/echo/000/s11/jsonp?c=callback")
    assert response.body == b'/**/callback("a[\\"x\\"]");\r\n'


@pytest.mark.parametrize("transport", ["jsonp", "htmlfile"])
@pytest.mark.parametrize("callback", ["abc(", "abc%28", "alert(1)//", "%3Cscript%3E", "%20", "*", "a%20b"])
@gen_test
async def test_jsonp_callback_with_parenthesis_is_rejected_not_reflected(client, http_port, transport, callback):
    response = await fetch(client, http_port, f"/echo/000/s12/{transport}?c={callback}")
    assert response.code == 500
    assert response.body == b'invalid "callback" parameter'
    assert response.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("transport", ["jsonp", "htmlfile"])
@gen_test
async def test_missing_callback_is_a_500_naming_the_parameter(client, http_port, transport):
    response = await fetch(client, http_port, f"/echo/000/s13/{transport}")
    assert (response.code, response.body) == (500, b'"callback" parameter required')


@gen_test
async def test_htmlfile_uses_a_valid_dotted_callback_verbatim(client, http_port):
    stream = Streaming(client, http_port, "/echo/000/s14/htmlfile?c=_jp.a1b2-c3.cb", method="GET")
    head = await stream.frame()
    while "var c = parent." not in head:
        head = await stream.frame()
    assert head.strip() == "var c = parent._jp.a1b2-c3.cb;"


@gen_test
async def test_eventsource_streams_text_event_stream(client, http_port):
    stream = Streaming(client, http_port, "/echo/000/s15/eventsource", method="GET")
    assert [await stream.frame() for _ in range(3)] == ["\r", "data: o\r", "\r"]


@gen_test
async def test_cors_echoes_origin_with_credentials_and_allows_star_without(client, http_port):
    with_origin = await fetch(client, http_port, "/echo/000/s16/xhr", "POST", headers={"Origin": "http://a.test"})
    assert with_origin.headers["Access-Control-Allow-Origin"] == "http://a.test"
    assert with_origin.headers["Access-Control-Allow-Credentials"] == "true"
    without = await fetch(client, http_port, "/echo/000/s17/xhr", "POST")
    assert without.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in without.headers
    preflight = await fetch(client, http_port, "/echo/000/s18/xhr", "OPTIONS",
                            headers={"Origin": "null", "Access-Control-Request-Headers": "a, b"})
    assert preflight.code == 204 and preflight.headers["Access-Control-Allow-Origin"] == "null"
    assert preflight.headers["Access-Control-Allow-Headers"] == "a, b"
    assert "31536000" in preflight.headers["Cache-Control"] and preflight.headers["Expires"].endswith("GMT")


@gen_test
async def test_heartbeat_frame_arrives_on_idle_streaming_polling_and_websocket_sessions(ws_connect, client, http_port):
    stream = Streaming(client, http_port, "/beat/000/s19/xhr_streaming")
    assert [await stream.frame() for _ in range(3)] == ["h" * 2048, "o", "h"]

    assert (await fetch(client, http_port, "/beat/000/s20/xhr", "POST")).body == b"o\n"
    assert (await fetch(client, http_port, "/beat/000/s20/xhr", "POST")).body == b"h\n"

    conn = await ws_connect(f"ws://127.0.0.1:{http_port}/beat/000/s21/websocket")
    assert [await conn.read_message(), await conn.read_message()] == ["o", "h"]
    conn.close()


@gen_test
async def test_disabled_websocket_routes_no_websocket_and_says_so_in_info(client, http_port):
    info = json.loads((await fetch(client, http_port, "/nows/info")).body)
    assert info["websocket"] is False and info["cookie_needed"] is False and 0 <= info["entropy"] < 2**32
    assert (await fetch(client, http_port, "/nows/000/s22/websocket")).code == 404
    assert (await fetch(client, http_port, "/nows/websocket")).code == 404


@gen_test
async def test_iframe_page_loads_sockjs_client_and_answers_if_none_match_with_304(client, http_port):
    page = await fetch(client, http_port, "/echo/iframe-1.6.1.html")
    assert page.code == 200 and b"sockjs-client@1" in page.body and b"SockJS.bootstrap_iframe();" in page.body
    again = await fetch(client, http_port, "/echo/iframe.html", headers={"If-None-Match": page.headers["ETag"]})
    assert again.code == 304 and "Content-Type" not in again.headers


# Echo on the three transports the lead relies on ---------------------------------------------------------


@gen_test
async def test_websocket_echo(ws_connect, http_port):
    conn = await ws_connect(f"ws://127.0.0.1:{http_port}/echo/000/e1/websocket")
    assert await conn.read_message() == "o"
    await conn.write_message(json.dumps(["hello", '{"type":"PING"}']))
    assert await conn.read_message() == 'a["hello"]'
    assert await conn.read_message() == 'a["{\\"type\\":\\"PING\\"}"]'
    conn.close()


@gen_test
async def test_xhr_streaming_echo(client, http_port):
    stream = Streaming(client, http_port, "/echo/000/e2/xhr_streaming")
    assert [await stream.frame() for _ in range(2)] == ["h" * 2048, "o"]
    await fetch(client, http_port, "/echo/000/e2/xhr_send", "POST", body=b'["hello","w\\u00f6rld"]')
    frames = [await stream.frame()]
    if frames[0] == 'a["hello"]':
        frames.append(await stream.frame())
    assert "".join(frames).replace('"]a["', '","') == 'a["hello","w\\u00f6rld"]'


@gen_test
async def test_xhr_polling_echo(client, http_port):
    assert (await fetch(client, http_port, "/echo/000/e3/xhr", "POST")).body == b"o\n"
    await fetch(client, http_port, "/echo/000/e3/xhr_send", "POST", body=b'["a","b"]')
    assert (await fetch(client, http_port, "/echo/000/e3/xhr", "POST")).body == b'a["a","b"]\n'


@gen_test
async def test_xhr_send_rejects_broken_json_and_non_array_payloads(client, http_port):
    await fetch(client, http_port, "/echo/000/e4/xhr", "POST")
    broken = await fetch(client, http_port, "/echo/000/e4/xhr_send", "POST", body=b'["x')
    assert (broken.code, broken.body) == (500, b"Broken JSON encoding.")
    not_array = await fetch(client, http_port, "/echo/000/e4/xhr_send", "POST", body=b'{"a": 1}')
    assert (not_array.code, not_array.body) == (500, b"Payload expected.")
    assert (await fetch(client, http_port, "/echo/000/nope/xhr_send", "POST", body=b'["x"]')).code == 404


# Server-side close codes reach the client on every transport ----------------------------------------------


def close_path(transport, code, session):
    query = f"code={code}&reason={CODES[code].replace(' ', '%20')}"
    callback = "&c=cb" if transport in ("jsonp", "htmlfile") else ""
    return f"/close/000/{session}/{transport}?{query}{callback}"


@pytest.mark.parametrize("transport", ["xhr", "jsonp"])
@gen_test
async def test_close_code_in_on_open_reaches_polling_client_on_next_poll(client, http_port, transport):
    method = "POST" if transport == "xhr" else "GET"
    for code, reason in CODES.items():
        path = close_path(transport, code, f"{transport}-{code}")
        first = await fetch(client, http_port, path, method)
        second = await fetch(client, http_port, path, method)
        frame = f"c[{code},{json.dumps(reason)}]"
        if transport == "xhr":
            assert (first.body, second.body) == (b"o\n", f"{frame}\n".encode())
        else:
            assert second.body == f"/**/cb({json.dumps(frame)});\r\n".encode()
        assert int(second.headers["Content-Length"]) == len(second.body)


@pytest.mark.parametrize("transport", ["xhr_streaming", "eventsource", "htmlfile"])
@gen_test
async def test_close_code_in_on_open_reaches_streaming_client(client, http_port, transport):
    method = "POST" if transport == "xhr_streaming" else "GET"
    for code, reason in CODES.items():
        response = await fetch(client, http_port, close_path(transport, code, f"{transport}-{code}"), method)
        frame = f"c[{code},{json.dumps(reason)}]"
        ending = {"xhr_streaming": f"o\n{frame}\n", "eventsource": f"data: o\r\n\r\ndata: {frame}\r\n\r\n",
                  "htmlfile": f'<script>\np("o");\n</script>\r\n<script>\np({json.dumps(frame)});\n</script>\r\n'}
        assert response.code == 200
        assert response.body.decode().endswith(ending[transport])


@pytest.mark.parametrize("endpoint", ["/close/000/ws/websocket", "/close/websocket"])
@gen_test
async def test_close_code_in_on_open_reaches_websocket_client_in_both_frames(ws_connect, http_port, endpoint):
    for code, reason in CODES.items():
        query = f"?code={code}&reason={reason.replace(' ', '%20')}"
        conn = await ws_connect(f"ws://127.0.0.1:{http_port}{endpoint}{query}")
        frames = await ws_frames_until_closed(conn)
        if endpoint.endswith("/ws/websocket"):
            assert frames == ["o", f"c[{code},{json.dumps(reason)}]"]
        assert (conn.close_code, conn.close_reason) == (code, reason)


@gen_test
async def test_close_code_after_messages_reaches_client_on_websocket_streaming_and_polling(
        ws_connect, client, http_port):
    conn = await ws_connect(f"ws://127.0.0.1:{http_port}/echo/000/c1/websocket")
    assert await conn.read_message() == "o"
    await conn.write_message(json.dumps(["close 4408 Idle timeout"]))
    assert await ws_frames_until_closed(conn) == ['c[4408,"Idle timeout"]']
    assert (conn.close_code, conn.close_reason) == (4408, "Idle timeout")

    stream = Streaming(client, http_port, "/echo/000/c2/xhr_streaming")
    assert [await stream.frame() for _ in range(2)] == ["h" * 2048, "o"]
    await fetch(client, http_port, "/echo/000/c2/xhr_send", "POST", body=b'["close 4008 Slow consumer"]')
    assert await stream.frame() == 'c[4008,"Slow consumer"]'
    assert await stream.frame() is None

    await fetch(client, http_port, "/echo/000/c3/xhr", "POST")
    poll = asyncio.ensure_future(fetch(client, http_port, "/echo/000/c3/xhr", "POST"))
    await asyncio.sleep(0.05)  # the poll is now waiting on the session
    await fetch(client, http_port, "/echo/000/c3/xhr_send", "POST", body=b'["close 1001 Server shutting down"]')
    assert (await poll).body == b'c[1001,"Server shutting down"]\n'


@gen_test
async def test_close_reason_is_json_encoded_in_close_frame(client, http_port):
    await fetch(client, http_port, "/echo/000/c4/xhr", "POST")
    await fetch(client, http_port, "/echo/000/c4/xhr_send", "POST",
                body=json.dumps(['close 4401 Bad "token" \u00e9']).encode())
    body = (await fetch(client, http_port, "/echo/000/c4/xhr", "POST")).body
    assert body == b'c[4401,"Bad \\"token\\" \\u00e9"]\n'
    assert json.loads(body[1:]) == [4401, 'Bad "token" \u00e9']


@gen_test
async def test_client_abort_of_a_poll_closes_session_with_1002(client, http_port, opened):
    await fetch(client, http_port, "/echo/000/c5/xhr", "POST")
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(b"POST /echo/000/c5/xhr HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    for _ in range(100):
        if opened[0].closed:
            break
        await asyncio.sleep(0.01)
    assert opened[0].closed
    body = (await fetch(client, http_port, "/echo/000/c5/xhr", "POST")).body
    assert body == b'c[1002,"Connection interrupted"]\n'


# What the application sees ------------------------------------------------------------------------------


@gen_test
async def test_connection_info_gives_query_token_origin_and_authorization_as_strings(ws_connect, client, http_port):
    headers = {"Origin": "http://dash.test", "Authorization": "Bearer abc.def"}
    body = (await fetch(client, http_port, "/whoami/000/i1/xhr?token=t%C3%B6k", "POST", headers=headers)).body
    assert body == b"o\n"
    frame = (await fetch(client, http_port, "/whoami/000/i1/xhr", "POST")).body
    who = json.loads(json.loads(frame[1:])[0])
    assert who == {"type": "WHOAMI", "token": "t\u00f6k", "origin": "http://dash.test",
                   "authorization": "Bearer abc.def", "transport": "xhr", "ip": "127.0.0.1"}

    request = HTTPRequest(f"ws://127.0.0.1:{http_port}/whoami/000/i2/websocket?token=w", headers=headers)
    conn = await ws_connect(request)
    assert await conn.read_message() == "o"
    who = json.loads(json.loads((await conn.read_message())[1:])[0])
    assert (who["token"], who["origin"], who["authorization"], who["transport"]) == (
        "w", "http://dash.test", "Bearer abc.def", "websocket")
    conn.close()


@gen_test
async def test_pending_bytes_counts_output_queued_between_polls(client, http_port, opened):
    await fetch(client, http_port, "/echo/000/p1/xhr", "POST")
    connection = opened[0]
    assert pending_bytes(connection) == 0
    for _ in range(3):
        connection.send("y" * 1000)
    assert pending_bytes(connection) == 3 * 1002 + 2  # three JSON strings and two commas
    assert (await fetch(client, http_port, "/echo/000/p1/xhr", "POST")).body.startswith(b'a["yyy')
    assert pending_bytes(connection) == 0


@gen_test
async def test_pending_bytes_counts_unsent_websocket_output_of_a_client_that_does_not_read(http_server, http_port,
                                                                                             opened):
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    writer.write(b"GET /echo/000/p2/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                 b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\r\n")
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    for _ in range(100):
        if opened:
            break
        await asyncio.sleep(0.01)
    connection = opened[0]
    chunk = "z" * (1 << 20)
    for _ in range(48):  # more than the kernel's socket buffers hold
        connection.send(chunk)
    try:
        assert pending_bytes(connection) > 1 << 20
    finally:
        writer.close()
    connection.close(4008, "Slow consumer")
    assert pending_bytes(connection) == 0


def test_close_without_arguments_is_3000_go_away_and_a_custom_close_is_kept():
    class OwnClose(SockJSConnection):
        def close(self, code=1000, reason=""):
            self.session.close(code, reason)

    plain = make_sockjs_router(Echo, "/plain").get_connection_class()
    own = make_sockjs_router(OwnClose, "/own").get_connection_class()
    assert issubclass(plain, Echo) and plain.__name__ == "Echo" and plain.close.__defaults__ == (3000, "Go away!")
    assert own is OwnClose


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="heartbeat"):
        make_sockjs_router(Echo, "/x", settings={"heartbeats": 1})


def test_router_built_before_the_loop_runs_expires_abandoned_sessions():
    opened = []
    bound = type("Echo", (Echo,), {"opened": opened})
    router = make_sockjs_router(bound, "/late", settings={"disconnect_delay": 0.2, "session_check_interval": 0.05})
    app = tornado.web.Application(router.urls)

    async def scenario():
        sock, port = bind_unused_port()
        server = HTTPServer(app)
        server.add_socket(sock)
        http = AsyncHTTPClient(force_instance=True)
        try:
            response = await fetch(http, port, "/late/000/x/xhr", "POST")
            assert response.body == b"o\n"
            deadline = time.monotonic() + 3
            while not opened[0].closed and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return opened[0].closed
        finally:
            http.close()
            server.stop()
            router.stop()

    assert asyncio.run(scenario()) is True


# The protocol test server and the Node sockjs-client harness -----------------------------------------------


def free_port():
    sock, port = bind_unused_port()
    sock.close()
    return port


def test_sockjs_server_script_serves_the_protocol_test_services():
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "sockjs_server.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url(port, "/echo"), timeout=1) as response:
                    assert response.read() == b"Welcome to SockJS!\n"
                break
            except OSError:
                assert time.monotonic() < deadline, "tests/sockjs_server.py did not start"
                time.sleep(0.05)
        for prefix in ("disabled_websocket_echo", "cookie_needed_echo", "close", "ticker", "amplify", "broadcast"):
            with urllib.request.urlopen(url(port, f"/{prefix}/info"), timeout=2) as response:
                info = json.loads(response.read())
            assert info["websocket"] is (prefix != "disabled_websocket_echo")
            assert info["cookie_needed"] is (prefix == "cookie_needed_echo")
        bodies = []
        for _ in range(2):
            request = urllib.request.Request(url(port, "/close/000/z/xhr"), data=b"", method="POST")
            with urllib.request.urlopen(request, timeout=2) as response:
                bodies.append(response.read())
        assert bodies == [b"o\n", b'c[3000,"Go away!"]\n']
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()


def node_command():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the SockJS client tests need Node 18+ (apt-get install nodejs npm)")
    if not (ROOT / "node_modules" / "sockjs-client" / "package.json").exists():
        pytest.fail("node_modules/sockjs-client is missing: run `npm ci` in the repository root")
    return [node, str(NODE_HARNESS)]


async def run_node(*args, timeout=10.0):
    proc = await asyncio.create_subprocess_exec(*node_command(), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env={**os.environ, "DEBUG": ""})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    return proc.returncode, events, err.decode()


@pytest.mark.parametrize("transport", ["websocket", "xhr-streaming", "xhr-polling"])
@gen_test
async def test_sockjs_client_echoes_over_the_named_transport(http_server, http_port, transport):
    code, events, err = await run_node(
        "--url", url(http_port, "/echo"), "--transport", transport,
        "--send", '{"type":"PING","n":1}', "--send", "not json", "--send", '{"type":"PING","n":2}',
        "--until-type", "PING", "--count", "2", "--timeout-ms", "5000")
    assert code == 0, err
    assert events == [{"event": "open", "transport": transport},
                      {"event": "message", "data": {"type": "PING", "n": 1}},
                      {"event": "message", "data": "not json"},
                      {"event": "message", "data": {"type": "PING", "n": 2}}]


@pytest.mark.parametrize("transport", ["websocket", "xhr-streaming", "xhr-polling"])
@gen_test
async def test_sockjs_client_sees_query_token_and_custom_close_code(http_server, http_port, transport):
    code, events, err = await run_node("--url", url(http_port, "/whoami?token=abc"), "--transport", transport,
                                       "--until-type", "WHOAMI", "--timeout-ms", "5000")
    assert code == 0, err
    assert events[1]["data"]["token"] == "abc"
    assert events[1]["data"]["transport"] == transport.replace("-polling", "").replace("-", "_")

    code, events, err = await run_node("--url", url(http_port, "/close?code=4401&reason=Unauthorized"),
                                       "--transport", transport, "--until-close", "--timeout-ms", "5000")
    assert code == 0, err
    assert events == [{"event": "open", "transport": transport},
                      {"event": "close", "code": 4401, "reason": "Unauthorized"}]


@gen_test
async def test_sockjs_client_harness_times_out_and_reports_early_close(http_server, http_port):
    code, events, _ = await run_node("--url", url(http_port, "/echo"), "--transport", "xhr-polling",
                                     "--until-type", "NEVER", "--timeout-ms", "300")
    assert code == 2 and events == [{"event": "open", "transport": "xhr-polling"}]
    code, events, _ = await run_node("--url", url(http_port, "/nows"), "--transport", "websocket",
                                     "--timeout-ms", "3000")
    assert code == 3 and events == [{"event": "close", "code": 2000, "reason": "All transports failed"}]


@gen_test
async def test_exception_in_on_open_closes_session_with_1011(client, http_port):
    response = await fetch(client, http_port, "/broken/000/x1/xhr", "POST")
    assert response.body == b"o\n"
    response = await fetch(client, http_port, "/broken/000/x1/xhr", "POST")
    assert response.body == b'c[1011,"Internal error"]\n'
