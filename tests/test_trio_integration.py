"""Trio programs through the pytest plugin, the ``explored`` decorator and the command line.

The pytest tests write small trio test modules and run pytest on them in-process with
``pytester`` (other async-test plugins off, as in ``test_pytest_plugin.py``). pytest-trio
is not a dependency: where its behaviour matters, a conftest stands in for it with the two
hooks of pytest-trio that touch explored tests (marker registration and the test runner).
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from explorer import cli
from explorer._corpus import Corpus, CorpusEntry
from tests.conftest import cli_project, run_cli

pytest_plugins = ["pytester"]

# Three sign-ins at staggered moments; each reads the counter, awaits a metrics call and
# writes it back. The stock trio order passes; two deviations lose an update.
TRIO_BUGGY = '''
import pytest
import trio


@pytest.fixture
def opening_count():
    return 0


async def report_metric():
    await trio.sleep(0)


async def sign_in(users):
    current = users["count"]
    await report_metric()
    users["count"] = current + 1


async def staggered(users, delay):
    for _ in range(delay):
        await trio.sleep(0)  # parsing, authentication
    await sign_in(users)


@pytest.mark.explore(MARKER)
async def test_sign_ins(opening_count):
    users = {"count": opening_count}
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(staggered, users, 2 * i)
    assert users["count"] == 3, f"lost update: {users['count']} active users"
'''
SETTINGS = 'runtime="trio", strategy="systematic", deviation_bound=2'
# The same checkpoints in the same order, so a saved schedule still fits: the read moves
# after the await, and no update is lost.
FIX = ('    current = users["count"]\n    await report_metric()\n',
       '    await report_metric()\n    current = users["count"]\n')


def trio_module(settings: str = SETTINGS, *, fixed: bool = False, marks: str = "",
                module_mark: str = "") -> str:
    source = TRIO_BUGGY.replace("MARKER", settings)
    if fixed:
        source = source.replace(*FIX)
    if marks:
        source = source.replace("@pytest.mark.explore(", f"{marks}\n@pytest.mark.explore(")
    if module_mark:
        source = source.replace("\n\n@pytest.fixture", f"\n\npytestmark = {module_mark}\n\n\n"
                                                      "@pytest.fixture", 1)
    return source


_VERBOSE = re.compile(r"^(\S.*?) (PASSED|FAILED|SKIPPED|ERROR)\b.*\[\s*\d+%\]$")


def _run(pytester: pytest.Pytester, *args: str,
         off: tuple[str, ...] = ("asyncio", "trio")) -> pytest.RunResult:
    blocked = [arg for name in (*off, "hypothesispytest") for arg in ("-p", f"no:{name}")]
    return pytester.runpytest(*blocked, *args)


def _verbose(result: pytest.RunResult) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for line in result.outlines if (m := _VERBOSE.match(line))]


def _schedule(result: pytest.RunResult) -> str:
    found = re.search(r"^Schedule: (v1:\S*)$", result.stdout.str(), re.MULTILINE)
    assert found, result.stdout.str()
    return found[1]


def _entries(directory: Path) -> list[CorpusEntry]:
    entries = list(Corpus(directory).entries())
    assert all(isinstance(e, CorpusEntry) for e in entries), entries
    return [e for e in entries if isinstance(e, CorpusEntry)]


def _assert_trio_failure(result: pytest.RunResult) -> str:
    out = result.stdout.str()
    assert "test_sign_ins failed (assertion at test_users.py:" in out, out
    # Shrinking keeps a schedule that loses one or two of the three updates, whichever is
    # simplest (fewest switches, then detours): either is this lost update.
    assert re.search(r"lost update: [12] active users", out), out
    schedule = _schedule(result)
    assert f"Replay:   explorer.replay(test_sign_ins, {schedule!r}, runtime='trio')" in out
    assert (f"add @explorer.reproduce({schedule!r}) under @pytest.mark.explore on "
            "test_sign_ins") in out
    return schedule


# --------------------------------------------------------------------------- pytest plugin


def test_trio_test_finds_the_lost_update_and_saves_a_trio_entry(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=trio_module())
    result = _run(pytester, "-W", "error", "--strict-markers")
    result.assert_outcomes(failed=1)
    schedule = _assert_trio_failure(result)
    assert "Swimlanes" in result.stdout.str() and "staggered#" in result.stdout.str()
    [entry] = _entries(pytester.path / "corpus")
    assert (entry.scenario, entry.runtime, str(entry.schedule)) == (
        "test_users.test_sign_ins", "trio", schedule)
    # Shrunk to one switch: one user runs ahead through its read and its write.
    assert entry.shrunk and entry.data["switches"] == 1


def test_trio_entry_replays_first_and_passes_once_fixed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=trio_module())
    schedule = _schedule(_run(pytester))
    result = _run(pytester, "-v")
    assert _verbose(result) == [
        (f"test_users.py::test_sign_ins[corpus {schedule}]", "FAILED"),
        ("test_users.py::test_sign_ins", "FAILED")]
    assert "still fails as saved" in result.stdout.str()
    assert len(list((pytester.path / "corpus").glob("*.json"))) == 1  # found again, once

    pytester.makepyfile(test_users=trio_module(fixed=True))
    result = _run(pytester, "-v")
    assert _verbose(result) == [
        (f"test_users.py::test_sign_ins[corpus {schedule}]", "PASSED"),
        ("test_users.py::test_sign_ins", "PASSED")]
    out = result.stdout.str()
    assert "explorer corpus" in out and "FIXED test_users.py::test_sign_ins[corpus" in out


def test_an_entry_of_another_runtime_is_skipped_as_diverged(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=trio_module())
    _run(pytester)
    [path] = (pytester.path / "corpus").glob("*.json")
    data = json.loads(path.read_text())
    data["runtime"] = "asyncio"
    path.write_text(json.dumps(data))
    result = _run(pytester, "-v", "-rs", "--explore-no-save")
    outcomes = [outcome for _, outcome in _verbose(result)]
    assert outcomes == ["SKIPPED", "FAILED"]
    out = result.stdout.str()
    assert "recorded under the asyncio runtime, but the test now runs under trio" in out
    assert "DIVERGED" in out


@pytest.mark.parametrize("where", ["test", "module", "class"])
def test_pytest_trio_mark_makes_trio_the_default(pytester: pytest.Pytester,
                                                 where: str) -> None:
    settings = 'strategy="systematic", deviation_bound=2'
    if where == "test":
        source = trio_module(settings, marks="@pytest.mark.trio")
    elif where == "module":
        source = trio_module(settings, module_mark="pytest.mark.trio")
    else:
        head, tail = trio_module(settings).split("@pytest.mark.explore(")
        tail = f"@pytest.mark.explore({tail}".replace("(opening_count)", "(self, opening_count)")
        source = f"{head}@pytest.mark.trio\nclass TestUsers:\n{textwrap.indent(tail, '    ')}"
    pytester.makepyfile(test_users=source)
    # pytest-trio is off: the explorer registers the trio marker, so strict markers and
    # warnings-as-errors accept it.
    result = _run(pytester, "-W", "error", "--strict-markers")
    result.assert_outcomes(failed=1)
    _assert_trio_failure(result)
    [entry] = _entries(pytester.path / "corpus")
    assert entry.runtime == "trio"


def test_a_runtime_setting_wins_over_the_trio_mark(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_bump='''
        import asyncio
        import pytest


        async def bump(counter):
            value = counter["n"]
            await asyncio.sleep(0)
            counter["n"] = value + 1


        @pytest.mark.trio
        @pytest.mark.explore(runtime="asyncio", strategy="systematic", deviation_bound=1)
        async def test_bump():
            counter = {"n": 0}
            await asyncio.gather(bump(counter), bump(counter))
            assert counter["n"] == 2
    ''')
    result = _run(pytester, "--explore-no-save")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "test_bump failed (assertion" in out and "runtime='trio'" not in out


def test_trio_marker_registered_once(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--markers")
    assert len([line for line in result.outlines if line.startswith("@pytest.mark.trio")]) == 1
    assert "registered by the explorer" in result.stdout.str()
    pytester.makeconftest(FAKE_PYTEST_TRIO)
    result = _run(pytester, "--markers")
    trio_lines = [line for line in result.outlines if line.startswith("@pytest.mark.trio")]
    assert trio_lines == ["@pytest.mark.trio: the fake pytest-trio's marker"]


# Stands in for pytest-trio: its marker, and its runtest_call hook, which replaces the test
# function of every test a trio mark reaches by a runner (failing on a plain function)
# unless the function says it is wrapped already.
FAKE_PYTEST_TRIO = '''
import functools
import inspect

import pytest
import trio


def pytest_configure(config):
    config.addinivalue_line("markers", "trio: the fake pytest-trio's marker")


def _trio_test_runner_factory(item):
    testfunc = item.obj
    if getattr(testfunc, "_trio_test_runner_wrapped", False):
        return testfunc
    if not inspect.iscoroutinefunction(testfunc):
        pytest.fail("test function `%r` is marked trio but is not async" % item)

    @functools.wraps(testfunc)
    def wrapper(**kwargs):
        trio.run(functools.partial(testfunc, **kwargs))

    wrapper._trio_test_runner_wrapped = True
    return wrapper


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    if item.get_closest_marker("trio") is not None:
        item.obj = _trio_test_runner_factory(item)
    yield
'''


def test_pytest_trio_leaves_explored_tests_of_a_trio_module_alone(
        pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAKE_PYTEST_TRIO)
    pytester.makepyfile(test_users=trio_module(
        'strategy="systematic", deviation_bound=2', module_mark="pytest.mark.trio") + '''

async def test_plain_trio():
    await trio.sleep(0)
    assert trio.lowlevel.current_task().name.endswith("test_plain_trio")
''')
    result = _run(pytester, "-v", "-W", "error", "--strict-markers", "--explore-no-save")
    assert _verbose(result) == [("test_users.py::test_sign_ins", "FAILED"),
                                ("test_users.py::test_plain_trio", "PASSED")]
    _assert_trio_failure(result)
    assert "is marked trio but is not async" not in result.stdout.str()


def test_reproduce_under_a_trio_marker_runs_that_schedule_under_trio(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=trio_module())
    schedule = _schedule(_run(pytester, "--explore-no-save"))
    pytester.makepyfile(test_users=trio_module(
        marks=f"@__import__('explorer').reproduce({schedule!r})"))
    result = _run(pytester, "--explore-no-save")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "under schedule #1 of reproduce search" in out
    assert f"explorer.replay(test_sign_ins, {schedule!r}, runtime='trio')" in out


def test_explored_decorator_takes_the_runtime(pytester: pytest.Pytester) -> None:
    source = trio_module().replace("import trio\n", "import trio\n\n"
                                   "from explorer import explored\n").replace(
        f"@pytest.mark.explore({SETTINGS})", f"@explored({SETTINGS})")
    source += '''

@explored(runtime="curio")
async def test_unknown_runtime():
    pass
'''
    pytester.makepyfile(test_users=source)
    result = _run(pytester, "-p", "no:explorer")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "ScheduleFailure: test_users.test_sign_ins failed (assertion" in out
    assert "runtime='trio')" in out
    assert ("@explored on test_users.test_unknown_runtime: unknown runtime 'curio'; "
            "available runtimes: asyncio, trio") in out


def test_unknown_runtime_in_the_marker_names_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_users=trio_module('runtime="curio"'))
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.explore on test_users.py::test_sign_ins: unknown runtime 'curio'; "
        "available runtimes: asyncio, trio*"])


# --------------------------------------------------------------------------- command line


SCENARIOS = '''
import pytest
import trio

from explorer import explored


async def _sign_in(users, fixed):
    if fixed:
        await trio.sleep(0)
    current = users["count"]
    if not fixed:
        await trio.sleep(0)  # metrics call
    users["count"] = current + 1


async def _staggered(users, delay, fixed):
    for _ in range(delay):
        await trio.sleep(0)
    await _sign_in(users, fixed)


async def _sign_ins(fixed):
    users = {"count": 0}
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(_staggered, users, 2 * i, fixed)
    assert users["count"] == 3, f"lost update: {users['count']} active users"


async def lost_update():
    await _sign_ins(False)


async def lost_update_fixed():
    await _sign_ins(True)


@pytest.mark.explore(runtime="trio", strategy="systematic", deviation_bound=2)
async def test_marked():
    await _sign_ins(False)


@pytest.mark.trio
@pytest.mark.explore(strategy="systematic", deviation_bound=2)
async def test_trio_marked():
    await _sign_ins(False)


@explored(runtime="trio", strategy="systematic", deviation_bound=2)
async def test_explored():
    await _sign_ins(False)
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
            ) -> tuple[Path, str]:
    """A project with a trio scenario module named after the test (module names are
    process-wide, so each test gets its own)."""
    return cli_project(tmp_path, monkeypatch, request, "trio_cli_", SCENARIOS)


def _json_out(out: str) -> Any:
    return json.loads(out)


def test_cli_explores_replays_and_shrinks_under_trio(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::lost_update", "--runtime", "trio",
                           "-s", "systematic", "-d", "2", "--json")
    assert code == cli.FAILURES
    [result] = _json_out(out)["results"]
    assert result["runtime"] == result["settings"]["runtime"] == "trio"
    failure = result["failure"]
    assert failure["runtime"] == "trio" and failure["outcome"]["kind"] == "assertion"
    assert failure["replay"].endswith("runtime='trio')")
    [entry] = _entries(root / "corpus")
    assert (entry.scenario, entry.runtime) == (f"{name}.lost_update", "trio")
    schedule = str(entry.schedule)

    code, out, _ = run_cli(capsys, "explore", f"{name}.py::lost_update_fixed", "--runtime",
                           "trio", "-s", "systematic", "-d", "2")
    assert code == cli.OK
    assert f"ok    {name}.py::lost_update_fixed (trio): " in out
    assert "all schedules with at most 2 deviation(s)" in out

    # A corpus entry replays under the runtime it recorded, without --runtime.
    code, out, _ = run_cli(capsys, "replay", f"{name}.lost_update", str(entry.path))
    assert code == cli.FAILURES
    assert f"explorer.replay(lost_update, {schedule!r}, runtime='trio')" in out
    code, _, err = run_cli(capsys, "replay", f"{name}.lost_update", str(entry.path),
                           "--runtime", "asyncio")
    assert code == cli.USAGE and "recorded under the trio runtime" in err

    code, out, _ = run_cli(capsys, "replay", f"{name}:lost_update", schedule, "--runtime",
                           "trio", "--json")
    data = _json_out(out)
    assert code == cli.FAILURES and data["status"] == "fails"
    assert data["runtime"] == data["failure"]["runtime"] == "trio"
    code, out, _ = run_cli(capsys, "replay", f"{name}:lost_update_fixed", schedule,
                           "--runtime", "trio", "--json")
    assert code == cli.NOT_REPRODUCED and _json_out(out)["status"] == "passed"

    # The schedule as the search found it, unshrunk, shrinks to the saved one.
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::lost_update", "--runtime", "trio",
                           "-s", "systematic", "-d", "2", "--no-shrink", "--no-save", "--json")
    longer = _json_out(out)["results"][0]["failure"]["schedule"]
    assert longer != schedule
    code, out, _ = run_cli(capsys, "shrink", f"{name}:lost_update", longer, "--runtime",
                           "trio", "--json")
    data = _json_out(out)
    assert code == cli.FAILURES and data["runtime"] == data["failure"]["runtime"] == "trio"
    assert data["shrunk"] == schedule and data["original"] == longer
    code, out, _ = run_cli(capsys, "shrink", f"{name}.lost_update", str(entry.path))
    assert code == cli.FAILURES and "runtime='trio'" in out


def test_corpus_list_and_show_give_the_runtime(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    assert run_cli(capsys, "explore", f"{name}:lost_update", "--runtime", "trio", "-s",
                   "systematic", "-d", "2")[0] == cli.FAILURES
    [entry] = _entries(root / "corpus")
    code, out, _ = run_cli(capsys, "corpus", "list")
    assert code == cli.OK and f"{name}.lost_update (trio)  assertion at" in out
    code, out, _ = run_cli(capsys, "corpus", "list", "--json")
    assert [row["runtime"] for row in _json_out(out)["entries"]] == ["trio"]
    code, out, _ = run_cli(capsys, "corpus", "show", entry.path.name[:12])
    assert code == cli.OK and f"scenario:   {name}.lost_update (trio)" in out
    # Printed as a path and a name, so that it works from the project root as printed.
    assert f"explorer replay {name}.py::lost_update '{entry.schedule}' --runtime trio" in out
    code, out, _ = run_cli(capsys, "corpus", "verify", f"{name}:lost_update", "--json",
                           "--no-collect")
    [row] = _json_out(out)["entries"]
    assert code == cli.FAILURES and (row["status"], row["runtime"]) == ("fails", "trio")


@pytest.mark.parametrize("test", ["test_marked", "test_trio_marked", "test_explored"])
def test_cli_takes_the_runtime_of_a_marked_test(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str], test: str) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::{test}", "--json", "--no-save")
    assert code == cli.FAILURES
    [result] = _json_out(out)["results"]
    assert result["runtime"] == result["failure"]["runtime"] == "trio"
    assert result["strategy"]["name"] == "systematic"
    schedule = result["failure"]["schedule"]
    code, out, _ = run_cli(capsys, "replay", f"{name}.py::{test}", schedule)
    assert code == cli.FAILURES and "runtime='trio'" in out


def test_cli_explores_every_marked_trio_test_of_a_file(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}.py", "--json", "--no-save")
    results = _json_out(out)["results"]
    assert code == cli.FAILURES
    assert {(r["target"].rsplit("::", 1)[1], r["runtime"], r["status"]) for r in results} == {
        ("test_marked", "trio", "failed"), ("test_trio_marked", "trio", "failed")}


def test_cli_workers_and_shards_carry_the_runtime(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    args = ["explore", f"{name}:lost_update", f"{name}:lost_update_fixed", "--runtime",
            "trio", "-s", "systematic", "-d", "2", "--json", "--no-save"]
    code, out, _ = run_cli(capsys, *args)
    alone = _json_out(out)["results"]
    code2, out, _ = run_cli(capsys, *args, "--workers", "2")
    together = _json_out(out)["results"]
    assert code == code2 == cli.FAILURES
    assert [r["runtime"] for r in together] == ["trio", "trio"]
    assert together[0]["failure"]["runtime"] == "trio"
    assert together[0]["failure"]["trace"], "rebuilt here, under trio"
    assert together[1]["schedules"] == alone[1]["schedules"]
    counts = []
    for shard in ("1/2", "2/2"):
        code, out, _ = run_cli(capsys, "explore", f"{name}:lost_update_fixed", "--runtime",
                               "trio", "-s", "systematic", "-d", "2", "--json", "--shard",
                               shard)
        [result] = _json_out(out)["results"]
        assert code == cli.OK and result["runtime"] == "trio"
        counts.append(result["schedules"])
    assert sum(counts) == alone[1]["schedules"]


@pytest.mark.parametrize("command", [
    ["explore", "{name}:lost_update"],
    ["replay", "{name}:lost_update", "v1:0=1"],
    ["shrink", "{name}:lost_update", "v1:0=1"],
])
def test_unknown_runtime_is_a_usage_error(project: tuple[Path, str],
                                          capsys: pytest.CaptureFixture[str],
                                          command: list[str]) -> None:
    _, name = project
    code, out, err = run_cli(capsys, *(c.format(name=name) for c in command),
                             "--runtime", "curio")
    assert code == cli.USAGE and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["explorer: error: --runtime: unknown runtime 'curio'; available "
                     "runtimes: asyncio, trio"]


def test_a_configured_target_gives_the_runtime(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[tool.explorer]\ntargets = [\n"
        f'  {{target = "{name}:lost_update", runtime = "trio", strategy = "systematic"}},\n'
        "]\n")
    code, out, _ = run_cli(capsys, "explore", "--json", "-d", "2", "--no-save")
    [result] = _json_out(out)["results"]
    assert code == cli.FAILURES and result["runtime"] == "trio"
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[tool.explorer]\ntargets = [\n"
        f'  {{target = "{name}:lost_update", runtime = "curio"}},\n]\n')
    code, _, err = run_cli(capsys, "explore")
    assert code == cli.USAGE
    assert "unknown runtime 'curio'" in err and "available runtimes: asyncio, trio" in err


@pytest.mark.slow
@pytest.mark.usefixtures("no_foreign_garbage")
def test_nightly_explores_a_trio_target_and_verifies_its_entry(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'demo'\n\n[tool.explorer]\ntargets = [\n"
        f'  {{target = "{name}:lost_update", runtime = "trio", strategy = "systematic"}},\n'
        f'  {{target = "{name}:lost_update_fixed", runtime = "trio"}},\n'
        "]\n")
    args = ["nightly", "--budget", "4s", "--no-collect", "--seed", "0", "--json"]
    code, out, _ = run_cli(capsys, *args, "--output", "first")
    summary = _json_out(out)
    assert code == cli.FAILURES
    assert [(f["scenario"], f["runtime"], f["new"]) for f in summary["failures"]] == [
        (f"{name}.lost_update", "trio", True)]
    assert {row["target"]: (row["runtime"], row["status"]) for row in summary["scenarios"]} \
        == {f"{name}:lost_update": ("trio", "failed"),
            f"{name}:lost_update_fixed": ("trio", "passed")}, summary["errors"]
    [entry] = _entries(root / "corpus")
    assert entry.runtime == "trio"
    assert summary["failure_details"][0]["replay"].endswith("runtime='trio')")

    # The next night verifies the entry (under trio) and finds the same bug, not a new one.
    code, out, _ = run_cli(capsys, *args, "--output", "second")
    summary = _json_out(out)
    assert code == cli.FAILURES
    assert [(row["runtime"], row["status"]) for row in summary["corpus"]] == [
        ("trio", "fails")]
    assert not any(f["new"] for f in summary["failures"])
    assert len(_entries(root / "corpus")) == 1
