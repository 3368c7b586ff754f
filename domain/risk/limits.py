"""Risk limits: a portfolio's limits, the house defaults, and which limits its metrics are near or over (breaches)."""

import enum
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from domain.risk.metrics import RiskMetrics

__all__ = [
    "Severity",
    "LimitRule",
    "LimitMetric",
    "RiskLimits",
    "Breach",
    "DEFAULT_STARTING_CASH_CENTS",
    "DEFAULT_LIMITS",
    "MAX_MONEY_LIMIT_CENTS",
    "WARNING_FRACTION",
    "default_limits",
    "evaluate_limits",
    "percent_text",
]

DEFAULT_STARTING_CASH_CENTS = 10_000_000  # 100,000.00, the protocol's default starting cash
WARNING_FRACTION = Decimal("0.8")  # a metric at or above 80 % of its limit is a WARNING
MAX_MONEY_LIMIT_CENTS = 10**14  # 1,000,000,000,000.00: anything larger is a typo, not a limit


class Severity(enum.StrEnum):
    """How loud a breach or RISK_ALERT is: INFO (a stop-loss / take-profit trigger), WARNING (near a limit),
    CRITICAL (over it)."""

    INFO = "INFO"
    WARNING = "WARNING"
    CRITICAL = "CRITICAL"

    @property
    def rank(self) -> int:
        """INFO 0 < WARNING 1 < CRITICAL 2: an alert escalates when the rank rises."""
        return _RANK[self]


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class LimitRule(enum.Enum):
    """One of a portfolio's risk limits, in the order they are evaluated; its value names the RiskLimits attribute."""

    MAX_POSITION_WEIGHT = "max_position_weight"
    MAX_SECTOR_WEIGHT = "max_sector_weight"
    MAX_DAILY_LOSS = "max_daily_loss"
    MAX_DRAWDOWN = "max_drawdown"
    MAX_VAR95 = "max_var95"
    MAX_ORDER_VALUE = "max_order_value"

    @property
    def is_money(self) -> bool:
        """True for a limit in integer cents, False for a weight (a Decimal fraction of the portfolio's value)."""
        return self in _MONEY_RULES


_MONEY_RULES = frozenset({LimitRule.MAX_DAILY_LOSS, LimitRule.MAX_VAR95, LimitRule.MAX_ORDER_VALUE})


class LimitMetric(enum.Enum):
    """The figure a limit is compared with: a RiskMetrics attribute, or the day's loss (−daily_pnl)."""

    LARGEST_POSITION_WEIGHT = "largest_position_weight"
    SECTOR_EXPOSURE = "sector_exposure"  # the largest |sector weight|
    DAILY_LOSS = "daily_loss"
    CURRENT_DRAWDOWN = "current_drawdown"
    VAR95 = "var95"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """One portfolio's risk limits: weights are Decimal fractions of total value (cash included), money is integer
    cents, None means no limit.

    max_position_weight bounds largest_position_weight (and, pre-trade, a buy's resulting weight),
    max_sector_weight the largest |sector weight|, max_daily_loss the day's loss (−daily_pnl), max_drawdown
    current_drawdown, max_var95 the one-day historical var95, max_order_value an order's estimated value
    (pre-trade only). A float weight given to the constructor is read through its repr, so 0.25 is Decimal("0.25").
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


def default_limits(starting_cash_cents: int = DEFAULT_STARTING_CASH_CENTS) -> RiskLimits:
    """The house defaults for a portfolio that started with `starting_cash_cents`.

    Position weight 0.25, sector weight 0.50, drawdown 0.20; daily loss and VaR 95 5 % of the starting cash,
    order value 25 % of it (5,000.00, 5,000.00 and 25,000.00 for the default 100,000.00).
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

_HUNDREDTH = Decimal("0.01")


def percent_text(fraction: Fraction | Decimal) -> str:
    """An exact fraction as a percentage to 2 dp (half-even), for messages: 0.3125 -> "31.25%"."""
    if isinstance(fraction, Decimal):
        return f"{(fraction * 100).quantize(_HUNDREDTH, rounding=ROUND_HALF_EVEN)}%"
    basis_points = round(fraction * 10_000)
    return f"{Decimal(basis_points).scaleb(-2):.2f}%"


@dataclass(frozen=True, slots=True)
class Breach:
    """One limit a portfolio's metric is near (WARNING, at or above WARNING_FRACTION of it) or over (CRITICAL).

    `value` and `threshold` are exact and in the limit's units: integer cents for a money rule, a Decimal fraction
    for a weight (the metric's 4-dp figure). `subject` is the position's symbol (largest position weight, None when
    flat) or the sector (sector weight); None for the other rules.
    """

    rule: LimitRule
    metric: LimitMetric
    subject: str | None
    value: int | Decimal
    threshold: int | Decimal
    severity: Severity


def _breach(rule, metric, subject, value, limit, warning_fraction) -> Breach | None:
    """Compare in exact decimals (money in cents); None when under the warning level."""
    if value < float(limit) * float(warning_fraction) * (1 - 1e-9):  # clearly under: skip the exact arithmetic
        return None
    bound = Decimal(limit)
    exact = Decimal(value) if rule.is_money else Decimal(str(value))
    if exact > bound:
        severity = Severity.CRITICAL
    elif exact >= bound * warning_fraction:
        severity = Severity.WARNING
    else:
        return None
    return Breach(rule, metric, subject, value if rule.is_money else exact, limit, severity)


def evaluate_limits(
    metrics: RiskMetrics, limits: RiskLimits, *, warning_fraction: Decimal = WARNING_FRACTION
) -> list[Breach]:
    """Every limit one portfolio's metrics are near or over, in LimitRule order.

    Position weight vs largest_position_weight, sector weight vs the largest |sector weight| in sector_exposure
    (ties: the last sector by name), daily loss vs −daily_pnl, drawdown vs current_drawdown, VaR vs var95.
    CRITICAL when the metric is over the limit (>), WARNING when at or above warning_fraction × limit. Figures are
    compared as reported (4 dp, cents). A metric that is None or a limit that is None is skipped; the order value
    limit only applies pre-trade.
    """
    out = []

    def consider(rule, metric, subject, value, limit):
        if value is not None and limit is not None:
            breach = _breach(rule, metric, subject, value, limit, warning_fraction)
            if breach is not None:
                out.append(breach)

    consider(LimitRule.MAX_POSITION_WEIGHT, LimitMetric.LARGEST_POSITION_WEIGHT, metrics.largest_position_symbol,
             metrics.largest_position_weight, limits.max_position_weight)
    sectors = metrics.sector_exposure
    if sectors:
        sector = max(sectors, key=lambda name: (abs(sectors[name]), name))
        consider(LimitRule.MAX_SECTOR_WEIGHT, LimitMetric.SECTOR_EXPOSURE, sector, abs(sectors[sector]),
                 limits.max_sector_weight)
    consider(LimitRule.MAX_DAILY_LOSS, LimitMetric.DAILY_LOSS, None, -metrics.daily_pnl, limits.max_daily_loss)
    consider(LimitRule.MAX_DRAWDOWN, LimitMetric.CURRENT_DRAWDOWN, None, metrics.current_drawdown,
             limits.max_drawdown)
    consider(LimitRule.MAX_VAR95, LimitMetric.VAR95, None, metrics.var95, limits.max_var95)
    return out
