"""The market simulator: prices moved by the price process, quotes, bars, trading days, returns and shocks."""

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from domain.bars import MAX_BARS, MAX_DAILY_BARS, Bar, BarBook, check_interval
from domain.errors import BadRequest, NotFound
from domain.universe import DEFAULT_INDICES, DEFAULT_UNIVERSE, IndexSpec, SymbolSpec

from .history import MEAN_ABS_NORMAL, generate_history
from .indices import EqualWeightIndex
from .process import FactorScope, FactorWindow, PriceProcess
from .quote import Quote, TickResult

__all__ = ["MarketSimulator", "TRADING_DAYS_PER_YEAR", "MAX_HISTORY_LIMIT"]

TRADING_DAYS_PER_YEAR = 252
MAX_HISTORY_LIMIT = 1000
_SCOPES = tuple(FactorScope)


class MarketSimulator:
    """Owns the simulated market: every symbol's price path, quote, day figures and bars, and the indices.

    **Prices** move by the `PriceProcess` (market, sector and own factors plus a mean-reverting drift; its
    docstring has the law). Prices are the rounded exponent of the log price, never below one cent. The spread is
    a few basis points (2 + 6 * sigma_i bps, jittered), at least one cent, with bid <= price <= ask and bid < ask;
    bid and ask sizes are random multiples of 100; volume grows every tick at the symbol's average daily rate, more
    on bigger moves.

    **Days.** Day k is the session [start + k * cycle, start + k * cycle + day_length), with cycle = day_length, so
    the next day opens the instant the last one ends. With `exchange_hours`, a closed period of `closed_ms`
    (default: day_length * 17.5 / 6.5, i.e. 17.5 h after a 6.5 h session; no weekends) follows each session;
    while closed, prices do not move and `is_open` is False. A day rolls over at the end of its session (so DAY
    orders can expire then): previous_close becomes the last price, and open, high and low become the first price
    of the new day, which is that same last price (there is no overnight gap), and volume restarts at zero.

    **History.** At construction `history_days` completed days, the last `minute_history_days` of them in 1-minute
    steps, are simulated by the same process (`generate_history`), ending exactly at the spec's price, which is the
    current price. The current day's bars start at construction, so `history(s, "1d")` holds history_days + 1 bars
    and its last close is the current price.

    **Indices** are equal-weighted (`EqualWeightIndex`), based at the constituents' prices at the start of the
    generated history.

    **Scenarios** act through `set_factor_windows`: each step of a tick that overlaps a `FactorWindow` adds the
    overlapping share of its drift to the factor it names and scales the shocks of the symbols it covers, so a
    scripted move arrives as a trend the usual noise sits on, whatever the tick sizes, and quotes, bars and day
    figures follow it through the normal tick path. With no windows the same seed gives the same prices as before.

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

        self._start = int(start_market_ms)
        self._day_ms = int(day_length_ms)
        self.exchange_hours = bool(exchange_hours)
        if closed_ms is None:
            closed_ms = round(self._day_ms * 17.5 / 6.5)
        self._closed_ms = int(closed_ms) if self.exchange_hours else 0
        self._cycle_ms = self._day_ms + self._closed_ms
        self.predictability = float(predictability)
        self._process = PriceProcess(
            specs,
            year_ms=TRADING_DAYS_PER_YEAR * self._day_ms,
            predictability=self.predictability,
            market_volatility=market_volatility,
            sector_share=sector_share,
            drift_half_life_s=drift_half_life_s,
        )
        self._volume_rate = [s.avg_volume / self._day_ms for s in specs]  # shares per market ms
        self._spread = [(2.0 + 6.0 * s.volatility) / 10_000 for s in specs]
        self._lots = [min(40, max(5, s.avg_volume // 400_000)) for s in specs]
        self._windows: tuple[_Window, ...] = ()
        self._no_scale, self._no_drift = (1.0,) * len(specs), (0.0,) * len(specs)

        n = len(specs)
        self._books = [BarBook(max_bars, max_daily_bars) for _ in range(n)]
        self._price = [s.price_cents for s in specs]
        self._logp = [math.log(s.price_cents) for s in specs]
        base_prices, self._drift = generate_history(
            self._process,
            specs,
            self._books,
            np.random.default_rng(rng.getrandbits(128)),
            days=history_days,
            minute_days=min(minute_history_days, history_days),
            start_ms=self._start,
            day_ms=self._day_ms,
            cycle_ms=self._cycle_ms,
            volume_rate=self._volume_rate,
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

        self._indices = []
        for spec in indices:
            unknown = [c for c in spec.constituents if c not in self._pos]
            if unknown or not spec.constituents:
                raise ValueError(f"index {spec.symbol} has unknown or no constituents: {unknown}")
            weights = tuple((c, 1.0 / base_prices[self._pos[c]]) for c in spec.constituents)
            self._indices.append(EqualWeightIndex(spec.symbol, spec.name, spec.base_value, weights))
        self._index_by_symbol = {index.symbol: index for index in self._indices}

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

    def _advance(self, t_ms: int, dt_ms: int, bar_ms: int) -> None:
        """Move every price over [t_ms, t_ms + dt_ms) of open market time and record the ticks in the bars at bar_ms.

        A symbol's scale multiplies its shocks and its extra is added to its return; both are neutral (1.0 and 0.0,
        which leave every float as it was) outside factor windows.
        """
        scale, extra = self._factors(t_ms, t_ms + dt_ms) if self._windows else (self._no_scale, self._no_drift)
        process = self._process
        st = process.step(dt_ms)
        gauss = self._rng.gauss
        rand = self._rng.random
        exp = math.exp
        sqrt_dt = st.sqrt_dt
        z_m = gauss(0.0, 1.0)
        z_s = [gauss(0.0, 1.0) for _ in process.sectors]
        load_m, load_s, load_e, sector_of = process.load_m, process.load_s, process.load_e, process.sector_of
        logp, price, high, low, volume = self._logp, self._price, self._high, self._low, self._volume
        drift, eta = self._drift, process.eta
        rate, books, day_start = self._volume_rate, self._books, self.day_start_ms
        drift_on = process.drift_on
        phi, d_mean, d_sd, c1, c2 = st.phi, st.drift_mean, st.drift_sd, st.integral_c1, st.integral_c2
        for i in range(len(logp)):
            z = gauss(0.0, 1.0)
            m = scale[i]
            r = m * sqrt_dt * (load_m[i] * z_m + load_s[i] * z_s[sector_of[i]] + load_e[i] * z)
            if drift_on:
                x = drift[i]
                e = eta[i] * m
                z1 = gauss(0.0, 1.0)
                r += d_mean * x + e * (c1 * z1 + c2 * gauss(0.0, 1.0))
                drift[i] = phi * x + e * d_sd * z1
            lp = logp[i] + r + extra[i]
            logp[i] = lp
            p = int(exp(lp) + 0.5) or 1
            price[i] = p
            if p > high[i]:
                high[i] = p
            elif p < low[i]:
                low[i] = p
            traded = int(rate[i] * dt_ms * (0.5 + rand()) * (0.5 + abs(z) * (0.5 / MEAN_ABS_NORMAL))) + 1
            volume[i] += traded
            books[i].update(bar_ms, p, traded, day_start)

    def _factors(self, t0: int, t1: int) -> tuple[Sequence[float], Sequence[float]]:
        """Each symbol's shock scale and extra log return over [t0, t1) from the factor windows overlapping it.

        A window's drift counts in proportion to its overlap with the step. Volatility multipliers of overlapping
        windows multiply, and the step's scale is the root of the mean squared multiplier over the step, so a step
        half inside a x2 window has the variance it would have had in two steps.
        """
        windows = [w for w in self._windows if w.start_ms < t1 and w.end_ms > t0]
        if not windows:
            return self._no_scale, self._no_drift
        extra = list(self._no_drift)
        for w in windows:
            if w.drift:
                share = w.drift * (min(t1, w.end_ms) - max(t0, w.start_ms)) / (w.end_ms - w.start_ms)
                for i, load in zip(w.positions, w.loads, strict=True):
                    extra[i] += load * share
        scaling = [w for w in windows if w.volatility != 1.0]
        if not scaling:
            return self._no_scale, extra
        cuts = sorted({t0, t1, *(t for w in scaling for t in (w.start_ms, w.end_ms) if t0 < t < t1)})
        variance = [0.0] * len(extra)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            m = [1.0] * len(extra)
            for w in scaling:
                if w.start_ms <= a and b <= w.end_ms:
                    for i in w.positions:
                        m[i] *= w.volatility
            for i, mi in enumerate(m):
                variance[i] += mi * mi * (b - a)
        return [math.sqrt(v / (t1 - t0)) for v in variance], extra

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

    @property
    def cycle_ms(self) -> int:
        """From one session's open to the next one's: the day length, plus the closed period with exchange hours."""
        return self._cycle_ms

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
                self._advance(t, end - t, end if end < self._session_end else end - 1)
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
        return list(self._process.sectors)

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

    def bars(self, symbol: str, interval: str) -> tuple[Bar, ...]:
        """Every bar held at `interval`, oldest first, for read models; the last one may still be forming."""
        i = self._position(symbol)
        return tuple(self._books[i].series[check_interval(interval)].bars)

    def indices(self) -> list[EqualWeightIndex]:
        """The indices, in the order they were given."""
        return list(self._indices)

    def index_symbols(self) -> list[str]:
        return [index.symbol for index in self._indices]

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
            sectors = self._process.sectors
            if sector not in sectors:
                raise BadRequest(f"unknown sector {sector!r}; sectors: {', '.join(sectors)}")
            k = sectors.index(sector)
            chosen.update(i for i, s in enumerate(self._process.sector_of) if s == k)
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

    # ----- scenarios ----------------------------------------------------------------------------------------

    def set_factor_windows(self, windows: Iterable[FactorWindow]) -> None:
        """Replace the factor windows that steps from the next tick on carry (see FactorWindow); () removes them.

        Nothing changes unless every window is valid: NotFound for an unknown symbol, BadRequest for an unknown
        sector, an empty or reversed window, a drift that is not finite or a volatility that is not positive.
        Windows, or the parts of them, before the market time already simulated have no effect.
        """
        resolved = []
        sectors = self._process.sectors
        for w in windows:
            if not isinstance(w, FactorWindow):
                raise BadRequest("factor windows must be FactorWindow values")
            if not w.start_ms < w.end_ms:
                raise BadRequest(f"factor window [{w.start_ms}, {w.end_ms}) is empty")
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (w.drift, w.volatility))
            if not (numbers and math.isfinite(w.drift) and math.isfinite(w.volatility) and w.volatility > 0):
                raise BadRequest("a factor window needs a finite drift and a positive volatility multiplier")
            if w.scope not in _SCOPES:
                raise BadRequest(f"unknown factor scope {w.scope!r}; scopes: {', '.join(_SCOPES)}")
            if w.scope == FactorScope.MARKET:
                positions = tuple(range(len(self._specs)))
                loads = tuple(s.beta for s in self._specs)
            elif w.scope == FactorScope.SECTOR:
                if w.name not in sectors:
                    raise BadRequest(f"unknown sector {w.name!r}; sectors: {', '.join(sectors)}")
                k = sectors.index(w.name)
                positions = tuple(i for i, s in enumerate(self._process.sector_of) if s == k)
                loads = (1.0,) * len(positions)
            else:
                positions, loads = (self._position(w.name),), (1.0,)
            resolved.append(_Window(int(w.start_ms), int(w.end_ms), positions, loads, w.drift, w.volatility))
        self._windows = tuple(resolved)

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
        index = self._index_by_symbol.get(index_symbol) if isinstance(index_symbol, str) else None
        if index is None:
            raise NotFound(f"unknown index {index_symbol!r}")
        self._check_lookback(lookback)
        series = {s: self._completed_closes(self._pos[s], lookback + 1) for s, _ in index.weights}
        length = min(len(closes) for closes in series.values())
        values = [index.value({s: closes[len(closes) - length + j] for s, closes in series.items()})
                  for j in range(length)]  # fmt: skip
        return [b / a - 1.0 for a, b in zip(values[:-1], values[1:], strict=True)]


@dataclass(frozen=True, slots=True)
class _Window:
    """A FactorWindow resolved to universe positions and each one's load on the factor (beta for the market)."""

    start_ms: int
    end_ms: int
    positions: tuple[int, ...]
    loads: tuple[float, ...]
    drift: float
    volatility: float
