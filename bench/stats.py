"""Medians with their spread, and the way the table prints numbers."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RANGE = "\N{EN DASH}"


@dataclass(frozen=True)
class Spread:
    """The median of some measurements, with their minimum and maximum."""

    median: float
    low: float
    high: float
    count: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no measurements")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def text(self, unit: str = "", digits: int = 0) -> str:
        """``412 ms (398-450)`` (an en dash); the median alone when there was one measurement."""
        suffix = f" {unit}" if unit else ""
        median = f"{self.median:,.{digits}f}{suffix}"
        if self.count == 1:
            return median
        return f"{median} ({self.low:,.{digits}f}{RANGE}{self.high:,.{digits}f})"

    def ratio_text(self, digits: int = 2) -> str:
        """``1.23x (1.10-1.31)``."""
        if self.count == 1:
            return f"{self.median:.{digits}f}x"
        lo, hi = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}"
        return f"{self.median:.{digits}f}x ({lo}{RANGE}{hi})"


def ratios(measured: Sequence[float], baseline: Sequence[float]) -> Spread:
    """Pairwise ratios: run *i* of the subject against run *i* of the baseline, run back to back."""
    return Spread.of([m / b for m, b in zip(measured, baseline, strict=True)])


def mib(kib: float) -> float:
    return kib / 1024


def size_mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"
