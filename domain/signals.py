"""Trading signals per symbol from closed 1-minute bars, and the honest, out-of-sample record of every model.

Five models speak about each symbol every time one of its 1-minute bars closes:

- ``momentum``: the 10-bar rate of change and the MACD (12/26/9) histogram; rising prices say BUY.
- ``mean_reversion``: Bollinger (20, 2) position and RSI (14) extremes; a close far above its band with a high RSI
  says SELL, far below with a low RSI says BUY, and anything inside half the band says nothing (HOLD).
- ``trend``: the SMA 10 / SMA 30 crossover gap and the least-squares slope of the last 30 log closes.
- ``online``: a logistic regression over the indicator features below, one per symbol, trained by stochastic
  gradient descent on the live stream to predict the sign of the return over the next `horizon_bars` bars.
  It learns from an example only once that example's horizon has closed, so it never trains on the future.
- ``ensemble``: a weighted vote of the four: each model votes +1 (BUY), -1 (SELL) or 0 (HOLD) with a weight equal
  to how far its own recent scored hit rate on this symbol is above 50 % (equal weights while none is).

The models read the scale-free features of `domain.signal_features`, so the same thresholds fit every stock.

**Score, signal, confidence.** momentum and trend score tanh of the mean of their two features; mean_reversion
scores minus the sign of (bollinger + rsi) / 2 times how far its size goes from 0.5 to 1 (0 inside, 1 at the band
with RSI at 70 / 30); online scores 2 P(up) - 1; ensemble scores its vote (the sum of weight x vote). A model says
BUY or SELL when its score reaches its threshold (0.4 for the three rule models, 0.3 for the ensemble, 0.02 for the
online model, whose probabilities stay close to one half even when it has a real edge), HOLD otherwise.
`confidence` is |score|, for the online model discounted by n / (n + 200) over its n training examples.

**Honest evaluation.** Each BUY or SELL becomes a prediction that the close `horizon_bars` bars later (the first bar
starting at least horizon_bars minutes after the predicting bar, so a gap in the bars lengthens it) will be above
(BUY) or below (SELL) the close it was made at. When that bar closes the prediction is scored: a hit when the simple
return close_later / close_then - 1 has the predicted sign; a return of exactly zero (an unchanged price) is a miss.
HOLDs are not predictions and are not counted. A record's `average_return` is the mean of direction x realized return
over the scored predictions (+1 for BUY, -1 for SELL): what following every call at the close would have earned per
call, before spread and commission. Predictions made while feeding history with `warm_up` train the online model and the
ensemble weights (they are just as out-of-sample) but are not counted in `performance`, whose `since_ms` is the
wall time of the first live bar; predictions still waiting for their horizon are not counted yet either.
"""

import enum
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from domain.errors import BadRequest, NotFound
from domain.signal_features import FEATURES, MIN_BARS, WINDOW, Feature, compute_features

__all__ = [
    "Model",
    "MODELS",
    "BASE_MODELS",
    "Action",
    "Signal",
    "ModelRecord",
    "OnlineLogisticRegression",
    "SignalEngine",
]


class Model(enum.StrEnum):
    """The five signal models, in the order every listing uses."""

    MOMENTUM = "momentum"
    MEAN_REVERSION = "mean_reversion"
    TREND = "trend"
    ONLINE = "online"
    ENSEMBLE = "ensemble"


MODELS = tuple(Model)
BASE_MODELS = MODELS[:4]  # the models the ensemble weighs


class Action(enum.StrEnum):
    """What a signal says to do."""

    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


