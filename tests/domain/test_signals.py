"""Signal models, their honest scoring, the online model's no-look-ahead rule, and its edge on the simulated market."""

import dataclasses
import math
import random

import pytest

from domain.errors import BadRequest, NotFound
from domain.market import MarketSimulator
from domain.signal_features import FEATURES, Feature, compute_features
from domain.signals import BASE_MODELS, MODELS, Action, Model, ModelRecord, Signal, SignalEngine
from domain.universe import SymbolSpec

START = 1_764_126_000_000
WALL = 1_764_200_000_000
MINUTE = 60_000


def feed(engine: SignalEngine, closes, symbol: str = "AAA", start: int = START) -> list[list[Signal]]:
    """Feed closes as consecutive 1-minute bars; return what each on_bar returned."""
    return [
        engine.on_bar(symbol, start + k * MINUTE, close, wall_ms=WALL + k * 1_000) for k, close in enumerate(closes)
    ]


def latest(engine: SignalEngine, model: Model, symbol: str = "AAA") -> Signal:
    (signal,) = engine.signals(symbol, [model])
    return signal


def wiggle(k: int) -> int:
    """A small deterministic zig-zag so that scripted series are not perfectly smooth."""
    return (3, -2, 4, -3, 1, -4)[k % 6]


def steady(growth: float, bars: int, base: int = 10_000) -> list[int]:
    return [round(base * (1 + growth) ** k) + wiggle(k) for k in range(bars)]


def random_walk(seed: int, bars: int, base: int = 20_000) -> list[int]:
    rng = random.Random(seed)
    log_price, out = math.log(base), []
    for _ in range(bars):
        log_price += rng.gauss(0.0, 0.001)
        out.append(round(math.exp(log_price)))
    return out


# ----- the models' directions on scripted series -----------------------------------------------------------------


@pytest.mark.parametrize(("growth", "expected"), [(0.002, Action.BUY), (-0.002, Action.SELL)])
def test_steady_moves_make_momentum_and_trend_follow_them(growth, expected):
    engine = SignalEngine(["AAA"])
    feed(engine, steady(growth, 80))
    for model in (Model.MOMENTUM, Model.TREND):
        signal = latest(engine, model)
        assert signal.action == expected
        assert abs(signal.score) > 0.8 and signal.confidence > 0.8
        assert math.copysign(1, signal.score) == math.copysign(1, growth)


@pytest.mark.parametrize(("jump", "expected"), [(0.03, Action.SELL), (-0.03, Action.BUY)])
def test_a_spike_out_of_a_quiet_range_makes_mean_reversion_lean_against_it(jump, expected):
    closes = [10_000 + wiggle(k) for k in range(60)]
    for _ in range(3):
        closes.append(round(closes[-1] * (1 + jump)))
    engine = SignalEngine(["AAA"])
    feed(engine, closes)
    signal = latest(engine, Model.MEAN_REVERSION)
    assert signal.action == expected
    assert signal.score == (-1.0 if jump > 0 else 1.0)
    side = math.copysign(1, jump)
    assert signal.features[Feature.BOLLINGER] * side > 1  # beyond the band
    assert signal.features[Feature.RSI] * side > 1  # RSI beyond 70 / below 30


def test_a_quiet_range_says_hold_to_mean_reversion():
    engine = SignalEngine(["AAA"])
    feed(engine, [10_000 + wiggle(k) for k in range(60)])
    assert latest(engine, Model.MEAN_REVERSION).action == Action.HOLD


def test_a_price_that_never_moves_gives_hold_from_every_model_and_no_predictions():
    engine = SignalEngine(["AAA"])
    feed(engine, [10_000] * 80)
    assert {s.action for s in engine.signals("AAA")} == {Action.HOLD}
    assert all(s.score == 0.0 for s in engine.signals("AAA"))
    assert all(row.predictions == 0 and row.hit_rate is None for row in engine.performance())


def test_models_hold_with_no_confidence_until_the_warm_up_bars_have_closed():
    engine = SignalEngine(["AAA"], warmup_bars=40)
    assert engine.signals("AAA") == []
    feed(engine, steady(0.002, 39))
    assert [s.action for s in engine.signals("AAA")] == [Action.HOLD] * 5
    assert all(s.confidence == 0.0 and s.features == {} for s in engine.signals("AAA"))
    engine.on_bar("AAA", START + 39 * MINUTE, 11_000, wall_ms=WALL)
    assert latest(engine, Model.MOMENTUM).action == Action.BUY


