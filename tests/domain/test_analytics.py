"""Portfolio analytics against figures worked out by hand on small histories and scripted fills."""

import math

import pytest

from domain.analytics import (
    Returns,
    aligned_returns,
    annualized_volatility,
    beta,
    max_drawdown,
    portfolio_analytics,
    sharpe_ratio,
    simple_returns,
    win_rate,
)
from domain.market import Quote
from domain.trading import Fill, PortfolioLedger, Position, Side


def quote(symbol: str, price: int, previous_close: int, sector: str) -> Quote:
    return Quote(
        symbol=symbol, name=symbol, sector=sector, price=price, bid=price - 1, ask=price + 1, bid_size=100,
        ask_size=100, open=previous_close, high=price, low=previous_close, previous_close=previous_close,
        volume=1000, time=0, market_time=0, version=1,
    )


def fill(n: int, symbol: str, side: Side, quantity: int, price_cents: int, at_ms: int | None = None) -> Fill:
    at = n * 1000 if at_ms is None else at_ms
    return Fill(f"E{n}", f"O{n}", "P1", "U1", symbol, side, quantity, price_cents, 0, at + 5, at)


def test_simple_returns_of_consecutive_values():
    assert simple_returns([100, 110, 99]) == pytest.approx([0.1, -0.1])  # 110/100 - 1, 99/110 - 1
    assert simple_returns([0, 50, 100]) == pytest.approx([1.0])           # nothing from a zero value
    assert simple_returns([100]) == []
    assert simple_returns([]) == []


def test_max_drawdown_is_the_largest_peak_to_trough_fall():
    # 120 -> 90 is 0.25, 130 -> 65 is 0.5
    assert max_drawdown([100, 120, 90, 130, 65]) == pytest.approx(0.5)
    assert max_drawdown([100, 110, 120]) == 0.0
    assert max_drawdown([100]) == 0.0
    assert max_drawdown([]) is None


def test_volatility_and_sharpe_of_a_known_series():
    # returns 0.02, 0.04, 0.06: mean 0.04, sample var (0.0004 + 0 + 0.0004) / 2 = 0.0004, std 0.02
    returns = [0.02, 0.04, 0.06]
    assert annualized_volatility(returns, 100) == pytest.approx(0.2)   # 0.02 * sqrt(100)
    assert sharpe_ratio(returns, 100) == pytest.approx(20.0)           # 0.04 / 0.02 * sqrt(100)


def test_volatility_and_sharpe_need_two_returns_and_sharpe_a_moving_series():
    assert annualized_volatility([0.01], 252) is None
    assert sharpe_ratio([0.01], 252) is None
    assert annualized_volatility([0.0, 0.0, 0.0], 252) == 0.0
    assert sharpe_ratio([0.01, 0.01, 0.01], 252) is None


def test_beta_of_returns_exactly_twice_the_index_is_two():
    assert beta([0.2, -0.1, 0.1], [0.1, -0.05, 0.05]) == pytest.approx(2.0)


def test_beta_is_undefined_for_one_pair_or_a_flat_market():
    assert beta([0.2], [0.1]) is None
    assert beta([0.2, -0.1], [0.0, 0.0]) is None
    with pytest.raises(ValueError):
        beta([0.1, 0.2], [0.1])


def test_returns_align_each_sample_with_the_latest_index_value_before_it():
    values = [(0, 100), (1000, 120), (2000, 108)]
    # index sampled 100 ms earlier each time; the sample at 0 has no index value yet and is dropped
    index = [(100, 1000.0), (900, 1100.0), (1900, 1045.0), (2900, 2000.0)]
    assert aligned_returns(values, index) is None  # only 2 aligned samples
    values.append((3000, 96))
    ours, market = aligned_returns(values, index)
    assert ours == pytest.approx([-0.1, -1 / 9])   # 108/120 - 1, 96/108 - 1
    assert market == pytest.approx([-0.05, 2000 / 1045 - 1])


def test_win_rate_of_one_winning_and_one_losing_sell():
    fills = [
        fill(1, "AAA", Side.BUY, 10, 10_000),
        fill(2, "AAA", Side.SELL, 5, 11_000),   # 5 * (110 - 100) = +50: win
        fill(3, "AAA", Side.SELL, 5, 9_000),    # 5 * (90 - 100) = -50: loss
    ]
    assert win_rate(fills) == 0.5


