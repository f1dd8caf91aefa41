"""Progress of whole-table exports, in a DynamoDB table, so a run that stops can resume.

One item per run: its segments' progress (as JSON) and a lease. The lease makes sure only one
invocation works on a run at a time (SQS may deliver a continuation twice); every progress write
is conditional on still holding it, so a run that lost its lease cannot overwrite newer progress.

A fanned-out run (``fan_out``) has no run lease: each segment has its own (``lease_owner_<i>``),
so segments run in concurrent invocations, and finished segments are added to one number set
(``finished_segments``): DynamoDB applies each ``ADD`` atomically, so exactly one finisher sees
the set full and writes the manifest.
"""

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.exceptions import ClientError

from app.services.errors import AWS_ERRORS, DependencyError, LeaseLostError, UnknownSegmentError
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
    scanned: bool = False
    """Every part is uploaded: all that may be left is completing the upload."""
    done: bool = False


@dataclass
class ExportRun:
    run_id: str
    segments: list[SegmentProgress]
    complete: bool = False
    manifest_key: str | None = None
    created_at: int | None = None
    """When the run's first invocation claimed it (epoch seconds); ``None`` before it is stored."""
    dispatched: bool = False
    """A fanned-out run whose segment messages were all sent."""
    finished: frozenset[int] = frozenset()
    """A fanned-out run's segments recorded as finished."""

    @property
    def items(self) -> int:
        return sum(segment.items for segment in self.segments)


def _segment_attribute(index: int) -> str:
    return f"segment_{index}"


RUN_LEASE = ("lease_owner", "lease_expires")


def _segment_lease(index: int) -> tuple[str, str]:
    return f"lease_owner_{index}", f"lease_expires_{index}"


def _segments_placeholders(
    segments: list[SegmentProgress],
) -> tuple[dict[str, str], "dict[str, AttributeValueTypeDef]"]:
    """Expression names ``#s<i>`` and values ``:s<i>`` for each segment's attribute."""
    names = {f"#s{index}": _segment_attribute(index) for index in range(len(segments))}
    values: dict[str, AttributeValueTypeDef] = {
        f":s{index}": {"S": json.dumps(asdict(segment))} for index, segment in enumerate(segments)
    }
    return names, values


def _new_run(
    run: ExportRun, now: int
) -> tuple[list[str], dict[str, str], "dict[str, AttributeValueTypeDef]"]:
    """The ``SET`` assignments that record ``run`` as new, with their names and values.

    Each is ``if_not_exists``: the same write that starts a run leaves a stored one as it stands,
    so claiming (leased) and opening (fanned out) need no read first. ``:now`` is among the values.
    """
    names, values = _segments_placeholders(run.segments)
    values |= {
        ":now": {"N": str(now)},
        ":running": {"S": "running"},
        ":total": {"N": str(len(run.segments))},
        ":retained": {"N": str(now + RETENTION_SECONDS)},
    }
    assignments = [
        "#status = if_not_exists(#status, :running)",
        "total_segments = if_not_exists(total_segments, :total)",
        "created_at = if_not_exists(created_at, :now)",
        "expires_at = if_not_exists(expires_at, :retained)",
        *(f"{name} = if_not_exists({name}, :{name[1:]})" for name in names),
    ]
    return assignments, names | {"#status": "status"}, values


