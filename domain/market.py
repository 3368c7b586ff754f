"""The market simulator: correlated random prices, quotes, bars, trading days, indices and teacher shocks."""

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from domain import indicators
from domain.bars import INTERVALS, MAX_BARS, MAX_DAILY_BARS, Bar, BarBook, check_interval
from domain.errors import BadRequest, NotFound
from domain.universe import DEFAULT_INDICES, DEFAULT_UNIVERSE, IndexSpec, SymbolSpec

__all__ = [
    "Quote",
    "TickResult",
    "MarketSimulator",
    "TRADING_DAYS_PER_YEAR",
    "MAX_HISTORY_LIMIT",
]

TRADING_DAYS_PER_YEAR = 252
MAX_HISTORY_LIMIT = 1000
_MINUTE_MS = 60_000
_COARSE_STEPS_PER_DAY = 13  # history older than the minute-bar days is simulated at day_length / 13 steps
_ANALYTICS_BARS = 300  # enough for every indicator window; EMA seeds older than this have decayed away
_MEAN_ABS_NORMAL = math.sqrt(2 / math.pi)


def _money(cents: float) -> float:
    return round(cents / 100, 2)


def _percent(change: float, base: float) -> float:
    return round(change / base * 100, 2) if base else 0.0


@dataclass(slots=True)
class Quote:
    """One symbol's quote at one moment: money in integer cents, sizes and volume in shares.

    `open`, `high`, `low`, `previous_close` and `volume` belong to the current simulated day.
    The simulator publishes a new Quote whenever anything changes and never mutates a published one,
    so a Quote can be held and compared by `version` (the tick number that produced it).
    """

    symbol: str
    name: str
    sector: str
    price: int
    bid: int
    ask: int
    bid_size: int
    ask_size: int
    open: int
    high: int
    low: int
    previous_close: int
    volume: int
    time: int  # wall-clock epoch ms when the quote was produced
    market_time: int  # market-clock epoch ms
    version: int

    @property
    def change(self) -> int:
        """Price minus the previous day's close, in cents."""
        return self.price - self.previous_close

    @property
    def change_percent(self) -> float:
        return _percent(self.price - self.previous_close, self.previous_close)

    def to_wire(self) -> dict:
        """The protocol's quote object (camelCase, money as floats with 2 decimals)."""
        change = self.price - self.previous_close
        return {
            "symbol": self.symbol,
            "name": self.name,
            "sector": self.sector,
            "price": _money(self.price),
            "bid": _money(self.bid),
            "ask": _money(self.ask),
            "bidSize": self.bid_size,
            "askSize": self.ask_size,
            "open": _money(self.open),
            "high": _money(self.high),
            "low": _money(self.low),
            "previousClose": _money(self.previous_close),
            "change": _money(change),
            "changePercent": _percent(change, self.previous_close),
            "volume": self.volume,
            "time": self.time,
            "marketTime": self.market_time,
        }


@dataclass(frozen=True)
class TickResult:
    """What one `tick` did: the new version, the symbols whose quotes changed, and the day it ended in."""

    version: int
    changed: tuple[str, ...]
    day_rolled: bool
    day_index: int
    is_open: bool


@dataclass(frozen=True, slots=True)
class _Step:
    """Coefficients of one exact time step of `dt` market milliseconds (see MarketSimulator)."""

    sqrt_dt: float
    phi: float  # drift decay exp(-kappa dt)
    drift_mean: float  # E[integral of drift over the step] / drift at the start
    drift_sd: float  # per unit eta: sd of the drift's innovation
    integral_c1: float  # per unit eta: loading of the integral on the drift's innovation shock
    integral_c2: float  # per unit eta: loading of the integral on its own independent shock


