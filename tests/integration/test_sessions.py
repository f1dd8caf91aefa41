"""The session lifecycle: nothing at build, one AssumeRole at first use, refresh near expiry."""

import collections
import itertools
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.client
import botocore.loaders
import botocore.session
import pytest
import time_machine
from botocore.exceptions import NoCredentialsError
from hypothesis import example, given
from hypothesis import strategies as st

from app import runtime
from app.sessions import (
    CLIENT_CONFIG,
    RoleSpec,
    assumed_role_session,
    base_session,
    role_session_name,
    s3_client,
    sts_client,
)
from app.sessions.assumed_role import refresh_windows
from app.sessions.config import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_ATTEMPTS,
    READ_TIMEOUT_SECONDS,
    worst_case_call_seconds,
)
from tests.conftest import ACCOUNT, LAMBDA_ENVIRONMENT, REGION, Stack
from tools.emulator import sam_template

WRITER = LAMBDA_ENVIRONMENT["WRITER_ROLE_ARN"]
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
HUB = f"arn:aws:iam::{ACCOUNT}:role/items-test-exports-hub"
_ACCEPTED = sam_template.load()["Parameters"]["WriterSessionSeconds"]
SHORTEST, LONGEST = int(_ACCEPTED["MinValue"]), int(_ACCEPTED["MaxValue"])


@pytest.fixture
def own_loaders(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's own loader per session: tests/conftest.py shares one across every session, which
    would make a shared loader indistinguishable from a fresh one."""
    monkeypatch.setattr(botocore.session, "create_loader", botocore.loaders.create_loader)
    fresh = botocore.session.Session(), botocore.session.Session()
    assert fresh[0].get_component("data_loader") is not fresh[1].get_component("data_loader")


def _put(stack: Stack, key: str) -> None:
    s3_client(stack.writer).put_object(Bucket=stack.exports.bucket_name, Key=key, Body=b"{}")


def test_building_an_assumed_role_session_calls_nothing(
    aws: None, api_calls: collections.Counter[str]
) -> None:
    session = assumed_role_session(base_session(REGION), RoleSpec(WRITER, "build-only"))
    s3_client(session)
    assert api_calls == {}


def test_an_assumed_role_session_reads_the_service_models_through_its_source_s_loader(
    aws: None, own_loaders: None
) -> None:
    """Cold init: a loader of its own would read and parse botocore's JSON models a second time."""
    source = base_session(REGION)
    chain = assumed_role_session(
        assumed_role_session(source, RoleSpec(HUB, "hub")), RoleSpec(WRITER, "writer")
    )
    loader = source._session.get_component("data_loader")
    assert chain._session.get_component("data_loader") is loader
    assert chain._session.get_credentials() is not source.get_credentials()


def test_first_use_assumes_once_and_later_calls_reuse_the_credentials(
    stack: Stack, api_calls: collections.Counter[str]
) -> None:
    for index in range(50):
        _put(stack, f"exports/x/{index}.json")
    assert api_calls["sts.AssumeRole"] == 1
    assert api_calls["s3.PutObject"] == 50


def test_credentials_refresh_once_when_they_near_expiry(
    stack: Stack, api_calls: collections.Counter[str]
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        _put(stack, "exports/x/first.json")
        clock.shift(timedelta(minutes=44))  # outside botocore's 15-minute advisory window
        _put(stack, "exports/x/still-fresh.json")
        assert api_calls["sts.AssumeRole"] == 1
        clock.shift(timedelta(minutes=2))  # 14 minutes left: refresh before they expire
        for index in range(10):
            _put(stack, f"exports/x/refreshed-{index}.json")
        assert api_calls["sts.AssumeRole"] == 2


def test_assumed_identity_is_the_writer_role_named_for_the_function(stack: Stack) -> None:
    identity = sts_client(stack.writer).get_caller_identity()
    role_name = WRITER.rpartition("/")[2]
    assert (
        identity["Arn"]
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name}/items-test.5f2b7c1e9a0d"
    )


def test_assume_role_arguments_carry_duration_and_external_id() -> None:
    spec = RoleSpec(WRITER, "fn", duration_seconds=900, external_id="shared-secret")
    assert spec.assume_role_arguments() == {
        "RoleSessionName": "fn",
        "DurationSeconds": 900,
        "ExternalId": "shared-secret",
    }
    assert "ExternalId" not in RoleSpec(WRITER, "fn").assume_role_arguments()


def test_no_source_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    with pytest.raises(NoCredentialsError):
        assumed_role_session(base_session(REGION), RoleSpec(WRITER, "fn"))


STS_NAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_+=,.@-")
"""STS's documented alphabet for RoleSessionName and SourceIdentity: "upper- and lower-case
alphanumeric characters with no spaces ... underscores or any of the following characters: =,.@-"
(``[\\w+=,.@-]*`` in the API model, ``\\w`` meaning ASCII there), plus ``+`` for both."""


def sts_accepts(name: str) -> bool:
    """STS's documented constraints on both: 2 to 64 characters of its alphabet; a SourceIdentity
    also may not begin with ``aws:``."""
    return (
        2 <= len(name) <= 64
        and all(character in STS_NAME_CHARACTERS for character in name)
        and not name.lower().startswith("aws:")
    )


# Environment variables cannot hold NUL or lone surrogates; everything else may show up.
_ENVIRONMENT_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@given(st.lists(st.text(max_size=80), max_size=4))
def test_role_session_names_are_always_accepted_by_sts(parts: list[str]) -> None:
    assert sts_accepts(role_session_name(*parts))


def _writer_links(function_name: str, log_stream_name: str) -> list[RoleSpec]:
    """The roles runtime.py asks STS for under these Lambda variables."""
    links: list[RoleSpec] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_LAMBDA_FUNCTION_NAME", function_name)
        patch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name)
        patch.setenv("WRITER_VIA_ROLE_ARN", HUB)
        patch.setattr(
            runtime.sessions, "assumed_role_chain", lambda _source, *roles: links.extend(roles)
        )
        runtime.writer.cache_clear()
        try:
            runtime.writer()
        finally:
            runtime.writer.cache_clear()
    return links


