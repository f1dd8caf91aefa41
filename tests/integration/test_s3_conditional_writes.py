"""The emulated S3 lets exactly one of concurrent conditional writers win, as S3 does."""

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response

from tools.emulator import s3_conditional_writes

WRITERS = 8


class _Request:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


@pytest.mark.parametrize(("headers", "locked"), [({"If-None-Match": "*"}, True), ({}, False)])
def test_only_conditional_writes_hold_the_lock(headers: dict[str, str], locked: bool) -> None:
    seen: list[bool] = []

    def write(_: Any) -> str:
        seen.append(s3_conditional_writes._write_lock.locked())
        return "written"

    wrapped = s3_conditional_writes._atomic_when_conditional(write)
    assert wrapped(_Request(headers)) == "written"
    assert seen == [locked]


def test_both_of_motos_checked_writes_are_wrapped_once() -> None:
    s3_conditional_writes.install()
    wrapped = [getattr(S3Response, name) for name in s3_conditional_writes.WRITE_METHODS]
    s3_conditional_writes.install()
    assert [getattr(S3Response, name) for name in s3_conditional_writes.WRITE_METHODS] == wrapped
    assert all(getattr(method, "atomic", False) for method in wrapped)


def test_one_of_many_concurrent_if_none_match_writers_wins(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every writer is held after its existence check until all have passed it, or half a second.

    Without atomic writes all of them get there, having all found no object, and all write; with
    them, the first waits alone (the others queue on the lock), gives up, and is the one that wins.
    """
    s3 = boto3.Session(region_name="eu-west-1").client("s3")
    s3.create_bucket(
        Bucket="conditional-writes",
        CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
    )
    at_the_write = threading.Barrier(WRITERS, timeout=0.5)
    held = threading.local()
    put_object = S3Backend.put_object

    def held_at_the_write(self: S3Backend, *args: Any, **kwargs: Any) -> Any:
        if not getattr(held, "done", False):
            held.done = True
            with contextlib.suppress(threading.BrokenBarrierError):
                at_the_write.wait()
        return put_object(self, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "put_object", held_at_the_write)

    def put(writer: int) -> int:
        try:
            s3.put_object(
                Bucket="conditional-writes", Key="k", Body=str(writer).encode(), IfNoneMatch="*"
            )
        except ClientError as error:
            return int(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return 200

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        statuses = list(pool.map(put, range(WRITERS)))
    assert sorted(statuses) == [200] + [412] * (WRITERS - 1)
