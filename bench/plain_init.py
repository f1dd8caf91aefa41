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

With ``--phases`` the same runs say where init's time goes, still with nothing timed per import
(``-X importtime`` slows every import, so it overstates whichever side imports more): each child
imports boto3 (botocore, urllib3, the standard library they bring), then Powertools' package, then
the handler's module (the app, sessions, clients), reading the clocks only between them. A
function's child imports ``app.handlers`` first, so its collector is held off from there to the
end of init by ``app.cold_start`` itself, exactly as in its real init; the baselines' runs as
theirs do (on, or held off for ``paused-baseline``).

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
    phases_ms: dict[str, list[float]] = field(default_factory=dict)
    """By phase (:data:`PHASE_ROWS`), with ``--phases``: index *i* is repetition *i*."""
    phases_cpu_ms: dict[str, list[float]] = field(default_factory=dict)
    phase_modules: dict[str, int] = field(default_factory=dict)
    collector: dict[str, bool] = field(default_factory=dict)
    """With ``--phases``: whether the collector ran as each import ended (``app.handlers``,
    ``boto3``, ..., ``handler``), the same in every round."""


@dataclass(frozen=True)
class Child:
    """What one fresh process measured (:func:`run_one`)."""

    init_ms: float
    init_cpu_ms: float
    first_ms: float | None
    modules: int
    phases: dict[str, tuple[float, float, int]]
    """By :data:`PHASE_ROWS` row: ms, CPU ms, modules."""
    collector: dict[str, bool]
    """By module imported (``handler`` for the handler's): the collector running as it ended."""


Subjects = dict[str, Runs]
"""By label: ``function`` (the build), ``baseline``, ``paused-baseline`` (the baseline with the
collector held off during init, as the functions do), and any other build compared
(``before``)."""
BASELINE_LABELS = ("baseline", "paused-baseline")
FUNCTION_PHASES = ("app.handlers", "boto3", "aws_lambda_powertools")
"""What a function's child imports before its handler's module, in order, with ``--phases``:
``app.handlers`` first (a docstring and ``app.cold_start``), whose import holds the collector off as
in the real init; then boto3, which the handler's module would import first otherwise."""
BASELINE_PHASES = ("boto3",)
PHASE_ROWS = {
    "boto3": "boto3, botocore, urllib3 and the standard library they import",
    "aws_lambda_powertools": "Powertools' package (Logger, Metrics, Tracer)",
    "app": "the handler's module: the app, the rest of Powertools, the sessions and clients",
}
"""The breakdown's rows; ``app.handlers``'s time and modules count in ``app``."""
_ROW_OF = {"app.handlers": "app", "handler": "app"}


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
    phases: tuple[str, ...] = (),
) -> Child:
    """One fresh process: its init, first invocation (unless ``event`` is None) and, with
    ``phases`` (modules imported one after the other before the handler's), each phase;
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
    if phases:
        environment["BENCH_PHASES"] = ",".join(phases)
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
    lines = completed.stdout.splitlines()
    init_ms, init_cpu_ms, first_ms, modules = lines[0].split()
    first = None if first_ms == "-" else float(first_ms)
    by_row: dict[str, tuple[float, float, int]] = {}
    collector: dict[str, bool] = {}
    for phase in lines[1].split() if phases else ():
        name, wall, cpu, count, collecting = phase.split(":")
        row = _ROW_OF.get(name, name)
        earlier = by_row.get(row, (0.0, 0.0, 0))
        by_row[row] = (earlier[0] + float(wall), earlier[1] + float(cpu), earlier[2] + int(count))
        collector[name] = collecting == "1"
    return Child(float(init_ms), float(init_cpu_ms), first, int(modules), by_row, collector)


def measure(
    envs: Environments,
    builds: dict[str, Callable[[Function], Variant]],
    functions: tuple[str, ...],
    repeats: int,
    *,
    first_invocation: bool = True,
    phases: bool = False,
) -> dict[str, Subjects]:
    """``repeats`` rounds; in each, every function's builds and its baseline back to back, the
    order rotating from round to round so that none always runs first. With ``phases``, init
    only, split into :data:`PHASE_ROWS`."""
    results: dict[str, Subjects] = {}
    for repeat in range(repeats):
        for function_id in functions:
            function = envs.local.function(function_id)
            timed = first_invocation and not phases and function_id in FIRST_EVENTS
            subjects = [(label, make(function), function.handler) for label, make in builds.items()]
            subjects += [
                (label, envs.baseline(), BASELINES[function_id]) for label in BASELINE_LABELS
            ]
            shift = repeat % len(subjects)
            for label, variant, handler in subjects[shift:] + subjects[:shift]:
                event = _fresh_event(function_id, f"plain-{label}-{repeat}") if timed else None
                baseline = label in BASELINE_LABELS
                child = run_one(
                    envs,
                    function,
                    variant,
                    handler,
                    event,
                    pause_gc=label == "paused-baseline",
                    phases=(BASELINE_PHASES if baseline else FUNCTION_PHASES) if phases else (),
                )
                runs = results.setdefault(function_id, {}).setdefault(label, Runs())
                for row in PHASE_ROWS if phases else ():
                    wall, cpu, count = child.phases.get(row, (0.0, 0.0, 0))
                    runs.phases_ms.setdefault(row, []).append(wall)
                    runs.phases_cpu_ms.setdefault(row, []).append(cpu)
                    runs.phase_modules[row] = count
                if runs.collector and runs.collector != child.collector:
                    raise RuntimeError(f"{function_id} ({label}): the collector ran differently")
                runs.collector = child.collector
                runs.init_ms.append(child.init_ms)
                runs.init_cpu_ms.append(child.init_cpu_ms)
                runs.modules = child.modules
                if child.first_ms is not None:
                    runs.first_ms.append(child.first_ms)
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


PHASE_COLUMNS = {
    "baseline": "Baseline",
    "paused-baseline": "Baseline, collector held off",
    "before": "Before",
    "function": "After",
}
"""The breakdown's subjects, in this order; without ``--before`` the build is ``Build``."""


