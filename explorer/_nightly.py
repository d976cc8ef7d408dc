"""The nightly job: explore every scenario of a project within a time budget, resumably.

Invariant: the state file is the only record of finished work, and it is always whole.
It is written to a temporary file, flushed and renamed over the old one after every
finished slice, so a crash or ``kill -9`` at any moment leaves either the state before or
after that slice. A restart with the same arguments reads it and runs only the slices it
does not list; an unfinished slice runs again from its start, which gives the same result
because exploration is deterministic for a given seed. Corpus entries are written the same
way and are content-addressed, so a slice that saved a failure and was then killed saves
the same file again, not a second one.

A run is planned once, at its first start, and the plan is kept in the state:

1. one ``verify`` slice per corpus entry that existed then (replay it, record its status);
2. one ``explore`` slice per scenario and strategy (``systematic`` and ``portfolio`` unless
   the target's options pick one). Each explore slice gets an equal share of what is left
   of the budget when it starts (``max_time``), so time a quick slice does not use (a bug
   found at once, a search exhausted) goes to the slices after it.

At the end the run writes ``summary.json``, ``summary.md`` and ``report.html`` into the
output directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from explorer._corpus import Corpus, CorpusError
from explorer._errors import ExplorerError, UsageError
from explorer._failure_record import FailureReport, SavedStep, cut_trace
from explorer._files import write_atomically
from explorer._parallel import Executor, explore_target
from explorer._regressions import (
    UNKNOWN_SCENARIO,
    Scenarios,
    linearizability_detail,
    replay_one,
)
from explorer._settings import format_duration
from explorer._summary import STATE_FORMAT as STATE_FORMAT
from explorer._summary import SUMMARY_FORMAT as SUMMARY_FORMAT
from explorer._summary import VERSION as VERSION
from explorer._summary import (
    NightlyState,
    Slice,
    SliceResult,
    Summary,
    SummaryError,
    is_new,
    summarize,
)
from explorer._targets import (
    ProjectConfig,
    TargetError,
    TargetRef,
    add_paths,
    collect_marked,
    expand,
    node_targets,
    parse_target,
    resolve,
    takes_fixtures,
)

DEFAULT_STRATEGIES: Final = ("systematic", "portfolio")
MIN_SLICE: Final = 0.2  # seconds: even an overspent budget gives each slice a look
STATE_NAME: Final = "state.json"

def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- scenarios


def recorded_name(ref: TargetRef) -> str:
    """The name a corpus entry of this target records, known without importing it (for
    a module-level function: ``module.function``)."""
    return f"{ref.module}.{ref.attr}" if ref.attr else ref.module


def scenarios_of(refs: Iterable[TargetRef]) -> Scenarios:
    """Import the targets the user configured or named, and index them by the name corpus
    entries record. A target that cannot run (does not import, is not async, takes
    arguments) is kept as broken, with the reason, so that its entries say so. Nothing
    here comes from a corpus file."""
    functions: dict[str, Callable[..., Any]] = {}
    broken: dict[str, str] = {}
    for ref in refs:
        try:
            resolved = resolve(ref)
        except Exception as err:  # noqa: BLE001 - TargetError, or what a bad target raises
            broken.setdefault(recorded_name(ref), str(err))
        else:
            functions.setdefault(resolved.name, resolved.fn)
    return Scenarios(functions, {k: v for k, v in broken.items() if k not in functions})


def configured_scenarios(config: ProjectConfig, specs: Sequence[str] = (), *,
                         collect: bool = True) -> tuple[Scenarios, list[str]]:
    """The scenarios corpus entries may replay: ``specs`` (command-line targets; a bad one
    raises :class:`TargetError`), ``[tool.explorer] targets`` and, with ``collect``, the
    tests marked ``@pytest.mark.explore`` that pytest collects. Returns them and the
    problems met collecting."""
    add_paths([str(config.root), *config.pythonpath])
    refs: list[TargetRef] = []
    for spec in specs:
        refs += expand(parse_target(spec))
    refs += config.targets
    problems: list[str] = []
    if collect:
        collected = collect_marked(config.root)
        problems += collected.problems
        node_refs, skipped = node_targets(config.root, collected.node_ids)
        problems += skipped
        refs += node_refs
    return scenarios_of(refs), problems


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class NightlyOptions:
    """Everything that defines a nightly run (and must match to resume one)."""

    budget: float
    output: Path
    corpus: Path
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    targets: tuple[str, ...] = ()
    collect: bool = True
    seed: int | None = None
    shard: str | None = None
    max_steps: int | None = None
    run_timeout: float | None = None  # not in the fingerprint: it does not define the run
    profile: str | None = None
    """The settings profile under the targets' own settings (None: ``default``)."""
    fail_on: str = "any"  # not in the fingerprint: it judges the run, it does not define it
    """``any``: every failure fails the job; ``new``: only failures new to the corpus."""

    def fingerprint(self) -> dict[str, Any]:
        # ``profile`` only when given, so a run started before profiles existed resumes.
        return {"budget": self.budget, "corpus": str(self.corpus.resolve()),
                "strategies": list(self.strategies), "targets": list(self.targets),
                "collect": self.collect, "seed": self.seed, "shard": self.shard,
                "max_steps": self.max_steps,
                **({"profile": self.profile} if self.profile is not None else {})}


