"""The scale benchmark's helpers measure what they say (counts, not durations)."""

from __future__ import annotations

import asyncio

import explorer
from benchmarks import throughput


def test_fan_out_makes_every_task_yield_the_given_number_of_times() -> None:
    result = explorer.explore(throughput.fan_out(4, awaits=3), strategy="random", seed=0,
                              max_schedules=5)
    assert result.failure is None
    # Per task: its first step and one after each of its three yields (the last finishes
    # it), then gather's done callback for it; main's start and its wake-up.
    assert result.steps == 5 * (4 * (1 + 3 + 1) + 2)


def test_step_cost_counts_the_steps_of_one_run() -> None:
    cost = throughput.step_cost(3, rounds=1, steps_per_round=100)
    assert cost.tasks == 3
    assert cost.steps_per_run == 3 * (1 + throughput.SCALE_AWAITS + 1) + 2
    assert cost.ratio > 0 and cost.controlled_us > 0 and cost.stock_us > 0
    assert cost.unchecked > 0


def test_strategy_rates_are_relative_to_random() -> None:
    rates = throughput.strategy_rates(3, rounds=1, strategies=("pct", "random"),
                                      steps_per_round=100)
    assert set(rates) == {"pct", "random"}
    assert rates["random"] == 1.0
    assert rates["pct"] > 0


def test_per_run_cost_runs_the_scenario_on_both_loops() -> None:
    runs = {"n": 0}

    async def scenario() -> None:
        runs["n"] += 1
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    assert throughput.per_run_cost(scenario, 4, rounds=1) > 0
    assert runs["n"] >= 8  # four stock runs, four schedules (and the check's replays)


def test_the_runs_alone_are_the_schedules_without_a_replay() -> None:
    runs = {"n": 0}

    async def scenario() -> None:
        runs["n"] += 1
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    assert throughput._runs_time(scenario, 5, seed=1) > 0
    assert runs["n"] == 5  # no determinism check replays any of them


def test_one_section_replaces_its_own_headings_and_keeps_the_others() -> None:
    # `python -m benchmarks.run --only SECTION` rewrites that section of BENCHMARKS.md,
    # not the whole file: the other sections keep what was measured for them.
    from benchmarks.run import splice

    old = ("# Benchmarks\n\nGenerated ...\n\n## Throughput\n\nold rate\n\n### At scale\n\nold\n\n"
           "## Search\n\nsearch table\n")
    new = "## Throughput\n\nnew rate\n\n### At scale\n\nnew\n\n## Linearizability\n\nlin\n"
    text = splice(old, new)
    assert text == ("# Benchmarks\n\nGenerated ...\n\n## Throughput\n\nnew rate\n\n"
                    "### At scale\n\nnew\n\n## Search\n\nsearch table\n\n"
                    "## Linearizability\n\nlin\n")
    assert splice(text, new) == text  # regenerating again changes nothing
