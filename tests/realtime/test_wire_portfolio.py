"""The portfolio family's protocol objects: exact fields, values, number formatting and key order."""

import json
import math
from dataclasses import replace
from decimal import Decimal

from domain.analytics import PortfolioAnalytics, Returns
from domain.valuation import PortfolioSummary, PortfolioView, PositionView
from realtime.wire import portfolio as wire

AAA = PositionView(
    symbol="AAA", quantity=100, average_cost_cents=Decimal(5_000), cost_basis_cents=500_000,
    market_price_cents=5_500, market_value_cents=550_000, unrealized_pnl_cents=50_000,
    unrealized_pnl_percent=10.0, realized_pnl_cents=0, weight=0.0547, day_change_cents=10_000,
    stop_loss_cents=4_500, take_profit_cents=None, sector="Technology",
)
BBB = PositionView(
    symbol="BBB", quantity=3, average_cost_cents=Decimal(10_000) / 3, cost_basis_cents=10_000,
    market_price_cents=3_000, market_value_cents=9_000, unrealized_pnl_cents=-1_000,
    unrealized_pnl_percent=-10.0, realized_pnl_cents=2_500, weight=0.0009, day_change_cents=-300,
    stop_loss_cents=None, take_profit_cents=4_000, sector="Energy",
)
# tests/domain/test_valuation.py's two-position portfolio: AAA 100 @ 50.00 at 55.00, BBB 3 for 100.00 at 30.00
VIEW = PortfolioView(
    portfolio_id="P1", name="Main", owner_id="U1", cash_cents=9_491_000, reserved_cash_cents=100_000,
    buying_power_cents=9_391_000, positions_value_cents=559_000, total_value_cents=10_050_000,
    total_cost_cents=510_000, unrealized_pnl_cents=49_000, realized_pnl_cents=1_500, total_return_cents=50_000,
    total_return_percent=0.5, day_change_cents=9_700, diversification_score=3.55, positions=(AAA, BBB),
)

VALUES = {
    "portfolioId": "P1",
    "name": "Main",
    "ownerId": "U1",
    "cash": 94_910.00,
    "reservedCash": 1_000.00,
    "buyingPower": 93_910.00,
    "positionsValue": 5_590.00,
    "totalValue": 100_500.00,
    "totalCost": 5_100.00,
    "unrealizedPnL": 490.00,
    "realizedPnL": 15.00,
    "totalReturn": 500.00,
    "totalReturnPercent": 0.5,
    "dayChange": 97.00,
    "diversificationScore": 3.55,
}
POSITIONS = [
    {
        "symbol": "AAA", "quantity": 100, "averageCost": 50.00, "costBasis": 5_000.00, "marketPrice": 55.00,
        "marketValue": 5_500.00, "unrealizedPnL": 500.00, "unrealizedPnLPercent": 10.0, "realizedPnL": 0.0,
        "weight": 0.0547, "dayChange": 100.00, "stopLoss": 45.00, "takeProfit": None, "sector": "Technology",
    },
    {
        "symbol": "BBB", "quantity": 3, "averageCost": 33.33, "costBasis": 100.00, "marketPrice": 30.00,
        "marketValue": 90.00, "unrealizedPnL": -10.00, "unrealizedPnLPercent": -10.0, "realizedPnL": 25.00,
        "weight": 0.0009, "dayChange": -3.00, "stopLoss": None, "takeProfit": 40.00, "sector": "Energy",
    },
]


def assert_exact(data: dict, expected: dict) -> None:
    """Equal values and the same key order, so the serialized bytes are the same."""
    assert data == expected
    assert json.dumps(data) == json.dumps(expected)


def test_portfolio_every_field_in_protocol_order():
    assert_exact(wire.portfolio(VIEW), {**VALUES, "positions": POSITIONS})


def test_portfolio_without_positions_leaves_the_key_out():
    assert_exact(wire.portfolio(replace(VIEW, positions=None)), VALUES)


def test_portfolio_update_carries_the_values_without_positions():
    assert_exact(wire.portfolio_values(VIEW), VALUES)


