"""The whole-table export: every item exactly once, in valid gzip JSON Lines, resumable."""

import base64
import collections
import gzip
import json
import random
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from app.operations.export_table import MIN_PART_BYTES, SEGMENTS, _GzipPart, new_run
from app.services import (
    DependencyError,
    ExportRun,
    ExportsBucket,
    LeaseLostError,
    ScanPage,
    SegmentProgress,
)
from tests import fault_injection as faults
from tests.conftest import REGION, Stack, load_event
from tests.handler_calls import call, context_for, handler_module
from tools.emulator.lambda_context import LambdaContext
from tools.emulator.seed import load_seed, put_items
from tools.emulator.sqs_records import receive_records


def _exported_items(stack: Stack, manifest_key: str) -> list[dict[str, Any]]:
    s3 = stack.admin.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=stack.exports.bucket_name, Key=manifest_key)["Body"].read()
    )
    lines: list[dict[str, Any]] = []
    for entry in manifest["objects"]:
        body = s3.get_object(Bucket=stack.exports.bucket_name, Key=entry["key"])["Body"].read()
        lines += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return lines


def _run(
    stack: Stack, run_id: str, owner: str, seconds_left: Callable[[], float], **options: Any
) -> Any:
    return stack.exporter.run(
        run_id,
        owner,
        seconds_left=seconds_left,
        lease_seconds=360,
        **options,
    )


def _continuations(stack: Stack) -> list[str]:
    sqs = stack.admin.client("sqs")
    received = sqs.receive_message(QueueUrl=stack.continuations.queue_url, MaxNumberOfMessages=10)
    return [json.loads(message["Body"])["run_id"] for message in received.get("Messages", [])]


def _stored_run_item(stack: Stack, run_id: str) -> dict[str, Any]:
    item: dict[str, Any] = stack.admin.client("dynamodb").get_item(
        TableName=stack.runs.table_name, Key={"run_id": {"S": run_id}}
    )["Item"]
    return item


def _stored_run_attributes(stack: Stack, run_id: str) -> set[str]:
    return set(_stored_run_item(stack, run_id))


def _run_status(stack: Stack, run_id: str) -> str:
    status: str = _stored_run_item(stack, run_id)["status"]["S"]
    return status


def test_on_demand_export_writes_every_item_and_a_manifest(stack: Stack) -> None:
    event = load_event("ExportTableFunction/on_demand")
    response = call("ExportTableFunction", event, stack, context_for("ExportTableFunction"))
    assert response["status"] == "complete"
    seeded = load_seed()["ItemsTable"]
    assert response["items"] == len(seeded)
    exported = _exported_items(stack, response["manifest_key"])
    assert sorted(item["item_id"] for item in exported) == sorted(
        item["item_id"] for item in seeded
    )


def _stored_versions(stack: Stack) -> list[tuple[str, str, str]]:
    """Every version of every object in the exports bucket: a rewrite adds one."""
    s3 = stack.admin.client("s3")
    versions = s3.list_object_versions(Bucket=stack.exports.bucket_name).get("Versions", [])
    return sorted((v["Key"], v["VersionId"], v["ETag"]) for v in versions)


def test_a_second_trigger_for_the_same_schedule_joins_the_finished_run(stack: Stack) -> None:
    context = context_for("ExportTableFunction")
    event = load_event("ExportTableFunction/scheduled")
    first = call("ExportTableFunction", event, stack, context)
    stored = _stored_versions(stack)
    assert first["run_id"] == "scheduled-2026-11-23T02-00-00Z"
    assert first["status"] == "complete"
    assert len(stored) == SEGMENTS + 1
    second = call("ExportTableFunction", event, stack, context)
    assert second == first  # finished runs are never claimed again: answered as they finished
    assert _stored_versions(stack) == stored


def test_a_segment_that_fits_one_part_is_one_conditional_put(
    stack: Stack, api_calls: collections.Counter[str]
) -> None:
    outcome = _run(stack, "small", "request-1", lambda: 60.0)
    assert outcome.status == "complete"
    assert api_calls["s3.CreateMultipartUpload"] == 0
    assert api_calls["s3.PutObject"] == SEGMENTS + 1  # one object a segment, and the manifest
    assert api_calls["dynamodb.UpdateItem"] == 2  # the lease taken with the run, and the finish
    assert len(_exported_items(stack, outcome.manifest_key)) == len(load_seed()["ItemsTable"])


