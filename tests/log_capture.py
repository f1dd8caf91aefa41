"""Everything a Lambda function would send to CloudWatch Logs, captured in one buffer.

In Lambda, stdout and stderr go to the log stream, and the runtime puts a handler on the root logger
at the function's ``ApplicationLogLevel``, so library loggers (botocore, urllib3, Powertools' own)
reach the logs too. Powertools' logger keeps the stdout it found at import, so its handler is
pointed at the buffer for the duration, and the root handler gets the filter Powertools gives the
runtime's handler (no duplicates of the service's own lines).
"""

import contextlib
import io
import json
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.logging.filters import SuppressFilter

from app.observability import logger as service_logger

TRACEBACK_MARKERS = ("Traceback (most recent call last)", '"stackTrace"', '"exception"')


class _LambdaRuntimeFormatter(logging.Formatter):
    """Lambda's JSON log format for the root logger: a traceback becomes ``stackTrace``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["stackTrace"] = traceback.format_exception(*record.exc_info)
        return json.dumps(line)


@dataclass
class LambdaOutput:
    """The captured log stream."""

    buffer: io.StringIO = field(default_factory=io.StringIO)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line.strip()]

    def records(self) -> list[dict[str, Any]]:
        """The lines that are JSON objects: Powertools logs, EMF metrics, the runtime's lines."""
        parsed = []
        for line in self.lines():
            with contextlib.suppress(ValueError):
                document = json.loads(line)
                if isinstance(document, dict):
                    parsed.append(document)
        return parsed

    def at(self, *levels: str) -> list[dict[str, Any]]:
        return [record for record in self.records() if record.get("level") in levels]

    def tracebacks(self) -> list[str]:
        return [line for line in self.lines() if any(mark in line for mark in TRACEBACK_MARKERS)]

    def add_unhandled(self, error: BaseException) -> None:
        """What the runtime prints when a handler raises: type, message and stack trace."""
        stack = traceback.format_exception(error)
        self.buffer.write(json.dumps({"errorType": type(error).__name__, "stackTrace": stack}))
        self.buffer.write("\n")


@contextlib.contextmanager
def lambda_output(level: str = "INFO") -> Iterator[LambdaOutput]:
    """Capture stdout, stderr, the service logger and the root logger at ``level``."""
    output = LambdaOutput()
    root = logging.getLogger()
    runtime_handler = logging.StreamHandler(output.buffer)
    runtime_handler.setFormatter(_LambdaRuntimeFormatter())
    runtime_handler.addFilter(SuppressFilter(service_logger.service))
    powertools_handler = service_logger.registered_handler
    assert isinstance(powertools_handler, logging.StreamHandler)
    previous_root_level, previous_service_level = root.level, service_logger.log_level
    previous_stream = powertools_handler.setStream(output.buffer)
    root.addHandler(runtime_handler)
    root.setLevel(level)
    service_logger.setLevel(level)
    try:
        with contextlib.redirect_stdout(output.buffer), contextlib.redirect_stderr(output.buffer):
            yield output
    finally:
        root.removeHandler(runtime_handler)
        root.setLevel(previous_root_level)
        service_logger.setLevel(previous_service_level)
        powertools_handler.setStream(previous_stream)  # type: ignore[arg-type]
