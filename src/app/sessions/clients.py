"""Typed clients, each built from an explicit session with the shared :data:`CLIENT_CONFIG`.

Clients are thread-safe and expensive to build (~20 ms each), so callers build them once per
execution environment and share them; sessions are neither, so they stay in this package.
"""

from typing import TYPE_CHECKING

import boto3

from app.sessions.config import CLIENT_CONFIG

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient


def dynamodb_client(session: boto3.Session) -> "DynamoDBClient":
    return session.client("dynamodb", config=CLIENT_CONFIG)


def s3_client(session: boto3.Session) -> "S3Client":
    return session.client("s3", config=CLIENT_CONFIG)


def sqs_client(session: boto3.Session) -> "SQSClient":
    return session.client("sqs", config=CLIENT_CONFIG)


def sts_client(session: boto3.Session) -> "STSClient":
    return session.client("sts", config=CLIENT_CONFIG)