def _signed(spread: Spread) -> str:
    if spread.count == 1:
        return f"{spread.median:+.0f} ms"
    return f"{spread.median:+.0f} ms ({spread.low:+.0f}{RANGE}{spread.high:+.0f})"


def phase_table(subjects: Subjects, *, cpu: bool = False) -> str:
    """Markdown: one function's init, phase by phase, for every subject (wall or CPU ms), and
    the builds' paired differences from the baseline (and the last build's from the baseline with
    its collector held off)."""
    labels = [label for label in PHASE_COLUMNS if label in subjects]
    names = dict(PHASE_COLUMNS)
    if "before" not in subjects:
        names["function"] = "Build"
    pairs = [(build, "baseline") for build in ("before", "function") if build in subjects]
    if "paused-baseline" in subjects:
        pairs.append(("function", "paused-baseline"))
    figures: dict[str, dict[str, list[float]]] = {}
    for label in labels:
        by_row = dict(subjects[label].phases_cpu_ms if cpu else subjects[label].phases_ms)
        by_row["init"] = [sum(values) for values in zip(*by_row.values(), strict=True)]
        figures[label] = by_row
    header = ["Phase", *(names[label] for label in labels)]
    header += [f"{names[build]} \N{MINUS SIGN} {names[ref].lower()}" for build, ref in pairs]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row, title in [*PHASE_ROWS.items(), ("init", "**init**")]:
        cells = [title]
        for label in labels:
            modules = subjects[label].phase_modules
            count = sum(modules.values()) if row == "init" else modules.get(row, 0)
            median = Spread.of(figures[label][row]).text("ms")
            cells.append(
                (f"**{median}**" if row == "init" else median)
                + ("" if cpu else f", {count} module{'' if count == 1 else 's'}")
            )
        for build, ref in pairs:
            mine, theirs = figures[build][row], figures[ref][row]
            cells.append(_signed(Spread.of([m - t for m, t in zip(mine, theirs, strict=True)])))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PHASES_INTRO = """\
# Where a cold start's time goes

Each function's init in fresh `python -I -S` processes with nothing timed per import
(`bench/plain_child.py` with `BENCH_PHASES`, run by `python -m bench.plain_init --phases`): the
child imports boto3, then Powertools' package, then the handler's module, and reads the clocks only
between them. Medians (min{dash}max) of {rounds}; each round runs every subject of a
function back to back in rotating order, and the differences are paired (round *i* against round
*i*). Modules are those each phase adds to `sys.modules` (the interpreter's own startup, about 35,
is not counted). *Before* is another build measured in the same rounds (`--before DIR`).

The functions hold the garbage collector off from `app.handlers`'s import to the end of init
(`app.cold_start`); their children import `app.handlers` first, so the collector behaves exactly
as in the real init (its time counts in the last row). The bare baseline runs with its collector on,
as plain boto3 code does; *collector held off* is the same baseline with it off during init (as
`app.cold_start` holds it), so the difference from it is what the template's structure costs, the
collector's share taken out. {context}
"""


