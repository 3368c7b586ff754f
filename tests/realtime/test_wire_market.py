"""Market data on the wire: the exact protocol objects for quotes, bars, analytics, indices and the overview."""

import json
import math
import random

from domain.bars import Bar
from domain.market import (
    Bollinger,
    IndexLevel,
    Macd,
    MarketOverview,
    MarketSimulator,
    Quote,
    SymbolAnalytics,
    index_levels,
    symbol_analytics,
)
from domain.trading import MarketState
from domain.universe import IndexSpec, SymbolSpec
from realtime.wire import market as wire_market

START = 1_764_126_000_000

QUOTE = Quote("ABC", "Abc Inc", "Tech", 10_050, 10_049, 10_052, 300, 500, 10_000, 10_100, 9_950, 9_800, 12_345,
              1_000, 2_000, 7)  # fmt: skip


def test_quote_uses_protocol_names_and_two_decimal_money():
    data = wire_market.quote(QUOTE)
    assert data == {
        "symbol": "ABC",
        "name": "Abc Inc",
        "sector": "Tech",
        "price": 100.5,
        "bid": 100.49,
        "ask": 100.52,
        "bidSize": 300,
        "askSize": 500,
        "open": 100.0,
        "high": 101.0,
        "low": 99.5,
        "previousClose": 98.0,
        "change": 2.5,
        "changePercent": 2.55,  # 250 / 9800 = 2.551%
        "volume": 12_345,
        "time": 1_000,
        "marketTime": 2_000,
    }
    assert list(data) == ["symbol", "name", "sector", "price", "bid", "ask", "bidSize", "askSize", "open", "high",
                          "low", "previousClose", "change", "changePercent", "volume", "time", "marketTime"]


def test_bar_sends_money_as_two_decimal_floats():
    data = wire_market.bar(Bar(60_000, 10_050, 10_100, 9_999, 10_001, 1_234))
    assert data == {"time": 60_000, "open": 100.5, "high": 101.0, "low": 99.99, "close": 100.01, "volume": 1_234}
    assert list(data) == ["time", "open", "high", "low", "close", "volume"]


def test_analytics_round_to_four_decimals_and_rsi_to_two():
    a = SymbolAnalytics("NVTX", "5m", sma20=101.123456, sma50=99.99996, ema12=100.00004, ema26=98.7, rsi14=55.5555,
                        macd=Macd(1.23456, 1.11111, -0.00001), bollinger=Bollinger(110.55556, 101.123456, 91.69136),
                        vwap=100.45678, volatility=0.312345)  # fmt: skip
    data = wire_market.analytics(a)
    assert data == {
        "symbol": "NVTX",
        "interval": "5m",
        "sma20": 101.1235,
        "sma50": 100.0,
        "ema12": 100.0,
        "ema26": 98.7,
        "rsi14": 55.56,
        "macd": {"macd": 1.2346, "signal": 1.1111, "histogram": -0.0},
        "bollinger": {"upper": 110.5556, "middle": 101.1235, "lower": 91.6914},
        "vwap": 100.4568,
        "volatility": 0.3123,
    }
    assert list(data) == ["symbol", "interval", "sma20", "sma50", "ema12", "ema26", "rsi14", "macd", "bollinger",
                          "vwap", "volatility"]  # fmt: skip
    assert list(data["macd"]) == ["macd", "signal", "histogram"]
    assert list(data["bollinger"]) == ["upper", "middle", "lower"]
    assert math.copysign(1, data["macd"]["histogram"]) == -1  # a negative zero stays one, as it always has
    assert json.dumps(data["macd"]) == '{"macd": 1.2346, "signal": 1.1111, "histogram": -0.0}'


def test_analytics_send_null_where_there_are_too_few_bars():
    data = wire_market.analytics(SymbolAnalytics("NVTX", "1d", None, None, None, None, None, Macd(), Bollinger(),
                                                 None, 0.25))  # fmt: skip
    assert data == {
        "symbol": "NVTX", "interval": "1d", "sma20": None, "sma50": None, "ema12": None, "ema26": None, "rsi14": None,
        "macd": {"macd": None, "signal": None, "histogram": None},
        "bollinger": {"upper": None, "middle": None, "lower": None},
        "vwap": None, "volatility": 0.25,
    }  # fmt: skip


