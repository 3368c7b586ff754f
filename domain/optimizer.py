"""Portfolio optimisation: shrunk covariance of simulated returns, constrained weights, and the rebalance orders.

Three objectives over chosen symbols, long-only, weights summing to 1 within [min_weight, max_weight]:

- ``MIN_VARIANCE``: the least variance w'Cw;
- ``MAX_SHARPE``: the highest (mu'w - rf) / sqrt(w'Cw); when no admissible mix has an expected return above the
  risk-free rate, taking risk cannot raise the ratio and the MIN_VARIANCE weights are returned instead;
- ``RISK_PARITY``: every asset contributes the same share of variance (w_i (Cw)_i equal). With bounds that forbid
  it, the weights are the constrained solution of Spinu's convex program: min 1/2 y'Cy - (1/n) sum ln y_i over the
  cone lo * sum(y) <= y_i <= hi * sum(y), normalised to sum 1 (equal risk contributions whenever the bounds allow).

C is the Ledoit-Wolf shrunk covariance of the returns (constant-correlation target by default) and mu their sample
mean, both per period (simulated trading days); results are annualised with 252 periods a year (return x 252,
volatility x sqrt(252), Sharpe from those). The constrained programs are solved with SciPy's SLSQP (all three are
convex in the form solved: MAX_SHARPE through the Charnes-Cooper transform) and the answer is projected back onto
the constraint set, so box and budget hold to rounding.
"""

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from domain.errors import BadRequest
from domain.trading import Side

__all__ = [
    "Objective",
    "OBJECTIVES",
    "PERIODS_PER_YEAR",
    "DEFAULT_LOOKBACK",
    "MAX_LOOKBACK",
    "Parameter",
    "ParameterError",
    "RebalanceOrder",
    "OptimizationResult",
    "ledoit_wolf",
    "optimize",
    "portfolio_stats",
    "rebalance_orders",
    "returns_matrix",
    "optimization_result",
]


class Objective(enum.StrEnum):
    """What the optimiser optimises (see the module docstring)."""

    MAX_SHARPE = "MAX_SHARPE"
    MIN_VARIANCE = "MIN_VARIANCE"
    RISK_PARITY = "RISK_PARITY"


OBJECTIVES = tuple(Objective)
PERIODS_PER_YEAR = 252
DEFAULT_LOOKBACK = 60  # simulated trading days of returns
MAX_LOOKBACK = 1000
_MIN_OBSERVATIONS = 3
_TOLERANCE = 1e-12


class Parameter(enum.StrEnum):
    """The optimiser's options that a refusal can name."""

    MIN_WEIGHT = "min_weight"
    MAX_WEIGHT = "max_weight"
    RISK_FREE = "risk_free"


class ParameterError(BadRequest):
    """Weight bounds or a risk-free rate the optimiser refuses, with a message that names the options at fault.

    `template` names each option as a `{min_weight}`, `{max_weight}` or `{risk_free}` field, so that `render` can
    call them what the caller calls them (the wire module passes the protocol's names); `message` uses these
    Python names.
    """

    def __init__(self, template: str, **values):
        self.template, self.values = template, values
        super().__init__(self.render({p: p.value for p in Parameter}))

    def render(self, names: Mapping[Parameter, str]) -> str:
        return self.template.format(**{p.value: names[p] for p in Parameter}, **self.values)


@dataclass(frozen=True, slots=True)
class RebalanceOrder:
    """One whole-share order that moves a portfolio towards its target weights."""

    symbol: str
    side: Side
    quantity: int


@dataclass(frozen=True, slots=True)
class OptimizationResult:
    """The optimiser's answer: target weights, their annualised statistics and the orders that reach them.

    `weights` maps each symbol (in the order asked) to its exact weight; the weights sum to 1 to rounding.
    `expected_return` and `expected_volatility` are annual fractions; `sharpe_ratio` is None at zero volatility.
    """

    objective: Objective
    weights: dict[str, float]
    expected_return: float
    expected_volatility: float
    sharpe_ratio: float | None
    rebalance: list[RebalanceOrder]


