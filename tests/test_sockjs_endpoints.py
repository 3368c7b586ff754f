"""The real sockjs-client (npm) under Node against the server's endpoints, on each of the three transports."""

import asyncio
import logging
import shutil
from pathlib import Path

import pytest
import tornado.httpclient
import ujson

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "node" / "sockjs_client.js"
TRANSPORTS = ["websocket", "xhr-streaming", "xhr-polling"]

pytestmark = pytest.mark.gen_test(timeout=40)


async def sockjs_session(url, transport, *sends, until=None, count=1, until_close=False, timeout_ms=10_000):
    """Run the Node harness; returns (exit code, events)."""
    node = shutil.which("node")
    assert node, "node is required for the SockJS tests (apt-get install nodejs npm)"
    assert (ROOT / "node_modules" / "sockjs-client").is_dir(), "run `npm ci` (make test does) for sockjs-client"
    args = [node, str(HARNESS), "--url", url, "--transport", transport, "--timeout-ms", str(timeout_ms)]
    for message in sends:
        args += ["--send", ujson.dumps(message)]
    if until:
        args += ["--until-type", until, "--count", str(count)]
    if until_close:
        args.append("--until-close")
    process = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE, cwd=ROOT)
    stdout, stderr = await process.communicate()
    events = [ujson.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    return process.returncode, events, stderr.decode()


def messages(events):
    return [event["data"] for event in events if event["event"] == "message"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_market_data_subscribe_receives_live_updates(http_port, server, transport):
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/market-data", transport,
        {"type": "SUBSCRIBE", "data": {"symbols": ["NVTX", "QBIT"], "updateInterval": 100}, "requestId": "s1"},
        until="REAL_TIME_UPDATE", count=2)
    assert code == 0, stderr
    assert events[0] == {"event": "open", "transport": transport}
    received = messages(events)
    types = [m["type"] for m in received]
    assert types[:3] == ["CONNECTION_ESTABLISHED", "SUBSCRIPTION_CONFIRMED", "INITIAL_DATA"]
    assert received[1]["requestId"] == "s1"
    updates = [m for m in received if m["type"] == "REAL_TIME_UPDATE"]
    assert len(updates) == 2
    assert {q["symbol"] for u in updates for q in u["data"]["quotes"]} <= {"NVTX", "QBIT"}
    assert [m["seq"] for m in received] == list(range(1, len(received) + 1))


@pytest.mark.parametrize("config_overrides", [{"anonymous_market_data": False}])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_auth_message_signs_in_over_sockjs_where_sign_in_is_required(http_port, server, make_user,
                                                                           transport):
    user, token = make_user()
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/market-data", transport,
        {"type": "AUTH", "data": {"token": token}, "requestId": "a1"},
        {"type": "SUBSCRIBE", "data": {"symbols": ["NVTX"], "updateInterval": 100}},
        until="REAL_TIME_UPDATE")
    assert code == 0, stderr
    received = messages(events)
    assert received[0]["type"] == "CONNECTION_ESTABLISHED" and received[0]["data"]["userId"] is None
    assert received[1]["type"] == "AUTHENTICATED" and received[1]["requestId"] == "a1"
    assert received[1]["data"]["userId"] == str(user.id)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_token_over_sockjs_gets_unauthorized_and_close_4401(http_port, server, transport):
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/market-data?token=forged.token.here", transport, until_close=True)
    assert code == 0, stderr
    received = messages(events)
    assert received[0]["type"] == "ERROR" and received[0]["data"]["code"] == "UNAUTHORIZED"
    assert events[-1]["event"] == "close" and events[-1]["code"] == 4401


@pytest.mark.parametrize("config_overrides", [{"anonymous_market_data": False}])
@pytest.mark.parametrize("transport", ["xhr-streaming"])
async def test_message_before_auth_over_sockjs_closes_4401(http_port, server, transport):
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/market-data", transport, {"type": "REQUEST_SYMBOLS"}, until_close=True)
    assert code == 0, stderr
    errors = [m for m in messages(events) if m["type"] == "ERROR"]
    assert errors and errors[0]["data"]["code"] == "UNAUTHORIZED"
    assert events[-1]["code"] == 4401


