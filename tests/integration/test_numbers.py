"""DynamoDB numbers come out exactly as they went in, through every output.

Over DynamoDB's whole number domain (``tests/dynamodb_numbers.py``), every output is parsed back
with ``parse_float=Decimal`` and ``parse_int=Decimal`` and compared with the Decimal of the text
that went in: the oracle is the input, never a conversion the code under test also makes.
"""

import copy
import functools
import gzip
import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Stack, load_event
from tests.dynamodb_numbers import MAX_DIGITS, NUMBERS, exact, typed
from tests.handler_calls import call, context_for
from tools.emulator.lambda_context import LambdaContext
from tools.emulator.seed import load_seed, put_items

NINES = "9." + "9" * (MAX_DIGITS - 1)
EDGES = [
    "12345678901234567.5",  # the price: a float makes it 12345678901234568
    "1E-130",
    "-1E-130",
    f"{NINES}E+125",
    f"-{NINES}E+125",
    "1.2345678901234567890123456789012345678E-130",  # 38 digits at the smallest magnitude
    "1" + "0" * 40,  # 41 characters, one significant digit: DynamoDB trims the zeros
    "0.1",
]


def _literal(number: Decimal, form: int) -> str:
    """``number`` as a JSON number literal, in one of the ways a person or DynamoDB writes it."""
    return (str(number), f"{number:f}", str(number).lower())[form]


_item_ids = itertools.count()


def _api_event(template: str, item_id: str, path: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event(template))
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"item_id": item_id}
    event["requestContext"]["requestId"] = f"numbers-{item_id}"
    return event


@functools.cache
def _timeout(function_id: str) -> float:
    return context_for(function_id).timeout_seconds  # translates the template: do it once


def _context(function_id: str) -> LambdaContext:
    """A fresh context (its deadline runs from now) with the function's own timeout."""
    return LambdaContext(
        function_name=f"items-test-{function_id}", timeout_seconds=_timeout(function_id)
    )


def _api_outputs(stack: Stack, item_id: str) -> dict[str, Any]:
    """The item as the API hands it out: the GET body and the ExportItem object."""
    get = call(
        "GetItemFunction",
        _api_event("GetItemFunction/found", item_id, f"/items/{item_id}"),
        stack,
        _context("GetItemFunction"),
    )
    assert get["statusCode"] == 200, get
    created = call(
        "ExportItemFunction",
        _api_event("ExportItemFunction/whole_item", item_id, f"/items/{item_id}/exports"),
        stack,
        _context("ExportItemFunction"),
    )
    assert created["statusCode"] == 201, created
    key = json.loads(created["body"])["key"]
    exported = stack.admin.client("s3").get_object(Bucket=stack.exports.bucket_name, Key=key)
    return {
        "GetItem body": exact(get["body"]),
        "ExportItem object": exact(exported["Body"].read())["item"],
    }


def _table_export_lines(stack: Stack, run_id: str) -> dict[str, Any]:
    """Every line of a new table export, by item id."""
    run = stack.exporter.run(run_id, "test", seconds_left=lambda: 60.0, lease_seconds=360)
    assert run.status == "complete"
    s3 = stack.admin.client("s3")
    manifest = json.loads(
        s3.get_object(Bucket=stack.exports.bucket_name, Key=run.manifest_key)["Body"].read()
    )
    lines = [
        exact(line)
        for entry in manifest["objects"]
        for line in gzip.decompress(
            s3.get_object(Bucket=stack.exports.bucket_name, Key=entry["key"])["Body"].read()
        ).splitlines()
    ]
    return {line["item_id"]: line for line in lines}


@given(
    numbers=st.lists(NUMBERS, min_size=1, max_size=6),
    forms=st.lists(st.integers(0, 2), min_size=6, max_size=6),
    number_set=st.lists(NUMBERS, min_size=1, max_size=5, unique=True),
)
@example(numbers=[Decimal(text) for text in EDGES[:6]], forms=[0] * 6, number_set=[Decimal(1)])
@example(numbers=[Decimal(text) for text in EDGES[6:]], forms=[1] * 6, number_set=[Decimal(1)])
@example(numbers=[Decimal(1)], forms=[0] * 6, number_set=[Decimal(text) for text in EDGES[:5]])
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_number_comes_out_exactly_through_seeding_and_every_output(
    stack: Stack,
    tmp_path: Path,
    numbers: list[Decimal],
    forms: list[int],
    number_set: list[Decimal],
) -> None:
    """Numbers in a seed file (top level, in a list, in a map) and a number set, each read back
    from the GET body, the ExportItem object and the table export's line."""
    item_id = f"n{next(_item_ids)}"
    literals = [_literal(number, form) for number, form in zip(numbers, forms, strict=False)]
    seed = tmp_path / f"{item_id}.json"
    nested = ", ".join(f'"k{index}": {text}' for index, text in enumerate(literals))
    item = f'"item_id": "{item_id}", "first": {literals[0]}, "all": [{", ".join(literals)}]'
    seed.write_text(f'{{"ItemsTable": [{{{item}, "nested": {{{nested}}}}}]}}')
    put_items(stack.admin.client("dynamodb"), stack.items.table_name, load_seed(seed)["ItemsTable"])
    put_items(
        stack.admin.client("dynamodb"),
        stack.items.table_name,
        [{"item_id": f"{item_id}-set", "set": set(number_set)}],
    )
    went_in = [Decimal(text) for text in literals]  # what the seed file says, digit for digit
    expected = {
        "item_id": item_id,
        "first": went_in[0],
        "all": went_in,
        "nested": {f"k{index}": number for index, number in enumerate(went_in)},
    }
    lines = _table_export_lines(stack, f"numbers-{item_id}")
    for output, item in {
        **_api_outputs(stack, item_id),
        "table export line": lines[item_id],
    }.items():
        assert typed(item) == typed(expected), output
    set_id = f"{item_id}-set"
    for output, item in {**_api_outputs(stack, set_id), "table export line": lines[set_id]}.items():
        assert typed(item["set"]) == typed(sorted(number_set)), output
