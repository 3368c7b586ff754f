"""Real-time quote fan-out, the hot path: who wants which symbols how often, and what each was last sent.

Quotes arrive from the broker as ticks (`encode_quotes`): each changed quote serialized once, where the
market runs, so the fan-out only joins ready-made JSON into frames.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from domain.market import Quote

from .protocol import CloseCode, encode_data
from .wire import market as wire_market

__all__ = ["QuoteFanout", "QUOTES", "encode_quotes", "decode_quotes", "decode_tick", "MIN_INTERVAL_MS",
           "DEFAULT_INTERVAL_MS"]

log = logging.getLogger(__name__)

MIN_INTERVAL_MS = 100
DEFAULT_INTERVAL_MS = 1000

QUOTES = "market.quotes"
"""The broker channel of market ticks: every node's fan-out listens to it."""


def encode_quotes(version: int, quotes: Iterable[Quote], time_ms: int | None = None) -> bytes:
    """One tick for the broker: the market version (and, when given, the tick's wall time in ms, after a space) on
    the first line, then one line per changed quote, its symbol and its wire JSON separated by a space (JSON text
    never holds a raw newline)."""
    lines = [str(int(version)) if time_ms is None else f"{int(version)} {int(time_ms)}"]
    lines += [f"{quote.symbol} {encode_data(wire_market.quote(quote))}" for quote in quotes]
    return "\n".join(lines).encode()


def decode_quotes(message: bytes) -> tuple[int, dict[str, str]]:
    """(version, quote JSON by symbol) of a tick made by `encode_quotes`."""
    version, _, quotes = decode_tick(message)
    return version, quotes


def decode_tick(message: bytes) -> tuple[int, int | None, dict[str, str]]:
    """(version, the tick's wall time in ms or None, quote JSON by symbol) of a tick made by `encode_quotes`."""
    head, *lines = message.decode().split("\n")
    version, _, time_ms = head.partition(" ")
    return int(version), int(time_ms) if time_ms else None, dict(line.split(" ", 1) for line in lines)


@dataclass(eq=False, slots=True)
class _Group:
    """The symbols one connection receives at one update interval, and the market version last sent."""

    conn: object
    interval: int
    symbols: tuple[str, ...]
    last_version: int
    phase: int = 0  # which of its interval's phases (ticks) it is flushed in
    behind_since: int | None = None  # when its backlog went above the soft limit (ms), while it stays there


