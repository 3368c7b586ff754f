"""The clocks: a fake wall clock for tests and the simulated market clock (speed, pause, resume)."""

import time

import pytest

from domain.clock import FakeClock, MarketClock, SystemClock

START = 1_764_126_000.0


# FakeClock ----------------------------------------------------------------------


def test_fake_clock_stands_still_until_advanced():
    clock = FakeClock(START)
    assert clock.now() == clock.now() == START
    clock.advance(1.5)
    assert clock.now() == START + 1.5


def test_fake_clock_has_a_fixed_default_start():
    assert FakeClock().now() == FakeClock().now() == START


def test_fake_clock_refuses_to_run_backwards():
    clock = FakeClock(START)
    with pytest.raises(ValueError):
        clock.advance(-0.001)
    assert clock.now() == START


def test_fake_clock_can_be_set():
    clock = FakeClock(START)
    clock.set(10)
    assert clock.now() == 10.0
    assert isinstance(clock.now(), float)


def test_now_ms_is_whole_milliseconds():
    clock = FakeClock(START)
    clock.advance(0.25)
    assert clock.now_ms() == 1_764_126_000_250
    assert isinstance(clock.now_ms(), int)


def test_system_clock_tells_the_wall_time():
    before = time.time()
    now = SystemClock().now()
    assert before <= now <= time.time()


# MarketClock -----------------------------------------------------------------------


def test_market_clock_starts_at_wall_time_by_default():
    wall = FakeClock(START)
    assert MarketClock(wall).now() == START


def test_market_clock_runs_speed_times_faster_than_the_wall():
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=60)
    assert market.speed == 60
    wall.advance(1)
    assert market.now() == pytest.approx(60.0)
    wall.advance(0.5)
    assert market.now() == pytest.approx(90.0)


def test_speed_change_mid_way_keeps_market_time_continuous():
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=10)
    wall.advance(2)
    before = market.now()
    market.set_speed(100)
    assert market.now() == pytest.approx(before) == pytest.approx(20.0)
    assert market.speed == 100
    wall.advance(1)
    assert market.now() == pytest.approx(120.0)
    market.set_speed(0.5)
    wall.advance(4)
    assert market.now() == pytest.approx(122.0)


def test_pause_freezes_market_time():
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=10)
    wall.advance(3)
    market.pause()
    assert market.paused
    wall.advance(100)
    assert market.now() == pytest.approx(30.0)


def test_resume_continues_from_the_paused_value():
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=10)
    wall.advance(3)
    market.pause()
    wall.advance(100)
    market.resume()
    assert not market.paused
    assert market.now() == pytest.approx(30.0)
    wall.advance(1)
    assert market.now() == pytest.approx(40.0)


def test_pausing_or_resuming_twice_changes_nothing():
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=2)
    wall.advance(1)
    market.pause()
    wall.advance(5)
    market.pause()
    assert market.now() == pytest.approx(2.0)
    market.resume()
    wall.advance(1)
    market.resume()
    assert market.now() == pytest.approx(4.0)


def test_speed_change_while_paused_applies_after_resume():
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=1)
    wall.advance(10)
    market.pause()
    market.set_speed(5)
    wall.advance(10)
    assert market.paused
    assert market.now() == pytest.approx(10.0)
    market.resume()
    wall.advance(2)
    assert market.now() == pytest.approx(20.0)


def test_market_now_ms_follows_market_time():
    wall = FakeClock(START)
    market = MarketClock(wall, start=1000.0, speed=2)
    wall.advance(0.25)
    assert market.now_ms() == 1_000_500


@pytest.mark.parametrize("speed", [0, -1])
def test_market_clock_refuses_a_speed_that_is_not_positive(speed):
    with pytest.raises(ValueError):
        MarketClock(FakeClock(START), speed=speed)


@pytest.mark.parametrize("speed", [0, -1, float("nan")])
def test_set_speed_refuses_a_speed_that_is_not_positive_and_keeps_the_old_one(speed):
    wall = FakeClock(START)
    market = MarketClock(wall, start=0.0, speed=3)
    with pytest.raises(ValueError):
        market.set_speed(speed)
    assert market.speed == 3
    wall.advance(1)
    assert market.now() == pytest.approx(3.0)
