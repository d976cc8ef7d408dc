"""The pytest plugin, run on small test files with ``pytester``.

Each test writes a test module into a fresh directory and runs pytest on it in-process.
Other async-test plugins are switched off (``-p no:asyncio -p no:trio``) except in the
tests that check coexistence with them, and so is Hypothesis's plugin (see :func:`_run`).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import explorer.pytest_plugin

pytest_plugins = ["pytester"]

# A check-then-act double spend that needs two deviations from the stock order: the phone
# withdrawal must check the balance while the ATM awaits its ledger write.
BUGGY = '''
import asyncio

import pytest


@pytest.fixture
def opening_balance():
    return 100


async def withdraw(account, amount):
    if account["balance"] >= amount:
        await asyncio.sleep(0)  # ledger write
        # (no re-check)
        account["balance"] -= amount


async def mobile_withdrawal(account, amount):
    await asyncio.sleep(0)  # token lookup
    await asyncio.sleep(0)  # session refresh
    await withdraw(account, amount)


@pytest.mark.explore(strategy="systematic", deviation_bound=2)
async def test_double_spend(opening_balance):
    account = {"balance": opening_balance}
    await asyncio.gather(withdraw(account, 80), mobile_withdrawal(account, 80))
    assert account["balance"] >= 0, f"balance went negative: {account['balance']}"
'''
# The same awaits in the same order, so a saved schedule still fits: only the outcome changes.
FIXED = BUGGY.replace("        # (no re-check)\n",
                      "        if account[\"balance\"] < amount:\n            return\n")
# The phone withdrawal task has another name: a saved schedule no longer fits the code.
DRIFTED = BUGGY.replace("mobile_withdrawal", "phone_withdrawal")

PASSING = '''
import asyncio

import pytest


async def bump(counter):
    counter["n"] += 1
    await asyncio.sleep(0)


@pytest.mark.explore(strategy="random", seed=1{marker})
async def test_counter():
    counter = {{"n": 0}}
    await asyncio.gather(bump(counter), bump(counter))
    assert counter["n"] == 2
'''

_VERBOSE = re.compile(r"^(\S.*?) (PASSED|FAILED|SKIPPED|ERROR)\b.*\[\s*\d+%\]$")


def _run(pytester: pytest.Pytester, *args: str,
         off: tuple[str, ...] = ("asyncio", "trio")) -> pytest.RunResult:
    # Hypothesis's plugin imports hypothesis in its terminal summary; pytester drops the
    # modules an in-process run imported, so every run would pay for that import again.
    blocked = [arg for name in (*off, "hypothesispytest") for arg in ("-p", f"no:{name}")]
    return pytester.runpytest(*blocked, *args)


def _line(start: str) -> int:
    """The line of test_bank.py (written from BUGGY) that starts with ``start``."""
    lines = BUGGY.strip().splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(start))


def _verbose(result: pytest.RunResult) -> list[tuple[str, str]]:
    """(node id, outcome) of each item, in the order ``-v`` ran them."""
    return [(m[1], m[2]) for line in result.outlines if (m := _VERBOSE.match(line))]


def _corpus(pytester: pytest.Pytester) -> list[Path]:
    return sorted((pytester.path / "corpus").glob("*.json"))


def _schedule(result: pytest.RunResult) -> str:
    found = re.search(r"^Schedule: (v1:\S*)$", result.stdout.str(), re.MULTILINE)
    assert found, result.stdout.str()
    return found[1]


def _found(pytester: pytest.Pytester) -> str:
    """Run the buggy test once, so that the corpus holds its failure; return the schedule."""
    pytester.makepyfile(test_bank=BUGGY)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    return _schedule(result)


def test_failure_is_readable_shrunk_and_saved(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY)
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    schedule = _schedule(result)
    # Shrunk to one switch: the phone's withdrawal runs ahead through its three steps.
    assert schedule.count("=") == 3, schedule
    assert "1 switch, 3 deviation(s)" in out
    line = _line("    assert account[")
    assert f"test_bank.test_double_spend failed (assertion at test_bank.py:{line})" in out
    assert "balance went negative: -60" in out
    assert "Why: what ran out of turn to make it fail:" in out
    assert (f"To run just this schedule: pytest test_bank.py::test_double_spend "
            f"--explore-replay '{schedule}'\n(or add @explorer.reproduce({schedule!r}) under "
            "@pytest.mark.explore on test_double_spend).") in out
    assert "Captured explorer call" in out and "Full trace of the failing schedule" in out
    assert "Traceback" not in out and "_engine.py" not in out
    [saved] = _corpus(pytester)
    assert saved.name.startswith("test_double_spend-")
    assert json.loads(saved.read_text())["scenario"] == "test_bank.test_double_spend"
    assert f"SAVED test_bank.py::test_double_spend: saved corpus/{saved.name}" in out


@pytest.mark.slow
def test_a_users_own_strategies_module_does_not_shadow_the_explorers(
        pytester: pytest.Pytester) -> None:
    # Hypothesis users often keep their strategies in strategies.py beside the tests; the
    # explorer's own are explorer.strategies, so both import. A fresh process, so that the
    # user's module is the first "strategies" that process imports.
    pytester.makepyfile(strategies="from hypothesis import strategies as st\n\n"
                                   "amounts = st.integers(1, 100)\n",
                        test_bank="import strategies\n" + BUGGY)
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "-p", "no:trio")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "test_bank.test_double_spend failed (assertion at test_bank.py:" in out
    assert "balance went negative: -60" in out
    assert "AttributeError" not in out


def test_saved_entry_runs_first_and_fails_again(pytester: pytest.Pytester) -> None:
    schedule = _found(pytester)
    result = _run(pytester, "-v")
    assert _verbose(result) == [
        (f"test_bank.py::test_double_spend[corpus {schedule}]", "FAILED"),
        ("test_bank.py::test_double_spend", "FAILED"),
    ]
    out = result.stdout.str()
    assert re.search(r"Corpus entry \S+test_double_spend-\w+\.json: still fails as saved", out)
    assert len(_corpus(pytester)) == 1  # found again, saved once
    assert "SAVED" not in out


def test_fixed_code_passes_its_corpus_entry_and_the_summary_says_so(
        pytester: pytest.Pytester) -> None:
    schedule = _found(pytester)
    [saved] = _corpus(pytester)
    pytester.makepyfile(test_bank=FIXED)
    result = _run(pytester, "-v")
    assert _verbose(result) == [
        (f"test_bank.py::test_double_spend[corpus {schedule}]", "PASSED"),
        ("test_bank.py::test_double_spend", "PASSED"),
    ]
    result.stdout.fnmatch_lines([
        "*= explorer corpus =*",
        f"FIXED test_bank.py::test_double_spend?corpus {schedule}? passes now: the "
        f"assertion it recorded is fixed; delete corpus/{saved.name} or keep the schedule with "
        "@explorer.pin",
    ])


def test_drifted_code_skips_its_corpus_entry_and_says_where(pytester: pytest.Pytester) -> None:
    schedule = _found(pytester)
    [saved] = _corpus(pytester)
    pytester.makepyfile(test_bank=DRIFTED)
    result = _run(pytester, "-v", "-rs")
    assert _verbose(result)[0] == (f"test_bank.py::test_double_spend[corpus {schedule}]",
                                   "SKIPPED")
    out = result.stdout.str()
    where = f"test_bank.py:{_line('@pytest.mark.explore')}"
    first = schedule.partition(":")[2].partition("=")[0]  # the first deviation's point
    assert (f"SKIPPED [1] {where}: corpus entry corpus/{saved.name}: the schedule no longer "
            f"fits the code: at scheduling point {first} it picks candidate 1, which was "
            "mobile_withdrawal#1 "
            "when the schedule was saved, but is now phone_withdrawal#1") in out
    assert (f"DIVERGED test_bank.py::test_double_spend[corpus {schedule}]: corpus/{saved.name} no "
            "longer fits the code; delete it") in out


def test_replay_only_runs_just_the_corpus_entries(pytester: pytest.Pytester) -> None:
    schedule = _found(pytester)
    result = _run(pytester, "-v", "--explore-replay-only")
    assert _verbose(result) == [
        (f"test_bank.py::test_double_spend[corpus {schedule}]", "FAILED")]
    result.assert_outcomes(failed=1, deselected=1)


def test_no_save_writes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY)
    result = _run(pytester, "--explore-no-save")
    result.assert_outcomes(failed=1)
    assert not (pytester.path / "corpus").exists()
    assert "Saved:" not in result.stdout.str()


def test_ini_file_chooses_the_corpus_and_can_turn_saving_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY)
    pytester.makeini("[pytest]\nexplore_corpus = regressions\nexplore_save = false\n")
    _run(pytester).assert_outcomes(failed=1)
    assert not (pytester.path / "regressions").exists()
    _run(pytester, "--explore-save").assert_outcomes(failed=1)
    assert len(list((pytester.path / "regressions").glob("*.json"))) == 1


def test_command_line_overrides_the_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY)
    # The marker's search finds the bug; one schedule (the stock one) does not.
    _run(pytester, "--explore-max-schedules", "1").assert_outcomes(passed=1)
    _run(pytester, "--explore-max-schedules", "1", "--explore-strategy", "random",
         "--explore-seed", "3").assert_outcomes(passed=1)


@pytest.mark.parametrize(("marker", "ini", "args", "schedules"), [
    ("", "", (), 1000),                                   # the default: explore()'s
    ("", "", ("--explore-profile", "quick"), 200),        # a profile
    ("", "", ("--explore-profile", "ci"), 2000),
    ("", "explore_profile = ci", (), 2000),               # chosen in the ini file
    ("", "explore_max_schedules = 7", ("--explore-profile", "ci"), 7),  # ini > profile
    (", max_schedules=5", "explore_max_schedules = 7", (), 5),          # marker > ini
    (", max_schedules=5", "", ("--explore-max-schedules", "3"), 3),     # command line > all
])
def test_settings_precedence(pytester: pytest.Pytester, marker: str, ini: str,
                             args: tuple[str, ...], schedules: int) -> None:
    pytester.makepyfile(test_counter=PASSING.format(marker=marker))
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = _run(pytester, "-rP", *args)
    result.assert_outcomes(passed=1)
    assert f"{schedules} schedule(s) passed" in result.stdout.str()


def test_bad_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY)
    result = _run(pytester, "--explore-profile", "weekly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown explorer profile 'weekly'; the profiles are default, quick, ci, " \
        "nightly" in result.stderr.str()
    result = _run(pytester, "--explore-strategy", "sideways")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--explore-strategy: unknown strategy 'sideways'" in result.stderr.str()


def test_unknown_marker_setting_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_counter=PASSING.format(marker=", max_schedule=5"))
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.explore on test_counter.py::test_counter: "
                                 "unknown explorer setting(s) max_schedule; the settings "
                                 "are strategy, max_schedules, *"])


def test_bad_corpus_files_are_errors_and_the_rest_still_run(pytester: pytest.Pytester) -> None:
    schedule = _found(pytester)
    corpus = pytester.path / "corpus"
    (corpus / "aa-truncated.json").write_text('{"format": "explorer-corpus", "vers')
    (corpus / "ab-future.json").write_text('{"format": "explorer-corpus", "version": 99}')
    result = _run(pytester, "-v")
    assert _verbose(result) == [
        ("corpus/aa-truncated.json", "ERROR"),
        ("corpus/ab-future.json", "ERROR"),
        (f"test_bank.py::test_double_spend[corpus {schedule}]", "FAILED"),
        ("test_bank.py::test_double_spend", "FAILED"),
    ]
    result.assert_outcomes(failed=2, errors=2)
    out = result.stdout.str()
    assert f"corpus file {corpus / 'aa-truncated.json'}: is not valid JSON" in out
    assert f"corpus file {corpus / 'ab-future.json'}: was written by a newer explorer" in out


def test_parametrized_tests_keep_entries_per_parameter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY.replace(
        '@pytest.mark.explore(strategy="systematic", deviation_bound=2)\n',
        '@pytest.mark.parametrize("amount", [80, 40])\n'
        '@pytest.mark.explore(strategy="systematic", deviation_bound=2)\n').replace(
        "async def test_double_spend(opening_balance):",
        "async def test_double_spend(opening_balance, amount):").replace(
        "withdraw(account, 80), mobile_withdrawal(account, 80)",
        "withdraw(account, amount), mobile_withdrawal(account, amount)"))
    _run(pytester).assert_outcomes(failed=1, passed=1)  # 40 + 40 never overdraws
    [saved] = _corpus(pytester)
    assert json.loads(saved.read_text())["scenario"] == "test_bank.test_double_spend[80]"
    result = _run(pytester, "-v")
    assert [nodeid for nodeid, _ in _verbose(result)] == [
        f"test_bank.py::test_double_spend[80-corpus {_schedule(result)}]",
        "test_bank.py::test_double_spend[80]",
        "test_bank.py::test_double_spend[40]",
    ]


def test_reproduce_under_the_marker_runs_only_that_schedule(pytester: pytest.Pytester) -> None:
    schedule = _found(pytester)
    pytester.makepyfile(test_bank=BUGGY.replace(
        "async def test_double_spend",
        f"@__import__('explorer').reproduce({schedule!r})\nasync def test_double_spend"))
    result = _run(pytester, "--explore-no-save")
    result.assert_outcomes(failed=2)  # the corpus entry, and the reproduced schedule
    assert "under schedule #1 of reproduce search" in result.stdout.str()
    pytester.makepyfile(test_bank=FIXED.replace(
        "async def test_double_spend",
        f"@__import__('explorer').reproduce({schedule!r})\nasync def test_double_spend"))
    result = _run(pytester, "--explore-no-save")
    result.assert_outcomes(passed=1, failed=1)
    assert "no longer makes test_bank.test_double_spend fail" in result.stdout.str()


def test_marked_sync_test_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sync='''
        import pytest

        @pytest.mark.explore(max_schedules=10)
        def test_not_async():
            pass
    ''')
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "test_sync.py::test_not_async is marked @pytest.mark.explore but is not an 'async "
        "def' function.*define it as 'async def test_not_async(...)', or remove the marker."])


def test_module_marker_leaves_sync_tests_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY.replace(
        "@pytest.fixture", "pytestmark = pytest.mark.explore(max_schedules=10)\n\n\n"
                           "def test_sync():\n    pass\n\n\n@pytest.fixture"))
    result = _run(pytester, "-v", "--explore-no-save")
    assert ("test_bank.py::test_sync", "PASSED") in _verbose(result)
    assert ("test_bank.py::test_double_spend", "FAILED") in _verbose(result)


@pytest.mark.parametrize("plugin", ["", "no:explorer"])
def test_explored_decorator_works_without_the_marker(pytester: pytest.Pytester,
                                                     plugin: str) -> None:
    source = BUGGY.replace("import pytest\n", "import pytest\n\n"
                           "from explorer._explored import explored\n").replace(
        '@pytest.mark.explore(strategy="systematic", deviation_bound=2)',
        '@explored(strategy="systematic", deviation_bound=2)')
    fixed = FIXED[FIXED.index("async def withdraw"):].replace(
        "def withdraw", "def withdraw_fixed").replace(
        "await withdraw(", "await withdraw_fixed(").replace(
        "def mobile_withdrawal", "def mobile_withdrawal_fixed").replace(
        "gather(withdraw(account, 80), mobile_withdrawal(",
        "gather(withdraw_fixed(account, 80), mobile_withdrawal_fixed(").replace(
        "def test_double_spend", "def test_fixed").replace(
        '@pytest.mark.explore(strategy="systematic", deviation_bound=2)',
        '@explored(strategy="systematic", deviation_bound=2)')
    pytester.makepyfile(test_bank=source + fixed)
    result = _run(pytester, *(["-p", plugin] if plugin else []))
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "ScheduleFailure: test_bank.test_double_spend failed (assertion" in out
    assert "Why:" in out
    assert not (pytester.path / "corpus").exists()


def test_explored_decorator_and_marker_together_is_a_usage_error(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bank=BUGGY.replace(
        "async def test_double_spend", "@explored()\nasync def test_double_spend").replace(
        "import pytest\n", "import pytest\n\nfrom explorer._explored import explored\n"))
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*is decorated with @explored and marked "
                                 "@pytest.mark.explore; use one of them*"])


# pytest-asyncio wraps every async test in auto mode, and marked ones in strict mode.
@pytest.mark.parametrize(("mode", "mark"), [("auto", ""), ("strict", "@pytest.mark.asyncio\n")])
def test_pytest_asyncio_does_not_run_explored_tests(pytester: pytest.Pytester, mode: str,
                                                   mark: str) -> None:
    pytest.importorskip("pytest_asyncio")
    pytester.makepyfile(test_bank=BUGGY.replace(
        "async def test_double_spend", f"{mark}async def test_double_spend") + f'''

{mark}async def test_plain_asyncio():
    assert type(asyncio.get_running_loop()).__module__.startswith("asyncio")
''')
    pytester.makeini(f"[pytest]\nasyncio_mode = {mode}\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    result = _run(pytester, "-W", "error", "--explore-no-save", off=("trio",))
    # Run by pytest-asyncio, the race would pass under the one stock order.
    result.assert_outcomes(failed=1, passed=1)
    assert "Why: what ran out of turn" in result.stdout.str()


def test_pytest_trio_does_not_run_explored_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_trio")
    pytester.makepyfile(test_bank=BUGGY + '''

async def test_plain_trio():
    import trio
    await trio.sleep(0)
''')
    pytester.makeini("[pytest]\ntrio_mode = true\n")
    result = _run(pytester, "-W", "error", "--explore-no-save", off=("asyncio",))
    result.assert_outcomes(failed=1, passed=1)
    assert "Why: what ran out of turn" in result.stdout.str()


_PROBE = """
import importlib.util, json, sys
import pytest
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("_plugin_probe", sys.argv[1])
module = sys.modules["_plugin_probe"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_plugin_module_imports_nothing_heavy() -> None:
    path = explorer.pytest_plugin.__file__
    proc = subprocess.run([sys.executable, "-c", _PROBE, path], capture_output=True,
                          text=True, check=True)
    added = json.loads(proc.stdout)
    heavy = ("explorer", "asyncio", "networkx", "hypothesis", "trio")
    assert [m for m in added if m.split(".")[0] in heavy] == []
    assert "_plugin_probe" in added


def test_loading_the_entry_point_does_not_import_the_engine() -> None:
    code = ("import sys, explorer.pytest_plugin; "
            "print('explorer._engine' in sys.modules, 'networkx' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "False False"
