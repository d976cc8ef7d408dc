"""The happens-before model on hand-built step records: dependence, the relation, races.

These run on any Python (no runtime, no sys.monitoring): the model reads step records only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from explorer._footprint import UNKNOWN, Access, StepRecord
from explorer._happens_before import (
    LOOP,
    MAIN,
    RunAnalysis,
    StepTuple,
    dependent,
    races,
    recorded_steps,
    step_footprints,
)

X_W: Access = (1, "x", "w")
X_R: Access = (1, "x", "r")
Y_W: Access = (1, "y", "w")
WHOLE_R: Access = (1, None, "r")
OTHER_W: Access = (2, "x", "w")


def _step(process: str, *accesses: Access, enabler: int | None = None,
          point: int | None = None) -> StepRecord:
    return StepRecord(process, set(accesses), enabler, point)


def _dependent(a: StepRecord, b: StepRecord) -> bool:
    first, second = step_footprints([a, b])
    return dependent(first, second)


def test_steps_are_dependent_when_they_touch_the_same_item_and_one_writes() -> None:
    assert _dependent(_step("a", X_W), _step("b", X_R))
    assert _dependent(_step("a", X_W), _step("b", X_W))
    assert _dependent(_step("a", X_W), _step("b", WHOLE_R))  # the whole object: every item


def test_steps_are_independent_when_they_only_read_or_touch_different_things() -> None:
    assert not _dependent(_step("a", X_R), _step("b", X_R))
    assert not _dependent(_step("a", X_W), _step("b", Y_W))
    assert not _dependent(_step("a", X_W), _step("b", OTHER_W))  # same item, other object


def test_an_unknown_footprint_is_dependent_on_every_step_that_touches_something() -> None:
    assert _dependent(_step("a", UNKNOWN), _step("b", X_R))
    assert not _dependent(_step("a", UNKNOWN), _step("b"))  # touches nothing at all


def test_steps_that_queue_conflicting_callbacks_are_dependent() -> None:
    # Neither task's own step touches anything, but the callbacks they queue write x: the
    # order of the two tasks decides the order of the callbacks.
    steps = [_step("a"), _step("b"), _step(LOOP, X_W, enabler=0), _step(LOOP, X_W, enabler=1)]
    footprints = step_footprints(steps)
    assert footprints[0] == ({}, {1: [("x", "w")]})
    assert dependent(footprints[0], footprints[1])
    assert RunAnalysis(steps).races[0] == (0, 1)


def test_a_callback_still_queued_at_the_end_makes_every_step_queue_anything() -> None:
    steps = [_step("a", X_W), _step("b", Y_W)]
    assert races(steps) == []
    assert RunAnalysis(steps, pending=True).races == [(0, 1)]


def test_the_relation_of_a_small_run() -> None:
    steps = [
        _step("a", X_W),              # 0
        _step("b", Y_W),              # 1: independent of 0
        _step("a", Y_W),              # 2: after 0 (program order), after 1 (dependent)
        _step("c", enabler=1),        # 3: scheduled by 1, touches nothing
        _step("b", X_R),              # 4: after 1 (program order), after 0 (dependent)
    ]
    analysis = RunAnalysis(steps)
    hb = analysis.happens_before
    assert not hb(0, 1) and not hb(1, 0)
    assert hb(0, 2) and hb(1, 2)
    assert hb(1, 3) and not hb(0, 3)
    assert hb(0, 4) and hb(1, 4)
    assert not hb(2, 4) and not hb(3, 4)  # 2 wrote y, 3 touched nothing: both commute with 4
    assert analysis.races == [(0, 4), (1, 2)]


def test_a_race_is_not_reported_when_another_path_orders_the_pair() -> None:
    steps = [_step("a", X_W), _step("b", X_W), _step("c", X_W)]
    analysis = RunAnalysis(steps)
    assert analysis.races == [(0, 1), (1, 2)]  # (0, 2) is ordered through 1
    assert analysis.happens_before(0, 2)


def test_the_main_tasks_last_step_ends_the_run() -> None:
    # Independent steps, but whatever is still pending when main finishes never runs.
    steps = [_step(MAIN), _step("a", X_W), _step(MAIN, Y_W)]
    assert races(steps) == [(1, 2)]
    assert races([*steps, _step("b")]) == []  # main's step is not the last one


def test_reversal_and_initials_follow_the_source_set_definitions() -> None:
    steps = [
        _step("a", X_W),              # 0: races with 3
        _step("b", Y_W),              # 1: independent of 0
        _step("c", X_R, enabler=0),   # 2: scheduled by 0
        _step("d", X_W, Y_W),         # 3
    ]
    analysis = RunAnalysis(steps)
    assert (2, 3) in analysis.races
    assert analysis.reversal(0, 2) == [1, 2]
    assert analysis.reversal(1, 3) == [2, 3]
    assert analysis.initials([1, 2]) == ["b", "c"]
    assert analysis.initials([0, 2, 3]) == ["a"]


class _View:
    def __init__(self, steps: list[StepTuple] | None) -> None:
        self.steps = steps

    def process(self, index: int) -> str:
        return "a"

    def recorded_steps(self) -> list[StepTuple] | None:
        return self.steps


def test_recorded_steps_reads_the_view() -> None:
    running: list[StepTuple] = [("a", {X_W}, None, 0)]
    assert recorded_steps(_View(running)) == running
    assert recorded_steps(_View(None)) is None


# A reference implementation, quadratic and obviously right, checked against the model on
# seeded random runs: every direct predecessor of a step, then the transitive closure.

def _reference(steps: Sequence[StepRecord],
               pending: bool) -> tuple[list[int], list[tuple[int, int]]]:
    footprints = step_footprints(steps, pending=pending)
    end = len(steps) - 1 if steps and steps[-1].process == MAIN else -1
    before: list[set[int]] = []
    found: list[tuple[int, int]] = []
    for j, step in enumerate(steps):
        causal = {i for i in range(j) if steps[i].process == step.process}
        if step.enabler is not None:
            causal.add(step.enabler)
        racing = {i for i in range(j) if steps[i].process != step.process
                  and (dependent(footprints[i], footprints[j]) or j == end)}
        direct = causal | racing
        closure = set().union(*(before[i] | {i} for i in direct)) if direct else set()
        before.append(closure)
        for i in racing - causal:  # a causal predecessor can never be reordered
            others = set().union(*(before[k] | {k} for k in direct if k != i))
            if i not in others:
                found.append((i, j))
    bits = [sum(1 << i for i in closure) for closure in before]
    return bits, sorted(found)


def _random_run(rng: random.Random) -> list[StepRecord]:
    accesses: list[Access] = [X_W, X_R, Y_W, WHOLE_R, OTHER_W, UNKNOWN]
    steps = []
    for j in range(rng.randint(1, 9)):
        process = rng.choice(["a", "b", "c", LOOP, MAIN])
        enabler = rng.randrange(j) if j and rng.random() < 0.3 else None
        footprint = set(rng.sample(accesses, rng.randint(0, 2)))
        steps.append(StepRecord(process, footprint, enabler, None))
    return steps


def test_the_model_agrees_with_the_definition_on_random_runs() -> None:
    rng = random.Random(14)
    for _ in range(400):
        steps = _random_run(rng)
        pending = rng.random() < 0.2
        analysis = RunAnalysis(steps, pending=pending)
        assert (analysis.before, analysis.races) == _reference(steps, pending), steps
        for j, bits in enumerate(analysis.before):
            assert bits < 1 << j  # only earlier steps happen before a step
            for i in range(j):
                if (bits >> i) & 1:  # closed: what happens before i happens before j
                    assert analysis.before[i] & ~bits == 0
