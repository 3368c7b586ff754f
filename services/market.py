"""The running market: drives the pure simulator from the market clock and publishes what happened."""

import logging
from dataclasses import dataclass

from domain.errors import BadRequest
from domain.market import market_overview
from domain.trading import MarketState
from realtime.wire import market as wire_market

__all__ = ["MarketService", "MarketTick", "TICKS", "STATUS"]

log = logging.getLogger(__name__)

TICKS = "market.ticks"    # message: MarketTick
STATUS = "market.status"  # message: MARKET_STATUS data dict

MAX_SPEED = 10_000.0


@dataclass(frozen=True, slots=True)
class MarketTick:
    """What one tick published: the market version, the quotes that changed (immutable), and the day."""

    version: int
    quotes: tuple
    day_rolled: bool
    day_index: int
    market_ms: int


class MarketService:
    """Owns the live market: its clock (speed, pause), its status, and publishing each tick on the broker."""

    def __init__(self, simulator, market_clock, wall_clock, broker):
        self.simulator = simulator
        self.clock = market_clock
        self._wall = wall_clock
        self._broker = broker
        self._announced_status = self.status

    def tick(self):
        """Advance the simulator to the market clock's time; publishes a MarketTick when anything changed."""
        if self.clock.paused:
            return None
        market_ms = int(self.clock.now() * 1000)
        result = self.simulator.tick(market_ms, self._wall.now_ms())
        if self.status != self._announced_status:  # exchange hours: the session opened or closed
            self._announce({"action": "OPEN" if self.status is MarketState.OPEN else "CLOSE"})
        if not (result.changed or result.day_rolled):
            return None
        quote = self.simulator.quote
        tick = MarketTick(result.version, tuple(quote(symbol) for symbol in result.changed), result.day_rolled,
                          result.day_index, market_ms)
        self._broker.publish(TICKS, tick)
        return tick

    @property
    def status(self) -> MarketState:
        if self.clock.paused:
            return MarketState.PAUSED
        return MarketState.OPEN if self.simulator.is_open(int(self.clock.now() * 1000)) else MarketState.CLOSED

    def status_data(self, event: dict | None = None) -> dict:
        data = {"status": self.status, "speed": self.clock.speed, "marketTime": int(self.clock.now() * 1000)}
        if event is not None:
            data["event"] = event
        return data

    def overview(self) -> dict:
        """MARKET_OVERVIEW data, with the market's speed and clock so a new client knows them at once."""
        return wire_market.overview(market_overview(self.simulator.quotes(), self.simulator.indices()),
                                    status=self.status, speed=self.clock.speed,
                                    market_time=int(self.clock.now() * 1000))

    def _announce(self, event: dict) -> dict:
        data = self.status_data(event)
        self._announced_status = data["status"]
        log.info("market %s", event.get("action"), extra={"event": event})
        self._broker.publish(STATUS, data)
        return data

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
        if not -90 <= percent <= 100 or percent == 0:
            raise BadRequest("percent must be non-zero, between -90 and 100")
        affected = self.simulator.shock(percent, symbols=symbols, sector=sector)
        self.tick()
        return self._announce({"action": "SHOCK", "percent": percent, "symbols": affected})
