"""Load: a bounded soak through the local runner, and proof that it would notice a leak.

2,000 invocations in 7 execution environments (worker processes, in parallel) of the template's 4
functions, against one embedded AWS: every invocation succeeds, every export is in the bucket
once, and in every environment

* memory does not grow: the REPORT line's ``Max Memory Used`` at the last invocation is within
  1 MB of the 10th's, and resident memory over the second half grows by less than
  ``LEAK_KB_PER_INVOCATION`` a invocation (plus ``NOISE_KB``: the allocator works in pages);
* open file descriptors and sockets do not grow: none is open after the 10th invocation that was
  not at some point before it (connection pools fill up while warming, then stay);
* STS ``AssumeRole`` is called once per environment that writes (the writer's credentials last an
  hour; a short soak never refreshes them) and never by one that does not.

The toy functions at the end leak a little memory or one socket per invocation, through the same
runner and the same checks, and are caught: the checks fail when their guarantee breaks.

``make test`` runs it as above; ``make soak`` runs ``SOAK_SCALE`` (default 5) times as many
invocations in the same environments, which also makes the memory check finer.
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EVENTS, load_event, new_request
from tools.emulator import local_lambda, provision
from tools.emulator.execution_environment import Invocation
from tools.emulator.local_lambda import LocalAws

SCALE = int(os.environ.get("SOAK_SCALE", "1"))
WARM = 10
"""Invocations that may still grow memory and connections: the first ones connect and cache."""
LEAK_KB_PER_INVOCATION = 1
NOISE_KB = 512
REPORT_SLACK_MB = 1
"""``Max Memory Used`` is rounded up to a whole MB, and warming may still cross one boundary."""


# --- The load --------------------------------------------------------------------------------


def _get_item(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    case = ("found", "not_found")[index % 2]
    return load_event(f"GetItemFunction/{case}"), {"statusCode": (200, 404)[index % 2]}


def _export_item(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return new_request("ExportItemFunction/created", f"soak-{index}"), {"statusCode": 201}


def _export_queue(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return new_request("ExportQueueFunction/batch", f"soak-{index}"), {"batchItemFailures": []}


def _export_table(index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return load_event("ExportTableFunction/on_demand"), {"status": "complete"}


Events = Callable[[int], tuple[dict[str, Any], dict[str, Any]]]


@dataclass(frozen=True)
class Environment:
    function_id: str
    make: Events
    invocations: int
    label: str


PLAN = [
    Environment("GetItemFunction", _get_item, 450 * SCALE, "get-1"),
    Environment("GetItemFunction", _get_item, 450 * SCALE, "get-2"),
    Environment("ExportItemFunction", _export_item, 325 * SCALE, "api-1"),
    Environment("ExportItemFunction", _export_item, 325 * SCALE, "api-2"),
    Environment("ExportQueueFunction", _export_queue, 200 * SCALE, "queue-1"),
    Environment("ExportQueueFunction", _export_queue, 200 * SCALE, "queue-2"),
    Environment("ExportTableFunction", _export_table, 50 * SCALE, "table-1"),
]
"""A queue batch is two records, a table export about 30 AWS calls: the slow ones are fewer."""


def _events(environment: Environment) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pairs = [environment.make(index) for index in range(environment.invocations)]
    events = [copy.deepcopy(event) for event, _ in pairs]
    for event in events:  # no two environments export under the same id
        if "requestContext" in event:
            event["requestContext"]["requestId"] += f"-{environment.label}"
        for record in event.get("Records", []):
            record["messageId"] += f"-{environment.label}"
    return events, [expected for _, expected in pairs]


# --- What must not grow ----------------------------------------------------------------------


def _assume_role_calls(invocations: list[Invocation]) -> int:
    return sum(
        i.api_calls.get("sts.AssumeRole", 0) + i.init_api_calls.get("sts.AssumeRole", 0)
        for i in invocations
    )


def growth(invocations: list[Invocation]) -> list[str]:
    """What grew in one execution environment after it warmed up; empty when nothing did."""
    assert len(invocations) > 2 * WARM, "too short to tell warming from growing"
    assert all(i.resources for i in invocations), "the worker reports no resources"
    warm, middle, last = invocations[WARM - 1], invocations[len(invocations) // 2], invocations[-1]
    found = []
    if last.max_memory_mb > warm.max_memory_mb + REPORT_SLACK_MB:
        found.append(
            f"Max Memory Used grew from {warm.max_memory_mb} MB (invocation {WARM}) to "
            f"{last.max_memory_mb} MB (invocation {len(invocations)})"
        )
    later = len(invocations) - 1 - len(invocations) // 2
    grown_kb = last.resources["rss_kb"] - middle.resources["rss_kb"]
    if grown_kb > NOISE_KB + LEAK_KB_PER_INVOCATION * later:
        found.append(f"resident memory grew by {grown_kb} KB over the last {later} invocations")
    for resource in ("open_fds", "sockets"):
        warming = max(i.resources[resource] for i in invocations[:WARM])
        most = max(i.resources[resource] for i in invocations[WARM:])
        if most > warming:
            found.append(f"{resource} reached {most} after warming, {warming} before")
    return found


# --- The soak --------------------------------------------------------------------------------


@dataclass
class Run:
    environment: Environment
    invocations: list[Invocation]
    expected: list[dict[str, Any]]
    seconds: float
    log: Path


@dataclass
class Soak:
    local: LocalAws
    runs: list[Run]
    seconds: float


def _run(local: LocalAws, environment: Environment, logs: Path) -> Run:
    events, expected = _events(environment)
    log = logs / f"{environment.label}.log"
    began = time.monotonic()
    with log.open("w") as stderr:
        invocations = local_lambda.invoke(
            local, environment.function_id, events, use_build=False, stderr=stderr
        )
    return Run(environment, invocations, expected, time.monotonic() - began, log)


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Soak]:
    logs = tmp_path_factory.mktemp("soak-logs")
    with local_lambda.embedded(seed_file=EVENTS / "seed.json", stack_name="soak") as local:
        for service in ("s3", "sts"):
            local.aws.client(service)  # built once, before the threads share them
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(PLAN)) as pool:
            runs = list(pool.map(lambda environment: _run(local, environment, logs), PLAN))
        yield Soak(local, runs, time.monotonic() - began)


def _matches(response: Any, expected: dict[str, Any]) -> bool:
    return isinstance(response, dict) and all(response.get(k) == v for k, v in expected.items())


def test_every_invocation_succeeds(soak: Soak) -> None:
    for run in soak.runs:
        assert len(run.invocations) == run.environment.invocations, run.log.read_text()[-3000:]
        failed = [
            (index, invocation.response)
            for index, (invocation, expected) in enumerate(
                zip(run.invocations, run.expected, strict=True)
            )
            if invocation.error or not _matches(invocation.response, expected)
        ]
        assert failed == [], (run.environment.label, failed[:3], run.log.read_text()[-3000:])


def test_every_export_is_in_the_bucket_once(soak: Soak) -> None:
    s3 = soak.local.aws.client("s3")
    bucket = soak.local.deployment.resources["ExportsBucket"]
    keys = [
        entry["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for entry in page.get("Contents", [])
    ]
    items = [key for key in keys if not key.startswith("exports/table/")]
    manifests = [key for key in keys if key.endswith("/manifest.json")]
    by_function = {
        function_id: sum(
            r.environment.invocations for r in soak.runs if r.environment.function_id == function_id
        )
        for function_id in ("ExportItemFunction", "ExportQueueFunction", "ExportTableFunction")
    }
    records = len(load_event("ExportQueueFunction/batch")["Records"])
    assert (
        len(items)
        == by_function["ExportItemFunction"] + records * by_function["ExportQueueFunction"]
    )
    assert len(manifests) == by_function["ExportTableFunction"]
    api_keys = [
        invocation.response["body"]
        for run in soak.runs
        if run.environment.function_id == "ExportItemFunction"
        for invocation in run.invocations
    ]
    assert len(set(api_keys)) == len(api_keys)


def test_nothing_grows_per_invocation(soak: Soak) -> None:
    for run in soak.runs:
        assert growth(run.invocations) == [], run.environment.label


def test_assume_role_once_per_environment_that_writes(soak: Soak) -> None:
    for run in soak.runs:
        writes = "WRITER_ROLE_ARN" in soak.local.function(run.environment.function_id).environment
        assert _assume_role_calls(run.invocations) == (1 if writes else 0), run.environment.label


def test_figures(soak: Soak, capsys: pytest.CaptureFixture[str]) -> None:
    """What the soak measured, printed even when pytest captures output."""
    total = sum(len(run.invocations) for run in soak.runs)
    writing = [run for run in soak.runs if _assume_role_calls(run.invocations)]
    lines = [
        f"soak: {total} invocations, {len(soak.runs)} execution environments, "
        f"{len({r.environment.function_id for r in soak.runs})} functions, {soak.seconds:.1f} s, "
        f"errors {sum(i.error for r in soak.runs for i in r.invocations)}, "
        f"sts:AssumeRole {sum(_assume_role_calls(r.invocations) for r in soak.runs)} "
        f"({len(writing)} writing environments x 1)",
    ]
    for run in soak.runs:
        invocations = run.invocations
        warm, middle, last = (
            invocations[WARM - 1],
            invocations[len(invocations) // 2],
            invocations[-1],
        )
        later = len(invocations) - 1 - len(invocations) // 2
        durations = sorted(i.duration_ms for i in invocations[WARM:])
        lines.append(
            f"  {run.environment.label:8} {len(invocations):5} invocations in {run.seconds:4.1f} s "
            f"p50 {durations[len(durations) // 2]:6.1f} ms  "
            f"Max Memory Used {warm.max_memory_mb}->{last.max_memory_mb} MB  "
            f"RSS {warm.resources['rss_kb']}->{last.resources['rss_kb']} KB "
            f"(last {later}: +{last.resources['rss_kb'] - middle.resources['rss_kb']} KB, "
            f"allowed {NOISE_KB + LEAK_KB_PER_INVOCATION * later})  "
            f"fds {warm.resources['open_fds']}->{last.resources['open_fds']}  "
            f"sockets {warm.resources['sockets']}->{last.resources['sockets']}  "
            f"AssumeRole {_assume_role_calls(invocations)}"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines))


# --- The checks catch leaks ------------------------------------------------------------------

TOY_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    CodeUri: code/
Resources:
  SteadyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: toy.steady
  LeakMemoryFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: toy.leak_memory
  LeakSocketFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: toy.leak_socket
"""
TOY_CODE = """\
import socket

KEPT = []


def steady(event, context):
    return {"ok": len(bytes(range(256)) * 64)}


def leak_memory(event, context):
    KEPT.append(bytes(range(256)) * 32)  # 8 KB a call, written (so resident)
    return {"ok": len(KEPT)}


def leak_socket(event, context):
    KEPT.append(socket.socket())  # never closed
    return {"ok": len(KEPT)}
"""
TOY_INVOCATIONS = 300


