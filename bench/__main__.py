"""``python -m bench``: measure, print the table, write bench/results/. ``make bench`` runs it."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from bench import report
from bench.run import QUICK, ROOT, Settings, measure, progress

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Cold starts, warm overhead, STS calls, clients, memory, package size and the "
        "table export, each against a baseline measured in the same run.",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        help="a `sam build` output directory (make bench builds .aws-sam/bench/build); "
        "without it only src/ is measured",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results go")
    parser.add_argument("--quick", action="store_true", help="a tiny run (the smoke test's)")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(size) for size in text.split(",")),
        help="table sizes for the export, comma-separated (default 1000,10000,100000)",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    args = parser.parse_args(argv)
    if args.build_dir is not None and not (args.build_dir / "template.yaml").is_file():
        parser.error(f"{args.build_dir} holds no `sam build` output (run make bench)")
    settings = QUICK if args.quick else Settings()
    if args.sizes:
        settings = dataclasses.replace(settings, sizes=args.sizes)
    results = measure(settings, args.build_dir.resolve() if args.build_dir else None)
    table = report.write(results, args.out, with_plot=not args.no_plot)
    progress(f"done in {results.seconds['total']:.0f} s; results in {args.out}")
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
