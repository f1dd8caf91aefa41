"""The results as one Markdown table (each figure, its same-run baseline, target and verdict), the
cold start's imports by package, and the plot of the table export's scaling run."""

from __future__ import annotations

import platform
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.plain_init import TARGET as PLAIN_COLD_TARGET
from bench.run import BASELINES, Results
from bench.stats import RANGE, Spread, mib, ratios, size_mib

WARM_TARGET = 1.15
STS_TARGET = 4
RSS_TARGET_MIB = 96
FLAT_MEMORY_TARGET = 0.10
NETWORK_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg")


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    baseline: str
    ratio: str
    target: str
    verdict: str


def _verdict(holds: bool, miss: str = "") -> str:
    return "✅ holds" if holds else f"❌ misses{': ' + miss if miss else ''}"


def _pct(value: float) -> str:
    return f"{value * 100:+.1f}%"


def _short(function_id: str) -> str:
    return function_id.removesuffix("Function")


def cold_rows(results: Results) -> list[Row]:
    rows: list[Row] = []
    labels = ("build", "src/", "build, no .pyc") if results.build else ("src/",)
    for label in labels:
        for function_id, runs in results.cold.items():
            measured = [run["init_ms"] for run in runs[label]]
            baseline = [run["init_ms"] for run in runs["baseline"]]
            ratio = ratios(measured, baseline)
            reference = label == "build, no .pyc"
            what = {
                "build": "`sam build` artifact (.pyc)",
                "src/": "plain `src/`",
                "build, no .pyc": "artifact without .pyc (SAM's default build)",
            }[label]
            rows.append(
                Row(
                    figure=f"1 · Cold init, {_short(function_id)}: {what}, probed",
                    measured=Spread.of(measured).text("ms"),
                    baseline=f"bare boto3: {Spread.of(baseline).text('ms')}",
                    ratio=ratio.ratio_text(),
                    target="reference",
                    verdict="(what precompiling saves)"
                    if reference
                    else "(the probe's hooks cost per import: see the unhooked rows)",
                )
            )
    inits = [
        run for per_function in results.cold.values() for v in per_function.values() for run in v
    ]
    network = sum(run["init_sockets"].get(event, 0) for run in inits for event in NETWORK_EVENTS)
    api_calls = sum(sum(run["init_api_calls"].values()) for run in inits)
    other: Counter[str] = Counter()
    for run in inits:
        other.update({e: n for e, n in run["init_sockets"].items() if e not in NETWORK_EVENTS})
    rows.append(
        Row(
            figure=f"1 · Network calls at init ({len(inits)} inits: every function, variant and "
            "baseline; `AWS_ENDPOINT_URL` a closed port, fake credentials; audit hook on sockets)",
            measured=f"{network} connects, lookups or sends; {api_calls} AWS API calls",
            baseline="(other socket events, baselines too: "
            + (", ".join(f"{e} x{n}" for e, n in sorted(other.items())) or "none")
            + ": urllib3's IPv6 check at import binds ::1, sends nothing)",
            ratio="—",
            target="0",
            verdict=_verdict(network == 0 and api_calls == 0),
        )
    )
    return rows


