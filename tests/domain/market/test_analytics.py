"""Symbol analytics over a symbol's bars: moving averages, RSI, MACD, Bollinger bands, VWAP and volatility."""

import math
import random

import pytest

from domain.errors import BadRequest, NotFound
from domain.market import Bollinger, Macd, MarketSimulator, symbol_analytics

START = 1_764_126_000_000


def test_analytics_report_every_indicator_right_after_start():
    sim = MarketSimulator(rng=random.Random(7), start_market_ms=START)
    for interval in ("1d", "1m", "5m"):
        a = symbol_analytics(sim, "NVTX", interval)
        assert a.symbol == "NVTX" and a.interval == interval
        scalars = (a.sma20, a.sma50, a.ema12, a.ema26, a.rsi14, a.vwap, a.volatility)
        assert all(isinstance(v, float) for v in scalars)
        assert all(isinstance(v, float) for v in (a.macd.macd, a.macd.signal, a.macd.histogram))
        assert 0 <= a.rsi14 <= 100 and a.volatility > 0
        assert a.bollinger.upper > a.bollinger.middle > a.bollinger.lower
        assert a.bollinger.middle == a.sma20
        assert a.macd.histogram == pytest.approx(a.macd.macd - a.macd.signal, abs=1e-9)
    assert symbol_analytics(sim, "NVTX").interval == "1d"


def test_analytics_are_none_where_there_are_too_few_bars():
    sim = MarketSimulator(rng=random.Random(1), start_market_ms=START, history_days=10, minute_history_days=0)
    a = symbol_analytics(sim, "NVTX", "1d")
    assert a.sma20 is None and a.sma50 is None and a.ema26 is None and a.rsi14 is None
    assert a.macd == Macd(None, None, None)
    assert a.bollinger == Bollinger(None, None, None)
    assert a.vwap is None  # no minute bars have traded yet
    assert a.volatility is not None
    t = START
    for _ in range(20):
        t += 1_000
        sim.tick(t, t + 5)
    assert symbol_analytics(sim, "NVTX", "1d").vwap > 0


def test_vwap_is_the_volume_weighted_typical_price_of_the_latest_session():
    sim = MarketSimulator(rng=random.Random(3), start_market_ms=START, history_days=2, minute_history_days=1)
    yesterday = [b for b in sim.bars("NVTX", "1m") if b.time < START]  # today's only bar has no volume yet
    typical = math.fsum((b.high + b.low + b.close) / 300 * b.volume for b in yesterday)
    assert symbol_analytics(sim, "NVTX").vwap == pytest.approx(typical / sum(b.volume for b in yesterday))


def test_unknown_symbols_are_not_found_and_unknown_intervals_bad_requests():
    sim = MarketSimulator(rng=random.Random(1), start_market_ms=START, history_days=5, minute_history_days=0)
    with pytest.raises(NotFound):
        symbol_analytics(sim, "NOPE")
    for interval in ("2h", "1w", "", "1D"):
        with pytest.raises(BadRequest):
            symbol_analytics(sim, "NVTX", interval)
