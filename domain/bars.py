"""OHLCV bars: aggregating price ticks into bounded series of 1m, 5m, 15m, 1h and trading-day bars."""

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace

from domain.errors import BadRequest

__all__ = [
    "Bar",
    "BarSeries",
    "BarBook",
    "INTERVALS",
    "INTRADAY_INTERVALS",
    "MAX_BARS",
    "MAX_DAILY_BARS",
    "bar_start",
    "check_interval",
]

INTERVALS: dict[str, int | None] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "1d": None,  # one simulated trading day (the simulator's day length), not a calendar day
}
INTRADAY_INTERVALS = ("1m", "5m", "15m", "1h")
MAX_BARS = 2000
MAX_DAILY_BARS = 2000


def check_interval(interval: object) -> str:
    """Return `interval` if it is one of INTERVALS, else raise BadRequest naming the valid ones."""
    if not isinstance(interval, str) or interval not in INTERVALS:
        raise BadRequest(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}")
    return interval


def bar_start(market_ms: int, interval_ms: int | None, day_start_ms: int) -> int:
    """Start of the bar holding `market_ms`: intraday bars are aligned to the day's start, so none spans two days.

    >>> bar_start(1_000 + 125_000, 60_000, 1_000)
    121000
    """
    if interval_ms is None:
        return day_start_ms
    return day_start_ms + (market_ms - day_start_ms) // interval_ms * interval_ms


@dataclass(slots=True)
class Bar:
    """One OHLCV bar: `time` is its start on the market clock (epoch ms), prices in cents, volume in shares."""

    time: int
    open: int
    high: int
    low: int
    close: int
    volume: int


class BarSeries:
    """Owns the bounded bar history of one symbol at one interval; the last bar may still be forming."""

    __slots__ = ("interval_ms", "bars", "_last")

    def __init__(self, interval_ms: int | None, maxlen: int = MAX_BARS):
        self.interval_ms = interval_ms
        self.bars: deque[Bar] = deque(maxlen=maxlen)
        self._last: Bar | None = None

    def update(self, market_ms: int, price: int, volume: int, day_start_ms: int) -> None:
        """Fold one tick into the bar that holds `market_ms`, opening a new bar when the tick is past the last one.

        Ticks must come in market-time order; a bucket with no ticks simply has no bar.
        """
        iv = self.interval_ms
        start = day_start_ms if iv is None else day_start_ms + (market_ms - day_start_ms) // iv * iv
        bar = self._last
        if bar is None or bar.time != start:
            bar = Bar(start, price, price, price, price, volume)
            self.bars.append(bar)
            self._last = bar
            return
        if price > bar.high:
            bar.high = price
        elif price < bar.low:
            bar.low = price
        bar.close = price
        bar.volume += volume

    def extend(self, bars: Iterable[Bar]) -> None:
        """Append finished bars (oldest first), e.g. generated history."""
        self.bars.extend(bars)
        self._last = self.bars[-1] if self.bars else None

    def last(self, limit: int) -> list[Bar]:
        """The last `limit` bars, oldest first; the last one is a copy, since it may still be forming."""
        n = len(self.bars)
        if limit <= 0 or n == 0:
            return []
        start = max(0, n - limit)
        out = [self.bars[i] for i in range(start, n - 1)]
        out.append(replace(self.bars[-1]))
        return out

    def __len__(self) -> int:
        return len(self.bars)


class BarBook:
    """Owns one symbol's bar series at every interval and feeds each tick to all of them."""

    __slots__ = ("series", "_all")

    def __init__(self, maxlen: int = MAX_BARS, daily_maxlen: int = MAX_DAILY_BARS):
        self.series: dict[str, BarSeries] = {
            name: BarSeries(iv, daily_maxlen if iv is None else maxlen) for name, iv in INTERVALS.items()
        }
        self._all = tuple(self.series.values())

    def update(self, market_ms: int, price: int, volume: int, day_start_ms: int) -> None:
        """Fold one tick (market time, price in cents, shares traded since the last tick) into every interval."""
        for series in self._all:
            series.update(market_ms, price, volume, day_start_ms)

    def last(self, interval: str, limit: int) -> list[Bar]:
        return self.series[check_interval(interval)].last(limit)
