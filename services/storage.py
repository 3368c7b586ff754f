"""Durable state in one SQLite file: users, portfolios and their positions, orders, fills, order events, values."""

from __future__ import annotations

import base64
import binascii
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple, Self

import ujson

from domain.clock import Clock
from domain.errors import BadRequest, LimitExceeded, NotFound
from domain.trading import (
    EventKind,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    PortfolioLedger,
    Position,
    RejectReason,
    Side,
    TimeInForce,
    TradeEvent,
)
from domain.users import Role, UnknownUser, User, UsernameTaken
from realtime.protocol import encode_data

__all__ = [
    "DB_FILENAME",
    "MAX_PORTFOLIOS_PER_USER",
    "SCHEMA",
    "SCHEMA_VERSION",
    "VALUES_RETENTION_MS",
    "PortfolioRow",
    "Storage",
    "StorageError",
    "ValuePoint",
]

DB_FILENAME = "stockquest.db"
BUSY_TIMEOUT_S = 10.0
MAX_PORTFOLIOS_PER_USER = 5
MAX_PORTFOLIO_NAME = 64
MAX_HISTORY_LIMIT = 500
# Value history older than this (wall clock, counted back from the newest sample of the same series) is
# deleted as new samples arrive: at one sample a minute that is about 10 000 rows per portfolio.
VALUES_RETENTION_MS = 7 * 24 * 3600 * 1000

# The whole schema, as a new database gets it. A new table is appended here and SCHEMA_VERSION goes
# up by one; changing an existing table also needs an upgrade step in MIGRATIONS, run before this
# script (whose IF NOT EXISTS then only adds what is new).
# STRICT makes SQLite refuse a float in a money column instead of silently storing it. Money is
# integer cents in columns named *_cents; no money column is REAL.
# Order and execution ids ("O12", "E345") sort by (length(id), id), which is their issue order as
# long as the prefix is fixed; that is the tie-break wherever two rows share a millisecond.
SCHEMA_VERSION = 3
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

