"""Exceptions behave as exceptions: Python and ``contextlib`` write attributes on them in flight
(``__traceback__``, ``__context__``, ``__cause__``), so none may refuse an attribute write."""

import dataclasses
import importlib
import inspect
import json
import pkgutil

import pytest

import app
from app.handlers.sqs import reported_failures
from app.operations import ItemNotFoundError
from tests.conftest import Stack, load_event
from tests.handler_calls import call
from tests.log_capture import lambda_output
from tools.emulator.lambda_context import LambdaContext


def _exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(app.__path__, prefix="app."):
        module = importlib.import_module(module_info.name)
        for _, member in inspect.getmembers(module, inspect.isclass):
            if issubclass(member, BaseException) and member.__module__.startswith("app."):
                found[f"{member.__module__}.{member.__qualname__}"] = member
    return [found[name] for name in sorted(found)]


EXCEPTION_CLASSES = _exception_classes()


def test_the_walk_finds_the_exception_classes() -> None:
    """Guards the walk itself: an empty list would make the next test pass vacuously."""
    names = {cls.__name__ for cls in EXCEPTION_CLASSES}
    assert {"ItemNotFoundError", "InvalidRequestError", "DependencyError"} <= names


@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda cls: cls.__qualname__)
def test_no_exception_class_is_a_frozen_dataclass(cls: type[BaseException]) -> None:
    assert not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen)


def test_an_item_not_found_leaves_reported_failures_as_itself() -> None:
    with pytest.raises(ItemNotFoundError, match="item 'gone' not found"):  # noqa: SIM117
        with reported_failures("message-1"):
            raise ItemNotFoundError("gone")


def test_a_message_for_a_missing_item_is_reported_with_its_reason(
    stack: Stack, context: LambdaContext
) -> None:
    record = load_event("ExportQueueFunction/batch")["Records"][0]
    record["body"] = json.dumps({"item_id": "no-such-item"})
    with lambda_output("INFO") as output:
        response = call("ExportQueueFunction", {"Records": [record]}, stack, context)
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    [rejected] = [line for line in output.records() if line.get("message") == "message rejected"]
    assert rejected["reason"] == "item 'no-such-item' not found"
    # "message rejected" is logged only for the refusals reported_failures names: the
    # exception that escaped the record was ItemNotFoundError itself, not FrozenInstanceError.
