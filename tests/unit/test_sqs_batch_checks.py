"""A batch with a record that could not be reported fails whole, before any record runs, and says
so once: one error line naming the record's place (never the record), one metric."""

import pytest

from app.handlers import sqs
from app.observability import metrics

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("fresh_metrics")]


@pytest.mark.parametrize("bad", [{"body": "{}"}, {"messageId": 7}, "message-2", None])
def test_a_record_without_a_message_id_fails_the_batch_with_one_line_and_one_metric(
    bad: object, caplog: pytest.LogCaptureFixture
) -> None:
    records = [{"messageId": "m-1", "body": "{}"}, bad, {"messageId": "m-3", "body": "{}"}]

    with pytest.raises(sqs.UnreportableRecordError) as raised:
        sqs.check_records(records)

    assert str(raised.value) == (
        "record 1 of the batch is not an SQS message: an object with a string messageId is required"
    )
    [logged] = [record for record in caplog.records if record.levelname == "ERROR"]
    assert logged.getMessage() == "a record has no messageId; the batch fails whole"
    assert logged.index == 1  # type: ignore[attr-defined]
    assert {name: (m["Unit"], m["Value"]) for name, m in metrics.metric_set.items()} == {
        "InvalidEvents": ("Count", [1.0])
    }


def test_a_batch_of_messages_passes_without_a_word(caplog: pytest.LogCaptureFixture) -> None:
    sqs.check_records([{"messageId": "m-1"}, {"messageId": "m-2"}])
    assert caplog.records == []
    assert metrics.metric_set == {}
