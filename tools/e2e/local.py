"""The end-to-end target offline: the template in the embedded AWS, behind the local HTTP API.

Requests go over real HTTP to ``make api``'s server (:mod:`tools.emulator.local_api`), which
enforces the template's JWT authorizer with tokens from the local issuer and runs each route's
function in warm execution environments. Nothing runs in the background: :meth:`LocalTarget.
eventually` is what delivers queued messages, one batch per queue and round, to the function the
template maps each queue to, as Lambda's event source mapping would (records the function reports
in ``batchItemFailures`` stay on the queue and come back), so a scenario's wait is a deterministic
sequence of deliveries, never a sleep.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from tools.e2e.target import HttpResponse, NotYetError, StoredObject, TargetError, send
from tools.emulator import (
    execution_environment,
    local_api,
    local_lambda,
    sam_template,
    sqs_records,
)
from tools.emulator.environment_pool import EnvironmentPool
from tools.emulator.execution_environment import Invocation, WarmEnvironment
from tools.emulator.local_issuer import CLIENT_ID, LocalIssuer
from tools.emulator.local_lambda import LocalAws
from tools.emulator.seed import put_items

T = TypeVar("T")

STACK_NAME = "items-e2e"
TABLE_EXPORT_FUNCTION = "ExportTableFunction"
MAX_ROUNDS = 50
"""Deliveries one wait may take: far more than any scenario needs, so a loop cannot spin."""
HTTP_TIMEOUT = (5.0, 60.0)


@dataclass(frozen=True)
class _Mapping:
    """An SQS event source mapping of the template: which queue feeds which function."""

    queue_logical_id: str
    function_id: str
    batch_size: int


def _mappings(template: dict[str, Any]) -> list[_Mapping]:
    mappings = []
    for function_id, resource in sam_template.functions(template).items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "SQS":
                queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
                batch_size = int(event["Properties"].get("BatchSize", 10))
                mappings.append(_Mapping(queue, function_id, batch_size))
    return mappings


class LocalTarget:
    """The stack in the embedded AWS behind the local HTTP API; build it with :func:`started`."""

    def __init__(
        self, local: LocalAws, api: local_api.RunningApi, *, use_build: bool = False
    ) -> None:
        self.local = local
        """The embedded AWS and the stack in it, for tests that look behind the doors."""
        self._api = api
        self.name = f"local stack {local.deployment.stack_name} at {api.url}"
        self.api_url = api.url + "/"
        self.client_id = CLIENT_ID
        self.issuer = api.issuer
        """The local issuer whose tokens the API's authorizer accepts."""
        self._mappings = _mappings(sam_template.load(local.deployment.template_path))
        self._pools: dict[str, EnvironmentPool] = {}
        self._use_build = use_build
        self._http = requests.Session()
        resources = local.deployment.resources
        self._bucket = resources["ExportsBucket"]
        self._table = resources["ItemsTable"]
        self._queue_url = resources["ExportQueue"]

    def close(self) -> None:
        self._http.close()
        for pool in self._pools.values():
            pool.close()

    def _invoke(self, function_id: str, event: Any) -> Invocation:  # noqa: ANN401 - any event
        """``event`` in one of the function's warm environments (one init per environment)."""
        if function_id not in self._pools:
            function = self.local.function(function_id)
            code = execution_environment.code_for(
                function, self.local.deployment.template_path, self._use_build
            )
            variables, _ = local_lambda.function_variables(function, None)
            start = functools.partial(
                WarmEnvironment, function, self.local.aws, code=code, variables=variables
            )
            self._pools[function_id] = EnvironmentPool(start)
        return self._pools[function_id].invoke(event)

    # --- the HTTP API -------------------------------------------------------------------------

    def token(self, scopes: Sequence[str]) -> str:
        return self.issuer.token(list(scopes))

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        url = self.api_url + path.lstrip("/")
        return send(
            self._http, url, method, token=token, body=body, headers=headers, timeout=HTTP_TIMEOUT
        )

    # --- the other front doors ----------------------------------------------------------------

    def put_item(self, item: Mapping[str, Any]) -> None:
        put_items(self.local.aws.client("dynamodb"), self._table, [dict(item)])

    def delete_item(self, item_id: str) -> None:
        self.local.aws.client("dynamodb").delete_item(
            TableName=self._table, Key={"item_id": {"S": item_id}}
        )

    def send_export_request(self, body: str) -> str:
        sqs = self.local.aws.client("sqs")
        return str(sqs.send_message(QueueUrl=self._queue_url, MessageBody=body)["MessageId"])

    def start_table_export(self, event: Mapping[str, Any]) -> dict[str, Any]:
        invocation = self._invoke(TABLE_EXPORT_FUNCTION, dict(event))
        if invocation.error or not isinstance(invocation.response, dict):
            raise TargetError(f"{TABLE_EXPORT_FUNCTION} failed: {invocation.payload[:500]}")
        return invocation.response

    # --- the bucket ---------------------------------------------------------------------------

    def keys(self, prefix: str) -> list[str]:
        paginator = self.local.aws.client("s3").get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._bucket, Prefix=prefix)
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]

    def read(self, key: str) -> StoredObject | None:
        s3 = self.local.aws.client("s3")
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
        sqs = self.local.aws.client("sqs")
        queue_url = self.local.deployment.resources[mapping.queue_logical_id]
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
        region = self.local.aws.region
        event = {
            "Records": [sqs_records.record(message, queue_arn, region) for message in messages]
        }
        invocation = self._invoke(mapping.function_id, event)
        if invocation.error or not isinstance(invocation.response, dict):
            return True  # the whole batch comes back, as Lambda leaves it on the queue
        failures = invocation.response.get("batchItemFailures", [])
        failed = {entry["itemIdentifier"] for entry in failures}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return True


@contextmanager
def started(
    template_path: Path = sam_template.TEMPLATE, *, use_build: bool = False
) -> Iterator[LocalTarget]:
    """The template provisioned (unseeded: scenarios bring their own items) and served, until
    exit; the local issuer's key lives only as long. The functions run CodeUri (``src/``), not a
    ``sam build`` artifact that may be older, unless ``use_build``."""
    with ExitStack() as stack:
        keys = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e-issuer-")))
        local = stack.enter_context(local_lambda.embedded(template_path, stack_name=STACK_NAME))
        api = stack.enter_context(
            local_api.serve(local, issuer=LocalIssuer.load(keys), use_build=use_build)
        )
        target = LocalTarget(local, api, use_build=use_build)
        stack.callback(target.close)
        yield target
