"""Class contests over real HTTP and WebSockets: creating, joining by code, rules held on every order, teams, the
end (orders refused, ranking frozen), assignments checked from the trades, class accounts, and who sees what."""

import asyncio
import csv
import io

import pytest
import ujson
from tornado.httpclient import HTTPClientError

import stockquest
from realtime.protocol import iso_ms

pytestmark = pytest.mark.gen_test(timeout=30)

DAYS = {"kind": "DAYS", "firstDay": 0, "lastDay": 30}
LATER = {"kind": "DAYS", "firstDay": 50, "lastDay": 60}  # a draft until day 50


async def call(http_client, base_url, path, token=None, body=None, method=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    method = method or ("POST" if body is not None else "GET")
    try:
        response = await http_client.fetch(base_url + path, method=method, headers=headers,
                                           body=None if body is None else ujson.dumps(body),
                                           allow_nonstandard_methods=True)
    except HTTPClientError as error:
        return error.code, ujson.loads(error.response.body)
    return response.code, ujson.loads(response.body)


@pytest.fixture
def api(http_client, base_url, server):
    async def request(path, token=None, body=None, method=None):
        return await call(http_client, base_url, path, token, body, method)
    return request


@pytest.fixture
def contest(api, make_user):
    """A teacher's contest: `await contest(rules=..., schedule=..., password=...)` -> (contest json, teacher token)."""
    teachers = {}

    async def create(teacher="tess", name="Knights of 7B", rules=None, schedule=DAYS, password=None, opened=True):
        if teacher not in teachers:
            teachers[teacher] = make_user(teacher, role="teacher")[1]
        token = teachers[teacher]
        body = {"name": name, "schedule": schedule}
        if rules is not None:
            body["rules"] = rules
        if password is not None:
            body["password"] = password
        code, created = await api("/api/contests", token, body)
        assert code == 201, created
        if opened and schedule is not LATER:
            code, opened_body = await api(f"/api/contests/{created['contest']['contestId']}/open", token, {})
            assert code == 200 and opened_body["contest"]["status"] == "OPEN"
        return created["contest"], token

    return create


async def join(api, token, code, nickname, password=None):
    body = {"code": code, "nickname": nickname}
    if password is not None:
        body["password"] = password
    return await api("/api/contests/join", token, body)


def order(portfolio_id, symbol="NVTX", side="BUY", order_type="MARKET", quantity=10, **extra):
    return {"portfolioId": portfolio_id, "symbol": symbol, "side": side, "orderType": order_type,
            "quantity": quantity, **extra}


async def submit(client, message):
    await client.send("SUBMIT_ORDER", message, request_id="r")
    while True:
        reply = await client.recv()
        if reply.get("requestId") == "r":
            return reply


# ----- creating and seeing contests --------------------------------------------------------------------------

async def test_a_teacher_creates_a_draft_contest_with_a_join_code_and_its_rules(api, make_user):
    _, teacher = make_user("tess", role="teacher")
    code, body = await api("/api/contests", teacher, {
        "name": "Knights of 7B", "schedule": {"kind": "WALL", "start": "2030-01-01T09:00:00Z",
                                              "end": "2030-01-01T09:45:00Z"},
        "rules": {"startingCash": 25000, "commissionPerOrder": 1.5, "commissionPerShare": 0.01,
                  "shortSelling": True, "allowedSectors": ["Technology"], "maxPositionWeight": 0.3,
                  "noteRequired": True, "maxTeamSize": 3, "houseRiskLimits": False},
        "password": "owls"})
    assert code == 201, body
    contest = body["contest"]
    assert contest["status"] == "DRAFT" and contest["requiresPassword"] is True
    assert len(contest["joinCode"]) == 7 and contest["joinCode"][3] == "-"
    assert contest["rules"] == {"startingCash": 25000.0, "commissionPerOrder": 1.5, "commissionPerShare": 0.01,
                                "shortSelling": True, "allowedSymbols": None, "allowedSectors": ["Technology"],
                                "maxPositionWeight": 0.3, "houseRiskLimits": False, "noteRequired": True,
                                "maxTeamSize": 3}
    assert contest["schedule"] == {"kind": "WALL", "start": "2030-01-01T09:00:00.000Z",
                                   "end": "2030-01-01T09:45:00.000Z"}
    assert contest["teacherName"] == "Tess" and "password" not in ujson.dumps(body).replace("requiresPassword", "")


async def test_students_cannot_create_contests(api, make_user):
    _, student = make_user("sam")
    code, body = await api("/api/contests", student, {"name": "Mine", "schedule": DAYS})
    assert code == 403 and body["code"] == "FORBIDDEN"


async def test_a_teacher_sees_only_their_own_contests_and_an_admin_sees_all(api, contest, make_user):
    mine, tess = await contest("tess", name="Tess's class")
    theirs, tom = await contest("tom", name="Tom's class")
    _, admin = make_user("ada", role="admin")
    assert [c["name"] for c in (await api("/api/contests", tess))[1]["contests"]] == ["Tess's class"]
    assert [c["name"] for c in (await api("/api/contests", admin))[1]["contests"]] == ["Tess's class", "Tom's class"]
    code, body = await api(f"/api/contests/{theirs['contestId']}", tess)
    assert code == 403 and body["code"] == "FORBIDDEN"
    for path in ("open", "finish", "progress", "assignments", "accounts", "teams"):
        code, body = await api(f"/api/contests/{theirs['contestId']}/{path}", tess,
                               None if path == "progress" else {})
        assert code in (403, 400) and (code == 403 or path in ("assignments", "accounts", "teams")), (path, body)
    code, body = await api(f"/api/contests/{theirs['contestId']}/finish", tess, {})
    assert code == 403
    assert (await api(f"/api/contests/{theirs['contestId']}", tom))[1]["contest"]["status"] == "OPEN"
    code, _ = await api(f"/api/contests/{theirs['contestId']}", admin)
    assert code == 200
    code, body = await api("/api/contests/999999", admin)
    assert code == 404
    code, body = await api("/api/contests/999999", tess)  # an unknown one is "not yours" to a teacher
    assert code == 403


@pytest.mark.parametrize("body, message", [
    ({"name": "X", "schedule": DAYS}, "contest name"),  # too short a name
    ({"name": "Class"}, "schedule"),
    ({"name": "Class", "schedule": {"kind": "DAYS", "firstDay": 5, "lastDay": 2}}, "days"),
    ({"name": "Class", "schedule": {"kind": "WALL", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z"}},
     "start"),
    ({"name": "Class", "schedule": {"kind": "WALL", "start": "tomorrow", "end": "later"}}, "ISO-8601"),
    ({"name": "Class", "schedule": {"kind": "WALL", "start": "2030-01-01T09:00:00", "end": "2030-01-01T10:00:00"}},
     "time zone"),
    ({"name": "Class", "schedule": {"kind": "YEARS"}}, "kind"),
    ({"name": "Class", "schedule": "all week"}, "schedule"),
    ({"name": "Class", "schedule": DAYS, "rules": {"startingCash": -5}}, "startingCash"),
    ({"name": "Class", "schedule": DAYS, "rules": {"startingCash": "lots"}}, "startingCash"),
    ({"name": "Class", "schedule": DAYS, "rules": {"maxTeamSize": 9}}, "maxTeamSize"),
    ({"name": "Class", "schedule": DAYS, "rules": {"maxPositionWeight": 0}}, "fraction"),
    ({"name": "Class", "schedule": DAYS, "rules": {"commissionPerShare": 500}}, "commission"),
    ({"name": "Class", "schedule": DAYS, "rules": {"allowedSectors": []}}, "empty"),
    ({"name": "Class", "schedule": DAYS, "rules": {"shortSelling": "yes"}}, "shortSelling"),
    ({"name": "Class", "schedule": DAYS, "rules": [1]}, "rules"),
    ({"name": "Class\u0007", "schedule": DAYS}, "printable"),
    ({"name": 5, "schedule": DAYS}, "name"),
])
async def test_bad_contests_are_refused_with_a_reason_and_nothing_is_made(api, make_user, services, body, message):
    _, teacher = make_user("tess", role="teacher")
    code, answer = await api("/api/contests", teacher, body)
    assert code == 400 and message.lower() in answer["error"].lower(), answer
    assert services.contests.directory.contests == {}


# ----- joining ---------------------------------------------------------------------------------------------

async def test_a_student_joins_by_code_and_gets_a_portfolio_with_the_contests_cash(api, contest, make_user, ws,
                                                                                  services):
    created, _ = await contest(rules={"startingCash": 5000})
    user, student = make_user("sam")
    code, body = await join(api, student, created["joinCode"].lower().replace("-", " "), "  Sam  the  Bull ")
    assert code == 201, body
    portfolio_id = body["portfolioId"]
    assert body["contest"]["contestId"] == created["contestId"] and body["contest"]["myPortfolioId"] == portfolio_id
    client = await ws("/ws/portfolio", token=student)
    listing = await client.expect("PORTFOLIO_LIST")
    cash = {p["portfolioId"]: p.get("totalValue") for p in listing["data"]["portfolios"]}
    assert portfolio_id in cash and len(cash) == 2
    await client.send("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": portfolio_id})
    snapshot = await client.wait_for("PORTFOLIO_SNAPSHOT")
    assert snapshot["data"]["portfolio"]["cash"] == 5000.0
    code, detail = await api(f"/api/contests/{created['contestId']}", student)
    assert code == 200 and detail["myPortfolioId"] == portfolio_id
    assert detail["participants"] == [{"nickname": "Sam the Bull", "joinedAt": detail["participants"][0]["joinedAt"],
                                       "teamId": None}]  # no user ids for students
    listed = (await api("/api/contests", student))[1]["contests"]
    assert [(c["contestId"], c["myPortfolioId"]) for c in listed] == [(created["contestId"], portfolio_id)]


async def test_joining_over_the_websocket(contest, make_user, ws):
    created, _ = await contest()
    _, student = make_user("sam")
    client = await ws("/ws/portfolio", token=student)
    await client.expect("PORTFOLIO_LIST")
    await client.send("JOIN_CONTEST", {"code": created["joinCode"], "nickname": "Sam"})
    joined = await client.wait_for("CONTEST_JOINED")
    assert joined["data"]["contest"]["name"] == "Knights of 7B" and joined["data"]["portfolioId"]
    await client.send("REQUEST_CONTESTS", {})
    listed = await client.wait_for("CONTEST_LIST")
    assert [c["myPortfolioId"] for c in listed["data"]["contests"]] == [joined["data"]["portfolioId"]]
    await client.send("JOIN_CONTEST", {"code": "ZZZ-ZZZ", "nickname": "Sam"})
    error = await client.wait_for("ERROR")
    assert error["data"]["code"] == "NOT_FOUND"
    await client.send("JOIN_CONTEST", {"code": 42})
    error = await client.wait_for("ERROR")
    assert error["data"]["code"] in ("BAD_REQUEST", "INVALID_MESSAGE")
    await client.send("REQUEST_CONTESTS", {})  # the connection is still up
    assert (await client.wait_for("CONTEST_LIST"))["data"]["contests"]


@pytest.mark.parametrize("code_typed, nickname, password, status, error_code", [
    ("ABC-DEF", "Sam", "owls", 404, "NOT_FOUND"),       # a valid code no contest has
    ("O0I-1XX", "Sam", "owls", 400, "BAD_REQUEST"),     # not a code at all
    (None, "Sam", None, 403, "FORBIDDEN"),              # the password is missing
    (None, "Sam", "OWLS", 403, "FORBIDDEN"),            # the password is wrong
    (None, "S", "owls", 400, "BAD_REQUEST"),            # too short a nickname
    (None, "Sam\u202e", "owls", 400, "BAD_REQUEST"),    # a bidi control in the nickname
])
async def test_joining_with_a_wrong_code_or_password_is_refused_and_stores_nothing(
        api, contest, make_user, services, code_typed, nickname, password, status, error_code):
    created, _ = await contest(password="owls")
    user, student = make_user("sam")
    before = services.storage.portfolio_ids_of(str(user.id))
    code, body = await join(api, student, code_typed or created["joinCode"], nickname, password)
    assert code == status and body["code"] == error_code, body
    assert services.storage.portfolio_ids_of(str(user.id)) == before
    assert services.contests.directory.rosters[created["contestId"]].participants() == []
    code, body = await join(api, student, created["joinCode"], "Sam", "owls")
    assert code == 201


async def test_a_taken_nickname_and_a_second_join_are_conflicts(api, contest, make_user):
    created, _ = await contest()
    _, ann = make_user("ann")
    _, ben = make_user("ben")
    assert (await join(api, ann, created["joinCode"], "Ace"))[0] == 201
    code, body = await join(api, ben, created["joinCode"], "ACE")
    assert code == 409 and "taken" in body["error"]
    code, body = await join(api, ann, created["joinCode"], "Another")
    assert code == 409 and "already joined" in body["error"]


async def test_joining_a_finished_contest_is_refused(api, contest, make_user):
    created, teacher = await contest()
    assert (await api(f"/api/contests/{created['contestId']}/finish", teacher, {}))[0] == 200
    _, student = make_user("sam")
    code, body = await join(api, student, created["joinCode"], "Sam")
    assert code == 400 and "ended" in body["error"]


# ----- the rules on every order ----------------------------------------------------------------------------

async def joined_trader(api, contest_json, make_user, ws, username="sam", nickname=None):
    user, token = make_user(username)
    code, body = await join(api, token, contest_json["joinCode"], nickname or username.title())
    assert code == 201, body
    client = await ws("/ws/orders", token=token)
    await client.expect("ACTIVE_ORDERS")
    return client, body["portfolioId"], user, token


async def test_orders_before_the_start_are_rejected_contest_not_open(api, contest, make_user, ws, services):
    created, teacher = await contest(schedule=LATER)
    client, portfolio_id, _, _ = await joined_trader(api, created, make_user, ws)
    reply = await submit(client, order(portfolio_id))
    assert reply["type"] == "ORDER_REJECTED"
    rejected = reply["data"]["order"]
    assert rejected["rejectReason"] == "CONTEST_NOT_OPEN" and "has not started" in reply["data"]["error"]
    assert (await api(f"/api/contests/{created['contestId']}/open", teacher, {}))[0] == 200
    reply = await submit(client, order(portfolio_id, quantity=1))
    assert reply["type"] == "ORDER_SUBMITTED", reply


async def test_contest_rules_hold_commission_symbols_and_notes(api, contest, make_user, ws, services):
    tech = services.market.sectors()["NVTX"]
    created, _ = await contest(rules={"startingCash": 100000, "commissionPerOrder": 2, "commissionPerShare": 0.05,
                                      "allowedSectors": [tech], "noteRequired": True})
    client, portfolio_id, _, _ = await joined_trader(api, created, make_user, ws)
    other = next(s for s, sector in services.market.sectors().items() if sector != tech)
    reply = await submit(client, order(portfolio_id, quantity=10))
    assert reply["data"]["order"]["rejectReason"] == "NOTE_REQUIRED"
    reply = await submit(client, order(portfolio_id, symbol=other, quantity=10, note="diversify"))
    assert reply["data"]["order"]["rejectReason"] == "SYMBOL_NOT_ALLOWED" and tech in reply["data"]["error"]
    reply = await submit(client, order(portfolio_id, quantity=10, note="chips are hot"))
    assert reply["type"] == "ORDER_SUBMITTED"
    filled = await client.wait_for("ORDER_FILLED", timeout=10)
    assert filled["data"]["order"]["commission"] == 2.5  # 2.00 per order + 10 × 0.05
    ledger = services.book.ledger(portfolio_id)
    cost = filled["data"]["order"]["filledNotional"] if "filledNotional" in filled["data"]["order"] else None
    assert ledger.cash_cents == 100000_00 - ledger.positions["NVTX"].cost_basis_cents - 250, cost


async def test_no_short_selling_unless_the_contest_allows_it(api, contest, make_user, ws):
    strict, _ = await contest(name="No shorts")
    loose, _ = await contest(name="Shorts allowed", rules={"shortSelling": True})
    client, strict_id, _, _ = await joined_trader(api, strict, make_user, ws, "sam")
    reply = await submit(client, order(strict_id, side="SELL", quantity=5))
    assert reply["data"]["order"]["rejectReason"] == "INSUFFICIENT_SHARES"
    client, loose_id, _, _ = await joined_trader(api, loose, make_user, ws, "sue")
    reply = await submit(client, order(loose_id, side="SELL", quantity=5))
    assert reply["type"] == "ORDER_SUBMITTED", reply


# ----- the end ---------------------------------------------------------------------------------------------

async def test_after_the_end_orders_are_refused_open_ones_expire_and_the_ranking_is_frozen(
        api, contest, make_user, ws, services):
    created, teacher = await contest()
    client, portfolio_id, _, token = await joined_trader(api, created, make_user, ws, "sam")
    price = services.market.quote("NVTX").bid / 100
    reply = await submit(client, order(portfolio_id, order_type="LIMIT", limitPrice=round(price * 0.5, 2),
                                       quantity=2))
    resting = reply["data"]["order"]["orderId"]
    reply = await submit(client, order(portfolio_id, quantity=3))
    await client.wait_for("ORDER_FILLED", timeout=10)
    code, finished = await api(f"/api/contests/{created['contestId']}/finish", teacher, {})
    assert code == 200 and finished["contest"]["status"] == "FINISHED" and finished["contest"]["finishedAt"]
    cancelled = await client.wait_for("ORDER_CANCELLED")
    assert cancelled["data"]["order"]["orderId"] == resting and cancelled["data"]["order"]["status"] == "EXPIRED"
    reply = await submit(client, order(portfolio_id, quantity=1))
    assert reply["type"] == "ORDER_REJECTED"
    assert reply["data"]["order"]["rejectReason"] == "CONTEST_NOT_OPEN" and "ended" in reply["data"]["error"]
    code, board = await api(f"/api/leaderboard?contestId={created['contestId']}", token)
    assert code == 200 and board["final"] is True and board["entries"][0]["name"] == "Sam"
    frozen = board["entries"]
    services.book.ledger(portfolio_id).cash_cents += 1_000_00  # whatever happens now, the ranking stays
    await asyncio.sleep(0.2)
    assert (await api(f"/api/leaderboard?contestId={created['contestId']}", token))[1]["entries"] == frozen
    restarted = stockquest.build_services(services.config)  # and across a restart
    try:
        contest_now = restarted.contests.directory.contests[created["contestId"]]
        assert contest_now.status == "FINISHED" and contest_now.final_ranking is not None
        assert [s.portfolio_id for s in contest_now.final_ranking] == [portfolio_id]
    finally:
        restarted.storage.close()


async def test_the_clock_ends_a_lesson_contest_at_its_end_time(api, contest, make_user, ws, services):
    now_ms = services.clock.now_ms()
    created, _ = await contest(schedule={"kind": "WALL", "start": iso_ms(now_ms - 60_000),
                                         "end": iso_ms(now_ms + 1_500)}, opened=False)
    client, portfolio_id, _, token = await joined_trader(api, created, make_user, ws)
    feed = await ws("/ws/portfolio", token=token)
    await feed.expect("PORTFOLIO_LIST")
    await feed.send("SUBSCRIBE_CONTEST", {"contestId": created["contestId"]})
    assert (await feed.wait_for("CONTEST_SNAPSHOT"))["data"]["contest"]["status"] == "OPEN"
    assert (await submit(client, order(portfolio_id, quantity=1)))["type"] == "ORDER_SUBMITTED"
    update = await feed.wait_for("CONTEST_UPDATE", timeout=5)
    while update["data"]["status"] != "FINISHED":
        update = await feed.wait_for("CONTEST_UPDATE", timeout=5)
    assert update["data"]["ranking"]["final"] is True and update["data"]["ranking"]["entries"][0]["name"] == "Sam"
    reply = await submit(client, order(portfolio_id, quantity=1))
    assert reply["data"]["order"]["rejectReason"] == "CONTEST_NOT_OPEN"


# ----- teams -----------------------------------------------------------------------------------------------

async def test_a_team_member_trades_the_team_portfolio_and_a_non_member_is_forbidden(api, contest, make_user, ws,
                                                                                      services):
    created, teacher = await contest(rules={"maxTeamSize": 3})
    users = {}
    for name in ("ann", "ben", "cat"):
        user, token = make_user(name)
        code, body = await join(api, token, created["joinCode"], name.title())
        assert code == 201 and body["portfolioId"] is None
        users[name] = (user, token)
    code, body = await api(f"/api/contests/{created['contestId']}/teams", teacher,
                           {"name": "Bulls", "members": [str(users["ann"][0].id), str(users["ben"][0].id)]})
    assert code == 201, body
    team = body["team"]
    assert team["members"] == [str(users["ann"][0].id), str(users["ben"][0].id)]
    ben = await ws("/ws/orders", token=users["ben"][1])
    await ben.expect("ACTIVE_ORDERS")
    reply = await submit(ben, order(team["portfolioId"], quantity=2, note="ben's idea"))
    assert reply["type"] == "ORDER_SUBMITTED", reply
    placed = reply["data"]["order"]
    assert placed["userId"] == str(users["ann"][0].id) and placed["placedBy"] == str(users["ben"][0].id)
    price = services.market.quote("NVTX").bid / 100
    reply = await submit(ben, order(team["portfolioId"], order_type="LIMIT", limitPrice=round(price * 0.5, 2),
                                    quantity=1))
    resting = reply["data"]["order"]["orderId"]
    cat = await ws("/ws/orders", token=users["cat"][1])
    await cat.expect("ACTIVE_ORDERS")
    reply = await submit(cat, order(team["portfolioId"], quantity=1))
    assert reply["type"] == "ERROR" and reply["data"]["code"] == "FORBIDDEN"
    await cat.send("CANCEL_ORDER", {"orderId": resting}, request_id="c")
    assert (await cat.wait_for("ERROR"))["data"]["code"] == "FORBIDDEN"
    ann = await ws("/ws/orders", token=users["ann"][1])
    await ann.expect("ACTIVE_ORDERS")
    await ann.send("CANCEL_ORDER", {"orderId": resting}, request_id="c")  # the captain cancels ben's order
    cancelled = await ann.wait_for("ORDER_CANCELLED")
    assert cancelled["data"]["order"]["orderId"] == resting
    portfolio = await ws("/ws/portfolio", token=users["ben"][1])
    await portfolio.expect("PORTFOLIO_LIST")
    await portfolio.send("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": team["portfolioId"]})
    assert (await portfolio.wait_for("PORTFOLIO_SNAPSHOT"))["data"]["portfolio"]["portfolioId"] == team["portfolioId"]
    other = await ws("/ws/portfolio", token=users["cat"][1])
    await other.expect("PORTFOLIO_LIST")
    await other.send("REQUEST_PORTFOLIO_SNAPSHOT", {"portfolioId": team["portfolioId"]})
    assert (await other.wait_for("ERROR"))["data"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("members, status", [
    (["ann"], 400),                 # one is not a team
    (["ann", "ann"], 400),          # nor is one twice
    (["ann", "zed"], 400),          # zed never joined
    (["ann", "ben", "cat", "dan"], 400),  # past the contest's size of 3
    (["ann", "x y"], 400),          # not an id
])
async def test_bad_teams_are_refused(api, contest, make_user, members, status):
    created, teacher = await contest(rules={"maxTeamSize": 3})
    ids = {}
    for name in ("ann", "ben", "cat", "dan", "zed"):
        user, token = make_user(name)
        ids[name] = str(user.id)
        if name != "zed":
            await join(api, token, created["joinCode"], name.title())
    code, body = await api(f"/api/contests/{created['contestId']}/teams", teacher,
                           {"name": "Bulls", "members": [ids.get(m, m) for m in members]})
    assert code == status, body


# ----- assignments -----------------------------------------------------------------------------------------

async def test_an_assignment_completes_from_real_fills_and_the_checklist_ticks_live(api, contest, make_user, ws):
    created, teacher = await contest()
    code, body = await api(f"/api/contests/{created['contestId']}/assignments", teacher,
                           {"kind": "TRADE_RATIONALES", "params": {"trades": 1, "minChars": 5},
                            "due": "2099-01-01T00:00:00Z"})
    assert code == 201, body
    assert body["assignment"]["params"] == {"trades": 1, "minChars": 5}
    client, portfolio_id, _, token = await joined_trader(api, created, make_user, ws)
    watcher = await ws("/ws/portfolio", token=token)
    await watcher.expect("PORTFOLIO_LIST")
    await watcher.send("SUBSCRIBE_CONTEST", {"contestId": created["contestId"]})
    snapshot = await watcher.wait_for("CONTEST_SNAPSHOT")
    assert [t["state"] for t in snapshot["data"]["progress"]] == ["PENDING"]
    reply = await submit(client, order(portfolio_id, quantity=1, note="ok"))  # too short a rationale
    await client.wait_for("ORDER_FILLED", timeout=10)
    reply = await submit(client, order(portfolio_id, quantity=1, note="momentum after earnings"))
    assert reply["type"] == "ORDER_SUBMITTED"
    progress = await watcher.wait_for("ASSIGNMENT_PROGRESS", timeout=10)
    while progress["data"]["tasks"][0]["state"] != "DONE":
        progress = await watcher.wait_for("ASSIGNMENT_PROGRESS", timeout=10)
    task = progress["data"]["tasks"][0]
    assert task["current"] == task["target"] == 1 and task["doneAt"] and task["due"] == "2099-01-01T00:00:00.000Z"
    code, board = await api(f"/api/contests/{created['contestId']}/progress", teacher)
    assert code == 200 and board["students"][0]["tasks"][0]["state"] == "DONE"


async def test_a_limit_order_assignment_ignores_market_orders_and_rejections(api, contest, make_user, ws, services):
    created, teacher = await contest()
    await api(f"/api/contests/{created['contestId']}/assignments", teacher,
              {"kind": "PLACE_ORDER", "params": {"orderType": "LIMIT", "count": 1}, "due": "2099-01-01T00:00:00Z"})
    client, portfolio_id, _, token = await joined_trader(api, created, make_user, ws)
    await submit(client, order(portfolio_id, quantity=1))
    await submit(client, order(portfolio_id, order_type="LIMIT", limitPrice=0.001, quantity=1))  # rejected
    code, detail = await api(f"/api/contests/{created['contestId']}", token)
    assert detail["progress"][0]["state"] == "PENDING" and detail["progress"][0]["current"] == 0
    price = services.market.quote("NVTX").bid / 100
    await submit(client, order(portfolio_id, order_type="LIMIT", limitPrice=round(price * 0.5, 2), quantity=1))
    code, detail = await api(f"/api/contests/{created['contestId']}", token)
    assert detail["progress"][0]["state"] == "DONE"


@pytest.mark.parametrize("body", [
    {"kind": "BECOME_RICH", "params": {}, "due": "2099-01-01T00:00:00Z"},
    {"kind": "PLACE_ORDER", "params": {"count": 0}, "due": "2099-01-01T00:00:00Z"},
    {"kind": "PLACE_ORDER", "params": {"orderType": "GUESS"}, "due": "2099-01-01T00:00:00Z"},
    {"kind": "HOLD_SECTORS", "params": {"sectors": "three"}, "due": "2099-01-01T00:00:00Z"},
    {"kind": "KEEP_WEIGHT_UNDER", "params": {"maxWeight": 3}, "due": "2099-01-01T00:00:00Z"},
    {"kind": "SET_STOP_LOSS", "params": {"colour": "red"}, "due": "2099-01-01T00:00:00Z"},
    {"kind": "PLACE_ORDER", "params": {}, "due": "soon"},
    {"kind": "PLACE_ORDER", "params": {}},
    {"kind": "PLACE_ORDER", "params": [], "due": "2099-01-01T00:00:00Z"},
])
async def test_bad_assignments_are_refused(api, contest, services, body):
    created, teacher = await contest()
    code, answer = await api(f"/api/contests/{created['contestId']}/assignments", teacher, body)
    assert code == 400 and answer["error"], answer
    assert services.contests.directory.assignments[created["contestId"]] == []


async def test_students_may_not_manage_a_contest_they_play_in(api, contest, make_user):
    created, _ = await contest()
    _, student = make_user("sam")
    await join(api, student, created["joinCode"], "Sam")
    for path, body in (("finish", {}), ("progress", None), ("accounts", {"prefix": "x", "count": 1}),
                       ("assignments", {"kind": "PLACE_ORDER", "params": {}, "due": "2099-01-01T00:00:00Z"})):
        code, answer = await api(f"/api/contests/{created['contestId']}/{path}", student, body)
        assert code == 403 and answer["code"] == "FORBIDDEN", path


# ----- accounts for a class --------------------------------------------------------------------------------

async def test_a_teacher_generates_logins_already_in_the_contest(api, contest, services):
    created, teacher = await contest()
    code, body = await api(f"/api/contests/{created['contestId']}/accounts", teacher,
                           {"prefix": "knights", "count": 3})
    assert code == 201, body
    assert [a["username"] for a in body["accounts"]] == ["knights01", "knights02", "knights03"]
    assert "knights02" in body["sheet"] and body["accounts"][1]["password"] in body["sheet"]
    first = body["accounts"][0]
    code, login = await api("/api/auth/login", None, {"username": first["username"], "password": first["password"]})
    assert code == 200
    code, detail = await api(f"/api/contests/{created['contestId']}", login["token"])
    assert code == 200 and detail["myPortfolioId"]
    code, again = await api(f"/api/contests/{created['contestId']}/accounts", teacher,
                            {"prefix": "knights", "count": 4})
    assert code == 400 and "taken" in again["error"]
    assert services.storage.user_by_name("knights04") is None  # all or none


# ----- across a restart ------------------------------------------------------------------------------------

async def test_contests_rosters_and_assignments_survive_a_restart(api, contest, make_user, services):
    created, teacher = await contest(rules={"maxTeamSize": 2, "startingCash": 777})
    ids = []
    for name in ("ann", "ben"):
        user, token = make_user(name)
        ids.append(str(user.id))
        await join(api, token, created["joinCode"], name.title())
    await api(f"/api/contests/{created['contestId']}/teams", teacher, {"name": "Duo", "members": ids})
    await api(f"/api/contests/{created['contestId']}/assignments", teacher,
              {"kind": "HOLD_SECTORS", "params": {"sectors": 2}, "due": "2099-01-01T00:00:00Z"})
    restarted = stockquest.build_services(services.config)
    try:
        contests = restarted.contests
        contest_now = contests.directory.contests[created["contestId"]]
        assert contest_now.rules.starting_cash_cents == 777_00 and contest_now.status == "OPEN"
        team = contests.directory.rosters[created["contestId"]].teams()[0]
        assert team.name == "Duo" and list(team.members) == ids
        assert contests.directory.contest_for(team.portfolio_id) == contest_now
        assert [a.task.kind for a in contests.directory.assignments[created["contestId"]]] == ["HOLD_SECTORS"]
    finally:
        restarted.storage.close()


# ----- reports ---------------------------------------------------------------------------------------------

async def test_the_teacher_downloads_the_report_as_csv_and_html(api, contest, make_user, ws, http_client, base_url,
                                                                services):
    created, teacher = await contest(name="Report class")
    client, portfolio_id, _, student = await joined_trader(api, created, make_user, ws, "sam", nickname="=HYPERLINK")
    await submit(client, order(portfolio_id, quantity=3, note="<script>alert(1)</script>"))
    await client.wait_for("ORDER_FILLED", timeout=10)
    services.portfolios.record_values()
    await api(f"/api/contests/{created['contestId']}/finish", teacher, {})
    response = await http_client.fetch(f"{base_url}/api/contests/{created['contestId']}/report.csv",
                                       headers={"Authorization": f"Bearer {teacher}"})
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.body.decode("utf-8-sig"), newline="")))
    assert len(rows) == 1
    row = rows[0]
    assert row["rank"] == "1" and row["name"] == "'=HYPERLINK"
    assert row["trades"] == "1" and row["journal_entries"] == "1"
    final = services.contests.directory.contests[created["contestId"]].final_ranking[0].final_value_cents
    assert row["final_value"] == f"{final // 100}.{final % 100:02d}" and final != 100_000_00  # it traded
    response = await http_client.fetch(f"{base_url}/api/contests/{created['contestId']}/report.html",
                                       headers={"Authorization": f"Bearer {teacher}"})
    page = response.body.decode()
    assert "<svg" in page and "@media print" in page and "Report class" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    other = make_user("tom", role="teacher")[1]
    for token in (student, other):
        code, body = await api(f"/api/contests/{created['contestId']}/report.csv", token)
        assert code == 403 and body["code"] == "FORBIDDEN"


