"""Scenario REST over real HTTP: choosing, previewing, uploading, starting, skipping and stopping, and who may."""

import pytest
import ujson
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.gen_test(timeout=20)

CRASH = "crash-and-recovery"
FIRST_HEADLINE = "Central Reserve Board hints at a surprise rate rise"
MINE = """\
name = "Mine"

[[events]]
day = 1
[events.news]
headline = "Mine begins"
symbols = ["NVTX"]
[[events.move]]
symbols = ["NVTX"]
percent = 5
over = "1h"

[[events]]
day = 2
[events.news]
headline = "Mine goes on"
"""
BAD = """\
name = "Bad"

[[events]]
day = 3
time = "17:00"
[events.news]
headline = "Novatex misses"
symbols = ["NVTZ"]
[[events.move]]
sector = "TECH"
percnt = -12
over = "20 minutes"
"""
CALLS = [("GET", "/api/scenarios"), ("POST", "/api/scenarios"), ("GET", f"/api/scenarios/{CRASH}/preview"),
         ("POST", "/api/scenarios/start"), ("POST", "/api/scenarios/skip"), ("POST", "/api/scenarios/stop"),
         ("GET", "/api/scenarios/current")]


async def call(http_client, base_url, method, path, token=None, body=None, raw=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if method == "POST" and raw is None:
        raw = ujson.dumps(body if body is not None else {})
    try:
        response = await http_client.fetch(base_url + path, method=method, headers=headers, body=raw)
    except HTTPClientError as error:
        return error.code, ujson.loads(error.response.body)
    return response.code, ujson.loads(response.body)


@pytest.fixture
def teacher(make_user):
    return make_user("tina", role="teacher")[1]


async def test_a_teacher_lists_the_shipped_scenarios_by_name_with_title_description_and_size(http_client, base_url,
                                                                                             teacher):
    code, listed = await call(http_client, base_url, "GET", "/api/scenarios", teacher)
    assert code == 200 and listed["current"] is None
    assert [s["name"] for s in listed["scenarios"]] == [CRASH, "earnings-season", "sector-rotation"]
    crash = listed["scenarios"][0]
    assert crash == {"name": CRASH, "title": "Crash and recovery", "description": crash["description"],
                     "events": 7, "days": 6, "uploaded": False}
    assert crash["description"].startswith("A rate scare")


async def test_preview_gives_each_event_by_day_and_time_with_its_news_and_moves(http_client, base_url, teacher):
    code, preview = await call(http_client, base_url, "GET", f"/api/scenarios/{CRASH}/preview", teacher)
    assert code == 200 and preview["scenario"]["title"] == "Crash and recovery"
    first = preview["timeline"][0]
    assert first == {"number": 1, "day": 1, "time": "10:00", "news": first["news"],
                     "move": [{"market": True, "percent": -2.0, "over": "2h"},
                              {"sector": "Technology", "percent": -1.5, "over": "2h"}],
                     "volatility": [], "at": None, "endsAt": None, "happened": False}
    assert first["news"]["headline"] == FIRST_HEADLINE and first["news"]["symbols"] == []
    assert [(e["day"], e["number"]) for e in preview["timeline"]] == [(d, n) for n, d in
                                                                      enumerate([1, 2, 2, 3, 4, 5, 6], 1)]


@pytest.mark.parametrize("path", ["/api/scenarios/nope/preview", "/api/scenarios/uploaded/preview",
                                  "/api/scenarios/%2e%2e/preview", "/api/scenarios/" + "x" * 70 + "/preview",
                                  "/api/scenarios/crash-and-recovery/preview/more"])
async def test_an_unknown_scenario_is_404(http_client, base_url, teacher, path):
    code, body = await call(http_client, base_url, "GET", path, teacher)
    assert code == 404 and body["code"] == "NOT_FOUND" and body["error"]


@pytest.mark.parametrize("method, path", CALLS)
async def test_students_get_403_and_callers_without_a_token_401_on_every_scenario_call(http_client, base_url,
                                                                                       make_user, services, method,
                                                                                       path):
    _, student = make_user("sam")
    code, body = await call(http_client, base_url, method, path, student, {"name": CRASH, "toml": MINE})
    assert (code, body["code"]) == (403, "FORBIDDEN")
    code, body = await call(http_client, base_url, method, path, None, {"name": CRASH})
    assert (code, body["code"]) == (401, "UNAUTHORIZED")
    assert services.scenarios.current().run is None and len(services.scenarios.catalogue()) == 3


async def test_a_teacher_starts_skips_and_stops_and_current_says_where_the_run_is(http_client, base_url, teacher,
                                                                                  services):
    code, started = await call(http_client, base_url, "POST", "/api/scenarios/start", teacher, {"name": CRASH})
    assert code == 200
    current = started["current"]
    assert (current["name"], current["title"], current["finished"]) == (CRASH, "Crash and recovery", False)
    assert current["startedAt"] and started["marketTime"] and len(current["timeline"]) == 7
    assert all(event["at"] and event["endsAt"] for event in current["timeline"])
    code, skipped = await call(http_client, base_url, "POST", "/api/scenarios/skip", teacher)
    assert code == 200 and skipped["current"]["timeline"][0]["happened"]
    assert skipped["current"]["happened"] >= 1
    assert skipped["current"]["nextEvent"]["number"] == skipped["current"]["happened"] + 1
    code, now = await call(http_client, base_url, "GET", "/api/scenarios/current", teacher)
    assert code == 200 and now["current"]["nextEvent"] == skipped["current"]["nextEvent"]
    code, listed = await call(http_client, base_url, "GET", "/api/scenarios", teacher)
    assert listed["current"] == CRASH
    code, stopped = await call(http_client, base_url, "POST", "/api/scenarios/stop", teacher)
    assert code == 200 and stopped["current"] is None
    code, now = await call(http_client, base_url, "GET", "/api/scenarios/current", teacher)
    assert now["current"] is None and services.scenarios.current().run is None


async def test_admins_may_play_scenarios_too(http_client, base_url, make_user):
    _, admin = make_user("ada", role="admin")
    code, started = await call(http_client, base_url, "POST", "/api/scenarios/start", admin,
                               {"name": "earnings-season"})
    assert code == 200 and started["current"]["name"] == "earnings-season"


async def test_starting_while_a_scenario_runs_is_409_and_leaves_it_running(http_client, base_url, teacher, services):
    await call(http_client, base_url, "POST", "/api/scenarios/start", teacher, {"name": CRASH})
    for body in ({"name": "sector-rotation"}, {"toml": MINE}):
        code, refused = await call(http_client, base_url, "POST", "/api/scenarios/start", teacher, body)
        assert (code, refused["code"]) == (409, "CONFLICT")
        assert "'Crash and recovery' is running: stop it" in refused["error"]
    assert services.scenarios.current().name == CRASH and len(services.scenarios.catalogue()) == 3


@pytest.mark.parametrize("path", ["/api/scenarios/skip", "/api/scenarios/stop"])
async def test_skip_and_stop_without_a_scenario_are_409(http_client, base_url, teacher, path):
    code, body = await call(http_client, base_url, "POST", path, teacher)
    assert (code, body["code"], body["error"]) == (409, "CONFLICT", "no scenario is running")


async def test_skip_after_the_last_event_is_409(http_client, base_url, teacher):
    await call(http_client, base_url, "POST", "/api/scenarios/start", teacher, {"toml": MINE})
    assert (await call(http_client, base_url, "POST", "/api/scenarios/skip", teacher))[0] == 200
    code, body = await call(http_client, base_url, "POST", "/api/scenarios/skip", teacher)
    assert (code, body["error"]) == (409, "every event of the scenario has happened")


async def test_an_uploaded_scenario_is_listed_previewed_and_started_by_the_name_uploaded(http_client, base_url,
                                                                                       teacher):
    code, uploaded = await call(http_client, base_url, "POST", "/api/scenarios", teacher, {"toml": MINE})
    assert code == 201 and uploaded["scenario"] == {"name": "uploaded", "title": "Mine", "description": "",
                                                    "events": 2, "days": 2, "uploaded": True}
    assert [e["news"]["headline"] for e in uploaded["timeline"]] == ["Mine begins", "Mine goes on"]
    code, listed = await call(http_client, base_url, "GET", "/api/scenarios", teacher)
    assert [s["name"] for s in listed["scenarios"]][-1] == "uploaded"
    code, preview = await call(http_client, base_url, "GET", "/api/scenarios/uploaded/preview", teacher)
    assert code == 200 and preview["timeline"] == uploaded["timeline"]
    code, started = await call(http_client, base_url, "POST", "/api/scenarios/start", teacher, {"name": "uploaded"})
    assert code == 200 and started["current"]["title"] == "Mine" and started["current"]["uploaded"] is True
    code, preview = await call(http_client, base_url, "GET", "/api/scenarios/uploaded/preview", teacher)
    assert preview["timeline"][0]["happened"] and preview["timeline"][1]["at"]


@pytest.mark.parametrize("path", ["/api/scenarios", "/api/scenarios/start"])
async def test_a_scenario_with_mistakes_is_400_with_every_problem_and_nothing_changes(http_client, base_url, teacher,
                                                                                     services, path):
    code, body = await call(http_client, base_url, "POST", path, teacher, {"toml": BAD})
    assert (code, body["code"]) == (400, "BAD_REQUEST")
    assert body["error"].startswith("the scenario has 6 problems: line 3, event 1, time: 17:00 is outside the session")
    assert [p["text"] for p in body["problems"]] == [
        "line 3, event 1, time: 17:00 is outside the session: from 09:30 to before 16:00",
        "line 3, event 1, news.symbols: unknown symbol 'NVTZ' (did you mean NVTX?)",
        "line 3, event 1, move[1].percnt: unknown key (did you mean percent?); expected symbols, sector, market, "
        "percent, over",
        "line 3, event 1, move[1].sector: unknown sector 'TECH'; sectors: Technology, Healthcare, Financials, Energy, "
        "Consumer, Industrials, Utilities, Communication",
        "line 3, event 1, move[1].over: must be a duration like \"20m\", \"1h30m\" or \"1d\" (a whole session), not "
        "'20 minutes'",
        "line 3, event 1, move[1].percent: missing, e.g. percent = -12",
    ]
    assert "; ".join(p["text"] for p in body["problems"]) in body["error"]
    assert body["problems"][0] == {"message": "17:00 is outside the session: from 09:30 to before 16:00", "event": 1,
                                   "field": "time", "line": 3, "text": body["problems"][0]["text"]}
    assert services.scenarios.current().run is None and len(services.scenarios.catalogue()) == 3


@pytest.mark.parametrize("toml, message", [
    ("name = [", "not valid TOML"),
    ("", "name"),
    ('name = "x"\nevents = 5\n', "at least one event"),
    ('name = "x"\n[[events]]\nday = 1\n', "an event needs news, a move or a volatility change"),
])
async def test_text_that_is_not_a_scenario_is_400_saying_why(http_client, base_url, teacher, toml, message):
    code, body = await call(http_client, base_url, "POST", "/api/scenarios", teacher, {"toml": toml})
    assert (code, body["code"]) == (400, "BAD_REQUEST") and message in body["error"] and body["problems"]


@pytest.mark.parametrize("path", ["/api/scenarios", "/api/scenarios/start"])
@pytest.mark.parametrize("raw, status, code", [
    (b"not json", 400, "INVALID_MESSAGE"),
    (b"[1, 2]", 400, "INVALID_MESSAGE"),
    (b'{"toml": 5}', 400, "INVALID_MESSAGE"),
    (b'{"toml": ["a"]}', 400, "INVALID_MESSAGE"),
    (b'{"toml": NaN}', 400, "INVALID_MESSAGE"),
    (b'{"toml": "\\ud800"}', 400, "INVALID_MESSAGE"),
    (b'{"toml": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "INVALID_MESSAGE"),
    (b'{"toml": "' + b"#" * 70_000 + b'"}', 400, "INVALID_MESSAGE"),
])
async def test_hostile_bodies_are_refused_and_change_nothing(http_client, base_url, teacher, services, path, raw,
                                                              status, code):
    answer = await call(http_client, base_url, "POST", path, teacher, raw=raw)
    assert (answer[0], answer[1]["code"]) == (status, code) and answer[1]["error"]
    assert services.scenarios.current().run is None and len(services.scenarios.catalogue()) == 3


@pytest.mark.parametrize("body, status, code", [
    ({}, 400, "BAD_REQUEST"),
    ({"name": CRASH, "toml": MINE}, 400, "BAD_REQUEST"),
    ({"name": 5}, 400, "INVALID_MESSAGE"),
    ({"name": {"a": 1}}, 400, "INVALID_MESSAGE"),
    ({"name": "x" * 65}, 400, "BAD_REQUEST"),
    ({"name": "nope"}, 404, "NOT_FOUND"),
    ({"name": "uploaded"}, 404, "NOT_FOUND"),
    ({"name": "../crash-and-recovery"}, 404, "NOT_FOUND"),
    ({"name": ""}, 404, "NOT_FOUND"),
])
async def test_start_needs_one_known_name_or_a_scenario_text(http_client, base_url, teacher, services, body, status,
                                                             code):
    answer = await call(http_client, base_url, "POST", "/api/scenarios/start", teacher, body)
    assert (answer[0], answer[1]["code"]) == (status, code) and answer[1]["error"]
    assert services.scenarios.current().run is None


async def test_upload_without_toml_is_400(http_client, base_url, teacher):
    code, body = await call(http_client, base_url, "POST", "/api/scenarios", teacher, {"name": CRASH})
    assert (code, body["code"]) == (400, "BAD_REQUEST") and "toml is required" in body["error"]


@pytest.mark.parametrize("method, path", [("GET", "/api/scenarios/start"), ("GET", "/api/scenarios/skip"),
                                          ("POST", "/api/scenarios/current"), ("DELETE", "/api/scenarios")])
async def test_other_methods_are_405(http_client, base_url, teacher, method, path):
    code, body = await call(http_client, base_url, method, path, teacher, raw=b"{}" if method == "POST" else None)
    assert (code, body["code"]) == (405, "METHOD_NOT_ALLOWED")
