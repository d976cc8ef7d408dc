"""The SCTBench ports in the C originals' shape: each finds its bug, each fixed twin passes,
and the shape is the C harness's (tasks created one by one, joined in order)."""

from __future__ import annotations

import pytest

import explorer
from benchmarks.sctbench import ALL_PROGRAMS, C_SHAPE, Program, by_name, published

# The largest ports (40 and 50 tasks) cost tens of milliseconds a run: the benchmark
# measures them; here they run a few schedules each.
SMALL = [p for p in C_SHAPE if p.tasks <= 20]


@pytest.mark.parametrize("program", SMALL, ids=lambda p: p.name)
def test_c_shaped_port_fails_under_surw(program: Program) -> None:
    result = explorer.explore(program.buggy, strategy="surw", seed=0, max_schedules=300,
                              raise_on_failure=False, shrink=False)
    assert result.failure is not None, f"{program.name}: bug not found in 300 schedules"
    assert "AssertionError" in str(result.failure)


@pytest.mark.parametrize("program", C_SHAPE, ids=lambda p: p.name)
def test_c_shaped_fixed_twin_passes(program: Program) -> None:
    schedules = 40 if program in SMALL else 8
    for strategy in ("surw", "random"):
        result = explorer.explore(program.fixed, strategy=strategy, seed=1,
                                  max_schedules=schedules, raise_on_failure=False,
                                  shrink=False)
        assert result.failure is None, f"{program.name} fixed failed under {strategy}"


def test_c_shaped_ports_create_tasks_one_by_one() -> None:
    # The stock schedule runs each task as soon as it is created, up to its first yield,
    # before main creates the next: the first setter has written `a` before the checker
    # exists, which the gather ports (all tasks started together) never do.
    seen: list[str] = []

    class Record(explorer.strategies.Strategy):
        name = "record"

        def __init__(self) -> None:
            self.started = False

        def start_run(self) -> bool:
            if self.started:
                return False
            self.started = True
            return True

        def choose(self, count: int, view: explorer._runtime.PointView) -> int:
            seen.append(",".join(sorted(view.process(i) for i in range(count))))
            return 0

        def coverage(self) -> str:
            return "one stock run"

    explorer.explore(by_name("reorder_c_2+1").fixed, strategy=Record(), max_schedules=1,
                     shrink=False)
    first = seen[0].split(",")
    assert first == ["main", "main/_setter#1"], seen[:3]
    assert any("main/_checker#1" in point for point in seen)


def test_c_shaped_splits_match_the_published_programs() -> None:
    names = {p.name: p for p in C_SHAPE}
    assert names["reorder_c_10+10"].published_as == "reorder_20"
    assert names["reorder_c_9+1"].published_as == "reorder_10"
    assert names["twostage_c_10+10"].published_as == "twostage_20"
    for program in C_SHAPE:
        assert program.shape == "c"
        if program.published_as is not None:
            assert published.FIGURES[program.published_as]
    assert len({p.name for p in ALL_PROGRAMS}) == len(ALL_PROGRAMS)
