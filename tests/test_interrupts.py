"""BaseExceptions from scenario code are failures; a real Ctrl-C stops the exploration.

A scenario that raises ``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit`` or any other
``BaseException`` fails with kind ``"exception"`` naming the type, and the explorer goes
on (confirms, shrinks, saves). A real SIGINT, told apart by the handler ``explore``
installs, stops the search with one line saying what was run and found; in a subprocess
with worker processes, nothing outlives the parent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

import explorer
from tests.conftest import ROOT, cli_project, run_cli

pytest_plugins = ["pytester"]


class Custom(BaseException):
    """A BaseException of the scenario's own."""


def _raising_child(exc: BaseException) -> Callable[[], Coroutine[Any, Any, None]]:
    async def scenario() -> None:
        async def child() -> None:
            await asyncio.sleep(0)
            raise exc

        async def other() -> None:
            await asyncio.sleep(0)

        await asyncio.gather(child(), other())

    return scenario


@pytest.mark.parametrize(("exc", "name"), [
    (SystemExit(3), "SystemExit"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),
    (GeneratorExit(), "GeneratorExit"),
    (Custom(), f"{Custom.__module__}.Custom"),
])
def test_base_exceptions_of_asyncio_scenarios_are_failures(exc: BaseException, name: str,
                                                           tmp_path: Path) -> None:
    scenario = _raising_child(exc)
    result = explorer.explore(scenario, raise_on_failure=False, corpus=tmp_path)
    failure = result.failure
    assert failure is not None
    assert failure.kind == "exception"
    assert failure.outcome.exc_type == name
    assert failure.outcome.location is not None
    assert failure.outcome.location.function.endswith("child")
    assert failure.corpus_path is not None and failure.corpus_path.is_file()
    again = explorer.run(scenario, schedule=failure.schedule)
    assert again.outcome.signature() == failure.outcome.signature()


def test_system_exit_in_the_scenario_body_is_a_failure() -> None:
    async def scenario() -> None:
        await asyncio.sleep(0)
        sys.exit(2)

    with pytest.raises(explorer.ScheduleFailure) as raised:
        explorer.explore(scenario)
    assert raised.value.kind == "exception"
    assert raised.value.outcome.exc_type == "SystemExit"


