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
        self._send({"run_id": run_id})

    def send_segment(self, run_id: str, segment: int) -> None:
        """One segment of a fanned-out run: started, or continued, by an invocation of its own."""
        self._send({"run_id": run_id, "segment": segment})

    def _send(self, body: dict[str, object]) -> None:
        # One SendMessage a message: SendMessageBatch would save calls only for runs of more than
        # a handful of segments, and each segment sends at most one per invocation.
        try:
            self._client.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.queue_url, "SendMessage", error) from error
