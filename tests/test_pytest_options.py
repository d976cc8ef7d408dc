"""The plugin's run options and reports: one corpus entry per bug whatever the seed, each
failure printed once, ``--explore-replay``, ``--explore-max-time``, the project's own
profiles, ``--explore-show-statistics`` and ``--explore-html``; run with ``pytester``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# Two check-ins race for the last seat of a flight: the fare check and the seat write are
# separated by an await, so both pass the check.
FLIGHT = '''
import asyncio

import pytest


@pytest.fixture
def flight():
    return {"free": 1, "passengers": []}


async def check_in(flight, name):
    if flight["free"] > 0:
        await asyncio.sleep(0)  # the fare lookup
        flight["free"] -= 1
        flight["passengers"].append(name)


async def late_check_in(flight, name):
    await asyncio.sleep(0)  # the passport scan
    await check_in(flight, name)


@pytest.mark.explore(max_schedules=300)
async def test_last_seat(flight):
    await asyncio.gather(check_in(flight, "ada"), late_check_in(flight, "bo"))
    assert flight["free"] >= 0, f"overbooked: {flight['passengers']}"
'''


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:asyncio", "-p", "no:trio", "-p", "no:hypothesispytest",
                              "-p", "no:randomly", *args)


def _entries(pytester: pytest.Pytester) -> list[Path]:
    return sorted((pytester.path / "corpus").glob("*.json"))

def _stories(out: str) -> int:
    """How many stories the failures section tells."""
    failures = out.split("short test summary info")[0]
    return failures.count("Why: what ran out of turn to make it fail:")



def test_runs_with_different_seeds_leave_one_entry_and_print_each_failure_once(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flight=FLIGHT)
    schedules = set()
    for seed in (11, 22, 33):
        result = _run(pytester, f"--explore-seed={seed}")
        out = result.stdout.str()
        schedules.add(json.loads(_entries(pytester)[0].read_text())["schedule"])
        assert len(_entries(pytester)) == 1, out
        # The story (its "Why:" section) is printed once per run, whatever found it.
        # (Counted above pytest's short summary, which repeats whole messages on CI.)
        assert _stories(out) == 1, out
    assert len(schedules) == 1
    # The last run: the corpus entry told the story, the explored test says so in a line.
    result.assert_outcomes(failed=2)
    assert re.search(r"test_flight.py::test_last_seat still fails: assertion at "
                     r"test_flight.py:\d+, as its corpus entry does \(the story is printed "
                     r"once, under test_flight.py::test_last_seat\[corpus v1:\S+\]\)", out), out


def test_explore_replay_runs_that_schedule_of_the_selected_test(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flight=FLIGHT)
    _run(pytester, "--explore-seed=1")
    [entry] = _entries(pytester)
    schedule = json.loads(entry.read_text())["schedule"]
    result = _run(pytester, "test_flight.py::test_last_seat", f"--explore-replay={schedule}")
    result.assert_outcomes(failed=1)  # the test itself; its corpus entry does not run
    out = result.stdout.str()
    assert f"--explore-replay {schedule}: the schedule fails." in out
    assert re.search(r"overbooked: \['(ada|bo)', '(ada|bo)'\]", out), out
    assert "of reproduce search" in out
    # The stock schedule passes: so does the test.
    _run(pytester, "test_flight.py::test_last_seat", "--explore-replay=v1:"
         ).assert_outcomes(passed=1)
    bad = _run(pytester, "--explore-replay=3=1")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--explore-replay '3=1': '3=1' is not a schedule string" in bad.stderr.str()


def test_max_time_is_a_session_setting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flight=FLIGHT)
    _run(pytester, "--explore-max-time=30s", "--explore-no-save").assert_outcomes(failed=1)
    bad = _run(pytester, "--explore-max-time=soon")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--explore-max-time" in bad.stderr.str()


def test_profiles_of_the_project(pytester: pytest.Pytester,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer import _settings

    # The in-process runs register the project's profiles in this process: keep them
    # out of the other tests.
    monkeypatch.setattr(_settings, "_PROFILES",
                        {k: dict(v) for k, v in _settings._PROFILES.items()})
    pytester.makepyfile(test_flight=FLIGHT.replace("@pytest.mark.explore(max_schedules=300)",
                                                   "@pytest.mark.explore"))
    pytester.makepyprojecttoml('''
        [tool.explorer.profiles.smoke]
        parent = "lookahead"
        strategy = "random"

        [tool.explorer.profiles.lookahead]
        max_schedules = 3
        seed = 4
    ''')
    result = _run(pytester, "--explore-profile=smoke", "--explore-show-statistics",
                  "--explore-no-save")
    out = result.stdout.str()
    assert "  - strategy: random" in out and re.search(r"  - [1-3] schedule\(s\)", out), out
    pytester.makeini("[pytest]\nexplore_profiles =\n    tiny: max_schedules=2 "
                     "strategy=random\n")
    result = _run(pytester, "--explore-profile=tiny", "--explore-show-statistics",
                  "--explore-no-save")
    assert re.search(r"  - [12] schedule\(s\)", result.stdout.str()), result.stdout.str()
    pytester.makeini("[pytest]\nexplore_profiles =\n    tiny max_schedules=2\n")
    bad = _run(pytester)
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "is not 'name: setting=value ...'" in bad.stderr.str()


def test_statistics_and_html_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_flight=FLIGHT + '''

@pytest.mark.explore(strategy="random", seed=5, max_schedules=20)
async def test_two_readers(flight):
    async def read():
        await asyncio.sleep(0)
        return flight["free"]

    assert await asyncio.gather(read(), read()) == [1, 1]
''')
    report = pytester.path / "out" / "explored.html"
    result = _run(pytester, "--explore-show-statistics", f"--explore-html={report}",
                  "--explore-seed=2")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*= explorer statistics =*",
        "test_flight.py::test_last_seat:",
        "  - * schedule(s), * distinct interleaving(s), * step(s), in *",
        "*",
        "*",
        "  - failed: assertion; covered *",
        "test_flight.py::test_two_readers:",
        "  - 20 schedule(s), * distinct interleaving(s), * step(s), in *",
        "  - strategy: random",
        "  - passed; covered *",
    ])
    page = report.read_text()
    assert "<h2>test_flight.py::test_last_seat</h2>" in page
    assert "test_flight.test_last_seat: assertion at test_flight.py:" in page
    assert "pytest test_flight.py::test_last_seat --explore-replay" in page
    assert "test_two_readers" not in page
