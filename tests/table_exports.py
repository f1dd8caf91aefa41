"""What a finished whole-table export leaves in the bucket, checked alike wherever it ran."""

import gzip
import json
from datetime import datetime, timedelta

from mypy_boto3_s3 import S3Client


def _versions(s3: S3Client, bucket: str, prefix: str) -> dict[str, int]:
    """How many versions each object under ``prefix`` has: a second write adds one."""
    listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
    counts: dict[str, int] = {}
    for version in listed.get("Versions", []):
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def assert_exported_once(
    s3: S3Client,
    bucket: str,
    run_prefix: str,
    ids: list[str],
    segments: int,
) -> str:
    """One manifest, one object a segment, each written once with its content type, and every one
    of ``ids`` (sorted) in them exactly once; ``run_prefix`` is the run's
    (``<export prefix>table/<run id>/``). Returns the manifest's key."""
    manifest_key = run_prefix + "manifest.json"
    assert _versions(s3, bucket, run_prefix) == {
        manifest_key: 1,
        **{f"{run_prefix}segment-{i}-of-{segments}.jsonl.gz": 1 for i in range(segments)},
    }
    stored_manifest = s3.get_object(Bucket=bucket, Key=manifest_key)
    assert stored_manifest["ContentType"] == "application/json"
    manifest = json.loads(stored_manifest["Body"].read())
    assert set(manifest) == {"run_id", "table", "completed_at", "items", "objects"}
    assert manifest["run_id"] == run_prefix.rstrip("/").rpartition("/")[2]
    assert isinstance(manifest["table"], str)
    assert manifest["table"]
    assert datetime.fromisoformat(manifest["completed_at"]).utcoffset() == timedelta(0)
    exported: list[str] = []
    for entry in manifest["objects"]:
        stored = s3.get_object(Bucket=bucket, Key=entry["key"])
        assert stored["ContentType"] == "application/gzip", entry["key"]  # whole or multipart
        body = stored["Body"].read()
        lines = [json.loads(line)["item_id"] for line in gzip.decompress(body).splitlines()]
        assert len(lines) == entry["items"]
        exported += lines
    assert sorted(exported) == ids
    assert manifest["items"] == len(ids)
    return manifest_key
