"""Equal-weighted indices: their value at any prices, and their level at the latest quotes."""

import random

import pytest

from domain.market import EqualWeightIndex, MarketSimulator, index_levels
from domain.universe import IndexSpec, SymbolSpec

START = 1_764_126_000_000


def test_an_index_value_is_its_base_times_the_mean_price_ratio():
    index = EqualWeightIndex("IDX", "Index", 1000.0, (("A", 1 / 200), ("B", 1 / 50)))
    assert index.value({"A": 300, "B": 50, "C": 7}) == pytest.approx(1250.0)  # (1.5 + 1.0) / 2


def test_the_simulator_lists_its_indices_in_the_given_order():
    sim = MarketSimulator(rng=random.Random(1), start_market_ms=START, history_days=30, minute_history_days=1)
    assert [index.symbol for index in sim.indices()] == sim.index_symbols() == ["SQX", "SQTECH", "SQVAL"]
    assert all(isinstance(index, EqualWeightIndex) for index in sim.indices())


def test_index_levels_are_equal_weighted_price_ratios():
    sim = MarketSimulator(rng=random.Random(1), start_market_ms=START, history_days=30, minute_history_days=1)
    before = {level.symbol: level.value for level in index_levels(sim.quotes(), sim.indices())}
    assert list(before) == ["SQX", "SQTECH", "SQVAL"]
    sim.shock(10, sim.quotes().keys())
    for level in index_levels(sim.quotes(), sim.indices()):
        assert level.value == pytest.approx(before[level.symbol] * 1.1, rel=1e-3)
        assert level.previous_close == before[level.symbol]
        assert level.change / level.previous_close * 100 == pytest.approx(10.0, abs=0.02)
        assert level.change == pytest.approx(level.value - before[level.symbol], abs=0.02)


def test_an_equal_weighted_index_of_two_symbols_averages_their_price_ratios():
    universe = (SymbolSpec("AAA", "A", "X", 10_000, 0.2, 1.0), SymbolSpec("BBB", "B", "X", 5_000, 0.2, 1.0))
    sim = MarketSimulator(universe, (IndexSpec("IDX", "Index", ("AAA", "BBB"), 500.0),), rng=random.Random(1),
                          start_market_ms=START, history_days=0)  # fmt: skip
    (level,) = index_levels(sim.quotes(), sim.indices())
    assert level.value == 500.0  # with no history the base is now
    sim.shock(20, ["AAA"])  # ratios 1.2 and 1.0: 500 * 1.1
    (level,) = index_levels(sim.quotes(), sim.indices())
    assert (level.symbol, level.name) == ("IDX", "Index")
    assert level.value == pytest.approx(550.0, abs=1e-9) and level.previous_close == 500.0
    assert level.change == pytest.approx(50.0, abs=1e-9)
