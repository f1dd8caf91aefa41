"""Decimals written as their own text, by the encoder every output shares and the local runtime."""

from decimal import Decimal

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
