"""What the simulator publishes: one symbol's quote at one moment, and what one tick changed."""

from dataclasses import dataclass

__all__ = ["Quote", "TickResult"]


@dataclass(slots=True)
class Quote:
    """One symbol's quote at one moment: money in integer cents, sizes and volume in shares.

    `open`, `high`, `low`, `previous_close` and `volume` belong to the current simulated day.
    The simulator publishes a new Quote whenever anything changes and never mutates a published one,
    so a Quote can be held and compared by `version` (the tick number that produced it).
    """

    symbol: str
    name: str
    sector: str
    price: int
    bid: int
    ask: int
    bid_size: int
    ask_size: int
    open: int
    high: int
    low: int
    previous_close: int
    volume: int
    time: int  # wall-clock epoch ms when the quote was produced
    market_time: int  # market-clock epoch ms
    version: int

    @property
    def change(self) -> int:
        """Price minus the previous day's close, in cents."""
        return self.price - self.previous_close


@dataclass(frozen=True)
class TickResult:
    """What one `tick` did: the new version, the symbols whose quotes changed, and the day it ended in."""

    version: int
    changed: tuple[str, ...]
    day_rolled: bool
    day_index: int
    is_open: bool
