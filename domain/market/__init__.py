"""The simulated market: the price process and simulator, and the read models built from its quotes and bars.

`simulator` (with `process`, `history` and `quote`) makes prices, quotes and bars; `analytics`, `indices` and
`overview` read them. Everything callers use is importable from `domain.market`.
"""

from .analytics import Bollinger, Macd, SymbolAnalytics, symbol_analytics
from .indices import EqualWeightIndex, IndexLevel, index_levels
from .overview import MarketOverview, market_overview
from .process import FactorScope, FactorWindow
from .quote import Quote, TickResult
from .simulator import MAX_HISTORY_LIMIT, TRADING_DAYS_PER_YEAR, MarketSimulator

__all__ = [
    "Quote",
    "TickResult",
    "MarketSimulator",
    "TRADING_DAYS_PER_YEAR",
    "MAX_HISTORY_LIMIT",
    "FactorScope",
    "FactorWindow",
    "EqualWeightIndex",
    "IndexLevel",
    "index_levels",
    "MarketOverview",
    "market_overview",
    "Macd",
    "Bollinger",
    "SymbolAnalytics",
    "symbol_analytics",
]
