"""The running market: drives the pure simulator from the market clock, answers what others read of it, and
publishes what changed (quotes on the broker, status changes on the hub's market channel)."""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.bars import Bar
from domain.errors import BadRequest
from domain.market import (
    FactorWindow,
    MarketSimulator,
    Quote,
    SymbolAnalytics,
    index_levels,
    market_overview,
    symbol_analytics,
)
from domain.scenarios import Sessions
from domain.trading import MarketState
from domain.universe import SymbolSpec
from realtime import channels
from realtime.broker import Broker
from realtime.fanout import QUOTES, encode_quotes
from realtime.hub import Publisher
from realtime.protocol import encode_data
from realtime.wire import market as wire

__all__ = ["MarketService", "MarketTick", "MAX_SPEED"]

log = logging.getLogger(__name__)

MAX_SPEED = 10_000.0


@dataclass(frozen=True, slots=True)
class MarketTick:
    """What one tick changed: the market version, the quotes that changed (immutable), and the day."""

    version: int
    quotes: tuple[Quote, ...]
    day_rolled: bool
    day_index: int
    market_ms: int


class MarketService:
    """Owns the live market: its clock (speed, pause), its status, its read side, and publishing what changed.

    The simulator stays private: everything else asks this service for quotes, bars, analytics and return
    series, so the market may one day run in another process than the ones reading it.
    """

    def __init__(self, simulator: MarketSimulator, market_clock, wall_clock, *, broker: Broker, hub: Publisher):
        self._simulator = simulator
        self.clock = market_clock
        self._wall = wall_clock
        self._broker, self._hub = broker, hub
        self._sectors = {spec.symbol: spec.sector for spec in simulator.specs()}
        self._announced_status = self.status
        self._overview: tuple[tuple, dict] | None = None  # (what it was built from, the data)

    # driving ------------------------------------------------------------------
    def tick(self) -> MarketTick | None:
        """Advance the simulator to the market clock's time; publishes and returns what changed, if anything."""
        if self.clock.paused:
            return None
        market_ms, wall_ms = self.market_ms, self._wall.now_ms()
        result = self._simulator.tick(market_ms, wall_ms)
        if self.status != self._announced_status:  # exchange hours: the session opened or closed
            self._announce({"action": "OPEN" if self.status is MarketState.OPEN else "CLOSE"})
        if not (result.changed or result.day_rolled):
            return None
        quote = self._simulator.quote
        tick = MarketTick(result.version, tuple(quote(symbol) for symbol in result.changed), result.day_rolled,
                          result.day_index, market_ms)
        self._broker.publish(QUOTES, encode_quotes(tick.version, tick.quotes, wall_ms))
        return tick

    def set_factor_windows(self, windows: Iterable[FactorWindow]) -> None:
        """A scenario's moves and volatility changes, which the simulator's ticks carry from the next one on (see
        MarketSimulator.set_factor_windows); () ends them."""
        self._simulator.set_factor_windows(windows)

    def publish_quotes(self) -> None:
        """Every current quote on the broker: what a fan-out that starts now learns prices from."""
        self._broker.publish(QUOTES, encode_quotes(self._simulator.version, self._simulator.quotes().values()))

    def publish_overview(self) -> None:
        self._hub.publish(channels.MARKET, "MARKET_OVERVIEW", encode_data(self.overview()))

    # controls -------------------------------------------------------------------
    def pause(self) -> dict:
        self.clock.pause()
        return self._announce({"action": "PAUSE"})

    def resume(self) -> dict:
        self.clock.resume()
        return self._announce({"action": "RESUME"})

    def set_speed(self, speed: float) -> dict:
        if not 0 < speed <= MAX_SPEED:
            raise BadRequest(f"speed must be above 0 and at most {MAX_SPEED:g}")
        self.clock.set_speed(speed)
        return self._announce({"action": "SPEED", "speed": speed})

    def shock(self, percent: float, symbols=(), sector: str | None = None) -> dict:
        """Move symbols (or a sector) at once; the next tick carries the new prices to quotes and orders."""
        if not -90 <= percent <= 100 or percent == 0:
            raise BadRequest("percent must be non-zero, between -90 and 100")
        affected = self._simulator.shock(percent, symbols=symbols, sector=sector)
        return self._announce({"action": "SHOCK", "percent": percent, "symbols": affected})

    def _announce(self, event: dict) -> dict:
        """MARKET_STATUS to every market-data connection; returns its data (the market-control reply)."""
        data = self.status_data(event)
        self._announced_status = data["status"]
        log.info("market %s", event.get("action"), extra={"event": event})
        self._hub.publish(channels.MARKET, "MARKET_STATUS", encode_data(data))
        return data

    # reading ------------------------------------------------------------------------
    @property
    def status(self) -> MarketState:
        if self.clock.paused:
            return MarketState.PAUSED
        return MarketState.OPEN if self._simulator.is_open(self.market_ms) else MarketState.CLOSED

    @property
    def speed(self) -> float:
        """Simulated seconds per wall-clock second."""
        return self.clock.speed

    @property
    def market_ms(self) -> int:
        """The market clock now, in epoch milliseconds."""
        return int(self.clock.now() * 1000)

    @property
    def version(self) -> int:
        """How many ticks have changed prices (the version of the latest quotes)."""
        return self._simulator.version

    @property
    def day_index(self) -> int:
        return self._simulator.day_index

    @property
    def day_start_ms(self) -> int:
        return self._simulator.day_start_ms

    @property
    def day_length_ms(self) -> int:
        return self._simulator.day_length_ms

    def sessions(self) -> Sessions:
        """The market's trading sessions (the current day's open, the day's length, open to open): a scenario's
        clock."""
        return Sessions(self._simulator.day_start_ms, self._simulator.day_length_ms, self._simulator.cycle_ms)

    def status_data(self, event: dict | None = None) -> dict:
        return wire.status(self.status, speed=self.clock.speed, market_time=self.market_ms, event=event)

    def overview(self) -> dict:
        """MARKET_OVERVIEW data, with the market's speed and clock so a new client knows them at once.

        Built once per tick (every new market-data connection asks for it) and stamped with the clock each time.
        """
        status, market_ms = self.status, self.market_ms
        basis = (self._simulator.version, self._simulator.day_index, status, self.clock.speed)
        if self._overview is None or self._overview[0] != basis:
            data = wire.overview(market_overview(self._simulator.quotes(), self._simulator.indices()),
                                 status=status, speed=self.clock.speed, market_time=market_ms)
            self._overview = (basis, data)
        return {**self._overview[1], "marketTime": market_ms}

    def has(self, symbol: str) -> bool:
        return self._simulator.has(symbol)

    def quote(self, symbol: str) -> Quote:
        """The latest quote (NotFound for an unknown symbol)."""
        return self._simulator.quote(symbol)

    def quotes(self) -> Mapping[str, Quote]:
        return self._simulator.quotes()

    def specs(self) -> list[SymbolSpec]:
        return self._simulator.specs()

    def sectors(self) -> dict[str, str]:
        """Each symbol's sector."""
        return dict(self._sectors)

    def history(self, symbol: str, interval: str, limit: int) -> list[Bar]:
        return self._simulator.history(symbol, interval, limit)

    def analytics(self, symbol: str, interval: str) -> SymbolAnalytics:
        return symbol_analytics(self._simulator, symbol, interval)

    def index_value(self, index_symbol: str) -> float:
        """An index's level now, in index points."""
        return next(level.value for level in index_levels(self._simulator.quotes(), self._simulator.indices())
                    if level.symbol == index_symbol)

    def daily_returns(self, symbol: str, lookback: int) -> list[float]:
        return self._simulator.daily_returns(symbol, lookback)

    def index_daily_returns(self, index_symbol: str, lookback: int) -> list[float]:
        return self._simulator.index_daily_returns(index_symbol, lookback)
