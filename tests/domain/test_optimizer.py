"""Portfolio optimiser: Ledoit-Wolf shrinkage, the three objectives against closed forms, constraints, rebalancing."""

import itertools
import math
import random

import numpy as np
import pytest

from domain.errors import BadRequest
from domain.market import MarketSimulator
from domain.optimizer import (
    OBJECTIVES,
    Objective,
    Parameter,
    ParameterError,
    RebalanceOrder,
    ledoit_wolf,
    optimization_result,
    optimize,
    portfolio_stats,
    rebalance_orders,
    returns_matrix,
)
from domain.trading import Side

START = 1_764_126_000_000


def random_problem(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily-scale expected returns and a positive-definite covariance with mixed correlations and volatilities."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n, 3)) * 0.01
    vols = rng.uniform(0.01, 0.03, n)
    cov = factors @ factors.T + np.diag(vols**2)
    mu = rng.normal(0.0005, 0.0007, n)
    return mu, cov


def simplex_grid(n: int, lo: float, hi: float, step: float = 0.01):
    units = round(1 / step)
    for head in itertools.product(range(units + 1), repeat=n - 1):
        last = units - sum(head)
        if last < 0:
            continue
        w = np.array([*head, last]) * step
        if np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12):
            yield w


# ----- Ledoit-Wolf ---------------------------------------------------------------------------------------------------


def test_identity_target_reproduces_scikit_learns_published_example():
    """scikit-learn's `ledoit_wolf` docstring: real_cov [[.4, .2], [.2, .8]], RandomState(0), 50 draws
    -> covariance [[0.44, 0.16], [0.16, 0.80]] and shrinkage 0.23 (as printed there, two decimals)."""
    rng = np.random.RandomState(0)
    x = rng.multivariate_normal(mean=[0, 0], cov=[[0.4, 0.2], [0.2, 0.8]], size=50)
    cov, shrinkage = ledoit_wolf(x, target="identity")
    assert shrinkage == pytest.approx(0.23, abs=0.005)
    assert cov == pytest.approx(np.array([[0.44, 0.16], [0.16, 0.80]]), abs=0.005)


