"""Scenario moves reach prices through the simulator's factors: the same noise, plus a drift or a wider spread.

Each test runs a scenario market beside a scenario-free one with the same seed and the same tick times. The random
draws are the same, so a drift shows as an exact ratio of prices (up to rounding to whole cents) and a volatility
multiplier as an exact ratio of returns, rather than as a statistical claim.
"""

import hashlib
import math
import random

import numpy as np
import pytest

from domain.errors import BadRequest, NotFound
from domain.market import FactorScope, FactorWindow, MarketSimulator
from domain.scenarios import ScenarioRun, Sessions, parse_scenario
from domain.universe import DEFAULT_UNIVERSE

START = 1_764_126_000_000
DAY = 23_400_000
MINUTE = 60_000
SHORT_DAY = 600_000
BETA = {s.symbol: s.beta for s in DEFAULT_UNIVERSE}
TECH = [s.symbol for s in DEFAULT_UNIVERSE if s.sector == "Technology"]


def make(seed: int = 1, **options) -> MarketSimulator:
    options.setdefault("history_days", 2)
    options.setdefault("minute_history_days", 0)
    return MarketSimulator(rng=random.Random(seed), start_market_ms=START, **options)


def scenario(effects: str, day: int = 1, time: str = "10:00") -> str:
    return f'name = "test"\n[[events]]\nday = {day}\ntime = "{time}"\n{effects}\n'


def play(text: str, times, seed: int = 1, **options) -> tuple[MarketSimulator, MarketSimulator, ScenarioRun]:
    """The scenario market and a scenario-free one, both ticked at `times`, and the run driving the first."""
    free, scripted = make(seed, **options), make(seed, **options)
    run = ScenarioRun(parse_scenario(text, DEFAULT_UNIVERSE))
    run.start(START, Sessions(scripted.day_start_ms, scripted.day_length_ms, scripted.cycle_ms))
    scripted.set_factor_windows(run.factor_windows())
    for t in times:
        run.due(t)
        free.tick(t, t)
        scripted.tick(t, t)
    return scripted, free, run


def prices(sim: MarketSimulator) -> dict[str, int]:
    return {s: q.price for s, q in sim.quotes().items()}


def irregular_times(until: int, seed: int = 3) -> list[int]:
    """Ticks of many sizes, so that they straddle every window's start and end at odd places."""
    rng, t, out = random.Random(seed), START, []
    while t < until:
        t += rng.choice([250, 1_000, 7_777, 45_000, 180_001])
        out.append(t)
    return out


def fingerprint(predictability: float) -> str:
    sim = MarketSimulator(rng=random.Random(7), start_market_ms=START, history_days=2, minute_history_days=1,
                          predictability=predictability, day_length_ms=SHORT_DAY, exchange_hours=True,
                          closed_ms=300_000)  # fmt: skip
    digest = hashlib.sha256()
    t = START
    for k in range(400):
        t += (250, 1_000, 7_000, 45_000)[k % 4]
        sim.tick(t, t)
        digest.update(",".join(f"{q.price}:{q.bid}:{q.volume}" for q in sim.quotes().values()).encode())
    for symbol in ("NVTX", "PWRG"):
        digest.update(repr(sim.bars(symbol, "1m")).encode())
    return digest.hexdigest()[:16]


# ----- no scenario, no change --------------------------------------------------------------------------------------


def test_a_scenario_free_market_gives_the_same_quotes_and_bars_as_before_scenarios_existed():
    # Fingerprints recorded on the simulator before factor windows were added (commit e203e15).
    assert fingerprint(0.0) == "4276fbab1568c71f"
    assert fingerprint(0.3) == "8d9f6f5c92ed019d"


