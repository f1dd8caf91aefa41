"""The pre-traffic probes are events the functions' triggers could send (mutation survivors): an
HTTP probe has the shape of API Gateway's payload 2.0 (the recorded events in ``events/``, header
names lowercase as AWS documents), and a verdict names what each probe expected and what it got."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.operations import pre_traffic
from app.operations.pre_traffic import _answer, probes
from app.operations.requests import ExportRequest, export_request_from_message, parse_item_id
from app.services import Invocation

EVENTS = Path(__file__).resolve().parents[2] / "events"
HTTP_FUNCTIONS = ("GetItemFunction", "ExportItemFunction")


def _paths(document: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every key path of a JSON document's objects."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def _recorded(function: str) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted((EVENTS / function).glob("*.json"))]


RECORDED_PATHS = {
    path for function in HTTP_FUNCTIONS for event in _recorded(function) for path in _paths(event)
}


@pytest.mark.parametrize("function", HTTP_FUNCTIONS)
def test_an_http_probe_has_only_fields_api_gateway_sends(function: str) -> None:
    (probe,) = [probe for probe in probes("d-SHAPE") if probe.function == function]
    unknown = {
        ".".join(path)
        for path in _paths(probe.event)
        # The claims are the token's, whatever they are.
        if path[:4] != ("requestContext", "authorizer", "jwt", "claims")
        and path not in RECORDED_PATHS
    }
    assert unknown == set()
    assert all(name == name.lower() for name in probe.event["headers"])


@pytest.mark.parametrize("function", HTTP_FUNCTIONS)
def test_an_http_probe_says_what_api_gateway_says_for_its_route(function: str) -> None:
    (probe,) = [probe for probe in probes("d-SHAPE") if probe.function == function]
    event = probe.event
    (recorded, *_) = _recorded(function)
    # What every request of this route carries, whichever item and caller.
    for key in ("version", "routeKey", "rawQueryString", "isBase64Encoded"):
        assert event[key] == recorded[key], key
    for key in ("routeKey", "stage"):
        assert event["requestContext"][key] == recorded["requestContext"][key], key
    http = event["requestContext"]["http"]
    assert (http["method"], http["protocol"]) == (
        recorded["requestContext"]["http"]["method"],
        recorded["requestContext"]["http"]["protocol"],
    )
    assert http["path"] == event["rawPath"]
    assert event["headers"]["accept"] == "application/json"
    if event["body"] is not None:
        assert event["headers"]["content-type"] == recorded["headers"]["content-type"]


def test_an_answer_of_no_known_shape_is_named_by_its_type() -> None:
    assert _answer(Invocation(["not", "an", "object"])) == "an answer of type list"
    assert _answer(Invocation({"other": 1})) == "an answer of type dict"


def test_a_failed_probe_says_what_it_expected() -> None:
    class _Unhealthy:
        def invoke(self, version_arn: str, event: dict[str, Any]) -> Invocation:
            return Invocation({"statusCode": 500})

    class _Deployments:
        def report_hook(self, deployment_id: str, execution_id: str, *, succeeded: bool) -> None:
            pass

    verdict = pre_traffic.run_pre_traffic_hook(
        "d-1",
        "e-1",
        targets={"GetItemFunction": "arn:aws:lambda:eu-west-1:123456789012:function:f:1"},
        versions=_Unhealthy(),  # type: ignore[arg-type]
        deployments=_Deployments(),  # type: ignore[arg-type]
    )
    assert [(result.expected, result.answer) for result in verdict.results] == [
        ("statusCode 404 (or 200)", "statusCode 500")
    ]


def _probe(function: str, deployment_id: str = "d-SHAPE") -> pre_traffic.Probe:
    (probe,) = [probe for probe in probes(deployment_id) if probe.function == function]
    return probe


def test_the_queue_probe_is_an_sqs_record_asking_to_export_the_probe_item() -> None:
    (record,) = _probe("ExportQueueFunction").event["Records"]
    recorded_paths = {
        path for event in _recorded("ExportQueueFunction") for path in _paths(event["Records"][0])
    }
    assert set(_paths(record)) <= recorded_paths
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].split(":")[:3] == ["arn", "aws", "sqs"]
    # The same missing item the HTTP probes ask for, in a body the queue's parser accepts.
    item_id = _probe("GetItemFunction").event["pathParameters"]["item_id"]
    assert export_request_from_message(record["body"]) == ExportRequest(item_id)
    # A first delivery, as SQS counts them (a string, as SQS sends every attribute).
    assert record["attributes"]["ApproximateReceiveCount"] == "1"


def test_the_probe_item_id_is_one_the_api_accepts_whatever_the_deployment_id() -> None:
    item_id = _probe("GetItemFunction", "d-" + "X" * 100).event["pathParameters"]["item_id"]
    assert parse_item_id(item_id) == item_id
    assert item_id.startswith(pre_traffic.PROBE_PREFIX + "d-XXX")


@pytest.mark.parametrize("status", [404, 200])
def test_the_read_probe_passes_whether_or_not_the_probe_item_exists(status: int) -> None:
    assert _probe("GetItemFunction").healthy({"statusCode": status})
    assert not _probe("GetItemFunction").healthy({"statusCode": 201})


HEALTHY = {
    "GetItemFunction": Invocation({"statusCode": 404}),
    "ExportItemFunction": Invocation({"statusCode": 404}),
    "ExportQueueFunction": Invocation(
        {"batchItemFailures": [{"itemIdentifier": "pre-traffic-probe-d-SHAPE-message"}]}
    ),
    "ExportTableFunction": Invocation({"status": "rejected"}),
}


@pytest.mark.parametrize("function", HEALTHY)
def test_what_a_probe_expects_is_said_as_its_answer_is(function: str) -> None:
    """An operator compares the two fields of the verdict: the same words for the same thing."""
    probe, healthy = _probe(function), HEALTHY[function]
    assert probe.healthy(healthy.payload)
    answer = _answer(healthy)
    if function == "ExportQueueFunction":
        field, _count = answer.split()
        assert probe.expected == f"{field} [pre-traffic-probe-d-SHAPE-message]"
    else:
        assert probe.expected.startswith(answer)


@pytest.mark.parametrize("function", HEALTHY)
def test_an_answer_that_is_no_json_object_fails_a_probe_without_raising(function: str) -> None:
    # Lambda's payload for a crashed runtime can be a bare string.
    assert not _probe(function).healthy("Task timed out after 15.00 seconds")
    assert not _probe(function).healthy(None)
