"""``python -m bench.table_export_scaleout``: the fanned-out table export against the number of
concurrent execution environments, and the single-invocation export, in the same run.

For each count ``n`` (1, 2, 4, 8 by default) a run is started with ``TABLE_EXPORT_FAN_OUT=true``
and ``TABLE_EXPORT_SEGMENTS=n``; the start sends one message per segment to ExportTableQueue, and
this script plays the event source mapping: it receives the ``n`` messages and hands each to an
execution environment of its own (a fresh ``bench/probe.py`` process), all at once. Each
invocation's end is its log line's timestamp and its start that less its duration, so the export
takes from the first segment's start to the last one's end (process starts and inits, which Lambda
overlaps with nothing of the export, are left out, as they are for the single invocation).

The embedded AWS (moto's server, with ``bench/fast_moto.py``'s Scan) runs in this process: the CPU
this process spends during a phase is the server's, and its share of one core says how close the
server is to saturation (one Python process, one GIL: it cannot use more than one core).

It also times DynamoDB's managed export (``ExportTableToPointInTime``) as moto implements it, for
what that is worth (moto writes one file from a thread; AWS takes minutes whatever the size).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import items
from bench.environments import Environments, Variant
from tools.emulator.sqs_records import receive_records

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EVENTS = ROOT / "events"
FUNCTION = "ExportTableFunction"
_LOG_TIME = re.compile(r'"timestamp":"([^"]+)"')


def progress(message: str) -> None:
    print(f"[scaleout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Phase:
    """One export: how long it took, and what the embedded AWS spent meanwhile."""

    mode: str
    environments: int
    seconds: float
    items: int
    server_cpu_seconds: float
    """What this process (the embedded AWS) spent from the export's first start to its end."""
    wall_seconds: float
    """From launching the first process to the last one's exit: inits included."""
    env_hwm_mib: list[float] = field(default_factory=list)
    env_seconds: list[float] = field(default_factory=list)
    start_seconds: float = 0.0
    """A fanned-out run's start (the messages sent), before its segments."""
    env_cpu_seconds: list[float] = field(default_factory=list)
    """CPU each environment's export invocation spent (its init not included)."""

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    @property
    def server_load(self) -> float:
        """The server's CPU over the export's time: 1.0 is one core, all it can use."""
        return self.server_cpu_seconds / self.seconds


class CpuSampler:
    """This process's CPU time (the embedded AWS's), sampled with wall-clock time every 50 ms, so
    that the CPU spent between any two instants of a phase can be read back."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), time.process_time()))
            self._stop.wait(0.05)

    def between(self, start: float, end: float) -> float:
        inside = [cpu for at, cpu in self.samples if start <= at <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else 0.0


def _log_end(log: Path) -> float:
    """The epoch seconds of the invocation's last structured log line (its "table export")."""
    stamps = _LOG_TIME.findall(log.read_text())
    if not stamps:
        raise RuntimeError(f"no log line with a timestamp in {log}")
    return datetime.strptime(stamps[-1], "%Y-%m-%d %H:%M:%S,%f%z").timestamp()


