"""Risk metrics, limits, alerts and the pre-trade check against figures worked out by hand and direct computations."""

import math
import random
import statistics
from dataclasses import fields, replace
from decimal import Decimal

import numpy as np
import pytest

from domain.errors import BadRequest
from domain.market import MarketSimulator, Quote
from domain.orders import CheckContext, LevelTrigger, OrderEngine
from domain.risk import (
    DEFAULT_LIMITS,
    Alert,
    AlertMonitor,
    Breach,
    LimitMetric,
    LimitRule,
    RiskLimits,
    RiskMetrics,
    RiskModel,
    RiskRank,
    Severity,
    compute_metrics,
    default_limits,
    evaluate_limits,
    pre_trade_check,
    rank_by_risk,
)
from domain.trading import (
    EventKind,
    IdSequence,
    MarketState,
    OrderRequest,
    OrderType,
    PortfolioLedger,
    Position,
    RejectReason,
    Side,
)

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
               day_starts=None, periods_per_year: float = 100) -> dict[str, RiskMetrics]:
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
    assert (m.var95, m.var99, m.cvar95) == (100_000, 100_000, 100_000)
    assert m.var_parametric95 == 121_764
    assert m.var_parametric99 == 172_213
    assert m.lookback_days == 5


def test_volatility_and_beta_of_the_tiny_portfolio():
    # Portfolio returns = P&L / 100,000 = 0.01, 0, -0.01, -0.002, 0.004; σ = 740.2702 / 100,000 = 0.0074027;
    # with 100 periods a year: 0.0074027 × √100 = 0.0740.
    # Index 0.02, -0.01, -0.01, 0, 0: mean 0, sample variance (0.0004 + 0.0001 + 0.0001) / 4 = 0.00015;
    # covariance Σ r × i / 4 = (0.01 × 0.02 + 0 + (-0.01) × (-0.01) + 0 + 0) / 4 = 0.000075; beta = 0.5.
    m = metrics_of(long_book())["P1"]
    assert m.volatility == 0.074
    assert m.beta == 0.5


def test_drawdowns_run_over_the_value_history_and_the_live_value():
    # history 100,000 → 110,000 → 88,000 → 104,500, then live 100,000.00: peak 110,000;
    # max drawdown (110,000 − 88,000) / 110,000 = 0.2; current (110,000 − 100,000) / 110,000 = 0.0909.
    history = {"P1": [10_000_000, 11_000_000, 8_800_000, 10_450_000]}
    m = metrics_of(long_book(), histories=history)["P1"]
    assert (m.max_drawdown, m.current_drawdown) == (0.2, 0.0909)
    # No history: the live value alone has fallen from nothing.
    m = metrics_of(long_book())["P1"]
    assert (m.max_drawdown, m.current_drawdown) == (0.0, 0.0)


def test_one_portfolios_peak_never_leaks_into_the_next_portfolios_drawdown():
    rich = ledger("rich", 10_000_000, {})  # 100,000.00 after a peak of 200,000.00: 0.5
    poor = ledger("poor", 100_000, {})  # 1,000.00 at its own peak of 1,000.00: 0
    histories = {"rich": [20_000_000], "poor": [100_000, 50_000]}
    m = metrics_of(rich, poor, histories=histories)
    assert (m["rich"].max_drawdown, m["rich"].current_drawdown) == (0.5, 0.5)
    assert (m["poor"].max_drawdown, m["poor"].current_drawdown) == (0.5, 0.0)  # 1,000 → 500 earlier, back since
    # Values too large to batch within 64-bit integers take the one-at-a-time path with the same answers.
    huge = ledger("huge", 4 * 10**18, {})
    m = metrics_of(rich, huge, poor, histories={**histories, "huge": [8 * 10**18]})
    assert [(m[p].max_drawdown, m[p].current_drawdown) for p in ("rich", "huge", "poor")] == [
        (0.5, 0.5), (0.5, 0.5), (0.5, 0.0)]


