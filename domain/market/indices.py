"""Equal-weighted market indices: what each is made of, its value at any prices, and its level now."""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .quote import Quote

__all__ = ["EqualWeightIndex", "IndexLevel", "index_levels"]


@dataclass(frozen=True, slots=True)
class EqualWeightIndex:
    """One index: value = base_value * mean(price_i / base_price_i) over its constituents.

    `weights` pairs each constituent with 1 / its base price, the price at the start of the generated history.
    """

    symbol: str
    name: str
    base_value: float
    weights: tuple[tuple[str, float], ...]

    def value(self, prices: Mapping[str, float]) -> float:
        """The index value at `prices` (in cents, by symbol)."""
        ratio = math.fsum(prices[symbol] * w for symbol, w in self.weights) / len(self.weights)
        return self.base_value * ratio


@dataclass(frozen=True, slots=True)
class IndexLevel:
    """One index's value now and at the previous day's close, in index points (unrounded)."""

    symbol: str
    name: str
    value: float
    previous_close: float

    @property
    def change(self) -> float:
        return self.value - self.previous_close


def index_levels(quotes: Mapping[str, Quote], indices: Iterable[EqualWeightIndex]) -> list[IndexLevel]:
    """Every index's level at the latest quotes, its change measured against the previous day's close."""
    prices = {symbol: q.price for symbol, q in quotes.items()}
    closes = {symbol: q.previous_close for symbol, q in quotes.items()}
    return [IndexLevel(index.symbol, index.name, index.value(prices), index.value(closes)) for index in indices]
