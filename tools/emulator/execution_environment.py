"""Run a function as Lambda would: a fresh process per execution environment, its own role.

The worker (:mod:`tools.emulator.lambda_worker`) gets only what Lambda would give it: the variables
the template declares (with ``--env-vars`` overrides), Lambda's own variables, credentials of the
function's role obtained with ``sts:AssumeRole`` in the embedded AWS, and ``AWS_ENDPOINT_URL``
pointing there. Nothing of the developer's environment (profiles, keys, ``~/.aws``) reaches it.

Code comes from the ``sam build`` artifact when there is one, with only the packages the Lambda
runtime provides beside it, so a dependency missing from ``src/requirements.txt`` fails here as
it would in Lambda. Without an artifact it comes from ``CodeUri`` (``src/``) with this venv's
packages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from tools.emulator import sam_template
from tools.emulator.embedded_aws import EmbeddedAws
from tools.emulator.provision import Function

WORKER = Path(__file__).with_name("lambda_worker.py")
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "urllib3",
    "six",
    "snapshot_restore_py",
)
"""What Lambda's Python runtime lets a function import without packaging it."""
INIT_TIMEOUT_SECONDS = 10.0
"""Lambda's limit on an on-demand init phase."""
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Invocation:
    """One invocation's outcome, and what Lambda's REPORT line (and the runner) tell about it."""

    request_id: str
    response: Any
    error: bool
    """The function raised, failed its init or timed out: ``response`` is Lambda's error payload."""
    duration_ms: float
    init_duration_ms: float | None
    max_memory_mb: int
    api_calls: dict[str, int] = field(default_factory=dict)
    init_api_calls: dict[str, int] = field(default_factory=dict)
    resources: dict[str, int] = field(default_factory=dict)
    """The worker after the invocation: ``rss_kb``, ``open_fds``, ``sockets`` (Linux only)."""
    payload: str = ""
    """``response`` as the runtime wrote it: JSON text, what ``aws lambda invoke`` would print."""


@dataclass(frozen=True)
class Code:
    """Where the function's code comes from, and what else it may import."""

    directory: Path
    from_build: bool
    warnings: tuple[str, ...] = ()


def code_for(function: Function, template_path: Path, use_build: bool = True) -> Code:
    """The function's ``sam build`` artifact if there is one (and ``use_build``), else CodeUri."""
    built_template = template_path.parent / ".aws-sam" / "build" / "template.yaml"
    if use_build and built_template.is_file():
        built = sam_template.load(built_template)["Resources"].get(function.logical_id, {})
        code_uri = built.get("Properties", {}).get("CodeUri")
        if isinstance(code_uri, str) and (built_template.parent / code_uri).is_dir():
            newest_source = max(
                (
                    p.stat().st_mtime
                    for p in function.code_uri.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts
                ),
                default=0.0,
            )
            warnings = ()
            if newest_source > built_template.stat().st_mtime:
                source = os.path.relpath(function.code_uri, template_path.parent)
                warnings = (
                    f"{source}/ changed after the last `sam build`: running the older "
                    "artifact in .aws-sam/build (`make build` updates it; --no-build runs the "
                    "source)",
                )
            return Code(built_template.parent / code_uri, from_build=True, warnings=warnings)
    return Code(function.code_uri, from_build=False)


@contextmanager
def _runtime_packages() -> Iterator[Path]:
    """A directory holding (links to) just the packages Lambda's runtime provides."""
    directory = Path(tempfile.mkdtemp(prefix="lambda-runtime-"))
    try:
        for name in RUNTIME_PROVIDED:
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                continue
            source = Path(spec.origin)
            if source.name == "__init__.py":
                source = source.parent
            (directory / source.name).symlink_to(source)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def role_credentials(aws: EmbeddedAws, function: Function) -> dict[str, str]:
    """The function role's credentials, as Lambda hands them over (session named after it)."""
    credentials = aws.client("sts").assume_role(
        RoleArn=function.role_arn, RoleSessionName=function.name[:64]
    )["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def lambda_environment(
    function: Function,
    aws: EmbeddedAws,
    code: Code,
    variables: dict[str, str],
    credentials: dict[str, str],
) -> dict[str, str]:
    """An execution environment's process environment: Lambda's variables and the function's."""
    now = datetime.now(UTC)
    environment = {
        "PATH": _DEFAULT_PATH,
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(code.directory),
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_REGION": aws.region,
        "AWS_DEFAULT_REGION": aws.region,
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group or f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
        # Not Lambda's, but what keeps the function off the developer's ~/.aws and the network:
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": aws.endpoint_url,
        **credentials,
    }
    if function.log_format:
        environment["AWS_LAMBDA_LOG_FORMAT"] = function.log_format
        if function.log_format == "JSON" and function.log_level:
            environment["AWS_LAMBDA_LOG_LEVEL"] = function.log_level
    return {**variables, **environment}


