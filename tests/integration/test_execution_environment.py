"""The mission: init builds sessions and clients once; invocations reuse them and STS once."""

import collections
import importlib
import json
from types import ModuleType
from typing import Any

import pytest

from app import runtime
from tests.conftest import Stack, load_event, new_request
from tests.handler_calls import handler_module
from tools.emulator.lambda_context import LambdaContext

FUNCTIONS = ["GetItemFunction", "ExportItemFunction", "ExportQueueFunction"]


def _new_execution_environment(function_id: str) -> ModuleType:
    """Re-run the handler module's init, as Lambda does in a new execution environment."""
    for built_once in (runtime.base, runtime.writer, runtime.items_table, runtime.exports_bucket):
        built_once.cache_clear()
    runtime._built_at_init.clear()
    return importlib.reload(handler_module(function_id))


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_init_builds_clients_but_calls_nothing(
    function_id: str, aws: None, api_calls: collections.Counter[str], clients_built: list[str]
) -> None:
    _new_execution_environment(function_id)
    assert api_calls == {}
    expected = {"dynamodb"} if function_id == "GetItemFunction" else {"dynamodb", "sts", "s3"}
    assert sorted(clients_built) == sorted(expected)


def test_get_item_function_never_builds_the_writer_session(aws: None) -> None:
    _new_execution_environment("GetItemFunction")
    assert runtime.writer.cache_info().currsize == 0


def _api_request(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return new_request("ExportItemFunction/created", f"request-{index}"), {"statusCode": 201}


def _queue_batch(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return new_request("ExportQueueFunction/batch", f"batch-{index}"), {"batchItemFailures": []}


WARM_INVOCATIONS = {
    "ExportItemFunction": (_api_request, 1),
    "ExportQueueFunction": (_queue_batch, len(load_event("ExportQueueFunction/batch")["Records"])),
}


@pytest.mark.parametrize("function_id", WARM_INVOCATIONS)
def test_many_invocations_make_one_assume_role_and_no_new_client(
    function_id: str,
    stack: Stack,
    api_calls: collections.Counter[str],
    clients_built: list[str],
    context: LambdaContext,
) -> None:
    module = _new_execution_environment(function_id)
    built_at_init = list(clients_built)
    make_event, exports_per_event = WARM_INVOCATIONS[function_id]
    for index in range(30):
        event, expected = make_event(index)
        assert expected.items() <= module.lambda_handler(event, context).items()
    assert api_calls["sts.AssumeRole"] == 1
    assert api_calls["dynamodb.GetItem"] == api_calls["s3.PutObject"] == 30 * exports_per_event
    assert clients_built == built_at_init
    assert len(stack.objects()) == 30 * exports_per_event


def test_entry_point_uses_the_services_built_at_init(
    stack: Stack, api_calls: collections.Counter[str], context: LambdaContext
) -> None:
    module = _new_execution_environment("GetItemFunction")
    response = module.lambda_handler(load_event("GetItemFunction/found"), context)
    assert json.loads(response["body"])["item_id"] == "42"
    assert api_calls == {"dynamodb.GetItem": 1}
