"""The end-to-end target offline: the template provisioned in the embedded AWS.

Requests become the payload-2.0 events API Gateway would send and run through the template's
functions in fresh execution environments (:mod:`tools.emulator.local_lambda`). Nothing runs in
the background: :meth:`LocalTarget.eventually` is what delivers queued messages, one batch per
queue and round, to the function the template maps the queue to, exactly as Lambda's event source
mapping would (records reported in ``batchItemFailures`` stay on the queue and come back), so a
scenario's wait is a deterministic sequence of deliveries, never a sleep.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tools.e2e.target import HttpResponse, NotYetError, StoredObject, TargetError
from tools.emulator import local_lambda, sam_template
from tools.emulator.local_lambda import LocalAws
from tools.emulator.seed import put_items

T = TypeVar("T")

STACK_NAME = "items-e2e"
MAX_ROUNDS = 50
"""Deliveries one wait may take: far more than any scenario needs, so a loop cannot spin."""
LOCAL_CLIENT_ID = "e2e-local-client"


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    route_key: str
    function_id: str


@dataclass(frozen=True)
class _Mapping:
    """An SQS event source mapping of the template: which queue feeds which function."""

    queue_logical_id: str
    function_id: str
    batch_size: int


def _routes(template: dict[str, Any]) -> list[_Route]:
    routes = []
    for function_id, resource in sam_template.functions(template).items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            method, path = event["Properties"]["Method"].upper(), event["Properties"]["Path"]
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
            routes.append(_Route(method, re.compile(regex), f"{method} {path}", function_id))
    return routes


def _mappings(template: dict[str, Any]) -> list[_Mapping]:
    mappings = []
    for function_id, resource in sam_template.functions(template).items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "SQS":
                continue
            queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            batch_size = int(event["Properties"].get("BatchSize", 10))
            mappings.append(_Mapping(queue, function_id, batch_size))
    return mappings


class LocalTarget:
    """The stack in the embedded AWS; build it with :func:`started`."""

    enforces_authorizer = False
    """The functions are invoked directly: no authorizer stands in front of them."""

    def __init__(self, local: LocalAws) -> None:
        self._local = local
        self.name = f"local stack {local.deployment.stack_name} at {local.aws.endpoint_url}"
        self.api_url = "http://local.invalid/"
        template = sam_template.load(local.deployment.template_path)
        self._routes = _routes(template)
        self._mappings = _mappings(template)
        self._tokens: dict[str, tuple[str, ...]] = {}
        resources = local.deployment.resources
        self._bucket = resources["ExportsBucket"]
        self._table = resources["ItemsTable"]
        self._queue_url = resources["ExportQueue"]

    # --- the HTTP API -------------------------------------------------------------------------

    def token(self, scopes: Sequence[str]) -> str:
        token = f"local-{uuid.uuid4().hex}"
        self._tokens[token] = tuple(scopes)
        return token

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        raw_path = "/" + path.lstrip("/")
        for route in self._routes:
            match = route.pattern.fullmatch(raw_path)
            if route.method == method.upper() and match:
                event = self._event(
                    route, raw_path, match.groupdict(), token=token, body=body, headers=headers
                )
                return self._respond(route.function_id, event)
        return _json_response(404, b'{"message":"Not Found"}')

    def _event(
        self,
        route: _Route,
        raw_path: str,
        path_parameters: dict[str, str],
        *,
        token: str | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        if token is not None:
            lowered["authorization"] = f"Bearer {token}"
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": raw_path,
            "rawQueryString": "",
            "headers": lowered,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "local",
                "http": {
                    "method": route.method,
                    "path": raw_path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": lowered.get("user-agent", ""),
                },
                "requestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
                "routeKey": route.route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "pathParameters": path_parameters,
            "isBase64Encoded": False,
        }
        if token in self._tokens:
            event["requestContext"]["authorizer"] = {
                "jwt": {
                    "claims": {
                        "sub": LOCAL_CLIENT_ID,
                        "client_id": LOCAL_CLIENT_ID,
                        "token_use": "access",
                        "scope": " ".join(self._tokens[token]),
                    },
                    "scopes": None,
                }
            }
        if body is not None:
            event["body"] = body.decode()
        return event

    def _respond(self, function_id: str, event: dict[str, Any]) -> HttpResponse:
        [invocation] = local_lambda.invoke(self._local, function_id, [event])
        response = invocation.response
        if invocation.error or not isinstance(response, dict) or "statusCode" not in response:
            # What API Gateway answers for a function that failed or answered nothing it can map.
            return _json_response(500, b'{"message":"Internal Server Error"}')
        text = response.get("body") or ""
        body = base64.b64decode(text) if response.get("isBase64Encoded") else text.encode()
        headers = {name.lower(): str(value) for name, value in response.get("headers", {}).items()}
        return HttpResponse(int(response["statusCode"]), headers, body)

    # --- the other front doors ----------------------------------------------------------------

    def put_item(self, item: Mapping[str, Any]) -> None:
        put_items(self._local.aws.client("dynamodb"), self._table, [dict(item)])

    def delete_item(self, item_id: str) -> None:
        self._local.aws.client("dynamodb").delete_item(
            TableName=self._table, Key={"item_id": {"S": item_id}}
        )

    def send_export_request(self, body: str) -> str:
        sent = self._local.aws.client("sqs").send_message(
            QueueUrl=self._queue_url, MessageBody=body
        )
        return str(sent["MessageId"])

    def start_table_export(self, event: Mapping[str, Any]) -> dict[str, Any]:
        [invocation] = local_lambda.invoke(self._local, "ExportTableFunction", [dict(event)])
        if invocation.error or not isinstance(invocation.response, dict):
            raise TargetError(f"ExportTableFunction failed: {invocation.payload}")
        return invocation.response

    # --- the bucket ---------------------------------------------------------------------------

    def keys(self, prefix: str) -> list[str]:
        paginator = self._local.aws.client("s3").get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._bucket, Prefix=prefix)
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]

    def read(self, key: str) -> StoredObject | None:
        s3 = self._local.aws.client("s3")
        try:
            got = s3.get_object(Bucket=self._bucket, Key=key)
        except s3.exceptions.NoSuchKey:
            return None
        return StoredObject(key, got["Body"].read(), got["ContentType"], got.get("Metadata", {}))

    # --- waiting ------------------------------------------------------------------------------

    def eventually(self, check: Callable[[], T | None], what: str) -> T:
        for _ in range(MAX_ROUNDS):
            result = check()
            if result is not None:
                return result
            if not self.deliver():
                raise NotYetError(f"{what}: not done, and no queue holds anything to deliver")
        raise NotYetError(f"{what}: not done after {MAX_ROUNDS} deliveries")

    def deliver(self) -> bool:
        """One poll of every SQS event source mapping; True when any delivered something."""
        delivered = [self._deliver(mapping) for mapping in self._mappings]  # every one polled
        return any(delivered)

    def _deliver(self, mapping: _Mapping) -> bool:
        sqs = self._local.aws.client("sqs")
        queue_url = self._local.deployment.resources[mapping.queue_logical_id]
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, mapping.batch_size),
            VisibilityTimeout=0,  # what the function reports failed comes back at the next poll
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return False
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        event = {
            "Records": [_record(message, queue_arn, self._local.aws.region) for message in messages]
        }
        [invocation] = local_lambda.invoke(self._local, mapping.function_id, [event])
        if invocation.error or not isinstance(invocation.response, dict):
            return True  # the whole batch comes back, as Lambda leaves it on the queue
        failed = {
            entry["itemIdentifier"] for entry in invocation.response.get("batchItemFailures", [])
        }
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return True


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """An SQS message as Lambda's event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _json_response(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, body)


@contextmanager
def started(template_path: Path = sam_template.TEMPLATE) -> Iterator[LocalTarget]:
    """The template provisioned (unseeded: scenarios bring their own items) until exit."""
    with local_lambda.embedded(template_path, stack_name=STACK_NAME) as local:
        yield LocalTarget(local)
