"""Indicators against values worked out by hand on small series."""

import pytest

from domain.indicators import bollinger, ema, ema_series, macd, realized_volatility, rsi, sma, vwap


def test_sma_is_the_mean_of_the_last_n_values():
    # (3 + 4 + 5) / 3 = 4
    assert sma([1, 2, 3, 4, 5], 3) == pytest.approx(4.0)
    assert sma([1, 2], 3) is None


def test_ema_is_seeded_with_the_sma_and_uses_alpha_two_over_n_plus_one():
    # n = 3, alpha = 0.5: seed (1 + 2 + 3) / 3 = 2; then 2 + 0.5 * (4 - 2) = 3; then 3 + 0.5 * (5 - 3) = 4.
    assert ema_series([1, 2, 3, 4, 5], 3) == pytest.approx([2.0, 3.0, 4.0])
    assert ema([1, 2, 3, 4, 5], 3) == pytest.approx(4.0)
    assert ema([1, 2], 3) is None


def test_rsi_uses_wilder_smoothing():
    # Changes +1, -0.5, +1.5, -0.5, +1.5; n = 3.
    # Seeds: gain (1 + 0 + 1.5) / 3 = 5/6, loss 0.5 / 3 = 1/6.
    # Change -0.5: gain (2 * 5/6 + 0) / 3 = 5/9, loss (2 * 1/6 + 0.5) / 3 = 5/18.
    # Change +1.5: gain (2 * 5/9 + 1.5) / 3 = 47/54, loss (2 * 5/18) / 3 = 10/54.
    # RS = 4.7, RSI = 100 - 100 / 5.7 = 82.45614...
    assert rsi([10, 11, 10.5, 12, 11.5, 13], 3) == pytest.approx(82.45614035087719)
    assert rsi([10, 11, 10.5], 3) is None


def test_rsi_is_100_when_prices_only_rise_and_50_when_they_never_move():
    assert rsi([1, 2, 3, 4, 5], 3) == 100.0
    assert rsi([7, 7, 7, 7], 3) == 50.0


def test_macd_is_the_fast_minus_slow_ema_with_an_ema_signal_line():
    # values 1, 2, 4, 8, 16 with fast 2 (alpha 2/3), slow 3 (alpha 1/2), signal 2 (alpha 2/3):
    # EMA2 from index 1: 1.5, 19/6, 115/18, 691/54.  EMA3 from index 2: 7/3, 31/6, 127/12.
    # MACD line (from index 2): 5/6, 11/9, 239/108.
    # Signal: seed (5/6 + 11/9) / 2 = 37/36, then 37/36 + 2/3 * (239/108 - 37/36) = 589/324.
    # Histogram: 239/108 - 589/324 = 128/324.
    line, signal, histogram = macd([1, 2, 4, 8, 16], 2, 3, 2)
    assert line == pytest.approx(239 / 108)
    assert signal == pytest.approx(589 / 324)
    assert histogram == pytest.approx(128 / 324)
    assert macd([1, 2, 4], 2, 3, 2) is None  # needs slow + signal - 1 = 4 values


def test_macd_needs_34_values_with_the_standard_periods():
    assert macd(list(range(1, 34)), 12, 26, 9) is None
    assert macd(list(range(1, 35)), 12, 26, 9) is not None


def test_bollinger_bands_use_the_population_standard_deviation():
    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32, /8 = 4, std 2.
    assert bollinger([2, 4, 4, 4, 5, 5, 7, 9], 8, 2) == pytest.approx((9.0, 5.0, 1.0))
    assert bollinger([1, 2, 3], 8, 2) is None


def test_vwap_weights_prices_by_volume():
    # (10 * 100 + 11 * 200 + 12 * 700) / 1000 = 11600 / 1000
    assert vwap([10, 11, 12], [100, 200, 700]) == pytest.approx(11.6)
    assert vwap([], []) is None
    assert vwap([10], [0]) is None
    with pytest.raises(ValueError):
        vwap([1, 2], [1])


def test_realized_volatility_annualizes_the_sample_std_of_log_returns():
    # Log returns a, b, a with a = ln 1.1, b = ln 0.9: mean (2a + b) / 3, deviations (a - b)/3, -2(a - b)/3,
    # (a - b)/3; sample variance 6 (a - b)^2 / 9 / 2 = (a - b)^2 / 3; std (a - b) / sqrt(3) = ln(11/9) / sqrt(3).
    # Annualized over 252 periods: ln(11/9) * sqrt(84) = 0.20067 * 9.16515 = 1.8391773...
    assert realized_volatility([100, 110, 99, 108.9], 252) == pytest.approx(1.839177303429479)
    assert realized_volatility([100, 110], 252) is None