@dataclass(frozen=True, slots=True)
class Signal:
    """One model's latest call on one symbol: what to do, how strongly, and the inputs it was made from.

    `score` (-1..1), `confidence` (0..1) and the feature values are rounded to 4 places, the precision every reader
    sees and the one `on_bar` compares when it decides whether a signal changed. `features` maps each Feature the
    model used to its value (for the ensemble: each base Model to its weight); treat it as read-only, it is shared.
    """

    symbol: str
    model: Model
    action: Action
    score: float
    confidence: float
    horizon_bars: int
    features: dict[Feature | Model, float]
    generated_at_ms: int


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """One model's scored live record, pooled over every symbol, since the first live bar (`since_ms`, None before)."""

    model: Model
    predictions: int
    hits: int
    return_sum: float  # of direction x simple return over the horizon, +1 for BUY and -1 for SELL
    since_ms: int | None

    @property
    def hit_rate(self) -> float | None:
        """Hits / predictions (an unchanged price being a miss); None before the first scored prediction."""
        return self.hits / self.predictions if self.predictions else None

    @property
    def average_return(self) -> float | None:
        """The mean of direction x simple return per call, a fraction; None before the first scored prediction."""
        return self.return_sum / self.predictions if self.predictions else None


_MINUTE_MS = 60_000
# |score| at or above which a model says BUY or SELL instead of HOLD.
_THRESHOLDS = {
    Model.MOMENTUM: 0.4,
    Model.MEAN_REVERSION: 0.4,
    Model.TREND: 0.4,
    Model.ONLINE: 0.02,
    Model.ENSEMBLE: 0.3,
}
_ONLINE_PRIOR_EXAMPLES = 200  # the online model's confidence is discounted by n / (n + this)
_SKILL_DECAY = 0.996  # per scored prediction: the ensemble's view of a model's hit rate has a ~170-call half-life
_SKILL_PRIOR = 20.0  # pseudo-calls at 50 % behind each hit-rate estimate


class _BarLike(Protocol):
    time: int
    close: int


class OnlineLogisticRegression:
    """Owns one online logistic regression: its weights (bias first) and how many examples it has learnt from.

    P(up) = sigmoid(w . [1, x]); each `update` takes one stochastic gradient step on the log loss with L2 decay
    (the bias is not decayed). A constant learning rate keeps it adapting if the market changes character.

    >>> model = OnlineLogisticRegression(1, learning_rate=0.5)
    >>> for _ in range(50):
    ...     model.update([1.0], True)
    ...     model.update([-1.0], False)
    >>> model.probability([1.0]) > 0.9 > 0.1 > model.probability([-1.0])
    True
    """

    def __init__(self, n_features: int, *, learning_rate: float = 0.01, l2: float = 1e-4):
        if not learning_rate > 0 or l2 < 0:
            raise ValueError("learning_rate must be positive and l2 not negative")
        self.weights = np.zeros(n_features + 1)
        self.learning_rate = learning_rate
        self.l2 = l2
        self.examples = 0

    def probability(self, x: Sequence[float]) -> float:
        z = float(self.weights[0] + np.dot(self.weights[1:], x))
        return 1.0 / (1.0 + math.exp(-z)) if z > -500 else 0.0

    def update(self, x: Sequence[float], label: bool) -> None:
        """One gradient step towards predicting `label` (True: the price went up) from `x`."""
        error = (1.0 if label else 0.0) - self.probability(x)
        step = self.learning_rate
        self.weights[1:] *= 1.0 - step * self.l2
        self.weights[0] += step * error
        self.weights[1:] += step * error * np.asarray(x, dtype=float)
        self.examples += 1


@dataclass(slots=True)
class _Pending:
    """One bar's predictions waiting for their horizon: the close they were made at and each model's direction."""

    target_ms: int
    close: float
    directions: dict[Model, int]
    features: list[float] | None  # the online model's inputs, for training when the label is known
    counted: bool  # made live (not during warm-up), so it goes into the public record


@dataclass(slots=True)
class _Record:
    """One model's public record: scored predictions, hits and the sum of direction x realized return."""

    predictions: int = 0
    hits: int = 0
    return_sum: float = 0.0


@dataclass(slots=True)
class _Skill:
    """A decayed hit count of one model on one symbol, which sets its weight in the ensemble."""

    hits: float = 0.0
    calls: float = 0.0

    def add(self, hit: bool) -> None:
        self.hits = self.hits * _SKILL_DECAY + (1.0 if hit else 0.0)
        self.calls = self.calls * _SKILL_DECAY + 1.0

    def edge(self) -> float:
        return max(0.0, (self.hits + _SKILL_PRIOR / 2) / (self.calls + _SKILL_PRIOR) - 0.5)


