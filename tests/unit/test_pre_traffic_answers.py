"""The pre-traffic hook's own logic, exactly (mutation survivors): what a probe's answer is called
in the verdict, and the entry point's wiring of the execution environment's services. Fakes stand
in for Lambda and CodeDeploy: nothing here reaches AWS."""

from dataclasses import dataclass, field
from typing import Any

import pytest

from app.handlers import pre_traffic
from app.operations.pre_traffic import _answer
from app.services import Invocation
from tests.log_capture import lambda_output
from tools.emulator.lambda_context import LambdaContext


@pytest.mark.parametrize(
    ("invocation", "answer"),
    [
        (
            Invocation({"errorType": "Runtime.ImportModuleError"}, "Unhandled"),
            "Unhandled error Runtime.ImportModuleError",
        ),
        (Invocation({"errorMessage": "boom"}, "Unhandled"), "Unhandled error"),
        # Lambda's payload for a crashed runtime may be no JSON object at all.
        (Invocation("Task timed out", "Unhandled"), "Unhandled error"),
        (Invocation(None, "Unhandled"), "Unhandled error"),
    ],
    ids=["error-type", "no-error-type", "text-payload", "no-payload"],
)
def test_a_function_error_is_named_with_its_error_type_when_lambda_gives_one(
    invocation: Invocation, answer: str
) -> None:
    assert _answer(invocation) == answer


ARNS = {
    "GetItemFunction": "arn:aws:lambda:eu-west-1:123456789012:function:f-get:3",
    "ExportItemFunction": "arn:aws:lambda:eu-west-1:123456789012:function:f-export:3",
    "ExportQueueFunction": "arn:aws:lambda:eu-west-1:123456789012:function:f-queue:3",
    "ExportTableFunction": "arn:aws:lambda:eu-west-1:123456789012:function:f-table:3",
}


@dataclass
class _HealthyVersions:
    """Each version answers its probe as a healthy one does."""

    invoked: list[str] = field(default_factory=list)

    def invoke(self, version_arn: str, event: dict[str, Any]) -> Invocation:
        self.invoked.append(version_arn)
        if "Records" in event:
            return Invocation(
                {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
            )
        if "run_id" in event:
            return Invocation({"status": "rejected"})
        return Invocation({"statusCode": 404})


@dataclass
class _Deployments:
    reports: list[tuple[str, str, bool]] = field(default_factory=list)

    def report_hook(self, deployment_id: str, execution_id: str, *, succeeded: bool) -> None:
        self.reports.append((deployment_id, execution_id, succeeded))


def test_the_entry_point_probes_the_environments_targets_and_reports_to_its_codedeploy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    versions, deployments = _HealthyVersions(), _Deployments()
    monkeypatch.setattr(pre_traffic.runtime, "pre_traffic_targets", lambda: ARNS)
    monkeypatch.setattr(pre_traffic.runtime, "function_versions", lambda: versions)
    monkeypatch.setattr(pre_traffic.runtime, "deployments", lambda: deployments)
    event = {"DeploymentId": "d-ENTRY", "LifecycleEventHookExecutionId": "exec-entry"}
    context = LambdaContext("items-test-PreTrafficHookFunction", timeout_seconds=240)

    with lambda_output():
        response = pre_traffic.lambda_handler(event, context)  # type: ignore[arg-type]

    assert response["deployment_id"] == "d-ENTRY"
    assert response["status"] == "Succeeded"
    assert [(probe["function"], probe["version_arn"]) for probe in response["probes"]] == list(
        ARNS.items()
    )
    assert versions.invoked == list(ARNS.values())
    assert deployments.reports == [("d-ENTRY", "exec-entry", True)]
