"""Domain errors: engines raise these; only the connection layer turns them into ERROR frames."""

__all__ = ["DomainError", "BadRequest", "NotFound", "Forbidden", "Conflict", "LimitExceeded", "RateLimited",
           "Unavailable"]


class DomainError(Exception):
    """A request the domain refuses; `code` is one of the protocol's ERROR codes."""

    code = "BAD_REQUEST"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(DomainError):
    code = "BAD_REQUEST"


class NotFound(DomainError):
    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Conflict(DomainError):
    """The request clashes with what exists (a taken name); REST answers 409."""

    code = "CONFLICT"


class LimitExceeded(DomainError):
    code = "LIMIT_EXCEEDED"


class RateLimited(DomainError):
    """Too many tries too fast; `retry_after_s` says when the next one will be allowed (REST: 429, Retry-After)."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """The server could not do it (its database refused a write); nothing was done. The protocol's INTERNAL."""

    code = "INTERNAL"
