"""AWS failing under the functions: throttling, 5xx, timeouts and STS outages, per attempt.

Faults are injected through botocore's event system (tests/fault_injection.py), so botocore's own
retries, backoff and error parsing run. For each: the call is retried up to ``MAX_ATTEMPTS``, then
the caller gets a clean answer (a 503 JSON for the API, a batch item failure for only the affected
SQS records), operators get exactly one structured error line naming the resource, the operation
and the error code, nothing prints a traceback, and nothing is written. Time is moved with
time_machine or accounted from the faults and botocore's backoff; nothing sleeps.
"""

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
import time_machine
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from app.services import DependencyError
from app.sessions import InvocationDeadlineError
from app.sessions.assumed_role import FAILURE_COOLDOWN_SECONDS
from app.sessions.config import (
    _MAX_BACKOFF_SECONDS_PER_RETRY,
    MAX_ATTEMPTS,
    worst_case_call_seconds,
)
from tests import fault_injection as faults
from tests.conftest import LAMBDA_ENVIRONMENT, Stack, load_event
from tests.fault_injection import Backoff, Fault, FaultyAws, SimulatedClock, record_backoff
from tests.handler_calls import call
from tests.log_capture import LambdaOutput, lambda_output
from tools.emulator import sam_template
from tools.emulator.lambda_context import LambdaContext

TABLE = LAMBDA_ENVIRONMENT["TABLE_NAME"]
BUCKET = LAMBDA_ENVIRONMENT["BUCKET_NAME"]
WRITER = LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"]
SESSION_NAME = "items-test.faults"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UNAVAILABLE = {"message": "temporarily unavailable, retry later"}
FUNCTION_TIMEOUT = sam_template.load()["Globals"]["Function"]["Timeout"]


