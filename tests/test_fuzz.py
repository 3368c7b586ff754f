"""A property-based fuzzer against the real server process: every message type of every endpoint, native and SockJS.

Whatever a client sends, it gets a documented ERROR (with its requestId whenever it sent one that can be echoed)
or a documented close code; the connection stays usable otherwise; the server logs no traceback and no
ERROR-level record; and a bystander subscribed to quotes sees no gap in its `seq`. A few hundred examples run
by default; `pytest tests/test_fuzz.py --long` runs 10,000 per endpoint.
"""

import asyncio
import itertools
import json
import urllib.request

import pytest
import tornado.websocket
import ujson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stockquest
from realtime.protocol import ErrorCode

pytestmark = pytest.mark.filterwarnings("ignore:make_current is deprecated", "ignore:clear_current is deprecated")

ENDPOINTS = {cls.name: cls for cls in stockquest.ENDPOINTS.values()}  # every endpoint the server serves
CLOSE_CODES = {1007, 1009, 4401, 4429}  # what a client's own messages may close its connection with
ERROR_CODES = {str(code) for code in ErrorCode} - {"INTERNAL"}
REPLY_TIMEOUT_S = 5.0
_request_ids = itertools.count(1)


# what a hostile client sends ---------------------------------------------------------------------

def hostile_values(ids):
    """Anything JSON can carry, leaning on what breaks parsers and validators: ids of other users included."""
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, -1, 1, 10**18, 2**53 + 1]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=40),
        st.sampled_from(["\ud800", "a\udfffb", "\x00", "x" * 5000, "NVTX", "nvtx", "ALL", "BUY", "LIMIT", "GTC",
                         "MIN_VARIANCE", "", " ", "../../etc/passwd", "<script>", "1e400"]),
        st.sampled_from(ids),
    )
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                        max_leaves=12)


class NotText:
    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return f"NotText({self.value!r})"


def deep(levels: int):
    value = 1
    for _ in range(levels):
        value = [value]
    return value


