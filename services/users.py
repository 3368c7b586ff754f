"""Accounts as the running server sees them: who a token names, sign-ups, and each user's role as stored now."""

from domain.users import Role, User

from .auth import AuthError, TokenService
from .storage import Stores

__all__ = ["UserDirectory"]


class UserDirectory:
    """Owns every account look-up the handlers make, so none of them reaches storage.

    The role that decides rights is always the stored one, read at the moment of the request: a token's
    `role` claim is a hint for clients, and a demoted teacher loses teacher rights at once.
    """

    def __init__(self, *, storage: Stores, tokens: TokenService, starting_cash_cents: int):
        self._storage, self._tokens = storage, tokens
        self.starting_cash_cents = starting_cash_cents

    def signed_in(self, token: str) -> tuple[User, float]:
        """The stored user a token names and when the token expires; AuthError for a bad token or unknown user."""
        claims = self._tokens.verify(token)
        user = self._storage.user_by_id(claims.user_id)
        if user is None:
            raise AuthError("unknown user")
        return user, claims.expires_at

    def by_id(self, user_id: int) -> User | None:
        return self._storage.user_by_id(user_id)

    def by_name(self, username: str) -> User | None:
        return self._storage.user_by_name(username)

    def create(self, username: str, display_name: str, password_hash: str | None,
               role: Role = Role.STUDENT) -> User:
        """A new user with a first portfolio holding the starting cash; UsernameTaken if the name exists."""
        return self._storage.create_user(username, display_name, password_hash, role, self.starting_cash_cents)

    def set_password_hash(self, user: User, password_hash: str) -> None:
        self._storage.set_password_hash(user.id, password_hash)

    def role_of(self, user: User) -> Role:
        """The role as stored now, not as it was when the connection or token began (unknown users: student)."""
        current = self._storage.user_by_id(int(user.id))
        return current.role if current is not None else Role.STUDENT

    def token_for(self, user: User) -> str:
        return self._tokens.issue(user)

    def portfolio_ids(self, user: User) -> list[str]:
        """The user's own portfolios, oldest first: told at sign-in, so a bot knows where to trade."""
        return self._storage.portfolio_ids_of(user.id)

    @property
    def can_issue_tokens(self) -> bool:
        return self._tokens.can_issue
