"""Clocks: the wall clock, a fake one for tests, and the simulated market clock built on either."""

import time

__all__ = ["Clock", "SystemClock", "FakeClock", "MarketClock"]


class Clock:
    """Tells the current wall-clock time in epoch seconds (float)."""

    def now(self) -> float:
        raise NotImplementedError

    def now_ms(self) -> int:
        return int(self.now() * 1000)


class SystemClock(Clock):
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


class FakeClock(Clock):
    """A clock that moves only when a test says so."""

    def __init__(self, start: float = 1_764_126_000.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = float(when)


class MarketClock(Clock):
    """Simulated market time: runs `speed` times faster than its wall clock and stops while paused.

    >>> wall = FakeClock(100.0); market = MarketClock(wall, start=0.0, speed=60)
    >>> wall.advance(1); market.now()
    60.0
    """

    def __init__(self, wall: Clock, start: float | None = None, speed: float = 1.0):
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._wall = wall
        self._anchor_wall = wall.now()
        self._anchor_market = self._anchor_wall if start is None else float(start)
        self._speed = float(speed)
        self._paused = False

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    def now(self) -> float:
        if self._paused:
            return self._anchor_market
        return self._anchor_market + (self._wall.now() - self._anchor_wall) * self._speed

    def _rebase(self) -> None:
        self._anchor_market = self.now()
        self._anchor_wall = self._wall.now()

    def set_speed(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self._rebase()
        self._speed = float(speed)

    def pause(self) -> None:
        self._rebase()
        self._paused = True

    def resume(self) -> None:
        self._rebase()
        self._paused = False