def test_neutral_windows_and_windows_already_past_change_nothing():
    plain, neutral = make(5, history_days=30, minute_history_days=1), make(5, history_days=30, minute_history_days=1)
    neutral.set_factor_windows([
        FactorWindow(START, START + DAY, FactorScope.MARKET),
        FactorWindow(START + 1_000, START + 90_000, FactorScope.SECTOR, "Energy", drift=0.0, volatility=1.0),
        FactorWindow(START - DAY, START, FactorScope.SYMBOL, "NVTX", drift=0.5, volatility=3.0),
    ])
    for t in irregular_times(START + 2 * 3_600_000):
        assert plain.tick(t, t) == neutral.tick(t, t)
        assert plain.quotes() == neutral.quotes()
    assert plain.bars("NVTX", "1m") == neutral.bars("NVTX", "1m")


# ----- moves -------------------------------------------------------------------------------------------------------


def test_a_symbol_move_of_minus_12_percent_over_20_minutes_lands_on_minus_12_percent():
    text = scenario('[[events.move]]\nsymbols = ["NVTX"]\npercent = -12\nover = "20m"')
    begin, end = START + 30 * MINUTE, START + 50 * MINUTE
    times = irregular_times(START + 60 * MINUTE)
    partway = [t for t in times if t <= begin + 10 * MINUTE]
    scripted, free, _ = play(text, partway)
    share = (partway[-1] - begin) / (end - begin)  # of the move's time that the last tick has reached
    assert 0.4 < share < 0.5
    assert abs(scripted.quote("NVTX").price - 0.88**share * free.quote("NVTX").price) <= 1
    scripted, free, _ = play(text, times)
    # The same noise and a drift of log(0.88) in log price: exact but for rounding each price to a whole cent.
    assert abs(scripted.quote("NVTX").price - 0.88 * free.quote("NVTX").price) <= 1
    assert {s: p for s, p in prices(scripted).items() if s != "NVTX"} == {
        s: p for s, p in prices(free).items() if s != "NVTX"}
    # Against the price before the move, the noise of 20 minutes (sd about 0.5%) sits on top of the -12%.
    before = [b.close for b in scripted.bars("NVTX", "1m") if b.time < begin][-1]
    after = [b.close for b in scripted.bars("NVTX", "1m") if b.time < end][-1]
    assert after / before - 1 == pytest.approx(-0.12, abs=0.02)


def test_a_sector_move_moves_that_sectors_symbols_and_no_others():
    text = scenario('[[events.move]]\nsector = "Energy"\npercent = -5\nover = "1h"')
    scripted, free, _ = play(text, irregular_times(START + 2 * 3_600_000))
    energy = {s.symbol for s in DEFAULT_UNIVERSE if s.sector == "Energy"}
    for symbol, price in prices(scripted).items():
        if symbol in energy:
            assert abs(price - 0.95 * free.quote(symbol).price) <= 1
        else:
            assert price == free.quote(symbol).price


def test_a_market_move_moves_each_symbol_by_its_beta_and_the_composite_by_about_the_percent():
    text = scenario('[[events.move]]\nmarket = true\npercent = 4\nover = "1h"')
    scripted, free, _ = play(text, irregular_times(START + 2 * 3_600_000))
    for symbol, price in prices(scripted).items():
        assert abs(price - 1.04 ** BETA[symbol] * free.quote(symbol).price) <= 1
    composite = scripted.indices()[0]
    ratio = composite.value(prices(scripted)) / composite.value(prices(free))
    assert ratio == pytest.approx(1.04, abs=0.002)  # the universe's average beta is 0.99


def test_moves_on_a_symbol_and_its_sector_add_up():
    text = scenario('[[events.move]]\nsymbols = ["NVTX"]\npercent = -12\nover = "20m"\n'
                    '[[events.move]]\nsector = "Technology"\npercent = -3\nover = "1h"')
    scripted, free, _ = play(text, irregular_times(START + 2 * 3_600_000))
    assert abs(scripted.quote("NVTX").price - 0.88 * 0.97 * free.quote("NVTX").price) <= 1
    assert abs(scripted.quote("QBIT").price - 0.97 * free.quote("QBIT").price) <= 1


