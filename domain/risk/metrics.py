"""Risk metrics: the market's returns matrix (RiskModel) and every portfolio's VaR, CVaR and exposures in one batch."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from statistics import NormalDist

import numpy as np

from domain.market import TRADING_DAYS_PER_YEAR, Quote
from domain.trading import PortfolioLedger
from domain.valuation import position_values_cents, sector_of

__all__ = [
    "RiskModel",
    "RiskMetrics",
    "RiskRank",
    "DEFAULT_LOOKBACK",
    "MIN_SCENARIO_DAYS",
    "compute_metrics",
    "rank_by_risk",
]

DEFAULT_LOOKBACK = 250  # simulated trading days of returns behind VaR, volatility and beta
MIN_SCENARIO_DAYS = 2  # fewer days of returns than this: every market-based figure is None
_Z95 = NormalDist().inv_cdf(0.95)  # 1.6448536269514722
_Z99 = NormalDist().inv_cdf(0.99)  # 2.3263478740408408
_PLACES = 4  # ratios are reported to 4 dp: 0.0123 is 1.23 %


class RiskModel:
    """Owns the market side of risk: the symbols × days matrix of daily returns in the lookback window and the
    index returns aligned with its most recent days; built once per interval and shared by every portfolio.

    `returns[i, t]` is symbol i's simple return on day t, oldest first; `index_returns` are the index's returns
    on the last `len(index_returns)` of those days (at most `days`).
    """

    __slots__ = ("symbols", "returns", "index_returns", "_rows")

    def __init__(self, symbols: Sequence[str], returns: np.ndarray, index_returns: np.ndarray):
        self.symbols = tuple(symbols)
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("duplicate symbols in the risk model")
        matrix = np.array(returns, dtype=np.float64)
        self.returns = matrix.reshape(len(self.symbols), -1) if self.symbols else np.zeros((0, 0))
        self.index_returns = np.array(index_returns, dtype=np.float64).reshape(-1)
        if len(self.index_returns) > self.days:
            raise ValueError("index returns longer than the symbols' returns")
        if not (np.isfinite(self.returns).all() and np.isfinite(self.index_returns).all()):
            raise ValueError("returns must be finite")
        self.returns.setflags(write=False)
        self.index_returns.setflags(write=False)
        self._rows = {symbol: i for i, symbol in enumerate(self.symbols)}

    @classmethod
    def from_returns(
        cls,
        symbols: Sequence[str],
        returns: Mapping[str, Sequence[float]],
        index_returns: Sequence[float] = (),
        lookback: int = DEFAULT_LOOKBACK,
    ) -> "RiskModel":
        """The model over the last `days` = min(lookback, shortest series) days, every series aligned at its end.

        Every series is oldest first and ends on the same (latest completed) day, as MarketSimulator.daily_returns
        gives them. A symbol with a shorter history shortens the window for all; the index keeps at most `days`.
        """
        if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
            raise ValueError("lookback must be a positive integer")
        missing = [symbol for symbol in symbols if symbol not in returns]
        if missing:
            raise ValueError(f"no returns for {missing}")
        series = [list(returns[symbol]) for symbol in symbols]
        days = min([lookback, *map(len, series)])
        matrix = np.array([row[len(row) - days:] for row in series], dtype=np.float64).reshape(len(series), days)
        index = list(index_returns)
        index = index[len(index) - min(days, len(index)):]
        return cls(symbols, matrix, np.array(index, dtype=np.float64))

    @classmethod
    def from_market(cls, market, *, lookback: int = DEFAULT_LOOKBACK, index_symbol: str = "SQX") -> "RiskModel":
        """The model of a MarketSimulator's completed days: every listed symbol, the index `index_symbol`."""
        symbols = [spec.symbol for spec in market.specs()]
        returns = {symbol: market.daily_returns(symbol, lookback) for symbol in symbols}
        return cls.from_returns(symbols, returns, market.index_daily_returns(index_symbol, lookback), lookback)

    @property
    def days(self) -> int:
        """How many days (scenarios) the window holds."""
        return self.returns.shape[1]

    def row(self, symbol: str) -> int | None:
        return self._rows.get(symbol)


