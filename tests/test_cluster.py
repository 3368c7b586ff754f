"""Several real server processes on one real redis-server: gateways that serve connections, an engine that runs the
market and the orders, and requests forwarded between them (docs/scaling.md)."""

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.websocket

from tests.conftest import WSClient
from tests.test_asyncapi import run_validator
from tests.test_sockjs_endpoints import messages, sockjs_session

ROOT = Path(__file__).resolve().parent.parent


def guest(port: int, nickname: str) -> dict:
    """A guest account made through the engine's own REST: its token and portfolio ids."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/auth/guest", method="POST",
                                     data=json.dumps({"nickname": nickname}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return json.loads(response.read())


async def connect(port: int, path: str, token: str | None = None) -> WSClient:
    url = f"ws://127.0.0.1:{port}{path}" + (f"?token={token}" if token else "")
    client = WSClient(await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url)))
    await client.expect("CONNECTION_ESTABLISHED")
    return client


@pytest.fixture
def cluster(redis_server, start_server, tmp_path):
    """One engine and two gateways: {"engine": port, "gateways": [port, port]}."""
    common = ("--redis-url", redis_server.url, "--tick-ms", "100", "--log-level", "INFO")
    _, engine = start_server("--role", "engine", *common, data_dir=tmp_path / "engine")
    gateways = [start_server("--role", "gateway", *common, data_dir=tmp_path / f"gateway{i}")[1] for i in range(2)]

    async def elected():
        while health(engine).get("engine") != "here" or any(health(p)["engine"] != "elsewhere" for p in gateways):
            await asyncio.sleep(0.05)
    asyncio.run(asyncio.wait_for(elected(), 15))
    return {"engine": engine, "gateways": gateways}


def test_a_client_on_one_gateway_hears_the_fills_of_orders_placed_through_another(cluster):
    account = guest(cluster["engine"], "Ada")
    token, portfolio = account["token"], account["portfolioIds"][0]
    first, second = cluster["gateways"]

    async def scenario():
        watcher = await connect(first, "/ws/orders", token)
        assert (await watcher.expect("ACTIVE_ORDERS"))["data"] == {"orders": []}
        await watcher.send("SUBSCRIBE_ORDERS", {}, request_id="s")
        confirmed = await watcher.expect("SUBSCRIPTION_CONFIRMED")
        assert confirmed["requestId"] == "s"
        trader = await connect(second, "/ws/orders", token)
        await trader.expect("ACTIVE_ORDERS")
        await trader.send("SUBMIT_ORDER", {"portfolioId": portfolio, "symbol": "NVTX", "side": "BUY",
                                           "orderType": "MARKET", "quantity": 5, "clientOrderId": "c1"},
                          request_id="o1")
        submitted = await trader.wait_for("ORDER_SUBMITTED")
        assert submitted["requestId"] == "o1"
        filled = await trader.wait_for("ORDER_FILLED")
        seen = await watcher.wait_for("ORDER_FILLED")
        assert seen["data"]["order"]["orderId"] == filled["data"]["order"]["orderId"]
        assert seen["data"]["eventId"] == filled["data"]["eventId"]
        for client in (watcher, trader):
            client.close()
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_market_data_reaches_clients_on_every_gateway(cluster):
    async def scenario():
        clients = [await connect(port, "/ws/market-data") for port in cluster["gateways"]]
        for client in clients:
            await client.send("SUBSCRIBE", {"symbols": ["NVTX", "AAPL"], "updateInterval": 100}, request_id="m")
            confirmed = await client.wait_for("SUBSCRIPTION_CONFIRMED")
            assert confirmed["data"]["active"] == ["NVTX"]  # AAPL is not listed in the simulated market
            initial = await client.expect("INITIAL_DATA")
            assert [q["symbol"] for q in initial["data"]["quotes"]] == ["NVTX"]
        updates = [await client.wait_for("REAL_TIME_UPDATE") for client in clients]
        versions = [u["data"]["quotes"][0]["symbol"] for u in updates]
        assert versions == ["NVTX", "NVTX"]
        for client in clients:
            client.close()
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_gateways_and_the_engine_say_where_the_engine_runs(cluster):
    assert health(cluster["engine"])["engine"] == "here"
    for port in cluster["gateways"]:
        state = health(port)
        assert state["engine"] == "elsewhere" and state["role"] == "gateway" and "marketStatus" not in state


def post(port: int, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", data=json.dumps(body).encode(),
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_sign_in_through_a_gateway_reaches_the_engine(cluster):
    status, account = post(cluster["gateways"][0], "/api/auth/guest", {"nickname": "Grace"})
    assert status == 201, account
    assert account["user"]["name"] == "Grace" and account["portfolioIds"]

    async def scenario():  # the token works on the other gateway: the engine made it and checks it
        client = await connect(cluster["gateways"][1], "/ws/portfolio", account["token"])
        listed = await client.expect("PORTFOLIO_LIST")
        assert [p["portfolioId"] for p in listed["data"]["portfolios"]] == account["portfolioIds"]
        client.close()
    asyncio.run(asyncio.wait_for(scenario(), 20))


def test_a_refused_token_is_refused_by_the_engine_through_the_gateway(cluster):
    async def scenario():
        url = f"ws://127.0.0.1:{cluster['gateways'][0]}/ws/orders?token=not.a.token"
        client = WSClient(await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url)))
        error = await client.expect("ERROR")
        assert error["data"]["code"] == "UNAUTHORIZED"
        assert (await client.closed())[0] == 4401
    asyncio.run(asyncio.wait_for(scenario(), 20))


SECRET = "cluster-test-secret-" + "x" * 32  # one for every process: any leader checks the tokens of the last


@pytest.fixture
def two_engines(redis_server, postgres_url, start_server, tmp_path):
    """Two engine candidates on one PostgreSQL database, and a gateway: {"engines": [(process, port)], "gateway"}."""
    common = ("--redis-url", redis_server.url, "--tick-ms", "100", "--log-level", "INFO")
    engines = [start_server("--role", "engine", *common, "--database-url", postgres_url, "--jwt-secret", SECRET,
                            data_dir=tmp_path / f"engine{i}") for i in range(2)]
    _, gateway = start_server("--role", "gateway", *common, data_dir=tmp_path / "gateway")

    async def elected():
        while (not any(health(port).get("engine") == "here" for _, port in engines)
               or health(gateway)["engine"] != "elsewhere"):
            await asyncio.sleep(0.05)
    asyncio.run(asyncio.wait_for(elected(), 15))
    return {"engines": engines, "gateway": gateway}


def leader_of(engines):
    leaders = [(process, port) for process, port in engines if health(port).get("engine") == "here"]
    assert len(leaders) == 1, leaders
    return leaders[0]


def test_killing_the_engine_leader_mid_flood_loses_no_acknowledged_order_or_fill(two_engines, tmp_path,
                                                                                  postgres_url):
    """Orders flow through a gateway at 10 a second; the leader is killed (SIGKILL) after 20 acknowledgements. The
    standby takes over; every order acknowledged before or after is in the replayed event stream, with its fills."""
    gateway = two_engines["gateway"]
    status, account = post(gateway, "/api/auth/guest", {"nickname": "Flood"})
    assert status == 201, account
    token, portfolio = account["token"], account["portfolioIds"][0]
    acked, fills, unavailable, statuses, sent_at, status_messages = {}, {}, [], [], {}, []
    timeline = {}

    async def scenario():
        client = await connect(gateway, "/ws/orders", token)
        await client.expect("ACTIVE_ORDERS")
        await client.send("SUBSCRIBE_ORDERS", {}, request_id="sub")
        await client.wait_for("SUBSCRIPTION_CONFIRMED")

        async def read():
            while True:
                message = await client.recv(timeout=30)
                kind, data = message["type"], message["data"]
                if kind == "ORDER_SUBMITTED" and message.get("requestId"):
                    acked[message["requestId"]] = data["order"]["orderId"]
                    if "resumed" not in timeline and sent_at[message["requestId"]] > timeline.get("killed", 1e18):
                        timeline["resumed"] = asyncio.get_running_loop().time()
                elif kind == "EXECUTION_REPORT":
                    fills[data["executionId"]] = data
                elif kind == "ERROR":
                    assert data["code"] == "UNAVAILABLE", message
                    unavailable.append(message.get("requestId"))
                elif kind == "SERVICE_STATUS":
                    statuses.append(data["engine"])
                    status_messages.append(message)

        reader = asyncio.ensure_future(read())
        sent = 0
        while len(acked) < 20 or "resumed" not in timeline or len(acked) < timeline["acked_at_kill"] + 20:
            sent += 1
            sent_at[f"r{sent}"] = asyncio.get_running_loop().time()
            await client.send("SUBMIT_ORDER", {"portfolioId": portfolio, "symbol": "NVTX", "side": "BUY",
                                               "orderType": "MARKET", "quantity": 1, "clientOrderId": f"c{sent}"},
                              request_id=f"r{sent}")
            if len(acked) >= 20 and "killed" not in timeline:
                process, port = leader_of(two_engines["engines"])
                timeline["killed_token"] = health(port)["fencingToken"]
                process.kill()  # SIGKILL: no flush, no lease release
                timeline["killed"], timeline["acked_at_kill"] = asyncio.get_running_loop().time(), len(acked)
            await asyncio.sleep(0.1)
            assert sent < 600, "trading did not resume"
        await asyncio.sleep(1.0)
        reader.cancel()
        client.close()

        # Everything acknowledged is stored: replay the whole stream through the gateway, from the new leader.
        replaying = await connect(gateway, "/ws/orders", token)
        await replaying.expect("ACTIVE_ORDERS")
        await replaying.send("SUBSCRIBE_ORDERS", {"sinceEventId": 0}, request_id="replay")
        stored_orders, stored_fills = set(), {}
        while True:
            message = await replaying.recv(timeout=10)
            if message["type"] == "SUBSCRIPTION_CONFIRMED":
                break
            if message["type"] == "ORDER_SUBMITTED":
                stored_orders.add(message["data"]["order"]["orderId"])
            elif message["type"] == "EXECUTION_REPORT":
                stored_fills[message["data"]["executionId"]] = message["data"]
        replaying.close()
        return stored_orders, stored_fills

    stored_orders, stored_fills = asyncio.run(asyncio.wait_for(scenario(), 120))
    two_engines["engines"] = [(p, port) for p, port in two_engines["engines"] if p.poll() is None]
    takeover_s = timeline["resumed"] - timeline["killed"]
    print(f"\ntakeover: first acknowledgement {takeover_s:.2f} s after the leader was killed; "
          f"{len(acked)} orders acknowledged, {len(unavailable)} answered UNAVAILABLE meanwhile")
    assert set(acked.values()) <= stored_orders
    assert fills.keys() <= stored_fills.keys()
    assert all(stored_fills[key]["fillQuantity"] == fill["fillQuantity"] for key, fill in fills.items())
    assert unavailable, "the orders sent while no engine ran were answered"
    import psycopg
    _, survivor = leader_of(two_engines["engines"])
    token = health(survivor)["fencingToken"]
    assert token > timeline["killed_token"]
    with psycopg.connect(postgres_url) as db:  # the new leader writes with its own, higher fencing token
        assert db.execute("SELECT token FROM engine_fence").fetchone()[0] == token
    assert "UNAVAILABLE" in statuses and statuses[-1] == "AVAILABLE"
    assert takeover_s < 15
    captured = tmp_path / "statuses.jsonl"  # as docs/asyncapi.yaml has them (its own test cannot see them)
    captured.write_text("".join(json.dumps({"endpoint": "orders", "message": m}) + "\n" for m in status_messages))
    result = run_validator("--check-messages", str(captured))
    assert result.returncode == 0, result.stdout[:4000] + result.stderr[-2000:]


def test_a_killed_gateway_drops_only_its_connections_which_resume_on_another_without_missing_a_fill(
        redis_server, start_server, tmp_path):
    common = ("--redis-url", redis_server.url, "--tick-ms", "100", "--log-level", "INFO")
    _, engine = start_server("--role", "engine", *common, data_dir=tmp_path / "engine")
    gateways = [start_server("--role", "gateway", *common, data_dir=tmp_path / f"gateway{i}") for i in range(2)]
    (doomed, first), (_, second) = gateways
    deadline = time.monotonic() + 15
    while health(first)["engine"] != "elsewhere" or health(second)["engine"] != "elsewhere":
        assert time.monotonic() < deadline, "the gateways never heard the engine"
        time.sleep(0.05)
    status, account = post(second, "/api/auth/guest", {"nickname": "Ida"})
    assert status == 201, account
    token, portfolio = account["token"], account["portfolioIds"][0]
    order = {"portfolioId": portfolio, "symbol": "NVTX", "side": "BUY", "orderType": "MARKET", "quantity": 2}

    async def scenario():
        watcher = await connect(first, "/ws/orders", token)
        await watcher.expect("ACTIVE_ORDERS")
        await watcher.send("SUBSCRIBE_ORDERS", {})
        await watcher.wait_for("SUBSCRIPTION_CONFIRMED")
        trader = await connect(second, "/ws/orders", token)
        await trader.expect("ACTIVE_ORDERS")
        await trader.send("SUBMIT_ORDER", {**order, "clientOrderId": "before"})
        last_seen = (await watcher.wait_for("EXECUTION_REPORT"))["data"]["eventId"]
        await trader.wait_for("EXECUTION_REPORT")

        doomed.kill()  # the watcher's gateway dies; the trader's goes on
        await watcher.closed(timeout=10)
        await trader.send("SUBMIT_ORDER", {**order, "clientOrderId": "meanwhile"}, request_id="m")
        missed = await trader.wait_for("EXECUTION_REPORT")
        await trader.send("HEARTBEAT", None, request_id="alive")
        assert (await trader.wait_for("HEARTBEAT"))["requestId"] == "alive"

        again = await connect(second, "/ws/orders", token)  # the client reconnects, to the gateway left
        await again.expect("ACTIVE_ORDERS")
        await again.send("SUBSCRIBE_ORDERS", {"sinceEventId": last_seen}, request_id="resume")
        replayed = []
        while (message := await again.recv())["type"] != "SUBSCRIPTION_CONFIRMED":
            replayed.append(message)
        ids = [m["data"]["eventId"] for m in replayed]
        assert ids == list(range(last_seen + 1, last_seen + 1 + len(ids))), "a gap or a repeat in the replay"
        assert missed["data"]["executionId"] in [m["data"].get("executionId") for m in replayed]
        for client in (trader, again):
            client.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_while_redis_restarts_clients_are_told_and_requests_refused_then_trading_goes_on(cluster, redis_server):
    gateway = cluster["gateways"][0]
    status, account = post(gateway, "/api/auth/guest", {"nickname": "Rex"})
    assert status == 201, account
    order = {"portfolioId": account["portfolioIds"][0], "symbol": "NVTX", "side": "BUY", "orderType": "MARKET",
             "quantity": 1}

    async def scenario():
        client = await connect(gateway, "/ws/orders", account["token"])
        await client.expect("ACTIVE_ORDERS")
        redis_server.stop()
        degraded = await client.wait_for("SERVICE_STATUS", timeout=5)
        assert degraded["data"]["status"] == "DEGRADED" and degraded["data"]["broker"] == "DISCONNECTED"
        await client.send("SUBMIT_ORDER", {**order, "clientOrderId": "down"}, request_id="down")
        refused = await client.wait_for("ERROR", timeout=2)  # at once: nothing could answer it
        assert refused["requestId"] == "down" and refused["data"]["code"] == "UNAVAILABLE"
        redis_server.start()
        while (status := await client.wait_for("SERVICE_STATUS", timeout=15))["data"]["status"] != "OK":
            pass
        assert status["data"] == {**status["data"], "broker": "CONNECTED", "engine": "AVAILABLE"}
        await client.send("SUBMIT_ORDER", {**order, "clientOrderId": "up"}, request_id="up")
        submitted = await client.wait_for("ORDER_SUBMITTED", timeout=10)
        assert submitted["requestId"] == "up"
        client.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


def get(port: int, path: str, token: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def add_teacher(data_dir, name="tess", password="correct horse battery"):
    result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "user", "add", name, "--role", "teacher",
                             "--data-dir", str(data_dir)], input=password + "\n", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return name, password


def test_per_user_limits_hold_across_gateways_and_stats_count_every_gateway(cluster, tmp_path):
    first, second = cluster["gateways"]
    status, account = post(first, "/api/auth/guest", {"nickname": "Many"})
    assert status == 201, account
    name, password = add_teacher(tmp_path / "engine")
    status, teacher = post(second, "/api/auth/login", {"username": name, "password": password})
    assert status == 200, teacher

    async def scenario():
        clients = [await connect(port, "/ws/portfolio", account["token"]) for port in (first, second) * 5]
        url = f"ws://127.0.0.1:{second}/ws/portfolio?token={account['token']}"
        eleventh = WSClient(await tornado.websocket.websocket_connect(tornado.httpclient.HTTPRequest(url)))
        error = await eleventh.expect("ERROR")
        assert error["data"]["code"] == "LIMIT_EXCEEDED" and (await eleventh.closed())[0] == 4429
        anonymous = [await connect(port, "/ws/market-data") for port in (first, second)]

        await asyncio.sleep(1.5)  # each gateway tells the engine its figures once a second
        stats = get(second, "/api/stats", teacher["token"])
        assert stats["connectionsByType"]["portfolio"] == 10 and stats["connectionsByType"]["market-data"] == 2
        assert stats["totalConnections"] == 12 and stats["uniqueUsers"] == 1
        assert sorted(n["connections"] for n in stats["nodes"]) == [0, 6, 6]
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster['engine']}/metrics", timeout=10) as response:
            scraped = response.read().decode()
        per_node = re.findall(r'^stockquest_cluster_connections\{node="[^"]+"\} (\S+)$', scraped, re.M)
        assert sorted(float(v) for v in per_node) == [0, 6, 6]

        clients.pop().close()  # one ends: its place is free again, on any gateway
        await asyncio.sleep(0.5)
        clients.append(await connect(first, "/ws/portfolio", account["token"]))
        for client in clients + anonymous:
            client.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


@pytest.mark.parametrize("transport", ["xhr-streaming", "xhr-polling"])
def test_a_sockjs_client_on_a_gateway_signs_in_and_trades_through_the_engine(cluster, transport):
    """SockJS's HTTP transports carry the same forwarded session (what old school proxies leave students)."""
    gateway = cluster["gateways"][0]
    status, account = post(gateway, "/api/auth/guest", {"nickname": "Old Proxy"})
    assert status == 201, account
    order = {"portfolioId": account["portfolioIds"][0], "symbol": "NVTX", "side": "BUY", "orderType": "MARKET",
             "quantity": 3, "clientOrderId": "sockjs"}
    code, events, stderr = asyncio.run(sockjs_session(
        f"http://127.0.0.1:{gateway}/ws/orders", transport,
        {"type": "AUTH", "data": {"token": account["token"]}, "requestId": "a"},
        {"type": "SUBMIT_ORDER", "data": order, "requestId": "o"}, until="EXECUTION_REPORT", timeout_ms=20_000))
    assert code == 0, stderr
    received = messages(events)
    types = [m["type"] for m in received]
    assert types[:3] == ["CONNECTION_ESTABLISHED", "AUTHENTICATED", "ACTIVE_ORDERS"]
    submitted = next(m for m in received if m["type"] == "ORDER_SUBMITTED")
    assert submitted["requestId"] == "o" and submitted["data"]["order"]["quantity"] == 3
    assert [m["seq"] for m in received] == list(range(1, len(received) + 1))