def test_a_move_running_past_the_close_completes_at_the_next_open():
    options = {"day_length_ms": SHORT_DAY, "exchange_hours": True, "closed_ms": 300_000}
    text = scenario('[[events.move]]\nsymbols = ["NVTX"]\npercent = 10\nover = "2h"', time="15:00")
    times = list(range(START + 3_000, START + 2 * (SHORT_DAY + 300_000), 3_000))
    scripted, free, _ = play(text, [t for t in times if t <= START + SHORT_DAY + 100_000], **options)
    assert not scripted.is_open(START + SHORT_DAY + 100_000)
    assert abs(scripted.quote("NVTX").price - 1.1 ** 0.5 * free.quote("NVTX").price) <= 1
    scripted, free, _ = play(text, times, **options)
    assert abs(scripted.quote("NVTX").price - 1.1 * free.quote("NVTX").price) <= 1


def test_the_minute_bars_follow_the_prices_through_a_move():
    text = scenario('[[events.move]]\nsymbols = ["NVTX"]\npercent = -12\nover = "20m"')
    begin, length = START + 30 * MINUTE, 20 * MINUTE
    times = list(range(START + 20_000, START + 80 * MINUTE, 20_000))
    scripted, free, _ = play(text, times)
    drift = math.log(0.88)
    moved, untouched = scripted.bars("NVTX", "1m"), free.bars("NVTX", "1m")
    assert [b.time for b in moved] == [b.time for b in untouched]
    for bar, plain in zip(moved, untouched, strict=True):
        last_tick = bar.time + 40_000  # ticks every 20 s: a minute's last one is 40 s in
        share = min(max((last_tick - begin) / length, 0.0), 1.0)
        assert abs(bar.close - plain.close * math.exp(drift * share)) <= 1
    assert moved[-1].close == scripted.quote("NVTX").price
    today, quote = scripted.history("NVTX", "1d", 1)[0], scripted.quote("NVTX")
    assert (today.low, today.close) == (quote.low, quote.price) and today.low < 0.92 * today.open


# ----- volatility --------------------------------------------------------------------------------------------------


def test_volatility_times_two_doubles_realised_volatility_over_a_day():
    text = scenario('[[events.volatility]]\nmarket = true\nmultiplier = 2\nover = "1d"', day=2, time="09:30")
    scripted, free, _ = play(text, range(START + MINUTE, START + 3 * DAY + 1, MINUTE), seed=11)

    def realised(sim, day):
        """Each symbol's standard deviation of 1-minute log returns over day `day` (0-based), in universe order."""
        closes = [[b.close for b in sim.bars(s, "1m") if START + day * DAY <= b.time < START + (day + 1) * DAY]
                  for s in sim.quotes()]
        return np.diff(np.log(np.array(closes, dtype=float)), axis=1).std(axis=1)

    # Same draws: every shock of the day is twice as large. Not exactly 2, as the latent drift carries the first
    # minutes' smaller innovations for a few 3-minute half-lives, and cents round.
    assert np.mean(realised(scripted, 1) / realised(free, 1)) == pytest.approx(2.0, abs=0.03)
    assert np.mean(realised(scripted, 2) / realised(free, 2)) == pytest.approx(1.0, abs=0.01)  # over with the day
    # Against an ordinary day of the same market (other draws): 389 returns give each symbol's estimate a standard
    # error of about 3.6%, so a ratio of two about 5%; the mean over 38 symbols is within 10% with a wide margin.
    assert np.mean(realised(scripted, 1) / realised(scripted, 0)) == pytest.approx(2.0, rel=0.1)


def test_a_volatility_window_on_one_symbol_scales_its_returns_only():
    text = scenario('[[events.volatility]]\nsymbols = ["QBIT"]\nmultiplier = 3\nover = "1h"')
    scripted, free, _ = play(text, range(START + 30 * MINUTE + 15_000, START + 90 * MINUTE, 15_000),
                             predictability=0.0)
    moved = np.diff(np.log([b.close for b in scripted.bars("QBIT", "1m")][-60:]))
    plain = np.diff(np.log([b.close for b in free.bars("QBIT", "1m")][-60:]))
    assert moved.std() / plain.std() == pytest.approx(3.0, rel=0.02)  # no latent drift: only cents differ
    assert {s: p for s, p in prices(scripted).items() if s != "QBIT"} == {
        s: p for s, p in prices(free).items() if s != "QBIT"}


