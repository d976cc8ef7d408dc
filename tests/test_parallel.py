"""The parallel job's hand-off: what a worker returns is plain data, and shares are disjoint."""

from __future__ import annotations

import json

from explorer._parallel import (
    JobResult,
    PartResult,
    SerialExecutor,
    explore_target,
    run_partition,
)
from explorer._parallel._split import Partition
from explorer._settings import Settings
from explorer._targets import parse_target

BUGGY = parse_target("examples.counter:lost_update")
FIXED = parse_target("examples.counter:lost_update_fixed")


def test_a_part_result_crosses_a_process_as_json() -> None:
    settings = Settings(strategy="systematic", max_schedules=50)
    part = run_partition(BUGGY.to_json(), settings.to_json(), 0, 2)
    assert part.failure is not None and part.failure.kind == "assertion"
    assert part.failure.shrink is not None
    again = PartResult.from_json(json.loads(json.dumps(part.to_json())))
    assert again == part


def test_seeded_shares_run_disjoint_seeds() -> None:
    settings = Settings(strategy="random", max_schedules=40, seed=10)
    parts = [run_partition(FIXED.to_json(), settings.to_json(), k, 2) for k in range(2)]
    assert [p.seeds for p in parts] == [(10,), (11,)]
    assert sum(p.schedules for p in parts) == 40
    assert all(p.failure is None and not p.stopped for p in parts)


def test_a_shard_job_says_what_it_covered() -> None:
    result = explore_target(FIXED, {"strategy": "systematic", "max_schedules": 30},
                            SerialExecutor(Partition.parse_shard("2/2")))
    assert isinstance(result, JobResult) and result.ok
    assert result.strategy["shard"] == "2/2"
    assert result.coverage.startswith("shard 2/2's part (first deviation at a scheduling "
                                      "point p with p % 2 == 1)")
    assert result.to_json(trace=False)["settings"] == result.settings.to_json()
