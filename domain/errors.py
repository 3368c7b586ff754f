"""Domain errors: engines raise these; only the connection layer turns them into ERROR frames."""

__all__ = ["DomainError", "BadRequest", "NotFound", "Forbidden", "Conflict", "LimitExceeded"]


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
