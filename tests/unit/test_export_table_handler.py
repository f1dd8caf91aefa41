"""ExportTableFunction's own logic, exactly (mutation survivors): run ids, the time it gives a run,
what it logs and counts, and its entry point. A fake exporter records what the handler asks."""

import os
from dataclasses import dataclass, field
from typing import Any

import pytest
import time_machine

from app.handlers import export_table
from app.observability import metrics
from app.operations.export_table import TableExportOutcome
from app.operations.requests import InvalidRequestError
from app.services import LeaseLostError
from tests.log_capture import lambda_output
from tools.emulator.lambda_context import LambdaContext

pytestmark = pytest.mark.usefixtures("fresh_metrics")

RUN_ID_RULE = "run_id must be 1-100 letters, digits, '_', '.' or '-'"


@dataclass
class _Context:
    remaining_millis: int
    aws_request_id: str = "req-1"
    function_name: str = "items-prod-ExportTableFunction-1A2B"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass
class _Exporter:
    outcome: TableExportOutcome | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    fan_out: bool = False

    def run(self, run_id: str, owner: str, **kwargs: Any) -> TableExportOutcome:
        return self._called(run_id=run_id, owner=owner, **kwargs)

    def start(self, run_id: str, **kwargs: Any) -> TableExportOutcome:
        return self._called(started=run_id, **kwargs)

    def run_segment(self, run_id: str, index: int, owner: str, **kwargs: Any) -> TableExportOutcome:
        return self._called(run_id=run_id, segment=index, owner=owner, **kwargs)

    def _called(self, **call: Any) -> TableExportOutcome:
        self.calls.append(call)
        if self.outcome is None:
            raise LeaseLostError(str(call.get("run_id")))
        return self.outcome


@pytest.mark.parametrize("raw", ["", "-starts-with-dash", "a" * 101, "has space", 7, None])
def test_a_bad_run_id_is_rejected_with_the_rule(raw: object) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        export_table._parse_run_id(raw)
    assert str(raised.value) == RUN_ID_RULE


def test_a_scheduled_event_names_its_run_after_its_time() -> None:
    event = {"source": "aws.events", "time": "2026-11-23T09:00:00Z"}
    assert export_table._run_id_for(event, _Context(0)) == "scheduled-2026-11-23T09-00-00Z"


def test_a_time_without_the_scheduler_source_is_not_a_schedule() -> None:
    event = {"time": "2026-11-23T09:00:00Z"}
    with pytest.raises(InvalidRequestError, match=r"^unknown field\(s\) 'time'; "):
        export_table._run_id_for(event, _Context(0, "req-9"))


def test_an_empty_direct_invoke_starts_a_run_of_its_own() -> None:
    assert export_table._run_id_for({}, _Context(0, "req-9")) == "manual-req-9"


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"runid": "run.1"}, "'runid'"),
        ({"Records": "x"}, "'Records'"),
        ({"run_id": "run.1", "segment": 2}, "'segment'"),
        ({"source": "aws.events"}, "'source'"),
        ({f"k{i}": i for i in range(7)}, "'k0', 'k1', 'k2', 'k3', 'k4'"),
        ({"x" * 70: 1}, "'" + "x" * 64 + "'"),
    ],
)
def test_a_direct_invoke_with_a_typo_starts_nothing_and_says_what_it_takes(
    monkeypatch: pytest.MonkeyPatch, event: dict[str, Any], named: str
) -> None:
    """Taken for {}, a misspelt ``run_id`` would start a whole-table export nobody asked for."""
    exporter = _Exporter(TableExportOutcome("run.1", "complete"))
    monkeypatch.setattr(export_table.runtime, "table_exporter", lambda: exporter)
    context = LambdaContext("items-test-ExportTableFunction", timeout_seconds=60)

    with lambda_output():
        response = export_table.lambda_handler(event, context)  # type: ignore[arg-type]

    assert response == {
        "status": "rejected",
        "message": f'unknown field(s) {named}; {{}} starts a run, {{"run_id": "..."}} resumes one',
    }
    assert exporter.calls == []