def test_every_signal_says_what_to_do_how_strongly_and_from_which_inputs():
    engine = SignalEngine(["AAA"], horizon_bars=5)
    feed(engine, random_walk(3, 70))
    signals = engine.signals("AAA")
    assert [s.model for s in signals] == list(MODELS)
    for s in signals:
        assert s.symbol == "AAA" and s.horizon_bars == 5 and isinstance(s.action, Action)
        assert -1.0 <= s.score <= 1.0 and 0.0 <= s.confidence <= 1.0
        assert s.generated_at_ms == WALL + 69 * 1_000  # the wall time of the bar that made it
        assert all(isinstance(v, float) and v == round(v, 4) for v in [s.score, s.confidence, *s.features.values()])
    assert list(latest(engine, Model.MOMENTUM).features) == [Feature.ROC10, Feature.MACD_HISTOGRAM]
    assert list(latest(engine, Model.MEAN_REVERSION).features) == [Feature.BOLLINGER, Feature.RSI]
    assert list(latest(engine, Model.TREND).features) == [Feature.SMA_GAP, Feature.SLOPE]
    assert list(latest(engine, Model.ONLINE).features) == list(FEATURES)
    assert list(latest(engine, Model.ENSEMBLE).features) == list(BASE_MODELS)
    assert engine.signals("AAA", [Model.TREND, Model.MOMENTUM]) == [
        latest(engine, Model.MOMENTUM),
        latest(engine, Model.TREND),
    ]


def test_signals_are_computed_once_per_bar_and_shared():
    engine = SignalEngine(["AAA"])
    feed(engine, random_walk(4, 50))
    assert engine.signals("AAA")[0] is engine.signals("AAA")[0]


def test_on_bar_returns_only_signals_that_flipped_or_moved_beyond_the_threshold():
    engine = SignalEngine(["AAA"], change_threshold=0.1)
    returned = feed(engine, random_walk(5, 120))
    assert len(returned[0]) == 5  # the first signal of each model always counts
    announced = {s.model: s for s in returned[0]}
    for batch in returned[1:]:
        for s in batch:
            before = announced[s.model]
            assert s.action != before.action or abs(s.score - before.score) > 0.1
            announced[s.model] = s
    assert 0 < sum(len(batch) for batch in returned[1:]) < 5 * 119
    assert engine.on_bar("AAA", START, 20_000, wall_ms=WALL) == []  # a bar already seen changes nothing


def test_unknown_symbols_and_models_are_refused():
    engine = SignalEngine(["AAA"])
    with pytest.raises(NotFound):
        engine.on_bar("ZZZ", START, 100, wall_ms=WALL)
    with pytest.raises(NotFound):
        engine.signals("ZZZ")
    with pytest.raises(BadRequest, match="unknown model 'magic'; models: momentum, mean_reversion, trend, online"):
        engine.signals("AAA", [Model.MOMENTUM, "magic"])
    with pytest.raises(BadRequest, match="unknown model 'meanReversion'"):  # the protocol's name is not the domain's
        engine.signals("AAA", ["meanReversion"])
    with pytest.raises(BadRequest, match="unknown model"):
        engine.performance("magic")


# ----- honest scoring ---------------------------------------------------------------------------------------------


def test_each_call_is_scored_against_the_close_horizon_bars_later():
    """Rise, then go flat, then fall: momentum's calls hit while the rise lasts; a flat price is a miss."""
    closes = steady(0.002, 60) + [11_300] * 12 + [round(11_300 * 0.998**k) for k in range(1, 30)]
    engine = SignalEngine(["AAA"], horizon_bars=5)
    calls = []
    for k, close in enumerate(closes):
        engine.on_bar("AAA", START + k * MINUTE, close, wall_ms=WALL + k)
        calls.append(latest(engine, Model.MOMENTUM).action)
    expected_hits = expected_n = 0
    expected_sum = 0.0
    for k in range(len(closes) - 5):
        direction = {Action.BUY: 1, Action.SELL: -1}.get(calls[k], 0)
        if direction:
            realized = closes[k + 5] / closes[k] - 1.0
            expected_n += 1
            expected_hits += realized * direction > 0
            expected_sum += direction * realized
    (row,) = engine.performance(Model.MOMENTUM)
    assert expected_n > 40 and 0 < expected_hits < expected_n  # both hits and misses, flat ones included
    assert any(closes[k + 5] == closes[k] and calls[k] == Action.BUY for k in range(len(closes) - 5))
    assert row.model == Model.MOMENTUM
    assert (row.predictions, row.hits) == (expected_n, expected_hits)
    assert row.hit_rate == expected_hits / expected_n
    assert row.average_return == pytest.approx(expected_sum / expected_n, abs=1e-12)


