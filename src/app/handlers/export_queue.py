"""SQS batches of export requests, with partial batch failure reporting.

Each record succeeds or fails alone: a failed record is reported in ``batchItemFailures`` so SQS
redelivers only it, and after the queue's ``maxReceiveCount`` moves it to the dead-letter queue.
The message id names the export, so a redelivered message that had in fact been exported is
acknowledged without a second object.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.models import InvalidRequestError, export_request_from_message
from app.observability import logger, metrics
from app.operations import ItemNotFoundError, export_item
from app.services import DependencyError, ExportsBucket, ItemsTable

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def _export_record(record: SQSRecord, items: ItemsTable, exports: ExportsBucket) -> None:
    try:
        request = export_request_from_message(record.body)
        result = export_item(request, record.message_id, items=items, exports=exports)
    except (InvalidRequestError, ItemNotFoundError) as error:
        logger.warning(
            "export request rejected", extra={"message_id": record.message_id, "reason": str(error)}
        )
        metrics.add_metric(name="ExportsRejected", unit="Count", value=1)
        raise
    except DependencyError as error:
        logger.error(
            "export failed; the message will be retried",
            extra={"message_id": record.message_id, **error.log_fields()},
        )
        metrics.add_metric(name="DependencyFailures", unit="Count", value=1)
        raise
    metrics.add_metric(
        name="ExportsWritten" if result.created else "ExportsRepeated", unit="Count", value=1
    )


@logger.inject_lambda_context
@metrics.log_metrics
def handle(
    event: dict[str, Any], context: LambdaContext, *, items: ItemsTable, exports: ExportsBucket
) -> dict[str, Any]:
    if not isinstance(event.get("Records"), list):
        logger.error(
            "not an SQS batch event; nothing to process", extra={"keys": sorted(event)[:10]}
        )
        metrics.add_metric(name="InvalidEvents", unit="Count", value=1)
        return {"batchItemFailures": []}
    response = process_partial_response(
        event=event,
        record_handler=lambda record: _export_record(record, items, exports),
        processor=processor,
        context=context,
    )
    return dict(response)


ITEMS = runtime.items_table()
EXPORTS = runtime.exports_bucket()


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(event, context, items=ITEMS, exports=EXPORTS)
    return response
