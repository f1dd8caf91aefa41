"""Shared fixtures: a moto-backed AWS shaped by template.yaml, and spies on what reaches AWS.

The environment below is set before anything imports ``app``: handler modules build their sessions
and clients at import time, exactly as in Lambda, and must find a Lambda-like environment. Its
credentials are fake and no endpoint is real, so nothing here can reach AWS.
"""

import collections
import functools
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-west-1"
LAMBDA_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_LAMBDA_FUNCTION_NAME": "items-test-ExportItemFunction",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/23/[$LATEST]5f2b7c1e9a0d4b8c",
    "TABLE_NAME": "items",
    "RUNS_TABLE_NAME": "export-runs",
    "CONTINUATION_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/export-table-continuations",
    "BUCKET_NAME": "exports",
    "EXPORT_PREFIX": "exports/",
    "WRITER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/items-test-exports-writer",
    "POWERTOOLS_SERVICE_NAME": "items",
    "POWERTOOLS_METRICS_NAMESPACE": "ItemsServiceTest",
    # The pre-traffic hook's targets: each function's new version (template.yaml, PreTrafficHook).
    **{
        variable: f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:items-test-{function}:7"
        for function, variable in (
            ("GetItemFunction", "GET_ITEM_VERSION_ARN"),
            ("ExportItemFunction", "EXPORT_ITEM_VERSION_ARN"),
            ("ExportQueueFunction", "EXPORT_QUEUE_VERSION_ARN"),
            ("ExportTableFunction", "EXPORT_TABLE_VERSION_ARN"),
        )
    },
}
DEPLOYED_STACK = os.environ.get("E2E_STACK_NAME", "")
"""Set by ``make e2e``: the end-to-end scenarios (tests/e2e/test_stack.py, and nothing else) then
run against that deployed stack with the caller's own AWS configuration, so none of it is faked."""
if not DEPLOYED_STACK:
    for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(_name, None)
    os.environ.update(LAMBDA_ENVIRONMENT)

import boto3  # noqa: E402 - after the environment, on purpose
import botocore.client  # noqa: E402
import botocore.loaders  # noqa: E402
import botocore.session  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from app.operations.export_table import TableExporter  # noqa: E402
from app.runtime import PROBED_VERSIONS  # noqa: E402
from app.services import (  # noqa: E402
    ContinuationQueue,
    Deployments,
    ExportRunsTable,
    ExportsBucket,
    FunctionVersions,
    ItemsTable,
)
from app.sessions import RoleSpec, assumed_role_session, base_session  # noqa: E402
from tools.emulator import dynamodb_item_writes, s3_conditional_writes, sam_template  # noqa: E402
from tools.emulator.lambda_context import LambdaContext  # noqa: E402
from tools.emulator.seed import load_seed, put_items  # noqa: E402

s3_conditional_writes.install()  # one conditional writer wins in S3; moto's own may let two
dynamodb_item_writes.install()  # DynamoDB applies one item's writes one at a time; moto may not
pytest.register_assert_rewrite("tests.table_exports")  # its failures say what differed


class _UniquePaths(list[str]):
    """Search paths that take each folder once: every ``boto3.Session`` appends boto3's own."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _UniquePaths(loader.search_paths)
    return loader


# Every session the tests build (the stack's, the functions' own, moto's) reads the same service
# models; botocore caches them per loader, and each new session has a loader of its own. Sharing
# one loader per data path turns reading and decoding those JSON files (most of a session's first
# clients: about 0.25 s each) into a dictionary lookup. The models are read-only, so what a test
# builds from them is the same. Processes the tests start keep botocore's own behaviour.
botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]

EVENTS = Path(__file__).resolve().parent.parent / "events"
EXPECTED = json.loads((EVENTS / "expected.json").read_text())


TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e", "infra")
"""A folder and a marker each: unit needs no AWS at all (not even moto), integration runs against
moto, the embedded AWS and worker processes, e2e runs the stack's end-to-end scenarios, whole
commands, the local HTTP API and the real SAM CLI, infra checks the template, its translation, the
pipeline, the scanners and ``sam init``."""
UNIT_FORBIDDEN_FIXTURES = frozenset({"aws", "stack", "api_calls"})


SCENARIOS = TESTS / "e2e" / "test_stack.py"
"""The end-to-end scenarios: the only tests that may run against a deployed stack."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier; a test outside a tier's folder, or a unit test that asks
    for AWS, is a collection error rather than a test in no tier. Against a deployed stack only
    the scenarios run (a collection error otherwise), and with ``E2E_SMOKE`` only the smoke ones."""
    if DEPLOYED_STACK:
        strays = [item.nodeid for item in items if item.path.resolve() != SCENARIOS]
        if strays:
            raise pytest.UsageError(
                f"E2E_STACK_NAME is set: only {SCENARIOS.name} may run against a deployed "
                f"stack, not {strays[0]}"
            )
        if os.environ.get("E2E_SMOKE"):
            skipped = [item for item in items if item.get_closest_marker("smoke") is None]
            config.hook.pytest_deselected(items=skipped)
            items[:] = [item for item in items if item.get_closest_marker("smoke") is not None]
    for item in items:
        tier = item.path.relative_to(TESTS).parts[0]
        if tier not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test belongs in tests/<tier>/, {TIERS}")
        if tier == "unit":
            asked = UNIT_FORBIDDEN_FIXTURES & set(getattr(item, "fixturenames", ()))
            if asked:
                raise pytest.UsageError(f"{item.nodeid}: a unit test uses no AWS: {asked}")
        item.add_marker(tier)


@pytest.fixture(autouse=True)
def _unit_tests_stay_in_process(request: pytest.FixtureRequest) -> Iterator[None]:
    """A unit test that opens a connection or starts a process fails at once, saying which."""
    if request.node.get_closest_marker("unit") is None:
        yield
        return

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a unit test may not open a connection or start a process")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(subprocess.Popen, "__init__", refuse)
        yield


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return sam_template.load()


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> collections.Counter[str]:
    """Every AWS API call any client makes, as ``"service.Operation"``."""
    calls: collections.Counter[str] = collections.Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self: botocore.client.BaseClient, operation_name: str, api_params: Any) -> Any:
        calls[f"{self.meta.service_model.service_name}.{operation_name}"] += 1
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


@pytest.fixture
def clients_built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The service name of every client built from any session."""
    built: list[str] = []
    original = botocore.session.Session.create_client

    def counting(
        self: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any
    ) -> Any:
        built.append(service_name)
        return original(self, service_name, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    return built


@dataclass
class Stack:
    """The template's data resources in moto, and sessions/services as the functions build them."""

    base: boto3.Session
    writer: boto3.Session
    items: ItemsTable
    exports: ExportsBucket
    admin: boto3.Session
    workers: ThreadPoolExecutor
    runs: ExportRunsTable
    continuations: ContinuationQueue

    @property
    def targets(self) -> dict[str, str]:
        """The pre-traffic hook's new versions, as the template's environment names them."""
        return {function: LAMBDA_ENVIRONMENT[name] for function, name in PROBED_VERSIONS.items()}

    @property
    def versions(self) -> FunctionVersions:
        return FunctionVersions(self.base)

    @property
    def deployments(self) -> Deployments:
        return Deployments(self.base)

    @property
    def exporter(self) -> TableExporter:
        return TableExporter(self.items, self.exports, self.runs, self.continuations, self.workers)

    def objects(self) -> dict[str, dict[str, Any]]:
        """Every object in the exports bucket, decoded, by key."""
        s3 = self.admin.client("s3")
        listing = s3.list_objects_v2(Bucket=self.exports.bucket_name).get("Contents", [])
        return {
            entry["Key"]: json.loads(
                s3.get_object(Bucket=self.exports.bucket_name, Key=entry["Key"])["Body"].read()
            )
            for entry in listing
        }


def _properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]  # type: ignore[no-any-return]


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def workers() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="test-export") as pool:
        yield pool


