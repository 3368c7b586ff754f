"""What a standby needs to take the market over where the last leader left it: the market clock and every price.

The leader saves it to Redis every second (`EngineLease.save_market`, refused once the lease is someone else's).
The new leader builds its simulator with these prices as the current ones, so prices continue instead of
starting again from the listing prices; the market clock continues from the saved market time plus the wall time
that has passed (unless the market was paused); the version continues, because every node's quote fan-out knows
quotes by it. What is not carried over: the bars before the takeover are generated afresh (ending at these
prices), and the day's open, high and low start again from them.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace

import ujson

from domain.clock import Clock, MarketClock
from domain.universe import SymbolSpec

__all__ = ["MarketResume"]


@dataclass(frozen=True, slots=True)
class MarketResume:
    market_ms: int
    wall_ms: int
    speed: float
    paused: bool
    version: int
    prices: dict[str, int]  # symbol -> cents

    @classmethod
    def of(cls, market, wall_ms: int) -> "MarketResume":
        """The state of a running `services.market.MarketService`."""
        return cls(market.market_ms, wall_ms, market.speed, market.clock.paused, market.version,
                   {symbol: quote.price for symbol, quote in market.quotes().items()})

    def to_json(self) -> bytes:
        return ujson.dumps({"marketMs": self.market_ms, "wallMs": self.wall_ms, "speed": self.speed,
                            "paused": self.paused, "version": self.version, "prices": self.prices}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "MarketResume":
        state = ujson.loads(data)
        return cls(int(state["marketMs"]), int(state["wallMs"]), float(state["speed"]), bool(state["paused"]),
                   int(state["version"]), {str(k): int(v) for k, v in state["prices"].items()})

    def market_clock(self, wall: Clock) -> MarketClock:
        """The market clock going on from the saved one: the market time that passed meanwhile has passed."""
        elapsed_ms = 0 if self.paused else max(0, wall.now_ms() - self.wall_ms) * self.speed
        clock = MarketClock(wall, start=(self.market_ms + elapsed_ms) / 1000, speed=self.speed)
        if self.paused:
            clock.pause()
        return clock

    def universe(self, specs: Iterable[SymbolSpec]) -> list[SymbolSpec]:
        """`specs` with the saved prices as their current prices (a symbol not saved keeps its listing price)."""
        return [replace(spec, price_cents=self.prices.get(spec.symbol, spec.price_cents)) for spec in specs]
