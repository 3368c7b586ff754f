"""Risk metrics, limits, alerts and the pre-trade check against figures worked out by hand and direct computations."""

import math
import random
import statistics
from decimal import Decimal

import numpy as np
import pytest

from domain.errors import BadRequest
from domain.market import MarketSimulator, Quote
from domain.orders import LevelTrigger, OrderEngine
from domain.risk import (
    DEFAULT_LIMITS,
    Alert,
    AlertMonitor,
    Breach,
    RiskLimits,
    RiskModel,
    Severity,
    compute_metrics,
    default_limits,
    evaluate_limits,
    limits_from_wire,
    pre_trade_check,
    rank_by_risk,
)
from domain.trading import EventKind, IdSequence, OrderRequest, OrderType, PortfolioLedger, Position, RejectReason, Side

TECH, ENERGY = "Technology", "Energy"
SECTORS = {"A": TECH, "B": ENERGY}

# The tiny market of the hand-checked examples: two symbols, five days, and the index.
RETURNS = {
    "A": [0.01, -0.02, 0.03, -0.01, 0.00],
    "B": [0.02, 0.01, -0.04, 0.00, 0.01],
}
INDEX = [0.02, -0.01, -0.01, 0.00, 0.00]


def quote(symbol: str, price: int, previous_close: int | None = None, *, sector: str = TECH,
          bid: int | None = None, ask: int | None = None) -> Quote:
    previous_close = price if previous_close is None else previous_close
    return Quote(
        symbol=symbol, name=symbol, sector=sector, price=price, bid=price - 1 if bid is None else bid,
        ask=price + 1 if ask is None else ask, bid_size=100, ask_size=100, open=previous_close, high=price,
        low=price, previous_close=previous_close, volume=0, time=0, market_time=0, version=1,
    )


def ledger(pid: str, cash: int, holdings: dict[str, int], *, starting: int = 10_000_000) -> PortfolioLedger:
    """A ledger holding `holdings` (symbol -> shares); cost basis is irrelevant to risk, so it is 0."""
    positions = {symbol: Position(symbol, quantity) for symbol, quantity in holdings.items()}
    return PortfolioLedger(pid, "u1", pid, starting, cash, positions=positions)


def tiny_model(lookback: int = 5) -> RiskModel:
    return RiskModel.from_returns(["A", "B"], RETURNS, INDEX, lookback=lookback)


def tiny_quotes() -> dict[str, Quote]:
    # A at 200.00 (closed yesterday at 202.00), B at 100.00 (closed at 101.00)
    return {"A": quote("A", 20_000, 20_200, sector=TECH), "B": quote("B", 10_000, 10_100, sector=ENERGY)}


def long_book() -> PortfolioLedger:
    # 100 A × 200.00 = 20,000.00; 400 B × 100.00 = 40,000.00; cash 40,000.00; total 100,000.00
    return ledger("P1", 4_000_000, {"A": 100, "B": 400})


def metrics_of(*ledgers: PortfolioLedger, model: RiskModel | None = None, quotes=None, histories=None,
               day_starts=None, periods_per_year: float = 100) -> dict[str, dict]:
    return compute_metrics(
        model or tiny_model(), list(ledgers), tiny_quotes() if quotes is None else quotes, SECTORS,
        value_histories=histories or {}, day_start_values=day_starts or {}, periods_per_year=periods_per_year,
    )


# ----- metrics on the hand-checked example -------------------------------------------------------------------


def test_historical_var_cvar_and_parametric_var_of_the_tiny_portfolio():
    # Scenario P&L_t = 20,000 × rA_t + 40,000 × rB_t:
    #   day 1:  200 +  800 =  1,000     day 2: -400 + 400 = 0     day 3: 600 - 1,600 = -1,000
    #   day 4: -200 +    0 =   -200     day 5:    0 + 400 = 400
    # 5 days: k95 = ceil(5 × 5 / 100) = 1 and k99 = 1, so VaR95 = VaR99 = CVaR95 = the worst loss, 1,000.00.
    # Mean 40; deviations 960, -40, -1,040, -240, 360; squares sum to 921,600 + 1,600 + 1,081,600 + 57,600
    # + 129,600 = 2,192,000; sample variance 2,192,000 / 4 = 548,000; σ = √548,000 = 740.2702.
    # Parametric: 1.644854 × 740.2702 = 1,217.64 and 2.326348 × 740.2702 = 1,722.13 (mean ignored).
    m = metrics_of(long_book())["P1"]
    assert (m["var95"], m["var99"], m["cvar95"]) == (1000.0, 1000.0, 1000.0)
    assert m["varParametric95"] == 1217.64
    assert m["varParametric99"] == 1722.13
    assert m["lookbackDays"] == 5


