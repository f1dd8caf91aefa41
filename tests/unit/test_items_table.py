"""What the items table makes of DynamoDB's Scan answers as botocore parses them (the path a body
the before-parse hook cannot read takes), and how a refused read is named. botocore's Stubber
answers in place of DynamoDB: nothing is sent, and no hook runs."""

from collections.abc import Callable, Iterator

import boto3
import pytest
from botocore.stub import Stubber

from app.services import DependencyError, ItemsTable, ScanPage

pytestmark = pytest.mark.unit

TABLE = "items-table"
SCAN = {"TableName": TABLE, "Segment": 0, "TotalSegments": 1, "ReturnConsumedCapacity": "TOTAL"}


@pytest.fixture
def stubbed() -> Iterator[tuple[ItemsTable, Stubber]]:
    items = ItemsTable(boto3.Session(), TABLE)  # keys and region: tests/conftest.py
    with Stubber(items._client) as stubber:
        yield items, stubber
        stubber.assert_no_pending_responses()


def test_a_page_without_items_or_capacity_is_empty_and_free(
    stubbed: tuple[ItemsTable, Stubber],
) -> None:
    """DynamoDB leaves ``Items`` out of a count-only page, and ``ConsumedCapacity`` out when it
    was not asked for."""
    items, stubber = stubbed
    stubber.add_response("scan", {"Count": 0, "ScannedCount": 0}, SCAN)

    assert list(items.scan_pages(0, 1)) == [ScanPage([], None, 0.0)]


def test_a_page_s_items_key_and_capacity_are_taken_as_given(
    stubbed: tuple[ItemsTable, Stubber],
) -> None:
    items, stubber = stubbed
    stubber.add_response(
        "scan",
        {
            "Items": [{"item_id": {"S": "a"}, "price": {"N": "12.50"}}],
            "LastEvaluatedKey": {"item_id": {"S": "a"}},
            "ConsumedCapacity": {"TableName": TABLE, "CapacityUnits": 2.5},
        },
        SCAN,
    )

    page = next(items.scan_pages(0, 1))

    assert page == ScanPage(
        [{"item_id": "a", "price": page.items[0]["price"]}], {"item_id": {"S": "a"}}, 2.5
    )
    assert str(page.items[0]["price"]) == "12.50"


READS: list[tuple[str, str, Callable[[ItemsTable], object]]] = [
    ("scan", "Scan", lambda items: next(items.scan_pages(0, 1))),
    ("get_item", "GetItem", lambda items: items.get("42")),
]


@pytest.mark.parametrize(("method", "operation", "read"), READS, ids=[r[0] for r in READS])
def test_a_refused_read_is_named_by_its_table_and_operation(
    stubbed: tuple[ItemsTable, Stubber],
    method: str,
    operation: str,
    read: Callable[[ItemsTable], object],
) -> None:
    items, stubber = stubbed
    stubber.add_client_error(method, "AccessDeniedException", http_status_code=400)

    with pytest.raises(DependencyError) as raised:
        read(items)

    assert (raised.value.resource, raised.value.operation) == (TABLE, operation)
    assert raised.value.code == "AccessDeniedException"
