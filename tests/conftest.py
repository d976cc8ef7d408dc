"""Shared helpers for the test suite."""

from __future__ import annotations

import gc
import random
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from explorer._runtime import PointView

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the examples package lives at the repository root
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the tests marked slow (`make test` and CI do)")


def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--run-slow"):
        return "slow tests: included"
    return "slow tests: left out for a fast local run; --run-slow (or `make test`) runs them"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A plain ``pytest`` leaves the tests marked ``slow`` out (deselected, so the summary
    counts them); ``--run-slow`` keeps them. A test is marked for its cost alone (a second or
    more: many schedules, subprocesses, real-time limits); ``make test`` and CI run them all."""
    if config.getoption("--run-slow"):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]


FAKEREDIS_INTERLEAVES = sys.version_info < (3, 12)
"""Whether two redis-py commands over fakeredis can interleave. Up to 3.11,
``asyncio.wait_for`` runs redis-py's send in a task of its own, so a command waits for that
task; from 3.12 it awaits the send in the caller's task, and fakeredis answers a command as
it is sent: a command never yields to the loop, so no other task can run between a read and
a write, on the stock loop as under the explorer (the race needs a real server, or the
simulated network's :class:`explorer.testing.RedisServer`)."""

needs_interleaving_fakeredis = pytest.mark.skipif(
    not FAKEREDIS_INTERLEAVES,
    reason="from Python 3.12 a redis-py command over fakeredis never yields to the loop "
           "(asyncio.wait_for no longer makes a task): there is no interleaving to explore")


def cli_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                request: pytest.FixtureRequest, prefix: str, source: str
                ) -> tuple[Path, str]:
    """A project directory with a scenario module written from ``source`` and named after
    the test (module names are process-wide, so each test gets its own); made the working
    directory, with progress output off."""
    name = prefix + re.sub(r"\W", "_", request.node.name)
    (tmp_path / f"{name}.py").write_text(source)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")
    return tmp_path, name


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the ``explorer`` command in-process: (exit code, stdout, stderr)."""
    from explorer import cli

    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def reading_chooser(seed: int, read: bool) -> Callable[[int, PointView], int]:
    """A seeded random chooser that, when ``read``, also reads the point through the view's
    list methods at random points and checks them against the per-candidate ones
    (``processes`` against ``process``, ``candidates`` against ``candidate``). The
    decisions are the same whether it reads or not: reading must change no schedule."""
    rng = random.Random(seed)
    reads = random.Random(seed + 100)

    def choose(count: int, view: PointView) -> int:
        what = reads.randrange(4) if read else 0
        if what & 1:
            assert view.processes(count) == [view.process(i) for i in range(count)]
        if what & 2:
            assert view.candidates(count) == [view.candidate(i) for i in range(count)]
        return int(rng.random() * count)

    return choose


@pytest.fixture
def no_foreign_garbage() -> None:
    """Collect, quietly, the garbage that earlier tests of this process left (finalisers
    that warn, such as an unclosed stock event loop's) before a test whose own collection
    or runs must see only its own: under two workers, which tests ran before it varies."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()