def plain_rows(results: Results) -> list[Row]:
    """The cold-start figures: inits and first invocations, nothing hooked (bench.plain_init)."""
    rows = []
    what = "`sam build` artifact" if results.build else "plain `src/`"
    for function_id, subjects in results.plain.items():
        runs, base = subjects["function"], subjects["baseline"]
        ratio = ratios(runs["init_ms"], base["init_ms"])
        cpu = ratios(runs["init_cpu_ms"], base["init_cpu_ms"])
        rows.append(
            Row(
                figure=f"1 · Cold init, {_short(function_id)}: {what}, nothing hooked "
                f"({ratio.count} pair{'s' if ratio.count > 1 else ''}; {runs['modules']} modules "
                f"vs {base['modules']})",
                measured=Spread.of(runs["init_ms"]).text("ms"),
                baseline=f"bare boto3: {Spread.of(base['init_ms']).text('ms')}",
                ratio=f"{ratio.ratio_text()} (CPU {cpu.ratio_text()})",
                target=f"≤ {PLAIN_COLD_TARGET}x",
                verdict=_verdict(
                    ratio.median <= PLAIN_COLD_TARGET,
                    f"{(ratio.median / PLAIN_COLD_TARGET - 1) * 100:.0f}% over",
                ),
            )
        )
        paused = subjects.get("paused-baseline")
        if paused is not None:
            structure = ratios(runs["init_ms"], paused["init_ms"])
            rows.append(
                Row(
                    figure=f"1 · Cold init, {_short(function_id)}, against the bare baseline "
                    "with the collector held off too (what the structure costs)",
                    measured=Spread.of(runs["init_ms"]).text("ms"),
                    baseline=f"bare boto3, GC held off: {Spread.of(paused['init_ms']).text('ms')}",
                    ratio=structure.ratio_text(),
                    target="reference",
                    verdict="(app.cold_start's share taken out of both sides)",
                )
            )
        if runs["first_ms"]:
            first = ratios(runs["first_ms"], base["first_ms"])
            rows.append(
                Row(
                    figure=f"1 · First invocation after that init, {_short(function_id)}",
                    measured=Spread.of(runs["first_ms"]).text("ms", 1),
                    baseline=f"bare boto3: {Spread.of(base['first_ms']).text('ms', 1)}",
                    ratio=first.ratio_text(),
                    target="reference",
                    verdict="(init must not move its cost here)",
                )
            )
    return rows


def warm_rows(results: Results) -> list[Row]:
    rows = []
    for function_id, kinds in results.warm.items():
        project = [env["median_ms"] for env in kinds["project"]]
        baseline = [env["median_ms"] for env in kinds["baseline"]]
        ratio = ratios(project, baseline)
        calls = " + ".join(
            sorted(
                {
                    name.split(".")[1]
                    for name, count in kinds["baseline"][0]["api_calls"].items()
                    if count
                }
            )
        )
        count = kinds["project"][0]["invocations"]
        plural = "s" if len(project) > 1 else ""
        rows.append(
            Row(
                figure=f"2 · Warm invocation, {_short(function_id)} (median of invocations "
                f"11{RANGE}{count:,} per environment; {len(project)} pair{plural} of environments)",
                measured=Spread.of(project).text("ms", 2),
                baseline=f"raw boto3 {calls}: {Spread.of(baseline).text('ms', 2)}",
                ratio=ratio.ratio_text(),
                target=f"≤ {WARM_TARGET}x",
                verdict=_verdict(
                    ratio.median <= WARM_TARGET,
                    f"{(ratio.median / WARM_TARGET - 1) * 100:.0f}% over",
                ),
            )
        )
    return rows


def sts_rows(results: Results) -> list[Row]:
    sts = results.sts
    project, naive = sts["project"]["total"]["sts"], sts["naive"]["total"]["sts"]
    minutes = ", ".join(f"{m:.0f}" for m in sts["project"]["sts_minutes"])
    invocations = sts["invocations"]
    return [
        Row(
            figure=f"3 · STS AssumeRole calls, {_short(sts['function'])}: {invocations:,} "
            f"invocations in one environment over {sts['hours']:g} h (time-machine)",
            measured=f"{project} (at minute {minutes})",
            baseline=f"naive `sts.assume_role` per invocation: {naive:,}",
            ratio=f"{project / naive:.3f}x",
            target=f"≤ {STS_TARGET} vs {invocations:,}",
            verdict=_verdict(project <= STS_TARGET and naive == invocations),
        )
    ]


def client_rows(results: Results) -> list[Row]:
    rows = []
    for function_id, kinds in results.warm.items():
        env = kinds["long"][0]
        base = kinds["baseline"][0]
        at_init, after = sum(env["init_clients"].values()), sum(env["clients"].values())
        rows.append(
            Row(
                figure=f"4 · Clients built, {_short(function_id)}: at init → after "
                f"{env['invocations']:,} invocations",
                measured=f"{at_init} → {after}",
                baseline=f"bare: {sum(base['init_clients'].values())} → "
                f"{sum(base['clients'].values())} after {base['invocations']:,}",
                ratio=f"+{after - at_init}",
                target="= at init",
                verdict=_verdict(after == at_init),
            )
        )
    sts = results.sts
    naive = sts["naive"]
    project_clients = sts["project"]["total"]["client_count"]
    rows.append(
        Row(
            figure=f"4 · Clients built, {_short(sts['function'])} over "
            f"{sts['invocations']:,} invocations and {sts['hours']:g} h",
            measured=f"{sts['project']['init']['client_count']} → "
            f"{sts['project']['total']['client_count']}",
            baseline=f"naive: {naive['init']['client_count']} → {naive['total']['client_count']:,}",
            ratio=f"+{project_clients - sts['project']['init']['client_count']}",
            target="= at init",
            verdict=_verdict(
                sts["project"]["total"]["client_count"] == sts["project"]["init"]["client_count"]
            ),
        )
    )
    return rows


