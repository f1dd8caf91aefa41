"""``make bench`` cannot rot: a tiny run of every phase, and what its figures rest on.

No timing is asserted anywhere: the benchmark's figures are ratios measured on a noisy machine and
only ``make bench`` reports them. This checks that the benchmark runs, that its report has every
figure, that moto's faster Scan (which makes 100k-item exports measurable) returns moto's own
pages, and that ``sam build`` ships bytecode for the runtime the template names.
"""

import json
import random
import re
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeSerializer
from moto import mock_aws

from bench.fast_moto import fast_scan
from tests.conftest import REGION
from tests.e2e.quick_bench import ROOT, run_quick
from tools.emulator import sam_template

# --- The quick run --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m bench --quick``, a subprocess as in ``make bench`` (its own embedded AWS)."""
    out = tmp_path_factory.mktemp("bench")
    stdout = run_quick("bench", out)
    assert stdout == (out / "latest.md").read_text().split("\n\n", 2)[2]
    return out


def _figures(table: str) -> set[str]:
    return set(re.findall(r"^\| (\d) · ", table, flags=re.MULTILINE))


def test_the_quick_run_reports_every_figure(quick_run: Path) -> None:
    table = (quick_run / "latest.md").read_text()
    # 6 (package size) needs a `sam build`, which the quick run does not make
    assert _figures(table) == {"1", "2", "3", "4", "5", "7"}
    assert "| Figure | Measured | Baseline (same run) | Ratio | Target | Verdict |" in table


def test_the_quick_run_measures_what_the_figures_say(quick_run: Path) -> None:
    results = json.loads((quick_run / "latest.json").read_text())
    for runs in results["cold"].values():
        assert {"src/", "baseline"} <= set(runs)
        for run in (r for variant in runs.values() for r in variant):
            assert run["init_api_calls"] == {}
            assert not {"socket.connect", "socket.getaddrinfo"} & set(run["init_sockets"])
    project, naive = results["sts"]["project"], results["sts"]["naive"]
    assert project["failures"] == naive["failures"] == 0
    assert project["total"]["sts"] <= 4
    assert naive["total"]["sts"] == results["sts"]["invocations"]
    assert project["total"]["clients"] == project["init"]["clients"]
    for kinds in results["warm"].values():
        assert len(kinds["project"]) == len(kinds["baseline"])
    for kinds in results["export"].values():
        assert kinds["project"]
        assert kinds["naive"]
    assert results["imports"]["GetItemFunction"]["src/"]
    # the unhooked inits: every function measured, the hook's too, each with its baseline
    assert set(results["plain"]) == {"GetItemFunction", "PreTrafficHookFunction"}
    for subjects in results["plain"].values():
        assert len(subjects["function"]["init_ms"]) == len(subjects["baseline"]["init_ms"]) == 1
        assert subjects["function"]["modules"] > subjects["baseline"]["modules"]
    get_item = results["plain"]["GetItemFunction"]
    assert len(get_item["function"]["first_ms"]) == len(get_item["baseline"]["first_ms"]) == 1


def test_the_quick_run_writes_the_plot(quick_run: Path) -> None:
    pytest.importorskip("matplotlib")
    assert (quick_run / "table_export.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- moto's Scan, faster --------------------------------------------------------------------------


def _pages(client: Any, table: str, **arguments: Any) -> list[dict[str, Any]]:
    pages, start = [], None
    while True:
        response = client.scan(
            TableName=table, **arguments, **({"ExclusiveStartKey": start} if start else {})
        )
        response.pop("ResponseMetadata")
        pages.append(response)
        start = response.get("LastEvaluatedKey")
        if not start:
            return pages


@pytest.fixture(scope="module")
def tables() -> Iterator[Any]:
    """Two tables (string and number keys) of items of 3-9 KB: pages end by size, or by Limit."""
    with mock_aws():
        client = boto3.Session(region_name=REGION).client("dynamodb")
        serializer, rng = TypeSerializer(), random.Random(5)  # noqa: S311 - test data
        for name, key_type, count in (("strings", "S", 400), ("numbers", "N", 60)):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "item_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "item_id", "AttributeType": key_type}],
                BillingMode="PAY_PER_REQUEST",
            )
            requests = []
            for number in range(count):
                item = {
                    "item_id": f"item-{rng.randint(0, 10**9)}" if key_type == "S" else number * 7,
                    "price": Decimal(rng.randint(0, 10_000)) / 100,
                    "text": "x" * rng.randint(3_000, 9_000),
                    "nested": {"tags": ["a", 1, None], "flag": True},
                    "set": {"b", "a"},
                }
                item_json = {k: serializer.serialize(v) for k, v in item.items()}
                requests.append({"PutRequest": {"Item": item_json}})
            for start in range(0, len(requests), 25):
                client.batch_write_item(RequestItems={name: requests[start : start + 25]})
        yield client


@pytest.mark.parametrize(
    ("table", "arguments"),
    [
        ("strings", {}),
        ("strings", {"Segment": 1, "TotalSegments": 2}),
        ("strings", {"Segment": 0, "TotalSegments": 2, "Limit": 9}),
        ("numbers", {"Limit": 25}),
        ("strings", {"ProjectionExpression": "item_id, price"}),
        (
            "strings",
            {"FilterExpression": "price > :p", "ExpressionAttributeValues": {":p": {"N": "50"}}},
        ),
    ],
    ids=["whole", "segment", "segment-limit", "number-keys", "projection", "filter"],
)
def test_fast_scan_returns_motos_own_pages(
    tables: Any, table: str, arguments: dict[str, Any]
) -> None:
    expected = _pages(tables, table, **arguments)
    with fast_scan():
        assert _pages(tables, table, **arguments) == expected
    assert len(expected) > 1


# --- The build the benchmark measures -------------------------------------------------------------


def _make_variable(name: str) -> str:
    text = (ROOT / "src" / "Makefile").read_text()
    match = re.search(rf"^{name}\s*:?=\s*(\S+)", text, flags=re.MULTILINE)
    assert match, name
    return match.group(1)


def test_sam_build_ships_bytecode_for_the_templates_runtime(template: dict[str, Any]) -> None:
    functions = sam_template.functions(template)
    globals_ = template["Globals"]["Function"]
    assert globals_["Runtime"] == f"python{_make_variable('RUNTIME_VERSION')}"
    assert globals_["Architectures"] == ["arm64"]
    assert _make_variable("PLATFORM").endswith("_aarch64")
    for logical_id, function in functions.items():
        assert function.get("Metadata", {}).get("BuildMethod") == "makefile", logical_id
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    dry_run = subprocess.run(
        [make, "--dry-run", "--no-print-directory", "build-GetItemFunction", "ARTIFACTS_DIR=/a"],
        cwd=ROOT / "src",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--require-hashes" in dry_run
    assert "-m compileall" in dry_run
    assert "--invalidation-mode unchecked-hash" in dry_run
