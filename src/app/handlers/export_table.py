"""The whole items table to S3, on a schedule, on demand, and as its own continuation.

* EventBridge schedule: starts (or resumes) the run named after the scheduled time, so a
  duplicate trigger for the same time joins the same run instead of starting a second one.
* Direct invocation: ``{}`` starts a new run; ``{"run_id": "..."}`` resumes one.
* SQS continuation queue: ``{"run_id": "..."}``, sent by a run that ran short of time. A
  continuation is acknowledged only when its run is complete or this invocation handed it on;
  one that finds the run leased (``busy``, ``superseded``) is reported as a batch item failure
  and comes back after the queue's visibility timeout, when the run is free or finished.
* Fanned out (``TABLE_EXPORT_FAN_OUT``), a start only sends one ``{"run_id": "...", "segment":
  i}`` per segment to that queue, and each segment runs, continues and is acknowledged on its
  own, in as many concurrent invocations as the event source allows.
"""

import os
import re
import time
from dataclasses import asdict
from functools import partial
from typing import Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.errors import RunLeasedError
from app.handlers.invocation import within_remaining_time
from app.handlers.sqs import check_records, partial_batch_response
from app.observability import logger, metrics
from app.operations import (
    InvalidRequestError,
    TableExporter,
    TableExportOutcome,
    parse_json_object,
    refuse_unknown_fields,
)
from app.services import (
    DependencyError,
    LeaseLostError,
)

RESERVE_SECONDS = float(os.environ.get("TABLE_EXPORT_RESERVE_SECONDS", "30"))
"""Kept back from the function timeout for the last part, the checkpoint and the continuation."""
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
DIRECT_INVOKE = '{} starts a run, {"run_id": "..."} resumes one'
NOT_AN_OBJECT = f"the event must be a JSON object: {DIRECT_INVOKE}"

UNACKNOWLEDGED = frozenset({"busy", "superseded"})
"""Outcomes after which no one may be left to carry the run on: the continuation must return."""
MAX_SEGMENTS = 100
"""DynamoDB allows a parallel scan 1,000,000 segments, but the run is one item (at most 400 KB)
holding every segment's progress: about 300 bytes each, plus 36 bytes per uploaded part's ETag.
A hundred segments leave room for the parts of a table of tens of gigabytes compressed."""
RUN_AGE_METRIC = "TableExportRunAge"
"""Seconds since a run started, published each time it hands itself on to a continuation: the
template's TableExportTooLongAlarm fires when a run is still continuing past its bound."""


def _parse_run_id(raw: object) -> str:
    if not isinstance(raw, str) or not RUN_ID_PATTERN.fullmatch(raw):
        raise InvalidRequestError("run_id must be 1-100 letters, digits, '_', '.' or '-'")
    return raw


