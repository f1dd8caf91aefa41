"""CodeDeploy's BeforeAllowTraffic hook: the new versions answer real requests, or no traffic moves.

CodeDeploy invokes this function with ``{"DeploymentId": ..., "LifecycleEventHookExecutionId":
...}`` and waits for its verdict. The verdict is always reported, ``Failed`` included: a hook that
never reports holds the deployment for an hour before CodeDeploy gives up. Only when the report
itself fails does the invocation raise, so that Lambda retries it.
"""

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from app import runtime
from app.handlers.invocation import within_remaining_time
from app.observability import logger, metrics
from app.operations import run_pre_traffic_hook
from app.services import DependencyError, Deployments, FunctionVersions

NOT_A_HOOK_EVENT = (
    "the event must carry CodeDeploy's DeploymentId and LifecycleEventHookExecutionId"
)


@logger.inject_lambda_context
@metrics.log_metrics
@within_remaining_time
def handle(
    event: dict[str, Any],
    context: LambdaContext,
    *,
    targets: dict[str, str],
    versions: FunctionVersions,
    deployments: Deployments,
) -> dict[str, Any]:
    deployment_id = event.get("DeploymentId") if isinstance(event, dict) else None
    execution_id = event.get("LifecycleEventHookExecutionId") if isinstance(event, dict) else None
    if not (isinstance(deployment_id, str) and isinstance(execution_id, str)):
        logger.error("not a CodeDeploy lifecycle hook event; nothing to report")
        metrics.add_metric(name="InvalidEvents", unit="Count", value=1)
        return {"status": "rejected", "message": NOT_A_HOOK_EVENT}
    try:
        verdict = run_pre_traffic_hook(
            deployment_id,
            execution_id,
            targets=targets,
            versions=versions,
            deployments=deployments,
        )
    except DependencyError as error:
        logger.error("the hook's verdict could not be reported", extra=error.log_fields())
        metrics.add_metric(name="PreTrafficReportsFailed", unit="Count", value=1)
        raise
    results = [asdict(result) for result in verdict.results]
    if verdict.passed:
        logger.info("new versions answered as expected", extra={"probes": results})
    else:
        logger.error(
            "a new version failed its probe; CodeDeploy rolls back", extra={"probes": results}
        )
    metrics.add_metric(
        name="PreTrafficProbesPassed" if verdict.passed else "PreTrafficProbesFailed",
        unit="Count",
        value=1,
    )
    return {
        "deployment_id": deployment_id,
        "status": "Succeeded" if verdict.passed else "Failed",
        "probes": results,
    }


runtime.at_init(runtime.pre_traffic_targets, runtime.function_versions, runtime.deployments)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = handle(
        event,
        context,
        targets=runtime.pre_traffic_targets(),
        versions=runtime.function_versions(),
        deployments=runtime.deployments(),
    )
    return response
