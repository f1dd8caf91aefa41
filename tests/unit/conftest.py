"""Fixtures the unit tests share."""

from collections.abc import Iterator

import pytest


@pytest.fixture
def fresh_metrics() -> Iterator[None]:
    """Powertools' metrics are one process-wide set: each test counts only its own."""
    from app.observability import metrics

    metrics.clear_metrics()
    yield
    metrics.clear_metrics()