@given(function_name=_ENVIRONMENT_TEXT.filter(str.strip), log_stream_name=_ENVIRONMENT_TEXT)
def test_runtime_session_names_and_source_identity_are_accepted_by_sts(
    function_name: str, log_stream_name: str
) -> None:
    links = _writer_links(function_name, log_stream_name)
    assert len(links) == 2
    for link in links:
        assert sts_accepts(link.session_name), link.session_name
        assert link.source_identity is not None
        assert sts_accepts(link.source_identity), link.source_identity


@given(
    function_name=st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=64),
    environment=st.text("0123456789abcdef", min_size=32, max_size=32),
)
@example(function_name="items-prod-ExportTableFunction-" + "Q" * 32, environment="5f2b" * 8)
def test_lambda_names_reach_cloudtrail_whole(function_name: str, environment: str) -> None:
    """Lambda's own names (function: 1-64 of ``[a-zA-Z0-9-_]``; stream: ``<date>/[<version>]<hex>``)
    keep the whole function name as the source identity, and the environment id in the session."""
    writer = _writer_links(function_name, f"2026/11/23/[$LATEST]{environment}")[-1]
    assert writer.source_identity == function_name.ljust(2, "-")
    assert writer.session_name.endswith(f".{environment[:12]}")
    assert function_name.startswith(writer.session_name.removesuffix(f".{environment[:12]}"))


@pytest.mark.parametrize(
    ("function_name", "log_stream_name", "session_name", "source_identity"),
    [
        ("cli.José", "$LATEST", "cli.Jose", "cli.Jose"),  # sam local invoke's stream name
        ("Ünïcødé fn", "2026/11/23/[$LATEST]5f2b7c1e9a0d4b8c", "Unic-de-fn.5f2b7c1e9a0d", ""),
        ("items-dev-Export", "2026/11/23/[3]ab12", "items-dev-Export.ab12", "items-dev-Export"),
        ("x", "", "x-", "x-"),
    ],
)
def test_session_names_stay_readable(
    function_name: str, log_stream_name: str, session_name: str, source_identity: str
) -> None:
    writer = _writer_links(function_name, log_stream_name)[-1]
    assert writer.session_name == session_name
    assert writer.source_identity == (source_identity or session_name.partition(".")[0])


def test_role_session_name_keeps_function_and_environment() -> None:
    assert role_session_name("items-dev-ExportItemFunction-AbC123", "5f2b7c1e9a0d") == (
        "items-dev-ExportItemFunction-AbC123.5f2b7c1e9a0d"
    )


@pytest.mark.parametrize(
    ("parts", "name"),
    [
        (("fn", "a1", "b2"), "fn.a1.b2"),  # every qualifier, each behind its own dot
        (("f" * 70, "abc"), "f" * 60 + ".abc"),  # the function name gives way, the id stays whole
        (("fn", "q" * 70), ("." + "q" * 70)[:64]),  # qualifiers alone too long: no function name
        ((), "--"),  # nothing usable: padded to STS's two characters, nothing invented
        (("",), "--"),
    ],
)
def test_role_session_name_at_its_edges(parts: tuple[str, ...], name: str) -> None:
    assert role_session_name(*parts) == name


