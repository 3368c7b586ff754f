"""docs/asyncapi.yaml against the server itself, so that the published contract cannot drift from the code.

Inbound: every type an endpoint's `@handles` table (plus what `Endpoint.dispatch` answers itself) is a receive
operation on that endpoint's channel, with the data schema the handler's own validators give (Field.json_schema),
and nothing else is. Outbound: every message type the code sends (an ast scan of Reply/send/publish/broadcast
call sites) is documented on the endpoints that hear it, and every documented one is sent. Then messages captured
from a running server are validated against the spec's schemas, and close and ERROR codes match realtime.protocol.
The spec is read through @asyncapi/parser (tests/node/validate_asyncapi.js), exactly as CI validates it.
"""

import ast
import inspect
import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest

import stockquest
from domain.trading import EventKind
from handlers.base import Endpoint
from realtime.protocol import CloseCode, ErrorCode
from realtime.wire import contests as wire_contests

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "asyncapi.yaml"
VALIDATOR = ROOT / "tests" / "node" / "validate_asyncapi.js"
ALL = tuple(stockquest.ENDPOINTS)
ANNOTATIONS = {"description", "title", "examples", "x-parser-schema-id"}

# Where a message type is sent from decides who hears it. Endpoint modules are read from ENDPOINTS; the rest
# are named here, so that a send in a new module fails until someone says which endpoints hear it.
SENDING_MODULES = {
    "handlers/base.py": ALL,
    "stockquest.py": ALL,  # the HEARTBEAT broadcast
    "realtime/fanout.py": ("market-data",),
    "services/market.py": ("market-data",),
    "services/scenarios.py": ("market-data",),  # NEWS, on the market channel
    "services/trading.py": ("orders",),
    "services/portfolios.py": ("portfolio",),
    "services/contests.py": ("portfolio",),  # CONTEST_UPDATE and ASSIGNMENT_PROGRESS, to SUBSCRIBE_CONTEST holders
    "services/risk.py": ("risk-monitoring",),
    "services/signals.py": ("ml-signals",),
    "services/logstream.py": ("admin",),  # LOG_RECORD and LOGS_DROPPED, to /ws/admin's log subscribers
}
ORDER_EVENTS = frozenset(str(kind) for kind in EventKind)
# Call sites whose type is computed, not a literal: what each can send (None: it forwards a type given to an
# earlier call site, which the scan checks there). A new computed site fails until it is listed here.
COMPUTED_SITES = {
    "handlers/base.py:dispatch": None,  # a handler's Reply(...).type
    "handlers/base.py:apply_remote": None,  # what a handler sent on the engine, for a gateway's connection
    "realtime/hub.py:_deliver": None,  # a publication's type, given to ConnectionHub.publish
    "handlers/orders.py:_replay": ORDER_EVENTS,  # stored order events, sent again under their EventKind
    "services/trading.py:submit": ORDER_EVENTS,  # a repeated clientOrderId: the original's first event
    "services/trading.py:_publish": ORDER_EVENTS,
}
SENDERS = {  # callable name: (index of the message type argument, fewest positional arguments of a real send)
    "Reply": (0, 1),
    "send": (0, 2),  # (message_type, data); SockJS's and sockets' own send(text) take one
    "send_json": (0, 2),
    "broadcast": (0, 2),
    "publish": (1, 3),  # hub.publish(channels, type, data_json); broker.publish(channel, bytes) has two
    "deliver": (0, 4),
}
SCANNED = ["stockquest.py", "handlers", "realtime", "services", "domain"]


