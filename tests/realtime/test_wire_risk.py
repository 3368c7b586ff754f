"""The risk family's protocol objects, byte for byte: Metrics, Limits, breaches, alerts, ranking, SET_RISK_LIMITS."""

from dataclasses import replace
from decimal import Decimal

import pytest

from domain.errors import BadRequest
from domain.market import Quote
from domain.orders import LevelTrigger
from domain.risk import (
    DEFAULT_LIMITS,
    AlertMonitor,
    Breach,
    LimitMetric,
    LimitRule,
    RiskLimits,
    RiskMetrics,
    RiskModel,
    Severity,
    compute_metrics,
    evaluate_limits,
    rank_by_risk,
)
from domain.trading import IdSequence, PortfolioLedger, Position
from realtime.protocol import encode_data
from realtime.wire import risk as wire

TECH, ENERGY = "Technology", "Energy"

METRICS = RiskMetrics(
    var95=100_000, var99=150_000, cvar95=120_000, var_parametric95=110_000, var_parametric99=160_000,
    volatility=0.12, beta=1.0, max_drawdown=0.0, current_drawdown=0.0, gross_exposure=5_000_000,
    net_exposure=5_000_000, leverage=0.5, largest_position_weight=0.1, largest_position_symbol="A",
    concentration_hhi=0.2, sector_exposure={TECH: 0.1}, daily_pnl=0, total_value=10_000_000, lookback_days=250,
)


def metrics_with(**overrides) -> RiskMetrics:
    return replace(METRICS, **overrides)


def quote(symbol: str, price: int, previous_close: int, sector: str) -> Quote:
    return Quote(symbol=symbol, name=symbol, sector=sector, price=price, bid=price - 1, ask=price + 1, bid_size=100,
                 ask_size=100, open=previous_close, high=price, low=price, previous_close=previous_close, volume=0,
                 time=0, market_time=0, version=1)


# ----- Metrics ---------------------------------------------------------------------------------------------


def test_the_hand_checked_portfolios_metrics_object():
    # Two symbols over five days (tests/domain/test_risk.py works every figure out by hand): 100 A at 200.00,
    # 400 B at 100.00, cash 40,000.00.
    model = RiskModel.from_returns(["A", "B"], {"A": [0.01, -0.02, 0.03, -0.01, 0.00],
                                                "B": [0.02, 0.01, -0.04, 0.00, 0.01]},
                                   [0.02, -0.01, -0.01, 0.00, 0.00], lookback=5)
    quotes = {"A": quote("A", 20_000, 20_200, TECH), "B": quote("B", 10_000, 10_100, ENERGY)}
    book = PortfolioLedger("P1", "u1", "P1", 10_000_000, 4_000_000,
                           positions={"A": Position("A", 100), "B": Position("B", 400)})
    [m] = compute_metrics(model, [book], quotes, {"A": TECH, "B": ENERGY}, value_histories={},
                          day_start_values={}, periods_per_year=100).values()
    assert wire.metrics(m) == {
        "var95": 1000.0, "var99": 1000.0, "cvar95": 1000.0, "varParametric95": 1217.64, "varParametric99": 1722.13,
        "volatility": 0.074, "beta": 0.5, "maxDrawdown": 0.0, "currentDrawdown": 0.0, "grossExposure": 60000.0,
        "netExposure": 60000.0, "leverage": 0.6, "largestPositionWeight": 0.4, "largestPositionSymbol": "B",
        "concentrationHHI": 0.5556, "sectorExposure": {"Energy": 0.4, "Technology": 0.2}, "dailyPnL": -600.0,
        "totalValue": 100000.0, "lookbackDays": 5,
    }