def test_a_gap_in_the_bars_scores_at_the_first_close_past_the_horizon():
    engine = SignalEngine(["AAA"], horizon_bars=5)
    closes = steady(0.002, 50)
    feed(engine, closes)
    assert latest(engine, Model.MOMENTUM).action == Action.BUY
    before = engine.performance(Model.MOMENTUM)[0].predictions
    # Bar 52 is missing: the calls made at bars 47 and 48 (due at 52 and 53) are both scored at bar 53's close.
    engine.on_bar("AAA", START + 50 * MINUTE, 12_000, wall_ms=WALL)
    engine.on_bar("AAA", START + 51 * MINUTE, 12_010, wall_ms=WALL)
    assert engine.performance(Model.MOMENTUM)[0].predictions == before + 2
    engine.on_bar("AAA", START + 53 * MINUTE, 12_020, wall_ms=WALL)
    assert engine.performance(Model.MOMENTUM)[0].predictions == before + 4


def test_holds_are_not_predictions():
    engine = SignalEngine(["AAA"])
    feed(engine, [10_000 + wiggle(k) for k in range(80)])
    assert latest(engine, Model.MEAN_REVERSION).action == Action.HOLD
    assert engine.performance(Model.MEAN_REVERSION)[0].predictions == 0


def test_warm_up_predictions_train_but_are_not_counted_and_since_is_the_first_live_bar():
    engine = SignalEngine(["AAA"])
    history = [_Bar(START + k * MINUTE, c) for k, c in enumerate(steady(0.002, 100))]
    engine.warm_up("AAA", history, wall_ms=WALL)
    assert engine.learner("AAA").examples > 0
    assert all(row.predictions == 0 and row.since_ms is None for row in engine.performance())
    assert latest(engine, Model.MOMENTUM).action == Action.BUY
    engine.warm_up("AAA", history, wall_ms=WALL)  # bars already seen are skipped
    assert engine.learner("AAA").examples == 100 - 40 - 4

    engine.on_bar("AAA", START + 100 * MINUTE, history[-1].close + 25, wall_ms=WALL + 5_000)
    rows = engine.performance()
    assert {row.since_ms for row in rows} == {WALL + 5_000}
    assert all(row.predictions == 0 for row in rows)  # the warm-up calls scored now are still not counted
    for k in range(101, 110):
        engine.on_bar("AAA", START + k * MINUTE, history[-1].close + 25 * (k - 99), wall_ms=WALL + k)
    momentum = engine.performance(Model.MOMENTUM)[0]
    assert momentum.predictions == 5 and momentum.hit_rate == 1.0 and momentum.average_return > 0


class _Bar:
    def __init__(self, time_ms: int, close: int):
        self.time, self.close = time_ms, close


# ----- no look-ahead ------------------------------------------------------------------------------------------------


def test_the_online_model_learns_each_example_only_once_its_horizon_has_closed():
    horizon = 5
    engine = SignalEngine(["AAA"], horizon_bars=horizon, warmup_bars=40)
    closes = random_walk(8, 300)
    learner = engine.learner("AAA")
    seen: list[tuple[int, list[float], bool]] = []
    now = {"bar": -1}
    real_update = learner.update

    def spy(x, label):
        seen.append((now["bar"], list(x), label))
        real_update(x, label)

    learner.update = spy
    for k, close in enumerate(closes):
        now["bar"] = k
        engine.on_bar("AAA", START + k * MINUTE, close, wall_ms=WALL)
        # Every example taught so far is the bar `horizon` earlier, with the label of what happened since.
        taught = [j for j in range(40 - 1, k - horizon + 1) if closes[j + horizon] != closes[j]]
        assert len(seen) == len(taught)
    for (bar, x, label), j in zip(seen, [j for j in range(39, len(closes) - horizon) if closes[j + 5] != closes[j]],
                                  strict=True):  # fmt: skip
        assert bar == j + horizon  # learnt at the bar that closed its horizon, never earlier
        assert label == (closes[j + horizon] > closes[j])
        features = compute_features(closes[: j + 1])
        assert x == [features[name] for name in FEATURES]  # the features known at bar j, nothing later


