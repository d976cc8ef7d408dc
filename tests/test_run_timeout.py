"""The per-run real-time limit: a run that does not come back is stopped as a ``hang``.

A hang needs real time to happen, so these tests use limits of a fraction of a second; they
assert what was reported (the kind, the task, the line, the saved schedule), never how long
anything took.
"""

from __future__ import annotations

import asyncio
import gc
import textwrap
from pathlib import Path

import pytest

import explorer
from explorer import strategies
from explorer._asyncio._runner import AsyncioRuntime
from explorer._errors import HealthWarning, UsageError
from explorer._runtime import RunMode
from explorer._watchdog import RunTimeout
from tests.conftest import cli_project, run_cli

pytest_plugins = ["pytester"]

LIMIT = 0.3  # seconds: long for a step, short for a test


def _spin_line() -> int:
    return spin.__code__.co_firstlineno + 3  # the body of the while loop


async def spin() -> None:
    x = 0
    while True:  # never awaits
        x += 1


async def spinning_child() -> None:
    task = asyncio.create_task(spin())
    await asyncio.sleep(0)
    await task


async def quick() -> None:
    async def bump(box: list[int]) -> None:
        box[0] += 1
        await asyncio.sleep(0)

    box = [0]
    await asyncio.gather(bump(box), bump(box))
    assert box[0] == 2


def _hang(result: explorer.ExploreResult) -> explorer.ScheduleFailure:
    failure = result.failure
    assert failure is not None
    assert failure.kind == "hang", failure
    return failure


@pytest.mark.slow
def test_a_task_that_never_awaits_is_reported_as_a_hang(tmp_path: Path) -> None:
    result = explorer.explore(spinning_child, run_timeout=LIMIT, raise_on_failure=False,
                              corpus=tmp_path)
    failure = _hang(result)
    location = failure.outcome.location
    assert location is not None
    assert location.function == "spin"
    assert location.short.startswith("test_run_timeout.py:")
    assert location.lineno in range(spin.__code__.co_firstlineno, _spin_line() + 1)
    assert failure.outcome.details["task"] == "main/spin#1"
    assert "task spin#1 was executing line test_run_timeout.py:" in failure.outcome.message
    assert "run_timeout=0.3s" in failure.outcome.message
    assert "stopped by run_timeout" in str(failure.trace)
    # Saved, and replaying the saved schedule hangs again.
    assert failure.corpus_path is not None and failure.corpus_path.is_file()
    again = explorer.run(spinning_child, schedule=failure.schedule, run_timeout=LIMIT)
    assert again.outcome.kind == "hang"
    assert again.outcome.signature() == failure.outcome.signature()
    with pytest.raises(explorer.ScheduleFailure) as replayed:
        explorer.replay(spinning_child, failure.schedule, run_timeout=LIMIT)
    assert replayed.value.kind == "hang"


@pytest.mark.slow
def test_a_trio_task_that_never_awaits_is_reported_as_a_hang() -> None:
    trio = pytest.importorskip("trio")

    async def scenario() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(spin)
            nursery.start_soon(trio.sleep, 1)

    result = explorer.explore(scenario, runtime="trio", run_timeout=LIMIT,
                              raise_on_failure=False)
    failure = _hang(result)
    assert failure.outcome.details["task"] == "main/spin#1"
    assert failure.outcome.location is not None
    assert failure.outcome.location.function == "spin"
    again = explorer.run(scenario, schedule=failure.schedule, runtime="trio",
                         run_timeout=LIMIT)
    assert again.outcome.kind == "hang"


def test_a_handler_stuck_in_a_busy_loop_behind_starlette_and_httpx() -> None:
    pytest.importorskip("starlette")
    httpx = pytest.importorskip("httpx")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def report(request: Request) -> PlainTextResponse:
        total = 0
        while total >= 0:  # a CPU-bound loop that never yields to the event loop
            total += 1
        return PlainTextResponse(str(total))

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/report", report), Route("/health", health)])

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            await asyncio.gather(client.get("/report"), client.get("/health"))

    result = explorer.explore(scenario, run_timeout=LIMIT, raise_on_failure=False,
                              max_schedules=20)
    failure = _hang(result)
    assert failure.outcome.location is not None
    assert failure.outcome.location.function.endswith("report")


@pytest.mark.slow
def test_swallowing_the_first_stop_does_not_escape_the_limit() -> None:
    async def stubborn() -> None:
        try:
            while True:
                pass
        except BaseException:  # noqa: BLE001 - what a careless scenario does
            pass
        while True:  # the watchdog delivers again
            pass

    result = explorer.explore(stubborn, run_timeout=LIMIT, raise_on_failure=False,
                              shrink=False)
    failure = _hang(result)
    assert failure.outcome.location is not None
    assert failure.outcome.location.function.endswith("stubborn")


# A run stopped between creating a coroutine and awaiting it leaves it unawaited.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.usefixtures("no_foreign_garbage")
def test_the_stop_never_lands_outside_a_run() -> None:
    # Limits close to a run's own length: the watchdog fires around the end of many runs,
    # and its exception must be withdrawn, not delivered after the run returned.
    runtime = AsyncioRuntime()
    kinds: set[str] = set()
    with runtime.session():
        for index in range(400):
            fixed = strategies.Fixed([], strict=False)
            fixed.start_run()
            record = runtime.run(quick, fixed.choose, RunMode(
                max_steps=1000, run_timeout=0.00005 * (1 + index % 20)))
            kinds.add(record.outcome.kind)
    gc.collect()  # the unawaited coroutines of stopped runs go now, under this test's filter
    assert kinds <= {"pass", "hang"}
    assert "pass" in kinds


