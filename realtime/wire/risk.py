"""The risk family on the wire: Metrics, Limits, breaches, RISK_ALERT, the class ranking, and SET_RISK_LIMITS parsing.

The domain names limits and metrics with LimitRule and LimitMetric; the protocol's names for them are here, and so
are the breach and alert messages, because they name a limit the way a student sets it ("maxDrawdown").
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal

from domain.errors import BadRequest
from domain.money import money_text
from domain.orders import LevelTrigger
from domain.risk import (
    MAX_MONEY_LIMIT_CENTS,
    Alert,
    Breach,
    LimitMetric,
    LimitRule,
    RiskLimits,
    RiskMetrics,
    RiskRank,
    Severity,
    percent_text,
)
from realtime.wire import iso_ms, money

__all__ = [
    "RULE_NAMES",
    "METRIC_NAMES",
    "metrics",
    "limits",
    "parse_limits",
    "breach",
    "breach_message",
    "alert",
    "ranking",
    "snapshot",
    "update",
]

RULE_NAMES = {  # the Limits object's keys, in its order
    LimitRule.MAX_POSITION_WEIGHT: "maxPositionWeight",
    LimitRule.MAX_SECTOR_WEIGHT: "maxSectorWeight",
    LimitRule.MAX_DAILY_LOSS: "maxDailyLoss",
    LimitRule.MAX_DRAWDOWN: "maxDrawdown",
    LimitRule.MAX_VAR95: "maxVar95",
    LimitRule.MAX_ORDER_VALUE: "maxOrderValue",
}
METRIC_NAMES = {  # a breach's `metric`: a Metrics key, or "dailyLoss" (−dailyPnL), which is none
    LimitMetric.LARGEST_POSITION_WEIGHT: "largestPositionWeight",
    LimitMetric.SECTOR_EXPOSURE: "sectorExposure",
    LimitMetric.DAILY_LOSS: "dailyLoss",
    LimitMetric.CURRENT_DRAWDOWN: "currentDrawdown",
    LimitMetric.VAR95: "var95",
}
_RULES_BY_NAME = {name: rule for rule, name in RULE_NAMES.items()}
_LABELS = {  # how a breach message names the metric; the two weights also name their position or sector
    LimitMetric.DAILY_LOSS: "daily loss",
    LimitMetric.CURRENT_DRAWDOWN: "drawdown",
    LimitMetric.VAR95: "one-day VaR 95%",
}


def _cents(cents: int | None) -> float | None:
    """Whole cents as currency: cents / 100 is the float the protocol has always carried."""
    return None if cents is None else cents / 100


def metrics(m: RiskMetrics) -> dict:
    """The protocol's Metrics object (money as currency, ratios 4 dp, null where undefined)."""
    return {
        "var95": _cents(m.var95),
        "var99": _cents(m.var99),
        "cvar95": _cents(m.cvar95),
        "varParametric95": _cents(m.var_parametric95),
        "varParametric99": _cents(m.var_parametric99),
        "volatility": m.volatility,
        "beta": m.beta,
        "maxDrawdown": m.max_drawdown,
        "currentDrawdown": m.current_drawdown,
        "grossExposure": m.gross_exposure / 100,
        "netExposure": m.net_exposure / 100,
        "leverage": m.leverage,
        "largestPositionWeight": m.largest_position_weight,
        "largestPositionSymbol": m.largest_position_symbol,
        "concentrationHHI": m.concentration_hhi,
        "sectorExposure": dict(m.sector_exposure),
        "dailyPnL": m.daily_pnl / 100,
        "totalValue": m.total_value / 100,
        "lookbackDays": m.lookback_days,
    }


