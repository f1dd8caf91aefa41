"""The pre-traffic hook: each new version gets its probe, answered by the real handlers on moto,
and the verdict always reaches CodeDeploy (botocore's own model checks the calls' shape).

moto's Lambda runs code only in Docker and its CodeDeploy has no lifecycle hooks, so the versions
are the handlers themselves (called as their entry points do, with a moto-backed stack) and the
AWS calls of the two services are checked against botocore's Stubber, which validates every
parameter against the service model.
"""

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.handlers import pre_traffic
from app.operations import pre_traffic as operation
from app.services import DependencyError, Deployments, FunctionVersions, Invocation
from app.services.function_versions import Invocation as ServiceInvocation
from app.sessions import base_session
from tests.conftest import LAMBDA_ENVIRONMENT, REGION, Stack
from tests.handler_calls import call, context_for
from tests.log_capture import lambda_output
from tools.emulator.lambda_context import LambdaContext

TARGETS = {
    function: LAMBDA_ENVIRONMENT[variable]
    for function, variable in {
        "GetItemFunction": "GET_ITEM_VERSION_ARN",
        "ExportItemFunction": "EXPORT_ITEM_VERSION_ARN",
        "ExportQueueFunction": "EXPORT_QUEUE_VERSION_ARN",
        "ExportTableFunction": "EXPORT_TABLE_VERSION_ARN",
    }.items()
}
HOOK_EVENT = {"DeploymentId": "d-EXAMPLE11", "LifecycleEventHookExecutionId": "hook-exec-1"}


@dataclass
class _Versions:
    """Each version ARN answered by its function's real handler on the test stack."""

    stack: Stack
    answer: Callable[[str, dict[str, Any]], Invocation] | None = None
    invoked: list[str] = field(default_factory=list)

    def invoke(self, version_arn: str, event: dict[str, Any]) -> Invocation:
        self.invoked.append(version_arn)
        (function,) = [f for f, arn in TARGETS.items() if arn == version_arn]
        if self.answer is not None:
            return self.answer(function, event)
        # The payload crosses Lambda as JSON: what the hook sees is the decoded document.
        payload = json.loads(json.dumps(call(function, event, self.stack, context_for(function))))
        return Invocation(payload=payload)


@dataclass
class _Deployments:
    reports: list[tuple[str, str, bool]] = field(default_factory=list)

    def report_hook(self, deployment_id: str, execution_id: str, *, succeeded: bool) -> None:
        self.reports.append((deployment_id, execution_id, succeeded))


def _hook(versions: _Versions, deployments: _Deployments) -> dict[str, Any]:
    with lambda_output():
        response: dict[str, Any] = pre_traffic.handle(
            HOOK_EVENT,
            LambdaContext("items-test-PreTrafficHookFunction", timeout_seconds=240),
            targets=TARGETS,
            versions=versions,  # type: ignore[arg-type]
            deployments=deployments,  # type: ignore[arg-type]
        )
    return response


def test_healthy_versions_answer_every_probe_and_nothing_is_written(stack: Stack) -> None:
    versions, deployments = _Versions(stack), _Deployments()

    response = _hook(versions, deployments)

    assert response["status"] == "Succeeded", response
    assert versions.invoked == list(TARGETS.values())
    assert deployments.reports == [("d-EXAMPLE11", "hook-exec-1", True)]
    assert [(p["function"], p["answer"]) for p in response["probes"]] == [
        ("GetItemFunction", "statusCode 404"),
        ("ExportItemFunction", "statusCode 404"),
        ("ExportQueueFunction", "batchItemFailures 1"),
        ("ExportTableFunction", "status rejected"),
    ]
    assert stack.objects() == {}
    runs = stack.admin.client("dynamodb").scan(TableName=stack.runs.table_name)
    assert runs["Items"] == []


