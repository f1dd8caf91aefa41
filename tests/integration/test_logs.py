"""No secret, no whole event and no request body in anything a function prints.

Every event in events/ goes through every handler (its own and the others', which makes garbage
for them), and the failure paths run too (throttled reads, a failed write, an STS outage). All
output is captured as CloudWatch Logs would receive it (tests/log_capture.py) and searched for: the
function's own credentials and the writer role's assumed-role credentials (read back from the
sessions after the calls, so they are the ones that were really used), anything shaped like an
access key id, the whole event at INFO or above, and any request body. Each detector is shown to
catch a planted leak, so a pass means something.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.observability import logger as service_logger
from app.sessions.config import MAX_ATTEMPTS
from tests import fault_injection as faults
from tests.conftest import Stack, event_names, load_event
from tests.fault_injection import FaultyAws, record_backoff
from tests.handler_calls import call
from tests.log_capture import LambdaOutput, lambda_output
from tools.emulator import sam_template
from tools.emulator.lambda_context import LambdaContext

FUNCTIONS = sorted(sam_template.functions(sam_template.load()))
BASE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIAQ7LOGTEST5EXAMPL",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYlogtestKEY",
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEPlogtest//////////wEaCWV1LXdlc3QtMSJHMEUCIQDtoken",
}
ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
# Garbage events (an SQS batch to an API function...) end without a metric; test_fuzz pins that.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
MIN_BODY = 8
"""Bodies shorter than this ("{}") say nothing and would match by accident."""


@dataclass
class Run:
    """What ran, what it printed and which credentials were live."""

    output: LambdaOutput
    events: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[Stack] = field(default_factory=list)

    def secrets(self) -> set[str]:
        values = set(BASE_CREDENTIALS.values()) | bearer_tokens(self.events)
        for stack in self.sessions:
            for session in (stack.base, stack.writer):
                credentials = session.get_credentials()
                assert credentials is not None
                frozen = credentials.get_frozen_credentials()
                values |= {frozen.access_key, frozen.secret_key, frozen.token or ""}
        return {value for value in values if value}


def bearer_tokens(events: list[dict[str, Any]]) -> set[str]:
    """The tokens the events carry (their Authorization headers), whole and each of their parts:
    a function never needs the token, API Gateway verified it."""
    tokens = set()
    for event in events:
        headers = event.get("headers")
        value = headers.get("authorization") if isinstance(headers, dict) else None
        if isinstance(value, str) and value.startswith("Bearer "):
            token = value.removeprefix("Bearer ")
            tokens |= {token, *(part for part in token.split(".") if len(part) >= MIN_BODY)}
    return tokens


def _forms(text: str) -> set[str]:
    """A string as it appears raw and inside a JSON log line."""
    return {text, json.dumps(text)[1:-1]}


def leaked_secrets(run: Run) -> list[str]:
    text = run.output.text
    """Each leaked value once, cut short so the failure message does not repeat the leak."""
    found = {secret[:8] for secret in run.secrets() if any(f in text for f in _forms(secret))}
    found |= {match[:8] for match in ACCESS_KEY_ID.findall(text)}
    return sorted(f"{prefix}..." for prefix in found)


def _bodies(event: dict[str, Any]) -> list[str]:
    bodies = [event.get("body")] + [r.get("body") for r in event.get("Records", []) if r]
    return [body for body in bodies if isinstance(body, str) and len(body) >= MIN_BODY]


def _holds_event(value: object, event: dict[str, Any]) -> bool:
    if isinstance(value, dict):
        return set(event) <= set(value) or any(_holds_event(v, event) for v in value.values())
    if isinstance(value, list):
        return any(_holds_event(v, event) for v in value)
    return False


def logged_events_and_bodies(run: Run) -> list[str]:
    """Whole events in INFO+ lines (as objects or serialized), and request bodies in any line."""
    problems = []
    loud = run.output.at("INFO", "WARNING", "ERROR", "CRITICAL")
    for event in run.events:
        if len(event) < 2:  # {} or {"run_id": ...}: nothing to recognise a whole event by
            continue
        serialized = {json.dumps(event), json.dumps(event, separators=(",", ":")), repr(event)}
        if any(_holds_event(line, event) for line in loud) or any(
            form in line for line in map(json.dumps, loud) for s in serialized for form in _forms(s)
        ):
            problems.append(f"event with keys {sorted(event)[:4]} logged whole")
        for body in _bodies(event):
            if any(form in run.output.text for form in _forms(body)):
                problems.append(f"request body {body[:20]!r} logged")
    return problems


# --- Running everything ------------------------------------------------------------------------


@pytest.fixture
def distinctive_stack(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Stack:
    """The moto stack, built after the function's own credentials are ones we can search for."""
    for name, value in BASE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    stack: Stack = request.getfixturevalue("stack")
    return stack


def _invoke(run: Run, function_id: str, event: dict[str, Any], stack: Stack) -> None:
    """Invoke as Lambda would: an unhandled exception is printed by the runtime, trace included."""
    run.events.append(event)
    try:
        call(function_id, event, stack, LambdaContext(function_name=f"items-test-{function_id}"))
    except Exception as error:  # noqa: BLE001 - printed as the runtime prints it, then searched
        run.output.add_unhandled(error)