@dataclass
class Discovery:
    targets: list[TargetRef]
    problems: list[str]


def discover(config: ProjectConfig, options: NightlyOptions) -> Discovery:
    """Targets given on the command line, configured in pyproject.toml, and collected
    from pytest (tests marked ``@pytest.mark.explore``), without duplicates."""
    problems: list[str] = []
    found: list[TargetRef] = []
    for spec in options.targets:
        found += expand(parse_target(spec))
    found += config.targets
    if options.collect:
        collected = collect_marked(config.root)
        problems += collected.problems
        refs, skipped = node_targets(config.root, collected.node_ids)
        problems += skipped
        for ref in refs:
            if takes_fixtures(ref):  # pytest explores it, with its fixtures
                found.append(ref)
                continue
            try:
                resolve(ref)
            except TargetError as err:
                problems.append(f"skipped {ref.spec}: {err}")
            else:
                found.append(ref)
    unique: dict[str, TargetRef] = {}
    for ref in found:
        unique.setdefault(ref.canonical, ref)
    return Discovery(list(unique.values()), problems)


def plan_slices(targets: Sequence[TargetRef], corpus: Corpus,
                strategies: Sequence[str]) -> list[Slice]:
    """A verify slice per corpus entry, then an explore slice per target and strategy
    (only the target's own strategy when its options name one). A test with fixtures gets
    one slice (``portfolio`` if it is among the strategies, else the first): each pytest
    run pays for starting an interpreter and collecting, and a portfolio runs several
    strategies in one."""
    slices = [Slice.verify(str(path)) for path in corpus.paths()]
    for ref in targets:
        chosen = ref.options.get("strategy")
        names = [str(chosen)] if chosen else list(strategies)
        if takes_fixtures(ref) and len(names) > 1:
            names = ["portfolio" if "portfolio" in names else names[0]]
        for strategy in names:
            slices.append(Slice.explore(ref, strategy))
    return slices


# --------------------------------------------------------------------------- state


class StateMismatch(ExplorerError, ValueError):
    """The output directory holds a nightly run with other arguments."""