@pytest.mark.parametrize(("exc", "name"), [
    (SystemExit(3), "SystemExit"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),
    (Custom(), f"{Custom.__module__}.Custom"),
])
def test_base_exceptions_of_trio_scenarios_are_failures(exc: BaseException,
                                                        name: str) -> None:
    trio = pytest.importorskip("trio")

    async def scenario() -> None:
        async def child() -> None:
            await trio.sleep(0)
            raise exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
            nursery.start_soon(trio.sleep, 0)

    result = explorer.explore(scenario, runtime="trio", raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    assert failure.kind == "exception"
    assert failure.outcome.exc_type == name


def test_a_real_sigint_stops_the_exploration_and_says_what_ran() -> None:
    runs = [0]

    async def scenario() -> None:
        runs[0] += 1
        if runs[0] == 30:  # as if Ctrl-C were pressed during the 30th run
            signal.raise_signal(signal.SIGINT)

        async def step() -> None:
            await asyncio.sleep(0)

        await asyncio.gather(step(), step())

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(explorer.ExplorationInterrupted) as raised:
        explorer.explore(scenario, strategy="random", seed=1, max_schedules=1000)
    assert isinstance(raised.value, KeyboardInterrupt)
    line = str(raised.value)
    assert line.startswith("interrupted after ")
    assert "no failure found so far" in line
    assert "\n" not in line
    assert signal.getsignal(signal.SIGINT) is before


class _SignalsWhenFinalised:
    """Ctrl-C pressed while the garbage collector finalises this object: its
    KeyboardInterrupt is raised where no exception can propagate (Python reports it as
    unraisable and goes on)."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


def test_a_real_sigint_that_lands_in_a_finaliser_still_stops_the_exploration() -> None:
    runs = [0]
    reported: list[BaseException | None] = []

    async def scenario() -> None:
        runs[0] += 1
        if runs[0] == 30:
            _SignalsWhenFinalised()  # dropped at once: finalised inside this step

        async def step() -> None:
            await asyncio.sleep(0)

        await asyncio.gather(step(), step())

    before_hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: reported.append(unraisable.exc_value)
    try:
        with pytest.raises(explorer.ExplorationInterrupted) as raised:
            explorer.explore(scenario, strategy="random", seed=1, max_schedules=1000)
    finally:
        sys.unraisablehook = before_hook
    assert str(raised.value).startswith("interrupted after ")  # once that run ended
    assert reported == []  # a real Ctrl-C, not an error of the finaliser's to report


def test_a_real_sigint_stops_a_trio_exploration() -> None:
    trio = pytest.importorskip("trio")
    runs = [0]

    async def scenario() -> None:
        runs[0] += 1
        if runs[0] == 10:
            signal.raise_signal(signal.SIGINT)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep, 0)
            nursery.start_soon(trio.sleep, 0)

    with pytest.raises(explorer.ExplorationInterrupted, match="no failure found so far"):
        explorer.explore(scenario, runtime="trio", strategy="random", seed=1,
                         max_schedules=1000)


def test_a_sigint_after_a_failure_was_found_says_so() -> None:
    async def scenario() -> None:
        async def step() -> None:
            await asyncio.sleep(0)

        await asyncio.gather(step(), step())
        raise AssertionError("boom")

    runs = [0]

    async def interrupted_while_confirming() -> None:
        runs[0] += 1
        if runs[0] == 2:  # the first replay that confirms the failure
            signal.raise_signal(signal.SIGINT)
        await scenario()

    with pytest.raises(explorer.ExplorationInterrupted, match="found a assertion"):
        explorer.explore(interrupted_while_confirming)


SLOW_MODULE = textwrap.dedent("""
    import asyncio
    import os
    import pathlib


    async def busy():
        marker = pathlib.Path(os.environ["EXPLORER_READY"])
        if not marker.exists():
            marker.write_text("ready")

        async def worker():
            for _ in range(5):
                await asyncio.sleep(0)

        await asyncio.gather(worker(), worker(), worker())


    async def exits():
        async def child():
            await asyncio.sleep(0)
            raise SystemExit(3)

        await asyncio.gather(child(), asyncio.sleep(0))
""")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
@pytest.mark.parametrize("workers", [None, 2])
@pytest.mark.slow
def test_ctrl_c_on_the_command_line(tmp_path: Path, workers: int | None) -> None:
    (tmp_path / "scen.py").write_text(SLOW_MODULE)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    marker = tmp_path / "ready"
    env = {**os.environ, "EXPLORER_READY": str(marker), "EXPLORER_PROGRESS": "0",
           "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "explorer.cli", "explore", "scen.py::busy", "--strategy",
            "random", "--max-schedules", "100000000", "--no-save"]
    if workers:
        args += ["--workers", str(workers)]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(marker.exists, "the exploration to start")
        if workers:
            _wait_for(lambda: len(_children(process.pid)) >= workers, "the workers")
        children = _children(process.pid)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("explorer: interrupted after ")
    assert "schedule(s) of scen" in lines[0]
    assert out == ""
    _wait_for(lambda: not any(_alive(pid) for pid in children), "no process left behind")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table in /proc")
def test_workers_exit_when_their_parent_dies(tmp_path: Path) -> None:
    (tmp_path / "scen.py").write_text(SLOW_MODULE)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    marker = tmp_path / "ready"
    env = {**os.environ, "EXPLORER_READY": str(marker), "EXPLORER_PROGRESS": "0",
           "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "explorer.cli", "explore", "scen.py::busy", "--strategy",
         "random", "--max-schedules", "100000000", "--no-save", "--workers", "2"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(marker.exists, "the exploration to start")
        _wait_for(lambda: len(_children(process.pid)) >= 2, "the workers")
        children = _children(process.pid)
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    _wait_for(lambda: not any(_alive(pid) for pid in children), "no orphaned worker")


def test_cli_exit_code_is_1_when_the_scenario_exits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, name = cli_project(tmp_path, monkeypatch, request, "exits_", SLOW_MODULE)
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::exits", "--no-save")
    assert code == 1
    assert "FAIL" in out and "exception" in out and "SystemExit" in out


def test_pytest_plugin_reports_a_scenario_keyboard_interrupt_as_a_failure(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kbi=textwrap.dedent("""
        import asyncio

        import pytest


        @pytest.mark.explore(max_schedules=20)
        async def test_raises():
            async def child():
                await asyncio.sleep(0)
                raise KeyboardInterrupt

            await asyncio.gather(child(), asyncio.sleep(0))


        def test_after():
            pass
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*failed (exception at*", "*KeyboardInterrupt*"])


@pytest.mark.slow
def test_pytest_still_stops_on_a_real_ctrl_c(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sigint=textwrap.dedent("""
        import asyncio
        import signal

        import pytest

        runs = [0]


        @pytest.mark.explore(max_schedules=100)
        async def test_interrupted():
            runs[0] += 1
            if runs[0] == 5:
                signal.raise_signal(signal.SIGINT)
            await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))


        def test_never_reached():
            pass
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ExplorationInterrupted: interrupted after *"])
    assert "test_never_reached PASSED" not in result.stdout.str()
