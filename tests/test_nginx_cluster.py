"""The shipped cluster site (deploy/nginx/cluster.conf) in front of three real server processes: Debian's nginx on
loopback keeps each SockJS session on one process, spreads native WebSockets, and skips a process that died.

Most tests run independent processes (each its own market): they only show where nginx sends each request; the
last runs real gateways of one engine. Which process served a connection is read from that process's own log (at
INFO it names the sessionId of every CONNECTION_ESTABLISHED it sends), so the routing is seen by the servers, not
taken from nginx. The site runs as in tests/test_nginx.py: the shipped file and its snippet, only their ports,
folder and certificate substituted.
"""

import asyncio
import re
import time
import urllib.request
from pathlib import Path

import pytest
import ujson

from tests.test_nginx import MD, NGINX, ROOT, App, Proxy, open_websocket, read_until, run_nginx, start_app
from tests.test_sockjs_endpoints import messages, sockjs_session

CLUSTER = ROOT / "deploy" / "nginx" / "cluster.conf"
SHIPPED_GATEWAYS = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"]
STICKY = "hash $stockquest_sockjs_session consistent;"
XHR_TRANSPORTS = ["xhr-streaming", "xhr-polling"]  # several HTTP requests per session: these need stickiness
QUOTE = {"type": "REQUEST_QUOTE", "requestId": "q1", "data": {"symbol": "NVTX"}}
NODE_CLIENTS = 4  # sockjs-client sessions running at once (quotes_over_sockjs)

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="no nginx (apt-get install nginx)")


# the cluster, started by the tests ----------------------------------------------------------------------------

def start_gateways(folder: Path) -> list[App]:
    """Three independent server processes standing in for the gateways; INFO so each logs the sessions it opens."""
    gateways: list[App] = []
    try:
        for number in range(len(SHIPPED_GATEWAYS)):
            gateways.append(start_app(folder / f"gateway{number}", "--log-level", "INFO"))
    except BaseException:
        stop_all(gateways)
        raise
    return gateways


def stop_all(gateways: list[App]) -> None:
    for gateway in gateways:
        gateway.stop()


def start_cluster_nginx(folder: Path, gateways: list[App], *, sticky: bool = True) -> Proxy:
    """cluster.conf with the shipped gateway addresses replaced by these processes'. `sticky=False` deletes the
    session hash (nginx then balances every request round robin): the control that shows what the hash is for."""
    substitutions = {f"server {shipped} ": f"server 127.0.0.1:{gateway.port} "
                     for shipped, gateway in zip(SHIPPED_GATEWAYS, gateways, strict=True)}
    if not sticky:
        substitutions[STICKY] = "# no session hash: round robin"
    return run_nginx(folder, CLUSTER, substitutions)


@pytest.fixture(scope="module")
def gateways(tmp_path_factory):
    started = start_gateways(tmp_path_factory.mktemp("gateways"))
    yield started
    stop_all(started)


@pytest.fixture(scope="module")
def cluster(gateways, tmp_path_factory):
    """The shipped cluster site in front of the module's three gateways."""
    proxy = start_cluster_nginx(tmp_path_factory.mktemp("nginx"), gateways)
    yield proxy
    proxy.stop()


@pytest.fixture
def node_trusts(monkeypatch):
    """Node (the sockjs-client harness) trusts a proxy's throw-away certificate."""
    return lambda proxy: monkeypatch.setenv("NODE_EXTRA_CA_CERTS", str(proxy.ca))


def served_by(gateways: list[App], session_id: str, timeout: float = 5.0) -> int:
    """The index of the gateway that opened the connection whose CONNECTION_ESTABLISHED carried `session_id`."""
    needle = f"session_id={session_id}"
    deadline = time.monotonic() + timeout
    while True:  # the line is written as the greeting is sent: it may trail the client by a moment
        found = [number for number, gateway in enumerate(gateways) if needle in gateway.log.read_text()]
        if found:
            assert len(found) == 1, f"{needle} in several gateways' logs: {found}"
            return found[0]
        assert time.monotonic() < deadline, f"no gateway logged {needle}"
        time.sleep(0.05)


