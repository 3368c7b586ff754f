"""Passwords (salted scrypt), signed JWT access tokens, the server's secret, and account-field validation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from domain.clock import Clock
from domain.errors import BadRequest, DomainError
from domain.users import Role, User

__all__ = [
    "GUEST_PREFIX",
    "AuthError",
    "bearer_token",
    "Claims",
    "TokenService",
    "check_login",
    "hash_password",
    "load_or_create_secret",
    "validate_nickname",
    "validate_password",
    "validate_username",
    "verify_password",
]

GUEST_PREFIX = "guest-"
SECRET_FILENAME = "jwt_secret"

_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
# Refuse to evaluate stored hashes that would need more memory than this (128 * n * r * p bytes).
_SCRYPT_MAX_MEM = 256 * 1024 * 1024

_HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
_MIN_HMAC_SECRET_BYTES = 32
_MAX_TOKEN_CHARS = 8192
# How far in the future a token's iat / nbf may lie (issuers' clocks drift); exp gets none.
_CLOCK_SKEW_S = 60.0

_USERNAME_RE = re.compile(r"[A-Za-z0-9_.-]{3,32}")
_USER_ID_RE = re.compile(r"[1-9][0-9]{0,17}")


# -- passwords ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _password_bytes(password: str) -> bytes:
    # surrogatepass: a hostile lone surrogate must not raise; it simply never matches.
    return password.encode("utf-8", "surrogatepass")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        _password_bytes(password),
        salt=salt,
        n=n,
        r=r,
        p=p,
        dklen=dklen,
        maxmem=128 * n * r * p + 1024 * 1024,
    )


def hash_password(password: str, *, n: int = 2**14) -> str:
    """Hash a password with scrypt and a fresh 16-byte salt into a self-describing string.

    >>> hash_password("correct horse", n=2**10).startswith("scrypt$1024$8$1$")
    True

    Costs about 50 ms of CPU at the default n: call it off the IOLoop.
    """
    if not isinstance(password, str):
        raise TypeError("password must be a str")
    if n < 2 or n & (n - 1) or 128 * n * _SCRYPT_R * _SCRYPT_P > _SCRYPT_MAX_MEM:
        raise ValueError("n must be a power of two from 2 up to 2**18")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, n, _SCRYPT_R, _SCRYPT_P, _HASH_BYTES)
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored` (from `hash_password`); False for any malformed `stored`.

    The cost parameters come from `stored`, so hashes made with another n keep working.
    """
    if not isinstance(password, str) or not isinstance(stored, str):
        return False
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return False
    if not (
        n >= 2
        and not n & (n - 1)
        and 1 <= r <= 64
        and 1 <= p <= 16
        and 128 * n * r * p <= _SCRYPT_MAX_MEM
        and 16 <= len(expected) <= 64
    ):
        return False
    actual = _scrypt(password, salt, n, r, p, len(expected))
    return hmac.compare_digest(actual, expected)


def check_login(password: str, stored: str | None, *, n: int) -> bool:
    """Check a login attempt, doing the same scrypt work whether or not there is a hash to check.

    `stored` is None for an unknown user or a guest: a throwaway hash at cost `n`
    (the server's setting, which new hashes also use) keeps the response time the
    same, so it does not tell which part of the login was wrong.
    """
    if stored is None:
        hash_password(password if isinstance(password, str) else "", n=n)
        return False
    return verify_password(password, stored)


# -- account fields ----------------------------------------------------------------------


def validate_username(value: object) -> str:
    """Return a valid new username: 3-32 of A-Z a-z 0-9 _ . - , not starting with "guest-"."""
    if not isinstance(value, str):
        raise BadRequest("username must be a string")
    if not _USERNAME_RE.fullmatch(value):
        raise BadRequest(
            "username must be 3 to 32 characters of letters A-Z, digits, '_', '.' or '-'"
        )
    if value.lower().startswith(GUEST_PREFIX):
        raise BadRequest(f"usernames starting with {GUEST_PREFIX!r} are reserved for guests")
    return value