def run_everything(stack: Stack, monkeypatch: pytest.MonkeyPatch, level: str) -> Run:
    """Every event through every handler, then the failure paths, all captured at ``level``."""
    with lambda_output(level) as output:
        run = Run(output, sessions=[stack])
        for name in event_names():
            for function_id in FUNCTIONS:
                _invoke(run, function_id, load_event(name), stack)
        record_backoff(monkeypatch)
        aws = FaultyAws()
        failing = faults.rebuild_services(stack, aws, "items-test.logs")
        run.sessions.append(failing)
        aws.inject("dynamodb", "GetItem", faults.DYNAMODB_THROTTLING, times=MAX_ATTEMPTS)
        _invoke(run, "GetItemFunction", load_event("GetItemFunction/found"), failing)
        aws.inject("s3", "PutObject", faults.S3_SLOW_DOWN)
        _invoke(run, "ExportItemFunction", load_event("ExportItemFunction/created"), failing)
        _invoke(run, "ExportQueueFunction", load_event("ExportQueueFunction/batch"), failing)
        aws.inject("sts", "AssumeRole", faults.STS_UNAVAILABLE)  # a fresh writer: STS is down
        sts_down = faults.rebuild_services(stack, aws, "items-test.logs-sts")
        _invoke(run, "ExportItemFunction", load_event("ExportItemFunction/created"), sts_down)
    return run


def test_info_logs_hold_no_secret_no_whole_event_and_no_body(
    distinctive_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_everything(distinctive_stack, monkeypatch, "INFO")
    assert len(run.output.lines()) > len(FUNCTIONS) * len(event_names()), "the capture works"
    assert len(run.secrets()) >= 9, "base, writer and failure-path credentials were all live"
    assert leaked_secrets(run) == []
    assert logged_events_and_bodies(run) == []


def test_the_detectors_catch_planted_leaks(distinctive_stack: Stack) -> None:
    """The same checks, after the service logger leaks what the real paths must never log."""
    event = load_event("ExportItemFunction/created")
    with lambda_output("INFO") as output:
        run = Run(output, sessions=[distinctive_stack])
        _invoke(run, "ExportItemFunction", event, distinctive_stack)
        assert leaked_secrets(run) == []
        assert logged_events_and_bodies(run) == []
        frozen = distinctive_stack.writer.get_credentials().get_frozen_credentials()
        service_logger.info("incoming", extra={"event": event})
        service_logger.debug(f"token {frozen.token}")  # below INFO: not captured
        service_logger.warning(f"token {frozen.token}, body {event['body']}")
    bearer = {f"{token[:8]}..." for token in bearer_tokens([event])}
    assert leaked_secrets(run) == sorted({f"{frozen.token[:8]}...", *bearer}), "the whole event"
    assert len(logged_events_and_bodies(run)) == 2  # the whole event, and the body
    with lambda_output("INFO") as output:
        run = Run(output, events=[event], sessions=[distinctive_stack])
        service_logger.info("caller", extra={"auth": event["headers"]["authorization"]})
    assert leaked_secrets(run) == sorted(bearer)
    assert len(bearer_tokens([event])) == 4  # the token and its three parts


def test_nothing_secret_is_logged_at_debug(
    distinctive_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LogLevel=DEBUG is a template option: it must not turn the logs into a credential store."""
    assert leaked_secrets(run_everything(distinctive_stack, monkeypatch, "DEBUG")) == []


PERSONAL = {"email": "jane.doe@example.com", "username": "jane.doe", "name": "Jane Doe"}


@pytest.mark.parametrize("name", ["GetItemFunction/found", "ExportItemFunction/created"])
def test_the_request_line_names_the_caller_and_nothing_else_of_the_token(
    stack: Stack, context: LambdaContext, name: str
) -> None:
    """Subject, client id and scopes, as API Gateway verified them; no other claim (a user's
    e-mail or name, the issuer, the token's id), and never the token."""
    event = load_event(name)
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    claims.update(PERSONAL)
    with lambda_output("INFO") as output:
        response = call(name.split("/", maxsplit=1)[0], event, stack, context)
    [line] = [line for line in output.records() if line.get("message") == "request answered"]
    assert line["status"] == response["statusCode"] < 300
    assert line["caller_verified"] is True
    assert line["caller_subject"] == claims["sub"]
    assert line["caller_client_id"] == claims["client_id"]
    assert line["caller_scopes"] == claims["scope"].split()
    for value in [*PERSONAL.values(), claims["jti"], claims["iss"]]:
        assert not any(form in output.text for form in _forms(value)), value
    run = Run(output, events=[event])
    assert leaked_secrets(run) == []


def test_a_request_without_claims_is_logged_as_unverified(
    stack: Stack, context: LambdaContext
) -> None:
    with lambda_output("INFO") as output:
        call("GetItemFunction", load_event("GetItemFunction/unverified"), stack, context)
    [line] = [line for line in output.records() if line.get("message") == "request answered"]
    assert line["caller_verified"] is False
    assert line["caller_scopes"] == []
    assert "caller_subject" not in line, "Powertools leaves out keys whose value is None"


def test_a_huge_claim_is_logged_bounded(stack: Stack, context: LambdaContext) -> None:
    event = load_event("GetItemFunction/found")
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    claims["sub"] = "s" * 1_000_000
    claims["scope"] = " ".join(f"items/scope-{index}" for index in range(100_000))
    with lambda_output("INFO") as output:
        call("GetItemFunction", event, stack, context)
    [line] = [line for line in output.records() if line.get("message") == "request answered"]
    assert len(line["caller_subject"]) == 255
    assert len(line["caller_scopes"]) == 20
    assert len(output.text) < 10_000
