"""The database under the stores: the engine-neutral `Database` (transactions and the fence) and the SQLite one
(pragmas, the schema and its migrations), and the id helpers the stores share.

The stores write one SQL for every engine: `?` placeholders, ``ON CONFLICT`` upserts, ``RETURNING`` instead of
``lastrowid``, rows read by index or by column name. `services.storage.postgres` is the other engine.
"""

from __future__ import annotations

import os
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Self

from domain.clock import Clock

__all__ = [
    "BUSY_TIMEOUT_S",
    "DB_FILENAME",
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "Database",
    "DatabaseUnreachable",
    "FencedOut",
    "SQLiteDatabase",
    "StorageError",
    "StorageFailure",
]

DB_FILENAME = "stockquest.db"
BUSY_TIMEOUT_S = 10.0

# The whole schema, as a new database gets it. A new table is appended here and SCHEMA_VERSION goes
# up by one; changing an existing table also needs an upgrade step in MIGRATIONS, run before this
# script (whose IF NOT EXISTS then only adds what is new).
# STRICT makes SQLite refuse a float in a money column instead of silently storing it. Money is
# integer cents in columns named *_cents; no money column is REAL.
# Order and execution ids ("O12", "E345") sort by (length(id), id), which is their issue order as
# long as the prefix is fixed; that is the tie-break wherever two rows share a millisecond.
SCHEMA_VERSION = 7
SCHEMA = """
-- AUTOINCREMENT: ids are never reused, so a token's sub can never come to name a later user.
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NULL,
    role          TEXT    NOT NULL CHECK (role IN ('student', 'teacher', 'admin')),
    created_at    REAL    NOT NULL
) STRICT;
-- Lookups compare lower() on both sides, as on PostgreSQL (whose unique index is on lower(username)); SQLite's
-- lower() folds ASCII only, as NOCASE does. Version 4.
CREATE INDEX IF NOT EXISTS users_by_lower_name ON users (lower(username));

-- starting_cash_cents and commissions_cents came in version 2, contest_id in version 7 (appended by ALTER TABLE
-- there, so they are declared identically here, defaults included). contest_id: the class contest the portfolio
-- plays in (NULL: an ordinary portfolio, which alone counts toward MAX_PORTFOLIOS_PER_USER).
CREATE TABLE IF NOT EXISTS portfolios (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id            INTEGER NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    cash_cents          INTEGER NOT NULL,
    created_at          REAL    NOT NULL,
    starting_cash_cents INTEGER NOT NULL DEFAULT 0,
    commissions_cents   INTEGER NOT NULL DEFAULT 0,
    contest_id          INTEGER NULL REFERENCES contests (id)
) STRICT;

CREATE INDEX IF NOT EXISTS portfolios_by_owner ON portfolios (owner_id);

-- One row per position; a flat position stays while it carries realized P&L. Reserved shares are
-- not stored: the engine recomputes them from the open orders.
CREATE TABLE IF NOT EXISTS positions (
    portfolio_id       INTEGER NOT NULL REFERENCES portfolios (id),
    symbol             TEXT    NOT NULL,
    quantity           INTEGER NOT NULL,
    cost_basis_cents   INTEGER NOT NULL,
    realized_pnl_cents INTEGER NOT NULL,
    stop_loss_cents    INTEGER NULL,
    take_profit_cents  INTEGER NULL,
    PRIMARY KEY (portfolio_id, symbol)
) STRICT, WITHOUT ROWID;

-- The latest state of every order. reserved_cash_cents is stored because the engine recovers a
-- MARKET or STOP buy's reserve price from it on restart (domain.orders, load_open_orders).
-- Quantity and prices are not range-checked because a rejected order keeps what was sent; its
-- quantity may even be a fraction (INVALID_QUANTITY), hence ANY, which only it may use.
-- first_event_id: the order's first eventId (ORDER_SUBMITTED or ORDER_REJECTED), for a repeated clientOrderId.
-- note (the trade journal: why, in the student's words) and placed_by (a team member who placed it for the owner;
-- NULL: the owner) came in version 5, appended by ALTER TABLE there; both are fixed when the order is placed.
CREATE TABLE IF NOT EXISTS orders (
    order_id              TEXT    PRIMARY KEY,
    client_order_id       TEXT    NULL,
    portfolio_id          INTEGER NOT NULL REFERENCES portfolios (id),
    user_id               INTEGER NOT NULL REFERENCES users (id),
    symbol                TEXT    NOT NULL,
    side                  TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type            TEXT    NOT NULL CHECK (order_type IN ('MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT')),
    quantity              ANY     NOT NULL CHECK (typeof(quantity) = 'integer'
                                                  OR (typeof(quantity) = 'real' AND status = 'REJECTED')),
    limit_price_cents     INTEGER NULL,
    stop_price_cents      INTEGER NULL,
    time_in_force         TEXT    NOT NULL CHECK (time_in_force IN ('DAY', 'GTC', 'IOC', 'FOK')),
    status                TEXT    NOT NULL CHECK (status IN ('NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED',
                                                             'REJECTED', 'EXPIRED')),
    created_at_ms         INTEGER NOT NULL,
    updated_at_ms         INTEGER NOT NULL,
    day_index             INTEGER NOT NULL,
    filled_quantity       INTEGER NOT NULL,
    filled_notional_cents INTEGER NOT NULL,
    commission_cents      INTEGER NOT NULL,
    reserved_cash_cents   INTEGER NOT NULL,
    stop_triggered        INTEGER NOT NULL CHECK (stop_triggered IN (0, 1)),
    reject_reason         TEXT    NULL,
    error                 TEXT    NULL,
    first_event_id        INTEGER NOT NULL,
    note                  TEXT    NULL,
    placed_by             INTEGER NULL REFERENCES users (id)
) STRICT;

-- The query in Storage.load_trading repeats this WHERE exactly, so the planner uses the index.
CREATE INDEX IF NOT EXISTS orders_open ON orders (created_at_ms, length(order_id), order_id)
    WHERE status IN ('NEW', 'PARTIALLY_FILLED');
CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at_ms, length(order_id), order_id);
CREATE INDEX IF NOT EXISTS orders_newest ON orders (created_at_ms, length(order_id), order_id);
CREATE UNIQUE INDEX IF NOT EXISTS orders_client_id ON orders (user_id, client_order_id)
    WHERE client_order_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS fills (
    execution_id     TEXT    PRIMARY KEY,
    order_id         TEXT    NOT NULL REFERENCES orders (order_id),
    portfolio_id     INTEGER NOT NULL REFERENCES portfolios (id),
    user_id          INTEGER NOT NULL REFERENCES users (id),
    symbol           TEXT    NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    price_cents      INTEGER NOT NULL CHECK (price_cents > 0),
    commission_cents INTEGER NOT NULL CHECK (commission_cents >= 0),
    time_ms          INTEGER NOT NULL,
    market_time_ms   INTEGER NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS fills_by_position ON fills (portfolio_id, symbol, length(execution_id), execution_id);

-- Every order event as sent: payload is the exact JSON of its data, eventId included. event_id is
-- MAX(event_id) + 1 of the user (a seek on the primary key), so it rises strictly per user.
CREATE TABLE IF NOT EXISTS order_events (
    user_id       INTEGER NOT NULL REFERENCES users (id),
    event_id      INTEGER NOT NULL CHECK (event_id > 0),
    portfolio_id  INTEGER NOT NULL REFERENCES portfolios (id),
    order_id      TEXT    NOT NULL REFERENCES orders (order_id),
    type          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, event_id)
) STRICT;

-- Value history for analytics. series is a portfolio id or another series (the market index), so
-- it is text with no foreign key. Pruned to VALUES_RETENTION_MS per series as samples arrive.
CREATE TABLE IF NOT EXISTS portfolio_values (
    portfolio_id   TEXT    NOT NULL,
    time_ms        INTEGER NOT NULL,
    market_time_ms INTEGER NOT NULL,
    value_cents    INTEGER NOT NULL,
    cash_cents     INTEGER NOT NULL,
    PRIMARY KEY (portfolio_id, time_ms)
) STRICT, WITHOUT ROWID;

-- Risk limits set for a portfolio (the wire object as JSON; absent means the configured defaults).
CREATE TABLE IF NOT EXISTS risk_limits (
    portfolio_id INTEGER PRIMARY KEY REFERENCES portfolios (id),
    limits       TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- Risk alerts as sent (payload: the RISK_ALERT data as JSON), kept for RISK_SNAPSHOT and restarts.
CREATE TABLE IF NOT EXISTS risk_alerts (
    alert_id      TEXT    PRIMARY KEY,
    portfolio_id  INTEGER NOT NULL REFERENCES portfolios (id),
    created_at_ms INTEGER NOT NULL,
    acknowledged  INTEGER NOT NULL DEFAULT 0,
    payload       TEXT    NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS risk_alerts_by_portfolio ON risk_alerts (portfolio_id, created_at_ms);

-- The fencing token of the engine that last wrote (Database.fence): one row, checked and advanced by every
-- write transaction of a fenced process. Version 4.
CREATE TABLE IF NOT EXISTS engine_fence (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    token INTEGER NOT NULL
) STRICT;
INSERT INTO engine_fence (id, token) VALUES (1, 0) ON CONFLICT DO NOTHING;

-- Named states of the running application as JSON (the scenario being played: services.scenarios). Version 6.
CREATE TABLE IF NOT EXISTS app_state (
    name          TEXT    PRIMARY KEY,
    value         TEXT    NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- Class contests (domain.contests, services.storage.contests), version 7. rules, schedule and final_ranking are
-- JSON in the codecs of services.storage.contests; opened_at and finished_at are Moments, two columns each, both
-- set or both NULL. The join code is stored in its canonical form (QX7-42K), so UNIQUE compares what students type.
CREATE TABLE IF NOT EXISTS contests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    teacher_id       INTEGER NOT NULL REFERENCES users (id),
    name             TEXT    NOT NULL,
    join_code        TEXT    NOT NULL UNIQUE,
    status           TEXT    NOT NULL CHECK (status IN ('DRAFT', 'OPEN', 'FINISHED')),
    password_hash    TEXT    NULL,
    rules            TEXT    NOT NULL,
    schedule         TEXT    NOT NULL,
    opened_wall_ms   INTEGER NULL,
    opened_day       INTEGER NULL,
    finished_wall_ms INTEGER NULL,
    finished_day     INTEGER NULL,
    final_ranking    TEXT    NULL,
    created_at_ms    INTEGER NOT NULL,
    CHECK ((opened_wall_ms IS NULL) = (opened_day IS NULL)),
    CHECK ((finished_wall_ms IS NULL) = (finished_day IS NULL))
) STRICT;

-- Who joined a contest, under which nickname, in which order (join_order: 1, 2, ... per contest, as the roster lists
-- them even when two join in one millisecond), with their own portfolio (NULL in a team contest). name_key is the
-- nickname as names are compared (domain.contests.name_key: NFKC, case-folded), unique in the contest even when
-- the operator's command line and the server add players at once.
CREATE TABLE IF NOT EXISTS contest_members (
    contest_id   INTEGER NOT NULL REFERENCES contests (id),
    user_id      INTEGER NOT NULL REFERENCES users (id),
    nickname     TEXT    NOT NULL,
    name_key     TEXT    NOT NULL,
    joined_ms    INTEGER NOT NULL,
    join_order   INTEGER NOT NULL,
    portfolio_id INTEGER NULL UNIQUE REFERENCES portfolios (id),
    PRIMARY KEY (contest_id, user_id),
    UNIQUE (contest_id, join_order),
    UNIQUE (contest_id, name_key)
) STRICT;

-- A team shares one portfolio, owned by its captain (the member at position 0).
CREATE TABLE IF NOT EXISTS contest_teams (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    contest_id   INTEGER NOT NULL REFERENCES contests (id),
    name         TEXT    NOT NULL,
    name_key     TEXT    NOT NULL,
    portfolio_id INTEGER NOT NULL UNIQUE REFERENCES portfolios (id),
    UNIQUE (contest_id, name_key)
) STRICT;
CREATE INDEX IF NOT EXISTS contest_teams_by_contest ON contest_teams (contest_id, id);

CREATE TABLE IF NOT EXISTS contest_team_members (
    team_id  INTEGER NOT NULL REFERENCES contest_teams (id),
    user_id  INTEGER NOT NULL REFERENCES users (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    PRIMARY KEY (team_id, user_id),
    UNIQUE (team_id, position)
) STRICT;

-- A contest's assignments: the task as its kind and task_params JSON (domain.contests.assignments).
CREATE TABLE IF NOT EXISTS contest_assignments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    contest_id    INTEGER NOT NULL REFERENCES contests (id),
    kind          TEXT    NOT NULL,
    params        TEXT    NOT NULL,
    due_ms        INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS contest_assignments_by_contest ON contest_assignments (contest_id, id);
"""

