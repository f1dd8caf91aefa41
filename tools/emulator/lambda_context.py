"""A stand-in for the context object Lambda passes to a handler."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

DEFAULT_ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    """The attributes and method Powertools and handlers read from Lambda's context."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_seconds: float = 15.0
    region: str = "eu-west-1"
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_stream_name: str = "2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef"
    _deadline: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{DEFAULT_ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