# ----- rankings and risk, scoped to the contest -------------------------------------------------------------

async def test_the_class_risk_feed_is_scoped_to_a_contest_and_the_default_class_keeps_its_own(
        api, contest, make_user, ws, services):
    created, teacher = await contest()
    _, sam = make_user("sam")
    code, joined = await join(api, sam, created["joinCode"], "Sam")
    main_id = services.storage.portfolio_ids_of(str((services.storage.user_by_name("sam")).id))[0]
    services.book.ledger(main_id)  # the engine loads a portfolio on first use
    services.risk.evaluate()
    feed = await ws("/ws/risk-monitoring", token=teacher)
    await feed.send("SUBSCRIBE_RISK", {"scope": "ALL", "contestId": created["contestId"]})
    ranking = await feed.wait_for("RISK_RANKING")
    assert ranking["data"]["contestId"] == created["contestId"]
    assert [e["portfolioId"] for e in ranking["data"]["entries"]] == [joined["portfolioId"]]
    await feed.send("SUBSCRIBE_RISK", {"scope": "ALL"})
    whole = await feed.wait_for("RISK_RANKING")
    ids = [e["portfolioId"] for e in whole["data"]["entries"]]
    assert main_id in ids and joined["portfolioId"] not in ids
    _, tom = make_user("tom", role="teacher")
    other = await ws("/ws/risk-monitoring", token=tom)
    await other.send("SUBSCRIBE_RISK", {"scope": "ALL", "contestId": created["contestId"]})
    assert (await other.wait_for("ERROR"))["data"]["code"] == "FORBIDDEN"
    student = await ws("/ws/risk-monitoring", token=sam)
    await student.send("SUBSCRIBE_RISK", {"scope": "ALL", "contestId": created["contestId"]})
    assert (await student.wait_for("ERROR"))["data"]["code"] == "FORBIDDEN"