def test_the_http_probes_carry_the_scopes_their_routes_require() -> None:
    get, export, *_ = operation.probes("d-1")
    for probe, scope in ((get, "items/read"), (export, "items/export")):
        jwt = probe.event["requestContext"]["authorizer"]["jwt"]
        assert jwt["claims"]["scope"] == scope
        assert jwt["scopes"] == [scope]
        assert jwt["claims"]["sub"] == operation.PROBE_SUBJECT


@pytest.mark.parametrize(
    ("failing", "invocation"),
    [
        ("GetItemFunction", Invocation({"statusCode": 500, "body": "{}"})),
        ("ExportItemFunction", Invocation({"statusCode": 201, "body": "{}"})),
        ("ExportQueueFunction", Invocation({"batchItemFailures": []})),
        (
            "ExportTableFunction",
            Invocation({"errorType": "ImportModuleError"}, function_error="Unhandled"),
        ),
    ],
    ids=["5xx", "a-write", "nothing-reported", "init-error"],
)
def test_one_unhealthy_version_fails_the_hook_and_stops_the_probes(
    stack: Stack, failing: str, invocation: Invocation
) -> None:
    healthy = _Versions(stack)

    def answer(function: str, event: dict[str, Any]) -> Invocation:
        if function == failing:
            return invocation
        return healthy.invoke(TARGETS[function], event)

    versions, deployments = _Versions(stack, answer), _Deployments()
    response = _hook(versions, deployments)

    assert response["status"] == "Failed"
    assert deployments.reports == [("d-EXAMPLE11", "hook-exec-1", False)]
    assert versions.invoked[-1] == TARGETS[failing]  # nothing probed after the failure
    assert response["probes"][-1]["function"] == failing
    assert response["probes"][-1]["passed"] is False


def test_an_invoke_that_fails_fails_the_hook_and_is_still_reported(stack: Stack) -> None:
    def answer(function: str, event: dict[str, Any]) -> Invocation:
        raise DependencyError(
            TARGETS[function], "Invoke", "AccessDeniedException", "x", retryable=False
        )

    deployments = _Deployments()
    response = _hook(_Versions(stack, answer), deployments)

    assert response["status"] == "Failed"
    assert response["probes"] == [
        {
            "function": "GetItemFunction",
            "version_arn": TARGETS["GetItemFunction"],
            "passed": False,
            "expected": "statusCode 404 (or 200)",
            "answer": "AccessDeniedException",
        }
    ]
    assert deployments.reports == [("d-EXAMPLE11", "hook-exec-1", False)]


def test_a_missing_target_fails_the_hook() -> None:
    deployments = _Deployments()
    verdict = operation.run_pre_traffic_hook(
        "d-1",
        "e-1",
        targets={},
        versions=None,  # type: ignore[arg-type]
        deployments=deployments,  # type: ignore[arg-type]
    )
    assert verdict == operation.HookVerdict(
        "d-1",
        False,
        [
            operation.ProbeResult(probe.function, "", False, probe.expected, "no version")
            for probe in operation.probes("d-1")
        ],
    )
    assert deployments.reports == [("d-1", "e-1", False)]


@pytest.mark.parametrize(
    "event",
    [{}, {"DeploymentId": "d-1"}, [], {"DeploymentId": 1, "LifecycleEventHookExecutionId": "e"}],
)
def test_an_event_that_is_not_codedeploys_is_rejected_without_a_report(
    stack: Stack, event: Any
) -> None:
    deployments = _Deployments()
    with lambda_output():
        response = pre_traffic.handle(
            event,
            LambdaContext("items-test-PreTrafficHookFunction", timeout_seconds=240),
            targets=TARGETS,
            versions=_Versions(stack),  # type: ignore[arg-type]
            deployments=deployments,  # type: ignore[arg-type]
        )
    assert response == {"status": "rejected", "message": pre_traffic.NOT_A_HOOK_EVENT}
    assert deployments.reports == []


def test_a_report_that_fails_raises_so_lambda_retries(stack: Stack) -> None:
    class Failing(_Deployments):
        def report_hook(self, deployment_id: str, execution_id: str, *, succeeded: bool) -> None:
            raise DependencyError(
                deployment_id,
                "PutLifecycleEventHookExecutionStatus",
                "ThrottlingException",
                "x",
                retryable=True,
            )

    with pytest.raises(DependencyError):
        _hook(_Versions(stack), Failing())


