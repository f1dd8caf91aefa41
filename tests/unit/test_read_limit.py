"""A table export's read limit, exactly (mutation survivors): a token bucket paid after the fact,
on a fake clock, so no test waits."""

import pytest

from app.operations.read_limit import ReadLimit, TokenBucket, read_limit


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _bucket(units_per_second: float) -> tuple[TokenBucket, _Clock]:
    clock = _Clock()
    return TokenBucket(units_per_second, clock=clock, sleep=clock.sleep), clock


def test_one_seconds_burst_is_read_without_waiting() -> None:
    bucket, clock = _bucket(10)
    assert bucket.spend(4) == 0.0
    assert bucket.spend(6) == 0.0  # exactly the burst: the bucket is at zero, not below
    assert clock.slept == []


def test_a_page_that_takes_the_bucket_below_zero_waits_until_it_is_back() -> None:
    bucket, clock = _bucket(10)
    assert bucket.spend(15) == 0.5  # 5 units owed at 10 a second
    assert clock.slept == [0.5]
    assert bucket.spend(1) == 0.1  # nothing left after the wait: the next unit is owed too
    assert clock.slept == [0.5, 0.1]


def test_the_bucket_refills_at_its_rate_up_to_one_seconds_burst() -> None:
    bucket, clock = _bucket(8)  # rates and times exact in binary: no rounding to allow for
    bucket.spend(8)
    clock.now += 0.25  # 2 units back
    assert bucket.spend(2) == 0.0
    assert bucket.spend(1) == 0.125
    clock.now += 60  # long idle: still one second's burst, no more
    assert bucket.spend(8) == 0.0
    assert bucket.spend(2) == 0.25


def test_a_bucket_must_allow_some_reads() -> None:
    for rate in (0, -1):
        with pytest.raises(ValueError, match="must allow some reads") as raised:
            TokenBucket(rate)
        assert str(raised.value) == "a read limit must allow some reads: units_per_second > 0"


def test_each_segment_gets_its_own_bucket_at_the_limit_and_none_without_one() -> None:
    assert read_limit(0)().spend(10**9) == 0.0
    assert type(read_limit(-5)()) is ReadLimit
    build = read_limit(0.5)
    first, second = build(), build()
    assert isinstance(first, TokenBucket)
    assert first is not second
    assert first.units_per_second == 0.5