def test_a_step_half_inside_a_volatility_window_gets_the_variance_of_both_halves():
    # The step arithmetic itself (MarketSimulator._factors), for steps that straddle windows' edges.
    sim = make()
    sim.set_factor_windows([FactorWindow(START + 500, START + 2_000, FactorScope.SYMBOL, "NVTX", volatility=3.0),
                            FactorWindow(START + 1_000, START + 2_000, FactorScope.SECTOR, "Technology",
                                         volatility=2.0, drift=0.2)])
    scale, extra = sim._factors(START, START + 1_000)
    nvtx, qbit = sim._pos["NVTX"], sim._pos["QBIT"]
    assert scale[nvtx] == pytest.approx(math.sqrt((500 * 1 + 500 * 9) / 1_000))
    assert scale[qbit] == 1.0 and extra[nvtx] == 0.0
    scale, extra = sim._factors(START + 1_000, START + 3_000)
    assert scale[nvtx] == pytest.approx(math.sqrt((1_000 * 36 + 1_000) / 2_000))
    assert scale[qbit] == pytest.approx(math.sqrt((1_000 * 4 + 1_000) / 2_000))
    assert extra[nvtx] == extra[qbit] == pytest.approx(0.2)


# ----- the hook's own checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "error"),
    [
        (FactorWindow(START, START, FactorScope.MARKET, drift=0.1), BadRequest),
        (FactorWindow(START + 5, START, FactorScope.MARKET, drift=0.1), BadRequest),
        (FactorWindow(START, START + 5, FactorScope.SECTOR, "Crypto", drift=0.1), BadRequest),
        (FactorWindow(START, START + 5, FactorScope.SYMBOL, "NOPE", drift=0.1), NotFound),
        (FactorWindow(START, START + 5, "galaxy", drift=0.1), BadRequest),
        (FactorWindow(START, START + 5, FactorScope.MARKET, drift=float("nan")), BadRequest),
        (FactorWindow(START, START + 5, FactorScope.MARKET, volatility=0.0), BadRequest),
        (FactorWindow(START, START + 5, FactorScope.MARKET, volatility=True), BadRequest),
        ("a window", BadRequest),
    ],
)
def test_bad_factor_windows_are_refused_and_leave_the_windows_as_they_were(window, error):
    refused, kept = make(), make()
    good = FactorWindow(START, START + MINUTE, FactorScope.SECTOR, "Energy", drift=0.1)
    refused.set_factor_windows([good])
    kept.set_factor_windows([good])
    with pytest.raises(error):
        refused.set_factor_windows([good, window])
    for t in range(START + 10_000, START + 2 * MINUTE, 10_000):
        refused.tick(t, t)
        kept.tick(t, t)
    assert prices(refused) == prices(kept)


def test_factor_windows_accept_scopes_written_as_text_and_set_again_replaces_them():
    as_text, as_enum, cleared = make(), make(), make()
    as_text.set_factor_windows([FactorWindow(START, START + MINUTE, "sector", "Energy", drift=0.1)])
    as_enum.set_factor_windows([FactorWindow(START, START + MINUTE, FactorScope.SECTOR, "Energy", drift=0.1)])
    cleared.set_factor_windows([FactorWindow(START, START + MINUTE, FactorScope.MARKET, drift=0.5)])
    cleared.set_factor_windows(())
    plain = make()
    for sim in (as_text, as_enum, cleared, plain):
        sim.tick(START + MINUTE, START + MINUTE)
    assert prices(as_text) == prices(as_enum) != prices(plain) == prices(cleared)
