"""The ``explorer`` command line: targets, exit codes, output, corpus commands, workers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import explorer
from explorer import _corpus, cli
from explorer._corpus import Corpus
from explorer._targets import TargetError, parse_target
from tests.conftest import cli_project, run_cli

SCENARIOS = textwrap.dedent('''
    import asyncio

    import pytest


    async def _withdraw(account, amount):
        if account["balance"] >= amount:
            await asyncio.sleep(0)  # ledger write
            account["balance"] -= amount


    async def _mobile(account, amount):
        await asyncio.sleep(0)  # token lookup
        await asyncio.sleep(0)  # session refresh
        await _withdraw(account, amount)


    async def _scenario(check):
        account = {"balance": 100}
        await asyncio.gather(_withdraw(account, 80), _mobile(account, 80))
        if check:
            assert account["balance"] >= 0, "double spend"


    async def buggy():
        await _scenario(True)


    async def fixed():
        await _scenario(False)  # same tasks and awaits, no bug to find


    @pytest.mark.explore(strategy="systematic", deviation_bound=2)
    async def test_marked():
        await _scenario(True)


    async def test_unmarked():
        await _scenario(True)


    async def needs_args(x):
        await _scenario(True)
''')


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
            ) -> tuple[Path, str]:
    """A project directory with a scenario module named after the test (module names are
    process-wide, so each test gets its own)."""
    return cli_project(tmp_path, monkeypatch, request, "cli_", SCENARIOS)


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("explorer: error: ")
    return lines[0]


# --------------------------------------------------------------------------- targets


def test_target_forms(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("")
    ref = parse_target("pkg/mod.py::Cls::fn", cwd=tmp_path)
    assert (ref.module, ref.attr, ref.paths) == ("pkg.mod", "Cls.fn", (str(tmp_path),))
    ref = parse_target("examples.bank:double_spend")
    assert (ref.module, ref.attr, ref.paths) == ("examples.bank", "double_spend", ())
    assert parse_target("examples.bank.double_spend").canonical == "examples.bank.double_spend"
    for bad, words in [("", "empty"), ("t.py::test[1]", "parametrized"),
                       ("nofile.py::f", "no file"), ("a b", "is not a target"),
                       ("mod:", "package.module:function")]:
        with pytest.raises(TargetError, match=words):
            parse_target(bad, cwd=tmp_path)


def test_explore_file_target_fails_saves_and_exits_1(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::buggy", "-s", "systematic")
    assert code == cli.FAILURES
    assert f"FAIL  {name}.py::buggy: assertion" in out
    assert "Schedule: v1:" in out and "Why:" in out
    [entry] = Corpus(root / "corpus").entries()
    assert not isinstance(entry, Exception)
    assert entry.scenario == f"{name}.buggy"
    assert str(entry.path) in out


def test_explore_module_target_passes(project: tuple[Path, str],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}:fixed", "--strategy", "systematic",
                           "--deviation-bound", "2")
    assert code == cli.OK
    assert "all schedules with at most 2 deviation(s)" in out
    assert "all 1 target(s) passed" in out


def test_explore_json_and_no_save(project: tuple[Path, str],
                                  capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}:buggy", f"{name}:fixed", "--json",
                           "--no-save", "--seed", "3", "--max-schedules", "50",
                           "--max-steps", "500")
    data = json.loads(out)
    assert code == data["exit_code"] == cli.FAILURES
    buggy, fixed = data["results"]
    assert buggy["status"] == "failed" and fixed["status"] == "passed"
    assert buggy["failure"]["outcome"]["kind"] == "assertion"
    assert buggy["failure"]["schedule"].startswith("v1:")
    assert buggy["failure"]["trace"] and buggy["failure"]["corpus_path"] is None
    # The default strategy, as for explore(): the portfolio, seeded by --seed.
    assert buggy["settings"]["strategy"] == "portfolio"
    assert buggy["strategy"]["via"] == "portfolio" and buggy["strategy"]["seed"] == 3
    assert fixed["schedules"] == 50 and fixed["settings"]["max_steps"] == 500
    assert not (root / "corpus").exists()


def test_explore_whole_file_takes_marked_tests_with_their_options(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}.py", "--json", "--no-save")
    data = json.loads(out)
    assert code == cli.FAILURES
    assert [r["target"] for r in data["results"]] == [f"{name}.py::test_marked"]
    assert data["results"][0]["settings"]["strategy"] == "systematic"
    assert data["results"][0]["settings"]["deviation_bound"] == 2
    # The same test as a pytest node id; the command line overrides the marker.
    code, out, _ = run_cli(capsys, "explore", f"{name}.py::test_marked", "--json",
                           "--no-save", "-s", "random", "--seed", "1")
    assert json.loads(out)["results"][0]["strategy"]["name"] == "random"


def test_nothing_to_explore_exits_5(project: tuple[Path, str],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = project
    (root / "plain.py").write_text("async def helper():\n    pass\n")
    code, _, err = run_cli(capsys, "explore", "plain.py")
    assert code == cli.NOTHING
    assert "nothing to explore" in one_line_error(err)
    code, _, err = run_cli(capsys, "explore")
    assert code == cli.NOTHING


@pytest.mark.parametrize(("args", "words"), [
    (["explore", "no_such_module_x:fn"], "no module named 'no_such_module_x'"),
    (["explore", "{name}:nothing"], "has no attribute 'nothing'"),
    (["explore", "{name}:needs_args"], "takes arguments (x)"),
    (["explore", "{name}:_SCENARIO"], "has no attribute"),
    (["explore", "missing.py::f"], "no file missing.py"),
    (["explore", "{name}:buggy", "--strategy", "nope"], "unknown strategy 'nope'"),
    (["explore", "{name}:buggy", "--max-schedules", "0"], "--max-schedules"),
    (["explore", "{name}:buggy", "--bogus"], "No such option: --bogus"),
    (["explore", "{name}:buggy", "--shard", "3/2"], "between 1 and 2"),
    (["explore", "{name}:buggy", "--shard", "x"], "is not i/n"),
    (["explore", "{name}:buggy", "--max-time", "soon"], "not a duration"),
    (["replay", "{name}:buggy", "v9"], "not a schedule string"),
    (["corpus", "show", "nothing-like-this"], "no entry"),
    (["report"], "give summary.json files"),
])
def test_usage_errors_are_one_line_and_exit_2(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str], args: list[str],
        words: str) -> None:
    _, name = project
    code, _, err = run_cli(capsys, *(a.format(name=name) for a in args))
    assert code == cli.USAGE
    assert words in one_line_error(err)


def test_internal_error_exits_3_with_traceback(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, name = project

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("explorer._parallel.explore_target", broken)
    code, _, err = run_cli(capsys, "explore", f"{name}:buggy")
    assert code == cli.INTERNAL
    assert "Traceback" in err and "internal error: RuntimeError: boom" in err


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == cli.OK
    for command in ("explore", "replay", "shrink", "corpus", "nightly", "report"):
        assert command in out
    code, out, _ = run_cli(capsys, "corpus", "--help")
    for command in ("list", "show", "verify", "gc", "rm", "migrate"):
        assert command in out


def test_progress_bars_on_stderr(project: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _, name = project
    monkeypatch.setenv("EXPLORER_PROGRESS", "1")
    monkeypatch.setenv("COLUMNS", "150")
    code, out, err = run_cli(capsys, "explore", f"{name}:fixed", "-n", "300", "--json")
    assert code == cli.OK
    assert json.loads(out)["results"][0]["schedules"] == 300  # stdout stays pure JSON
    assert "300 schedules" in err and "0 failure(s)" in err and "/s" in err


# --------------------------------------------------------------------------- replay, shrink


def _failing_schedule(name: str) -> str:
    module = __import__(name)
    result = explorer.explore(module.buggy, strategy="systematic", raise_on_failure=False)
    assert result.failure is not None
    return str(result.failure.schedule)


def test_replay_exit_codes(project: tuple[Path, str],
                           capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    run_cli(capsys, "explore", f"{name}:fixed", "-n", "1")  # imports the module
    schedule = _failing_schedule(name)
    code, out, _ = run_cli(capsys, "replay", f"{name}:buggy", schedule)
    assert code == cli.FAILURES and "double spend" in out and f"Schedule: {schedule}" in out
    code, out, _ = run_cli(capsys, "replay", f"{name}.buggy", schedule, "--json")
    assert code == cli.FAILURES and json.loads(out)["status"] == "fails"
    code, _, err = run_cli(capsys, "replay", f"{name}:fixed", schedule)
    assert code == cli.NOT_REPRODUCED
    assert "did not reproduce" in err and "passes under" in err
    code, _, err = run_cli(capsys, "replay", f"{name}:buggy", "v1:0=9")
    assert code == cli.NOT_REPRODUCED
    assert "only 2 candidate(s) were ready" in err and "Traceback" not in err
    code, out, err = run_cli(capsys, "replay", f"{name}:buggy", "v1:0=9", "--tolerant",
                             "--json")
    assert json.loads(out)["divergences"]


def test_shrink(project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    run_cli(capsys, "explore", f"{name}:fixed", "-n", "1")
    schedule = _failing_schedule(name)
    module = __import__(name)
    # Find a failing schedule with more deviations than needed, by a random walk.
    found = None
    for seed in range(50):
        result = explorer.explore(module.buggy, seed=seed, shrink=False,
                                  raise_on_failure=False)
        failure = result.failure
        if failure is not None and failure.deviations > len(schedule.split(",")):
            found = str(failure.schedule)
            break
    assert found is not None
    code, out, _ = run_cli(capsys, "shrink", f"{name}:buggy", found, "--json", "--corpus",
                           str(root / "shrunk"))
    data = json.loads(out)
    assert code == cli.FAILURES
    assert data["original"] == found
    assert data["failure"]["deviations"] < len(found.split(","))
    assert data["failure"]["shrink"]["proven_minimal"]
    assert Path(data["corpus_path"]).is_file()
    code, _, err = run_cli(capsys, "shrink", f"{name}:fixed", schedule)
    assert code == cli.NOT_REPRODUCED and "nothing to shrink" in err


# --------------------------------------------------------------------------- corpus


def _entry_with_scenario(path: Path, source: Path, scenario: str) -> Path:
    data = json.loads(source.read_text())
    data["scenario"] = scenario
    target = path / f"{scenario.rsplit('.', 1)[-1]}-{abs(hash(scenario)) % 10**16:016d}.json"
    target.write_text(json.dumps(data))
    return target


def test_corpus_commands(project: tuple[Path, str], capsys: pytest.CaptureFixture[str]
                         ) -> None:
    root, name = project
    corpus = root / "corpus"
    assert run_cli(capsys, "explore", f"{name}:buggy", "-s", "systematic")[0] == 1
    # Entries replay only configured scenarios, matched by name: here [tool.explorer].
    (root / "pyproject.toml").write_text(
        f"[project]\nname = 'demo'\n[tool.explorer]\ntargets = ['{name}:buggy', "
        f"'{name}:fixed']\n")
    [saved] = Corpus(corpus).paths()
    fixed = _entry_with_scenario(corpus, saved, f"{name}.fixed")
    gone = _entry_with_scenario(corpus, saved, f"{name}.removed_since")
    unknown = _entry_with_scenario(corpus, saved, "no_such_package_q.mod.fn")
    (corpus / "zz-broken.json").write_text("{not json")
    (corpus / ".tmp-abandoned.json").write_text("{")

    code, out, _ = run_cli(capsys, "corpus", "list")
    assert code == cli.OK and "5 entries" in out and "UNREADABLE" in out
    code, out, _ = run_cli(capsys, "corpus", "list", "--json")
    assert len(json.loads(out)["entries"]) == 5
    code, out, _ = run_cli(capsys, "corpus", "show", saved.stem.rsplit("-", 1)[1][:8])
    assert code == cli.OK and f"explorer replay {name}.py::buggy 'v1:" in out

    code, out, _ = run_cli(capsys, "corpus", "verify", "--json", "--no-collect")
    statuses = {Path(e["path"]).name: e["status"] for e in json.loads(out)["entries"]}
    assert code == cli.FAILURES
    assert statuses == {saved.name: "fails", fixed.name: "fixed",
                        gone.name: "unknown-scenario", unknown.name: "unknown-scenario",
                        "zz-broken.json": "unreadable"}
    code, out, _ = run_cli(capsys, "corpus", "verify", "--no-collect")
    assert "1 fails, 2 unknown-scenario, 1 unreadable, 1 fixed" in out

    code, out, err = run_cli(capsys, "corpus", "gc", "--dry-run", "--no-collect")
    assert f"would delete {fixed.name} (fixed)" in out
    assert gone.name in err and unknown.name in err and "--prune-unknown" in err
    assert fixed.exists() and gone.exists()
    code, out, _ = run_cli(capsys, "corpus", "gc", "--no-collect")
    assert not fixed.exists() and gone.exists() and unknown.exists()
    assert saved.exists() and not (corpus / ".tmp-abandoned.json").exists()
    code, out, _ = run_cli(capsys, "corpus", "gc", "--prune-unknown", "--no-collect")
    assert f"deleted {gone.name} (unknown scenario)" in out
    assert not gone.exists() and not unknown.exists() and saved.exists()

    code, out, _ = run_cli(capsys, "corpus", "rm", "zz-broken")
    assert code == cli.OK and not (corpus / "zz-broken.json").exists()
    code, out, _ = run_cli(capsys, "corpus", "verify", "--no-collect")
    assert code == cli.FAILURES and out.startswith("fails")
    saved.unlink()
    code, _, err = run_cli(capsys, "corpus", "verify", "--no-collect")
    assert code == cli.NOTHING

def test_corpus_verify_all_fixed_exits_0(project: tuple[Path, str],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    run_cli(capsys, "explore", f"{name}:buggy", "-s", "systematic")
    [saved] = Corpus(root / "corpus").paths()
    _entry_with_scenario(root / "corpus", saved, f"{name}.fixed")
    saved.unlink()
    assert run_cli(capsys, "corpus", "verify", f"{name}:fixed", "--no-collect")[0] == cli.OK


def test_corpus_migrate(project: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    root, name = project
    run_cli(capsys, "explore", f"{name}:buggy", "-s", "systematic")
    [saved] = Corpus(root / "corpus").paths()
    before = saved.read_bytes()
    code, out, _ = run_cli(capsys, "corpus", "migrate")
    assert code == cli.OK and "0 entries migrated; 1 already at format version 1" in out
    assert saved.read_bytes() == before
    # An entry of an older format goes through the migration steps, atomically.
    old = json.loads(before)
    old["version"] = 0
    old["legacy"] = True
    saved.write_text(json.dumps(old))
    monkeypatch.setitem(_corpus.MIGRATIONS, 0,
                        lambda data: {k: v for k, v in data.items() if k != "legacy"})
    code, out, _ = run_cli(capsys, "corpus", "migrate", "--dry-run")
    assert "would migrate" in out and json.loads(saved.read_text())["version"] == 0
    code, out, _ = run_cli(capsys, "corpus", "migrate")
    migrated = json.loads(saved.read_text())
    assert migrated["version"] == 1 and "legacy" not in migrated
    assert Corpus(root / "corpus").load(saved).schedule == Corpus(root / "corpus").load(
        saved).schedule


# --------------------------------------------------------------------------- workers, shards


def test_workers_find_the_same_failure_as_one_process(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explore", "examples.bank:double_spend", "examples.bank:double_spend_fixed",
            "examples.transfer:abba", "-s", "systematic", "-d", "3", "--json", "--no-save"]
    code, out, _ = run_cli(capsys, *args)
    alone = json.loads(out)["results"]
    code2, out, _ = run_cli(capsys, *args, "--workers", "2")
    together = json.loads(out)["results"]
    assert code == code2 == cli.FAILURES

    def signatures(results: list[dict[str, Any]]) -> list[Any]:
        return [(r["target"], r["failure"] and r["failure"]["outcome"]["kind"],
                 r["failure"] and r["failure"]["outcome"]["location"]) for r in results]

    assert signatures(alone) == signatures(together)
    assert together[1]["schedules"] == alone[1]["schedules"]  # disjoint, complete
    assert together[1]["coverage"].startswith("jointly by 2 workers")
    assert "at most 3 deviation(s)" in together[1]["coverage"]
    assert together[0]["failure"]["trace"], "rebuilt here from the worker's schedule"


def test_shards_split_the_systematic_search(project: tuple[Path, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    counts = []
    for shard in ("1/3", "2/3", "3/3"):
        code, out, _ = run_cli(capsys, "explore", "examples.bank:double_spend_fixed", "-s",
                               "systematic", "-d", "3", "--json", "--shard", shard)
        [result] = json.loads(out)["results"]
        assert code == cli.OK and result["strategy"]["shard"] == shard
        assert f"shard {shard}'s part" in result["coverage"]
        counts.append(result["schedules"])
    code, out, _ = run_cli(capsys, "explore", "examples.bank:double_spend_fixed", "-s",
                           "systematic", "-d", "3", "--json")
    assert sum(counts) == json.loads(out)["results"][0]["schedules"]


def test_console_script_entry_point() -> None:
    from importlib.metadata import entry_points

    [script] = entry_points(group="console_scripts", name="explorer")
    assert script.value == "explorer.cli:main"


def test_help_keeps_bracketed_text(capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Help texts are plain: '[tool.explorer]' is not read as a style tag and dropped."""
    monkeypatch.setenv("COLUMNS", "200")
    for command in (["explore"], ["nightly"], ["report"], ["corpus", "verify"]):
        code, out, _ = run_cli(capsys, *command, "--help")
        assert code == cli.OK
        assert "[tool.explorer] targets" in " ".join(out.split()), command
    code, out, _ = run_cli(capsys, "explore", "--help")
    words = " ".join(out.split())  # the help is wrapped to the terminal
    assert "[tool.explorer] profile" in words and "[tool.explorer] corpus" in words