class _Messages:
    """The worker's protocol lines, read on a thread so that waiting can time out."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(json.loads(line))
        self._queue.put(None)

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next message; None when the worker ended. Raises ``queue.Empty`` on timeout."""
        return self._queue.get(timeout=timeout)


def _timed_out(request_id: str, function: Function) -> Invocation:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    seconds = function.timeout_seconds
    response = {
        "errorMessage": f"{stamp} {request_id} Task timed out after {seconds:.2f} seconds",
        "errorType": "Sandbox.Timedout",
    }
    return Invocation(
        request_id=request_id,
        response=response,
        error=True,
        duration_ms=seconds * 1000.0,
        init_duration_ms=None,
        max_memory_mb=0,
        payload=json.dumps(response),
    )


def _start_worker(
    function: Function,
    aws: EmbeddedAws,
    *,
    code: Code,
    variables: dict[str, str],
    runtime_dir: Path,
    events: list[Any] | None,
    stderr: IO[str] | int | None,
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """A new execution environment's process, with the role's credentials and Lambda's
    variables, and the job it is to be sent: ``events`` to run at once, or None to take them
    one at a time from its stdin."""
    environment = lambda_environment(
        function, aws, code, variables, role_credentials(aws, function)
    )
    sys_path = (
        [str(code.directory), str(runtime_dir)]
        if code.from_build
        else [str(code.directory), *_site_packages()]
    )
    job = {
        "handler": function.handler,
        "sys_path": sys_path,
        "events": events,
        "function_name": function.name,
        "memory_mb": function.memory_mb,
        "timeout_seconds": function.timeout_seconds,
        "region": aws.region,
        "log_stream_name": environment["AWS_LAMBDA_LOG_STREAM_NAME"],
    }
    worker = subprocess.Popen(
        [sys.executable, "-I", "-S", str(WORKER)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=environment,
        cwd=code.directory,
        text=True,
    )
    return worker, job


def run(
    function: Function,
    aws: EmbeddedAws,
    events: list[Any],
    *,
    code: Code,
    variables: dict[str, str],
    on_invocation: Callable[[Invocation], None] | None = None,
    stderr: IO[str] | int | None = None,
) -> list[Invocation]:
    """Invoke ``function`` once per event, all in one new execution environment (warm after one).

    ``variables`` are the function's environment variables, already merged with overrides.
    ``on_invocation`` sees each outcome as it happens (the CLI prints it at once). The worker's
    logs go to ``stderr`` (this process's by default).
    """
    with _runtime_packages() as runtime_dir:
        worker, job = _start_worker(
            function,
            aws,
            code=code,
            variables=variables,
            runtime_dir=runtime_dir,
            events=events,
            stderr=stderr,
        )
        try:
            return _converse(worker, job, function, on_invocation)
        finally:
            if worker.poll() is None:
                worker.kill()
            worker.wait()


def _converse(
    worker: subprocess.Popen[str],
    job: dict[str, Any],
    function: Function,
    on_invocation: Callable[[Invocation], None] | None,
) -> list[Invocation]:
    assert worker.stdin is not None  # noqa: S101 - Popen was asked for pipes
    assert worker.stdout is not None  # noqa: S101
    worker.stdin.write(json.dumps(job))
    worker.stdin.close()
    messages = _Messages(worker.stdout)
    invocations: list[Invocation] = []
    deadline = time.monotonic() + INIT_TIMEOUT_SECONDS + function.timeout_seconds
    request_id = ""
    while True:
        try:
            message = messages.next(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            worker.kill()
            invocation = _timed_out(request_id or str(uuid.uuid4()), function)
            invocations.append(invocation)
            if on_invocation:
                on_invocation(invocation)
            return invocations
        if message is None:
            return invocations
        if message["type"] == "start":
            request_id = message["request_id"]
            deadline = time.monotonic() + function.timeout_seconds
            continue
        invocation = Invocation(
            request_id=message["request_id"],
            response=json.loads(message["payload"], parse_float=Decimal),  # every digit kept
            error=message["error"],
            duration_ms=message["duration_ms"],
            init_duration_ms=message["init_duration_ms"],
            max_memory_mb=message["max_memory_mb"],
            api_calls=message["api_calls"],
            init_api_calls=message["init_api_calls"],
            resources=message.get("resources", {}),
            payload=message["payload"],
        )
        invocations.append(invocation)
        if on_invocation:
            on_invocation(invocation)
        deadline = time.monotonic() + INIT_TIMEOUT_SECONDS  # until the next start, if any


class EnvironmentEndedError(Exception):
    """The environment's process ended before it took the event (a failed init ends it): the
    event was not run, and a new environment may take it."""


class WarmEnvironment:
    """One execution environment kept between invocations, as Lambda keeps one between requests.

    The worker starts (and inits the function) at once, then takes one event at a time, for as
    long as it lives: one init, then warm invocations. Lambda runs one invocation at a time in an
    environment; so does this (callers hold it while they invoke). A timeout ends it, as it ends
    Lambda's sandbox: the next event needs a new environment.
    """

    def __init__(
        self,
        function: Function,
        aws: EmbeddedAws,
        *,
        code: Code,
        variables: dict[str, str],
        stderr: IO[str] | int | None = None,
    ) -> None:
        self.function = function
        self.invocations = 0
        self._closed = False
        self._runtime = _runtime_packages()
        runtime_dir = self._runtime.__enter__()
        self._worker, job = _start_worker(
            function,
            aws,
            code=code,
            variables=variables,
            runtime_dir=runtime_dir,
            events=None,
            stderr=stderr,
        )
        assert self._worker.stdin is not None  # noqa: S101 - Popen was asked for pipes
        assert self._worker.stdout is not None  # noqa: S101
        self._stdin = self._worker.stdin
        self._stdin.write(json.dumps(job) + "\n")
        self._stdin.flush()
        self._messages = _Messages(self._worker.stdout)

    @property
    def alive(self) -> bool:
        return self._worker.poll() is None

    def invoke(self, event: Any) -> Invocation:  # noqa: ANN401 - any JSON event
        """Run ``event``; its outcome (a timeout included). Raises
        :class:`EnvironmentEndedError` when the environment ended before taking it."""
        try:
            self._stdin.write(json.dumps(event) + "\n")
            self._stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as error:
            raise EnvironmentEndedError(str(error)) from None
        # The first event waits for the init too; Lambda bounds that by its own limit.
        waited = INIT_TIMEOUT_SECONDS if self.invocations == 0 else 0.0
        started: dict[str, Any] | None = None
        try:
            started = self._messages.next(timeout=waited + self.function.timeout_seconds)
            if started is None:
                raise EnvironmentEndedError("the environment ended")
            result = self._messages.next(timeout=self.function.timeout_seconds)
        except queue.Empty:
            self.invocations += 1
            self.close()
            request_id = started["request_id"] if started else str(uuid.uuid4())
            return _timed_out(request_id, self.function)
        self.invocations += 1
        if result is None:  # the function ended its process (os._exit, a crash)
            response = {
                "errorType": "Runtime.ExitError",
                "errorMessage": "RequestId: "
                f"{started['request_id']} Error: Runtime exited without providing a reason",
            }
            return Invocation(started["request_id"], response, True, 0.0, None, 0, payload="")
        return Invocation(
            request_id=result["request_id"],
            response=json.loads(result["payload"], parse_float=Decimal),
            error=result["error"],
            duration_ms=result["duration_ms"],
            init_duration_ms=result["init_duration_ms"],
            max_memory_mb=result["max_memory_mb"],
            api_calls=result["api_calls"],
            init_api_calls=result["init_api_calls"],
            resources=result.get("resources", {}),
            payload=result["payload"],
        )

    def close(self) -> None:
        """End the environment (its process) and remove what it ran from."""
        if self._closed:
            return
        self._closed = True
        if self.alive:
            try:
                self._stdin.close()  # the worker's loop ends with its stdin
                self._worker.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self._worker.kill()
        self._worker.wait()
        self._runtime.__exit__(None, None, None)
