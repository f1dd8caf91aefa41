"""Typed clients, each built from an explicit session with the shared :data:`CLIENT_CONFIG` and
the invocation deadline checked before every attempt (:mod:`app.sessions.deadline`).

Clients are thread-safe and expensive to build (~20 ms each), so callers build them once per
execution environment and share them; sessions are neither, so they stay in this package.
"""

from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.client import BaseClient

from app.sessions.config import CLIENT_CONFIG, INVOKE_CONFIG
from app.sessions.deadline import check_before_attempt

if TYPE_CHECKING:
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

_Client = TypeVar("_Client", bound=BaseClient)


def _within_deadline(client: _Client) -> _Client:
    client.meta.events.register("before-send", check_before_attempt)
    return client


def dynamodb_client(session: boto3.Session) -> "DynamoDBClient":
    return _within_deadline(session.client("dynamodb", config=CLIENT_CONFIG))


def s3_client(session: boto3.Session) -> "S3Client":
    return _within_deadline(session.client("s3", config=CLIENT_CONFIG))


def sqs_client(session: boto3.Session) -> "SQSClient":
    return _within_deadline(session.client("sqs", config=CLIENT_CONFIG))


def sts_client(session: boto3.Session) -> "STSClient":
    return _within_deadline(session.client("sts", config=CLIENT_CONFIG))


def lambda_client(session: boto3.Session) -> "LambdaClient":
    """For synchronous Invoke: its read timeout waits for the invoked function (INVOKE_CONFIG)."""
    return _within_deadline(session.client("lambda", config=INVOKE_CONFIG))


def codedeploy_client(session: boto3.Session) -> "CodeDeployClient":
    return _within_deadline(session.client("codedeploy", config=CLIENT_CONFIG))
