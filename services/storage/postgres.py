"""The PostgreSQL engine (``--database-url``): its connection, schema and migrations, and `PostgresStorage`.

Only imported when a database URL is given, so the SQLite server never loads psycopg. The stores' SQL runs here
as written for SQLite: `_Connection` turns `?` into psycopg's placeholders and gives rows by index and by name.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import pq
from psycopg.adapt import Dumper, Loader
from psycopg.conninfo import conninfo_to_dict

from realtime.urls import safe_url
from services.storage import Stores
from services.storage.database import Database, DatabaseUnreachable, StorageError, StorageFailure

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "PostgresDatabase", "PostgresStorage"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
RECONNECT_PAUSE_S = 1.0
"""After a failed connection attempt, uses fail at once for this long instead of each waiting for the database."""

# Overridden by the URL's own parameters. The server waits on the database in its event loop, as it does on SQLite:
# these bound how long a database host that vanished can hold it (unacknowledged sends, then silent peers).
_CONNECTION_DEFAULTS = {
    "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "stockquest", "tcp_user_timeout": 10_000,
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
}
_OPTIONS = "-c lock_timeout=10s"  # SQLite's busy timeout; before the URL's own options, which win

_MIGRATION_LOCK = 0x53514D47  # pg_advisory_xact_lock key: servers starting together upgrade one at a time

# MIGRATIONS[n] upgrades a version-n database to version n + 1; an empty database runs them all, so the first one
# is the whole first schema. A change is one more step here.
# Kept from the SQLite schema: every CHECK, unique and partial index. Money is BIGINT cents (a float sent for
# one is refused, see _FloatDumper). Ids and symbols compare byte-wise (COLLATE "C"), as SQLite's BINARY does,
# so pages and tie-breaks order alike on both engines.
MIGRATIONS = (
    """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (0);

-- An identity never reuses an id, so a token's sub can never come to name a later user.
CREATE TABLE users (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NULL,
    role          TEXT    NOT NULL CHECK (role IN ('student', 'teacher', 'admin')),
    created_at    DOUBLE PRECISION NOT NULL
);
-- SQLite's UNIQUE COLLATE NOCASE; the stores look names up by lower() on both sides. (Usernames are ASCII: for
-- others PostgreSQL's lower() follows the database's locale where NOCASE folds only A-Z.)
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE portfolios (
    id                  BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id            BIGINT  NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    cash_cents          BIGINT  NOT NULL,
    created_at          DOUBLE PRECISION NOT NULL,
    starting_cash_cents BIGINT  NOT NULL DEFAULT 0,
    commissions_cents   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX portfolios_by_owner ON portfolios (owner_id);

CREATE TABLE positions (
    portfolio_id       BIGINT  NOT NULL REFERENCES portfolios (id),
    symbol             TEXT    COLLATE "C" NOT NULL,
    quantity           BIGINT  NOT NULL,
    cost_basis_cents   BIGINT  NOT NULL,
    realized_pnl_cents BIGINT  NOT NULL,
    stop_loss_cents    BIGINT  NULL,
    take_profit_cents  BIGINT  NULL,
    PRIMARY KEY (portfolio_id, symbol)
);

-- quantity: a rejected order keeps what was sent, even a fraction; any other order's is whole (scale 0: a float
-- such as 10.0 is refused, as SQLite refuses a REAL there). It comes back an int, or a float when it has a scale.
CREATE TABLE orders (
    order_id              TEXT    COLLATE "C" PRIMARY KEY,
    client_order_id       TEXT    NULL,
    portfolio_id          BIGINT  NOT NULL REFERENCES portfolios (id),
    user_id               BIGINT  NOT NULL REFERENCES users (id),
    symbol                TEXT    COLLATE "C" NOT NULL,
    side                  TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type            TEXT    NOT NULL CHECK (order_type IN ('MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT')),
    quantity              NUMERIC NOT NULL,
    limit_price_cents     BIGINT  NULL,
    stop_price_cents      BIGINT  NULL,
    time_in_force         TEXT    NOT NULL CHECK (time_in_force IN ('DAY', 'GTC', 'IOC', 'FOK')),
    status                TEXT    NOT NULL CHECK (status IN ('NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED',
                                                             'REJECTED', 'EXPIRED')),
    created_at_ms         BIGINT  NOT NULL,
    updated_at_ms         BIGINT  NOT NULL,
    day_index             BIGINT  NOT NULL,
    filled_quantity       BIGINT  NOT NULL,
    filled_notional_cents BIGINT  NOT NULL,
    commission_cents      BIGINT  NOT NULL,
    reserved_cash_cents   BIGINT  NOT NULL,
    stop_triggered        INTEGER NOT NULL CHECK (stop_triggered IN (0, 1)),
    reject_reason         TEXT    NULL,
    error                 TEXT    NULL,
    first_event_id        BIGINT  NOT NULL,
    CHECK (scale(quantity) = 0 OR status = 'REJECTED')
);
CREATE INDEX orders_open ON orders (created_at_ms, length(order_id), order_id)
    WHERE status IN ('NEW', 'PARTIALLY_FILLED');
