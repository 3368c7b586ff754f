"""Durable state in one SQLite file: users and portfolios now, orders, fills and order events next."""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Self

from domain.clock import Clock
from domain.errors import DomainError, NotFound

__all__ = [
    "DB_FILENAME",
    "SCHEMA",
    "SCHEMA_VERSION",
    "PortfolioRow",
    "Role",
    "Storage",
    "StorageError",
    "UnknownUser",
    "User",
    "UsernameTaken",
    "to_cents",
]

DB_FILENAME = "stockquest.db"
BUSY_TIMEOUT_S = 10.0

# The whole schema. A new table is appended here and SCHEMA_VERSION goes up by one;
# changing an existing table also needs an upgrade step in Storage._migrate.
# STRICT makes SQLite refuse a float in cash_cents instead of silently storing it.
SCHEMA_VERSION = 1
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

CREATE TABLE IF NOT EXISTS portfolios (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   INTEGER NOT NULL REFERENCES users (id),
    name       TEXT    NOT NULL,
    cash_cents INTEGER NOT NULL,
    created_at REAL    NOT NULL
) STRICT;

CREATE INDEX IF NOT EXISTS portfolios_by_owner ON portfolios (owner_id);
"""


class Role(enum.StrEnum):
    """The three roles a user can have; the stored one decides rights."""

    STUDENT = "student"
    TEACHER = "teacher"
    ADMIN = "admin"


class StorageError(Exception):
    """The database cannot be used (for example, it was written by a newer server)."""


class UsernameTaken(DomainError):
    """A user with that name (compared case-insensitively) already exists."""

    code = "CONFLICT"


class UnknownUser(NotFound):
    """No user has that name or id."""


@dataclass(frozen=True)
class User:
    """One stored user; `password_hash` is None for guests, who cannot log in by password."""

    id: int
    username: str
    display_name: str
    role: Role
    created_at: float
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PortfolioRow:
    """One stored portfolio's own columns; positions and orders live in their own tables."""

    id: int
    owner_id: int
    name: str
    cash_cents: int
    created_at: float


def to_cents(amount: Decimal | int | str) -> int:
    """Convert a money amount to integer cents, rounding half-even.

    >>> to_cents(Decimal("100000.00"))
    10000000
    """
    cents = (Decimal(amount) * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(cents)


class Storage:
    """Owns the SQLite connection and everything that must survive a restart.

    WAL mode with ``synchronous=NORMAL``: a committed transaction survives the
    process being killed (not necessarily a power cut). Other processes, such as
    the operator command line, may open the same file while the server runs;
    writers wait for each other up to the busy timeout.

    Use it from one thread (the IOLoop's). Each write method is one transaction
    (``with self._transaction() as db:``); orders, fills and events will follow that pattern.

    >>> from domain.clock import FakeClock
    >>> with Storage(":memory:", FakeClock()) as db:
    ...     db.create_user("ada", "Ada", None, Role.STUDENT, 100).username
    'ada'
    """

    def __init__(self, path: Path | str, clock: Clock):
        self._clock = clock
        self.path = path if path == ":memory:" else Path(path)
        if isinstance(self.path, Path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (see _transaction).
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None
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
        try:
            # executescript commits anything pending first, so the transaction is inside the script.
            self._db.executescript(
                f"BEGIN IMMEDIATE;\n{SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
            )
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
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
                    "INSERT INTO portfolios (owner_id, name, cash_cents, created_at)"
                    " VALUES (?, 'Main', ?, ?)",
                    (user_id, starting_cash_cents, now),
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

    # -- portfolios --------------------------------------------------------------------

    def portfolios_of(self, user_id: int) -> list[PortfolioRow]:
        """The user's portfolios, oldest first."""
        rows = self._db.execute(
            "SELECT id, owner_id, name, cash_cents, created_at FROM portfolios"
            " WHERE owner_id = ? ORDER BY id",
            (user_id,),
        ).fetchall()
        return [PortfolioRow(*row) for row in rows]


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
