"""The scale benchmark's helpers measure what they say (counts, not durations)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

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


def test_the_peer_is_measured_in_every_round_beside_the_explorer() -> None:
    asked: list[tuple[int, int]] = []

    def peer(runs: int, seed: int) -> float:
        asked.append((runs, seed))
        return 100.0 + seed

    async def scenario() -> None:
        await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))

    row = throughput.measure("two sleeps", scenario, 6, rounds=3, peer=peer)
    assert asked == [(6, 0), (6, 1), (6, 2)]  # the same schedules, one call per round
    assert row.peer_schedules_per_second == 101.0  # the median round
    assert throughput.measure("two sleeps", scenario, 6, rounds=1).peer_schedules_per_second \
        is None


def test_without_the_peer_installed_the_comparison_says_it_was_not_measured(
        tmp_path: Path) -> None:
    from benchmarks import peer
    from benchmarks.run import peer_lines

    assert not peer.installed(tmp_path)
    row = throughput.Throughput("locked counter", 1000.0, 20000.0, 900.0)
    (line,) = peer_lines(row, tmp_path)
    assert "not measured" in line and peer.PEER in line and "make bench" in line
    measured = peer_lines(throughput.Throughput("locked counter", 1000.0, 1.0, 1.0, 400.0),
                          tmp_path)
    assert "400 schedules/s against 1,000" in measured[0] and "**2.5x**" in measured[0]


def test_the_peer_runs_in_a_child_process_that_sees_its_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for the peer's package: the child imports it from the directory given,
    # runs the locked counter through its explore() with the runs and seed asked, and
    # reports a rate.
    from benchmarks import peer

    package = tmp_path / "detangle"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import asyncio, os\n"
        "def explore(fn, *, runs, seed, **options):\n"
        "    assert options == dict(strategy='random', shrink=False, database=False)\n"
        "    for _ in range(runs):\n"
        "        asyncio.run(fn())\n"
        "    with open(os.environ['PEER_LOG'], 'a') as log:\n"
        "        log.write(f'{runs} {seed}\\n')\n")
    (tmp_path / "detangle-9.9.dist-info").mkdir()
    log = tmp_path / "log.txt"
    monkeypatch.setenv("PEER_LOG", str(log))
    assert peer.installed(tmp_path)
    assert peer.peer_version(tmp_path) == "detangle 9.9"
    assert peer.peer_rate(3, 7, tmp_path) > 0
    assert log.read_text().split("\n")[-2] == "3 7"  # the warm-up, then the timed runs


def test_a_failing_peer_run_is_reported_with_its_error(tmp_path: Path) -> None:
    from benchmarks import peer

    (tmp_path / "detangle").mkdir()
    (tmp_path / "detangle" / "__init__.py").write_text(
        "def explore(fn, **options):\n    raise SystemExit('the peer broke')\n")
    with pytest.raises(RuntimeError, match="the peer broke"):
        peer.peer_rate(3, 0, tmp_path)
