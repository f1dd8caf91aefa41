"""SQS batches of export requests: exported in parallel, with partial batch failure reporting.

Each record succeeds or fails alone: a failed record is reported in ``batchItemFailures`` so SQS
redelivers only it, and after the queue's ``maxReceiveCount`` moves it to the dead-letter queue.
The message id names the export, so a redelivered message that had in fact been exported is
acknowledged without a second object.

Records run concurrently on the execution environment's worker threads (built once, at init).
The threads share the services' clients, which are thread-safe; no session is used or built in
a worker. Logging and metrics stay on the handler's thread, which collects the results in the
batch's order.
"""

from concurrent.futures import Executor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.invocation import within_remaining_time
from app.handlers.sqs import check_records, partial_batch_response
from app.observability import logger, metrics
from app.operations import UNVERIFIED, export_item, export_request_from_message
from app.services import ExportResult, ExportsBucket, ItemsTable


def _export_record(
    record: dict[str, Any], items: ItemsTable, exports: ExportsBucket
) -> ExportResult:
    """One record, on a worker thread: parse its body, export its item."""
    request = export_request_from_message(record.get("body"))
    # A message carries no verified caller: whoever could send it, IAM allowed to.
    return export_item(
        request, record["messageId"], items=items, exports=exports, caller=UNVERIFIED
    )


def _count(_message_id: str, result: ExportResult) -> None:
    metrics.add_metric(
        name="ExportsWritten" if result.created else "ExportsRepeated", unit="Count", value=1
    )


@logger.inject_lambda_context
@metrics.log_metrics
@within_remaining_time
def handle(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    items: ItemsTable,
    exports: ExportsBucket,
    workers: Executor,
) -> dict[str, Any]:
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        shape = sorted(event)[:10] if isinstance(event, dict) else type(event).__name__
        logger.error("not an SQS batch event; nothing to process", extra={"shape": shape})
        metrics.add_metric(name="InvalidEvents", unit="Count", value=1)
        return {"batchItemFailures": []}
    records: list[dict[str, Any]] = event["Records"]
    check_records(records)
    running = [workers.submit(_export_record, record, items, exports) for record in records]
    outcomes = [
        (record["messageId"], export.result)
        for record, export in zip(records, running, strict=True)
    ]
    return partial_batch_response(outcomes, _count)


runtime.at_init(runtime.items_table, runtime.exports_bucket, runtime.export_workers)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(
        event,
        context,
        items=runtime.items_table(),
        exports=runtime.exports_bucket(),
        workers=runtime.export_workers(),
    )
    return response