def test_win_rate_replays_fills_in_time_order_against_the_average_cost():
    fills = [
        fill(4, "AAA", Side.SELL, 2, 10_200),   # avg still 101: +2 per share, win
        fill(1, "AAA", Side.BUY, 2, 10_000),
        fill(3, "AAA", Side.SELL, 1, 10_100),   # avg (2 * 100 + 103) / 3 = 101.00: zero, not a win
        fill(2, "AAA", Side.BUY, 1, 10_300),
    ]
    assert win_rate(fills) == 0.5


def test_win_rate_uses_the_cent_rounded_cost_the_ledger_books():
    fills = [
        fill(1, "AAA", Side.BUY, 2, 10_000),
        fill(2, "AAA", Side.BUY, 1, 10_002),    # basis 30002 for 3: average 100.00667
        fill(3, "AAA", Side.SELL, 1, 10_001),   # cost 30002 / 3 = 10000.67 -> 10001: realizes 0, not a win
        fill(4, "AAA", Side.SELL, 2, 10_001),   # the rest, 20001, goes whole: 20002 - 20001 = +1, a win
    ]
    assert win_rate(fills) == 0.5


def test_win_rate_counts_short_covers_and_crossings_on_the_closing_part():
    fills = [
        fill(1, "AAA", Side.SELL, 5, 10_000),   # opens a short of 5 at 100: not a round trip
        fill(2, "AAA", Side.BUY, 8, 9_000),     # covers 5 at 90 (win), opens a long of 3 at 90
        fill(3, "AAA", Side.SELL, 3, 8_000),    # closes the long at 80: loss
        fill(4, "BBB", Side.BUY, 1, 5_000),
        fill(5, "BBB", Side.SELL, 1, 5_100),    # win
    ]
    assert win_rate(fills) == pytest.approx(2 / 3)


def test_win_rate_is_undefined_without_a_closing_fill():
    assert win_rate([]) is None
    assert win_rate([fill(1, "AAA", Side.BUY, 10, 10_000)]) is None


def scripted_ledger() -> PortfolioLedger:
    """Start 1000.00; the fills of scripted_fills() leave cash 630.00, AAA 6 for 300.00, BBB 1 for 100.00.

    cash = 100000 - 50000 + 12000 + 9000 - 20000 + 12000 = 63000; realized 2000 - 1000 + 2000 = 3000.
    """
    return PortfolioLedger(
        portfolio_id="P1", owner_id="U1", name="Main", starting_cash_cents=100_000, cash_cents=63_000,
        positions={
            "AAA": Position("AAA", quantity=6, cost_basis_cents=30_000, realized_pnl_cents=1_000),
            "BBB": Position("BBB", quantity=1, cost_basis_cents=10_000, realized_pnl_cents=2_000),
        },
    )


def scripted_fills() -> list[Fill]:
    return [
        fill(1, "AAA", Side.BUY, 10, 5_000),
        fill(2, "AAA", Side.SELL, 2, 6_000),    # 2 * (60 - 50) = +20: win
        fill(3, "AAA", Side.SELL, 2, 4_500),    # 2 * (45 - 50) = -10: loss
        fill(4, "BBB", Side.BUY, 2, 10_000),
        fill(5, "BBB", Side.SELL, 1, 12_000),   # 120 - 100 = +20: win
    ]


QUOTES = {"AAA": quote("AAA", 7_000, 6_500, "Technology"), "BBB": quote("BBB", 12_000, 11_000, "Energy")}
SECTORS = {"AAA": "Technology", "BBB": "Energy"}
# portfolio returns +20 %, -10 %, +10 %: exactly twice the index's +10 %, -5 %, +5 %
VALUES = [(0, 100_000), (1000, 120_000), (2000, 108_000), (3000, 118_800)]
INDEX = [(0, 1000.0), (1000, 1100.0), (2000, 1045.0), (3000, 1097.25)]


