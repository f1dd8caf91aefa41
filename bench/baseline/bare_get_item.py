"""GetItemFunction's baseline: one DynamoDB client on the default session, one raw GetItem."""

import json
import os
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")  # noqa: TID251 - the default session is the baseline
TABLE_NAME = os.environ["TABLE_NAME"]


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    item_id = event["pathParameters"]["item_id"]
    response = dynamodb.get_item(TableName=TABLE_NAME, Key={"item_id": {"S": item_id}})
    return {"statusCode": 200, "body": json.dumps(response.get("Item"))}