def load_state(path: Path) -> NightlyState | None:
    """The state of the run in ``path`` (None if there is none); :class:`StateMismatch`
    if the file is not a state this explorer can resume."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateMismatch(f"nightly state {path} cannot be read ({exc}); delete it or "
                            "pass --fresh to start over") from None
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise StateMismatch(f"{path} is not a nightly state file; choose another --output")
    if data.get("version") != VERSION:
        raise StateMismatch(f"nightly state {path} has format version {data.get('version')}"
                            f", this explorer writes {VERSION}; pass --fresh to start over")
    try:
        return NightlyState.from_json(data)
    except (SummaryError, KeyError, TypeError, ValueError) as exc:
        raise StateMismatch(f"nightly state {path} is damaged ({exc}); delete it or pass "
                            "--fresh to start over") from None


def save_state(path: Path, state: NightlyState) -> None:
    write_atomically(path, json.dumps(state.to_json(), indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- running


class Progress:
    """What the nightly job tells its caller as it goes (the CLI draws a progress bar)."""

    def slice_started(self, number: int, total: int, label: str, seconds: float | None
                      ) -> None:
        """A slice starts; ``seconds`` is its time share (None for a verification)."""

    def schedules(self, count: int) -> None:
        """``count`` more schedules ran."""

    def slice_finished(self, result: SliceResult) -> None:
        """A slice finished with ``result``."""


@dataclass
class NightlyRun:
    options: NightlyOptions
    config: ProjectConfig
    state: NightlyState
    resumed: bool
    finished_before: int


def prepare(options: NightlyOptions, config: ProjectConfig, *, fresh: bool = False
            ) -> NightlyRun:
    """Read the state of an interrupted run with the same options, or plan a new run."""
    state_path = options.output / STATE_NAME
    if fresh:
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
    # Temp files left by a write that was killed (the file written is whole: it was
    # replaced atomically or not at all); a run of the job owns both directories.
    for stale in [*options.output.glob(f".{STATE_NAME}.*.tmp"),
                  *Corpus(options.corpus).temporary_files()]:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    state = load_state(state_path)
    if state is not None and state.finished:
        state = None  # that run completed: this is a new one
    if state is not None:
        wanted = options.fingerprint()
        if state.fingerprint != wanted:
            differ = sorted(k for k, v in wanted.items() if state.fingerprint.get(k) != v)
            raise StateMismatch(
                f"{options.output} holds a nightly run started with other arguments "
                f"({', '.join(differ)} differ); restart it with the same arguments to resume, "
                "pass --fresh to start over, or choose another --output")
        return NightlyRun(options, config, state, True, len(state.results))
    discovery = discover(config, options)
    seed = options.seed
    if seed is None:
        import random

        seed = random.SystemRandom().getrandbits(32)
    state = NightlyState(
        dict(options.fingerprint()), seed, options.budget,
        plan_slices(discovery.targets, Corpus(options.corpus), options.strategies),
        started=_now(), root=str(config.root), problems=list(discovery.problems))
    if state.plan:
        save_state(state_path, state)
    return NightlyRun(options, config, state, False, 0)


def execute(run: NightlyRun, executor: Executor, progress: Progress | None = None
            ) -> Summary:
    """Run every slice not finished yet; write the summaries; return the summary."""
    progress = progress or Progress()
    state = run.state
    state_path = run.options.output / STATE_NAME
    plan = state.plan
    corpus = Corpus(run.options.corpus)
    results = state.results
    # Entries replay only the scenarios this run explores (the targets it discovered),
    # matched by name: never a module or function a corpus file names.
    verifying = any(i.kind == "verify" and i.id not in results for i in plan)
    targets = planned_targets(plan)
    # Tests with fixtures are replayed by pytest, in their explore slice (with the corpus
    # entries of the test run first); the others are imported here.
    in_pytest = {recorded_name(ref): ref.spec for ref in targets if takes_fixtures(ref)}
    scenarios = (scenarios_of(ref for ref in targets if not takes_fixtures(ref)) if verifying
                 else Scenarios())
    for number, item in enumerate(plan, 1):
        if item.id in results:
            continue
        if item.kind == "verify":
            path = Path(str(item.path))
            progress.slice_started(number, len(plan), f"verify {path.name}", None)
            result = _verify(item, path, corpus, scenarios, in_pytest)
        else:
            assert item.target is not None
            seconds = _share(run.options.budget, plan, results)
            progress.slice_started(number, len(plan),
                                   f"{item.target.spec} ({item.strategy})", seconds)
            result = _explore(item, item.target, run, executor, corpus, seconds,
                              progress.schedules)
        result.pid = os.getpid()
        result.finished_at = _now()
        results[item.id] = result
        save_state(state_path, state)
        progress.slice_finished(result)
    if state.finished is None:
        state.finished = _now()
    save_state(state_path, state)
    summary = summarize(state, run.options.fail_on)
    write_outputs(run.options.output, summary)
    return summary


def early_finish(state: NightlyState) -> str | None:
    """Why a complete run used less than nine tenths of its budget, in one line (None when
    it did not): a slice ends as soon as its search is exhausted (every schedule in its
    space was run) or it found its failure, and there is nothing to give the time left to.
    """
    if state.budget <= 0 or state.spent >= 0.9 * state.budget or \
            len(state.results) < len(state.plan):
        return None
    explored = [r for r in state.results.values() if r.kind == "explore"]
    exhausted = sum(1 for r in explored if r.extra.get("exhausted") and r.failure is None)
    failed = sum(1 for r in explored if r.failure is not None)
    if any(r.status == "error" for r in explored):
        return None  # the errors are the story, and they are printed
    parts = [f"{exhausted} exhausted their whole space"] if exhausted else []
    parts += [f"{failed} stopped at the failure they found"] if failed else []
    return (f"finished early ({format_duration(state.spent)} of "
            f"{format_duration(state.budget)}): of {len(explored)} exploration slice(s), "
            + (", ".join(parts) or "none needed more time")
            + "; there was no schedule left to spend the rest on")


def _share(budget: float, plan: Sequence[Slice], results: Mapping[str, SliceResult]
           ) -> float:
    spent = sum(r.elapsed for r in results.values())
    left = sum(1 for item in plan if item.kind == "explore" and item.id not in results)
    return max(MIN_SLICE, (budget - spent) / max(left, 1))


def planned_targets(plan: Iterable[Slice]) -> list[TargetRef]:
    """The targets of a plan's explore slices, once each."""
    refs: dict[str, TargetRef] = {}
    for item in plan:
        if item.kind == "explore" and item.target is not None:
            refs.setdefault(item.target.canonical, item.target)
    return list(refs.values())