class ExportRunsTable:
    """Export runs, read and written with the function's own (base) session."""

    def __init__(self, session: boto3.Session, table_name: str) -> None:
        self._client = dynamodb_client(session)
        self.table_name = table_name

    def claim(self, run: ExportRun, owner: str, now: int, lease_seconds: int) -> ExportRun | None:
        """Take the lease on run ``run.run_id``, recording it as ``run`` if it is new.

        Returns the run as stored (a resumed run's saved progress); a finished run as it was
        finished (``complete``, not claimed); ``None`` while another owner's lease has not
        expired. One conditional write does it all, so that two invocations starting the same
        run at once cannot both hold it, and a failed condition returns the item that failed it.
        """
        new_attributes, names, values = _new_run(run, now)
        values |= {":owner": {"S": owner}, ":expires": {"N": str(now + lease_seconds)}}
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run.run_id}},
                UpdateExpression="SET lease_owner = :owner, lease_expires = :expires, "
                + ", ".join(new_attributes),
                ConditionExpression=(
                    "(attribute_not_exists(run_id) OR #status = :running) AND "
                    "attribute_not_exists(fan_out) AND "
                    "(attribute_not_exists(lease_owner) OR lease_expires < :now "
                    "OR lease_owner = :owner)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except AWS_ERRORS as error:
            if not (isinstance(error, ClientError) and _condition_failed(error)):
                raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error
            # DynamoDB returns the item that failed the condition (ALL_OLD) with the error.
            stored = cast("dict[str, Any]", error.response).get("Item", {})
            if stored.get("status", {}).get("S") != "complete":
                return None  # leased by a live owner (or fanned out: its segments' own leases)
            return _stored_run(run.run_id, stored)
        return _stored_run(run.run_id, response["Attributes"])

    def save_segment(
        self,
        run_id: str,
        owner: str,
        index: int,
        segment: SegmentProgress,
        *,
        segment_lease: bool,
    ) -> None:
        """Save one segment's progress, under the run's lease or (fanned out) the segment's: the
        caller says which, as saving under the wrong one would be refused as a lost lease."""
        self._update_leased(
            run_id,
            owner,
            "SET #segment = :segment",
            names={"#segment": _segment_attribute(index)},
            values={":segment": {"S": json.dumps(asdict(segment))}},
            lease=_segment_lease(index) if segment_lease else RUN_LEASE,
        )

    # --- Fanned-out runs: one invocation per segment, each under its segment's lease ------------

    def open_fan_out(self, run: ExportRun, now: int) -> ExportRun | None:
        """Record ``run`` as fanned out unless it exists; the run as stored, ``None`` when the id
        belongs to a run exported in one invocation."""
        new_attributes, names, values = _new_run(run, now)
        values[":true"] = {"BOOL": True}
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run.run_id}},
                UpdateExpression="SET fan_out = :true, " + ", ".join(new_attributes),
                ConditionExpression="attribute_not_exists(run_id) OR fan_out = :true",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except AWS_ERRORS as error:
            if _condition_failed(error):
                return None
            raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error
        return _stored_run(run.run_id, response["Attributes"])

    def mark_dispatched(self, run_id: str) -> None:
        """Every segment's message is sent: a duplicate trigger sends none again."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET dispatched = :true",
                ConditionExpression="fan_out = :true",
                ExpressionAttributeValues={":true": {"BOOL": True}},
            )
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error

    def claim_segment(
        self, run_id: str, index: int, owner: str, now: int, lease_seconds: int
    ) -> ExportRun | None:
        """Take segment ``index``'s lease; the run as stored (``complete`` if it is), ``None``
        while another owner's lease on the segment has not expired.

        Raises :class:`UnknownSegmentError` when the run is gone or has no such segment."""
        lease_owner, lease_expires = _segment_lease(index)
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET #owner = :owner, #expires = :expires",
                ConditionExpression=(
                    "attribute_exists(#segment) AND fan_out = :true AND #status = :running AND "
                    "(attribute_not_exists(#owner) OR #expires < :now OR #owner = :owner)"
                ),
                ExpressionAttributeNames={
                    "#owner": lease_owner,
                    "#expires": lease_expires,
                    "#segment": _segment_attribute(index),
                    "#status": "status",
                },
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":expires": {"N": str(now + lease_seconds)},
                    ":now": {"N": str(now)},
                    ":running": {"S": "running"},
                    ":true": {"BOOL": True},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except AWS_ERRORS as error:
            if not (isinstance(error, ClientError) and _condition_failed(error)):
                raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error
            stored = cast("dict[str, Any]", error.response).get("Item", {})
            if not stored.get("fan_out", {}).get("BOOL") or _segment_attribute(index) not in stored:
                raise UnknownSegmentError(f"run {run_id!r} has no segment {index}") from error
            if stored["status"]["S"] != "complete":  # open_fan_out stored it with its segments
                return None
            return _stored_run(run_id, stored)
        return _stored_run(run_id, response["Attributes"])

    def release_segment(
        self, run_id: str, owner: str, index: int, segment: SegmentProgress
    ) -> None:
        """Save the segment's progress and give its lease back, so its continuation can start."""
        lease = _segment_lease(index)
        self._update_leased(
            run_id,
            owner,
            "SET #segment = :segment REMOVE #lease_owner, #lease_expires",
            names={
                "#segment": _segment_attribute(index),
                "#lease_owner": lease[0],
                "#lease_expires": lease[1],
            },
            values={":segment": {"S": json.dumps(asdict(segment))}},
            lease=lease,
        )

    def finish_segment(
        self, run_id: str, owner: str, index: int, segment: SegmentProgress
    ) -> ExportRun:
        """Save the segment as done, give its lease back and add it to the finished set, in one
        write; the run as it stands after it (``finished`` full: this caller writes the manifest).
        """
        lease = _segment_lease(index)
        stored = self._update_leased(
            run_id,
            owner,
            "SET #segment = :segment REMOVE #lease_owner, #lease_expires ADD finished_segments :i",
            names={
                "#segment": _segment_attribute(index),
                "#lease_owner": lease[0],
                "#lease_expires": lease[1],
            },
            values={":segment": {"S": json.dumps(asdict(segment))}, ":i": {"NS": [str(index)]}},
            lease=lease,
            returning=True,
        )
        return _stored_run(run_id, stored)

    def complete_fanned_out(self, run_id: str, manifest_key: str) -> None:
        """Record a fanned-out run as complete once its manifest is written (again: harmless)."""
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}},
                UpdateExpression="SET #status = :complete, manifest_key = :manifest",
                ConditionExpression="fan_out = :true",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":complete": {"S": "complete"},
                    ":manifest": {"S": manifest_key},
                    ":true": {"BOOL": True},
                },
            )
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error

    def release(self, run_id: str, owner: str, segments: list[SegmentProgress]) -> None:
        """Save every segment's progress and give the lease back, so a continuation can start."""
        names, values = _segments_placeholders(segments)
        assignments = ", ".join(f"{name} = :{name[1:]}" for name in names)
        self._update_leased(
            run_id, owner, f"SET {assignments} REMOVE lease_owner, lease_expires", names, values
        )

    def finish(
        self, run_id: str, owner: str, manifest_key: str, segments: list[SegmentProgress]
    ) -> None:
        """Record the run as complete, with every segment's final progress (what a duplicate
        trigger of the finished run answers with)."""
        names, values = _segments_placeholders(segments)
        assignments = "".join(f", {name} = :{name[1:]}" for name in names)
        self._update_leased(
            run_id,
            owner,
            f"SET #status = :complete, manifest_key = :manifest{assignments} "
            "REMOVE lease_owner, lease_expires",
            names=names | {"#status": "status"},
            values=values | {":complete": {"S": "complete"}, ":manifest": {"S": manifest_key}},
        )

    def _update_leased(
        self,
        run_id: str,
        owner: str,
        expression: str,
        names: dict[str, str] | None = None,
        values: "dict[str, AttributeValueTypeDef] | None" = None,
        *,
        lease: tuple[str, str] = RUN_LEASE,
        returning: bool = False,
    ) -> dict[str, Any]:
        """Apply ``expression`` while ``owner`` holds ``lease``; with ``returning``, the stored
        attributes after it (else none: a checkpoint needs no answer)."""
        try:
            response = self._client.update_item(
                TableName=self.table_name,
                Key={"run_id": {"S": run_id}},
                UpdateExpression=expression,
                ConditionExpression="#held_by = :lease_owner",
                ExpressionAttributeNames={"#held_by": lease[0], **(names or {})},
                ExpressionAttributeValues={":lease_owner": {"S": owner}, **(values or {})},
                ReturnValues="ALL_NEW" if returning else "NONE",
            )
        except AWS_ERRORS as error:
            if _condition_failed(error):
                raise LeaseLostError(run_id) from error
            raise DependencyError.wrap(self.table_name, "UpdateItem", error) from error
        return dict(response.get("Attributes", {}))


def _stored_run(run_id: str, attributes: Mapping[str, Any]) -> ExportRun:
    """The run as ``attributes`` hold it: ``complete`` (with its manifest) once it is."""
    total = int(attributes["total_segments"]["N"])
    segments = [
        SegmentProgress(**json.loads(attributes[_segment_attribute(index)]["S"]))
        for index in range(total)
    ]
    created_at = attributes.get("created_at", {}).get("N")
    complete = attributes.get("status", {}).get("S") == "complete"
    return ExportRun(
        run_id=run_id,
        segments=segments,
        complete=complete,
        manifest_key=attributes["manifest_key"]["S"] if complete else None,
        created_at=int(created_at) if created_at is not None else None,
        dispatched=bool(attributes.get("dispatched", {}).get("BOOL")),
        finished=frozenset(int(n) for n in attributes.get("finished_segments", {}).get("NS", [])),
    )


def _condition_failed(error: Exception) -> bool:
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
    )
