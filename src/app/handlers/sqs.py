"""What the SQS handlers share: how a failed record is logged, counted and reported.

Partial batch responses are built here rather than by Powertools' batch utility: importing it
imports asyncio and every event data class of ``utilities.data_classes`` (about 30 ms of each cold
start, measured without instrumentation: README "Performance"), and the handlers used only what
:func:`partial_batch_response` does.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from app.handlers.errors import RunLeasedError, UnreportableRecordError
from app.observability import logger, metrics
from app.operations import InvalidRequestError, ItemNotFoundError
from app.services import DependencyError, IdempotencyConflictError

T = TypeVar("T")


def check_records(records: Sequence[object]) -> None:
    """Fail the whole batch, before any record runs, if a record could not be reported.

    A failure is reported by ``messageId``; acknowledging a batch with a record that has none
    would delete messages nobody exported. Raising makes SQS deliver the whole batch again, and
    redelivery is idempotent. The record itself is never echoed: it may nest without bound.
    """
    for index, record in enumerate(records):
        if not (isinstance(record, dict) and isinstance(record.get("messageId"), str)):
            logger.error("a record has no messageId; the batch fails whole", extra={"index": index})
            metrics.add_metric(name="InvalidEvents", unit="Count", value=1)
            raise UnreportableRecordError(
                f"record {index} of the batch is not an SQS message: an object with a string "
                "messageId is required"
            )


@contextmanager
def reported_failures(message_id: str) -> Iterator[None]:
    """Log one structured line for a record that fails, then let the batch processor report it.

    A rejected message is retried too (it may have raced its item's creation); after the queue's
    ``maxReceiveCount`` it rests in the dead-letter queue for someone to look at.
    """
    try:
        yield
    except (InvalidRequestError, ItemNotFoundError, IdempotencyConflictError) as error:
        logger.warning("message rejected", extra={"message_id": message_id, "reason": str(error)})
        metrics.add_metric(name="MessagesRejected", unit="Count", value=1)
        raise
    except DependencyError as error:
        # Reported either way: a permanent failure still goes through redelivery to the
        # dead-letter queue, where the message waits for the fix; nothing is dropped.
        if error.retryable:
            message, metric = "message failed; it will be retried", "DependencyFailures"
        else:
            message = "message failed and retries cannot help; it will reach the dead-letter queue"
            metric = "MessagesFailedPermanently"
        logger.error(message, extra={"message_id": message_id, **error.log_fields()})
        metrics.add_metric(name=metric, unit="Count", value=1)
        raise
    except RunLeasedError:
        raise  # logged where it is decided: redelivery is the plan, not a failure
    except Exception:
        # Neither the input nor AWS: a defect. Its traceback is all anyone will have when the
        # message reaches the dead-letter queue, so it is logged here, once.
        logger.exception("message failed unexpectedly", extra={"message_id": message_id})
        metrics.add_metric(name="MessagesFailedUnexpectedly", unit="Count", value=1)
        raise


def partial_batch_response(
    outcomes: Iterable[tuple[str, Callable[[], T]]], on_success: Callable[[str, T], None]
) -> dict[str, list[dict[str, str]]]:
    """``{"batchItemFailures": [...]}`` for records given as (message id, what gives its result).

    Each is asked in order, on this thread: one that raises is logged (:func:`reported_failures`)
    and reported by its message id, alone; the others go to ``on_success``. A batch whose every
    record failed is reported whole, never raised: SQS then redelivers each record on its own.
    """
    failures: list[dict[str, str]] = []
    for message_id, outcome in outcomes:
        try:
            with reported_failures(message_id):
                result = outcome()
        except Exception:  # noqa: BLE001 - whatever a record raised is that record's failure alone
            failures.append({"itemIdentifier": message_id})
        else:
            on_success(message_id, result)
    return {"batchItemFailures": failures}
