"""DynamoDB's number domain as a Hypothesis strategy, and exact comparisons of JSON outputs.

DynamoDB stores decimals of up to 38 significant digits, positive ones from 1E-130 to
9.9999999999999999999999999999999999999E+125 and negative ones alike (AWS's "Supported data types
and naming rules in Amazon DynamoDB"; leading and trailing zeros are trimmed).
"""

import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

MAX_DIGITS = 38
MIN_ADJUSTED_EXPONENT = -130  # 1E-130, the smallest magnitude
MAX_ADJUSTED_EXPONENT = 125  # 9.99...9E+125, the largest


@st.composite
def dynamodb_numbers(draw: st.DrawFn) -> Decimal:
    """Any number DynamoDB stores: 1-38 significant digits, magnitude 1E-130 to 9.99...9E+125."""
    digits = draw(st.integers(1, MAX_DIGITS))
    coefficient = draw(st.integers(10 ** (digits - 1), 10**digits - 1))
    adjusted = draw(st.integers(MIN_ADJUSTED_EXPONENT, MAX_ADJUSTED_EXPONENT))
    sign = draw(st.sampled_from((0, 1)))
    # Built from its digits: no context, so no rounding (scaleb would round to 28 digits).
    return Decimal((sign, tuple(map(int, str(coefficient))), adjusted - digits + 1))


NUMBERS = dynamodb_numbers() | st.sampled_from([Decimal(0), Decimal("-0"), Decimal("1.50")])


def exact(document: bytes | str) -> Any:
    """A JSON output read back with every number a Decimal: compared exactly, never as floats."""
    return json.loads(document, parse_float=Decimal, parse_int=Decimal)


def typed(value: Any) -> Any:
    """``value`` with each leaf tagged by its type: Decimal(1) == True, but not once tagged."""
    if isinstance(value, dict):
        return {key: typed(member) for key, member in value.items()}
    if isinstance(value, list):
        return [typed(member) for member in value]
    return (type(value).__name__, value)


def same_json(output: Any, expected: Any) -> bool:
    """Whether ``output``, as :func:`exact` read it, holds ``expected`` (numbers int or Decimal),
    every number exactly: as floats ``12345678901234568.0 == 12345678901234567.5``."""

    def decimals(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: decimals(member) for key, member in value.items()}
        if isinstance(value, list):
            return [decimals(member) for member in value]
        return Decimal(value) if type(value) is int else value

    return bool(typed(output) == typed(decimals(expected)))
