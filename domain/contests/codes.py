"""Join codes and display names: what a student types to join a contest, and the nickname it shows them under."""

import random
import unicodedata
from collections.abc import Container

from domain.errors import BadRequest, Conflict

__all__ = [
    "JOIN_CODE_ALPHABET",
    "new_join_code",
    "parse_join_code",
    "display_name",
    "name_key",
    "MIN_NAME_LENGTH",
    "MAX_NAME_LENGTH",
]

JOIN_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""32 characters read aloud or off a projector without doubt: no 0/O and no 1/I."""

_CODE_LENGTH = 6  # 32**6, about a billion codes: a class guessing at random finds nothing
_ATTEMPTS = 100
_DASHES = frozenset("-‐‑‒–—−_")

MIN_NAME_LENGTH = 2
MAX_NAME_LENGTH = 24


def new_join_code(rng: random.Random, taken: Container[str] = frozenset()) -> str:
    """A fresh code like `QX7-42K` from `rng`, not in `taken` (Conflict if 100 draws all were: the space is full)."""
    for _ in range(_ATTEMPTS):
        raw = "".join(rng.choice(JOIN_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
        code = f"{raw[:3]}-{raw[3:]}"
        if code not in taken:
            return code
    raise Conflict("no free join code could be found")


def parse_join_code(text: object) -> str:
    """A join code as typed, in its canonical form `QX7-42K`: any case, spaces and dashes anywhere or none.

    BadRequest for anything that is not 6 characters of JOIN_CODE_ALPHABET (a 0, O, 1 or I never is).
    """
    if not isinstance(text, str) or len(text) > 40:
        raise BadRequest("a join code looks like QX7-42K")
    raw = "".join(c for c in text.upper() if not c.isspace() and c not in _DASHES)
    if len(raw) != _CODE_LENGTH or any(c not in JOIN_CODE_ALPHABET for c in raw):
        raise BadRequest("a join code is 6 letters and digits like QX7-42K (there is no 0, O, 1 or I in one)")
    return f"{raw[:3]}-{raw[3:]}"


def display_name(text: object, what: str = "nickname", *, longest: int = MAX_NAME_LENGTH) -> str:
    """A nickname or team name as it will be shown: NFC-normalised, trimmed, inner runs of spaces made one space.

    BadRequest unless it is then MIN_NAME_LENGTH to `longest` printable characters: no control, format or
    line-separator characters and no space but the plain one, so a name looks like what it is on every screen.
    """
    if not isinstance(text, str):
        raise BadRequest(f"the {what} must be text")
    name = unicodedata.normalize("NFC", text).strip()
    if not name.isprintable():
        raise BadRequest(f"the {what} must contain only printable characters")
    name = " ".join(part for part in name.split(" ") if part)
    if not MIN_NAME_LENGTH <= len(name) <= longest:
        raise BadRequest(f"the {what} must be {MIN_NAME_LENGTH} to {longest} characters")
    return name


def name_key(name: str) -> str:
    """What two names are compared by for uniqueness: compatibility-normalised and case-folded, so "ADA", "ada"
    and a full-width "Ａｄａ" are one name."""
    return unicodedata.normalize("NFKC", name).casefold()