CREATE INDEX orders_by_user ON orders (user_id, created_at_ms, length(order_id), order_id);
CREATE INDEX orders_newest ON orders (created_at_ms, length(order_id), order_id);
CREATE UNIQUE INDEX orders_client_id ON orders (user_id, client_order_id) WHERE client_order_id IS NOT NULL;

CREATE TABLE fills (
    execution_id     TEXT    COLLATE "C" PRIMARY KEY,
    order_id         TEXT    COLLATE "C" NOT NULL REFERENCES orders (order_id),
    portfolio_id     BIGINT  NOT NULL REFERENCES portfolios (id),
    user_id          BIGINT  NOT NULL REFERENCES users (id),
    symbol           TEXT    COLLATE "C" NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity         BIGINT  NOT NULL CHECK (quantity > 0),
    price_cents      BIGINT  NOT NULL CHECK (price_cents > 0),
    commission_cents BIGINT  NOT NULL CHECK (commission_cents >= 0),
    time_ms          BIGINT  NOT NULL,
    market_time_ms   BIGINT  NOT NULL
);
CREATE INDEX fills_by_position ON fills (portfolio_id, symbol, length(execution_id), execution_id);

CREATE TABLE order_events (
    user_id       BIGINT  NOT NULL REFERENCES users (id),
    event_id      BIGINT  NOT NULL CHECK (event_id > 0),
    portfolio_id  BIGINT  NOT NULL REFERENCES portfolios (id),
    order_id      TEXT    COLLATE "C" NOT NULL REFERENCES orders (order_id),
    type          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    created_at_ms BIGINT  NOT NULL,
    PRIMARY KEY (user_id, event_id)
);

CREATE TABLE portfolio_values (
    portfolio_id   TEXT    COLLATE "C" NOT NULL,
    time_ms        BIGINT  NOT NULL,
    market_time_ms BIGINT  NOT NULL,
    value_cents    BIGINT  NOT NULL,
    cash_cents     BIGINT  NOT NULL,
    PRIMARY KEY (portfolio_id, time_ms)
);

CREATE TABLE risk_limits (
    portfolio_id  BIGINT  PRIMARY KEY REFERENCES portfolios (id),
    limits        TEXT    NOT NULL,
    updated_at_ms BIGINT  NOT NULL
);

CREATE TABLE risk_alerts (
    alert_id      TEXT    COLLATE "C" PRIMARY KEY,
    portfolio_id  BIGINT  NOT NULL REFERENCES portfolios (id),
    created_at_ms BIGINT  NOT NULL,
    acknowledged  INTEGER NOT NULL DEFAULT 0,
    payload       TEXT    NOT NULL
);
CREATE INDEX risk_alerts_by_portfolio ON risk_alerts (portfolio_id, created_at_ms);

CREATE TABLE engine_fence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token BIGINT  NOT NULL
);
INSERT INTO engine_fence (id, token) VALUES (1, 0);
""",
    """
-- The trade journal's note and the team member who placed an order for its owner (NULL: the owner), as SQLite's
-- version 5 has them; orders stored before read back with neither.
ALTER TABLE orders ADD COLUMN note TEXT NULL;
ALTER TABLE orders ADD COLUMN placed_by BIGINT NULL REFERENCES users (id);
""",
    """
