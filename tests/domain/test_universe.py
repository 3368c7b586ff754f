"""The default universe and indices are big, varied and consistent enough for a classroom market."""

from collections import Counter

from domain.universe import DEFAULT_INDICES, DEFAULT_UNIVERSE

MARKET_VOLATILITY, SECTOR_SHARE = 0.15, 0.25  # MarketSimulator's defaults


def test_the_universe_has_at_least_30_unique_symbols_in_6_sectors_of_4_or_more():
    symbols = [s.symbol for s in DEFAULT_UNIVERSE]
    assert len(symbols) >= 30
    assert len(set(symbols)) == len(symbols)
    assert all(s.isalpha() and s.isupper() and 3 <= len(s) <= 5 for s in symbols)
    per_sector = Counter(s.sector for s in DEFAULT_UNIVERSE)
    assert len(per_sector) >= 6
    assert min(per_sector.values()) >= 4


def test_specs_have_plausible_prices_volatilities_and_betas():
    for spec in DEFAULT_UNIVERSE:
        assert isinstance(spec.price_cents, int) and spec.price_cents >= 3_000
        assert 0.1 <= spec.volatility <= 0.8
        assert 0.3 <= spec.beta <= 2.0
        assert spec.avg_volume > 0


def test_market_and_sector_factors_leave_room_for_idiosyncratic_risk():
    for spec in DEFAULT_UNIVERSE:
        systematic = (spec.beta * MARKET_VOLATILITY) ** 2 + SECTOR_SHARE * spec.volatility**2
        assert systematic < 0.9 * spec.volatility**2, spec.symbol


def test_there_are_three_indices_over_known_symbols_with_the_composite_holding_everything():
    symbols = {s.symbol for s in DEFAULT_UNIVERSE}
    assert len(DEFAULT_INDICES) == 3
    assert len({i.symbol for i in DEFAULT_INDICES} | symbols) == len(symbols) + 3
    for index in DEFAULT_INDICES:
        assert index.constituents and set(index.constituents) <= symbols
        assert index.base_value > 0
    assert set(DEFAULT_INDICES[0].constituents) == symbols