def test_a_signal_never_depends_on_bars_after_it():
    closes = random_walk(9, 260)
    full = SignalEngine(["AAA"])
    snapshots = {}
    for k, close in enumerate(closes):
        full.on_bar("AAA", START + k * MINUTE, close, wall_ms=WALL)
        if k in (60, 150, 259):
            snapshots[k] = full.signals("AAA")
    for k, snapshot in snapshots.items():
        cut = SignalEngine(["AAA"])
        feed(cut, closes[: k + 1])
        assert [dataclasses.replace(s, generated_at_ms=0) for s in cut.signals("AAA")] == [
            dataclasses.replace(s, generated_at_ms=0) for s in snapshot
        ]


def test_the_ensemble_learns_to_ignore_a_model_that_keeps_missing():
    engine = SignalEngine(["AAA"])
    feed(engine, steady(0.002, 300))
    ensemble = latest(engine, Model.ENSEMBLE)
    assert latest(engine, Model.MEAN_REVERSION).action == Action.SELL  # a steady rise looks overbought
    assert ensemble.features[Model.MEAN_REVERSION] == 0.0 < ensemble.features[Model.MOMENTUM]
    assert ensemble.action == Action.BUY


# ----- the online model on the simulated market -----------------------------------------------------------------


def run_market(predictability: float, *, seed: int, symbols: int, bars: int) -> ModelRecord:
    """Warm a SignalEngine up on a seeded simulator's minute history, then feed it `bars` live bars per symbol."""
    universe = tuple(SymbolSpec(f"S{k}", f"Stock {k}", f"Sector {k}", 15_000, 0.30, 1.0) for k in range(symbols))
    sim = MarketSimulator(
        universe,
        (),
        rng=random.Random(seed),
        start_market_ms=START,
        predictability=predictability,
        history_days=2,
        minute_history_days=2,
        market_volatility=0.0,  # independent symbols, so calls on different symbols are independent trials
        sector_share=0.0,
    )
    engine = SignalEngine([s.symbol for s in universe])
    for spec in universe:
        engine.warm_up(spec.symbol, sim.history(spec.symbol, "1m", 1000)[:-1], wall_ms=START)
    t = START
    for _ in range(bars):
        t += MINUTE
        sim.tick(t, t)
        for spec in universe:
            closed = sim.history(spec.symbol, "1m", 2)[0]  # the bar that this tick completed
            engine.on_bar(spec.symbol, closed.time, closed.close, wall_ms=t)
    (row,) = engine.performance(Model.ONLINE)
    return row


def test_online_model_beats_coin_flip_only_when_market_is_predictable():
    """The online model's live hit rate is well above 50 % at predictability 0.6 and not above it at 0.

    How long: 8 independent symbols x 2,500 live bars each (after 780 bars of warm-up) give n of roughly 12,000
    (predictability 0) to 17,000 (0.6) scored calls. Calls 1 to 4 bars apart share part of their 5-bar horizon,
    which inflates the variance of the hit rate over the binomial 0.25 / n by up to about 4 (25 seeded runs at
    predictability 0 measured 3.5), so the standard error is taken as 0.5 * sqrt(4 / n) = 1 / sqrt(n), about
    0.008-0.009. At 0.6 the attainable edge is about 6 points (a filter of the simulator's latent drift hits 55.7 %;
    this model measured 55-58 % over 10 seeds of 4 symbols), some 7 standard errors; at 0 the expected hit rate is
    50 % less half the share of unchanged prices (ties count as misses; about 1 % at $150), and 25 seeds of 4 symbols
    measured 46-52 %. So the test asks for more than 0.5 + 3 SE with the predictable component and less than
    0.5 + 2 SE without it: a real edge passes with a wide margin, and a leak of future prices into the model (which
    would show up as an edge at predictability 0) fails. The two runs take about 10 s of CPU here.
    """
    on = run_market(0.6, seed=2026, symbols=8, bars=2_500)
    off = run_market(0.0, seed=2026, symbols=8, bars=2_500)
    for row in (on, off):
        assert row.predictions > 8_000
    se_on, se_off = 1 / math.sqrt(on.predictions), 1 / math.sqrt(off.predictions)
    assert on.hit_rate > 0.5 + 3 * se_on, on
    assert on.average_return > 0
    assert off.hit_rate < 0.5 + 2 * se_off, off
