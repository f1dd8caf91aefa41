"""The whole-table export: every item exactly once, in valid gzip JSON Lines, resumable."""

import base64
import collections
import gzip
import json
import random
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from app.services import ExportsBucket, LeaseLostError, SegmentProgress
from app.table_export import MIN_PART_BYTES, SEGMENTS, _GzipPart, new_run
from tests.conftest import Stack, load_event
from tests.handler_calls import call, context_for
from tools.seed import load_seed, put_items


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


def test_a_second_trigger_for_the_same_schedule_joins_the_finished_run(stack: Stack) -> None:
    context = context_for("ExportTableFunction")
    event = load_event("ExportTableFunction/scheduled")
    first = call("ExportTableFunction", event, stack, context)
    objects = stack.objects
    assert first["run_id"] == "scheduled-2026-11-23T02-00-00Z"
    second = call("ExportTableFunction", event, stack, context)
    assert second["status"] == "busy"  # finished runs are never claimed again
    assert objects == stack.objects


def test_a_segment_that_fits_one_part_is_one_conditional_put(
    stack: Stack, api_calls: collections.Counter[str]
) -> None:
    outcome = _run(stack, "small", "request-1", lambda: 60.0)
    assert outcome.status == "complete"
    assert api_calls["s3.CreateMultipartUpload"] == 0
    assert api_calls["s3.PutObject"] == SEGMENTS + 1  # one object a segment, and the manifest
    assert api_calls["dynamodb.UpdateItem"] == 2  # the lease taken with the run, and the finish
    assert len(_exported_items(stack, outcome.manifest_key)) == len(load_seed()["ItemsTable"])


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
    first = _run(stack, "big", "request-1", lambda: next(checks, -1.0), segments=1)
    assert first.status == "continuing"
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
    assert stack.runs.claim(run, "request-1", now=1000, lease_seconds=360) == run  # recorded
    assert stack.runs.claim(run, "request-2", now=1100, lease_seconds=360) is None
    assert stack.runs.claim(run, "request-1", now=1100, lease_seconds=360) is not None

    # request-1 outlives its lease (the process hung); request-2 takes the run over.
    progressed = SegmentProgress(key=run.segments[0].key, items=7, resume_key={"k": "v"})
    assert stack.runs.claim(run, "request-2", now=1500, lease_seconds=360) is not None
    with pytest.raises(LeaseLostError):
        stack.runs.save_segment("shared", "request-1", 0, SegmentProgress(key="x"))
    stack.runs.release("shared", "request-2", [progressed, *run.segments[1:]])
    resumed = stack.runs.claim(run, "request-3", now=1501, lease_seconds=360)
    assert resumed is not None
    assert resumed.segments == [progressed, *run.segments[1:]]  # saved progress, not ``run``'s


def test_finished_runs_are_never_claimed_again(stack: Stack) -> None:
    run = new_run("done", stack.exports)
    assert stack.runs.claim(run, "request-1", now=1000, lease_seconds=360) is not None
    stack.runs.finish("done", "request-1", "manifest.json")
    assert stack.runs.claim(run, "request-2", now=5000, lease_seconds=360) is None


def test_parts_below_s3s_minimum_are_refused(stack: Stack) -> None:
    with pytest.raises(ValueError, match="at least"):
        _run(stack, "tiny", "request-1", lambda: 60.0, part_bytes=MIN_PART_BYTES - 1)