def test_a_reset_part_is_empty_and_its_next_member_holds_only_what_came_after() -> None:
    part = _GzipPart()
    try:
        part.add([{"item_id": "before"}])
        part.body()
        part.reset()
        assert (part.size, part.items) == (0, 0)
        part.add([{"item_id": "after"}])
        body = part.body().read()
        assert gzip.decompress(body) == b'{"item_id":"after"}\n'
    finally:
        part.close()


def test_a_part_waits_on_disk_not_in_memory() -> None:
    rng = random.Random(3)  # noqa: S311 - test data, not secrets
    part = _GzipPart()
    tracemalloc.start()
    try:
        for number in range(40):
            part.add([{"item_id": str(number), "blob": rng.randbytes(150_000).hex()}])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    try:
        assert part.size > MIN_PART_BYTES
        assert peak < MIN_PART_BYTES // 4  # a few items' worth, not the part
        lines = gzip.decompress(part.body().read()).splitlines()
        assert [json.loads(line)["item_id"] for line in lines] == [str(n) for n in range(40)]
    finally:
        part.close()


@pytest.fixture
def large_table(stack: Stack) -> int:
    """About 12 MB of incompressible items: more than two 5 MiB parts in one segment."""
    rng = random.Random(7)  # noqa: S311 - test data, not secrets
    count = 1600
    items = [
        {"item_id": f"bulk-{index:05d}", "blob": base64.b64encode(rng.randbytes(6000)).decode()}
        for index in range(count)
    ]
    put_items(stack.admin.client("dynamodb"), stack.items.table_name, items)
    return count + len(load_seed()["ItemsTable"])


def test_a_run_that_runs_out_of_time_resumes_where_it_stopped(
    stack: Stack, large_table: int, api_calls: collections.Counter[str]
) -> None:
    checks = iter([1.0] * 8)
    before = int(time.time())
    first = _run(stack, "big", "request-1", lambda: next(checks, -1.0), segments=1)
    assert first.status == "continuing"
    assert 0 < first.items < large_table  # the part uploaded so far
    # When the run started, as stored with its first claim: what its age metric counts from.
    assert first.started_at is not None
    assert before <= first.started_at <= time.time()
    assert _continuations(stack) == ["big"]
    assert api_calls["s3.UploadPart"] == 1  # one full part kept; the pages after it are re-read
    scans_before = api_calls["dynamodb.Scan"]

    second = _run(stack, "big", "request-2", lambda: 60.0, segments=1)
    assert second.status == "complete"
    assert api_calls["dynamodb.Scan"] - scans_before < 14  # resumed, not restarted
    exported = _exported_items(stack, second.manifest_key)
    ids = [item["item_id"] for item in exported]
    assert len(ids) == large_table
    assert len(set(ids)) == large_table
    assert second.items == large_table


class _DiedError(Exception):
    """The invocation is gone (killed, timed out) at this point."""


def _die_completing(original: Callable[..., Any]) -> Callable[..., Any]:
    def complete_upload(*args: Any, **kwargs: Any) -> Any:
        raise _DiedError

    return complete_upload


