"""Scenario REST (teachers and admins): the scenarios to choose from, their timelines, and playing one
(docs/protocol.md, Classroom; docs/scenarios.md)."""

from domain.scenarios import ScenarioError
from domain.users import CLASS_ROLES
from realtime.protocol import ProtocolError
from realtime.schema import Str, validate
from realtime.wire import scenarios as wire
from services.container import Services
from services.scenarios import UPLOADED

from .http import ApiError, JsonHandler

__all__ = ["ScenariosHandler", "ScenarioPreviewHandler", "ScenarioStartHandler", "ScenarioSkipHandler",
           "ScenarioStopHandler", "CurrentScenarioHandler", "SCENARIO_ROUTES"]

NAME = r"([A-Za-z0-9][A-Za-z0-9_.-]{0,63})"  # a scenario's name: its file's name without .toml


class ScenarioHandler(JsonHandler):
    """A scenario call: teachers and admins only (401 without a token, 403 for a student), where the engine runs."""

    engine_bound = True

    def prepare_here(self) -> None:
        self.require_role(*CLASS_ROLES)

    @property
    def scenarios(self):
        return self.services.scenarios

    def scenario_text(self, body: dict) -> str | None:
        """The body's `toml`, a scenario of the teacher's own (as written: not trimmed, so lines keep their numbers)."""
        if body.get("toml") is None:
            return None
        return self.field(body, "toml", str)

    def write_current(self, current) -> None:
        self.write_json(wire.current(current.name, current.run, current.market_ms, uploaded=current.name == UPLOADED))

    def write_timeline(self, name: str, status: int = 200) -> None:
        scenario = self.scenarios.scenario(name)
        self.write_json({"scenario": wire.summary(name, scenario, uploaded=name == UPLOADED),
                         "timeline": wire.timeline(scenario, self.scenarios.timeline(name))}, status)


def refused(error: ScenarioError) -> ApiError:
    """A scenario that cannot be played: 400, the domain's message and every problem in `problems`."""
    return ApiError(400, error.message, code=error.code,
                    details={"problems": [wire.problem(problem) for problem in error.problems]})


class ScenariosHandler(ScenarioHandler):
    """GET /api/scenarios: the shipped scenarios and the upload. POST /api/scenarios {toml}: upload one (201)."""

    def get(self):
        current = self.scenarios.current()
        self.write_json({"scenarios": [wire.summary(name, scenario, uploaded=name == UPLOADED)
                                       for name, scenario in self.scenarios.catalogue()],
                         "current": current.name})

    def post(self):
        text = self.scenario_text(self.json_body())
        if text is None:
            raise ApiError(400, "toml is required: the text of a scenario (docs/scenarios.md)", code="BAD_REQUEST")
        try:
            self.scenarios.upload(text)
        except ScenarioError as error:
            raise refused(error) from None
        self.write_timeline(UPLOADED, 201)


class ScenarioPreviewHandler(ScenarioHandler):
    """GET /api/scenarios/<name>/preview: the scenario and its events in time order (404 for an unknown name)."""

    def get(self, name):
        self.write_timeline(name)


class ScenarioStartHandler(ScenarioHandler):
    """POST /api/scenarios/start {name} or {toml}: play a scenario (409 while another one runs)."""

    def post(self):
        body = self.json_body()
        text = self.scenario_text(body)
        try:
            name = validate(body, {"name": Str(max_len=64)})["name"]
        except ProtocolError as error:
            raise ApiError(400, error.message, code=error.code) from None
        try:
            current = self.scenarios.start(name, text=text)
        except ScenarioError as error:
            raise refused(error) from None
        self.write_current(current)


class ScenarioSkipHandler(ScenarioHandler):
    """POST /api/scenarios/skip: the next event happens now (409 when no scenario runs or none is left)."""

    def post(self):
        self.write_current(self.scenarios.skip())


class ScenarioStopHandler(ScenarioHandler):
    """POST /api/scenarios/stop: end the scenario; its moves stop where they are (409 when there is none)."""

    def post(self):
        self.write_current(self.scenarios.stop())


class CurrentScenarioHandler(ScenarioHandler):
    """GET /api/scenarios/current: the scenario being played, its timeline and next event, or null."""

    def get(self):
        self.write_current(self.scenarios.current())


def SCENARIO_ROUTES(services: Services) -> list:
    kwargs = dict(services=services)
    return [(r"/api/scenarios", ScenariosHandler, kwargs),
            (r"/api/scenarios/current", CurrentScenarioHandler, kwargs),
            (r"/api/scenarios/start", ScenarioStartHandler, kwargs),
            (r"/api/scenarios/skip", ScenarioSkipHandler, kwargs),
            (r"/api/scenarios/stop", ScenarioStopHandler, kwargs),
            (rf"/api/scenarios/{NAME}/preview", ScenarioPreviewHandler, kwargs)]
