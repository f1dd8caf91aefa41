"""The caller, read from the claims API Gateway verified: typed, bounded, never raising on junk."""

import json
import urllib.parse
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.operations import (
    UNVERIFIED,
    InvalidRequestError,
    UnidentifiedCallerError,
    caller_from_api,
)
from app.operations.callers import MAX_CLAIM_CHARS, MAX_SCOPES_LOGGED
from app.operations.requests import ExportRequest
from app.services.exports import REQUEST_METADATA

CLIENT = "4f2k8s1v6q0n3m7h9c5b2d1e0a"


def _context(claims: object) -> dict[str, Any]:
    return {"requestId": "r", "authorizer": {"jwt": {"claims": claims, "scopes": None}}}


def test_a_cognito_machine_token_names_its_client() -> None:
    claims = {"sub": CLIENT, "client_id": CLIENT, "scope": "items/read items/export"}
    caller = caller_from_api(_context(claims))
    assert (caller.verified, caller.subject, caller.client_id) == (True, CLIENT, CLIENT)
    assert caller.scopes == ("items/read", "items/export")
    assert caller.recorded() == {"requested-by": CLIENT, "requested-client": CLIENT}


@pytest.mark.parametrize(
    ("claims", "client", "scopes"),
    [
        ({"sub": "app@clients", "azp": "abc", "scope": "items/read"}, "abc", ("items/read",)),
        ({"sub": "u-1", "azp": "guid", "scp": "items/export"}, "guid", ("items/export",)),
        ({"sub": "u-1"}, None, ()),
    ],
    ids=["auth0-or-okta", "entra-id", "subject-only"],
)
def test_other_issuers_name_the_client_and_scopes_their_way(
    claims: dict[str, str], client: str | None, scopes: tuple[str, ...]
) -> None:
    caller = caller_from_api(_context(claims))
    assert (caller.client_id, caller.scopes) == (client, scopes)
    assert caller.recorded()["requested-client"] == (client or "-")


@pytest.mark.parametrize(
    "request_context",
    [{"requestId": "r"}, {"authorizer": None}, {"authorizer": {}}, {"authorizer": {"jwt": None}}],
)
def test_no_authorizer_claims_is_the_unverified_caller(request_context: dict[str, Any]) -> None:
    caller = caller_from_api(request_context)
    assert caller is UNVERIFIED
    assert caller.identity() is None
    assert caller.recorded() == {"requested-by": "-", "requested-client": "-"}


@pytest.mark.parametrize("claims", [{}, {"scope": "items/read"}, {"sub": "", "client_id": ""}])
def test_a_token_that_names_no_one_is_refused(claims: dict[str, str]) -> None:
    with pytest.raises(UnidentifiedCallerError):
        caller_from_api(_context(claims))


@pytest.mark.parametrize(
    "request_context",
    [
        {"authorizer": []},
        {"authorizer": {"jwt": "x"}},
        _context(["sub"]),
        _context({"sub": 7}),
        _context({"sub": "s", "client_id": {"nested": "x"}}),
        _context({"sub": "s", "scope": ["items/read"]}),
    ],
)
def test_claims_api_gateway_would_never_send_are_a_bad_request(
    request_context: dict[str, Any],
) -> None:
    with pytest.raises(InvalidRequestError):
        caller_from_api(request_context)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
claim_names = st.sampled_from(["sub", "client_id", "azp", "scope", "scp", "email", "iss"])


@given(
    st.dictionaries(claim_names, st.text() | json_values, max_size=6)
    | json_values
    | st.builds(lambda value: {"authorizer": value}, json_values)
)
def test_any_json_is_a_caller_or_a_refusal(value: Any) -> None:
    """A direct Invoke may put anything there: a caller, or one of the two refusals."""
    context = _context(value) if isinstance(value, dict) and "authorizer" not in value else value
    if not isinstance(context, dict):
        return
    try:
        caller = caller_from_api(context)
    except (InvalidRequestError, UnidentifiedCallerError):
        return
    json.dumps(caller.log_fields())
    recorded = caller.recorded()
    assert all(v.isascii() and v.isprintable() for v in recorded.values())


def test_a_deep_value_is_refused_without_recursion() -> None:
    deep: Any = "x"
    for _ in range(16_000):
        deep = [deep]
    with pytest.raises(InvalidRequestError):
        caller_from_api(_context({"sub": deep}))
    with pytest.raises(InvalidRequestError):
        caller_from_api({"authorizer": deep})