@pytest.fixture
def stack(aws: None, template: dict[str, Any], workers: ThreadPoolExecutor) -> Stack:
    """Table, bucket and writer role as the template declares them, seeded from events/seed.json."""
    admin = boto3.Session(region_name=REGION)
    for logical_id, variable in (
        ("ItemsTable", "TABLE_NAME"),
        ("ExportRunsTable", "RUNS_TABLE_NAME"),
    ):
        table = _properties(template, logical_id)
        admin.client("dynamodb").create_table(
            TableName=LAMBDA_ENVIRONMENT[variable],
            KeySchema=table["KeySchema"],
            AttributeDefinitions=table["AttributeDefinitions"],
            BillingMode=table["BillingMode"],
        )
    admin.client("sqs").create_queue(
        QueueName=LAMBDA_ENVIRONMENT["CONTINUATION_QUEUE_URL"].rpartition("/")[2]
    )
    s3 = admin.client("s3")
    bucket = LAMBDA_ENVIRONMENT["BUCKET_NAME"]
    if REGION == "us-east-1":  # S3's default location: naming it as a constraint is an error
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    admin.client("iam").create_role(
        RoleName=LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"].rpartition("/")[2],
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    put_items(admin.client("dynamodb"), LAMBDA_ENVIRONMENT["TABLE_NAME"], load_seed()["ItemsTable"])

    base = base_session(REGION)
    writer = assumed_role_session(
        base, RoleSpec(LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"], "items-test.5f2b7c1e9a0d")
    )
    return Stack(
        base=base,
        writer=writer,
        items=ItemsTable(base, LAMBDA_ENVIRONMENT["TABLE_NAME"]),
        exports=ExportsBucket(writer, bucket, LAMBDA_ENVIRONMENT["EXPORT_PREFIX"]),
        admin=admin,
        workers=workers,
        runs=ExportRunsTable(base, LAMBDA_ENVIRONMENT["RUNS_TABLE_NAME"]),
        continuations=ContinuationQueue(base, LAMBDA_ENVIRONMENT["CONTINUATION_QUEUE_URL"]),
    )


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext(function_name=LAMBDA_ENVIRONMENT["AWS_LAMBDA_FUNCTION_NAME"])


def load_event(name: str) -> dict[str, Any]:
    """An event from events/, by ``"<FunctionLogicalId>/<case>"``."""
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def new_request(name: str, tag: str) -> dict[str, Any]:
    """Event ``name`` with its request or message ids made unique by ``tag``: a new request, not
    a redelivery that idempotency would answer without running."""
    event = load_event(name)
    if "requestContext" in event:
        event["requestContext"]["requestId"] = tag
    for record in event.get("Records", []):
        record["messageId"] = f"{tag}-{record['messageId']}"
    return event


def event_names() -> list[str]:
    return sorted(str(path.relative_to(EVENTS).with_suffix("")) for path in EVENTS.glob("*/*.json"))


def matches_expected(response: Any, expected: dict[str, Any]) -> None:
    """``response`` says what ``events/expected.json`` says: each named key equal, and the batch's
    failed records the same set in any order."""
    for key, value in expected.items():
        if key == "batchItemFailures":
            failed = sorted(entry["itemIdentifier"] for entry in response[key])
            assert failed == sorted(value), response
        else:
            assert response[key] == value, response
