"""Every failed SQS record says why, once: a rejected one as rejected, a defect with its traceback,
a leased run not at all (its handler logged the plan). None of them is reported in silence."""

import pytest

from app.handlers import sqs
from app.handlers.errors import RunLeasedError
from app.observability import metrics
from app.operations import InvalidRequestError

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("fresh_metrics")]


def _fail(error: Exception) -> None:
    def outcome() -> None:
        raise error

    answer = sqs.partial_batch_response([("m-1", outcome)], lambda _id, _result: None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def _counted() -> dict[str, list[float]]:
    return {name: metric["Value"] for name, metric in metrics.metric_set.items()}


DEFECTS = [KeyError("body"), TypeError("x"), UnicodeEncodeError("utf-8", "\ud800", 0, 1, "no")]


@pytest.mark.parametrize("error", DEFECTS)
def test_a_defect_is_logged_with_its_traceback_and_counted(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    _fail(error)

    [logged] = caplog.records
    assert (logged.levelname, logged.getMessage()) == ("ERROR", "message failed unexpectedly")
    assert logged.message_id == "m-1"  # type: ignore[attr-defined]
    assert logged.exc_info is not None
    assert logged.exc_info[1] is error
    assert _counted() == {"MessagesFailedUnexpectedly": [1.0]}


def test_a_rejected_message_is_a_warning_with_its_reason_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fail(InvalidRequestError("item_id is required"))

    [logged] = caplog.records
    assert (logged.levelname, logged.getMessage()) == ("WARNING", "message rejected")
    assert logged.reason == "item_id is required"  # type: ignore[attr-defined]
    assert logged.exc_info is None
    assert _counted() == {"MessagesRejected": [1.0]}


def test_a_leased_run_is_redelivered_without_a_failure_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    _fail(RunLeasedError("run-1"))

    assert caplog.records == []
    assert _counted() == {}
