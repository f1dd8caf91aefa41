"""One execution environment, measured: init (import the handler), then invocations.

Run as ``python -I -S bench/probe.py`` in a fresh process, exactly as
:mod:`tools.emulator.lambda_worker` runs (its ``_init`` and ``_invoke`` do the work here, loaded by
path), with the job on stdin. On top of what the worker reports it measures, with the standard
library only:

* the time of the handler's import (its module-level sessions and clients included);
* every socket the process opens or resolves (an audit hook: ``socket.connect``,
  ``socket.getaddrinfo``...), separately for init and for the invocations;
* every botocore client built (``Session.create_client``) and every API call;
* resident memory: ``VmHWM`` (peak) and ``VmRSS`` after init and after every invocation.

Bytecode is never written (``/var/task`` is read-only in Lambda). The result is one JSON object on
the original stdout; the function's own output goes to stderr, as in the worker.
"""

from __future__ import annotations

import collections
import importlib.abc
import importlib.util
import json
import os
import sys
import time
import uuid
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

WORKER_PATH = Path(__file__).resolve().parent.parent / "tools" / "emulator" / "lambda_worker.py"
CLIENTS: collections.Counter[str] = collections.Counter()
ATTEMPTS: collections.Counter[str] = collections.Counter()
SOCKETS: collections.Counter[str] = collections.Counter()
INIT_STARTS = b"bench-probe: init starts\n"
INIT_ENDS = b"bench-probe: init ends\n"


def _audit(event: str, _args: tuple[object, ...]) -> None:
    if event.startswith("socket."):
        SOCKETS[event] += 1


class _CountOnImport(importlib.abc.MetaPathFinder):
    """Count clients built and HTTP attempts made, from when the function imports botocore.

    Wraps ``botocore.session.Session.create_client`` and ``botocore.endpoint.Endpoint._send``
    (called once per attempt: a retried call makes more attempts than API calls).
    """

    def __init__(self) -> None:
        self._pending = {"botocore.session": self._clients, "botocore.endpoint": self._attempts}

    @staticmethod
    def _clients(module: ModuleType) -> None:
        original = module.Session.create_client

        def counting(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            CLIENTS[service_name] += 1
            return original(session, service_name, *args, **kwargs)

        module.Session.create_client = counting

    @staticmethod
    def _attempts(module: ModuleType) -> None:
        original = module.Endpoint._send

        def counting(endpoint: Any, request: Any) -> Any:  # noqa: ANN401
            ATTEMPTS["http"] += 1
            return original(endpoint, request)

        module.Endpoint._send = counting

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        patch = self._pending.pop(fullname, None)
        if patch is None:
            return None
        sys.meta_path.remove(self)  # find the real spec without coming back here
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            if self._pending:
                sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            patch(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _load_worker() -> Any:  # noqa: ANN401 - a module loaded by path
    spec = importlib.util.spec_from_file_location("_lambda_worker", WORKER_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {WORKER_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _memory_kib() -> tuple[int, int]:
    """(VmHWM, VmRSS) of this process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])


def main() -> int:
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the function's stdout joins its logs, as in the worker
    sys.dont_write_bytecode = True
    job: dict[str, Any] = json.load(sys.stdin)
    worker = _load_worker()
    lambda_context = worker._load_lambda_context()
    sys.addaudithook(_audit)
    sys.path[:0] = job["sys_path"]
    sys.meta_path.insert(0, worker._CountApiCallsOnImport())
    sys.meta_path.insert(0, _CountOnImport())

    os.write(2, INIT_STARTS)  # for ``-X importtime``: what follows is the function's init
    began = time.perf_counter()
    handler, init_error = worker._init(job["handler"])
    init_ms = (time.perf_counter() - began) * 1000
    os.write(2, INIT_ENDS)
    hwm, rss = _memory_kib()
    result: dict[str, Any] = {
        "init_ms": init_ms,
        "init_error": init_error,
        "init_api_calls": dict(worker.API_CALLS),
        "init_sockets": dict(SOCKETS),
        "init_clients": dict(CLIENTS),
        "init_hwm_kib": hwm,
        "init_rss_kib": rss,
        "modules": len(sys.modules),
    }
    result["init_attempts"] = ATTEMPTS["http"]
    worker.API_CALLS.clear()
    SOCKETS.clear()
    ATTEMPTS.clear()
    durations: list[float] = []
    cpu: list[float] = []
    hwm_kib: list[int] = []
    rss_kib: list[int] = []
    errors: list[Any] = []
    unexpected: list[str] = []
    unexpected_count = 0
    expect: dict[str, Any] = job.get("expect", {})
    for event in job["events"] if handler is not None else []:
        context = lambda_context(
            function_name=job["function_name"],
            memory_limit_in_mb=job["memory_mb"],
            timeout_seconds=job["timeout_seconds"],
            region=job["region"],
            aws_request_id=str(uuid.uuid4()),
            log_stream_name=job["log_stream_name"],
        )
        began, cpu_began = time.perf_counter(), time.process_time()
        payload, failure = worker._invoke(handler, event, context)
        durations.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - cpu_began) * 1000)
        hwm, rss = _memory_kib()
        hwm_kib.append(hwm)
        rss_kib.append(rss)
        if failure is not None:
            errors.append(failure)
        elif expect:
            response = json.loads(payload)
            if not isinstance(response, dict) or any(
                response.get(name) != value for name, value in expect.items()
            ):
                unexpected_count += 1
                unexpected.append(payload[:500])
    result.update(
        durations_ms=durations,
        cpu_ms=cpu,
        hwm_kib=hwm_kib,
        rss_kib=rss_kib,
        errors=errors[:3],
        error_count=len(errors),
        unexpected=unexpected[:3],
        unexpected_count=unexpected_count,
        api_calls=dict(worker.API_CALLS),
        sockets=dict(SOCKETS),
        clients=dict(CLIENTS),
        attempts=ATTEMPTS["http"],
    )
    channel.write(json.dumps(result) + "\n")
    channel.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
