"""The measurements: every figure with its baseline, taken in the same run.

Phases, in order (the first is not timed, so two things share it):

1. **prepare**: the STS run (``bench/sts_calls.py``, a process of its own with its own embedded
   AWS and simulated clock) starts in the background while the export tables are seeded;
2. **cold**: every function's init, and its baseline's, in fresh processes, interleaved, probed
   (sockets, clients, API calls: the probe's hooks inflate its init times);
   **plain**: the same inits and first invocations with nothing hooked (``bench/plain_init.py``):
   the cold-start figures;
   **phases**: where those inits' time goes, with nothing timed per import (boto3, Powertools,
   the handler's module: ``bench.plain_init --phases``), written to ``cold_start_imports.md``;
3. **imports**: ``-X importtime`` inits of two functions, with and without bytecode: an
   instrumented reference by package (importtime slows every import), ``cold_start_importtime.md``;
4. **warm**: for each request function, one execution environment 1,000 invocations long
   (memory, clients), then pairs of shorter ones, the function's and its baseline's back to back;
5. **export**: the table export and the naive one, interleaved, at each table size.

Package sizes are read from the build directory.
"""

from __future__ import annotations

import copy
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import importtime, items, plain_init
from bench.environments import Environments, Variant
from tools.emulator.local_lambda import LocalAws

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
FUNCTIONS = ("GetItemFunction", "ExportItemFunction", "ExportQueueFunction", "ExportTableFunction")
REQUEST_FUNCTIONS = FUNCTIONS[:3]
BASELINES = {
    "GetItemFunction": "bare_get_item.lambda_handler",
    "ExportItemFunction": "bare_export_item.lambda_handler",
    "ExportQueueFunction": "bare_export_queue.lambda_handler",
    "ExportTableFunction": "bare_export_table.lambda_handler",
}
NAIVE_EXPORT = "naive_export_table.lambda_handler"
WARMUP = 10
"""Invocations left out of the warm figures: the first ones connect, and fetch credentials."""


@dataclass(frozen=True)
class Settings:
    cold_repeats: int = 5
    warm_environments: int = 4
    """Pairs of short environments (the function's, its baseline's) for the warm figure."""
    long_invocations: int = 1000
    short_invocations: int = 100
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    export_repeats: int = 3
    """Runs of each export at each size; 1 at 100k and above (minutes of moto otherwise)."""
    sts_invocations: int = 1000
    sts_hours: float = 3.0
    sts_processes: int = 2
    """The function's and the naive STS runs at once (2), or one after the other (1)."""
    functions: tuple[str, ...] = FUNCTIONS
    """Functions whose cold init is measured (and package size)."""
    warm_functions: tuple[str, ...] = REQUEST_FUNCTIONS
    importtime: tuple[str, ...] = ("GetItemFunction", "ExportItemFunction")
    """Functions whose init also runs under ``-X importtime`` (the first one's baseline too)."""
    importtime_repeats: int = 3
    plain_repeats: int = 11
    """Rounds of uninstrumented inits (every function of the template, and its baseline)."""
    phase_functions: tuple[str, ...] = FUNCTIONS
    """Functions whose init is split into phases, each beside its baselines in the same rounds."""
    phase_repeats: int = 9


QUICK = Settings(
    cold_repeats=1,
    warm_environments=1,
    long_invocations=12,
    short_invocations=12,
    sizes=(200, 500),
    export_repeats=1,
    sts_invocations=12,
    sts_processes=1,
    functions=("GetItemFunction",),
    warm_functions=("GetItemFunction",),
    importtime=("GetItemFunction",),
    importtime_repeats=1,
    plain_repeats=1,
    phase_functions=("GetItemFunction",),
    phase_repeats=1,
)
"""What ``tests/e2e/test_bench_smoke.py`` runs: every phase and the whole report, in seconds."""


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- Events -------------------------------------------------------------------------------------


def _event(path: str) -> dict[str, Any]:
    return json.loads((EVENTS / path).read_text())  # type: ignore[no-any-return]


def warm_events(function_id: str, count: int, tag: str) -> tuple[list[Any], dict[str, Any]]:
    """``count`` events for one environment, each export with an id of its own; the response
    every one of them must get (the function's and its baseline's alike)."""
    if function_id == "GetItemFunction":
        return [_event("GetItemFunction/found.json")] * count, {"statusCode": 200}
    if function_id == "ExportItemFunction":
        template = _event("ExportItemFunction/created.json")
        events = []
        for number in range(count):
            event = copy.deepcopy(template)
            event["requestContext"]["requestId"] = f"{tag}-{number:05d}"
            events.append(event)
        return events, {"statusCode": 201}
    if function_id == "ExportQueueFunction":
        template = _event("ExportQueueFunction/batch.json")
        events = []
        for number in range(count):
            event = copy.deepcopy(template)
            for position, record in enumerate(event["Records"]):
                record["messageId"] = f"{tag}-{number:05d}-{position}"
            events.append(event)
        return events, {"batchItemFailures": []}
    raise ValueError(f"no warm events for {function_id}")


