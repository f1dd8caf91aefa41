"""Cold init with nothing hooked: each function's init and its baseline's, in fresh processes.

``bench/probe.py`` counts sockets, clients and API calls with an audit hook and import finders;
each costs something per import, and a function imports more modules than its baseline, so a
probe's init time overstates the ratio. Here each execution environment is a fresh
``python -I -S bench/plain_child.py`` that only times the handler's import (init) and then its
first invocation, against the embedded AWS. Counting stays in the probe's separate runs.

Every function holds its garbage collector off during init (``app.cold_start``); the bare
baselines do not, so a second baseline, ``paused-baseline``, runs the same bare code with the
collector held off the same way (``BENCH_PAUSE_GC``): the ratio against it is what the template's
structure costs beyond the bare code, with the collector's share taken out of both sides.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.environments import Environments, Variant
from bench.stats import RANGE, Spread, ratios
from tools.emulator import execution_environment
from tools.emulator.execution_environment import Code
from tools.emulator.provision import Function

if TYPE_CHECKING:
    from bench.run import Settings

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
    """One subject's runs of one function: index *i* of each list is repetition *i*, whose
    baseline run is index *i* of the baseline's."""

    init_ms: list[float] = field(default_factory=list)
    init_cpu_ms: list[float] = field(default_factory=list)
    first_ms: list[float] = field(default_factory=list)
    modules: int = 0


Subjects = dict[str, Runs]
"""By label: ``function`` (the build), ``baseline``, ``paused-baseline`` (the baseline with the
collector held off during init, as the functions do), and any other build compared
(``before``)."""
BASELINE_LABELS = ("baseline", "paused-baseline")


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
    *,
    pause_gc: bool = False,
) -> tuple[float, float, float | None, int]:
    """One fresh process: init ms, init CPU ms, first invocation ms (or None), modules loaded;
    ``pause_gc`` holds the collector off during init as ``app.cold_start`` does."""
    aws = envs.local.aws
    code = Code(variant.directory, from_build=variant.runtime_only)
    credentials = execution_environment.role_credentials(aws, function)
    environment = execution_environment.lambda_environment(
        function, aws, code, dict(function.environment), credentials
    )
    environment["BENCH_REQUEST_ID"] = str(uuid.uuid4())
    environment["BENCH_TIMEOUT_SECONDS"] = str(function.timeout_seconds)
    if pause_gc:
        environment["BENCH_PAUSE_GC"] = "1"
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
    init_ms, init_cpu_ms, first_ms, modules = completed.stdout.split()
    first = None if first_ms == "-" else float(first_ms)
    return float(init_ms), float(init_cpu_ms), first, int(modules)


def measure(
    envs: Environments,
    builds: dict[str, Callable[[Function], Variant]],
    functions: tuple[str, ...],
    repeats: int,
    *,
    first_invocation: bool = True,
) -> dict[str, Subjects]:
    """``repeats`` rounds; in each, every function's builds and its baseline back to back, the
    order rotating from round to round so that none always runs first."""
    results: dict[str, Subjects] = {}
    for repeat in range(repeats):
        for function_id in functions:
            function = envs.local.function(function_id)
            timed = first_invocation and function_id in FIRST_EVENTS
            subjects = [(label, make(function), function.handler) for label, make in builds.items()]
            subjects += [
                (label, envs.baseline(), BASELINES[function_id]) for label in BASELINE_LABELS
            ]
            shift = repeat % len(subjects)
            for label, variant, handler in subjects[shift:] + subjects[:shift]:
                event = _fresh_event(function_id, f"plain-{label}-{repeat}") if timed else None
                init_ms, cpu_ms, first_ms, modules = run_one(
                    envs, function, variant, handler, event, pause_gc=label == "paused-baseline"
                )
                runs = results.setdefault(function_id, {}).setdefault(label, Runs())
                runs.init_ms.append(init_ms)
                runs.init_cpu_ms.append(cpu_ms)
                runs.modules = modules
                if first_ms is not None:
                    runs.first_ms.append(first_ms)
        print(
            f"[bench {time.strftime('%H:%M:%S')}] plain cold init: {repeat + 1}/{repeats}",
            file=sys.stderr,
            flush=True,
        )
    return results