def test_volatility_and_beta_of_the_tiny_portfolio():
    # Portfolio returns = P&L / 100,000 = 0.01, 0, -0.01, -0.002, 0.004; σ = 740.2702 / 100,000 = 0.0074027;
    # with 100 periods a year: 0.0074027 × √100 = 0.0740.
    # Index 0.02, -0.01, -0.01, 0, 0: mean 0, sample variance (0.0004 + 0.0001 + 0.0001) / 4 = 0.00015;
    # covariance Σ r × i / 4 = (0.01 × 0.02 + 0 + (-0.01) × (-0.01) + 0 + 0) / 4 = 0.000075; beta = 0.5.
    m = metrics_of(long_book())["P1"]
    assert m["volatility"] == 0.074
    assert m["beta"] == 0.5


def test_drawdowns_run_over_the_value_history_and_the_live_value():
    # history 100,000 → 110,000 → 88,000 → 104,500, then live 100,000.00: peak 110,000;
    # max drawdown (110,000 − 88,000) / 110,000 = 0.2; current (110,000 − 100,000) / 110,000 = 0.0909.
    history = {"P1": [10_000_000, 11_000_000, 8_800_000, 10_450_000]}
    m = metrics_of(long_book(), histories=history)["P1"]
    assert (m["maxDrawdown"], m["currentDrawdown"]) == (0.2, 0.0909)
    # No history: the live value alone has fallen from nothing.
    m = metrics_of(long_book())["P1"]
    assert (m["maxDrawdown"], m["currentDrawdown"]) == (0.0, 0.0)


def test_one_portfolios_peak_never_leaks_into_the_next_portfolios_drawdown():
    rich = ledger("rich", 10_000_000, {})  # 100,000.00 after a peak of 200,000.00: 0.5
    poor = ledger("poor", 100_000, {})  # 1,000.00 at its own peak of 1,000.00: 0
    histories = {"rich": [20_000_000], "poor": [100_000, 50_000]}
    m = metrics_of(rich, poor, histories=histories)
    assert (m["rich"]["maxDrawdown"], m["rich"]["currentDrawdown"]) == (0.5, 0.5)
    assert (m["poor"]["maxDrawdown"], m["poor"]["currentDrawdown"]) == (0.5, 0.0)  # 1,000 → 500 earlier, back since
    # Values too large to batch within 64-bit integers take the one-at-a-time path with the same answers.
    huge = ledger("huge", 4 * 10**18, {})
    m = metrics_of(rich, huge, poor, histories={**histories, "huge": [8 * 10**18]})
    assert [(m[p]["maxDrawdown"], m[p]["currentDrawdown"]) for p in ("rich", "huge", "poor")] == [
        (0.5, 0.5), (0.5, 0.5), (0.5, 0.0)]


def test_exposures_weights_concentration_and_sectors_of_a_long_book():
    # gross = net = 20,000 + 40,000 = 60,000.00; leverage 60,000 / 100,000 = 0.6; largest B 40,000 / 100,000;
    # HHI over shares of gross: (1/3)² + (2/3)² = 5/9 = 0.5556; sectors Energy 0.4, Technology 0.2 (cash takes 0.4)
    m = metrics_of(long_book())["P1"]
    assert (m["grossExposure"], m["netExposure"], m["leverage"]) == (60000.0, 60000.0, 0.6)
    assert (m["largestPositionWeight"], m["largestPositionSymbol"]) == (0.4, "B")
    assert m["concentrationHHI"] == 0.5556
    assert m["sectorExposure"] == {"Energy": 0.4, "Technology": 0.2}
    assert m["totalValue"] == 100000.0


def test_a_short_counts_by_its_size_in_gross_and_against_in_net_exposure_and_scenarios():
    # Short 100 A (-20,000.00), long 400 B (40,000.00), cash 80,000.00: total 100,000.00.
    # gross 60,000, net 20,000, leverage 0.6, largest |B| 0.4, HHI 5/9; Technology -0.2.
    # P&L = -20,000 × rA + 40,000 × rB: 600, 800, -2,200, 200, 400 → VaR95 = CVaR95 = 2,200.00.
    m = metrics_of(ledger("S", 8_000_000, {"A": -100, "B": 400}))["S"]
    assert (m["grossExposure"], m["netExposure"], m["leverage"]) == (60000.0, 20000.0, 0.6)
    assert (m["largestPositionWeight"], m["concentrationHHI"]) == (0.4, 0.5556)
    assert m["sectorExposure"] == {"Energy": 0.4, "Technology": -0.2}
    assert (m["var95"], m["cvar95"]) == (2200.0, 2200.0)


def test_daily_pnl_is_value_against_the_day_start_else_the_positions_day_change():
    # 100,000.00 now against 101,500.00 at the day's start: -1,500.00.
    assert metrics_of(long_book(), day_starts={"P1": 10_150_000})["P1"]["dailyPnL"] == -1500.0
    # Without a day-start value: 100 × (200.00 − 202.00) + 400 × (100.00 − 101.00) = -200 − 400 = -600.00.
    assert metrics_of(long_book())["P1"]["dailyPnL"] == -600.0


