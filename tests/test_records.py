"""A found failure as data: its record reads back exactly from JSON, and damaged input is
refused naming the field."""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import explorer
from examples import bank, transfer
from explorer._failure import ScheduleFailure
from explorer._failure_record import FailureRecord, FailureReport, RecordError
from explorer._html import render_report
from explorer._parallel import JobResult, SerialExecutor, explore_target
from explorer._summary import SliceResult, Summary, SummaryError, read_summary
from explorer._targets import parse_target

Scenario = Callable[[], Coroutine[Any, Any, None]]


def _failure(fn: Scenario, **options: Any) -> ScheduleFailure:
    result = explorer.explore(fn, raise_on_failure=False, **options)
    assert result.failure is not None
    return result.failure


def _through_json(data: object) -> Any:
    return json.loads(json.dumps(data))


def _round_trips(failure: ScheduleFailure) -> FailureRecord:
    """The failure's record, checked to read back equal through JSON text."""
    record = failure.record()
    data = _through_json(failure.to_json())
    assert record.to_json() == failure.to_json()
    again = FailureRecord.from_json(data)
    assert again == record
    assert _through_json(again.to_json()) == data
    return record


def test_a_race_found_by_dpor_round_trips_with_its_deciding_pairs() -> None:
    # As found, not shrunk: the schedule with fewest switches runs the mobile withdrawal
    # whole between the other's check and debit, where no race of undeclared code is
    # left to judge; the one found by DPOR keeps a deciding pair to round-trip.
    failure = _failure(bank.double_spend, strategy="dpor", deviation_bound=2, shrink=False)
    record = _round_trips(failure)
    assert record.outcome.kind == "assertion" and record.outcome.exc_type
    assert record.deciding and set(record.deciding) <= set(record.conflicts)
    assert [r.description for r in record.races] == list(record.conflicts)
    assert any(r.decides for r in record.races)
    assert record.trace is not None and len(record.trace) == len(failure.trace)
    assert record.trace_hash == failure.trace.hash()
    assert record.strategy["name"] == "dpor"


def test_a_shrunk_failure_keeps_its_shrink_report() -> None:
    failure = _failure(bank.double_spend, strategy="random", seed=3, max_schedules=200)
    record = _round_trips(failure)
    assert record.shrink is not None and record.shrink == failure.shrink
    assert record.strategy["seed"] == 3


def test_a_deadlock_round_trips_with_its_wait_for_graph() -> None:
    failure = _failure(transfer.abba, strategy="systematic")
    record = _round_trips(failure)
    graph = record.outcome.wait_for
    assert graph is not None
    assert graph.cycle == tuple(failure.outcome.details["cycle"])
    assert [[e.source, e.target, e.label] for e in graph.edges] == \
        failure.outcome.details["edges"]
    assert {w.task for w in graph.waits} >= set(graph.cycle)
    assert all(w.location is not None for w in graph.waits)


async def _spin() -> None:
    async def spin() -> None:
        count = 0
        while True:  # never awaits
            count += 1

    task = asyncio.create_task(spin())
    await asyncio.sleep(0)
    await task


@pytest.mark.slow
def test_a_hang_round_trips() -> None:
    failure = _failure(_spin, run_timeout=0.3)
    record = _round_trips(failure)
    assert record.outcome.kind == "hang"
    assert record.outcome.details["task"] == failure.outcome.details["task"]
    assert record.outcome.wait_for is None


def test_a_failure_through_a_web_stack_round_trips() -> None:
    web = pytest.importorskip("examples.web.fastapi_price_cache")
    record = _round_trips(_failure(web.torn_price, strategy="systematic"))
    assert record.outcome.kind == "assertion"
    assert any(s.task != "loop" for s in record.steps)


def test_a_failure_read_back_is_the_same_failure() -> None:
    failure = _failure(bank.double_spend, strategy="systematic")
    report = failure.report(corpus_path="corpus/x.json", message=True)
    again = ScheduleFailure.from_record(FailureReport.from_json(_through_json(
        report.to_json())))
    assert again.record() == failure.record()
    assert str(again) == str(failure)
    assert again.replay_line() == failure.replay_line()
    assert again.outcome.signature() == failure.outcome.signature()
    assert again.trace.hash() == failure.trace.hash()  # locations keep their base names