@pytest.mark.parametrize("config_overrides", [{"max_message_bytes": 2048}])
async def test_oversized_message_over_sockjs_closes_1009(http_port, server):
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/market-data", "xhr-streaming",
        {"type": "SUBSCRIBE", "data": {"symbols": ["X" * 4000]}}, until_close=True)
    assert code == 0, stderr
    assert events[-1]["event"] == "close" and events[-1]["code"] == 1009


async def test_hostile_input_over_sockjs_keeps_session_usable(http_port, server):
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/market-data", "xhr-polling",
        "not json", [1, 2], {"type": "NOPE"}, {"type": "HEARTBEAT", "requestId": "h"},
        until="HEARTBEAT")
    assert code == 0, stderr
    received = messages(events)
    errors = [m["data"]["code"] for m in received if m["type"] == "ERROR"]
    assert errors == ["INVALID_MESSAGE", "INVALID_MESSAGE", "UNKNOWN_TYPE"]
    assert received[-1]["type"] == "HEARTBEAT" and received[-1]["requestId"] == "h"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_orders_over_sockjs_submit_and_fill_after_auth_message(http_port, server, make_user, services,
                                                                     transport):
    user, token = make_user()
    portfolio_id = services.storage.portfolio_ids_of(str(user.id))[0]
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/orders", transport,
        {"type": "AUTH", "data": {"token": token}},
        {"type": "SUBSCRIBE_ORDERS", "data": {}},
        {"type": "SUBMIT_ORDER", "requestId": "o1", "data": {"portfolioId": portfolio_id, "symbol": "NVTX",
                                                             "side": "BUY", "orderType": "MARKET", "quantity": 3}},
        until="ORDER_FILLED")
    assert code == 0, stderr
    received = messages(events)
    types = [m["type"] for m in received]
    assert types[:4] == ["CONNECTION_ESTABLISHED", "AUTHENTICATED", "ACTIVE_ORDERS", "SUBSCRIPTION_CONFIRMED"]
    submitted = next(m for m in received if m["type"] == "ORDER_SUBMITTED")
    assert submitted["requestId"] == "o1"
    assert types.index("ORDER_SUBMITTED") < types.index("EXECUTION_REPORT") < types.index("ORDER_FILLED")
    assert received[-1]["data"]["order"]["filledQuantity"] == 3


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_portfolio_over_sockjs_lists_and_snapshots_after_auth_message(http_port, server, make_user, services,
                                                                           transport):
    user, token = make_user()
    portfolio_id = services.storage.portfolio_ids_of(str(user.id))[0]
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/portfolio", transport,
        {"type": "AUTH", "data": {"token": token}},
        {"type": "SUBSCRIBE_PORTFOLIO", "data": {"portfolioId": portfolio_id, "updateInterval": 500}},
        until="PORTFOLIO_UPDATE")
    assert code == 0, stderr
    received = messages(events)
    assert [m["type"] for m in received[:5]] == ["CONNECTION_ESTABLISHED", "AUTHENTICATED", "PORTFOLIO_LIST",
                                                 "SUBSCRIPTION_CONFIRMED", "PORTFOLIO_SNAPSHOT"]
    assert received[2]["data"]["portfolios"][0]["portfolioId"] == portfolio_id
    assert received[-1]["data"]["portfolioId"] == portfolio_id


async def test_orders_endpoint_over_sockjs_refuses_a_message_before_auth_with_4401(http_port, server):
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/orders", "xhr-polling", {"type": "ACTIVE_ORDERS"}, until_close=True)
    assert code == 0, stderr
    assert messages(events)[-1]["data"]["code"] == "UNAUTHORIZED"
    assert events[-1]["code"] == 4401


def replies_by_request(received):
    return {m["requestId"]: m for m in received if "requestId" in m}