def run_validator(*args, timeout=60):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the AsyncAPI check needs Node 18+ (apt-get install nodejs npm)")
    if not (ROOT / "node_modules" / "@asyncapi" / "parser" / "package.json").exists():
        pytest.fail("node_modules/@asyncapi/parser is missing: run `npm ci` in the repository root")
    return subprocess.run([node, str(VALIDATOR), str(SPEC), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


@pytest.fixture(scope="module")
def spec():
    """The parsed document, $refs resolved, as @asyncapi/parser returns it."""
    result = run_validator("--dump")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wire_type(message: dict) -> str:
    payload = message["payload"]
    for part in [payload, *payload.get("allOf", [])]:
        const = part.get("properties", {}).get("type", {}).get("const")
        if const is not None:
            return const
    raise AssertionError(f"message {message.get('name')} has no payload.properties.type.const")


def messages_by_endpoint(spec: dict, action: str) -> dict[str, dict[str, dict]]:
    """{endpoint: {wire type: message}} over the spec's operations with `action` (receive: client to server)."""
    table = {name: {} for name in ALL}
    for operation in spec["operations"].values():
        if operation["action"] == action:
            endpoint = operation["channel"]["address"].removeprefix("/ws/")
            for message in operation["messages"]:
                table[endpoint][wire_type(message)] = message
    return table


def without_annotations(schema):
    if isinstance(schema, dict):
        return {key: without_annotations(value) for key, value in schema.items() if key not in ANNOTATIONS}
    if isinstance(schema, list):
        return [without_annotations(item) for item in schema]
    return schema


def connection_types() -> set[str]:
    """The types `Endpoint.dispatch` answers itself, before its table: `message.type == "AUTH"` and the like."""
    tree = ast.parse(inspect.getsource(Endpoint.dispatch).strip().replace("\n    ", "\n"))
    return {node.comparators[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "type"
            and isinstance(node.comparators[0], ast.Constant)}


# inbound ------------------------------------------------------------------------------------------------------


def test_asyncapi_document_parses_without_errors():
    result = run_validator()
    assert result.returncode == 0, result.stderr
    assert "error:" not in result.stderr


def test_every_handled_type_and_only_those_is_a_receive_operation_of_its_endpoint(spec):
    documented = messages_by_endpoint(spec, "receive")
    assert connection_types() == {"AUTH", "HEARTBEAT"}
    for name, endpoint_cls in stockquest.ENDPOINTS.items():
        assert set(documented[name]) == set(endpoint_cls.handlers) | connection_types(), name


def test_documented_request_data_matches_the_handlers_field_validators(spec):
    """Names, required fields and each field's JSON Schema (types, bounds, allowed values, defaults)."""
    documented = messages_by_endpoint(spec, "receive")
    for name, endpoint_cls in stockquest.ENDPOINTS.items():
        for message_type, (_, _, fields) in endpoint_cls.handlers.items():
            where = f"{name} {message_type}"
            data = documented[name][message_type]["payload"]["properties"]["data"]
            properties = data.get("properties", {})
            assert set(properties) == set(fields), where
            assert set(data.get("required", [])) == {field for field, spec_ in fields.items() if spec_.required}, where
            for field, validator in fields.items():
                server = validator.json_schema()
                written = without_annotations(properties[field])
                if server == {"type": "object"}:  # a free-form object the domain checks (SET_RISK_LIMITS limits)
                    written = {"type": written["type"]}
                assert written == server, f"{where}.{field}"


def test_auth_message_needs_a_token(spec):
    for name, messages in messages_by_endpoint(spec, "receive").items():
        data = messages["AUTH"]["payload"]["properties"]["data"]
        assert data["required"] == ["token"] and data["properties"]["token"]["type"] == "string", name


# outbound -----------------------------------------------------------------------------------------------------


def sending_modules() -> dict[str, tuple[str, ...]]:
    modules = dict(SENDING_MODULES)
    for name, endpoint_cls in stockquest.ENDPOINTS.items():
        modules[Path(inspect.getsourcefile(endpoint_cls)).relative_to(ROOT).as_posix()] = (name,)
    return modules


def _type_argument(call: ast.Call) -> ast.expr | None:
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in SENDERS:
        return None
    for keyword in call.keywords:
        if keyword.arg in ("type", "message_type"):
            return keyword.value
    index, fewest = SENDERS[name]
    return call.args[index] if len(call.args) >= fewest else None


def scan_sends(paths=SCANNED) -> list[tuple[str, str, frozenset | None]]:
    """(module, function, types) for every send call site: literal types as written, computed ones from
    COMPUTED_SITES (None when it forwards a parameter or a type checked at another site)."""
    sites = []
    files = [ROOT / p for p in paths if p.endswith(".py")]
    files += [f for p in paths if not p.endswith(".py") for f in sorted((ROOT / p).rglob("*.py"))]
    for file in files:
        module = file.relative_to(ROOT).as_posix()
        tree = ast.parse(file.read_text(), module)
        for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]:
            params = {a.arg for a in [*function.args.args, *function.args.kwonlyargs, *function.args.posonlyargs]}
            for call in [n for n in ast.walk(function) if isinstance(n, ast.Call)]:
                argument = _type_argument(call)
                if argument is None:
                    continue
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    sites.append((module, function.name, frozenset({argument.value})))
                elif isinstance(argument, ast.Name) and argument.id in params:
                    sites.append((module, function.name, None))  # forwarded: its callers are scanned
                else:
                    key = f"{module}:{function.name}"
                    assert key in COMPUTED_SITES, (
                        f"{key} line {call.lineno} sends a computed message type: list what it can send in "
                        "COMPUTED_SITES (tests/test_asyncapi.py) and document those types in docs/asyncapi.yaml")
                    sites.append((module, function.name, COMPUTED_SITES[key]))
    return sites


def sent_by_endpoint() -> dict[str, set[str]]:
    """{endpoint: the message types the code can send it}, from the scan."""
    modules = sending_modules()
    sent = {name: set() for name in ALL}
    for module, function, types in scan_sends():
        if types is None:
            continue
        assert module in modules, (f"{module}:{function} sends {sorted(types)}: name the endpoints that hear it "
                                   "in SENDING_MODULES (tests/test_asyncapi.py)")
        for endpoint in modules[module]:
            sent[endpoint] |= types
    return sent


def test_the_send_scan_sees_literal_and_computed_message_types():
    sites = scan_sends()
    literal = {types for module, _, types in sites if module == "handlers/market_data.py"}
    assert frozenset({"INITIAL_DATA"}) in literal and frozenset({"HISTORICAL_DATA"}) in literal
    assert ("services/trading.py", "_publish", ORDER_EVENTS) in sites
    assert any(module == "realtime/fanout.py" and types == {"REAL_TIME_UPDATE"} for module, _, types in sites)


def test_every_message_type_the_server_sends_is_documented_on_the_endpoints_that_hear_it(spec):
    documented = messages_by_endpoint(spec, "send")
    for endpoint, types in sent_by_endpoint().items():
        assert types - set(documented[endpoint]) == set(), f"undocumented on /ws/{endpoint}"


def test_every_documented_server_message_is_sent_by_the_code(spec):
    documented = messages_by_endpoint(spec, "send")
    for endpoint, types in sent_by_endpoint().items():
        assert set(documented[endpoint]) - types == set(), f"documented on /ws/{endpoint} but never sent"


def test_close_codes_are_the_servers(spec):
    """CloseCode, plus 1000: Tornado's code for close(reason=...), which the ping timeout uses."""
    written = {entry["code"]: entry["name"] for entry in spec["x-close-codes"]}
    assert written == {**{int(code): code.name for code in CloseCode}, 1000: "NORMAL"}


def test_error_codes_are_the_servers(spec):
    for endpoint, messages in messages_by_endpoint(spec, "send").items():
        data = messages["ERROR"]["payload"]["allOf"][1]["properties"]["data"]
        assert data["properties"]["code"]["enum"] == [str(code) for code in ErrorCode], endpoint


# messages from a running server --------------------------------------------------------------------------------

# Sent only when the server runs as several processes: tests/test_cluster.py validates them against the spec.
ONLY_PAST_ONE_PROCESS = {"SERVICE_STATUS"}
FAST_PUSHES = dict(overview_interval_s=1.0, risk_evaluate_ms=200, risk_update_ms=500)
LOG_BURST = 20  # the log stream's cap (records a second, bursts of as many): a burst over it provokes LOGS_DROPPED


@pytest.mark.parametrize("config_overrides", [{**FAST_PUSHES, "log_stream_rate_per_s": LOG_BURST}])
@pytest.mark.gen_test(timeout=60)
async def test_messages_from_a_running_server_match_the_spec_schemas(ws, make_user, services, tmp_path, spec,
                                                                     caplog):
    """Every endpoint driven through its requests and pushes until every documented server message has been
    seen (on /ws/admin, every one it documents); each message is validated in Node against the schema the spec
    gives it on that endpoint."""
    user, token = make_user("alice")
    tess, teacher_token = make_user("tess", role="teacher")
    _, admin_token = make_user("ada", role="admin")
    market = await ws("/ws/market-data")
    await market.send("AUTH", {"token": token}, request_id="a")
    await market.wait_for("AUTHENTICATED")
    await market.send("SUBSCRIBE", {"symbols": ["NVTX", "NOPE"], "updateInterval": 50}, request_id="s")
    await market.wait_for("REAL_TIME_UPDATE")
    for message_type, data in [("REQUEST_QUOTE", {"symbols": ["NVTX", "NOPE"]}), ("REQUEST_QUOTE", {"symbol": "NVTX"}),
                               ("REQUEST_HISTORICAL", {"symbol": "NVTX", "interval": "5m"}),
                               ("REQUEST_ANALYTICS", {"symbol": "NVTX"}), ("REQUEST_SYMBOLS", None),
                               ("UNSUBSCRIBE", None), ("HEARTBEAT", None), ("NOT_A_TYPE", None)]:
        await market.send(message_type, data, request_id=message_type)
    await market.wait_for("ERROR")
    services.market.pause()
    services.market.resume()
    await market.wait_for("MARKET_STATUS")
    await market.wait_for("MARKET_OVERVIEW")
    services.scenarios.start("crash-and-recovery")
    services.scenarios.skip()  # its first event now, whatever the time of the market's day
    await market.wait_for("NEWS")
    late = await ws("/ws/market-data")
    await late.expect("NEWS_HISTORY")

    orders = await ws("/ws/orders", token=token)
    await orders.wait_for("ACTIVE_ORDERS")
    portfolio_id = services.storage.portfolio_ids_of(str(user.id))[0]
    await orders.send("SUBSCRIBE_ORDERS", {"sinceEventId": 0})
    await orders.wait_for("SUBSCRIPTION_CONFIRMED")
    cheapest = min(services.market.specs(), key=lambda s: services.market.quote(s.symbol).ask).symbol
    quote = services.market.quote(cheapest)
    big = min(quote.ask_size * 3, int(20_000 * 100 / quote.ask))  # partial fills, within maxOrderValue
    order = {"portfolioId": portfolio_id, "symbol": cheapest, "side": "BUY"}
    await orders.send("SUBMIT_ORDER", {**order, "orderType": "MARKET", "quantity": big})
    await orders.wait_for("ORDER_FILLED", timeout=20)
    await orders.send("SUBMIT_ORDER", {**order, "orderType": "MARKET", "quantity": 0})
    await orders.wait_for("ORDER_REJECTED")
    await orders.send("SUBMIT_ORDER", {**order, "orderType": "LIMIT", "quantity": 1, "limitPrice": 1,
                                       "timeInForce": "GTC"})
    resting = (await orders.wait_for("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
    await orders.send("MODIFY_ORDER", {"orderId": resting, "quantity": 2})
    await orders.wait_for("ORDER_MODIFIED")
    await orders.send("CANCEL_ORDER", {"orderId": resting})
    await orders.wait_for("ORDER_CANCELLED")
    for message_type, data in [("REQUEST_ORDER_STATUS", {"orderId": resting}), ("REQUEST_ORDER_HISTORY", {"limit": 2}),
                               ("UNSUBSCRIBE_ORDERS", None)]:
        await orders.send(message_type, data)
    await orders.wait_for("SUBSCRIPTION_CONFIRMED")

    not_held = "NVTX" if cheapest != "NVTX" else "QBIT"
    folio = await ws("/ws/portfolio", token=token)
    await folio.wait_for("PORTFOLIO_LIST")
    for message_type, data in [
            ("SUBSCRIBE_PORTFOLIO", {"portfolioId": portfolio_id, "updateInterval": 500}),
            ("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": portfolio_id}),
            ("REQUEST_POSITION_DETAILS", {"portfolioId": portfolio_id, "symbol": cheapest}),
            ("REQUEST_POSITION_DETAILS", {"portfolioId": portfolio_id, "symbol": not_held}),
            ("UPDATE_POSITION", {"portfolioId": portfolio_id, "symbol": cheapest, "takeProfit": quote.ask * 2 / 100}),
            ("CREATE_PORTFOLIO", {"name": "Second"}), ("REQUEST_PORTFOLIO_ANALYTICS", {"portfolioId": portfolio_id})]:
        await folio.send(message_type, data)
    await folio.wait_for("PORTFOLIO_UPDATE")
    await folio.wait_for("POSITION_UPDATE", timeout=5)
    await folio.send("UNSUBSCRIBE_PORTFOLIO", {"portfolioId": portfolio_id})
    await folio.wait_for("SUBSCRIPTION_CONFIRMED")
    contests = services.contests  # a class contest: joined, followed, an assignment ticked, ended by its teacher
    contest = contests.create(tess, name="Knights of 7B", rules=contests.default_rules,
                              schedule=wire_contests.parse_schedule({"kind": "DAYS", "firstDay": 0, "lastDay": 9}),
                              password=None)
    contests.open(tess, contest.contest_id)
    await folio.send("JOIN_CONTEST", {"code": contest.join_code.lower(), "nickname": "Alice"})
    contest_portfolio = (await folio.wait_for("CONTEST_JOINED"))["data"]["portfolioId"]
    await folio.send("REQUEST_CONTESTS")
    await folio.wait_for("CONTEST_LIST")
    await folio.send("SUBSCRIBE_CONTEST", {"contestId": contest.contest_id})
    await folio.wait_for("CONTEST_SNAPSHOT")
    task, due_ms = wire_contests.parse_task({"kind": "PLACE_ORDER", "params": {"orderType": "MARKET", "count": 1},
                                             "due": "2099-01-01T00:00:00Z"})
    contests.add_assignment(tess, contest.contest_id, task, due_ms)
    await folio.wait_for("ASSIGNMENT_PROGRESS")
    await orders.send("SUBMIT_ORDER", {"portfolioId": contest_portfolio, "symbol": cheapest, "side": "BUY",
                                       "orderType": "MARKET", "quantity": 1})
    while (await folio.wait_for("ASSIGNMENT_PROGRESS", timeout=10))["data"]["tasks"][0]["state"] != "DONE":
        pass
    contests.finish(tess, contest.contest_id)
    assert (await folio.wait_for("CONTEST_UPDATE"))["data"]["ranking"]["final"] is True
    await folio.send("UNSUBSCRIBE_CONTEST", {"contestId": contest.contest_id})
    await folio.wait_for("SUBSCRIPTION_CONFIRMED")

    risk = await ws("/ws/risk-monitoring", token=token)
    await risk.send("SUBSCRIBE_RISK", {"portfolioId": portfolio_id})
    await risk.wait_for("RISK_SNAPSHOT")
    await risk.send("SET_RISK_LIMITS", {"portfolioId": portfolio_id, "limits": {"maxPositionWeight": 0.001}})
    await risk.wait_for("RISK_LIMITS_UPDATED")
    alert = await risk.wait_for("RISK_ALERT", timeout=10)
    await risk.send("ACKNOWLEDGE_ALERT", {"alertId": alert["data"]["alertId"]})
    await risk.wait_for("ALERT_ACKNOWLEDGED")
    await risk.wait_for("RISK_UPDATE", timeout=10)
    await risk.send("REQUEST_RISK_SNAPSHOT", {"portfolioId": portfolio_id})
    await risk.send("UNSUBSCRIBE_RISK", {"portfolioId": portfolio_id})
    teacher = await ws("/ws/risk-monitoring", token=teacher_token)
    await teacher.send("SUBSCRIBE_RISK", {"scope": "ALL"})
    await teacher.wait_for("RISK_RANKING")

    signals = await ws("/ws/ml-signals", token=token)
    for message_type, data in [
            ("SUBSCRIBE_SIGNALS", {"symbols": ["NVTX", "NOPE"]}),
            ("REQUEST_SIGNAL", {"symbol": "NVTX", "models": "trend"}),
            ("REQUEST_MODEL_PERFORMANCE", None), ("UNSUBSCRIBE_SIGNALS", None),
            ("REQUEST_OPTIMIZATION", {"portfolioId": portfolio_id, "symbols": ["NVTX", "QBIT"],
                                      "objective": "MIN_VARIANCE"})]:
        await signals.send(message_type, data)
    await signals.wait_for("OPTIMIZATION_RESULT", timeout=10)

    caplog.set_level(logging.INFO)  # the server's default level (pytest's root logger passes WARNING and up)
    ops = await ws("/ws/admin")
    await ops.send("AUTH", {"token": admin_token}, request_id="a")
    await ops.wait_for("AUTHENTICATED")
    await ops.send("HEARTBEAT", request_id="h")
    await ops.wait_for("HEARTBEAT")
    await ops.send("SUBSCRIBE_LOGS", {"level": "info", "logger": "handlers"})
    await ops.wait_for("SUBSCRIPTION_CONFIRMED")
    staff = await ws("/ws/admin", token=teacher_token)  # handlers.base logs its opening: a record with the ids
    while "endpoint" not in (await ops.wait_for("LOG_RECORD"))["data"]:
        pass
    for message_type, data in [("SUBSCRIBE_LOGS", None), ("REQUEST_METRICS", None),
                               ("REQUEST_METRICS", {"since": services.clock.now() - 3})]:
        await staff.send(message_type, data)
    await staff.wait_for("ERROR")  # FORBIDDEN: the log stream is for admins
    await staff.wait_for("METRICS")
    await staff.wait_for("METRICS")
    flood = logging.getLogger("test.asyncapi")
    await ops.send("SUBSCRIBE_LOGS", {"level": "WARNING", "logger": flood.name})
    await ops.wait_for("SUBSCRIPTION_CONFIRMED")
    try:
        raise ValueError("a record with an exception")
    except ValueError:
        flood.exception("failed")
    for n in range(3 * LOG_BURST):
        flood.warning("record %d", n)
    await ops.wait_for("LOGS_DROPPED")
    await ops.send("UNSUBSCRIBE_LOGS")
    await ops.wait_for("SUBSCRIPTION_CONFIRMED")

    clients = {"market-data": [market, late], "orders": [orders], "portfolio": [folio],
               "risk-monitoring": [risk, teacher], "ml-signals": [signals], "admin": [ops, staff]}
    for group in clients.values():
        for client in group:
            await client.drain(0.3)
    captured = tmp_path / "captured.jsonl"
    captured.write_text("".join(json.dumps({"endpoint": endpoint, "message": message}) + "\n"
                                for endpoint, group in clients.items() for client in group
                                for message in client.received))
    result = run_validator("--check-messages", str(captured))
    assert result.returncode == 0, result.stdout[:4000] + result.stderr[-2000:]
    types = json.loads(result.stdout)["types"]
    documented = messages_by_endpoint(spec, "send")
    assert {key.split(" ", 1)[1] for key in types} == set().union(*documented.values()) - ONLY_PAST_ONE_PROCESS
    assert ({key.split(" ", 1)[1] for key in types if key.startswith("/ws/admin ")}
            == set(documented["admin"]) - ONLY_PAST_ONE_PROCESS)
    admin_records = [m["data"] for m in ops.received if m["type"] == "LOG_RECORD"]
    assert any("endpoint" in r and r["sessionId"] and r["userId"] for r in admin_records)
    assert any(r.get("exception") == "ValueError: a record with an exception" for r in admin_records)
