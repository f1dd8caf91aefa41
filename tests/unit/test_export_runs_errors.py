"""Which run-table call failed, as the operator's log line names it (mutation survivors): each
ExportRunsTable write that DynamoDB refuses for a reason other than its condition. botocore's
Stubber answers in place of DynamoDB: nothing is sent."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from app.services import (
    DependencyError,
    ExportRun,
    ExportRunsTable,
    LeaseLostError,
    SegmentProgress,
    UnknownSegmentError,
    export_runs,
)

pytestmark = pytest.mark.unit

TABLE = "runs-table"
RUN = ExportRun("r", [SegmentProgress(key="part-0"), SegmentProgress(key="part-1")])
PROGRESS = SegmentProgress(key="part-0", items=2)


@pytest.fixture
def stubbed() -> Iterator[tuple[ExportRunsTable, Stubber]]:
    runs = ExportRunsTable(boto3.Session(), TABLE)  # keys and region: tests/conftest.py
    with Stubber(runs._client) as stubber:
        yield runs, stubber
        stubber.assert_no_pending_responses()


WRITES: list[tuple[str, Callable[[ExportRunsTable], Any]]] = [
    ("claim", lambda runs: runs.claim(RUN, "owner", now=1000, lease_seconds=60)),
    ("save_segment", lambda runs: runs.save_segment("r", "owner", 0, PROGRESS, segment_lease=True)),
    ("open_fan_out", lambda runs: runs.open_fan_out(RUN, now=1000)),
    ("mark_dispatched", lambda runs: runs.mark_dispatched("r")),
    ("claim_segment", lambda runs: runs.claim_segment("r", 0, "owner", 1000, 60)),
    ("release_segment", lambda runs: runs.release_segment("r", "owner", 0, PROGRESS)),
    ("finish_segment", lambda runs: runs.finish_segment("r", "owner", 0, PROGRESS)),
    ("complete_fanned_out", lambda runs: runs.complete_fanned_out("r", "manifest.json")),
    ("release", lambda runs: runs.release("r", "owner", RUN.segments)),
    ("finish", lambda runs: runs.finish("r", "owner", "manifest.json", RUN.segments)),
]


@pytest.mark.parametrize(("name", "write"), WRITES, ids=[name for name, _ in WRITES])
def test_a_refused_write_is_named_by_its_table_and_operation(
    stubbed: tuple[ExportRunsTable, Stubber], name: str, write: Callable[[ExportRunsTable], Any]
) -> None:
    runs, stubber = stubbed
    stubber.add_client_error("update_item", "ValidationException", http_status_code=400)

    with pytest.raises(DependencyError) as raised:
        write(runs)

    assert (raised.value.resource, raised.value.operation) == (TABLE, "UpdateItem"), name
    assert (raised.value.code, raised.value.retryable) == ("ValidationException", False)


def test_a_failed_claim_without_the_stored_item_is_leased_elsewhere(
    stubbed: tuple[ExportRunsTable, Stubber],
) -> None:
    """The answer carries the item only when DynamoDB returns it (ALL_OLD): without it, nothing
    says the run is complete, so the claim is refused as for a lease held."""
    runs, stubber = stubbed
    stubber.add_client_error("update_item", "ConditionalCheckFailedException")

    assert runs.claim(RUN, "owner", now=1000, lease_seconds=60) is None


def test_a_failed_segment_claim_without_the_stored_item_is_no_segment(
    stubbed: tuple[ExportRunsTable, Stubber],
) -> None:
    runs, stubber = stubbed
    stubber.add_client_error("update_item", "ConditionalCheckFailedException")

    with pytest.raises(UnknownSegmentError) as raised:
        runs.claim_segment("r", 3, "owner", 1000, 60)
    assert str(raised.value) == "run 'r' has no segment 3"


CHECKPOINTS: list[tuple[str, Callable[[ExportRunsTable], Any]]] = [
    (
        "save_segment",
        lambda runs: runs.save_segment("r", "owner", 0, PROGRESS, segment_lease=False),
    ),
    ("release_segment", lambda runs: runs.release_segment("r", "owner", 0, PROGRESS)),
    ("release", lambda runs: runs.release("r", "owner", RUN.segments)),
]


@pytest.mark.parametrize(("name", "write"), CHECKPOINTS, ids=[name for name, _ in CHECKPOINTS])
def test_a_checkpoint_asks_for_no_answer(
    stubbed: tuple[ExportRunsTable, Stubber], name: str, write: Callable[[ExportRunsTable], Any]
) -> None:
    """DynamoDB would send the whole run item back (up to 400 KB) with every checkpoint."""
    runs, stubber = stubbed
    expected = dict.fromkeys(
        [
            "TableName",
            "Key",
            "UpdateExpression",
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
        ],
        ANY,
    )
    stubber.add_response("update_item", {}, {**expected, "ReturnValues": "NONE"})

    write(runs)


def test_a_lost_lease_names_its_run(stubbed: tuple[ExportRunsTable, Stubber]) -> None:
    runs, stubber = stubbed
    stubber.add_client_error("update_item", "ConditionalCheckFailedException", http_status_code=400)

    with pytest.raises(LeaseLostError) as raised:
        runs.save_segment("run-7", "owner", 0, PROGRESS, segment_lease=False)

    assert raised.value.args == ("run-7",)


def test_a_run_stored_with_only_its_segments_reads_as_running_with_no_start() -> None:
    """The least a stored run holds: no status, no created_at, no fan-out set."""
    progress = {"key": "part-0", "upload_id": None, "etags": [], "resume_key": None, "items": 0}
    attributes = {
        "total_segments": {"N": "1"},
        "segment_0": {"S": json.dumps({**progress, "scanned": False, "done": False})},
    }

    assert export_runs._stored_run("r", attributes) == ExportRun(
        "r", [SegmentProgress(key="part-0")], complete=False, manifest_key=None, created_at=None
    )
