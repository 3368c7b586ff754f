"""Real-time quote fan-out: who wants which symbols how often, built so each quote is serialized once per change."""

import logging
from dataclasses import dataclass

from .protocol import CloseCode, encode_data
from .wire import market as wire_market

__all__ = ["QuoteFanout", "MIN_INTERVAL_MS", "DEFAULT_INTERVAL_MS"]

log = logging.getLogger(__name__)

MIN_INTERVAL_MS = 100
DEFAULT_INTERVAL_MS = 1000


@dataclass(eq=False, slots=True)
class _Group:
    """The symbols one connection receives at one update interval, and the market version last sent."""

    conn: object
    interval: int
    symbols: tuple[str, ...]
    last_version: int


class QuoteFanout:
    """Owns real-time quote delivery: subscriptions by connection and interval, and what each was last sent.

    It learns prices only from `update` (the market's ticks, delivered by the broker), so the market
    may live elsewhere. Every interval's connections are flushed together. A frame's `data` is built
    once per distinct (symbols, last version sent) and shared; each quote's JSON is built once per
    change. A connection whose transport has not drained is skipped, so its next frame carries only
    the latest quotes (coalescing); past `hard_buffer` bytes it is closed 4008.
    """

    def __init__(self, *, soft_buffer: int = 64 * 1024, hard_buffer: int = 1024 * 1024):
        self.soft_buffer, self.hard_buffer = soft_buffer, hard_buffer
        self.version = 0
        self._latest: dict[str, object] = {}
        self._groups: dict[object, dict[int, _Group]] = {}
        self._buckets: dict[int, set[_Group]] = {}
        self._due: dict[int, int] = {}
        self._quote_json: dict[str, tuple[int, str]] = {}
        self.frames_built = 0

    def update(self, version: int, quotes) -> None:
        """Take the quotes that changed at market `version` (Quotes: `.symbol`, `.version`, the fields of the wire)."""
        for quote in quotes:
            self._latest[quote.symbol] = quote
        self.version = max(self.version, version)

    @staticmethod
    def normalise_interval(interval_ms: int | None) -> int:
        if interval_ms is None:
            return DEFAULT_INTERVAL_MS
        return max(MIN_INTERVAL_MS, int(interval_ms))

    def subscribe(self, conn, symbols, interval_ms: int) -> None:
        """Deliver `symbols` to `conn` every `interval_ms`; a symbol already subscribed moves to this interval."""
        groups = self._groups.setdefault(conn, {})
        wanted = set(symbols)
        for group in list(groups.values()):
            if group.interval != interval_ms and wanted & set(group.symbols):
                self._set_symbols(group, [s for s in group.symbols if s not in wanted])
        group = groups.get(interval_ms)
        if group is None:
            group = _Group(conn, interval_ms, (), self.version)
            groups[interval_ms] = group
            self._buckets.setdefault(interval_ms, set()).add(group)
        self._set_symbols(group, list(group.symbols) + list(wanted))

    def unsubscribe(self, conn, symbols=None) -> None:
        """Stop `symbols` (all when None) for `conn`."""
        for group in list(self._groups.get(conn, {}).values()):
            keep = [] if symbols is None else [s for s in group.symbols if s not in set(symbols)]
            self._set_symbols(group, keep)

    def remove(self, conn) -> None:
        self.unsubscribe(conn)
        self._groups.pop(conn, None)

    def active(self, conn) -> list[str]:
        return sorted(s for group in self._groups.get(conn, {}).values() for s in group.symbols)

    def _set_symbols(self, group: _Group, symbols) -> None:
        group.symbols = tuple(sorted(set(symbols)))
        if group.symbols:
            return
        self._groups.get(group.conn, {}).pop(group.interval, None)
        bucket = self._buckets.get(group.interval)
        if bucket is not None:
            bucket.discard(group)
            if not bucket:
                del self._buckets[group.interval]
                self._due.pop(group.interval, None)

    def subscriber_count(self) -> int:
        return len(self._groups)

    # delivery ---------------------------------------------------------------
    def run_due(self, now_ms: int) -> int:
        """Flush every interval whose time has come; returns the number of frames sent."""
        sent = 0
        for interval in list(self._buckets):
            due = self._due.get(interval)
            if due is None:
                self._due[interval] = now_ms + interval
            elif now_ms >= due:
                self._due[interval] = max(due + interval, now_ms + interval // 2)
                sent += self.flush(interval)
        return sent

    def flush(self, interval: int) -> int:
        version = self.version
        frames: dict[tuple, str | None] = {}
        sent = 0
        for group in list(self._buckets.get(interval, ())):
            if group.last_version >= version:
                continue
            conn = group.conn
            backlog = conn.buffered_bytes()
            if backlog > self.hard_buffer:
                log.warning("closing slow consumer", extra={"session_id": conn.session_id, "backlog": backlog})
                conn.close(CloseCode.SLOW_CONSUMER, "slow consumer")
                continue
            if backlog > self.soft_buffer:
                continue  # coalesce: the next frame carries the latest quotes since last_version
            key = (group.symbols, group.last_version)
            if key not in frames:
                frames[key] = self._frame(group.symbols, group.last_version)
            data_json = frames[key]
            group.last_version = version
            if data_json is not None and conn.send_json("REAL_TIME_UPDATE", data_json):
                sent += 1
        return sent

    def _frame(self, symbols, since_version: int) -> str | None:
        latest = self._latest
        parts = [self.quote_json(s) for s in symbols if s in latest and latest[s].version > since_version]
        if not parts:
            return None
        self.frames_built += 1
        return '{"quotes":[' + ",".join(parts) + "]}"

    def quote_json(self, symbol: str) -> str:
        """The quote's wire JSON, serialized once per change of the quote."""
        quote = self._latest[symbol]
        cached = self._quote_json.get(symbol)
        if cached is not None and cached[0] == quote.version:
            return cached[1]
        text = encode_data(wire_market.quote(quote))
        self._quote_json[symbol] = (quote.version, text)
        return text
