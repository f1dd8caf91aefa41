"""ExportQueueFunction's baseline: the same clients and worker threads, the same raw calls.

Records are exported on four threads, as the function does, so that both make the same calls
with the same concurrency.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")  # noqa: TID251 - the default session is the baseline
sts = boto3.client("sts")  # noqa: TID251 - built at init, as the function's assumed-role fetcher
s3 = boto3.client("s3")  # noqa: TID251
workers = ThreadPoolExecutor(max_workers=4)
TABLE_NAME = os.environ["TABLE_NAME"]
BUCKET_NAME = os.environ["BUCKET_NAME"]
PREFIX = os.environ["EXPORT_PREFIX"]


def export(record: dict[str, Any]) -> None:
    body = json.loads(record["body"])
    item_id, fields = body["item_id"], body.get("fields")
    request: dict[str, Any] = {"TableName": TABLE_NAME, "Key": {"item_id": {"S": item_id}}}
    if fields:
        names = {f"#f{i}": name for i, name in enumerate(dict.fromkeys(["item_id", *fields]))}
        request["ProjectionExpression"] = ", ".join(names)
        request["ExpressionAttributeNames"] = names
    item = dynamodb.get_item(**request)["Item"]
    s3.put_object(
        Bucket=BUCKET_NAME,
        Key=f"{PREFIX}{item_id}/{record['messageId']}.json",
        Body=json.dumps({"item": item, "export_id": record["messageId"]}).encode(),
        ContentType="application/json",
        IfNoneMatch="*",
    )


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    list(workers.map(export, event["Records"]))
    return {"batchItemFailures": []}
