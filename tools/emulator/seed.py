"""Put sample items (plain JSON, as in ``events/seed.json``) into a DynamoDB table."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeSerializer

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SEED_FILE = Path(__file__).resolve().parents[2] / "events" / "seed.json"


def load_seed(path: Path = SEED_FILE) -> dict[str, list[dict[str, Any]]]:
    """Items by the logical id of the table they belong in. Numbers with a fraction or exponent
    become Decimal, never float, and whole ones int: either way DynamoDB gets every digit."""
    return json.loads(path.read_text(), parse_float=Decimal)  # type: ignore[no-any-return]


class ExactNumbers(TypeSerializer):
    """boto3's serializer, except that each number is sent as its own exact decimal text.

    boto3 fits every number into its ``DYNAMODB_CONTEXT``, whose traps refuse numbers DynamoDB
    stores: ``1E+40`` written out in digits, or ``1.50`` followed by forty zeros (Rounded: Decimal
    counts the zeros DynamoDB trims), and 38-digit numbers near ``1E-130`` (Underflow: its Emin is
    -128). Range and precision are DynamoDB's to check: it answers a ValidationException.
    """

    def _serialize_n(self, value: int | Decimal) -> str:
        number = Decimal(value)
        if not number.is_finite():
            raise TypeError("Infinity and NaN not supported")
        return str(number)


def put_items(dynamodb: DynamoDBClient, table_name: str, items: list[dict[str, Any]]) -> None:
    """Write ``items`` 25 at a time (BatchWriteItem's limit), retrying what DynamoDB sends back."""
    serializer = ExactNumbers()
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
