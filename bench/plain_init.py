"""Cold init with nothing hooked: each function's init and its baseline's, in fresh processes.

``bench/probe.py`` counts sockets, clients and API calls with an audit hook and import finders;
each costs something per import, and a function imports more modules than its baseline, so a
probe's init time overstates the ratio. Here each execution environment is a fresh
``python -I -S bench/plain_child.py`` that only times the handler's import (init) and then its
first invocation, against the embedded AWS. Counting stays in the probe's separate runs.

Runs are paired and interleaved: repetition *i* runs a function and its baseline back to back
(which goes first alternates), so that both see the same load on a shared machine; ratios are
taken per pair, and their median and range are reported.

``make bench-cold`` runs it on a ``sam build`` of its own; ``make bench`` reports its figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environments import Environments, Variant
from bench.stats import RANGE, Spread, ratios
from tools.emulator import execution_environment
from tools.emulator.execution_environment import Code
from tools.emulator.provision import Function

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).with_name("plain_child.py")
EVENTS = ROOT / "events"
FUNCTIONS = (
    "GetItemFunction",
    "ExportItemFunction",
    "ExportQueueFunction",
    "ExportTableFunction",
    "PreTrafficHookFunction",
)
BASELINES = {
    "GetItemFunction": "bare_get_item.lambda_handler",
    "ExportItemFunction": "bare_export_item.lambda_handler",
    "ExportQueueFunction": "bare_export_queue.lambda_handler",
    "ExportTableFunction": "bare_export_table.lambda_handler",
    "PreTrafficHookFunction": "bare_pre_traffic.lambda_handler",
}
FIRST_EVENTS = {
    "GetItemFunction": "GetItemFunction/found.json",
    "ExportItemFunction": "ExportItemFunction/created.json",
    "ExportQueueFunction": "ExportQueueFunction/batch.json",
}
"""The first invocation is timed for the request functions, whose baselines make the same calls.
The table export's first invocation is a whole export, and the hook's invokes other functions:
their baselines do something else, so a ratio would mean nothing."""
TARGET = 1.15
CHILD_TIMEOUT_SECONDS = 120.0


@dataclass
class Runs:
    """One function's paired runs: index *i* of each list comes from the same repetition."""

    init_ms: list[float] = field(default_factory=list)
    baseline_init_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    baseline_first_ms: list[float] = field(default_factory=list)
    modules: int = 0
    baseline_modules: int = 0


def _fresh_event(function_id: str, tag: str) -> dict[str, Any]:
    """The function's first event, with ids of its own: the exports write with ``IfNoneMatch``."""
    event: dict[str, Any] = json.loads((EVENTS / FIRST_EVENTS[function_id]).read_text())
    event = copy.deepcopy(event)
    if function_id == "ExportItemFunction":
        event["requestContext"]["requestId"] = tag
    elif function_id == "ExportQueueFunction":
        for position, record in enumerate(event["Records"]):
            record["messageId"] = f"{tag}-{position}"
    return event