@dataclass
class Rig:
    """The functions' services on sessions whose AWS can fail, and what the faults cost."""

    stack: Stack
    aws: FaultyAws
    backoff: Backoff
    output: LambdaOutput
    context: LambdaContext

    def call(self, function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        return call(function_id, event, self.stack, self.context)  # type: ignore[no-any-return]

    def export(self, request_id: str) -> dict[str, Any]:
        event = copy.deepcopy(load_event("ExportItemFunction/created"))
        event["requestContext"]["requestId"] = request_id
        return self.call("ExportItemFunction", event)

    @property
    def clock(self) -> SimulatedClock:
        return self.aws.clock

    @property
    def elapsed(self) -> float:
        """What the faults would have cost in time against AWS, backoff included."""
        return self.aws.simulated_seconds + self.backoff.total


@pytest.fixture
def rig(stack: Stack, monkeypatch: pytest.MonkeyPatch, context: LambdaContext) -> Iterator[Rig]:
    """The services rebuilt as runtime.py builds them, on sessions with faults installed first."""
    aws = FaultyAws(clock=SimulatedClock().install(monkeypatch))
    backoff = record_backoff(monkeypatch, aws.clock)
    faulty = faults.rebuild_services(stack, aws, SESSION_NAME)
    with lambda_output("INFO") as output:
        yield Rig(faulty, aws, backoff, output, context)


def _code(fault: Fault) -> str:
    return fault.code if isinstance(fault, faults.ServiceError) else fault.error.__name__


def _assert_one_error_line(output: LambdaOutput, **fields: str) -> dict[str, Any]:
    errors = output.at("ERROR", "CRITICAL")
    assert len(errors) == 1, output.text
    assert {name: errors[0].get(name) for name in fields} == fields
    assert errors[0]["hint"]
    assert output.tracebacks() == []
    return errors[0]


def _assert_clean_503(response: dict[str, Any]) -> None:
    assert response["statusCode"] == 503
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"]) == UNAVAILABLE
    # Not sooner than a retry could meet anything but the same remembered AssumeRole failure.
    assert int(response["headers"]["Retry-After"]) >= FAILURE_COOLDOWN_SECONDS


# --- Throttling, 5xx and timeouts: retried, then a clean 503 -------------------------------------

DYNAMODB_FAULTS = [
    faults.DYNAMODB_THROTTLING,
    faults.DYNAMODB_THROUGHPUT,
    faults.DYNAMODB_INTERNAL,
    faults.READ_TIMEOUT,
    faults.CONNECT_TIMEOUT,
]
S3_FAULTS = [
    faults.S3_SLOW_DOWN,
    faults.S3_UNAVAILABLE,
    faults.S3_INTERNAL,
    faults.READ_TIMEOUT,
    faults.CONNECT_TIMEOUT,
]


class ApiFault(NamedTuple):
    event: str
    service: str
    operation: str
    resource: str
    fault: Fault

    def __str__(self) -> str:
        return f"{self.event.split('/', maxsplit=1)[0]}-{self.operation}-{_code(self.fault)}"


API_FAULTS = [
    *[ApiFault("GetItemFunction/found", "dynamodb", "GetItem", TABLE, f) for f in DYNAMODB_FAULTS],
    ApiFault(
        "ExportItemFunction/created", "dynamodb", "GetItem", TABLE, faults.DYNAMODB_THROTTLING
    ),
    *[ApiFault("ExportItemFunction/created", "s3", "PutObject", BUCKET, f) for f in S3_FAULTS],
]


@pytest.mark.parametrize("case", API_FAULTS, ids=str)
def test_api_retries_then_answers_503_with_one_error_line(case: ApiFault, rig: Rig) -> None:
    rig.aws.inject(case.service, case.operation, case.fault)
    response = rig.call(case.event.split("/", maxsplit=1)[0], load_event(case.event))

    _assert_clean_503(response)
    assert rig.aws.attempts[f"{case.service}.{case.operation}"] == MAX_ATTEMPTS
    assert len(rig.backoff.delays) == MAX_ATTEMPTS - 1
    for delay, bound in zip(rig.backoff.delays, _MAX_BACKOFF_SECONDS_PER_RETRY, strict=True):
        assert delay <= bound
    assert rig.elapsed <= worst_case_call_seconds() < FUNCTION_TIMEOUT
    line = _assert_one_error_line(
        rig.output, resource=case.resource, operation=case.operation, error_code=_code(case.fault)
    )
    assert line["retryable"] is True
    assert rig.stack.objects() == {}


# --- Errors no retry fixes: one attempt, a 500 that names nothing internal ----------------------

PERMANENT_FAULTS = [
    ApiFault("GetItemFunction/found", "dynamodb", "GetItem", TABLE, faults.DYNAMODB_VALIDATION),
    ApiFault("GetItemFunction/found", "dynamodb", "GetItem", TABLE, faults.DYNAMODB_ACCESS_DENIED),
    ApiFault("ExportItemFunction/created", "dynamodb", "GetItem", TABLE, faults.DYNAMODB_NO_TABLE),
    ApiFault("ExportItemFunction/created", "s3", "PutObject", BUCKET, faults.S3_ACCESS_DENIED),
    ApiFault("ExportItemFunction/created", "s3", "PutObject", BUCKET, faults.S3_NO_SUCH_BUCKET),
    ApiFault("ExportItemFunction/created", "s3", "PutObject", BUCKET, faults.S3_INVALID_REQUEST),
    ApiFault("ExportItemFunction/created", "sts", "AssumeRole", WRITER, faults.STS_ACCESS_DENIED),
]
MISCONFIGURED = {
    "message": "the service cannot complete this request; retrying will not help until it is fixed"
}


@pytest.mark.parametrize("case", PERMANENT_FAULTS, ids=str)
def test_an_error_no_retry_fixes_is_a_500_tried_once(case: ApiFault, rig: Rig) -> None:
    rig.aws.inject(case.service, case.operation, case.fault)
    response = rig.call(case.event.split("/", maxsplit=1)[0], load_event(case.event))

    assert response["statusCode"] == 500
    assert "Retry-After" not in response["headers"]
    assert json.loads(response["body"]) == MISCONFIGURED  # no resource, code or role named
    assert rig.aws.attempts[f"{case.service}.{case.operation}"] == 1, "botocore does not retry"
    line = _assert_one_error_line(
        rig.output, resource=case.resource, operation=case.operation, error_code=_code(case.fault)
    )
    assert line["retryable"] is False
    assert rig.stack.objects() == {}


def _metrics(stdout: str) -> dict[str, float]:
    """The metrics of the EMF documents Powertools printed, summed by name."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if line.startswith('{"_aws"'):
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(record[metric["Name"]])
    return totals


def test_a_batch_reports_permanent_and_retryable_failures_alike_and_counts_them_apart(
    rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing is dropped: a record no retry fixes is still reported, so SQS moves it to the
    dead-letter queue after maxReceiveCount, where it waits for the fix."""
    event = _batch(["42", "7", "42", "7"])
    denied, throttled = event["Records"][0]["messageId"], event["Records"][1]["messageId"]
    rig.aws.inject("s3", "PutObject", faults.S3_ACCESS_DENIED, when=lambda r: denied in r.url)
    rig.aws.inject("s3", "PutObject", faults.S3_SLOW_DOWN, when=lambda r: throttled in r.url)
    response = rig.call("ExportQueueFunction", event)

    assert _failed(response) == {denied, throttled}
    assert len(rig.stack.objects()) == 2
    lines = {line["message_id"]: line for line in rig.output.at("ERROR")}
    assert (lines[denied]["retryable"], lines[throttled]["retryable"]) == (False, True)
    assert "dead-letter queue" in lines[denied]["message"]
    assert (lines[denied]["error_code"], lines[throttled]["error_code"]) == (
        "AccessDenied",
        "SlowDown",
    )
    counted = _metrics(rig.output.text + capsys.readouterr().out)
    assert (counted["MessagesFailedPermanently"], counted["DependencyFailures"]) == (1, 1)
    assert rig.output.tracebacks() == []


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, "ThrottlingException", True),
        (400, "ProvisionedThroughputExceededException", True),
        (503, "SlowDown", True),
        (500, "InternalError", True),
        (502, "BadGateway", True),
        (408, "RequestTimeout", True),
        (429, "NotAKnownCode", True),
        (409, "ConditionalRequestConflict", True),  # S3's documented "retry the request"
        (400, "ValidationException", False),
        (400, "AccessDeniedException", False),
        (403, "AccessDenied", False),
        (400, "ResourceNotFoundException", False),
        (404, "NoSuchBucket", False),
        (400, "ExpiredToken", False),
        (400, "InvalidRequest", False),
    ],
)
def test_retryable_is_botocores_judgement(status: int, code: str, retryable: bool) -> None:
    error = ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Call"
    )
    assert DependencyError.wrap("resource", "Call", error).retryable is retryable


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ReadTimeoutError(endpoint_url="https://x"), True),
        (ConnectTimeoutError(endpoint_url="https://x"), True),
        (EndpointConnectionError(endpoint_url="https://x"), True),
        (InvocationDeadlineError(), True),
        (NoCredentialsError(), False),
        (NoRegionError(), False),
        (ParamValidationError(report="bad"), False),
    ],
    ids=lambda value: type(value).__name__,
)
def test_retryable_without_a_response(error: Exception, retryable: bool) -> None:
    assert DependencyError.wrap("resource", "Call", error).retryable is retryable


