"""PreTrafficHookFunction's baseline for cold init: its two clients on the default session.

The hook invokes each new version and reports the verdict to CodeDeploy; this baseline reports
``Succeeded`` without probing, so only its init (the same clients, nothing else) is comparable.
"""

from typing import Any

import boto3

lambda_ = boto3.client("lambda")  # noqa: TID251 - the default session is the baseline
codedeploy = boto3.client("codedeploy")  # noqa: TID251


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    codedeploy.put_lifecycle_event_hook_execution_status(
        deploymentId=event["DeploymentId"],
        lifecycleEventHookExecutionId=event["LifecycleEventHookExecutionId"],
        status="Succeeded",
    )
    return {"status": "Succeeded"}
