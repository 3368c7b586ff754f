"""The exchange: one market tick and everything it causes, in the order one process must see it."""

import logging

__all__ = ["Exchange"]

log = logging.getLogger(__name__)


class Exchange:
    """Owns the order of a tick on the engine side, which no broker subscription order could promise:

    1. the scenario being played publishes the news of the events that have come (their moves are already in the
       market's factor windows, so they start with this tick's prices);
    2. the market moves and publishes its new quotes (for every node's fan-out);
    3. the order engine matches open orders against those prices; the fills are committed, then published;
    4. risk hears of the stop-loss and take-profit levels the tick reached, and of a new day;
    5. the signal models read the bars the tick closed.

    A teacher's shock is followed at once by a tick, as if the tick timer had fired.
    """

    def __init__(self, *, scenarios, market, trading, risk, signals):
        self._scenarios, self._market = scenarios, market
        self._trading, self._risk, self._signals = trading, risk, signals

    def tick(self) -> None:
        self._scenarios.due()
        tick = self._market.tick()
        if tick is None:
            return
        triggers = self._trading.match(tick)
        self._risk.on_triggers(triggers)
        self._risk.on_tick(tick)
        self._signals.on_tick(tick)

    def shock(self, percent: float, symbols=(), sector: str | None = None) -> dict:
        """A teacher's sudden move (MarketService.shock), then a tick; returns the MARKET_STATUS data."""
        status = self._market.shock(percent, symbols=symbols, sector=sector)
        self.tick()
        return status
