"""AWS faults injected per attempt through botocore's event system, in place of moto's handler.

moto answers every request from a ``before-send`` handler it adds to every botocore session.
:class:`FaultyAws` takes that handler's place on the sessions it is installed on, after the
clients' own ``before-send`` handlers (the invocation deadline), as the network comes after them:
an attempt that an :class:`Injector` claims gets the injected fault (an error response in the
service's own wire format, or a raised timeout) and never reaches moto, so a failed write cannot
land in the store by accident; every other attempt goes to moto unchanged. botocore's retries,
backoff and error parsing all run as they would against AWS. Backoff is computed at its worst case
and recorded, not slept. A :class:`SimulatedClock` stands in for the monotonic clock the app
reads for its deadline and its STS cooldown; when it follows the faults, every injected timeout
and every backoff moves it forward by what they would have cost.
"""

import collections
import dataclasses
import io
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.retries import standard
from moto.core.models import botocore_stubber

from app.services import ExportsBucket, ItemsTable
from app.sessions import RoleSpec, assumed_role, assumed_role_session, base_session, deadline
from app.sessions.config import CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS
from tests.conftest import LAMBDA_ENVIRONMENT, REGION, Stack


class _Body(io.BytesIO):
    """A response body botocore can stream, as a socket would give it."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@dataclass(frozen=True)
class ServiceError:
    """An error response as the service would send it (status, code), in its wire protocol."""

    status: int
    code: str

    def response(self, service: str, request: AWSPreparedRequest) -> AWSResponse:
        message = f"injected {self.code}"
        if service == "dynamodb":
            body = (
                f'{{"__type":"com.amazonaws.dynamodb.v20120810#{self.code}","message":"{message}"}}'
            )
            headers = {"Content-Type": "application/x-amz-json-1.0"}
        elif service == "sts":
            body = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                f"<Type>Sender</Type><Code>{self.code}</Code><Message>{message}</Message>"
                "</Error><RequestId>injected</RequestId></ErrorResponse>"
            )
            headers = {"Content-Type": "text/xml"}
        else:  # s3: REST-XML
            body = f"<Error><Code>{self.code}</Code><Message>{message}</Message></Error>"
            headers = {"Content-Type": "application/xml"}
        headers["x-amzn-RequestId"] = "injected"
        return AWSResponse(request.url, self.status, headers, _Body(body.encode()))

    @property
    def seconds(self) -> float:
        """An error response arrives quickly; only timeouts cost their full bound."""
        return 0.0


@dataclass(frozen=True)
class Timeout:
    """A connection that could not be opened, or a response that did not come, in time."""

    error: type[ConnectTimeoutError] | type[ReadTimeoutError]

    def raise_for(self, request: AWSPreparedRequest) -> None:
        raise self.error(endpoint_url=request.url)

    @property
    def seconds(self) -> float:
        """The most the attempt can cost against a real endpoint: a read times out only after a
        connection that may itself have taken up to the connect timeout."""
        if self.error is ConnectTimeoutError:
            return CONNECT_TIMEOUT_SECONDS
        return CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS


Fault = ServiceError | Timeout

DYNAMODB_THROTTLING = ServiceError(400, "ThrottlingException")
DYNAMODB_THROUGHPUT = ServiceError(400, "ProvisionedThroughputExceededException")
DYNAMODB_INTERNAL = ServiceError(500, "InternalServerError")
S3_SLOW_DOWN = ServiceError(503, "SlowDown")
S3_UNAVAILABLE = ServiceError(503, "ServiceUnavailable")
S3_INTERNAL = ServiceError(500, "InternalError")
STS_THROTTLING = ServiceError(400, "Throttling")
STS_UNAVAILABLE = ServiceError(503, "ServiceUnavailable")
# Errors no retry fixes: botocore makes one attempt.
DYNAMODB_VALIDATION = ServiceError(400, "ValidationException")
DYNAMODB_ACCESS_DENIED = ServiceError(400, "AccessDeniedException")
DYNAMODB_NO_TABLE = ServiceError(400, "ResourceNotFoundException")
S3_ACCESS_DENIED = ServiceError(403, "AccessDenied")
S3_NO_SUCH_BUCKET = ServiceError(404, "NoSuchBucket")
S3_INVALID_REQUEST = ServiceError(400, "InvalidRequest")
STS_ACCESS_DENIED = ServiceError(403, "AccessDenied")
READ_TIMEOUT = Timeout(ReadTimeoutError)
CONNECT_TIMEOUT = Timeout(ConnectTimeoutError)


def _always(_request: AWSPreparedRequest) -> bool:
    return True


@dataclass
class Injector:
    """Fails the attempts of ``service.operation`` that ``when`` selects: the first ``times``
    of them, or all while ``active``."""

    service: str
    operation: str
    fault: Fault
    times: int | None = None
    when: Callable[[AWSPreparedRequest], bool] = _always
    active: bool = True
    injected: int = 0

    def claims(self, service: str, operation: str, request: AWSPreparedRequest) -> bool:
        return (
            self.active
            and (service, operation) == (self.service, self.operation)
            and (self.times is None or self.injected < self.times)
            and self.when(request)
        )


@dataclass
class SimulatedClock:
    """Monotonic seconds: real ones plus whatever the test says has passed."""

    follows_faults: bool = False
    """Whether injected timeouts and backoff move it (off where threads would overlap them)."""
    offset: float = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def spend(self, seconds: float) -> None:
        """Time a fault or a backoff would have taken, if this clock follows them."""
        if self.follows_faults:
            self.advance(seconds)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> "SimulatedClock":
        """Be the clock of the invocation deadline and of the failed-AssumeRole cooldown."""
        monkeypatch.setattr(deadline, "clock", self)
        monkeypatch.setattr(assumed_role, "time", SimpleNamespace(monotonic=self))
        return self


@dataclass
class FaultyAws:
    """The ``before-send`` handler of the sessions it is installed on (see the module docstring)."""

    injectors: list[Injector] = field(default_factory=list)
    attempts: collections.Counter[str] = field(default_factory=collections.Counter)
    """Every attempt that reached the wire, injected or not, as ``"service.Operation"``."""
    simulated_seconds: float = 0.0
    """What the injected faults would have cost in time against real endpoints."""
    clock: SimulatedClock = field(default_factory=SimulatedClock)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def inject(self, service: str, operation: str, fault: Fault, **options: Any) -> Injector:
        injector = Injector(service, operation, fault, **options)
        self.injectors.append(injector)
        return injector

    def install(self, session: boto3.Session) -> boto3.Session:
        """Take moto's place on ``session``: call it before the session builds any client."""
        botocore_session = session._session
        botocore_session.unregister("before-send", botocore_stubber)
        botocore_session.get_component("event_emitter").register_last("before-send", self)
        return session

    def __call__(
        self, event_name: str, request: AWSPreparedRequest, **kwargs: Any
    ) -> AWSResponse | None:
        _, service, operation = event_name.split(".")
        with self._lock:
            self.attempts[f"{service}.{operation}"] += 1
            claimed = next(
                (i for i in self.injectors if i.claims(service, operation, request)), None
            )
            if claimed is not None:
                claimed.injected += 1
                self.simulated_seconds += claimed.fault.seconds
                self.clock.spend(claimed.fault.seconds)
        if claimed is None:
            return botocore_stubber(event_name, request, **kwargs)
        if isinstance(claimed.fault, Timeout):
            claimed.fault.raise_for(request)
        assert isinstance(claimed.fault, ServiceError)
        return claimed.fault.response(service, request)


