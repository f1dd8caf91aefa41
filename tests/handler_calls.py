"""Call a function's ``handle`` the way its entry point does, with services from a test stack."""

import importlib
import inspect
from types import ModuleType
from typing import Any

from tests.conftest import Stack
from tools.emulator import sam_template
from tools.emulator.lambda_context import LambdaContext

_TEMPLATE = sam_template.load()


def handler_module(function_id: str) -> ModuleType:
    handler = sam_template.functions(_TEMPLATE)[function_id]["Properties"]["Handler"]
    return importlib.import_module(handler.rpartition(".")[0])


def context_for(function_id: str) -> LambdaContext:
    """A context with the function's own timeout from the template, as Lambda would give it."""
    translated = sam_template.translate(_TEMPLATE)
    timeout = translated["Resources"][function_id]["Properties"]["Timeout"]
    return LambdaContext(function_name=f"items-test-{function_id}", timeout_seconds=timeout)


def call(function_id: str, event: dict[str, Any], stack: Stack, context: LambdaContext) -> Any:
    """``handle(event, context, **services)`` with the services its signature asks for."""
    handle = handler_module(function_id).handle
    wanted = [
        name
        for name, parameter in inspect.signature(handle).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    return handle(event, context, **{name: getattr(stack, name) for name in wanted})