def test_analytics_of_a_live_market_carry_every_protocol_field():
    sim = MarketSimulator(rng=random.Random(7), start_market_ms=START, history_days=60, minute_history_days=1)
    data = wire_market.analytics(symbol_analytics(sim, "NVTX", "1d"))
    assert data["symbol"] == "NVTX" and data["interval"] == "1d"
    assert all(isinstance(data[k], float) for k in ("sma20", "sma50", "ema12", "ema26", "rsi14", "vwap", "volatility"))
    assert data["bollinger"]["middle"] == data["sma20"]


def test_index_level_rounds_value_and_change_to_two_decimals():
    data = wire_market.index_level(IndexLevel("SQX", "StockQuest Composite", 1234.5678, 1200.0))
    assert data == {"symbol": "SQX", "name": "StockQuest Composite", "value": 1234.57, "change": 34.57,
                    "changePercent": 2.88}  # fmt: skip
    assert list(data) == ["symbol", "name", "value", "change", "changePercent"]


def test_an_index_of_two_symbols_after_a_shock_on_the_wire():
    universe = (SymbolSpec("AAA", "A", "X", 10_000, 0.2, 1.0), SymbolSpec("BBB", "B", "X", 5_000, 0.2, 1.0))
    sim = MarketSimulator(universe, (IndexSpec("IDX", "Index", ("AAA", "BBB"), 500.0),), rng=random.Random(1),
                          start_market_ms=START, history_days=0)  # fmt: skip
    sim.shock(20, ["AAA"])  # ratios 1.2 and 1.0: 500 * 1.1
    (level,) = index_levels(sim.quotes(), sim.indices())
    assert wire_market.index_level(level) == {"symbol": "IDX", "name": "Index", "value": 550.0, "change": 50.0,
                                              "changePercent": 10.0}  # fmt: skip


def test_mover_is_the_short_quote_of_the_overview_lists():
    data = wire_market.mover(QUOTE)
    assert data == {"symbol": "ABC", "name": "Abc Inc", "price": 100.5, "change": 2.5, "changePercent": 2.55,
                    "volume": 12_345}  # fmt: skip
    assert list(data) == ["symbol", "name", "price", "change", "changePercent", "volume"]


def test_overview_adds_status_speed_and_market_time_last():
    loser = Quote("XYZ", "Xyz Co", "Energy", 9_000, 8_999, 9_001, 100, 100, 10_000, 10_000, 9_000, 10_000, 50, 1, 2, 3)
    overview = MarketOverview(indices=(IndexLevel("SQX", "Composite", 1000.0, 1000.0),), top_gainers=(QUOTE,),
                              top_losers=(loser,), most_active=(QUOTE, loser), advancers=1, decliners=1, unchanged=4)
    data = wire_market.overview(overview, status=MarketState.OPEN, speed=60.0, market_time=5_000)
    abc = {"symbol": "ABC", "name": "Abc Inc", "price": 100.5, "change": 2.5, "changePercent": 2.55, "volume": 12_345}
    xyz = {"symbol": "XYZ", "name": "Xyz Co", "price": 90.0, "change": -10.0, "changePercent": -10.0, "volume": 50}
    assert data == {
        "indices": [{"symbol": "SQX", "name": "Composite", "value": 1000.0, "change": 0.0, "changePercent": 0.0}],
        "topGainers": [abc],
        "topLosers": [xyz],
        "mostActive": [abc, xyz],
        "advancers": 1,
        "decliners": 1,
        "unchanged": 4,
        "marketStatus": "OPEN",
        "speed": 60.0,
        "marketTime": 5_000,
    }
    assert list(data) == ["indices", "topGainers", "topLosers", "mostActive", "advancers", "decliners", "unchanged",
                          "marketStatus", "speed", "marketTime"]  # fmt: skip


def test_listed_symbol_is_symbol_name_and_sector():
    data = wire_market.listed_symbol(SymbolSpec("ABC", "Abc Inc", "Tech", 10_000, 0.2, 1.0))
    assert data == {"symbol": "ABC", "name": "Abc Inc", "sector": "Tech"}
    assert list(data) == ["symbol", "name", "sector"]
