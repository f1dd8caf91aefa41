"""Before CodeDeploy moves any traffic to new versions: invoke each one with a real request.

Each probe is an event its function's trigger would send, chosen so that a healthy version answers
it without writing anything:

* ``GetItemFunction``: ``GET /items/pre-traffic-probe-<deployment>`` with a token's claims
  (``items/read``): 404, or 200 should such an item exist. Proves the code loads, routes and reads
  the table with its role; a 5xx (denied, missing table) fails the deployment.
* ``ExportItemFunction``: ``POST`` of an export of that missing item (``items/export``): 404, which
  proves the read with its role and stops before any write. The id names the deployment, so only
  an item created on purpose during the deployment could make it a real export.
* ``ExportQueueFunction``: a batch of one message for that missing item: the message reported as
  a batch item failure, and nothing else. Proves the code loads and answers a batch; a missing
  item and a denied read look alike here, so the HTTP probes are what proves access.
* ``ExportTableFunction``: a direct invocation with an invalid ``run_id``: ``rejected``, before any
  AWS call (a valid one would export the whole table). Proves the code loads and its init works.

A probe fails on an error Lambda reports (an exception, a timeout, an init failure) or any other
answer; one failed probe fails the hook, and CodeDeploy rolls back.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.services import DependencyError, Deployments, FunctionVersions, Invocation

PROBE_PREFIX = "pre-traffic-probe-"
PROBE_SUBJECT = "codedeploy-pre-traffic-hook"
"""The ``sub`` claim of the probes' token: the API's logs name the hook as the caller."""
INVALID_RUN_ID = "../pre-traffic-probe"
"""Refused by ExportTableFunction's run id rule before it reads anything."""


@dataclass(frozen=True)
class Probe:
    function: str
    """The function's logical id in template.yaml."""
    event: dict[str, Any]
    expected: str
    healthy: Callable[[Any], bool]


@dataclass(frozen=True)
class ProbeResult:
    function: str
    version_arn: str
    passed: bool
    expected: str
    answer: str
    """Status code, status or Lambda's error type: enough to act on, never a body."""


@dataclass(frozen=True)
class HookVerdict:
    deployment_id: str
    passed: bool
    results: list[ProbeResult]


def _http_event(
    method: str, route: str, item_id: str, *, scope: str, body: str | None
) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event as API Gateway sends it after its JWT authorizer."""
    path = route.replace("{item_id}", item_id)
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "content-type": "application/json"},
        "requestContext": {
            "authorizer": {
                "jwt": {"claims": {"sub": PROBE_SUBJECT, "scope": scope}, "scopes": [scope]}
            },
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": PROBE_SUBJECT,
            },
            "requestId": f"{item_id}-{method.lower()}",
            "routeKey": f"{method} {route}",
            "stage": "$default",
        },
        "pathParameters": {"item_id": item_id},
        "body": body,
        "isBase64Encoded": False,
    }


def _status_in(*codes: int) -> Callable[[Any], bool]:
    return lambda payload: isinstance(payload, dict) and payload.get("statusCode") in codes


def probes(deployment_id: str) -> list[Probe]:
    """The request each function gets, for this deployment (its id keeps the probes apart)."""
    item_id = f"{PROBE_PREFIX}{deployment_id}"[:64]
    message_id = f"{item_id}-message"
    return [
        Probe(
            "GetItemFunction",
            _http_event("GET", "/items/{item_id}", item_id, scope="items/read", body=None),
            "statusCode 404 (or 200)",
            _status_in(404, 200),
        ),
        Probe(
            "ExportItemFunction",
            _http_event(
                "POST",
                "/items/{item_id}/exports",
                item_id,
                scope="items/export",
                body=json.dumps({"fields": ["name"]}),
            ),
            "statusCode 404",
            _status_in(404),
        ),
        Probe(
            "ExportQueueFunction",
            {
                "Records": [
                    {
                        "messageId": message_id,
                        "receiptHandle": "cHJlLXRyYWZmaWMtcHJvYmU=",
                        "body": json.dumps({"item_id": item_id}),
                        "attributes": {"ApproximateReceiveCount": "1"},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:::pre-traffic-probe",
                    }
                ]
            },
            f"batchItemFailures [{message_id}]",
            lambda payload: payload == {"batchItemFailures": [{"itemIdentifier": message_id}]},
        ),
        Probe(
            "ExportTableFunction",
            {"run_id": INVALID_RUN_ID},
            "status rejected",
            lambda payload: isinstance(payload, dict) and payload.get("status") == "rejected",
        ),
    ]


def _answer(invocation: Invocation) -> str:
    if invocation.function_error:
        error_type = (
            invocation.payload.get("errorType") if isinstance(invocation.payload, dict) else None
        )
        return f"{invocation.function_error} error {error_type or ''}".strip()
    payload = invocation.payload
    if isinstance(payload, dict):
        for key in ("statusCode", "status"):
            if key in payload:
                return f"{key} {payload[key]}"
        if "batchItemFailures" in payload:
            return f"batchItemFailures {len(payload['batchItemFailures'])}"
    return f"an answer of type {type(payload).__name__}"


def _probe(probe: Probe, version_arn: str, versions: FunctionVersions) -> ProbeResult:
    try:
        invocation = versions.invoke(version_arn, probe.event)
    except DependencyError as error:
        return ProbeResult(probe.function, version_arn, False, probe.expected, error.code)
    passed = invocation.function_error is None and probe.healthy(invocation.payload)
    return ProbeResult(probe.function, version_arn, passed, probe.expected, _answer(invocation))


def run_pre_traffic_hook(
    deployment_id: str,
    execution_id: str,
    *,
    targets: Mapping[str, str],
    versions: FunctionVersions,
    deployments: Deployments,
) -> HookVerdict:
    """Probe every new version (``targets``: logical id -> version ARN), then report the verdict.

    Every function's version is probed, whichever alias this deployment shifts: CloudFormation
    updates the aliases of one stack update together and rolls them all back if any fails.
    """
    planned = probes(deployment_id)
    results = []
    for probe in planned:
        version_arn = targets.get(probe.function)
        if version_arn is None:
            results.append(ProbeResult(probe.function, "", False, probe.expected, "no version"))
            continue
        results.append(_probe(probe, version_arn, versions))
        if not results[-1].passed:
            break  # one failure fails the deployment: the rest would only delay the rollback
    passed = len(results) == len(planned) and all(result.passed for result in results)
    deployments.report_hook(deployment_id, execution_id, succeeded=passed)
    return HookVerdict(deployment_id, passed, results)
