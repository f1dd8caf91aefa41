"""One Lambda execution environment: import the handler once (init), then invoke it per event.

Run by the local runner as ``python -I -S tools/emulator/lambda_worker.py`` in a fresh process, with
the function's environment and a job on stdin. ``-I -S`` start it with the standard library only;
the job's ``sys_path`` then decides what the function can import, as ``/var/task`` and the runtime's
own packages do in Lambda. So this file imports nothing outside the standard library at the top, and
writes no bytecode (``/var/task`` is read-only: every cold start compiles from source).

Protocol: the job is the first line of stdin; its ``events``, or, when it has none (null), one
event per further line of stdin until it closes (a warm environment serving requests as they
come). One JSON object per line on the original stdout (``start``, then ``result`` per
invocation); the function's own stdout goes to stderr with its logs, as both go to the log stream
in Lambda. ``START``/``END``/``REPORT`` lines are written to stderr the way Lambda writes them.
"""

from __future__ import annotations

import collections
import decimal
import importlib
import importlib.abc
import importlib.util
import json
import math
import os
import resource
import sys
import time
import traceback
import uuid
from _json import encode_basestring_ascii, make_encoder
from collections.abc import Callable, Iterator, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import IO, Any

API_CALLS: collections.Counter[str] = collections.Counter()


class _CountApiCallsOnImport(importlib.abc.MetaPathFinder):
    """Wrap botocore's ``BaseClient._make_api_call`` when the function first imports botocore.

    Patching on import, not importing botocore first, keeps the init duration honest for a
    function that does not use it, and counts the calls made during init too.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname != "botocore.client":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            original = module.BaseClient._make_api_call

            def counting(client: Any, operation_name: str, api_params: Any) -> Any:  # noqa: ANN401
                API_CALLS[f"{client.meta.service_model.service_name}.{operation_name}"] += 1
                return original(client, operation_name, api_params)

            module.BaseClient._make_api_call = counting

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _load_lambda_context() -> Any:  # noqa: ANN401 - the class, loaded without tools/ on sys.path
    """``lambda_context.py``, by path: the function must not be able to import ``tools``."""
    path = Path(__file__).with_name("lambda_context.py")
    spec = importlib.util.spec_from_file_location("_local_lambda_context", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module.LambdaContext


class _HandlerNotFoundError(Exception):
    """The template's Handler names no callable in its module."""


def _error(
    error: BaseException, error_type: str | None = None, message: str | None = None
) -> dict[str, Any]:
    """The payload Lambda's Python runtime returns for an unhandled error, logged as Lambda does."""
    payload = {
        "errorMessage": message if message is not None else str(error),
        "errorType": error_type or type(error).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(error.__traceback__),
    }
    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr)
    traceback.print_exception(error, file=sys.stderr)
    return payload


def _init(handler: str) -> tuple[Callable[..., Any] | None, dict[str, Any] | None]:
    """Import the handler (Lambda's init phase): the callable, or the error Lambda would report."""
    module_name, _, function_name = handler.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, function_name, None)
        if not callable(function):
            raise _HandlerNotFoundError(
                f"Handler '{function_name}' missing on module '{module_name}'"
            )
    except _HandlerNotFoundError as error:
        payload = _error(error, "Runtime.HandlerNotFound")
    except ImportError as error:
        message = f"Unable to import module '{module_name}': {error}"
        payload = _error(error, "Runtime.ImportModuleError", message)
    except SyntaxError as error:
        message = f"Syntax error in module '{module_name}': {error}"
        payload = _error(error, "Runtime.UserCodeSyntaxError", message)
    except Exception as error:  # noqa: BLE001 - any init failure is reported, as Lambda does
        payload = _error(error)
    else:
        return function, None
    return None, payload


class _RawDecimal(str):
    """A Decimal's text, written unquoted by :func:`_marshal`."""

    __slots__ = ()


def _decimal_text(value: object) -> object:
    if not isinstance(value, decimal.Decimal):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    return math.nan if value.is_nan() else _RawDecimal(value)


def _string(text: str) -> str:
    return text if type(text) is _RawDecimal else encode_basestring_ascii(text)


def _marshal(response: Any) -> str:  # noqa: ANN401 - whatever the handler returned
    """The response as Lambda's runtime serializes it: json.dumps' layout, and a Decimal as its
    exact text (the runtime writes ``RawJSON(str(decimal))``; NaN as NaN), never a rounded float.

    ``json.dumps`` cannot write raw text, so this is its own C encoder with a string encoder that
    leaves a :class:`_RawDecimal` unquoted (as ``app.services.exact_json`` does for the
    functions; this file imports only the standard library).
    """
    encode = make_encoder(None, _decimal_text, _string, None, ": ", ", ", False, False, True)
    return "".join(encode(response, 0))


def _invoke(
    handler: Callable[..., Any],
    event: object,
    context: object,
) -> tuple[str, dict[str, Any] | None]:
    """The serialized response, or the error payload Lambda would return instead."""
    try:
        response = handler(event, context)
    except Exception as failure:  # noqa: BLE001 - an unhandled error is the function's response
        return "", _error(failure)
    try:
        return _marshal(response), None
    except (TypeError, ValueError) as failure:
        message = f"Unable to marshal response: {failure}"
        return "", _error(failure, "Runtime.MarshalError", message)