# --- The services' calls, checked against botocore's models -------------------------------------


def _session() -> boto3.Session:
    return base_session(REGION)


def test_a_version_is_invoked_synchronously_by_its_arn() -> None:
    versions = FunctionVersions(_session())
    stubber = Stubber(versions._client)
    arn = TARGETS["GetItemFunction"]
    event = operation.probes("d-1")[0].event
    stubber.add_response(
        "invoke",
        {"StatusCode": 200, "Payload": io.BytesIO(b'{"statusCode": 404}')},
        {
            "FunctionName": arn,
            "InvocationType": "RequestResponse",
            "Payload": json.dumps(event).encode(),
        },
    )
    stubber.add_response(
        "invoke",
        {
            "StatusCode": 200,
            "FunctionError": "Unhandled",
            "Payload": io.BytesIO(b'{"errorType": "Runtime.ImportModuleError"}'),
        },
    )
    stubber.add_client_error("invoke", "AccessDeniedException", http_status_code=403)
    with stubber:
        assert versions.invoke(arn, event) == ServiceInvocation({"statusCode": 404})
        failed = versions.invoke(arn, event)
        assert failed.function_error == "Unhandled"
        with pytest.raises(DependencyError) as raised:
            versions.invoke(arn, event)
    assert (raised.value.operation, raised.value.code) == ("Invoke", "AccessDeniedException")
    assert raised.value.retryable is False


@pytest.mark.parametrize(("succeeded", "status"), [(True, "Succeeded"), (False, "Failed")])
def test_the_verdict_is_reported_for_the_hooks_execution(succeeded: bool, status: str) -> None:
    deployments = Deployments(_session())
    stubber = Stubber(deployments._client)
    stubber.add_response(
        "put_lifecycle_event_hook_execution_status",
        {"lifecycleEventHookExecutionId": "e-1"},
        {"deploymentId": "d-1", "lifecycleEventHookExecutionId": "e-1", "status": status},
    )
    with stubber:
        deployments.report_hook("d-1", "e-1", succeeded=succeeded)
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("payload", "decoded"),
    [(b"", None), (b"Task timed out \xff", "Task timed out \ufffd")],
    ids=["empty", "not-json"],
)
def test_a_payload_that_is_no_json_is_kept_as_text(payload: bytes, decoded: str | None) -> None:
    versions = FunctionVersions(_session())
    stubber = Stubber(versions._client)
    stubber.add_response(
        "invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(payload)}
    )
    with stubber:
        invocation = versions.invoke(TARGETS["GetItemFunction"], {})
    assert invocation == ServiceInvocation(decoded, function_error="Unhandled")


def test_a_failed_invoke_names_the_version() -> None:
    versions = FunctionVersions(_session())
    stubber = Stubber(versions._client)
    stubber.add_client_error("invoke", "ResourceNotFoundException", http_status_code=404)
    with stubber, pytest.raises(DependencyError) as raised:
        versions.invoke(TARGETS["ExportTableFunction"], {})
    assert raised.value.resource == TARGETS["ExportTableFunction"]


def test_a_report_codedeploy_refuses_names_the_deployment_and_the_call() -> None:
    deployments = Deployments(_session())
    stubber = Stubber(deployments._client)
    stubber.add_client_error(
        "put_lifecycle_event_hook_execution_status",
        "LifecycleEventAlreadyCompletedException",
        http_status_code=400,
    )
    with stubber, pytest.raises(DependencyError) as raised:
        deployments.report_hook("d-1", "e-1", succeeded=True)
    error = raised.value
    assert (error.resource, error.operation, error.code, error.retryable) == (
        "d-1",
        "PutLifecycleEventHookExecutionStatus",
        "LifecycleEventAlreadyCompletedException",
        False,
    )
    assert str(error).startswith("PutLifecycleEventHookExecutionStatus on d-1 failed")
