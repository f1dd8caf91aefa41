"""Sessions as multi-account services meet them: external ids, role chains, threads, SnapStart,
and failures that explain themselves. STS calls are counted exactly; time is moved, never slept."""

import collections
import contextlib
import copy
import importlib
import io
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.session
import moto.settings
import pytest
import snapshot_restore_py
import time_machine
from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError
from moto.core.responses import ActionAuthenticatorMixin

from app import runtime
from app.observability import logger
from app.sessions import (
    AssumeRoleError,
    RoleSpec,
    assumed_role,
    assumed_role_chain,
    assumed_role_session,
    base_session,
    s3_client,
    sts_client,
)
from app.sessions.config import MAX_ATTEMPTS
from tests.conftest import ACCOUNT, LAMBDA_ENVIRONMENT, REGION, Stack, load_event
from tests.handler_calls import call, handler_module
from tools.emulator.lambda_context import LambdaContext

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
WRITER = LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"]


@contextlib.contextmanager
def iam_enforced() -> Iterator[None]:
    """moto checks every request against IAM policies inside this block."""
    saved = moto.settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count
    moto.settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = 0, 0
    try:
        yield
    finally:
        moto.settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = saved


def _policy(action: str, resource: str) -> str:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _trust(principal: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the Powertools logger writes (its handler holds the stdout of when it was built)."""
    buffer = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", buffer)
    return buffer


@pytest.fixture
def sts_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of every AssumeRole request, in order."""
    requests: list[dict[str, Any]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if operation_name == "AssumeRole":
            requests.append(dict(api_params))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return requests


# --- Cross-account writer ----------------------------------------------------------------------


def test_external_id_and_duration_are_sent_with_the_assume_role(
    stack: Stack, sts_requests: list[dict[str, Any]]
) -> None:
    role = RoleSpec(WRITER, "fn.env", duration_seconds=900, external_id="agreed-with-partner")
    s3_client(assumed_role_session(stack.base, role)).list_buckets()
    assert sts_requests == [
        {
            "RoleArn": WRITER,
            "RoleSessionName": "fn.env",
            "DurationSeconds": 900,
            "ExternalId": "agreed-with-partner",
        }
    ]


def _first_use_of_runtime_writer(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    """Build runtime.py's writer session under these Lambda variables, and use it once."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    runtime.base.cache_clear()
    runtime.writer.cache_clear()
    try:
        sts_client(runtime.writer()).get_caller_identity()
    finally:
        runtime.writer.cache_clear()


def test_runtime_reads_the_cross_account_settings(
    aws: None, monkeypatch: pytest.MonkeyPatch, sts_requests: list[dict[str, Any]]
) -> None:
    partner_role = "arn:aws:iam::210987654321:role/partner-exports-writer"
    _first_use_of_runtime_writer(
        monkeypatch,
        WRITER_ROLE_ARN=partner_role,
        WRITER_EXTERNAL_ID="agreed-with-partner",
        WRITER_SESSION_SECONDS="1800",
    )
    assert sts_requests[0]["RoleArn"] == partner_role
    assert sts_requests[0]["ExternalId"] == "agreed-with-partner"
    assert sts_requests[0]["DurationSeconds"] == 1800
    assert sts_requests[0]["RoleSessionName"] == "items-test-ExportItemFunction.5f2b7c1e9a0d"
    assert sts_requests[0]["SourceIdentity"] == "items-test-ExportItemFunction"


# --- Role chains -------------------------------------------------------------------------------


@pytest.fixture
def chain_accounts(aws: None, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """A developer user allowed to assume only ``hub``; ``target`` allows anyone in the account.

    So ``target`` can only be reached through ``hub``: a chain that signed its second AssumeRole
    with the developer's own credentials would be denied. (moto does not match a role-ARN trust
    principal to that role's sessions, hence the open trust on ``target``.)
    """
    iam = boto3.Session(region_name=REGION).client("iam")
    iam.create_user(UserName="developer")
    hub_arn = f"arn:aws:iam::{ACCOUNT}:role/hub"
    iam.put_user_policy(
        UserName="developer",
        PolicyName="hub-only",
        PolicyDocument=_policy("sts:AssumeRole", hub_arn),
    )
    key = iam.create_access_key(UserName="developer")["AccessKey"]
    iam.create_role(
        RoleName="hub", AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{ACCOUNT}:user/developer")
    )
    iam.put_role_policy(
        RoleName="hub", PolicyName="assume", PolicyDocument=_policy("sts:AssumeRole", "*")
    )
    target_arn = iam.create_role(RoleName="target", AssumeRolePolicyDocument=_trust("*"))["Role"][
        "Arn"
    ]
    iam.put_role_policy(
        RoleName="target",
        PolicyName="identity",
        PolicyDocument=_policy("sts:GetCallerIdentity", "*"),
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    return hub_arn, target_arn


def test_role_chain_assumes_each_link_with_the_previous_links_credentials(
    chain_accounts: tuple[str, str], api_calls: collections.Counter[str]
) -> None:
    hub, target = chain_accounts
    base = base_session(REGION)
    chained = assumed_role_chain(base, RoleSpec(hub, "fn.env"), RoleSpec(target, "fn.env"))
    direct = assumed_role_session(base, RoleSpec(target, "fn.env"))
    assert api_calls == {}
    with iam_enforced():
        identity = sts_client(chained).get_caller_identity()
        assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/target/fn.env"
        assert api_calls["sts.AssumeRole"] == 2
        with pytest.raises(Exception, match="AccessDenied"):
            sts_client(direct).get_caller_identity()


def test_each_link_of_a_chain_refreshes_on_its_own(
    chain_accounts: tuple[str, str], api_calls: collections.Counter[str]
) -> None:
    hub, target = chain_accounts
    with time_machine.travel(START, tick=False) as clock:
        base = base_session(REGION)
        short_hub = RoleSpec(hub, "fn.env", duration_seconds=900)
        chained = assumed_role_chain(base, short_hub, RoleSpec(target, "fn.env"))
        client = sts_client(chained)
        for _ in range(5):
            client.get_caller_identity()
        assert api_calls["sts.AssumeRole"] == 2
        # The 15-minute hub session is refreshed when the target's needs it; the target's one-hour
        # credentials are still good and are not fetched again until they near their own expiry.
        clock.shift(timedelta(minutes=30))
        client.get_caller_identity()
        assert api_calls["sts.AssumeRole"] == 2
        clock.shift(timedelta(minutes=16))
        client.get_caller_identity()
        assert api_calls["sts.AssumeRole"] == 4


def test_chained_links_are_capped_at_one_hour() -> None:
    base = boto3.Session(region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
    with pytest.raises(ValueError, match="caps its session at 3600"):
        assumed_role_chain(
            base, RoleSpec(WRITER, "a"), RoleSpec(WRITER, "b", duration_seconds=7200)
        )
    with pytest.raises(ValueError, match=r"^a role chain needs at least one role$"):
        assumed_role_chain(base)


# --- Refresh under concurrency -----------------------------------------------------------------


@pytest.mark.parametrize("minutes_later", [0, 50], ids=["first-use", "refresh"])
def test_concurrent_threads_share_one_assume_role(
    stack: Stack, api_calls: collections.Counter[str], minutes_later: int
) -> None:
    client = s3_client(stack.writer)  # built once, shared by the threads
    barrier = threading.Barrier(8)

    def put(index: int) -> None:
        barrier.wait()
        client.put_object(Bucket=stack.exports.bucket_name, Key=f"exports/t/{index}", Body=b"{}")

    with time_machine.travel(START, tick=False) as clock:
        if minutes_later:
            put_warm = s3_client(stack.writer)
            put_warm.put_object(Bucket=stack.exports.bucket_name, Key="exports/t/warm", Body=b"{}")
            clock.shift(timedelta(minutes=minutes_later))
        before = api_calls["sts.AssumeRole"]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, range(8)))
    assert api_calls["sts.AssumeRole"] - before == 1


# --- Threads in a handler ----------------------------------------------------------------------


def test_parallel_batch_builds_no_session_and_touches_none_off_the_main_thread(
    stack: Stack,
    context: LambdaContext,
    clients_built: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler_module("ExportQueueFunction")  # init happens before the spies: only calls are watched
    clients_at_init = len(clients_built)
    sessions_created: list[int] = []
    session_use_threads: set[str] = set()
    original_init = botocore.session.Session.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        sessions_created.append(threading.get_ident())
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "__init__", counting_init)
    for method in ("client", "resource", "get_credentials"):
        original = getattr(boto3.Session, method)

        def watching(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            session_use_threads.add(threading.current_thread().name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(boto3.Session, method, watching)

    batch = load_event("ExportQueueFunction/batch")
    batch["Records"] = [copy.deepcopy(batch["Records"][0]) for _ in range(10)]
    for index, record in enumerate(batch["Records"]):
        record["messageId"] = f"parallel-{index}"
    assert call("ExportQueueFunction", batch, stack, context) == {"batchItemFailures": []}
    assert sessions_created == []
    assert len(clients_built) == clients_at_init
    assert len(stack.objects()) == 10
    assert not any(name.startswith("test-export") for name in session_use_threads)


# --- SnapStart ---------------------------------------------------------------------------------


def test_restore_from_a_snapshot_fetches_fresh_credentials(
    stack: Stack,
    api_calls: collections.Counter[str],
    clients_built: list[str],
    context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for built_once in (runtime.base, runtime.writer, runtime.items_table, runtime.exports_bucket):
        built_once.cache_clear()
    runtime._built_at_init.clear()
    before_init = len(clients_built)
    module = importlib.reload(handler_module("ExportItemFunction"))  # init, then "snapshot"
    built_at_init = sorted(clients_built[before_init:])
    event = load_event("ExportItemFunction/created")
    assert module.lambda_handler(event, context)["statusCode"] == 201
    writer_before = runtime.writer()
    assert api_calls["sts.AssumeRole"] == 1

    # Lambda restores the snapshot in a new execution environment, with its own credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "restored-key")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/23/[$LATEST]aa11bb22cc33dd44")
    before_restore = len(clients_built)
    for hook, args, kwargs in snapshot_restore_py._after_restore_registry:
        hook(*args, **kwargs)
    # The restore hook builds again what init built, so the first invocation after it builds none.
    assert sorted(clients_built[before_restore:]) == built_at_init == ["dynamodb", "s3", "sts"]

    assert runtime.writer() is not writer_before
    assert runtime.base().get_credentials().access_key == "restored-key"
    event["requestContext"]["requestId"] = "after-restore"
    assert module.lambda_handler(event, context)["statusCode"] == 201
    assert api_calls["sts.AssumeRole"] == 2
    identity = sts_client(runtime.writer()).get_caller_identity()["Arn"]
    assert identity.endswith("/items-test-ExportItemFunction.aa11bb22cc33")


# --- Failures that explain themselves ----------------------------------------------------------


def _error_lines(output: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("level") == "ERROR"]


def test_access_denied_on_assume_is_a_500_naming_the_role(
    stack: Stack, context: LambdaContext, logs: io.StringIO, capfd: pytest.CaptureFixture[str]
) -> None:
    iam = stack.admin.client("iam")
    role_name = WRITER.rpartition("/")[2]
    iam.update_assume_role_policy(
        RoleName=role_name, PolicyDocument=_trust(f"arn:aws:iam::{ACCOUNT}:user/nobody")
    )
    iam.create_user(UserName="function")
    iam.put_user_policy(
        UserName="function", PolicyName="read", PolicyDocument=_policy("dynamodb:GetItem", "*")
    )
    key = iam.create_access_key(UserName="function")["AccessKey"]
    base = boto3.Session(
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    stack.items = type(stack.items)(base, stack.items.table_name)
    stack.exports = type(stack.exports)(
        assumed_role_session(base, RoleSpec(WRITER, "items-test.5f2b7c1e9a0d")),
        stack.exports.bucket_name,
    )
    with iam_enforced():
        response = call(
            "ExportItemFunction", load_event("ExportItemFunction/created"), stack, context
        )
    assert response["statusCode"] == 500  # a denial no retry fixes
    assert "Retry-After" not in response["headers"]
    output = capfd.readouterr()
    [line] = _error_lines(logs.getvalue())
    assert line["resource"] == WRITER
    assert line["operation"] == "AssumeRole"
    assert line["error_code"] == "AccessDenied"
    assert line["retryable"] is False
    assert line["role_session_name"] == "items-test.5f2b7c1e9a0d"
    assert "trust policy" in line["hint"]
    everything = logs.getvalue() + output.out + output.err
    assert "Traceback" not in everything
    assert key["SecretAccessKey"] not in everything


def test_sts_unreachable_at_first_use_is_retried_once_then_every_record_fails_fast(
    aws: None,
    stack: Stack,
    context: LambdaContext,
    logs: io.StringIO,
    capfd: pytest.CaptureFixture[str],
) -> None:
    attempts: list[str] = []

    def unreachable(**kwargs: Any) -> AWSResponse:
        attempts.append(kwargs["request"].url)
        raise EndpointConnectionError(endpoint_url=kwargs["request"].url)

    base = base_session(REGION)
    base.events.register("before-send.sts.AssumeRole", unreachable)
    stack.exports = type(stack.exports)(
        assumed_role_session(base, RoleSpec(WRITER, "items-test.5f2b7c1e9a0d")),
        stack.exports.bucket_name,
    )
    event = load_event("ExportQueueFunction/batch")
    response = call("ExportQueueFunction", event, stack, context)
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == sorted(
        record["messageId"] for record in event["Records"]
    )
    # The first record retries STS; the others get the same explained failure at once.
    assert len(attempts) == MAX_ATTEMPTS
    output = capfd.readouterr()
    lines = _error_lines(logs.getvalue())
    assert {line["error_code"] for line in lines} == {"EndpointConnectionError"}
    assert all("NAT or endpoint" in line["hint"] for line in lines)
    assert "Traceback" not in logs.getvalue() + output.out + output.err


def test_missing_region_fails_init_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    runtime.base.cache_clear()
    try:
        with pytest.raises(runtime.ConfigurationError, match="AWS_REGION is not set"):
            runtime.base()
    finally:
        runtime.base.cache_clear()


def test_after_the_cooldown_sts_is_tried_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    outage = [True]

    def unreachable(**kwargs: Any) -> AWSResponse | None:
        attempts.append(kwargs["request"].url)
        if outage[0]:
            raise EndpointConnectionError(endpoint_url=kwargs["request"].url)
        return None

    base = base_session(REGION)
    base.events.register("before-send.sts.AssumeRole", unreachable)
    client = s3_client(assumed_role_session(base, RoleSpec(WRITER, "fn.env")))
    now = [1000.0]
    monkeypatch.setattr(assumed_role.time, "monotonic", lambda: now[0])
    for _ in range(3):
        with pytest.raises(AssumeRoleError):
            client.list_buckets()
    assert len(attempts) == MAX_ATTEMPTS
    now[0] += assumed_role.FAILURE_COOLDOWN_SECONDS
    outage[0] = False
    client.list_buckets()
    assert len(attempts) == MAX_ATTEMPTS + 1


def test_runtime_declares_the_chain_with_one_source_identity(
    aws: None, monkeypatch: pytest.MonkeyPatch, sts_requests: list[dict[str, Any]]
) -> None:
    hub = f"arn:aws:iam::{ACCOUNT}:role/hub"
    _first_use_of_runtime_writer(
        monkeypatch, WRITER_VIA_ROLE_ARN=hub, WRITER_EXTERNAL_ID="agreed-with-partner"
    )
    assert [request["RoleArn"] for request in sts_requests] == [hub, WRITER]
    assert "ExternalId" not in sts_requests[0]
    assert sts_requests[1]["ExternalId"] == "agreed-with-partner"
    assert {request["SourceIdentity"] for request in sts_requests} == {
        "items-test-ExportItemFunction"
    }
