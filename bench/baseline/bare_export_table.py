"""ExportTableFunction's baseline for cold init: one client per service it uses, default session."""

import os
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")  # noqa: TID251 - the default session is the baseline
sts = boto3.client("sts")  # noqa: TID251 - built at init, as the function's assumed-role fetcher
s3 = boto3.client("s3")  # noqa: TID251
sqs = boto3.client("sqs")  # noqa: TID251
TABLE_NAME = os.environ["TABLE_NAME"]


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    return {"items": dynamodb.describe_table(TableName=TABLE_NAME)["Table"].get("ItemCount", 0)}