def test_exposures_weights_concentration_and_sectors_of_a_long_book():
    # gross = net = 20,000 + 40,000 = 60,000.00; leverage 60,000 / 100,000 = 0.6; largest B 40,000 / 100,000;
    # HHI over shares of gross: (1/3)² + (2/3)² = 5/9 = 0.5556; sectors Energy 0.4, Technology 0.2 (cash takes 0.4)
    m = metrics_of(long_book())["P1"]
    assert (m.gross_exposure, m.net_exposure, m.leverage) == (6_000_000, 6_000_000, 0.6)
    assert (m.largest_position_weight, m.largest_position_symbol) == (0.4, "B")
    assert m.concentration_hhi == 0.5556
    assert m.sector_exposure == {"Energy": 0.4, "Technology": 0.2}
    assert list(m.sector_exposure) == ["Energy", "Technology"]
    assert m.total_value == 10_000_000


def test_money_figures_are_whole_cents():
    m = metrics_of(long_book(), day_starts={"P1": 10_000_001})["P1"]
    for name in ("var95", "var99", "cvar95", "var_parametric95", "var_parametric99", "gross_exposure", "net_exposure",
                 "daily_pnl", "total_value"):
        assert type(getattr(m, name)) is int, name
    assert m.daily_pnl == -1


def test_a_short_counts_by_its_size_in_gross_and_against_in_net_exposure_and_scenarios():
    # Short 100 A (-20,000.00), long 400 B (40,000.00), cash 80,000.00: total 100,000.00.
    # gross 60,000, net 20,000, leverage 0.6, largest |B| 0.4, HHI 5/9; Technology -0.2.
    # P&L = -20,000 × rA + 40,000 × rB: 600, 800, -2,200, 200, 400 → VaR95 = CVaR95 = 2,200.00.
    m = metrics_of(ledger("S", 8_000_000, {"A": -100, "B": 400}))["S"]
    assert (m.gross_exposure, m.net_exposure, m.leverage) == (6_000_000, 2_000_000, 0.6)
    assert (m.largest_position_weight, m.concentration_hhi) == (0.4, 0.5556)
    assert m.sector_exposure == {"Energy": 0.4, "Technology": -0.2}
    assert (m.var95, m.cvar95) == (220_000, 220_000)


def test_daily_pnl_is_value_against_the_day_start_else_the_positions_day_change():
    # 100,000.00 now against 101,500.00 at the day's start: -1,500.00.
    assert metrics_of(long_book(), day_starts={"P1": 10_150_000})["P1"].daily_pnl == -150_000
    # Without a day-start value: 100 × (200.00 − 202.00) + 400 × (100.00 − 101.00) = -200 − 400 = -600.00.
    assert metrics_of(long_book())["P1"].daily_pnl == -60_000


def test_an_all_cash_portfolio_has_no_risk_and_no_concentration():
    m = metrics_of(ledger("C", 10_000_000, {}))["C"]
    assert (m.var95, m.var99, m.cvar95, m.var_parametric95) == (0, 0, 0, 0)
    assert (m.volatility, m.beta, m.leverage, m.largest_position_weight) == (0.0, 0.0, 0.0, 0.0)
    assert m.concentration_hhi is None and m.largest_position_symbol is None
    assert m.sector_exposure == {} and m.gross_exposure == 0 and m.daily_pnl == 0


def test_too_short_a_history_leaves_market_figures_none_and_nothing_is_ever_nan():
    model = RiskModel.from_returns(["A", "B"], {"A": [0.01], "B": [0.02]}, [0.01], lookback=5)
    m = metrics_of(long_book(), model=model)["P1"]
    for name in ("var95", "var99", "cvar95", "var_parametric95", "var_parametric99", "volatility", "beta"):
        assert getattr(m, name) is None, name
    assert m.gross_exposure == 6_000_000
    assert not any(isinstance(v, float) and math.isnan(v) for v in (getattr(m, f.name) for f in fields(m)))


def test_a_flat_index_or_a_non_positive_value_leaves_beta_and_ratios_none():
    flat = RiskModel.from_returns(["A", "B"], RETURNS, [0.0] * 5, lookback=5)
    assert metrics_of(long_book(), model=flat)["P1"].beta is None
    # Short 100 A worth 20,000.00 with only 10,000.00 cash: total -10,000.00.
    m = metrics_of(ledger("N", 1_000_000, {"A": -100}))["N"]
    assert m.total_value == -1_000_000
    for name in ("volatility", "beta", "leverage", "largest_position_weight"):
        assert getattr(m, name) is None, name
    assert m.sector_exposure == {}
    assert m.var95 == 60_000  # -20,000 × 0.03 on day 3