class QuoteFanout:
    """Owns real-time quote delivery: subscriptions by connection and interval, and what each was last sent.

    It learns prices only from the market's ticks on the broker (`on_quotes`), so the market may live
    in another process. Every interval's connections are flushed together. A frame's `data` is built
    once per distinct (symbols, last version sent) and shared. An interval of n ticks is flushed in n phases,
    one a tick, each holding as many connections as the others: each connection still gets one frame an
    interval, made of the quotes the tick just produced, and a tick sends 1/n of the frames, not all of them
    in one burst that the last connection waits through. A connection whose transport has not
    drained is skipped, so its next frame carries only the latest quotes (coalescing); past
    `hard_buffer` bytes, or behind for `stall_ms` on end (a client that stopped reading), it is closed
    4008. It keeps its subscriptions itself (the hub's channels cannot coalesce) and is attached to the
    hub, which tells it when a connection ends (`remove`).
    """

    def __init__(self, *, soft_buffer: int = 64 * 1024, hard_buffer: int = 1024 * 1024, stall_ms: int = 10_000,
                 tick_ms: int = 0):
        self.soft_buffer, self.hard_buffer, self.stall_ms = soft_buffer, hard_buffer, stall_ms
        self.tick_ms = tick_ms  # the market's tick, which phases an interval (0: one phase)
        self.slack_ms = tick_ms // 2  # how early a phase may flush: half a tick, so jitter never skips one
        self.version = 0
        self._latest: dict[str, tuple[int, str]] = {}  # symbol -> (version it changed at, its wire JSON)
        self._groups: dict[object, dict[int, _Group]] = {}
        self._buckets: dict[int, list[set[_Group]]] = {}  # interval -> its phases' connections
        self._due: dict[int, list[int]] = {}  # interval -> when each phase is due
        self.frames_built = 0
        self.tick_time_ms: int | None = None  # wall time of the latest tick: a frame's delay is measured from it

    def on_quotes(self, _channel: str, message: bytes) -> None:
        """The broker's handler for `QUOTES`."""
        version, time_ms, quotes = decode_tick(message)
        if time_ms is not None and version >= self.version:
            self.tick_time_ms = time_ms
        self.update(version, quotes)

    def update(self, version: int, quote_json: Mapping[str, str]) -> None:
        """Take the quotes (wire JSON by symbol) that changed at market `version`."""
        for symbol, text in quote_json.items():
            self._latest[symbol] = (version, text)
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
            phases = self._buckets.get(interval_ms)
            if phases is None:
                count = max(1, interval_ms // self.tick_ms) if self.tick_ms else 1
                phases = self._buckets[interval_ms] = [set() for _ in range(count)]
            phase = min(range(len(phases)), key=lambda p: len(phases[p]))
            group = _Group(conn, interval_ms, (), self.version, phase)
            groups[interval_ms] = group
            phases[phase].add(group)
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
        phases = self._buckets.get(group.interval)
        if phases is not None:
            phases[group.phase].discard(group)
            if not any(phases):
                del self._buckets[group.interval]
                self._due.pop(group.interval, None)

    def subscriber_count(self) -> int:
        return len(self._groups)

    # delivery ---------------------------------------------------------------
    def run_due(self, now_ms: int) -> int:
        """Flush every phase whose time has come (or comes within `slack_ms`); returns the frames sent.

        Called right after each tick's quotes arrive: a frame leaves as soon as its quotes exist. The first
        sight of an interval schedules its phases a tick apart.
        """
        sent = 0
        for interval, phases in list(self._buckets.items()):
            due = self._due.get(interval)
            if due is None:
                self._due[interval] = [now_ms + interval + phase * self.tick_ms for phase in range(len(phases))]
                continue
            for phase, groups in enumerate(phases):
                if now_ms + self.slack_ms >= due[phase]:  # an empty phase keeps its cadence too
                    due[phase] = max(due[phase] + interval, now_ms + interval // 2)
                    sent += self._flush(groups, now_ms)
        return sent

    def flush(self, interval: int, now_ms: int | None = None) -> int:
        """Send each connection of `interval` (every phase) what changed since its last frame; with `now_ms`,
        also close the ones that have been behind for `stall_ms`."""
        return sum(self._flush(groups, now_ms) for groups in self._buckets.get(interval, ()))

    def _flush(self, groups: set[_Group], now_ms: int | None) -> int:
        version = self.version
        frames: dict[tuple, str | None] = {}
        sent = 0
        for group in list(groups):
            if group.last_version >= version:
                continue
            conn = group.conn
            backlog = conn.buffered_bytes()
            if backlog > self.soft_buffer:
                if group.behind_since is None:
                    group.behind_since = now_ms
                stalled = now_ms is not None and now_ms - group.behind_since >= self.stall_ms
                if backlog > self.hard_buffer or stalled:
                    log.warning("closing slow consumer", extra={"session_id": conn.session_id, "backlog": backlog})
                    conn.close(CloseCode.SLOW_CONSUMER, "slow consumer")
                continue  # coalesce: the next frame carries the latest quotes since last_version
            group.behind_since = None
            key = (group.symbols, group.last_version)
            if key not in frames:
                frames[key] = self._frame(group.symbols, group.last_version)
            data_json = frames[key]
            group.last_version = version
            if data_json is not None and conn.send_json("REAL_TIME_UPDATE", data_json, backlog=backlog):
                sent += 1
        return sent

    def _frame(self, symbols, since_version: int) -> str | None:
        latest = self._latest
        parts = [latest[s][1] for s in symbols if s in latest and latest[s][0] > since_version]
        if not parts:
            return None
        self.frames_built += 1
        return '{"quotes":[' + ",".join(parts) + "]}"
