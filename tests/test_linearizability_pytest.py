"""Linearizability checks through pytest: the plugin's ``linearizability`` fixture.

Each test writes a small test module with ``pytester`` and runs pytest on it in-process
(other async-test plugins and Hypothesis's plugin switched off, as in
tests/test_pytest_plugin.py). The object under test is a seat map whose ``book`` checks
the seat and then, after an await, takes it: two bookings of one seat can both succeed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SEATS = '''
import asyncio

import pytest
from hypothesis import strategies as st

import explorer


class SeatMap:
    def __init__(self):
        self.taken = {}

    async def book(self, seat):
        if seat in self.taken:
            return "sold out"
        await asyncio.sleep(0)  # charge the card
        self.taken[seat] = True
        return "booked"


async def book(seats, seat):
    return await seats.book(seat)


OPERATIONS = [explorer.operation(book, st.sampled_from(["12A", "12B"]))]


MARK
def test_seats(linearizability):
    linearizability.check(SeatMap, OPERATIONS, CHECK)
'''

# The same calls, the same awaits, the check and the write together after the await.
FIXED = SEATS.replace('''        if seat in self.taken:
            return "sold out"
        await asyncio.sleep(0)  # charge the card
''', '''        await asyncio.sleep(0)  # charge the card
        if seat in self.taken:
            return "sold out"
''')


def _module(source: str = SEATS, *, mark: str = "", check: str = "") -> str:
    return source.replace("MARK\n", f"{mark}\n" if mark else "").replace(
        "CHECK)", f"{check or 'max_scenarios=4'})")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    blocked = [arg for name in ("asyncio", "trio", "hypothesispytest")
               for arg in ("-p", f"no:{name}")]
    return pytester.runpytest(*blocked, *args)


def _corpus(pytester: pytest.Pytester, directory: str = "corpus") -> list[Path]:
    return sorted((pytester.path / directory).glob("*.json"))


def _failures(result: pytest.RunResult) -> str:
    """The failures section (pytest's short summary repeats the start of each message)."""
    return result.stdout.str().split("short test summary info")[0]


def test_a_race_fails_the_test_with_its_story_once_and_is_saved(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    failures = _failures(result)
    assert failures.count("the results of concurrent calls are not linearizable") == 1
    assert failures.count("Why: what ran out of turn") == 1
    assert "book('12A') -> 'booked'" in failures or "book('12B') -> 'booked'" in failures
    [entry] = _corpus(pytester)
    assert f"SAVED test_seats.py::test_seats: saved corpus/{entry.name}" in result.outlines
    schedule = re.search(r"^Schedule: (v1:\S*)$", failures, re.MULTILINE)
    assert schedule is not None
    assert (f"To run just this schedule: pytest test_seats.py::test_seats --explore-replay "
            f"'{schedule[1]}'") in failures


def test_the_next_run_replays_the_saved_entry_first_and_fails_fast(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    [entry] = _corpus(pytester)
    again = _run(pytester, "--explore-show-statistics")
    again.assert_outcomes(failed=1)
    failures = _failures(again)
    assert (f"Corpus entry corpus/{entry.name}: still fails as saved (nothing explored: "
            "fix this one first).") in failures
    assert failures.count("the results of concurrent calls are not linearizable") == 1
    # Nothing was explored: no statistics block, nothing saved.
    assert "explorer statistics" not in again.stdout.str()
    assert "SAVED" not in again.stdout.str()
    assert _corpus(pytester) == [entry]


def test_the_fixed_object_passes_and_its_entry_is_listed_as_fixed(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    [entry] = _corpus(pytester)
    pytester.makepyfile(test_seats=_module(FIXED))
    result = _run(pytester, "-rA")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert (f"FIXED test_seats.py::test_seats corpus/{entry.name}: passes now: the "
            "not_linearizable history it recorded is linearizable; delete "
            f"corpus/{entry.name}") in result.outlines
    assert "linearizable: covered 4 scenarios of 2 task(s) x 2 call(s)" in out


@pytest.mark.parametrize(("mark", "check", "args", "seed"), [
    ("@pytest.mark.explore(seed=2)", "", (), 2),
    ("@pytest.mark.explore(seed=2)", "max_scenarios=4, seed=3", (), 3),
    ("@pytest.mark.explore(seed=2)", "max_scenarios=4, seed=3", ("--explore-seed=5",), 5),
    ("", "", ("--explore-profile=ci",), None),
])
def test_the_seed_comes_from_the_marker_the_check_and_the_command_line(
        pytester: pytest.Pytester, mark: str, check: str, args: tuple[str, ...],
        seed: int | None) -> None:
    pytester.makepyfile(test_seats=_module(mark=mark, check=check))
    result = _run(pytester, "--explore-no-save", *args)
    result.assert_outcomes(failed=1)
    found = re.search(r"search \(seed (\d+)\)", _failures(result))
    assert found is not None, result.stdout.str()
    # Without a seed anywhere a check is still reproducible: seed 0.
    assert int(found[1]) == (0 if seed is None else seed)
    assert _corpus(pytester) == []  # --explore-no-save


def test_the_corpus_directory_option_is_where_failures_are_saved(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    _run(pytester, "--explore-corpus=saved").assert_outcomes(failed=1)
    assert _corpus(pytester) == []
    [entry] = _corpus(pytester, "saved")
    again = _run(pytester, "--explore-corpus=saved")
    assert f"Corpus entry saved/{entry.name}: still fails as saved" in again.stdout.str()


def test_max_time_and_statistics_apply_to_the_check(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module(FIXED, check="max_scenarios=50"))
    result = _run(pytester, "--explore-max-time=0.001", "--explore-show-statistics")
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "= explorer statistics =" in out
    block = out.partition("test_seats.py::test_seats:\n")[2]
    assert re.match(r"  - \d+ schedule\(s\), \d+ distinct histories, 1 scenario\(s\)", block)
    assert "max_time ran out after 1 of" in block


def test_explore_replay_runs_the_saved_schedule_of_the_check(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    first = _run(pytester)
    schedule = re.search(r"^Schedule: (v1:\S*)$", first.stdout.str(), re.MULTILINE)
    assert schedule is not None
    [entry] = _corpus(pytester)
    replayed = _run(pytester, "test_seats.py::test_seats", "--explore-replay", schedule[1])
    replayed.assert_outcomes(failed=1)
    assert (f"--explore-replay {schedule[1]} (corpus/{entry.name}): the schedule fails."
            in replayed.stdout.str())
    pytester.makepyfile(test_seats=_module(FIXED))
    _run(pytester, "--explore-replay", schedule[1]).assert_outcomes(passed=1)


def test_explore_replay_of_an_unknown_schedule_says_how_to_replay(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    result = _run(pytester, "--explore-replay", "v1:7=1")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert ("--explore-replay v1:7=1: a linearizability check replays a schedule together "
            "with the scenario it was found with") in out
    assert "explorer.replay_linearizability(factory, operations, failure_json)" in out


def test_replay_only_replays_the_entries_and_explores_nothing(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module(FIXED))
    result = _run(pytester, "--explore-replay-only", "-rA")
    result.assert_outcomes(passed=1)
    assert _corpus(pytester) == []
    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    again = _run(pytester, "--explore-replay-only")
    again.assert_outcomes(failed=1)
    assert "still fails as saved" in again.stdout.str()


def test_an_entry_whose_operation_was_renamed_is_listed_as_diverged(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    [entry] = _corpus(pytester)
    renamed = _module(FIXED).replace('"12B"]))]', '"12B"]), name="reserve")]')
    pytester.makepyfile(test_seats=renamed)
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    [line] = [line for line in result.outlines if line.startswith("DIVERGED ")]
    assert line.startswith(f"DIVERGED test_seats.py::test_seats: corpus/{entry.name} no "
                           "longer fits the operations (")


def test_a_tampered_entry_of_a_check_is_listed_unreadable_and_nothing_runs(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    [entry] = _corpus(pytester)
    data = json.loads(entry.read_text())
    data["linearizability"]["scenario"]["tasks"][0][0]["module"] = "os"  # a key no one reads
    entry.write_text(json.dumps(data))
    result = _run(pytester, "--explore-replay-only")
    result.assert_outcomes(passed=1)  # replayed nothing, explored nothing
    [line] = [line for line in result.outlines if line.startswith("DIVERGED ")]
    assert line.startswith(f"DIVERGED test_seats.py::test_seats: corpus/{entry.name} cannot "
                           "be read, so it was not replayed: ")
    assert '"linearizability.scenario.tasks[0][0].module" is not part of the format' in line


def test_the_fixture_s_value_is_the_exported_type(pytester: pytest.Pytester) -> None:
    typed = _module(FIXED).replace(
        "def test_seats(linearizability):",
        "def test_seats(linearizability: explorer.LinearizabilityCheck) -> None:\n"
        "    assert isinstance(linearizability, explorer.LinearizabilityCheck)")
    pytester.makepyfile(test_seats=typed)
    _run(pytester).assert_outcomes(passed=1)


def test_a_corpus_verify_of_a_check_s_entry_says_who_replays_it_and_how(
        pytester: pytest.Pytester) -> None:
    from explorer._corpus import Corpus
    from explorer._nightly import _verify, plan_slices
    from explorer._regressions import Scenarios

    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    corpus = Corpus(pytester.path / "corpus")
    [item] = plan_slices([], corpus, ())
    for in_pytest in ({}, {"test_seats.test_seats": "test_seats.py::test_seats"}):
        result = _verify(item, Path(str(item.path)), corpus, Scenarios(), in_pytest)
        assert result.status == "unknown-scenario"  # nothing ran in the verify slice
        assert result.detail.startswith(
            "a linearizability check's failure, not run here: replayed by the test that "
            "checks test_seats.SeatMap with the linearizability fixture")
        assert "explorer.replay_linearizability(factory, operations, explorer.Corpus(" in \
            result.detail
        assert "no target of this run is named" not in result.detail
        assert ("its explore slice replays it" in result.detail) == bool(in_pytest)
    # `explorer corpus verify` (replay_one, no pytest targets) says the same.
    from explorer._regressions import replay_one

    report = replay_one(corpus.load(Path(str(item.path))), Scenarios())
    assert report.status == "unknown-scenario"
    assert report.detail.startswith("a linearizability check's failure, not run here")
    assert "no scenario named" not in report.detail


def test_the_nightly_job_links_a_check_s_failure_to_its_entry(
        pytester: pytest.Pytester) -> None:
    from explorer._corpus import Corpus
    from explorer._nightly_pytest import _failure

    pytester.makepyfile(test_seats=_module())
    _run(pytester).assert_outcomes(failed=1)
    [entry] = _corpus(pytester)
    # pytest's story names the entry relative to the test's rootdir.
    story = f"Corpus entry corpus/{entry.name}: still fails as saved"
    found = _failure("test_seats.test_seats", Corpus(pytester.path / "corpus"),
                     {("test_seats.SeatMap.linearizability", ())}, story)
    assert found.corpus_path == str(entry)
    assert found.record.outcome.kind == "not_linearizable"
    assert found.record.schedule == json.loads(entry.read_text())["schedule"]


def test_the_fixture_refuses_the_keywords_it_sets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module(FIXED, check="corpus='elsewhere'"))
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    assert ("linearizability.check(corpus=...): the fixture sets it"
            in result.stdout.str())


def test_a_mistake_in_the_check_fails_the_test_with_its_message(
        pytester: pytest.Pytester) -> None:
    broken = _module(FIXED).replace("linearizability.check(SeatMap,",
                                    "linearizability.check(lambda: SeatMap(1),")
    pytester.makepyfile(test_seats=broken)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "test_seats.py::test_seats: the factory " in out
    assert "raised TypeError: " in out
    assert "Traceback" not in out


def test_the_explore_marker_on_a_plain_test_needs_the_fixture(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain='''
import pytest

@pytest.mark.explore
def test_plain():
    pass
''')
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    assert "is marked @pytest.mark.explore but is not an 'async def'" in result.stdout.str()


DRAWN = '''
from hypothesis import given, settings

import explorer
from test_seats import OPERATIONS, SeatMap


@settings(max_examples=10, deadline=None, database=None)
@given(scenario=explorer.linearizability_scenarios(OPERATIONS, tasks=3, ops_per_task=1))
def test_drawn(scenario):
    explorer.check_linearizable(SeatMap, OPERATIONS, scenarios=[scenario],
                                schedules_per_scenario=20)
'''


def test_the_hypothesis_recipe_reports_the_smallest_scenario_and_the_drawn_one(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seats=_module(), test_drawn=DRAWN)
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:trio", "test_drawn.py")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # The check shrank the drawn three-task scenario to the two calls that race ...
    story = re.search(r"no one-at-a-time order of (.*?) gives them", out)
    assert story is not None, out
    assert re.fullmatch(r"task 0: \[book\('(12A|12B)'\)\]; task 1: \[book\('\1'\)\]",
                        story[1]), story[1]
    # ... and Hypothesis names the scenario it drew (shrunk within its shape: 3 x 1).
    # (above pytest's short summary, which repeats whole messages when CI is set)
    drawn = out.partition("test_drawn(\n")[2].partition("short test summary info")[0]
    assert "scenario=LinScenario(prefix=()," in drawn
    assert drawn.count("Call(op='book'") == 3
    pytester.makepyfile(test_seats=_module(FIXED))
    pytester.runpytest("-p", "no:asyncio", "-p", "no:trio",
                       "test_drawn.py").assert_outcomes(passed=1)


@pytest.mark.slow  # a pytest subprocess
def test_the_nightly_job_explores_a_marked_check(pytester: pytest.Pytester) -> None:
    from explorer._corpus import Corpus
    from explorer._nightly_pytest import explore_in_pytest
    from explorer._targets import collect_marked, parse_target

    pytester.makepyfile(test_seats=_module(mark="@pytest.mark.explore"))
    root = pytester.path
    assert collect_marked(root).node_ids == ("test_seats.py::test_seats",)
    found = explore_in_pytest(parse_target("test_seats.py::test_seats", cwd=root), root,
                              Corpus(root / "corpus"), strategy="portfolio", seed=1,
                              seconds=30)
    assert found.status == "failed", found
    assert found.schedules > 0 and found.distinct > 0
    assert found.failure is not None
    assert found.failure.record.outcome.kind == "not_linearizable"
    assert found.failure.record.scenario == "test_seats.SeatMap.linearizability"
    assert found.failure.new_in_corpus


@pytest.mark.slow  # pytest subprocesses with two workers
def test_under_xdist_the_corpus_summary_is_printed_once(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_seats=_module())
    args = ("-n", "2", "-p", "no:asyncio", "-p", "no:trio", "-p", "no:randomly")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(failed=1)
    [entry] = _corpus(pytester)
    assert result.stdout.str().count("= explorer corpus =") == 1
    assert f"SAVED test_seats.py::test_seats: saved corpus/{entry.name}" in result.outlines
    pytester.makepyfile(test_seats=_module(FIXED))
    again = pytester.runpytest_subprocess(*args)
    again.assert_outcomes(passed=1)
    assert any(line.startswith(f"FIXED test_seats.py::test_seats corpus/{entry.name}")
               for line in again.outlines)
