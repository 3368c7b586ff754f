"""The live log stream behind /ws/admin: log records as they happen, redacted, rate-capped, and never a backlog.

`LogStream` is a `logging.Handler` installed on the root logger while the server runs (`install`/`uninstall`).
With no subscriber, `emit` returns at once. A record that some subscriber wants is turned into its wire shape at
once (so later changes to its arguments do not matter), counted against one server-wide token bucket, and queued;
the queue is sent on the IOLoop's next turn, so a record logged from another thread, or from inside a send, never
touches a connection from there. A reader whose transport has not drained (`backlog_bytes` unsent) is skipped and
the records it missed are counted; so are the ones the rate cap or the full queue dropped. It hears how many it
missed in LOGS_DROPPED before its next record (and every second, from `report_drops`, when none follows).
"""

import logging
import re
import threading
from collections import deque
from dataclasses import dataclass

from realtime.protocol import encode_data, iso_timestamp
from realtime.ratelimit import TokenBucket

__all__ = ["LogStream", "redact", "LEVELS", "known_logger"]

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
          "CRITICAL": logging.CRITICAL}
MAX_MESSAGE_CHARS = 2000

# What must never leave the server: a JWT anywhere; the value after token=, password=, secret= (URL, key=value or
# JSON styles); a Bearer credential.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_KEYED = re.compile(r"""(\b(?:[\w-]*token|[\w-]*password|passwd|[\w-]*secret|authorization)["']?\s*[=:]\s*["']?)"""
                    r"""(?:Bearer\s+)?[^&\s'",}]+""", re.IGNORECASE)
