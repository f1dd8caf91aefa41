"""The naive whole-table export: scan everything into a list, then one gzip ``put_object``.

Items are converted to the same JSON Lines as the function writes (plain JSON types, sorted keys),
so both do the same work per item; only the shape of the export differs.
"""

import gzip
import json
import os
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

dynamodb = boto3.client("dynamodb")  # noqa: TID251 - the default session is the baseline
s3 = boto3.client("s3")  # noqa: TID251
TABLE_NAME = os.environ["TABLE_NAME"]
BUCKET_NAME = os.environ["BUCKET_NAME"]
PREFIX = os.environ["EXPORT_PREFIX"]
_DESERIALIZER = TypeDeserializer()


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value, key=repr)
    raise TypeError(type(value).__name__)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:  # noqa: ANN401
    items: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME):
        items.extend(page["Items"])
    lines = [
        json.dumps(
            {name: _DESERIALIZER.deserialize(value) for name, value in item.items()},
            default=_plain,
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        + b"\n"
        for item in items
    ]
    key = f"{PREFIX}naive/{context.aws_request_id}.jsonl.gz"
    s3.put_object(Bucket=BUCKET_NAME, Key=key, Body=gzip.compress(b"".join(lines)), IfNoneMatch="*")
    return {"status": "complete", "items": len(items), "key": key}
