"""Where a cold start's time goes: ``python -X importtime`` lines, summed by package."""

from __future__ import annotations

import sys

from bench.probe import INIT_ENDS, INIT_STARTS

RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}
)
"""Packages Lambda's Python runtime provides (``tools.emulator.execution_environment``),
precompiled."""


def group(module: str) -> str:
    """The package a module's import time is counted under."""
    top = module.split(".", 1)[0]
    if top in sys.stdlib_module_names or top.startswith("_"):
        return "(standard library)"
    return top


def by_package(stderr: str) -> dict[str, float]:
    """Milliseconds of import time (each module's own, its imports excluded) by package, for the
    imports between the probe's init markers only."""
    totals: dict[str, float] = {}
    inside = False
    for line in stderr.splitlines():
        if line == INIT_STARTS.decode().strip():
            inside = True
        elif line == INIT_ENDS.decode().strip():
            break
        elif inside and line.startswith("import time:") and "self [us]" not in line:
            own, _cumulative, module = line.removeprefix("import time:").split("|", 2)
            package = group(module.strip())
            totals[package] = totals.get(package, 0.0) + int(own) / 1000
    return dict(sorted(totals.items(), key=lambda pair: -pair[1]))