-- Named states of the running application as JSON (the scenario being played), as SQLite's version 6 has them.
CREATE TABLE app_state (
    name          TEXT   COLLATE "C" PRIMARY KEY,
    value         TEXT   NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
""",
    """
-- Class contests, as SQLite's version 7 has them (see its SCHEMA for what each column holds). Portfolios stored
-- before are all ordinary ones (contest_id NULL).
CREATE TABLE contests (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    teacher_id       BIGINT  NOT NULL REFERENCES users (id),
    name             TEXT    NOT NULL,
    join_code        TEXT    COLLATE "C" NOT NULL UNIQUE,
    status           TEXT    NOT NULL CHECK (status IN ('DRAFT', 'OPEN', 'FINISHED')),
    password_hash    TEXT    NULL,
    rules            TEXT    NOT NULL,
    schedule         TEXT    NOT NULL,
    opened_wall_ms   BIGINT  NULL,
    opened_day       BIGINT  NULL,
    finished_wall_ms BIGINT  NULL,
    finished_day     BIGINT  NULL,
    final_ranking    TEXT    NULL,
    created_at_ms    BIGINT  NOT NULL,
    CHECK ((opened_wall_ms IS NULL) = (opened_day IS NULL)),
    CHECK ((finished_wall_ms IS NULL) = (finished_day IS NULL))
);
ALTER TABLE portfolios ADD COLUMN contest_id BIGINT NULL REFERENCES contests (id);

CREATE TABLE contest_members (
    contest_id   BIGINT  NOT NULL REFERENCES contests (id),
    user_id      BIGINT  NOT NULL REFERENCES users (id),
    nickname     TEXT    NOT NULL,
    name_key     TEXT    NOT NULL,
    joined_ms    BIGINT  NOT NULL,
    join_order   BIGINT  NOT NULL,
    portfolio_id BIGINT  NULL UNIQUE REFERENCES portfolios (id),
    PRIMARY KEY (contest_id, user_id),
    UNIQUE (contest_id, join_order),
    UNIQUE (contest_id, name_key)
);

CREATE TABLE contest_teams (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contest_id   BIGINT  NOT NULL REFERENCES contests (id),
    name         TEXT    NOT NULL,
    name_key     TEXT    NOT NULL,
    portfolio_id BIGINT  NOT NULL UNIQUE REFERENCES portfolios (id),
    UNIQUE (contest_id, name_key)
);
CREATE INDEX contest_teams_by_contest ON contest_teams (contest_id, id);

CREATE TABLE contest_team_members (
    team_id  BIGINT  NOT NULL REFERENCES contest_teams (id),
    user_id  BIGINT  NOT NULL REFERENCES users (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    PRIMARY KEY (team_id, user_id),
    UNIQUE (team_id, position)
);

CREATE TABLE contest_assignments (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contest_id    BIGINT  NOT NULL REFERENCES contests (id),
    kind          TEXT    NOT NULL,
    params        TEXT    NOT NULL,
    due_ms        BIGINT  NOT NULL,
    created_at_ms BIGINT  NOT NULL
);
CREATE INDEX contest_assignments_by_contest ON contest_assignments (contest_id, id);
""",
)
SCHEMA_VERSION = len(MIGRATIONS)


class _Row(tuple):
    """One result row: a tuple, also indexed by column name (as sqlite3.Row)."""

    def __new__(cls, values, names: dict[str, int]):
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key):
        return super().__getitem__(self._names[key] if isinstance(key, str) else key)


def _rows(cursor) -> Callable[[Any], _Row]:
    names = {column.name: index for index, column in enumerate(cursor.description or ())}
    return lambda values: _Row(values, names)


class _FloatDumper(Dumper):
    """A float goes as untyped text, read as the column's own type: a BIGINT (money) column then refuses 100.5, as
    SQLite's STRICT tables do, where a float8 parameter would be rounded into it. Written with a decimal point,
    so that a NUMERIC keeps it a fraction (see orders.quantity)."""

    oid = 0

    def dump(self, obj: float) -> bytes:
        text = repr(obj)
        if text[-1].isdigit():  # finite: "1e+16" and "1e-07" written out
            text = format(Decimal(text), "f")
            text += "" if "." in text else ".0"
        return text.encode()


class _NumericLoader(Loader):
    """NUMERIC (only orders.quantity) as SQLite gives it back: an int when whole, a float when it has a scale."""

    def load(self, data) -> int | float:
        text = bytes(data).decode()
        return int(text) if text.lstrip("-").isdigit() else float(text)


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    # The stores write no "?" or "%" inside string literals.
    return sql.replace("%", "%%").replace("?", "%s")


_FAILED = (psycopg.OperationalError, psycopg.InterfaceError)  # a lost connection, a lock timeout, a full disk ...
_REFUSED = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)  # SQLite: a read-only file


class _Connection:
    """Owns the psycopg connection and makes it again when it breaks; speaks the stores' SQL (see the module).

    Autocommit, with BEGIN and COMMIT sent by `PostgresDatabase._begin`. The database's refusals and a lost
    connection are raised as StorageFailure. A statement sent outside a transaction (a read, BEGIN) that finds the
    connection dead is sent once more on a new one: nothing of it ran. Inside a transaction the transaction is
    lost with the connection, and the next one starts on a new connection.
    """

    def __init__(self, url: str):
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._next_attempt = 0.0
        self._live()

    def _live(self) -> psycopg.Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        self._conn = None
        where = safe_url(self.url)
        if time.monotonic() < self._next_attempt:
            raise DatabaseUnreachable(f"cannot reach PostgreSQL at {where} (trying again in a moment)")
        params = {**_CONNECTION_DEFAULTS, **conninfo_to_dict(self.url)}
        params["options"] = f"{_OPTIONS} {params.get('options', '')}".strip()
        try:
            conn = psycopg.connect(**params, autocommit=True, row_factory=_rows)
        except psycopg.Error as error:
            self._next_attempt = time.monotonic() + RECONNECT_PAUSE_S
            raise DatabaseUnreachable(f"cannot reach PostgreSQL at {where}: {' '.join(str(error).split())}") from None
        conn.adapters.register_dumper(float, _FloatDumper)
        conn.adapters.register_loader("numeric", _NumericLoader)
        self._conn = conn
        return conn

    def _run(self, call: Callable[[psycopg.Connection], psycopg.Cursor]) -> psycopg.Cursor:
        conn = self._live()
        idle = conn.info.transaction_status == pq.TransactionStatus.IDLE
        try:
            return call(conn)
        except _FAILED as error:
            if not (idle and conn.closed):
                raise _failure(error) from error
        except _REFUSED as error:
            raise _failure(error) from error
        try:  # the connection had died while idle (a restart of the database, an idle timeout)
            return call(self._live())
        except (*_FAILED, *_REFUSED) as error:
            raise _failure(error) from error

    def execute(self, sql: str, params=None) -> psycopg.Cursor:
        """Run one statement; without parameters `sql` may hold several (a migration step)."""
        if params is None:
            return self._run(lambda conn: conn.execute(sql))
        return self._run(lambda conn: conn.execute(_pg_sql(sql), params))

    def executemany(self, sql: str, rows) -> psycopg.Cursor:
        def many(conn: psycopg.Connection) -> psycopg.Cursor:
            cursor = conn.cursor()
            cursor.executemany(_pg_sql(sql), rows)
            return cursor
        return self._run(many)

    @property
    def in_transaction(self) -> bool:
        conn = self._conn
        return conn is not None and not conn.closed and conn.info.transaction_status != pq.TransactionStatus.IDLE

    def rollback(self) -> None:
        """End the current transaction, if the connection still has one; a connection that fails at it is dropped."""
        if self.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except psycopg.Error:
                self._conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _failure(error: psycopg.Error) -> StorageFailure:
    return StorageFailure(f"the database refused or lost a statement: {' '.join(str(error).split())}")


class PostgresDatabase(Database):
    """Owns the PostgreSQL connection (`_Connection`): opening, the schema upgrade, transactions and closing.

    A committed transaction is as durable as the database server makes it. Several processes (servers, the
    operator command line) may use one database; a write that waits for another's lock longer than 10 s fails.
    The process waits on the database in its event loop, as it does on SQLite.
    A connection lost during COMMIT raises StorageFailure although the database may have committed: callers reload
    what is stored after a failure (TradingService does), which then shows it.
    """

    def _open(self, url: str) -> None:
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            raise StorageError("a database URL is postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        self.url = url
        self._conn: _Connection | None = _Connection(url)
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise
        log.info("storage: PostgreSQL at %s", safe_url(url))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def _db(self) -> _Connection:
        if self._conn is None:
            raise StorageError("storage is closed")
        return self._conn

    @contextmanager
    def _begin(self) -> Iterator[_Connection]:
        db = self._db
        db.execute("BEGIN")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.rollback()
            raise

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION in one transaction; refuse a database a newer server upgraded."""
        try:
            with self._begin() as db:
                db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
                version = 0
                if db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is not None:
                    version = db.execute("SELECT version FROM schema_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StorageError(f"the database at {safe_url(self.url)} has schema version {version}; "
                                       f"this server knows up to {SCHEMA_VERSION}")
                for step in MIGRATIONS[version:]:
                    db.execute(step)
                if version < SCHEMA_VERSION:
                    db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        except psycopg.Error as error:  # a user without the right to create tables, say
            raise StorageError(f"cannot set up the database at {safe_url(self.url)}: {error}") from None


class PostgresStorage(Stores, PostgresDatabase):
    """`Stores` in a PostgreSQL database, which several processes may share (`fence` keeps one engine writing)."""