@dataclass(slots=True)
class _SymbolState:
    """Everything the engine keeps about one symbol."""

    learner: OnlineLogisticRegression
    closes: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    logs: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    last_time: int | None = None
    bars: int = 0
    pending: deque = field(default_factory=deque)
    skill: dict = field(default_factory=lambda: {m: _Skill() for m in BASE_MODELS})
    raw: dict | None = None  # model -> (score, confidence, features used, direction) of the latest bar
    latest: dict = field(default_factory=dict)  # model -> its latest Signal
    announced: dict = field(default_factory=dict)  # model -> (action, score) last returned as changed


class SignalEngine:
    """Owns every model's state per symbol, the predictions awaiting their horizon, and each model's scored record.

    Drive it with `on_bar` each time a 1-minute bar closes (after `warm_up` with history at start-up); it computes
    every model's signal once per symbol per bar and keeps it, so all subscribers share the same Signals. Not
    thread-safe; pure and synchronous: wall times are passed in, nothing is random.

    Options (keyword-only): `horizon_bars` (default 5: a "5m" horizon), `warmup_bars` (closes a symbol needs
    before its models speak; at least 35), `learning_rate` and `l2` of the online model, `change_threshold` (how far
    a score must move from the last one `on_bar` returned to count as changed), `rng` (accepted for a uniform engine
    signature; nothing here is random).
    """

    def __init__(
        self,
        symbols: Iterable[str],
        *,
        horizon_bars: int = 5,
        warmup_bars: int = 40,
        learning_rate: float = 0.001,
        l2: float = 1e-4,
        change_threshold: float = 0.1,
        rng=None,
    ):
        symbols = list(symbols)
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be a non-empty list without duplicates")
        if isinstance(horizon_bars, bool) or not isinstance(horizon_bars, int) or horizon_bars < 1:
            raise ValueError("horizon_bars must be a positive integer")
        if not isinstance(warmup_bars, int) or warmup_bars < MIN_BARS:
            raise ValueError(f"warmup_bars must be at least {MIN_BARS}")
        if not 0 < change_threshold <= 2:
            raise ValueError("change_threshold must be within (0, 2]")
        self.horizon_bars = horizon_bars
        self.warmup_bars = warmup_bars
        self.change_threshold = change_threshold
        self._horizon_ms = horizon_bars * _MINUTE_MS
        self._states = {
            s: _SymbolState(OnlineLogisticRegression(len(FEATURES), learning_rate=learning_rate, l2=l2))
            for s in symbols
        }
        self._records = {m: _Record() for m in MODELS}
        self._since_ms: int | None = None
        del rng

    # ----- feeding bars --------------------------------------------------------------------------------------

    def _state(self, symbol: str) -> _SymbolState:
        state = self._states.get(symbol) if isinstance(symbol, str) else None
        if state is None:
            raise NotFound(f"unknown symbol {symbol!r}")
        return state

    def on_bar(self, symbol: str, bar_time_ms: int, close_cents: int, *, wall_ms: int) -> list[Signal]:
        """Take one closed 1-minute bar (its start time and close) and return the Signals that changed.

        In order: predictions whose horizon has now passed are scored against this close; the online model learns
        from exactly those examples (and no others); then every model's signal is computed from the closes up to
        and including this one, recorded as a prediction, and compared with the last one returned for this symbol.
        A Signal counts as changed when its action differs or its score moved by more than
        `change_threshold`; the first Signal of each model always counts. A bar at or before the last one fed for
        this symbol changes nothing and returns []. NotFound for an unknown symbol.
        """
        state = self._state(symbol)
        if self._since_ms is None:
            self._since_ms = int(wall_ms)
        return self._advance(state, symbol, int(bar_time_ms), close_cents, int(wall_ms), live=True)

    def warm_up(self, symbol: str, bars: Iterable[_BarLike], *, wall_ms: int) -> None:
        """Feed history (completed 1-minute bars, oldest first: leave out the still-forming last one) at start-up.

        The same path as `on_bar`, so the online model and the ensemble weights learn from the history in time
        order with the same no-look-ahead rule; the predictions made meanwhile are scored for that learning but not
        counted in `performance`. Bars at or before the last one fed are skipped. Nothing is returned: read the
        resulting Signals (generated at `wall_ms`) with `signals`.
        """
        state = self._state(symbol)
        fed = 0
        for bar in bars:
            fed += state.last_time is None or int(bar.time) > state.last_time
            self._advance(state, symbol, int(bar.time), bar.close, int(wall_ms), live=False)
        if fed:
            self._publish(state, symbol, int(wall_ms))
            for model, signal in state.latest.items():
                state.announced[model] = (signal.action, signal.score)

    def _advance(
        self, state: _SymbolState, symbol: str, bar_time: int, close_cents: int, wall_ms: int, *, live: bool
    ) -> list[Signal]:
        if state.last_time is not None and bar_time <= state.last_time:
            return []
        close = float(close_cents)
        if not close > 0:
            raise ValueError(f"a close must be positive, got {close_cents!r}")
        state.last_time = bar_time
        state.closes.append(close)
        state.logs.append(math.log(close))
        state.bars += 1
        self._score(state, bar_time, close)
        state.raw = self._compute(state, bar_time, close, live)
        if not live:
            return []  # warm_up publishes once, at its last bar
        self._publish(state, symbol, wall_ms)
        changed = []
        for model in MODELS:
            signal = state.latest[model]
            before = state.announced.get(model)
            if before is None or before[0] != signal.action or abs(before[1] - signal.score) > self.change_threshold:
                changed.append(signal)
                state.announced[model] = (signal.action, signal.score)
        return changed

    def _score(self, state: _SymbolState, bar_time: int, close: float) -> None:
        pending = state.pending
        while pending and pending[0].target_ms <= bar_time:
            entry = pending.popleft()
            realized = close / entry.close - 1.0
            for model, direction in entry.directions.items():
                hit = realized * direction > 0
                if model in state.skill:
                    state.skill[model].add(hit)
                if entry.counted:
                    record = self._records[model]
                    record.predictions += 1
                    record.hits += hit
                    record.return_sum += direction * realized
            if entry.features is not None and realized != 0.0:
                state.learner.update(entry.features, realized > 0.0)

    # ----- the models ----------------------------------------------------------------------------------------

    def _compute(self, state: _SymbolState, bar_time: int, close: float, live: bool) -> dict[Model, tuple] | None:
        """Every model's (score, confidence, features used, direction) for the latest close; None while warming up.

        Also queues this bar's calls (and the online model's inputs) to be scored once the horizon has passed.
        """
        features = compute_features(state.closes, state.logs) if state.bars >= self.warmup_bars else None
        if features is None:
            return None
        f = features
        vector = [f[name] for name in FEATURES]
        raw: dict[Model, tuple] = {}

        roc10, macd = f[Feature.ROC10], f[Feature.MACD_HISTOGRAM]
        momentum = math.tanh((roc10 + macd) / 2)
        raw[Model.MOMENTUM] = (momentum, abs(momentum), {Feature.ROC10: roc10, Feature.MACD_HISTOGRAM: macd})

        bollinger, rsi = f[Feature.BOLLINGER], f[Feature.RSI]
        stretch = (bollinger + rsi) / 2
        reversion = -math.copysign(min(1.0, max(0.0, (abs(stretch) - 0.5) / 0.5)), stretch)
        raw[Model.MEAN_REVERSION] = (reversion, abs(reversion), {Feature.BOLLINGER: bollinger, Feature.RSI: rsi})

        gap, slope = f[Feature.SMA_GAP], f[Feature.SLOPE]
        trend = math.tanh((gap + slope) / 2)
        raw[Model.TREND] = (trend, abs(trend), {Feature.SMA_GAP: gap, Feature.SLOPE: slope})

        learner = state.learner
        online = 2.0 * learner.probability(vector) - 1.0
        seasoned = learner.examples / (learner.examples + _ONLINE_PRIOR_EXAMPLES)
        raw[Model.ONLINE] = (online, abs(online) * seasoned, dict(zip(FEATURES, vector, strict=True)))

        directions = {m: _direction(raw[m][0], _THRESHOLDS[m]) for m in BASE_MODELS}
        edges = {m: state.skill[m].edge() for m in BASE_MODELS}
        total = sum(edges.values())
        weights = {m: e / total for m, e in edges.items()} if total > 0 else dict.fromkeys(BASE_MODELS, 0.25)
        vote = sum(weights[m] * directions[m] for m in BASE_MODELS)
        directions[Model.ENSEMBLE] = _direction(vote, _THRESHOLDS[Model.ENSEMBLE])
        raw[Model.ENSEMBLE] = (vote, abs(vote), weights)

        calls = {m: d for m, d in directions.items() if d}
        state.pending.append(_Pending(bar_time + self._horizon_ms, close, calls, vector, live))
        return {m: (*raw[m], directions[m]) for m in MODELS}

    def _publish(self, state: _SymbolState, symbol: str, wall_ms: int) -> None:
        """Turn the latest computation into the Signals that every reader shares."""
        raw = state.raw or dict.fromkeys(MODELS, (0.0, 0.0, {}, 0))
        state.latest = {
            model: Signal(
                symbol=symbol,
                model=model,
                action=Action.BUY if direction > 0 else Action.SELL if direction < 0 else Action.HOLD,
                score=_round(score),
                confidence=_round(min(1.0, confidence)),
                horizon_bars=self.horizon_bars,
                features={k: _round(v) for k, v in used.items()},
                generated_at_ms=wall_ms,
            )
            for model, (score, confidence, used, direction) in raw.items()
        }

    # ----- reading ---------------------------------------------------------------------------------------------

    def signals(self, symbol: str, models: Iterable[Model] | None = None) -> list[Signal]:
        """The latest Signal of each model (all, or those named, in MODELS order) for `symbol`.

        [] before the symbol's first bar; HOLD with score 0 and no features until it has `warmup_bars` closes.
        NotFound for an unknown symbol, BadRequest for an unknown model.
        """
        state = self._state(symbol)
        chosen = _check_models(models)
        return [state.latest[m] for m in chosen if m in state.latest]

    def performance(self, model: Model | None = None) -> list[ModelRecord]:
        """The record of every model (in MODELS order) or of one.

        Pooled over every symbol: `predictions` counts the scored live BUY/SELL calls (HOLDs are not calls, calls
        still inside their horizon are not scored yet); `since_ms` is the wall time of the first live bar (None
        before it): warm-up calls are never counted. BadRequest for an unknown model.
        """
        chosen = MODELS if model is None else _check_models([model])
        records = self._records
        return [
            ModelRecord(m, records[m].predictions, records[m].hits, records[m].return_sum, self._since_ms)
            for m in chosen
        ]

    def learner(self, symbol: str) -> OnlineLogisticRegression:
        """The online model of `symbol` (for inspection; NotFound for an unknown symbol)."""
        return self._state(symbol).learner

    @property
    def symbols(self) -> list[str]:
        return list(self._states)


def _direction(score: float, threshold: float) -> int:
    return 1 if score >= threshold else -1 if score <= -threshold else 0


def _round(value: float) -> float:
    return round(value, 4) + 0.0  # + 0.0 turns -0.0 into 0.0


def _check_models(models: Iterable[Model] | None) -> tuple[Model, ...]:
    if models is None:
        return MODELS
    if isinstance(models, str):
        models = [models]
    wanted = list(models)
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        raise BadRequest(f"unknown model {unknown[0]!r}; models: {', '.join(MODELS)}")
    return tuple(m for m in MODELS if m in wanted)
