"""Scenarios being played: the scenarios a teacher may choose from, the one that runs, the news it publishes on the
market channel, and its state kept across restarts of the engine."""

import json
import logging
import os
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from domain.clock import Clock
from domain.errors import BadRequest, Conflict, DomainError, NotFound
from domain.scenarios import NewsItem, Scenario, ScenarioRun, Sessions, TimelineEntry, parse_scenario
from domain.universe import SymbolSpec
from realtime import channels
from realtime.hub import Publisher
from realtime.protocol import encode_data
from realtime.wire import market as wire
from services.news import NewsBoard
from services.storage import StorageError

__all__ = ["ScenarioService", "Current", "load_scenarios", "UPLOADED", "NEWS_KEPT", "STATE_NAME", "SAVE_EVERY_S",
           "StoredState", "FileState"]

log = logging.getLogger(__name__)

UPLOADED = "uploaded"  # the name of the scenario a teacher uploaded: one at a time, the latest upload
NEWS_KEPT = 10  # the latest news items, which a new market-data connection hears as NEWS_HISTORY
STATE_NAME = "scenario"  # its name in the database's app_state


class StoredState:
    """The scenario's state in the database: the engine that takes over, on any machine, plays on from it."""

    def __init__(self, storage, clock: Clock, name: str = STATE_NAME):
        self._storage, self._clock, self._name = storage, clock, name

    def read(self) -> str | None:
        return self._storage.load_state(self._name)

    def write(self, text: str) -> None:
        self._storage.save_state(self._name, text, now_ms=self._clock.now_ms())

    def __str__(self) -> str:
        return f"the database's app_state {self._name!r}"