def test_positions_the_model_has_no_returns_for_count_in_exposure_but_not_in_scenarios():
    quotes = {**tiny_quotes(), "Z": quote("Z", 5_000, sector="Other")}
    book = ledger("P1", 4_000_000, {"A": 100, "B": 400, "Z": 100})  # Z: 100 × 50.00 = 5,000.00
    m = metrics_of(book, quotes=quotes)["P1"]
    assert m.gross_exposure == 6_500_000 and m.total_value == 10_500_000
    assert m.var95 == 100_000  # Z adds nothing to any scenario


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
    assert m.var95 / 100 == pytest.approx(-worst[k95 - 1], abs=0.006)
    assert m.var99 / 100 == pytest.approx(-worst[k99 - 1], abs=0.006)
    assert m.cvar95 / 100 == pytest.approx(-statistics.fmean(worst[:k95]), abs=0.006)
    assert m.cvar95 >= m.var95 >= 0
    # The same as numpy's empirical quantile without interpolation.
    assert m.var95 / 100 == pytest.approx(-np.quantile(pnl, 0.05, method="inverted_cdf"), abs=0.006)
    sigma = statistics.stdev(pnl)
    assert m.var_parametric95 / 100 == pytest.approx(statistics.NormalDist().inv_cdf(0.95) * sigma, abs=0.006)
    assert m.var_parametric99 / 100 == pytest.approx(statistics.NormalDist().inv_cdf(0.99) * sigma, abs=0.006)


def test_var_is_floored_at_zero_when_even_the_tail_gains():
    model = RiskModel.from_returns(["A"], {"A": [0.01, 0.02, 0.03]}, [], lookback=3)
    m = compute_metrics(model, [ledger("P", 0, {"A": 100})], {"A": quote("A", 10_000)}, {},
                        value_histories={}, day_start_values={})["P"]
    assert (m.var95, m.var99, m.cvar95) == (0, 0, 0)


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
    assert DEFAULT_LIMITS == RiskLimits(
        max_position_weight=Decimal("0.25"), max_sector_weight=Decimal("0.50"), max_daily_loss=500_000,
        max_drawdown=Decimal("0.20"), max_var95=500_000, max_order_value=2_500_000,
    )
    small = default_limits(1_000_000)  # 10,000.00
    assert (small.max_daily_loss, small.max_var95, small.max_order_value) == (50_000, 50_000, 250_000)
    assert all(getattr(RiskLimits(), f.name) is None for f in fields(RiskLimits))


def test_a_float_weight_is_read_through_its_repr():
    assert RiskLimits(max_position_weight=0.1).max_position_weight == Decimal("0.1")
    assert RiskLimits(max_sector_weight=0.3, max_drawdown=0.07).max_drawdown == Decimal("0.07")


def test_every_limit_rule_names_a_limits_attribute_and_says_whether_it_is_money():
    assert [rule.value for rule in LimitRule] == [f.name for f in fields(RiskLimits)]
    assert [rule for rule in LimitRule if rule.is_money] == [
        LimitRule.MAX_DAILY_LOSS, LimitRule.MAX_VAR95, LimitRule.MAX_ORDER_VALUE]


# ----- limits against metrics ------------------------------------------------------------------------------


BASE_METRICS = RiskMetrics(
    var95=100_000, var99=150_000, cvar95=120_000, var_parametric95=110_000, var_parametric99=160_000,
    volatility=0.12, beta=1.0, max_drawdown=0.0, current_drawdown=0.0, gross_exposure=5_000_000,
    net_exposure=5_000_000, leverage=0.5, largest_position_weight=0.1, largest_position_symbol="A",
    concentration_hhi=0.2, sector_exposure={TECH: 0.1}, daily_pnl=0, total_value=10_000_000, lookback_days=250,
)


def metrics_with(**overrides) -> RiskMetrics:
    return replace(BASE_METRICS, **overrides)


