"""Bar aggregation: ticks into 1m, 5m, 15m, 1h and trading-day bars."""

import pytest

from domain.bars import Bar, BarBook, BarSeries, bar_start, check_interval
from domain.errors import BadRequest

DAY = 1_000_000_000  # a day start that is not a whole number of minutes since the epoch


def ohlcv(bar: Bar) -> tuple:
    return bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume


def test_ticks_within_one_minute_make_one_bar_with_open_high_low_close_and_summed_volume():
    series = BarSeries(60_000)
    for offset, price, volume in [(0, 100, 5), (10_000, 104, 1), (20_000, 98, 2), (59_999, 101, 3)]:
        series.update(DAY + offset, price, volume, DAY)
    assert [ohlcv(b) for b in series.bars] == [(DAY, 100, 104, 98, 101, 11)]


def test_ticks_crossing_minute_and_five_minute_boundaries_open_new_bars():
    book = BarBook()
    ticks = [(30_000, 100, 1), (61_000, 102, 2), (119_000, 99, 3), (290_000, 105, 4), (300_000, 103, 5)]
    for offset, price, volume in ticks:
        book.update(DAY + offset, price, volume, DAY)
    assert [ohlcv(b) for b in book.last("1m", 10)] == [
        (DAY, 100, 100, 100, 100, 1),
        (DAY + 60_000, 102, 102, 99, 99, 5),
        (DAY + 240_000, 105, 105, 105, 105, 4),
        (DAY + 300_000, 103, 103, 103, 103, 5),
    ]
    assert [ohlcv(b) for b in book.last("5m", 10)] == [
        (DAY, 100, 105, 99, 105, 10),
        (DAY + 300_000, 103, 103, 103, 103, 5),
    ]
    assert [ohlcv(b) for b in book.last("1d", 10)] == [(DAY, 100, 105, 99, 103, 15)]


def test_a_new_day_start_opens_a_new_daily_bar_and_new_intraday_bars():
    book = BarBook()
    day_length = 23_400_000
    book.update(DAY + 5_000, 100, 10, DAY)
    book.update(DAY + day_length - 1, 110, 20, DAY)
    next_day = DAY + day_length
    book.update(next_day, 110, 0, next_day)
    book.update(next_day + 1_000, 108, 7, next_day)
    assert [ohlcv(b) for b in book.last("1d", 10)] == [
        (DAY, 100, 110, 100, 110, 30),
        (next_day, 110, 110, 108, 108, 7),
    ]
    # The 6.5 h day's last hourly bar starts 6 h in and is cut short by the next day's first bar.
    assert [b.time for b in book.last("1h", 10)] == [DAY, DAY + 6 * 3_600_000, next_day]


def test_intraday_bars_are_aligned_to_the_day_start():
    assert bar_start(DAY + 125_000, 60_000, DAY) == DAY + 120_000
    assert bar_start(DAY + 125_000, None, DAY) == DAY
    assert bar_start(DAY + 3_599_999, 3_600_000, DAY) == DAY


def test_series_keep_a_bounded_number_of_bars():
    series = BarSeries(60_000, maxlen=3)
    for minute in range(10):
        series.update(DAY + minute * 60_000, 100 + minute, 1, DAY)
    assert [b.close for b in series.bars] == [107, 108, 109]


def test_last_returns_a_copy_of_the_forming_bar():
    series = BarSeries(60_000)
    series.update(DAY, 100, 1, DAY)
    bars = series.last(5)
    bars[-1].close = 1
    series.update(DAY + 1_000, 101, 1, DAY)
    assert bars[-1].close == 1
    assert series.last(5)[-1].close == 101
    assert series.last(0) == []


@pytest.mark.parametrize("interval", ["2m", "1D", "", None, 60])
def test_unknown_intervals_are_bad_requests(interval):
    with pytest.raises(BadRequest):
        check_interval(interval)