def hand_constant_correlation(x: list[list[float]]) -> tuple[list[list[float]], float]:
    """Ledoit & Wolf (2004, "Honey, I shrunk...") written out term by term from the paper, with plain loops."""
    t, n = len(x), len(x[0])
    means = [sum(row[i] for row in x) / t for i in range(n)]
    d = [[row[i] - means[i] for i in range(n)] for row in x]
    s = [[sum(r[i] * r[j] for r in d) / t for j in range(n)] for i in range(n)]
    r_bar = sum(s[i][j] / math.sqrt(s[i][i] * s[j][j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    f = [[s[i][i] if i == j else r_bar * math.sqrt(s[i][i] * s[j][j]) for j in range(n)] for i in range(n)]
    pi = [[sum((r[i] * r[j] - s[i][j]) ** 2 for r in d) / t for j in range(n)] for i in range(n)]

    def theta(k, i, j):  # theta_kk,ij
        return sum((r[k] ** 2 - s[k][k]) * (r[i] * r[j] - s[i][j]) for r in d) / t

    rho = sum(pi[i][i] for i in range(n))
    for i in range(n):
        for j in range(n):
            if i != j:
                ratio = math.sqrt(s[j][j] / s[i][i])
                rho += r_bar / 2 * (ratio * theta(i, i, j) + theta(j, i, j) / ratio)
    gamma = sum((f[i][j] - s[i][j]) ** 2 for i in range(n) for j in range(n))
    kappa = (sum(map(sum, pi)) - rho) / gamma
    delta = max(0.0, min(1.0, kappa / t))
    return [[delta * f[i][j] + (1 - delta) * s[i][j] for j in range(n)] for i in range(n)], delta


def test_constant_correlation_target_matches_the_papers_formulas_by_hand():
    x = [  # 12 days of 3 assets, the first two strongly correlated and the third not
        [0.0204, 0.0010, -0.0035],
        [-0.0057, -0.0073, -0.0035],
        [-0.0202, -0.0176, -0.0093],
        [0.0332, 0.0279, -0.0028],
        [-0.0028, -0.0063, -0.0126],
        [-0.0039, -0.0002, -0.0009],
        [0.0096, 0.0065, -0.0004],
        [0.0155, 0.0156, -0.0034],
        [-0.0018, 0.0018, 0.0210],
        [-0.0027, -0.0036, 0.0093],
        [-0.0089, -0.0088, 0.0080],
        [0.0058, 0.0052, 0.0070],
    ]
    expected_cov, expected_delta = hand_constant_correlation(x)
    cov, delta = ledoit_wolf(np.array(x))
    assert expected_delta == pytest.approx(0.3633, abs=1e-4)
    assert delta == pytest.approx(expected_delta, rel=1e-12)
    assert cov == pytest.approx(np.array(expected_cov), rel=1e-12)
    assert np.diag(cov) == pytest.approx(np.var(np.array(x), axis=0), rel=1e-12)  # variances are kept


@pytest.mark.parametrize("target", ["constant_correlation", "identity"])
@pytest.mark.parametrize(("t", "n"), [(5, 10), (30, 4), (250, 8)])
def test_shrinkage_stays_within_zero_and_one_and_the_estimate_is_positive_definite(target, t, n):
    rng = np.random.default_rng(t * n)
    x = rng.normal(size=(t, n)) @ rng.normal(size=(n, n)) * 0.01
    cov, shrinkage = ledoit_wolf(x, target=target)
    assert 0.0 <= shrinkage <= 1.0
    assert np.allclose(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0  # even with fewer observations than assets


def test_two_assets_need_no_constant_correlation_shrinkage():
    x = np.random.default_rng(1).normal(size=(40, 2))
    cov, shrinkage = ledoit_wolf(x)
    assert shrinkage == 0.0
    assert cov == pytest.approx(np.cov(x.T, ddof=0))


# ----- the objectives against closed forms ---------------------------------------------------------------------------


@pytest.mark.parametrize(("s1", "s2"), [(0.2, 0.1), (0.15, 0.15), (0.05, 0.3)])
def test_min_variance_of_two_uncorrelated_assets_weights_them_by_the_other_ones_variance(s1, s2):
    w = optimize("MIN_VARIANCE", [0.0, 0.0], np.diag([s1**2, s2**2]))
    assert w == pytest.approx([s2**2 / (s1**2 + s2**2), s1**2 / (s1**2 + s2**2)], abs=1e-7)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_risk_parity_of_equally_volatile_uncorrelated_assets_is_equal_weights(n):
    w = optimize("RISK_PARITY", np.zeros(n), np.eye(n) * 0.0004)
    assert w == pytest.approx(np.full(n, 1 / n), abs=1e-7)


@pytest.mark.parametrize("correlation", [-0.5, 0.0, 0.7])
def test_risk_parity_of_two_assets_weights_them_by_inverse_volatility(correlation):
    s1, s2 = 0.02, 0.05
    cov = np.array([[s1 * s1, correlation * s1 * s2], [correlation * s1 * s2, s2 * s2]])
    w = optimize("RISK_PARITY", [0.0, 0.0], cov)
    assert w == pytest.approx(np.array([1 / s1, 1 / s2]) / (1 / s1 + 1 / s2), abs=1e-7)


def test_risk_parity_equalises_risk_contributions_in_a_correlated_market():
    mu, cov = random_problem(3, 8)
    w = optimize("RISK_PARITY", mu, cov)
    contributions = w * (cov @ w)
    assert contributions / contributions.sum() == pytest.approx(np.full(8, 1 / 8), abs=1e-6)


@pytest.mark.parametrize("risk_free", [0.0, 0.0002])
def test_max_sharpe_of_two_assets_is_the_tangency_portfolio(risk_free):
    mu = np.array([0.0010, 0.0006])
    cov = np.array([[0.0004, 0.00006], [0.00006, 0.0001]])
    tangency = np.linalg.solve(cov, mu - risk_free)
    tangency /= tangency.sum()
    assert np.all(tangency > 0)
    w = optimize("MAX_SHARPE", mu, cov, risk_free=risk_free)
    assert w == pytest.approx(tangency, abs=1e-6)


def test_max_sharpe_of_two_uncorrelated_assets_weights_excess_return_over_variance():
    mu, var = np.array([0.001, 0.0005]), np.array([0.0004, 0.0001])
    w = optimize("MAX_SHARPE", mu, np.diag(var))
    expected = (mu / var) / (mu / var).sum()
    assert w == pytest.approx(expected, abs=1e-6)


def test_max_sharpe_falls_back_to_min_variance_when_nothing_beats_the_risk_free_rate():
    cov = np.diag([0.04, 0.01])
    assert optimize("MAX_SHARPE", [-0.001, -0.002], cov) == pytest.approx([0.2, 0.8], abs=1e-7)
    assert optimize("MAX_SHARPE", [0.001, 0.001], cov, risk_free=0.002) == pytest.approx([0.2, 0.8], abs=1e-7)


# ----- constraints ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "bounds", "expected"),
    [
        ("MIN_VARIANCE", (0.0, 0.7), [0.3, 0.7]),  # unconstrained: 0.2 / 0.8
        ("MIN_VARIANCE", (0.25, 1.0), [0.25, 0.75]),
        ("RISK_PARITY", (0.0, 0.6), [0.4, 0.6]),  # unconstrained: 1/3 / 2/3
        ("MAX_SHARPE", (0.4, 1.0), [0.4, 0.6]),  # unconstrained: 1/3 / 2/3
    ],
)
def test_a_binding_bound_holds_the_weight_at_it(objective, bounds, expected):
    mu, cov = np.array([0.001, 0.0005]), np.diag([0.04, 0.01])
    w = optimize(objective, mu, cov, min_weight=bounds[0], max_weight=bounds[1])
    assert w == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (0.1, 0.5), (0.0, 0.4), (0.2, 0.45)])
def test_min_variance_and_max_sharpe_beat_every_point_of_a_fine_grid(bounds):
    lo, hi = bounds
    mu, cov = random_problem(11, 3)
    mu = np.abs(mu) + 0.0002
    grid = np.array(list(simplex_grid(3, lo, hi)))
    best_variance = np.einsum("ij,jk,ik->i", grid, cov, grid).min()
    best_sharpe = ((grid @ mu) / np.sqrt(np.einsum("ij,jk,ik->i", grid, cov, grid))).max()

    w = optimize("MIN_VARIANCE", mu, cov, min_weight=lo, max_weight=hi)
    assert w @ cov @ w <= best_variance * (1 + 1e-9)
    w = optimize("MAX_SHARPE", mu, cov, min_weight=lo, max_weight=hi)
    assert (w @ mu) / math.sqrt(w @ cov @ w) >= best_sharpe * (1 - 1e-9)


@pytest.mark.parametrize(("lo", "hi"), [(0.0, 1.0), (0.02, 0.15), (0.0, 0.1)])
def test_min_variance_and_max_sharpe_meet_the_optimality_conditions_on_twelve_assets(lo, hi):
    """KKT on the budget-and-box set: the objective's gradient is equal across the weights strictly inside their
    bounds, and no weight held at a bound could improve it by moving inwards."""
    mu, cov = random_problem(21, 12)
    mu = mu + 0.001

    def check(w, gradient, sign, scale):  # sign +1: minimising, -1: maximising; scale: the gradient's size
        g = sign * gradient
        inside = (w > lo + 1e-7) & (w < hi - 1e-7)
        level = g[inside].mean()
        assert np.abs(g[inside] - level).max() <= 1e-5 * scale
        assert np.all(g[w <= lo + 1e-7] >= level - 1e-5 * scale)
        assert np.all(g[w >= hi - 1e-7] <= level + 1e-5 * scale)

    w = optimize("MIN_VARIANCE", mu, cov, min_weight=lo, max_weight=hi)
    check(w, 2 * cov @ w, +1, np.abs(2 * cov @ w).max())
    w = optimize("MAX_SHARPE", mu, cov, min_weight=lo, max_weight=hi)
    sigma = math.sqrt(w @ cov @ w)
    check(w, mu / sigma - (mu @ w) * (cov @ w) / sigma**3, -1, np.abs(mu).max() / sigma)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize(("seed", "n", "lo", "hi"), [(1, 8, 0.0, 0.2), (2, 12, 0.05, 0.15), (3, 5, 0.0, 1.0)])
def test_weights_are_long_only_within_bounds_and_sum_to_one(objective, seed, n, lo, hi):
    mu, cov = random_problem(seed, n)
    w = optimize(objective, mu, cov, min_weight=lo, max_weight=hi)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12)