def init_ratio(subjects: Subjects, label: str = "function", baseline: str = "baseline") -> Spread:
    """Paired ratios of ``label``'s init to the baseline's (or to ``paused-baseline``'s)."""
    return ratios(subjects[label].init_ms, subjects[baseline].init_ms)


def table(results: dict[str, Subjects]) -> str:
    """Markdown: each function's init and first invocation against its baseline's, paired."""
    lines = [
        "| Function | Build | Init | Baseline init | Init ratio | Init CPU ratio "
        "| Init ratio, both without GC | First invocation (vs baseline) | Modules (baseline) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for function_id, subjects in results.items():
        baseline = subjects["baseline"]
        for label, runs in subjects.items():
            if label in BASELINE_LABELS:
                continue
            ratio = init_ratio(subjects, label)
            first = "—"
            if runs.first_ms:
                first = (
                    f"{ratios(runs.first_ms, baseline.first_ms).ratio_text()}: "
                    f"{Spread.of(runs.first_ms).median:.0f} vs "
                    f"{Spread.of(baseline.first_ms).median:.0f} ms"
                )
            verdict = "✅" if ratio.median <= TARGET else "❌"
            without_gc = "—"
            if "paused-baseline" in subjects:
                without_gc = init_ratio(subjects, label, "paused-baseline").ratio_text()
            lines.append(
                f"| {function_id.removesuffix('Function')} | {label} | "
                f"{Spread.of(runs.init_ms).text('ms')} | {Spread.of(baseline.init_ms).text('ms')} "
                f"| {ratio.ratio_text()} {verdict} "
                f"| {ratios(runs.init_cpu_ms, baseline.init_cpu_ms).ratio_text()} "
                f"| {without_gc} | {first} | {runs.modules} "
                f"({baseline.modules}) |"
            )
    return "\n".join(lines) + "\n"


def as_json(results: dict[str, Subjects]) -> dict[str, Any]:
    return {
        function_id: {label: runs.__dict__ for label, runs in subjects.items()}
        for function_id, subjects in results.items()
    }


def _artifact(envs: Environments, build_dir: Path, function: Function) -> Variant:
    return envs.build(build_dir, function, bytecode=True)


def measure_settings(
    envs: Environments, settings: Settings, build_dir: Path | None
) -> dict[str, Subjects]:
    """``make bench``'s phase: the build (or ``src/`` without one) of every function the run
    measures, and the hook's."""
    functions = tuple(dict.fromkeys([*settings.functions, "PreTrafficHookFunction"]))
    if build_dir is None:
        return measure(envs, {"function": envs.source}, functions, settings.plain_repeats)
    builds = {"function": partial(_artifact, envs, build_dir)}
    return measure(envs, builds, functions, settings.plain_repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.plain_init",
        description="Uninstrumented cold init (and first invocation) of every function from a "
        f"`sam build` artifact, against its baseline, in paired fresh processes (target "
        f"{RANGE}{TARGET}x).",
    )
    parser.add_argument("--build-dir", type=Path, required=True, help="a `sam build` output")
    parser.add_argument(
        "--before", type=Path, help="another `sam build` output, measured in the same rounds"
    )
    parser.add_argument("--repeats", type=int, default=11, help="pairs per function (11)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS), help="comma-separated ids")
    parser.add_argument("--no-first", action="store_true", help="time init only")
    parser.add_argument("--json", type=Path, help="write the runs here too")
    args = parser.parse_args(argv)
    from bench.environments import workspace
    from tools.emulator import local_lambda
    from tools.emulator.invoke_inputs import forget_developer_aws_config

    forget_developer_aws_config()
    build_dirs = {"function": args.build_dir.resolve()}
    if args.before is not None:
        build_dirs["before"] = args.before.resolve()
    with (
        local_lambda.embedded(seed_file=EVENTS / "seed.json") as local,
        workspace() as scratch,
    ):
        envs = Environments(local, scratch)
        results = measure(
            envs,
            {label: partial(_artifact, envs, directory) for label, directory in build_dirs.items()},
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