def test_an_all_cash_portfolio_has_no_risk_and_no_concentration():
    m = metrics_of(ledger("C", 10_000_000, {}))["C"]
    assert (m["var95"], m["var99"], m["cvar95"], m["varParametric95"]) == (0.0, 0.0, 0.0, 0.0)
    assert (m["volatility"], m["beta"], m["leverage"], m["largestPositionWeight"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["concentrationHHI"] is None and m["largestPositionSymbol"] is None
    assert m["sectorExposure"] == {} and m["grossExposure"] == 0.0 and m["dailyPnL"] == 0.0


def test_too_short_a_history_leaves_market_figures_none_and_nothing_is_ever_nan():
    model = RiskModel.from_returns(["A", "B"], {"A": [0.01], "B": [0.02]}, [0.01], lookback=5)
    m = metrics_of(long_book(), model=model)["P1"]
    for name in ("var95", "var99", "cvar95", "varParametric95", "varParametric99", "volatility", "beta"):
        assert m[name] is None, name
    assert m["grossExposure"] == 60000.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in m.values())


def test_a_flat_index_or_a_non_positive_value_leaves_beta_and_ratios_none():
    flat = RiskModel.from_returns(["A", "B"], RETURNS, [0.0] * 5, lookback=5)
    assert metrics_of(long_book(), model=flat)["P1"]["beta"] is None
    # Short 100 A worth 20,000.00 with only 10,000.00 cash: total -10,000.00.
    m = metrics_of(ledger("N", 1_000_000, {"A": -100}))["N"]
    assert m["totalValue"] == -10000.0
    for name in ("volatility", "beta", "leverage", "largestPositionWeight"):
        assert m[name] is None, name
    assert m["sectorExposure"] == {}
    assert m["var95"] == 600.0  # -20,000 × 0.03 on day 3


def test_positions_the_model_has_no_returns_for_count_in_exposure_but_not_in_scenarios():
    quotes = {**tiny_quotes(), "Z": quote("Z", 5_000, sector="Other")}
    book = ledger("P1", 4_000_000, {"A": 100, "B": 400, "Z": 100})  # Z: 100 × 50.00 = 5,000.00
    m = metrics_of(book, quotes=quotes)["P1"]
    assert m["grossExposure"] == 65000.0 and m["totalValue"] == 105000.0
    assert m["var95"] == 1000.0  # Z adds nothing to any scenario


def test_the_lookback_keeps_the_most_recent_days_and_aligns_the_index_at_the_end():
    returns = {"A": [0.5, 0.01, -0.02, 0.03], "B": [0.04, 0.05, 0.06]}
    model = RiskModel.from_returns(["A", "B"], returns, [0.1, 0.2, 0.3, 0.4, 0.5], lookback=10)
    assert model.days == 3  # the shortest series sets the window
    assert model.returns.tolist() == [[0.01, -0.02, 0.03], [0.04, 0.05, 0.06]]
    assert model.index_returns.tolist() == [0.3, 0.4, 0.5]
    model = RiskModel.from_returns(["A", "B"], returns, [0.7], lookback=2)
    assert model.returns.tolist() == [[-0.02, 0.03], [0.05, 0.06]]
    assert model.index_returns.tolist() == [0.7]


def test_the_model_refuses_a_missing_symbol_a_bad_lookback_and_non_finite_returns():
    with pytest.raises(ValueError):
        RiskModel.from_returns(["A", "B"], {"A": [0.01]}, [], lookback=5)
    for lookback in (0, -1, True, 2.5):
        with pytest.raises(ValueError):
            RiskModel.from_returns(["A"], {"A": [0.01, 0.02]}, [], lookback=lookback)
    with pytest.raises(ValueError):
        RiskModel.from_returns(["A"], {"A": [0.01, float("nan")]}, [], lookback=5)


def test_the_model_reads_the_simulators_completed_days():
    market = MarketSimulator(rng=random.Random(3), start_market_ms=1_764_126_000_000, history_days=40,
                             minute_history_days=0)
    model = RiskModel.from_market(market, lookback=30)
    assert model.symbols == tuple(spec.symbol for spec in market.specs())
    assert model.returns.shape == (len(model.symbols), 30)
    assert model.returns[0].tolist() == market.daily_returns(model.symbols[0], 30)
    assert model.index_returns.tolist() == market.index_daily_returns("SQX", 30)


# ----- VaR / CVaR against a direct computation -------------------------------------------------------------


def scripted_market(days: int, seed: int = 11) -> dict[str, list[float]]:
    rng = random.Random(seed)
    return {
        "A": [rng.gauss(0.0005, 0.02) for _ in range(days)],
        "B": [rng.gauss(0.0, 0.035) for _ in range(days)],
        "C": [rng.gauss(0.0003, 0.01) for _ in range(days)],
    }


@pytest.mark.parametrize(("days", "k95", "k99"), [(250, 13, 3), (100, 5, 1), (60, 3, 1), (19, 1, 1)])
def test_var_and_cvar_equal_a_direct_sort_of_the_scripted_scenarios(days, k95, k99):
    returns = scripted_market(days)
    holdings = {"A": 300, "B": -50, "C": 1_000}  # 30,000.00 long, 10,000.00 short, 50,000.00 long
    prices = {"A": 10_000, "B": 20_000, "C": 5_000}
    quotes = {s: quote(s, p) for s, p in prices.items()}
    model = RiskModel.from_returns(["A", "B", "C"], returns, [], lookback=days)
    m = compute_metrics(model, [ledger("P", 3_000_000, holdings)], quotes, {}, value_histories={},
                        day_start_values={})["P"]

    # Directly: each day's P&L in currency, one position at a time, then sorted worst first.
    pnl = [sum(holdings[s] * prices[s] / 100 * returns[s][t] for s in holdings) for t in range(days)]
    worst = sorted(pnl)
    assert m["var95"] == pytest.approx(-worst[k95 - 1], abs=0.006)
    assert m["var99"] == pytest.approx(-worst[k99 - 1], abs=0.006)
    assert m["cvar95"] == pytest.approx(-statistics.fmean(worst[:k95]), abs=0.006)
    assert m["cvar95"] >= m["var95"] >= 0
    # The same as numpy's empirical quantile without interpolation.
    assert m["var95"] == pytest.approx(-np.quantile(pnl, 0.05, method="inverted_cdf"), abs=0.006)
    sigma = statistics.stdev(pnl)
    assert m["varParametric95"] == pytest.approx(statistics.NormalDist().inv_cdf(0.95) * sigma, abs=0.006)
    assert m["varParametric99"] == pytest.approx(statistics.NormalDist().inv_cdf(0.99) * sigma, abs=0.006)


def test_var_is_floored_at_zero_when_even_the_tail_gains():
    model = RiskModel.from_returns(["A"], {"A": [0.01, 0.02, 0.03]}, [], lookback=3)
    m = compute_metrics(model, [ledger("P", 0, {"A": 100})], {"A": quote("A", 10_000)}, {},
                        value_histories={}, day_start_values={})["P"]
    assert (m["var95"], m["var99"], m["cvar95"]) == (0.0, 0.0, 0.0)


def test_batch_results_equal_one_portfolio_at_a_time():
    rng = random.Random(5)
    returns = scripted_market(120)
    prices = {"A": 10_000, "B": 20_000, "C": 5_000}
    quotes = {s: quote(s, p, p + rng.randint(-200, 200), sector=("X", "Y", "X")[i])
              for i, (s, p) in enumerate(prices.items())}
    model = RiskModel.from_returns(["A", "B", "C"], returns, returns["A"][-100:], lookback=120)
    books = [ledger(f"P{n}", rng.randint(0, 5_000_000), {s: rng.randint(0, 400) for s in prices}) for n in range(8)]
    books.append(ledger("cash", 10_000_000, {}))
    histories = {b.portfolio_id: [rng.randint(8_000_000, 12_000_000) for _ in range(rng.randint(0, 30))]
                 for b in books}
    starts = {b.portfolio_id: 10_000_000 for b in books[::2]}
    options = dict(value_histories=histories, day_start_values=starts)
    batch = compute_metrics(model, books, quotes, {}, **options)
    single = {b.portfolio_id: compute_metrics(model, [b], quotes, {}, **options)[b.portfolio_id] for b in books}
    assert batch == single
    assert compute_metrics(model, [], quotes, {}, **options) == {}


# ----- limits ----------------------------------------------------------------------------------------------


def test_default_limits_scale_with_the_starting_cash():
    assert DEFAULT_LIMITS.to_wire() == {
        "maxPositionWeight": 0.25, "maxSectorWeight": 0.5, "maxDailyLoss": 5000.0, "maxDrawdown": 0.2,
        "maxVar95": 5000.0, "maxOrderValue": 25000.0,
    }
    small = default_limits(1_000_000)  # 10,000.00
    assert (small.max_daily_loss, small.max_var95, small.max_order_value) == (50_000, 50_000, 250_000)
    assert RiskLimits().to_wire() == dict.fromkeys(DEFAULT_LIMITS.to_wire())


def test_limits_from_wire_applies_only_the_given_keys_and_null_removes_a_limit():
    limits = limits_from_wire({"maxPositionWeight": 0.3, "maxDailyLoss": 1234.565, "maxVar95": None},
                              DEFAULT_LIMITS)
    assert limits.max_position_weight == Decimal("0.3")
    assert limits.max_daily_loss == 123_456  # rounded half-even to cents
    assert limits.max_var95 is None
    assert limits.max_sector_weight == DEFAULT_LIMITS.max_sector_weight
    assert limits.max_order_value == DEFAULT_LIMITS.max_order_value
    assert limits_from_wire({}, DEFAULT_LIMITS) == DEFAULT_LIMITS
    assert limits_from_wire(DEFAULT_LIMITS.to_wire(), RiskLimits()) == DEFAULT_LIMITS
    assert limits_from_wire({"maxDrawdown": 1, "maxOrderValue": 10}, RiskLimits()).max_order_value == 1_000
    assert RiskLimits(max_position_weight=0.1).max_position_weight == Decimal("0.1")


@pytest.mark.parametrize(("data", "fragment"), [
    ({"maxPositionWeight": -0.1}, "maxPositionWeight must be positive"),
    ({"maxDailyLoss": 0}, "maxDailyLoss must be positive"),
    ({"maxDrawdown": float("nan")}, "maxDrawdown must be a finite number"),
    ({"maxVar95": float("inf")}, "maxVar95 must be a finite number"),
    ({"maxSectorWeight": 1.5}, "maxSectorWeight is a fraction"),
    ({"maxPositionWeight": 25}, "must be at most 1"),
    ({"maxOrderValue": 1e300}, "maxOrderValue must be at most"),
    ({"maxOrderValue": 0.001}, "maxOrderValue must be at least 0.01"),
    ({"maxLeverage": 2}, "unknown risk limit 'maxLeverage'"),
    ({"maxDrawdown": True}, "maxDrawdown must be a number or null"),
    ({"maxDrawdown": "0.2"}, "maxDrawdown must be a number or null"),
    ({"maxDrawdown": [0.2]}, "maxDrawdown must be a number or null"),
    ([("maxDrawdown", 0.2)], "limits must be an object"),
    (None, "limits must be an object"),
])
def test_limits_from_wire_refuses_hostile_values_and_changes_nothing(data, fragment):
    with pytest.raises(BadRequest) as caught:
        limits_from_wire(data, DEFAULT_LIMITS)
    assert fragment in caught.value.message


# ----- limits against metrics ------------------------------------------------------------------------------


def wire_metrics(**overrides) -> dict:
    base = {"var95": 1000.0, "largestPositionWeight": 0.1, "largestPositionSymbol": "A",
            "sectorExposure": {TECH: 0.1}, "dailyPnL": 0.0, "currentDrawdown": 0.0}
    return {**base, **overrides}


def test_a_metric_at_eighty_percent_of_its_limit_warns_and_over_it_is_critical():
    limits = RiskLimits(max_drawdown=Decimal("0.20"))
    assert evaluate_limits(wire_metrics(currentDrawdown=0.1599), limits) == []
    [warning] = evaluate_limits(wire_metrics(currentDrawdown=0.16), limits)  # 0.16 = 0.8 × 0.20
    assert (warning.severity, warning.value, warning.threshold) == (Severity.WARNING, 0.16, 0.2)
    assert warning.message == "drawdown 16.00% is at 80% of maxDrawdown 20.00%"
    [at_limit] = evaluate_limits(wire_metrics(currentDrawdown=0.2), limits)
    assert at_limit.severity is Severity.WARNING  # over means over: the limit itself is allowed
    [critical] = evaluate_limits(wire_metrics(currentDrawdown=0.2001), limits)
    assert critical == Breach("maxDrawdown", "currentDrawdown", 0.2001, 0.2, Severity.CRITICAL,
                              "drawdown 20.01% is over maxDrawdown 20.00% by 0.01%")


def test_each_limit_compares_its_own_metric():
    metrics = wire_metrics(var95=5200.0, largestPositionWeight=0.31, largestPositionSymbol="B",
                           sectorExposure={TECH: 0.2, ENERGY: -0.55}, dailyPnL=-4100.0, currentDrawdown=0.05)
    breaches = evaluate_limits(metrics, DEFAULT_LIMITS)
    assert [(b.rule, b.metric, b.value, b.threshold, str(b.severity)) for b in breaches] == [
        ("maxPositionWeight", "largestPositionWeight", 0.31, 0.25, "CRITICAL"),
        ("maxSectorWeight", "sectorExposure", 0.55, 0.5, "CRITICAL"),
        ("maxDailyLoss", "dailyLoss", 4100.0, 5000.0, "WARNING"),
        ("maxVar95", "var95", 5200.0, 5000.0, "CRITICAL"),
    ]
    assert [b.message for b in breaches] == [
        "position B weight 31.00% is over maxPositionWeight 25.00% by 6.00%",
        "sector Energy weight 55.00% is over maxSectorWeight 50.00% by 5.00%",
        "daily loss 4,100.00 is at 82% of maxDailyLoss 5,000.00",
        "one-day VaR 95% 5,200.00 is over maxVar95 5,000.00 by 200.00",
    ]
    assert breaches[0].to_wire() == {"rule": "maxPositionWeight", "metric": "largestPositionWeight", "value": 0.31,
                                     "threshold": 0.25, "severity": "CRITICAL", "message": breaches[0].message}


def test_missing_metrics_and_missing_limits_are_skipped():
    assert evaluate_limits(wire_metrics(var95=None, currentDrawdown=None, largestPositionWeight=None,
                                        sectorExposure={}, dailyPnL=-99_999.0), RiskLimits()) == []
    assert evaluate_limits(wire_metrics(var95=None, dailyPnL=2000.0), DEFAULT_LIMITS) == []


# ----- alerts ----------------------------------------------------------------------------------------------


def drawdown_breaches(value: float, limit: str = "0.20") -> list[Breach]:
    return evaluate_limits(wire_metrics(currentDrawdown=value), RiskLimits(max_drawdown=Decimal(limit)))


def test_a_crossing_alerts_once_and_staying_over_alerts_nothing():
    monitor = AlertMonitor(IdSequence("A"))
    assert monitor.update("P1", drawdown_breaches(0.05), now_ms=1_000) == []
    [alert] = monitor.update("P1", drawdown_breaches(0.25), now_ms=2_000)
    assert alert.to_wire() == {
        "alertId": "A1", "portfolioId": "P1", "severity": "CRITICAL", "rule": "maxDrawdown",
        "metric": "currentDrawdown", "value": 0.25, "threshold": 0.2,
        "message": "drawdown 25.00% is over maxDrawdown 20.00% by 5.00%", "symbol": None,
        "createdAt": "1970-01-01T00:00:02.000Z", "acknowledged": False,
    }
    for value in (0.26, 0.3, 0.21):
        assert monitor.update("P1", drawdown_breaches(value), now_ms=3_000) == []


def test_warning_then_critical_is_an_escalation_and_flapping_at_the_limit_stays_quiet():
    monitor = AlertMonitor(IdSequence("A"))
    [warning] = monitor.update("P1", drawdown_breaches(0.17), now_ms=1)
    assert warning.severity is Severity.WARNING
    assert monitor.update("P1", drawdown_breaches(0.18), now_ms=2) == []
    [critical] = monitor.update("P1", drawdown_breaches(0.22), now_ms=3)
    assert (critical.alert_id, critical.severity) == ("A2", Severity.CRITICAL)
    # back to the warning band and over again: still the same crossing
    assert monitor.update("P1", drawdown_breaches(0.19), now_ms=4) == []
    assert monitor.update("P1", drawdown_breaches(0.23), now_ms=5) == []


def test_falling_under_the_warning_level_re_arms_the_rule():
    monitor = AlertMonitor(IdSequence("A"))
    assert len(monitor.update("P1", drawdown_breaches(0.25), now_ms=1)) == 1
    assert monitor.update("P1", drawdown_breaches(0.1), now_ms=2) == []
    assert monitor.open_alerts() == []
    [again] = monitor.update("P1", drawdown_breaches(0.25), now_ms=3)
    assert again.alert_id == "A2"
    # A loosened limit re-arms too: the breach is gone.
    assert monitor.update("P1", drawdown_breaches(0.25, limit="0.5"), now_ms=4) == []
    assert len(monitor.update("P1", drawdown_breaches(0.25), now_ms=5)) == 1


def test_portfolios_and_rules_keep_separate_alert_states():
    monitor = AlertMonitor(IdSequence("A"))
    limits = RiskLimits(max_drawdown=Decimal("0.2"), max_var95=100_000)
    both = evaluate_limits(wire_metrics(currentDrawdown=0.3, var95=2000.0), limits)
    alerts = monitor.update("P1", both, now_ms=1)
    assert [(a.rule, a.severity) for a in alerts] == [("maxDrawdown", "CRITICAL"), ("maxVar95", "CRITICAL")]
    assert len(monitor.update("P2", both, now_ms=1)) == 2
    only_var = evaluate_limits(wire_metrics(currentDrawdown=0.0, var95=2000.0), limits)
    assert monitor.update("P1", only_var, now_ms=2) == []
    assert [a.rule for a in monitor.update("P1", both, now_ms=3)] == ["maxDrawdown"]
    monitor.forget("P2")
    assert {a.portfolio_id for a in monitor.open_alerts()} == {"P1"}


def test_restored_open_crossings_do_not_alert_again():
    first = AlertMonitor(IdSequence("A"))
    first.update("P1", drawdown_breaches(0.17), now_ms=1)
    first.update("P1", drawdown_breaches(0.3), now_ms=2)
    saved = first.open_alerts()
    assert [(a.rule, a.severity) for a in saved] == [("maxDrawdown", "CRITICAL")]

    second = AlertMonitor(IdSequence("A", last=2))
    info = Alert("A0", "P1", Severity.INFO, "STOP_LOSS", "price", 1.0, 1.0, "", 0, symbol="A")
    second.restore([info, *saved])
    assert second.update("P1", drawdown_breaches(0.3), now_ms=3) == []
    assert second.update("P1", drawdown_breaches(0.0), now_ms=4) == []
    [again] = second.update("P1", drawdown_breaches(0.3), now_ms=5)
    assert again.alert_id == "A3"


def test_stop_loss_and_take_profit_triggers_are_info_alerts():
    monitor = AlertMonitor(IdSequence("A"))
    stop = LevelTrigger("P1", "u1", "ACME", "STOP_LOSS", 9_550, 9_500, "O7")
    alert = monitor.trigger_alert(stop, now_ms=1_500)
    assert alert.to_wire() == {
        "alertId": "A1", "portfolioId": "P1", "severity": "INFO", "rule": "STOP_LOSS", "metric": "price",
        "value": 95.0, "threshold": 95.5, "symbol": "ACME", "createdAt": "1970-01-01T00:00:01.500Z",
        "acknowledged": False, "message": "stop-loss on ACME: price 95.00 reached 95.50; market sell order O7 placed",
    }
    take = monitor.trigger_alert(LevelTrigger("P1", "u1", "ACME", "TAKE_PROFIT", 120_000, 120_100, None), now_ms=2)
    assert take.message == "take-profit on ACME: price 1,201.00 reached 1,200.00; no free shares to sell"
    assert monitor.open_alerts() == []  # triggers are events, not crossings


def test_a_scripted_market_drop_raises_exactly_one_critical_per_crossed_limit():
    # Five symbols in five sectors, 150 shares each at 100.00 (15,000.00 each, 15 %), cash 25,000.00.
    # Returns alternate ±0.4 %: VaR95 = 75,000 × 0.004 = 300.00, far under the 4,000.00 warning level.
    symbols = ["S1", "S2", "S3", "S4", "S5"]
    model = RiskModel.from_returns(symbols, {s: [0.004, -0.004] * 10 for s in symbols}, [], lookback=20)
    sectors = {s: f"Sector {s}" for s in symbols}
    book = ledger("P1", 2_500_000, dict.fromkeys(symbols, 150))
    monitor = AlertMonitor(IdSequence("A"))
    history: list[int] = []
    day_start = 10_000_000

    def interval(price: int, now_ms: int) -> list[Alert]:
        quotes = {s: quote(s, price, 10_000, sector=sectors[s]) for s in symbols}
        metrics = compute_metrics(model, [book], quotes, sectors, value_histories={"P1": history},
                                  day_start_values={"P1": day_start})["P1"]
        history.append(round(metrics["totalValue"] * 100))
        return monitor.update("P1", evaluate_limits(metrics, DEFAULT_LIMITS), now_ms=now_ms)

    # 100.00 → 98.00: value 98,500.00, loss 1,500.00 (< 4,000.00), drawdown 1.5 % (< 16 %): nothing.
    assert interval(10_000, 1) == [] and interval(9_800, 2) == []
    # 70.00: value 25,000 + 750 × 70 = 77,500.00: loss 22,500.00 > 5,000.00, drawdown 22.5 % > 20 %.
    # Each position is then 10,500 / 77,500 = 13.5 %, VaR 52,500 × 0.004 = 210.00: no other limit is near.
    crossed = interval(7_000, 3)
    assert [(a.rule, str(a.severity), a.value) for a in crossed] == [
        ("maxDailyLoss", "CRITICAL", 22500.0), ("maxDrawdown", "CRITICAL", 0.225)]
    assert crossed[0].message == "daily loss 22,500.00 is over maxDailyLoss 5,000.00 by 17,500.00"
    # The fall goes on: both limits stay crossed, nothing new.
    assert interval(6_900, 4) == [] and interval(6_800, 5) == []
    # A new day starts at 76,000.00: the daily loss re-arms, the drawdown (24 %) stays crossed.
    day_start = 7_600_000
    assert interval(6_800, 6) == []
    # 60.00: value 70,000.00, a new day's loss of 6,000.00 crosses again; the drawdown is still the same crossing.
    [again] = interval(6_000, 7)
    assert (again.rule, again.severity, again.value) == ("maxDailyLoss", Severity.CRITICAL, 6000.0)


# ----- pre-trade -------------------------------------------------------------------------------------------


def request(side: str, quantity: int, *, order_type: str = "MARKET", limit: int | None = None,
            stop: int | None = None, symbol: str = "ACME") -> OrderRequest:
    return OrderRequest("P1", symbol, Side(side), OrderType(order_type), quantity, limit, stop)


def acme_world(limits: RiskLimits = DEFAULT_LIMITS, *, shares: int = 200):
    # Cash 80,000.00 and `shares` ACME at 100.00 (bid 99.99 / ask 100.01): 100,000.00 with 200 shares.
    book = ledger("P1", 10_000_000 - shares * 10_000, {"ACME": shares})
    quotes = {"ACME": quote("ACME", 10_000), "OTHER": quote("OTHER", 5_000)}
    return book, quotes, pre_trade_check(lambda pid: limits, lambda: quotes)


def test_an_order_over_max_order_value_is_rejected_saying_by_how_much():
    book, quotes, check = acme_world()
    acme = quotes["ACME"]
    assert check(book, request("BUY", 300, order_type="LIMIT", limit=10_000), acme) == (
        RejectReason.RISK_LIMIT, "order value 30,000.00 exceeds maxOrderValue 25,000.00 by 5,000.00")
    # A market buy is valued at the ask: 300 × 100.01 = 30,003.00; a market sell at the bid: 300 × 99.99.
    assert check(book, request("BUY", 300), acme)[1] == (
        "order value 30,003.00 exceeds maxOrderValue 25,000.00 by 5,003.00")
    assert check(book, request("SELL", 300), acme)[1] == (
        "order value 29,997.00 exceeds maxOrderValue 25,000.00 by 4,997.00")
    # A stop buy at the higher of the ask and its stop: 250 × 101.00 = 25,250.00.
    assert check(book, request("BUY", 250, order_type="STOP", stop=10_100), acme)[1] == (
        "order value 25,250.00 exceeds maxOrderValue 25,000.00 by 250.00")
    assert check(book, request("BUY", 50, order_type="LIMIT", limit=10_000), acme) is None  # exactly at the limit


def test_a_buy_pushing_a_position_over_max_position_weight_is_rejected_saying_by_how_much():
    book, quotes, check = acme_world(RiskLimits(max_position_weight=Decimal("0.25")))
    acme = quotes["ACME"]
    # Held 20,000.00 of 100,000.00; buying 50 at 100.00 makes 25,000.00 = 25 %: allowed.
    assert check(book, request("BUY", 50, order_type="LIMIT", limit=10_000), acme) is None
    # Buying 125 at 100.00: 32,500.00 / 100,000.00 = 32.50 %, over by 7.50 %.
    assert check(book, request("BUY", 125, order_type="LIMIT", limit=10_000), acme) == (
        RejectReason.RISK_LIMIT, "position ACME would be 32.50% of value, over maxPositionWeight 25.00% by 7.50%")
    # Selling only shrinks the position, however large the sale; a new symbol starts from nothing.
    assert check(book, request("SELL", 150), acme) is None
    assert check(book, request("BUY", 600, symbol="OTHER"), quotes["OTHER"]) == (
        RejectReason.RISK_LIMIT, "position OTHER would be 30.01% of value, over maxPositionWeight 25.00% by 5.01%")


def test_a_sell_deeper_into_a_short_is_held_to_max_position_weight():
    book, quotes, check = acme_world(RiskLimits(max_position_weight=Decimal("0.25")), shares=0)
    # Short 300 at the bid 99.99 = 29,997.00 of 100,000.00.
    assert check(book, request("SELL", 300), quotes["ACME"]) == (
        RejectReason.RISK_LIMIT, "position ACME would be 30.00% of value, over maxPositionWeight 25.00% by 5.00%")


def test_no_limits_means_no_pre_trade_rejections():
    book, quotes, check = acme_world(RiskLimits())
    assert check(book, request("BUY", 10_000), quotes["ACME"]) is None


def test_the_order_engine_rejects_risk_limit_orders_with_the_checks_message():
    book, quotes, check = acme_world()
    engine = OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"), extra_checks=[check])
    engine.add_portfolio(book)
    result = engine.submit("u1", request("BUY", 300), quotes["ACME"], now_ms=1, market_ms=1, day_index=0,
                           market_state="OPEN")
    [event] = result
    assert event.kind is EventKind.ORDER_REJECTED
    assert event.to_wire()["reason"] == "RISK_LIMIT"
    assert event.to_wire()["error"] == "order value 30,003.00 exceeds maxOrderValue 25,000.00 by 5,003.00"
    accepted = engine.submit("u1", request("BUY", 40), quotes["ACME"], now_ms=2, market_ms=2, day_index=0,
                             market_state="OPEN")
    assert accepted[0].kind is EventKind.ORDER_SUBMITTED


# ----- the class-wide view ---------------------------------------------------------------------------------


def test_rank_by_risk_orders_by_var_relative_to_value():
    ranked = rank_by_risk({
        "calm": {"var95": 500.0, "totalValue": 100000.0},   # 0.5 %
        "wild": {"var95": 3000.0, "totalValue": 50000.0},   # 6 %
        "big": {"var95": 6000.0, "totalValue": 200000.0},   # 3 %
        "same": {"var95": 1500.0, "totalValue": 50000.0},   # 3 %, smaller VaR than "big"
        "new": {"var95": None, "totalValue": 100000.0},
        "broke": {"var95": 100.0, "totalValue": 0.0},
    })
    assert [(e["rank"], e["portfolioId"], e["relativeVar95"]) for e in ranked] == [
        (1, "wild", 0.06), (2, "big", 0.03), (3, "same", 0.03), (4, "calm", 0.005), (5, "broke", None),
        (6, "new", None),
    ]
    assert ranked[0]["metrics"] == {"var95": 3000.0, "totalValue": 50000.0}