def test_bounds_that_allow_only_equal_weights_give_equal_weights():
    mu, cov = random_problem(4, 4)
    for objective in OBJECTIVES:
        assert optimize(objective, mu, cov, max_weight=0.25) == pytest.approx(np.full(4, 0.25))
        assert optimize(objective, mu, cov, min_weight=0.25) == pytest.approx(np.full(4, 0.25))


@pytest.mark.parametrize(
    ("n", "options", "message"),
    [
        (3, {"max_weight": 0.3}, "max_weight must be at least 1/3"),
        (4, {"min_weight": 0.3}, "min_weight must be at most 1/4"),
        (3, {"min_weight": 0.3, "max_weight": 0.2}, "min_weight 0.3 is above max_weight 0.2"),
        (3, {"min_weight": -0.1}, "long-only"),
        (3, {"max_weight": 1.5}, "long-only"),
        (3, {"max_weight": True}, "max_weight must be a number"),
        (3, {"min_weight": "0.1"}, "min_weight must be a number"),
    ],
)
def test_impossible_or_malformed_constraints_are_bad_requests_naming_the_option(n, options, message):
    mu, cov = random_problem(5, n)
    with pytest.raises(ParameterError, match=message) as caught:
        optimize("MIN_VARIANCE", mu, cov, **options)
    assert isinstance(caught.value, BadRequest)