-- starting_cash_cents and commissions_cents came in version 2 (appended by ALTER TABLE there,
-- so they are declared identically here, defaults included).
CREATE TABLE IF NOT EXISTS portfolios (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id            INTEGER NOT NULL REFERENCES users (id),
    name                TEXT    NOT NULL,
    cash_cents          INTEGER NOT NULL,
    created_at          REAL    NOT NULL,
    starting_cash_cents INTEGER NOT NULL DEFAULT 0,
    commissions_cents   INTEGER NOT NULL DEFAULT 0
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
    first_event_id        INTEGER NOT NULL
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
"""

# MIGRATIONS[n] upgrades a version-n database to version n + 1; SCHEMA then adds the new tables.
MIGRATIONS = {
    1: """
ALTER TABLE portfolios ADD COLUMN starting_cash_cents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE portfolios ADD COLUMN commissions_cents INTEGER NOT NULL DEFAULT 0;
-- Version 1 had no trading, so every portfolio still holds exactly what it started with.
UPDATE portfolios SET starting_cash_cents = cash_cents;
""",
    2: "-- version 3 only adds tables (risk_limits, risk_alerts), which SCHEMA creates.\n",
}


class StorageError(Exception):
    """The database cannot be used (for example, it was written by a newer server)."""


@dataclass(frozen=True)
class PortfolioRow:
    """One stored portfolio's own columns; positions and orders live in their own tables."""

    id: int
    owner_id: int
    name: str
    cash_cents: int
    created_at: float


class ValuePoint(NamedTuple):
    """One sample of a portfolio's value history (wall and market time in epoch ms, money in cents)."""

    time_ms: int
    market_time_ms: int
    value_cents: int
    cash_cents: int


class Storage:
    """Owns the SQLite connection and everything that must survive a restart.

    WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
    process being killed (not necessarily a power cut). Other processes, such as
    the operator command line, may open the same file while the server runs;
    writers wait for each other up to the busy timeout.

    Use it from one thread (the IOLoop's). Each write method is one transaction
    (``with self._transaction() as db:``): it is stored whole or not at all.

    Ids are opaque strings to everyone else (``"17"``); portfolios and users keep
    their integer keys here, and an id that is not one of ours simply finds nothing.

    >>> from domain.clock import FakeClock
    >>> with Storage(":memory:", FakeClock()) as db:
    ...     db.create_user("ada", "Ada", None, Role.STUDENT, 100).username
    'ada'
    """

    def __init__(self, path: Path | str, clock: Clock, *, values_retention_ms: int = VALUES_RETENTION_MS):
        self._clock = clock
        self.values_retention_ms = values_retention_ms
        self.path = path if path == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see _transaction).
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
    def in_dir(cls, data_dir: Path | str, clock: Clock) -> Storage:
        """Open the server's database in `data_dir` (the file the server and the CLI share)."""
        return cls(Path(data_dir) / DB_FILENAME, clock)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

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
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a concurrent writer waits on the
        # busy timeout instead of failing when a read transaction tries to upgrade.
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # some errors (a full disk) have rolled back already
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"{self.path} has schema version {version}; this server knows up to {SCHEMA_VERSION}"
            )
        if version == SCHEMA_VERSION:
            return
        # A new file (version 0) gets SCHEMA as it is; an older one its upgrade steps first.
        steps = "".join(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION)) if version else ""
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

    # -- users -------------------------------------------------------------------------

    def create_user(
        self,
        username: str,
        display_name: str,
        password_hash: str | None,
        role: Role | str,
        starting_cash_cents: int,
    ) -> User:
        """Create a user and their first portfolio, "Main", holding the starting cash.

        Both rows are written in one transaction. Raises `UsernameTaken` when the
        name exists in any letter case.
        """
        role = Role(role)
        if not (_encodable(username) and _encodable(display_name)):
            raise ValueError("username and display_name must be encodable str")
        if type(starting_cash_cents) is not int or starting_cash_cents < 0:
            raise ValueError("starting_cash_cents must be a non-negative int")
        now = self._clock.now()
        try:
            with self._transaction() as db:
                cur = db.execute(
                    "INSERT INTO users (username, display_name, password_hash, role, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (username, display_name, password_hash, role.value, now),
                )
                user_id = cur.lastrowid
                db.execute(
                    "INSERT INTO portfolios (owner_id, name, cash_cents, starting_cash_cents, created_at)"
                    " VALUES (?, 'Main', ?, ?, ?)",
                    (user_id, starting_cash_cents, starting_cash_cents, now),
                )
        except sqlite3.IntegrityError as exc:
            if "users.username" in str(exc):
                raise UsernameTaken(f"username {username!r} is taken") from None
            raise
        return User(user_id, username, display_name, role, now, password_hash)

    def user_by_id(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        if type(user_id) is not int or not 0 < user_id < 2**63:
            return None
        row = self._db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return _user(row)

    def user_by_name(self, username: str) -> User | None:
        """The user with this name in any letter case, or None."""
        if not _encodable(username):
            return None
        row = self._db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        return _user(row)

    def set_role(self, username: str, role: Role | str) -> User:
        """Change a user's role; raises `UnknownUser`. Takes effect on their next request."""
        role = Role(role)
        if not _encodable(username):
            raise UnknownUser(f"no user named {username!r}")
        with self._transaction() as db:
            cur = db.execute("UPDATE users SET role = ? WHERE username = ?", (role.value, username))
            if cur.rowcount == 0:
                raise UnknownUser(f"no user named {username!r}")
            row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        return _user(row)

    def count_users(self) -> int:
        return self._db.execute("SELECT count(*) FROM users").fetchone()[0]

    def main_portfolios(self, role: str = "student") -> list[tuple[User, str]]:
        """Each user of `role` with their first portfolio's id, in the order they joined (the leaderboard's)."""
        rows = self._db.execute(
            "SELECT *, (SELECT min(p.id) FROM portfolios p WHERE p.owner_id = users.id) AS main_portfolio"
            " FROM users WHERE role = ? ORDER BY created_at, id", (str(role),))
        return [(_user(row), str(row["main_portfolio"])) for row in rows if row["main_portfolio"] is not None]

    # -- portfolios --------------------------------------------------------------------

    def portfolios_of(self, user_id: int) -> list[PortfolioRow]:
        """The user's portfolios, oldest first."""
        rows = self._db.execute(
            "SELECT id, owner_id, name, cash_cents, created_at FROM portfolios"
            " WHERE owner_id = ? ORDER BY id",
            (user_id,),
        ).fetchall()
        return [PortfolioRow(*row) for row in rows]

    def portfolio_ids_of(self, user_id: str | int) -> list[str]:
        """The ids of the user's portfolios, oldest first; empty for an unknown user."""
        key = _key(user_id)
        if key is None:
            return []
        rows = self._db.execute("SELECT id FROM portfolios WHERE owner_id = ? ORDER BY id", (key,)).fetchall()
        return [str(row[0]) for row in rows]

    def portfolio_owner(self, portfolio_id: str) -> str | None:
        """The id of the portfolio's owner, or None when there is no such portfolio."""
        key = _key(portfolio_id)
        if key is None:
            return None
        row = self._db.execute("SELECT owner_id FROM portfolios WHERE id = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def create_portfolio(self, owner_id: str | int, name: str, starting_cash_cents: int) -> PortfolioLedger:
        """Create another portfolio holding the starting cash; raises `LimitExceeded` past MAX_PORTFOLIOS_PER_USER.

        Also raises `UnknownUser` for no such owner and `BadRequest` for an empty or over-long name.
        """
        key = _key(owner_id)
        if key is None:
            raise UnknownUser(f"no user with id {owner_id!r}")
        if not _encodable(name) or not name.strip() or len(name) > MAX_PORTFOLIO_NAME:
            raise BadRequest(f"a portfolio name is 1 to {MAX_PORTFOLIO_NAME} characters")
        if type(starting_cash_cents) is not int or starting_cash_cents < 0:
            raise ValueError("starting_cash_cents must be a non-negative int")
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE id = ?", (key,)).fetchone() is None:
                raise UnknownUser(f"no user with id {owner_id!r}")
            count = db.execute("SELECT count(*) FROM portfolios WHERE owner_id = ?", (key,)).fetchone()[0]
            if count >= MAX_PORTFOLIOS_PER_USER:
                raise LimitExceeded(f"at most {MAX_PORTFOLIOS_PER_USER} portfolios per user")
            cur = db.execute(
                "INSERT INTO portfolios (owner_id, name, cash_cents, starting_cash_cents, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, name, starting_cash_cents, starting_cash_cents, self._clock.now()),
            )
        return PortfolioLedger(str(cur.lastrowid), str(key), name, starting_cash_cents, starting_cash_cents)

    # -- trading: the hot path ---------------------------------------------------------

    def save_trading(
        self,
        events: Sequence[TradeEvent],
        ledgers: Sequence[PortfolioLedger],
        *,
        now_ms: int,
        orders: Sequence[Order] = (),
    ) -> list[tuple[TradeEvent, int, str]]:
        """Store what a submit, cancel or market tick did, in one transaction; returns (event, eventId, payload).

        Upserts the last snapshot of every order in `events`, then those in `orders` (changes
        without an event, such as a stop that only triggered; these win), inserts the fill of
        every EXECUTION_REPORT, writes each ledger's cash, commissions and whole set of
        positions, and appends every event to the user's event stream with the next eventId
        (MAX + 1 of that user, read once per user per call). The payload is the exact JSON to send:
        ``encode_data({**event.to_wire(), "eventId": event_id})``. Anything that fails (an
        unknown portfolio, a repeated execution id, a second order with the same
        clientOrderId, an event that cannot be encoded) stores nothing and re-raises.
        """
        latest: dict[str, Order] = {}
        for event in events:
            latest[event.order.order_id] = event.order  # the last snapshot wins, in first-seen order
        for order in orders:
            latest[order.order_id] = order
        unique_ledgers = {ledger.portfolio_id: ledger for ledger in ledgers}
        with self._transaction() as db:
            user_keys: dict[str, int] = {}
            last_ids: dict[int, int] = {}
            event_ids: list[int] = []
            first_ids: dict[str, int] = {}
            for event in events:
                user_id = event.order.user_id
                key = user_keys.get(user_id)
                if key is None:
                    key = user_keys[user_id] = _need_key(user_id, "user id")
                    last_ids[key] = db.execute(_LAST_EVENT_SQL, (key,)).fetchone()[0]
                event_id = last_ids[key] = last_ids[key] + 1
                event_ids.append(event_id)
                first_ids.setdefault(event.order.order_id, event_id)

            db.executemany(_UPSERT_ORDER_SQL, [
                # An order with no event here is already stored, so its first_event_id is kept (0 is unused).
                _order_params(order, first_ids.get(order_id, 0)) for order_id, order in latest.items()
            ])
            db.executemany(_INSERT_FILL_SQL, [
                _fill_params(event.fill) for event in events if event.kind is EventKind.EXECUTION_REPORT
            ])
            if unique_ledgers:
                self._write_ledgers(db, unique_ledgers.values())

            saved, rows = [], []
            for event, event_id in zip(events, event_ids, strict=True):
                order = event.order
                payload = encode_data({**event.to_wire(), "eventId": event_id})
                rows.append((user_keys[order.user_id], event_id, _need_key(order.portfolio_id, "portfolio id"),
                             order.order_id, str(event.kind), payload, now_ms))
                saved.append((event, event_id, payload))
            db.executemany(
                "INSERT INTO order_events (user_id, event_id, portfolio_id, order_id, type, payload, created_at_ms)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return saved

    @staticmethod
    def _write_ledgers(db: sqlite3.Connection, ledgers: Iterable[PortfolioLedger]) -> None:
        money, keys, positions = [], [], []
        for ledger in ledgers:
            key = _need_key(ledger.portfolio_id, "portfolio id")
            money.append((ledger.cash_cents, ledger.commissions_cents, key))
            keys.append((key,))
            positions.extend(
                (key, p.symbol, p.quantity, p.cost_basis_cents, p.realized_pnl_cents, p.stop_loss_cents,
                 p.take_profit_cents)
                for p in ledger.positions.values()
                if p.quantity or p.cost_basis_cents or p.realized_pnl_cents
                or p.stop_loss_cents is not None or p.take_profit_cents is not None
            )
        cur = db.executemany("UPDATE portfolios SET cash_cents = ?, commissions_cents = ? WHERE id = ?", money)
        if cur.rowcount != len(money):
            raise StorageError("a ledger names a portfolio that is not stored")
        # Rewriting a portfolio's few positions whole also removes those the ledger dropped.
        db.executemany("DELETE FROM positions WHERE portfolio_id = ?", keys)
        db.executemany(
            "INSERT INTO positions (portfolio_id, symbol, quantity, cost_basis_cents, realized_pnl_cents,"
            " stop_loss_cents, take_profit_cents) VALUES (?, ?, ?, ?, ?, ?, ?)",
            positions,
        )

    # -- trading: start-up -------------------------------------------------------------

    def trading_ids(self) -> tuple[int, int]:
        """The highest numbers in stored order ids ("O123") and execution ids ("E45"), to seed `IdSequence`."""
        db = self._db
        orders = db.execute(
            "SELECT coalesce(max(CAST(substr(order_id, 2) AS INTEGER)), 0) FROM orders"
            f" WHERE order_id GLOB '{ORDER_ID_PREFIX}[0-9]*'"
        ).fetchone()[0]
        fills = db.execute(
            "SELECT coalesce(max(CAST(substr(execution_id, 2) AS INTEGER)), 0) FROM fills"
            f" WHERE execution_id GLOB '{EXECUTION_ID_PREFIX}[0-9]*'"
        ).fetchone()[0]
        return orders, fills

    def load_trading(self, starting_cash_default_cents: int) -> tuple[list[PortfolioLedger], list[Order]]:
        """Every portfolio as a ledger with its positions, and every open order oldest first.

        Ledgers' reserved cash and shares come back zero: the engine recomputes them from the open
        orders, which keep their own `reserved_cash_cents`.
        `starting_cash_default_cents` is not needed any more (every row carries its own starting
        cash since version 2) and is accepted so callers need not change.
        """
        orders = [_order(row) for row in self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status IN ('NEW', 'PARTIALLY_FILLED')"
            " ORDER BY created_at_ms, length(order_id), order_id"
        )]
        return self._ledgers(), orders

    def load_portfolio(self, portfolio_id: str) -> PortfolioLedger | None:
        """One portfolio as a ledger (reservations zero), e.g. one the operator CLI created while running."""
        key = _key(portfolio_id)
        found = [] if key is None else self._ledgers(key)
        return found[0] if found else None

    def _ledgers(self, key: int | None = None) -> list[PortfolioLedger]:
        where, params = ("WHERE portfolio_id = ?", (key,)) if key is not None else ("", ())
        positions: dict[int, dict[str, Position]] = {}
        for pid, symbol, quantity, cost, realized, stop_loss, take_profit in self._db.execute(
            "SELECT portfolio_id, symbol, quantity, cost_basis_cents, realized_pnl_cents, stop_loss_cents,"
            f" take_profit_cents FROM positions {where} ORDER BY portfolio_id, symbol", params
        ):
            positions.setdefault(pid, {})[symbol] = Position(
                symbol, quantity, 0, cost, realized, stop_loss, take_profit
            )
        where = where.replace("portfolio_id", "id")
        return [
            PortfolioLedger(str(pid), str(owner), name, starting, cash, 0, commissions, positions.get(pid, {}))
            for pid, owner, name, starting, cash, commissions in self._db.execute(
                "SELECT id, owner_id, name, starting_cash_cents, cash_cents, commissions_cents"
                f" FROM portfolios {where} ORDER BY id", params
            )
        ]

    # -- trading: reads ----------------------------------------------------------------

    def last_event_id(self, user_id: str | int) -> int:
        """The user's latest stored eventId, 0 when there is none."""
        key = _key(user_id)
        return 0 if key is None else self._db.execute(_LAST_EVENT_SQL, (key,)).fetchone()[0]

    def events_after(
        self, user_id: str | int, after_event_id: int, *, portfolio_id: str | None = None, limit: int = 10_000
    ) -> list[tuple[int, str, str]]:
        """The user's stored events after `after_event_id` (of one portfolio, if given), as (eventId, type, payload)."""
        key = _key(user_id)
        if key is None:
            return []
        sql = "SELECT event_id, type, payload FROM order_events WHERE user_id = ? AND event_id > ?"
        params: list = [key, after_event_id]
        if portfolio_id is not None:
            portfolio_key = _key(portfolio_id)
            if portfolio_key is None:
                return []
            sql += " AND portfolio_id = ?"
            params.append(portfolio_key)
        params.append(limit)
        return [tuple(row) for row in self._db.execute(sql + " ORDER BY event_id LIMIT ?", params)]

    def client_order(self, user_id: str | int, client_order_id: str) -> tuple[Order, int, str] | None:
        """The user's order with this clientOrderId, with its first event's id and payload, or None."""
        key = _key(user_id)
        if key is None or not _encodable(client_order_id):
            return None
        row = self._db.execute(
            f"SELECT {_prefixed('o', _ORDER_COLUMNS)}, e.event_id, e.payload FROM orders AS o"
            " JOIN order_events AS e ON e.user_id = o.user_id AND e.event_id = o.first_event_id"
            " WHERE o.user_id = ? AND o.client_order_id = ?",
            (key, client_order_id),
        ).fetchone()
        if row is None:
            return None
        return _order(row), row["event_id"], row["payload"]

    def order_by_id(self, order_id: str) -> Order | None:
        """The stored order with this id, whatever its status, or None."""
        if not _encodable(order_id):
            return None
        row = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        return None if row is None else _order(row)

    def order_history(
        self,
        *,
        user_ids: Sequence[str] | None,
        portfolio_id: str | None = None,
        symbol: str | None = None,
        status: OrderStatus | str | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> tuple[list[Order], str | None]:
        """Orders newest first (of these users; None means everyone's), a page at a time, and the next page's cursor.

        `before` is a cursor returned earlier (an opaque string); the cursor is None after the last page.
        A malformed cursor, an unknown status or a limit outside 1..500 raise `BadRequest`.
        """
        if type(limit) is not int or not 0 < limit <= MAX_HISTORY_LIMIT:
            raise BadRequest(f"limit must be 1 to {MAX_HISTORY_LIMIT}")
        try:
            status = None if status is None else OrderStatus(status)
        except ValueError:
            raise BadRequest(f"unknown order status {status!r}") from None
        terms, params = [], []
        if before is not None:
            created_at_ms, order_id = _decode_cursor(before)
            terms.append("(created_at_ms, length(order_id), order_id) < (?, ?, ?)")
            params += [created_at_ms, len(order_id), order_id]
        if user_ids is not None:
            keys = sorted({key for key in map(_key, user_ids) if key is not None})
            if not keys:
                return [], None
            if len(keys) == 1:
                terms.append("user_id = ?")
                params.append(keys[0])
            else:
                terms.append("user_id IN (SELECT value FROM json_each(?))")
                params.append(encode_data(keys))
        if portfolio_id is not None:
            portfolio_key = _key(portfolio_id)
            if portfolio_key is None:
                return [], None
            terms.append("portfolio_id = ?")
            params.append(portfolio_key)
        if symbol is not None:
            if not _encodable(symbol):
                return [], None
            terms.append("symbol = ?")
            params.append(symbol)
        if status is not None:
            terms.append("status = ?")
            params.append(status.value)
        where = f" WHERE {' AND '.join(terms)}" if terms else ""
        rows = self._db.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders{where}"
            " ORDER BY created_at_ms DESC, length(order_id) DESC, order_id DESC LIMIT ?",
            [*params, limit + 1],
        ).fetchall()
        orders = [_order(row) for row in rows[:limit]]
        more = len(rows) > limit
        return orders, _encode_cursor(orders[-1].created_at_ms, orders[-1].order_id) if more else None

    def fills_for(self, portfolio_id: str, symbol: str | None = None, limit: int = 500) -> list[Fill]:
        """The portfolio's fills (of one symbol, if given), last executed first."""
        key = _key(portfolio_id)
        if key is None or (symbol is not None and not _encodable(symbol)):
            return []
        sql = f"SELECT {_FILL_COLUMNS} FROM fills WHERE portfolio_id = ?"
        params: list = [key]
        if symbol is not None:
            sql += " AND symbol = ?"
            params.append(symbol)
        rows = self._db.execute(
            sql + " ORDER BY length(execution_id) DESC, execution_id DESC LIMIT ?", [*params, limit]
        )
        return [_fill(row) for row in rows]

    # -- value history -----------------------------------------------------------------

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
                "INSERT OR REPLACE INTO portfolio_values (portfolio_id, time_ms, market_time_ms, value_cents,"
                " cash_cents) VALUES (?, ?, ?, ?, ?)",
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

    # -- reconciliation ----------------------------------------------------------------

    def reconcile(self, portfolio_id: str) -> dict:
        """Recompute cash, commissions, positions and order fill totals from the fills alone; compare with storage.

        Returns ``{"ok": bool, "fills": n, "differences": [...]}``, each difference a dict with
        "field", "expected" (from the fills) and "stored", plus "symbol" or "orderId" where it
        belongs to one. Fills are replayed per symbol in execution order by the ledger's rules
        (domain.ledger.apply_fill): a fill adds quantity * price to the cost basis, except the
        part that closes a position (long or short), which removes cost_basis * closed / held
        rounded half-even, or all of it when the position closes, and realizes the difference
        to the fill's value. Raises `NotFound`.
        """
        key = _key(portfolio_id)
        row = None if key is None else self._db.execute(
            "SELECT starting_cash_cents, cash_cents, commissions_cents FROM portfolios WHERE id = ?", (key,)
        ).fetchone()
        if row is None:
            raise NotFound(f"portfolio {portfolio_id} not found")
        starting, stored_cash, stored_commissions = row
        cash, commissions = starting, 0
        replayed: dict[str, list[int]] = {}   # symbol -> [quantity, cost basis, realized P&L]
        by_order: dict[str, list[int]] = {}   # order id -> [quantity, notional, commission]
        fills = self._db.execute(
            "SELECT order_id, symbol, side, quantity, price_cents, commission_cents FROM fills"
            " WHERE portfolio_id = ? ORDER BY symbol, length(execution_id), execution_id",
            (key,),
        ).fetchall()
        for order_id, symbol, side, quantity, price, commission in fills:
            notional = quantity * price
            held = replayed.setdefault(symbol, [0, 0, 0])
            delta = quantity if side == Side.BUY else -quantity
            cash -= commission + (notional if delta > 0 else -notional)
            commissions += commission
            if held[0] and (held[0] > 0) != (delta > 0):  # closes (part of) a long, or of a short
                closing = min(abs(delta), abs(held[0]))
                if closing == abs(held[0]):
                    removed = held[1]
                else:
                    removed = round(Fraction(held[1] * closing, abs(held[0])))  # round() of a Fraction is half-even
                signed = closing if delta > 0 else -closing
                held[2] += -signed * price - removed
                held[1] -= removed
                held[0] += signed
                delta -= signed
            if delta:
                held[0] += delta
                held[1] += delta * price
            totals = by_order.setdefault(order_id, [0, 0, 0])
            totals[0] += quantity
            totals[1] += notional
            totals[2] += commission

        differences: list[dict] = []

        def compare(field_name: str, expected: int, stored: int, **where) -> None:
            if expected != stored:
                differences.append({"field": field_name, **where, "expected": expected, "stored": stored})

        compare("cash_cents", cash, stored_cash)
        compare("commissions_cents", commissions, stored_commissions)
        stored_positions = {
            symbol: (quantity, cost, realized) for symbol, quantity, cost, realized in self._db.execute(
                "SELECT symbol, quantity, cost_basis_cents, realized_pnl_cents FROM positions WHERE portfolio_id = ?",
                (key,),
            )
        }
        for symbol in sorted(replayed.keys() | stored_positions.keys()):
            expected = replayed.get(symbol, (0, 0, 0))
            stored = stored_positions.get(symbol, (0, 0, 0))
            for name, want, have in zip(_POSITION_FIELDS, expected, stored, strict=True):
                compare(name, want, have, symbol=symbol)
        for order_id, filled, notional, commission in self._db.execute(
            "SELECT order_id, filled_quantity, filled_notional_cents, commission_cents FROM orders"
            " WHERE portfolio_id = ? ORDER BY created_at_ms, length(order_id), order_id",
            (key,),
        ):
            expected = by_order.pop(order_id, (0, 0, 0))
            for name, want, have in zip(_ORDER_FILL_FIELDS, expected, (filled, notional, commission), strict=True):
                compare(name, want, have, orderId=order_id)
        for order_id in by_order:  # fills of an order stored under another portfolio, or of none
            differences.append({"field": "order", "orderId": order_id, "expected": "stored", "stored": None})
        return {"ok": not differences, "fills": len(fills), "differences": differences}

    # -- risk ----------------------------------------------------------------------------

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
            db.executemany("INSERT OR REPLACE INTO risk_alerts (alert_id, portfolio_id, created_at_ms, acknowledged,"
                           " payload) VALUES (?, ?, ?, ?, ?)",
                           [(aid, _key(pid), at, int(bool(data.get("acknowledged"))), encode_data(data))
                            for aid, pid, at, data in alerts])

    def recent_alerts(self, portfolio_id: str, limit: int = 50) -> list[dict]:
        """The portfolio's latest alerts, newest first, with their acknowledged flag."""
        rows = self._db.execute("SELECT payload, acknowledged FROM risk_alerts WHERE portfolio_id = ?"
                                " ORDER BY created_at_ms DESC, alert_id DESC LIMIT ?", (_key(portfolio_id), limit))
        return [{**ujson.loads(payload), "acknowledged": bool(acknowledged)} for payload, acknowledged in rows]

    def acknowledge_alert(self, alert_id: str) -> str | None:
        """Mark an alert acknowledged; returns its portfolio id, None if there is no such alert."""
        with self._transaction() as db:
            row = db.execute("SELECT portfolio_id FROM risk_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE risk_alerts SET acknowledged = 1 WHERE alert_id = ?", (alert_id,))
        return str(row[0])

    def alert_portfolio(self, alert_id: str) -> str | None:
        row = self._db.execute("SELECT portfolio_id FROM risk_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
        return None if row is None else str(row[0])

    def last_alert_number(self) -> int:
        """The highest numeric part of stored alert ids ("A12"), to seed the id sequence."""
        row = self._db.execute("SELECT max(CAST(substr(alert_id, 2) AS INTEGER)) FROM risk_alerts").fetchone()
        return row[0] or 0


def _encodable(text: object) -> bool:
    # SQLite stores UTF-8; a str holding a lone surrogate (valid JSON "\\ud800") cannot be bound.
    if not isinstance(text, str):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _user(row: sqlite3.Row | None) -> User | None:
    if row is None:
        return None
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        created_at=row["created_at"],
        password_hash=row["password_hash"],
    )


ORDER_ID_PREFIX = "O"      # the engine's IdSequence prefixes, for trading_ids
EXECUTION_ID_PREFIX = "E"

_POSITION_FIELDS = ("quantity", "cost_basis_cents", "realized_pnl_cents")
_ORDER_FILL_FIELDS = ("filled_quantity", "filled_notional_cents", "commission_cents")

_LAST_EVENT_SQL = "SELECT coalesce(max(event_id), 0) FROM order_events WHERE user_id = ?"

_ORDER_COLUMNS = (
    "order_id, client_order_id, portfolio_id, user_id, symbol, side, order_type, quantity, limit_price_cents,"
    " stop_price_cents, time_in_force, status, created_at_ms, updated_at_ms, day_index, filled_quantity,"
    " filled_notional_cents, commission_cents, reserved_cash_cents, stop_triggered, reject_reason, error"
)
# What an order's later snapshots may change; the rest is fixed when it is first stored.
_ORDER_MUTABLE = (
    "quantity", "limit_price_cents", "stop_price_cents", "status", "updated_at_ms", "filled_quantity",
    "filled_notional_cents", "commission_cents", "reserved_cash_cents", "stop_triggered", "reject_reason", "error",
)
_UPSERT_ORDER_SQL = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}, first_event_id) VALUES ({', '.join('?' * 23)})"
    " ON CONFLICT (order_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _ORDER_MUTABLE)
)
_FILL_COLUMNS = (
    "execution_id, order_id, portfolio_id, user_id, symbol, side, quantity, price_cents, commission_cents,"
    " time_ms, market_time_ms"
)
_INSERT_FILL_SQL = f"INSERT INTO fills ({_FILL_COLUMNS}) VALUES ({', '.join('?' * 11)})"


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


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