def test_an_explicit_run_id_is_checked_and_kept() -> None:
    assert export_table._run_id_for({"run_id": "run.1"}, _Context(0)) == "run.1"
    with pytest.raises(InvalidRequestError):
        export_table._run_id_for({"run_id": "bad id"}, _Context(0))


def test_the_run_gets_the_time_left_less_the_reserve_and_a_lease_a_minute_longer() -> None:
    exporter = _Exporter(TableExportOutcome("r", "complete", items=3))
    context = _Context(remaining_millis=45_020)  # 45 whole seconds: 45.02 s, not 44 nor 45.02

    export_table._export("r", context, exporter)  # type: ignore[arg-type]

    (call,) = exporter.calls
    assert call["lease_seconds"] == 45 + 60
    assert call["seconds_left"]() == pytest.approx(45.02 - export_table.RESERVE_SECONDS)
    assert (call["run_id"], call["owner"]) == ("r", "req-1")
    context.remaining_millis = 31_000
    assert call["seconds_left"]() == pytest.approx(31.0 - export_table.RESERVE_SECONDS)


def test_a_finished_run_logs_its_outcome_and_counts_its_items() -> None:
    exporter = _Exporter(TableExportOutcome("r", "complete", items=3, manifest_key="m"))
    with lambda_output() as output:
        outcome = export_table._export("r", _Context(60_000), exporter)  # type: ignore[arg-type]

    assert outcome == TableExportOutcome("r", "complete", items=3, manifest_key="m")
    (line,) = [record for record in output.records() if record.get("message") == "table export"]
    assert (line["level"], line["run_id"], line["status"], line["items"]) == (
        "INFO",
        "r",
        "complete",
        3,
    )
    assert metrics.metric_set["TableExportItems"]["Value"] == [3.0]


def test_a_segment_that_lost_its_lease_says_which_segment_in_its_warning() -> None:
    with lambda_output() as output:
        export_table._export("r", _Context(60_000), _Exporter(), 7)  # type: ignore[arg-type]

    (line,) = output.at("WARNING")
    assert (line["run_id"], line["segment"]) == ("r", 7)


def test_a_lost_lease_is_superseded_with_one_warning() -> None:
    with lambda_output() as output:
        outcome = export_table._export("r", _Context(60_000), _Exporter())  # type: ignore[arg-type]

    assert outcome == TableExportOutcome("r", "superseded")
    (line,) = output.at("WARNING")
    assert (line["message"], line["run_id"]) == ("another invocation took over the run", "r")
    assert "TableExportItems" not in metrics.metric_set


def test_the_entry_point_hands_the_event_to_the_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = _Exporter(TableExportOutcome("run.1", "complete"))
    monkeypatch.setattr(export_table.runtime, "table_exporter", lambda: exporter)
    context = LambdaContext("items-test-ExportTableFunction", timeout_seconds=60)

    with lambda_output():
        response = export_table.lambda_handler({"run_id": "run.1"}, context)  # type: ignore[arg-type]

    assert response == {"run_id": "run.1", "status": "complete", "items": 0, "manifest_key": None}
    assert [call["run_id"] for call in exporter.calls] == ["run.1"]


NOW = 1_790_000_000


def _emf(output: Any, name: str) -> list[dict[str, Any]]:
    """The EMF documents in the log that carry metric ``name``."""
    return [
        record
        for record in output.records()
        if any(
            metric["Name"] == name
            for directive in record.get("_aws", {}).get("CloudWatchMetrics", [])
            for metric in directive["Metrics"]
        )
    ]