def test_hostile_messages_through_a_gateway_get_the_same_errors_and_harm_nothing(cluster, redis_server):
    """Refusals come from the engine's copy of the handler as in one process; garbage on the engine's own channels
    (anyone with access to Redis) is logged and dropped, and the next real request is answered."""
    gateway = cluster["gateways"][0]
    status, account = post(gateway, "/api/auth/guest", {"nickname": "Mallory"})
    assert status == 201, account
    portfolio = account["portfolioIds"][0]
    client_redis = redis_server.client()
    for garbage in (b"not json", b"{}", b'{"id": 1, "node": "x", "kind": "handle"}', b'{"kind": "alive"}'):
        client_redis.publish("stockquest:engine.calls", garbage)
    client_redis.publish("stockquest:engine.beat", b"[1, 2]")
    client_redis.close()

    async def scenario():
        client = await connect(gateway, "/ws/orders", account["token"])
        await client.expect("ACTIVE_ORDERS")
        cases = [
            ('{"type": "SUBMIT_ORDER", "data": {"portfolioId": "%s", "symbol": "NVTX", "side": "HOLD", '
             '"orderType": "MARKET", "quantity": 1}, "requestId": "1"}' % portfolio, "BAD_REQUEST"),
            ('{"type": "SUBMIT_ORDER", "data": {"portfolioId": "1", "symbol": 5}, "requestId": "2"}',
             "INVALID_MESSAGE"),
            ('{"type": "CANCEL_ORDER", "data": {"orderId": "O999999"}, "requestId": "3"}', None),
            ('{"type": "REQUEST_ORDER_STATUS", "data": {"orderId": "%s"}, "requestId": "4"}' % ("x" * 5000), None),
            ('{"type": "NOPE", "requestId": "5"}', "UNKNOWN_TYPE"),
            ('{"type": "SUBMIT_ORDER", "data": {"portfolioId": "999999", "symbol": "NVTX", "side": "BUY", '
             '"orderType": "MARKET", "quantity": 1e300}, "requestId": "6"}', None),
        ]
        for text, code in cases:
            await client.send_raw(text)
            error = await client.wait_for("ERROR")
            if code is not None:
                assert error["data"]["code"] == code, (text, error)
            assert error["data"]["code"] != "UNAVAILABLE", (text, error)
        await client.send("SUBMIT_ORDER", {"portfolioId": portfolio, "symbol": "NVTX", "side": "BUY",
                                           "orderType": "MARKET", "quantity": 1}, request_id="ok")
        assert (await client.wait_for("ORDER_SUBMITTED"))["requestId"] == "ok"
        client.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert health(cluster["engine"])["engine"] == "here"


