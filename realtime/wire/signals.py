"""The ML-signals family on the wire: SIGNAL_UPDATE's signals, MODEL_PERFORMANCE's records, OPTIMIZATION_RESULT.

The domain names models and features in snake_case (`Model.MEAN_REVERSION`, `Feature.SMA_GAP`); the protocol
calls them `meanReversion` and `smaGap`. The tables below are the one place that knows both, in both directions:
clients name models in SUBSCRIBE_SIGNALS, REQUEST_SIGNAL and REQUEST_MODEL_PERFORMANCE.
"""

from collections.abc import Iterable

import numpy as np

from domain.errors import BadRequest
from domain.optimizer import OptimizationResult, Parameter, ParameterError, RebalanceOrder
from domain.signal_features import Feature
from domain.signals import MODELS, Model, ModelRecord, Signal

from . import iso_ms, ratio

__all__ = [
    "MODEL_NAMES",
    "model_name",
    "model_from_wire",
    "models_from_wire",
    "signal",
    "model_record",
    "optimization",
    "parameter_error",
]

_MODEL_NAMES = {
    Model.MOMENTUM: "momentum",
    Model.MEAN_REVERSION: "meanReversion",
    Model.TREND: "trend",
    Model.ONLINE: "online",
    Model.ENSEMBLE: "ensemble",
}
MODEL_NAMES = tuple(_MODEL_NAMES[m] for m in MODELS)  # every model's protocol name, in the domain's order
_MODELS_BY_NAME = {name: model for model, name in _MODEL_NAMES.items()}
_FEATURE_NAMES = {
    Feature.ROC1: "roc1",
    Feature.ROC5: "roc5",
    Feature.ROC10: "roc10",
    Feature.MACD_HISTOGRAM: "macdHistogram",
    Feature.BOLLINGER: "bollinger",
    Feature.RSI: "rsi",
    Feature.SMA_GAP: "smaGap",
    Feature.SLOPE: "slope",
}
_FEATURE_KEYS = _FEATURE_NAMES | _MODEL_NAMES  # the ensemble's features are the base models' weights
_PARAMETER_NAMES = {
    Parameter.MIN_WEIGHT: "minWeight",
    Parameter.MAX_WEIGHT: "maxWeight",
    Parameter.RISK_FREE: "riskFree",
}
_WEIGHT_PLACES = 4


def model_name(model: Model) -> str:
    """The protocol's name of `model` (Model.MEAN_REVERSION -> "meanReversion")."""
    return _MODEL_NAMES[model]


def model_from_wire(name: str) -> Model:
    """The Model a client named; BadRequest for a name the protocol does not know."""
    model = _MODELS_BY_NAME.get(name)
    if model is None:
        raise BadRequest(f"unknown model {name!r}; models: {', '.join(MODEL_NAMES)}")
    return model


def models_from_wire(names: Iterable[str]) -> tuple[Model, ...]:
    """The Models a client named, in the order named."""
    return tuple(model_from_wire(name) for name in names)


def signal(s: Signal) -> dict:
    """A Signal object of SIGNAL_UPDATE."""
    return {
        "symbol": s.symbol,
        "model": _MODEL_NAMES[s.model],
        "signal": s.action.value,
        "score": s.score,
        "confidence": s.confidence,
        "horizon": f"{s.horizon_bars}m",
        "features": {_FEATURE_KEYS[k]: v for k, v in s.features.items()},
        "generatedAt": iso_ms(s.generated_at_ms),
    }


def model_record(r: ModelRecord) -> dict:
    """A model's row of MODEL_PERFORMANCE."""
    scored = r.predictions > 0
    return {
        "model": _MODEL_NAMES[r.model],
        "predictions": r.predictions,
        "hitRate": round(r.hit_rate, 4) if scored else None,
        # No `+ 0.0` here, unlike `ratio`: a mean return that rounds to zero from below is sent as -0.0.
        "averageReturn": round(r.average_return, 8) if scored else None,
        "since": None if r.since_ms is None else iso_ms(r.since_ms),
    }


def optimization(result: OptimizationResult) -> dict:
    """OPTIMIZATION_RESULT's data, but for `portfolioId`, which the request supplies."""
    return {
        "objective": result.objective.value,
        "weights": _weights(result.weights),
        "expectedReturn": ratio(result.expected_return),
        "expectedVolatility": ratio(result.expected_volatility),
        "sharpeRatio": ratio(result.sharpe_ratio),
        "rebalance": [_rebalance_order(o) for o in result.rebalance],
    }


def parameter_error(error: ParameterError) -> BadRequest:
    """The optimiser's refusal naming the options as the protocol does ("minWeight 0.3 is above maxWeight 0.2")."""
    return BadRequest(error.render(_PARAMETER_NAMES))


def _weights(weights: dict[str, float]) -> dict[str, float]:
    """Weights rounded to 4 places by largest remainder, so the rounded weights still add up to exactly 1."""
    units = 10**_WEIGHT_PLACES
    scaled = np.array(list(weights.values()), dtype=float) * units
    floors = np.floor(scaled + 1e-9).astype(int)
    short = units - int(floors.sum())
    for i in np.argsort(-(scaled - floors), kind="stable")[: max(short, 0)]:
        floors[i] += 1
    return {s: int(q) / units for s, q in zip(weights, floors, strict=True)}


def _rebalance_order(order: RebalanceOrder) -> dict:
    return {"symbol": order.symbol, "side": order.side.value, "quantity": order.quantity}