def test_passing_runs_are_unaffected_by_the_default_limit() -> None:
    result = explorer.explore(quick, max_schedules=50, seed=3)
    assert result.ok and result.schedules >= 1


def test_max_time_also_stops_a_run_that_hangs() -> None:
    with pytest.warns(HealthWarning, match="max_time ran out while a run"):
        result = explorer.explore(spinning_child, run_timeout=None, max_time=LIMIT,
                                  raise_on_failure=False)
    assert result.failure is None
    assert result.schedules == 0


@pytest.mark.parametrize("bad", [-1, "soon", True, float("nan")])
def test_bad_run_timeout_is_a_usage_error(bad: object) -> None:
    with pytest.raises(UsageError, match="run_timeout must be a number of seconds"):
        explorer.explore(quick, run_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("off", [None, 0])
def test_zero_or_none_disables_the_limit(off: float | None) -> None:
    result = explorer.explore(quick, max_schedules=5, run_timeout=off)
    assert result.ok


def test_run_timeout_is_a_keyboard_interrupt_only_to_asyncio() -> None:
    # asyncio re-raises only KeyboardInterrupt and SystemExit out of a task step: that is
    # what ends the run at once; the explorer never lets it out of a run.
    assert issubclass(RunTimeout, KeyboardInterrupt)


SPIN_MODULE = textwrap.dedent("""
    import asyncio

    import pytest


    async def spin():
        x = 0
        while True:
            x += 1


    async def scenario():
        task = asyncio.create_task(spin())
        await asyncio.sleep(0)
        await task


    @pytest.mark.explore(run_timeout=0.3)
    async def test_marked():
        await scenario()
""")


@pytest.mark.slow
def test_cli_run_timeout_on_explore_replay_and_shrink(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, name = cli_project(tmp_path, monkeypatch, request, "rt_", SPIN_MODULE)
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::scenario", "--run-timeout", "0.3",
                           "--no-save", "--no-shrink")
    assert code == 1
    assert "FAIL" in out and ": hang at " in out
    code, out, _ = run_cli(capsys, "replay", f"{name}.py::scenario", "v1:",
                           "--run-timeout", "0.3")
    assert code == 1
    assert "hang: the run took more than run_timeout=0.3s" in out
    code, out, _ = run_cli(capsys, "shrink", f"{name}.py::scenario", "v1:",
                           "--run-timeout", "0.3")
    assert code == 1
    assert "hang" in out
    # The marker's run_timeout is the target's own.
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::test_marked", "--no-save",
                           "--no-shrink")
    assert code == 1
    assert "run_timeout=0.3s" in out


def test_cli_rejects_a_negative_run_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, name = cli_project(tmp_path, monkeypatch, request, "rt_", SPIN_MODULE)
    code, _, err = run_cli(capsys, "explore", f"{name}.py::scenario", "--run-timeout", "-1")
    assert code == 2
    assert err.count("\n") == 1 and "--run-timeout" in err


@pytest.mark.slow
def test_pytest_marker_ini_and_command_line_run_timeout(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # pytest prints the short summary untruncated when CI is set, which would repeat the
    # messages counted below.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    pytester.makepyfile(test_spin=SPIN_MODULE + textwrap.dedent("""

        @pytest.mark.explore
        async def test_from_the_ini():
            await scenario()
    """))
    pytester.makeini("[pytest]\nexplore_run_timeout = 0.3\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--explore-no-save")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*test_marked failed (hang at test_spin.py:*",
                                 "*test_from_the_ini failed (hang at test_spin.py:*"])
    assert result.stdout.str().count("run_timeout=0.3s") == 2
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--explore-no-save",
                                           "--explore-run-timeout", "0.2", "-k", "marked")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*run_timeout=0.2s*"])


def test_pytest_rejects_a_bad_run_timeout(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=SPIN_MODULE)
    pytester.makeini("[pytest]\nexplore_run_timeout = soon\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*explore_run_timeout in the ini file = 'soon' must be a "
                                 "number of seconds*"])


class _Node:
    pass


def _busy_callback(_ref: object) -> None:
    for _ in range(3_000):  # where the stop often lands: inside a weakref callback
        pass


async def spin_in_callbacks() -> None:
    import weakref

    await asyncio.sleep(0)
    while True:
        node = _Node()
        ref = weakref.ref(node, _busy_callback)
        del node  # the callback runs now
        del ref


def test_a_stop_landing_in_a_weakref_callback_is_delivered_again_not_reported() -> None:
    # A callback the garbage collector or a refcount drop runs swallows an exception and
    # reports it as unraisable; the watchdog drops that report and stops the run again.
    import sys

    reported: list[object] = []
    previous = sys.unraisablehook
    sys.unraisablehook = reported.append
    try:
        for _ in range(3):
            result = explorer.run(spin_in_callbacks, run_timeout=0.05)
            assert result.outcome.kind == "hang", result.outcome
    finally:
        sys.unraisablehook = previous
    assert reported == []