class MarketSimulator:
    """Owns the simulated market: every symbol's price path, quote, day figures and bars, and the indices.

    **Price process.** Log prices (of the price in cents, kept as floats so rounding never accumulates)
    move on each step of dt years, where a year is 252 simulated trading days of `day_length_ms`, by

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

    Prices are the rounded exponent of the log price, never below one cent. The spread is a few basis points
    (2 + 6 * sigma_i bps, jittered), at least one cent, with bid <= price <= ask and bid < ask; bid and ask sizes
    are random multiples of 100; volume grows every tick at the symbol's average daily rate, more on bigger moves.

    **Days.** Day k is the session [start + k * cycle, start + k * cycle + day_length), with cycle = day_length, so
    the next day opens the instant the last one ends. With `exchange_hours`, a closed period of `closed_ms`
    (default: day_length * 17.5 / 6.5, i.e. 17.5 h after a 6.5 h session; no weekends) follows each session;
    while closed, prices do not move and `is_open` is False. A day rolls over at the end of its session (so DAY
    orders can expire then): previous_close becomes the last price, and open, high and low become the first price
    of the new day, which is that same last price (there is no overnight gap), and volume restarts at zero.

    **History.** At construction `history_days` completed days and, for the last `minute_history_days` of them,
    1-minute steps (5m, 15m and 1h bars aggregated from the 1m ones) are simulated by the same process (older days
    at 13 steps a day, with bar highs and lows drawn from the Brownian bridge between steps), then shifted in log
    space so the path ends exactly at the spec's price, which is the current price. The current day's bars start
    at construction, so `history(s, "1d")` holds history_days + 1 bars and its last close is the current price.

    **Indices** are equal-weighted: value = base_value * mean(price_i / base_price_i), where base_price_i is the
    constituent's price at the start of the generated history.

    The same `rng` seed and the same sequence of tick times give identical quotes and bars.
    """

    def __init__(
        self,
        universe: Iterable[SymbolSpec] = DEFAULT_UNIVERSE,
        indices: Iterable[IndexSpec] = DEFAULT_INDICES,
        *,
        rng: random.Random,
        start_market_ms: int,
        day_length_ms: int = 23_400_000,
        predictability: float = 0.3,
        history_days: int = 252,
        minute_history_days: int = 3,
        exchange_hours: bool = False,
        wall_ms: int | None = None,
        closed_ms: int | None = None,
        market_volatility: float = 0.15,
        sector_share: float = 0.25,
        drift_half_life_s: float = 180.0,
        max_bars: int = MAX_BARS,
        max_daily_bars: int = MAX_DAILY_BARS,
    ):
        specs = tuple(universe)
        self._check_args(
            specs,
            day_length_ms,
            predictability,
            history_days,
            minute_history_days,
            closed_ms,
            market_volatility,
            sector_share,
            drift_half_life_s,
        )
        self._rng = rng
        self._specs = specs
        self._symbols = tuple(s.symbol for s in specs)
        self._pos = {s: i for i, s in enumerate(self._symbols)}
        self._sectors = list(dict.fromkeys(s.sector for s in specs))
        sector_pos = {name: k for k, name in enumerate(self._sectors)}
        self._sector_of = [sector_pos[s.sector] for s in specs]

        self._start = int(start_market_ms)
        self._day_ms = int(day_length_ms)
        self.exchange_hours = bool(exchange_hours)
        if closed_ms is None:
            closed_ms = round(self._day_ms * 17.5 / 6.5)
        self._closed_ms = int(closed_ms) if self.exchange_hours else 0
        self._cycle_ms = self._day_ms + self._closed_ms
        self._year_ms = TRADING_DAYS_PER_YEAR * self._day_ms
        self.predictability = float(predictability)

        # Per-symbol loadings (per sqrt(year)); see the class docstring.
        p = self.predictability
        noise = math.sqrt(1.0 - p)
        self._load_m, self._load_s, self._load_e, self._eta = [], [], [], []
        self._kappa = math.log(2) * self._year_ms / (drift_half_life_s * 1000.0)  # per year
        for s in specs:
            var = s.volatility**2
            systematic = (s.beta * market_volatility) ** 2 + sector_share * var
            idio = max(var - systematic, 0.1 * var)
            self._load_m.append(noise * s.beta * market_volatility)
            self._load_s.append(noise * math.sqrt(sector_share) * s.volatility)
            self._load_e.append(noise * math.sqrt(idio))
            self._eta.append(self._kappa * s.volatility * math.sqrt(p))
        self._drift_on = p > 0.0
        self._volume_rate = [s.avg_volume / self._day_ms for s in specs]  # shares per market ms
        self._spread = [(2.0 + 6.0 * s.volatility) / 10_000 for s in specs]
        self._lots = [min(40, max(5, s.avg_volume // 400_000)) for s in specs]
        self._step_cache: dict[int, _Step] = {}

        n = len(specs)
        self._books = [BarBook(max_bars, max_daily_bars) for _ in range(n)]
        self._price = [s.price_cents for s in specs]
        self._logp = [math.log(s.price_cents) for s in specs]
        self._drift = [0.0] * n
        base_prices = self._generate_history(
            np.random.default_rng(rng.getrandbits(128)), history_days, min(minute_history_days, history_days)
        )

        self.day_index = 0
        self.day_start_ms = self._start
        self._session_end = self._start + self._day_ms
        self._t = self._start
        self._wall_ms = self._start if wall_ms is None else int(wall_ms)
        self._prev_close = list(self._price)
        self._open = list(self._price)
        self._high = list(self._price)
        self._low = list(self._price)
        self._volume = [0] * n
        self._open_session()

        self._index_specs = tuple(indices)
        self._index_pos = {spec.symbol: k for k, spec in enumerate(self._index_specs)}
        self._index_members = []
        for spec in self._index_specs:
            unknown = [c for c in spec.constituents if c not in self._pos]
            if unknown or not spec.constituents:
                raise ValueError(f"index {spec.symbol} has unknown or no constituents: {unknown}")
            members = [self._pos[c] for c in spec.constituents]
            self._index_members.append((members, [1.0 / base_prices[i] for i in members]))

        self.version = 0
        self._quotes: dict[str, Quote] = {}
        self._publish(range(n), self._wall_ms, self._t)

    @staticmethod
    def _check_args(
        specs,
        day_length_ms,
        predictability,
        history_days,
        minute_history_days,
        closed_ms,
        market_volatility,
        sector_share,
        drift_half_life_s,
    ) -> None:
        if not specs:
            raise ValueError("the universe is empty")
        if len({s.symbol for s in specs}) != len(specs):
            raise ValueError("duplicate symbols in the universe")
        for s in specs:
            if s.price_cents < 1 or not s.volatility > 0 or s.avg_volume < 0:
                raise ValueError(f"bad spec for {s.symbol}")
        if day_length_ms < 1:
            raise ValueError("day_length_ms must be positive")
        if not 0.0 <= predictability <= 1.0:
            raise ValueError("predictability must be within 0..1")
        if history_days < 0 or minute_history_days < 0:
            raise ValueError("history lengths cannot be negative")
        if closed_ms is not None and closed_ms < 1:
            raise ValueError("closed_ms must be positive")
        if market_volatility < 0 or not 0.0 <= sector_share < 1.0 or not drift_half_life_s > 0:
            raise ValueError("bad factor parameters")

    # ----- the process -------------------------------------------------------------------------------------

    def _step(self, dt_ms: int) -> _Step:
        """The (cached) coefficients of a live step of dt_ms."""
        step = self._step_cache.get(dt_ms)
        if step is None:
            if len(self._step_cache) > 64:
                self._step_cache.clear()
            step = self._step_cache[dt_ms] = self._coefficients(dt_ms)
        return step

    def _coefficients(self, dt_ms: float) -> _Step:
        """Exact coefficients for a step of dt: noise scale and the joint law of the OU drift and its integral."""
        dt = dt_ms / self._year_ms
        k = self._kappa
        a = k * dt
        one_minus_phi = -math.expm1(-a)
        var_x = -math.expm1(-2 * a) / (2 * k)
        cov = one_minus_phi**2 / (2 * k * k)
        # k**3 * var(integral) = a - 2(1 - e^-a) + (1 - e^-2a) / 2; use its series where that cancels badly.
        g = a**3 / 3 - a**4 / 4 + 7 * a**5 / 60 if a < 1e-2 else a - 2 * one_minus_phi - math.expm1(-2 * a) / 2
        sd_x = math.sqrt(var_x)
        return _Step(
            sqrt_dt=math.sqrt(dt),
            phi=math.exp(-a),
            drift_mean=one_minus_phi / k,
            drift_sd=sd_x,
            integral_c1=cov / sd_x,
            integral_c2=math.sqrt(max(g / k**3 - cov * cov / var_x, 0.0)),
        )

    def _advance(self, dt_ms: int, bar_ms: int) -> None:
        """Move every price over dt_ms of open market time and record the ticks in the bars at bar_ms."""
        st = self._step(dt_ms)
        gauss = self._rng.gauss
        rand = self._rng.random
        exp = math.exp
        sqrt_dt = st.sqrt_dt
        z_m = gauss(0.0, 1.0)
        z_s = [gauss(0.0, 1.0) for _ in self._sectors]
        load_m, load_s, load_e, sector_of = self._load_m, self._load_s, self._load_e, self._sector_of
        logp, price, high, low, volume = self._logp, self._price, self._high, self._low, self._volume
        drift, eta = self._drift, self._eta
        rate, books, day_start = self._volume_rate, self._books, self.day_start_ms
        drift_on = self._drift_on
        phi, d_mean, d_sd, c1, c2 = st.phi, st.drift_mean, st.drift_sd, st.integral_c1, st.integral_c2
        for i in range(len(logp)):
            z = gauss(0.0, 1.0)
            r = sqrt_dt * (load_m[i] * z_m + load_s[i] * z_s[sector_of[i]] + load_e[i] * z)
            if drift_on:
                x = drift[i]
                e = eta[i]
                z1 = gauss(0.0, 1.0)
                r += d_mean * x + e * (c1 * z1 + c2 * gauss(0.0, 1.0))
                drift[i] = phi * x + e * d_sd * z1
            lp = logp[i] + r
            logp[i] = lp
            p = int(exp(lp) + 0.5) or 1
            price[i] = p
            if p > high[i]:
                high[i] = p
            elif p < low[i]:
                low[i] = p
            traded = int(rate[i] * dt_ms * (0.5 + rand()) * (0.5 + abs(z) * (0.5 / _MEAN_ABS_NORMAL))) + 1
            volume[i] += traded
            books[i].update(bar_ms, p, traded, day_start)

    def _open_session(self) -> None:
        """Start the current day's bars at its first price."""
        for book, p in zip(self._books, self._price, strict=True):
            book.update(self.day_start_ms, p, 0, self.day_start_ms)

    def _roll_day(self, now_ms: int) -> None:
        price = self._price
        self._prev_close = list(price)
        self._open = list(price)
        self._high = list(price)
        self._low = list(price)
        self._volume = [0] * len(price)
        self.day_index += 1
        self.day_start_ms = self._start + self.day_index * self._cycle_ms
        self._session_end = self.day_start_ms + self._day_ms
        if self.day_start_ms <= now_ms:
            self._open_session()

    def _publish(self, positions: Iterable[int], wall_ms: int, market_ms: int) -> None:
        rand = self._rng.random
        specs, price, quotes, version = self._specs, self._price, self._quotes, self.version
        for i in positions:
            p = price[i]
            spread = int(p * self._spread[i] * (0.75 + 0.5 * rand()) + 0.5) or 1
            bid = p - spread // 2
            if bid < 1:
                bid = 1
            lots = self._lots[i]
            s = specs[i]
            quotes[s.symbol] = Quote(
                s.symbol, s.name, s.sector, p, bid, bid + spread,
                100 * (1 + int(rand() * lots)), 100 * (1 + int(rand() * lots)),
                self._open[i], self._high[i], self._low[i], self._prev_close[i], self._volume[i],
                wall_ms, market_ms, version,
            )  # fmt: skip

    # ----- generated history -------------------------------------------------------------------------------

    def _generate_history(self, gen: np.random.Generator, days: int, minute_days: int) -> list[float]:
        """Simulate `days` completed days ending now at the spec prices, fill the bars; return the index base prices."""
        n = len(self._specs)
        kappa = self._kappa
        eta = np.array(self._eta)
        # Start the drift from its stationary law, so live ticks continue a process that has been running.
        x = eta / math.sqrt(2 * kappa) * gen.standard_normal(n)
        if days == 0:
            if self._drift_on:
                self._drift = x.tolist()
            return [float(p) for p in self._price]
        coarse_days = days - minute_days
        fine_n = -(-self._day_ms // _MINUTE_MS)
        fine_dts = [_MINUTE_MS] * (fine_n - 1) + [self._day_ms - _MINUTE_MS * (fine_n - 1)]
        coarse_dts = [self._day_ms / _COARSE_STEPS_PER_DAY] * _COARSE_STEPS_PER_DAY
        dts = np.array(coarse_dts * coarse_days + fine_dts * minute_days, dtype=float)
        steps = len(dts)
        dt = dts / self._year_ms

        sector_of = np.array(self._sector_of)
        load_m, load_s, load_e = np.array(self._load_m), np.array(self._load_s), np.array(self._load_e)
        z_m = gen.standard_normal(steps)
        z_s = gen.standard_normal((steps, len(self._sectors)))
        z_e = gen.standard_normal((steps, n))
        noise = np.sqrt(dt)[:, None] * (load_m * z_m[:, None] + load_s * z_s[:, sector_of] + load_e * z_e)
        returns = noise
        if self._drift_on:
            coeffs = {d: self._coefficients(d) for d in set(dts.tolist())}
            per_step = [coeffs[d] for d in dts.tolist()]
            phi = np.array([st.phi for st in per_step])
            mean = np.array([st.drift_mean for st in per_step])
            c1 = np.array([st.integral_c1 for st in per_step])[:, None]
            c2 = np.array([st.integral_c2 for st in per_step])[:, None]
            sd = np.array([st.drift_sd for st in per_step])[:, None]
            z1 = gen.standard_normal((steps, n))
            integral = eta * (c1 * z1 + c2 * gen.standard_normal((steps, n)))
            innovation = eta * sd * z1
            for k in range(steps):
                integral[k] += mean[k] * x
                x = phi[k] * x + innovation[k]
            returns = noise + integral
            self._drift = x.tolist()

        logp = np.empty((steps + 1, n))
        logp[0] = 0.0
        np.cumsum(returns, axis=0, out=logp[1:])
        logp += np.log(np.array([s.price_cents for s in self._specs], dtype=float)) - logp[-1]
        # Highs and lows between steps: the extremes of a Brownian bridge with the step's noise variance.
        start, end = logp[:-1], logp[1:]
        var = dt[:, None] * (load_m**2 + load_s**2 + load_e**2)
        gap2 = (end - start) ** 2
        hi = (start + end + np.sqrt(gap2 - 2 * var * np.log1p(-gen.random((steps, n))))) / 2
        lo = (start + end - np.sqrt(gap2 - 2 * var * np.log1p(-gen.random((steps, n))))) / 2
        o = np.maximum(np.rint(np.exp(start)), 1).astype(np.int64)
        c = np.maximum(np.rint(np.exp(end)), 1).astype(np.int64)
        h = np.maximum(np.maximum(np.rint(np.exp(hi)), 1).astype(np.int64), np.maximum(o, c))
        lw = np.minimum(np.maximum(np.rint(np.exp(lo)), 1).astype(np.int64), np.minimum(o, c))
        rate = np.array(self._volume_rate)
        v = rate * dts[:, None] * (0.5 + gen.random((steps, n))) * (0.5 + np.abs(z_e) * (0.5 / _MEAN_ABS_NORMAL))
        v = v.astype(np.int64) + 1

        day_starts = self._start + np.arange(-days, 0, dtype=np.int64) * self._cycle_ms
        split = coarse_days * _COARSE_STEPS_PER_DAY
        daily = []  # per interval: (times[days], o, h, l, c, v arrays of shape [bars, n])
        if coarse_days:
            shape = (coarse_days, _COARSE_STEPS_PER_DAY, n)
            co, ch, cl, cc, cv = (a[:split].reshape(shape) for a in (o, h, lw, c, v))
            daily.append(
                (day_starts[:coarse_days], co[:, 0], ch.max(axis=1), cl.min(axis=1), cc[:, -1], cv.sum(axis=1))
            )
        per_interval: dict[str, list] = {name: [] for name in INTERVALS}
        if minute_days:
            shape = (minute_days, fine_n, n)
            fo, fh, fl, fc, fv = (a[split:].reshape(shape) for a in (o, h, lw, c, v))
            fine_starts = day_starts[coarse_days:]
            offsets = np.arange(fine_n, dtype=np.int64) * _MINUTE_MS
            for name, iv in INTERVALS.items():
                if iv is None:
                    daily.append((fine_starts, fo[:, 0], fh.max(axis=1), fl.min(axis=1), fc[:, -1], fv.sum(axis=1)))
                    continue
                group = offsets // iv
                first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
                last = np.r_[first[1:], fine_n] - 1
                times = (fine_starts[:, None] + (group[first] * iv)[None, :]).ravel()
                per_interval[name].append(
                    (
                        times,
                        fo[:, first].reshape(-1, n),
                        np.maximum.reduceat(fh, first, axis=1).reshape(-1, n),
                        np.minimum.reduceat(fl, first, axis=1).reshape(-1, n),
                        fc[:, last].reshape(-1, n),
                        np.add.reduceat(fv, first, axis=1).reshape(-1, n),
                    )
                )
        per_interval["1d"] = daily
        for name, chunks in per_interval.items():
            if not chunks:
                continue
            times = np.concatenate([ch[0] for ch in chunks]).tolist()
            cols = [np.concatenate([ch[j] for ch in chunks]).T.tolist() for j in range(1, 6)]
            for i, book in enumerate(self._books):
                book.series[name].extend(map(Bar, times, cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i]))
        return np.exp(logp[0]).tolist()

    # ----- time --------------------------------------------------------------------------------------------

    def is_open(self, market_ms: int) -> bool:
        """Whether the market trades at market_ms: always, unless exchange hours put it in a closed period."""
        if not self.exchange_hours:
            return True
        return (market_ms - self._start) % self._cycle_ms < self._day_ms

    @property
    def market_ms(self) -> int:
        """The market time prices have been simulated up to."""
        return self._t

    @property
    def day_length_ms(self) -> int:
        return self._day_ms

    def tick(self, market_ms: int, wall_ms: int) -> TickResult:
        """Advance prices, bars and days to market_ms; a time at or before the last tick changes nothing.

        Only open market time moves prices; a tick spanning several days steps once per day and rolls each one.
        """
        market_ms, wall_ms = int(market_ms), int(wall_ms)
        if market_ms <= self._t:
            return TickResult(self.version, (), False, self.day_index, self.is_open(market_ms))
        moved = rolled = False
        t = self._t
        while t < market_ms:
            if t < self.day_start_ms:  # closed period before the next session
                if market_ms < self.day_start_ms:
                    break
                t = self.day_start_ms
                self._open_session()
                continue
            end = min(market_ms, self._session_end)
            if end > t:
                # The instant a session ends belongs to the next day, so its last price is booked 1 ms earlier.
                self._advance(end - t, end if end < self._session_end else end - 1)
                moved = True
                t = end
            if t >= self._session_end:
                self._roll_day(t)
                rolled = True
        self._t = market_ms
        self._wall_ms = wall_ms
        if not (moved or rolled):
            return TickResult(self.version, (), False, self.day_index, self.is_open(market_ms))
        self.version += 1
        self._publish(range(len(self._specs)), wall_ms, market_ms)
        return TickResult(self.version, self._symbols, rolled, self.day_index, self.is_open(market_ms))

    # ----- lookups -----------------------------------------------------------------------------------------

    def _position(self, symbol: str) -> int:
        i = self._pos.get(symbol) if isinstance(symbol, str) else None
        if i is None:
            raise NotFound(f"unknown symbol {symbol!r}")
        return i

    def has(self, symbol: str) -> bool:
        return isinstance(symbol, str) and symbol in self._pos

    def quote(self, symbol: str) -> Quote:
        """The latest quote (NotFound for an unknown symbol)."""
        return self._quotes[self._symbols[self._position(symbol)]]

    def quotes(self) -> Mapping[str, Quote]:
        """A snapshot of every latest quote, by symbol, in universe order."""
        return dict(self._quotes)

    def specs(self) -> list[SymbolSpec]:
        return list(self._specs)

    def sectors(self) -> list[str]:
        """Sector names in universe order."""
        return list(self._sectors)

    def history(self, symbol: str, interval: str, limit: int = 100) -> list[Bar]:
        """Up to `limit` (1..1000) bars, oldest first, the current still-forming bar last.

        "1d" bars are simulated trading days. Intraday bars are aligned to the day's start (so the last hourly bar
        of a 6.5 h day is 30 minutes long) and a stretch with no tick, e.g. at very high market speeds, has no bar.
        """
        i = self._position(symbol)
        check_interval(interval)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_HISTORY_LIMIT:
            raise BadRequest(f"limit must be an integer from 1 to {MAX_HISTORY_LIMIT}")
        return self._books[i].last(interval, limit)

    def analytics(self, symbol: str, interval: str = "1d") -> dict:
        """ANALYTICS_DATA over the closes of `interval` bars (the forming one included), in currency units.

        RSI is Wilder's, MACD is 12/26/9, Bollinger is 20 bars and 2 population standard deviations,
        `volatility` is annualized from the last 20 log returns of that interval, and `vwap` is the volume-weighted
        typical price ((high + low + close) / 3) of the 1-minute bars of the latest session that has traded.
        Values are None where there are too few bars.
        """
        i = self._position(symbol)
        check_interval(interval)
        series = self._books[i].series[interval]
        bars = series.bars
        closes = [bars[j].close / 100 for j in range(max(0, len(bars) - _ANALYTICS_BARS), len(bars))]
        iv = INTERVALS[interval]
        per_year = TRADING_DAYS_PER_YEAR * (1 if iv is None else self._day_ms / iv)
        m = indicators.macd(closes, 12, 26, 9)
        b = indicators.bollinger(closes, 20, 2.0)

        def r(value: float | None, digits: int = 4) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "symbol": self._symbols[i],
            "interval": interval,
            "sma20": r(indicators.sma(closes, 20)),
            "sma50": r(indicators.sma(closes, 50)),
            "ema12": r(indicators.ema(closes, 12)),
            "ema26": r(indicators.ema(closes, 26)),
            "rsi14": r(indicators.rsi(closes, 14), 2),
            "macd": {"macd": r(m[0]), "signal": r(m[1]), "histogram": r(m[2])}
            if m
            else {"macd": None, "signal": None, "histogram": None},
            "bollinger": {"upper": r(b[0]), "middle": r(b[1]), "lower": r(b[2])}
            if b
            else {"upper": None, "middle": None, "lower": None},
            "vwap": r(self._session_vwap(i)),
            "volatility": r(indicators.realized_volatility(closes[-21:], per_year)),
        }

    def _session_vwap(self, i: int) -> float | None:
        book = self._books[i]
        session = next((bar for bar in reversed(book.series["1d"].bars) if bar.volume > 0), None)
        if session is None:
            return None
        prices, volumes = [], []
        for bar in reversed(book.series["1m"].bars):
            if bar.time < session.time:
                break
            if bar.time < session.time + self._day_ms:
                prices.append((bar.high + bar.low + bar.close) / 300)
                volumes.append(bar.volume)
        return indicators.vwap(prices, volumes)

    # ----- indices and overview ----------------------------------------------------------------------------

    def _index_value(self, k: int, prices: list[int]) -> float:
        members, inverse_base = self._index_members[k]
        ratio = math.fsum(prices[i] * w for i, w in zip(members, inverse_base, strict=True)) / len(members)
        return self._index_specs[k].base_value * ratio

    def indices(self) -> list[dict]:
        """Every index now: [{symbol, name, value, change, changePercent}], change against the previous day's close."""
        out = []
        for k, spec in enumerate(self._index_specs):
            value = self._index_value(k, self._price)
            previous = self._index_value(k, self._prev_close)
            out.append(
                {
                    "symbol": spec.symbol,
                    "name": spec.name,
                    "value": round(value, 2),
                    "change": round(value - previous, 2),
                    "changePercent": _percent(value - previous, previous),
                }
            )
        return out

    def overview(self, market_status: str) -> dict:
        """MARKET_OVERVIEW data: indices, the 5 top gainers, losers and most active, advancers and decliners."""
        rows = []
        for q in self._quotes.values():
            change = q.price - q.previous_close
            rows.append((q, change, change / q.previous_close))

        def item(row) -> dict:
            q, change, _ = row
            return {
                "symbol": q.symbol,
                "name": q.name,
                "price": _money(q.price),
                "change": _money(change),
                "changePercent": _percent(change, q.previous_close),
                "volume": q.volume,
            }

        gainers = sorted((row for row in rows if row[1] > 0), key=lambda row: (-row[2], row[0].symbol))
        losers = sorted((row for row in rows if row[1] < 0), key=lambda row: (row[2], row[0].symbol))
        active = sorted(rows, key=lambda row: (-row[0].volume, row[0].symbol))
        return {
            "indices": self.indices(),
            "topGainers": [item(row) for row in gainers[:5]],
            "topLosers": [item(row) for row in losers[:5]],
            "mostActive": [item(row) for row in active[:5]],
            "advancers": sum(1 for row in rows if row[1] > 0),
            "decliners": sum(1 for row in rows if row[1] < 0),
            "unchanged": sum(1 for row in rows if row[1] == 0),
            "marketStatus": market_status,
        }

    # ----- the classroom shock -----------------------------------------------------------------------------

    def shock(
        self, percent: float, symbols: Iterable[str] = (), sector: str | None = None, *, wall_ms: int | None = None
    ) -> list[str]:
        """Move the named symbols and/or every symbol of `sector` by `percent` at once; return them in universe order.

        Nothing moves unless every name is valid: BadRequest for a bad percent (it must be finite and in
        (-100, 1000]), for an unknown sector or for naming nothing; NotFound for an unknown symbol. While the
        market is closed the move shows in the quote at once and becomes the next session's opening price.
        """
        if isinstance(percent, bool) or not isinstance(percent, int | float) or not math.isfinite(percent):
            raise BadRequest("percent must be a number")
        if not -100 < percent <= 1000:
            raise BadRequest("percent must be above -100 and at most 1000")
        if isinstance(symbols, str):
            symbols = (symbols,)
        chosen = {self._position(s) for s in symbols}
        if sector is not None:
            if sector not in self._sectors:
                raise BadRequest(f"unknown sector {sector!r}; sectors: {', '.join(self._sectors)}")
            k = self._sectors.index(sector)
            chosen.update(i for i, s in enumerate(self._sector_of) if s == k)
        if not chosen:
            raise BadRequest("name symbols or a sector to shock")
        positions = sorted(chosen)
        delta = math.log1p(percent / 100)
        in_session = self.day_start_ms <= self._t < self._session_end
        bar_ms = self._t
        for i in positions:
            self._logp[i] += delta
            p = int(math.exp(self._logp[i]) + 0.5) or 1
            self._price[i] = p
            if in_session:
                self._high[i] = max(self._high[i], p)
                self._low[i] = min(self._low[i], p)
                self._books[i].update(bar_ms, p, 0, self.day_start_ms)
            else:
                self._open[i] = self._high[i] = self._low[i] = p
        if wall_ms is not None:
            self._wall_ms = wall_ms
        self.version += 1
        self._publish(positions, self._wall_ms, self._t)
        return [self._symbols[i] for i in positions]

    # ----- return series for risk and optimisation -----------------------------------------------------------

    def _completed_closes(self, i: int, count: int) -> list[int]:
        """The last `count` closes of completed days (the current day is left out), oldest first."""
        out = []
        for bar in reversed(self._books[i].series["1d"].bars):
            if bar.time >= self.day_start_ms:
                continue
            out.append(bar.close)
            if len(out) == count:
                break
        out.reverse()
        return out

    @staticmethod
    def _check_lookback(lookback: int) -> None:
        if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 1:
            raise BadRequest("lookback must be a positive integer")

    def daily_returns(self, symbol: str, lookback: int) -> list[float]:
        """Simple returns (close / previous close - 1) of the last `lookback` completed days, oldest first.

        Fewer when less history exists; the current, unfinished day is not included.
        """
        i = self._position(symbol)
        self._check_lookback(lookback)
        closes = self._completed_closes(i, lookback + 1)
        return [b / a - 1.0 for a, b in zip(closes[:-1], closes[1:], strict=True)]

    def index_daily_returns(self, index_symbol: str, lookback: int) -> list[float]:
        """Simple daily returns of an index over the last `lookback` completed days, oldest first."""
        k = self._index_pos.get(index_symbol) if isinstance(index_symbol, str) else None
        if k is None:
            raise NotFound(f"unknown index {index_symbol!r}")
        self._check_lookback(lookback)
        members, _ = self._index_members[k]
        series = {i: self._completed_closes(i, lookback + 1) for i in members}
        length = min(len(closes) for closes in series.values())
        prices = [0] * len(self._specs)
        values = []
        for j in range(length):
            for i, closes in series.items():
                prices[i] = closes[len(closes) - length + j]
            values.append(self._index_value(k, prices))
        return [b / a - 1.0 for a, b in zip(values[:-1], values[1:], strict=True)]

    def index_symbols(self) -> list[str]:
        return [spec.symbol for spec in self._index_specs]
