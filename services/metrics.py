"""The server's own figures over the last hour: per-second ring buffers of counters, gauges and small histograms.

Nothing is computed per message beyond an increment (counters live in the hub) and, for a timing, one bucket
increment (`Histogram.observe`). Once a second `Metrics.sample` turns what the counters moved and what the
histograms saw into one slot of a fixed-size ring (3,600 seconds by default), so the cost is the same whether or
not anyone watches; percentiles are only worked out when someone reads them (`Metrics.series`). The same
histograms, cumulative, are what /metrics exports. Pure: the clock is injected and nothing here knows a socket.
"""

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["BUCKETS_MS", "Histogram", "Ring", "Metrics", "quantile", "COUNTERS"]

# Upper bounds (ms) of the histogram buckets, the last one open (+Inf): 50 µs to 10 s, about 2.5x apart.
BUCKETS_MS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0,
              5000.0, 10000.0)

COUNTERS = ("messagesIn", "messagesOut", "messagesFailed", "errors", "slowConsumerCloses")
"""The cumulative counters `sample` is given each second (the hub's); the ring keeps what each moved."""

ALL_TYPES = "ALL"


class Histogram:
    """Observations in milliseconds counted in fixed buckets: cumulative (for /metrics) and since the last sample
    (for the ring). `observe` is a bisect and two increments."""

    __slots__ = ("bounds", "counts", "sum_ms", "_recent", "_recent_sum")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS_MS):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum_ms = 0.0
        self._recent = [0] * (len(bounds) + 1)
        self._recent_sum = 0.0

    def observe(self, ms: float, n: int = 1) -> None:
        """Count `n` observations of `ms` milliseconds."""
        index = bisect_left(self.bounds, ms)
        self.counts[index] += n
        self._recent[index] += n
        self.sum_ms += ms * n

    @property
    def count(self) -> int:
        return sum(self.counts)

    def take(self) -> tuple[int, ...] | None:
        """The bucket counts since the last `take` (None if nothing was observed), and start afresh."""
        recent = self._recent
        if not any(recent):
            return None
        self._recent = [0] * len(recent)
        return tuple(recent)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound in ms, observations at or below it) for every bucket but +Inf, as Prometheus wants them."""
        total, out = 0, []
        for bound, count in zip(self.bounds, self.counts, strict=False):  # counts has +Inf too
            total += count
            out.append((bound, total))
        return out


def quantile(q: float, counts, bounds: tuple[float, ...] = BUCKETS_MS) -> float | None:
    """The q-quantile of bucketed observations, interpolated linearly inside its bucket (Prometheus'
    histogram_quantile); None when there are none. A quantile in the open bucket is its lower bound."""
    total = sum(counts)
    if not total:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower = bounds[index - 1] if index > 0 else 0.0
            if index >= len(bounds):
                return lower
            return lower + (bounds[index] - lower) * (rank - seen) / count
        seen += count
    return bounds[-1]


class Ring:
    """A fixed number of per-second slots, addressed by epoch second; an old second is overwritten, never grown."""

    def __init__(self, size: int):
        self.size = size
        self._slots: list[tuple[int, object] | None] = [None] * size

    def put(self, second: int, value) -> None:
        self._slots[second % self.size] = (second, value)

    def get(self, second: int):
        entry = self._slots[second % self.size]
        return entry[1] if entry is not None and entry[0] == second else None

    def between(self, first: int, last: int) -> Iterator[tuple[int, object]]:
        """(second, value) for each second from `first` to `last` that holds one, oldest first (at most `size`)."""
        for second in range(max(first, last - self.size + 1), last + 1):
            value = self.get(second)
            if value is not None:
                yield second, value


@dataclass(slots=True)
class _Second:
    """One slot: how long it covers, what each counter moved, the gauges at its end, what each histogram saw."""

    elapsed: float
    moved: dict[str, int]
    connections: dict[str, int]
    histograms: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _merge(older: _Second, newer: _Second) -> _Second:
    """Two samples that fell in the same second (a late timer): one slot."""
    moved = {name: older.moved.get(name, 0) + newer.moved.get(name, 0) for name in COUNTERS}
    histograms = dict(older.histograms)
    for name, counts in newer.histograms.items():
        before = histograms.get(name)
        histograms[name] = counts if before is None else tuple(a + b for a, b in zip(before, counts, strict=True))
    return _Second(older.elapsed + newer.elapsed, moved, newer.connections, histograms)


class Metrics:
    """Owns the last hour of the server's figures: feed it timings as they happen and counters once a second.

    Timings: `response_time(type, ms)` (the message types handled, a bounded set), `fanout_delay` and
    `order_ack` (Histograms observed by their owners). `sample(counters, connections)` each second stores one slot.
    """

    def __init__(self, *, clock, window_s: int = 3600):
        self._clock = clock
        self.window_s = window_s
        self._ring = Ring(window_s)
        self.response: dict[str, Histogram] = {}
        self.fanout_delay = Histogram()
        self.order_ack = Histogram()
        self._last_counters = dict.fromkeys(COUNTERS, 0)  # the counters start at zero with the hub
        self._last_at = clock.now()

    def response_time(self, message_type: str, ms: float) -> None:
        """A client message of `message_type` took `ms` to handle (the caller keeps the set of types bounded)."""
        histogram = self.response.get(message_type)
        if histogram is None:
            histogram = self.response[message_type] = Histogram()
        histogram.observe(ms)

    def sample(self, counters: Mapping[str, int], connections: Mapping[str, int]) -> None:
        """Close the current second: what each cumulative counter moved since the last sample, the connection
        gauges, and what each histogram saw."""
        now = self._clock.now()
        last, self._last_counters = self._last_counters, {name: int(counters.get(name, 0)) for name in COUNTERS}
        last_at, self._last_at = self._last_at, now
        histograms = {}
        for name, histogram in self._histograms():
            taken = histogram.take()
            if taken is not None:
                histograms[name] = taken
        moved = {name: max(0, self._last_counters[name] - last[name]) for name in COUNTERS}
        slot = _Second(max(now - last_at, 1e-3), moved, dict(connections), histograms)
        second = int(now)
        before = self._ring.get(second)
        self._ring.put(second, slot if before is None else _merge(before, slot))

    def _histograms(self) -> Iterator[tuple[str, Histogram]]:
        yield "fanoutDelay", self.fanout_delay
        yield "orderAck", self.order_ack
        for message_type, histogram in list(self.response.items()):
            yield "response:" + message_type, histogram

    def series(self, since: float | None = None) -> dict:
        """The figures of each second after `since` (epoch seconds; the whole window when None), as columns
        aligned on `seconds`. Rates are per second; a ratio or percentile with nothing to measure is None."""
        now = int(self._clock.now())
        first = now - self.window_s + 1 if since is None else int(since) + 1
        rows = list(self._ring.between(first, now))
        seconds = [second for second, _ in rows]
        slots: list[_Second] = [slot for _, slot in rows]
        endpoints = sorted({name for slot in slots for name in slot.connections})

        def rate(name):
            return [round(slot.moved[name] / slot.elapsed, 3) for slot in slots]

        def ratio(numerator, denominator):
            out = []
            for slot in slots:
                den = sum(slot.moved[name] for name in denominator)
                out.append(round(sum(slot.moved[name] for name in numerator) / den, 6) if den else None)
            return out

        def percentiles(counts_of):
            p50, p99 = [], []
            for slot in slots:
                counts = counts_of(slot)
                p50.append(_round(quantile(0.5, counts)) if counts else None)
                p99.append(_round(quantile(0.99, counts)) if counts else None)
            return {"p50": p50, "p99": p99}

        types = sorted({name[9:] for slot in slots for name in slot.histograms if name.startswith("response:")})
        response = {ALL_TYPES: percentiles(lambda slot: _summed(
            counts for name, counts in slot.histograms.items() if name.startswith("response:")))}
        for message_type in types:
            response[message_type] = percentiles(lambda slot, key="response:" + message_type:
                                                 slot.histograms.get(key))
        return {
            "window": self.window_s,
            "seconds": seconds,
            "connections": {name: [slot.connections.get(name, 0) for slot in slots] for name in endpoints},
            "messagesInPerSecond": rate("messagesIn"),
            "messagesOutPerSecond": rate("messagesOut"),
            "sendSuccessRate": ratio(["messagesOut"], ["messagesOut", "messagesFailed"]),
            "errorRate": ratio(["errors"], ["messagesIn"]),
            "slowConsumerCloses": [slot.moved["slowConsumerCloses"] for slot in slots],
            "orderAcksPerSecond": [round(sum(slot.histograms.get("orderAck", ())) / slot.elapsed, 3)
                                   for slot in slots],
            "responseTimeMs": response,
            "fanoutDelayMs": percentiles(lambda slot: slot.histograms.get("fanoutDelay")),
            "orderAckMs": percentiles(lambda slot: slot.histograms.get("orderAck")),
        }


def _summed(many) -> tuple[int, ...] | None:
    total = None
    for counts in many:
        total = counts if total is None else tuple(a + b for a, b in zip(total, counts, strict=True))
    return total


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
