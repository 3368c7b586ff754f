"""Users and their portfolio rows: accounts, roles, the leaderboard's list, and opening portfolios."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import BadRequest, LimitExceeded
from domain.trading import PortfolioLedger
from domain.users import Role, UnknownUser, User, UsernameTaken
from services.storage.database import Database, _encodable, _key

__all__ = ["MAX_PORTFOLIOS_PER_USER", "MAX_PORTFOLIO_NAME", "PortfolioRow", "UserStore"]

MAX_PORTFOLIOS_PER_USER = 5
MAX_PORTFOLIO_NAME = 64


@dataclass(frozen=True)
class PortfolioRow:
    """One stored portfolio's own columns; positions and orders live in their own tables."""

    id: int
    owner_id: int
    name: str
    cash_cents: int
    created_at: float


class UserStore(Database):
    """Owns the users and the opening of portfolios: who may log in, with which role, which portfolios they hold."""

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
        with self._transaction() as db:
            # The username is the users table's only unique value besides the id: a conflict is a taken name.
            row = db.execute(
                "INSERT INTO users (username, display_name, password_hash, role, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                (username, display_name, password_hash, role.value, now),
            ).fetchone()
            if row is None:
                raise UsernameTaken(f"username {username!r} is taken")
            user_id = row[0]
            db.execute(
                "INSERT INTO portfolios (owner_id, name, cash_cents, starting_cash_cents, created_at)"
                " VALUES (?, 'Main', ?, ?, ?)",
                (user_id, starting_cash_cents, starting_cash_cents, now),
            )
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
        row = self._db.execute("SELECT * FROM users WHERE lower(username) = lower(?)", (username,)).fetchone()
        return _user(row)

    def set_role(self, username: str, role: Role | str) -> User:
        """Change a user's role; raises `UnknownUser`. Takes effect on their next request."""
        role = Role(role)
        if not _encodable(username):
            raise UnknownUser(f"no user named {username!r}")
        with self._transaction() as db:
            row = db.execute("UPDATE users SET role = ? WHERE lower(username) = lower(?) RETURNING *",
                             (role.value, username)).fetchone()
            if row is None:
                raise UnknownUser(f"no user named {username!r}")
        return _user(row)

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace a user's password hash (a password change); raises `UnknownUser`."""
        with self._transaction() as db:
            row = db.execute("UPDATE users SET password_hash = ? WHERE id = ? RETURNING id",
                             (password_hash, int(user_id))).fetchone()
            if row is None:
                raise UnknownUser(f"no user with id {user_id}")

    def count_users(self) -> int:
        return self._db.execute("SELECT count(*) FROM users").fetchone()[0]

    def main_portfolios(self, role: Role = Role.STUDENT) -> list[tuple[User, str]]:
        """Each user of `role` with their first portfolio's id, in the order they joined (the leaderboard's).

        A contest portfolio is never one: the class's leaderboard ranks ordinary portfolios, contests rank their own.
        """
        rows = self._db.execute(
            "SELECT *, (SELECT min(p.id) FROM portfolios p WHERE p.owner_id = users.id AND p.contest_id IS NULL)"
            " AS main_portfolio FROM users WHERE role = ? ORDER BY created_at, id", (str(role),))
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
        """Create another portfolio holding the starting cash; raises `LimitExceeded` past MAX_PORTFOLIOS_PER_USER
        ordinary portfolios (contest portfolios do not count: a contest gives them, the student does not choose to).

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
            count = db.execute("SELECT count(*) FROM portfolios WHERE owner_id = ? AND contest_id IS NULL",
                               (key,)).fetchone()[0]
            if count >= MAX_PORTFOLIOS_PER_USER:
                raise LimitExceeded(f"at most {MAX_PORTFOLIOS_PER_USER} portfolios per user")
            (portfolio_key,) = db.execute(
                "INSERT INTO portfolios (owner_id, name, cash_cents, starting_cash_cents, created_at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (key, name, starting_cash_cents, starting_cash_cents, self._clock.now()),
            ).fetchone()
        return PortfolioLedger(str(portfolio_key), str(key), name, starting_cash_cents, starting_cash_cents)


def _user(row) -> User | None:
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