def unknown_sessions(gateways: list[App], logged: list[int]) -> list[str]:
    """Log lines since the offsets `logged` of gateways answering 404 to an xhr_send: a session they never opened."""
    return [line for gateway, start in zip(gateways, logged, strict=True)
            for line in gateway.log.read_text()[start:].splitlines()
            if re.search(r" 404 POST /ws/market-data/[^/]+/[^/]+/xhr_send ", line)]


# clients ------------------------------------------------------------------------------------------------------

async def quotes_over_sockjs(proxy: Proxy, transports: list[str]) -> list[tuple[int, list[dict], str]]:
    """One sockjs-client session (Node) per transport given, through nginx, their requests interleaved: each opens,
    asks for a quote (xhr_send) and waits for the answer on its receiving requests. Returns (exit code, events,
    stderr) each. At most NODE_CLIENTS at once: sockjs-client gives up a transport that takes more than about twice
    (300 ms + the /info round trip) to open ("All transports failed"), which a crowd of Node start-ups on a busy
    two-core machine can exceed."""
    slots = asyncio.Semaphore(NODE_CLIENTS)

    async def session(transport):
        async with slots:
            return await sockjs_session(proxy.url(MD), transport, QUOTE, until="QUOTE_RESPONSE", timeout_ms=15_000)

    return await asyncio.gather(*(session(transport) for transport in transports))


def assert_quoted(result: tuple[int, list[dict], str], transport: str) -> str:
    """The session opened on `transport`, was greeted and got its quote; returns the server's sessionId."""
    code, events, stderr = result
    assert code == 0, (stderr, events)
    assert events[0] == {"event": "open", "transport": transport}
    received = messages(events)
    assert received[0]["type"] == "CONNECTION_ESTABLISHED"
    assert received[-1]["type"] == "QUOTE_RESPONSE" and received[-1]["requestId"] == "q1"
    assert received[-1]["data"]["quotes"][0]["symbol"] == "NVTX"
    return received[0]["data"]["sessionId"]


async def greeted_websockets(proxy: Proxy, count: int) -> tuple[list, list[str]]:
    """`count` native WebSockets through nginx, opened one after another: (connections, their sessionIds)."""
    connections, session_ids = [], []
    try:
        for _ in range(count):
            connections.append(await open_websocket(proxy))
            session_ids.append((await read_until(connections[-1], "CONNECTION_ESTABLISHED"))[-1]["data"]["sessionId"])
    except BaseException:
        for conn in connections:
            conn.close()
        raise
    return connections, session_ids


# tests --------------------------------------------------------------------------------------------------------

def test_sockjs_sessions_over_xhr_transports_work_end_to_end_each_on_one_of_several_gateways(
        cluster, gateways, node_trusts):
    """xhr-streaming and xhr-polling send on xhr_send and receive on other requests: each arrives through nginx on
    its own, and only the gateway that opened the session knows it. Every session getting its quote means all its
    requests met that gateway; the sessions landing on more than one gateway means the balancing is real."""
    node_trusts(cluster)
    logged = [len(gateway.log.read_text()) for gateway in gateways]
    transports = XHR_TRANSPORTS * 8
    results = asyncio.run(quotes_over_sockjs(cluster, transports))
    session_ids = [assert_quoted(result, transport) for result, transport in zip(results, transports, strict=True)]
    served = [served_by(gateways, session_id) for session_id in session_ids]
    assert len(set(served)) > 1, f"all {len(served)} sessions on gateway {served[0]}: nothing was balanced"
    assert unknown_sessions(gateways, logged) == []


def test_without_the_session_hash_the_same_sessions_break_on_other_gateways(gateways, tmp_path, node_trusts):
    """The control for the test above: the shipped file minus its `hash` line (round robin for every request) in
    front of the same gateways. Requests of a session then land on gateways that never opened it (404 for
    xhr_send, a second open for a poll) and sockjs-client gives the session up."""
    proxy = start_cluster_nginx(tmp_path, gateways, sticky=False)
    logged = [len(gateway.log.read_text()) for gateway in gateways]
    node_trusts(proxy)
    try:
        results = asyncio.run(quotes_over_sockjs(proxy, XHR_TRANSPORTS * 4))
    finally:
        proxy.stop()
    closes = [events[-1] for code, events, _ in results if code != 0]
    assert closes, "every session survived round robin: the test above would pass without the hash"
    for close in closes:  # lost sessions, and nothing else
        assert close["event"] == "close" and close["code"] == 1006, close
        assert close["reason"] in ("Server lost session", "Sending error: Error: http status 404"), close
    assert unknown_sessions(gateways, logged), "no gateway was sent a message for a session it never opened"


