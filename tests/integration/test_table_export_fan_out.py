"""Fanned-out table exports: one invocation per segment, and every item still exactly once.

The queue here is ExportTableQueue itself, played by :class:`_EventSource` the way Lambda's event
source mapping plays it (BatchSize 1: receive, invoke ``handle``, delete unless reported failed).
An invocation killed at any step leaves its message unacknowledged and its segment's lease held;
the event source hands the message out again after the visibility timeout, by which time the
lease has expired. Parts are scaled down (S3's 5 MiB minimum, in moto and in the export alike) so
that a few hundred items make multipart uploads of several parts per segment.
"""

import base64
import collections
import json
import random
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import moto.s3.models
import pytest

from app.operations import TableExporter, TableExportOutcome
from app.operations import export_table as export_table_operation
from app.operations.read_limit import TokenBucket
from app.services import DependencyError, ScanPage
from bench.fast_moto import fast_scan
from tests.conftest import REGION, Stack
from tests.handler_calls import context_for, handler_module
from tests.table_exports import assert_exported_once
from tools.emulator.seed import load_seed, put_items
from tools.emulator.sqs_records import receive_records

SMALL_PART = 64 * 1024
VISIBILITY_SECONDS = 1800  # ExportTableQueue's; longer than a segment's lease (timeout + 60 s)
_CONTEXT = context_for("ExportTableFunction")
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class _KilledError(BaseException):
    """The invocation is gone here (killed, out of memory, timed out): nothing of it runs on.

    A BaseException, as a kill is no error the handler could report: the record stays
    unacknowledged, and the lease stays held."""


@dataclass
class _Clock:
    """The epoch seconds the export's leases are counted in: real ones plus what has passed."""

    offset: float = 0.0

    def time(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(export_table_operation, "time", SimpleNamespace(time=clock.time))
    return clock


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", SMALL_PART)
    monkeypatch.setattr(export_table_operation, "MIN_PART_BYTES", SMALL_PART)


@pytest.fixture(autouse=True)
def _fast_scan() -> Iterator[None]:
    """moto's Scan serializer walks every attribute (milliseconds an item): the benchmark's faster
    encoding of the same pages (``bench/fast_moto.py``, checked against moto's own)."""
    with fast_scan():
        yield


@pytest.fixture
def table(stack: Stack) -> list[str]:
    """About 330 KB of incompressible items besides the seed: several parts a segment. Few
    items (moto's scan walks the whole table for every page), and small pages."""
    rng = random.Random(11)  # noqa: S311 - test data, not secrets
    items = [
        {"item_id": f"bulk-{index:04d}", "blob": base64.b64encode(rng.randbytes(2400)).decode()}
        for index in range(100)
    ]
    put_items(stack.admin.client("dynamodb"), stack.items.table_name, items)
    return sorted([item["item_id"] for item in items + load_seed()["ItemsTable"]])


def _fanned_out(stack: Stack, segments: int = 2, part_bytes: int = SMALL_PART) -> TableExporter:
    return replace(
        stack.exporter, fan_out=True, segments=segments, part_bytes=part_bytes, page_items=6
    )


@dataclass
class _EventSource:
    """ExportTableQueue's event source mapping (BatchSize 1), one delivery at a time."""

    stack: Stack
    exporter: TableExporter
    clock: _Clock
    kills: int = 0
    responses: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Any:
        context = replace(_CONTEXT, aws_request_id=str(uuid.uuid4()))  # a new invocation
        return handler_module("ExportTableFunction").handle(event, context, exporter=self.exporter)

    def start(self, run_id: str) -> dict[str, Any]:
        """An operator's ``{"run_id": ...}``; Lambda retries an invocation that died."""
        for _ in range(5):
            try:
                response: dict[str, Any] = self.invoke({"run_id": run_id})
            except _KilledError:
                self.kills += 1
                continue
            return response
        raise AssertionError("the start never got through")

    def deliver_one(self) -> bool:
        sqs = self.stack.admin.client("sqs")
        url = self.stack.continuations.queue_url
        records = receive_records(sqs, url, REGION, MaxNumberOfMessages=1, VisibilityTimeout=0)
        if not records:
            return False
        record = records[0]
        try:
            response = self.invoke({"Records": [record]})
        except _KilledError:
            self.kills += 1
            self.clock.offset += VISIBILITY_SECONDS  # the message comes back after this
            return True
        self.responses.append(response)
        if response["batchItemFailures"]:
            self.clock.offset += VISIBILITY_SECONDS
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record["receiptHandle"])
        return True

    def drain(self, most: int = 100) -> None:
        for _ in range(most):
            if not self.deliver_one():
                return
        raise AssertionError(f"the queue still holds messages after {most} deliveries")


