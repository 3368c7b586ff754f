"""The market simulator: quotes, days, generated history, shocks, return series and the statistics of its prices."""

import math
import random

import numpy as np
import pytest

from domain.errors import BadRequest, NotFound
from domain.market import MarketSimulator
from domain.universe import DEFAULT_UNIVERSE, IndexSpec, SymbolSpec

START = 1_764_126_000_000
DAY = 23_400_000
SHORT_DAY = 600_000  # a ten-minute classroom day


def make(seed: int = 1, **options) -> MarketSimulator:
    options.setdefault("history_days", 30)
    options.setdefault("minute_history_days", 1)
    return MarketSimulator(rng=random.Random(seed), start_market_ms=START, **options)


def run(sim: MarketSimulator, ticks: int, step_ms: int, start: int = START) -> int:
    t = start
    for _ in range(ticks):
        t += step_ms
        sim.tick(t, t + 5)
    return t


def prices(sim: MarketSimulator) -> dict[str, int]:
    return {s: q.price for s, q in sim.quotes().items()}


def independent_universe(count: int) -> tuple[SymbolSpec, ...]:
    return tuple(SymbolSpec(f"S{k:02d}", f"Stock {k}", f"Sector {k % 2}", 15_000, 0.30, 1.0) for k in range(count))


def lag1_autocorrelation(closes: np.ndarray) -> float:
    """Pooled lag-1 autocorrelation of log returns, columns being symbols."""
    r = np.diff(np.log(closes), axis=0)
    r = r - r.mean(axis=0)
    return float((r[1:] * r[:-1]).sum() / (r * r).sum())


# ----- construction and history ------------------------------------------------------------------------------


def test_construction_generates_a_year_of_daily_bars_ending_at_the_current_price():
    sim = MarketSimulator(rng=random.Random(3), start_market_ms=START)
    for spec in DEFAULT_UNIVERSE:
        bars = sim.history(spec.symbol, "1d", 1000)
        quote = sim.quote(spec.symbol)
        assert len(bars) == 252 + 1  # 252 completed days and the day that has just opened
        assert [b.time for b in bars] == [START + k * DAY for k in range(-252, 1)]
        assert quote.price == spec.price_cents == bars[-1].close == bars[-1].open
        assert bars[-2].close == quote.previous_close
        assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
        assert len(sim.daily_returns(spec.symbol, 1000)) == 251


def test_construction_generates_minute_bars_for_recent_days_and_aggregates_them():
    sim = MarketSimulator(rng=random.Random(4), start_market_ms=START)
    minutes = sim.history("NVTX", "1m", 1000)
    assert len(minutes) == 1000
    assert minutes[-2].time == START - 60_000 and minutes[-1].time == START
    assert [b.time for b in sim.history("NVTX", "1h", 1000)][-8:] == [START - DAY + h * 3_600_000 for h in range(7)] + [
        START
    ]
    five = sim.history("NVTX", "5m", 1000)
    assert len(five) == 3 * 78 + 1
    first_five = [b for b in minutes if five[-2].time <= b.time < five[-2].time + 300_000]
    assert len(first_five) == 5
    assert five[-2].open == first_five[0].open
    assert five[-2].close == first_five[-1].close
    assert five[-2].high == max(b.high for b in first_five)
    assert five[-2].low == min(b.low for b in first_five)
    assert five[-2].volume == sum(b.volume for b in first_five)
    yesterday = sim.history("NVTX", "1d", 2)[0]
    assert yesterday.volume == sum(b.volume for b in minutes if START - DAY <= b.time < START)
    assert yesterday.high == max(b.high for b in minutes if START - DAY <= b.time < START)


def test_construction_of_the_default_market_is_fast():
    import time

    began = time.perf_counter()
    MarketSimulator(rng=random.Random(5), start_market_ms=START)
    assert time.perf_counter() - began < 2.0  # about 0.15 s; generous for slow CI machines


# ----- ticks, quotes, determinism --------------------------------------------------------------------------


def test_same_seed_and_tick_times_give_identical_quotes_and_bars():
    a, b = make(seed=11), make(seed=11)
    times = [START + k * 250 for k in range(1, 400)] + [START + DAY + 1_000]
    for t in times:
        assert a.tick(t, t) == b.tick(t, t)
    assert a.quotes() == b.quotes()
    assert a.history("QBIT", "1m", 50) == b.history("QBIT", "1m", 50)
    assert prices(make(seed=12)) != prices(a)


