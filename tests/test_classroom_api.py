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
