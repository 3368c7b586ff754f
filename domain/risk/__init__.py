"""Portfolio risk: batch VaR/CVaR and exposure metrics, per-portfolio limits, alerts and the pre-trade check.

metrics (RiskModel, RiskMetrics, compute_metrics, rank_by_risk), limits (RiskLimits, the defaults, LimitRule,
evaluate_limits and its Breach), alerts (Alert, AlertMonitor), pretrade (pre_trade_check). The protocol's names
for all of these live in realtime.wire.risk.
"""

from domain.risk.alerts import Alert, AlertMonitor
from domain.risk.limits import (
    DEFAULT_LIMITS,
    DEFAULT_STARTING_CASH_CENTS,
    MAX_MONEY_LIMIT_CENTS,
    WARNING_FRACTION,
    Breach,
    LimitMetric,
    LimitRule,
    RiskLimits,
    Severity,
    default_limits,
    evaluate_limits,
    percent_text,
)
from domain.risk.metrics import (
    DEFAULT_LOOKBACK,
    MIN_SCENARIO_DAYS,
    RiskMetrics,
    RiskModel,
    RiskRank,
    compute_metrics,
    rank_by_risk,
)
from domain.risk.pretrade import pre_trade_check

__all__ = [
    "Alert",
    "AlertMonitor",
    "Breach",
    "LimitMetric",
    "LimitRule",
    "RiskLimits",
    "RiskMetrics",
    "RiskModel",
    "RiskRank",
    "Severity",
    "DEFAULT_LIMITS",
    "DEFAULT_LOOKBACK",
    "DEFAULT_STARTING_CASH_CENTS",
    "MAX_MONEY_LIMIT_CENTS",
    "MIN_SCENARIO_DAYS",
    "WARNING_FRACTION",
    "compute_metrics",
    "default_limits",
    "evaluate_limits",
    "percent_text",
    "pre_trade_check",
    "rank_by_risk",
]
