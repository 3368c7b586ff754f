"""The signal models' features: scale-free, clipped, and silent until there are enough closes."""

import math
import random

import pytest

from domain.signal_features import FEATURES, Feature, compute_features


def random_walk(seed: int, bars: int, base: int = 20_000) -> list[int]:
    rng = random.Random(seed)
    log_price, out = math.log(base), []
    for _ in range(bars):
        log_price += rng.gauss(0.0, 0.001)
        out.append(round(math.exp(log_price)))
    return out


def test_features_are_scale_free():
    closes = random_walk(6, 60)
    small = compute_features(closes)
    large = compute_features([c * 7 for c in closes])
    assert small is not None and large is not None
    for name in FEATURES:
        assert small[name] == pytest.approx(large[name], abs=1e-9)
    assert compute_features(closes[:34]) is None


def test_every_feature_is_keyed_by_its_name_and_clipped_to_five():
    closes = [10_000] * 59 + [12_000]  # the only move in 30 bars: sqrt(30) = 5.5 volatilities
    features = compute_features(closes)
    assert list(features) == ["volatility", *FEATURES]
    assert all(-5.0 <= features[name] <= 5.0 for name in FEATURES)
    assert features[Feature.ROC1] == 5.0


def test_a_price_that_never_moved_has_every_feature_at_zero():
    features = compute_features([10_000] * 40)
    assert features["volatility"] == 0.0
    assert all(features[name] == 0.0 for name in FEATURES)
