"""ExportItemFunction done naively: ``sts.assume_role`` and a new S3 client in every invocation."""

import json
import os
from typing import Any

import boto3

dynamodb = boto3.client("dynamodb")  # noqa: TID251 - the default session is the baseline
sts = boto3.client("sts")  # noqa: TID251
TABLE_NAME = os.environ["TABLE_NAME"]
BUCKET_NAME = os.environ["BUCKET_NAME"]
PREFIX = os.environ["EXPORT_PREFIX"]
WRITER_ROLE_ARN = os.environ["WRITER_ROLE_ARN"]


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    credentials = sts.assume_role(RoleArn=WRITER_ROLE_ARN, RoleSessionName="naive-export")[
        "Credentials"
    ]
    s3 = boto3.client(  # noqa: TID251
        "s3",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    item_id = event["pathParameters"]["item_id"]
    export_id = event["requestContext"]["requestId"]
    item = dynamodb.get_item(TableName=TABLE_NAME, Key={"item_id": {"S": item_id}})["Item"]
    key = f"{PREFIX}{item_id}/{export_id}.json"
    s3.put_object(Bucket=BUCKET_NAME, Key=key, Body=json.dumps(item).encode(), IfNoneMatch="*")
    return {"statusCode": 201, "body": json.dumps({"export_id": export_id, "key": key})}