# MIGRATIONS[n] upgrades a version-n database to version n + 1; SCHEMA then adds the new tables. A table added after
# version 1 only comes with SCHEMA, at the end, in its latest shape: so a step's ALTER TABLE of a table the database
# does not have yet is left out (see SQLiteDatabase._upgrade_steps).
MIGRATIONS = {
    1: """
ALTER TABLE portfolios ADD COLUMN starting_cash_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE portfolios ADD COLUMN commissions_cents INTEGER NOT NULL DEFAULT 0;
-- Version 1 had no trading, so every portfolio still holds exactly what it started with.
UPDATE portfolios SET starting_cash_cents = cash_cents;
""",
    2: "-- version 3 only adds tables (risk_limits, risk_alerts), which SCHEMA creates.\n",
    3: "-- version 4 only adds engine_fence and users_by_lower_name, which SCHEMA creates.\n",
    4: """
-- Orders stored before version 5 had neither: they read back with no note, placed by their owner.
ALTER TABLE orders ADD COLUMN note TEXT NULL;
ALTER TABLE orders ADD COLUMN placed_by INTEGER NULL REFERENCES users (id);
""",
    5: "-- version 6 only adds app_state, which SCHEMA creates.\n",
    6: """
-- Portfolios stored before version 7 are all ordinary ones; SCHEMA then adds the contest tables this refers to.
ALTER TABLE portfolios ADD COLUMN contest_id INTEGER NULL REFERENCES contests (id);
""",
}


