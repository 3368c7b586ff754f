"""/ws/admin over a real WebSocket (and once over SockJS): the live log stream for admins, bounded and redacted,
and the metrics for teachers."""

import asyncio
import logging

import pytest

from tests.test_sockjs_endpoints import messages, sockjs_session

pytestmark = pytest.mark.gen_test(timeout=30)

ADMIN = "/ws/admin"
for _name in ("test.flood", "test.slow", "test.stop", "test.demoted", "test.sockjs"):
    logging.getLogger(_name)  # a subscription may name only a logger that exists


@pytest.fixture(autouse=True)
def info_logging(caplog):
    """The server's default level (INFO): under pytest the root logger would pass WARNING and up only."""
    caplog.set_level(logging.INFO)


@pytest.fixture
def admin(ws, make_user):
    """Open /ws/admin as a new admin and subscribe to logs: returns the client (its confirmation read)."""
    names = iter(f"root{n}" for n in range(100))

    async def open_admin(level="INFO", logger=None):
        _, token = make_user(next(names), role="admin")
        client = await ws(ADMIN, token=token)
        data = {"level": level} if logger is None else {"level": level, "logger": logger}
        await client.send("SUBSCRIBE_LOGS", data, request_id="logs")
        confirmed = await client.expect("SUBSCRIPTION_CONFIRMED")
        assert confirmed["requestId"] == "logs" and confirmed["data"]["action"] == "SUBSCRIBE"
        return client

    return open_admin


async def records(client, count, timeout=5.0, logger=None):
    """The next `count` LOG_RECORDs (of `logger`, when given), skipping everything else."""
    found = []
    while len(found) < count:
        message = await client.wait_for("LOG_RECORD", timeout)
        if logger is None or message["data"]["logger"] == logger:
            found.append(message["data"])
    return found


async def test_admin_streams_records_as_they_happen_with_session_and_user_ids(admin, ws, make_user):
    watcher = await admin(logger="handlers")
    student, token = make_user("sam")
    await ws("/ws/orders", token=token)
    record = next(r for r in await records(watcher, 1) if r["message"] == "connection opened via websocket")
    assert record["level"] == "INFO" and record["logger"] == "handlers.base"
    assert record["userId"] == str(student.id) and len(record["sessionId"]) == 32
    assert record["endpoint"] == "orders" and record["time"].endswith("Z")


async def test_level_and_logger_filter_what_is_streamed(admin):
    watcher = await admin(level="WARNING", logger="stockquest")
    logging.getLogger("stockquest").info("too quiet to stream")
    logging.getLogger("elsewhere").warning("another logger")
    logging.getLogger("stockquest.sub").warning("below the logger named: streamed")
    [record] = await records(watcher, 1)
    assert record["message"] == "below the logger named: streamed" and record["level"] == "WARNING"


@pytest.mark.parametrize("role", ["teacher", "student"])
async def test_log_stream_is_refused_to_teachers_and_students_whose_connection_stays(ws, make_user, role):
    _, token = make_user("someone", role=role)
    client = await ws(ADMIN, token=token)
    await client.send("SUBSCRIBE_LOGS", {"level": "INFO"}, request_id="l")
    error = await client.expect("ERROR")
    assert (error["requestId"], error["data"]["code"]) == ("l", "FORBIDDEN")
    logging.getLogger("stockquest").warning("not for %s", role)
    await client.send("HEARTBEAT", request_id="h")
    assert (await client.expect("HEARTBEAT"))["requestId"] == "h"  # nothing streamed in between


async def test_teachers_read_metrics_on_the_admin_endpoint_and_students_may_not(ws, make_user):
    _, teacher = make_user("tess", role="teacher")
    _, student = make_user("stu")
    client = await ws(ADMIN, token=teacher)
    await client.send("REQUEST_METRICS", {}, request_id="m")
    reply = await client.expect("METRICS")
    assert reply["requestId"] == "m" and {"seconds", "connections", "responseTimeMs"} <= set(reply["data"])
    other = await ws(ADMIN, token=student)
    await other.send("REQUEST_METRICS", {})
    assert (await other.expect("ERROR"))["data"]["code"] == "FORBIDDEN"


async def test_unauthenticated_connection_is_refused_unauthorized_and_closed(ws):
    client = await ws(ADMIN)
    await client.send("SUBSCRIBE_LOGS", {"level": "INFO"})
    assert (await client.expect("ERROR"))["data"]["code"] == "UNAUTHORIZED"
    assert (await client.closed())[0] == 4401


async def test_a_logged_token_or_password_never_reaches_the_stream(admin, services, make_user):
    watcher = await admin(logger="stockquest")
    _, token = make_user("victim")
    log = logging.getLogger("stockquest")
    log.warning("login failed: password=%s token=%s", "hunter2-horse", token)
    log.warning("header Authorization: Bearer %s and a bare %s", token, token)
    log.warning('json {"password": "%s", "newPassword": "%s"}', "hunter2-horse", "hunter2-horse")
    try:
        raise ValueError(f"bad token {token}")
    except ValueError:
        log.exception("while checking ?token=%s&x=1", token)
    found = await records(watcher, 4)
    text = repr(found)
    assert token not in text and token.split(".")[1] not in text and "hunter2" not in text
    assert all("[redacted]" in r["message"] for r in found)
    assert found[3]["exception"] == "ValueError: bad token [redacted]"  # its type and message: no traceback
    assert "Traceback" not in text