# --------------------------------------------------------------------------- a user's project

CART_TESTS = textwrap.dedent('''
    import asyncio

    import pytest


    async def _checkout(cart, codes):
        await asyncio.sleep(0)  # the session lookup
        if cart["stock"] > 0:
            await asyncio.sleep(0)  # the payment
            cart["stock"] -= 1
            codes.append(200)
        else:
            codes.append(409)


    @pytest.mark.explore(strategy="systematic")
    async def test_no_oversell():
        cart, codes = {"stock": 1}, []
        await asyncio.gather(_checkout(cart, codes), _checkout(cart, codes))
        assert codes == [200, 409]
''')


@pytest.fixture
def user_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> str:
    """A project laid out as most are: tests/ without __init__.py, run from its root. The
    test module is named after the test (module names are process-wide)."""
    name = "test_cart_" + request.node.name.removeprefix("test_")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / f"{name}.py").write_text(CART_TESTS)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")
    return f"tests/{name}.py::test_no_oversell"


def test_replay_line_of_corpus_show_works_as_printed(
        user_project: str, capsys: pytest.CaptureFixture[str]) -> None:
    import shlex

    code, out, _ = run_cli(capsys, "explore", user_project)
    assert code == cli.FAILURES
    assert "assert [200, 200] == [200, 409]" in out  # pytest's text, not "(no message)"
    [entry] = Path("corpus").glob("*.json")
    code, out, _ = run_cli(capsys, "corpus", "show", str(entry))
    [line] = [line.split("replay:", 1)[1].strip() for line in out.splitlines()
              if line.strip().startswith("replay:")]
    argv = shlex.split(line)
    assert argv[:3] == ["explorer", "replay", user_project]
    code, out, err = run_cli(capsys, *argv[1:])
    assert code == cli.FAILURES, err
    assert "AssertionError: assert [200, 200] == [200, 409]" in out
    assert "(no message)" not in out