class StorageError(Exception):
    """The database cannot be used (for example, it was written by a newer server)."""


class StorageFailure(StorageError):
    """A write the database refused (a full or read-only disk, a lock held too long, a lost connection to
    PostgreSQL): nothing of it was stored. On PostgreSQL a read that cannot be answered raises it too."""


class DatabaseUnreachable(StorageFailure):
    """The database server cannot be reached; the message names it, without a password. At start-up this stops the
    server; later, each use tries to connect again."""


class FencedOut(StorageFailure):
    """A fenced write refused because another engine has written with a newer fencing token (see `Database.fence`)."""


Connection = Any
"""What `Database._db` gives the stores: a sqlite3.Connection, or PostgreSQL's look-alike (`execute`, `executemany`,
rows by index and by column name, `rowcount`)."""

_FENCE_SQL = "UPDATE engine_fence SET token = ? WHERE token <= ?"


class Database(ABC):
    """Owns one connection to the database, whatever its engine: its transactions and the fencing token they check.

    Use it from one thread (the IOLoop's). Each write method is one transaction
    (``with self._transaction() as db:``): it is stored whole or not at all, or raises `StorageFailure`.
    An engine (`SQLiteDatabase`, `PostgresDatabase`) opens the connection and upgrades the schema (`_open`),
    hands it out (`_db`), runs a transaction (`_begin`) and closes.
    """

    def __init__(self, target: Any, clock: Clock):
        self._clock = clock
        self._fence_token: int | None = None
        self._open(target)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def fence(self, token: int) -> None:
        """Write with this fencing token from now on: every write transaction first checks that no engine has written
        with a greater one (else `FencedOut`, nothing of it stored) and records ours. Tokens come from the engine
        lease and only grow; a process never fenced writes without the check (one process, the default).

        The check is in the transaction it guards, so an engine that lost its lease cannot write once the next
        holder has written, however late its own write arrives.
        """
        if type(token) is not int or not 0 <= token < 2**63:
            raise ValueError(f"a fencing token is an int from 0 to 2**63 - 1, not {token!r}")
        self._fence_token = token

    def stored_fence_token(self) -> int:
        """The greatest fencing token any engine has written with (0 before any): a new lease's token must be above
        it (the lease's `floor`), even when the lease's own counter was lost."""
        return self._db.execute("SELECT token FROM engine_fence").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One write transaction; StorageFailure when the database refuses it (then nothing of it is stored)."""
        with self._begin() as db:
            token = self._fence_token
            if token is not None and db.execute(_FENCE_SQL, (token, token)).rowcount == 0:
                (stored,) = db.execute("SELECT token FROM engine_fence").fetchone()
                raise FencedOut(f"fenced out: another engine wrote with token {stored}, newer than ours ({token})")
            yield db

    @abstractmethod
    def _open(self, target: Any) -> None:
        """Connect to `target` (a path, a URL) and bring the schema up to date; StorageError when it cannot be used."""

    @property
    @abstractmethod
    def _db(self) -> Connection:
        """The open connection; StorageError once closed."""

    @abstractmethod
    def _begin(self) -> AbstractContextManager[Connection]:
        """BEGIN, then COMMIT, or ROLLBACK when the block raises; the database's refusals raised as StorageFailure."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection; calling it again does nothing."""


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (password hashes and every trade are in it), and
    tighten one an older version left open; SQLite gives the -wal and -shm files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