def _assert_exported_once(stack: Stack, run_id: str, ids: list[str], segments: int) -> None:
    """Exported once (:func:`tests.table_exports.assert_exported_once`), and the run complete."""
    manifest_key = assert_exported_once(
        stack.admin.client("s3"),
        stack.exports.bucket_name,
        f"{stack.exports.prefix}table/{run_id}/",
        ids,
        segments,
    )
    stored = stack.admin.client("dynamodb").get_item(
        TableName=stack.runs.table_name, Key={"run_id": {"S": run_id}}
    )["Item"]
    assert (stored["status"]["S"], stored["manifest_key"]["S"]) == ("complete", manifest_key)


def test_a_start_sends_one_message_per_segment_and_each_runs_on_its_own(
    stack: Stack, small_parts: None, table: list[str], clock: _Clock
) -> None:
    exporter = _fanned_out(stack, segments=2)
    source = _EventSource(stack, exporter, clock)
    started = source.start("fan")
    assert (started["status"], started["run_id"]) == ("fanned-out", "fan")
    source.drain()
    _assert_exported_once(stack, "fan", table, segments=2)
    outcomes = [record for record in source.responses if record["batchItemFailures"]]
    assert outcomes == []
    # Several parts a segment: the multipart path, not one put each.
    objects = json.loads(
        stack.admin.client("s3")
        .get_object(Bucket=stack.exports.bucket_name, Key="exports/table/fan/manifest.json")["Body"]
        .read()
    )["objects"]
    assert all(entry["parts"] >= 2 for entry in objects)


def test_a_second_trigger_of_a_dispatched_run_sends_nothing_and_a_finished_run_answers_as_such(
    stack: Stack, table: list[str], clock: _Clock
) -> None:
    exporter = _fanned_out(stack, part_bytes=export_table_operation.MIN_PART_BYTES)
    assert exporter.start("sched").status == "fanned-out"
    assert exporter.start("sched") == TableExportOutcome("sched", "running")
    source = _EventSource(stack, exporter, clock)
    source.drain()
    assert len(source.responses) == 2  # the two segments' messages, no more
    again = exporter.start("sched", resend=True)
    assert (again.status, again.items) == ("complete", len(table))


def _created_at(stack: Stack, run_id: str) -> int:
    stored = stack.admin.client("dynamodb").get_item(
        TableName=stack.runs.table_name, Key={"run_id": {"S": run_id}}
    )["Item"]
    return int(stored["created_at"]["N"])


def test_each_answer_of_a_fanned_out_run_says_exactly_where_it_stands(
    stack: Stack, table: list[str]
) -> None:
    """Outcomes compare without ``started_at`` (it is not part of the handler's answer), so it is
    checked apart: the run-age alarm reads it from every answer of a run still going."""
    exporter = _fanned_out(stack, part_bytes=export_table_operation.MIN_PART_BYTES)

    started = exporter.start("walk")
    created_at = _created_at(stack, "walk")
    assert (started, started.started_at) == (TableExportOutcome("walk", "fanned-out"), created_at)
    running = exporter.start("walk")
    assert (running, running.started_at) == (TableExportOutcome("walk", "running"), created_at)

    first = _segment(exporter, "walk", 0, "request-0")
    assert first == TableExportOutcome("walk", "segment-done", first.items, segment=0)
    assert 0 < first.items < len(table)
    running = exporter.start("walk")
    assert (running, running.started_at) == (
        TableExportOutcome("walk", "running", first.items),
        created_at,
    )
    resent = exporter.start("walk", resend=True)  # one message, for the unfinished segment
    assert (resent, resent.started_at) == (
        TableExportOutcome("walk", "fanned-out", first.items),
        created_at,
    )

    manifest_key = f"{stack.exports.prefix}table/walk/manifest.json"
    complete = TableExportOutcome("walk", "complete", len(table), manifest_key)
    assert _segment(exporter, "walk", 1, "request-1") == replace(complete, segment=1)
    assert _segment(exporter, "walk", 1, "request-again") == replace(complete, segment=1)
    assert exporter.start("walk") == complete
    assert exporter.start("walk", resend=True) == complete
    assert _segment(exporter, "walk", 7, "request-7") == TableExportOutcome(
        "walk", "unknown", segment=7
    )