async def test_every_orders_message_type_over_sockjs(http_port, server, make_user, services):
    user, token = make_user()
    pid = services.storage.portfolio_ids_of(str(user.id))[0]
    far = {"portfolioId": pid, "symbol": "QBIT", "side": "BUY", "orderType": "LIMIT", "limitPrice": 1.0,
           "quantity": 2, "timeInForce": "GTC", "clientOrderId": "far-1"}
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/orders", "xhr-streaming",
        {"type": "AUTH", "data": {"token": token}, "requestId": "auth"},
        {"type": "SUBSCRIBE_ORDERS", "data": {"sinceEventId": 0}, "requestId": "sub"},
        {"type": "SUBMIT_ORDER", "data": far, "requestId": "submit"},
        {"type": "MODIFY_ORDER", "data": {"orderId": "O1", "limitPrice": 1.5}, "requestId": "modify"},
        {"type": "REQUEST_ORDER_STATUS", "data": {"orderId": "O1"}, "requestId": "status"},
        {"type": "CANCEL_ORDER", "data": {"orderId": "O1"}, "requestId": "cancel"},
        {"type": "REQUEST_ORDER_HISTORY", "data": {"limit": 5}, "requestId": "history"},
        {"type": "UNSUBSCRIBE_ORDERS", "requestId": "unsub"},
        {"type": "HEARTBEAT", "requestId": "done"},
        until="ORDER_CANCELLED")  # order events travel through the hub: after the replies of the same turn
    assert code == 0, stderr
    replies = replies_by_request(messages(events))
    assert {k: v["type"] for k, v in replies.items()} == {
        "auth": "AUTHENTICATED", "sub": "SUBSCRIPTION_CONFIRMED", "submit": "ORDER_SUBMITTED",
        "modify": "ORDER_MODIFIED", "status": "ORDER_STATUS", "cancel": "ORDER_CANCELLED",
        "history": "ORDER_HISTORY", "unsub": "SUBSCRIPTION_CONFIRMED", "done": "HEARTBEAT"}
    assert replies["modify"]["data"]["order"]["limitPrice"] == 1.5
    assert replies["history"]["data"]["orders"][0]["status"] == "CANCELLED"


async def test_every_portfolio_message_type_over_sockjs(http_port, server, make_user, services):
    user, token = make_user()
    pid = services.storage.portfolio_ids_of(str(user.id))[0]
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/portfolio", "xhr-polling",
        {"type": "AUTH", "data": {"token": token}, "requestId": "auth"},
        {"type": "SUBSCRIBE_PORTFOLIO", "data": {"portfolioId": pid}, "requestId": "sub"},
        {"type": "REQUEST_PORTFOLIO_SNAPSHOT", "data": {"portfolioId": pid}, "requestId": "snap"},
        {"type": "REQUEST_POSITION_DETAILS", "data": {"portfolioId": pid, "symbol": "NVTX"}, "requestId": "pos"},
        {"type": "UPDATE_POSITION", "data": {"portfolioId": pid, "symbol": "NVTX", "stopLoss": 1},
         "requestId": "levels"},
        {"type": "REQUEST_PORTFOLIO_ANALYTICS", "data": {"portfolioId": pid}, "requestId": "analytics"},
        {"type": "CREATE_PORTFOLIO", "data": {"name": "Second"}, "requestId": "create"},
        {"type": "UNSUBSCRIBE_PORTFOLIO", "data": {"portfolioId": pid}, "requestId": "unsub"},
        {"type": "HEARTBEAT", "requestId": "done"},
        until="HEARTBEAT")
    assert code == 0, stderr
    replies = replies_by_request(messages(events))
    types = {k: v["type"] for k, v in replies.items()}
    assert types == {"auth": "AUTHENTICATED", "sub": "PORTFOLIO_SNAPSHOT", "snap": "PORTFOLIO_SNAPSHOT",
                     "pos": "POSITION_DETAILS", "levels": "ERROR", "analytics": "PORTFOLIO_ANALYTICS",
                     "create": "PORTFOLIO_CREATED", "unsub": "SUBSCRIPTION_CONFIRMED", "done": "HEARTBEAT"}
    assert replies["levels"]["data"]["code"] == "BAD_REQUEST"  # no position to protect yet