def _max_memory_mb() -> int:
    """Peak resident memory of this process, in MB rounded up, as Lambda reports it.

    Linux keeps ``ru_maxrss`` across ``exec``, so it would report the runner's peak (the whole
    moto server); ``VmHWM`` starts afresh with the new program.
    """
    try:
        status = Path("/proc/self/status").read_text()
        kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")
        )
    except (OSError, StopIteration, ValueError, IndexError):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return -(-kib // 1024)


def _resources() -> dict[str, int]:
    """What this process holds now: resident memory, open file descriptors, sockets among them.

    Not in Lambda's REPORT line; the runner reads them to show that nothing grows per invocation.
    """
    resources = {"rss_kb": 0, "open_fds": 0, "sockets": 0}
    try:
        status = Path("/proc/self/status").read_text()
        resources["rss_kb"] = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        for name in os.listdir("/proc/self/fd"):
            resources["open_fds"] += 1
            try:
                resources["sockets"] += os.readlink(f"/proc/self/fd/{name}").startswith("socket:")
            except OSError:  # the descriptor listdir itself used, closed since
                resources["open_fds"] -= 1
    except (OSError, StopIteration, ValueError, IndexError):
        pass  # no /proc (not Linux): nothing to report
    return resources


def _counts(calls: dict[str, int]) -> str:
    return " ".join(f"{name}={count}" for name, count in sorted(calls.items())) or "none"


def _send(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _invocation(
    request_id: str,
    job: dict[str, Any],
    *,
    handler: Callable[..., Any] | None,
    init_error: dict[str, Any] | None,
    event: object,
    lambda_context: Any,  # noqa: ANN401 - the LambdaContext class
) -> dict[str, Any]:
    """One invocation between Lambda's START and END lines: its result message."""
    print(f"START RequestId: {request_id} Version: $LATEST", file=sys.stderr)
    API_CALLS.clear()
    began = time.monotonic()
    failure = init_error
    payload = ""
    if handler is not None:
        context = lambda_context(
            function_name=job["function_name"],
            memory_limit_in_mb=job["memory_mb"],
            timeout_seconds=job["timeout_seconds"],
            region=job["region"],
            aws_request_id=request_id,
            log_stream_name=job["log_stream_name"],
        )
        payload, failure = _invoke(handler, event, context)
    if failure is not None:
        payload = json.dumps({**failure, "requestId": request_id})
    duration_ms = (time.monotonic() - began) * 1000
    print(f"END RequestId: {request_id}", file=sys.stderr)
    return {
        "type": "result",
        "request_id": request_id,
        "payload": payload,
        "error": failure is not None,
        "duration_ms": duration_ms,
        "max_memory_mb": _max_memory_mb(),
        "api_calls": dict(API_CALLS),
        "resources": _resources(),
    }


def _report(result: dict[str, Any], memory_size_mb: int) -> None:
    """Lambda's REPORT line, and the runner's own CALLS line after it."""
    request_id = result["request_id"]
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {result['duration_ms']:.2f} ms\t"
        f"Memory Size: {memory_size_mb} MB\tMax Memory Used: {result['max_memory_mb']} MB"
    )
    calls = f"CALLS RequestId: {request_id}\t{_counts(result['api_calls'])}"
    if result["init_duration_ms"] is not None:
        report += f"\tInit Duration: {result['init_duration_ms']:.2f} ms"
        calls += f"\tInit: {_counts(result['init_api_calls'])}"
    print(report, file=sys.stderr)
    print(calls, file=sys.stderr)  # not Lambda's: what the invocation asked of AWS
    sys.stderr.flush()


def _streamed(stream: IO[str]) -> Iterator[object]:
    """Events one JSON line at a time, until stdin closes: a warm environment that waits for its
    next request, as Lambda's does between invocations."""
    while line := stream.readline():
        yield json.loads(line)


def main() -> int:
    started = time.monotonic()
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # print() and loggers writing to stdout land in the log stream (stderr)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    job = json.loads(sys.stdin.readline())
    sys.dont_write_bytecode = True
    lambda_context = _load_lambda_context()
    sys.path[:0] = job["sys_path"]
    sys.meta_path.insert(0, _CountApiCallsOnImport())

    handler, init_error = _init(job["handler"])
    init = {
        "init_duration_ms": (time.monotonic() - started) * 1000,
        "init_api_calls": dict(API_CALLS),
    }
    for event in job["events"] if job["events"] is not None else _streamed(sys.stdin):
        request_id = str(uuid.uuid4())
        _send(channel, {"type": "start", "request_id": request_id})
        result = {
            **_invocation(
                request_id,
                job,
                handler=handler,
                init_error=init_error,
                event=event,
                lambda_context=lambda_context,
            ),
            **init,
        }
        _report(result, job["memory_mb"])
        _send(channel, result)
        init = {"init_duration_ms": None, "init_api_calls": {}}
        if init_error is not None:
            break  # Lambda would start a new environment; the runner reports the failed init once
    return 0


if __name__ == "__main__":
    sys.exit(main())
