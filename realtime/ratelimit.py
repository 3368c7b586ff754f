"""Per-connection rate limiting: a token bucket on an injected clock."""

__all__ = ["TokenBucket"]


class TokenBucket:
    """Owns one connection's message allowance: `rate` per second, bursts up to `burst`.

    >>> from domain.clock import FakeClock
    >>> clock = FakeClock(); bucket = TokenBucket(rate=1, burst=2, clock=clock)
    >>> [bucket.allow() for _ in range(3)]
    [True, True, False]
    >>> clock.advance(1); bucket.allow()
    True
    """

    def __init__(self, *, rate: float, burst: int, clock):
        self.rate, self.burst, self._clock = float(rate), float(burst), clock
        self._tokens = float(burst)
        self._stamp = clock.now()
        self.refused_in_a_row = 0

    def allow(self) -> bool:
        now = self._clock.now()
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False
