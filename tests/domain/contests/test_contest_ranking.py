"""A contest's ranking: return first, then Sharpe and drawdown; shared ranks for ties; the analytics' own figures."""

import hypothesis.strategies as st
import pytest
from hypothesis import given

from domain.analytics import max_drawdown, sharpe_ratio, simple_returns
from domain.contests import ContestEntry, rank_contest
from domain.valuation import diversification_score

CASH = 1_000_000
SECTORS = {"ACME": "Tech", "SOFT": "Tech", "OIL": "Energy", "BANK": "Finance"}


def entry(pid: str, values, name: str | None = None, holdings=None) -> ContestEntry:
    return ContestEntry(pid, name or pid, CASH, values, holdings or {})


def test_the_best_total_return_ranks_first_with_the_analytics_figures():
    values = [CASH, 1_050_000, 1_020_000, 1_100_000]
    [first, second, third] = rank_contest([
        entry("P1", [CASH, 990_000], "Bob"),
        entry("P2", values, "Ada", {"ACME": 500_000, "OIL": 600_000}),
        entry("P3", [], "Cy"),
    ], SECTORS, periods_per_year=252)
    assert [(s.rank, s.name) for s in (first, second, third)] == [(1, "Ada"), (2, "Cy"), (3, "Bob")]
    assert first.final_value_cents == 1_100_000 and first.total_return == pytest.approx(0.1)
    assert first.sharpe_ratio == sharpe_ratio(simple_returns(values), 252)
    assert first.max_drawdown == max_drawdown(values)
    assert first.diversification_score == diversification_score({"ACME": 500_000, "OIL": 600_000}, SECTORS)
    assert (second.final_value_cents, second.total_return, second.sharpe_ratio, second.max_drawdown) == (
        CASH, 0.0, None, None)  # no samples: still at its starting cash
    assert third.total_return == pytest.approx(-0.01)


def test_an_equal_return_is_decided_by_sharpe_then_by_the_smaller_drawdown():
    steady = [CASH, 1_010_000, 1_020_000, 1_030_000, 1_040_000]
    bumpy = [CASH, 1_060_000, 990_000, 1_070_000, 1_040_000]
    ranked = rank_contest([entry("P1", bumpy), entry("P2", steady)], SECTORS, periods_per_year=252)
    assert [s.portfolio_id for s in ranked] == ["P2", "P1"]
    assert ranked[0].sharpe_ratio > ranked[1].sharpe_ratio


def test_entries_equal_on_every_figure_share_a_rank_and_are_listed_by_name():
    same = [CASH, 1_010_000]
    ranked = rank_contest([entry("P1", same, "zed"), entry("P2", [CASH, 1_200_000], "Top"), entry("P3", same, "Amy"),
                           entry("P4", [CASH, 900_000], "Low")], SECTORS, periods_per_year=252)
    assert [(s.rank, s.name) for s in ranked] == [(1, "Top"), (2, "Amy"), (2, "zed"), (4, "Low")]


def test_returns_are_compared_exactly_in_cents_where_floats_would_call_a_tie():
    big = 3 * 10**17
    ranked = rank_contest([ContestEntry("P1", "a", 3, [4], {}), ContestEntry("P2", "b", big, [big * 4 // 3 + 1], {})],
                          SECTORS, periods_per_year=1)
    assert ranked[0].total_return == ranked[1].total_return  # as floats
    assert [(s.rank, s.portfolio_id) for s in ranked] == [(1, "P2"), (2, "P1")]


def test_cash_only_or_one_holding_scores_no_diversification_and_spreading_scores_more():
    ranked = {s.portfolio_id: s.diversification_score for s in rank_contest([
        entry("cash", [CASH]), entry("one", [CASH], holdings={"ACME": 900_000}),
        entry("two sectors", [CASH], holdings={"ACME": 400_000, "OIL": 400_000}),
        entry("one sector", [CASH], holdings={"ACME": 400_000, "SOFT": 400_000}),
    ], SECTORS, periods_per_year=252)}
    assert ranked["cash"] == ranked["one"] == 0.0
    assert ranked["two sectors"] > ranked["one sector"] > 0


def test_a_portfolio_without_starting_cash_or_a_nonsense_period_is_an_error():
    with pytest.raises(ValueError):
        rank_contest([ContestEntry("P1", "a", 0, [], {})], SECTORS, periods_per_year=252)
    with pytest.raises(ValueError):
        rank_contest([], SECTORS, periods_per_year=0)


@given(finals=st.lists(st.integers(1, 3 * CASH), min_size=1, max_size=12))
def test_ranks_run_from_one_and_never_put_a_lower_return_above_a_higher_one(finals):
    ranked = rank_contest([entry(f"P{n}", [CASH, value]) for n, value in enumerate(finals)], SECTORS,
                          periods_per_year=252)
    assert len(ranked) == len(finals) and ranked[0].rank == 1
    for above, below in zip(ranked, ranked[1:], strict=False):
        assert above.final_value_cents >= below.final_value_cents
        tie = above.final_value_cents == below.final_value_cents
        assert below.rank == above.rank if tie else below.rank > above.rank
    assert sorted(s.final_value_cents for s in ranked) == sorted(finals)


def test_too_few_returns_give_no_sharpe_ratio_when_a_minimum_is_asked():
    values = [100_00, 101_00, 100_50, 102_00]
    entry = ContestEntry("p1", "Ada", 100_00, values, {})
    assert rank_contest([entry], {}, periods_per_year=252)[0].sharpe_ratio is not None
    assert rank_contest([entry], {}, periods_per_year=252, min_sharpe_returns=4)[0].sharpe_ratio is None
    assert rank_contest([entry], {}, periods_per_year=252, min_sharpe_returns=3)[0].sharpe_ratio is not None