def test_a_metric_at_eighty_percent_of_its_limit_warns_and_over_it_is_critical():
    limits = RiskLimits(max_drawdown=Decimal("0.20"))
    assert evaluate_limits(metrics_with(current_drawdown=0.1599), limits) == []
    [warning] = evaluate_limits(metrics_with(current_drawdown=0.16), limits)  # 0.16 = 0.8 × 0.20
    assert (warning.severity, warning.value, warning.threshold) == (Severity.WARNING, Decimal("0.16"), Decimal("0.2"))
    [at_limit] = evaluate_limits(metrics_with(current_drawdown=0.2), limits)
    assert at_limit.severity is Severity.WARNING  # over means over: the limit itself is allowed
    [critical] = evaluate_limits(metrics_with(current_drawdown=0.2001), limits)
    assert critical == Breach(LimitRule.MAX_DRAWDOWN, LimitMetric.CURRENT_DRAWDOWN, None, Decimal("0.2001"),
                              Decimal("0.20"), Severity.CRITICAL)


def test_each_limit_compares_its_own_metric():
    metrics = metrics_with(var95=520_000, largest_position_weight=0.31, largest_position_symbol="B",
                           sector_exposure={TECH: 0.2, ENERGY: -0.55}, daily_pnl=-410_000, current_drawdown=0.05)
    assert evaluate_limits(metrics, DEFAULT_LIMITS) == [
        Breach(LimitRule.MAX_POSITION_WEIGHT, LimitMetric.LARGEST_POSITION_WEIGHT, "B", Decimal("0.31"),
               Decimal("0.25"), Severity.CRITICAL),
        Breach(LimitRule.MAX_SECTOR_WEIGHT, LimitMetric.SECTOR_EXPOSURE, ENERGY, Decimal("0.55"), Decimal("0.50"),
               Severity.CRITICAL),
        Breach(LimitRule.MAX_DAILY_LOSS, LimitMetric.DAILY_LOSS, None, 410_000, 500_000, Severity.WARNING),
        Breach(LimitRule.MAX_VAR95, LimitMetric.VAR95, None, 520_000, 500_000, Severity.CRITICAL),
    ]


def test_money_is_compared_in_whole_cents():
    limits = RiskLimits(max_var95=500_000)
    [at_limit] = evaluate_limits(metrics_with(var95=500_000), limits)
    assert at_limit.severity is Severity.WARNING
    [over] = evaluate_limits(metrics_with(var95=500_001), limits)
    assert (over.severity, over.value, over.threshold) == (Severity.CRITICAL, 500_001, 500_000)
    assert evaluate_limits(metrics_with(var95=399_999), limits) == []


def test_missing_metrics_and_missing_limits_are_skipped():
    assert evaluate_limits(metrics_with(var95=None, current_drawdown=None, largest_position_weight=None,
                                        sector_exposure={}, daily_pnl=-9_999_900), RiskLimits()) == []
    assert evaluate_limits(metrics_with(var95=None, daily_pnl=200_000), DEFAULT_LIMITS) == []


def test_metrics_without_an_attribute_fail_loudly_instead_of_switching_a_limit_off():
    with pytest.raises(AttributeError):
        evaluate_limits({"currentDrawdown": 0.5, "var95": 10_000.0}, DEFAULT_LIMITS)


# ----- alerts ----------------------------------------------------------------------------------------------


def drawdown_breaches(value: float, limit: str = "0.20") -> list[Breach]:
    return evaluate_limits(metrics_with(current_drawdown=value), RiskLimits(max_drawdown=Decimal(limit)))


def test_a_crossing_alerts_once_and_staying_over_alerts_nothing():
    monitor = AlertMonitor(IdSequence("A"))
    assert monitor.update("P1", drawdown_breaches(0.05), now_ms=1_000) == []
    [alert] = monitor.update("P1", drawdown_breaches(0.25), now_ms=2_000)
    assert alert == Alert("A1", "P1", Breach(LimitRule.MAX_DRAWDOWN, LimitMetric.CURRENT_DRAWDOWN, None,
                                             Decimal("0.25"), Decimal("0.20"), Severity.CRITICAL), 2_000)
    assert alert.severity is Severity.CRITICAL and alert.acknowledged is False
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
    both = evaluate_limits(metrics_with(current_drawdown=0.3, var95=200_000), limits)
    alerts = monitor.update("P1", both, now_ms=1)
    assert [(a.cause.rule, a.severity) for a in alerts] == [
        (LimitRule.MAX_DRAWDOWN, Severity.CRITICAL), (LimitRule.MAX_VAR95, Severity.CRITICAL)]
    assert len(monitor.update("P2", both, now_ms=1)) == 2
    only_var = evaluate_limits(metrics_with(current_drawdown=0.0, var95=200_000), limits)
    assert monitor.update("P1", only_var, now_ms=2) == []
    assert [a.cause.rule for a in monitor.update("P1", both, now_ms=3)] == [LimitRule.MAX_DRAWDOWN]
    monitor.forget("P2")
    assert {a.portfolio_id for a in monitor.open_alerts()} == {"P1"}


