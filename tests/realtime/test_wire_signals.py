"""The ML-signals family on the wire: Signal, model record and optimisation objects, model names both ways."""

import json
import random

import numpy as np
import pytest

from domain.errors import BadRequest
from domain.market import MarketSimulator
from domain.optimizer import (
    Objective,
    OptimizationResult,
    ParameterError,
    RebalanceOrder,
    optimization_result,
    optimize,
    returns_matrix,
)
from domain.signal_features import Feature
from domain.signals import MODELS, Action, Model, ModelRecord, Signal, SignalEngine
from domain.trading import Side
from realtime.wire import signals as wire_signals

START = 1_764_126_000_000


def assert_wire(actual: dict, expected: dict) -> None:
    """Equal as JSON text: the same keys in the same order, the same numbers (-0.0 included)."""
    assert json.dumps(actual) == json.dumps(expected)


def a_signal(**changes) -> Signal:
    fields = dict(
        symbol="NVTX",
        model=Model.MOMENTUM,
        action=Action.SELL,
        score=-0.5007,
        confidence=0.5007,
        horizon_bars=5,
        features={Feature.ROC10: -0.4713, Feature.MACD_HISTOGRAM: -0.6292},
        generated_at_ms=START + 123,
    )
    return Signal(**(fields | changes))


# ----- model names --------------------------------------------------------------------------------------------------


def test_model_names_are_the_protocols_in_the_domains_order():
    assert wire_signals.MODEL_NAMES == ("momentum", "meanReversion", "trend", "online", "ensemble")
    assert [wire_signals.model_name(m) for m in MODELS] == list(wire_signals.MODEL_NAMES)
    assert wire_signals.model_name(Model.MEAN_REVERSION) == "meanReversion"


def test_model_names_from_clients_map_back_to_models_in_the_order_named():
    assert wire_signals.model_from_wire("meanReversion") is Model.MEAN_REVERSION
    assert wire_signals.models_from_wire(["ensemble", "meanReversion", "momentum"]) == (
        Model.ENSEMBLE,
        Model.MEAN_REVERSION,
        Model.MOMENTUM,
    )


@pytest.mark.parametrize("name", ["magic", "mean_reversion", "MOMENTUM"])
def test_a_model_name_the_protocol_does_not_know_is_refused_with_todays_text(name):
    with pytest.raises(BadRequest) as caught:
        wire_signals.models_from_wire(["momentum", name])
    assert caught.value.message == f"unknown model {name!r}; models: momentum, meanReversion, trend, online, ensemble"


# ----- SIGNAL_UPDATE ------------------------------------------------------------------------------------------------


def test_a_signal_on_the_wire():
    assert_wire(
        wire_signals.signal(a_signal()),
        {
            "symbol": "NVTX",
            "model": "momentum",
            "signal": "SELL",
            "score": -0.5007,
            "confidence": 0.5007,
            "horizon": "5m",
            "features": {"roc10": -0.4713, "macdHistogram": -0.6292},
            "generatedAt": "2025-11-26T03:00:00.123Z",
        },
    )


def test_every_feature_and_the_ensembles_weights_go_by_their_protocol_names():
    online = a_signal(model=Model.ONLINE, action=Action.BUY, features=dict.fromkeys(Feature, 0.5))
    assert list(wire_signals.signal(online)["features"]) == [
        "roc1", "roc5", "roc10", "macdHistogram", "bollinger", "rsi", "smaGap", "slope"
    ]  # fmt: skip
    ensemble = a_signal(
        model=Model.ENSEMBLE,
        action=Action.HOLD,
        score=0.0,
        confidence=0.0,
        horizon_bars=15,
        features={Model.MOMENTUM: 0.6394, Model.MEAN_REVERSION: 0.0, Model.TREND: 0.3606, Model.ONLINE: 0.0},
    )
    assert_wire(
        wire_signals.signal(ensemble),
        {
            "symbol": "NVTX",
            "model": "ensemble",
            "signal": "HOLD",
            "score": 0.0,
            "confidence": 0.0,
            "horizon": "15m",
            "features": {"momentum": 0.6394, "meanReversion": 0.0, "trend": 0.3606, "online": 0.0},
            "generatedAt": "2025-11-26T03:00:00.123Z",
        },
    )


