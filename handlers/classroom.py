"""Classroom REST: the leaderboard (any signed-in user), market controls and scenarios (teacher or admin)."""

from domain.users import CLASS_ROLES
from realtime.protocol import ProtocolError, iso_timestamp
from realtime.schema import Number, Str, Symbols, validate
from realtime.wire import portfolio as wire
from services.container import Services

from .http import ApiError, JsonHandler
from .scenarios import SCENARIO_ROUTES

__all__ = ["LeaderboardHandler", "MarketControlHandler", "CLASSROOM_ROUTES"]

CONTROL_FIELDS = {
    "action": Str(required=True, upper=True, choices=("PAUSE", "RESUME", "SPEED", "SHOCK")),
    "speed": Number(),
    "percent": Number(),
    "symbols": Symbols(),
    "sector": Str(max_len=64),
}


class LeaderboardHandler(JsonHandler):
    """GET /api/leaderboard: every student's main portfolio, best total return first, ties by who joined first."""

    engine_bound = True

    def get(self):
        self.bearer_user()
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


def CLASSROOM_ROUTES(services: Services) -> list:
    return [(r"/api/leaderboard", LeaderboardHandler, dict(services=services)),
            (r"/api/market/control", MarketControlHandler, dict(services=services)),
            *SCENARIO_ROUTES(services)]