def phases_markdown(results: dict[str, Subjects], context: str = "") -> str:
    """The breakdown of every function measured with ``phases``: wall time, then CPU time."""
    rounds = max(
        (len(next(iter(runs.phases_ms.values()))) for s in results.values() for runs in s.values()),
        default=0,
    )
    counted = f"{rounds} round{'' if rounds == 1 else 's'}"
    out = [PHASES_INTRO.format(dash=RANGE, rounds=counted, context=context).rstrip(), ""]
    for function_id, subjects in results.items():
        out += [f"## {function_id}", "", phase_table(subjects), "CPU time (user and system):", ""]
        out += [phase_table(subjects, cpu=True)]
    return "\n".join(out)


def as_json(results: dict[str, Subjects]) -> dict[str, Any]:
    return {
        function_id: {label: runs.__dict__ for label, runs in subjects.items()}
        for function_id, subjects in results.items()
    }


def _artifact(envs: Environments, build_dir: Path, function: Function) -> Variant:
    return envs.build(build_dir, function, bytecode=True)


def from_json(data: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Subjects]:
    """What :func:`as_json` wrote, as :class:`Runs` again."""
    return {
        function_id: {label: Runs(**runs) for label, runs in subjects.items()}
        for function_id, subjects in data.items()
    }


def measure_settings(
    envs: Environments, settings: Settings, build_dir: Path | None, *, phases: bool = False
) -> dict[str, Subjects]:
    """``make bench``'s phases: the build (or ``src/`` without one) of every function the run
    measures, and the hook's; or, with ``phases``, the breakdown of ``settings.phase_functions``."""
    functions = tuple(dict.fromkeys([*settings.functions, "PreTrafficHookFunction"]))
    repeats = settings.plain_repeats
    if phases:
        functions, repeats = settings.phase_functions, settings.phase_repeats
    builds: dict[str, Callable[[Function], Variant]] = {"function": envs.source}
    if build_dir is not None:
        builds = {"function": partial(_artifact, envs, build_dir)}
    return measure(envs, builds, functions, repeats, phases=phases)


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
    parser.add_argument(
        "--phases",
        action="store_true",
        help="init only, split into boto3, Powertools and the handler's module (no per-import "
        "instrument): where a cold start's time goes",
    )
    parser.add_argument("--out", type=Path, help="with --phases: write the breakdown here too")
    parser.add_argument("--context", default="", help="with --phases: a sentence on the run")
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
            phases=args.phases,
        )
    if args.json is not None:
        args.json.write_text(json.dumps(as_json(results), indent=1) + "\n")
    if not args.phases:
        print(table(results), end="")
        return 0
    breakdown = phases_markdown(results, args.context)
    if args.out is not None:
        args.out.write_text(breakdown)
    print(breakdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
