"""What each exported message counts (mutation survivors): a new object is a write, a redelivery
that found its object already there is a repeat, never both and never twice."""

import pytest

from app.handlers import export_queue
from app.observability import metrics
from app.services import ExportResult

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("fresh_metrics")]


@pytest.mark.parametrize(
    ("created", "metric"), [(True, "ExportsWritten"), (False, "ExportsRepeated")]
)
def test_a_record_counts_once_as_written_or_as_repeated(created: bool, metric: str) -> None:
    export_queue._count("message-1", ExportResult(key="exports/42/m.json", created=created))

    assert {name: (m["Unit"], m["Value"]) for name, m in metrics.metric_set.items()} == {
        metric: ("Count", [1.0])
    }
