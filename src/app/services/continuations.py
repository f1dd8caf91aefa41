"""The queue that carries "carry on with this export run" to the next invocation.

A message is only deleted once an invocation has handled it, so if the process dies mid-run the
message comes back after its visibility timeout and the run resumes from its last checkpoint.
"""

import json

import boto3

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import sqs_client


class ContinuationQueue:
    def __init__(self, session: boto3.Session, queue_url: str) -> None:
        self._client = sqs_client(session)
        self.queue_url = queue_url

    def send(self, run_id: str) -> None:
        try:
            self._client.send_message(
                QueueUrl=self.queue_url, MessageBody=json.dumps({"run_id": run_id})
            )
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.queue_url, "SendMessage", error) from error
