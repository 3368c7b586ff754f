"""Portfolio and position valuation against figures worked out by hand."""

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.market import Quote
from domain.trading import PortfolioLedger, Position
from domain.valuation import (
    UNKNOWN_SECTOR,
    PortfolioView,
    PositionView,
    diversification_score,
    portfolio_summary,
    portfolio_view,
    position_values_cents,
    position_view,
    sector_allocation,
    value_cents,
)

SECTORS = {"AAA": "Technology", "BBB": "Energy", "CCC": "Technology"}


def quote(symbol: str, price: int, previous_close: int, sector: str = "Technology") -> Quote:
    return Quote(
        symbol=symbol, name=symbol, sector=sector, price=price, bid=price - 1, ask=price + 1, bid_size=100,
        ask_size=100, open=previous_close, high=price, low=previous_close, previous_close=previous_close,
        volume=1000, time=0, market_time=0, version=1,
    )


def two_position_ledger() -> PortfolioLedger:
    """Start 100000.00; AAA 100 @ 50.00, BBB 3 for 100.00 (25.00 realized earlier), CCC closed at -10.00, fees 5.00.

    cash = 10_000_000 - (500_000 + 10_000) + (2_500 - 1_000) - 500 = 9_491_000 cents (the ledger identity).
    """
    return PortfolioLedger(
        portfolio_id="P1", owner_id="U1", name="Main", starting_cash_cents=10_000_000, cash_cents=9_491_000,
        reserved_cash_cents=100_000, commissions_cents=500,
        positions={
            "AAA": Position("AAA", quantity=100, cost_basis_cents=500_000, stop_loss_cents=4_500),
            "BBB": Position("BBB", quantity=3, cost_basis_cents=10_000, realized_pnl_cents=2_500,
                            take_profit_cents=4_000),
            "CCC": Position("CCC", quantity=0, realized_pnl_cents=-1_000),
        },
    )


QUOTES = {
    "AAA": quote("AAA", 5_500, 5_400),
    "BBB": quote("BBB", 3_000, 3_100, "Energy"),
    "CCC": quote("CCC", 1_000, 1_000),
}


def test_two_position_portfolio_every_field():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS)
    assert replace(view, positions=None) == PortfolioView(
        portfolio_id="P1",
        name="Main",
        owner_id="U1",
        cash_cents=9_491_000,
        reserved_cash_cents=100_000,
        buying_power_cents=9_391_000,        # 9_491_000 - 100_000
        positions_value_cents=559_000,       # 100 * 5_500 + 3 * 3_000 = 550_000 + 9_000
        total_value_cents=10_050_000,        # 9_491_000 + 559_000
        total_cost_cents=510_000,            # 500_000 + 10_000
        unrealized_pnl_cents=49_000,         # 559_000 - 510_000
        realized_pnl_cents=1_500,            # 2_500 (BBB) - 1_000 (closed CCC)
        total_return_cents=50_000,           # 10_050_000 - 10_000_000 (= 49_000 + 1_500 - 500 fees)
        total_return_percent=0.5,            # 50_000 / 10_000_000 * 100
        day_change_cents=9_700,              # 100 * (5_500 - 5_400) + 3 * (3_000 - 3_100) = 10_000 - 300
        # w = 5500/5590, 90/5590: 1 - HHI = 2 * 5500 * 90 / 5590^2 = 990000/31248100 = 0.0316818
        # 100 * (0.7 * 0.0316818 / 0.9 + 0.3 * 0.0316818 / 0.875) = 2.46414 + 1.08623 = 3.55
        diversification_score=3.55,
    )
    assert view.positions == (
        PositionView(
            symbol="AAA", quantity=100, average_cost_cents=Decimal(5_000), cost_basis_cents=500_000,
            market_price_cents=5_500, market_value_cents=550_000, unrealized_pnl_cents=50_000,
            unrealized_pnl_percent=10.0,     # 500 / 5000 * 100
            realized_pnl_cents=0,
            weight=0.0547,                   # 5500 / 100500 = 0.054726
            day_change_cents=10_000,         # 100 * (55.00 - 54.00)
            stop_loss_cents=4_500, take_profit_cents=None, sector="Technology",
        ),
        PositionView(
            symbol="BBB", quantity=3, average_cost_cents=Decimal(10_000) / 3, cost_basis_cents=10_000,
            market_price_cents=3_000, market_value_cents=9_000, unrealized_pnl_cents=-1_000,
            unrealized_pnl_percent=-10.0,    # -10 / 100 * 100
            realized_pnl_cents=2_500,
            weight=0.0009,                   # 90 / 100500 = 0.000896
            day_change_cents=-300,           # 3 * (30.00 - 31.00)
            stop_loss_cents=None, take_profit_cents=4_000, sector="Energy",
        ),
    )