def _die_after_completing(original: Callable[..., Any]) -> Callable[..., Any]:
    def complete_upload(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise _DiedError

    return complete_upload


@pytest.mark.parametrize("die", [_die_completing, _die_after_completing], ids=["before", "after"])
def test_a_run_that_dies_around_completing_an_upload_neither_reads_nor_writes_again(
    stack: Stack,
    large_table: int,
    api_calls: collections.Counter[str],
    monkeypatch: pytest.MonkeyPatch,
    die: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> None:
    """Every part is uploaded and saved, then the invocation dies: the next one only completes."""
    with monkeypatch.context() as patch:
        patch.setattr(ExportsBucket, "complete_upload", die(ExportsBucket.complete_upload))
        with pytest.raises(_DiedError):
            _run(stack, "crash", "request-1", lambda: 60.0, segments=1)
    scans, parts = api_calls["dynamodb.Scan"], api_calls["s3.UploadPart"]

    resumed = _run(stack, "crash", "request-1", lambda: 60.0, segments=1)
    assert resumed.status == "complete"
    assert (api_calls["dynamodb.Scan"], api_calls["s3.UploadPart"]) == (scans, parts)
    ids = [item["item_id"] for item in _exported_items(stack, resumed.manifest_key)]
    assert len(ids) == len(set(ids)) == large_table == resumed.items


def test_leases_keep_one_invocation_per_run(stack: Stack) -> None:
    run = new_run("shared", stack.exports)
    # Recorded, with when it started: what the run's age (its alarm's metric) counts from.
    assert stack.runs.claim(run, "request-1", now=1000, lease_seconds=360) == replace(
        run, created_at=1000
    )
    assert stack.runs.claim(run, "request-2", now=1100, lease_seconds=360) is None
    assert stack.runs.claim(run, "request-1", now=1100, lease_seconds=360) is not None

    # request-1 outlives its lease (the process hung); request-2 takes the run over.
    progressed = SegmentProgress(key=run.segments[0].key, items=7, resume_key={"k": "v"})
    assert stack.runs.claim(run, "request-2", now=1500, lease_seconds=360) is not None
    with pytest.raises(LeaseLostError):
        stack.runs.save_segment(
            "shared", "request-1", 0, SegmentProgress(key="x"), segment_lease=False
        )
    stack.runs.release("shared", "request-2", [progressed, *run.segments[1:]])
    resumed = stack.runs.claim(run, "request-3", now=1501, lease_seconds=360)
    assert resumed is not None
    assert resumed.segments == [progressed, *run.segments[1:]]  # saved progress, not ``run``'s
    assert resumed.created_at == 1000  # a resumed run keeps its first claim's time


def test_finished_runs_are_never_claimed_again(stack: Stack) -> None:
    run = new_run("done", stack.exports, segments=2)
    assert stack.runs.claim(run, "request-1", now=1000, lease_seconds=360) is not None
    assert {"lease_owner", "lease_expires"} <= _stored_run_attributes(stack, "done")
    final = [replace(segment, items=3, done=True) for segment in run.segments]
    stack.runs.finish("done", "request-1", "manifest.json", final)
    assert not {"lease_owner", "lease_expires"} & _stored_run_attributes(stack, "done")
    finished = stack.runs.claim(run, "request-2", now=5000, lease_seconds=360)
    assert finished == ExportRun(
        "done", final, complete=True, manifest_key="manifest.json", created_at=1000
    )
    with pytest.raises(LeaseLostError):  # request-2 was not given the lease
        stack.runs.save_segment(
            "done", "request-2", 0, SegmentProgress(key="x"), segment_lease=False
        )


def test_parts_below_s3s_minimum_are_refused(stack: Stack) -> None:
    with pytest.raises(ValueError, match="at least"):
        _run(stack, "tiny", "request-1", lambda: 60.0, part_bytes=MIN_PART_BYTES - 1)


# --- Continuations: none is acknowledged unless its run is finished or handed on ---------------


def _deliver_one(stack: Stack, context: LambdaContext) -> dict[str, Any] | None:
    """One poll of the queue's event source mapping (BatchSize 1): receive, hand the record to
    the handler, delete it unless reported failed. ``None`` when the queue is empty."""
    sqs = stack.admin.client("sqs")
    url = stack.continuations.queue_url
    records = receive_records(sqs, url, REGION, MaxNumberOfMessages=1, VisibilityTimeout=0)
    if not records:
        return None
    record = records[0]
    response: dict[str, Any] = call("ExportTableFunction", {"Records": [record]}, stack, context)
    if not response["batchItemFailures"]:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
    return response


@pytest.mark.parametrize(
    "body", [None, 7, ["run-1"], {"run_id": "run-1"}, "", "[]", '{"run_id": "run-1", "x": 1}']
)
def test_a_continuation_without_a_message_in_its_body_is_rejected_and_says_so(
    stack: Stack, caplog: pytest.LogCaptureFixture, body: object
) -> None:
    """A direct Invoke may send a record with no body, or JSON where SQS sends text."""
    record: dict[str, Any] = {"messageId": "m-1"}
    if body is not None:
        record["body"] = body
    context = context_for("ExportTableFunction")
    response = call("ExportTableFunction", {"Records": [record]}, stack, context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    said = [(r.levelname, r.getMessage(), getattr(r, "message_id", None)) for r in caplog.records]
    assert [line for line in said if line[2] is not None] == [
        ("WARNING", "message rejected", "m-1")
    ]
    assert stack.objects() == {}


def test_a_continuation_delivered_before_its_sender_returns_still_finishes_the_run(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS may hand the continuation to a second invocation the moment it is sent, while the
    first has not returned yet: the second must find the run free, not answer busy."""
    context = context_for("ExportTableFunction")
    send = stack.continuations.send
    delivered: list[dict[str, Any] | None] = []

    def send_and_deliver_at_once(run_id: str) -> None:
        send(run_id)
        delivered.append(_deliver_one(stack, context))

    monkeypatch.setattr(stack.continuations, "send", send_and_deliver_at_once)
    first = _run(stack, "raced", "request-1", lambda: -1.0)  # out of time before any page
    assert first.status == "continuing"
    assert delivered == [{"batchItemFailures": []}]
    assert _run_status(stack, "raced") == "complete"
    assert _deliver_one(stack, context) is None, "nothing left to carry the run on"


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")  # it died
def test_an_invocation_that_dies_between_release_and_send_leaves_its_own_message_to_resume(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease is given back, then the continuation cannot be sent (the process dies): the
    message that started the invocation is not acknowledged, comes back, and finds the run free."""
    context = context_for("ExportTableFunction")
    stack.continuations.send("orphan")
    with monkeypatch.context() as patch:
        patch.setattr(handler_module("ExportTableFunction"), "RESERVE_SECONDS", 10**6)
        patch.setattr(stack.continuations, "send", _die_completing(stack.continuations.send))
        died = _deliver_one(stack, context)
    assert died is not None
    assert len(died["batchItemFailures"]) == 1
    assert _run_status(stack, "orphan") == "running"

    redelivered_to = context_for("ExportTableFunction")  # another invocation, the lease is free
    assert _deliver_one(stack, redelivered_to) == {"batchItemFailures": []}
    assert _run_status(stack, "orphan") == "complete"
    assert _deliver_one(stack, context) is None


def test_a_continuation_that_finds_its_run_leased_comes_back_until_the_run_is_finished(
    stack: Stack,
) -> None:
    context = context_for("ExportTableFunction")
    owner = stack.runs.claim(new_run("held", stack.exports), "request-1", int(time.time()), 360)
    assert owner is not None
    stack.continuations.send("held")  # a duplicate, while request-1 is working on the run

    busy = _deliver_one(stack, context)
    assert busy is not None
    assert len(busy["batchItemFailures"]) == 1  # not acknowledged: request-1 might die

    finished = _run(stack, "held", "request-1", lambda: 60.0)
    assert finished.status == "complete"
    assert _deliver_one(stack, context) == {"batchItemFailures": []}  # finished: acknowledged
    assert _deliver_one(stack, context) is None


def test_a_continuation_whose_run_is_taken_over_comes_back(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invocation outlives its lease (it hung) and another takes the run over: the first
    writes nothing more, and its continuation is not acknowledged on the strength of the other."""
    context = context_for("ExportTableFunction")
    scan_pages = stack.items.scan_pages

    def taken_over_first(*args: Any, **kwargs: Any) -> Any:
        later = int(time.time()) + 3600  # request-1's lease has expired by then
        assert stack.runs.claim(new_run("hung", stack.exports), "request-2", later, 360)
        return scan_pages(*args, **kwargs)

    monkeypatch.setattr(stack.items, "scan_pages", taken_over_first)
    stack.continuations.send("hung")
    superseded = _deliver_one(stack, context)
    assert superseded is not None
    assert len(superseded["batchItemFailures"]) == 1
    assert _run_status(stack, "hung") == "running"  # request-2's to finish


# --- A failing segment stops the others before the invocation ends ------------------------------


def test_when_one_segment_fails_the_others_stop_before_the_invocation_raises(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segment 0's scan fails once every segment is reading; the others would read forever (a
    large table), so any that is still reading when ``run`` raises outlived the invocation."""
    everyone_reading = threading.Barrier(SEGMENTS, timeout=30)  # bound only if the pool is short
    test_over = threading.Event()
    reading: set[int] = set()
    failure = DependencyError(
        stack.items.table_name, "Scan", "InternalServerError", "injected", retryable=True
    )

    def scan_pages(segment: int, *_: Any, **__: Any) -> Iterator[ScanPage]:
        reading.add(segment)
        try:
            everyone_reading.wait()
            if segment == 0:
                raise failure
            while not test_over.is_set():
                yield ScanPage(items=[], next_key={"item_id": {"S": f"page-of-{segment}"}})
        finally:
            reading.discard(segment)

    monkeypatch.setattr(stack.items, "scan_pages", scan_pages)
    try:
        with pytest.raises(DependencyError) as raised:
            _run(stack, "failing", "request-1", lambda: 60.0)
        still_reading = set(reading)
    finally:
        test_over.set()  # lets segments that outlived the invocation end
    assert raised.value is failure
    assert still_reading == set()


# --- An upload S3 no longer knows: the segment starts again ------------------------------------


def _abort_uploads(stack: Stack) -> list[str]:
    """What the bucket's lifecycle rule does to an upload older than its days; their ids."""
    s3 = stack.admin.client("s3")
    bucket = stack.exports.bucket_name
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    for upload in uploads:
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return [upload["UploadId"] for upload in uploads]


def _s3_forgets(stack: Stack, upload_ids: list[str]) -> Stack:
    """``stack`` on sessions where S3 answers calls on these uploads as it does once they are
    aborted, with NoSuchUpload (moto raises a KeyError instead)."""
    aws = faults.FaultyAws()
    for operation in ("UploadPart", "CompleteMultipartUpload"):
        aws.inject(
            "s3",
            operation,
            faults.ServiceError(404, "NoSuchUpload"),
            when=lambda request: any(f"uploadId={id_}" in request.url for id_ in upload_ids),
        )
    return faults.rebuild_services(stack, aws, "items-test.upload-gone")


def test_a_run_whose_upload_was_aborted_restarts_that_segment_from_its_start(
    stack: Stack, large_table: int, api_calls: collections.Counter[str]
) -> None:
    checks = iter([1.0] * 8)
    first = _run(stack, "aborted", "request-1", lambda: next(checks, -1.0), segments=1)
    assert first.status == "continuing"
    assert api_calls["s3.UploadPart"] == 1
    aborted = _abort_uploads(stack)  # the continuation waited longer than the rule's days
    assert len(aborted) == 1
    stack = _s3_forgets(stack, aborted)

    resumed = _run(stack, "aborted", "request-2", lambda: 60.0, segments=1)
    assert resumed.status == "complete"
    assert api_calls["s3.CreateMultipartUpload"] == 2  # a new upload for the segment
    ids = [item["item_id"] for item in _exported_items(stack, resumed.manifest_key)]
    assert len(ids) == len(set(ids)) == large_table == resumed.items


def test_a_run_whose_upload_was_aborted_before_completing_restarts_that_segment(
    stack: Stack, large_table: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every part uploaded and saved, the invocation dies, the upload is aborted: S3's
    NoSuchUpload at completion starts the segment again instead of failing every retry."""
    with monkeypatch.context() as patch:
        patch.setattr(
            ExportsBucket, "complete_upload", _die_completing(ExportsBucket.complete_upload)
        )
        with pytest.raises(_DiedError):
            _run(stack, "aborted-late", "request-1", lambda: 60.0, segments=1)
    aborted = _abort_uploads(stack)
    assert len(aborted) == 1
    stack = _s3_forgets(stack, aborted)

    resumed = _run(stack, "aborted-late", "request-1", lambda: 60.0, segments=1)  # a retry
    assert resumed.status == "complete"
    ids = [item["item_id"] for item in _exported_items(stack, resumed.manifest_key)]
    assert len(ids) == len(set(ids)) == large_table == resumed.items
    assert _abort_uploads(stack) == []


def test_the_bucket_keeps_uploads_longer_than_a_continuation_can_wait(
    template: dict[str, Any],
) -> None:
    """A continuation waits at most the queue's retention, or, dead-lettered, the dead-letter
    queue's (counted from its first enqueue): the run's uploads must still be there then."""
    resources = template["Resources"]
    queue = resources["ExportTableQueue"]["Properties"]
    dead_letters = resources[queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
    longest_wait = max(
        queue["MessageRetentionPeriod"], dead_letters["Properties"]["MessageRetentionPeriod"]
    )
    rules = resources["ExportsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    abort_days = [
        rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        for rule in rules
        if "AbortIncompleteMultipartUpload" in rule
    ]
    assert abort_days, "abandoned uploads must be cleaned"
    assert min(abort_days) * 24 * 3600 > longest_wait


# --- Where a segment stops before it starts ------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_no_time_left_reads_nothing_and_continues(
    stack: Stack, api_calls: collections.Counter[str], seconds: float
) -> None:
    """Zero seconds left is out of time: no page is read that there is no time to write."""
    outcome = _run(stack, "no-time", "request-1", lambda: seconds, segments=2)
    assert outcome.status == "continuing"
    assert api_calls["dynamodb.Scan"] == 0
    assert _continuations(stack) == ["no-time"]


@pytest.mark.parametrize(
    ("progress", "stopped"),
    [
        (SegmentProgress(key="k", items=3, scanned=True, done=True), False),  # finished
        (SegmentProgress(key="k", upload_id="u", etags=["e"], items=3, scanned=True), True),
        (SegmentProgress(key="k"), True),  # another segment failed before this one began
    ],
    ids=["done", "stopped-before-completing", "stopped-before-reading"],
)
def test_a_finished_or_stopped_segment_is_handed_back_untouched(
    stack: Stack, api_calls: collections.Counter[str], progress: SegmentProgress, stopped: bool
) -> None:
    stop = threading.Event()
    if stopped:
        stop.set()
    segment = stack.exporter._segment(
        new_run("untouched", stack.exports, 1),
        0,
        owner="request-1",
        seconds_left=lambda: 60.0,
        part_bytes=MIN_PART_BYTES,
        stop=stop,
    )
    assert segment.export(progress) is progress
    assert api_calls == {}