async def test_a_contest_without_the_house_limits_starts_its_portfolios_with_only_its_weight_cap(
        api, contest, make_user, ws):
    created, _ = await contest(rules={"houseRiskLimits": False, "maxPositionWeight": 0.25})
    _, sam = make_user("sam")
    _, joined = await join(api, sam, created["joinCode"], "Sam")
    feed = await ws("/ws/risk-monitoring", token=sam)
    await feed.send("REQUEST_RISK_SNAPSHOT", {"portfolioId": joined["portfolioId"]})
    limits = (await feed.wait_for("RISK_SNAPSHOT"))["data"]["limits"]
    assert limits["maxPositionWeight"] == 0.25
    assert {k: v for k, v in limits.items() if k != "maxPositionWeight" and v is not None} == {}


async def test_a_team_member_keeps_hearing_the_team_portfolio(api, contest, make_user, ws):
    created, teacher = await contest(rules={"maxTeamSize": 2})
    ids, tokens = [], []
    for name in ("ann", "ben"):
        user, token = make_user(name)
        ids.append(str(user.id))
        tokens.append(token)
        await join(api, token, created["joinCode"], name.title())
    _, body = await api(f"/api/contests/{created['contestId']}/teams", teacher, {"name": "Duo", "members": ids})
    feed = await ws("/ws/portfolio", token=tokens[1])
    await feed.expect("PORTFOLIO_LIST")
    await feed.send("SUBSCRIBE_PORTFOLIO", {"portfolioId": body["team"]["portfolioId"], "updateType": "VALUE",
                                            "updateInterval": 500})
    await feed.wait_for("PORTFOLIO_SNAPSHOT")
    received = await feed.drain(2.5)  # past two reviews of the channels a connection holds by its role
    assert not [m for m in received if m["type"] == "ERROR"]
    start = len(received)
    updates = [m for m in (await feed.drain(1.2))[start:] if m["type"] == "PORTFOLIO_UPDATE"]
    assert updates and updates[-1]["data"]["portfolioId"] == body["team"]["portfolioId"]