def test_closed_positions_are_not_listed_but_their_realized_pnl_counts():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS)
    assert [p.symbol for p in view.positions] == ["AAA", "BBB"]
    assert view.realized_pnl_cents == 1_500


def test_position_weights_plus_cash_share_make_one():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS)
    cash_share = view.cash_cents / view.total_value_cents  # 94910 / 100500 = 0.944378
    assert sum(p.weight for p in view.positions) + cash_share == pytest.approx(1.0, abs=1e-4)


def test_average_cost_of_three_shares_bought_for_100_is_cost_basis_over_quantity():
    position = Position("BBB", quantity=3, cost_basis_cents=10_000)
    view = position_view(position, quote("BBB", 3_334, 3_334), 1_000_000, "Energy")
    assert view.average_cost_cents == Decimal(10_000) / 3  # 3_333.33... cents, left for the edge to round
    assert view.market_value_cents == 10_002        # 3 * 3_334
    assert view.unrealized_pnl_cents == 2
    assert view.unrealized_pnl_percent == 0.02      # 0.02 / 100.00 * 100
    assert view.weight == 0.01                      # 10002 / 1000000 = 0.010002


def test_money_stays_exact_and_percentages_round_half_even():
    # 2 shares for 100.05: average 50.025 exactly, left for the edge to round
    assert position_view(Position("AAA", quantity=2, cost_basis_cents=10_005), None, 0, "T").average_cost_cents == (
        Decimal("5002.5"))
    # 4 shares for 800.00 at 200.25: 801.00 - 800.00 = 1.00 is 0.125 % -> 0.12
    view = position_view(Position("AAA", quantity=4, cost_basis_cents=80_000), quote("AAA", 20_025, 20_000), 0, "T")
    assert view.unrealized_pnl_cents == 100
    assert view.unrealized_pnl_percent == 0.12
    assert view.day_change_cents == 100             # 4 * 0.25
    # 7 shares for 100.05 at 14.34: value 7 * 14.34 = 100.38, P&L 0.33 exactly, not 7 * (14.34 - 14.29) = 0.35
    # from a rounded average; 0.33 / 100.05 * 100 = 0.32984 -> 0.33
    view = position_view(Position("AAA", quantity=7, cost_basis_cents=10_005), quote("AAA", 1_434, 1_430), 0, "T")
    assert view.average_cost_cents == Decimal(10_005) / 7
    assert view.market_value_cents == 10_038
    assert view.unrealized_pnl_cents == 33
    assert view.unrealized_pnl_percent == 0.33


def test_position_without_a_quote_is_carried_at_cost():
    position = Position("GONE", quantity=4, cost_basis_cents=1_000)
    view = position_view(position, None, 10_000, UNKNOWN_SECTOR)
    assert view.market_price_cents == 250
    assert view.market_value_cents == 1_000
    assert view.unrealized_pnl_cents == 0
    assert view.day_change_cents == 0
    assert view.weight == 0.1               # 1000 / 10000


def test_flat_position_has_no_average_cost_and_zero_percent():
    view = position_view(Position("AAA", realized_pnl_cents=700), quote("AAA", 100, 100), 0, "Technology")
    assert view.average_cost_cents is None
    assert view.unrealized_pnl_percent == 0.0
    assert view.weight == 0.0
    assert view.realized_pnl_cents == 700


def test_summary_counts_open_positions_and_lists_none():
    summary = portfolio_summary(two_position_ledger(), QUOTES, SECTORS)
    assert summary.portfolio.positions is None
    assert summary.position_count == 2
    assert summary.portfolio.total_value_cents == 10_050_000