def test_the_engines_signals_carry_the_protocol_fields():
    engine = SignalEngine(["AAA"])
    rng = random.Random(3)
    close = 20_000
    for k in range(70):
        close += rng.choice((-25, -10, 0, 10, 25))
        engine.on_bar("AAA", START + k * 60_000, close, wall_ms=START + 123)
    signals = [wire_signals.signal(s) for s in engine.signals("AAA")]
    assert [s["model"] for s in signals] == list(wire_signals.MODEL_NAMES)
    for s in signals:
        assert list(s) == ["symbol", "model", "signal", "score", "confidence", "horizon", "features", "generatedAt"]
        assert s["signal"] in ("BUY", "SELL", "HOLD") and s["horizon"] == "5m"
        assert s["generatedAt"] == "2025-11-26T03:00:00.123Z"
    assert list(signals[2]["features"]) == ["smaGap", "slope"]
    assert list(signals[4]["features"]) == ["momentum", "meanReversion", "trend", "online"]


# ----- MODEL_PERFORMANCE --------------------------------------------------------------------------------------------


def test_a_model_record_before_any_scored_prediction():
    record = ModelRecord(Model.MEAN_REVERSION, predictions=0, hits=0, return_sum=0.0, since_ms=None)
    assert_wire(
        wire_signals.model_record(record),
        {"model": "meanReversion", "predictions": 0, "hitRate": None, "averageReturn": None, "since": None},
    )


def test_a_model_record_rounds_hit_rate_to_4_places_and_average_return_to_8():
    record = ModelRecord(Model.ONLINE, predictions=3, hits=2, return_sum=1.0, since_ms=1_764_200_005_000)
    assert_wire(
        wire_signals.model_record(record),
        {
            "model": "online",
            "predictions": 3,
            "hitRate": 0.6667,
            "averageReturn": 0.33333333,
            "since": "2025-11-26T23:33:25.000Z",
        },
    )


def test_a_mean_return_that_rounds_to_zero_from_below_stays_negative_zero():
    record = ModelRecord(Model.TREND, predictions=1, hits=0, return_sum=-1e-10, since_ms=START)
    assert json.dumps(wire_signals.model_record(record)["averageReturn"]) == "-0.0"


# ----- OPTIMIZATION_RESULT ------------------------------------------------------------------------------------------


def test_an_optimization_result_on_the_wire():
    result = OptimizationResult(
        objective=Objective.MIN_VARIANCE,
        weights={"NVTX": 1 / 3, "QBIT": 1 / 3, "MEDX": 1 / 3},
        expected_return=0.51204,
        expected_volatility=0.19236,
        sharpe_ratio=-0.00001,
        rebalance=[RebalanceOrder("PHLN", Side.SELL, 12), RebalanceOrder("NVTX", Side.BUY, 31)],
    )
    assert_wire(
        wire_signals.optimization(result),
        {
            "objective": "MIN_VARIANCE",
            "weights": {"NVTX": 0.3334, "QBIT": 0.3333, "MEDX": 0.3333},  # largest remainder: they add up to 1
            "expectedReturn": 0.512,
            "expectedVolatility": 0.1924,
            "sharpeRatio": 0.0,
            "rebalance": [
                {"symbol": "PHLN", "side": "SELL", "quantity": 12},
                {"symbol": "NVTX", "side": "BUY", "quantity": 31},
            ],
        },
    )


