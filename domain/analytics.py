"""Portfolio performance analytics from recorded value history: returns, volatility, Sharpe, drawdown, beta, wins."""

import bisect
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from domain.market import Quote
from domain.money import div_round_half_even
from domain.trading import Fill, PortfolioLedger, Side
from domain.valuation import portfolio_view, position_values_cents, sector_allocation, sector_of, value_cents

__all__ = [
    "PortfolioAnalytics",
    "Returns",
    "portfolio_analytics",
    "simple_returns",
    "max_drawdown",
    "annualized_volatility",
    "sharpe_ratio",
    "beta",
    "win_rate",
    "aligned_returns",
]

@dataclass(frozen=True, slots=True)
class Returns:
    """A portfolio's return as a fraction: since the current day's first sample, and since its starting cash."""

    day: float | None
    total: float | None


@dataclass(frozen=True, slots=True)
class PortfolioAnalytics:
    """One portfolio's performance figures; None wherever too few samples leave a figure undefined.

    Money is in cents. The figures from the value history and fills are unrounded fractions; the
    diversification score (0..100, 2 dp) and the sector shares (4 dp) come rounded from domain.valuation.
    """

    portfolio_id: str
    total_cost_cents: int
    unrealized_pnl_cents: int
    realized_pnl_cents: int
    diversification_score: float
    sector_allocation: dict[str, float]     # sector -> share of total value (cash included), 4 dp
    returns: Returns
    volatility: float | None
    sharpe_ratio: float | None
    max_drawdown: float | None
    beta: float | None
    win_rate: float | None


def simple_returns(values: Sequence[float]) -> list[float]:
    """Period returns v[t] / v[t−1] − 1 of consecutive values, oldest first; steps from a value ≤ 0 are skipped."""
    return [b / a - 1.0 for a, b in zip(values[:-1], values[1:], strict=True) if a > 0]


def max_drawdown(values: Iterable[float]) -> float | None:
    """Largest fall from a running peak to a later value, as a positive fraction of the peak; None if empty."""
    worst, peak, seen = 0.0, None, False
    for value in values:
        seen = True
        if peak is None or value > peak:
            peak = value
        elif peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst if seen else None


def annualized_volatility(returns: Sequence[float], periods_per_year: float) -> float | None:
    """Sample standard deviation (ddof=1) of period returns × √periods_per_year; None with fewer than 2 returns."""
    if len(returns) < 2:
        return None
    return statistics.stdev(returns) * math.sqrt(periods_per_year)


def sharpe_ratio(returns: Sequence[float], periods_per_year: float) -> float | None:
    """Mean / sample std (ddof=1) of returns × √periods_per_year, risk-free rate 0; None if < 2 returns or std 0."""
    if len(returns) < 2:
        return None
    deviation = statistics.stdev(returns)
    if deviation == 0:
        return None
    return statistics.fmean(returns) / deviation * math.sqrt(periods_per_year)


def beta(returns: Sequence[float], market_returns: Sequence[float]) -> float | None:
    """Sample cov(returns, market) / sample var(market) over paired period returns; None if < 2 pairs or var 0."""
    if len(returns) != len(market_returns):
        raise ValueError("beta needs returns and market returns of the same length")
    if len(returns) < 2:
        return None
    variance = statistics.variance(market_returns)
    if variance == 0:
        return None
    return statistics.covariance(returns, market_returns) / variance


def aligned_returns(
    value_history: Sequence[tuple[int, float]], index_history: Sequence[tuple[int, float]]
) -> tuple[list[float], list[float]] | None:
    """Paired (portfolio, index) returns over samples aligned as-of; None with fewer than 3 aligned samples.

    Each portfolio sample is paired with the index's latest value at or before its time; portfolio samples
    older than the first index value are dropped. Returns are taken between consecutive aligned samples,
    skipping a step whose earlier portfolio or index value is not positive.
    """
    index = sorted(index_history)
    times = [time for time, _ in index]
    aligned = []
    for time, value in sorted(value_history):
        at = bisect.bisect_right(times, time)
        if at:
            aligned.append((value, index[at - 1][1]))
    if len(aligned) < 3:
        return None
    ours, market = [], []
    for (value0, index0), (value1, index1) in zip(aligned[:-1], aligned[1:], strict=True):
        if value0 > 0 and index0 > 0:
            ours.append(value1 / value0 - 1.0)
            market.append(index1 / index0 - 1.0)
    return ours, market


