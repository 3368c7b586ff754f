"""The token bucket and the keyed buckets, driven by a fake clock."""


from domain.clock import FakeClock
from realtime.ratelimit import KeyedBuckets, TokenBucket


def drain(bucket, attempts):
    return [bucket.allow() for _ in range(attempts)]


def test_a_fresh_bucket_allows_a_full_burst_then_refuses():
    bucket = TokenBucket(rate=10, burst=5, clock=FakeClock())
    assert drain(bucket, 6) == [True] * 5 + [False]


# Steps are binary fractions (1/8 s) so float epoch arithmetic gives whole tokens exactly.


def test_tokens_come_back_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=8, burst=5, clock=clock)
    drain(bucket, 5)
    clock.advance(0.125)
    assert drain(bucket, 2) == [True, False]
    clock.advance(0.375)
    assert drain(bucket, 4) == [True, True, True, False]


def test_a_fractional_token_is_not_enough():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=1, clock=clock)
    assert bucket.allow()
    clock.advance(0.4)
    assert not bucket.allow()
    clock.advance(0.1)
    assert bucket.allow()


def test_slow_rates_below_one_per_second():
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock)
    assert bucket.allow()
    clock.advance(1.9)
    assert not bucket.allow()
    clock.advance(0.1)
    assert bucket.allow()


def test_a_long_silence_refills_only_up_to_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    drain(bucket, 5)
    clock.advance(3600)
    assert drain(bucket, 6) == [True] * 5 + [False]


def test_a_steady_client_at_the_rate_is_never_refused():
    clock = FakeClock()
    bucket = TokenBucket(rate=8, burst=1, clock=clock)
    results = []
    for _ in range(200):
        results.append(bucket.allow())
        clock.advance(0.125)
    assert all(results)


def test_refused_in_a_row_counts_consecutive_refusals_and_resets_on_success():
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    bucket.allow()
    drain(bucket, 3)
    assert bucket.refused_in_a_row == 3
    clock.advance(1)
    assert bucket.allow()
    assert bucket.refused_in_a_row == 0
    bucket.allow()
    assert bucket.refused_in_a_row == 1


def test_time_before_creation_does_not_count():
    clock = FakeClock()
    clock.advance(1000)
    bucket = TokenBucket(rate=1, burst=3, clock=clock)
    assert drain(bucket, 4) == [True, True, True, False]


def test_a_wall_clock_stepping_backwards_does_not_take_tokens_away():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=5, clock=clock)
    clock.set(clock.now() - 60)
    assert bucket.allow()


def test_keyed_buckets_stay_bounded_forgetting_refilled_buckets_first():
    clock = FakeClock()
    buckets = KeyedBuckets(rate=1, burst=2, clock=clock, max_keys=4)
    for address in ("a", "b", "c"):
        buckets.bucket(address).allow()
    clock.advance(5)  # a, b and c have refilled: they mean nothing a new bucket would not
    buckets.bucket("d").allow()
    buckets.bucket("d").allow()
    buckets.bucket("e")  # at the limit: the refilled ones go, the spent one stays
    assert len(buckets) == 2
    assert not buckets.bucket("d").allow()
    for address in "fghijklmn":
        buckets.bucket(address).allow()
        assert len(buckets) <= 4