# Any code point, lone surrogates included (JSON strings may carry them), often many bytes long.
_any_character = st.characters(exclude_categories=())
_claims_text = st.text(_any_character, min_size=1, max_size=20) | st.text(
    _any_character, min_size=200, max_size=300
)


def _user_metadata_bytes(metadata: dict[str, str]) -> int:
    """S3's measure of user metadata: the UTF-8 bytes of every key and value."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in metadata.items())


@given(_claims_text, _claims_text)
def test_what_s3_records_is_ascii_bounded_and_decodes_to_the_claim(sub: str, client: str) -> None:
    caller = caller_from_api(_context({"sub": sub, "client_id": client}))
    recorded = caller.recorded()
    with_fingerprint = {**recorded, REQUEST_METADATA: "f" * 64}
    assert _user_metadata_bytes(with_fingerprint) <= 2048
    assert all(v.isascii() and v.isprintable() for v in recorded.values())
    decoded = urllib.parse.unquote(recorded["requested-by"], errors="strict")
    if not any("\ud800" <= c <= "\udfff" for c in sub):
        # Whole characters, from the start: a prefix of the claim, all of it when it fits.
        assert sub[:MAX_CLAIM_CHARS].startswith(decoded)
        if len(urllib.parse.quote(sub[:MAX_CLAIM_CHARS], safe="")) <= 900:
            assert decoded == sub[:MAX_CLAIM_CHARS]


@pytest.mark.parametrize(
    ("sub", "kept"),
    [
        ("\N{GRINNING FACE}" * 255, 75),  # 4 UTF-8 bytes, 12 characters encoded: 900 / 12
        ("\N{LATIN SMALL LETTER E WITH ACUTE}" * 255, 150),  # 2 bytes, 6 characters
        ("a" * 255, 255),
    ],
)
def test_a_long_non_ascii_subject_is_cut_between_characters(sub: str, kept: int) -> None:
    recorded = caller_from_api(_context({"sub": sub, "client_id": sub})).recorded()
    assert urllib.parse.unquote(recorded["requested-by"]) == sub[:kept]
    assert _user_metadata_bytes({**recorded, REQUEST_METADATA: "f" * 64}) <= 2048


def test_a_lone_surrogate_is_recorded_as_its_escape() -> None:
    recorded = caller_from_api(_context({"sub": "a\ud800b"})).recorded()
    assert urllib.parse.unquote(recorded["requested-by"]) == "a\\ud800b"


def test_huge_claims_are_logged_bounded() -> None:
    claims = {"sub": "s" * 100_000, "scope": "x " * 100_000}
    fields = caller_from_api(_context(claims)).log_fields()
    assert len(fields["caller_subject"]) == MAX_CLAIM_CHARS
    assert len(fields["caller_scopes"]) == MAX_SCOPES_LOGGED


def test_callers_are_compared_whole_not_as_logged() -> None:
    """Two subjects alike in what is logged or recorded are still two callers."""
    request = ExportRequest("42")
    first = caller_from_api(_context({"sub": "s" * 300 + "1"}))
    second = caller_from_api(_context({"sub": "s" * 300 + "2"}))
    assert first.recorded() == second.recorded()
    assert request.fingerprint(first.identity()) != request.fingerprint(second.identity())
    assert request.fingerprint(UNVERIFIED.identity()) == request.fingerprint()


@pytest.mark.parametrize(
    ("sub", "recorded"),
    [
        ("a!#$&'()*+,/:;=?@[]^`{|}~-._z", "a!#$&'()*+,/:;=?@[]^`{|}~-._z"),  # readable as it is
        ('a b%c"<>\\', "a%20b%25c%22%3C%3E%5C"),  # what metadata would misread, or a decoder
    ],
)
def test_printable_ascii_is_recorded_as_it_is_but_for_what_needs_encoding(
    sub: str, recorded: str
) -> None:
    assert caller_from_api(_context({"sub": sub})).recorded()["requested-by"] == recorded


def test_a_verified_caller_s_identity_is_its_subject_and_client() -> None:
    """It is part of every stored request fingerprint: its names may not drift."""
    caller = caller_from_api(_context({"sub": "s-1", "client_id": CLIENT}))
    assert caller.identity() == {"subject": "s-1", "client_id": CLIENT}
    assert caller_from_api(_context({"sub": "s-1"})).identity() == {
        "subject": "s-1",
        "client_id": None,
    }