def _weight(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _limit_number(rule: LimitRule, value: int | Decimal) -> float:
    """A limit, or a figure compared with one, in the protocol's units: currency for money, a fraction for weights."""
    return money(value) if rule.is_money else float(value)


def limits(risk_limits: RiskLimits) -> dict:
    """The protocol's Limits object: weights as fractions, money as currency numbers, null for no limit."""
    return {
        "maxPositionWeight": _weight(risk_limits.max_position_weight),
        "maxSectorWeight": _weight(risk_limits.max_sector_weight),
        "maxDailyLoss": money(risk_limits.max_daily_loss),
        "maxDrawdown": _weight(risk_limits.max_drawdown),
        "maxVar95": money(risk_limits.max_var95),
        "maxOrderValue": money(risk_limits.max_order_value),
    }


def _parse_limit(key: str, rule: LimitRule, value: object) -> Decimal | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise BadRequest(f"{key} must be a number or null")
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise BadRequest(f"{key} must be a finite number")
    if number <= 0:
        raise BadRequest(f"{key} must be positive (null removes the limit)")
    if not rule.is_money:
        if number > 1:
            raise BadRequest(f"{key} is a fraction of the portfolio's value (0.25 is 25 %) and must be at most 1")
        return number
    if number * 100 > MAX_MONEY_LIMIT_CENTS:  # before quantize, which cannot hold 1e300
        raise BadRequest(f"{key} must be at most {money_text(MAX_MONEY_LIMIT_CENTS)}")
    cents = (number * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    if cents < 1:
        raise BadRequest(f"{key} must be at least 0.01")
    return int(cents)


def parse_limits(data: object, current: RiskLimits) -> RiskLimits:
    """`current` with the limits given in a SET_RISK_LIMITS `limits` object applied; keys left out stay as they are.

    Weights are fractions in (0, 1]; money is currency, rounded half-even to cents, from 0.01 to 1e12; null removes
    a limit. BadRequest (nothing applied) for a non-object, an unknown key, a non-number, NaN or infinity, zero or
    a negative value, a weight over 1, or money out of range.
    """
    if not isinstance(data, Mapping):
        raise BadRequest("limits must be an object")
    unknown = sorted(str(key) for key in data if key not in _RULES_BY_NAME)
    if unknown:
        raise BadRequest(f"unknown risk limit {unknown[0]!r}; the limits are {', '.join(RULE_NAMES.values())}")
    changes = {}
    for key, value in data.items():
        rule = _RULES_BY_NAME[key]
        changes[rule.value] = _parse_limit(key, rule, value)
    return replace(current, **changes)


def _label(b: Breach) -> str:
    if b.metric is LimitMetric.LARGEST_POSITION_WEIGHT:
        return f"position {b.subject} weight" if b.subject else "largest position weight"
    if b.metric is LimitMetric.SECTOR_EXPOSURE:
        return f"sector {b.subject} weight"
    return _LABELS[b.metric]


def breach_message(b: Breach) -> str:
    """What a breach says, naming the limit by its protocol name.

    "position NVTX weight 31.25% is over maxPositionWeight 25.00% by 6.25%" (CRITICAL);
    "daily loss 4,100.00 is at 82% of maxDailyLoss 5,000.00" (WARNING).
    """
    text = money_text if b.rule.is_money else percent_text
    rule = RULE_NAMES[b.rule]
    exact, bound = Decimal(b.value), Decimal(b.threshold)
    if b.severity is Severity.CRITICAL:
        return f"{_label(b)} {text(exact)} is over {rule} {text(bound)} by {text(exact - bound)}"
    share = (exact / bound * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return f"{_label(b)} {text(exact)} is at {share}% of {rule} {text(bound)}"


def breach(b: Breach) -> dict:
    """A breach as RISK_SNAPSHOT and RISK_UPDATE list it."""
    return {"rule": RULE_NAMES[b.rule], "metric": METRIC_NAMES[b.metric], "value": _limit_number(b.rule, b.value),
            "threshold": _limit_number(b.rule, b.threshold), "severity": str(b.severity),
            "message": breach_message(b)}


def _trigger_message(t: LevelTrigger) -> str:
    level_name = "stop-loss" if t.kind == "STOP_LOSS" else "take-profit"
    outcome = f"market sell order {t.order_id} placed" if t.order_id is not None else "no free shares to sell"
    return (f"{level_name} on {t.symbol}: price {money_text(t.price_cents)} reached "
            f"{money_text(t.level_cents)}; {outcome}")


def alert(a: Alert) -> dict:
    """The RISK_ALERT object (also what storage keeps): a limit crossing, or a trigger with its symbol."""
    cause = a.cause
    if isinstance(cause, Breach):
        rule, metric = RULE_NAMES[cause.rule], METRIC_NAMES[cause.metric]
        value, threshold = _limit_number(cause.rule, cause.value), _limit_number(cause.rule, cause.threshold)
        message, symbol = breach_message(cause), None
    else:
        rule, metric = str(cause.kind), "price"
        value, threshold = money(cause.price_cents), money(cause.level_cents)
        message, symbol = _trigger_message(cause), cause.symbol
    return {
        "alertId": a.alert_id,
        "portfolioId": a.portfolio_id,
        "severity": str(a.severity),
        "rule": rule,
        "metric": metric,
        "value": value,
        "threshold": threshold,
        "message": message,
        "symbol": symbol,
        "createdAt": iso_ms(a.created_at_ms),
        "acknowledged": a.acknowledged,
    }


def ranking(entries: Iterable[RiskRank], now_ms: int) -> dict:
    """RISK_RANKING: the class-wide view, riskiest first."""
    return {
        "entries": [{"rank": e.rank, "portfolioId": e.portfolio_id, "relativeVar95": e.relative_var95,
                     "metrics": metrics(e.metrics)} for e in entries],
        "timestamp": iso_ms(now_ms),
    }


def snapshot(portfolio_id: str, m: RiskMetrics | None, risk_limits: RiskLimits, breaches: Sequence[Breach],
             alerts: list[dict]) -> dict:
    """RISK_SNAPSHOT; `alerts` are the stored RISK_ALERT objects, metrics {} when there are none yet."""
    return {"portfolioId": portfolio_id, "metrics": {} if m is None else metrics(m), "limits": limits(risk_limits),
            "breaches": [breach(b) for b in breaches], "alerts": alerts}


def update(portfolio_id: str, m: RiskMetrics, breaches: Sequence[Breach]) -> dict:
    """RISK_UPDATE: one portfolio's latest metrics and breaches."""
    return {"portfolioId": portfolio_id, "metrics": metrics(m), "breaches": [breach(b) for b in breaches]}
