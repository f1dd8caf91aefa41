"""Put sample items (plain JSON, as in ``events/seed.json``) into a DynamoDB table."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEED_FILE = Path(__file__).resolve().parent.parent / "events" / "seed.json"


def load_seed(path: Path = SEED_FILE) -> dict[str, list[dict[str, Any]]]:
    """Items by the logical id of the table they belong in. Numbers become Decimal for DynamoDB."""
    return json.loads(path.read_text(), parse_float=Decimal)  # type: ignore[no-any-return]


def put_items(dynamodb: DynamoDBClient, table_name: str, items: list[dict[str, Any]]) -> None:
    """Write ``items`` 25 at a time (BatchWriteItem's limit), retrying what DynamoDB sends back."""
    serializer = TypeSerializer()
    requests: list[Any] = [
        {
            "PutRequest": {
                "Item": {name: serializer.serialize(value) for name, value in item.items()}
            }
        }
        for item in items
    ]
    while requests:
        batch, requests = requests[:25], requests[25:]
        response = dynamodb.batch_write_item(RequestItems={table_name: batch})
        requests += response.get("UnprocessedItems", {}).get(table_name, [])
