"""Market data on the wire: quotes, bars, symbol analytics, index levels, the market overview, the symbol list, news.

Money is `round(cents / 100, 2)` and a percent change `round(change / base * 100, 2)`, the formulas these
objects have always used; analytics round to 4 decimals (RSI to 2) and keep a negative zero as it is. A scenario's
news carries its market time as the protocol's ISO-8601 timestamps are written.
"""

from domain.bars import Bar
from domain.market import IndexLevel, MarketOverview, Quote, SymbolAnalytics
from domain.scenarios import NewsItem
from domain.universe import SymbolSpec

from . import iso_ms

__all__ = ["quote", "bar", "analytics", "index_level", "mover", "overview", "listed_symbol", "status", "news"]


def _money(cents: int) -> float:
    return round(cents / 100, 2)


def _percent(change: float, base: float) -> float:
    return round(change / base * 100, 2) if base else 0.0


def _rounded(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def quote(q: Quote) -> dict:
    """The protocol's quote object (QUOTE_UPDATE, INITIAL_DATA, QUOTE_RESPONSE)."""
    change = q.change
    return {
        "symbol": q.symbol,
        "name": q.name,
        "sector": q.sector,
        "price": _money(q.price),
        "bid": _money(q.bid),
        "ask": _money(q.ask),
        "bidSize": q.bid_size,
        "askSize": q.ask_size,
        "open": _money(q.open),
        "high": _money(q.high),
        "low": _money(q.low),
        "previousClose": _money(q.previous_close),
        "change": _money(change),
        "changePercent": _percent(change, q.previous_close),
        "volume": q.volume,
        "time": q.time,
        "marketTime": q.market_time,
    }


def bar(b: Bar) -> dict:
    """One HISTORICAL_DATA bar."""
    return {
        "time": b.time,
        "open": _money(b.open),
        "high": _money(b.high),
        "low": _money(b.low),
        "close": _money(b.close),
        "volume": b.volume,
    }


def analytics(a: SymbolAnalytics) -> dict:
    """ANALYTICS_DATA."""
    m, b = a.macd, a.bollinger
    return {
        "symbol": a.symbol,
        "interval": a.interval,
        "sma20": _rounded(a.sma20),
        "sma50": _rounded(a.sma50),
        "ema12": _rounded(a.ema12),
        "ema26": _rounded(a.ema26),
        "rsi14": _rounded(a.rsi14, 2),
        "macd": {"macd": _rounded(m.macd), "signal": _rounded(m.signal), "histogram": _rounded(m.histogram)},
        "bollinger": {"upper": _rounded(b.upper), "middle": _rounded(b.middle), "lower": _rounded(b.lower)},
        "vwap": _rounded(a.vwap),
        "volatility": _rounded(a.volatility),
    }


def index_level(level: IndexLevel) -> dict:
    """One index in MARKET_OVERVIEW's `indices`, in index points."""
    return {
        "symbol": level.symbol,
        "name": level.name,
        "value": round(level.value, 2),
        "change": round(level.change, 2),
        "changePercent": _percent(level.change, level.previous_close),
    }


def mover(q: Quote) -> dict:
    """One entry of MARKET_OVERVIEW's topGainers, topLosers and mostActive."""
    change = q.change
    return {
        "symbol": q.symbol,
        "name": q.name,
        "price": _money(q.price),
        "change": _money(change),
        "changePercent": _percent(change, q.previous_close),
        "volume": q.volume,
    }


def overview(o: MarketOverview, *, status: str, speed: float, market_time: int) -> dict:
    """MARKET_OVERVIEW: the overview with the market's status, speed and clock, so a new client knows them at once."""
    return {
        "indices": [index_level(level) for level in o.indices],
        "topGainers": [mover(q) for q in o.top_gainers],
        "topLosers": [mover(q) for q in o.top_losers],
        "mostActive": [mover(q) for q in o.most_active],
        "advancers": o.advancers,
        "decliners": o.decliners,
        "unchanged": o.unchanged,
        "marketStatus": status,
        "speed": speed,
        "marketTime": market_time,
    }


def listed_symbol(spec: SymbolSpec) -> dict:
    """One SYMBOL_LIST entry."""
    return {"symbol": spec.symbol, "name": spec.name, "sector": spec.sector}


def status(state: str, *, speed: float, market_time: int, event: dict | None = None) -> dict:
    """MARKET_STATUS (and the market-control reply): the state, the speed, the market clock, what just happened."""
    data = {"status": state, "speed": speed, "marketTime": market_time}
    if event is not None:
        data["event"] = event
    return data


def news(item: NewsItem, *, news_id: int, scenario: str) -> dict:
    """NEWS (and each item of NEWS_HISTORY): `time` is the market time of the scenario event that brought it, `id`
    counts the server's news items 1, 2, 3..., `scenario` is the name of the scenario it comes from."""
    return {
        "id": news_id,
        "headline": item.headline,
        "body": item.body,
        "symbols": list(item.symbols),
        "time": iso_ms(item.time_ms),
        "scenario": scenario,
    }