def _order_params(order: Order, first_event_id: int) -> tuple:
    return (
        order.order_id, order.client_order_id, _need_key(order.portfolio_id, "portfolio id"),
        _need_key(order.user_id, "user id"), order.symbol, str(order.side), str(order.order_type),
        order.quantity, order.limit_price, order.stop_price, str(order.time_in_force), str(order.status),
        order.created_at_ms, order.updated_at_ms, order.day_index, order.filled_quantity,
        order.filled_notional_cents, order.commission_cents, order.reserved_cash_cents, int(order.stop_triggered),
        None if order.reject_reason is None else str(order.reject_reason), order.error, first_event_id,
    )


def _order(row: sqlite3.Row) -> Order:
    (order_id, client_order_id, portfolio_id, user_id, symbol, side, order_type, quantity, limit_price,
     stop_price, time_in_force, status, created_at_ms, updated_at_ms, day_index, filled_quantity,
     filled_notional_cents, commission_cents, reserved_cash_cents, stop_triggered, reject_reason,
     error) = tuple(row)[:22]
    return Order(
        order_id=order_id, client_order_id=client_order_id, portfolio_id=str(portfolio_id), user_id=str(user_id),
        symbol=symbol, side=Side(side), order_type=OrderType(order_type), quantity=quantity,
        limit_price=limit_price, stop_price=stop_price, time_in_force=TimeInForce(time_in_force),
        status=OrderStatus(status), created_at_ms=created_at_ms, updated_at_ms=updated_at_ms, day_index=day_index,
        filled_quantity=filled_quantity, filled_notional_cents=filled_notional_cents,
        commission_cents=commission_cents, reserved_cash_cents=reserved_cash_cents, stop_triggered=bool(stop_triggered),
        reject_reason=None if reject_reason is None else RejectReason(reject_reason), error=error,
    )


