"""Who uses Stock Quest: roles, users, and which roles may see the whole class."""

import enum
from dataclasses import dataclass, field

from domain.errors import Conflict, NotFound

__all__ = ["Role", "User", "CLASS_ROLES", "UsernameTaken", "UnknownUser"]


class Role(enum.StrEnum):
    """The three roles a user can have; the stored one decides rights."""

    STUDENT = "student"
    TEACHER = "teacher"
    ADMIN = "admin"


CLASS_ROLES = frozenset({Role.TEACHER, Role.ADMIN})
"""Roles that may read (never trade) every student's portfolio, orders and risk, and steer the market."""


@dataclass(frozen=True)
class User:
    """One stored user; `password_hash` is None for guests, who cannot log in by password."""

    id: int
    username: str
    display_name: str
    role: Role
    created_at: float
    password_hash: str | None = field(default=None, repr=False)


class UsernameTaken(Conflict):
    """A user with that name (compared case-insensitively) already exists."""


class UnknownUser(NotFound):
    """No user has that name or id."""