def test_quotes_keep_their_invariants_over_many_ticks():
    sim = make(seed=2, day_length_ms=SHORT_DAY)
    last_volume = {s: 0 for s in sim.quotes()}
    t = START
    for k in range(1, 1_500):
        t += 250 if k % 7 else 20_000
        result = sim.tick(t, t + 3)
        if result.day_rolled:
            last_volume = {s: 0 for s in last_volume}
        for symbol, q in sim.quotes().items():
            for value in (q.price, q.bid, q.ask, q.open, q.high, q.low, q.previous_close, q.volume):
                assert isinstance(value, int)
            assert 1 <= q.bid <= q.price <= q.ask and q.bid < q.ask
            assert q.ask - q.bid <= max(2, q.price // 500)  # a few basis points
            assert q.low <= q.price <= q.high and q.low <= q.open <= q.high
            assert q.bid_size % 100 == 0 and q.ask_size % 100 == 0 and q.bid_size > 0 and q.ask_size > 0
            assert q.volume > last_volume[symbol]
            assert q.version == result.version and q.market_time == t and q.time == t + 3
            last_volume[symbol] = q.volume


def test_every_tick_that_moves_time_bumps_the_version_and_reports_every_symbol():
    sim = make()
    result = sim.tick(START + 250, START + 250)
    assert result.version == sim.version == 1
    assert result.changed == tuple(s.symbol for s in DEFAULT_UNIVERSE)
    assert result.is_open and not result.day_rolled and result.day_index == 0


def test_a_tick_at_or_before_the_last_one_changes_nothing():
    sim = make()
    sim.tick(START + 1_000, START + 1_000)
    before = sim.quotes()
    for t in (START + 1_000, START + 500, START - 10):
        result = sim.tick(t, t)
        assert result.changed == () and result.version == 1 and not result.day_rolled
    assert sim.quotes() == before


def test_prices_never_fall_below_one_cent():
    penny = (SymbolSpec("PNY", "Penny Corp", "Misc", 3, 0.8, 1.0),)
    sim = MarketSimulator(penny, (), rng=random.Random(1), start_market_ms=START, history_days=5)
    sim.shock(-99.9, ["PNY"])
    t = run(sim, 200, 30_000)
    q = sim.quote("PNY")
    assert q.price >= 1 and q.low >= 1 and 1 <= q.bid < q.ask
    assert min(b.low for b in sim.history("PNY", "1m", 1000)) >= 1
    assert t > START


# ----- statistics of the process ---------------------------------------------------------------------------


def test_returns_within_a_sector_are_more_correlated_than_across_sectors():
    sim = make(seed=21, predictability=0.0, history_days=2, minute_history_days=0)
    symbols = list(sim.quotes())
    path = []
    t = START
    for _ in range(1_500):
        t += 300_000
        sim.tick(t, t)
        path.append([sim.quote(s).price for s in symbols])
    corr = np.corrcoef(np.diff(np.log(np.array(path, dtype=float)), axis=0).T)
    sectors = [sim.quote(s).sector for s in symbols]
    within, across = [], []
    for i in range(len(symbols)):
        for j in range(i + 1, len(symbols)):
            (within if sectors[i] == sectors[j] else across).append(corr[i, j])
    assert np.mean(within) > np.mean(across) + 0.15
    assert np.mean(across) > 0.1  # the market factor moves everything together


def test_daily_volatility_of_generated_history_matches_the_specs():
    sim = make(seed=8, history_days=500, minute_history_days=0)
    ratios = []
    for spec in sim.specs():
        returns = np.log1p(np.array(sim.daily_returns(spec.symbol, 499)))
        ratios.append(returns.std(ddof=1) * math.sqrt(252) / spec.volatility)
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize(("predictability", "low", "high"), [(0.6, 0.06, 0.2), (0.0, -0.035, 0.035)])
def test_predictability_sets_the_autocorrelation_of_one_minute_returns(predictability, low, high):
    # Independent symbols (no market or sector factor) so pooling them gives a clean sample of 8 * 1200 returns.
    sim = MarketSimulator(independent_universe(8), (), rng=random.Random(31), start_market_ms=START,
                          history_days=2, minute_history_days=0, market_volatility=0.0, sector_share=0.0,
                          predictability=predictability)  # fmt: skip
    run(sim, 1_200 * 4, 15_000)
    closes = np.array([[b.close for b in sim.history(s, "1m", 1000)] for s in sim.quotes()], dtype=float).T
    assert low < lag1_autocorrelation(closes) < high


def test_generated_minute_history_shows_the_same_autocorrelation_as_live_ticks():
    on = make(seed=6, predictability=0.6, minute_history_days=5, history_days=5)
    off = make(seed=6, predictability=0.0, minute_history_days=5, history_days=5)

    def pooled(sim):
        return lag1_autocorrelation(
            np.array([[b.close for b in sim.history(s, "1m", 1000)] for s in sim.quotes()], dtype=float).T
        )

    assert pooled(on) > 0.06
    assert abs(pooled(off)) < 0.03


# ----- days ------------------------------------------------------------------------------------------------


def test_day_rollover_sets_previous_close_and_resets_open_high_low_and_volume():
    sim = make(day_length_ms=SHORT_DAY)
    run(sim, 100, 3_000)
    assert sim.quote("NVTX").volume > 0
    result = sim.tick(START + SHORT_DAY, START + SHORT_DAY)
    assert result.day_rolled and result.day_index == 1 == sim.day_index
    assert sim.day_start_ms == START + SHORT_DAY
    q = sim.quote("NVTX")
    assert q.previous_close == q.open == q.high == q.low == q.price and q.volume == 0
    days = sim.history("NVTX", "1d", 3)
    assert [b.time for b in days[-2:]] == [START, START + SHORT_DAY]
    assert days[-2].close == q.previous_close and days[-1].open == q.price

    sim.tick(START + SHORT_DAY + 5_000, START + SHORT_DAY + 5_000)
    later = sim.quote("NVTX")
    assert later.open == q.open and later.previous_close == q.previous_close and later.volume > 0


def test_a_tick_spanning_several_days_rolls_every_one_of_them():
    sim = make(day_length_ms=SHORT_DAY)
    result = sim.tick(START + 3 * SHORT_DAY + 1_000, START)
    assert result.day_rolled and result.day_index == 3
    assert [b.time for b in sim.history("CAPX", "1d", 4)] == [START + k * SHORT_DAY for k in range(4)]
    assert len(sim.daily_returns("CAPX", 1000)) == 30 - 1 + 3


def test_exchange_hours_close_the_market_and_freeze_prices_until_the_next_session():
    sim = make(day_length_ms=SHORT_DAY, exchange_hours=True, closed_ms=1_800_000)
    assert sim.is_open(START) and sim.is_open(START + SHORT_DAY - 1) and not sim.is_open(START + SHORT_DAY)
    run(sim, 10, 30_000)
    closing = sim.tick(START + SHORT_DAY + 60_000, START)
    assert closing.day_rolled and not closing.is_open
    assert sim.day_start_ms == START + SHORT_DAY + 1_800_000
    frozen = prices(sim)
    version = sim.version
    for t in range(START + SHORT_DAY + 120_000, START + SHORT_DAY + 1_800_000, 60_000):
        result = sim.tick(t, t)
        assert result.changed == () and not result.is_open and not sim.is_open(t)
    assert prices(sim) == frozen and sim.version == version
    reopened = sim.tick(START + SHORT_DAY + 1_800_000 + 60_000, START)
    assert reopened.is_open and reopened.changed and not reopened.day_rolled
    assert prices(sim) != frozen
    assert sim.history("NVTX", "1d", 1)[0].time == sim.day_start_ms
    assert sim.quote("NVTX").open == frozen["NVTX"]


def test_the_market_is_always_open_without_exchange_hours():
    sim = make(day_length_ms=SHORT_DAY)
    assert all(sim.is_open(START + k * 97_000) for k in range(100))


# ----- shocks ----------------------------------------------------------------------------------------------


def test_shock_moves_the_named_symbols_by_the_percent_and_nothing_else():
    sim = make()
    sim.tick(START + 1_000, START + 1_000)
    before = prices(sim)
    version = sim.version
    assert sim.shock(10, ["QBIT", "NVTX"]) == ["NVTX", "QBIT"]
    after = prices(sim)
    for symbol in ("NVTX", "QBIT"):
        assert after[symbol] == pytest.approx(before[symbol] * 1.10, abs=1)
        assert sim.quote(symbol).high == after[symbol]
        assert sim.history(symbol, "1m", 1)[0].close == after[symbol]
    assert {s: p for s, p in after.items() if s not in ("NVTX", "QBIT")} == {
        s: p for s, p in before.items() if s not in ("NVTX", "QBIT")
    }
    assert sim.version == version + 1 == sim.quote("NVTX").version


def test_sector_shock_moves_every_symbol_of_the_sector():
    sim = make()
    before = prices(sim)
    moved = sim.shock(-20, sector="Energy")
    assert moved == [s.symbol for s in DEFAULT_UNIVERSE if s.sector == "Energy"]
    for symbol, price in prices(sim).items():
        expected = before[symbol] * 0.8 if symbol in moved else before[symbol]
        assert price == pytest.approx(expected, abs=1)
    assert sim.quote(moved[0]).low == sim.quote(moved[0]).price


def test_bad_shocks_are_refused_and_move_nothing():
    sim = make()
    before = prices(sim)
    with pytest.raises(BadRequest):
        sim.shock(5)
    with pytest.raises(BadRequest):
        sim.shock(5, sector="Crypto")
    for percent in (float("nan"), float("inf"), -100, -150, 5_000, True, "5"):
        with pytest.raises(BadRequest):
            sim.shock(percent, ["NVTX"])
    with pytest.raises(NotFound):
        sim.shock(5, ["NVTX", "NOPE"])
    assert prices(sim) == before and sim.version == 0


def test_a_shock_while_closed_becomes_the_next_sessions_open():
    sim = make(day_length_ms=SHORT_DAY, exchange_hours=True, closed_ms=1_800_000)
    sim.tick(START + SHORT_DAY + 1_000, START)
    price = sim.quote("NVTX").price
    sim.shock(10, "NVTX")
    q = sim.quote("NVTX")
    assert q.price == pytest.approx(price * 1.1, abs=1) and q.open == q.high == q.low == q.price
    assert q.previous_close == price
    sim.tick(sim.day_start_ms + 1_000, START)
    assert sim.history("NVTX", "1d", 1)[0].open == q.price


# ----- return series -----------------------------------------------------------------------------------------


def test_index_daily_returns_follow_the_constituents():
    sim = make()
    composite = sim.index_daily_returns("SQX", 10)
    assert len(composite) == 10
    one = (SymbolSpec("ONE", "One", "X", 10_000, 0.3, 1.0),)
    single = MarketSimulator(one, (IndexSpec("I1", "Only", ("ONE",)),), rng=random.Random(2), start_market_ms=START,
                             history_days=20)  # fmt: skip
    assert single.index_daily_returns("I1", 5) == pytest.approx(single.daily_returns("ONE", 5))
    with pytest.raises(NotFound):
        sim.index_daily_returns("NOPE", 5)


def test_daily_returns_are_simple_returns_of_completed_daily_closes():
    sim = make()
    closes = [b.close for b in sim.history("MEDX", "1d", 1000)][:-1]  # the forming day is left out
    expected = [b / a - 1 for a, b in zip(closes[-6:-1], closes[-5:], strict=True)]
    assert sim.daily_returns("MEDX", 5) == pytest.approx(expected)
    with pytest.raises(BadRequest):
        sim.daily_returns("MEDX", 0)


# ----- lookups and errors ------------------------------------------------------------------------------------


def test_symbol_lookups_list_the_universe():
    sim = make()
    assert sim.has("NVTX") and not sim.has("nvtx") and not sim.has(42)
    assert [s.symbol for s in sim.specs()] == list(sim.quotes()) == [s.symbol for s in DEFAULT_UNIVERSE]
    assert sim.sectors()[0] == "Technology" and len(sim.sectors()) == len({s.sector for s in DEFAULT_UNIVERSE})


def test_unknown_symbols_are_not_found():
    sim = make()
    for call in (
        lambda: sim.quote("NOPE"),
        lambda: sim.history("NOPE", "1d"),
        lambda: sim.bars("NOPE", "1m"),
        lambda: sim.daily_returns("NOPE", 5),
        lambda: sim.quote(None),
    ):
        with pytest.raises(NotFound):
            call()


@pytest.mark.parametrize("interval", ["2h", "1w", "", "1D"])
def test_unknown_intervals_are_bad_requests(interval):
    sim = make()
    with pytest.raises(BadRequest):
        sim.history("NVTX", interval)
    with pytest.raises(BadRequest):
        sim.bars("NVTX", interval)


@pytest.mark.parametrize("limit", [0, -1, 1001, 2.5, "10", True])
def test_history_limits_outside_1_to_1000_are_bad_requests(limit):
    with pytest.raises(BadRequest):
        make().history("NVTX", "1m", limit)


def test_bars_hold_every_bar_of_an_interval_beyond_the_history_limit():
    sim = MarketSimulator(rng=random.Random(4), start_market_ms=START)
    bars = sim.bars("NVTX", "1m")
    assert len(bars) == 3 * 390 + 1  # three generated 6.5 h days of minutes, and the day just opened
    assert list(bars[-1000:]) == sim.history("NVTX", "1m", 1000)


def test_history_returns_at_most_limit_bars_oldest_first():
    bars = make().history("NVTX", "1m", 10)
    assert len(bars) == 10 and [b.time for b in bars] == sorted(b.time for b in bars)