def test_every_client_has_explicit_timeouts_and_retries(stack: Stack) -> None:
    for client in (s3_client(stack.writer), sts_client(stack.base)):
        config = client.meta.config
        assert config.connect_timeout == CONNECT_TIMEOUT_SECONDS
        assert config.read_timeout == READ_TIMEOUT_SECONDS
        assert config.retries == {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    assert CLIENT_CONFIG.retries["total_max_attempts"] == MAX_ATTEMPTS


@pytest.fixture
def assume_roles(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, datetime, datetime]]:
    """Every AssumeRole answered: (role ARN, when it was called, when its credentials expire)."""
    answered: list[tuple[str, datetime, datetime]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        response = original(self, operation_name, api_params)
        if operation_name == "AssumeRole":
            expiry = response["Credentials"]["Expiration"]
            answered.append((api_params["RoleArn"], datetime.now(UTC), expiry))
        return response

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return answered


@pytest.mark.parametrize(
    ("seconds", "hub"),
    [
        (SHORTEST, ""),
        ((SHORTEST + LONGEST) // 2, ""),
        (LONGEST, ""),
        (SHORTEST, HUB),
        (LONGEST, HUB),
    ],
    ids=["shortest", "middle", "longest", "shortest-chained", "longest-chained"],
)
def test_every_accepted_duration_assumes_once_per_lifetime_and_refreshes_before_expiry(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    assume_roles: list[tuple[str, datetime, datetime]],
    seconds: int,
    hub: str,
) -> None:
    """One execution environment signing a request every 1/40 of the lifetime, for 2.5 lifetimes.

    Each role of the chain: no second AssumeRole while its credentials have at least half their
    lifetime left, and a new one while the old credentials still outlive a worst-case call.
    """
    monkeypatch.setenv("WRITER_SESSION_SECONDS", str(seconds))
    monkeypatch.setenv("WRITER_VIA_ROLE_ARN", hub)
    runtime.base.cache_clear()
    runtime.writer.cache_clear()
    try:
        with time_machine.travel(START, tick=False) as clock:
            client = sts_client(runtime.writer())
            for _ in range(100):
                client.get_caller_identity()
                clock.shift(timedelta(seconds=seconds / 40))
    finally:
        runtime.writer.cache_clear()
    roles = [role for role in (hub, WRITER) if role]
    for role in roles:
        calls = [(at, expiry) for arn, at, expiry in assume_roles if arn == role]
        assert calls[0][0] == START
        assert 3 <= len(calls) <= 5  # what the two bounds below allow in 2.5 lifetimes
        for (at, expiry), (next_at, _) in itertools.pairwise(calls):
            assert expiry - at == timedelta(seconds=seconds)
            assert next_at - at >= timedelta(seconds=seconds / 2)
            assert expiry - next_at > timedelta(seconds=worst_case_call_seconds())
    assert len(assume_roles) == sum(1 for arn, _, _ in assume_roles if arn in roles)


def test_the_base_session_is_in_the_region_and_profile_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never the machine's defaults: the region named, and a profile only when one is named."""
    config = tmp_path / "config"
    config.write_text("[default]\nregion = ap-south-1\n\n[profile ops]\nregion = us-east-2\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    assert base_session("eu-west-1").region_name == "eu-west-1"
    named = base_session("eu-west-1", profile_name="ops")
    assert (named.region_name, named.profile_name) == ("eu-west-1", "ops")
    assert base_session("eu-west-1").profile_name == "default"


@pytest.mark.parametrize(
    ("duration", "windows"),
    [(900, (225, 150)), (1800, (450, 300)), (3600, (900, 600)), (43200, (900, 600))],
)
def test_refresh_windows_are_a_quarter_and_a_sixth_up_to_botocore_s(
    duration: int, windows: tuple[int, int]
) -> None:
    """botocore's own windows are 15 and 10 minutes before expiry (advisory, mandatory)."""
    assert refresh_windows(duration) == windows


def test_an_assumed_role_session_keeps_the_source_s_region_and_models_and_says_how(
    monkeypatch: pytest.MonkeyPatch, own_loaders: None
) -> None:
    """Built without a network call: the region named for the source (not the machine's), the
    source's loaded service models (not a second read of them at init), and credentials that
    say they come from AssumeRole."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    source = base_session("eu-west-1")
    session = assumed_role_session(source, RoleSpec(WRITER, "fn"))
    assert session.region_name == "eu-west-1"
    loader = session._session.get_component("data_loader")
    assert loader is source._session.get_component("data_loader")
    assert session.get_credentials().method == "assume-role"