class SQLiteDatabase(Database):
    """Owns the SQLite connection: opening, pragmas, the schema upgrade, transactions and closing.

    WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
    process being killed (not necessarily a power cut). Other processes, such as
    the operator command line, may open the same file while the server runs;
    writers wait for each other up to the busy timeout.
    """

    def _open(self, path: Path | str) -> None:
        self.path = path if path == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            _private_file(self.path)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see _begin).
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None, cached_statements=256
        )
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    @classmethod
    def in_dir(cls, data_dir: Path | str, clock: Clock) -> Self:
        """Open the server's database in `data_dir` (the file the server and the CLI share)."""
        return cls(Path(data_dir) / DB_FILENAME, clock)

    def close(self) -> None:
        """Fold the WAL back into the database file and close; calling it again does nothing."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Best effort: another process reading the file makes the checkpoint partial.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        finally:
            conn.close()

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("storage is closed")
        return self._conn

    @contextmanager
    def _begin(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a concurrent writer waits on the
        # busy timeout instead of failing when a read transaction tries to upgrade.
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # some errors (a full disk) have rolled back already
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as error:  # a full or read-only disk, a lock held past the busy timeout
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StorageFailure(f"the database refused a write: {error}") from error

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} has schema version {version}; this server knows up to {SCHEMA_VERSION}"
            )
        if version == SCHEMA_VERSION:
            return
        # A new file (version 0) gets SCHEMA as it is; an older one its upgrade steps first.
        steps = self._upgrade_steps(version) if version else ""
        try:
            # executescript commits anything pending first, so the transaction is inside the script.
            self._db.executescript(
                f"BEGIN IMMEDIATE;\n{steps}\n{SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
            )
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            # Another process (the CLI, a second server) may have upgraded the file while we waited
            # for the lock; its ALTER TABLE steps then fail here as duplicate columns.
            upgraded = self._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            if isinstance(exc, sqlite3.OperationalError) and upgraded:
                return
            raise

    def _upgrade_steps(self, version: int) -> str:
        """The steps from `version` to SCHEMA_VERSION as one script, without the ALTER TABLE statements of tables
        this database does not have: SCHEMA creates those whole (a version-1 file has no orders table to alter)."""
        tables = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        kept, statement = [], ""
        for line in "".join(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION)).splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                altered = _ALTER_TABLE.match(statement)
                if altered is None or altered[1] in tables:
                    kept.append(statement)
                statement = ""
        return "".join(kept) + statement


_ALTER_TABLE = re.compile(r"(?:\s|--[^\n]*\n)*ALTER\s+TABLE\s+(\w+)", re.IGNORECASE)


def _encodable(text: object) -> bool:
    """Whether `text` is a str every engine can store: UTF-8 (a str holding a lone surrogate, valid JSON "\\ud800",
    cannot be bound) without a NUL, which PostgreSQL's text cannot hold."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key(value: object) -> int | None:
    """The integer key behind an opaque id ("17" or 17), or None when it cannot be one of ours."""
    if type(value) is int:
        return value if 0 < value < 2**63 else None
    if (isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit()
            and value[0] != "0"):
        key = int(value)
        return key if key < 2**63 else None
    return None


def _need_key(value: object, what: str) -> int:
    key = _key(value)
    if key is None:
        raise ValueError(f"{what} {value!r} is not a stored id")
    return key
