"""The price process: each symbol's factor loadings, the exact coefficients of one step of its drift, and the
windows in which a scenario pushes a factor."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.universe import SymbolSpec

__all__ = ["PriceProcess", "StepCoefficients", "FactorScope", "FactorWindow"]


class FactorScope(StrEnum):
    """Which factor a window pushes: the market's, one sector's, or one symbol's own."""

    MARKET = "market"
    SECTOR = "sector"
    SYMBOL = "symbol"


@dataclass(frozen=True, slots=True)
class FactorWindow:
    """A push on one factor over [start_ms, end_ms) of market time: how a scenario moves prices without setting them.

    `drift` is the factor's extra log return over the whole window, spread evenly over its open market time, on top
    of the usual noise: a symbol's or a sector's factor moves each of its symbols by `drift`, the market factor moves
    each symbol by its beta times `drift` (so high-beta stocks swing more, as they do). `volatility` multiplies the
    standard deviation of every random shock of the symbols it covers (their factor noise and the innovations of
    their latent drift) while the window lasts. `name` is the sector or the symbol ("" for the market).
    """

    start_ms: int
    end_ms: int
    scope: FactorScope
    name: str = ""
    drift: float = 0.0
    volatility: float = 1.0


@dataclass(frozen=True, slots=True)
class StepCoefficients:
    """Coefficients of one exact time step of `dt` market milliseconds (see PriceProcess)."""

    sqrt_dt: float
    phi: float  # drift decay exp(-kappa dt)
    drift_mean: float  # E[integral of drift over the step] / drift at the start
    drift_sd: float  # per unit eta: sd of the drift's innovation
    integral_c1: float  # per unit eta: loading of the integral on the drift's innovation shock
    integral_c2: float  # per unit eta: loading of the integral on its own independent shock


class PriceProcess:
    """Owns the law of log-price returns: per-symbol factor loadings, drift speed and step coefficients.

    Log prices (of the price in cents, kept as floats so rounding never accumulates) move on each step of dt years,
    where a year is 252 simulated trading days of `day_length_ms`, by

        r_i = sqrt(1 - p) * sqrt(dt) * (beta_i * sigma_M * Z_M + sqrt(s) * sigma_i * Z_sector(i) + sigma_e,i * Z_i)
              + integral over the step of x_i

    with Z_M (market), Z_sector and Z_i independent standard normals, sigma_M = `market_volatility`,
    s = `sector_share` (each symbol's share of variance from its sector factor), sigma_i the spec's volatility and
    sigma_e,i chosen so that the three parts add up to sigma_i**2 (floored at 10% of it). Correlation within a sector
    therefore exceeds the correlation across sectors by about s * (1 - p) for every pair.

    x_i is a latent per-symbol drift, an Ornstein-Uhlenbeck process dx = -kappa x dt + eta_i dW with half-life
    `drift_half_life_s` of market time (3 minutes by default), simulated exactly for any dt together with its
    integral. eta_i = kappa * sigma_i * sqrt(p) makes the drift contribute p * sigma_i**2 of variance per year at
    horizons well beyond the half-life, so annualized volatility of daily returns stays sigma_i while 1-minute and
    5-minute returns are positively autocorrelated (about 0.04 and 0.07 at p = 0.3; 0.12 and 0.2 at p = 0.6). p is
    `predictability`; at p = 0 the drift is not simulated at all and prices are a pure random walk.
    """

    def __init__(
        self,
        specs: Sequence[SymbolSpec],
        *,
        year_ms: int,
        predictability: float,
        market_volatility: float,
        sector_share: float,
        drift_half_life_s: float,
    ):
        self.year_ms = year_ms
        self.sectors = list(dict.fromkeys(s.sector for s in specs))
        sector_pos = {name: k for k, name in enumerate(self.sectors)}
        self.sector_of = [sector_pos[s.sector] for s in specs]
        p = predictability
        noise = math.sqrt(1.0 - p)
        self.load_m, self.load_s, self.load_e, self.eta = [], [], [], []
        self.kappa = math.log(2) * year_ms / (drift_half_life_s * 1000.0)  # per year
        for s in specs:
            var = s.volatility**2
            systematic = (s.beta * market_volatility) ** 2 + sector_share * var
            idio = max(var - systematic, 0.1 * var)
            self.load_m.append(noise * s.beta * market_volatility)
            self.load_s.append(noise * math.sqrt(sector_share) * s.volatility)
            self.load_e.append(noise * math.sqrt(idio))
            self.eta.append(self.kappa * s.volatility * math.sqrt(p))
        self.drift_on = p > 0.0
        self._step_cache: dict[int, StepCoefficients] = {}

    def step(self, dt_ms: int) -> StepCoefficients:
        """The (cached) coefficients of a live step of dt_ms."""
        step = self._step_cache.get(dt_ms)
        if step is None:
            if len(self._step_cache) > 64:
                self._step_cache.clear()
            step = self._step_cache[dt_ms] = self.coefficients(dt_ms)
        return step

    def coefficients(self, dt_ms: float) -> StepCoefficients:
        """Exact coefficients for a step of dt: noise scale and the joint law of the OU drift and its integral."""
        dt = dt_ms / self.year_ms
        k = self.kappa
        a = k * dt
        one_minus_phi = -math.expm1(-a)
        var_x = -math.expm1(-2 * a) / (2 * k)
        cov = one_minus_phi**2 / (2 * k * k)
        # k**3 * var(integral) = a - 2(1 - e^-a) + (1 - e^-2a) / 2; use its series where that cancels badly.
        g = a**3 / 3 - a**4 / 4 + 7 * a**5 / 60 if a < 1e-2 else a - 2 * one_minus_phi - math.expm1(-2 * a) / 2
        sd_x = math.sqrt(var_x)
        return StepCoefficients(
            sqrt_dt=math.sqrt(dt),
            phi=math.exp(-a),
            drift_mean=one_minus_phi / k,
            drift_sd=sd_x,
            integral_c1=cov / sd_x,
            integral_c2=math.sqrt(max(g / k**3 - cov * cov / var_x, 0.0)),
        )
