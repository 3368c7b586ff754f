"""The base for JSON REST handlers: body decoding, JSON replies and errors, bearer-token users."""

from __future__ import annotations

import http.client
import math
from typing import Any

import tornado.httpclient
import tornado.web
import ujson

from domain.errors import DomainError, RateLimited
from domain.users import Role, User
from realtime.ratelimit import retry_after
from services.auth import AuthError, bearer_token
from services.container import Services

__all__ = ["MAX_BODY_BYTES", "ApiError", "JsonHandler", "NotFoundHandler", "user_to_wire"]

MAX_BODY_BYTES = 64 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "host", "content-length"}
_MAX_DEPTH = 32

# Domain error codes as HTTP statuses; a code not listed is a 400.
_STATUS_BY_CODE = {
    "INVALID_MESSAGE": 400,
    "BAD_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "LIMIT_EXCEEDED": 429,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
}
# For errors raised without a code of their own (tornado's 404, 405, ...).
_CODE_BY_STATUS = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "TOO_LARGE",
    429: "RATE_LIMITED",
}


class ApiError(tornado.web.HTTPError):
    """An HTTP error with the JSON body's `error` text and `code`, and `details` (more fields of the body, such as a
    scenario's `problems`); raise it from a handler."""

    def __init__(self, status_code: int, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(status_code)
        self.message = message
        self.code = code or _CODE_BY_STATUS.get(status_code, "BAD_REQUEST" if status_code < 500 else "INTERNAL")
        self.details = details or {}


def user_to_wire(user: User) -> dict:
    """A user as REST and WebSocket clients see it: `{userId, username, name, role}`."""
    return {
        "userId": str(user.id),
        "username": user.username,
        "name": user.display_name,
        "role": Role(user.role).value,
    }


class JsonHandler(tornado.web.RequestHandler):
    """Owns one JSON request/response: decodes the body, writes JSON, and answers every error in JSON.

    Route with ``dict(services=services)`` (a `services.container.Services`). Raise `ApiError`, or let a
    `DomainError` escape: both become ``{"error": "...", "code": "..."}`` with the matching status, and
    anything else becomes a 500 with no detail.
    """

    engine_bound = False  # needs the engine's services: past one process, sent on to the engine's process

    def initialize(self, services: Services) -> None:
        self.services = services

    async def prepare(self) -> None:
        link = self.services.engine_link
        if self.engine_bound and link is not None and not link.local:
            await self._forward(link)
            return
        self.prepare_here()

    def prepare_here(self) -> None:
        """What a handler checks first, in the process that handles the request."""

    async def _forward(self, link) -> None:
        """Send the request to the engine's process and its answer back: as a reverse proxy, with a timeout."""
        if link.leader is None or not link.engine_heard:
            self.set_header("Retry-After", "2")
            raise ApiError(503, "the trading engine is not available now: try again in a few seconds",
                           code="UNAVAILABLE")
        request = self.request
        headers = {name: value for name, value in request.headers.get_all() if name.lower() not in _HOP_BY_HOP}
        forwarded = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded}, {request.remote_ip}" if forwarded else request.remote_ip
        headers["X-Forwarded-Proto"] = request.protocol
        try:
            response = await tornado.httpclient.AsyncHTTPClient().fetch(
                link.leader["url"] + request.uri, method=request.method, headers=headers,
                body=request.body if request.method in ("POST", "PUT", "PATCH") else None,
                request_timeout=link.timeout_s, follow_redirects=False, raise_error=False,
                allow_nonstandard_methods=True)
        except OSError as error:
            raise ApiError(503, f"the trading engine cannot be reached: {error}", code="UNAVAILABLE") from None
        if response.code == 599:  # no answer (a timeout, a refused connection)
            raise ApiError(503, "the trading engine did not answer in time: try again", code="UNAVAILABLE")
        self.set_status(response.code, response.reason)
        for name in ("Content-Type", "Content-Disposition", "Content-Security-Policy", "Retry-After", "Cache-Control",
                     "WWW-Authenticate"):
            if name in response.headers:
                self.set_header(name, response.headers[name])
        self.finish(response.body)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def compute_etag(self) -> None:
        return None  # no-store replies are never revalidated

    # -- request -------------------------------------------------------------------------

    def json_body(self) -> dict:
        """The request body as a JSON object; 400 for anything else (or over 64 KiB)."""
        body = self.request.body
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(400, f"request body is larger than {MAX_BODY_BYTES} bytes", code="INVALID_MESSAGE")
        try:
            value = ujson.loads(body)
        except (ValueError, OverflowError, RecursionError):
            raise ApiError(400, "request body is not valid JSON", code="INVALID_MESSAGE") from None
        if not isinstance(value, dict):
            raise ApiError(400, "request body must be a JSON object", code="INVALID_MESSAGE")
        _check_json_values(value, 0)
        return value

    @staticmethod
    def field(body: dict, name: str, kind: type = str) -> Any:
        """`body[name]`, which must be present and of type `kind`; 400 otherwise."""
        value = body.get(name)
        if value is None:
            raise ApiError(400, f"{name} is required", code="INVALID_MESSAGE")
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ApiError(400, f"{name} must be a {_type_name(kind)}", code="INVALID_MESSAGE")
        return value

    def bearer_user(self) -> User:
        """The signed-in user behind `Authorization: Bearer <token>`; 401 when there is none.

        The user is loaded from storage on every call: the stored role is the one
        that counts, whatever role the token claims.
        """
        token = bearer_token(self.request.headers.get("Authorization"))
        if token is None:
            raise ApiError(401, "missing bearer token", code="UNAUTHORIZED")
        try:
            user, _ = self.services.users.signed_in(token)
        except AuthError as error:
            raise ApiError(401, f"invalid token: {error.reason}", code="UNAUTHORIZED") from None
        return user

    def require_role(self, *roles: Role | str) -> User:
        """The signed-in user if their stored role is one of `roles`; 401 or 403 otherwise."""
        user = self.bearer_user()
        if Role(user.role).value not in {Role(role).value for role in roles}:
            raise ApiError(403, "your role may not do this", code="FORBIDDEN")
        return user

    # -- response ------------------------------------------------------------------------

    def write_json(self, obj: Any, status: int = 200) -> None:
        """Send `obj` as the JSON response and finish."""
        self.set_status(status)
        self.finish(ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        details = {}
        if isinstance(error, ApiError):
            message, code, details = error.message, error.code, error.details
        elif isinstance(error, DomainError):
            status_code = _STATUS_BY_CODE.get(error.code, 400)
            message, code = error.message, error.code
        elif status_code >= 500:
            message, code = "internal server error", "INTERNAL"
        else:
            message = http.client.responses.get(status_code, "error").lower()
            code = _CODE_BY_STATUS.get(status_code, "BAD_REQUEST")
        self.set_status(status_code)
        if isinstance(error, RateLimited):
            self.set_header("Retry-After", str(retry_after(error.retry_after_s)))
        if status_code == 401:
            self.set_header("WWW-Authenticate", "Bearer")
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(ujson.dumps({**details, "error": message, "code": code}, ensure_ascii=False))

    def log_exception(self, typ, value, tb) -> None:
        # Refusals are the client's mistake and already in the access log; only bugs get a traceback.
        if isinstance(value, (ApiError, DomainError)):
            return
        super().log_exception(typ, value, tb)


class NotFoundHandler(JsonHandler):
    """Answers every unrouted path with a JSON 404: use as the Application's `default_handler_class`."""

    def prepare(self) -> None:
        raise ApiError(404, "no such resource", code="NOT_FOUND")


def _type_name(kind: type) -> str:
    return {str: "string", int: "integer", bool: "boolean", dict: "object", list: "array"}.get(
        kind, kind.__name__
    )


def _check_json_values(value: Any, depth: int) -> None:
    # JSON that parses can still hold what no handler should see: NaN/Infinity (ujson accepts
    # them) and lone surrogates ("\ud800"), which cannot be encoded as UTF-8 or stored.
    if depth > _MAX_DEPTH:
        raise ApiError(400, "request body is nested too deeply", code="INVALID_MESSAGE")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ApiError(400, "request body holds a number JSON does not allow", code="INVALID_MESSAGE")
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_json_values(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_values(item, depth + 1)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "request body holds invalid Unicode", code="INVALID_MESSAGE") from None
