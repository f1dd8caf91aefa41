"""CodeDeploy deployments of this stack's aliases: where a lifecycle hook reports its verdict.

CodeDeploy waits for the verdict (up to an hour) before it moves any traffic; ``Failed`` stops the
deployment, and CloudFormation rolls the stack back.
"""

import boto3

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import codedeploy_client


class Deployments:
    def __init__(self, session: boto3.Session) -> None:
        self._client = codedeploy_client(session)

    def report_hook(self, deployment_id: str, execution_id: str, *, succeeded: bool) -> None:
        try:
            self._client.put_lifecycle_event_hook_execution_status(
                deploymentId=deployment_id,
                lifecycleEventHookExecutionId=execution_id,
                status="Succeeded" if succeeded else "Failed",
            )
        except AWS_ERRORS as error:
            raise DependencyError.wrap(
                deployment_id, "PutLifecycleEventHookExecutionStatus", error
            ) from error
