"""The end-to-end target in AWS: a deployed stack, found by its name, reached with your session.

Every address comes from the stack's outputs (one ``DescribeStacks``): the API's URL, the export
queue, the bucket, the table, the table-export function, and the issuer's token endpoint and
machine client. The client's secret is read with ``cognito-idp:DescribeUserPoolClient`` and
exchanged for tokens (OAuth 2.0 client credentials); neither is ever logged or printed.

Session first: the caller builds the ``boto3.Session`` (``--profile``/``--region`` as the AWS CLI
means them, or the pipeline's role) and passes it in; nothing here reads a profile itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import requests
from botocore.config import Config

from tools.e2e.target import HttpResponse, NotYetError, StoredObject, TargetError, send
from tools.emulator.seed import ExactNumbers

T = TypeVar("T")

OUTPUTS = {
    "api_url": "ApiUrl",
    "queue_url": "ExportQueueUrl",
    "bucket": "ExportsBucketName",
    "table": "ItemsTableName",
    "table_export_function": "ExportTableFunctionName",
    "token_issuer": "TokenIssuer",
    "token_endpoint": "TokenEndpoint",
    "client_id": "MachineClientId",
}
"""What the target reads from the stack's outputs, by the name it uses them under."""
SMOKE_OUTPUTS = frozenset({"api_url", "token_issuer", "token_endpoint", "client_id"})
"""Enough for the read-only smoke subset."""

SMOKE_IAM_ACTIONS = frozenset(
    {"cloudformation:DescribeStacks", "cognito-idp:DescribeUserPoolClient"}
)
"""The IAM actions of the smoke subset's calls: the outputs and the machine client's secret."""
IAM_ACTIONS = SMOKE_IAM_ACTIONS | {
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "sqs:SendMessage",
    "lambda:InvokeFunction",
    "s3:GetObject",
    "s3:ListBucket",
}
"""The IAM actions of every call the target makes; deploy/bootstrap.yaml's end-to-end role
grants exactly these (tests/infra/test_delivery.py), on the stack's own resources."""

AWS_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"mode": "standard", "total_max_attempts": 3}
)
INVOKE_CONFIG = Config(
    # Longer than the table export's 300 s timeout; one attempt: a retry would start a second run.
    connect_timeout=5,
    read_timeout=330,
    retries={"mode": "standard", "total_max_attempts": 1},
)
HTTP_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds for the API and the token endpoint."""
WAIT_SECONDS = 180.0
POLL_SECONDS = 3.0


def stack_outputs(session: boto3.Session, stack_name: str) -> dict[str, str]:
    cloudformation = session.client("cloudformation", config=AWS_CONFIG)
    [stack] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _checked_url(url: str, what: str) -> str:
    """https, or http to this machine only (a stand-in in tests): a token never travels in clear."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname == "127.0.0.1"):
        return url
    raise TargetError(f"{what} must be an https URL, not {url!r}")