def _verify(item: Slice, path: Path, corpus: Corpus, scenarios: Scenarios,
            in_pytest: Mapping[str, str] | None = None) -> SliceResult:
    """Replay one entry; whatever the entry holds, a result with one status."""
    start = time.perf_counter()
    try:
        entry = corpus.load(path)
    except CorpusError as err:
        status = "newer-format" if err.status == "newer-format" else "unreadable"
        if not path.exists():
            status = "removed"
        return SliceResult(item.id, item.kind, status, time.perf_counter() - start,
                           path=str(path), detail=str(err))
    report = replay_one(entry, scenarios)  # a broken scenario must not stop the night
    if report.status == UNKNOWN_SCENARIO and "linearizability" in entry.data:
        report = dataclasses.replace(report, detail=linearizability_detail(
            entry.scenario, path, in_pytest or {}))
    elif report.status == UNKNOWN_SCENARIO and entry.scenario in (in_pytest or {}):
        report = dataclasses.replace(report, detail=(
            f"replayed by pytest with the test's fixtures, in the explore slice of "
            f"{(in_pytest or {})[entry.scenario]}"))
    elif report.status == UNKNOWN_SCENARIO:
        report = dataclasses.replace(report, detail=(
            f"no target of this run is named {entry.scenario}, so nothing was run (the "
            "corpus never imports what its files name): add it to [tool.explorer] "
            "targets, mark its test @pytest.mark.explore, or pass it as a target"))
    failure: FailureReport | None = None
    if report.failure is not None:
        report.failure.saved_to(entry.path)
        failure = _kept_small(report.failure.report(corpus_path=str(entry.path)))
    # replay_one replays under the runtime the entry recorded
    return SliceResult(item.id, item.kind, report.status, time.perf_counter() - start,
                       failure=failure, scenario=entry.scenario, runtime=entry.runtime,
                       path=str(path), schedule=str(entry.schedule), detail=report.detail,
                       same=report.same, extra={"saved": entry.failure})