def test_open_alerts_are_listed_by_portfolio_then_rule():
    monitor = AlertMonitor(IdSequence("A"))
    limits = RiskLimits(max_drawdown=Decimal("0.2"), max_var95=100_000)
    both = evaluate_limits(metrics_with(current_drawdown=0.3, var95=200_000), limits)
    monitor.update("P2", both, now_ms=1)
    monitor.update("P1", list(reversed(both)), now_ms=2)
    assert [(a.portfolio_id, a.cause.rule) for a in monitor.open_alerts()] == [
        ("P1", LimitRule.MAX_DRAWDOWN), ("P1", LimitRule.MAX_VAR95),
        ("P2", LimitRule.MAX_DRAWDOWN), ("P2", LimitRule.MAX_VAR95)]


def test_restored_open_crossings_do_not_alert_again():
    first = AlertMonitor(IdSequence("A"))
    first.update("P1", drawdown_breaches(0.17), now_ms=1)
    first.update("P1", drawdown_breaches(0.3), now_ms=2)
    saved = first.open_alerts()
    assert [(a.cause.rule, a.severity) for a in saved] == [(LimitRule.MAX_DRAWDOWN, Severity.CRITICAL)]

    second = AlertMonitor(IdSequence("A", last=2))
    info = Alert("A0", "P1", LevelTrigger("P1", "u1", "A", "STOP_LOSS", 100, 100, None), 0)
    second.restore([info, *saved])
    assert second.update("P1", drawdown_breaches(0.3), now_ms=3) == []
    assert second.update("P1", drawdown_breaches(0.0), now_ms=4) == []
    [again] = second.update("P1", drawdown_breaches(0.3), now_ms=5)
    assert again.alert_id == "A3"


def test_stop_loss_and_take_profit_triggers_are_info_alerts():
    monitor = AlertMonitor(IdSequence("A"))
    stop = LevelTrigger("P1", "u1", "ACME", "STOP_LOSS", 9_550, 9_500, "O7")
    alert = monitor.trigger_alert(stop, now_ms=1_500)
    assert alert == Alert("A1", "P1", stop, 1_500)
    assert alert.severity is Severity.INFO and alert.acknowledged is False
    take = monitor.trigger_alert(LevelTrigger("P1", "u1", "ACME", "TAKE_PROFIT", 120_000, 120_100, None), now_ms=2)
    assert (take.alert_id, take.severity) == ("A2", Severity.INFO)
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
        history.append(metrics.total_value)
        return monitor.update("P1", evaluate_limits(metrics, DEFAULT_LIMITS), now_ms=now_ms)

    # 100.00 → 98.00: value 98,500.00, loss 1,500.00 (< 4,000.00), drawdown 1.5 % (< 16 %): nothing.
    assert interval(10_000, 1) == [] and interval(9_800, 2) == []
    # 70.00: value 25,000 + 750 × 70 = 77,500.00: loss 22,500.00 > 5,000.00, drawdown 22.5 % > 20 %.
    # Each position is then 10,500 / 77,500 = 13.5 %, VaR 52,500 × 0.004 = 210.00: no other limit is near.
    crossed = interval(7_000, 3)
    assert [(a.cause.rule, a.severity, a.cause.value, a.cause.threshold) for a in crossed] == [
        (LimitRule.MAX_DAILY_LOSS, Severity.CRITICAL, 2_250_000, 500_000),
        (LimitRule.MAX_DRAWDOWN, Severity.CRITICAL, Decimal("0.225"), Decimal("0.20"))]
    # The fall goes on: both limits stay crossed, nothing new.
    assert interval(6_900, 4) == [] and interval(6_800, 5) == []
    # A new day starts at 76,000.00: the daily loss re-arms, the drawdown (24 %) stays crossed.
    day_start = 7_600_000
    assert interval(6_800, 6) == []
    # 60.00: value 70,000.00, a new day's loss of 6,000.00 crosses again; the drawdown is still the same crossing.
    [again] = interval(6_000, 7)
    assert (again.cause.rule, again.severity, again.cause.value) == (LimitRule.MAX_DAILY_LOSS, Severity.CRITICAL,
                                                                     600_000)


