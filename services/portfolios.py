"""Portfolio views and pushes: snapshots, analytics, the leaderboard, value history, and the portfolio channels."""

import logging
import statistics
from collections.abc import Iterable

from domain import analytics, valuation
from domain.market import TRADING_DAYS_PER_YEAR
from domain.trading import Fill
from domain.users import User
from realtime import channels
from realtime.hub import Publisher
from realtime.protocol import encode_data
from realtime.wire import portfolio as wire

from .portfolio_book import PortfolioBook

__all__ = ["PortfolioFeed", "UPDATE_TYPES", "DEFAULT_VALUE_INTERVAL_MS", "POSITION_INTERVAL_MS"]

log = logging.getLogger(__name__)

UPDATE_TYPES = ("ALL", "VALUE", "POSITIONS")
DEFAULT_VALUE_INTERVAL_MS = 5_000
POSITION_INTERVAL_MS = 2_000
MIN_INTERVAL_MS = 500
INDEX_SERIES = "SQX"  # the market index recorded beside the portfolios, for beta
FILLS_FOR_ANALYTICS = 10_000
LEADERBOARD_TTL_S = 2.0  # the leaderboard is ranked at most this often, however many ask


class PortfolioFeed:
    """Owns what is read and pushed about portfolios: views, analytics, the leaderboard, the value history, and
    PORTFOLIO_UPDATE / POSITION_UPDATE on each portfolio's channels.

    `portfolio:<id>:value:<ms>` carries PORTFOLIO_UPDATE every <ms>, and `portfolio:<id>:positions` carries
    POSITION_UPDATE every 2 s; both also go at once after a fill or a level change (`changed`). A view is
    computed once per portfolio per push and serialized once for all its channels and their connections.
    """

    def __init__(self, *, book: PortfolioBook, market, storage, clock, hub: Publisher,
                 value_sample_s: float = 10.0):
        self._book, self._market, self._storage, self._clock, self._hub = book, market, storage, clock, hub
        self.value_sample_s = value_sample_s
        self._sectors = market.sectors()
        self._due: dict[str, int] = {}  # channel -> when it is pushed next
        self._standings: tuple[float, list[valuation.Standing]] | None = None  # (when ranked, the ranking)

    def subscription(self, user: User, portfolio_id: str, update_type: str,
                     update_interval_ms: int | None) -> tuple[list[str], int]:
        """The channels a SUBSCRIBE_PORTFOLIO of a portfolio `user` may read joins, and the value interval it gets
        (at least 500 ms)."""
        self._book.readable(user, portfolio_id)
        interval = max(MIN_INTERVAL_MS, DEFAULT_VALUE_INTERVAL_MS if update_interval_ms is None else update_interval_ms)
        names = []
        if update_type != "POSITIONS":
            names.append(channels.portfolio_values(portfolio_id, interval))
        if update_type != "VALUE":
            names.append(channels.portfolio_positions(portfolio_id))
        return names, interval

    # views ----------------------------------------------------------------------
    def snapshot(self, portfolio_id: str) -> valuation.PortfolioView:
        return valuation.portfolio_view(self._book.ledger(portfolio_id), self._market.quotes(), self._sectors)

    def view(self, user: User, portfolio_id: str) -> valuation.PortfolioView:
        """PORTFOLIO_SNAPSHOT of a portfolio `user` may read."""
        self._book.readable(user, portfolio_id)
        return self.snapshot(portfolio_id)

    def create(self, user: User, name: str) -> valuation.PortfolioView:
        """Another portfolio for `user`, with the starting cash (LimitExceeded past the per-user limit)."""
        return self.snapshot(self._book.create(user, name).portfolio_id)

    def summaries(self, user_id: str) -> list[valuation.PortfolioSummary]:
        """PORTFOLIO_LIST: the user's own portfolios, oldest first."""
        quotes = self._market.quotes()
        return [valuation.portfolio_summary(self._book.ledger(pid), quotes, self._sectors)
                for pid in self._book.ids_of(user_id)]

    def position(self, portfolio_id: str, symbol: str) -> valuation.PositionView | None:
        """The portfolio's open position in `symbol`, None when it holds none; NotFound for an unknown symbol."""
        self._market.quote(symbol)
        return next((p for p in self.snapshot(portfolio_id).positions if p.symbol == symbol), None)

    def trades(self, user: User, portfolio_id: str, symbol: str, limit: int) -> list[Fill]:
        """POSITION_DETAILS' trades: the position's fills in a portfolio `user` may read, last executed first."""
        self._book.readable(user, portfolio_id)
        return self._storage.fills_for(portfolio_id, symbol, limit=limit)

    def sector_of(self, symbol: str) -> str:
        return self._sectors.get(symbol, valuation.UNKNOWN_SECTOR)

    def analytics(self, user: User, portfolio_id: str) -> analytics.PortfolioAnalytics:
        """PORTFOLIO_ANALYTICS of a portfolio `user` may read: from the recorded value history (market time), the
        index series and the fills."""
        self._book.readable(user, portfolio_id)
        history = [(p.market_time_ms, p.value_cents) for p in self._storage.values_of(portfolio_id)]
        index = [(p.market_time_ms, p.value_cents) for p in self._storage.values_of(INDEX_SERIES)]
        spacing = [b[0] - a[0] for a, b in zip(history, history[1:], strict=False) if b[0] > a[0]]
        sample_ms = statistics.median(spacing) if spacing else self.value_sample_s * 1000 * self._market.speed
        periods_per_year = TRADING_DAYS_PER_YEAR * self._market.day_length_ms / max(sample_ms, 1)
        return analytics.portfolio_analytics(
            ledger=self._book.ledger(portfolio_id), quotes=self._market.quotes(), sectors=self._sectors,
            value_history=history, index_history=index,
            fills=self._storage.fills_for(portfolio_id, limit=FILLS_FOR_ANALYTICS),
            periods_per_year=periods_per_year, day_start_ms=self._market.day_start_ms)

    def leaderboard(self) -> list[valuation.Standing]:
        """Every student's main portfolio, best total return first, ties by who joined first.

        Ranked at most once every LEADERBOARD_TTL_S however many ask: it values every student's portfolio.
        """
        now = self._clock.now()
        if self._standings is None or now - self._standings[0] >= LEADERBOARD_TTL_S:
            quotes = self._market.quotes()
            self._standings = now, valuation.rank_standings(
                (user, valuation.portfolio_view(self._book.ledger(pid), quotes, self._sectors, include_positions=False))
                for user, pid in self._book.main_portfolios())
        return self._standings[1]

    # pushes ---------------------------------------------------------------------
    def changed(self, portfolio_ids: Iterable[str]) -> None:
        """A fill or a level change touched these portfolios: push values and positions now."""
        now = self._clock.now_ms()
        for portfolio_id in portfolio_ids:
            names = self._hub.channels(channels.portfolio_prefix(portfolio_id))
            if names:
                self._push(portfolio_id, names, now)

    def run_due(self, now_ms: int) -> None:
        """Push every portfolio channel whose interval has passed; a channel first seen now waits one interval."""
        due: dict[str, list[str]] = {}
        schedule = {}
        for name in self._hub.channels(channels.portfolio_prefix()):
            portfolio_id, interval = channels.read_portfolio(name)
            schedule[name] = self._due.get(name, now_ms + (interval or POSITION_INTERVAL_MS))
            if schedule[name] <= now_ms:
                due.setdefault(portfolio_id, []).append(name)
        self._due = schedule  # channels nobody holds any more are forgotten here
        for portfolio_id, names in due.items():
            self._push(portfolio_id, names, now_ms)

    def _push(self, portfolio_id: str, names: list[str], now: int) -> None:
        try:
            view = self.snapshot(portfolio_id)
        except Exception:
            log.exception("cannot value portfolio %s", portfolio_id)
            return
        values, positions = [], []
        for name in names:
            _, interval = channels.read_portfolio(name)
            (values if interval is not None else positions).append(name)
            self._due[name] = now + (interval or POSITION_INTERVAL_MS)
        if values:
            self._hub.publish(values, "PORTFOLIO_UPDATE", encode_data(wire.portfolio_values(view)))
        if positions:
            self._hub.publish(positions, "POSITION_UPDATE",
                              encode_data(wire.position_update(portfolio_id, view.positions)))

    # value history --------------------------------------------------------------
    def record_values(self) -> list[tuple]:
        """Store every portfolio's value now (and the index), the series analytics use; returns the rows."""
        quotes = self._market.quotes()
        now, market_ms = self._clock.now_ms(), self._market.market_ms
        rows = [(ledger.portfolio_id, now, market_ms, valuation.value_cents(ledger, quotes), ledger.cash_cents)
                for ledger in self._book.ledgers()]
        index_cents = round(round(self._market.index_value(INDEX_SERIES), 2) * 100)  # the value clients are sent
        rows.append((INDEX_SERIES, now, market_ms, index_cents, 0))
        self._storage.record_values(rows)
        return rows
