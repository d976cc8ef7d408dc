"""Same scenario + same schedule => same trace: in-process, across processes, and checked."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

import explorer
from examples import bank, counter, transfer
from tests.conftest import ROOT

CASES = [
    (bank, "double_spend", "v1:0=1,1=1"),
    (counter, "lost_update", "v1:0=1,1=2"),
    (transfer, "abba", "v1:0=1,1=1"),
    (counter, "lost_update_fixed", "v1:2=1,5=2"),
]

_CHILD = """
import json, sys, importlib
import explorer
sys.path.insert(0, {root!r})
out = []
for module, name, schedule in json.loads(sys.argv[1]):
    fn = getattr(importlib.import_module(module), name)
    result = explorer.run(fn, schedule=schedule)
    out.append([result.trace.hash(), result.outcome.kind, str(result.schedule)])
print(json.dumps(out))
"""


def _in_process() -> list[list[str]]:
    out = []
    for module, name, schedule in CASES:
        result = explorer.run(getattr(module, name), schedule=schedule)
        out.append([result.trace.hash(), result.outcome.kind, str(result.schedule)])
    return out


def test_same_schedule_same_trace_in_process() -> None:
    first = _in_process()
    assert first == _in_process()
    assert len({row[0] for row in first}) == len(first)


def test_same_schedule_same_trace_in_a_fresh_process() -> None:
    cases = [[m.__name__, n, s] for m, n, s in CASES]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=str(ROOT)), json.dumps(cases)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )
    assert json.loads(proc.stdout) == _in_process()


def test_random_strategy_is_reproducible_from_its_seed() -> None:
    def failing_schedule(seed: int) -> str:
        with pytest.raises(explorer.ScheduleFailure) as info:
            explorer.explore(counter.lost_update, seed=seed)
        return f"{info.value.found_after}:{info.value.schedule}"

    assert failing_schedule(11) == failing_schedule(11)


_calls = {"n": 0}


async def _depends_on_a_global() -> None:
    _calls["n"] += 1  # state kept between runs: the schedule does not decide it
    if _calls["n"] % 2 == 0:
        await asyncio.sleep(0)
    await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))


def test_nondeterminism_is_detected_and_explained() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_depends_on_a_global, max_schedules=50)
    assert info.value.kind == "nondeterminism"
    assert "state kept between runs" in str(info.value)


def test_failure_json_form_round_trips() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(bank.double_spend, strategy="systematic")
    data = json.loads(info.value.to_json_text())
    assert data["schedule"] == str(info.value.schedule)
    assert data["outcome"]["kind"] == "assertion"
    assert data["trace_hash"] == info.value.trace.hash()
    assert len(data["trace"]) == len(info.value.trace)