@time_machine.travel(NOW, tick=False)
def test_a_run_handing_itself_on_publishes_its_age_for_its_alarm() -> None:
    started = NOW - 5400
    exporter = _Exporter(TableExportOutcome("r", "continuing", items=9, started_at=started))
    with lambda_output() as output:
        export_table._export("r", _Context(60_000), exporter)  # type: ignore[arg-type]

    (document,) = _emf(output, export_table.RUN_AGE_METRIC)
    assert document[export_table.RUN_AGE_METRIC] == [5400.0]
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    assert directive["Metrics"] == [{"Name": export_table.RUN_AGE_METRIC, "Unit": "Seconds"}]
    # What the template's TableExportTooLongAlarm names (tests/infra/test_alarms.py ties them).
    assert sorted(directive["Dimensions"][0]) == ["function_name", "service"]
    assert document["function_name"] == "items-prod-ExportTableFunction-1A2B"
    (line,) = [record for record in output.records() if record.get("message") == "table export"]
    assert "started_at" not in line


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(("started", "age"), [(NOW, 0.0), (NOW + 2, 0.0), (NOW - 1, 1.0)])
def test_a_run_s_age_counts_whole_seconds_and_never_below_zero(started: int, age: float) -> None:
    """A start "later" than now is another machine's clock running ahead: age 0, not negative."""
    exporter = _Exporter(TableExportOutcome("r", "continuing", items=1, started_at=started))
    with lambda_output() as output:
        export_table._export("r", _Context(60_000), exporter)  # type: ignore[arg-type]

    (document,) = _emf(output, export_table.RUN_AGE_METRIC)
    assert document[export_table.RUN_AGE_METRIC] == [age]


@pytest.mark.parametrize(
    "outcome",
    [
        TableExportOutcome("r", "complete", items=3, manifest_key="m", started_at=NOW - 60),
        TableExportOutcome("r", "busy", started_at=NOW - 60),
        TableExportOutcome("r", "continuing", items=3),
    ],
    ids=["complete", "busy", "never-stored"],
)
def test_only_a_continuing_run_publishes_its_age(outcome: TableExportOutcome) -> None:
    with lambda_output() as output:
        export_table._export("r", _Context(60_000), _Exporter(outcome))  # type: ignore[arg-type]

    assert _emf(output, export_table.RUN_AGE_METRIC) == []


def test_the_answer_leaves_the_start_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = TableExportOutcome("run.1", "continuing", items=4, started_at=NOW)
    monkeypatch.setattr(export_table.runtime, "table_exporter", lambda: _Exporter(outcome))
    context = LambdaContext("items-test-ExportTableFunction", timeout_seconds=60)

    with lambda_output():
        response = export_table.lambda_handler({"run_id": "run.1"}, context)  # type: ignore[arg-type]

    assert response == {"run_id": "run.1", "status": "continuing", "items": 4, "manifest_key": None}


@pytest.mark.parametrize("raw", [-1, 1000, "3", 2.0, True, None])
def test_a_bad_segment_is_rejected(raw: object) -> None:
    with pytest.raises(InvalidRequestError, match="segment must be a whole number"):
        export_table._parse_segment(raw)


def test_the_last_segment_is_accepted_and_the_refusal_names_the_range() -> None:
    last = export_table.MAX_SEGMENTS - 1
    assert export_table._parse_segment(last) == last
    assert export_table._parse_segment(0) == 0
    with pytest.raises(InvalidRequestError) as raised:
        export_table._parse_segment(export_table.MAX_SEGMENTS)
    assert str(raised.value) == f"segment must be a whole number from 0 to {last}"


def test_a_start_resends_its_segment_messages_only_when_asked() -> None:
    exporter = _Exporter(TableExportOutcome("r", "fanned-out"), fan_out=True)
    export_table._export("r", _Context(60_000), exporter)  # type: ignore[arg-type]
    assert exporter.calls == [{"started": "r", "resend": False}]


def test_fanned_out_a_start_only_fans_out_and_a_segment_message_runs_its_segment() -> None:
    exporter = _Exporter(TableExportOutcome("r", "fanned-out"), fan_out=True)
    export_table._export("r", _Context(60_000), exporter, resend=True)  # type: ignore[arg-type]
    export_table._export("r", _Context(60_000), exporter, 2)  # type: ignore[arg-type]
    started, segment = exporter.calls
    assert started == {"started": "r", "resend": True}
    assert (segment["run_id"], segment["segment"], segment["owner"]) == ("r", 2, "req-1")
    assert segment["lease_seconds"] == 60 + 60


def test_a_segment_that_lost_its_lease_is_superseded_and_says_which() -> None:
    outcome = export_table._export("r", _Context(60_000), _Exporter(), 3)  # type: ignore[arg-type]
    assert outcome == TableExportOutcome("r", "superseded", segment=3)
