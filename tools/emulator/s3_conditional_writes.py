"""Make moto's conditional S3 writes atomic, as S3's are.

moto 5.2 checks ``If-None-Match: *`` (and ``If-Match``) on PutObject and CompleteMultipartUpload,
then writes, with nothing in between holding other requests off: two concurrent writers can both
pass the check and both answer 200, the second overwriting the first. S3 lets exactly one of them
win (the others get 412, or 409 ``ConditionalRequestConflict``). The export path's idempotency
rests on that guarantee, so the embedded AWS and the tests' in-process moto must keep it too, or
a correct program fails now and then (and a wrong one may pass).

:func:`install` serializes every conditional write in the process (unconditional ones are left
as they are); it is idempotent and stays for the life of the process, which is ours (the test
process, the embedded AWS's server).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.s3.responses import S3Response

CONDITIONAL_HEADERS = ("If-None-Match", "If-Match")
WRITE_METHODS = ("put_object", "_key_response_post")
"""PutObject, and the POST that completes a multipart upload: both check and then write."""

_write_lock = threading.Lock()


def _atomic_when_conditional(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def conditional_write(self: S3Response, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        if not any(self.headers.get(header) for header in CONDITIONAL_HEADERS):
            return write(self, *args, **kwargs)
        with _write_lock:
            return write(self, *args, **kwargs)

    conditional_write.atomic = True  # type: ignore[attr-defined]
    return conditional_write


def install() -> None:
    for name in WRITE_METHODS:
        write = getattr(S3Response, name)
        if not getattr(write, "atomic", False):
            setattr(S3Response, name, _atomic_when_conditional(write))