# --- Phases -------------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything measured, as plain data (written to ``latest.json`` too)."""

    settings: dict[str, Any]
    build: bool
    cold: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    imports: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    warm: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    sts: dict[str, Any] = field(default_factory=dict)
    export: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    plain: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Uninstrumented init and first invocation, by function and subject (``bench.plain_init``)."""
    phases: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """The same inits split into phases, by function and subject (``plain_init --phases``)."""
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    memory_mb: dict[str, int] = field(default_factory=dict)
    """Each function's MemorySize in the template."""
    seconds: dict[str, float] = field(default_factory=dict)


def start_sts(settings: Settings, out_dir: Path) -> dict[str, subprocess.Popen[bytes]]:
    """The STS runs (the function's and the naive one's), in one process or two."""
    groups = [["project", "naive"]] if settings.sts_processes == 1 else [["project"], ["naive"]]
    return {
        "-".join(subjects): subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sts_calls",
                *(f"--subject={subject}" for subject in subjects),
                "--invocations",
                str(settings.sts_invocations),
                "--hours",
                str(settings.sts_hours),
                "--out",
                str(out_dir / f"{'-'.join(subjects)}.json"),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for subjects in groups
    }


def finish_sts(processes: dict[str, subprocess.Popen[bytes]], out_dir: Path) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for subject, process in processes.items():
        _, stderr = process.communicate(timeout=900)
        if process.returncode != 0:
            raise RuntimeError(f"bench.sts_calls ({subject}) failed:\n{stderr.decode()[-3000:]}")
        result = json.loads((out_dir / f"{subject}.json").read_text())
        merged.update(result, seconds=max(merged.get("seconds", 0), result["seconds"]))
    return merged


def prepare_tables(local: LocalAws, sizes: tuple[int, ...]) -> dict[int, str]:
    """One table per size, a copy of ItemsTable's schema, seeded with that many items."""
    base = local.deployment.resources["ItemsTable"]
    tables = {}
    for size in sizes:
        name = f"{base}-bench-{size}"
        items.create_copy(local, "ItemsTable", name)
        began = time.monotonic()
        items.seed(local, name, size)
        local.aws.client("dynamodb").scan(TableName=name, Limit=1)  # fast_scan sorts it once
        progress(f"seeded {size:,} items into {name} in {time.monotonic() - began:.1f} s")
        tables[size] = name
    return tables


def _init_fields(result: dict[str, Any]) -> dict[str, Any]:
    return {
        name: result[name]
        for name in (
            "init_ms",
            "init_sockets",
            "init_api_calls",
            "init_clients",
            "init_hwm_kib",
            "init_rss_kib",
            "modules",
        )
    }


def cold_variants(
    envs: Environments, function_id: str, build_dir: Path | None
) -> list[tuple[Variant, str | None]]:
    """(code, handler) for each way of loading one function, and its baseline."""
    function = envs.local.function(function_id)
    variants: list[tuple[Variant, str | None]] = []
    if build_dir is not None:
        variants.append((envs.build(build_dir, function, bytecode=True), None))
        variants.append((envs.build(build_dir, function, bytecode=False), None))
    variants.append((envs.source(function), None))
    variants.append((envs.baseline(), BASELINES[function_id]))
    return variants


