"""Risk limits and alerts as stored: each portfolio's limits object and the alerts sent, with their acknowledgement."""

from __future__ import annotations

from collections.abc import Sequence

import ujson

from realtime.protocol import encode_data
from services.storage.database import Database, _encodable, _key
from services.storage.trading import numbered_max

__all__ = ["RiskStore"]


class RiskStore(Database):
    """Owns the risk_limits and risk_alerts tables (wire objects kept as JSON, to send again as they were)."""

    def save_limits(self, portfolio_id: str, limits: dict, *, now_ms: int) -> None:
        """Store a portfolio's risk limits (the wire object)."""
        with self._transaction() as db:
            db.execute("INSERT INTO risk_limits (portfolio_id, limits, updated_at_ms) VALUES (?, ?, ?)"
                       " ON CONFLICT (portfolio_id) DO UPDATE SET limits = excluded.limits,"
                       " updated_at_ms = excluded.updated_at_ms", (_key(portfolio_id), encode_data(limits), now_ms))

    def all_limits(self) -> dict[str, dict]:
        """Every stored limits object by portfolio id."""
        return {str(pid): ujson.loads(text) for pid, text in
                self._db.execute("SELECT portfolio_id, limits FROM risk_limits")}

    def save_alerts(self, alerts: Sequence[tuple[str, str, int, dict]]) -> None:
        """Store alerts as (alert_id, portfolio_id, created_at_ms, wire payload)."""
        if not alerts:
            return
        with self._transaction() as db:
            db.executemany("INSERT INTO risk_alerts (alert_id, portfolio_id, created_at_ms, acknowledged, payload)"
                           " VALUES (?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO UPDATE SET"
                           " portfolio_id = excluded.portfolio_id, created_at_ms = excluded.created_at_ms,"
                           " acknowledged = excluded.acknowledged, payload = excluded.payload",
                           [(aid, _key(pid), at, int(bool(data.get("acknowledged"))), encode_data(data))
                            for aid, pid, at, data in alerts])

    def recent_alerts(self, portfolio_id: str, limit: int = 50) -> list[dict]:
        """The portfolio's latest alerts, newest first, with their acknowledged flag."""
        rows = self._db.execute("SELECT payload, acknowledged FROM risk_alerts WHERE portfolio_id = ?"
                                " ORDER BY created_at_ms DESC, alert_id DESC LIMIT ?", (_key(portfolio_id), limit))
        return [{**ujson.loads(payload), "acknowledged": bool(acknowledged)} for payload, acknowledged in rows]

    def acknowledge_alert(self, alert_id: str) -> str | None:
        """Mark an alert acknowledged; returns its portfolio id, None if there is no such alert."""
        if not _encodable(alert_id):
            return None
        with self._transaction() as db:
            row = db.execute("UPDATE risk_alerts SET acknowledged = 1 WHERE alert_id = ? RETURNING portfolio_id",
                             (alert_id,)).fetchone()
        return None if row is None else str(row[0])

    def alert_portfolio(self, alert_id: str) -> str | None:
        if not _encodable(alert_id):
            return None
        row = self._db.execute("SELECT portfolio_id FROM risk_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return None if row is None else str(row[0])

    def last_alert_number(self) -> int:
        """The highest numeric part of stored alert ids ("A12"), to seed the id sequence."""
        return self._db.execute(f"SELECT {numbered_max('alert_id', 'A')} FROM risk_alerts").fetchone()[0]
