"""A table export's read rate, bounded so that it never takes the live table's capacity.

DynamoDB says what a Scan page cost only once it is read (``ConsumedCapacity``), so the bucket is
paid after the fact: a page may take the bucket below zero, and the next page waits until it is
back to zero. Over any stretch the segment reads at most ``units_per_second`` plus one second's
burst, whatever the items' sizes.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field


class ReadLimit:
    """Unlimited: what a segment spends when no limit is set."""

    def spend(self, units: float) -> float:
        """Account for ``units`` read; returns the seconds waited (none)."""
        return 0.0


@dataclass
class TokenBucket(ReadLimit):
    """At most ``units_per_second`` read capacity units a second, with one second's burst."""

    units_per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _tokens: float = field(init=False)
    _refilled_at: float = field(init=False)

    def __post_init__(self) -> None:
        if self.units_per_second <= 0:
            raise ValueError("a read limit must allow some reads: units_per_second > 0")
        self._tokens = self.units_per_second
        self._refilled_at = self.clock()

    def spend(self, units: float) -> float:
        now = self.clock()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self.units_per_second, self._tokens + elapsed * self.units_per_second)
        self._refilled_at = now
        self._tokens -= units
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.units_per_second
        self.sleep(wait)
        self._tokens = 0.0
        self._refilled_at = now + wait
        return wait


def read_limit(units_per_second: float) -> Callable[[], ReadLimit]:
    """What builds each segment's limit: one bucket per segment, so ``n`` segments read at most
    ``n * units_per_second``; ``0`` (the default) for none."""
    if units_per_second <= 0:
        return ReadLimit
    return lambda: TokenBucket(units_per_second)