@dataclass
class Backoff:
    """Every delay botocore's standard retry mode chose, at its worst case (full jitter)."""

    delays: list[float] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.delays)


def record_backoff(monkeypatch: pytest.MonkeyPatch, clock: SimulatedClock | None = None) -> Backoff:
    """Make botocore compute its worst-case backoff, record it and sleep for none of it."""
    backoff = Backoff()
    original = standard.ExponentialBackoff.delay_amount

    def worst_case_not_slept(self: standard.ExponentialBackoff, context: Any) -> float:
        self._random = lambda: 1.0
        delay = original(self, context)
        backoff.delays.append(delay)
        if clock is not None:
            clock.spend(delay)
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", worst_case_not_slept)
    return backoff


def rebuild_services(stack: Stack, aws: FaultyAws, session_name: str) -> Stack:
    """``stack`` with its sessions and services rebuilt as app/runtime.py builds them, on sessions
    whose AWS can fail: the faults are installed before any client is built."""
    base = aws.install(base_session(REGION))
    writer = aws.install(
        assumed_role_session(base, RoleSpec(LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"], session_name))
    )
    return dataclasses.replace(
        stack,
        base=base,
        writer=writer,
        items=ItemsTable(base, LAMBDA_ENVIRONMENT["TABLE_NAME"]),
        exports=ExportsBucket(
            writer, LAMBDA_ENVIRONMENT["BUCKET_NAME"], LAMBDA_ENVIRONMENT["EXPORT_PREFIX"]
        ),
    )