async def test_a_stop_loss_assignment_ticks_when_the_level_is_set(api, contest, make_user, ws, services):
    created, teacher = await contest()
    await api(f"/api/contests/{created['contestId']}/assignments", teacher,
              {"kind": "SET_STOP_LOSS", "params": {"count": 1}, "due": "2099-01-01T00:00:00Z"})
    client, portfolio_id, _, token = await joined_trader(api, created, make_user, ws)
    await submit(client, order(portfolio_id, quantity=2))
    await client.wait_for("ORDER_FILLED", timeout=10)
    feed = await ws("/ws/portfolio", token=token)
    await feed.expect("PORTFOLIO_LIST")
    await feed.send("SUBSCRIBE_CONTEST", {"contestId": created["contestId"]})
    assert (await feed.wait_for("CONTEST_SNAPSHOT"))["data"]["progress"][0]["state"] == "PENDING"
    stop = round(services.market.quote("NVTX").bid / 100 * 0.8, 2)
    await feed.send("UPDATE_POSITION", {"portfolioId": portfolio_id, "symbol": "NVTX", "stopLoss": stop})
    progress = await feed.wait_for("ASSIGNMENT_PROGRESS")
    assert progress["data"]["tasks"][0]["state"] == "DONE" and progress["data"]["portfolioId"] == portfolio_id


