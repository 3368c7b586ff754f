"""What can go wrong talking to a Stock Quest server, as exceptions a bot can catch one by one."""

__all__ = [
    "StockQuestError", "ServerError", "RequestTimeout", "ConnectionLost", "ClientClosed", "LoginFailed",
    "MalformedMessage",
]


class StockQuestError(Exception):
    """Base of everything this library raises."""


class ServerError(StockQuestError):
    """The server answered a request with ERROR: `code` is the protocol's code (BAD_REQUEST, FORBIDDEN, ...)."""

    def __init__(self, code: str, message: str, request_type: str | None = None, request_id: str | None = None):
        super().__init__(f"{code}: {message}" + (f" (answering {request_type})" if request_type else ""))
        self.code = code
        self.message = message
        self.request_type = request_type
        self.request_id = request_id


class RequestTimeout(StockQuestError):
    """No answer came within the timeout; the request may still have been carried out (check before resending)."""

    def __init__(self, request_type: str, request_id: str, timeout: float):
        super().__init__(f"no answer to {request_type} (requestId {request_id}) within {timeout:g} s")
        self.request_type = request_type
        self.request_id = request_id
        self.timeout = timeout


class ConnectionLost(StockQuestError):
    """The connection dropped after a request that is not safe to repeat was sent: its outcome is unknown."""


class ClientClosed(StockQuestError):
    """The client was closed, or the server refused it for good (bad token, forbidden): nothing more is sent."""


class LoginFailed(StockQuestError):
    """The REST sign-in (login, register, guest) answered with an error status."""

    def __init__(self, status: int, code: str | None, message: str):
        super().__init__(f"HTTP {status}" + (f" {code}" if code else "") + f": {message}")
        self.status = status
        self.code = code
        self.message = message


class MalformedMessage(StockQuestError):
    """A server frame that is not the protocol's shape; readers log and skip it, requests raise it."""
