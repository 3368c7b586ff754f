"""Access control as a table: every message and route that names a portfolio, order or alert, tried by who may not.

The table is built from the endpoints' own handler tables, so a new message that takes an id is tried too.
Everything is refused with FORBIDDEN, nothing in the refusal comes from the other user's data, and nothing of
theirs changes.
"""

import pytest
import ujson

import stockquest

pytestmark = pytest.mark.gen_test(timeout=30)

ENDPOINTS = tuple(stockquest.ENDPOINTS.values())  # every endpoint the server serves
ID_FIELDS = ("portfolioId", "orderId", "alertId")
FILLERS = {"symbol": "NVTX", "side": "BUY", "orderType": "LIMIT", "quantity": 1, "limitPrice": 1.0,
           "limits": {"maxOrderValue": 1}, "symbols": ["NVTX", "CRVL"], "objective": "MIN_VARIANCE",
           "stopLoss": 1.0, "name": "x"}
# Leaving what one never held is confirmed and carries nothing of anyone's: not a refusal to test.
HARMLESS = {"UNSUBSCRIBE_PORTFOLIO", "UNSUBSCRIBE_RISK"}
# What a teacher may do with a student's id (read); every other message that names one is refused to them too.
TEACHERS_READ = {"SUBSCRIBE_PORTFOLIO", "REQUEST_PORTFOLIO_SNAPSHOT", "REQUEST_POSITION_DETAILS",
                 "REQUEST_PORTFOLIO_ANALYTICS", "REQUEST_ORDER_STATUS", "REQUEST_ORDER_HISTORY",
                 "SUBSCRIBE_RISK", "REQUEST_RISK_SNAPSHOT"}


def naming_an_id():
    """(endpoint path, message type, the id fields it takes) for every message that names someone's thing."""
    rows = []
    for cls in ENDPOINTS:
        for message_type, (_, _, fields) in sorted(cls.handlers.items()):
            named = [name for name in ID_FIELDS if name in fields]
            if named and message_type not in HARMLESS:
                rows.append((f"/ws/{cls.name}", message_type, named, sorted(fields)))
    return rows


ROWS = naming_an_id()
CASES = [(role, *row) for role in ("student", "teacher") for row in ROWS
         if not (role == "teacher" and row[1] in TEACHERS_READ)]  # teachers read: tested as allowed elsewhere


@pytest.fixture
def victim(ws, make_user, services):
    """A student with a resting order and an alert: (user, portfolio id, order id, alert id)."""

    async def make():
        user, token = make_user("victim")
        portfolio_id = services.storage.portfolio_ids_of(str(user.id))[0]
        orders = await ws("/ws/orders", token=token)
        await orders.expect("ACTIVE_ORDERS")
        await orders.send("SUBMIT_ORDER", {"portfolioId": portfolio_id, "symbol": "NVTX", "side": "BUY",
                                           "orderType": "LIMIT", "quantity": 3, "limitPrice": 1.0,
                                           "timeInForce": "GTC"}, request_id="o")
        order_id = (await orders.wait_for("ORDER_SUBMITTED"))["data"]["order"]["orderId"]
        services.storage.save_alerts([("A777", portfolio_id, 1, {"alertId": "A777", "portfolioId": portfolio_id,
                                                                 "rule": "maxOrderValue", "acknowledged": False})])
        return user, portfolio_id, order_id, "A777"

    return make


def victims_state(services, user, portfolio_id):
    return (services.trading.open_orders(str(user.id)), services.risk.limits.limits_for(portfolio_id),
            services.book.ledger(portfolio_id).positions, services.storage.recent_alerts(portfolio_id))


@pytest.mark.parametrize(("role", "path", "message_type", "named", "fields"), CASES,
                         ids=[f"{case[0]}-{case[2]}" for case in CASES])
async def test_naming_someone_elses_id_is_refused_with_nothing_of_theirs(ws, make_user, services, victim, role, path,
                                                                         message_type, named, fields):
    user, portfolio_id, order_id, alert_id = await victim()
    before = victims_state(services, user, portfolio_id)
    _, token = make_user("intruder", role=role)
    client = await ws(path, token=token)
    ids = {"portfolioId": portfolio_id, "orderId": order_id, "alertId": alert_id}
    data = {name: FILLERS[name] for name in fields if name in FILLERS} | {name: ids[name] for name in named}
    await client.send(message_type, data, request_id="try")
    refusal = await client.wait_for("ERROR")
    assert (refusal["data"]["code"], refusal["requestId"]) == ("FORBIDDEN", "try"), refusal
    assert set(refusal["data"]) == {"code", "error", "requestType"}
    assert "victim" not in ujson.dumps(refusal).lower()
    assert victims_state(services, user, portfolio_id) == before


async def test_the_table_covers_every_message_that_names_an_id():
    assert {row[1] for row in ROWS} >= {"SUBSCRIBE_PORTFOLIO", "REQUEST_PORTFOLIO_SNAPSHOT", "UPDATE_POSITION",
                                         "SUBMIT_ORDER", "CANCEL_ORDER", "MODIFY_ORDER", "REQUEST_ORDER_STATUS",
                                         "REQUEST_ORDER_HISTORY", "SUBSCRIBE_ORDERS", "SET_RISK_LIMITS",
                                         "ACKNOWLEDGE_ALERT", "REQUEST_RISK_SNAPSHOT", "REQUEST_OPTIMIZATION"}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/stats", None),
    ("POST", "/api/market/control", {"action": "PAUSE"}),
])
async def test_teacher_routes_refuse_a_students_token(http_client, base_url, make_user, services, method, path,
                                                      body):
    _, token = make_user("stu")
    response = await http_client.fetch(base_url + path, method=method, raise_error=False,
                                       headers={"Authorization": f"Bearer {token}"},
                                       body=None if body is None else ujson.dumps(body))
    assert response.code == 403 and ujson.loads(response.body)["code"] == "FORBIDDEN"
    assert services.market.status.value == "OPEN"


@pytest.mark.parametrize(("path", "message_type", "named", "fields"), ROWS, ids=[row[1] for row in ROWS])
async def test_an_id_that_does_not_exist_gets_the_same_answer_as_someone_elses(ws, make_user, victim, path,
                                                                                message_type, named, fields):
    """Sequential ids tell a student nothing: "not yours" whether it belongs to someone or to no one."""
    _, portfolio_id, order_id, alert_id = await victim()
    _, token = make_user("intruder")
    client = await ws(path, token=token)
    refusals = []
    for ids in ({"portfolioId": portfolio_id, "orderId": order_id, "alertId": alert_id},
                {"portfolioId": "98765", "orderId": "O98765", "alertId": "A98765"}):
        data = {name: FILLERS[name] for name in fields if name in FILLERS} | {name: ids[name] for name in named}
        await client.send(message_type, data, request_id="try")
        refusal = (await client.wait_for("ERROR"))["data"]
        for name in named:
            refusal["error"] = refusal["error"].replace(ids[name], "<id>")
        refusals.append(refusal)
    assert refusals[0] == refusals[1] and refusals[0]["code"] == "FORBIDDEN"
