"""Execution environments for the benchmark: a function's code, Lambda's variables, a fresh process.

Each run is one ``bench/probe.py`` process started the way
:mod:`tools.emulator.execution_environment` starts a worker (``python -I -S``, the function's
directory as working directory and ``LAMBDA_TASK_ROOT``, Lambda's variables, the function role's
credentials), from one of these code directories:

* ``build``: the function's ``sam build`` artifact, next to only the packages the Lambda runtime
  provides (boto3, botocore...), as Lambda loads it;
* ``build, no .pyc``: a copy of that artifact without its bytecode, which is what SAM's default
  Python build ships;
* ``src/``: a copy of ``CodeUri`` without bytecode, with this virtual environment's packages
  (precompiled by pip), as ``make invoke --no-build`` runs it;
* a baseline: a copy of ``bench/baseline/`` next to the runtime's packages.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.emulator import execution_environment
from tools.emulator.execution_environment import Code
from tools.emulator.local_lambda import LocalAws
from tools.emulator.provision import Function

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).with_name("probe.py")
BASELINE = Path(__file__).with_name("baseline")
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "bench-session-token",
}
"""Credentials for init runs: nothing may be called with them, and nothing is."""
PROBE_TIMEOUT_SECONDS = 600.0


class ProbeError(RuntimeError):
    """An execution environment failed in a way the benchmark cannot measure."""


@dataclass(frozen=True)
class Variant:
    """Where a function's code comes from, and what it may import besides."""

    label: str
    directory: Path
    runtime_only: bool
    """True: only the packages Lambda's runtime provides (a build); False: this venv's."""


def closed_endpoint() -> str:
    """A URL on 127.0.0.1 where nothing listens: any call made through it fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def copy_without_bytecode(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return destination


@contextmanager
def workspace() -> Iterator[Path]:
    """A scratch directory holding the runtime's packages and the copies the variants need."""
    with execution_environment._runtime_packages() as runtime_dir:
        scratch = Path(tempfile.mkdtemp(prefix="bench-"))
        try:
            (scratch / "runtime").symlink_to(runtime_dir)
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Environments:
    """Starts probes for the functions of one embedded AWS."""

    local: LocalAws
    scratch: Path

    @property
    def runtime_dir(self) -> Path:
        return self.scratch / "runtime"

    def baseline(self) -> Variant:
        directory = self.scratch / "baseline"
        if not directory.exists():
            copy_without_bytecode(BASELINE, directory)
        return Variant("baseline", directory, runtime_only=True)

    def source(self, function: Function) -> Variant:
        directory = self.scratch / "src"
        if not directory.exists():
            copy_without_bytecode(function.code_uri, directory)
        return Variant("src/", directory, runtime_only=False)

    def build(self, build_dir: Path, function: Function, *, bytecode: bool) -> Variant:
        artifact = build_dir / function.logical_id
        if bytecode:
            return Variant("build", artifact, runtime_only=True)
        directory = self.scratch / f"nopyc-{function.logical_id}"
        if not directory.exists():
            copy_without_bytecode(artifact, directory)
        return Variant("build, no .pyc", directory, runtime_only=True)

    def run(
        self,
        function: Function,
        variant: Variant,
        events: list[Any],
        *,
        handler: str | None = None,
        variables: dict[str, str] | None = None,
        offline: bool = False,
        expect: dict[str, Any] | None = None,
        python_flags: tuple[str, ...] = (),
        log: Path | None = None,
    ) -> dict[str, Any]:
        """One execution environment: init, then ``events``; what the probe measured.

        ``offline`` points ``AWS_ENDPOINT_URL`` at a closed port and gives fake credentials, so
        that any AWS call fails. ``expect`` holds keys every response must have, with values.
        """
        aws = self.local.aws
        code = Code(variant.directory, from_build=variant.runtime_only)
        merged = {**function.environment, **(variables or {})}
        credentials = (
            FAKE_CREDENTIALS if offline else execution_environment.role_credentials(aws, function)
        )
        environment = execution_environment.lambda_environment(
            function, aws, code, merged, credentials
        )
        if offline:
            environment["AWS_ENDPOINT_URL"] = closed_endpoint()
        sys_path = [str(variant.directory)]
        sys_path += (
            [str(self.runtime_dir.resolve())]
            if variant.runtime_only
            else execution_environment._site_packages()
        )
        job = {
            "handler": handler or function.handler,
            "sys_path": sys_path,
            "events": events,
            "expect": expect or {},
            "function_name": function.name,
            "memory_mb": function.memory_mb,
            "timeout_seconds": function.timeout_seconds,
            "region": aws.region,
            "log_stream_name": environment["AWS_LAMBDA_LOG_STREAM_NAME"],
        }
        with tempfile.TemporaryFile("w+") if log is None else log.open("w+") as stderr:
            completed = subprocess.run(
                [sys.executable, "-I", "-S", *python_flags, str(PROBE)],
                input=json.dumps(job),
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=environment,
                cwd=variant.directory,
                text=True,
                timeout=PROBE_TIMEOUT_SECONDS,
                check=False,
            )
            stderr.seek(0)
            logs = stderr.read()
        if completed.returncode != 0 or not completed.stdout.strip():
            raise ProbeError(f"{function.logical_id} ({variant.label}) failed:\n{logs[-3000:]}")
        result: dict[str, Any] = json.loads(completed.stdout)
        result["logs"] = logs if python_flags else ""
        if result["init_error"] is not None:
            raise ProbeError(
                f"{function.logical_id} ({variant.label}) failed its init: {result['init_error']}"
            )
        if result["error_count"] or result["unexpected_count"]:
            raise ProbeError(
                f"{function.logical_id} ({variant.label}): {result['error_count']} errors, "
                f"{result['unexpected_count']} unexpected responses, e.g. "
                f"{result['errors'] or result['unexpected']}\n{logs[-2000:]}"
            )
        return result