def test_weights_round_by_largest_remainder_and_a_missing_sharpe_ratio_is_null():
    result = OptimizationResult(
        objective=Objective.RISK_PARITY,
        weights={"A": 0.12345, "B": 0.45678, "C": 0.41977},
        expected_return=float("nan"),
        expected_volatility=0.0,
        sharpe_ratio=None,
        rebalance=[],
    )
    assert_wire(
        wire_signals.optimization(result),
        {
            "objective": "RISK_PARITY",
            "weights": {"A": 0.1234, "B": 0.4568, "C": 0.4198},
            "expectedReturn": None,
            "expectedVolatility": 0.0,
            "sharpeRatio": None,
            "rebalance": [],
        },
    )


@pytest.mark.parametrize("objective", list(Objective))
def test_the_optimisers_weights_on_the_wire_add_up_to_exactly_one_within_the_bounds(objective):
    market = MarketSimulator(rng=random.Random(4), start_market_ms=START, history_days=120, minute_history_days=0)
    symbols = ["NVTX", "CRVL", "BKNR", "MEDX"]
    prices = {s: market.quote(s).price for s in symbols}
    result = optimization_result(
        objective,
        symbols,
        returns_matrix(market, symbols, 90),
        holdings={"NVTX": 40},
        prices_cents=prices,
        total_value_cents=5_000_000,
        min_weight=0.1,
        max_weight=0.5,
        risk_free=0.02,
    )
    data = wire_signals.optimization(result)
    assert list(data) == ["objective", "weights", "expectedReturn", "expectedVolatility", "sharpeRatio", "rebalance"]
    assert data["objective"] == objective.value
    assert list(data["weights"]) == symbols
    assert sum(round(w * 10_000) for w in data["weights"].values()) == 10_000
    assert all(0.1 <= w <= 0.5 for w in data["weights"].values())
    assert all(list(o) == ["symbol", "side", "quantity"] for o in data["rebalance"])


@pytest.mark.parametrize(
    ("n", "options", "message"),
    [
        (3, {"max_weight": 0.3}, "impossible constraints: 3 symbols at most 0.3 each cannot add up to 100 %; "
                                 "maxWeight must be at least 1/3 = 0.3333"),
        (4, {"min_weight": 0.3}, "impossible constraints: 4 symbols at least 0.3 each add up to more than 100 %; "
                                 "minWeight must be at most 1/4 = 0.2500"),
        (3, {"min_weight": 0.3, "max_weight": 0.2}, "minWeight 0.3 is above maxWeight 0.2"),
        (3, {"max_weight": 0}, "minWeight must be within 0..1 and maxWeight within (0, 1] (long-only weights)"),
        (3, {"min_weight": -0.1}, "minWeight must be within 0..1 and maxWeight within (0, 1] (long-only weights)"),
        (3, {"max_weight": True}, "maxWeight must be a number"),
        (3, {"min_weight": "0.1"}, "minWeight must be a number"),
    ],
)  # fmt: skip
def test_the_optimisers_refusals_name_the_options_as_the_protocol_does(n, options, message):
    with pytest.raises(ParameterError) as caught:
        optimize("MIN_VARIANCE", np.zeros(n), np.eye(n) * 0.0004, **options)
    error = wire_signals.parameter_error(caught.value)
    assert isinstance(error, BadRequest) and error.code == "BAD_REQUEST"
    assert error.message == message


def test_a_refused_risk_free_rate_is_called_risk_free_as_on_the_wire():
    market = MarketSimulator(rng=random.Random(4), start_market_ms=START, history_days=30, minute_history_days=0)
    x = returns_matrix(market, ["NVTX", "CRVL"], 20)
    with pytest.raises(ParameterError) as caught:
        optimization_result(
            "MIN_VARIANCE", ["NVTX", "CRVL"], x, holdings={}, prices_cents={}, total_value_cents=0, risk_free="x"
        )
    assert wire_signals.parameter_error(caught.value).message == "riskFree must be a number"