def run_one(
    envs: Environments,
    function: Function,
    variant: Variant,
    handler: str,
    event: dict[str, Any] | None,
) -> tuple[float, float | None, int]:
    """One fresh process: (init ms, first invocation ms or None, modules loaded after init)."""
    aws = envs.local.aws
    code = Code(variant.directory, from_build=variant.runtime_only)
    credentials = execution_environment.role_credentials(aws, function)
    environment = execution_environment.lambda_environment(
        function, aws, code, dict(function.environment), credentials
    )
    environment["BENCH_REQUEST_ID"] = str(uuid.uuid4())
    environment["BENCH_TIMEOUT_SECONDS"] = str(function.timeout_seconds)
    sys_path = [str(variant.directory)]
    sys_path += (
        [str(envs.runtime_dir.resolve())]
        if variant.runtime_only
        else execution_environment._site_packages()
    )
    with tempfile.TemporaryDirectory(prefix="bench-plain-") as scratch:
        event_path = "-"
        if event is not None:
            event_path = str(Path(scratch) / "event.json")
            Path(event_path).write_text(json.dumps(event))
        completed = subprocess.run(
            [sys.executable, "-I", "-S", str(CHILD), handler, event_path, *sys_path],
            capture_output=True,
            env=environment,
            cwd=variant.directory,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    if completed.returncode != 0 or not completed.stdout.strip():
        raise RuntimeError(
            f"{function.logical_id} ({variant.label}) failed:\n{completed.stderr[-3000:]}"
        )
    init_ms, first_ms, modules = completed.stdout.split()
    return float(init_ms), None if first_ms == "-" else float(first_ms), int(modules)


def measure(
    envs: Environments,
    variant_for: Any,  # noqa: ANN401 - Callable[[Function], Variant]
    functions: tuple[str, ...],
    repeats: int,
    *,
    first_invocation: bool = True,
) -> dict[str, Runs]:
    """``repeats`` pairs per function, the function's and its baseline's back to back."""
    results: dict[str, Runs] = {function_id: Runs() for function_id in functions}
    for repeat in range(repeats):
        for function_id in functions:
            function = envs.local.function(function_id)
            runs = results[function_id]
            timed = first_invocation and function_id in FIRST_EVENTS
            subjects = [("function", variant_for(function), function.handler)]
            subjects.append(("baseline", envs.baseline(), BASELINES[function_id]))
            for kind, variant, handler in subjects if repeat % 2 == 0 else subjects[::-1]:
                event = _fresh_event(function_id, f"plain-{kind}-{repeat}") if timed else None
                init_ms, first_ms, modules = run_one(envs, function, variant, handler, event)
                if kind == "function":
                    runs.init_ms.append(init_ms)
                    runs.modules = modules
                    if first_ms is not None:
                        runs.first_ms.append(first_ms)
                else:
                    runs.baseline_init_ms.append(init_ms)
                    runs.baseline_modules = modules
                    if first_ms is not None:
                        runs.baseline_first_ms.append(first_ms)
        print(
            f"[bench {time.strftime('%H:%M:%S')}] plain cold init: {repeat + 1}/{repeats}",
            file=sys.stderr,
            flush=True,
        )
    return results


def table(results: dict[str, Runs]) -> str:
    """Markdown: each function's init and first invocation against its baseline's, paired."""
    lines = [
        "| Function | Init | Baseline init | Init ratio | First invocation ratio | Modules "
        "(baseline) |",
        "|---|---|---|---|---|---|",
    ]
    for function_id, runs in results.items():
        ratio = ratios(runs.init_ms, runs.baseline_init_ms)
        first = (
            ratios(runs.first_ms, runs.baseline_first_ms).ratio_text()
            + f" ({Spread.of(runs.first_ms).median:.0f} vs "
            f"{Spread.of(runs.baseline_first_ms).median:.0f} ms)"
            if runs.first_ms
            else "—"
        )
        verdict = "✅" if ratio.median <= TARGET else "❌"
        lines.append(
            f"| {function_id.removesuffix('Function')} | {Spread.of(runs.init_ms).text('ms')} | "
            f"{Spread.of(runs.baseline_init_ms).text('ms')} | {ratio.ratio_text()} {verdict} | "
            f"{first} | {runs.modules} ({runs.baseline_modules}) |"
        )
    return "\n".join(lines) + "\n"


def as_json(results: dict[str, Runs]) -> dict[str, Any]:
    return {function_id: runs.__dict__ for function_id, runs in results.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.plain_init",
        description="Uninstrumented cold init (and first invocation) of every function from a "
        f"`sam build` artifact, against its baseline, in paired fresh processes (target "
        f"{RANGE}{TARGET}x).",
    )
    parser.add_argument("--build-dir", type=Path, required=True, help="a `sam build` output")
    parser.add_argument("--repeats", type=int, default=11, help="pairs per function (11)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated ids")
    parser.add_argument("--no-first", action="store_true", help="time init only")
    parser.add_argument("--json", type=Path, help="write the runs here too")
    args = parser.parse_args(argv)
    from bench.environments import workspace
    from tools.emulator import local_lambda
    from tools.emulator.invoke_inputs import forget_developer_aws_config

    forget_developer_aws_config()
    build_dir = args.build_dir.resolve()
    with (
        local_lambda.embedded(seed_file=EVENTS / "seed.json") as local,
        workspace() as scratch,
    ):
        envs = Environments(local, scratch)
        results = measure(
            envs,
            lambda function: envs.build(build_dir, function, bytecode=True),
            tuple(args.functions.split(",")),
            args.repeats,
            first_invocation=not args.no_first,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results), indent=1) + "\n")
    print(table(results), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
