"""Portfolio risk: batch VaR/CVaR and exposure metrics, per-portfolio limits, the pre-trade check and alerts."""

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from itertools import chain
from statistics import NormalDist

import numpy as np

from domain.errors import BadRequest
from domain.market import TRADING_DAYS_PER_YEAR, Quote
from domain.money import money_text
from domain.orders import ExtraCheck, LevelTrigger
from domain.trading import (
    OrderRequest,
    OrderType,
    PortfolioLedger,
    RejectReason,
    Side,
    cents_to_wire,
    iso_ms,
)
from domain.valuation import position_values_cents, sector_of, value_cents

__all__ = [
    "Severity",
    "RiskLimits",
    "RiskModel",
    "Breach",
    "Alert",
    "AlertMonitor",
    "DEFAULT_LOOKBACK",
    "DEFAULT_STARTING_CASH_CENTS",
    "DEFAULT_LIMITS",
    "LIMIT_RULES",
    "MAX_MONEY_LIMIT_CENTS",
    "MIN_SCENARIO_DAYS",
    "WARNING_FRACTION",
    "default_limits",
    "limits_from_wire",
    "compute_metrics",
    "evaluate_limits",
    "estimated_order_price",
    "pre_trade_check",
    "rank_by_risk",
]

DEFAULT_LOOKBACK = 250  # simulated trading days of returns behind VaR, volatility and beta
MIN_SCENARIO_DAYS = 2  # fewer days of returns than this: every market-based figure is None
DEFAULT_STARTING_CASH_CENTS = 10_000_000  # 100,000.00, the protocol's default starting cash
WARNING_FRACTION = Decimal("0.8")  # a metric at or above 80 % of its limit is a WARNING
MAX_MONEY_LIMIT_CENTS = 10**14  # 1,000,000,000,000.00: anything larger is a typo, not a limit
_Z95 = NormalDist().inv_cdf(0.95)  # 1.6448536269514722
_Z99 = NormalDist().inv_cdf(0.99)  # 2.3263478740408408
_PLACES = 4  # ratios on the wire: 0.0123 is 1.23 %


class Severity(enum.StrEnum):
    """How loud a breach or RISK_ALERT is: INFO (a stop-loss / take-profit trigger), WARNING (near a limit),
    CRITICAL (over it)."""

    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