async def test_every_risk_message_type_over_sockjs(http_port, server, make_user, services):
    user, token = make_user()
    _, teacher = make_user("tess", role="teacher")
    pid = services.storage.portfolio_ids_of(str(user.id))[0]
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/risk-monitoring", "xhr-streaming",
        {"type": "AUTH", "data": {"token": token}, "requestId": "auth"},
        {"type": "SUBSCRIBE_RISK", "data": {"portfolioId": pid}, "requestId": "sub"},
        {"type": "REQUEST_RISK_SNAPSHOT", "data": {"portfolioId": pid}, "requestId": "snap"},
        {"type": "SET_RISK_LIMITS", "data": {"portfolioId": pid, "limits": {"maxOrderValue": 5000}},
         "requestId": "limits"},
        {"type": "ACKNOWLEDGE_ALERT", "data": {"alertId": "A404"}, "requestId": "ack"},
        {"type": "UNSUBSCRIBE_RISK", "data": {"portfolioId": pid}, "requestId": "unsub"},
        {"type": "HEARTBEAT", "requestId": "done"},
        until="HEARTBEAT")
    assert code == 0, stderr
    types = {k: v["type"] for k, v in replies_by_request(messages(events)).items()}
    assert types == {"auth": "AUTHENTICATED", "sub": "RISK_SNAPSHOT", "snap": "RISK_SNAPSHOT",
                     "limits": "RISK_LIMITS_UPDATED", "ack": "ERROR", "unsub": "SUBSCRIPTION_CONFIRMED",
                     "done": "HEARTBEAT"}
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/risk-monitoring?token={teacher}", "websocket",
        {"type": "SUBSCRIBE_RISK", "data": {"scope": "ALL"}, "requestId": "all"}, until="RISK_RANKING")
    assert code == 0, stderr
    assert messages(events)[-1]["data"]["entries"][0]["portfolioId"] == pid


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_signals_message_type_over_sockjs(http_port, server, make_user, services, transport):
    user, token = make_user()
    pid = services.storage.portfolio_ids_of(str(user.id))[0]
    code, events, stderr = await sockjs_session(
        f"http://127.0.0.1:{http_port}/ws/ml-signals", transport,
        {"type": "AUTH", "data": {"token": token}, "requestId": "auth"},
        {"type": "SUBSCRIBE_SIGNALS", "data": {"symbols": ["NVTX"]}, "requestId": "sub"},
        {"type": "REQUEST_SIGNAL", "data": {"symbol": "QBIT"}, "requestId": "signal"},
        {"type": "REQUEST_MODEL_PERFORMANCE", "requestId": "perf"},
        {"type": "REQUEST_OPTIMIZATION", "data": {"portfolioId": pid, "symbols": ["NVTX", "QBIT"],
                                                  "objective": "MAX_SHARPE"}, "requestId": "opt"},
        {"type": "UNSUBSCRIBE_SIGNALS", "requestId": "unsub"},
        {"type": "HEARTBEAT", "requestId": "done"},
        until="HEARTBEAT")
    assert code == 0, stderr
    types = {k: v["type"] for k, v in replies_by_request(messages(events)).items()}
    assert types == {"auth": "AUTHENTICATED", "sub": "SIGNAL_UPDATE", "signal": "SIGNAL_UPDATE",
                     "perf": "MODEL_PERFORMANCE", "opt": "OPTIMIZATION_RESULT", "unsub": "SUBSCRIPTION_CONFIRMED",
                     "done": "HEARTBEAT"}


async def test_sockjs_messages_that_are_not_strings_get_invalid_message_and_no_traceback(http_port, server, caplog):
    client = tornado.httpclient.AsyncHTTPClient()
    session = f"http://127.0.0.1:{http_port}/ws/market-data/000/not-strings"

    async def post(transport, body=b""):
        return await client.fetch(f"{session}/{transport}", method="POST", body=body)

    assert (await post("xhr")).body == b"o\n"
    last = ujson.dumps([ujson.dumps({"type": "HEARTBEAT", "requestId": "ok"})]).encode()
    for body in (b"[1]", b"[null]", b'[{"type": "HEARTBEAT"}]', last):
        assert (await post("xhr_send", body)).code == 204
    received = []
    while not any(message.get("requestId") == "ok" for message in received):
        frame = (await post("xhr")).body
        received += [ujson.loads(text) for text in ujson.loads(frame[1:])] if frame.startswith(b"a") else []
    errors = [message["data"] for message in received if message["type"] == "ERROR"]
    assert [error["code"] for error in errors] == ["INVALID_MESSAGE"] * 3, errors
    assert "not strings" in errors[0]["error"]
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR] == []