def test_a_fan_out_of_an_in_process_run_s_id_is_busy(stack: Stack) -> None:
    runs, exports = stack.runs, stack.exports
    assert runs.claim(export_table_operation.new_run("flat", exports, 2), "r", 1000, 60)
    exporter = _fanned_out(stack, part_bytes=export_table_operation.MIN_PART_BYTES)
    assert exporter.start("flat") == TableExportOutcome("flat", "busy")


def test_a_run_expires_thirty_days_after_it_began_whichever_way_it_runs(stack: Stack) -> None:
    """``expires_at`` is the table's TTL attribute (template.yaml): set once, at the start."""
    runs, exports = stack.runs, stack.exports
    assert runs.claim(export_table_operation.new_run("flat", exports, 2), "r", 1000, 60)
    assert runs.open_fan_out(export_table_operation.new_run("fan", exports, 2), 2000)
    assert runs.claim(export_table_operation.new_run("flat", exports, 2), "r", 5000, 60)
    table = stack.admin.client("dynamodb")
    for run_id, started in (("flat", 1000), ("fan", 2000)):
        stored = table.get_item(TableName=runs.table_name, Key={"run_id": {"S": run_id}})["Item"]
        assert int(stored["expires_at"]["N"]) == started + 30 * 24 * 3600, run_id


@pytest.mark.parametrize("run_id", ["never-opened", "flat"])
def test_only_a_fan_out_is_marked_dispatched(stack: Stack, run_id: str) -> None:
    """The update's condition: marking a run that is not a fan-out (gone, or in-process) fails
    rather than writing a stray or half-converted run."""
    runs = stack.runs
    assert runs.claim(export_table_operation.new_run("flat", stack.exports, 2), "r", 1000, 60)
    table = stack.admin.client("dynamodb")
    key = {"run_id": {"S": run_id}}
    before = table.get_item(TableName=runs.table_name, Key=key).get("Item")
    with pytest.raises(DependencyError, match="ConditionalCheckFailed"):
        runs.mark_dispatched(run_id)
    assert table.get_item(TableName=runs.table_name, Key=key).get("Item") == before


# --- Killed at every step ------------------------------------------------------------------------

_STEPS = {
    "runs": (
        "open_fan_out",
        "mark_dispatched",
        "claim_segment",
        "save_segment",
        "release_segment",
        "finish_segment",
        "complete_fanned_out",
    ),
    "exports": ("put_new", "start_upload", "upload_part", "complete_upload"),
    "continuations": ("send_segment",),
}