@dataclass(frozen=True, slots=True)
class RiskMetrics:
    """One portfolio's risk figures at one moment (compute_metrics says how each is worked out).

    Money is integer cents (each figure rounded half-even to a cent), ratios are floats rounded to 4 dp, and
    None marks a figure that is undefined (too few days of returns, a value that is not positive, no positions).
    """

    var95: int | None
    var99: int | None
    cvar95: int | None
    var_parametric95: int | None
    var_parametric99: int | None
    volatility: float | None
    beta: float | None
    max_drawdown: float
    current_drawdown: float
    gross_exposure: int
    net_exposure: int
    leverage: float | None
    largest_position_weight: float | None
    largest_position_symbol: str | None
    concentration_hhi: float | None
    sector_exposure: dict[str, float]  # sector -> weight in sector-name order, shorts negative
    daily_pnl: int
    total_value: int
    lookback_days: int


def _tail_count(days: int, confidence_percent: int) -> int:
    """k = ⌈days × (100 − confidence) / 100⌉, at least 1, in integers: (1 − 0.95) × 60 is 3.0000000000000027."""
    return max(1, -(-days * (100 - confidence_percent) // 100))


def _scenario_figures(
    scenarios: np.ndarray, totals: np.ndarray, index_returns: np.ndarray, periods_per_year: float
) -> dict[str, np.ndarray]:
    """Every market-based figure of every portfolio (rows of `scenarios`, P&L in cents), NaN where undefined."""
    count, days = scenarios.shape
    if days < MIN_SCENARIO_DAYS:
        nan = np.full(count, np.nan)
        return dict.fromkeys(("var95", "var99", "cvar95", "parametric95", "parametric99", "volatility", "beta"), nan)
    k95, k99 = _tail_count(days, 95), _tail_count(days, 99)
    # Partitioning puts the k99-th and k95-th smallest P&Ls in place and the k95 smallest before the latter: O(days).
    tail = np.partition(scenarios, sorted({k99 - 1, k95 - 1}), axis=1)
    sigma = scenarios.std(axis=1, ddof=1)
    positive = totals > 0
    safe_totals = np.where(positive, totals, 1.0)
    beta = np.full(count, np.nan)
    overlap = len(index_returns)
    if overlap >= MIN_SCENARIO_DAYS:
        centred = index_returns - index_returns.mean()
        variance = float(centred @ centred) / (overlap - 1)
        if variance > 0:
            # cov(P&L / V, I) = Σ P&L_t (I_t − Ī) / (m − 1) / V: centring one side is enough.
            covariance = scenarios[:, days - overlap:] @ centred / (overlap - 1)
            beta = np.where(positive, covariance / safe_totals / variance, np.nan)
    return {
        "var95": np.maximum(-tail[:, k95 - 1], 0.0),
        "var99": np.maximum(-tail[:, k99 - 1], 0.0),
        "cvar95": np.maximum(-tail[:, :k95].mean(axis=1), 0.0),
        "parametric95": _Z95 * sigma,
        "parametric99": _Z99 * sigma,
        "volatility": np.where(positive, sigma / safe_totals * math.sqrt(periods_per_year), np.nan),
        "beta": beta,
    }


def _drawdowns(histories: Sequence[Sequence[int]], lives: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(max, current) drawdown of each history followed by its live value, as fractions of the running peak.

    One pass over all samples at once: each portfolio's samples are lifted by its index × the value span, so a
    single running maximum never carries one portfolio's peak into the next.
    """
    count = len(histories)
    if count == 0:
        return np.zeros(0), np.zeros(0)
    lengths = np.fromiter((len(history) + 1 for history in histories), dtype=np.int64, count=count)
    pieces = []
    for history, live in zip(histories, lives, strict=True):
        pieces.append(history)
        pieces.append((live,))
    values = np.fromiter(chain.from_iterable(pieces), dtype=np.int64, count=int(lengths.sum()))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    low, high = int(values.min()), int(values.max())
    span = high - low + 1
    if span * count < 2**62:
        lift = np.repeat(np.arange(count, dtype=np.int64) * span - low, lengths)
        peaks = np.maximum.accumulate(values + lift) - lift
    else:  # values too large to lift within int64: one portfolio at a time
        peaks = np.concatenate([np.maximum.accumulate(values[a:b]) for a, b in zip(starts, ends, strict=True)])
    peaks = peaks.astype(np.float64)
    falls = np.zeros(len(values))
    np.divide(peaks - values, peaks, out=falls, where=peaks > 0)
    return np.maximum.reduceat(falls, starts), falls[ends - 1]


def _cents_list(values: np.ndarray) -> list[int | None]:
    """Cents rounded half-even to whole cents; NaN becomes None."""
    return [None if math.isnan(x) else int(x) for x in np.round(values).tolist()]


def _ratio_list(values: np.ndarray) -> list[float | None]:
    """Ratios rounded to 4 dp; NaN becomes None and -0.0 becomes 0.0."""
    rounded = np.round(values, _PLACES) + 0.0
    out = rounded.tolist()
    if np.isnan(rounded).any():
        out = [None if math.isnan(x) else x for x in out]
    return out


def compute_metrics(
    model: RiskModel,
    ledgers: Sequence[PortfolioLedger],
    quotes: Mapping[str, Quote],
    sectors: Mapping[str, str],
    *,
    value_histories: Mapping[str, Sequence[int]],
    day_start_values: Mapping[str, int],
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> dict[str, RiskMetrics]:
    """The risk metrics of every portfolio, by portfolio id, computed in one batch.

    Positions are valued as PORTFOLIO values them (quantity × price; without a quote, at cost); V is the total
    value, cash included. One matrix product gives every portfolio's scenario P&L: P&L[p, t] = Σ_i value[p, i] ×
    returns[i, t] over the model's `days` days (today's holdings replayed over each past day; positions in
    symbols the model does not know add nothing). With k_c = ⌈days × (100 − c) / 100⌉ (at least 1):

    - var95 / var99: the k-th worst scenario P&L, as a positive loss (the empirical quantile, no interpolation:
      numpy's "inverted_cdf"); cvar95: the mean of the k95 worst scenario P&Ls (all at or beyond var95), as a
      loss. Floored at 0 (a tail that still gains is a loss of 0). With 250 days, k95 = 13 and k99 = 3.
    - var_parametric95 / 99: z × σ with z = 1.6449 / 2.3263 and σ the sample (ddof = 1) deviation of the scenario
      P&Ls; a mean of zero is assumed (the scenarios' mean is ignored).
    - volatility: σ / V × √periods_per_year; beta: sample cov(P&L / V, index) / sample var(index) over the last
      days the index covers. These describe today's holdings over the window, not the value history.
    - max_drawdown / current_drawdown: over `value_histories[id]` (integer cents, oldest first, may be missing or
      empty) followed by the live value: the largest fall from a running peak, and the live value's fall from
      the peak, as fractions of the peak (falls from a peak ≤ 0 count as 0). Cost grows with the samples passed.
    - gross_exposure Σ|value|, net_exposure Σ value (shorts negative), leverage gross / V;
      largest_position_weight max |value| / V (its symbol in largest_position_symbol, None when flat);
      concentration_hhi Σ s² with s the positions' shares of gross exposure (1 for one position, None when flat);
      sector_exposure {sector: Σ value / V} in sector-name order (shorts negative).
    - daily_pnl: V − day_start_values[id]; without a day-start value, Σ quantity × (price − previous close).

    Also total_value (V) and lookback_days (= days). Money is integer cents (rounded half-even), ratios 4 dp.
    Market-based figures are None with fewer than MIN_SCENARIO_DAYS days, ratios None when V ≤ 0, beta None without
    2 index days of non-zero variance; nothing is ever NaN. A portfolio's figures do not depend on which other
    portfolios share the batch.
    """
    if not periods_per_year > 0:
        raise ValueError("periods_per_year must be positive")
    count = len(ledgers)
    holdings = np.zeros((count, len(model.symbols)))
    totals = np.zeros(count)
    rows, cols, amounts = [], [], []
    books = []
    sector_cache: dict[str, str] = {}
    for p, ledger in enumerate(ledgers):
        values = position_values_cents(ledger, quotes)
        total = ledger.cash_cents + sum(values.values())
        totals[p] = total
        gross = squares = 0
        largest, largest_size = None, -1
        by_sector: dict[str, int] = {}
        for symbol, value in values.items():
            i = model.row(symbol)
            if i is not None:
                rows.append(p)
                cols.append(i)
                amounts.append(value)
            size = abs(value)
            gross += size
            squares += size * size
            if size > largest_size:  # symbol order: the first of equal sizes wins
                largest, largest_size = symbol, size
            sector = sector_cache.get(symbol)
            if sector is None:
                sector = sector_cache[symbol] = sector_of(symbol, quotes, sectors)
            by_sector[sector] = by_sector.get(sector, 0) + value
        start = day_start_values.get(ledger.portfolio_id)
        if start is not None:
            daily = total - start
        else:
            daily = sum(
                ledger.positions[symbol].quantity * (quote.price - quote.previous_close)
                for symbol in values
                if (quote := quotes.get(symbol)) is not None
            )
        books.append((total, gross, sum(values.values()), squares, largest, largest_size, by_sector, daily))
    holdings[rows, cols] = amounts
    scenarios = holdings @ model.returns  # P × days, cents
    figures = _scenario_figures(scenarios, totals, model.index_returns, periods_per_year)
    money = {name: _cents_list(figures[name]) for name in ("var95", "var99", "cvar95", "parametric95", "parametric99")}
    ratios = {name: _ratio_list(figures[name]) for name in ("volatility", "beta")}
    max_dd, current_dd = _drawdowns([value_histories.get(ledger.portfolio_id, ()) for ledger in ledgers],
                                    [book[0] for book in books])
    max_dd, current_dd = _ratio_list(max_dd), _ratio_list(current_dd)

    out = {}
    for p, ledger in enumerate(ledgers):
        total, gross, net, squares, largest, largest_size, by_sector, daily = books[p]
        positive = total > 0
        out[ledger.portfolio_id] = RiskMetrics(
            var95=money["var95"][p],
            var99=money["var99"][p],
            cvar95=money["cvar95"][p],
            var_parametric95=money["parametric95"][p],
            var_parametric99=money["parametric99"][p],
            volatility=ratios["volatility"][p],
            beta=ratios["beta"][p],
            max_drawdown=max_dd[p],
            current_drawdown=current_dd[p],
            gross_exposure=gross,
            net_exposure=net,
            leverage=round(gross / total, _PLACES) if positive else None,
            largest_position_weight=(round(largest_size / total, _PLACES) if largest is not None else 0.0)
            if positive else None,
            largest_position_symbol=largest,
            concentration_hhi=round(squares / (gross * gross), _PLACES) if gross else None,
            sector_exposure={
                sector: round(value / total, _PLACES) + 0.0 for sector, value in sorted(by_sector.items())
            } if positive else {},
            daily_pnl=daily,
            total_value=total,
            lookback_days=model.days,
        )
    return out


@dataclass(frozen=True, slots=True)
class RiskRank:
    """One portfolio's place in the class-wide view, riskiest first."""

    rank: int
    portfolio_id: str
    relative_var95: float | None  # var95 / total value, 4 dp
    metrics: RiskMetrics


def rank_by_risk(metrics_by_portfolio: Mapping[str, RiskMetrics]) -> list[RiskRank]:
    """The teacher's class-wide view: every portfolio ranked by VaR relative to its value, riskiest first.

    relative_var95 = var95 / total_value (4 dp; None when var95 is None or the value is not positive). Ordered by
    relative_var95 descending, portfolios without one last, ties by var95 descending, then portfolio id; ranks 1..n.
    """
    entries = []
    for pid, metrics in metrics_by_portfolio.items():
        var95, total = metrics.var95, metrics.total_value
        relative = None
        if var95 is not None and total > 0:
            # the quotient of the currency figures, exactly as the ranking has always been computed
            relative = round((var95 / 100) / (total / 100), _PLACES) + 0.0
        entries.append((pid, relative, var95, metrics))
    entries.sort(key=lambda e: (e[1] is None, -(e[1] or 0.0), -(e[2] or 0), e[0]))
    return [RiskRank(n, pid, relative, metrics) for n, (pid, relative, _, metrics) in enumerate(entries, start=1)]
