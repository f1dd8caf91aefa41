"""``python -m bench.table_export_scaleout`` cannot rot: its quick run, every row of its report.

No timing is asserted: the figures are only ``make bench``'s to report.
"""

import json
from pathlib import Path

from tests.e2e.quick_bench import run_quick


def test_the_quick_scaleout_run_exports_every_item_each_way_and_reports_each(
    tmp_path: Path,
) -> None:
    stdout = run_quick("bench.table_export_scaleout", tmp_path)
    table = (tmp_path / "table_export_scaleout.md").read_text()
    assert stdout == table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[:2] for row in rows[1:]] == [
        ["| single invocation (4 threads)", "1"],
        ["| fanned out", "1"],
        ["| fanned out", "2"],
        ["| managed export (moto's, not AWS's)", "—"],
    ]
    results = json.loads((tmp_path / "table_export_scaleout.json").read_text())
    fanned = [phase for phase in results["phases"] if phase["mode"] == "fanned out"]
    # Each environment exported one segment, and each segment's invocation was timed.
    assert [len(phase["env_seconds"]) for phase in fanned] == [1, 2]
    assert all(phase["items"] == results["size"] for phase in results["phases"])