@pytest.mark.parametrize(
    ("service", "operation", "fault"),
    [
        ("dynamodb", "GetItem", faults.DYNAMODB_THROTTLING),
        ("s3", "PutObject", faults.S3_SLOW_DOWN),
        ("s3", "PutObject", faults.READ_TIMEOUT),
        ("sts", "AssumeRole", faults.STS_THROTTLING),
    ],
    ids=["dynamodb-throttled", "s3-slow-down", "s3-read-timeout", "sts-throttled"],
)
def test_a_transient_fault_is_absorbed_by_one_retry(
    service: str, operation: str, fault: Fault, rig: Rig
) -> None:
    rig.aws.inject(service, operation, fault, times=1)
    assert rig.export("transient")["statusCode"] == 201
    assert rig.aws.attempts[f"{service}.{operation}"] == 2
    assert rig.output.at("ERROR", "WARNING") == []
    assert len(rig.stack.objects()) == 1


# --- STS outage at first use and at refresh ----------------------------------------------------


@pytest.mark.parametrize(
    "fault", [faults.STS_THROTTLING, faults.STS_UNAVAILABLE, faults.CONNECT_TIMEOUT], ids=_code
)
def test_sts_outage_at_first_use_is_a_503_naming_the_role(fault: Fault, rig: Rig) -> None:
    outage = rig.aws.inject("sts", "AssumeRole", fault)
    _assert_clean_503(rig.export("first-use"))

    assert rig.aws.attempts["sts.AssumeRole"] == MAX_ATTEMPTS
    assert rig.aws.attempts["s3.PutObject"] == 0, "nothing is sent unsigned"
    line = _assert_one_error_line(
        rig.output, resource=WRITER, operation="AssumeRole", error_code=_code(fault)
    )
    assert line["role_session_name"] == SESSION_NAME
    assert rig.stack.objects() == {}

    _assert_clean_503(rig.export("during-cooldown"))  # the same explained error, no STS call
    assert rig.aws.attempts["sts.AssumeRole"] == MAX_ATTEMPTS

    outage.active = False  # STS is back: after the cooldown the next request assumes the role
    rig.clock.advance(FAILURE_COOLDOWN_SECONDS)
    assert rig.export("after-outage")["statusCode"] == 201
    assert rig.aws.attempts["sts.AssumeRole"] == MAX_ATTEMPTS + 1


