"""The portfolios the running server holds: the order engine's live ledgers, who may read or trade each, new ones."""

from collections.abc import Callable

from domain.contests import Trader
from domain.errors import Forbidden, NotFound
from domain.orders import OrderEngine
from domain.trading import PortfolioLedger
from domain.users import CLASS_ROLES, User

from .storage import Stores
from .users import UserDirectory

__all__ = ["PortfolioBook"]


class PortfolioBook:
    """Owns access to portfolios; the ledgers themselves live in the order engine, the only thing that changes them.

    It finds a ledger (loading one made behind the engine's back, by a sign-up or the operator's command line),
    lists them, creates new ones, and decides who may read one (its owner, a team portfolio's members, teachers
    and admins, by their role as stored now) and who may trade it (its owner, or a member of its team).
    `traders(portfolio_id, user_id)` says who trades a contest portfolio (services.contests.ContestDirectory.trader).
    """

    def __init__(self, *, engine: OrderEngine, storage: Stores, users: UserDirectory, starting_cash_cents: int,
                 traders: Callable[[str, str], Trader | None] | None = None):
        self._engine, self._storage, self._users = engine, storage, users
        self.starting_cash_cents = starting_cash_cents
        self._traders = traders

    def ledger(self, portfolio_id: str) -> PortfolioLedger:
        """The live ledger (read it, never change it); NotFound if there is no such portfolio."""
        try:
            return self._engine.portfolio(portfolio_id)
        except NotFound:
            ledger = self._storage.load_portfolio(portfolio_id)
            if ledger is None:
                raise NotFound(f"portfolio {portfolio_id} not found") from None
            self._engine.add_portfolio(ledger)
            return ledger

    def ledgers(self) -> list[PortfolioLedger]:
        """Every ledger the engine holds, in the order they were added."""
        return self._engine.portfolios()

    def ids_of(self, user_id: str) -> list[str]:
        """The user's own portfolios, oldest first."""
        return self._storage.portfolio_ids_of(user_id)

    def main_portfolios(self) -> list[tuple[User, str]]:
        """Each student with their first portfolio, in the order they joined (the leaderboard's)."""
        return self._storage.main_portfolios()

    def create(self, user: User, name: str) -> PortfolioLedger:
        """Another portfolio for `user` with the configured starting cash (LimitExceeded past the limit)."""
        created = self._storage.create_portfolio(str(user.id), name, self.starting_cash_cents)
        return self.ledger(created.portfolio_id)

    def reads_everyone(self, user: User) -> bool:
        """A teacher or an admin (by the role stored now): they read every student's portfolios and orders."""
        return self._users.role_of(user) in CLASS_ROLES

    def may_read(self, user: User, owner_id: str) -> bool:
        """Whether `user` may read what belongs to `owner_id`: their own, or anyone's for a teacher or admin."""
        return owner_id == str(user.id) or self.reads_everyone(user)

    def readable(self, user: User, portfolio_id: str) -> PortfolioLedger:
        """The ledger of `portfolio_id` if `user` may read it, else Forbidden.

        To someone who reads only their own, an id that does not exist is "not yours" too: the same answer as
        another student's, so sequential ids do not tell who exists. Teachers and admins get NotFound.
        """
        try:
            ledger = self.ledger(portfolio_id)
        except NotFound:
            if self.reads_everyone(user):
                raise
            raise Forbidden(f"portfolio {portfolio_id} is not yours") from None
        if not self.may_read(user, ledger.owner_id) and self._team_trader(user, portfolio_id) is None:
            raise Forbidden(f"portfolio {portfolio_id} is not yours")
        return ledger

    def read_by_role(self, user: User, portfolio_id: str) -> bool:
        """Whether `user` reads the portfolio only as a teacher or admin: not their own, nor their team's (what a
        demoted teacher stops hearing at once)."""
        return self.ledger(portfolio_id).owner_id != str(user.id) and self._team_trader(user, portfolio_id) is None

    def tradable(self, user: User, portfolio_id: str) -> PortfolioLedger:
        """The ledger of `portfolio_id` if `user` may trade it (teachers may read others', never trade them)."""
        ledger, _ = self._trading(user, portfolio_id)
        return ledger

    def trader(self, user: User, portfolio_id: str) -> Trader:
        """Who an order of `user` into `portfolio_id` is for (the owner) and by (`user`); Forbidden when they may
        not trade it."""
        _, trader = self._trading(user, portfolio_id)
        return trader

    def _trading(self, user: User, portfolio_id: str) -> tuple[PortfolioLedger, Trader]:
        ledger = self.readable(user, portfolio_id)
        user_id = str(user.id)
        if ledger.owner_id == user_id:
            return ledger, Trader(user_id, user_id)
        trader = self._team_trader(user, portfolio_id)
        if trader is None:
            raise Forbidden(f"portfolio {portfolio_id} is not yours to trade")
        return ledger, trader

    def _team_trader(self, user: User, portfolio_id: str) -> Trader | None:
        """`user` as a member of the team trading `portfolio_id`; None for anyone else."""
        if self._traders is None:
            return None
        try:
            trader = self._traders(portfolio_id, str(user.id))
        except (Forbidden, NotFound):
            return None
        return trader if trader is not None and trader.owner_id != trader.placed_by else None