@pytest.fixture(scope="module")
def toys(soak: Soak, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Invocation]]:
    root = tmp_path_factory.mktemp("leaky")
    (root / "code").mkdir()
    (root / "code" / "toy.py").write_text(TOY_CODE)
    (root / "template.yaml").write_text(TOY_TEMPLATE)
    toy = LocalAws(
        soak.local.aws,
        provision.deploy(soak.local.aws, root / "template.yaml", stack_name="soak-toy"),
    )

    def run(function_id: str) -> list[Invocation]:
        return local_lambda.invoke(
            toy, function_id, [{}] * TOY_INVOCATIONS, use_build=False, stderr=subprocess.DEVNULL
        )

    functions = ["SteadyFunction", "LeakMemoryFunction", "LeakSocketFunction"]
    with ThreadPoolExecutor(max_workers=len(functions)) as pool:
        return dict(zip(functions, pool.map(run, functions), strict=True))


def test_a_steady_toy_does_not_grow(toys: dict[str, list[Invocation]]) -> None:
    assert growth(toys["SteadyFunction"]) == []


def test_a_memory_leak_of_8_kb_an_invocation_is_caught(toys: dict[str, list[Invocation]]) -> None:
    found = growth(toys["LeakMemoryFunction"])
    assert any(line.startswith("resident memory grew") for line in found), found
    assert not any(line.startswith(("open_fds", "sockets")) for line in found), found


def test_a_socket_leak_is_caught(toys: dict[str, list[Invocation]]) -> None:
    found = growth(toys["LeakSocketFunction"])
    assert [line.split()[0] for line in found] == ["open_fds", "sockets"]
