"""Portfolio and position valuation against figures worked out by hand."""

import pytest

from domain.market import Quote
from domain.trading import PortfolioLedger, Position
from domain.valuation import (
    UNKNOWN_SECTOR,
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
    positions = view.pop("positions")
    assert view == {
        "portfolioId": "P1",
        "name": "Main",
        "ownerId": "U1",
        "cash": 94_910.00,
        "reservedCash": 1_000.00,
        "buyingPower": 93_910.00,            # 94910 - 1000
        "positionsValue": 5_590.00,          # 100 * 55.00 + 3 * 30.00 = 5500 + 90
        "totalValue": 100_500.00,            # 94910 + 5590
        "totalCost": 5_100.00,               # 5000 + 100
        "unrealizedPnL": 490.00,             # 5590 - 5100
        "realizedPnL": 15.00,                # 25.00 (BBB) - 10.00 (closed CCC)
        "totalReturn": 500.00,               # 100500 - 100000 (= 490 + 15 - 5 fees)
        "totalReturnPercent": 0.5,           # 500 / 100000 * 100
        "dayChange": 97.00,                  # 100 * (55 - 54) + 3 * (30 - 31) = 100 - 3
        # w = 5500/5590, 90/5590: 1 - HHI = 2 * 5500 * 90 / 5590^2 = 990000/31248100 = 0.0316818
        # 100 * (0.7 * 0.0316818 / 0.9 + 0.3 * 0.0316818 / 0.875) = 2.46414 + 1.08623 = 3.55
        "diversificationScore": 3.55,
    }
    assert positions == [
        {
            "symbol": "AAA", "quantity": 100, "averageCost": 50.00, "costBasis": 5_000.00, "marketPrice": 55.00,
            "marketValue": 5_500.00, "unrealizedPnL": 500.00,
            "unrealizedPnLPercent": 10.0,    # 500 / 5000 * 100
            "realizedPnL": 0.0,
            "weight": 0.0547,                # 5500 / 100500 = 0.054726
            "dayChange": 100.00,             # 100 * (55.00 - 54.00)
            "stopLoss": 45.00, "takeProfit": None, "sector": "Technology",
        },
        {
            "symbol": "BBB", "quantity": 3, "averageCost": 33.33, "costBasis": 100.00, "marketPrice": 30.00,
            "marketValue": 90.00, "unrealizedPnL": -10.00,
            "unrealizedPnLPercent": -10.0,   # -10 / 100 * 100
            "realizedPnL": 25.00,
            "weight": 0.0009,                # 90 / 100500 = 0.000896
            "dayChange": -3.00,              # 3 * (30.00 - 31.00)
            "stopLoss": None, "takeProfit": 40.00, "sector": "Energy",
        },
    ]


def test_closed_positions_are_not_listed_but_their_realized_pnl_counts():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS)
    assert [p["symbol"] for p in view["positions"]] == ["AAA", "BBB"]
    assert view["realizedPnL"] == 15.00


def test_position_weights_plus_cash_share_make_one():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS)
    cash_share = view["cash"] / view["totalValue"]  # 94910 / 100500 = 0.944378
    assert sum(p["weight"] for p in view["positions"]) + cash_share == pytest.approx(1.0, abs=1e-4)


def test_average_cost_of_three_shares_bought_for_100_is_33_33():
    position = Position("BBB", quantity=3, cost_basis_cents=10_000)
    view = position_view(position, quote("BBB", 3_334, 3_334), 1_000_000, "Energy")
    assert view["averageCost"] == 33.33     # 100.00 / 3 = 33.333...
    assert view["marketValue"] == 100.02    # 3 * 33.34
    assert view["unrealizedPnL"] == 0.02
    assert view["unrealizedPnLPercent"] == 0.02  # 0.02 / 100.00 * 100
    assert view["weight"] == 0.01           # 10002 / 1000000 = 0.010002


def test_money_and_percentages_round_half_even_only_at_the_edge():
    # 2 shares for 100.05: average 50.025 exactly -> 50.02 (half-even), not 50.03
    assert position_view(Position("AAA", quantity=2, cost_basis_cents=10_005), None, 0, "T")["averageCost"] == 50.02
    # 4 shares for 800.00 at 200.25: 801.00 - 800.00 = 1.00 is 0.125 % -> 0.12
    view = position_view(Position("AAA", quantity=4, cost_basis_cents=80_000), quote("AAA", 20_025, 20_000), 0, "T")
    assert view["unrealizedPnL"] == 1.00
    assert view["unrealizedPnLPercent"] == 0.12
    assert view["dayChange"] == 1.00        # 4 * 0.25
    # 7 shares for 100.05 at 14.34: average 14.292857 -> 14.29; value 7 * 14.34 = 100.38, P&L 0.33 exactly,
    # not 7 * (14.34 - 14.29) = 0.35 from the rounded average; 0.33 / 100.05 * 100 = 0.32984 -> 0.33
    view = position_view(Position("AAA", quantity=7, cost_basis_cents=10_005), quote("AAA", 1_434, 1_430), 0, "T")
    assert view["averageCost"] == 14.29
    assert view["marketValue"] == 100.38
    assert view["unrealizedPnL"] == 0.33
    assert view["unrealizedPnLPercent"] == 0.33


def test_position_without_a_quote_is_carried_at_cost():
    position = Position("GONE", quantity=4, cost_basis_cents=1_000)
    view = position_view(position, None, 10_000, UNKNOWN_SECTOR)
    assert view["marketPrice"] == 2.50
    assert view["marketValue"] == 10.00
    assert view["unrealizedPnL"] == 0.0
    assert view["dayChange"] == 0.0
    assert view["weight"] == 0.1            # 1000 / 10000


def test_flat_position_has_null_average_cost_and_zero_percent():
    view = position_view(Position("AAA", realized_pnl_cents=700), quote("AAA", 100, 100), 0, "Technology")
    assert view["averageCost"] is None
    assert view["unrealizedPnLPercent"] == 0.0
    assert view["weight"] == 0.0
    assert view["realizedPnL"] == 7.00


def test_summary_has_position_count_and_no_positions():
    summary = portfolio_summary(two_position_ledger(), QUOTES, SECTORS)
    assert "positions" not in summary
    assert summary["positionCount"] == 2
    assert summary["totalValue"] == 100_500.00


def test_value_view_without_positions_leaves_the_key_out():
    view = portfolio_view(two_position_ledger(), QUOTES, SECTORS, include_positions=False)
    assert "positions" not in view
    assert view["positionsValue"] == 5_590.00


def test_value_cents_is_cash_plus_positions():
    assert value_cents(two_position_ledger(), QUOTES) == 10_050_000  # 9_491_000 + 550_000 + 9_000
    assert position_values_cents(two_position_ledger(), QUOTES) == {"AAA": 550_000, "BBB": 9_000}


def test_all_cash_portfolio():
    ledger = PortfolioLedger("P2", "U2", "Cash", starting_cash_cents=10_000_000, cash_cents=10_000_000)
    view = portfolio_view(ledger, {}, {})
    assert view["positions"] == []
    assert view["totalValue"] == 100_000.00
    assert view["totalReturn"] == 0.0
    assert view["totalReturnPercent"] == 0.0
    assert view["diversificationScore"] == 0.0


def test_sector_from_the_quote_when_the_mapping_lacks_it():
    ledger = two_position_ledger()
    view = portfolio_view(ledger, QUOTES, {})
    assert [p["sector"] for p in view["positions"]] == ["Technology", "Energy"]


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