def _closing_pnls(fills: Iterable[Fill]) -> list[int]:
    """Realized P&L in cents (commissions excluded) of every fill that reduces a position, in time order.

    Fills are replayed in (market time, wall time) order, stable for ties, with the ledger's arithmetic:
    the closed shares take their proportional part of the cost basis, rounded half-even to a cent (all of
    it when the position closes). A sell out of a long is judged against the long's cost, a buy covering a
    short against its proceeds; a fill that crosses zero is judged on the part that closes and opens the rest.
    """
    book: dict[str, tuple[int, int]] = {}  # symbol -> (signed quantity, signed cost basis in cents)
    pnls = []
    for fill in sorted(fills, key=lambda f: (f.market_time_ms, f.time_ms)):
        quantity, basis = book.get(fill.symbol, (0, 0))
        delta = fill.quantity if fill.side == Side.BUY else -fill.quantity
        if quantity and (quantity > 0) != (delta > 0):
            closing = min(abs(delta), abs(quantity))
            removed = basis if closing == abs(quantity) else div_round_half_even(basis * closing, abs(quantity))
            signed_closing = closing if delta > 0 else -closing
            pnls.append(-signed_closing * fill.price_cents - removed)
            quantity += signed_closing
            basis -= removed
            delta -= signed_closing
        quantity += delta
        basis += delta * fill.price_cents
        book[fill.symbol] = (quantity, basis)
    return pnls


def win_rate(fills: Iterable[Fill]) -> float | None:
    """Share of closing fills (sells out of a long, buys covering a short) with positive realized P&L; None if none.

    Each closing fill counts once, with the realized P&L the ledger books for it (average cost at that
    moment, cost rounded to a cent, commissions excluded, as realized P&L is); a fill that realizes exactly
    0 counts as a closing fill but not a win.
    """
    pnls = _closing_pnls(fills)
    if not pnls:
        return None
    return sum(1 for pnl in pnls if pnl > 0) / len(pnls)


def portfolio_analytics(
    *,
    ledger: PortfolioLedger,
    quotes: Mapping[str, Quote],
    sectors: Mapping[str, str],
    value_history: Sequence[tuple[int, int]],
    index_history: Sequence[tuple[int, float]],
    fills: Iterable[Fill],
    periods_per_year: float,
    day_start_ms: int,
) -> PortfolioAnalytics:
    """Performance figures of one portfolio; None wherever too few samples make a figure undefined.

    `value_history` is this portfolio's recorded (market time ms, value in cents), `index_history` the
    market index's (market time ms, value), `fills` this portfolio's fills, `periods_per_year` how many
    sampling intervals make a (simulated) year, `day_start_ms` when the current simulated day began.
    returns.day = (value now − first sample at or after day_start_ms) / that sample; returns.total =
    (value now − starting cash) / starting cash; "now" is the live value from the ledger and quotes.
    Volatility, Sharpe ratio (risk-free 0) and max drawdown come from the value history's simple returns,
    beta from returns aligned with the index (see aligned_returns), win rate from the fills (see win_rate);
    the sector allocation is of total value (cash included), like a position's weight.
    """
    if not periods_per_year > 0:
        raise ValueError("periods_per_year must be positive")
    view = portfolio_view(ledger, quotes, sectors, include_positions=False)
    now = value_cents(ledger, quotes)
    values_by_symbol = position_values_cents(ledger, quotes)
    symbol_sectors = {symbol: sector_of(symbol, quotes, sectors) for symbol in values_by_symbol}

    history = sorted(value_history)
    values = [value for _, value in history]
    today = [value for time, value in history if time >= day_start_ms]
    day_return = (now - today[0]) / today[0] if today and today[0] > 0 else None
    start = ledger.starting_cash_cents
    total_return = (now - start) / start if start > 0 else None

    returns = simple_returns(values)
    paired = aligned_returns(history, index_history)
    return PortfolioAnalytics(
        portfolio_id=ledger.portfolio_id,
        total_cost_cents=view.total_cost_cents,
        unrealized_pnl_cents=view.unrealized_pnl_cents,
        realized_pnl_cents=view.realized_pnl_cents,
        diversification_score=view.diversification_score,
        sector_allocation=sector_allocation(values_by_symbol, symbol_sectors, total=now),
        returns=Returns(day=day_return, total=total_return),
        volatility=annualized_volatility(returns, periods_per_year),
        sharpe_ratio=sharpe_ratio(returns, periods_per_year),
        max_drawdown=max_drawdown(values),
        beta=beta(*paired) if paired is not None else None,
        win_rate=win_rate(fills),
    )
