"""REST endpoints that hand out tokens: register, login and classroom guest sign-in."""

from __future__ import annotations

import functools
import secrets

from tornado.ioloop import IOLoop

from domain.users import User, UsernameTaken
from services.auth import (
    GUEST_PREFIX,
    check_login,
    hash_password,
    validate_nickname,
    validate_password,
    validate_username,
)
from services.container import Services

from .http import ApiError, JsonHandler, user_to_wire

__all__ = ["AUTH_ROUTES", "GuestHandler", "LoginHandler", "PasswordHandler", "RegisterHandler"]

LOGIN_FAILED = "invalid username or password"
_GUEST_NAME_ATTEMPTS = 5


class _TokenHandler(JsonHandler):
    """Shared by the endpoints that answer `{token, user}`."""

    engine_bound = True

    def prepare_here(self) -> None:
        if not self.services.users.can_issue_tokens:
            raise ApiError(403, "this server verifies tokens but does not issue them", code="FORBIDDEN")

    def send_token(self, user: User, status: int) -> None:
        self.write_json({"token": self.services.users.token_for(user), "user": user_to_wire(user),
                         "portfolioIds": self.services.users.portfolio_ids(user)}, status)


class RegisterHandler(_TokenHandler):
    """POST /api/auth/register {username, password} -> 201 {token, user}; 409 if the name is taken."""

    async def post(self) -> None:
        body = self.json_body()
        username = validate_username(self.field(body, "username"))
        password = validate_password(self.field(body, "password"))
        self.services.sign_in.sign_up(self.request.remote_ip)
        users = self.services.users
        if users.by_name(username) is not None:  # spare the hash work; create re-checks
            raise UsernameTaken(f"username {username!r} is taken")
        password_hash = await IOLoop.current().run_in_executor(
            None, functools.partial(hash_password, password, n=self.services.config.password_hash_n)
        )
        user = users.create(username, username, password_hash)
        self.send_token(user, 201)


class LoginHandler(_TokenHandler):
    """POST /api/auth/login {username, password} -> 200 {token, user}; 401 saying nothing about which part was wrong."""

    async def post(self) -> None:
        body = self.json_body()
        username = self.field(body, "username")
        password = self.field(body, "password")
        self.services.sign_in.login_started(username, self.request.remote_ip)
        user = self.services.users.by_name(username)
        stored = user.password_hash if user is not None else None
        ok = await IOLoop.current().run_in_executor(
            None, functools.partial(check_login, password, stored, n=self.services.config.password_hash_n)
        )
        if not ok or user is None:
            raise ApiError(401, LOGIN_FAILED, code="UNAUTHORIZED")
        self.services.sign_in.login_succeeded(username)
        self.send_token(user, 200)


class GuestHandler(_TokenHandler):
    """POST /api/auth/guest {nickname} -> 201 {token, user}: a new password-less student; 403 when switched off."""

    def post(self) -> None:
        if not self.services.config.allow_guests:
            raise ApiError(403, "guest sign-in is switched off on this server", code="FORBIDDEN")
        nickname = validate_nickname(self.field(self.json_body(), "nickname"))
        self.services.sign_in.sign_up(self.request.remote_ip)
        # 8 random hex digits: a clash is rare, and a registered name never clashes ("guest-" is reserved).
        for _ in range(_GUEST_NAME_ATTEMPTS):
            try:
                user = self.services.users.create(f"{GUEST_PREFIX}{secrets.token_hex(4)}", nickname, None)
            except UsernameTaken:
                continue
            break
        else:
            raise ApiError(500, "could not pick a free guest name", code="INTERNAL")
        self.send_token(user, 201)


class PasswordHandler(_TokenHandler):
    """POST /api/auth/password {currentPassword, newPassword} (Bearer token) -> 200 {token, user, portfolioIds}.

    The current password is checked like a login (and counts against the same throttle), so a token left signed in
    on a classroom laptop cannot take the account over; a guest has no password to change (403)."""

    async def post(self) -> None:
        user = self.bearer_user()
        body = self.json_body()
        current = self.field(body, "currentPassword")
        new = validate_password(self.field(body, "newPassword"))
        if user.password_hash is None:
            raise ApiError(403, "a guest has no password: register an account instead", code="FORBIDDEN")
        self.services.sign_in.login_started(user.username, self.request.remote_ip)
        n = self.services.config.password_hash_n
        if not await IOLoop.current().run_in_executor(None, functools.partial(check_login, current, user.password_hash,
                                                                              n=n)):
            raise ApiError(401, "the current password is wrong", code="UNAUTHORIZED")
        self.services.sign_in.login_succeeded(user.username)
        password_hash = await IOLoop.current().run_in_executor(None, functools.partial(hash_password, new, n=n))
        self.services.users.set_password_hash(user, password_hash)
        self.send_token(user, 200)


def AUTH_ROUTES(services: Services) -> list:
    """The auth routes, each handed `services`."""
    kwargs = {"services": services}
    return [
        (r"/api/auth/register", RegisterHandler, kwargs),
        (r"/api/auth/login", LoginHandler, kwargs),
        (r"/api/auth/guest", GuestHandler, kwargs),
        (r"/api/auth/password", PasswordHandler, kwargs),
    ]
