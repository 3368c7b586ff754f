"""The one place for the wire envelope, message types, ERROR codes and close codes (PROTOCOL.md v1)."""

import enum
import functools
import itertools
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import ujson

__all__ = [
    "ErrorCode", "CloseCode", "ProtocolError", "Inbound", "iso_ms", "iso_timestamp",
    "decode", "encode", "encode_data", "new_message_id",
]


class ErrorCode(enum.StrEnum):
    INVALID_MESSAGE = "INVALID_MESSAGE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    INTERNAL = "INTERNAL"
    UNAVAILABLE = "UNAVAILABLE"  # added to v1: the trading engine (another process) did not answer in time


class CloseCode(enum.IntEnum):
    GOING_AWAY = 1001
    INVALID_PAYLOAD = 1007  # a text frame that is not UTF-8
    POLICY_VIOLATION = 1008  # forbidden Origin
    TOO_LARGE = 1009
    TRY_AGAIN_LATER = 1013  # server connection limit
    SLOW_CONSUMER = 4008
    UNAUTHORIZED = 4401
    IDLE_TIMEOUT = 4408
    TOO_MANY = 4429  # per-user limit or sustained rate-limit abuse


class ProtocolError(Exception):
    """A message the connection layer refuses; answered with ERROR `code`, the connection stays up."""

    def __init__(self, code: ErrorCode | str, message: str, request_type: str | None = None):
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.request_type = request_type
        self.request_id: str | None = None  # set when the id is known before the message could be read


@dataclass(frozen=True, slots=True)
class Inbound:
    """One decoded client message."""

    type: str
    data: dict
    request_id: str | None


_MAX_REQUEST_ID = 128
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # SockJS hands over text decoded from JSON: it may hold one as is
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")


def decode(text: str) -> Inbound:
    """Parse a client frame into an `Inbound`, or raise ProtocolError(INVALID_MESSAGE).

    >>> decode('{"type": "heartbeat", "requestId": 7}')
    Inbound(type='HEARTBEAT', data={}, request_id='7')
    """
    try:
        message = ujson.loads(text)
    except (ValueError, OverflowError):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "message is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "message must be a JSON object")
    suspect = _SURROGATE_ESCAPE.search(text) is not None or (not text.isascii() and _SURROGATE.search(text) is not None)
    request_id = message.get("requestId")
    if request_id is not None:
        if isinstance(request_id, bool) or not isinstance(request_id, (str, int)):
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "requestId must be a string")
        request_id = str(request_id)
        if len(request_id) > _MAX_REQUEST_ID:
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, f"requestId is longer than {_MAX_REQUEST_ID}")
        if suspect and not _utf8_clean(request_id):
            raise ProtocolError(ErrorCode.INVALID_MESSAGE, "requestId contains a lone surrogate (invalid Unicode)")
    message_type = message.get("type")
    if not isinstance(message_type, str) or not _TYPE.match(message_type):
        raise _with_request_id(ProtocolError(ErrorCode.INVALID_MESSAGE, "type must be a message type name"), request_id)
    if suspect and not _utf8_clean(message):
        raise _with_request_id(ProtocolError(ErrorCode.INVALID_MESSAGE, "message contains a lone surrogate "
                                             "(invalid Unicode)", message_type.upper()), request_id)
    data = message.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise _with_request_id(
            ProtocolError(ErrorCode.INVALID_MESSAGE, "data must be an object or null", message_type.upper()),
            request_id)
    return Inbound(message_type.upper(), data, request_id)


def _utf8_clean(message: dict | str) -> bool:
    """False when an escaped lone surrogate ("\\ud800") decoded into a string we could never send back."""
    try:
        ujson.dumps(message, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _with_request_id(error: ProtocolError, request_id: str | None) -> ProtocolError:
    error.request_id = request_id
    return error


def iso_ms(epoch_ms: int) -> str:
    """Epoch milliseconds as the protocol's ISO-8601 UTC string (2026-11-26T03:00:00.123Z)."""
    return f"{_iso_second(epoch_ms // 1000)}.{epoch_ms % 1000:03d}Z"


@functools.lru_cache(maxsize=256)
def _iso_second(epoch_s: int) -> str:
    """Most stamps fall in the last few seconds (orders, fills, their events): format each second once."""
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def iso_timestamp(epoch_s: float) -> str:
    """ISO-8601 UTC with exactly three fractional digits and Z (2026-11-26T03:00:00.123Z), truncated to the ms."""
    return _iso_ms_cached(math.floor(epoch_s * 1000))


@functools.lru_cache(maxsize=1)
def _iso_ms_cached(epoch_ms: int) -> str:
    """A fan-out stamps thousands of frames within one millisecond: format that millisecond once."""
    return iso_ms(epoch_ms)


def encode_data(data) -> str:
    """Serialize a message's `data` once, so a broadcast can share it between connections."""
    return ujson.dumps(data, ensure_ascii=False, escape_forward_slashes=False, allow_nan=False)


_prefix = os.urandom(4).hex()
_counter = itertools.count(1)


def new_message_id() -> str:
    """A server message id, unique for this process run (random prefix + counter)."""
    return f"{_prefix}-{next(_counter)}"


def encode(message_type: str, data_json: str, *, seq: int, timestamp: str,
           request_id: str | None = None) -> str:
    """Wrap pre-serialized `data_json` in the envelope; only the small header is built per connection."""
    head = f'{{"type":"{message_type}","id":"{new_message_id()}","seq":{seq},"timestamp":"{timestamp}"'
    if request_id is not None:
        head += ',"requestId":' + encode_data(request_id)
    return head + ',"data":' + data_json + "}"
