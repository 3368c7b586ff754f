"""Portfolio pushes: who watches which portfolio, what they are sent, and the recorded value history."""

import logging
import statistics
from dataclasses import dataclass

from domain import analytics, valuation
from domain.market import TRADING_DAYS_PER_YEAR, index_levels
from realtime.protocol import encode_data
from realtime.wire import portfolio as wire

__all__ = ["PortfolioFeed", "UPDATE_TYPES", "DEFAULT_VALUE_INTERVAL_MS", "POSITION_INTERVAL_MS"]

log = logging.getLogger(__name__)

UPDATE_TYPES = ("ALL", "VALUE", "POSITIONS")
DEFAULT_VALUE_INTERVAL_MS = 5_000
POSITION_INTERVAL_MS = 2_000
MIN_INTERVAL_MS = 500
INDEX_SERIES = "SQX"  # the market index recorded beside the portfolios, for beta


@dataclass(eq=False, slots=True)
class _Watch:
    """One connection watching one portfolio."""

    conn: object
    portfolio_id: str
    update_type: str
    value_interval_ms: int
    value_due_ms: int
    positions_due_ms: int


class PortfolioFeed:
    """Owns portfolio pushes: PORTFOLIO_UPDATE (value) and POSITION_UPDATE (positions) to each watcher.

    Views are computed and serialized once per portfolio per push and shared by all its watchers.
    A fill (`changed`) pushes both at once; otherwise values go every `updateInterval` (default 5 s)
    and positions every 2 s.
    """

    def __init__(self, *, trading, market, storage, clock, value_sample_s: float = 10.0):
        self._trading, self._market, self._storage, self._clock = trading, market, storage, clock
        self.value_sample_s = value_sample_s
        self._watches: dict[str, dict[object, _Watch]] = {}
        self._sectors = {spec.symbol: spec.sector for spec in market.simulator.specs()}

    # subscriptions ------------------------------------------------------------
    def subscribe(self, conn, portfolio_id: str, update_type: str, value_interval_ms: int) -> int:
        interval = max(MIN_INTERVAL_MS, value_interval_ms)
        now = self._clock.now_ms()
        self._watches.setdefault(portfolio_id, {})[conn] = _Watch(
            conn, portfolio_id, update_type, interval, now + interval, now + POSITION_INTERVAL_MS)
        return interval

    def unsubscribe(self, conn, portfolio_id: str) -> bool:
        watchers = self._watches.get(portfolio_id, {})
        found = watchers.pop(conn, None) is not None
        if not watchers:
            self._watches.pop(portfolio_id, None)
        return found

    def remove(self, conn) -> None:
        for portfolio_id in list(self._watches):
            self.unsubscribe(conn, portfolio_id)

    # views ----------------------------------------------------------------------
    def snapshot(self, portfolio_id: str) -> valuation.PortfolioView:
        return valuation.portfolio_view(self._trading.ledger(portfolio_id), self._market.simulator.quotes(),
                                        self._sectors)

    def summary(self, portfolio_id: str) -> valuation.PortfolioSummary:
        return valuation.portfolio_summary(self._trading.ledger(portfolio_id), self._market.simulator.quotes(),
                                           self._sectors)

    def positions(self, portfolio_id: str, symbols=None) -> list[valuation.PositionView]:
        view = list(self.snapshot(portfolio_id).positions)
        return view if symbols is None else [p for p in view if p.symbol in symbols]

    def sector_of(self, symbol: str) -> str:
        return self._sectors.get(symbol, "Unknown")

    # pushes ---------------------------------------------------------------------
    def changed(self, portfolio_ids) -> None:
        """A fill (or a level change) touched these portfolios: push values and positions now."""
        now = self._clock.now_ms()
        for portfolio_id in portfolio_ids:
            watchers = list(self._watches.get(portfolio_id, {}).values())
            if watchers:
                self._push(portfolio_id, watchers, values=True, positions=True, now=now)

    def run_due(self, now_ms: int) -> None:
        for portfolio_id, watchers in list(self._watches.items()):
            value_due = [w for w in watchers.values() if w.update_type != "POSITIONS" and w.value_due_ms <= now_ms]
            position_due = [w for w in watchers.values()
                            if w.update_type != "VALUE" and w.positions_due_ms <= now_ms]
            if value_due or position_due:
                due = {w for w in value_due} | {w for w in position_due}
                self._push(portfolio_id, list(due), values=set(value_due), positions=set(position_due), now=now_ms)

    def _push(self, portfolio_id: str, watchers, *, values, positions, now: int) -> None:
        try:
            view = self.snapshot(portfolio_id)
        except Exception:
            log.exception("cannot value portfolio %s", portfolio_id)
            return
        value_json = positions_json = None
        for watch in watchers:
            wants_values = watch.update_type != "POSITIONS" and (values is True or watch in values)
            wants_positions = watch.update_type != "VALUE" and (positions is True or watch in positions)
            if wants_values:
                if value_json is None:
                    value_json = encode_data(wire.portfolio_values(view))
                watch.conn.send_json("PORTFOLIO_UPDATE", value_json)
                watch.value_due_ms = now + watch.value_interval_ms
            if wants_positions:
                if positions_json is None:
                    positions_json = encode_data(wire.position_update(portfolio_id, view.positions))
                watch.conn.send_json("POSITION_UPDATE", positions_json)
                watch.positions_due_ms = now + POSITION_INTERVAL_MS

    def analytics(self, portfolio_id: str) -> analytics.PortfolioAnalytics:
        """PORTFOLIO_ANALYTICS from the recorded value history (market time), the index series and the fills."""
        simulator = self._market.simulator
        history = [(p.market_time_ms, p.value_cents) for p in self._storage.values_of(portfolio_id)]
        index = [(p.market_time_ms, p.value_cents) for p in self._storage.values_of(INDEX_SERIES)]
        spacing = [b[0] - a[0] for a, b in zip(history, history[1:], strict=False) if b[0] > a[0]]
        sample_ms = statistics.median(spacing) if spacing else self._value_sample_market_ms()
        periods_per_year = TRADING_DAYS_PER_YEAR * simulator.day_length_ms / max(sample_ms, 1)
        return analytics.portfolio_analytics(
            ledger=self._trading.ledger(portfolio_id), quotes=simulator.quotes(), sectors=self._sectors,
            value_history=history, index_history=index, fills=self._storage.fills_for(portfolio_id, limit=10_000),
            periods_per_year=periods_per_year, day_start_ms=simulator.day_start_ms)

    def _value_sample_market_ms(self) -> float:
        return self.value_sample_s * 1000 * self._market.clock.speed

    # value history --------------------------------------------------------------
    def record_values(self) -> list[tuple]:
        """Store every portfolio's value now (and the index), the series analytics use; returns the rows."""
        quotes = self._market.simulator.quotes()
        now, market_ms = self._clock.now_ms(), int(self._market.clock.now() * 1000)
        rows = [(ledger.portfolio_id, now, market_ms, valuation.value_cents(ledger, quotes), ledger.cash_cents)
                for ledger in self._trading.engine.portfolios()]
        index = next(i for i in index_levels(quotes, self._market.simulator.indices()) if i.symbol == INDEX_SERIES)
        rows.append((INDEX_SERIES, now, market_ms, round(round(index.value, 2) * 100), 0))  # the published value
        self._storage.record_values(rows)
        return rows