def test_a_recorded_scenario_name_is_found_in_the_tests_directory(
        user_project: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The name a corpus entry records (module.function) replays from the project root
    even though tests/ is not a package: the file is found as pytest would import it."""
    from explorer._targets import locate

    code, out, _ = run_cli(capsys, "explore", user_project, "--no-save")
    schedule = next(line.split()[1] for line in out.splitlines()
                    if line.startswith("Schedule:"))
    module = Path(user_project.partition("::")[0]).stem
    found = locate(f"{module}.test_no_oversell", Path.cwd())
    assert found is not None and found.spec == user_project
    code, out, _ = run_cli(capsys, "replay", f"{module}.test_no_oversell", schedule)
    assert code == cli.FAILURES and "assert [200, 200] == [200, 409]" in out


def test_html_report_of_a_corpus_shows_the_assert_and_the_node_id(
        user_project: str, capsys: pytest.CaptureFixture[str]) -> None:
    import html

    assert run_cli(capsys, "explore", user_project)[0] == cli.FAILURES
    code, _, err = run_cli(capsys, "report", "--corpus", "corpus", "--target", user_project,
                           "-o", "report.html")
    assert code == cli.OK, err
    page = html.unescape(Path("report.html").read_text())
    assert "assert [200, 200] == [200, 409]" in page
    assert f"explorer replay {user_project} 'v1:" in page


FIXTURE_CONFTEST = textwrap.dedent('''
    import pytest


    @pytest.fixture
    def inventory():
        return {"stock": 1}
''')

FIXTURE_TESTS = textwrap.dedent('''
    import asyncio

    import pytest


    @pytest.mark.explore(strategy="systematic")
    async def test_no_oversell_with_fixture(inventory):
        codes = []

        async def checkout():
            await asyncio.sleep(0)  # the session lookup
            if inventory["stock"] > 0:
                await asyncio.sleep(0)  # the payment
                inventory["stock"] -= 1
                codes.append(200)
            else:
                codes.append(409)

        await asyncio.gather(checkout(), checkout())
        assert codes == [200, 409]
''')


@pytest.mark.slow
def test_replay_of_a_test_with_fixtures_goes_through_pytest(tmp_path: Path) -> None:
    """A test that takes fixtures replays as printed: pytest sets it up, with the
    project's conftest, and the exit code is the command's (1: it still fails)."""
    import os
    import shlex
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text(FIXTURE_CONFTEST)
    (tmp_path / "tests" / "test_shop_fixture.py").write_text(FIXTURE_TESTS)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    env = {**os.environ, "PYTHONPATH": str(root), "EXPLORER_PROGRESS": "0"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300, check=False)

    found = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")
    assert found.returncode == 1, found.stdout + found.stderr
    [entry] = (tmp_path / "corpus").glob("*.json")
    shown = run("-m", "explorer.cli", "corpus", "show", str(entry))
    [line] = [line.split("replay:", 1)[1].strip() for line in shown.stdout.splitlines()
              if line.strip().startswith("replay:")]
    argv = shlex.split(line)
    assert argv[2] == "tests/test_shop_fixture.py::test_no_oversell_with_fixture"
    replayed = run("-m", "explorer.cli", *argv[1:])
    assert replayed.returncode == cli.FAILURES, replayed.stdout + replayed.stderr
    assert "assert [200, 200] == [200, 409]" in replayed.stdout
    refused = run("-m", "explorer.cli", *argv[1:], "--json")
    assert refused.returncode == cli.USAGE and "pytest replays it" in refused.stderr


def test_which_tests_need_pytest(tmp_path: Path) -> None:
    """Read from the source: fixtures (arguments), a test method, a conftest.py above."""
    from explorer._targets import needs_pytest, takes_fixtures

    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_kinds.py").write_text(textwrap.dedent('''
        async def test_alone(): ...
        async def test_default(n=1): ...
        async def test_fixture(client): ...
        class TestGroup:
            async def test_method(self): ...
    '''))

    def ref(name: str) -> Any:
        return parse_target(f"tests/test_kinds.py::{name}", cwd=tmp_path)

    assert [takes_fixtures(ref(n)) for n in
            ("test_alone", "test_default", "test_fixture", "TestGroup::test_method")] == [
        False, False, True, True]
    assert not needs_pytest(ref("test_alone"))
    (tmp_path / "tests" / "conftest.py").write_text("")
    assert needs_pytest(ref("test_alone"))  # autouse fixtures may live there
    assert not needs_pytest(parse_target("examples.bank:double_spend"))
