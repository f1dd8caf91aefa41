"""Deeply nested JSON, in a body, a message or anywhere in a direct Invoke's event, is a 4xx or a
rejected record with a message: never a RecursionError (``json.loads`` and ``json.dumps`` recurse
once a level; Python 3.11 fails at 1,000 levels, 3.12 at 3,000, 3.13 at 16,000)."""

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.handlers.sqs import UnreportableRecordError
from app.operations.requests import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    InvalidRequestError,
    export_request_from_api,
    nests_deeper_than,
)
from tests.conftest import Stack, load_event
from tests.handler_calls import call
from tests.log_capture import lambda_output
from tools.emulator.lambda_context import LambdaContext

SRC = Path(__file__).resolve().parents[2] / "src"
LEVELS = 16_000
DEEP_BODIES = {
    "brackets": "[" * LEVELS,
    "balanced": "[" * (LEVELS // 2) + "]" * (LEVELS // 2),
    "objects": '{"a":' * (LEVELS // 6) + "1" + "}" * (LEVELS // 6),
    "in-fields": '{"fields": ' + "[" * LEVELS,
    "just-too-deep": "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
}
DEPTH_MESSAGE = f"more than {MAX_JSON_DEPTH} levels deep"


def _deep_list(levels: int = LEVELS) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def test_the_deep_bodies_fit_the_size_limit() -> None:
    assert all(len(body.encode()) <= MAX_BODY_BYTES for body in DEEP_BODIES.values())


@pytest.mark.parametrize(
    ("text", "deepest"),
    [
        ("{}", 1),
        ('{"fields": ["name"]}', 2),
        ('["[[[[", "\\"[{", {"a": "]]]"}]', 2),  # brackets in strings, escaped quotes
        ('"[[["', 0),
        ("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH, MAX_JSON_DEPTH),
        ("[[]][[]]", 2),
        ("[][[[]]]", 3),  # a closed sibling first: each bracket closes exactly one level
    ],
)
def test_nesting_is_counted_outside_strings(text: str, deepest: int) -> None:
    assert nests_deeper_than(text, deepest - 1) if deepest else True
    assert not nests_deeper_than(text, deepest)


def test_a_body_at_the_depth_limit_is_judged_on_its_content() -> None:
    at_limit = '{"fields": ' + "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1) + "}"
    with pytest.raises(InvalidRequestError, match="each field must be an attribute name"):
        export_request_from_api("42", at_limit)
    with pytest.raises(InvalidRequestError, match=DEPTH_MESSAGE):
        export_request_from_api("42", at_limit.replace("[", "[[", 1).replace("]", "]]", 1))


def _interpreters() -> list[Any]:
    """Every Python the Makefile accepts, where this machine has it (pyenv or PATH)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found_pythons = []
    for minor in ("3.11", "3.12", "3.13"):
        found = sorted(root.glob(f"{minor}*/bin/python{minor}"))
        path = str(found[-1]) if found else None
        if sys.version.startswith(minor):
            path = sys.executable
        found_pythons.append(
            pytest.param(
                path,
                id=minor,
                marks=pytest.mark.skipif(path is None, reason=f"no Python {minor} here"),
            )
        )
    return found_pythons


# The operations package's __init__ imports every use case (and with them boto3); the request
# module and the errors it raises need only the standard library, so the package is stood in for.
PARSE_EVERY_DEEP_BODY = """
import json, sys, types
operations = types.ModuleType("app.operations")
operations.__path__ = [sys.path[0] + "/app/operations"]
sys.modules["app.operations"] = operations
from app.operations.errors import InvalidRequestError
from app.operations.requests import export_request_from_api, export_request_from_message
for body in json.loads(sys.stdin.read()):
    for parse in (export_request_from_message, lambda body: export_request_from_api("42", body)):
        try:
            parse(body)
        except InvalidRequestError as error:
            print(error)
"""


@pytest.mark.parametrize("python", _interpreters())
def test_every_deep_body_is_refused_with_a_message_on_every_python(python: str) -> None:
    """The parsing functions need only the standard library: each interpreter runs them as is."""
    script = f"import sys; sys.path.insert(0, {str(SRC)!r})\n{PARSE_EVERY_DEEP_BODY}"
    result = subprocess.run(
        [python, "-I", "-c", script],
        input=json.dumps(list(DEEP_BODIES.values())),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"the body nests arrays or objects {DEPTH_MESSAGE}"] * (
        2 * len(DEEP_BODIES)
    )


# --- Through each entry point -------------------------------------------------------------------


def test_a_deep_export_body_is_a_400(stack: Stack, context: LambdaContext) -> None:
    for body in DEEP_BODIES.values():
        event = load_event("ExportItemFunction/created")
        event["body"] = body
        response = call("ExportItemFunction", event, stack, context)
        assert response["statusCode"] == 400, body[:40]
        assert DEPTH_MESSAGE in json.loads(response["body"])["message"]
    assert stack.objects() == {}


@pytest.mark.parametrize(
    ("function_id", "event_name"),
    [
        ("ExportQueueFunction", "ExportQueueFunction/batch"),
        ("ExportTableFunction", "ExportTableFunction/continuation"),
    ],
)
def test_a_deep_message_body_is_a_rejected_record(
    function_id: str, event_name: str, stack: Stack, context: LambdaContext
) -> None:
    template = load_event(event_name)["Records"][0]
    records = []
    for index, body in enumerate(DEEP_BODIES.values()):
        record = copy.deepcopy(template)
        record["messageId"] = f"deep-{index}"
        record["body"] = body
        records.append(record)
    with lambda_output("INFO") as output:
        response = call(function_id, {"Records": records}, stack, context)
    reported = [failure["itemIdentifier"] for failure in response["batchItemFailures"]]
    assert sorted(reported) == [record["messageId"] for record in records]
    rejected = [line for line in output.records() if line.get("message") == "message rejected"]
    assert sorted(line["message_id"] for line in rejected) == sorted(reported)
    assert all(DEPTH_MESSAGE in line["reason"] for line in rejected)
    assert output.tracebacks() == []
    assert stack.objects() == {}


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, member in value.items():
            yield from _paths(member, (*prefix, key))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            yield from _paths(member, (*prefix, index))


def _with_deep_value(event: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    target: Any = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = _deep_list()
    return changed


EXTRA_API_KEYS = {"queryStringParameters": {"q": "x"}, "cookies": ["a=b"], "stageVariables": {}}
DIRECT_INVOKES = {
    "GetItemFunction": [{**load_event("GetItemFunction/found"), **EXTRA_API_KEYS}],
    "ExportItemFunction": [{**load_event("ExportItemFunction/created"), **EXTRA_API_KEYS}],
    "ExportQueueFunction": [load_event("ExportQueueFunction/batch")],
    "ExportTableFunction": [
        load_event("ExportTableFunction/scheduled"),
        {"run_id": "manual-1"},
        load_event("ExportTableFunction/continuation"),
    ],
}


def _problem(
    function_id: str, event: dict[str, Any], path: tuple[str | int, ...], stack: Stack
) -> str | None:
    """What is wrong with the answer to ``event`` with a deep value at ``path``, if anything."""
    context = LambdaContext(function_name=f"items-test-{function_id}")
    with lambda_output("INFO") as output:
        try:
            response = call(function_id, _with_deep_value(event, path), stack, context)
        except UnreportableRecordError as error:
            expected = path[0] == "Records" and "not an SQS message" in str(error)
            return None if expected else f"raised {error}"
        except Exception as error:  # noqa: BLE001 - the unhandled error is the finding
            return f"raised {type(error).__name__}: {str(error)[:100]}"
    failures = response.get("batchItemFailures", [])
    checks = {
        "the answer cannot be serialized": lambda: json.dumps(response) and False,
        "a 5xx": lambda: response.get("statusCode", 200) >= 500,
        "an itemIdentifier that is not a string": lambda: (
            not all(isinstance(failure["itemIdentifier"], str) for failure in failures)
        ),
        "an unexpected outcome": lambda: (
            response.get("status", "complete") not in {"complete", "continuing", "rejected"}
        ),
        "a traceback or a logging error": lambda: (
            bool(output.tracebacks()) or "Logging error" in output.text
        ),
        "a log line that is not JSON": lambda: len(output.records()) != len(output.lines()),
    }
    for problem, found in checks.items():
        try:
            if found():
                return problem
        except RecursionError:
            return problem
    return None


@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize("function_id", DIRECT_INVOKES)
def test_a_deep_value_anywhere_in_a_direct_invoke_is_answered(
    function_id: str, stack: Stack
) -> None:
    """A direct Invoke can put nesting anywhere: the answer is a 2xx or 4xx, a batch answer or a
    table-export outcome, one the runtime can serialize, with log lines that are JSON. A record
    that cannot be reported fails its whole batch, on purpose and with a message (SQS would
    deliver it again: nothing is acknowledged unexported). One stack serves every path."""
    problems = {
        ".".join(map(str, path)): problem
        for event in DIRECT_INVOKES[function_id]
        for path in _paths(event)
        if (problem := _problem(function_id, event, path, stack)) is not None
    }
    assert problems == {}