def test_portfolio_analytics_every_field():
    data = portfolio_analytics(
        ledger=scripted_ledger(), quotes=QUOTES, sectors=SECTORS, value_history=VALUES, index_history=INDEX,
        fills=scripted_fills(), periods_per_year=4, day_start_ms=2000,
    )
    assert data.portfolio_id == "P1"
    assert data.total_cost_cents == 40_000           # 300 + 100
    assert data.unrealized_pnl_cents == 14_000       # 6 * 70 + 1 * 120 - 400 = 540 - 400
    assert data.realized_pnl_cents == 3_000          # 10 + 20
    # w = 420/540 = 7/9 and 2/9: 1 - HHI = 1 - 53/81 = 28/81
    # 100 * (0.7 * (28/81) / 0.9 + 0.3 * (28/81) / 0.875) = 26.886 + 11.852 = 38.74
    assert data.diversification_score == 38.74
    # of total value now, 630 + 420 + 120 = 1170: 420/1170 = 0.358974, 120/1170 = 0.102564
    assert data.sector_allocation == {"Energy": 0.1026, "Technology": 0.359}
    assert data.returns == Returns(
        day=pytest.approx(90 / 1080),                # (1170 - 1080) / 1080 (1080: first sample at 2000)
        total=pytest.approx(0.17),                   # (1170 - 1000) / 1000
    )
    # returns 0.2, -0.1, 0.1: mean 1/15, deviations 2/15, -1/6, 1/30;
    # sample var (0.017778 + 0.027778 + 0.001111) / 2 = 0.023333 = 7/300, std 0.152753
    assert data.volatility == pytest.approx(math.sqrt(7 / 300) * 2)          # std * sqrt(4) = 0.305505
    assert data.sharpe_ratio == pytest.approx(1 / 15 / math.sqrt(7 / 300) * 2)  # 0.872872
    assert data.max_drawdown == pytest.approx(0.1)   # 1200 -> 1080
    assert data.beta == pytest.approx(2.0)
    assert data.win_rate == pytest.approx(2 / 3)     # 2 wins of 3 sells


def test_analytics_of_an_empty_history_are_undefined_not_nan():
    ledger = PortfolioLedger("P9", "U9", "New", starting_cash_cents=100_000, cash_cents=100_000)
    data = portfolio_analytics(
        ledger=ledger, quotes={}, sectors={}, value_history=[], index_history=[], fills=[],
        periods_per_year=252, day_start_ms=0,
    )
    assert data.returns == Returns(day=None, total=0.0)
    assert data.sector_allocation == {}
    assert data.diversification_score == 0.0
    assert [data.volatility, data.sharpe_ratio, data.max_drawdown, data.beta, data.win_rate] == [None] * 5


def test_analytics_of_a_flat_history_are_zero_or_undefined_not_nan():
    ledger = PortfolioLedger("P9", "U9", "New", starting_cash_cents=100_000, cash_cents=100_000)
    flat = [(t, 100_000) for t in range(0, 5000, 1000)]
    index = [(t, 1000.0) for t in range(0, 5000, 1000)]
    data = portfolio_analytics(
        ledger=ledger, quotes={}, sectors={}, value_history=flat, index_history=index, fills=[],
        periods_per_year=252, day_start_ms=0,
    )
    assert data.returns == Returns(day=0.0, total=0.0)
    assert data.volatility == 0.0
    assert data.sharpe_ratio is None     # zero deviation
    assert data.max_drawdown == 0.0
    assert data.beta is None             # flat index


def test_analytics_survive_zero_values_and_zero_starting_cash():
    ledger = PortfolioLedger("P9", "U9", "Broke", starting_cash_cents=0, cash_cents=0)
    history = [(0, 0), (1000, 0), (2000, 0)]
    data = portfolio_analytics(
        ledger=ledger, quotes={}, sectors={}, value_history=history, index_history=[(0, 0.0), (500, 0.0)],
        fills=[], periods_per_year=252, day_start_ms=0,
    )
    assert data.returns == Returns(day=None, total=None)
    assert data.volatility is None and data.beta is None
    figures = [data.sharpe_ratio, data.max_drawdown, data.win_rate, data.diversification_score]
    assert all(not isinstance(v, float) or math.isfinite(v) for v in figures)


def test_analytics_reject_a_non_positive_sampling_rate():
    with pytest.raises(ValueError):
        portfolio_analytics(
            ledger=scripted_ledger(), quotes=QUOTES, sectors=SECTORS, value_history=VALUES, index_history=INDEX,
            fills=[], periods_per_year=0, day_start_ms=0,
        )
