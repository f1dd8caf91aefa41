"""Decimals written as their own text, by the encoder every output shares and the local runtime."""

import json
import re
from decimal import Decimal

import pytest
from hypothesis import example, given

from app.services.exact_json import dumps
from tests.dynamodb_numbers import NUMBERS, exact, typed
from tools.emulator.lambda_worker import _marshal


@given(NUMBERS)
@example(Decimal("12345678901234567.5"))
def test_exact_json_writes_each_decimal_as_its_own_text(number: Decimal) -> None:
    text = dumps({"n": number, "in": [number, {"m": number}]})
    assert text == f'{{"in":[{number},{{"m":{number}}}],"n":{number}}}'
    assert typed(exact(text)) == typed({"in": [number, {"m": number}], "n": number})


@given(NUMBERS)
def test_the_local_runtime_returns_a_decimal_with_every_digit(number: Decimal) -> None:
    """Lambda's runtime writes a returned Decimal as its text; so does the local worker."""
    payload = _marshal({"n": number, "nan": Decimal("NaN")})
    assert payload == f'{{"n": {number}, "nan": NaN}}'


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes"])
def test_what_json_cannot_hold_is_refused_as_the_json_module_refuses_it(value: object) -> None:
    with pytest.raises(TypeError) as ours:
        dumps({"v": value})
    with pytest.raises(TypeError) as standard:
        json.dumps({"v": value})
    assert str(ours.value) == str(standard.value)
    assert type(value).__name__ in str(ours.value)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_a_decimal_that_is_no_number_is_refused_by_its_text(number: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^{re.escape(str(Decimal(number)))} is not a JSON number$"
    ):
        dumps({"v": Decimal(number)})
