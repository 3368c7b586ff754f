"""Generated history: the completed days before the market opens, simulated in bulk and folded into bars."""

import math
from collections.abc import Sequence

import numpy as np

from domain.bars import INTERVALS, Bar, BarBook
from domain.universe import SymbolSpec

from .process import PriceProcess

__all__ = ["generate_history", "MEAN_ABS_NORMAL"]

_MINUTE_MS = 60_000
MEAN_ABS_NORMAL = math.sqrt(2 / math.pi)
_COARSE_STEPS_PER_DAY = 13  # history older than the minute-bar days is simulated at day_length / 13 steps


def generate_history(
    process: PriceProcess,
    specs: Sequence[SymbolSpec],
    books: Sequence[BarBook],
    gen: np.random.Generator,
    *,
    days: int,
    minute_days: int,
    start_ms: int,
    day_ms: int,
    cycle_ms: int,
    volume_rate: Sequence[float],
) -> tuple[list[float], list[float]]:
    """Simulate `days` completed days ending at `start_ms` at the spec prices and fill `books` with their bars.

    The last `minute_days` days are simulated in 1-minute steps (5m, 15m and 1h bars aggregated from them), older
    days at 13 steps a day, with bar highs and lows drawn from the Brownian bridge between steps. The path is
    shifted in log space so it ends exactly at each spec's price. Returns the prices in cents at the start of the
    history (the index base prices) and every symbol's drift at its end, where live ticks continue it.
    """
    n = len(specs)
    kappa = process.kappa
    eta = np.array(process.eta)
    # Start the drift from its stationary law, so live ticks continue a process that has been running.
    x = eta / math.sqrt(2 * kappa) * gen.standard_normal(n)
    if days == 0:
        return [float(s.price_cents) for s in specs], (x.tolist() if process.drift_on else [0.0] * n)
    coarse_days = days - minute_days
    fine_n = -(-day_ms // _MINUTE_MS)
    fine_dts = [_MINUTE_MS] * (fine_n - 1) + [day_ms - _MINUTE_MS * (fine_n - 1)]
    coarse_dts = [day_ms / _COARSE_STEPS_PER_DAY] * _COARSE_STEPS_PER_DAY
    dts = np.array(coarse_dts * coarse_days + fine_dts * minute_days, dtype=float)
    steps = len(dts)
    dt = dts / process.year_ms

    sector_of = np.array(process.sector_of)
    load_m, load_s, load_e = np.array(process.load_m), np.array(process.load_s), np.array(process.load_e)
    z_m = gen.standard_normal(steps)
    z_s = gen.standard_normal((steps, len(process.sectors)))
    z_e = gen.standard_normal((steps, n))
    noise = np.sqrt(dt)[:, None] * (load_m * z_m[:, None] + load_s * z_s[:, sector_of] + load_e * z_e)
    returns = noise
    drift = [0.0] * n
    if process.drift_on:
        coeffs = {d: process.coefficients(d) for d in set(dts.tolist())}
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
        drift = x.tolist()

    logp = np.empty((steps + 1, n))
    logp[0] = 0.0
    np.cumsum(returns, axis=0, out=logp[1:])
    logp += np.log(np.array([s.price_cents for s in specs], dtype=float)) - logp[-1]
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
    rate = np.array(volume_rate)
    v = rate * dts[:, None] * (0.5 + gen.random((steps, n))) * (0.5 + np.abs(z_e) * (0.5 / MEAN_ABS_NORMAL))
    v = v.astype(np.int64) + 1

    day_starts = start_ms + np.arange(-days, 0, dtype=np.int64) * cycle_ms
    split = coarse_days * _COARSE_STEPS_PER_DAY
    daily = []  # per interval: (times[days], o, h, l, c, v arrays of shape [bars, n])
    if coarse_days:
        shape = (coarse_days, _COARSE_STEPS_PER_DAY, n)
        co, ch, cl, cc, cv = (a[:split].reshape(shape) for a in (o, h, lw, c, v))
        daily.append((day_starts[:coarse_days], co[:, 0], ch.max(axis=1), cl.min(axis=1), cc[:, -1], cv.sum(axis=1)))
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
        for i, book in enumerate(books):
            book.series[name].extend(map(Bar, times, cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i]))
    return np.exp(logp[0]).tolist(), drift
