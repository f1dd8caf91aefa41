"""Tables of realistic items for the table export: generated, then seeded fast.

Items look like the seed's (``events/seed.json``): a name, a description, a price, stock, tags,
dimensions, a supplier, a date and a flag: 280-520 bytes of JSON each (390 on average), the same
in every run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer

from tools.emulator.local_lambda import LocalAws

_VOCABULARY = (
    "espresso grinder kettle jug filter paper steel ceramic glass oak walnut copper brass matte "
    "burr conical flat manual electric compact travel barista cold brew pour over french press "
    "scale timer thermometer tamper basket portafilter dosing cup saucer tray canister airtight "
    "vacuum insulated double wall stainless black white graphite sage cream olive large small"
)
_WORDS = _VOCABULARY.split()
_TAGS = ("coffee", "kitchen", "tea", "gift", "travel", "outdoor", "office", "new", "sale", "eco")
BATCH = 25
"""BatchWriteItem's limit."""


def items(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``count`` items with ids ``item-00000000``...; deterministic for a given seed."""
    rng = random.Random(seed)
    for number in range(count):
        yield {
            "item_id": f"item-{number:08d}",
            "name": " ".join(rng.choices(_WORDS, k=3)).capitalize(),
            "description": " ".join(rng.choices(_WORDS, k=rng.randint(4, 28))).capitalize() + ".",
            "price": Decimal(rng.randint(100, 50000)) / 100,
            "stock": rng.randint(0, 500),
            "tags": rng.sample(_TAGS, rng.randint(1, 4)),
            "dimensions": {
                "height_cm": rng.randint(5, 60),
                "width_cm": Decimal(rng.randint(50, 400)) / 10,
            },
            "supplier": f"supplier-{rng.randint(1, 80):03d}",
            "created_at": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:00:00Z",
            "discontinued": rng.random() < 0.05,
        }


def create_copy(local: LocalAws, logical_id: str, table_name: str) -> None:
    """A new, empty table with the key schema of the template's table ``logical_id``."""
    dynamodb = local.aws.client("dynamodb")
    source = dynamodb.describe_table(TableName=local.deployment.resources[logical_id])["Table"]
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=source["KeySchema"],
        AttributeDefinitions=source["AttributeDefinitions"],
        BillingMode="PAY_PER_REQUEST",
    )


def seed(local: LocalAws, table_name: str, count: int) -> None:
    """Put ``count`` items into ``table_name``, ``BATCH`` per request.

    In the process that runs the embedded server the batches go straight to moto's backend:
    moto spends about 0.6 ms an item on a ``BatchWriteItem`` over HTTP (100k items would take a
    minute), most of it parsing the request against the service model. The items land exactly as
    a ``BatchWriteItem`` puts them. Elsewhere (``--endpoint-url``) it sends ``BatchWriteItem``s.
    """
    serializer = TypeSerializer()
    requests = [
        {name: serializer.serialize(value) for name, value in item.items()} for item in items(count)
    ]
    batches = [requests[start : start + BATCH] for start in range(0, len(requests), BATCH)]
    if local.aws.embedded:
        from moto.dynamodb.models import dynamodb_backends

        from tools.emulator.embedded_aws import ACCOUNT_ID

        backend = dynamodb_backends[ACCOUNT_ID][local.aws.region]
        for item in requests:  # what moto's BatchWriteItem handler does for each PutRequest
            backend.put_item(table_name, item)
        return
    dynamodb = local.aws.client("dynamodb")

    def write(batch: list[dict[str, Any]]) -> None:
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item in batch]
        while pending:
            response = dynamodb.batch_write_item(RequestItems={table_name: pending})
            pending = response.get("UnprocessedItems", {}).get(table_name, [])

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, batches))
