"""Technical indicators: pure functions over sequences of floats that return None when given too few values."""

import math
from collections.abc import Sequence

__all__ = [
    "sma",
    "ema",
    "ema_series",
    "rsi",
    "macd",
    "bollinger",
    "vwap",
    "realized_volatility",
]


def _check_period(n: int) -> None:
    if n < 1:
        raise ValueError("period must be at least 1")


def sma(values: Sequence[float], n: int) -> float | None:
    """Simple moving average: the arithmetic mean of the last `n` values."""
    _check_period(n)
    if len(values) < n:
        return None
    return math.fsum(values[-n:]) / n


def ema_series(values: Sequence[float], n: int) -> list[float]:
    """EMA after each value from the n-th on: seeded with the SMA of the first `n`, then alpha = 2 / (n + 1).

    >>> ema_series([1, 2, 3, 4, 5], 3)
    [2.0, 3.0, 4.0]
    """
    _check_period(n)
    if len(values) < n:
        return []
    alpha = 2.0 / (n + 1)
    current = math.fsum(values[:n]) / n
    out = [current]
    for value in values[n:]:
        current += alpha * (value - current)
        out.append(current)
    return out


def ema(values: Sequence[float], n: int) -> float | None:
    """Exponential moving average of the last value: SMA-seeded over the first `n`, alpha = 2 / (n + 1)."""
    series = ema_series(values, n)
    return series[-1] if series else None


def rsi(values: Sequence[float], n: int = 14) -> float | None:
    """Wilder's RSI (0..100): averages seeded with the mean of the first `n` changes, then smoothed by 1/n.

    Needs n + 1 values. A series that never fell gives 100, one that never moved gives 50.
    """
    _check_period(n)
    if len(values) < n + 1:
        return None
    changes = [b - a for a, b in zip(values[:-1], values[1:], strict=True)]
    gain = math.fsum(c for c in changes[:n] if c > 0) / n
    loss = math.fsum(-c for c in changes[:n] if c < 0) / n
    for change in changes[n:]:
        gain = (gain * (n - 1) + (change if change > 0 else 0.0)) / n
        loss = (loss * (n - 1) + (-change if change < 0 else 0.0)) / n
    if loss == 0:
        return 50.0 if gain == 0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def macd(values: Sequence[float], fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[float, float, float] | None:
    """MACD: (EMA fast - EMA slow, its SMA-seeded EMA over `signal` values, their difference); needs slow + signal - 1.

    Both EMAs are SMA-seeded (see `ema_series`); the MACD line starts where the slow EMA does.
    """
    if fast >= slow:
        raise ValueError("the fast period must be shorter than the slow one")
    if len(values) < slow + signal - 1:
        return None
    fast_line = ema_series(values, fast)[slow - fast :]
    slow_line = ema_series(values, slow)
    line = [f - s for f, s in zip(fast_line, slow_line, strict=True)]
    signal_line = ema_series(line, signal)
    return line[-1], signal_line[-1], line[-1] - signal_line[-1]


def bollinger(values: Sequence[float], n: int = 20, k: float = 2.0) -> tuple[float, float, float] | None:
    """Bollinger bands (upper, middle, lower): SMA of the last `n` values +/- k population (ddof=0) std devs."""
    _check_period(n)
    if len(values) < n:
        return None
    window = values[-n:]
    middle = math.fsum(window) / n
    std = math.sqrt(math.fsum((v - middle) ** 2 for v in window) / n)
    return middle + k * std, middle, middle - k * std


def vwap(prices: Sequence[float], volumes: Sequence[float]) -> float | None:
    """Volume-weighted average price: sum(price * volume) / sum(volume); None when empty or with no volume."""
    if len(prices) != len(volumes):
        raise ValueError("prices and volumes differ in length")
    total = math.fsum(volumes)
    if total <= 0:
        return None
    return math.fsum(p * v for p, v in zip(prices, volumes, strict=True)) / total


def realized_volatility(closes: Sequence[float], periods_per_year: float) -> float | None:
    """Annualized volatility: sample std (ddof=1) of log returns of `closes` times sqrt(periods_per_year).

    Needs three closes (two returns).
    """
    if len(closes) < 3:
        return None
    if any(c <= 0 for c in closes):
        raise ValueError("closes must be positive")
    returns = [math.log(b / a) for a, b in zip(closes[:-1], closes[1:], strict=True)]
    mean = math.fsum(returns) / len(returns)
    variance = math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance * periods_per_year)