def _fill_params(fill: Fill) -> tuple:
    return (
        fill.execution_id, fill.order_id, _need_key(fill.portfolio_id, "portfolio id"),
        _need_key(fill.user_id, "user id"), fill.symbol, str(fill.side), fill.quantity, fill.price_cents,
        fill.commission_cents, fill.time_ms, fill.market_time_ms,
    )


def _fill(row: sqlite3.Row) -> Fill:
    (execution_id, order_id, portfolio_id, user_id, symbol, side, quantity, price_cents, commission_cents,
     time_ms, market_time_ms) = tuple(row)
    return Fill(execution_id, order_id, str(portfolio_id), str(user_id), symbol, Side(side), quantity,
                price_cents, commission_cents, time_ms, market_time_ms)


def _encode_cursor(created_at_ms: int, order_id: str) -> str:
    """The ORDER_HISTORY cursor: unpadded URL-safe base64 of "created_at_ms:order_id" of the page's last order."""
    return base64.urlsafe_b64encode(f"{created_at_ms}:{order_id}".encode()).decode("ascii").rstrip("=")


def _decode_cursor(cursor: object) -> tuple[int, str]:
    """The (created_at_ms, order_id) a cursor stands for; anything we did not issue raises `BadRequest`."""
    try:
        if not isinstance(cursor, str) or not cursor.isascii() or len(cursor) > 400:
            raise ValueError
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        millis, order_id = text.split(":", 1)
        created_at_ms = int(millis)
        if not order_id or _encode_cursor(created_at_ms, order_id) != cursor:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("invalid cursor") from None
    return created_at_ms, order_id