def memory_rows(results: Results) -> list[Row]:
    rows = []
    for function_id, kinds in results.warm.items():
        env, base = kinds["long"][0], kinds["baseline"][0]
        count = env["invocations"]
        growth = mib(env["hwm_last_kib"] - env["hwm_tenth_kib"])
        rss_growth = mib(env["rss_last_kib"] - env["rss_tenth_kib"])
        peak = mib(env["hwm_last_kib"])
        rows.append(
            Row(
                figure=f"5 · Peak RSS, {_short(function_id)}: after init / invocation 10 / "
                f"invocation {count:,}",
                measured=f"{mib(env['init_hwm_kib']):.1f} / {mib(env['hwm_tenth_kib']):.1f} / "
                f"{peak:.1f} MiB (peak +{growth:.1f}, RSS {rss_growth:+.1f} MiB from 10 to "
                f"{count:,})",
                baseline=f"bare: {mib(base['init_hwm_kib']):.1f} / "
                f"{mib(base['hwm_tenth_kib']):.1f} / {mib(base['hwm_last_kib']):.1f} MiB (after "
                f"{base['invocations']:,})",
                ratio=f"{env['hwm_last_kib'] / base['hwm_last_kib']:.2f}x",
                target=f"≤ {RSS_TARGET_MIB} MiB, no growth",
                verdict=_verdict(
                    peak <= RSS_TARGET_MIB and growth < 1.0,
                    f"{peak:.1f} MiB" if peak > RSS_TARGET_MIB else f"grew {growth:.1f} MiB",
                ),
            )
        )
    return rows


def size_rows(results: Results) -> list[Row]:
    if not results.sizes:
        return []
    groups: dict[tuple[int, int], list[str]] = {}
    for function_id, size in results.sizes.items():  # the same files: the same row
        groups.setdefault((size["files"], size["unzipped"]), []).append(_short(function_id))
    rows = []
    for names in groups.values():
        size = results.sizes[f"{names[0]}Function"]
        unzipped = size["unzipped"]
        parts = ", ".join(
            f"{name} {bytes_ / unzipped:.0%}" for name, bytes_ in size["components"].items()
        )
        powertools = ", ".join(
            f"{name} {bytes_ / unzipped:.0%}"
            for name, bytes_ in size["powertools_subpackages"].items()
        )
        rows.append(
            Row(
                figure=f"6 · Package size, {' = '.join(names)} (`sam build` artifact"
                f"{', identical' if len(names) > 1 else ''})",
                measured=f"{size_mib(unzipped)} unzipped, {size_mib(size['zipped'])} zipped; "
                f"{parts}; of which .pyc {size['bytecode'] / unzipped:.0%}; Powertools' "
                f"largest: {powertools}",
                baseline=f"without .pyc (SAM's default): {size_mib(size['unzipped_source_only'])}"
                f" / {size_mib(size['zipped_source_only'])}",
                ratio=f"{unzipped / size['unzipped_source_only']:.2f}x / "
                f"{size['zipped'] / size['zipped_source_only']:.2f}x",
                target="Lambda: ≤ 250 MiB unzipped, ≤ 50 MiB zipped",
                verdict=_verdict(unzipped <= 250 * 2**20 and size["zipped"] <= 50 * 2**20),
            )
        )
    return rows


def _export_spreads(results: Results, kind: str) -> dict[int, tuple[Spread, Spread]]:
    return {
        int(size): (
            Spread.of([run["items_per_s"] for run in kinds[kind]]),
            Spread.of([mib(run["hwm_kib"]) for run in kinds[kind]]),
        )
        for size, kinds in results.export.items()
    }