@pytest.fixture
def own_postgres():
    """A PostgreSQL cluster of this test's own, which it may stop and start."""
    from tests.postgres_server import new_server
    server = new_server()
    yield server
    server.remove()


def test_with_postgresql_gone_orders_are_refused_internal_nothing_stored_is_damaged_and_trading_comes_back(
        redis_server, own_postgres, start_server, tmp_path):
    common = ("--redis-url", redis_server.url, "--tick-ms", "100", "--log-level", "INFO")
    _, engine = start_server("--role", "engine", *common, "--database-url", own_postgres.url(), "--jwt-secret",
                             SECRET, data_dir=tmp_path / "engine")
    _, gateway = start_server("--role", "gateway", *common, data_dir=tmp_path / "gateway")
    deadline = time.monotonic() + 15
    while health(gateway)["engine"] != "elsewhere":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, account = post(gateway, "/api/auth/guest", {"nickname": "Dora"})
    assert status == 201, account
    order = {"portfolioId": account["portfolioIds"][0], "symbol": "NVTX", "side": "BUY", "orderType": "MARKET",
             "quantity": 1}

    async def scenario():
        client = await connect(gateway, "/ws/orders", account["token"])
        await client.expect("ACTIVE_ORDERS")
        await client.send("SUBMIT_ORDER", {**order, "clientOrderId": "before"}, request_id="before")
        before = (await client.wait_for("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
        await client.wait_for("EXECUTION_REPORT")

        own_postgres.stop()
        await client.send("SUBMIT_ORDER", {**order, "clientOrderId": "down"}, request_id="down")
        refused = await client.wait_for("ERROR", timeout=15)
        assert refused["requestId"] == "down" and refused["data"]["code"] == "INTERNAL", refused

        own_postgres.start()
        for attempt in range(100):  # the engine reloads from storage on a tick once the database answers
            await client.send("SUBMIT_ORDER", {**order, "clientOrderId": f"after{attempt}"}, request_id=f"a{attempt}")
            answer = await client.recv(timeout=15)
            while answer["type"] not in ("ORDER_SUBMITTED", "ERROR"):
                answer = await client.recv(timeout=15)
            if answer["type"] == "ORDER_SUBMITTED":
                break
            assert answer["data"]["code"] == "INTERNAL", answer
            await asyncio.sleep(0.2)
        else:
            raise AssertionError("trading never came back")

        await client.send("REQUEST_ORDER_HISTORY", {"limit": 100}, request_id="h")
        history = (await client.wait_for("ORDER_HISTORY"))["data"]["orders"]
        ids = [o["clientOrderId"] for o in history]
        assert "before" in ids and "down" not in ids  # the refused order was never stored
        assert next(o for o in history if o["orderId"] == before)["status"] == "FILLED"
        client.close()
    asyncio.run(asyncio.wait_for(scenario(), 120))
    engine_log, gateway_log = (tmp_path / "server-0.log").read_text(), (tmp_path / "server-1.log").read_text()
    assert f"(data in {own_postgres.url()})" in engine_log  # where the data is, said at start-up
    assert "(a gateway: the data is the engine's)" in gateway_log


def test_a_client_connecting_while_the_engine_is_away_is_told_so_right_after_it_is_greeted(
        redis_server, start_server, tmp_path):
    common = ("--redis-url", redis_server.url, "--tick-ms", "100")
    engine, _ = start_server("--role", "engine", *common, data_dir=tmp_path / "engine")
    _, gateway = start_server("--role", "gateway", *common, data_dir=tmp_path / "gateway")
    deadline = time.monotonic() + 15
    while health(gateway)["engine"] != "elsewhere":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    engine.kill()
    while health(gateway)["engine"] != "unavailable":
        assert time.monotonic() < deadline + 10
        time.sleep(0.05)

    async def scenario():
        client = await connect(gateway, "/ws/market-data")  # CONNECTION_ESTABLISHED first, always
        status = await client.recv()
        assert status["type"] == "SERVICE_STATUS" and status["seq"] == 2
        assert status["data"]["status"] == "DEGRADED" and status["data"]["engine"] == "UNAVAILABLE"
        await client.send("REQUEST_QUOTE", {"symbol": "NVTX"}, request_id="q")
        refused = await client.wait_for("ERROR")
        assert refused["requestId"] == "q" and refused["data"]["code"] == "UNAVAILABLE"
        client.close()
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_the_engines_periodic_pushes_reach_subscribers_on_the_gateways(cluster):
    """The engine computes a push only for channels someone holds: the gateways' subscriptions count (they are
    told to the engine), so PORTFOLIO_UPDATE, RISK_UPDATE and SIGNAL_UPDATE reach clients on a gateway, and a fill
    brings its POSITION_UPDATE at once."""
    gateway = cluster["gateways"][1]
    status, account = post(gateway, "/api/auth/guest", {"nickname": "Pushy"})
    assert status == 201, account
    token, portfolio = account["token"], account["portfolioIds"][0]

    async def scenario():
        folio = await connect(gateway, "/ws/portfolio", token)
        await folio.expect("PORTFOLIO_LIST")
        await folio.send("SUBSCRIBE_PORTFOLIO", {"portfolioId": portfolio, "updateInterval": 500})
        await folio.wait_for("PORTFOLIO_SNAPSHOT")
        update = await folio.wait_for("PORTFOLIO_UPDATE", timeout=5)
        assert update["data"]["portfolioId"] == portfolio

        risk = await connect(gateway, "/ws/risk-monitoring", token)
        await risk.send("SUBSCRIBE_RISK", {"portfolioId": portfolio})
        await risk.wait_for("RISK_SNAPSHOT")
        signals = await connect(gateway, "/ws/ml-signals")
        await signals.send("SUBSCRIBE_SIGNALS", {"symbols": ["NVTX"]})
        await signals.wait_for("SUBSCRIPTION_CONFIRMED")
        assert (await risk.wait_for("RISK_UPDATE", timeout=12))["data"]["portfolioId"] == portfolio
        assert (await signals.wait_for("SIGNAL_UPDATE", timeout=12))["data"]["signals"]

        orders = await connect(gateway, "/ws/orders", token)
        await orders.expect("ACTIVE_ORDERS")
        await orders.send("SUBMIT_ORDER", {"portfolioId": portfolio, "symbol": "NVTX", "side": "BUY",
                                           "orderType": "MARKET", "quantity": 4})
        await orders.wait_for("EXECUTION_REPORT")
        while True:
            positions = await folio.wait_for("POSITION_UPDATE", timeout=5)
            if any(p["symbol"] == "NVTX" and p["quantity"] == 4 for p in positions["data"]["positions"]):
                break
        for client in (folio, risk, signals, orders):
            client.close()
    asyncio.run(asyncio.wait_for(scenario(), 60))


def test_a_scenario_started_through_a_gateway_is_news_on_every_gateway_and_history_for_a_late_joiner(cluster,
                                                                                                     tmp_path):
    first, second = cluster["gateways"]
    name, password = add_teacher(tmp_path / "engine")
    status, teacher = post(first, "/api/auth/login", {"username": name, "password": password})
    assert status == 200, teacher

    async def scenario():
        clients = [await connect(port, "/ws/market-data") for port in (first, second)]
        status, started = post(second, "/api/scenarios/start", {"name": "crash-and-recovery"}, teacher["token"])
        assert status == 200 and started["current"]["name"] == "crash-and-recovery", started
        status, skipped = post(first, "/api/scenarios/skip", {}, teacher["token"])
        assert status == 200 and skipped["current"]["timeline"][0]["happened"], skipped
        for client in clients:
            news = await client.wait_for("NEWS", timeout=5)
            assert (news["data"]["id"], news["data"]["scenario"]) == (1, "Crash and recovery")
        late = await connect(second, "/ws/market-data")  # its NEWS_HISTORY comes from the engine
        history = await late.expect("NEWS_HISTORY")
        assert [item["id"] for item in history["data"]["items"]] == [1]
        assert get(first, "/api/scenarios/current", teacher["token"])["current"]["happened"] == 1
        for client, heard in ((clients[0], [1]), (clients[1], [1]), (late, [])):  # each item once, either way
            await client.drain(0.5)
            assert [m["data"]["id"] for m in client.received if m["type"] == "NEWS"] == heard
            client.close()
    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_scenario_being_played_goes_on_when_the_standby_takes_over(two_engines, postgres_url):
    """The run is stored in the database (app_state), not in the leader's data folder: the standby, with a folder
    of its own, finds it and plays on."""
    gateway = two_engines["gateway"]
    result = subprocess.run([sys.executable, str(ROOT / "stockquest.py"), "user", "add", "tess", "--role", "teacher",
                             "--database-url", postgres_url], input="correct horse battery\n", capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    status, teacher = post(gateway, "/api/auth/login", {"username": "tess", "password": "correct horse battery"})
    assert status == 200, teacher
    status, started = post(gateway, "/api/scenarios/start", {"name": "crash-and-recovery"}, teacher["token"])
    assert status == 200, started
    before = started["current"]

    process, _ = leader_of(two_engines["engines"])
    process.kill()
    survivors = [(p, port) for p, port in two_engines["engines"] if p is not process]
    deadline = time.monotonic() + 20
    while health(survivors[0][1]).get("engine") != "here" or health(gateway)["engine"] != "elsewhere":
        assert time.monotonic() < deadline, "no takeover"
        time.sleep(0.1)
    after = get(gateway, "/api/scenarios/current", teacher["token"])["current"]
    assert after is not None and after["name"] == before["name"] == "crash-and-recovery"
    assert len(after["timeline"]) == len(before["timeline"]) and after["happened"] >= before["happened"]
    # the run's clock resumes where it was saved (services.scenarios.resumed): the takeover's seconds shift it
    assert after["startedAt"] >= before["startedAt"]


def test_a_class_contest_runs_through_the_gateways(cluster, tmp_path):
    """A teacher on one gateway, a student on another: the contest's REST is proxied to the engine, its messages
    forwarded, its pushes (ASSIGNMENT_PROGRESS, CONTEST_UPDATE) reach the student's gateway, and its end holds."""
    teacher_gw, student_gw = cluster["gateways"]
    name, password = add_teacher(tmp_path / "engine")
    status, signed_in = post(teacher_gw, "/api/auth/login", {"username": name, "password": password})
    assert status == 200, signed_in
    teacher = signed_in["token"]
    status, created = post(teacher_gw, "/api/contests", {"name": "Cluster class",
                                                         "schedule": {"kind": "DAYS", "firstDay": 0, "lastDay": 99}},
                           teacher)
    assert status == 201 and created["contest"]["status"] == "OPEN", created
    contest_id = created["contest"]["contestId"]
    status, _ = post(teacher_gw, f"/api/contests/{contest_id}/assignments",
                     {"kind": "PLACE_ORDER", "params": {"orderType": "MARKET"}, "due": "2099-01-01T00:00:00Z"},
                     teacher)
    assert status == 201
    status, account = post(student_gw, "/api/auth/guest", {"nickname": "Pupil"})
    token = account["token"]

    async def play():
        folio = await connect(student_gw, "/ws/portfolio", token)
        await folio.expect("PORTFOLIO_LIST")
        await folio.send("JOIN_CONTEST", {"code": created["contest"]["joinCode"], "nickname": "Pupil"})
        portfolio = (await folio.wait_for("CONTEST_JOINED"))["data"]["portfolioId"]
        await folio.send("SUBSCRIBE_CONTEST", {"contestId": contest_id})
        snapshot = await folio.wait_for("CONTEST_SNAPSHOT")
        assert snapshot["data"]["myPortfolioId"] == portfolio and snapshot["data"]["progress"][0]["state"] == "PENDING"
        orders = await connect(student_gw, "/ws/orders", token)
        await orders.expect("ACTIVE_ORDERS")
        order = {"portfolioId": portfolio, "symbol": "NVTX", "side": "BUY", "orderType": "MARKET", "quantity": 2}
        await orders.send("SUBMIT_ORDER", order)
        assert (await orders.wait_for("ORDER_SUBMITTED"))["data"]["order"]["portfolioId"] == portfolio
        progress = await folio.wait_for("ASSIGNMENT_PROGRESS", timeout=10)
        assert progress["data"]["tasks"][0]["state"] == "DONE"
        status, finished = post(teacher_gw, f"/api/contests/{contest_id}/finish", {}, teacher)
        assert status == 200 and finished["contest"]["status"] == "FINISHED"
        update = await folio.wait_for("CONTEST_UPDATE", timeout=10)
        while update["data"]["status"] != "FINISHED":
            update = await folio.wait_for("CONTEST_UPDATE", timeout=10)
        assert update["data"]["ranking"]["final"] and update["data"]["ranking"]["entries"][0]["name"] == "Pupil"
        await orders.send("SUBMIT_ORDER", order)
        assert (await orders.wait_for("ORDER_REJECTED"))["data"]["reason"] == "CONTEST_NOT_OPEN"
        for client in (folio, orders):
            client.close()
    asyncio.run(asyncio.wait_for(play(), 60))
    request = urllib.request.Request(f"http://127.0.0.1:{teacher_gw}/api/contests/{contest_id}/report.csv",
                                     headers={"Authorization": f"Bearer {teacher}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/csv")
        assert response.headers["Content-Disposition"].startswith("attachment")  # a download, past the proxy too
        assert "Pupil" in response.read().decode("utf-8-sig")