def test_sts_outage_at_refresh_keeps_valid_credentials_then_fails_cleanly(rig: Rig) -> None:
    """botocore refreshes 15 minutes before expiry (advisory: a failure is tolerated while the old
    credentials are valid) and must refresh from 10 minutes before (mandatory: a failure fails)."""
    with time_machine.travel(START, tick=False) as clock:
        assert rig.export("before-outage")["statusCode"] == 201
        assert rig.aws.attempts["sts.AssumeRole"] == 1
        outage = rig.aws.inject("sts", "AssumeRole", faults.STS_UNAVAILABLE)

        def wait(minutes: float) -> None:
            clock.shift(timedelta(minutes=minutes))
            rig.clock.advance(minutes * 60)

        wait(46)  # 14 minutes left: advisory window
        assert rig.export("advisory-1")["statusCode"] == 201  # refresh fails: old credentials
        assert rig.export("advisory-2")["statusCode"] == 201  # within the cooldown: no STS call
        assert rig.aws.attempts["sts.AssumeRole"] == 1 + MAX_ATTEMPTS
        wait(1)
        assert rig.export("advisory-3")["statusCode"] == 201  # after it: one more refresh try
        assert rig.aws.attempts["sts.AssumeRole"] == 1 + 2 * MAX_ATTEMPTS
        assert rig.output.at("ERROR") == []
        warnings = rig.output.at("WARNING")
        assert {line["logger"] for line in warnings} == {"botocore.credentials"}
        assert all("advisory refresh period" in line["message"] for line in warnings)

        wait(6)  # 7 minutes left: mandatory window
        _assert_clean_503(rig.export("mandatory"))
        assert rig.aws.attempts["sts.AssumeRole"] == 1 + 3 * MAX_ATTEMPTS
        _assert_one_error_line(
            rig.output, resource=WRITER, operation="AssumeRole", error_code="ServiceUnavailable"
        )

        outage.active = False
        wait(1)
        assert rig.export("recovered")["statusCode"] == 201
        assert rig.aws.attempts["sts.AssumeRole"] == 2 + 3 * MAX_ATTEMPTS
    assert len(rig.stack.objects()) == 5
    assert rig.output.tracebacks() == []


# --- SQS: only the affected records fail ------------------------------------------------------


def _batch(ids: list[str]) -> dict[str, Any]:
    template = load_event("ExportQueueFunction/batch")["Records"][0]
    records = []
    for index, item_id in enumerate(ids):
        record = copy.deepcopy(template)
        record["messageId"] = f"msg-{index:02d}-{item_id}"
        record["body"] = json.dumps({"item_id": item_id})
        records.append(record)
    return {"Records": records}


def _failed(response: dict[str, Any]) -> set[str]:
    return {entry["itemIdentifier"] for entry in response["batchItemFailures"]}


