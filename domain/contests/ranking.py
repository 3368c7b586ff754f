"""A contest's ranking: every portfolio's return, Sharpe ratio, max drawdown and diversification, best return first.

The figures come from domain.analytics (simple_returns, sharpe_ratio, max_drawdown) and domain.valuation
(diversification_score), so a contest shows what the portfolio panel shows. The diversification score is
valuation's: 0 to 100, 70 % for how evenly value is spread over positions and 30 % over sectors, each
(1 − Herfindahl index of the shares) scaled so that 10 equal positions (8 sectors) score full marks; cash and
a single holding score 0. It is taken from the holdings at the end of the contest.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from domain.analytics import max_drawdown, sharpe_ratio, simple_returns
from domain.valuation import diversification_score

__all__ = ["ContestEntry", "ContestStanding", "rank_contest"]


@dataclass(frozen=True, slots=True)
class ContestEntry:
    """One portfolio of a contest as the ranking sees it.

    `values` are its value samples in cents, oldest first, up to the contest's end (the value at the end last);
    `holdings` the market value in cents of each position at the end, by symbol; `sectors` maps symbols to sectors.
    """

    portfolio_id: str
    name: str                     # the nickname, or the team's name
    starting_cash_cents: int
    values: Sequence[int]
    holdings: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class ContestStanding:
    """One line of a contest's ranking. Ratios are unrounded fractions (0.125 is 12.5 %); None where too few
    samples leave a figure undefined."""

    rank: int
    portfolio_id: str
    name: str
    final_value_cents: int
    total_return: float           # (final value − starting cash) / starting cash
    sharpe_ratio: float | None    # of the samples' simple returns, risk-free rate 0, annualised
    max_drawdown: float | None    # the largest fall from a running peak, as a fraction of the peak
    diversification_score: float  # 0..100, 2 dp (see the module's docstring)


def rank_contest(
    entries: Iterable[ContestEntry], sectors: Mapping[str, str], *, periods_per_year: float,
    min_sharpe_returns: int = 2,
) -> tuple[ContestStanding, ...]:
    """The ranking: best total return first, then the higher Sharpe ratio, then the smaller max drawdown (a missing
    figure ranks below any present one); entries equal on all three share a rank (1, 2, 2, 4) and are listed by
    name, then portfolio id. The final value is the last sample (the starting cash without samples); returns are
    compared exactly, in cents. `periods_per_year` is how many sampling intervals make a (simulated) year; the Sharpe
    ratio needs `min_sharpe_returns` returns (None before)."""
    if not periods_per_year > 0:
        raise ValueError("periods_per_year must be positive")
    rows = []
    for entry in entries:
        if entry.starting_cash_cents <= 0:
            raise ValueError(f"portfolio {entry.portfolio_id} has no positive starting cash")
        values = list(entry.values)
        final = values[-1] if values else entry.starting_cash_cents
        gain = Fraction(final - entry.starting_cash_cents, entry.starting_cash_cents)
        returns = simple_returns(values)
        sharpe = sharpe_ratio(returns, periods_per_year) if len(returns) >= min_sharpe_returns else None
        drawdown = max_drawdown(values)
        score = diversification_score(entry.holdings, sectors)
        key = (-gain, sharpe is None, -(sharpe or 0.0), drawdown is None, drawdown or 0.0)
        rows.append((key, entry.name.casefold(), entry.portfolio_id, entry, final, gain, sharpe, drawdown, score))
    rows.sort(key=lambda row: row[:3])
    standings = []
    rank = 0
    for position, (key, _, _, entry, final, gain, sharpe, drawdown, score) in enumerate(rows, start=1):
        if position == 1 or key != rows[position - 2][0]:
            rank = position
        standings.append(ContestStanding(rank, entry.portfolio_id, entry.name, final, float(gain), sharpe, drawdown,
                                         score))
    return tuple(standings)
