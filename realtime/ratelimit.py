"""Rate limiting on an injected clock: a token bucket, and one bucket per key (an address, an account)."""

import math

__all__ = ["TokenBucket", "KeyedBuckets"]


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

    def _refill(self) -> None:
        now = self._clock.now()
        self._tokens = min(self.burst, self._tokens + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now

    def allow(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.refused_in_a_row = 0
            return True
        self.refused_in_a_row += 1
        return False

    def refund(self) -> None:
        """Give back the token of an allowed try that turned out not to count (a right password)."""
        self._refill()
        self._tokens = min(self.burst, self._tokens + 1.0)

    def wait_s(self) -> float:
        """Seconds until the next try is allowed (0 if it is now)."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)

    @property
    def full(self) -> bool:
        self._refill()
        return self._tokens >= self.burst


class KeyedBuckets:
    """Owns one TokenBucket per key, at most `max_keys` of them: a bucket that has refilled is forgotten first,
    since it means nothing a new one would not."""

    def __init__(self, *, rate: float, burst: int, clock, max_keys: int = 100_000):
        self.rate, self.burst, self.max_keys, self._clock = rate, burst, max_keys, clock
        self._buckets: dict[str, TokenBucket] = {}

    def bucket(self, key: str) -> TokenBucket:
        found = self._buckets.get(key)
        if found is None:
            if len(self._buckets) >= self.max_keys:
                self._forget()
            found = self._buckets[key] = TokenBucket(rate=self.rate, burst=self.burst, clock=self._clock)
        return found

    def _forget(self) -> None:
        for key in [key for key, bucket in self._buckets.items() if bucket.full]:
            del self._buckets[key]
        for key in list(self._buckets)[: max(0, len(self._buckets) - self.max_keys // 2)]:  # the oldest half
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(seconds: float) -> int:
    """Whole seconds for a Retry-After header: at least 1."""
    return max(1, math.ceil(seconds))