@dataclass
class _Kill:
    """Counts every step (a service call) of the export and kills the invocation at one."""

    at: int | None = None
    after: bool = False
    steps: list[str] = field(default_factory=list)

    def install(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
        for service, methods in _STEPS.items():
            target = getattr(stack, service)
            for method in methods:
                monkeypatch.setattr(target, method, self._wrap(method, getattr(target, method)))

    def _wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            number = len(self.steps)
            self.steps.append(name)
            if number == self.at and not self.after:
                raise _KilledError(name)
            result = call(*args, **kwargs)
            if number == self.at:
                raise _KilledError(name)
            return result

        return step


@pytest.mark.usefixtures("small_parts")
@pytest.mark.parametrize(
    "part_bytes", [SMALL_PART, 4 * 1024 * 1024], ids=["multipart", "one-put-a-segment"]
)
def test_an_invocation_killed_before_or_after_any_step_loses_and_doubles_nothing(
    stack: Stack,
    table: list[str],
    clock: _Clock,
    monkeypatch: pytest.MonkeyPatch,
    part_bytes: int,
) -> None:
    exporter = _fanned_out(stack, part_bytes=part_bytes)
    kill = _Kill()
    kill.install(stack, monkeypatch)
    clean = _EventSource(stack, exporter, clock)
    clean.start("clean")
    clean.drain()
    _assert_exported_once(stack, "clean", table, segments=2)
    steps = list(kill.steps)
    assert {"finish_segment", "complete_fanned_out", "send_segment"} <= set(steps)
    if part_bytes == SMALL_PART:
        assert steps.count("upload_part") >= 4
    else:
        assert "start_upload" not in steps

    # Each kind of step, where it first and last happens (a segment's first part and its last,
    # the finish that leaves the run open and the one that completes it...), before and after.
    where = {name: [n for n, step in enumerate(steps) if step == name] for name in set(steps)}
    chosen = sorted({n for numbers in where.values() for n in (numbers[0], numbers[-1])})
    for number in chosen:
        step = steps[number]
        for after in (False, True):
            run_id = f"kill-{number}-{'after' if after else 'before'}-{step}"
            kill.at, kill.after, kill.steps = number, after, []
            source = _EventSource(stack, exporter, clock)
            source.start(run_id)
            source.drain()
            assert source.kills == 1, run_id
            _assert_exported_once(stack, run_id, table, segments=2)


@pytest.mark.parametrize("segments", [1, 3])
def test_a_resent_run_whose_segments_all_finished_writes_its_manifest(
    stack: Stack, table: list[str], clock: _Clock, monkeypatch: pytest.MonkeyPatch, segments: int
) -> None:
    """The last segment died between its finish and the manifest, and its message went to the
    dead-letter queue: the operator's resend sends one message, for a segment every run has."""
    exporter = _fanned_out(stack, segments, part_bytes=export_table_operation.MIN_PART_BYTES)
    source = _EventSource(stack, exporter, clock)
    assert source.start("lone")["status"] == "fanned-out"
    complete_fanned_out = stack.runs.complete_fanned_out

    def dies(*_args: object) -> None:
        raise _KilledError("complete_fanned_out")

    monkeypatch.setattr(stack.runs, "complete_fanned_out", dies)
    for _ in range(segments):
        assert source.deliver_one()
    assert source.kills == 1
    stack.admin.client("sqs").purge_queue(QueueUrl=stack.continuations.queue_url)  # to the DLQ
    monkeypatch.setattr(stack.runs, "complete_fanned_out", complete_fanned_out)

    assert exporter.start("lone", resend=True).status == "fanned-out"
    source.drain()
    assert len(source.responses) == segments  # the segments that lived, then the resent one
    _assert_exported_once(stack, "lone", table, segments)


# --- Concurrent segments ------------------------------------------------------------------------


def _segment(exporter: TableExporter, run_id: str, index: int, owner: str) -> TableExportOutcome:
    return exporter.run_segment(run_id, index, owner, seconds_left=lambda: 60.0, lease_seconds=360)


def test_segments_that_finish_at_the_same_moment_write_the_manifest_once(
    stack: Stack, table: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    segments = 4
    exporter = _fanned_out(stack, segments, export_table_operation.MIN_PART_BYTES)
    assert exporter.start("race").status == "fanned-out"
    all_done = threading.Barrier(segments, timeout=30)
    finish_segment = stack.runs.finish_segment

    def finish_together(*args: Any, **kwargs: Any) -> Any:
        all_done.wait()  # every segment's last write at once
        return finish_segment(*args, **kwargs)

    monkeypatch.setattr(stack.runs, "finish_segment", finish_together)
    # Four invocations at once, each on a thread of its own: not the exporter's own pool, whose
    # threads a segment may need while the others wait at the barrier.
    with ThreadPoolExecutor(max_workers=segments) as invocations:
        futures = [
            invocations.submit(_segment, exporter, "race", index, f"request-{index}")
            for index in range(segments)
        ]
        outcomes = sorted(future.result().status for future in futures)
    assert outcomes == ["complete"] + ["segment-done"] * (segments - 1)
    _assert_exported_once(stack, "race", table, segments)


def test_a_duplicate_of_a_segment_at_work_is_busy_and_its_redelivery_after_it_is_done(
    stack: Stack, table: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = _fanned_out(stack, 2, export_table_operation.MIN_PART_BYTES)
    exporter.start("dup")
    scan_pages = stack.items.scan_pages
    duplicates: list[TableExportOutcome] = []

    def with_a_duplicate_delivered(*args: Any, **kwargs: Any) -> Iterator[ScanPage]:
        duplicates.append(_segment(exporter, "dup", 0, "request-duplicate"))
        return scan_pages(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(stack.items, "scan_pages", with_a_duplicate_delivered)
        first = _segment(exporter, "dup", 0, "request-first")
    assert duplicates == [TableExportOutcome("dup", "busy", segment=0)]
    assert first.status == "segment-done"
    again = _segment(exporter, "dup", 0, "request-redelivered")  # acknowledged, nothing redone
    assert (again.status, again.segment) == ("segment-done", 0)
    last = _segment(exporter, "dup", 1, "request-last")
    assert last.status == "complete"
    _assert_exported_once(stack, "dup", table, segments=2)


def test_a_message_for_no_segment_is_dropped_not_retried(stack: Stack) -> None:
    exporter = _fanned_out(stack, part_bytes=export_table_operation.MIN_PART_BYTES)
    exporter.start("known")
    assert _segment(exporter, "known", 7, "r").status == "unknown"
    assert _segment(exporter, "never-started", 0, "r").status == "unknown"
    assert exporter.run("known", "r", seconds_left=lambda: 60.0, lease_seconds=60).status == (
        "busy"  # an in-process continuation never works on a fanned-out run
    )


# --- Flat memory, and a bounded read rate -------------------------------------------------------


def test_a_segment_holds_one_page_at_a_time(
    stack: Stack, small_parts: None, table: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = _fanned_out(stack, 1)
    exporter.start("flat")
    scan_pages = stack.items.scan_pages
    alive_at_each_read: list[int] = []

    def watched(*args: Any, **kwargs: Any) -> Iterator[ScanPage]:
        pages: list[weakref.ref[ScanPage]] = []
        for page in scan_pages(*args, **kwargs):
            alive_at_each_read.append(sum(ref() is not None for ref in pages))
            pages.append(weakref.ref(page))
            yield page
            del page

    monkeypatch.setattr(stack.items, "scan_pages", watched)
    assert _segment(exporter, "flat", 0, "r").status == "complete"
    assert len(alive_at_each_read) > 5
    assert max(alive_at_each_read) == 0  # each page was let go before the next was read


def test_a_read_limit_spaces_the_pages_by_the_capacity_they_consumed(
    stack: Stack, small_parts: None, table: list[str], api_calls: collections.Counter[str]
) -> None:
    slept: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    exporter = replace(
        _fanned_out(stack, 1),
        read_limit=lambda: TokenBucket(0.5, clock=lambda: now[0], sleep=sleep),
    )
    exporter.start("limited")
    outcome = _segment(exporter, "limited", 0, "r")
    assert outcome.status == "complete"
    pages = api_calls["dynamodb.Scan"]
    assert pages > 5
    # moto counts every page as 1.0 unit: at 0.5 a second, 2 s a page, less the half-unit burst.
    assert sum(slept) == pytest.approx(2.0 * pages - 1.0)


# --- The settings in the template --------------------------------------------------------------


def test_the_template_sets_the_segments_the_fan_out_the_limit_and_the_concurrency(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    function = template["Resources"]["ExportTableFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    assert variables["TABLE_EXPORT_SEGMENTS"] == {"Ref": "TableExportSegments"}
    assert variables["TABLE_EXPORT_FAN_OUT"] == {"Ref": "TableExportFanOut"}
    assert variables["TABLE_EXPORT_READ_UNITS_PER_SEGMENT"] == {
        "Ref": "TableExportReadUnitsPerSegment"
    }
    # Segment messages beyond the handler's cap would be refused: the template caps them alike.
    assert (
        parameters["TableExportSegments"]["MaxValue"]
        == handler_module("ExportTableFunction").MAX_SEGMENTS
    )
    scaling = function["Events"]["Continuations"]["Properties"]["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": {"Ref": "TableExportConcurrency"}}
    assert parameters["TableExportConcurrency"]["MinValue"] == 2  # Lambda's own minimum


def test_a_segment_out_of_time_saves_its_place_gives_its_lease_back_and_finishes_once(
    stack: Stack, small_parts: None, table: list[str], clock: _Clock
) -> None:
    exporter = _fanned_out(stack, segments=2)
    source = _EventSource(stack, exporter, clock)
    assert source.start("slow")["status"] == "fanned-out"
    checks = iter([1.0] * 6)  # six pages' worth of time, then none

    first = exporter.run_segment(
        "slow", 0, "invocation-1", seconds_left=lambda: next(checks, -1.0), lease_seconds=900
    )

    assert (first.status, first.segment) == ("continuing", 0)
    assert first.items > 0
    assert first.started_at == _created_at(stack, "slow")  # what the run-age alarm reads
    # Given back with its place saved: another invocation claims it at once, from there.
    claimed = stack.runs.claim_segment("slow", 0, "invocation-2", int(clock.time()), 900)
    assert claimed is not None
    saved = claimed.segments[0]
    assert (saved.items, saved.done) == (first.items, False)
    assert saved.upload_id is not None
    assert saved.etags
    assert saved.resume_key is not None
    stack.runs.release_segment("slow", "invocation-2", 0, saved)
    # Its own message, the other segment's and the continuation: none found the segment busy.
    source.drain()
    assert [response for response in source.responses if response["batchItemFailures"]] == []
    _assert_exported_once(stack, "slow", table, segments=2)