async def test_a_scenarios_news_reaches_every_connection_of_a_contests_players_once(api, contest, make_user, ws):
    created, teacher = await contest()
    feeds = []
    for name in ("ann", "ben", "cat"):
        _, token = make_user(name)
        await join(api, token, created["joinCode"], name.title())
        feeds.append(await ws("/ws/market-data", token=token))
    feeds.append(await ws("/ws/market-data", token=teacher))
    code, started = await api("/api/scenarios/start", teacher, {"name": "crash-and-recovery"})
    assert code == 200, started
    if not started["current"]["timeline"][0]["happened"]:
        code, _ = await api("/api/scenarios/skip", teacher, {})
        assert code == 200
    headline = started["current"]["timeline"][0]["news"]["headline"]
    for feed in feeds:
        await feed.drain(1.0)
        news = [m["data"]["headline"] for m in feed.received if m["type"] == "NEWS"]
        assert news == [headline], news


async def test_guessing_join_codes_or_the_password_is_throttled_per_student(api, contest, make_user):
    created, _ = await contest(password="owls")
    _, student = make_user("sam")
    for guess in ("AAA-AAA", "BBB-BBB", "CCC-CCC", "DDD-DDD"):
        assert (await join(api, student, guess, "Sam"))[0] == 404
    assert (await join(api, student, created["joinCode"], "Sam", "cats"))[0] == 403
    code, body = await join(api, student, created["joinCode"], "Sam", "owls")  # even the right one, for now
    assert code == 429 and body["code"] == "RATE_LIMITED" and "wrong join codes" in body["error"]
    _, other = make_user("sue")  # others are not slowed
    assert (await join(api, other, created["joinCode"], "Sue", "owls"))[0] == 201