def test_portfolio_list_entry_adds_position_count_last():
    summary = PortfolioSummary(portfolio=replace(VIEW, positions=None), position_count=2)
    assert_exact(wire.summary(summary), {**VALUES, "positionCount": 2})


def test_position_update_names_the_portfolio_and_lists_positions():
    assert_exact(wire.position_update("P1", VIEW.positions), {"portfolioId": "P1", "positions": POSITIONS})
    assert_exact(wire.position_update("P1", ()), {"portfolioId": "P1", "positions": []})


def test_position_money_rounds_half_even_to_cents():
    # 2 shares for 100.05: average 50.025 exactly -> 50.02 (half-even), not 50.03
    assert wire.position(replace(AAA, average_cost_cents=Decimal(10_005) / 2))["averageCost"] == 50.02
    # 7 shares for 100.05: average 14.292857 -> 14.29
    assert wire.position(replace(AAA, average_cost_cents=Decimal(10_005) / 7))["averageCost"] == 14.29
    assert wire.position(replace(AAA, unrealized_pnl_cents=33))["unrealizedPnL"] == 0.33


def test_position_carried_at_cost_is_priced_at_its_average_cost():
    gone = replace(AAA, quantity=4, average_cost_cents=Decimal(1_000) / 4, market_price_cents=Decimal(1_000) / 4,
                   market_value_cents=1_000, day_change_cents=0)
    data = wire.position(gone)
    assert (data["marketPrice"], data["marketValue"], data["dayChange"]) == (2.50, 10.00, 0.0)


def test_flat_position_has_null_average_cost():
    flat = replace(AAA, quantity=0, average_cost_cents=None, cost_basis_cents=0, realized_pnl_cents=700)
    data = wire.position(flat)
    assert data["averageCost"] is None
    assert data["realizedPnL"] == 7.00


# tests/domain/test_analytics.py's scripted portfolio, its figures as domain.analytics computes them
ANALYTICS = PortfolioAnalytics(
    portfolio_id="P1", total_cost_cents=40_000, unrealized_pnl_cents=14_000, realized_pnl_cents=3_000,
    diversification_score=38.74, sector_allocation={"Energy": 0.1026, "Technology": 0.359},
    returns=Returns(day=0.08333333333333333, total=0.17), volatility=0.3055050463303893,
    sharpe_ratio=0.87287156094397, max_drawdown=0.1, beta=1.999999999999998, win_rate=0.6666666666666666,
)


def test_analytics_every_field_in_protocol_order():
    assert_exact(wire.analytics(ANALYTICS), {
        "portfolioId": "P1",
        "totalCost": 400.00,
        "unrealizedPnL": 140.00,
        "realizedPnL": 30.00,
        "diversificationScore": 38.74,
        "sectorAllocation": {"Energy": 0.1026, "Technology": 0.359},
        "returns": {"day": 0.0833, "total": 0.17},
        "volatility": 0.3055,
        "sharpeRatio": 0.8729,
        "maxDrawdown": 0.1,
        "beta": 2.0,
        "winRate": 0.6667,
    })


def test_analytics_undefined_figures_are_null_never_nan():
    undefined = PortfolioAnalytics(
        portfolio_id="P9", total_cost_cents=0, unrealized_pnl_cents=0, realized_pnl_cents=0,
        diversification_score=0.0, sector_allocation={}, returns=Returns(day=None, total=math.nan),
        volatility=None, sharpe_ratio=math.inf, max_drawdown=None, beta=None, win_rate=None,
    )
    data = wire.analytics(undefined)
    json.dumps(data, allow_nan=False)
    assert data["returns"] == {"day": None, "total": None}
    assert [data[k] for k in ("volatility", "sharpeRatio", "maxDrawdown", "beta", "winRate")] == [None] * 5


def test_analytics_ratios_never_carry_a_negative_zero():
    data = wire.analytics(replace(ANALYTICS, returns=Returns(day=-0.00001, total=-0.0)))
    assert json.dumps(data["returns"]) == '{"day": 0.0, "total": 0.0}'
