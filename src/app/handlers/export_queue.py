"""SQS batches of export requests: exported in parallel, with partial batch failure reporting.

Each record succeeds or fails alone: a failed record is reported in ``batchItemFailures`` so SQS
redelivers only it, and after the queue's ``maxReceiveCount`` moves it to the dead-letter queue.
The message id names the export, so a redelivered message that had in fact been exported is
acknowledged without a second object.

Records run concurrently on the execution environment's worker threads (built once, at init).
The threads share the services' clients, which are thread-safe; no session is used or built in
a worker. Logging and metrics stay on the event loop's thread.
"""

import asyncio
from concurrent.futures import Executor
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.invocation import within_remaining_time
from app.handlers.sqs import check_records, reported_failures
from app.observability import logger, metrics
from app.operations import UNVERIFIED, export_item, export_request_from_message
from app.services import ExportsBucket, ItemsTable

processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


async def _export_record(
    record: SQSRecord, items: ItemsTable, exports: ExportsBucket, workers: Executor
) -> None:
    with reported_failures(record.message_id):
        request = export_request_from_message(record.body)
        # A message carries no verified caller: whoever could send it, IAM allowed to.
        export = partial(
            export_item,
            request,
            record.message_id,
            items=items,
            exports=exports,
            caller=UNVERIFIED,
        )
        result = await asyncio.get_running_loop().run_in_executor(workers, export)
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
    check_records(event["Records"])
    response = async_process_partial_response(
        event=event,
        record_handler=partial(_export_record, items=items, exports=exports, workers=workers),
        processor=processor,
        context=context,
    )
    return dict(response)


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