async def test_a_password_contest_takes_teacher_made_accounts_and_a_password_as_typed_over_both_wires(
        api, contest, make_user, ws):
    created, teacher = await contest(password=" owls ")
    assert created["status"] == "OPEN"
    code, body = await api(f"/api/contests/{created['contestId']}/accounts", teacher, {"prefix": "owl", "count": 1})
    assert code == 201, body
    _, sam = make_user("sam")
    client = await ws("/ws/portfolio", token=sam)
    await client.expect("PORTFOLIO_LIST")
    await client.send("JOIN_CONTEST", {"code": created["joinCode"], "nickname": "Sam", "password": "owls"})
    assert (await client.wait_for("ERROR"))["data"]["code"] == "FORBIDDEN"
    await client.send("JOIN_CONTEST", {"code": created["joinCode"], "nickname": "Sam", "password": " owls "})
    assert (await client.wait_for("CONTEST_JOINED"))["data"]["portfolioId"]
    _, sue = make_user("sue")
    assert (await join(api, sue, created["joinCode"], "Sue", "owls"))[0] == 403
    assert (await join(api, sue, created["joinCode"], "Sue", " owls "))[0] == 201


async def test_a_contest_whose_start_has_passed_is_open_when_created(api, make_user):
    _, teacher = make_user("tess", role="teacher")
    code, body = await api("/api/contests", teacher, {"name": "Today", "schedule": DAYS})
    assert code == 201 and body["contest"]["status"] == "OPEN" and body["contest"]["openedAt"]
    code, body = await api("/api/contests", teacher, {"name": "Later", "schedule": LATER})
    assert body["contest"]["status"] == "DRAFT"