# ----- covariance ------------------------------------------------------------------------------------------------


def ledoit_wolf(returns: np.ndarray, *, target: str = "constant_correlation") -> tuple[np.ndarray, float]:
    """The Ledoit-Wolf shrunk covariance of `returns` (T observations x n assets) and its shrinkage in [0, 1].

    Both estimators shrink the sample covariance S = X'X / T of the demeaned returns X (divisor T, not T - 1)
    towards a structured target F: sigma = delta * F + (1 - delta) * S.

    ``target="constant_correlation"`` (the default) is Ledoit & Wolf, "Honey, I shrunk the sample covariance
    matrix", Journal of Portfolio Management 30(4), 2004, 110-119, as in the authors' covCor.m: F keeps the sample
    variances and sets every correlation to the average sample correlation r_bar, f_ij = r_bar sqrt(s_ii s_jj);
    delta = max(0, min(1, kappa / T)) with kappa = (pi - rho) / gamma, where

        pi    = sum_ij pi_ij,  pi_ij = (1/T) sum_t (x_ti x_tj - s_ij)^2
        rho   = sum_i pi_ii + sum_{i != j} (r_bar / 2) (sqrt(s_jj / s_ii) theta_ii,ij + sqrt(s_ii / s_jj) theta_jj,ij)
        theta_ii,ij = (1/T) sum_t (x_ti^2 - s_ii) (x_ti x_tj - s_ij)
        gamma = sum_ij (f_ij - s_ij)^2

    It keeps each asset's own variance, which is what lets low-volatility assets stand out in MIN_VARIANCE.
    Every asset must have moved (s_ii > 0).

    ``target="identity"`` is Ledoit & Wolf, "A well-conditioned estimator for large-dimensional covariance
    matrices", Journal of Multivariate Analysis 88(2), 2004, 365-411 (as scikit-learn's `ledoit_wolf`): F = m I with
    m = trace(S) / n, delta = b^2 / d^2 where d^2 = ||S - m I||_F^2 and
    b^2 = min(d^2, (1/T^2) sum_t ||x_t x_t' - S||_F^2).

    When S already equals its target the shrinkage is 0.
    """
    x = np.asarray(returns, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError("returns must be a T x n array with T >= 2")
    if not np.all(np.isfinite(x)):
        raise ValueError("returns must be finite")
    t, n = x.shape
    x = x - x.mean(axis=0)
    sample = x.T @ x / t
    if target == "identity":
        mu = np.trace(sample) / n
        d2 = float(np.sum((sample - mu * np.eye(n)) ** 2))
        squares = x * x
        b2 = float(np.sum(squares.T @ squares) / t - np.sum(sample**2)) / t
        b2 = min(max(b2, 0.0), d2)
        shrinkage = b2 / d2 if d2 > 0 else 0.0
        return shrinkage * mu * np.eye(n) + (1.0 - shrinkage) * sample, shrinkage
    if target != "constant_correlation":
        raise ValueError(f"unknown shrinkage target {target!r}")
    var = np.diag(sample).copy()
    if np.any(var <= 0):
        raise ValueError("every asset needs a positive sample variance")
    sd = np.sqrt(var)
    if n == 1:
        return sample, 0.0
    r_bar = (np.sum(sample / np.outer(sd, sd)) - n) / (n * (n - 1))
    prior = r_bar * np.outer(sd, sd)
    np.fill_diagonal(prior, var)
    squares = x * x
    pi_mat = squares.T @ squares / t - sample**2  # (1/T) sum_t (x_ti x_tj - s_ij)^2
    theta = (x**3).T @ x / t - var[:, None] * sample  # theta_ii,ij
    np.fill_diagonal(theta, 0.0)
    rho = float(np.trace(pi_mat) + r_bar * np.sum(np.outer(1.0 / sd, sd) * theta))
    gamma = float(np.sum((sample - prior) ** 2))
    if gamma <= _TOLERANCE * float(np.sum(sample**2)):
        return sample, 0.0
    kappa = (float(np.sum(pi_mat)) - rho) / gamma
    shrinkage = max(0.0, min(1.0, kappa / t))
    return shrinkage * prior + (1.0 - shrinkage) * sample, shrinkage


# ----- weights ---------------------------------------------------------------------------------------------------


def _number(value: object, parameter: Parameter) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ParameterError("{" + parameter + "} must be a number")
    return float(value)


def _check_constraints(n: int, min_weight: object, max_weight: object) -> tuple[float, float]:
    lo, hi = _number(min_weight, Parameter.MIN_WEIGHT), _number(max_weight, Parameter.MAX_WEIGHT)
    if n < 2:
        raise BadRequest("choose at least two symbols to optimise")
    if not 0.0 <= lo <= 1.0 or not 0.0 < hi <= 1.0:
        raise ParameterError("{min_weight} must be within 0..1 and {max_weight} within (0, 1] (long-only weights)")
    if lo > hi:
        raise ParameterError("{min_weight} {lo:g} is above {max_weight} {hi:g}", lo=lo, hi=hi)
    if n * hi < 1.0 - 1e-9:
        raise ParameterError(
            "impossible constraints: {n} symbols at most {hi:g} each cannot add up to 100 %; "
            "{max_weight} must be at least 1/{n} = {share:.4f}",
            n=n,
            hi=hi,
            share=1 / n,
        )
    if n * lo > 1.0 + 1e-9:
        raise ParameterError(
            "impossible constraints: {n} symbols at least {lo:g} each add up to more than 100 %; "
            "{min_weight} must be at most 1/{n} = {share:.4f}",
            n=n,
            lo=lo,
            share=1 / n,
        )
    return lo, hi


def _project(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The closest point to v (Euclidean) with lo <= w_i <= hi and sum(w) = 1: clip(v - tau), tau by bisection."""
    low, high = float(np.min(v)) - hi, float(np.max(v)) - lo
    for _ in range(200):
        tau = (low + high) / 2
        if np.clip(v - tau, lo, hi).sum() > 1.0:
            low = tau
        else:
            high = tau
    w = np.clip(v - (low + high) / 2, lo, hi)
    # Spread the last rounding error over the weights that are not at a bound.
    free = (w > lo) & (w < hi)
    if free.any():
        w[free] += (1.0 - w.sum()) / free.sum()
    return w


def _max_return_weights(excess: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The admissible weights with the highest expected excess return: everyone at lo, then fill the best to hi."""
    w = np.full(excess.size, lo)
    room = 1.0 - w.sum()
    for i in np.argsort(-excess, kind="stable"):
        add = min(hi - lo, room)
        w[i] += add
        room -= add
        if room <= 0:
            break
    return w


def _solve(fun, jac, x0, bounds, constraints) -> np.ndarray:
    from scipy.optimize import minimize  # here, not at the top: importing SciPy is half the server's start-up

    result = minimize(
        fun,
        x0,
        jac=jac,
        bounds=bounds,
        constraints=constraints,
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    x = result.x if np.all(np.isfinite(result.x)) else x0
    return np.asarray(x, dtype=float)


def _min_variance(cov: np.ndarray, lo: float, hi: float) -> np.ndarray:
    n = cov.shape[0]
    x0 = np.full(n, 1.0 / n)
    w = _solve(
        lambda w: float(w @ cov @ w),
        lambda w: 2.0 * cov @ w,
        x0,
        [(lo, hi)] * n,
        [{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}],
    )
    w = _project(w, lo, hi)
    return w if w @ cov @ w <= x0 @ cov @ x0 else x0


def _max_sharpe(excess: np.ndarray, cov: np.ndarray, lo: float, hi: float) -> np.ndarray:
    best = _max_return_weights(excess, lo, hi)
    scale = float(np.max(np.abs(excess)))
    if scale == 0.0 or best @ excess <= _TOLERANCE * scale:
        return _min_variance(cov, lo, hi)
    e = excess / scale
    n = e.size
    # Charnes-Cooper: y = w / (e'w) turns the ratio into min y'Cy subject to e'y = 1 and lo*sum(y) <= y <= hi*sum(y).
    constraints = [
        {"type": "eq", "fun": lambda y: y @ e - 1.0, "jac": lambda y: e},
        {"type": "ineq", "fun": lambda y: hi * y.sum() - y, "jac": lambda y: hi * np.ones((n, n)) - np.eye(n)},
        {"type": "ineq", "fun": lambda y: y - lo * y.sum(), "jac": lambda y: np.eye(n) - lo * np.ones((n, n))},
    ]
    y = _solve(lambda y: float(y @ cov @ y), lambda y: 2.0 * cov @ y, best / (best @ e), [(0.0, None)] * n, constraints)
    total = y.sum()
    w = _project(y / total if total > 0 else best, lo, hi)

    def sharpe(v: np.ndarray) -> float:
        return float(v @ e) / math.sqrt(max(float(v @ cov @ v), 1e-300))

    return w if sharpe(w) >= sharpe(best) else best


def _risk_parity(cov: np.ndarray, lo: float, hi: float) -> np.ndarray:
    n = cov.shape[0]
    ones = np.ones(n)
    x0 = ones / math.sqrt(float(ones @ cov @ ones))
    constraints = []
    if hi < 1.0:
        constraints.append(
            {"type": "ineq", "fun": lambda y: hi * y.sum() - y, "jac": lambda y: hi * np.ones((n, n)) - np.eye(n)}
        )
    if lo > 0.0:
        constraints.append(
            {"type": "ineq", "fun": lambda y: y - lo * y.sum(), "jac": lambda y: np.eye(n) - lo * np.ones((n, n))}
        )
    y = _solve(
        lambda y: 0.5 * float(y @ cov @ y) - float(np.sum(np.log(y))) / n,
        lambda y: cov @ y - 1.0 / (n * y),
        x0,
        [(1e-12, None)] * n,
        constraints,
    )
    return _project(y / y.sum(), lo, hi)


def optimize(
    objective: str,
    expected_returns: Sequence[float] | np.ndarray,
    cov: np.ndarray,
    *,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    risk_free: float = 0.0,
) -> np.ndarray:
    """Long-only weights (summing to 1, each within [min_weight, max_weight]) for `objective` over n assets.

    `expected_returns` (n) and `cov` (n x n) are per period and `risk_free` is in the same units (only MAX_SHARPE
    uses either). BadRequest for an unknown objective or fewer than two assets; ParameterError (a BadRequest) for
    bounds outside 0..1 or impossible constraints (n x max_weight < 1 or n x min_weight > 1).

    >>> optimize("MIN_VARIANCE", [0.0, 0.0], np.diag([0.04, 0.01])).round(6).tolist()
    [0.2, 0.8]
    """
    if objective not in OBJECTIVES:
        raise BadRequest(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    mu = np.asarray(expected_returns, dtype=float).ravel()
    c = np.asarray(cov, dtype=float)
    n = mu.size
    lo, hi = _check_constraints(n, min_weight, max_weight)
    if c.shape != (n, n):
        raise ValueError(f"cov must be {n} x {n}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(c)) and math.isfinite(risk_free)):
        raise ValueError("expected returns, covariance and risk-free rate must be finite")
    c = (c + c.T) / 2
    scale = float(np.mean(np.diag(c)))
    if not scale > 0:
        raise ValueError("the covariance has no variance")
    c = c / scale  # SLSQP's tolerances are absolute: work at unit average variance
    if abs(hi - lo) <= 1e-12 or abs(n * hi - 1.0) <= 1e-12 or abs(n * lo - 1.0) <= 1e-12:
        return np.full(n, 1.0 / n)  # only equal weights are admissible
    if objective == "MIN_VARIANCE":
        w = _min_variance(c, lo, hi)
    elif objective == "MAX_SHARPE":
        w = _max_sharpe(mu - risk_free, c, lo, hi)
    else:
        w = _risk_parity(c, lo, hi)
    # SLSQP meets bounds only within its tolerance (-5.6e-18 for a floor of 0): take the nearest admissible point.
    return np.clip(_project(w, lo, hi), lo, hi)


def portfolio_stats(
    weights: np.ndarray,
    expected_returns: np.ndarray,
    cov: np.ndarray,
    *,
    risk_free: float = 0.0,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> tuple[float, float, float | None]:
    """(annual expected return, annual volatility, Sharpe ratio or None at zero volatility) of `weights`.

    Return = periods_per_year x mu'w, volatility = sqrt(periods_per_year x w'Cw), Sharpe = (return - risk_free) /
    volatility with `risk_free` annual.
    """
    w = np.asarray(weights, dtype=float)
    annual_return = periods_per_year * float(np.asarray(expected_returns, dtype=float) @ w)
    annual_vol = math.sqrt(max(0.0, periods_per_year * float(w @ np.asarray(cov, dtype=float) @ w)))
    sharpe = (annual_return - risk_free) / annual_vol if annual_vol > 0 else None
    return annual_return, annual_vol, sharpe


# ----- orders ----------------------------------------------------------------------------------------------------


def rebalance_orders(
    target_weights: Mapping[str, float],
    holdings: Mapping[str, int],
    prices_cents: Mapping[str, int],
    total_value_cents: int,
) -> list[RebalanceOrder]:
    """The whole-share orders that take `holdings` to `target_weights`, sells first.

    Each target symbol's share count is floor(weight x total_value / price), so the buys never need more than the
    portfolio is worth at these prices (the remainder stays cash); a held symbol that is not among the targets is
    sold entirely, since the weights sum to 1 over the targets. No order is below one share. Sells come in target
    order and then by symbol, buys in target order. Pass the portfolio's total value (cash + positions at
    `prices_cents`) to invest all of it; `prices_cents` needs every target symbol.

    >>> orders = rebalance_orders({"A": 0.5, "B": 0.5}, {"A": 10, "C": 3}, {"A": 1_000, "B": 2_000}, 30_000)
    >>> [(o.symbol, o.side.value, o.quantity) for o in orders]
    [('C', 'SELL', 3), ('A', 'BUY', 5), ('B', 'BUY', 7)]
    """
    if isinstance(total_value_cents, bool) or not isinstance(total_value_cents, int) or total_value_cents < 0:
        raise ValueError("total_value_cents must be a non-negative integer")
    targets: dict[str, int] = {}
    for symbol, weight in target_weights.items():
        price = prices_cents.get(symbol)
        if isinstance(price, bool) or not isinstance(price, int) or price < 1:
            raise ValueError(f"no valid price for {symbol!r}")
        if not 0.0 <= weight <= 1.0 + 1e-9:
            raise ValueError(f"weight of {symbol!r} is outside 0..1")
        # A hair of tolerance so a weight that rounds to an exact share count is not floored one share short.
        targets[symbol] = max(0, math.floor(weight * total_value_cents / price + 1e-9))
    for symbol in sorted(holdings):
        targets.setdefault(symbol, 0)
    sells, buys = [], []
    for symbol, target in targets.items():
        delta = target - int(holdings.get(symbol, 0))
        if delta < 0:
            sells.append(RebalanceOrder(symbol, Side.SELL, -delta))
        elif delta > 0:
            buys.append(RebalanceOrder(symbol, Side.BUY, delta))
    return sells + buys


# ----- from the market to an OptimizationResult --------------------------------------------------------------------


def _check_symbols(symbols: object) -> list[str]:
    if isinstance(symbols, str) or not isinstance(symbols, Sequence) or not all(isinstance(s, str) for s in symbols):
        raise BadRequest("symbols must be a list of symbol strings")
    if len(set(symbols)) != len(symbols):
        raise BadRequest("symbols must not repeat")
    if len(symbols) < 2:
        raise BadRequest("choose at least two symbols to optimise")
    return list(symbols)


def returns_matrix(market, symbols: Sequence[str], lookback: int = DEFAULT_LOOKBACK) -> np.ndarray:
    """Daily simple returns (T x n, oldest first, columns in `symbols` order) of the last `lookback` completed days.

    `market` is a MarketSimulator (anything with `has(symbol)` and `daily_returns(symbol, lookback)`). Series are cut
    to their common length. BadRequest for unknown or repeated symbols, fewer than two, a lookback outside
    3..1000 or fewer than 3 days of history.
    """
    symbols = _check_symbols(symbols)
    unknown = [s for s in symbols if not market.has(s)]
    if unknown:
        raise BadRequest(f"unknown symbol{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    if isinstance(lookback, bool) or not isinstance(lookback, int) or not _MIN_OBSERVATIONS <= lookback <= MAX_LOOKBACK:
        raise BadRequest(f"lookback must be a whole number of days from {_MIN_OBSERVATIONS} to {MAX_LOOKBACK}")
    series = [market.daily_returns(s, lookback) for s in symbols]
    length = min(len(r) for r in series)
    if length < _MIN_OBSERVATIONS:
        raise BadRequest(f"only {length} days of returns so far; at least {_MIN_OBSERVATIONS} are needed")
    return np.array([r[len(r) - length :] for r in series], dtype=float).T


def optimization_result(
    objective: str,
    symbols: Sequence[str],
    returns: np.ndarray,
    *,
    holdings: Mapping[str, int],
    prices_cents: Mapping[str, int],
    total_value_cents: int,
    min_weight: float = 0.0,
    max_weight: float = 1.0,
    risk_free: float = 0.0,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> OptimizationResult:
    """The optimal weights for `objective` over `symbols` from their per-period `returns` (T x n), and what follows.

    Expected return and volatility are annualised with `periods_per_year` (252 for daily returns) from the sample
    mean and the Ledoit-Wolf (constant-correlation) covariance; the Sharpe ratio is against the annual `risk_free`;
    `rebalance` is `rebalance_orders` for the portfolio given by holdings / prices / total value. BadRequest for bad
    symbols or objective, or a symbol whose price never moved over the returns; ParameterError for bad constraints.
    """
    symbols = _check_symbols(symbols)
    x = np.asarray(returns, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(symbols):
        raise ValueError("returns must have one column per symbol")
    if x.shape[0] < _MIN_OBSERVATIONS:
        raise BadRequest(f"only {x.shape[0]} returns; at least {_MIN_OBSERVATIONS} are needed")
    flat = [s for s, v in zip(symbols, np.var(x, axis=0), strict=True) if not v > 0]
    if flat:
        raise BadRequest(f"no price movement to estimate risk from: {', '.join(flat)}")
    if objective not in OBJECTIVES:
        raise BadRequest(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")
    rf = _number(risk_free, Parameter.RISK_FREE)
    mu = x.mean(axis=0)
    cov, _ = ledoit_wolf(x)
    w = optimize(objective, mu, cov, min_weight=min_weight, max_weight=max_weight, risk_free=rf / periods_per_year)
    annual_return, annual_vol, sharpe = portfolio_stats(w, mu, cov, risk_free=rf, periods_per_year=periods_per_year)
    weights = dict(zip(symbols, w.tolist(), strict=True))
    return OptimizationResult(
        objective=Objective(objective),
        weights=weights,
        expected_return=annual_return,
        expected_volatility=annual_vol,
        sharpe_ratio=sharpe,
        rebalance=rebalance_orders(weights, holdings, prices_cents, total_value_cents),
    )
