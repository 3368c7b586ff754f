"""The market overview: every index's level, the top movers and the market's breadth, from the latest quotes."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .indices import EqualWeightIndex, IndexLevel, index_levels
from .quote import Quote

__all__ = ["MarketOverview", "market_overview", "TOP_MOVERS"]

TOP_MOVERS = 5


@dataclass(frozen=True, slots=True)
class MarketOverview:
    """The market at one moment: index levels, the biggest movers by percent and by volume, and breadth counts."""

    indices: tuple[IndexLevel, ...]
    top_gainers: tuple[Quote, ...]  # biggest percent rise first
    top_losers: tuple[Quote, ...]  # biggest percent fall first
    most_active: tuple[Quote, ...]  # highest volume first
    advancers: int
    decliners: int
    unchanged: int


def market_overview(quotes: Mapping[str, Quote], indices: Iterable[EqualWeightIndex]) -> MarketOverview:
    """The overview at `quotes`: the 5 top gainers, losers and most active, ties broken by symbol."""
    rows = [(q, q.change, q.change / q.previous_close) for q in quotes.values()]
    gainers = sorted((row for row in rows if row[1] > 0), key=lambda row: (-row[2], row[0].symbol))
    losers = sorted((row for row in rows if row[1] < 0), key=lambda row: (row[2], row[0].symbol))
    active = sorted(rows, key=lambda row: (-row[0].volume, row[0].symbol))
    return MarketOverview(
        indices=tuple(index_levels(quotes, indices)),
        top_gainers=tuple(row[0] for row in gainers[:TOP_MOVERS]),
        top_losers=tuple(row[0] for row in losers[:TOP_MOVERS]),
        most_active=tuple(row[0] for row in active[:TOP_MOVERS]),
        advancers=sum(1 for row in rows if row[1] > 0),
        decliners=sum(1 for row in rows if row[1] < 0),
        unchanged=sum(1 for row in rows if row[1] == 0),
    )