def test_metrics_keep_the_protocols_key_order_cents_as_currency_and_null_where_undefined():
    m = metrics_with(var95=None, var99=None, cvar95=None, var_parametric95=None, var_parametric99=None,
                     volatility=None, beta=None, leverage=None, largest_position_weight=None,
                     largest_position_symbol=None, concentration_hhi=None, sector_exposure={}, gross_exposure=0,
                     net_exposure=-123_456, daily_pnl=-1, total_value=-1_000_005, current_drawdown=0.0909)
    assert encode_data(wire.metrics(m)) == (
        '{"var95":null,"var99":null,"cvar95":null,"varParametric95":null,"varParametric99":null,'
        '"volatility":null,"beta":null,"maxDrawdown":0.0,"currentDrawdown":0.0909,"grossExposure":0.0,'
        '"netExposure":-1234.56,"leverage":null,"largestPositionWeight":null,"largestPositionSymbol":null,'
        '"concentrationHHI":null,"sectorExposure":{},"dailyPnL":-0.01,"totalValue":-10000.05,"lookbackDays":250}'
    )
    assert encode_data(wire.metrics(metrics_with(sector_exposure={ENERGY: -0.55, TECH: 0.2}))) == (
        '{"var95":1000.0,"var99":1500.0,"cvar95":1200.0,"varParametric95":1100.0,"varParametric99":1600.0,'
        '"volatility":0.12,"beta":1.0,"maxDrawdown":0.0,"currentDrawdown":0.0,"grossExposure":50000.0,'
        '"netExposure":50000.0,"leverage":0.5,"largestPositionWeight":0.1,"largestPositionSymbol":"A",'
        '"concentrationHHI":0.2,"sectorExposure":{"Energy":-0.55,"Technology":0.2},"dailyPnL":0.0,'
        '"totalValue":100000.0,"lookbackDays":250}'
    )


# ----- Limits ----------------------------------------------------------------------------------------------


def test_limits_object_has_weights_as_fractions_and_money_as_currency():
    assert wire.limits(DEFAULT_LIMITS) == {
        "maxPositionWeight": 0.25, "maxSectorWeight": 0.5, "maxDailyLoss": 5000.0, "maxDrawdown": 0.2,
        "maxVar95": 5000.0, "maxOrderValue": 25000.0,
    }
    assert list(wire.limits(DEFAULT_LIMITS)) == list(wire.RULE_NAMES.values())
    assert wire.limits(RiskLimits()) == dict.fromkeys(wire.limits(DEFAULT_LIMITS))
    assert encode_data(wire.limits(RiskLimits(max_drawdown=Decimal("0.07"), max_order_value=1))) == (
        '{"maxPositionWeight":null,"maxSectorWeight":null,"maxDailyLoss":null,"maxDrawdown":0.07,"maxVar95":null,'
        '"maxOrderValue":0.01}'
    )


def test_parse_limits_applies_only_the_given_keys_and_null_removes_a_limit():
    limits = wire.parse_limits({"maxPositionWeight": 0.3, "maxDailyLoss": 1234.565, "maxVar95": None}, DEFAULT_LIMITS)
    assert limits.max_position_weight == Decimal("0.3")
    assert limits.max_daily_loss == 123_456  # rounded half-even to cents
    assert limits.max_var95 is None
    assert limits.max_sector_weight == DEFAULT_LIMITS.max_sector_weight
    assert limits.max_order_value == DEFAULT_LIMITS.max_order_value
    assert wire.parse_limits({}, DEFAULT_LIMITS) == DEFAULT_LIMITS
    assert wire.parse_limits(wire.limits(DEFAULT_LIMITS), RiskLimits()) == DEFAULT_LIMITS
    assert wire.parse_limits({"maxDrawdown": 1, "maxOrderValue": 10}, RiskLimits()).max_order_value == 1_000
    assert wire.parse_limits({"maxOrderValue": 1e12}, RiskLimits()).max_order_value == 10**14
    assert wire.parse_limits({"maxOrderValue": 0.015}, RiskLimits()).max_order_value == 2


ALL_LIMITS = "maxPositionWeight, maxSectorWeight, maxDailyLoss, maxDrawdown, maxVar95, maxOrderValue"


@pytest.mark.parametrize(("data", "message"), [
    ({"maxPositionWeight": -0.1}, "maxPositionWeight must be positive (null removes the limit)"),
    ({"maxDailyLoss": 0}, "maxDailyLoss must be positive (null removes the limit)"),
    ({"maxDrawdown": float("nan")}, "maxDrawdown must be a finite number"),
    ({"maxVar95": float("inf")}, "maxVar95 must be a finite number"),
    ({"maxSectorWeight": 1.5},
     "maxSectorWeight is a fraction of the portfolio's value (0.25 is 25 %) and must be at most 1"),
    ({"maxPositionWeight": 25},
     "maxPositionWeight is a fraction of the portfolio's value (0.25 is 25 %) and must be at most 1"),
    ({"maxOrderValue": 1e300}, "maxOrderValue must be at most 1,000,000,000,000.00"),
    ({"maxOrderValue": 1e12 + 0.01}, "maxOrderValue must be at most 1,000,000,000,000.00"),
    ({"maxOrderValue": 0.001}, "maxOrderValue must be at least 0.01"),
    ({"maxOrderValue": 0.005}, "maxOrderValue must be at least 0.01"),
    ({"maxLeverage": 2}, f"unknown risk limit 'maxLeverage'; the limits are {ALL_LIMITS}"),
    ({"maxVar95": 5, "zzz": 1, "aaa": 2}, f"unknown risk limit 'aaa'; the limits are {ALL_LIMITS}"),
    ({"maxDrawdown": True}, "maxDrawdown must be a number or null"),
    ({"maxDrawdown": "0.2"}, "maxDrawdown must be a number or null"),
    ({"maxDrawdown": [0.2]}, "maxDrawdown must be a number or null"),
    ([("maxDrawdown", 0.2)], "limits must be an object"),
    (None, "limits must be an object"),
])
def test_parse_limits_refuses_hostile_values_and_changes_nothing(data, message):
    with pytest.raises(BadRequest) as caught:
        wire.parse_limits(data, DEFAULT_LIMITS)
    assert caught.value.message == message
    assert caught.value.code == "BAD_REQUEST"