# ----- limits ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """One portfolio's risk limits: weights are Decimal fractions of total value (cash included), money is integer
    cents, None means no limit.

    max_position_weight bounds largestPositionWeight (and, pre-trade, a buy's resulting weight), max_sector_weight
    the largest |sector weight|, max_daily_loss the day's loss (−dailyPnL), max_drawdown currentDrawdown,
    max_var95 the one-day historical var95, max_order_value an order's estimated value (pre-trade only).
    A float weight given to the constructor is read through its repr, so 0.25 is Decimal("0.25").
    """

    max_position_weight: Decimal | None = None
    max_sector_weight: Decimal | None = None
    max_daily_loss: int | None = None
    max_drawdown: Decimal | None = None
    max_var95: int | None = None
    max_order_value: int | None = None

    def __post_init__(self):
        for attr in ("max_position_weight", "max_sector_weight", "max_drawdown"):
            value = getattr(self, attr)
            if isinstance(value, float):
                object.__setattr__(self, attr, Decimal(repr(value)))

    def to_wire(self) -> dict:
        """The protocol's Limits object: weights as fractions, money as currency numbers, null for no limit."""
        out = {}
        for wire, attr, kind in _LIMIT_FIELDS:
            value = getattr(self, attr)
            if value is None:
                out[wire] = None
            else:
                out[wire] = cents_to_wire(value) if kind == "money" else float(value)
        return out


_LIMIT_FIELDS = (
    ("maxPositionWeight", "max_position_weight", "weight"),
    ("maxSectorWeight", "max_sector_weight", "weight"),
    ("maxDailyLoss", "max_daily_loss", "money"),
    ("maxDrawdown", "max_drawdown", "weight"),
    ("maxVar95", "max_var95", "money"),
    ("maxOrderValue", "max_order_value", "money"),
)
_WIRE_LIMITS = {wire: (attr, kind) for wire, attr, kind in _LIMIT_FIELDS}
LIMIT_RULES = tuple(wire for wire, _, _ in _LIMIT_FIELDS)


def default_limits(starting_cash_cents: int = DEFAULT_STARTING_CASH_CENTS) -> RiskLimits:
    """The house defaults for a portfolio that started with `starting_cash_cents`.

    maxPositionWeight 0.25, maxSectorWeight 0.50, maxDrawdown 0.20; maxDailyLoss and maxVar95 5 % of the
    starting cash, maxOrderValue 25 % of it (5,000.00, 5,000.00 and 25,000.00 for the default 100,000.00).
    """
    cash = int(starting_cash_cents)
    return RiskLimits(
        max_position_weight=Decimal("0.25"),
        max_sector_weight=Decimal("0.50"),
        max_daily_loss=cash * 5 // 100,
        max_drawdown=Decimal("0.20"),
        max_var95=cash * 5 // 100,
        max_order_value=cash * 25 // 100,
    )


DEFAULT_LIMITS = default_limits()


def _parse_limit(key: str, kind: str, value: object) -> Decimal | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise BadRequest(f"{key} must be a number or null")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise BadRequest(f"{key} must be a finite number")
    if number <= 0:
        raise BadRequest(f"{key} must be positive (null removes the limit)")
    if kind == "weight":
        if number > 1:
            raise BadRequest(f"{key} is a fraction of the portfolio's value (0.25 is 25 %) and must be at most 1")
        return number
    if number * 100 > MAX_MONEY_LIMIT_CENTS:  # before quantize, which cannot hold 1e300
        raise BadRequest(f"{key} must be at most {money_text(MAX_MONEY_LIMIT_CENTS)}")
    cents = (number * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    if cents < 1:
        raise BadRequest(f"{key} must be at least 0.01")
    return int(cents)


def limits_from_wire(data: object, current: RiskLimits) -> RiskLimits:
    """`current` with the limits given in a SET_RISK_LIMITS `limits` object applied; keys left out stay as they are.

    Weights are fractions in (0, 1]; money is currency, rounded half-even to cents, from 0.01 to 1e12; null removes
    a limit. BadRequest (nothing applied) for a non-object, an unknown key, a non-number, NaN or infinity, zero or
    a negative value, a weight over 1, or money out of range.
    """
    if not isinstance(data, Mapping):
        raise BadRequest("limits must be an object")
    unknown = sorted(str(key) for key in data if key not in _WIRE_LIMITS)
    if unknown:
        raise BadRequest(f"unknown risk limit {unknown[0]!r}; the limits are {', '.join(LIMIT_RULES)}")
    changes = {}
    for key, value in data.items():
        attr, kind = _WIRE_LIMITS[key]
        changes[attr] = _parse_limit(key, kind, value)
    return replace(current, **changes)


# ----- formatting ------------------------------------------------------------------------------------------


_HUNDREDTH = Decimal("0.01")


def _percent_text(fraction: Fraction | Decimal) -> str:
    """An exact fraction as a percentage to 2 dp (half-even): 0.3125 -> "31.25%"."""
    if isinstance(fraction, Decimal):
        return f"{(fraction * 100).quantize(_HUNDREDTH, rounding=ROUND_HALF_EVEN)}%"
    basis_points = round(fraction * 10_000)
    return f"{Decimal(basis_points).scaleb(-2):.2f}%"


def _wire_ratio(value: float) -> float | None:
    """A ratio for the wire: 4 dp, None instead of NaN or infinity, never -0.0."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), _PLACES) + 0.0


# ----- the market side -------------------------------------------------------------------------------------


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


# ----- metrics ---------------------------------------------------------------------------------------------


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


def _wire_list(values: np.ndarray, money: bool) -> list[float | None]:
    """Cents to currency rounded to cents, or ratios to 4 dp; NaN becomes None and -0.0 becomes 0.0."""
    rounded = (np.round(values) / 100 if money else np.round(values, _PLACES)) + 0.0
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
) -> dict[str, dict]:
    """The protocol's risk Metrics object of every portfolio, by portfolio id, computed in one batch.

    Positions are valued as PORTFOLIO values them (quantity × price; without a quote, at cost); V is the total
    value, cash included. One matrix product gives every portfolio's scenario P&L: P&L[p, t] = Σ_i value[p, i] ×
    returns[i, t] over the model's `days` days (today's holdings replayed over each past day; positions in
    symbols the model does not know add nothing). With k_c = ⌈days × (100 − c) / 100⌉ (at least 1):

    - var95 / var99: the k-th worst scenario P&L, as a positive loss (the empirical quantile, no interpolation:
      numpy's "inverted_cdf"); cvar95: the mean of the k95 worst scenario P&Ls (all at or beyond var95), as a
      loss. Floored at 0 (a tail that still gains is a loss of 0). With 250 days, k95 = 13 and k99 = 3.
    - varParametric95 / 99: z × σ with z = 1.6449 / 2.3263 and σ the sample (ddof = 1) deviation of the scenario
      P&Ls; a mean of zero is assumed (the scenarios' mean is ignored).
    - volatility: σ / V × √periods_per_year; beta: sample cov(P&L / V, index) / sample var(index) over the last
      days the index covers. These describe today's holdings over the window, not the value history.
    - maxDrawdown / currentDrawdown: over `value_histories[id]` (integer cents, oldest first, may be missing or
      empty) followed by the live value: the largest fall from a running peak, and the live value's fall from
      the peak, as fractions of the peak (falls from a peak ≤ 0 count as 0). Cost grows with the samples passed.
    - grossExposure Σ|value|, netExposure Σ value (shorts negative), leverage gross / V; largestPositionWeight
      max |value| / V (its symbol in largestPositionSymbol, None when flat); concentrationHHI Σ s² with s the
      positions' shares of gross exposure (1 for one position, None when flat); sectorExposure {sector: Σ value /
      V} in sector-name order (shorts negative).
    - dailyPnL: V − day_start_values[id]; without a day-start value, Σ quantity × (price − previous close).

    Also `varParametric95`, `varParametric99`, `totalValue` and `lookbackDays` (= days). Money is currency rounded
    to cents, ratios 4 dp. Market-based figures are None with fewer than MIN_SCENARIO_DAYS days, ratios None when
    V ≤ 0, beta None without 2 index days of non-zero variance; nothing is ever NaN. A portfolio's figures do not
    depend on which other portfolios share the batch.
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
    money = {name: _wire_list(figures[name], True) for name in ("var95", "var99", "cvar95", "parametric95",
                                                                   "parametric99")}
    ratios = {name: _wire_list(figures[name], False) for name in ("volatility", "beta")}
    max_dd, current_dd = _drawdowns([value_histories.get(ledger.portfolio_id, ()) for ledger in ledgers],
                                    [book[0] for book in books])
    max_dd, current_dd = _wire_list(max_dd, False), _wire_list(current_dd, False)

    out = {}
    for p, ledger in enumerate(ledgers):
        total, gross, net, squares, largest, largest_size, by_sector, daily = books[p]
        positive = total > 0
        out[ledger.portfolio_id] = {
            "var95": money["var95"][p],
            "var99": money["var99"][p],
            "cvar95": money["cvar95"][p],
            "varParametric95": money["parametric95"][p],
            "varParametric99": money["parametric99"][p],
            "volatility": ratios["volatility"][p],
            "beta": ratios["beta"][p],
            "maxDrawdown": max_dd[p],
            "currentDrawdown": current_dd[p],
            "grossExposure": gross / 100,
            "netExposure": net / 100 + 0.0,
            "leverage": round(gross / total, _PLACES) if positive else None,
            "largestPositionWeight": (round(largest_size / total, _PLACES) if largest is not None else 0.0)
            if positive else None,
            "largestPositionSymbol": largest,
            "concentrationHHI": round(squares / (gross * gross), _PLACES) if gross else None,
            "sectorExposure": {
                sector: round(value / total, _PLACES) + 0.0 for sector, value in sorted(by_sector.items())
            } if positive else {},
            "dailyPnL": daily / 100 + 0.0,
            "totalValue": total / 100,
            "lookbackDays": model.days,
        }
    return out


# ----- limits against metrics ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    """One limit a portfolio's metric is near (WARNING, at or above WARNING_FRACTION of it) or over (CRITICAL)."""

    rule: str  # the limit's wire name, e.g. "maxDrawdown"
    metric: str  # the metric compared, e.g. "currentDrawdown"
    value: float  # the metric, in the limit's units (fraction or currency)
    threshold: float  # the limit
    severity: Severity
    message: str

    def to_wire(self) -> dict:
        return {"rule": self.rule, "metric": self.metric, "value": self.value, "threshold": self.threshold,
                "severity": str(self.severity), "message": self.message}


def _breach(rule, metric, label, value, limit, money, warning_fraction) -> Breach | None:
    """Compare in exact decimals (money in cents); None when under the warning level."""
    scaled = round(value * 100) if money else value
    if scaled < float(limit) * float(warning_fraction) * (1 - 1e-9):  # clearly under: skip the exact arithmetic
        return None
    bound = Decimal(limit)
    exact = Decimal(scaled) if money else Decimal(str(value))
    if exact > bound:
        severity = Severity.CRITICAL
    elif exact >= bound * warning_fraction:
        severity = Severity.WARNING
    else:
        return None
    text = money_text if money else _percent_text
    if severity is Severity.CRITICAL:
        message = f"{label} {text(exact)} is over {rule} {text(bound)} by {text(exact - bound)}"
    else:
        share = (exact / bound * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        message = f"{label} {text(exact)} is at {share}% of {rule} {text(bound)}"
    if money:
        return Breach(rule, metric, int(exact) / 100, int(bound) / 100, severity, message)
    return Breach(rule, metric, float(exact), float(bound), severity, message)


def evaluate_limits(
    metrics: Mapping[str, object], limits: RiskLimits, *, warning_fraction: Decimal = WARNING_FRACTION
) -> list[Breach]:
    """Every limit the metrics (one portfolio's compute_metrics dict) are near or over, in LIMIT_RULES order.

    maxPositionWeight vs largestPositionWeight, maxSectorWeight vs the largest |sector weight| in sectorExposure,
    maxDailyLoss vs the day's loss (metric "dailyLoss" = −dailyPnL), maxDrawdown vs currentDrawdown, maxVar95 vs
    var95. CRITICAL when the metric is over the limit (>), WARNING when at or above warning_fraction × limit.
    Figures are compared as reported (4 dp, cents). A metric that is None or a limit that is None is skipped;
    maxOrderValue only applies pre-trade.
    """
    out = []

    def consider(rule, metric, label, value, limit, money):
        if value is not None and limit is not None:
            breach = _breach(rule, metric, label, value, limit, money, warning_fraction)
            if breach is not None:
                out.append(breach)

    symbol = metrics.get("largestPositionSymbol")
    label = f"position {symbol} weight" if symbol else "largest position weight"
    consider("maxPositionWeight", "largestPositionWeight", label, metrics.get("largestPositionWeight"),
             limits.max_position_weight, False)
    sectors = metrics.get("sectorExposure") or {}
    if sectors:
        sector = max(sectors, key=lambda name: (abs(sectors[name]), name))
        consider("maxSectorWeight", "sectorExposure", f"sector {sector} weight", abs(sectors[sector]),
                 limits.max_sector_weight, False)
    daily = metrics.get("dailyPnL")
    consider("maxDailyLoss", "dailyLoss", "daily loss", None if daily is None else -daily,
             limits.max_daily_loss, True)
    consider("maxDrawdown", "currentDrawdown", "drawdown", metrics.get("currentDrawdown"), limits.max_drawdown, False)
    consider("maxVar95", "var95", "one-day VaR 95%", metrics.get("var95"), limits.max_var95, True)
    return out


def rank_by_risk(metrics_by_portfolio: Mapping[str, Mapping[str, object]]) -> list[dict]:
    """The teacher's class-wide view: `{rank, portfolioId, relativeVar95, metrics}`, riskiest first.

    relativeVar95 = var95 / totalValue (4 dp; None when either is missing or the value is not positive). Ordered by
    relativeVar95 descending, portfolios without one last, ties by var95 descending, then portfolio id; ranks 1..n.
    """
    entries = []
    for pid, metrics in metrics_by_portfolio.items():
        var95, total = metrics.get("var95"), metrics.get("totalValue")
        relative = _wire_ratio(var95 / total) if var95 is not None and total and total > 0 else None
        entries.append((pid, relative, var95, metrics))
    entries.sort(key=lambda e: (e[1] is None, -(e[1] or 0.0), -(e[2] or 0.0), e[0]))
    return [{"rank": n, "portfolioId": pid, "relativeVar95": relative, "metrics": metrics}
            for n, (pid, relative, _, metrics) in enumerate(entries, start=1)]


# ----- alerts ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """One RISK_ALERT: a limit crossing (WARNING / CRITICAL) or a stop-loss / take-profit trigger (INFO)."""

    alert_id: str
    portfolio_id: str
    severity: Severity
    rule: str  # a limit's wire name, or "STOP_LOSS" / "TAKE_PROFIT"
    metric: str  # the metric compared; "price" for triggers
    value: float
    threshold: float
    message: str
    created_at_ms: int
    acknowledged: bool = False
    symbol: str | None = None  # triggers only

    def to_wire(self) -> dict:
        return {
            "alertId": self.alert_id,
            "portfolioId": self.portfolio_id,
            "severity": str(self.severity),
            "rule": self.rule,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "symbol": self.symbol,
            "createdAt": iso_ms(self.created_at_ms),
            "acknowledged": self.acknowledged,
        }


class AlertMonitor:
    """Owns alert state: for each (portfolio, rule), the alert of its current crossing, so each crossing alerts once.

    A rule alerts when its severity rises above the highest one alerted since it was last under its warning level:
    under → WARNING or under → CRITICAL is one alert, WARNING → CRITICAL another (an escalation). Staying over,
    or CRITICAL falling back to WARNING and rising again, alerts nothing (no flapping around the limit); a rule
    absent from an update (under its warning level, or not evaluable) is re-armed.
    """

    def __init__(self, alert_ids: Callable[[], str]):
        self._ids = alert_ids
        self._open: dict[str, dict[str, Alert]] = {}

    def update(self, portfolio_id: str, breaches: Iterable[Breach], *, now_ms: int) -> list[Alert]:
        """The new alerts for one portfolio, given every breach evaluate_limits found for it now."""
        current = {breach.rule: breach for breach in breaches}
        held = self._open.get(portfolio_id, {})
        kept: dict[str, Alert] = {}
        new = []
        for rule, breach in current.items():
            previous = held.get(rule)
            if previous is not None and _RANK[previous.severity] >= _RANK[breach.severity]:
                kept[rule] = previous
                continue
            alert = Alert(self._ids(), portfolio_id, breach.severity, rule, breach.metric, breach.value,
                          breach.threshold, breach.message, now_ms)
            kept[rule] = alert
            new.append(alert)
        if kept:
            self._open[portfolio_id] = kept
        else:
            self._open.pop(portfolio_id, None)
        return new

    def trigger_alert(self, trigger: LevelTrigger, *, now_ms: int) -> Alert:
        """An INFO alert for a stop-loss or take-profit level the price reached (OrderEngine's LevelTrigger)."""
        level_name = "stop-loss" if trigger.kind == "STOP_LOSS" else "take-profit"
        outcome = (f"market sell order {trigger.order_id} placed" if trigger.order_id is not None
                   else "no free shares to sell")
        message = (f"{level_name} on {trigger.symbol}: price {money_text(trigger.price_cents)} reached "
                   f"{money_text(trigger.level_cents)}; {outcome}")
        return Alert(self._ids(), trigger.portfolio_id, Severity.INFO, trigger.kind, "price",
                     cents_to_wire(trigger.price_cents), cents_to_wire(trigger.level_cents), message, now_ms,
                     symbol=trigger.symbol)

    def open_alerts(self) -> list[Alert]:
        """The alert of every crossing still open, by portfolio then rule: what to persist for restore."""
        return [alert for pid in sorted(self._open) for _, alert in sorted(self._open[pid].items())]

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Take back persisted open crossings (INFO alerts ignored; per rule the most severe wins)."""
        for alert in alerts:
            if alert.severity is Severity.INFO or alert.rule not in _WIRE_LIMITS:
                continue
            held = self._open.setdefault(alert.portfolio_id, {})
            previous = held.get(alert.rule)
            if previous is None or _RANK[alert.severity] > _RANK[previous.severity]:
                held[alert.rule] = alert

    def forget(self, portfolio_id: str) -> None:
        """Drop a portfolio's state (it was deleted)."""
        self._open.pop(portfolio_id, None)


# ----- pre-trade -------------------------------------------------------------------------------------------


def estimated_order_price(request: OrderRequest, quote: Quote) -> int:
    """The price an order's value is judged at: its limit price (LIMIT, STOP_LIMIT), else the ask for a buy
    (for a STOP buy the higher of the ask and the stop) and the bid for a sell."""
    if request.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and request.limit_price is not None:
        return request.limit_price
    if request.side is Side.BUY:
        if request.order_type is OrderType.STOP and request.stop_price is not None:
            return max(quote.ask, request.stop_price)
        return quote.ask
    return quote.bid


def pre_trade_check(
    limits_for: Callable[[str], RiskLimits], quotes: Callable[[], Mapping[str, Quote]]
) -> ExtraCheck:
    """An OrderEngine extra check rejecting RISK_LIMIT on maxOrderValue and maxPositionWeight.

    `limits_for(portfolio_id)` gives the portfolio's limits, `quotes()` the latest quotes (for the total value;
    the order's own quote is used for its symbol). Order value = quantity × estimated_order_price. Rejected when:
    - the order value exceeds maxOrderValue: "order value 30,000.00 exceeds maxOrderValue 25,000.00 by 5,000.00";
    - the order grows the position's size (a buy, or a sell deeper into a short) and |position value at the
      quote's price ± order value| / total value (cash included; unchanged by a trade at value) exceeds
      maxPositionWeight: "position ACME would be 31.25% of value, over maxPositionWeight 25.00% by 6.25%".
    Other open orders are not counted; the periodic limit evaluation sees what they add once they fill.
    """

    def check(ledger: PortfolioLedger, request: OrderRequest, quote: Quote) -> tuple[RejectReason, str] | None:
        limits = limits_for(ledger.portfolio_id)
        order_value = request.quantity * estimated_order_price(request, quote)
        cap = limits.max_order_value
        if cap is not None and order_value > cap:
            return RejectReason.RISK_LIMIT, (
                f"order value {money_text(order_value)} exceeds maxOrderValue {money_text(cap)} "
                f"by {money_text(order_value - cap)}"
            )
        weight_cap = limits.max_position_weight
        if weight_cap is None:
            return None
        held = ledger.positions.get(request.symbol)
        now = (held.quantity if held is not None else 0) * quote.price
        after = now + (order_value if request.side is Side.BUY else -order_value)
        if abs(after) <= abs(now):
            return None
        book = dict(quotes())
        book[request.symbol] = quote
        total = value_cents(ledger, book)
        if total <= 0:
            return None
        weight = Fraction(abs(after), total)
        if weight > Fraction(weight_cap):
            return RejectReason.RISK_LIMIT, (
                f"position {request.symbol} would be {_percent_text(weight)} of value, over maxPositionWeight "
                f"{_percent_text(weight_cap)} by {_percent_text(weight - Fraction(weight_cap))}"
            )
        return None

    return check
