"""STS calls and clients built over many invocations of one execution environment, hours long.

``python -m bench.sts_calls --subject project --out FILE`` runs ``ExportItemFunction`` (imported
from ``src/``, with the Lambda environment the local invoke gives it) for 1,000 invocations spread
evenly over 3 hours of simulated time, and writes what it asked of AWS as JSON. ``--subject
naive`` does the same with its naive version (``bench/baseline/naive_export_item.py``: an
``sts.assume_role`` and a new S3 client per invocation); ``--subject project --subject naive``
runs both, one after the other, in the same embedded AWS.

It runs in a process of its own, with the embedded AWS in it: time-machine moves this process's
clock, and so the moto server's too, so that STS stamps the credentials it hands out with the
same simulated time that botocore later checks them against. (A server in another process would
see real time: every credential would look nearly expired, and refresh at every call.)
"""

from __future__ import annotations

import argparse
import collections
import copy
import importlib
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import botocore.client
import botocore.session
import time_machine

from tools.emulator import local_lambda
from tools.emulator.execution_environment import Code, lambda_environment, role_credentials
from tools.emulator.invoke_inputs import forget_developer_aws_config
from tools.emulator.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "events" / "ExportItemFunction" / "created.json"
SEED = ROOT / "events" / "seed.json"
FUNCTION_ID = "ExportItemFunction"
SUBJECTS = {"project": "app.handlers.export_item", "naive": "naive_export_item"}
START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


class _Spy:
    """Every API call and client built in this process while ``on``, with the simulated time."""

    def __init__(self) -> None:
        self.on = False
        self.calls: collections.Counter[str] = collections.Counter()
        self.clients: collections.Counter[str] = collections.Counter()
        self.sts_at: list[datetime] = []
        make_api_call = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
        create_client = botocore.session.Session.create_client
        spy = self

        def counting_call(client: Any, operation: str, params: Any) -> Any:  # noqa: ANN401
            if spy.on:
                service = client.meta.service_model.service_name
                spy.calls[f"{service}.{operation}"] += 1
                if service == "sts":
                    spy.sts_at.append(datetime.now(UTC))
            return make_api_call(client, operation, params)

        def counting_client(session: Any, service: str, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
            if spy.on:
                spy.clients[service] += 1
            return create_client(session, service, *args, **kwargs)

        setattr(botocore.client.BaseClient, "_make_api_call", counting_call)  # noqa: B010
        setattr(botocore.session.Session, "create_client", counting_client)  # noqa: B010

    def snapshot(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "clients": dict(self.clients),
            "sts": self.calls["sts.AssumeRole"],
            "client_count": sum(self.clients.values()),
        }

    def reset(self) -> None:
        self.calls.clear()
        self.clients.clear()
        self.sts_at.clear()


def _events(count: int, tag: str) -> list[dict[str, Any]]:
    template = json.loads(EVENT.read_text())
    events = []
    for number in range(count):
        event = copy.deepcopy(template)
        event["requestContext"]["requestId"] = f"{tag}-{number:05d}"
        events.append(event)
    return events


def _run(
    module_name: str,
    spy: _Spy,
    *,
    traveller: Any,  # noqa: ANN401 - time_machine's Coordinates
    invocations: int,
    hours: float,
    function_name: str,
) -> dict[str, Any]:
    """Import ``module_name`` (init), then invoke it ``invocations`` times over ``hours``."""
    spy.reset()
    spy.on = True
    module = importlib.import_module(module_name)
    at_init = spy.snapshot()
    began = datetime.now(UTC)
    step = timedelta(hours=hours) / invocations
    failures = 0
    for number, event in enumerate(_events(invocations, module_name.rpartition(".")[2])):
        traveller.move_to(began + number * step)
        context = LambdaContext(function_name=function_name)
        response = module.lambda_handler(event, context)
        failures += response.get("statusCode") != 201
    spy.on = False
    return {
        "init": at_init,
        "total": spy.snapshot(),
        "failures": failures,
        "sts_minutes": [round((at - began).total_seconds() / 60, 1) for at in spy.sts_at[:10]],
        "simulated_hours": round((datetime.now(UTC) - began).total_seconds() / 3600, 2),
    }


def measure(subjects: list[str], invocations: int, hours: float) -> dict[str, Any]:
    forget_developer_aws_config()
    spy = _Spy()
    began = time.monotonic()
    with (
        time_machine.travel(START, tick=True) as traveller,
        local_lambda.embedded(seed_file=SEED) as local,
    ):
        function = local.function(FUNCTION_ID)
        environment = lambda_environment(
            function,
            local.aws,
            Code(function.code_uri, from_build=False),
            dict(function.environment),
            role_credentials(local.aws, function),
        )
        for name in ("PATH", "LANG", "TZ"):
            environment.pop(name, None)
        os.environ.update(environment)
        sys.path[:0] = [str(function.code_uri), str(ROOT / "bench" / "baseline")]
        results = {
            subject: _run(
                SUBJECTS[subject],
                spy,
                traveller=traveller,
                invocations=invocations,
                hours=hours,
                function_name=function.name,
            )
            for subject in subjects
        }
    return {
        "function": FUNCTION_ID,
        "invocations": invocations,
        "hours": hours,
        **results,
        "seconds": round(time.monotonic() - began, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subject", choices=sorted(SUBJECTS), action="append", required=True)
    parser.add_argument("--invocations", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    saved_stdout = os.dup(1)
    os.dup2(2, 1)  # the functions' logs are not the result
    try:
        result = measure(args.subject, args.invocations, args.hours)
    finally:
        os.dup2(saved_stdout, 1)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