@dataclass
class Scaleout:
    envs: Environments
    variant: Variant
    table: str
    size: int
    logs: Path
    sampler: CpuSampler

    @property
    def function(self) -> Any:  # noqa: ANN401 - tools.emulator.provision.Function
        return self.envs.local.function(FUNCTION)

    def single(self) -> Phase:
        """The export in one invocation (segments on its threads): the baseline."""
        wall = time.monotonic()
        log = self.logs / f"single-{uuid.uuid4().hex[:8]}.log"
        result = self.envs.run(
            self.function,
            self.variant,
            [{}],
            variables={"TABLE_NAME": self.table},
            expect={"status": "complete", "items": self.size},
            log=log,
        )
        seconds = result["durations_ms"][0] / 1000
        end = _log_end(log)
        return Phase(
            "single invocation",
            1,
            seconds,
            self.size,
            self.sampler.between(end - seconds, end),
            time.monotonic() - wall,
            [result["hwm_kib"][-1] / 1024],
            [seconds],
            env_cpu_seconds=[result["cpu_ms"][0] / 1000],
        )

    def fanned_out(self, environments: int) -> Phase:
        variables = {
            "TABLE_NAME": self.table,
            "TABLE_EXPORT_FAN_OUT": "true",
            "TABLE_EXPORT_SEGMENTS": str(environments),
        }
        run_id = f"scaleout-{environments}-{uuid.uuid4().hex[:8]}"
        started = self.envs.run(
            self.function,
            self.variant,
            [{"run_id": run_id}],
            variables=variables,
            expect={"status": "fanned-out"},
        )
        aws = self.envs.local.aws
        sqs = aws.client("sqs")
        queue_url = self.function.environment["CONTINUATION_QUEUE_URL"]
        records: list[dict[str, Any]] = []
        while len(records) < environments:
            records += receive_records(
                sqs, queue_url, aws.region, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
        assert all(json.loads(r["body"])["run_id"] == run_id for r in records)  # noqa: S101

        def segment(number: int, record: dict[str, Any]) -> dict[str, Any]:
            return self.envs.run(
                self.function,
                self.variant,
                [{"Records": [record]}],
                variables=variables,
                expect={"batchItemFailures": []},
                log=self.logs / f"{run_id}-{number}.log",
            )

        wall = time.monotonic()
        with ThreadPoolExecutor(max_workers=environments) as pool:
            results = list(pool.map(segment, range(environments), records))
        wall = time.monotonic() - wall
        for record in records:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"])
        ends = [_log_end(self.logs / f"{run_id}-{n}.log") for n in range(environments)]
        durations = [result["durations_ms"][0] / 1000 for result in results]
        first = min(end - d for end, d in zip(ends, durations, strict=True))
        span = max(ends) - first
        status = self._run_status(run_id)
        if status != ("complete", self.size):
            raise RuntimeError(f"run {run_id} ended {status}, not complete with {self.size}")
        return Phase(
            "fanned out",
            environments,
            max(span, *durations),
            self.size,
            self.sampler.between(first, max(ends)),
            wall,
            [result["hwm_kib"][-1] / 1024 for result in results],
            durations,
            start_seconds=started["durations_ms"][0] / 1000,
            env_cpu_seconds=[result["cpu_ms"][0] / 1000 for result in results],
        )

    def _run_status(self, run_id: str) -> tuple[str, int]:
        runs_table = self.function.environment["RUNS_TABLE_NAME"]
        stored = self.envs.local.aws.client("dynamodb").get_item(
            TableName=runs_table, Key={"run_id": {"S": run_id}}
        )["Item"]
        total = sum(
            json.loads(value["S"])["items"]
            for name, value in stored.items()
            if re.fullmatch(r"segment_\d+", name)
        )
        return stored["status"]["S"], total

    def managed(self) -> Phase:
        """moto's ExportTableToPointInTime: started, then polled until it completes. Like AWS,
        moto refuses it (PointInTimeRecoveryUnavailableException) until the table has
        point-in-time recovery, which only prod stacks enable."""
        dynamodb = self.envs.local.aws.client("dynamodb")
        table_arn = dynamodb.describe_table(TableName=self.table)["Table"]["TableArn"]
        dynamodb.update_continuous_backups(
            TableName=self.table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        bucket = self.function.environment["BUCKET_NAME"]
        began, wall = time.time(), time.monotonic()
        export = dynamodb.export_table_to_point_in_time(
            TableArn=table_arn,
            S3Bucket=bucket,
            S3Prefix="exports/managed",
            ExportFormat="DYNAMODB_JSON",
        )["ExportDescription"]
        while export["ExportStatus"] == "IN_PROGRESS":
            time.sleep(0.05)  # a benchmark's poll, as a caller of DescribeExport would
            export = dynamodb.describe_export(ExportArn=export["ExportArn"])["ExportDescription"]
        seconds = time.monotonic() - wall
        if export["ExportStatus"] != "COMPLETED" or export["ItemCount"] != self.size:
            raise RuntimeError(f"managed export ended {export['ExportStatus']}: {export}")
        cpu = self.sampler.between(began, time.time())
        return Phase("managed export (moto)", 0, seconds, self.size, cpu, seconds)


def measure(
    size: int, counts: tuple[int, ...], repeats: int, build_dir: Path | None
) -> dict[str, Any]:
    from bench.environments import workspace
    from bench.fast_moto import fast_scan
    from tools.emulator import local_lambda
    from tools.emulator.invoke_inputs import forget_developer_aws_config

    forget_developer_aws_config()
    began = time.monotonic()
    load_before = os.getloadavg()
    phases: list[Phase] = []
    with (
        local_lambda.embedded(seed_file=EVENTS / "seed.json") as local,
        fast_scan(),
        workspace() as scratch,
        tempfile.TemporaryDirectory(prefix="scaleout-logs-") as logs,
        CpuSampler() as sampler,
    ):
        envs = Environments(local, scratch)
        function = local.function(FUNCTION)
        variant = (
            envs.build(build_dir, function, bytecode=True)
            if build_dir is not None
            else envs.source(function)
        )
        table = f"{local.deployment.resources['ItemsTable']}-scaleout-{size}"
        items.create_copy(local, "ItemsTable", table)
        items.seed(local, table, size)
        local.aws.client("dynamodb").scan(TableName=table, Limit=1)  # fast_scan sorts it once
        progress(f"seeded {size:,} items into {table} in {time.monotonic() - began:.0f} s")
        bench = Scaleout(envs, variant, table, size, Path(logs), sampler)
        for number in range(repeats):
            order: list[int | str] = ["single", *counts]
            if number % 2:
                order.reverse()
            for subject in order:
                phase = bench.single() if subject == "single" else bench.fanned_out(int(subject))
                phases.append(phase)
                progress(
                    f"{phase.mode}, {phase.environments} environment(s): "
                    f"{phase.items_per_s:,.0f} items/s, server at {phase.server_load:.2f} of a core"
                )
        phases.append(bench.managed())
        progress(f"managed export (moto): {phases[-1].seconds:.1f} s")
    return {
        "size": size,
        "counts": list(counts),
        "repeats": repeats,
        "build": build_dir is not None,
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "seconds": time.monotonic() - began,
        "phases": [
            asdict(phase) | {"items_per_s": phase.items_per_s, "server_load": phase.server_load}
            for phase in phases
        ],
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(results: dict[str, Any]) -> str:
    phases = results["phases"]
    single = [p for p in phases if p["mode"] == "single invocation"]
    single_rate = _median([p["items_per_s"] for p in single])
    by_count: dict[int, list[dict[str, Any]]] = {}
    for phase in phases:
        if phase["mode"] == "fanned out":
            by_count.setdefault(phase["environments"], []).append(phase)
    one_rate = _median([p["items_per_s"] for p in by_count.get(1, [])]) if 1 in by_count else None
    lines = [
        "# Table export, scaled out",
        "",
        f"{results['size']:,} items; {results['repeats']} run(s) of each, interleaved; "
        f"{'the `sam build` artifact' if results['build'] else 'src/'}; "
        f"{results['cpus']} CPUs, load average {results['load_before'][0]:.1f} before and "
        f"{results['load_after'][0]:.1f} after (the machine is shared). "
        f"Written by `python -m bench.table_export_scaleout` ({results['seconds']:.0f} s).",
        "",
        "| Export | Environments | Seconds | Items/s | vs single invocation | vs 1 environment "
        "| Server CPU (of one core) | CPU s: server + environments | Peak RSS per environment |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def row(label: str, count: str, runs: list[dict[str, Any]]) -> str:
        rate = _median([p["items_per_s"] for p in runs])
        seconds = _median([p["seconds"] for p in runs])
        load = _median([p["server_load"] for p in runs])
        hwm = [value for p in runs for value in p["env_hwm_mib"]]
        versus_one = f"{rate / one_rate:.2f}x" if one_rate and label == "fanned out" else "—"
        memory = f"{min(hwm):.0f}-{max(hwm):.0f} MiB" if hwm else "—"
        server = _median([p["server_cpu_seconds"] for p in runs])
        clients = _median([sum(p.get("env_cpu_seconds", [])) for p in runs])
        return (
            f"| {label} | {count} | {seconds:.1f} | {rate:,.0f} | {rate / single_rate:.2f}x "
            f"| {versus_one} | {load:.2f} | {server:.1f} + {clients:.1f} | {memory} |"
        )

    lines.append(row("single invocation (4 threads)", "1", single))
    for count in sorted(by_count):
        lines.append(row("fanned out", str(count), by_count[count]))
    managed = [p for p in phases if p["mode"].startswith("managed")]
    if managed:
        lines.append(row("managed export (moto's, not AWS's)", "—", managed))
    cpu_per_item = {
        label: (
            _median([p["server_cpu_seconds"] for p in runs]),
            _median([sum(p.get("env_cpu_seconds", [])) for p in runs]),
        )
        for label, runs in [("single", single), *by_count.items()]
    }
    lines += [
        "",
        "CPU per item, server + environments: "
        + ", ".join(
            f"{label if label == 'single' else f'{label} env'}: "
            f"{server / results['size'] * 1e6:.0f} + {envs / results['size'] * 1e6:.0f} µs"
            for label, (server, envs) in cpu_per_item.items()
        )
        + f". On {results['cpus']} CPUs, and nothing else running, that is at most "
        + f"{results['cpus'] * results['size'] / sum(cpu_per_item['single']):,.0f} items/s "
        "for the whole machine, whatever the count.",
    ]
    rates = {count: _median([p["items_per_s"] for p in runs]) for count, runs in by_count.items()}
    loads = {count: _median([p["server_load"] for p in runs]) for count, runs in by_count.items()}
    best = max(rates, key=lambda count: rates[count]) if rates else None
    if best is not None:
        lines += [
            "",
            f"Fastest at {best} environment(s): {rates[best]:,.0f} items/s, "
            f"{rates[best] / single_rate:.2f}x the single invocation; the server then spent "
            f"{loads[best]:.2f} of a core. Growth from each count to the next: "
            + ", ".join(
                f"{a}→{b}: {rates[b] / rates[a]:.2f}x"
                for a, b in zip(sorted(rates), sorted(rates)[1:], strict=False)
            )
            + ".",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.table_export_scaleout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--items", type=int, default=100_000, help="table size (default 100000)")
    parser.add_argument(
        "--environments",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        default=(1, 2, 4, 8),
        help="concurrent execution environments, comma-separated (default 1,2,4,8)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (default 1)")
    parser.add_argument("--build-dir", type=Path, help="a `sam build` output (else src/)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--quick", action="store_true", help="2,000 items, 1 and 2 environments")
    args = parser.parse_args(argv)
    size, counts = (2_000, (1, 2)) if args.quick else (args.items, args.environments)
    results = measure(
        size, counts, args.repeats, args.build_dir.resolve() if args.build_dir else None
    )
    table = report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table_export_scaleout.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "table_export_scaleout.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