def test_value_view_without_positions_has_none():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS, include_positions=False)
    assert view.positions is None
    assert view.positions_value_cents == 559_000


def test_value_cents_is_cash_plus_positions():
    assert value_cents(two_position_ledger(), QUOTES) == 10_050_000  # 9_491_000 + 550_000 + 9_000
    assert position_values_cents(two_position_ledger(), QUOTES) == {"AAA": 550_000, "BBB": 9_000}


def test_all_cash_portfolio():
    ledger = PortfolioLedger("P2", "U2", "Cash", starting_cash_cents=10_000_000, cash_cents=10_000_000)
    view = portfolio_view(ledger, {}, {})
    assert view.positions == ()
    assert view.total_value_cents == 10_000_000
    assert view.total_return_cents == 0
    assert view.total_return_percent == 0.0
    assert view.diversification_score == 0.0


def test_sector_from_the_quote_when_the_mapping_lacks_it():
    ledger = two_position_ledger()
    view = portfolio_view(ledger, QUOTES, {})
    assert [p.sector for p in view.positions] == ["Technology", "Energy"]


def test_diversification_is_zero_without_positions_or_with_one():
    assert diversification_score({}, {}) == 0.0
    assert diversification_score({"AAA": 0}, SECTORS) == 0.0
    assert diversification_score({"AAA": 550_000}, SECTORS) == 0.0


def test_diversification_of_two_equal_positions_in_one_sector():
    # P = (1 - 0.5) / (1 - 1/10) = 5/9, S = 0: 100 * 0.7 * 5/9 = 38.888...
    assert diversification_score({"AAA": 1, "CCC": 1}, SECTORS) == 38.89


def test_diversification_of_two_equal_positions_in_two_sectors():
    # 38.888... + 100 * 0.3 * (1 - 0.5) / (1 - 1/8) = 38.888... + 17.142857... = 56.03
    assert diversification_score({"AAA": 5_000, "BBB": 5_000}, SECTORS) == 56.03


def test_diversification_uses_value_shares_and_sizes_of_shorts():
    # 3:1 in two sectors: 1 - HHI = 1 - (9 + 1) / 16 = 0.375; 100 * (0.7 * 0.375 / 0.9 + 0.3 * 0.375 / 0.875)
    # = 29.1667 + 12.8571 = 42.02
    assert diversification_score({"AAA": 0.75, "BBB": 0.25}, SECTORS) == 42.02
    assert diversification_score({"AAA": 300, "BBB": -100}, SECTORS) == 42.02


def test_diversification_of_ten_equal_positions_over_eight_sectors_is_near_100():
    symbols = [f"S{i}" for i in range(10)]
    sectors = {s: f"sector{i % 8}" for i, s in enumerate(symbols)}
    # P = 0.9 / 0.9 = 1; sectors 0 and 1 hold 0.2, six hold 0.1: HHI = 2 * 0.04 + 6 * 0.01 = 0.14
    # S = 0.86 / 0.875 = 0.982857; 100 * (0.7 + 0.3 * 0.982857) = 99.49
    assert diversification_score({s: 1 for s in symbols}, sectors) == 99.49


def test_diversification_caps_at_100():
    symbols = [f"S{i}" for i in range(24)]
    sectors = {s: f"sector{i % 8}" for i, s in enumerate(symbols)}
    assert diversification_score({s: 7 for s in symbols}, sectors) == 100.0


def test_sector_allocation_of_positions_sums_to_one():
    # Technology 550000 + 41000 = 591000, Energy 9000, of 600000
    values = {"AAA": 550_000, "BBB": 9_000, "CCC": 41_000}
    assert sector_allocation(values, SECTORS) == {"Energy": 0.015, "Technology": 0.985}


def test_sector_allocation_of_total_value_leaves_the_rest_to_cash():
    values = {"AAA": 550_000, "BBB": 9_000, "CCC": 41_000}
    assert sector_allocation(values, SECTORS, total=1_000_000) == {"Energy": 0.009, "Technology": 0.591}
    assert sector_allocation({"ZZZ": 10}, {}, total=40) == {UNKNOWN_SECTOR: 0.25}
    assert sector_allocation({}, SECTORS) == {}