_BEARER = re.compile(r"(\bBearer\s+)[^\s'\",]+", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every token, password and secret it quotes replaced by [redacted]."""
    text = _JWT.sub("[redacted]", text)
    text = _KEYED.sub(r"\1[redacted]", text)
    return _BEARER.sub(r"\1[redacted]", text)


def known_logger(name: str) -> bool:
    """Whether a logger of that name (or a logger below it) exists in this process; "" is the root."""
    return name == "" or name in logging.root.manager.loggerDict


def wire_record(record: logging.LogRecord) -> dict:
    """A record as LOG_RECORD carries it: no arguments, no traceback (an exception is its type and message)."""
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: its format alone
        message = str(record.msg)
    data = {
        "time": iso_timestamp(record.created),
        "level": record.levelname,
        "logger": record.name,
        "message": redact(message[:MAX_MESSAGE_CHARS]),
        "sessionId": getattr(record, "session_id", None),
        "userId": getattr(record, "user_id", None),
    }
    endpoint = getattr(record, "endpoint", None)
    if endpoint:
        data["endpoint"] = endpoint
    if record.exc_info and record.exc_info[0] is not None:
        kind, error = record.exc_info[0], record.exc_info[1]
        data["exception"] = redact(f"{kind.__name__}: {error}"[:MAX_MESSAGE_CHARS])
    return data


@dataclass(eq=False, slots=True)
class _Subscriber:
    conn: object
    levelno: int
    logger: str
    dropped: int = 0  # missed since it last heard of it
    dropped_total: int = 0

    def wants(self, levelno: int, name: str) -> bool:
        logger = self.logger
        return levelno >= self.levelno and (not logger or name == logger or name.startswith(logger + "."))


class LogStream(logging.Handler):
    """Owns the log subscribers of this node and what each has missed (see the module)."""

    def __init__(self, *, clock, rate_per_s: float = 200.0, backlog_bytes: int = 64 * 1024, queue: int = 1000):
        super().__init__(logging.DEBUG)
        self._clock = clock
        self.rate_per_s = rate_per_s
        self._bucket = TokenBucket(rate=rate_per_s, burst=max(1, int(rate_per_s)), clock=clock)
        self.backlog_bytes = backlog_bytes
        self._pending: deque = deque()
        self._queue_max = queue
        self._subscribers: dict[str, _Subscriber] = {}  # session id -> subscriber
        self._loop = None
        self._loop_thread: int | None = None
        self._scheduled = False
        self._flushing = False
        self.dropped_rate = 0  # records refused by the rate cap or the full queue (server-wide)
        self.dropped_backlog = 0  # deliveries skipped because a reader had not drained
        self.sent = 0

    # lifetime ---------------------------------------------------------------
    def install(self, loop) -> None:
        """Hear every record of the process from now on; deliveries run on `loop` (a Tornado IOLoop, whose
        `add_callback` may be called from any thread)."""
        self._loop, self._loop_thread = loop, threading.get_ident()
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)
        self._loop = None

    # subscribers ------------------------------------------------------------
    def subscribe(self, conn, levelno: int, logger: str) -> None:
        """Stream the records at `levelno` or above of `logger` and below it ("" : all) to `conn` (replacing an
        earlier filter of the same connection; what it missed still counts)."""
        earlier = self._subscribers.get(conn.session_id)
        subscriber = _Subscriber(conn, levelno, logger)
        if earlier is not None:
            subscriber.dropped, subscriber.dropped_total = earlier.dropped, earlier.dropped_total
        self._subscribers = {**self._subscribers, conn.session_id: subscriber}  # replaced whole: emit may iterate

    def unsubscribe(self, conn) -> bool:
        if conn.session_id not in self._subscribers:
            return False
        self._subscribers = {sid: sub for sid, sub in self._subscribers.items() if sid != conn.session_id}
        return True

    def subscribed(self, conn) -> bool:
        return conn.session_id in self._subscribers

    # records ----------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        subscribers = self._subscribers
        if not subscribers or self._loop is None:
            return
        if self._flushing and threading.get_ident() == self._loop_thread:
            return  # logged while the stream itself sends: it must not feed itself
        wanting = [sub for sub in subscribers.values() if sub.wants(record.levelno, record.name)]
        if not wanting:
            return
        if len(self._pending) >= self._queue_max or not self._bucket.allow():
            self.dropped_rate += 1
            for sub in wanting:
                sub.dropped += 1
                sub.dropped_total += 1
            return
        try:
            data_json = encode_data(wire_record(record))
        except Exception:  # never let a record break the code that logged it
            self.handleError(record)
            return
        self._pending.append((record.levelno, record.name, data_json))
        if not self._scheduled:
            self._scheduled = True
            self._loop.add_callback(self._flush)  # Tornado's add_callback is safe from any thread

    def _flush(self) -> None:
        """Send what is queued to each subscriber that wants it and can take it (on the loop)."""
        self._scheduled = False
        self._flushing = True
        try:
            while self._pending:
                levelno, name, data_json = self._pending.popleft()
                for sub in list(self._subscribers.values()):
                    if sub.wants(levelno, name):
                        self._deliver(sub, data_json)
        finally:
            self._flushing = False

    def _deliver(self, sub: _Subscriber, data_json: str) -> None:
        conn = sub.conn
        if conn.buffered_bytes() > self.backlog_bytes:
            sub.dropped += 1
            sub.dropped_total += 1
            self.dropped_backlog += 1
            return
        if sub.dropped:
            self._tell_dropped(sub)
        if conn.send_json("LOG_RECORD", data_json):
            self.sent += 1

    def _tell_dropped(self, sub: _Subscriber) -> None:
        sub.conn.send("LOGS_DROPPED", {"dropped": sub.dropped, "totalDropped": sub.dropped_total})
        sub.dropped = 0

    def report_drops(self) -> None:
        """Every second: tell each reader that has drained how many records it missed, if no record followed."""
        self._flushing = True
        try:
            for sub in list(self._subscribers.values()):
                if sub.dropped and sub.conn.buffered_bytes() <= self.backlog_bytes:
                    self._tell_dropped(sub)
        finally:
            self._flushing = False

    def stats(self) -> dict:
        return {"subscribers": len(self._subscribers), "sent": self.sent, "droppedByRateCap": self.dropped_rate,
                "droppedSlowReader": self.dropped_backlog, "ratePerSecond": self.rate_per_s}
