"""Durable state: users, portfolios and their positions, orders, fills, order events, values, risk limits and alerts,
class contests.

`Stores` is what callers hold: `Storage` (one SQLite file, the default) or `PostgresStorage` (with a database URL;
`services.storage.postgres`, which alone imports psycopg). `open_storage` picks one. Each part of the data has its
own module and mixin over the same `Database`: `database` (transactions, the fence, the SQLite engine), `users`,
`trading` (what an engine step writes, start-up, reconciliation), `history` (trading reads), `values`, `risk`,
`state`, `contests`.
"""

from __future__ import annotations

from pathlib import Path

from domain.clock import Clock
from services.storage.contests import ContestStore
from services.storage.database import (
    BUSY_TIMEOUT_S,
    DB_FILENAME,
    MIGRATIONS,
    SCHEMA,
    SCHEMA_VERSION,
    DatabaseUnreachable,
    FencedOut,
    SQLiteDatabase,
    StorageError,
    StorageFailure,
)
from services.storage.history import MAX_HISTORY_LIMIT, HistoryStore
from services.storage.risk import RiskStore
from services.storage.state import StateStore
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
    "DatabaseUnreachable",
    "FencedOut",
    "PortfolioRow",
    "Storage",
    "StorageError",
    "StorageFailure",
    "Stores",
    "ValuePoint",
    "open_storage",
]


class Stores(UserStore, TradingStore, HistoryStore, ValueStore, RiskStore, StateStore, ContestStore):
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


def open_storage(clock: Clock, *, data_dir: Path | str | None = None, database_url: str | None = None) -> Stores:
    """The PostgreSQL database at `database_url` when one is given, else the SQLite file in `data_dir`.

    Raises StorageError when it cannot be used (`DatabaseUnreachable`, naming the URL without its password, when
    PostgreSQL cannot be reached).
    """
    if database_url:
        from services.storage.postgres import PostgresStorage

        return PostgresStorage(database_url, clock)
    if data_dir is None:
        raise ValueError("open_storage needs a data_dir or a database_url")
    return Storage.in_dir(data_dir, clock)