def export_rows(results: Results) -> list[Row]:
    project, naive = _export_spreads(results, "project"), _export_spreads(results, "naive")
    memory_mb = results.memory_mb.get("ExportTableFunction", 0)
    rows = []
    for size in sorted(project):
        (rate, peak), (naive_rate, naive_peak) = project[size], naive[size]
        runs = results.export[str(size)]
        throughput = ratios(
            [r["items_per_s"] for r in runs["project"]], [r["items_per_s"] for r in runs["naive"]]
        )
        retries = sum(r["retries"] for r in runs["project"] + runs["naive"])
        cpu = Spread.of([r["cpu_seconds"] / r["seconds"] for r in runs["project"]]).median
        naive_cpu = Spread.of([r["cpu_seconds"] / r["seconds"] for r in runs["naive"]]).median
        over = f" > the function's {memory_mb} MB" if naive_peak.median > memory_mb else ""
        retried = f", {retries} call{'s' if retries > 1 else ''} retried" if retries else ""
        rows.append(
            Row(
                figure=f"7 · Table export, {size:,} items ({rate.count} run"
                f"{'s' if rate.count > 1 else ''} each{retried}): "
                "items/s; peak RSS",
                measured=f"{rate.text('items/s')}; {peak.text('MiB', 1)}; busy CPU {cpu:.0%}",
                baseline=f"naive: {naive_rate.text('items/s')}; {naive_peak.text('MiB', 1)}{over}; "
                f"busy CPU {naive_cpu:.0%}",
                ratio=f"{throughput.ratio_text()} throughput; "
                f"{peak.median / naive_peak.median:.2f}x memory",
                target="throughput ≥ naive",
                verdict=_verdict(
                    throughput.median >= 1.0, f"{(1 - throughput.median) * 100:.0f}% slower"
                ),
            )
        )
    sizes = sorted(project)
    if len(sizes) >= 2:
        small, large = sizes[-2], sizes[-1]
        growth = project[large][1].median / project[small][1].median - 1
        naive_growth = naive[large][1].median / naive[small][1].median - 1
        rows.append(
            Row(
                figure=f"7 · Table export peak RSS from {small:,} to {large:,} items",
                measured=f"{_pct(growth)} ({project[small][1].median:.1f} → "
                f"{project[large][1].median:.1f} MiB)",
                baseline=f"naive: {_pct(naive_growth)} ({naive[small][1].median:.1f} → "
                f"{naive[large][1].median:.1f} MiB)",
                ratio=f"{(1 + growth):.2f}x",
                target=f"within {FLAT_MEMORY_TARGET:.0%}",
                verdict=_verdict(
                    abs(growth) <= FLAT_MEMORY_TARGET,
                    f"{(abs(growth) - FLAT_MEMORY_TARGET) * 100:.0f} points over",
                ),
            )
        )
    return rows


def rows(results: Results) -> list[Row]:
    return [
        *plain_rows(results),
        *cold_rows(results),
        *warm_rows(results),
        *sts_rows(results),
        *client_rows(results),
        *memory_rows(results),
        *size_rows(results),
        *export_rows(results),
    ]


def markdown(table_rows: Sequence[Row]) -> str:
    header = ("Figure", "Measured", "Baseline (same run)", "Ratio", "Target", "Verdict")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table_rows:
        cells = (row.figure, row.measured, row.baseline, row.ratio, row.target, row.verdict)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def context_line(results: Results) -> str:
    settings = results.settings
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{'`sam build` artifact' if results.build else 'src/ only (no `sam build`)'}; "
        f"medians (min{RANGE}max) of {settings['cold_repeats']} cold inits and "
        f"{settings['warm_environments']} pairs of warm environments each; embedded AWS (moto) on "
        f"127.0.0.1; {results.seconds.get('total', 0):.0f} s in all."
    )