def test_native_websockets_are_spread_over_the_gateways(cluster, gateways):
    """A native WebSocket has no session key: nginx balances it round robin, so six in a row reach all three."""
    async def scenario():
        connections, session_ids = await greeted_websockets(cluster, 6)
        for conn in connections:
            conn.close()
        return session_ids

    served = [served_by(gateways, session_id) for session_id in asyncio.run(scenario())]
    assert sorted(set(served)) == [0, 1, 2], served


def test_when_a_gateway_dies_its_clients_reconnect_through_the_others(tmp_path, node_trusts):
    """A killed gateway drops its own clients only; the others' stay connected, and every new connection, native
    or SockJS (whose session ids may hash to the dead one), succeeds on the living gateways: nginx saw the refusal
    and moved on."""
    gateways = start_gateways(tmp_path / "gateways")
    proxy = None
    try:
        proxy = start_cluster_nginx(tmp_path / "nginx", gateways)
        node_trusts(proxy)

        async def scenario():
            before, before_ids = await greeted_websockets(proxy, 3)  # round robin: one on each gateway
            served = [served_by(gateways, session_id) for session_id in before_ids]
            assert sorted(served) == [0, 1, 2], served
            victim = before[served.index(0)]
            gateways[0].stop()  # SIGKILL: no close frame, no goodbye
            assert await asyncio.wait_for(victim.read_message(), 10) is None
            survivors = [conn for conn in before if conn is not victim]
            for conn in survivors:  # untouched: still answering
                await conn.write_message(ujson.dumps({"type": "HEARTBEAT", "requestId": "still-there"}))
                assert (await read_until(conn, "HEARTBEAT"))[-1]["requestId"] == "still-there"
            after, after_ids = await greeted_websockets(proxy, 6)
            transports = XHR_TRANSPORTS * 4
            results = await quotes_over_sockjs(proxy, transports)
            for conn in survivors + after:
                conn.close()
            return after_ids + [assert_quoted(result, transport)
                                for result, transport in zip(results, transports, strict=True)]

        session_ids = asyncio.run(scenario())
        assert {served_by(gateways, session_id) for session_id in session_ids} <= {1, 2}
        refusals = [line for line in (proxy.folder / "nginx.log").read_text().splitlines()
                    if "Connection refused" in line and f"127.0.0.1:{gateways[0].port}" in line]
        assert refusals, "nginx never tried the dead gateway: this test did not exercise skipping it"
    finally:
        if proxy is not None:
            proxy.stop()
        stop_all(gateways)


def test_sockjs_sessions_through_nginx_reach_one_engine_through_whichever_gateway_holds_them(
        tmp_path, node_trusts, redis_server):
    """The real thing: three gateways of one engine leader behind the shipped site. Every SockJS session's quote is
    answered by the engine, through the gateway its requests stick to; the quotes agree (one market)."""
    common = ("--redis-url", redis_server.url, "--log-level", "INFO")
    engine = start_app(tmp_path / "engine", "--role", "engine", *common)
    gateways = []
    try:
        gateways = [start_app(tmp_path / f"gateway{n}", "--role", "gateway", *common) for n in range(3)]
        deadline = time.monotonic() + 15
        while not all(heard_engine(gateway.port) for gateway in gateways):
            assert time.monotonic() < deadline, "the gateways never heard the engine"
            time.sleep(0.05)
        proxy = start_cluster_nginx(tmp_path / "nginx", gateways)
        node_trusts(proxy)
        try:
            transports = XHR_TRANSPORTS * 4
            results = asyncio.run(quotes_over_sockjs(proxy, transports))
        finally:
            proxy.stop()
        sessions = [assert_quoted(result, transport) for result, transport in zip(results, transports, strict=True)]
        assert len({served_by(gateways, session) for session in sessions}) > 1
    finally:
        stop_all([*gateways, engine])


def heard_engine(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
        return ujson.loads(response.read()).get("engine") == "elsewhere"
