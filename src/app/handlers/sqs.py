"""What the SQS handlers share: how a failed record is logged and counted before it is reported."""

from collections.abc import Iterator
from contextlib import contextmanager

from app.models import InvalidRequestError
from app.observability import logger, metrics
from app.operations import ItemNotFoundError
from app.services import DependencyError


@contextmanager
def reported_failures(message_id: str) -> Iterator[None]:
    """Log one structured line for a record that fails, then let the batch processor report it.

    A rejected message is retried too (it may have raced its item's creation); after the queue's
    ``maxReceiveCount`` it rests in the dead-letter queue for someone to look at.
    """
    try:
        yield
    except (InvalidRequestError, ItemNotFoundError) as error:
        logger.warning("message rejected", extra={"message_id": message_id, "reason": str(error)})
        metrics.add_metric(name="MessagesRejected", unit="Count", value=1)
        raise
    except DependencyError as error:
        logger.error(
            "message failed; it will be retried",
            extra={"message_id": message_id, **error.log_fields()},
        )
        metrics.add_metric(name="DependencyFailures", unit="Count", value=1)
        raise
