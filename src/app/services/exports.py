"""Writes to the exports S3 bucket, through the writer role's session.

Every export gets its own key, ``<prefix><item_id>/<export_id>.json``, and is written with
``If-None-Match: *`` so S3 refuses to replace an object that already exists. Why a conditional
write rather than relying on bucket versioning: versioning keeps the old bytes, but the key would
still silently point at new content, and readers would have to know to look at older versions.
With a conditional write a redelivered request (same ``export_id``) finds its object already there
and is acknowledged without writing, which also makes retries idempotent. Versioning stays on as a
second line of defence against deletes.
"""

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from app.services.errors import AWS_ERRORS, DependencyError
from app.sessions import s3_client

DEFAULT_PREFIX = "exports/"


@dataclass(frozen=True)
class ExportResult:
    key: str
    created: bool
    """False when the object was already there: a retry of an export that had succeeded."""


class ExportsBucket:
    """The exports bucket, written with the writer role's session."""

    def __init__(
        self, session: boto3.Session, bucket_name: str, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self._client = s3_client(session)
        self.bucket_name = bucket_name
        self.prefix = prefix

    def key_for(self, item_id: str, export_id: str) -> str:
        return f"{self.prefix}{item_id}/{export_id}.json"

    def write(self, item_id: str, export_id: str, document: dict[str, Any]) -> ExportResult:
        """Store ``document`` under a key of its own, never replacing an existing object."""
        key = self.key_for(item_id, export_id)
        body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
        try:
            self._client.put_object(
                Bucket=self.bucket_name,
                Key=key,
                Body=body,
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return ExportResult(key=key, created=False)
            raise DependencyError.wrap(self.bucket_name, "PutObject", error) from error
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.bucket_name, "PutObject", error) from error
        return ExportResult(key=key, created=True)