def test_a_job_result_round_trips(tmp_path: Path) -> None:
    buggy = parse_target("examples.counter:lost_update")
    result = explore_target(buggy, {"strategy": "systematic", "max_schedules": 50},
                            SerialExecutor())
    assert result.failure is not None
    result.corpus_path, result.new_in_corpus = str(tmp_path / "entry.json"), True
    for trace in (True, False):
        data = _through_json(result.to_json(trace=trace))
        again = JobResult.from_json(data)
        assert _through_json(again.to_json(trace=trace)) == data
        assert again.failure is not None and str(again.failure) == str(result.failure)
        assert again.settings == result.settings and again.corpus_path == result.corpus_path
        assert ("trace" in data["failure"]) is trace
    passed = explore_target(parse_target("examples.counter:lost_update_fixed"),
                            {"strategy": "systematic", "max_schedules": 5}, SerialExecutor())
    data = _through_json(passed.to_json())
    assert JobResult.from_json(data).failure is None
    assert _through_json(JobResult.from_json(data).to_json()) == data


@pytest.mark.parametrize(("path", "value", "field"), [
    (("outcome", "location", "line"), "12", "outcome.location.line"),
    (("outcome", "kind"), 7, "outcome.kind"),
    (("trace", 1, "decision"), [1], "trace[1].decision"),
    (("trace", 0, "start"), "bank.py:3", "trace[0].start"),
    (("strategy", "seed"), {"x": 1}, "strategy.seed"),
    (("races",), "many", "races"),
    (("shrink", "runs"), True, "shrink.runs"),
])
def test_a_damaged_failure_is_refused_naming_the_field(
        path: tuple[str | int, ...], value: object, field: str) -> None:
    data = _through_json(_failure(bank.double_spend, strategy="dpor",
                                  deviation_bound=2).to_json())
    data["shrink"] = data["shrink"] or {"original_deviations": 1, "deviations": 1,
                                        "original_steps": 2, "steps": 2, "runs": 1,
                                        "proven_minimal": True, "budget_exhausted": False}
    FailureRecord.from_json(data)  # undamaged, it reads
    damaged = copy.deepcopy(data)
    into: Any = damaged
    for key in path[:-1]:
        into = into[key]
    into[path[-1]] = value
    with pytest.raises(RecordError, match=re.escape(f'field "{field}" is ')):
        FailureRecord.from_json(damaged)


def test_a_damaged_deadlock_graph_is_refused_when_read() -> None:
    data = _through_json(_failure(transfer.abba, strategy="systematic").to_json())
    data["outcome"]["details"]["edges"][0] = ["only one end"]
    with pytest.raises(RecordError, match=r'field "outcome.details.edges\[0\]" is list'):
        FailureRecord.from_json(data)


def _summary(*failures: ScheduleFailure) -> dict[str, Any]:
    details = [f.report().to_json() for f in failures]
    summary: dict[str, Any] = _through_json({
        "format": "explorer-nightly", "version": 1, "complete": True, "errors": [],
        "scenarios": [], "corpus": [], "failure_details": details,
        "failures": [{"scenario": f.scenario, "kind": f.kind, "location": "x.py:1",
                      "schedule": str(f.schedule), "source": "explore"} for f in failures]})
    return summary


def test_a_damaged_summary_json_names_the_file_and_the_field(tmp_path: Path) -> None:
    data = _summary(_failure(bank.double_spend, strategy="systematic"),
                    _failure(transfer.abba, strategy="systematic"))
    data["failure_details"][1]["outcome"]["location"]["line"] = "twelve"
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SummaryError) as info:
        read_summary(path)
    message = str(info.value)
    assert str(path) in message and "failure_details[1]" in message
    assert 'field "outcome.location.line" is str \'twelve\'' in message
    assert "give the file" in message
    broken = {"id": "explore:x", "kind": "explore", "status": "failed", "failure": []}
    with pytest.raises(SummaryError, match="failure: the record is list"):
        SliceResult.from_json(broken)


def test_summaries_and_their_report_are_the_same_read_back() -> None:
    spend = _failure(bank.double_spend, strategy="systematic")
    abba = _failure(transfer.abba, strategy="systematic")
    summary = Summary.from_json(_summary(spend, abba))
    assert summary.failure_details == [spend.report(), abba.report()]
    again = Summary.from_json(_through_json(summary.to_json()))
    assert again == summary
    assert render_report([again]) == render_report([summary])
    result = SliceResult("explore:x", "explore", "failed", failure=spend.report())
    assert SliceResult.from_json(_through_json(result.to_json())) == result