def validate_password(value: object) -> str:
    """Return a valid new password: 8-256 characters of valid Unicode."""
    if not isinstance(value, str):
        raise BadRequest("password must be a string")
    if not 8 <= len(value) <= 256:
        raise BadRequest("password must be 8 to 256 characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("password must be valid Unicode text") from None
    return value


def validate_nickname(value: object) -> str:
    """Return the nickname stripped of surrounding spaces: 1-32 printable characters."""
    if not isinstance(value, str):
        raise BadRequest("nickname must be a string")
    value = value.strip()
    if not 1 <= len(value) <= 32:
        raise BadRequest("nickname must be 1 to 32 characters")
    if not value.isprintable():
        raise BadRequest("nickname must contain only printable characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("nickname must be valid Unicode text") from None
    return value


# -- tokens ------------------------------------------------------------------------------


class AuthError(DomainError):
    """A token that does not prove who the caller is; `reason` says why, for logs and replies."""

    code = "UNAUTHORIZED"

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme in any case), else None.

    >>> bearer_token("bearer abc.def "), bearer_token("Basic xyz"), bearer_token("Bearer ")
    ('abc.def', None, None)
    """
    scheme, _, token = (header or "").strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class Claims:
    """What a verified token says. `role` is the issuer's hint; the stored role decides rights."""

    user_id: int
    name: str
    role: str
    expires_at: float


class TokenService:
    """Issues and verifies the server's JWT access tokens against the injected clock.

    HMAC (HS256 by default) signs and verifies with `secret`. With `public_key`
    (PEM), verification is RS256 only, and issuing needs `private_key`; a server
    with only the public key verifies tokens made elsewhere and issues none.
    Exactly one algorithm is accepted, so `alg: none` and algorithm-swap tokens fail.
    """

    def __init__(
        self,
        secret: str | bytes | None,
        *,
        clock: Clock,
        ttl_s: float,
        algorithm: str = "HS256",
        public_key: str | bytes | None = None,
        private_key: str | bytes | None = None,
    ):
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        self._clock = clock
        self.ttl_s = ttl_s
        self._sign_key: object | None
        if public_key is not None or private_key is not None:
            algorithm = algorithm if algorithm in _RSA_ALGORITHMS else "RS256"
            self._sign_key = None if private_key is None else _rsa_key(private_key, RSAPrivateKey)
            if public_key is None:
                self._verify_key = self._sign_key.public_key()
            else:
                self._verify_key = _rsa_key(public_key, RSAPublicKey)
        elif algorithm in _HMAC_ALGORITHMS:
            key = secret.encode("utf-8") if isinstance(secret, str) else secret
            if not key or len(key) < _MIN_HMAC_SECRET_BYTES:
                raise ValueError(f"the JWT secret must be at least {_MIN_HMAC_SECRET_BYTES} bytes")
            self._verify_key = self._sign_key = key
        elif algorithm in _RSA_ALGORITHMS:
            raise ValueError(f"{algorithm} needs a public key to verify tokens")
        else:
            raise ValueError(f"unsupported JWT algorithm {algorithm!r}")
        self.algorithm = algorithm

    @property
    def can_issue(self) -> bool:
        """False when only a public key is configured."""
        return self._sign_key is not None

    def issue(self, user: User) -> str:
        """A token for `user`: sub (the id as a string), name, role, iat, exp = now + ttl."""
        if self._sign_key is None:
            raise RuntimeError(
                f"cannot issue {self.algorithm} tokens: only a public key is configured (no private key)"
            )
        now = self._clock.now()
        claims = {
            "sub": str(user.id),
            "name": user.display_name,
            "role": Role(user.role).value,
            "iat": int(now),
            "exp": int(now + self.ttl_s),
        }
        return jwt.encode(claims, self._sign_key, algorithm=self.algorithm)

    def verify(self, token: object) -> Claims:
        """The claims of a valid token; raises `AuthError` otherwise.

        Expiry is checked here against the injected clock (pyjwt would use the
        system time): a token is dead from the second named by `exp`.
        """
        if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_CHARS:
            raise AuthError("malformed")
        try:
            payload = jwt.decode(
                token,
                self._verify_key,
                algorithms=[self.algorithm],
                options={
                    "require": ["sub", "exp"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidAlgorithmError:
            raise AuthError("algorithm not allowed") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"missing {exc.claim}") from None
        except jwt.InvalidTokenError:
            raise AuthError("malformed") from None
        except (ValueError, TypeError):
            # pyjwt reports most garbage as DecodeError; this catches what slips past it.
            raise AuthError("malformed") from None

        now = self._clock.now()
        exp = _number(payload.get("exp"))
        if exp is None:
            raise AuthError("malformed exp")
        if exp <= now:
            raise AuthError("expired")
        for claim in ("iat", "nbf"):
            if claim in payload:
                when = _number(payload[claim])
                if when is None:
                    raise AuthError(f"malformed {claim}")
                if when > now + _CLOCK_SKEW_S:
                    raise AuthError("not yet valid")
        sub = payload.get("sub")
        if not isinstance(sub, str) or not _USER_ID_RE.fullmatch(sub):
            raise AuthError("malformed sub")
        name = payload.get("name", "")
        role = payload.get("role", Role.STUDENT.value)
        if not isinstance(name, str) or not isinstance(role, str):
            raise AuthError("malformed claims")
        return Claims(user_id=int(sub), name=name, role=role, expires_at=exp)


def _rsa_key(key: object, kind: type) -> object:
    if isinstance(key, kind):
        return key
    if isinstance(key, str):
        key = key.encode("utf-8")
    if not isinstance(key, bytes):
        raise TypeError("expected a PEM key as str or bytes")
    try:
        if kind is RSAPrivateKey:
            loaded = serialization.load_pem_private_key(key, password=None)
        else:
            loaded = serialization.load_pem_public_key(key)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        loaded = None
    if isinstance(loaded, kind):
        return loaded
    which = "private" if kind is RSAPrivateKey else "public"
    raise ValueError(f"the JWT {which} key is not an unencrypted PEM-encoded RSA {which} key")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


# -- the server's secret -----------------------------------------------------------------


def load_or_create_secret(data_dir: Path | str) -> str:
    """The HMAC secret in `data_dir/jwt_secret`, created (mode 0600) on first use.

    Keeping it on disk makes tokens survive a restart. Creation is atomic, so two
    processes starting together agree on one secret. Never log the result.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILENAME
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".jwt_secret.")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_urlsafe(48) + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # fails if another process created it first
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    secret = path.read_text(encoding="utf-8").strip()
    if len(secret.encode("utf-8")) < _MIN_HMAC_SECRET_BYTES:
        raise ValueError(
            f"{path} holds a secret shorter than {_MIN_HMAC_SECRET_BYTES} bytes; delete it to make a new one"
        )
    return secret