# ----- breaches --------------------------------------------------------------------------------------------


def test_a_warning_and_a_critical_breach_say_how_near_or_how_far_over():
    limits = RiskLimits(max_drawdown=Decimal("0.20"))
    [warning] = evaluate_limits(metrics_with(current_drawdown=0.16), limits)
    assert wire.breach(warning) == {"rule": "maxDrawdown", "metric": "currentDrawdown", "value": 0.16,
                                    "threshold": 0.2, "severity": "WARNING",
                                    "message": "drawdown 16.00% is at 80% of maxDrawdown 20.00%"}
    [critical] = evaluate_limits(metrics_with(current_drawdown=0.2001), limits)
    assert wire.breach(critical) == {"rule": "maxDrawdown", "metric": "currentDrawdown", "value": 0.2001,
                                     "threshold": 0.2, "severity": "CRITICAL",
                                     "message": "drawdown 20.01% is over maxDrawdown 20.00% by 0.01%"}


def test_each_breach_names_its_limit_and_metric_as_the_protocol_does():
    metrics = metrics_with(var95=520_000, largest_position_weight=0.31, largest_position_symbol="B",
                           sector_exposure={TECH: 0.2, ENERGY: -0.55}, daily_pnl=-410_000, current_drawdown=0.05)
    assert [wire.breach(b) for b in evaluate_limits(metrics, DEFAULT_LIMITS)] == [
        {"rule": "maxPositionWeight", "metric": "largestPositionWeight", "value": 0.31, "threshold": 0.25,
         "severity": "CRITICAL", "message": "position B weight 31.00% is over maxPositionWeight 25.00% by 6.00%"},
        {"rule": "maxSectorWeight", "metric": "sectorExposure", "value": 0.55, "threshold": 0.5,
         "severity": "CRITICAL", "message": "sector Energy weight 55.00% is over maxSectorWeight 50.00% by 5.00%"},
        {"rule": "maxDailyLoss", "metric": "dailyLoss", "value": 4100.0, "threshold": 5000.0,
         "severity": "WARNING", "message": "daily loss 4,100.00 is at 82% of maxDailyLoss 5,000.00"},
        {"rule": "maxVar95", "metric": "var95", "value": 5200.0, "threshold": 5000.0,
         "severity": "CRITICAL", "message": "one-day VaR 95% 5,200.00 is over maxVar95 5,000.00 by 200.00"},
    ]


def test_a_position_breach_without_a_symbol_names_the_largest_position():
    flat = Breach(LimitRule.MAX_POSITION_WEIGHT, LimitMetric.LARGEST_POSITION_WEIGHT, None, Decimal("0.3125"),
                  Decimal("0.25"), Severity.CRITICAL)
    assert wire.breach_message(flat) == "largest position weight 31.25% is over maxPositionWeight 25.00% by 6.25%"
    held = replace(flat, subject="NVTX")
    assert wire.breach_message(held) == "position NVTX weight 31.25% is over maxPositionWeight 25.00% by 6.25%"


def test_every_rule_and_metric_has_its_protocol_name():
    assert list(wire.RULE_NAMES) == list(LimitRule)
    assert list(wire.METRIC_NAMES) == list(LimitMetric)
    assert wire.METRIC_NAMES[LimitMetric.DAILY_LOSS] == "dailyLoss"


# ----- alerts ----------------------------------------------------------------------------------------------


