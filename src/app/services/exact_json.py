"""JSON text in which every number is exactly the value DynamoDB stored.

DynamoDB numbers are decimals of up to 38 significant digits from 1E-130 to 9.9...9E+125; a float
keeps about 16 of those digits (``12345678901234567.5`` would come out as ``12345678901234568``).
Items therefore hold their numbers as :class:`~decimal.Decimal`, which is exact (as boto3's own
deserializer does), and :func:`dumps` writes each one as its own decimal text, ``str(Decimal)``:
a JSON number has no precision limit, and that text of a finite Decimal is always a valid JSON
number that parses back to the same value (``1.50`` stays ``1.50``).

Why not ``json.dumps``: it can write a Decimal only through ``default``, which must return what
json already knows, a float (rounded) or a str (quoted: no longer a number). The encoder here is
the standard library's own C encoder (what ``json.dumps`` runs) with one change: its string
encoder writes the text ``default`` made of a Decimal (a :class:`_RawNumber`) unquoted. The table
export thus keeps its one C pass per item; a pure-Python encoder would be several times slower,
and simplejson's ``use_decimal`` would be one more package in every function's artifact.
"""

from _json import encode_basestring_ascii, make_encoder
from decimal import Decimal


class _RawNumber(str):
    """A Decimal's text, written as it is: a JSON number, not a JSON string."""

    __slots__ = ()


def _number(value: object) -> _RawNumber:
    if not isinstance(value, Decimal):
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    return _RawNumber(value)


def _string(text: str) -> str:
    return text if type(text) is _RawNumber else encode_basestring_ascii(text)


# As json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False) builds it, but for
# the two functions above. No markers: a value that holds itself is never made here.
_ENCODER = make_encoder(None, _number, _string, None, ":", ",", True, False, False)


def dumps(value: object) -> str:
    """``value`` as compact JSON with sorted keys, each Decimal written as its exact text."""
    return "".join(_ENCODER(value, 0))