class FileState:
    """The scenario's state as a file, replaced whole (a temporary file beside it, then renamed)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def read(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write(self, text: str) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.path)

    def __str__(self) -> str:
        return str(self.path)
SAVE_EVERY_S = 5.0  # between events, how often a running scenario's progress is written (wall-clock seconds)
_STATE_VERSION = 1


def load_scenarios(folder: Path, universe: Iterable[SymbolSpec]) -> dict[str, Scenario]:
    """The scenarios shipped in `folder` (every *.toml), by file name without `.toml`, in name order.

    A file that is not a valid scenario for `universe` is logged and left out: a broken file must not stop the
    server, and tests check that the shipped ones are valid.
    """
    specs = tuple(universe)
    shipped = {}
    for path in sorted(Path(folder).glob("*.toml")):
        if path.stem == UPLOADED:
            log.error("scenario file %s is left out: %r names the scenario a teacher uploads", path, UPLOADED)
            continue
        try:
            shipped[path.stem] = parse_scenario(path.read_text(encoding="utf-8"), specs)
        except (OSError, UnicodeDecodeError, DomainError) as error:
            log.error("scenario file %s is left out: %s", path, error)
    if not shipped:
        log.warning("no scenarios in %s: teachers can only upload their own", folder)
    return shipped


@dataclass(frozen=True, slots=True)
class Current:
    """The scenario being played as a teacher sees it: its name and run (None when there is none), and the market
    time now. The run is read at once: it changes with the next tick."""

    name: str | None
    run: ScenarioRun | None
    market_ms: int


class ScenarioService:
    """Owns the scenario being played (at most one, for the whole class), the scenarios to choose from (the shipped
    ones and one upload), the news published so far, and the file that keeps all of it across restarts.

    Driven from the tick (`services.exchange`): `due()` first, then the market ticks, so a scripted move starts with
    the news that explains it; the moves themselves are the simulator's factor windows, set here whenever the run's
    timetable changes (start, skip, stop, restore). Each news item is published once on the hub (NEWS on
    `channel`), serialized once, with its id as the publication's offset so that a connection that has just been
    sent NEWS_HISTORY drops it. Later, a contest gets a service of its own: `channel` is then the contest's.

    The state file (`scenario.json` in the data dir, replaced atomically) holds the run, the upload and the news;
    it is written after every change and, while a scenario runs, every few seconds. A restored run goes on from
    the trading time it had reached, as if the market had been paused while no engine ran.
    """

    def __init__(self, *, market, hub: Publisher, clock: Clock, shipped: Mapping[str, Scenario], state,
                 channel: str = channels.MARKET, board: NewsBoard | None = None):
        self._market, self._hub, self._clock, self._board = market, hub, clock, board
        self._shipped = dict(shipped)
        self._state = state  # StoredState (the database) or FileState: read() and write(text)
        self._channel = channel
        self._uploaded: tuple[str, Scenario] | None = None  # (its TOML text, the scenario)
        self._run: ScenarioRun | None = None
        self._name: str | None = None  # the run's scenario's name
        self._finished = False  # the run's last `due` said so: nothing more to do for it
        self._news: deque[dict] = deque(maxlen=NEWS_KEPT)  # NEWS data, oldest first
        self._last_news_id = 0
        self._history: tuple[int, str] | None = None  # (last news id, NEWS_HISTORY data JSON), built once
        self._saved_at = float("-inf")

    # choosing ---------------------------------------------------------------------------------------------------
    def catalogue(self) -> list[tuple[str, Scenario]]:
        """(name, scenario) of every scenario a teacher may start: the shipped ones, then the upload."""
        listed = list(self._shipped.items())
        if self._uploaded is not None:
            listed.append((UPLOADED, self._uploaded[1]))
        return listed

    def scenario(self, name: str) -> Scenario:
        """The scenario called `name` (NotFound when there is none)."""
        if name == UPLOADED and self._uploaded is not None:
            return self._uploaded[1]
        if name in self._shipped:
            return self._shipped[name]
        names = ", ".join(name for name, _ in self.catalogue()) or "none"
        raise NotFound(f"no scenario named {name!r}; scenarios: {names}")

    def timeline(self, name: str) -> tuple[TimelineEntry, ...]:
        """A scenario's events in time order: with market times when it is the one being played, else by day."""
        scenario = self.scenario(name)
        if self._run is not None and self._run.scenario == scenario:
            return self._run.preview()
        return ScenarioRun(scenario).preview()

    def upload(self, text: str) -> Scenario:
        """A teacher's own scenario (TOML), checked in full (ScenarioError lists every problem); it replaces the
        previous upload and is named `uploaded`. A run of the previous upload plays on with its own copy."""
        scenario = parse_scenario(text, self._market.specs())
        self._uploaded = (text, scenario)
        log.info("scenario uploaded: %r (%d events)", scenario.name, len(scenario.events))
        self._save()
        return scenario

    # playing ----------------------------------------------------------------------------------------------------
    def current(self) -> Current:
        return Current(self._name, self._run, self._market.market_ms)

    def start(self, name: str | None = None, *, text: str | None = None) -> Current:
        """Start the scenario `name`, or upload `text` and start that. One runs at a time: Conflict while another
        has events or effects to come (stop it first); a finished one is replaced."""
        if (name is None) == (text is None):
            raise BadRequest("give the name of a scenario or the text of one, not both")
        if self._run is not None and not self._finished:
            raise Conflict(f"the scenario {self._run.scenario.name!r} is running: stop it before starting another")
        if text is not None:
            self.upload(text)
            name = UPLOADED
        run = ScenarioRun(self.scenario(name))
        now = self._market.market_ms
        run.start(now, self._market.sessions())
        self._market.set_factor_windows(run.factor_windows())
        self._run, self._name, self._finished = run, name, False
        log.info("scenario %r started", run.scenario.name)
        self._play(run.due(now).news, saved=False)
        return self.current()

    def skip(self) -> Current:
        """Bring the next event to now (to the next open while the market is closed), and the later ones forward
        with it. Conflict when no scenario is running or every event has happened."""
        run = self._run
        if run is None or self._finished:
            raise Conflict("no scenario is running")
        now = self._market.market_ms
        event = run.skip_to_next_event(now)
        self._market.set_factor_windows(run.factor_windows())
        log.info("scenario %r skipped to event %d", run.scenario.name, event.number)
        self._play(run.due(now).news, saved=False)
        return self.current()

    def stop(self) -> Current:
        """End the scenario: its moves stop from the next tick on, where they are. Conflict when there is none."""
        if self._run is None:
            raise Conflict("no scenario is running")
        self._market.set_factor_windows(())
        log.info("scenario %r stopped", self._run.scenario.name)
        self._run, self._name, self._finished = None, None, False
        self._save()
        return self.current()

    def due(self) -> None:
        """The tick's first step: publish what the run says has happened by the market time now."""
        run = self._run
        if run is None or self._finished:
            return
        happened = run.due(self._market.market_ms)
        self._play(happened.news, saved=not (happened.events or happened.finished))

    def _play(self, news: tuple[NewsItem, ...], *, saved: bool) -> None:
        """Publish `news` and note whether the run is over; write the state unless `saved` (nothing worth writing
        happened) and the last write is recent."""
        for item in news:
            self._last_news_id += 1
            data = wire.news(item, news_id=self._last_news_id, scenario=self._run.scenario.name)
            self._news.append(data)
            self._history = None
            self._hub.publish(self._channel, "NEWS", encode_data(data), offset=self._last_news_id)
            log.info("scenario news: %s", item.headline)
        if news:
            self.announce_history()
        if not self._finished and self._run.finished:
            self._finished = True
            log.info("scenario %r finished", self._run.scenario.name)
            saved = False
        if not saved or self._clock.now() - self._saved_at >= SAVE_EVERY_S:
            self._save()

    # news -------------------------------------------------------------------------------------------------------
    def announce_history(self) -> None:
        """Tell every process the latest news (services.news.NewsBoard): on each item, and every few seconds."""
        history = self.news_history()
        if history is not None and self._board is not None:
            self._board.publish(*history)

    def news_history(self) -> tuple[int, str] | None:
        """(the latest news id, NEWS_HISTORY data JSON: the latest news items, oldest first), or None before any."""
        if not self._news:
            return None
        if self._history is None:
            self._history = (self._last_news_id, encode_data({"items": list(self._news)}))
        return self._history

    # the stored state -------------------------------------------------------------------------------------------
    def _save(self) -> None:
        """Store the run, the upload and the news, whole (never half written)."""
        self._saved_at = self._clock.now()
        state = {
            "version": _STATE_VERSION,
            "name": self._name,
            "run": None if self._run is None else self._run.to_dict(),
            "uploaded": None if self._uploaded is None else self._uploaded[0],
            "news": list(self._news),
            "lastNewsId": self._last_news_id,
        }
        try:
            self._state.write(json.dumps(state, ensure_ascii=False))
        except (OSError, StorageError) as error:  # the scenario plays on; only a restart would forget where it was
            log.error("cannot save the scenario's state in %s: %s", self._state, error)

    def restore(self) -> None:
        """Take up the stored run, upload and news, if there are any; a state that cannot be read is logged and left
        for the next save to replace."""
        try:
            text = self._state.read()
        except (OSError, StorageError) as error:
            log.error("cannot read the scenario's state in %s: %s", self._state, error)
            return
        if text is None:
            return
        try:
            self._restore(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError, DomainError) as error:
            log.error("the scenario's state in %s is not usable, so no scenario runs: %s", self._state, error)
            self._run, self._name, self._finished = None, None, False
            self._market.set_factor_windows(())

    def _restore(self, state: dict) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"unknown version {state.get('version')!r}")
        specs = self._market.specs()
        self._news = deque(state["news"], maxlen=NEWS_KEPT)
        self._last_news_id = int(state["lastNewsId"])
        if state["uploaded"] is not None:
            try:
                self._uploaded = (state["uploaded"], parse_scenario(state["uploaded"], specs))
            except DomainError as error:
                log.error("the uploaded scenario no longer fits this market and is dropped: %s", error)
        if state["run"] is None:
            return
        now = self._market.market_ms
        run = ScenarioRun.from_dict(resumed(state["run"], now, self._market.sessions()), specs)
        self._market.set_factor_windows(run.factor_windows())
        self._run, self._name = run, str(state["name"])
        self._finished = run.finished
        log.info("scenario %r resumed: %d of %d events have happened", run.scenario.name,
                 sum(entry.happened for entry in run.preview()), len(run.scenario.events))


def resumed(stored: dict, now_ms: int, sessions: Sessions) -> dict:
    """A stored run (`ScenarioRun.to_dict`) moved onto a market clock that is at `now_ms` with `sessions`.

    The engine that stored it is gone, and a new one's market clock and sessions start afresh: the run goes on from
    the trading time it had reached, as if the market had been paused in between, by shifting its market times.
    With closed periods (exchange hours) the shift is lengthened, by less than one open-to-open cycle, so that the
    run's sessions fall on the market's; a run started on another day length keeps its own.
    """
    shape = stored.get("sessions")
    if shape is None:  # never started
        return stored
    shift = now_ms - stored["clock_ms"]
    cycle = shape["cycle_ms"]
    if cycle != shape["day_length_ms"] and (cycle, shape["day_length_ms"]) == (sessions.cycle_ms,
                                                                               sessions.day_length_ms):
        shift += (sessions.open_ms - shape["open_ms"] - shift) % cycle
    return {**stored, "sessions": {**shape, "open_ms": shape["open_ms"] + shift},
            "day_one_ms": stored["day_one_ms"] + shift, "clock_ms": stored["clock_ms"] + shift,
            "started_at_ms": stored["started_at_ms"] + shift}