async def test_sector_and_weight_tasks_are_judged_from_the_ledger_and_the_sampled_weights(api, contest, make_user,
                                                                                          ws, services):
    created, teacher = await contest()
    for body in ({"kind": "HOLD_SECTORS", "params": {"sectors": 2}, "due": "2099-01-01T00:00:00Z"},
                 {"kind": "KEEP_WEIGHT_UNDER", "params": {"maxWeight": 0.5, "holdMinutes": 1},
                  "due": "2099-01-01T00:00:00Z"}):
        assert (await api(f"/api/contests/{created['contestId']}/assignments", teacher, body))[0] == 201
    client, portfolio_id, _, token = await joined_trader(api, created, make_user, ws)
    sectors = services.market.sectors()
    other = next(symbol for symbol, sector in sectors.items() if sector != sectors["NVTX"])
    for symbol in ("NVTX", other):
        assert (await submit(client, order(portfolio_id, symbol=symbol, quantity=5)))["type"] == "ORDER_SUBMITTED"
        await client.wait_for("ORDER_FILLED", timeout=10)
    code, detail = await api(f"/api/contests/{created['contestId']}", token)
    sectors_task, weight_task = detail["progress"]
    assert sectors_task["state"] == "DONE" and (sectors_task["current"], sectors_task["target"]) == (2, 2)
    assert weight_task["state"] == "PENDING"
    now = services.clock.now_ms()
    services.contests.sample_weights(now)           # both positions are small: under 50 % from now...
    services.contests.sample_weights(now + 30_000)  # ...for half a minute: not yet
    code, detail = await api(f"/api/contests/{created['contestId']}", token)
    assert detail["progress"][1]["state"] == "PENDING"
    services.contests.sample_weights(now + 60_000)  # ...for a minute: done
    code, detail = await api(f"/api/contests/{created['contestId']}", token)
    assert detail["progress"][1]["state"] == "DONE"


