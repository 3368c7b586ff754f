"""Orders: the engine that checks, books, matches and fills them, its pre-trade checks, protective levels and results.

`engine` (OrderEngine) changes the `book` (OrderBook); `checks` holds the one list of pre-trade rules submit and
modify both run; `matching` decides how much fills against a quote; `levels` the stop losses and take profits;
`result` what one engine call changed.
"""

from .book import OrderBook
from .checks import Check, CheckContext, OrderRules, Rejection, judged_price
from .engine import OrderEngine
from .levels import KEEP, LevelTrigger
from .result import TradeResult

__all__ = [
    "OrderEngine",
    "OrderBook",
    "OrderRules",
    "TradeResult",
    "LevelTrigger",
    "KEEP",
    "Check",
    "CheckContext",
    "Rejection",
    "judged_price",
]
