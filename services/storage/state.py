"""Small named states of the running application, kept in the database (the scenario being played): so the
engine that takes over, wherever it runs, finds them where the last one left them."""

from __future__ import annotations

from services.storage.database import Database

__all__ = ["StateStore"]


class StateStore(Database):
    """Owns the app_state table: one JSON text per name, replaced whole."""

    def save_state(self, name: str, value: str, *, now_ms: int) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO app_state (name, value, updated_at_ms) VALUES (?, ?, ?)"
                       " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
                       " updated_at_ms = excluded.updated_at_ms", (name, value, now_ms))

    def load_state(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM app_state WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]
