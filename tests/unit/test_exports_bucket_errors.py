"""Which S3 call failed, as the operator's log line names it (mutation survivors), and what a
retry finds in an object's metadata. botocore's Stubber answers in place of S3: nothing is sent.
"""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from app.services import DependencyError, UploadGoneError
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


UPLOAD_CALLS = [
    (method, call)
    for method, call in CALLS
    if method in {"upload_part", "complete_multipart_upload"}
]


@pytest.mark.parametrize(("method", "call"), UPLOAD_CALLS, ids=[m for m, _ in UPLOAD_CALLS])
def test_a_gone_upload_is_named_by_its_s3_operation(
    stubbed: tuple[ExportsBucket, Stubber], method: str, call: Callable[[ExportsBucket], Any]
) -> None:
    bucket, stubber = stubbed
    stubber.add_client_error(method, "NoSuchUpload", http_status_code=404)

    with pytest.raises(UploadGoneError) as raised:
        call(bucket)

    operation = bucket._client.meta.method_to_api_mapping[method]
    assert (raised.value.resource, raised.value.operation) == (BUCKET, operation)


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


COMPLETE = {
    "Bucket": BUCKET,
    "Key": KEY,
    "UploadId": "upload-1",
    "MultipartUpload": {
        "Parts": [{"ETag": "e1", "PartNumber": 1}, {"ETag": "e2", "PartNumber": 2}]
    },
    "IfNoneMatch": "*",  # never over an object already there
}


def test_completing_over_an_existing_object_leaves_it_as_it_is(
    stubbed: tuple[ExportsBucket, Stubber],
) -> None:
    """S3 answers ``If-None-Match: *`` on an existing key with 412 PreconditionFailed."""
    bucket, stubber = stubbed
    stubber.add_response("complete_multipart_upload", {}, COMPLETE)
    stubber.add_client_error(
        "complete_multipart_upload",
        "PreconditionFailed",
        http_status_code=412,
        expected_params=COMPLETE,
    )

    bucket.complete_upload(KEY, "upload-1", ["e1", "e2"])
    bucket.complete_upload(KEY, "upload-1", ["e1", "e2"])  # no error: the object is there


@pytest.mark.parametrize(
    ("code", "error_class"),
    [("NoSuchUpload", UploadGoneError), ("InternalError", DependencyError)],
)
def test_only_a_gone_upload_is_one_at_completion(
    stubbed: tuple[ExportsBucket, Stubber], code: str, error_class: type[DependencyError]
) -> None:
    bucket, stubber = stubbed
    stubber.add_client_error("complete_multipart_upload", code, http_status_code=404)

    with pytest.raises(DependencyError) as raised:
        bucket.complete_upload(KEY, "upload-1", ["e1"])

    assert type(raised.value) is error_class


def test_an_export_is_put_as_json_with_its_fingerprint_and_caller_never_over_another(
    stubbed: tuple[ExportsBucket, Stubber],
) -> None:
    bucket, stubber = stubbed
    put = {
        "Bucket": BUCKET,
        "Key": KEY,
        "Body": b'{"item_id":"42","price":12.50}',  # the number as DynamoDB held it
        "ContentType": "application/json",
        "IfNoneMatch": "*",
        "Metadata": {"requested-by": "s-1", "request-sha256": "f-1"},
    }
    stubber.add_response("put_object", {}, put)

    result = bucket.write(
        "42", "e-1", {"item_id": "42", "price": Decimal("12.50")}, "f-1", {"requested-by": "s-1"}
    )

    assert (result.key, result.created) == (KEY, True)
