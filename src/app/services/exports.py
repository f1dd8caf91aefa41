"""Writes to the exports S3 bucket, through the writer role's session.

Every export gets its own key, ``<prefix><item_id>/<export_id>.json``, and is written with
``If-None-Match: *`` so S3 refuses to replace an object that already exists. Why a conditional
write rather than relying on bucket versioning: versioning keeps the old bytes, but the key would
still silently point at new content, and readers would have to know to look at older versions.
With a conditional write a redelivered request (same ``export_id``) finds its object already there
and is acknowledged without writing, which also makes retries idempotent. Versioning stays on as a
second line of defence against deletes.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from app.services.errors import (
    AWS_ERRORS,
    DependencyError,
    IdempotencyConflictError,
    UploadGoneError,
)
from app.services.exact_json import dumps
from app.sessions import s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

DEFAULT_PREFIX = "exports/"
REQUEST_METADATA = "request-sha256"
"""The object's user metadata (``x-amz-meta-request-sha256``): the fingerprint of the request
that made it, compared when a retry finds the object there."""


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

    def write(
        self,
        item_id: str,
        export_id: str,
        document: dict[str, Any],
        fingerprint: str,
        recorded: Mapping[str, str] | None = None,
    ) -> ExportResult:
        """Store ``document`` under a key of its own, never replacing an existing object.

        When the key exists, the object there answers the retry only if the same request (by
        ``fingerprint``) made it; an object written before fingerprints were stored has none, and
        is taken as the same request's. ``recorded`` is more user metadata stored with it (who
        asked), never compared.
        """
        key = self.key_for(item_id, export_id)
        body = dumps(document).encode()  # numbers as exact as DynamoDB holds them
        metadata = {**(recorded or {}), REQUEST_METADATA: fingerprint}
        created = self.put_new(key, body, "application/json", metadata=metadata)
        if not created and self._fingerprint_of(key) not in {None, fingerprint}:
            raise IdempotencyConflictError(export_id)
        return ExportResult(key=key, created=created)

    def _fingerprint_of(self, key: str) -> str | None:
        try:
            response = self._client.head_object(Bucket=self.bucket_name, Key=key)
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.bucket_name, "HeadObject", error) from error
        return response.get("Metadata", {}).get(REQUEST_METADATA)

    def put_new(
        self,
        key: str,
        body: bytes | IO[bytes],
        content_type: str,
        metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Write ``key`` unless it exists; False when it did (the object is left as it was)."""
        try:
            self._client.put_object(
                Bucket=self.bucket_name,
                Key=key,
                Body=body,
                ContentType=content_type,
                IfNoneMatch="*",
                Metadata=dict(metadata or {}),
            )
        except AWS_ERRORS as error:
            if _precondition_failed(error):
                return False
            raise DependencyError.wrap(self.bucket_name, "PutObject", error) from error
        return True

    # Multipart uploads stream an object of any size in parts of at least 5 MiB (the last part may
    # be smaller). A part may be a file: botocore streams it, and rewinds it to retry.

    def start_upload(self, key: str, content_type: str) -> str:
        try:
            response = self._client.create_multipart_upload(
                Bucket=self.bucket_name, Key=key, ContentType=content_type
            )
        except AWS_ERRORS as error:
            raise DependencyError.wrap(self.bucket_name, "CreateMultipartUpload", error) from error
        return response["UploadId"]

    def upload_part(self, key: str, upload_id: str, number: int, body: bytes | IO[bytes]) -> str:
        """Upload part ``number`` (1-based) and return its ETag."""
        try:
            response = self._client.upload_part(
                Bucket=self.bucket_name, Key=key, UploadId=upload_id, PartNumber=number, Body=body
            )
        except AWS_ERRORS as error:
            if _upload_gone(error):
                raise UploadGoneError.wrap(self.bucket_name, "UploadPart", error) from error
            raise DependencyError.wrap(self.bucket_name, "UploadPart", error) from error
        return response["ETag"]

    def complete_upload(self, key: str, upload_id: str, etags: Sequence[str]) -> None:
        """Assemble the parts, unless ``key`` already exists: then an earlier invocation completed
        this upload (its parts are the same parts) and the object is left as it is."""
        parts: list[CompletedPartTypeDef] = [
            {"ETag": etag, "PartNumber": number} for number, etag in enumerate(etags, 1)
        ]
        try:
            self._client.complete_multipart_upload(
                Bucket=self.bucket_name,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except AWS_ERRORS as error:
            if _precondition_failed(error):
                return
            wrap = UploadGoneError.wrap if _upload_gone(error) else DependencyError.wrap
            raise wrap(self.bucket_name, "CompleteMultipartUpload", error) from error


def _precondition_failed(error: Exception) -> bool:
    """S3's answer to ``If-None-Match: *`` when the key exists."""
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "PreconditionFailed"
    )


def _upload_gone(error: Exception) -> bool:
    return isinstance(error, ClientError) and (
        error.response.get("Error", {}).get("Code") == "NoSuchUpload"
    )