def _explore_in_pytest(item: Slice, ref: TargetRef, run: NightlyRun, corpus: Corpus,
                       seconds: float) -> SliceResult:
    """A test with fixtures (or under a conftest.py), explored by pytest in a subprocess
    (see :mod:`explorer._nightly_pytest`); one worker, whatever ``--workers`` says."""
    from explorer._nightly_pytest import explore_in_pytest

    start = time.perf_counter()
    found = explore_in_pytest(ref, run.config.root, corpus, strategy=str(item.strategy),
                              seed=run.state.seed, seconds=seconds,
                              max_steps=run.options.max_steps,
                              run_timeout=run.options.run_timeout,
                              profile=run.options.profile)
    failure = _kept_small(found.failure) if found.failure is not None else None
    return SliceResult(item.id, item.kind, found.status, time.perf_counter() - start,
                       failure=failure, scenario=f"{ref.module}.{ref.attr}",
                       target=ref.spec, schedules=found.schedules, distinct=found.distinct,
                       coverage=found.coverage, error=found.error,
                       extra={"strategy": {"name": item.strategy}, "pytest": True,
                              "exhausted": found.exhausted})


def _explore(item: Slice, ref: TargetRef, run: NightlyRun, executor: Executor,
             corpus: Corpus, seconds: float, on_schedules: Callable[[int], None]
             ) -> SliceResult:
    overrides: dict[str, object] = {"strategy": item.strategy, "max_time": seconds,
                                    "seed": run.state.seed,
                                    "max_steps": run.options.max_steps,
                                    "run_timeout": run.options.run_timeout}
    start = time.perf_counter()
    if takes_fixtures(ref):
        return _explore_in_pytest(item, ref, run, corpus, seconds)
    try:
        result = explore_target(ref, overrides, executor, on_schedules=on_schedules,
                                unbounded=True, profile=run.options.profile)
    except (TargetError, UsageError) as err:  # UsageError: a bad option (a runtime, ...)
        return SliceResult(item.id, item.kind, "error", time.perf_counter() - start,
                           target=ref.spec, error=str(err))
    except Exception as exc:  # noqa: BLE001 - recorded in the summary; the night goes on
        return SliceResult(item.id, item.kind, "error", time.perf_counter() - start,
                           target=ref.spec,
                           error=f"internal error: {type(exc).__name__}: {exc}",
                           extra={"traceback": traceback.format_exc()})
    failure: FailureReport | None = None
    if result.failure is not None:
        saved = corpus.save(result.failure)  # one entry per bug: see Corpus.save
        result.new_in_corpus = saved.new
        result.failure.saved_to(saved.path)
        result.corpus_path = str(saved.path)
        # The rendered message repeats the outcome, the explanation and the swimlanes of
        # the whole run: the report rebuilds it from the parts, kept small here.
        failure = _kept_small(result.failure.report(corpus_path=result.corpus_path,
                                                    new_in_corpus=result.new_in_corpus))
    extra = {"probes": result.probes, "steps": result.steps, "rate": round(result.rate, 3),
             "exhausted": result.exhausted, "strategy": result.strategy,
             "workers": result.workers, "warnings": result.warnings,
             "settings": result.settings.to_json()}
    return SliceResult(item.id, item.kind, "failed" if result.failure else "passed",
                       time.perf_counter() - start, failure=failure,
                       scenario=result.scenario, runtime=result.settings.runtime,
                       target=result.target, schedules=result.schedules,
                       distinct=result.distinct, coverage=result.coverage, extra=extra)


EXCERPT: Final = 200