class DeployedTarget:
    """A deployed stack. Build it with :meth:`from_stack`."""

    def __init__(
        self,
        session: boto3.Session,
        stack_name: str,
        outputs: Mapping[str, str],
        *,
        smoke: bool = False,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wait_seconds: float = WAIT_SECONDS,
    ) -> None:
        needed = SMOKE_OUTPUTS if smoke else frozenset(OUTPUTS)
        missing = sorted(OUTPUTS[name] for name in needed if not outputs.get(OUTPUTS[name]))
        if missing:
            raise TargetError(
                f"stack {stack_name} has no output {', '.join(missing)}: deploy the current "
                "template.yaml (an external JwtIssuer has no TokenEndpoint to test with)"
            )
        self.name = f"stack {stack_name} ({session.region_name})"
        self._outputs = {name: outputs.get(key, "") for name, key in OUTPUTS.items()}
        self.api_url = _checked_url(self._outputs["api_url"].rstrip("/") + "/", "ApiUrl")
        self._token_endpoint = _checked_url(self._outputs["token_endpoint"], "TokenEndpoint")
        self.client_id = self._outputs["client_id"]
        self._session = session
        self._clients: dict[str, Any] = {}
        self._http = http or requests.Session()
        self._client_secret: str | None = None
        self._tokens: dict[tuple[str, ...], str] = {}
        self._clock, self._sleep, self._wait_seconds = clock, sleep, wait_seconds

    @classmethod
    def from_stack(
        cls,
        session: boto3.Session,
        stack_name: str,
        *,
        smoke: bool = False,
        http: requests.Session | None = None,
    ) -> DeployedTarget:
        """The stack's addresses from its outputs (one ``DescribeStacks``)."""
        return cls(session, stack_name, stack_outputs(session, stack_name), smoke=smoke, http=http)

    def _client(self, service: str) -> Any:  # noqa: ANN401 - boto3's clients are typed by stubs
        if service not in self._clients:
            config = INVOKE_CONFIG if service == "lambda" else AWS_CONFIG
            self._clients[service] = self._session.client(service, config=config)  # type: ignore[call-overload]
        return self._clients[service]

    # --- tokens -------------------------------------------------------------------------------

    def token(self, scopes: Sequence[str]) -> str:
        """A client-credentials token for exactly ``scopes``, fetched once per set of scopes."""
        wanted = tuple(sorted(scopes))
        if wanted not in self._tokens:
            response = self._http.post(
                self._token_endpoint,
                data={"grant_type": "client_credentials", "scope": " ".join(wanted)},
                auth=(self.client_id, self._secret()),
                headers={"Accept": "application/json"},
                timeout=HTTP_TIMEOUT,
            )
            if response.status_code != 200:
                # The endpoint's error code only (OAuth's "error"), never the request sent.
                code = _oauth_error(response)
                raise TargetError(f"the token endpoint refused: HTTP {response.status_code} {code}")
            self._tokens[wanted] = str(response.json()["access_token"])
        return self._tokens[wanted]

    def _secret(self) -> str:
        if self._client_secret is None:
            pool_id = self._outputs["token_issuer"].rstrip("/").rpartition("/")[2]
            described = self._client("cognito-idp").describe_user_pool_client(
                UserPoolId=pool_id, ClientId=self.client_id
            )
            self._client_secret = str(described["UserPoolClient"]["ClientSecret"])
        return self._client_secret

    # --- the HTTP API -------------------------------------------------------------------------

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
        serializer = ExactNumbers()
        self._client("dynamodb").put_item(
            TableName=self._outputs["table"],
            Item={name: serializer.serialize(value) for name, value in item.items()},
        )

    def delete_item(self, item_id: str) -> None:
        self._client("dynamodb").delete_item(
            TableName=self._outputs["table"], Key={"item_id": {"S": item_id}}
        )

    def send_export_request(self, body: str) -> str:
        sent = self._client("sqs").send_message(
            QueueUrl=self._outputs["queue_url"], MessageBody=body
        )
        return str(sent["MessageId"])

    def start_table_export(self, event: Mapping[str, Any]) -> dict[str, Any]:
        invoked = self._client("lambda").invoke(
            FunctionName=self._outputs["table_export_function"],
            InvocationType="RequestResponse",
            Payload=json.dumps(dict(event)).encode(),
        )
        payload = invoked["Payload"].read()
        if invoked.get("FunctionError"):
            raise TargetError(f"{self._outputs['table_export_function']} failed: {payload[:500]!r}")
        response: dict[str, Any] = json.loads(payload, parse_float=Decimal)
        return response

    # --- the bucket ---------------------------------------------------------------------------

    def keys(self, prefix: str) -> list[str]:
        paginator = self._client("s3").get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._outputs["bucket"], Prefix=prefix)
        return [entry["Key"] for page in pages for entry in page.get("Contents", [])]

    def read(self, key: str) -> StoredObject | None:
        s3 = self._client("s3")
        try:
            got = s3.get_object(Bucket=self._outputs["bucket"], Key=key)
        except s3.exceptions.NoSuchKey:
            return None
        return StoredObject(key, got["Body"].read(), got["ContentType"], got.get("Metadata", {}))

    # --- waiting ------------------------------------------------------------------------------

    def eventually(self, check: Callable[[], T | None], what: str) -> T:
        """Poll ``check`` every few seconds until it answers, for at most the target's bound:
        a deployed stack works on its own time (the queue's batching window, Lambda's polling)."""
        deadline = self._clock() + self._wait_seconds
        while True:
            result = check()
            if result is not None:
                return result
            if self._clock() >= deadline:
                raise NotYetError(f"{what}: not done after {self._wait_seconds:.0f} s")
            self._sleep(POLL_SECONDS)


def _oauth_error(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))
    except ValueError:
        return ""
