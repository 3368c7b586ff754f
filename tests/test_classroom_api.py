"""Classroom REST over real HTTP: the leaderboard and the teacher's market controls."""

import pytest
import ujson
from tornado.httpclient import HTTPClientError

from domain import valuation

pytestmark = pytest.mark.gen_test(timeout=20)


async def call(http_client, base_url, path, token=None, body=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    method = "POST" if body is not None else "GET"
    try:
        response = await http_client.fetch(base_url + path, method=method, headers=headers,
                                           body=None if body is None else ujson.dumps(body))
    except HTTPClientError as error:
        return error.code, ujson.loads(error.response.body)
    return response.code, ujson.loads(response.body)


async def test_leaderboard_ranks_students_best_return_first_ties_by_join_order(http_client, base_url, make_user,
                                                                              services):
    first, token = make_user("ann")
    second, _ = make_user("ben")
    third, _ = make_user("cat")
    make_user("tom", role="teacher")
    ledger = services.book.ledger(services.storage.portfolio_ids_of(str(third.id))[0])
    ledger.cash_cents += 500_00  # cat is ahead by 500.00
    code, board = await call(http_client, base_url, "/api/leaderboard", token)
    assert code == 200
    assert [(e["rank"], e["name"]) for e in board["entries"]] == [(1, "Cat"), (2, "Ann"), (3, "Ben")]
    assert board["entries"][0]["totalValue"] == 100500.0 and board["entries"][0]["totalReturnPercent"] == 0.5
    assert board["entries"][1]["userId"] == str(first.id) and "timestamp" in board


async def test_leaderboard_needs_a_signed_in_user(http_client, base_url):
    code, body = await call(http_client, base_url, "/api/leaderboard")
    assert code == 401 and body["code"] == "UNAUTHORIZED"


async def test_teacher_pauses_resumes_speeds_and_shocks(http_client, base_url, make_user, services, ws):
    _, teacher = make_user("tina", role="teacher")
    market_data = await ws("/ws/market-data")
    code, status = await call(http_client, base_url, "/api/market/control", teacher, {"action": "PAUSE"})
    assert code == 200 and status["status"] == "PAUSED"
    pushed = await market_data.wait_for("MARKET_STATUS")
    assert pushed["data"]["status"] == "PAUSED" and pushed["data"]["event"] == {"action": "PAUSE"}
    code, status = await call(http_client, base_url, "/api/market/control", teacher, {"action": "resume"})
    assert status["status"] == "OPEN"
    code, status = await call(http_client, base_url, "/api/market/control", teacher, {"action": "SPEED", "speed": 30})
    assert code == 200 and status["speed"] == 30
    sector = services.market.specs()[0].sector
    code, status = await call(http_client, base_url, "/api/market/control", teacher,
                              {"action": "SHOCK", "sector": sector, "percent": -5})
    assert code == 200 and status["event"]["action"] == "SHOCK" and status["event"]["symbols"]


@pytest.mark.parametrize("body, code", [
    ({"action": "SPEED"}, 400),
    ({"action": "SPEED", "speed": -1}, 400),
    ({"action": "SHOCK", "percent": 5}, 400),
    ({"action": "SHOCK", "symbols": ["ZZZZ"], "percent": 5}, 404),
    ({"action": "SHOCK", "sector": "Nowhere", "percent": 5}, 400),
    ({"action": "DANCE"}, 400),
    ({"action": 5}, 400),
    ([1, 2], 400),
])
async def test_bad_market_control_is_refused_and_changes_nothing(http_client, base_url, make_user, services,
                                                                 body, code):
    _, teacher = make_user("tina", role="teacher")
    speed = services.market.clock.speed
    status, answer = await call(http_client, base_url, "/api/market/control", teacher, body)
    assert status == code and answer["error"]
    assert services.market.status == "OPEN" and services.market.clock.speed == speed


async def test_students_may_not_control_the_market(http_client, base_url, make_user, services):
    _, student = make_user("sam")
    code, body = await call(http_client, base_url, "/api/market/control", student, {"action": "PAUSE"})
    assert code == 403 and services.market.status == "OPEN"


async def test_the_leaderboard_is_ranked_at_most_every_two_seconds_however_many_ask(http_client, base_url, make_user,
                                                                                    services, monkeypatch):
    _, token = make_user("ann")
    make_user("ben")
    valued = []
    value = valuation.portfolio_view
    monkeypatch.setattr(valuation, "portfolio_view", lambda *args, **kwargs: valued.append(1) or value(*args, **kwargs))
    for _ in range(5):
        assert (await call(http_client, base_url, "/api/leaderboard", token))[0] == 200
    assert len(valued) == 2  # two students, valued once
    now = services.clock.now()
    monkeypatch.setattr(services.clock, "now", lambda: now + 2.0)
    await call(http_client, base_url, "/api/leaderboard", token)
    assert len(valued) == 4


# -- the trade journal -------------------------------------------------------------------------------------------


def place(services, user, note=None, *, portfolio_id=None, symbol="NVTX", price_cents=100):
    """A resting limit buy placed as the student would, with `note`; returns its order id."""
    from domain.trading import OrderRequest, OrderType, Side, TimeInForce

    portfolio_id = portfolio_id or services.storage.portfolio_ids_of(str(user.id))[0]
    before = services.storage.last_event_id(str(user.id))
    services.trading.submit(user, OrderRequest(portfolio_id, symbol, Side.BUY, OrderType.LIMIT, 1, price_cents,
                                               time_in_force=TimeInForce.GTC, note=note), origin=None)
    (_, _, payload), = services.storage.events_after(str(user.id), before, limit=10)
    return ujson.loads(payload)["order"]["orderId"]


async def test_a_teacher_reads_a_students_journal_newest_first_with_only_the_noted_orders(http_client, base_url,
                                                                                          make_user, services):
    student, _ = make_user("sam")
    other, _ = make_user("olga")
    _, teacher = make_user("tina", role="teacher")
    second = services.book.create(student, "Second").portfolio_id
    first = place(services, student, "bought the dip\nafter earnings")
    place(services, student)  # no note: not in the journal
    html = place(services, student, "<img src=x onerror=alert(1)> & 'quotes'", portfolio_id=second, symbol="QBIT")
    place(services, other, "olga's reason")
    code, journal = await call(http_client, base_url, f"/api/journal?userId={student.id}", teacher)
    assert code == 200
    assert (journal["userId"], journal["name"], journal["nextCursor"]) == (str(student.id), "Sam", None)
    assert [(e["orderId"], e["symbol"], e["note"]) for e in journal["entries"]] == [
        (html, "QBIT", "<img src=x onerror=alert(1)> & 'quotes'"), (first, "NVTX", "bought the dip\nafter earnings")]
    entry = journal["entries"][1]
    assert entry == {"orderId": first, "portfolioId": services.storage.portfolio_ids_of(str(student.id))[0],
                     "time": entry["time"], "symbol": "NVTX", "side": "BUY", "orderType": "LIMIT", "quantity": 1,
                     "filledQuantity": 0, "averageFillPrice": None, "status": "NEW",
                     "note": "bought the dip\nafter earnings", "placedBy": None}
    assert entry["time"].endswith("Z") and journal["entries"][0]["portfolioId"] == second


async def test_the_journal_pages_like_order_history(http_client, base_url, make_user, services):
    student, _ = make_user("sam")
    _, admin = make_user("ada", role="admin")
    placed = [place(services, student, f"reason {n}") for n in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        query = f"/api/journal?userId={student.id}&limit=2" + (f"&before={cursor}" if cursor else "")
        code, page = await call(http_client, base_url, query, admin)
        assert code == 200 and len(page["entries"]) <= 2
        seen += [entry["orderId"] for entry in page["entries"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == placed[::-1] and pages == 3


async def test_students_may_not_read_a_journal_not_even_their_own(http_client, base_url, make_user, services):
    student, token = make_user("sam")
    other, _ = make_user("olga")
    place(services, other, "olga's reason")
    for user_id in (other.id, student.id, 999_999):
        code, body = await call(http_client, base_url, f"/api/journal?userId={user_id}", token)
        assert (code, body["code"]) == (403, "FORBIDDEN") and "olga" not in str(body)
    code, body = await call(http_client, base_url, f"/api/journal?userId={other.id}")
    assert (code, body["code"]) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize("user_id", ["999999", "0", "017", "9" * 64])
async def test_the_journal_of_an_unknown_user_is_not_found(http_client, base_url, make_user, user_id):
    make_user("sam")
    _, teacher = make_user("tina", role="teacher")
    code, body = await call(http_client, base_url, f"/api/journal?userId={user_id}", teacher)
    assert (code, body["code"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize("query", [
    "", "userId=", "userId=%20", "userId=1%00", "userId=../1", "userId=1%27%20OR%20%271%27=%271", "userId=1&userId=2",
    "userId=%ED%A0%80", "userId=%FF", "userId=" + "1" * 65, "userId=1&limit=0", "userId=1&limit=501",
    "userId=1&limit=abc", "userId=1&limit=-1", "userId=1&limit=1e3", "userId=1&limit=2.5", "userId=1&limit=%00",
    "userId=1&limit=9999999999999999999999", "userId=1&before=garbage!", "userId=1&before=" + "A" * 201,
    "userId=1&before=MTIz", "userId=1&limit=1&limit=2",
])
async def test_hostile_journal_queries_are_bad_requests(http_client, base_url, make_user, services, query):
    student, _ = make_user("sam")
    assert student.id == 1
    place(services, student, "a reason")
    _, teacher = make_user("tina", role="teacher")
    code, body = await call(http_client, base_url, f"/api/journal?{query}", teacher)
    assert code == 400 and body["code"] in ("BAD_REQUEST", "INVALID_MESSAGE") and body["error"], body
    assert "a reason" not in str(body)


async def test_the_journal_answers_only_get(http_client, base_url, make_user):
    _, teacher = make_user("tina", role="teacher")
    code, body = await call(http_client, base_url, "/api/journal?userId=1", teacher, body={"note": "x"})
    assert code == 405 and body["code"] == "METHOD_NOT_ALLOWED"