async def test_the_teacher_adds_and_removes_team_members_within_the_rules(api, contest, make_user, ws):
    created, teacher = await contest(rules={"maxTeamSize": 3})
    ids, tokens = {}, {}
    for name in ("ann", "ben", "cat", "dan"):
        user, token = make_user(name)
        ids[name], tokens[name] = str(user.id), token
        await join(api, token, created["joinCode"], name.title())
    base = f"/api/contests/{created['contestId']}/teams"
    _, body = await api(base, teacher, {"name": "Bulls", "members": [ids["ann"], ids["ben"]]})
    team = body["team"]
    members = f"{base}/{team['teamId']}/members"
    code, body = await api(members, teacher, {"userId": ids["cat"]})
    assert code == 200 and body["team"]["members"] == [ids["ann"], ids["ben"], ids["cat"]]
    cat = await ws("/ws/orders", token=tokens["cat"])
    await cat.expect("ACTIVE_ORDERS")
    assert (await submit(cat, order(team["portfolioId"], quantity=1)))["type"] == "ORDER_SUBMITTED"
    code, body = await api(members, teacher, {"userId": ids["dan"]})  # a fourth is past the size of 3
    assert code == 400 and "3" in body["error"]
    code, body = await api(f"{members}/{ids['ann']}", teacher, method="DELETE")  # the captain owns the portfolio
    assert code == 400 and "captain" in body["error"]
    code, body = await api(f"{members}/{ids['cat']}", teacher, method="DELETE")
    assert code == 200 and body["team"]["members"] == [ids["ann"], ids["ben"]]
    reply = await submit(cat, order(team["portfolioId"], quantity=1))  # out of the team: trades it no more
    assert reply["type"] == "ERROR" and reply["data"]["code"] == "FORBIDDEN"
    code, body = await api(f"{members}/{ids['ben']}", teacher, method="DELETE")  # one would be left
    assert code == 400
    code, body = await api(f"{base}/999/members", teacher, {"userId": ids["dan"]})
    assert code == 404
    code, body = await api(members, tokens["ann"], {"userId": ids["dan"]})  # a student manages nothing
    assert code == 403
    code, body = await api(f"{members}/{ids['cat']}", teacher, {"userId": ids["dan"]})  # POST to a member: no such
    assert code == 405


async def test_a_class_joining_with_one_password_costs_one_slow_hash(api, contest, make_user, monkeypatch):
    import services.contests
    created, _ = await contest(password="owls")
    calls = []
    real = services.contests.verify_password
    monkeypatch.setattr(services.contests, "verify_password", lambda p, h: calls.append(p) or real(p, h))
    for name in ("ann", "ben", "cat"):
        _, token = make_user(name)
        assert (await join(api, token, created["joinCode"], name.title(), "owls"))[0] == 201
    _, eve = make_user("eve")
    assert (await join(api, eve, created["joinCode"], "Eve", "owlz"))[0] == 403  # a wrong one is still checked
    assert calls == ["owls", "owlz"]
