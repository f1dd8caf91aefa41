"""Progress of whole-table exports, in a DynamoDB table, so a run that stops can resume.

One item per run: its segments' progress (as JSON) and a lease. The lease makes sure only one
invocation works on a run at a time (SQS may deliver a continuation twice); every progress write
is conditional on still holding it, so a run that lost its lease cannot overwrite newer progress.
"""

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import dynamodb_client

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

RETENTION_SECONDS = 30 * 24 * 3600
"""Finished and abandoned runs expire (DynamoDB TTL) after this long."""


@dataclass
class SegmentProgress:
    """Where one scan segment stands: its object, the parts uploaded, and where to read next."""

    key: str
    upload_id: str | None = None
    etags: list[str] = field(default_factory=list)
    resume_key: dict[str, Any] | None = None
    """DynamoDB's key after the last item in an uploaded part; ``None`` means from the start."""
    items: int = 0
    done: bool = False


@dataclass
class ExportRun:
    run_id: str
    segments: list[SegmentProgress]
    complete: bool = False

    @property
    def items(self) -> int:
        return sum(segment.items for segment in self.segments)


class LeaseLostError(Exception):
    """Another invocation took over this run (ours outlived its lease): stop without writing."""


def _segment_attribute(index: int) -> str:
    return f"segment_{index}"


class ExportRunsTable:
    """Export runs, read and written with the function's own (base) session."""

    def __init__(self, session: boto3.Session, table_name: str) -> None:
        self._client = dynamodb_client(session)
        self.table_name = table_name

    def create(self, run: ExportRun, now: int) -> bool:
        """Record a new run; False when a run with this id exists already."""
        item: dict[str, AttributeValueTypeDef] = {
            "run_id": {"S": run.run_id},
            "total_segments": {"N": str(len(run.segments))},
            "status": {"S": "running"},
            "created_at": {"N": str(now)},
            "expires_at": {"N": str(now + RETENTION_SECONDS)},
        }
        for index, segment in enumerate(run.segments):
            item[_segment_attribute(index)] = {"S": json.dumps(asdict(segment))}
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(run_id)",
            )
        except AWS_ERRORS as error:
            if _condition_failed(error):
                return False
            raise DependencyError.wrap(self.table_name, "PutItem", error) from error
        return True

    def claim(self, run_id: str, owner: str, now: int, lease_seconds: int) -> ExportRun | None:
        """Take the lease on an unfinished run; ``None`` if it is finished, unknown or leased."""
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET lease_owner = :owner, lease_expires = :expires",
                ConditionExpression=(
                    "attribute_exists(run_id) AND #status = :running AND "
                    "(attribute_not_exists(lease_owner) OR lease_expires < :now "
                    "OR lease_owner = :owner)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":expires": {"N": str(now + lease_seconds)},
                    ":now": {"N": str(now)},
                    ":running": {"S": "running"},
                },
                ReturnValues="ALL_NEW",
            )
        except AWS_ERRORS as error:
            if _condition_failed(error):
                return None
            raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error
        attributes = response["Attributes"]
        total = int(attributes["total_segments"]["N"])
        segments = [
            SegmentProgress(**json.loads(attributes[_segment_attribute(index)]["S"]))
            for index in range(total)
        ]
        return ExportRun(run_id=run_id, segments=segments)

    def save_segment(self, run_id: str, owner: str, index: int, segment: SegmentProgress) -> None:
        self._update_leased(
            run_id,
            owner,
            "SET #segment = :segment",
            names={"#segment": _segment_attribute(index)},
            values={":segment": {"S": json.dumps(asdict(segment))}},
        )

    def release(self, run_id: str, owner: str) -> None:
        """Give the lease back so the continuation can start at once."""
        self._update_leased(run_id, owner, "REMOVE lease_owner, lease_expires")

    def finish(self, run_id: str, owner: str, manifest_key: str) -> None:
        self._update_leased(
            run_id,
            owner,
            "SET #status = :complete, manifest_key = :manifest REMOVE lease_owner, lease_expires",
            names={"#status": "status"},
            values={":complete": {"S": "complete"}, ":manifest": {"S": manifest_key}},
        )

    def _update_leased(
        self,
        run_id: str,
        owner: str,
        expression: str,
        names: dict[str, str] | None = None,
        values: "dict[str, AttributeValueTypeDef] | None" = None,
    ) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}},
                UpdateExpression=expression,
                ConditionExpression="lease_owner = :lease_owner",
                ExpressionAttributeNames=names or {},
                ExpressionAttributeValues={":lease_owner": {"S": owner}, **(values or {})},
            )
        except AWS_ERRORS as error:
            if _condition_failed(error):
                raise LeaseLostError(run_id) from error
            raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error


def _condition_failed(error: Exception) -> bool:
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
    )