def imports_markdown(results: Results) -> str:
    """Each function's init split into imports by package and the rest of its module code."""
    out = [
        "# Where a cold start's time goes",
        "",
        "`python -X importtime` of two functions' inits, offline; medians of a few runs, package "
        "by package (importtime slows every import: read the shares more than the totals). Each "
        "module's own import time, summed by package. boto3, botocore, urllib3, dateutil, "
        "jmespath, s3transfer and six come precompiled with Lambda's runtime; "
        "aws_lambda_powertools, typing_extensions and app are the function's own. *Module-level "
        "code* is the rest of the init: what the handler module's body runs besides imports "
        "(sessions, clients, the Powertools resolver), which importtime does not time.",
        "",
    ]
    for function_id, variants in results.imports.items():
        labels = [v for v in ("build, no .pyc", "build", "src/", "baseline") if v in variants]
        packages = sorted(
            {p for label in labels for p in list(variants[label]["packages"])[:8]},
            key=lambda p: -max(variants[label]["packages"].get(p, 0.0) for label in labels),
        )
        names: dict[str, str] = {label: label for label in labels}
        if "baseline" in names:
            names["baseline"] = f"baseline ({BASELINES[function_id].split('.')[0]})"
        out += [f"## {function_id}", ""]
        out.append("| Package | " + " | ".join(names[label] for label in labels) + " |")
        out.append("|---|" + "---:|" * len(labels))

        def cell(value: float, total: float) -> str:
            return f"{value:.0f} ms ({value / total:.0%})"

        totals = {label: variants[label]["init_ms"] for label in labels}
        for package in packages:
            values = [variants[label]["packages"].get(package, 0.0) for label in labels]
            out.append(
                f"| {package} | "
                + " | ".join(
                    cell(v, totals[label]) for v, label in zip(values, labels, strict=True)
                )
                + " |"
            )
        shown = set(packages)
        others = [
            sum(v for p, v in variants[label]["packages"].items() if p not in shown)
            for label in labels
        ]
        out.append(
            "| (other packages) | "
            + " | ".join(cell(v, totals[label]) for v, label in zip(others, labels, strict=True))
            + " |"
        )
        rest = [totals[label] - sum(variants[label]["packages"].values()) for label in labels]
        out.append(
            "| *module-level code* | "
            + " | ".join(cell(v, totals[label]) for v, label in zip(rest, labels, strict=True))
            + " |"
        )
        out.append(
            "| **init** | " + " | ".join(f"**{totals[label]:.0f} ms**" for label in labels) + " |"
        )
        out.append("")
    return "\n".join(out)


def plot(results: Results, path: Path) -> bool:
    """Peak memory and throughput against table size; False when matplotlib is missing."""
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return False
    project, naive = _export_spreads(results, "project"), _export_spreads(results, "naive")
    sizes = sorted(project)
    figure, (memory, speed) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for spreads, label, style in (
        (project, "ExportTableFunction (parallel scan, streamed to S3)", "o-"),
        (naive, "naive (scan into a list, one put_object)", "s--"),
    ):
        for axis, figure_index in ((speed, 0), (memory, 1)):
            axis.errorbar(
                sizes,
                [spreads[s][figure_index].median for s in sizes],
                yerr=_yerr([spreads[s][figure_index] for s in sizes]),
                fmt=style,
                capsize=3,
                label=label,
            )
    for axis, title, unit in (
        (memory, "Peak RSS of the execution environment", "MiB"),
        (speed, "Throughput", "items/s"),
    ):
        axis.set_xscale("log")
        axis.set_xticks(sizes, [f"{s:,}" for s in sizes])
        axis.set_xlabel("items in the table")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.set_ylim(bottom=0)
    memory_mb = results.memory_mb.get("ExportTableFunction")
    if memory_mb:
        memory.axhline(memory_mb, color="grey", linestyle=":", label=f"MemorySize ({memory_mb} MB)")
    memory.legend(fontsize=8, loc="upper left")
    figure.suptitle(f"Whole-table export on the embedded AWS (same run; median, min{RANGE}max)")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return True


def _yerr(spreads: list[Spread]) -> list[list[float]]:
    return [[s.median - s.low for s in spreads], [s.high - s.median for s in spreads]]


def write(results: Results, out_dir: Path, *, with_plot: bool = True) -> str:
    """Write latest.md (the table), latest.json, cold_start_imports.md and the plot; the table."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    table = markdown(rows(results))
    (out_dir / "latest.md").write_text(
        "# `make bench`: latest results\n\n" + context_line(results) + "\n\n" + table
    )
    (out_dir / "latest.json").write_text(json.dumps(results.__dict__, indent=1) + "\n")
    if results.imports:
        (out_dir / "cold_start_imports.md").write_text(imports_markdown(results))
    if with_plot and results.export:
        plot(results, out_dir / "table_export.png")
    return table