def measure_cold(
    envs: Environments, settings: Settings, build_dir: Path | None
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Init only, offline: AWS_ENDPOINT_URL is a closed port, the credentials are fake."""
    cold: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for repeat in range(settings.cold_repeats):
        for function_id in settings.functions:
            function = envs.local.function(function_id)
            variants = cold_variants(envs, function_id, build_dir)
            shift = repeat % len(variants)  # no variant always runs first
            for variant, handler in variants[shift:] + variants[:shift]:
                result = envs.run(function, variant, [], handler=handler, offline=True)
                runs = cold.setdefault(function_id, {}).setdefault(variant.label, [])
                runs.append(_init_fields(result))
        progress(f"cold init: repetition {repeat + 1}/{settings.cold_repeats}")
    return cold


def measure_imports(
    envs: Environments, settings: Settings, build_dir: Path | None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Import time by package, and the rest of each init (module-level code: sessions, clients);
    medians of ``importtime_repeats`` runs, package by package.

    The handler's own module is imported by ``importlib.import_module``, which ``-X importtime``
    does not time: what its body runs besides imports is init time minus the imports' times.
    """
    runs: dict[tuple[str, str], list[tuple[float, dict[str, float]]]] = {}
    for _ in range(settings.importtime_repeats):
        for function_id in settings.importtime:
            function = envs.local.function(function_id)
            for variant, handler in cold_variants(envs, function_id, build_dir):
                if variant.label == "src/" and build_dir is not None:
                    continue
                if variant.label == "baseline" and function_id != settings.importtime[0]:
                    continue
                result = envs.run(
                    function,
                    variant,
                    [],
                    handler=handler,
                    offline=True,
                    python_flags=("-X", "importtime"),
                )
                runs.setdefault((function_id, variant.label), []).append(
                    (result["init_ms"], importtime.by_package(result["logs"]))
                )
    imports: dict[str, dict[str, dict[str, Any]]] = {}
    for (function_id, label), measured in runs.items():
        packages = {name for _, totals in measured for name in totals}
        medians = {
            name: statistics.median(totals.get(name, 0.0) for _, totals in measured)
            for name in packages
        }
        imports.setdefault(function_id, {})[label] = {
            "init_ms": statistics.median(init for init, _ in measured),
            "packages": dict(sorted(medians.items(), key=lambda pair: -pair[1])),
            "runs": len(measured),
        }
    progress(f"imports: -X importtime, {settings.importtime_repeats} runs of each init")
    return imports


def _warm_summary(result: dict[str, Any]) -> dict[str, Any]:
    durations = result["durations_ms"]
    hwm, rss = result["hwm_kib"], result["rss_kib"]
    tenth = min(WARMUP, len(hwm)) - 1
    return {
        **_init_fields(result),
        "invocations": len(durations),
        "median_ms": statistics.median(durations[WARMUP:] or durations),
        "first_ms": durations[0],
        "hwm_first_kib": hwm[0],
        "hwm_tenth_kib": hwm[tenth],
        "hwm_last_kib": hwm[-1],
        "rss_tenth_kib": rss[tenth],
        "rss_last_kib": rss[-1],
        "clients": result["clients"],
        "api_calls": result["api_calls"],
        "retries": result["attempts"] - sum(result["api_calls"].values()),
        "sockets": result["sockets"],
    }


def measure_warm(
    envs: Environments, settings: Settings, variant_for: Callable[[str], Variant]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per function: one long environment of the function (memory, clients), then pairs of
    short ones, the function's and its baseline's back to back, in alternating order (warm
    overhead: each pair's ratio)."""
    warm: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for function_id in settings.warm_functions:
        function = envs.local.function(function_id)
        runs = warm.setdefault(function_id, {"long": [], "project": [], "baseline": []})
        events, expect = warm_events(function_id, settings.long_invocations, "bench-long")
        result = envs.run(function, variant_for(function_id), events, expect=expect)
        runs["long"].append(_warm_summary(result))
        subjects = [
            ("project", variant_for(function_id), None),
            ("baseline", envs.baseline(), BASELINES[function_id]),
        ]
        for number in range(settings.warm_environments):
            for kind, variant, handler in subjects if number % 2 == 0 else subjects[::-1]:
                events, expect = warm_events(
                    function_id, settings.short_invocations, f"bench-{kind}-{number}"
                )
                result = envs.run(function, variant, events, handler=handler, expect=expect)
                runs[kind].append(_warm_summary(result))
        progress(f"warm: {function_id}, 1 long and {settings.warm_environments} pairs of short")
    return warm


def measure_export(
    envs: Environments, settings: Settings, variant: Variant, tables: dict[int, str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    function = envs.local.function("ExportTableFunction")
    export: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for size, table in tables.items():
        subjects = [("project", variant, None), ("naive", envs.baseline(), NAIVE_EXPORT)]
        repeats = settings.export_repeats if size < 100_000 else 1
        for number in range(repeats):
            for kind, code, handler in subjects if number % 2 == 0 else subjects[::-1]:
                result = envs.run(
                    function,
                    code,
                    [{}],
                    handler=handler,
                    variables={"TABLE_NAME": table},
                    expect={"status": "complete", "items": size},
                )
                seconds = result["durations_ms"][0] / 1000
                export.setdefault(str(size), {}).setdefault(kind, []).append(
                    {
                        "seconds": seconds,
                        "items_per_s": size / seconds,
                        "cpu_seconds": result["cpu_ms"][0] / 1000,
                        "hwm_kib": result["hwm_kib"][-1],
                        "init_rss_kib": result["init_rss_kib"],
                        "api_calls": result["api_calls"],
                        "retries": result["attempts"] - sum(result["api_calls"].values()),
                    }
                )
            progress(f"export: {size:,} items, run {number + 1}/{repeats}")
    return export


# --- Package sizes ------------------------------------------------------------------------------


def _zipped_size(files: list[Path], root: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root))
    return buffer.tell()


def _component(relative: Path) -> str:
    top = relative.parts[0]
    if top == "__pycache__":  # bytecode of top-level modules: typing_extensions.cpython-313.pyc
        return relative.name.split(".", 1)[0]
    if top.endswith((".dist-info", ".data")):
        return top.split("-", 1)[0].lower().replace("-", "_") + " (metadata)"
    return top.removesuffix(".py")


def measure_sizes(build_dir: Path, functions: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each artifact's size, unzipped and zipped as ``sam deploy`` zips it, with and without
    bytecode, and what takes the room."""
    sizes: dict[str, dict[str, Any]] = {}
    for function_id in functions:
        root = build_dir / function_id
        files = sorted(p for p in root.rglob("*") if p.is_file())
        sources = [p for p in files if "__pycache__" not in p.parts]
        by_component: Counter[str] = Counter()
        subpackages: Counter[str] = Counter()
        for path in files:
            relative = path.relative_to(root)
            by_component[_component(relative)] += path.stat().st_size
            if relative.parts[0] == "aws_lambda_powertools" and len(relative.parts) > 2:
                subpackages[relative.parts[1]] += path.stat().st_size
        sizes[function_id] = {
            "files": len(files),
            "unzipped": sum(p.stat().st_size for p in files),
            "zipped": _zipped_size(files, root),
            "bytecode": sum(p.stat().st_size for p in files if p.suffix == ".pyc"),
            "unzipped_source_only": sum(p.stat().st_size for p in sources),
            "zipped_source_only": _zipped_size(sources, root),
            "components": dict(by_component.most_common(6)),
            "powertools_subpackages": dict(subpackages.most_common(4)),
        }
    return sizes


# --- The whole run ------------------------------------------------------------------------------


def measure(settings: Settings, build_dir: Path | None) -> Results:
    from tools.emulator.invoke_inputs import forget_developer_aws_config

    forget_developer_aws_config()
    results = Results(settings=settings.__dict__ | {"sizes": list(settings.sizes)}, build=False)
    results.build = build_dir is not None
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-sts-") as sts_dir:
        sts_processes = start_sts(settings, Path(sts_dir))
        try:
            _measure_with_aws(settings, build_dir, results, sts_processes, Path(sts_dir))
        finally:
            for process in sts_processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    if build_dir is not None:
        results.sizes = measure_sizes(build_dir, settings.functions)
    results.seconds["total"] = time.monotonic() - began
    return results


def _measure_with_aws(
    settings: Settings,
    build_dir: Path | None,
    results: Results,
    sts_processes: dict[str, subprocess.Popen[bytes]],
    sts_dir: Path,
) -> None:
    from bench.environments import workspace
    from bench.fast_moto import fast_scan
    from tools.emulator import local_lambda

    began = time.monotonic()
    with (
        local_lambda.embedded(seed_file=EVENTS / "seed.json") as local,
        fast_scan(),
        workspace() as scratch,
    ):
        progress(f"embedded AWS at {local.aws.endpoint_url}")
        envs = Environments(local, scratch)
        results.memory_mb = {f: local.function(f).memory_mb for f in FUNCTIONS}
        tables = prepare_tables(local, settings.sizes)
        results.sts = finish_sts(sts_processes, sts_dir)
        progress(
            f"sts: {results.sts['project']['total']['sts']} AssumeRole calls "
            f"vs {results.sts['naive']['total']['sts']} naive"
        )
        results.seconds["prepare"] = time.monotonic() - began

        def handler_variant(function_id: str) -> Variant:
            function = local.function(function_id)
            if build_dir is not None:
                return envs.build(build_dir, function, bytecode=True)
            return envs.source(function)

        for phase, run in (
            ("cold", lambda: measure_cold(envs, settings, build_dir)),
            (
                "plain",
                lambda: plain_init.as_json(plain_init.measure_settings(envs, settings, build_dir)),
            ),
            (
                "phases",
                lambda: plain_init.as_json(
                    plain_init.measure_settings(envs, settings, build_dir, phases=True)
                ),
            ),
            ("imports", lambda: measure_imports(envs, settings, build_dir)),
            ("warm", lambda: measure_warm(envs, settings, handler_variant)),
            (
                "export",
                lambda: measure_export(
                    envs, settings, handler_variant("ExportTableFunction"), tables
                ),
            ),
        ):
            started = time.monotonic()
            setattr(results, phase, run())
            results.seconds[phase] = time.monotonic() - started
