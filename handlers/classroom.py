"""Classroom REST: the leaderboard (any signed-in user), market controls, scenarios and students' journals
(teacher or admin)."""

from domain.users import CLASS_ROLES
from realtime.protocol import ProtocolError, iso_timestamp
from realtime.schema import Id, Int, Number, Str, Symbols, validate
from realtime.wire import contests as wire_contests
from realtime.wire import orders as wire_orders
from realtime.wire import portfolio as wire
from services.container import Services
from services.trading import ORDER_HISTORY_LIMIT

from .http import ApiError, JsonHandler
from .scenarios import SCENARIO_ROUTES

__all__ = ["LeaderboardHandler", "MarketControlHandler", "JournalHandler", "CLASSROOM_ROUTES"]

CONTROL_FIELDS = {
    "action": Str(required=True, upper=True, choices=("PAUSE", "RESUME", "SPEED", "SHOCK")),
    "speed": Number(),
    "percent": Number(),
    "symbols": Symbols(),
    "sector": Str(max_len=64),
}


class LeaderboardHandler(JsonHandler):
    """GET /api/leaderboard: every student's main portfolio (the default class), best total return first, ties by
    who joined first; `?contestId=ID`: that contest's ranking (403 for whoever may not see the contest)."""

    engine_bound = True

    def get(self):
        user = self.bearer_user()
        contest_id = self.get_query_argument("contestId", None)
        if contest_id is not None:  # a contest's ranking, for those who may see the contest
            detail = self.services.contests.detail(user, contest_id)
            self.write_json({"contestId": contest_id, "final": detail.contest.final_ranking is not None,
                             "entries": [wire_contests.standing(s) for s in detail.ranking],
                             "timestamp": iso_timestamp(self.services.clock.now())})
            return
        self.write_json({"entries": [wire.standing(row) for row in self.services.portfolios.leaderboard()],
                         "timestamp": iso_timestamp(self.services.clock.now())})


class MarketControlHandler(JsonHandler):
    """POST /api/market/control: PAUSE, RESUME, SPEED {speed} or SHOCK {symbols | sector, percent} for a lesson."""

    engine_bound = True

    def post(self):
        self.require_role(*CLASS_ROLES)
        try:
            request = validate(self.json_body(), CONTROL_FIELDS)
        except ProtocolError as error:
            raise ApiError(400, error.message, code=error.code) from None
        market = self.services.market
        action = request["action"]
        if action == "PAUSE":
            status = market.pause()
        elif action == "RESUME":
            status = market.resume()
        elif action == "SPEED":
            if request["speed"] is None:
                raise ApiError(400, "SPEED needs speed", code="BAD_REQUEST")
            status = market.set_speed(request["speed"])
        else:
            if request["percent"] is None or not (request["symbols"] or request["sector"]):
                raise ApiError(400, "SHOCK needs percent and symbols or sector", code="BAD_REQUEST")
            status = self.services.exchange.shock(request["percent"], symbols=request["symbols"] or (),
                                                  sector=request["sector"])
        self.write_json(status)


JOURNAL_FIELDS = {
    "userId": Id(required=True),
    "limit": Int(default=100, min=1, max=ORDER_HISTORY_LIMIT),
    "before": Str(max_len=200),
}


class JournalHandler(JsonHandler):
    """GET /api/journal?userId=ID[&limit=N][&before=CURSOR]: a student's trade journal, newest first, for teachers.

    Each entry is an order the student placed with a note (docs/protocol.md, Classroom); pages as ORDER_HISTORY
    does. Students get 403, whoever's journal they ask for; an id that names no user is 404.
    """

    engine_bound = True

    def get(self):
        reader = self.require_role(*CLASS_ROLES)
        query = {}
        for name in JOURNAL_FIELDS:
            values = self.get_query_arguments(name, strip=False)  # tornado turns controls to spaces: refused
            if len(values) > 1:
                raise ApiError(400, f"{name} is given more than once", code="BAD_REQUEST")
            if values:
                query[name] = _query_number(values[0]) if name == "limit" else values[0]
        try:
            request = validate(query, JOURNAL_FIELDS)
        except ProtocolError as error:
            raise ApiError(400, error.message, code=error.code) from None
        student, orders, cursor = self.services.trading.journal(reader, request["user_id"], limit=request["limit"],
                                                                before=request["before"])
        self.write_json({"userId": str(student.id), "name": student.display_name,
                         "entries": [wire_orders.journal_entry(order) for order in orders], "nextCursor": cursor})


def _query_number(text: str) -> int | str:
    """A query argument as the integer it spells ("20"), else as given, for the field's validator to refuse."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 15 else text


def CLASSROOM_ROUTES(services: Services) -> list:
    return [(r"/api/leaderboard", LeaderboardHandler, dict(services=services)),
            (r"/api/market/control", MarketControlHandler, dict(services=services)),
            (r"/api/journal", JournalHandler, dict(services=services)),
            *SCENARIO_ROUTES(services)]
