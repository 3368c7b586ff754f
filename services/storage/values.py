"""Value history: per-series samples of portfolio value and cash over time, pruned to a retention window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from services.storage.database import Database, _encodable

__all__ = ["VALUES_RETENTION_MS", "ValuePoint", "ValueStore"]

# Value history older than this (wall clock, counted back from the newest sample of the same series) is
# deleted as new samples arrive: at one sample a minute that is about 10 000 rows per portfolio.
VALUES_RETENTION_MS = 7 * 24 * 3600 * 1000


class ValuePoint(NamedTuple):
    """One sample of a portfolio's value history (wall and market time in epoch ms, money in cents)."""

    time_ms: int
    market_time_ms: int
    value_cents: int
    cash_cents: int


class ValueStore(Database):
    """Owns the portfolio_values table: samples in, one series' samples out, old ones pruned as new ones arrive."""

    values_retention_ms: int = VALUES_RETENTION_MS

    def record_values(self, rows: Sequence[tuple[str, int, int, int, int]]) -> None:
        """Store value samples (series id, time_ms, market_time_ms, value_cents, cash_cents); prunes old ones.

        A sample at an already stored (series, time_ms) replaces it. Per series, samples older
        than `values_retention_ms` before its newest sample in `rows` are deleted.
        """
        params = [(str(series), time_ms, market_ms, value, cash) for series, time_ms, market_ms, value, cash in rows]
        newest: dict[str, int] = {}
        for series, time_ms, *_ in params:
            newest[series] = max(time_ms, newest.get(series, time_ms))
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO portfolio_values (portfolio_id, time_ms, market_time_ms, value_cents, cash_cents)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (portfolio_id, time_ms) DO UPDATE SET"
                " market_time_ms = excluded.market_time_ms, value_cents = excluded.value_cents,"
                " cash_cents = excluded.cash_cents",
                params,
            )
            db.executemany(
                "DELETE FROM portfolio_values WHERE portfolio_id = ? AND time_ms < ?",
                [(series, time_ms - self.values_retention_ms) for series, time_ms in newest.items()],
            )

    def values_of(self, portfolio_id: str, since_ms: int | None = None) -> list[ValuePoint]:
        """A series' stored samples (from `since_ms` on, inclusive, if given), oldest first."""
        if not _encodable(str(portfolio_id)):
            return []
        rows = self._db.execute(
            "SELECT time_ms, market_time_ms, value_cents, cash_cents FROM portfolio_values"
            " WHERE portfolio_id = ? AND time_ms >= ? ORDER BY time_ms",
            (str(portfolio_id), -(2**63) if since_ms is None else since_ms),
        )
        return [ValuePoint(*row) for row in rows]