def _parse_segment(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < MAX_SEGMENTS:
        raise InvalidRequestError(f"segment must be a whole number from 0 to {MAX_SEGMENTS - 1}")
    return raw


def _run_id_for(event: dict[str, Any], context: LambdaContext) -> str:
    if event.get("source") == "aws.events" and isinstance(event.get("time"), str):
        return _parse_run_id("scheduled-" + re.sub(r"[^0-9A-Za-z]", "-", event["time"]))
    # A direct Invoke: anything but run_id is a typo (``runid``, ``Records`` that is no list),
    # and taking it for {} would start a whole-table export nobody asked for.
    refuse_unknown_fields(event, frozenset({"run_id"}), DIRECT_INVOKE)
    if "run_id" in event:
        return _parse_run_id(event["run_id"])
    return f"manual-{context.aws_request_id}"


def _export(
    run_id: str,
    context: LambdaContext,
    exporter: TableExporter,
    segment: int | None = None,
    *,
    resend: bool = False,
) -> TableExportOutcome:
    """Run ``run_id`` (one ``segment`` of it, when fanned out), or fan it out."""
    remaining_seconds = context.get_remaining_time_in_millis() // 1000
    limits: dict[str, Any] = {
        "seconds_left": lambda: context.get_remaining_time_in_millis() / 1000 - RESERVE_SECONDS,
        "lease_seconds": remaining_seconds + 60,
    }
    try:
        if segment is not None:
            outcome = exporter.run_segment(run_id, segment, context.aws_request_id, **limits)
        elif exporter.fan_out:
            outcome = exporter.start(run_id, resend=resend)
        else:
            outcome = exporter.run(run_id, context.aws_request_id, **limits)
    except LeaseLostError:
        logger.warning(
            "another invocation took over the run", extra={"run_id": run_id, "segment": segment}
        )
        return TableExportOutcome(run_id, "superseded", segment=segment)
    logger.info("table export", extra=_answer(outcome))
    metrics.add_metric(name="TableExportItems", unit="Count", value=outcome.items)
    if outcome.status == "continuing" and outcome.started_at is not None:
        _publish_run_age(outcome.started_at, context)
    return outcome


def _answer(outcome: TableExportOutcome) -> dict[str, Any]:
    answer = asdict(outcome)
    del answer["started_at"]
    if outcome.segment is None:
        del answer["segment"]
    return answer


def _publish_run_age(started_at: int, context: LambdaContext) -> None:
    """One metric of its own, with the function's name as a dimension: dev and prod stacks in
    one account publish the same namespace and service, and each stack's alarm watches its own."""
    with single_metric(
        name=RUN_AGE_METRIC,
        unit=MetricUnit.Seconds,
        value=max(0, int(time.time()) - started_at),
    ) as metric:
        metric.add_dimension(name="function_name", value=context.function_name)


@logger.inject_lambda_context
@metrics.log_metrics
@within_remaining_time
def handle(
    event: dict[str, Any], context: LambdaContext, *, exporter: TableExporter
) -> dict[str, Any]:
    export = partial(_export, context=context, exporter=exporter)
    if not isinstance(event, dict):  # a direct Invoke can send any JSON
        metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
        return {"status": "rejected", "message": NOT_AN_OBJECT}
    if isinstance(event.get("Records"), list):
        records: list[dict[str, Any]] = event["Records"]
        check_records(records)

        def continue_run(record: dict[str, Any]) -> None:
            document = parse_json_object(
                record.get("body"), allowed=frozenset({"run_id", "segment"})
            )
            segment = _parse_segment(document["segment"]) if "segment" in document else None
            outcome = export(_parse_run_id(document.get("run_id")), segment=segment)
            if outcome.status == "unknown":
                logger.warning(
                    "segment message for no segment of a fanned-out run; dropped",
                    extra={"message_id": record["messageId"], "run_id": outcome.run_id},
                )
            if outcome.status in UNACKNOWLEDGED:
                logger.info(
                    "run leased elsewhere; the continuation will be redelivered",
                    extra={"message_id": record["messageId"], "run_id": outcome.run_id},
                )
                metrics.add_metric(name="ContinuationsDeferred", unit="Count", value=1)
                raise RunLeasedError(outcome.run_id)

        outcomes = [(record["messageId"], partial(continue_run, record)) for record in records]
        return partial_batch_response(outcomes, lambda _message_id, _none: None)
    try:
        # An operator naming a run resumes it: a fanned-out run's unfinished segments are sent
        # again (a second trigger of a schedule sends none).
        resend = "run_id" in event and event.get("source") != "aws.events"
        return _answer(export(_run_id_for(event, context), resend=resend))
    except InvalidRequestError as error:
        metrics.add_metric(name="RequestsRejected", unit="Count", value=1)
        return {"status": "rejected", "message": str(error)}
    except DependencyError as error:
        # Lambda retries a failed scheduled invocation; the run resumes from its checkpoint.
        logger.error(
            "table export failed; the invocation will be retried"
            if error.retryable
            else "table export failed and retries will not help until the cause is fixed",
            extra=error.log_fields(),
        )
        metrics.add_metric(
            name="DependencyFailures" if error.retryable else "DependencyMisconfigured",
            unit="Count",
            value=1,
        )
        raise


runtime.at_init(runtime.table_exporter)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(event, context, exporter=runtime.table_exporter())
    return response
