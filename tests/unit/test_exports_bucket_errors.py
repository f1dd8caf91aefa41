"""Which S3 call failed, as the operator's log line names it (mutation survivors), and what a
retry finds in an object's metadata. botocore's Stubber answers in place of S3: nothing is sent.
"""

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.services import DependencyError
from app.services.exports import REQUEST_METADATA, ExportsBucket

pytestmark = pytest.mark.unit

BUCKET = "exports-bucket"
KEY = "exports/42/e-1.json"


@pytest.fixture
def stubbed() -> Iterator[tuple[ExportsBucket, Stubber]]:
    bucket = ExportsBucket(boto3.Session(), BUCKET)  # keys and region: tests/conftest.py
    with Stubber(bucket._client) as stubber:
        yield bucket, stubber
        stubber.assert_no_pending_responses()


CALLS: list[tuple[str, Callable[[ExportsBucket], Any]]] = [
    ("head_object", lambda bucket: bucket._fingerprint_of(KEY)),
    ("put_object", lambda bucket: bucket.put_new(KEY, b"{}", "application/json")),
    ("create_multipart_upload", lambda bucket: bucket.start_upload(KEY, "application/x-ndjson")),
    ("upload_part", lambda bucket: bucket.upload_part(KEY, "upload-1", 1, b"x")),
    ("complete_multipart_upload", lambda bucket: bucket.complete_upload(KEY, "upload-1", ["e"])),
]


@pytest.mark.parametrize(("method", "call"), CALLS, ids=[method for method, _ in CALLS])
def test_a_denied_call_is_named_by_its_s3_operation(
    stubbed: tuple[ExportsBucket, Stubber], method: str, call: Callable[[ExportsBucket], Any]
) -> None:
    bucket, stubber = stubbed
    stubber.add_client_error(method, "AccessDenied", http_status_code=403)

    with pytest.raises(DependencyError) as raised:
        call(bucket)

    operation = bucket._client.meta.method_to_api_mapping[method]
    assert (raised.value.resource, raised.value.operation) == (BUCKET, operation)
    assert (raised.value.code, raised.value.retryable) == ("AccessDenied", False)


@pytest.mark.parametrize(
    ("metadata", "fingerprint"),
    [({}, None), ({REQUEST_METADATA: "f-1"}, "f-1"), ({"caller": "someone"}, None)],
)
def test_the_fingerprint_is_the_object_s_request_metadata_or_none(
    stubbed: tuple[ExportsBucket, Stubber], metadata: dict[str, str], fingerprint: str | None
) -> None:
    bucket, stubber = stubbed
    stubber.add_response("head_object", {"Metadata": metadata}, {"Bucket": BUCKET, "Key": KEY})

    assert bucket._fingerprint_of(KEY) == fingerprint
