"""The nightly job: discovery, budget, corpus, summaries, resuming after kill -9, and the
same job split among workers on a Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from examples.gallery import CORE, all_examples
from explorer import cli, strategies
from explorer._corpus import Corpus, CorpusEntry
from explorer._engine import explore
from explorer._failure_record import SavedStep
from explorer._nightly import NightlyOptions, excerpt, prepare
from explorer._parallel import Observed
from explorer._settings import format_duration, parse_duration
from explorer._targets import load_config
from explorer.strategies import Systematic

ROOT = Path(__file__).resolve().parent.parent

MARKED_TESTS = textwrap.dedent('''
    import asyncio

    import pytest


    async def _bump(state):
        value = state["n"]
        await asyncio.sleep(0)
        state["n"] = value + 1


    @pytest.mark.explore(strategy="systematic", deviation_bound=1)
    async def test_collected_lost_update():
        state = {"n": 0}
        await asyncio.gather(_bump(state), _bump(state))
        assert state["n"] == 2, "lost update"


    @pytest.fixture
    def start():
        return 0


    @pytest.mark.explore
    async def test_with_fixture(start):
        await asyncio.sleep(0)


    def test_plain():
        pass
''')


def _target(example: Any, *, fixed: bool = False) -> str:
    fn = example.fixed if fixed else example.buggy
    options = [f'target = "{fn.__module__}:{fn.__name__}"']
    if example.max_steps != 20_000:
        options.append(f"max_steps = {example.max_steps}")
    if example.kind == "livelock":  # a random walk does not keep the pair in step
        options.append('strategy = "systematic"')
    if getattr(example, "faults", False):  # found only with injected network faults
        options.append("faults = true")
    return "{" + ", ".join(options) + "}"


def make_project(root: Path, targets: Sequence[str], *, tests: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    listed = "".join(f"    {t},\n" for t in targets)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "nightly-demo"\n\n'
        f"[tool.explorer]\ntargets = [\n{listed}]\n\n"
        '[tool.pytest.ini_options]\nmarkers = ["explore: explored by the schedule explorer"]\n')
    if tests:
        (root / "tests").mkdir(exist_ok=True)
        (root / "tests" / "test_marked_nightly.py").write_text(MARKED_TESTS)
    return root


def failures(summary: dict[str, Any], *, schedules: bool = True) -> list[tuple[Any, ...]]:
    rows = [(f["scenario"], f["kind"], f["location"]) + ((f["schedule"],) if schedules else ())
            for f in summary["failures"]]
    return sorted(rows)


def check_corpus(directory: Path, *, killed: bool = False) -> list[CorpusEntry]:
    """Every entry is whole. A process killed mid-write may leave its temp file (the
    entry itself was replaced atomically or not at all); the next run removes it."""
    entries = list(Corpus(directory).entries())
    assert all(isinstance(e, CorpusEntry) for e in entries), entries
    hidden = [p for p in directory.iterdir() if p.name.startswith(".")]
    if killed:
        hidden = [p for p in hidden if not p.name.endswith(".tmp")]
    assert not hidden
    return [e for e in entries if isinstance(e, CorpusEntry)]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def check_html(path: Path) -> list[str]:
    parser = _Collector()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert "script" not in parser.tags and "link" not in parser.tags
    return parser.tags


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("2h", 7200), ("1h30m", 5400), ("45", 45), ("1.5m", 90),
    ("250ms", 0.25), (" 2H ", 7200)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "10x", "0s", "m10", "-5s", "10m soon", "400d",
                                  "9" * 400 + "h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(TypeError, match=r"not a (usable )?duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (1.25, 90, 7260)] == ["1.2s", "1m30s", "2h01m"]


def test_excerpt_keeps_both_ends_and_every_deviation() -> None:
    steps = [SavedStep(i, "t#1", "step", None, None, decision=(1, 2) if i == 700 else
                       (0, 2) if i == 900 else None) for i in range(2000)]
    kept = [s.index for s in excerpt(steps)]
    assert kept[:200] == list(range(200)) and kept[-200:] == list(range(1800, 2000))
    assert 700 in kept and 900 not in kept and len(kept) == 401
    assert excerpt(steps[:10]) == tuple(steps[:10])


class _Recorder(strategies.Strategy):
    """Records the decisions of every counted run of the strategy it wraps."""

    def __init__(self, inner: strategies.Strategy) -> None:
        self.inner = inner
        self.runs: list[tuple[int, ...]] = []

    def start_run(self) -> bool:
        return self.inner.start_run()

    def choose(self, count: int, view: Any) -> int:
        return self.inner.choose(count, view)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        if self.inner.counts_as_schedule:
            self.runs.append(tuple(decisions))
        self.inner.end_run(decisions, failed)

    @property
    def counts_as_schedule(self) -> bool:
        return self.inner.counts_as_schedule


@pytest.mark.parametrize("count", [2, 3])
def test_systematic_partitions_are_disjoint_and_complete(count: int) -> None:
    scenario = CORE[1].fixed  # double-spend, fixed: passes every schedule
    whole = _Recorder(strategies.Systematic(3))
    explore(scenario, strategy=whole, max_schedules=10_000)
    parts = []
    for index in range(count):
        recorder = _Recorder(Observed(Systematic(3, partition=(index, count))))
        explore(scenario, strategy=recorder, max_schedules=10_000)
        parts.append(recorder.runs)
    assert sum(len(p) for p in parts) == len(whole.runs) == len(set(whole.runs))
    assert set().union(*map(set, parts)) == set(whole.runs)
    for index, runs in enumerate(parts):
        firsts = {next((i for i, d in enumerate(r) if d), None) for r in runs}
        assert all((f is None and index == 0) or (f is not None and f % count == index)
                   for f in firsts)


# --------------------------------------------------------------------------- the gallery


@pytest.mark.slow
def test_nightly_over_the_gallery_finds_every_bug(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    examples = all_examples()
    project = make_project(tmp_path / "proj", [_target(e) for e in examples], tests=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # for pytest's collection subprocess
    code = cli.main(["nightly", "--budget", "20s", "--seed", "0", "--output", "out"])
    out, err = capsys.readouterr()
    assert code == cli.FAILURES, out + err
    summary = json.loads((project / "out" / "summary.json").read_text())
    found = {(f["scenario"], f["kind"]) for f in summary["failures"]}
    expected = {(f"{e.buggy.__module__}.{e.buggy.__name__}", e.kind) for e in examples}
    expected.add(("test_marked_nightly.test_collected_lost_update", "assertion"))
    assert found == expected
    # A test with fixtures is explored by pytest, which sets its fixtures up.
    [fixtured] = [row for row in summary["scenarios"]
                  if row["target"] == "tests/test_marked_nightly.py::test_with_fixture"]
    assert fixtured["status"] == "passed" and len(fixtured["strategies"]) == 1
    assert summary["complete"] and summary["exit_code"] == 1
    # A slice of a buggy scenario ends at its first failure, as the run recorded it (not a
    # wall-clock reading of this test, which a busy machine stretches): its last schedule
    # is the failing one, found within the time share it was given; and the run's account
    # of the time it spent is the sum of its slices'.
    state = json.loads((project / "out" / "state.json").read_text())
    explored = [r for r in state["results"].values() if r["kind"] == "explore"]
    found_by = [r for r in explored if r["failure"] is not None]
    assert {r["scenario"] for r in found_by} == {scenario for scenario, _ in expected}
    assert summary["budget"] == 20.0
    for result in found_by:
        assert result["failure"]["found_after"] == result["schedules"], result["target"]
    for result in (r for r in explored if not r.get("pytest")):  # pytest: its own options
        assert 0 < result["settings"]["max_time"] <= summary["budget"]
    assert summary["spent"] == pytest.approx(sum(r["elapsed"] for r in
                                                 state["results"].values()))
    entries = check_corpus(project / "corpus")
    assert {(e.scenario, e.kind) for e in entries} == expected  # one entry per bug
    assert all(e.shrunk for e in entries)
    markdown = (project / "out" / "summary.md").read_text()
    assert "## Failures" in markdown and "double_spend" in markdown
    assert check_html(project / "out" / "report.html").count("section") == len(expected)
    assert "skipped tests/test_marked_nightly.py::test_with_fixture" not in err

    # The next night re-verifies the corpus and adds nothing new.
    code = cli.main(["nightly", "--budget", "5s", "--seed", "1", "--output", "out", "--json"])
    out, _ = capsys.readouterr()
    again = json.loads(out)
    assert code == cli.FAILURES
    assert {r["status"] for r in again["corpus"]} == {"fails"}
    assert len(again["corpus"]) == len(expected)
    assert not any(f["new"] for f in again["failures"])
    assert len(check_corpus(project / "corpus")) == len(expected)


def test_nothing_to_explore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'empty'\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["nightly", "--budget", "1m", "--no-collect"]) == cli.NOTHING
    assert "nothing to explore" in capsys.readouterr().err


def test_state_of_another_run_is_not_mixed_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    project = make_project(tmp_path, [_target(CORE[1])])
    monkeypatch.chdir(project)
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")
    options = NightlyOptions(60.0, project / "out", project / "corpus", collect=False, seed=0)
    run = prepare(options, load_config(project))  # planned, then "killed"
    assert len(run.state.plan) == 2 and not run.state.results
    code = cli.main(["nightly", "--budget", "2m", "--no-collect", "--seed", "0",
                     "--output", "out"])
    err = capsys.readouterr().err
    assert code == cli.USAGE
    assert "other arguments (budget differ)" in err and "--fresh" in err
    code = cli.main(["nightly", "--budget", "1m", "--no-collect", "--seed", "0",
                     "--output", "out"])
    assert code == cli.FAILURES
    assert "resuming the run in out: 0 of 2 slices already finished" in capsys.readouterr().err
    assert cli.main(["nightly", "--budget", "2m", "--no-collect", "--seed", "0",
                     "--output", "out", "--fresh"]) == cli.FAILURES


# --------------------------------------------------------------------------- kill -9, Dask


RESUME_TARGETS = [_target(CORE[1], fixed=True), _target(CORE[0]), _target(CORE[1]),
                  _target(CORE[2], fixed=True), _target(CORE[2]), _target(CORE[3]),
                  _target(CORE[10])]
RESUME_ARGS = ["nightly", "--budget", "6s", "--seed", "7", "--no-collect", "--output", "out"]


def _start(project: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXPLORER_PROGRESS": "0"}
    return subprocess.Popen([sys.executable, "-m", "explorer.cli", *RESUME_ARGS],
                            cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[str]]:
    """An uninterrupted run, started at once so it overlaps the interrupted one."""
    project = make_project(tmp_path_factory.mktemp("baseline"), RESUME_TARGETS)
    process = _start(project)
    process.project = project  # type: ignore[attr-defined]
    yield process
    process.kill()
    process.communicate()


def _summary(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == cli.FAILURES, out + err
    project: Path = process.project  # type: ignore[attr-defined]
    check_corpus(project / "corpus")
    return json.loads((project / "out" / "summary.json").read_text())  # type: ignore[no-any-return]


def _state(project: Path) -> dict[str, Any] | None:
    try:
        return json.loads((project / "out" / "state.json").read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return None


@pytest.mark.slow
def test_killed_and_restarted_run_gives_the_same_results(
        tmp_path: Path, baseline: subprocess.Popen[str]) -> None:
    project = make_project(tmp_path, RESUME_TARGETS)
    process = _start(project)
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        state = _state(project)
        if state and len(state["results"]) >= 3:
            break
        time.sleep(0.02)
    assert state is not None and process.poll() is None, "finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    killed = _state(project)
    assert killed is not None and "finished" not in killed  # whole, and unfinished
    before = dict(killed["results"])
    assert 3 <= len(before) < len(killed["plan"])
    check_corpus(project / "corpus", killed=True)

    process = _start(project)
    process.project = project  # type: ignore[attr-defined]
    resumed = _summary(process)
    final = _state(project)
    assert final is not None and final["finished"]
    for slice_id, result in before.items():  # finished slices were not run again
        assert final["results"][slice_id] == result
    assert {r["pid"] for r in final["results"].values()} == {
        before[next(iter(before))]["pid"], process.pid}
    assert resumed["complete"]
    expected = _summary(baseline)
    assert failures(resumed) == failures(expected)
    assert len(failures(expected)) == 5
    check_corpus(project / "corpus")  # and no temp file of the killed run is left


@pytest.mark.slow
def test_the_same_job_on_a_dask_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str],
                                        baseline: subprocess.Popen[str]) -> None:
    distributed = pytest.importorskip("distributed")
    project = make_project(tmp_path, RESUME_TARGETS)
    monkeypatch.chdir(project)
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")
    with distributed.LocalCluster(processes=False, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        # The same budget as the baseline run: a shorter one can miss a failure when the
        # machine is busy.
        code = cli.main([*RESUME_ARGS, "--cluster", cluster.scheduler_address, "--json"])
    out, err = capsys.readouterr()
    assert code == cli.FAILURES, err
    summary = json.loads(out)
    assert failures(summary, schedules=False) == failures(_summary(baseline), schedules=False)
    check_corpus(project / "corpus")
    strategies_used = [s for row in summary["scenarios"] for s in row["strategies"]]
    assert any("jointly by 2 workers" in s["coverage"] for s in strategies_used)
    assert any("2 workers (seeded 7, 8" in s["coverage"] for s in strategies_used)


# --------------------------------------------------------------------------- CI outputs


CI_TESTS = textwrap.dedent('''
    import asyncio

    import pytest


    async def _reserve(stock, orders):
        if stock["left"] > 0:
            await asyncio.sleep(0)  # payment
            stock["left"] -= 1
            orders.append("ok")
        else:
            orders.append("sold out")


    @pytest.mark.explore(strategy="systematic")
    async def test_last_ticket():
        stock, orders = {"left": 1}, []
        await asyncio.gather(_reserve(stock, orders), _reserve(stock, orders))
        assert orders.count("ok") == 1


    @pytest.mark.explore
    async def test_two_pings():
        seen = []

        async def ping(name):
            seen.append(name)
            await asyncio.sleep(0)
            seen.append(name)

        await asyncio.gather(ping("a"), ping("b"))
        assert len(seen) == 4
''')


def ci_project(root: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> str:
    """A project whose tests directory is not a package (the usual layout), with one
    racy test and one whose whole space is small; the working directory."""
    (root / "tests").mkdir(parents=True)
    (root / "tests" / f"{name}.py").write_text(CI_TESTS)
    (root / "pyproject.toml").write_text("[project]\nname = 'tickets'\n")
    monkeypatch.chdir(root)
    monkeypatch.delenv("EXPLORER_PROGRESS", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return f"tests/{name}.py"


def check_sarif(log: dict[str, Any]) -> list[dict[str, Any]]:
    """The properties SARIF 2.1.0's schema requires (sarifLog: version, runs; run: tool;
    tool: driver; toolComponent: name; result: message with text; physicalLocation:
    artifactLocation; region: startLine >= 1), and the results."""
    assert log["version"] == "2.1.0" and "sarif-2.1.0" in log["$schema"]
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "explorer"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    for result in run["results"]:
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        assert result["level"] in ("none", "note", "warning", "error")
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        for location in result.get("locations", []):
            physical = location["physicalLocation"]
            assert isinstance(physical["artifactLocation"]["uri"], str)
            assert not physical["artifactLocation"]["uri"].startswith("/")
            assert physical.get("region", {"startLine": 1})["startLine"] >= 1
    return list(run["results"])


def test_nightly_for_ci_junit_sarif_step_summary_and_fail_on_new(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ElementTree

    from explorer._ci import github_annotations
    from explorer._summary import read_summary

    test_file = ci_project(tmp_path, monkeypatch, "test_ci_tickets")
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    args = ["nightly", test_file, "--budget", "2s", "--no-collect", "--seed", "3",
            "--strategy", "systematic", "--junit-xml", "junit.xml", "--sarif", "out.sarif"]
    assert cli.main(args) == cli.FAILURES
    out, err = capsys.readouterr()
    # Not a terminal: one line per slice on stderr, none of them a redrawn bar.
    assert [line.split("]")[0] for line in err.splitlines() if line.startswith("[")] == [
        "[1/2", "[2/2"]
    replay = f"explorer replay {test_file}::test_last_ticket 'v1:"
    assert f"      replay: {replay}" in out
    assert f"::error file={test_file},line=" in out  # an annotation on the assert's line

    suites = ElementTree.parse(tmp_path / "junit.xml").getroot()
    cases = {case.get("name"): case for case in suites.iter("testcase")}
    assert set(cases) == {f"{test_file}::test_last_ticket", f"{test_file}::test_two_pings"}
    failing = cases[f"{test_file}::test_last_ticket"]
    failure = failing.find("failure")
    assert failure is not None and failure.get("type") == "assertion"
    assert "assert 2 == 1" in (failure.text or "")  # the assert's own text, rewritten
    assert replay in (failure.text or "")
    assert failing.get("file") == test_file and failing.get("line", "").isdigit()
    assert cases[f"{test_file}::test_two_pings"].find("failure") is None
    assert suites.get("failures") == "1" and suites.get("tests") == "2"

    results = check_sarif(json.loads((tmp_path / "out.sarif").read_text()))
    assert len(results) == 1 and results[0]["ruleId"] == "explorer/assertion"
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == test_file
    assert location["region"]["startLine"] == int(failing.get("line", "0"))

    markdown = step_summary.read_text()
    assert markdown.startswith("# Nightly schedule exploration") and replay in markdown
    summary = read_summary(tmp_path / "explorer-nightly" / "summary.json")
    assert str(tmp_path) not in (tmp_path / "explorer-nightly" / "summary.md").read_text()
    assert summary.failures[0].corpus_path is not None
    assert summary.failures[0].corpus_path.startswith("corpus/")
    pings = next(row for row in summary.scenarios if row.target.endswith("test_two_pings"))
    assert 0 < pings.distinct <= pings.schedules
    assert github_annotations(summary)[0].startswith(f"::error file={test_file},line=")

    # The same bug again: known to the corpus, so --fail-on new lets the job pass, and
    # --fail-on any (the default) still fails it.
    monkeypatch.delenv("GITHUB_ACTIONS")
    again = [a for a in args if a not in ("--junit-xml", "junit.xml")]
    assert cli.main([*again, "--fresh", "--fail-on", "new", "--junit-xml", "known.xml"]) == 0
    out = capsys.readouterr().out
    assert "(corpus, known)" in out or "(explore (systematic), known)" in out
    assert "every failure is already in the corpus (--fail-on new)" in out
    known = ElementTree.parse(tmp_path / "known.xml").getroot()
    assert known.get("failures") == "1"  # the report still shows it, as known
    assert "already in the corpus" in "".join(known.itertext())
    assert cli.main([*again, "--fresh"]) == cli.FAILURES
    assert len(list((tmp_path / "corpus").glob("*.json"))) == 1


def test_nightly_fail_on_rejects_other_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    ci_project(tmp_path, monkeypatch, "test_ci_fail_on")
    assert cli.main(["nightly", "--fail-on", "sometimes", "--no-collect"]) == cli.USAGE
    err = capsys.readouterr().err
    assert "--fail-on 'sometimes' is not one of any, new" in err


def test_distinct_interleavings_are_not_summed_over_strategies() -> None:
    from explorer._summary import NightlyState, Slice, SliceResult, summarize
    from explorer._targets import TargetRef

    ref = TargetRef("tests/test_x.py::test_y", "test_x", "test_y")
    plan = [Slice.explore(ref, "systematic"), Slice.explore(ref, "portfolio")]
    results = {plan[0].id: SliceResult(plan[0].id, "explore", "passed", 0.1,
                                       schedules=8, distinct=8, extra={"exhausted": True}),
               plan[1].id: SliceResult(plan[1].id, "explore", "passed", 0.1,
                                       schedules=500, distinct=8, extra={"exhausted": True})}
    summary = summarize(NightlyState({}, 1, 20.0, plan, results))
    assert [(row.schedules, row.distinct) for row in summary.scenarios] == [(508, 8)]


def test_an_early_finish_says_why() -> None:
    from explorer._nightly import early_finish
    from explorer._summary import NightlyState, Slice, SliceResult
    from explorer._targets import TargetRef

    ref = TargetRef("tests/test_x.py::test_y", "test_x", "test_y")
    plan = [Slice.explore(ref, "systematic")]
    done = SliceResult(plan[0].id, "explore", "passed", 0.5, schedules=8, distinct=8,
                       extra={"exhausted": True})
    state = NightlyState({}, 1, 20.0, plan, {plan[0].id: done})
    line = early_finish(state)
    assert line is not None and "1 exhausted their whole space" in line
    assert early_finish(NightlyState({}, 1, 0.55, plan, {plan[0].id: done})) is None


FIXTURE_CONFTEST = textwrap.dedent('''
    import pytest


    @pytest.fixture
    async def inventory():
        return {"seats": 1, "sold": []}
''')

FIXTURE_TESTS = textwrap.dedent('''
    import asyncio

    import pytest


    @pytest.mark.explore
    async def test_last_seat(inventory):
        async def sell(buyer, lookups):
            for _ in range(lookups):
                await asyncio.sleep(0)  # the buyer's session
            if inventory["seats"] > 0:
                await asyncio.sleep(0)  # the payment
                inventory["seats"] -= 1
                inventory["sold"].append(buyer)

        await asyncio.gather(sell("ann", 1), sell("bob", 3))
        assert len(inventory["sold"]) == 1
''')


@pytest.mark.slow
def test_nightly_explores_a_test_with_an_async_fixture_through_pytest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ElementTree

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "conftest.py").write_text(FIXTURE_CONFTEST)
    (tmp_path / "tests" / "test_seats_fixture.py").write_text(FIXTURE_TESTS)
    (tmp_path / "pyproject.toml").write_text(
        "[project]\nname = 'seats'\n\n[tool.pytest.ini_options]\nasyncio_mode = 'auto'\n"
        "asyncio_default_fixture_loop_scope = 'function'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    args = ["nightly", "--budget", "6s", "--seed", "5", "--junit-xml", "junit.xml"]
    assert cli.main(args) == cli.FAILURES
    out = capsys.readouterr().out
    node = "tests/test_seats_fixture.py::test_last_seat"
    assert f"replay: explorer replay {node} 'v1:" in out
    failure = ElementTree.parse(tmp_path / "junit.xml").getroot().find(
        f".//testcase[@name='{node}']/failure")
    assert failure is not None and "AssertionError: assert 2 == 1" in (failure.text or "")
    assert len(list((tmp_path / "corpus").glob("*.json"))) == 1
    # Only known failures now: --fail-on new passes the job.
    assert cli.main([*args, "--fail-on", "new"]) == cli.OK
    assert "already in the corpus" in capsys.readouterr().out
