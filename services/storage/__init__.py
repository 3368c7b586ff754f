"""Durable state: users, portfolios and their positions, orders, fills, order events, values, risk limits and alerts.

`Stores` is what callers hold: for now `Storage`, one SQLite file. Each part of the data has its own module and
mixin over the same `Database`: `database` (transactions, the SQLite engine), `users`, `trading` (what an engine
step writes, start-up, reconciliation), `history` (trading reads), `values`, `risk`.
"""

from __future__ import annotations

from domain.clock import Clock
from services.storage.database import (
    BUSY_TIMEOUT_S,
    DB_FILENAME,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    SQLiteDatabase,
    StorageError,
    StorageFailure,
)
from services.storage.history import MAX_HISTORY_LIMIT, HistoryStore
from services.storage.risk import RiskStore
from services.storage.trading import EXECUTION_ID_PREFIX, ORDER_ID_PREFIX, TradingStore
from services.storage.users import MAX_PORTFOLIO_NAME, MAX_PORTFOLIOS_PER_USER, PortfolioRow, UserStore
from services.storage.values import VALUES_RETENTION_MS, ValuePoint, ValueStore

__all__ = [
    "BUSY_TIMEOUT_S",
    "DB_FILENAME",
    "EXECUTION_ID_PREFIX",
    "MAX_HISTORY_LIMIT",
    "MAX_PORTFOLIOS_PER_USER",
    "MAX_PORTFOLIO_NAME",
    "MIGRATIONS",
    "ORDER_ID_PREFIX",
    "SCHEMA",
    "SCHEMA_VERSION",
    "VALUES_RETENTION_MS",
    "PortfolioRow",
    "Storage",
    "StorageError",
    "StorageFailure",
    "Stores",
    "ValuePoint",
]


class Stores(UserStore, TradingStore, HistoryStore, ValueStore, RiskStore):
    """Everything that must survive a restart, over one database of either engine (see `Database` for how).

    Ids are opaque strings to everyone else (``"17"``); portfolios and users keep
    their integer keys here, and an id that is not one of ours simply finds nothing.
    """

    def __init__(self, target, clock: Clock, *, values_retention_ms: int = VALUES_RETENTION_MS):
        self.values_retention_ms = values_retention_ms
        super().__init__(target, clock)


class Storage(Stores, SQLiteDatabase):
    """`Stores` in one SQLite file (or ``":memory:"``), which the operator command line may open at the same time.

    >>> from domain.clock import FakeClock
    >>> from domain.users import Role
    >>> with Storage(":memory:", FakeClock()) as db:
    ...     db.create_user("ada", "Ada", None, Role.STUDENT, 100).username
    'ada'
    """

