"""ExportItemFunction's baseline: its three clients on the default session, the same raw calls.

The function signs its S3 calls as an assumed writer role (one AssumeRole per 45 minutes); this
baseline signs them with the function's own credentials, so a warm invocation makes exactly the
same two calls: GetItem (with the same projection) and a conditional PutObject.
"""

import json
import os
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")  # noqa: TID251 - the default session is the baseline
sts = boto3.client("sts")  # noqa: TID251 - built at init, as the function's assumed-role fetcher
s3 = boto3.client("s3")  # noqa: TID251
TABLE_NAME = os.environ["TABLE_NAME"]
BUCKET_NAME = os.environ["BUCKET_NAME"]
PREFIX = os.environ["EXPORT_PREFIX"]


def export(item_id: str, fields: list[str] | None, export_id: str) -> str:
    request: dict[str, Any] = {"TableName": TABLE_NAME, "Key": {"item_id": {"S": item_id}}}
    if fields:
        names = {f"#f{i}": name for i, name in enumerate(dict.fromkeys(["item_id", *fields]))}
        request["ProjectionExpression"] = ", ".join(names)
        request["ExpressionAttributeNames"] = names
    item = dynamodb.get_item(**request)["Item"]
    key = f"{PREFIX}{item_id}/{export_id}.json"
    s3.put_object(
        Bucket=BUCKET_NAME,
        Key=key,
        Body=json.dumps({"item": item, "export_id": export_id}).encode(),
        ContentType="application/json",
        IfNoneMatch="*",
    )
    return key


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    body = json.loads(event.get("body") or "{}")
    export_id = event["requestContext"]["requestId"]
    key = export(event["pathParameters"]["item_id"], body.get("fields"), export_id)
    return {"statusCode": 201, "body": json.dumps({"export_id": export_id, "key": key})}