@st.composite
def messages(draw, endpoint: str, ids: list[str]):
    """(frame to send, requestId the reply should carry or None, binary)."""
    cls = ENDPOINTS[endpoint]
    types = sorted(cls.handlers) + ["AUTH", "HEARTBEAT", "NOPE", "subscribe", ""]
    message_type = draw(st.sampled_from(types))
    entry = cls.handlers.get(message_type.upper())
    names = sorted(entry[2]) if entry else []
    values = hostile_values(ids)
    data = draw(st.one_of(
        st.dictionaries(st.sampled_from(names), values, max_size=len(names)) if names else st.just({}),
        st.dictionaries(st.sampled_from(names + ["extra", "portfolioId", "symbols"]), values, max_size=6),
        values,
        st.just(deep(200)),
    ))
    request_id = f"fz{next(_request_ids)}"
    shape = draw(st.sampled_from(["plain", "plain", "plain", "odd-id", "raw", "binary", "bad-utf8", "huge",
                                  "not-text"]))
    if shape == "not-text":  # a JSON value that is no message; over SockJS, an array element that is no string
        return NotText(draw(st.sampled_from([1, None, [1], True, 2.5, [], {"a": [None]}]))), None, False
    if shape == "raw":
        return draw(st.sampled_from(["{", "[]", "null", '"x"', "{}", '{"type": 5}', "\x00", '{"type": "HEARTBEAT"'])), \
            None, False
    if shape == "binary":
        return draw(st.binary(max_size=64)), None, True
    if shape == "bad-utf8":
        return b'{"type": "HEARTBEAT", "requestId": "\xff"}', None, False
    if shape == "huge":
        return ujson.dumps({"type": message_type, "requestId": request_id, "data": {"x": "y" * 70_000}}), None, False
    envelope = {"type": message_type, "data": data}
    if shape == "odd-id":
        odd = draw(st.one_of(st.integers(), st.floats(allow_nan=True), st.lists(st.none()), st.booleans(),
                             st.text(min_size=129, max_size=200)))
        envelope["requestId"] = odd
        # A whole number is read as its decimal string; anything else is refused without an id to echo.
        echoed = isinstance(odd, int) and not isinstance(odd, bool) and len(str(odd)) <= 128
        request_id = str(odd) if echoed else None
    else:
        envelope["requestId"] = request_id
    text = json.dumps(envelope, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate travels as its JSON escape, the only way a client can send one
        text = json.dumps(envelope)
    return text, request_id, False


# the server and its clients -------------------------------------------------------------------------

def register(port: int, username: str) -> str:
    body = ujson.dumps({"username": username, "password": "fuzz password"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/register", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return ujson.loads(response.read())["token"]


class Native:
    """A native WebSocket client that reopens when the server closes it."""

    def __init__(self, url: str):
        self.url, self.conn = url, None

    async def open(self):
        self.conn = await tornado.websocket.websocket_connect(self.url, max_message_size=2**24)
        hello = ujson.loads(await self.conn.read_message())
        assert hello["type"] == "CONNECTION_ESTABLISHED", hello

    async def send(self, frame, binary) -> bool:
        """False when the server has closed the connection."""
        if isinstance(frame, NotText):
            frame = json.dumps(frame.value)
        try:
            await self.conn.write_message(frame, binary=binary)  # bytes as text: a frame that is not UTF-8
        except tornado.websocket.WebSocketClosedError:
            return False
        return True

    async def receive(self):
        """The next message, or ("closed", code)."""
        text = await self.conn.read_message()
        return ("closed", self.conn.close_code) if text is None else ujson.loads(text)


class SockJSClient(Native):
    """The SockJS websocket transport: frames are `o`, `h`, `a[...]` and `c[code, reason]`; `url` has a `{session}`."""

    def __init__(self, url: str):
        super().__init__(url)
        self.pending: list = []
        self.sessions = itertools.count(1)

    async def open(self):
        self.pending = []
        self.conn = await tornado.websocket.websocket_connect(self.url.format(session=next(self.sessions)),
                                                              max_message_size=2**24)
        assert await self.conn.read_message() == "o"
        assert (await self.receive())["type"] == "CONNECTION_ESTABLISHED"

    async def send(self, frame, binary) -> bool:
        if isinstance(frame, NotText):
            return await super().send(json.dumps([frame.value]), False)
        if isinstance(frame, bytes):  # SockJS carries text only: bytes that are not UTF-8 become lone surrogates
            frame = frame.decode("utf-8", "surrogateescape")
        return await super().send(json.dumps([frame]), False)

    async def receive(self):
        while not self.pending:
            text = await self.conn.read_message()
            if text is None:
                return "closed", self.conn.close_code
            if text.startswith("a"):
                self.pending += [ujson.loads(item) for item in ujson.loads(text[1:])]
            elif text.startswith("c"):
                return "closed", ujson.loads(text[1:])[0]
        return self.pending.pop(0)


async def answer_to(client, frame, request_id) -> bool:
    """Read up to the answer to `frame` (a reply with its requestId, or an ERROR without one when it had none
    to echo), checking every ERROR on the way; False when the server closed the connection instead."""
    while True:
        answer = await asyncio.wait_for(client.receive(), REPLY_TIMEOUT_S)
        if isinstance(answer, tuple):
            assert answer[1] in CLOSE_CODES, f"closed {answer[1]} after {frame!r:.300}"
            return False
        if answer["type"] == "ERROR":
            assert answer["data"]["code"] in ERROR_CODES, (frame, answer)
        if request_id is not None and answer.get("requestId") == request_id:
            return True
        if request_id is None and answer["type"] == "ERROR" and "requestId" not in answer:
            return True


async def exchange(client, frame, request_id, binary) -> None:
    """Send one hostile frame; its answer (or the close) is documented, and an open connection still works."""
    assert await client.send(frame, binary), "closed before the frame was sent"
    alive = ujson.dumps({"type": "HEARTBEAT", "requestId": "alive"})
    if await answer_to(client, frame, request_id):
        if await client.send(alive, False):
            if await answer_to(client, frame, "alive"):
                return
        else:  # closed just after answering (a refused AUTH: ERROR, then 4401)
            while not isinstance(closing := await asyncio.wait_for(client.receive(), REPLY_TIMEOUT_S), tuple):
                pass
            assert closing[1] in CLOSE_CODES, f"closed {closing[1]} after {frame!r:.300}"
    await client.open()


@pytest.fixture(scope="module")
def examples(request):
    return 10_000 if request.config.getoption("--long") else 120


@pytest.mark.parametrize("transport", ["native", "sockjs"])
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_hostile_messages_get_documented_answers_and_harm_nothing(start_server, tmp_path, io_loop, endpoint,
                                                                  transport, examples):
    _, port = start_server("--rate-limit", "1000000000", "--sign-ups-per-minute", "1000")
    token = register(port, "fuzzer")
    other_token = register(port, "bystander")
    run = io_loop.run_sync

    async def setup():
        other = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/portfolio?token={other_token}")
        listing = ujson.loads(await other.read_message())
        while listing["type"] != "PORTFOLIO_LIST":
            listing = ujson.loads(await other.read_message())
        other.close()
        market = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{port}/ws/market-data")
        await market.write_message(ujson.dumps({"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"],
                                                                                "updateInterval": 100}}))
        asyncio.ensure_future(listen(market))  # reads whenever the loop runs, as a real client would
        return listing["data"]["portfolios"][0]["portfolioId"]

    seqs = []

    async def listen(bystander):
        while (text := await bystander.read_message()) is not None:
            seqs.append(ujson.loads(text)["seq"])
        seqs.append(f"closed {bystander.close_code}")

    others_portfolio = run(setup)
    ids = [others_portfolio, "1", "2", "O1", "A1", "999999", "-1"]
    path = f"/ws/{endpoint}"
    if transport == "native":
        client = Native(f"ws://127.0.0.1:{port}{path}?token={token}")
    else:
        client = SockJSClient(f"ws://127.0.0.1:{port}{path}/000/fuzz{{session}}/websocket?token={token}")
    run(client.open)

    @settings(max_examples=examples // (1 if transport == "native" else 2), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(message=messages(endpoint, ids))
    def fuzz(message):
        run(lambda: exchange(client, *message), timeout=30)

    fuzz()

    run(lambda: asyncio.sleep(1.0))  # the bystander hears on
    assert seqs and seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"the bystander missed messages: {seqs[-3:]}"
    log = (tmp_path / "server-0.log").read_text()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