def test_a_refused_option_can_be_called_by_the_callers_name():
    mu, cov = random_problem(5, 3)
    with pytest.raises(ParameterError) as caught:
        optimize("MIN_VARIANCE", mu, cov, min_weight=0.3, max_weight=0.2)
    names = {Parameter.MIN_WEIGHT: "floor", Parameter.MAX_WEIGHT: "cap", Parameter.RISK_FREE: "rate"}
    assert caught.value.render(names) == "floor 0.3 is above cap 0.2"
    assert caught.value.message == "min_weight 0.3 is above max_weight 0.2"


def test_a_single_asset_is_a_bad_request():
    with pytest.raises(BadRequest, match="at least two symbols"):
        optimize("MIN_VARIANCE", [0.001], np.eye(1))


def test_an_unknown_objective_is_a_bad_request():
    with pytest.raises(BadRequest, match="use one of MAX_SHARPE, MIN_VARIANCE, RISK_PARITY"):
        optimize("MAX_RETURN", [0.0, 0.0], np.eye(2))


# ----- rebalancing ---------------------------------------------------------------------------------------------------


def test_rebalance_sells_first_in_whole_shares_and_never_overspends():
    orders = rebalance_orders(
        {"AAA": 0.5, "BBB": 0.3, "CCC": 0.2},
        {"AAA": 100, "BBB": 10, "DDD": 7},
        {"AAA": 10_000, "BBB": 3_300, "CCC": 7_000},
        1_000_000,
    )
    # AAA: 500000 / 10000 = 50 (sell 50); BBB: floor(300000 / 3300) = 90 (buy 80); CCC: floor(200000 / 7000) = 28.
    assert orders == [
        RebalanceOrder("AAA", Side.SELL, 50),
        RebalanceOrder("DDD", Side.SELL, 7),
        RebalanceOrder("BBB", Side.BUY, 80),
        RebalanceOrder("CCC", Side.BUY, 28),
    ]
    assert 50 * 10_000 + 90 * 3_300 + 28 * 7_000 <= 1_000_000


def test_rebalance_of_a_portfolio_already_at_its_targets_places_nothing():
    assert (
        rebalance_orders({"AAA": 0.3, "BBB": 0.7}, {"AAA": 30, "BBB": 70}, {"AAA": 1_000, "BBB": 1_000}, 100_000) == []
    )


def test_rebalance_weights_that_land_on_whole_shares_are_not_floored_one_short():
    # 0.7 * 100000 / 1000 is 70.00000000000001 or 69.99999999999999 in floats, depending on the order of operations.
    orders = rebalance_orders(
        {"AAA": 0.1, "BBB": 0.7, "CCC": 0.2}, {}, {s: 1_000 for s in "AAA BBB CCC".split()}, 100_000
    )
    assert [o.quantity for o in orders] == [10, 70, 20]


# ----- from the simulated market to OPTIMIZATION_RESULT --------------------------------------------------------------


@pytest.fixture(scope="module")
def market():
    return MarketSimulator(rng=random.Random(4), start_market_ms=START, history_days=120, minute_history_days=0)


def test_returns_matrix_holds_each_symbols_daily_returns_in_columns(market):
    x = returns_matrix(market, ["NVTX", "CRVL", "QBIT"], 60)
    assert x.shape == (60, 3)
    assert x[:, 1].tolist() == market.daily_returns("CRVL", 60)