def excerpt(steps: Sequence[SavedStep]) -> tuple[SavedStep, ...]:
    """A long trace cut to its first and last :data:`EXCERPT` steps and every deviation
    (the state, the summary and the report stay small; step indices show the gaps)."""
    return cut_trace(steps, EXCERPT)


def _kept_small(failure: FailureReport) -> FailureReport:
    """``failure`` with its trace cut to an :func:`excerpt` (its hash stays the whole
    trace's)."""
    record = failure.record
    return dataclasses.replace(failure, record=dataclasses.replace(
        record, trace=excerpt(record.steps)))


# --------------------------------------------------------------------------- summary


def corpus_summary(corpus: Corpus, scenarios: Scenarios, *, root: Path | None = None
                   ) -> Summary:
    """A summary of replaying every entry of ``corpus`` against ``scenarios`` (the
    report of a corpus: each failure drawn from its replay); paths and replay lines are
    relative to the project ``root``."""
    plan = plan_slices([], corpus, ())
    state = NightlyState({}, None, 0.0, plan, root=str(root) if root else None, results={
        item.id: _verify(item, Path(str(item.path)), corpus, scenarios) for item in plan})
    return summarize(state)


def write_outputs(directory: Path, summary: Summary) -> None:
    from explorer._html import render_report

    write_atomically(directory / "summary.json",
                     json.dumps(summary.to_json(), indent=1, sort_keys=True) + "\n")
    write_atomically(directory / "summary.md", render_markdown(summary))
    write_atomically(directory / "report.html", render_report([summary]))


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Summary) -> str:
    """The summary as GitHub-flavoured markdown (fit for a job summary or an issue)."""
    failures = summary.failures
    corpus = summary.corpus
    lines = [
        "# Nightly schedule exploration",
        "",
        f"{len(summary.scenarios)} scenario(s), {len(corpus)} corpus "
        f"entr{'y' if len(corpus) == 1 else 'ies'} re-verified, "
        f"**{len(failures)} failure(s)**; spent {format_duration(summary.spent)} of a "
        f"{format_duration(float(summary.budget or 0))} budget (seed {summary.seed})."
        + ("" if summary.complete else " **Incomplete: the run was interrupted.**"),
        "",
    ]
    if failures:
        lines += ["## Failures", "", "| scenario | kind | at | schedule | found by | corpus |",
                  "|---|---|---|---|---|---|"]
        for f in failures:
            saved = (f"{f.corpus_path}" + (" (new)" if is_new(f) else "")
                     if f.corpus_path else "")
            lines.append(f"| {_md(f.scenario)} | {f.kind} | {_md(f.location)} | "
                         f"`{f.schedule}` | {f.source} | {_md(saved)} |")
        lines.append("")
        commands = [f.command for f in failures if f.command]
        if commands:  # run from the project root, they print the story and exit 1
            lines += ["Replay from the project root:", "", "```sh", *commands, "```", ""]
    lines += ["## Scenarios", "", "| target | status | schedules | rate | strategies | "
              "distinct interleavings | failures |", "|---|---|---:|---:|---|---:|---:|"]
    for row in summary.scenarios:
        strategies = "; ".join(f"{s.strategy}: {s.coverage}" for s in row.strategies)
        lines.append(f"| {_md(row.target)} | {row.status} | {row.schedules:,} | "
                     f"{row.rate:,.0f}/s | {_md(strategies)} | {row.distinct:,} | "
                     f"{len(row.failures)} |")
    if corpus:
        lines += ["", "## Corpus", "", "| entry | scenario | status | detail |",
                  "|---|---|---|---|"]
        for entry in corpus:
            lines.append(f"| {_md(Path(entry.path).name)} | {_md(entry.scenario)} | "
                         f"{entry.status} | {_md(entry.detail)} |")
    if summary.errors:
        lines += ["", "## Problems", "", *(f"- {_md(e)}" for e in summary.errors)]
    return "\n".join(lines) + "\n"
