"""Test-only functions behind extra routes of tests/e2e/test_local_api.py's template: each shows
one thing API Gateway does with what a function returns, or how the function's environment lives.

They run in the local API's execution environments like the real functions (from source, with
the test venv's packages: ``whoami`` uses boto3).
"""

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

INVOCATIONS = 0
"""Invocations of this process: a warm environment counts up, a new one starts at 1."""


def echo(event: dict[str, Any], _context: object) -> dict[str, Any]:
    """The event as the body, with headers and cookies to map."""
    global INVOCATIONS  # noqa: PLW0603 - per-environment state is the point
    INVOCATIONS += 1
    body = {"event": event, "pid": os.getpid(), "invocation": INVOCATIONS}
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-probe": "echo"},
        "multiValueHeaders": {"x-ignored": ["format", "1.0"]},
        "cookies": ["first=1", "second=2; Path=/; HttpOnly"],
        "body": json.dumps(body),
    }


def binary(_event: dict[str, Any], _context: object) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/octet-stream"},
        "isBase64Encoded": True,
        "body": base64.b64encode(bytes(range(256))).decode(),
    }


def plain(_event: dict[str, Any], _context: object) -> dict[str, Any]:
    """No statusCode: API Gateway answers 200 with this as the JSON body."""
    return {"hello": "world"}


def malformed(_event: dict[str, Any], _context: object) -> dict[str, Any]:
    return {"statusCode": "teapot", "body": "{}"}


def fail(_event: dict[str, Any], _context: object) -> dict[str, Any]:
    raise RuntimeError("the probe fails on purpose")


def slow(_event: dict[str, Any], _context: object) -> dict[str, Any]:
    """Outlives its 1 s timeout."""
    time.sleep(30)
    return {"statusCode": 200, "body": "too late"}


def rendezvous(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns only once ``expected`` invocations are in flight at once (each leaves a file in
    ``dir``): served one at a time, they would all time out instead."""
    query = event.get("queryStringParameters") or {}
    directory = Path(query["dir"])
    (directory / str(os.getpid())).touch()
    while len(list(directory.iterdir())) < int(query["expected"]):
        if context.get_remaining_time_in_millis() < 500:
            return {"statusCode": 504, "body": "alone"}
        time.sleep(0.01)
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}


def whoami(_event: dict[str, Any], _context: object) -> dict[str, Any]:
    """Who the function's credentials are: the embedded AWS's STS says."""
    import boto3

    identity = boto3.client("sts").get_caller_identity()  # noqa: TID251 - a probe, no session layer
    return {"statusCode": 200, "body": json.dumps({"arn": identity["Arn"]})}