@pytest.mark.parametrize(
    "fault", [faults.S3_SLOW_DOWN, faults.S3_INTERNAL, faults.READ_TIMEOUT], ids=_code
)
def test_partial_batch_reports_exactly_the_records_whose_write_failed(
    fault: Fault, rig: Rig
) -> None:
    event = _batch(["42", "7"] * 4)
    doomed = {record["messageId"] for record in event["Records"][1::3]}
    rig.aws.inject(
        "s3", "PutObject", fault, when=lambda request: any(m in request.url for m in doomed)
    )
    response = rig.call("ExportQueueFunction", event)

    assert _failed(response) == doomed
    written = {key.rpartition("/")[2].removesuffix(".json") for key in rig.stack.objects()}
    assert written == {record["messageId"] for record in event["Records"]} - doomed
    assert rig.aws.attempts["s3.PutObject"] == len(written) + MAX_ATTEMPTS * len(doomed)
    errors = rig.output.at("ERROR")
    assert sorted(line["message_id"] for line in errors) == sorted(doomed)
    for line in errors:
        assert (line["resource"], line["operation"]) == (BUCKET, "PutObject")
        assert line["error_code"] == _code(fault)
    assert rig.output.tracebacks() == []


def test_partial_batch_reports_exactly_the_records_whose_read_failed(rig: Rig) -> None:
    """Items on a throttled partition fail alone; the others export."""
    hot = ["hot-1", "hot-2", "hot-3"]
    rig.stack.admin.client("dynamodb").batch_write_item(
        RequestItems={TABLE: [{"PutRequest": {"Item": {"item_id": {"S": i}}}} for i in hot]}
    )
    event = _batch(["42", *hot, "7"])
    rig.aws.inject(
        "dynamodb",
        "GetItem",
        faults.DYNAMODB_THROUGHPUT,
        when=lambda request: b'"hot-' in bytes(request.body or b""),
    )
    response = rig.call("ExportQueueFunction", event)

    doomed = {r["messageId"] for r in event["Records"] if "hot-" in r["body"]}
    assert _failed(response) == doomed
    assert len(rig.stack.objects()) == 2
    assert rig.aws.attempts["dynamodb.GetItem"] == 2 + MAX_ATTEMPTS * len(hot)
    assert sorted(line["message_id"] for line in rig.output.at("ERROR")) == sorted(doomed)
    assert rig.output.tracebacks() == []


def test_sts_outage_fails_every_record_of_a_batch_and_writes_nothing(rig: Rig) -> None:
    rig.aws.inject("sts", "AssumeRole", faults.STS_THROTTLING)
    event = _batch(["42", "7", "42", "7"])
    response = rig.call("ExportQueueFunction", event)

    assert _failed(response) == {record["messageId"] for record in event["Records"]}
    assert rig.aws.attempts["sts.AssumeRole"] == MAX_ATTEMPTS, "one try; the rest fail fast"
    assert rig.stack.objects() == {}
    errors = rig.output.at("ERROR")
    assert len(errors) == len(event["Records"])
    assert {(line["resource"], line["operation"]) for line in errors} == {(WRITER, "AssumeRole")}
    assert rig.output.tracebacks() == []


# --- The time budget: the clock moves by what each fault and backoff would cost, never slept ---


def test_an_export_whose_calls_all_struggle_answers_within_the_function_timeout(rig: Rig) -> None:
    """Each call is bounded by the client config, but an export makes three in a row; the
    invocation deadline stops the attempt that could no longer finish in time."""
    rig.clock.follows_faults = True
    rig.aws.inject("dynamodb", "GetItem", faults.READ_TIMEOUT, times=MAX_ATTEMPTS - 1)
    rig.aws.inject("sts", "AssumeRole", faults.READ_TIMEOUT, times=MAX_ATTEMPTS - 1)
    rig.aws.inject("s3", "PutObject", faults.READ_TIMEOUT)
    _assert_clean_503(rig.export("struggling"))
    assert rig.elapsed < FUNCTION_TIMEOUT - 1, "a second is left to answer"
    _assert_one_error_line(rig.output, error_code="InvocationDeadlineError")
    assert rig.stack.objects() == {}


def test_a_full_batch_during_an_sts_outage_is_answered_within_the_function_timeout(
    rig: Rig,
) -> None:
    """One AssumeRole with its retries, then every other record fails fast on the same error."""
    rig.clock.follows_faults = True
    rig.aws.inject("sts", "AssumeRole", faults.STS_THROTTLING)
    event = _batch(["42", "7"] * 5)
    response = rig.call("ExportQueueFunction", event)
    assert _failed(response) == {record["messageId"] for record in event["Records"]}
    assert rig.aws.attempts["sts.AssumeRole"] == MAX_ATTEMPTS
    assert rig.elapsed < FUNCTION_TIMEOUT - 1