@pytest.mark.parametrize("config_overrides", [{"log_stream_rate_per_s": 5}])
async def test_rate_cap_drops_records_and_tells_the_reader_how_many(admin, services):
    watcher = await admin(logger="test.flood")
    flood = logging.getLogger("test.flood")
    for n in range(40):
        flood.warning("record %d", n)
    got, dropped = 0, 0
    while got + dropped < 40:
        message = await watcher.recv(timeout=5)
        got += message["type"] == "LOG_RECORD"
        if message["type"] == "LOGS_DROPPED":
            dropped += message["data"]["dropped"]
            assert message["data"]["totalDropped"] == dropped
    assert got <= 6 and dropped == 40 - got  # the burst (5), then nothing faster than the cap
    assert services.logs.dropped_rate == dropped


async def test_a_slow_reader_misses_records_with_a_count_while_another_gets_them_all(admin, services):
    slow = await admin(logger="test.slow")
    fast = await admin(logger="test.slow")
    endpoint = next(c for c in services.hub.connections("admin") if c.session_id == slow.received[0]["data"]
                    ["sessionId"])
    pads = 0
    while endpoint.buffered_bytes() <= services.logs.backlog_bytes:  # the kernel's buffers first, then the stream's
        assert endpoint.send("PAD", {"pad": "z" * 200_000})
        pads += 1
        assert pads < 200, "the backlog never grew"
    for n in range(10):
        logging.getLogger("test.slow").warning("record %d", n)
    assert [r["message"] for r in await records(fast, 10)] == [f"record {n}" for n in range(10)]
    drops = await slow.wait_for("LOGS_DROPPED", timeout=10)  # once it has read its backlog
    assert drops["data"] == {"dropped": 10, "totalDropped": 10}
    assert sum(m["type"] == "PAD" for m in slow.received) == pads
    assert not any(m["type"] == "LOG_RECORD" for m in slow.received)
    logging.getLogger("test.slow").warning("after catching up")
    assert (await records(slow, 1))[0]["message"] == "after catching up"


@pytest.mark.parametrize("data, code", [
    ({"level": "LOUD"}, "BAD_REQUEST"),
    ({"level": 5}, "INVALID_MESSAGE"),
    ({"logger": "no.such.logger.anywhere"}, "BAD_REQUEST"),
    ({"logger": "../../etc/passwd"}, "BAD_REQUEST"),
    ({"logger": ["stockquest"]}, "INVALID_MESSAGE"),
    ({"logger": "x" * 5000}, "BAD_REQUEST"),
])
async def test_bad_subscriptions_get_a_clear_error_and_the_connection_stays(ws, make_user, data, code):
    _, token = make_user("ada", role="admin")
    client = await ws(ADMIN, token=token)
    await client.send("SUBSCRIBE_LOGS", data, request_id="bad")
    error = await client.expect("ERROR")
    assert (error["requestId"], error["data"]["code"], error["data"]["requestType"]) == ("bad", code, "SUBSCRIBE_LOGS")
    assert error["data"]["error"]
    await client.send_raw("not json at all")
    assert (await client.expect("ERROR"))["data"]["code"] == "INVALID_MESSAGE"
    await client.send("SUBSCRIBE_LOGS", {"level": "warning", "logger": "stockquest"}, request_id="ok")
    assert (await client.expect("SUBSCRIPTION_CONFIRMED"))["data"]["level"] == "WARNING"


async def test_unsubscribe_stops_the_stream(admin):
    watcher = await admin(logger="test.stop")
    await watcher.send("UNSUBSCRIBE_LOGS", request_id="u")
    assert (await watcher.expect("SUBSCRIPTION_CONFIRMED"))["data"]["action"] == "UNSUBSCRIBE"
    logging.getLogger("test.stop").warning("nobody hears this")
    await watcher.send("HEARTBEAT", request_id="h")
    assert (await watcher.expect("HEARTBEAT"))["requestId"] == "h"


async def test_an_admin_demoted_while_streaming_stops_hearing_records(admin, services):
    watcher = await admin(logger="test.demoted")
    services.storage.set_role("root0", "teacher")
    error = await watcher.wait_for("ERROR", timeout=5)
    assert error["data"]["code"] == "FORBIDDEN" and "role changed" in error["data"]["error"]
    logging.getLogger("test.demoted").warning("not any more")
    await watcher.send("HEARTBEAT", request_id="h")
    assert (await watcher.expect("HEARTBEAT"))["requestId"] == "h"


async def test_log_stream_over_sockjs(http_port, server, make_user):
    _, token = make_user("sockjs-admin", role="admin")
    stop = asyncio.Event()

    async def keep_logging():
        while not stop.is_set():
            logging.getLogger("test.sockjs").warning("over sockjs")
            await asyncio.sleep(0.1)

    task = asyncio.ensure_future(keep_logging())
    try:
        code, events, stderr = await sockjs_session(
            f"http://127.0.0.1:{http_port}{ADMIN}?token={token}", "xhr-streaming",
            {"type": "SUBSCRIBE_LOGS", "data": {"level": "WARNING", "logger": "test.sockjs"}, "requestId": "s"},
            until="LOG_RECORD", count=2)
    finally:
        stop.set()
        await task
    assert code == 0, stderr
    received = messages(events)
    assert [m["type"] for m in received[:2]] == ["CONNECTION_ESTABLISHED", "SUBSCRIPTION_CONFIRMED"]
    logs = [m["data"] for m in received if m["type"] == "LOG_RECORD"]
    assert len(logs) == 2 and logs[0]["message"] == "over sockjs" and logs[0]["logger"] == "test.sockjs"