@pytest.mark.parametrize(
    ("symbols", "lookback", "message"),
    [
        (["NVTX", "NOPE", "ZZZZ"], 60, "unknown symbols: NOPE, ZZZZ"),
        (["NVTX"], 60, "at least two symbols"),
        (["NVTX", "NVTX"], 60, "must not repeat"),
        ("NVTX", 60, "list of symbol strings"),
        (["NVTX", "CRVL"], 2, "lookback"),
        (["NVTX", "CRVL"], 5000, "lookback"),
    ],
)
def test_bad_optimisation_requests_are_refused_with_a_clear_message(market, symbols, lookback, message):
    with pytest.raises(BadRequest, match=message):
        returns_matrix(market, symbols, lookback)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_optimization_result_is_annualised_over_252_days_with_orders_towards_its_weights(market, objective):
    symbols = ["NVTX", "CRVL", "BKNR", "MEDX"]
    x = returns_matrix(market, symbols, 90)
    prices = {s: market.quote(s).price for s in symbols}
    holdings = {"NVTX": 40, "PHLN": 12}
    total = 5_000_000
    result = optimization_result(
        objective,
        symbols,
        x,
        holdings=holdings,
        prices_cents=prices,
        total_value_cents=total,
        min_weight=0.1,
        max_weight=0.5,
        risk_free=0.02,
    )
    assert result.objective == objective and isinstance(result.objective, Objective)
    weights = result.weights
    assert list(weights) == symbols
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(0.1 - 1e-12 <= w <= 0.5 + 1e-12 for w in weights.values())

    w = np.array([weights[s] for s in symbols])
    cov, _ = ledoit_wolf(x)
    assert result.expected_return == pytest.approx(252 * x.mean(axis=0) @ w, rel=1e-12)
    assert result.expected_volatility == pytest.approx(math.sqrt(252 * w @ cov @ w), rel=1e-12)
    assert result.sharpe_ratio == pytest.approx((result.expected_return - 0.02) / result.expected_volatility, rel=1e-12)
    annual = portfolio_stats(w, x.mean(axis=0), cov, risk_free=0.02)
    assert annual[0] == pytest.approx(result.expected_return, rel=1e-12)

    sells = [o for o in result.rebalance if o.side == Side.SELL]
    assert result.rebalance[: len(sells)] == sells
    assert RebalanceOrder("PHLN", Side.SELL, 12) in sells
    after = dict.fromkeys(symbols, 0) | {s: q for s, q in holdings.items() if s in symbols}
    for order in result.rebalance:
        if order.symbol in after:
            after[order.symbol] += order.quantity if order.side == Side.BUY else -order.quantity
    for s in symbols:
        assert after[s] * prices[s] <= weights[s] * total + prices[s]  # within a share of the target
        assert after[s] * prices[s] > weights[s] * total - 2 * prices[s]


def test_a_symbol_that_never_moved_cannot_be_optimised():
    x = np.column_stack([np.random.default_rng(2).normal(0, 0.01, 30), np.zeros(30)])
    with pytest.raises(BadRequest, match="no price movement"):
        optimization_result(
            "MIN_VARIANCE", ["AAA", "BBB"], x, holdings={}, prices_cents={"AAA": 1, "BBB": 1}, total_value_cents=0
        )


SWEEP = [(count, lo, hi) for count in (2, 3, 5, 10, 20, 38)
         for lo, hi in ((0.0, 1.0), (0.0, 0.5), (0.0, 0.3), (0.01, 0.6), (0.02, 0.5))
         if count * hi >= 1 and count * lo <= 1]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize(("count", "lo", "hi"), SWEEP)
@pytest.mark.parametrize("lookback", [3, 30])
def test_every_objective_symbol_count_and_constraint_gives_admissible_weights_and_orders(
        market, objective, count, lo, hi, lookback):
    """SLSQP's answers come back inside the bounds exactly (it returned -5.6e-18 and the request failed)."""
    symbols = [spec.symbol for spec in market.specs()][:count]
    result = optimization_result(
        objective, symbols, returns_matrix(market, symbols, lookback), holdings={},
        prices_cents={s: market.quote(s).price for s in symbols}, total_value_cents=10_000_000,
        min_weight=lo, max_weight=hi)
    weights = np.array(list(result.weights.values()))
    assert np.all(weights >= lo) and np.all(weights <= hi)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