# ----- pre-trade -------------------------------------------------------------------------------------------


def request(side: str, quantity: int, *, order_type: str = "MARKET", limit: int | None = None,
            stop: int | None = None, symbol: str = "ACME") -> OrderRequest:
    return OrderRequest("P1", symbol, Side(side), OrderType(order_type), quantity, limit, stop)


def acme_world(limits: RiskLimits = DEFAULT_LIMITS, *, shares: int = 200):
    # Cash 80,000.00 and `shares` ACME at 100.00 (bid 99.99 / ask 100.01): 100,000.00 with 200 shares.
    book = ledger("P1", 10_000_000 - shares * 10_000, {"ACME": shares})
    quotes = {"ACME": quote("ACME", 10_000), "OTHER": quote("OTHER", 5_000)}
    risk_check = pre_trade_check(lambda pid: limits, lambda: quotes)
    return book, quotes, lambda ledger, order, quote: risk_check(CheckContext(ledger, order, quote, MarketState.OPEN))


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
    book, quotes, _ = acme_world()
    check = pre_trade_check(lambda pid: DEFAULT_LIMITS, lambda: quotes)
    engine = OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"), extra_checks=[check])
    engine.add_portfolio(book)
    result = engine.submit("u1", request("BUY", 300), quotes["ACME"], now_ms=1, market_ms=1, day_index=0,
                           market_state="OPEN")
    [event] = result
    assert event.kind is EventKind.ORDER_REJECTED
    assert event.order.reject_reason is RejectReason.RISK_LIMIT
    assert event.order.error == "order value 30,003.00 exceeds maxOrderValue 25,000.00 by 5,003.00"
    accepted = engine.submit("u1", request("BUY", 40), quotes["ACME"], now_ms=2, market_ms=2, day_index=0,
                             market_state="OPEN")
    assert accepted[0].kind is EventKind.ORDER_SUBMITTED


def test_a_modify_is_valued_at_what_it_leaves_to_trade_and_passes_without_a_quote():
    limits = RiskLimits(max_order_value=2_500_000)
    book, quotes, _ = acme_world(limits, shares=0)
    acme = quotes["ACME"]
    engine = OrderEngine(order_ids=IdSequence("O"), execution_ids=IdSequence("E"),
                         extra_checks=[pre_trade_check(lambda pid: limits, lambda: quotes)])
    engine.add_portfolio(book)
    order = engine.submit("u1", request("BUY", 150), acme, now_ms=1, market_ms=1, day_index=0,
                          market_state="OPEN")[-1].order
    assert order.filled_quantity == 100  # the displayed ask size

    def modify(quantity, quote=acme):
        engine.modify("u1", order.order_id, quantity=quantity, quote=quote, now_ms=2, market_ms=2,
                      market_state="PAUSED")

    modify(340)  # 340 × 100.01 would be 34,003.40, but the 240 left to buy are 24,002.40
    with pytest.raises(BadRequest, match="order value 26,002.60 exceeds maxOrderValue 25,000.00 by 1,002.60"):
        modify(360)
    modify(360, None)  # no quote, nothing to value
    assert engine.order(order.order_id).quantity == 360


# ----- the class-wide view ---------------------------------------------------------------------------------


def test_rank_by_risk_orders_by_var_relative_to_value():
    metrics = {
        "calm": metrics_with(var95=50_000, total_value=10_000_000),   # 0.5 %
        "wild": metrics_with(var95=300_000, total_value=5_000_000),   # 6 %
        "big": metrics_with(var95=600_000, total_value=20_000_000),   # 3 %
        "same": metrics_with(var95=150_000, total_value=5_000_000),   # 3 %, smaller VaR than "big"
        "new": metrics_with(var95=None, total_value=10_000_000),
        "broke": metrics_with(var95=10_000, total_value=0),
    }
    ranked = rank_by_risk(metrics)
    assert [(e.rank, e.portfolio_id, e.relative_var95) for e in ranked] == [
        (1, "wild", 0.06), (2, "big", 0.03), (3, "same", 0.03), (4, "calm", 0.005), (5, "broke", None),
        (6, "new", None),
    ]
    assert ranked[0] == RiskRank(1, "wild", 0.06, metrics["wild"])
