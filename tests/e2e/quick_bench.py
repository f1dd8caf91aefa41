"""The benchmarks' quick runs, as the smoke tests that keep them from rotting start them."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(module: str, out: Path) -> str:
    """``python -m <module> --quick --out <out>``, a subprocess as ``make bench`` runs it (with
    an embedded AWS of its own); its standard output, once it has exited 0."""
    completed = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout
