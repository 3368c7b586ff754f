"""The scale-free indicator features that the signal models read, from a symbol's latest 1-minute closes.

Every feature is scale-free: log returns over the last bars divided by the symbol's recent per-bar volatility
(the root mean square of the last 30 one-bar log returns), so the same thresholds fit a $30 and a $900 stock.
"""

import enum
import math
from collections.abc import Sequence

from domain import indicators

__all__ = ["Feature", "FEATURES", "MIN_BARS", "WINDOW", "compute_features"]


class Feature(enum.StrEnum):
    """The online model's inputs, in order. Each is scaled to about unit standard deviation under a random walk."""

    ROC1 = "roc1"
    ROC5 = "roc5"
    ROC10 = "roc10"
    MACD_HISTOGRAM = "macd_histogram"
    BOLLINGER = "bollinger"
    RSI = "rsi"
    SMA_GAP = "sma_gap"
    SLOPE = "slope"


FEATURES = tuple(Feature)
WINDOW = 60  # closes worth keeping per symbol; every indicator is computed over at most these
MIN_BARS = 35  # MACD 12/26/9 needs 34 closes, the volatility 31
_VOL_BARS = 30
_SLOPE_BARS = 30
_CLIP = 5.0
# Divisors that bring each raw feature to about unit standard deviation on a pure random walk (measured on the
# simulator at predictability 0 over 40k bars; only the rule models' thresholds depend on them).
_MACD_SCALE = 0.34
_GAP_SCALE = 2.1
_SLOPE_SCALE = 1.09
_RSI_SCALE = 20.0  # RSI points: 70 and 30 map to +1 and -1


def _clip(value: float) -> float:
    return _CLIP if value > _CLIP else -_CLIP if value < -_CLIP else value


def compute_features(closes: Sequence[float], logs: Sequence[float] | None = None) -> dict[str, float] | None:
    """The scale-free indicator features (by Feature) of the last close of `closes` (oldest first), or None.

    None with fewer than 35 closes; uses at most the last 60 (`logs`, their natural logs, may be passed to save
    recomputing them). Every value is clipped to [-5, 5]:

    - ``roc1``, ``roc5``, ``roc10``: log return over the last 1, 5, 10 bars / (volatility x sqrt(bars));
    - ``macd_histogram``: MACD 12/26/9 histogram / (close x volatility x 0.34);
    - ``bollinger``: (close - SMA 20) / (2 population std of the last 20 closes): +1 at the upper band;
    - ``rsi``: (Wilder RSI 14 - 50) / 20: +1 at 70, -1 at 30;
    - ``sma_gap``: log(SMA 10 / SMA 30) / (volatility x 2.1);
    - ``slope``: least-squares slope of the last 30 log closes x 30 / (volatility x sqrt(30) x 1.09);
    - ``volatility`` (not clipped, not a model input): root mean square of the last 30 one-bar log returns.
    """
    if len(closes) < MIN_BARS:
        return None
    closes = list(closes)[-WINDOW:]
    logs = [math.log(c) for c in closes] if logs is None else list(logs)[-len(closes) :]
    last = logs[-1]
    returns = [b - a for a, b in zip(logs[-_VOL_BARS - 1 : -1], logs[-_VOL_BARS:], strict=True)]
    vol = math.sqrt(sum(r * r for r in returns) / _VOL_BARS)
    out = {"volatility": vol}
    if vol <= 0.0:  # a price that has not moved in 30 bars: nothing to say
        out.update(dict.fromkeys(FEATURES, 0.0))
        return out
    close = closes[-1]
    hist = indicators.macd(closes, 12, 26, 9)[2]
    upper, middle, _ = indicators.bollinger(closes, 20, 2.0)
    band = upper - middle
    rsi = indicators.rsi(closes, 14)
    fast, slow = indicators.sma(closes, 10), indicators.sma(closes, 30)
    # The least-squares slope is sum_k (k - centre) y_k / sum_k (k - centre)^2; the weights already sum to zero.
    slope = sum(w * y for w, y in zip(_SLOPE_WEIGHTS, logs[-_SLOPE_BARS:], strict=True))
    out.update(
        {
            Feature.ROC1: _clip(returns[-1] / vol),
            Feature.ROC5: _clip((last - logs[-6]) / (vol * _SQRT5)),
            Feature.ROC10: _clip((last - logs[-11]) / (vol * _SQRT10)),
            Feature.MACD_HISTOGRAM: _clip(hist / (close * vol * _MACD_SCALE)),
            Feature.BOLLINGER: _clip((close - middle) / band) if band > 0 else 0.0,
            Feature.RSI: _clip((rsi - 50.0) / _RSI_SCALE),
            Feature.SMA_GAP: _clip(math.log(fast / slow) / (vol * _GAP_SCALE)),
            Feature.SLOPE: _clip(slope * _SLOPE_BARS / (vol * math.sqrt(_SLOPE_BARS) * _SLOPE_SCALE)),
        }
    )
    return out


_SQRT5, _SQRT10 = math.sqrt(5), math.sqrt(10)
_SLOPE_WEIGHTS = [k - (_SLOPE_BARS - 1) / 2 for k in range(_SLOPE_BARS)]
_SLOPE_WEIGHTS = [w / math.fsum(v * v for v in _SLOPE_WEIGHTS) for w in _SLOPE_WEIGHTS]
