"""Symbol analytics: moving averages, RSI, MACD, Bollinger bands, session VWAP and volatility over one symbol's bars."""

from dataclasses import dataclass

from domain import indicators
from domain.bars import INTERVALS

from .simulator import TRADING_DAYS_PER_YEAR, MarketSimulator

__all__ = ["Macd", "Bollinger", "SymbolAnalytics", "symbol_analytics"]

_ANALYTICS_BARS = 300  # enough for every indicator window; EMA seeds older than this have decayed away


@dataclass(frozen=True, slots=True)
class Macd:
    """MACD 12/26/9 in currency units: the line, its signal line and their difference; None with too few bars."""

    macd: float | None = None
    signal: float | None = None
    histogram: float | None = None


@dataclass(frozen=True, slots=True)
class Bollinger:
    """Bollinger bands (20 bars, 2 population standard deviations) in currency units; None with too few bars."""

    upper: float | None = None
    middle: float | None = None
    lower: float | None = None


@dataclass(frozen=True, slots=True)
class SymbolAnalytics:
    """One symbol's indicators over the closes of one interval's bars, in currency units, unrounded.

    Each value is None where there are too few bars for it.
    """

    symbol: str
    interval: str
    sma20: float | None
    sma50: float | None
    ema12: float | None
    ema26: float | None
    rsi14: float | None
    macd: Macd
    bollinger: Bollinger
    vwap: float | None
    volatility: float | None  # annualized


def symbol_analytics(market: MarketSimulator, symbol: str, interval: str = "1d") -> SymbolAnalytics:
    """The indicators over the closes of `symbol`'s `interval` bars, the forming one included.

    RSI is Wilder's, MACD is 12/26/9, Bollinger is 20 bars and 2 population standard deviations, `volatility` is
    annualized from the last 20 log returns of that interval, and `vwap` is the volume-weighted typical price
    ((high + low + close) / 3) of the 1-minute bars of the latest session that has traded.
    NotFound for an unknown symbol, BadRequest for an unknown interval.
    """
    bars = market.bars(symbol, interval)
    closes = [bar.close / 100 for bar in bars[-_ANALYTICS_BARS:]]
    iv = INTERVALS[interval]
    per_year = TRADING_DAYS_PER_YEAR * (1 if iv is None else market.day_length_ms / iv)
    m = indicators.macd(closes, 12, 26, 9)
    b = indicators.bollinger(closes, 20, 2.0)
    return SymbolAnalytics(
        symbol=symbol,
        interval=interval,
        sma20=indicators.sma(closes, 20),
        sma50=indicators.sma(closes, 50),
        ema12=indicators.ema(closes, 12),
        ema26=indicators.ema(closes, 26),
        rsi14=indicators.rsi(closes, 14),
        macd=Macd(*m) if m else Macd(),
        bollinger=Bollinger(*b) if b else Bollinger(),
        vwap=_session_vwap(market, symbol),
        volatility=indicators.realized_volatility(closes[-21:], per_year),
    )


def _session_vwap(market: MarketSimulator, symbol: str) -> float | None:
    session = next((bar for bar in reversed(market.bars(symbol, "1d")) if bar.volume > 0), None)
    if session is None:
        return None
    session_end = session.time + market.day_length_ms
    prices, volumes = [], []
    for bar in reversed(market.bars(symbol, "1m")):
        if bar.time < session.time:
            break
        if bar.time < session_end:
            prices.append((bar.high + bar.low + bar.close) / 300)
            volumes.append(bar.volume)
    return indicators.vwap(prices, volumes)