def test_a_limit_alert_carries_its_breach():
    monitor = AlertMonitor(IdSequence("A"))
    breaches = evaluate_limits(metrics_with(current_drawdown=0.25), RiskLimits(max_drawdown=Decimal("0.20")))
    [alert] = monitor.update("P1", breaches, now_ms=2_000)
    assert wire.alert(alert) == {
        "alertId": "A1", "portfolioId": "P1", "severity": "CRITICAL", "rule": "maxDrawdown",
        "metric": "currentDrawdown", "value": 0.25, "threshold": 0.2,
        "message": "drawdown 25.00% is over maxDrawdown 20.00% by 5.00%", "symbol": None,
        "createdAt": "1970-01-01T00:00:02.000Z", "acknowledged": False,
    }
    assert list(wire.alert(alert)) == ["alertId", "portfolioId", "severity", "rule", "metric", "value", "threshold",
                                       "message", "symbol", "createdAt", "acknowledged"]


def test_a_money_limit_alert_is_in_currency():
    monitor = AlertMonitor(IdSequence("A"))
    [alert] = monitor.update("P1", evaluate_limits(metrics_with(daily_pnl=-2_250_000), DEFAULT_LIMITS), now_ms=3)
    data = wire.alert(alert)
    assert (data["rule"], data["metric"], data["value"], data["threshold"]) == (
        "maxDailyLoss", "dailyLoss", 22500.0, 5000.0)
    assert data["message"] == "daily loss 22,500.00 is over maxDailyLoss 5,000.00 by 17,500.00"


def test_stop_loss_and_take_profit_alerts_name_the_symbol_and_the_order():
    monitor = AlertMonitor(IdSequence("A"))
    stop = monitor.trigger_alert(LevelTrigger("P1", "u1", "ACME", "STOP_LOSS", 9_550, 9_500, "O7"), now_ms=1_500)
    assert wire.alert(stop) == {
        "alertId": "A1", "portfolioId": "P1", "severity": "INFO", "rule": "STOP_LOSS", "metric": "price",
        "value": 95.0, "threshold": 95.5, "symbol": "ACME", "createdAt": "1970-01-01T00:00:01.500Z",
        "acknowledged": False, "message": "stop-loss on ACME: price 95.00 reached 95.50; market sell order O7 placed",
    }
    take = monitor.trigger_alert(LevelTrigger("P1", "u1", "ACME", "TAKE_PROFIT", 120_000, 120_100, None), now_ms=2)
    assert wire.alert(take)["message"] == "take-profit on ACME: price 1,201.00 reached 1,200.00; no free shares to sell"
    assert (wire.alert(take)["rule"], wire.alert(take)["value"]) == ("TAKE_PROFIT", 1201.0)


# ----- ranking, snapshot, update ---------------------------------------------------------------------------


def test_the_ranking_lists_each_portfolio_with_its_metrics_riskiest_first():
    calm, wild = metrics_with(var95=50_000), metrics_with(var95=300_000, total_value=5_000_000)
    broke = metrics_with(var95=10_000, total_value=0)
    ranking = wire.ranking(rank_by_risk({"calm": calm, "wild": wild, "broke": broke}), 1_764_126_000_123)
    assert ranking == {
        "entries": [
            {"rank": 1, "portfolioId": "wild", "relativeVar95": 0.06, "metrics": wire.metrics(wild)},
            {"rank": 2, "portfolioId": "calm", "relativeVar95": 0.005, "metrics": wire.metrics(calm)},
            {"rank": 3, "portfolioId": "broke", "relativeVar95": None, "metrics": wire.metrics(broke)},
        ],
        "timestamp": "2025-11-26T03:00:00.123Z",
    }
    assert wire.ranking([], 0) == {"entries": [], "timestamp": "1970-01-01T00:00:00.000Z"}


def test_snapshot_and_update_carry_metrics_limits_and_breaches():
    breaches = evaluate_limits(metrics_with(current_drawdown=0.25), DEFAULT_LIMITS)
    stored = [{"alertId": "A1"}]
    assert wire.snapshot("P1", METRICS, DEFAULT_LIMITS, breaches, stored) == {
        "portfolioId": "P1", "metrics": wire.metrics(METRICS), "limits": wire.limits(DEFAULT_LIMITS),
        "breaches": [wire.breach(breaches[0])], "alerts": stored,
    }
    assert wire.snapshot("P2", None, RiskLimits(), [], []) == {
        "portfolioId": "P2", "metrics": {}, "limits": wire.limits(RiskLimits()), "breaches": [], "alerts": []}
    assert wire.update("P1", METRICS, breaches) == {
        "portfolioId": "P1", "metrics": wire.metrics(METRICS), "breaches": [wire.breach(breaches[0])]}
