"""The ``explorer`` command: explore, replay, shrink, the corpus, the nightly job, reports.

Invariant: every way out of a command goes through :func:`main`, which turns it into one of
the documented exit codes (see :data:`EXIT_CODES` and ``docs/cli.md``). Expected problems
(a bad option, a target that does not import, an unreadable file) print one line naming the
problem and the fix; only an internal error prints a traceback.

Human-readable results go to stdout, progress bars and warnings to stderr; ``--json``
puts one JSON document on stdout instead of the human-readable results.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final

import typer

import explorer.strategies as _strategies
from explorer._corpus import VERSION as CORPUS_VERSION
from explorer._corpus import Corpus, CorpusEntry, CorpusError
from explorer._errors import (
    DidNotReproduce,
    InvalidScheduleError,
    ReplayDivergence,
    UsageError,
)
from explorer._failure import ScheduleFailure
from explorer._nightly import DEFAULT_STRATEGIES, StateMismatch
from explorer._nightly import Progress as NightlyProgress
from explorer._regressions import STATUSES, Scenarios
from explorer._schedule import Schedule
from explorer._targets import (
    ProjectConfig,
    Resolved,
    TargetError,
    TargetRef,
    add_paths,
    expand,
    load_config,
    parse_target,
    resolve,
)

OK: Final = 0
FAILURES: Final = 1
USAGE: Final = 2
INTERNAL: Final = 3
NOT_REPRODUCED: Final = 4
NOTHING: Final = 5
INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_CODES: Final = {
    OK: "ok: nothing failed",
    FAILURES: "failures found (or a replayed schedule still fails)",
    USAGE: "usage error: bad option, target, file or schedule",
    INTERNAL: "internal error of the explorer (with a traceback)",
    NOT_REPRODUCED: "did not reproduce: the schedule passes or no longer fits the code",
    NOTHING: "nothing to explore: no targets, or an empty corpus",
    INTERRUPTED: "interrupted by Ctrl-C (one line says what was run and found so far)",
}


class CliError(Exception):
    """Stop the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(CliError):
    """A real Ctrl-C stopped the command; the message says what was run and found."""

    def __init__(self, message: str) -> None:
        super().__init__(message, INTERRUPTED)


app = typer.Typer(
    name="explorer", no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False,
    help="Explore the interleavings of async Python scenarios, replay and shrink failing "
         "schedules, keep them in a corpus, and run the nightly exploration job. "
         "Exit codes: 0 ok, 1 failures found, 2 usage error, 3 internal error, "
         "4 did not reproduce, 5 nothing to explore.")
corpus_app = typer.Typer(no_args_is_help=True,
                         help="List, show, verify, clean and migrate the saved failures.")
app.add_typer(corpus_app, name="corpus")


# --------------------------------------------------------------------------- helpers


def _out(text: str = "") -> None:
    typer.echo(text)


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def _config() -> ProjectConfig:
    config = load_config()
    # Like ``python -m``: the working directory, then the project's own directories.
    add_paths([os.getcwd(), str(config.root), *config.pythonpath])
    return config


def _corpus_dir(config: ProjectConfig, option: Path | None) -> Path:
    if option is not None:
        return option
    return config.corpus or config.root / "corpus"


def _targets(config: ProjectConfig, specs: Sequence[str]) -> list[TargetRef]:
    refs: list[TargetRef] = []
    for spec in specs:
        refs += expand(parse_target(spec))
    if not specs:
        refs = list(config.targets)
    return refs


def _progress_enabled() -> bool:
    setting = os.environ.get("EXPLORER_PROGRESS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return sys.stderr.isatty()


class Bars:
    """Rich progress bars on stderr: schedules done, rate, failures so far, time left."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = _progress_enabled() if enabled is None else enabled
        self.failures = 0
        self._progress: Any = None
        self._task: Any = None
        self._overall: Any = None

    def __enter__(self) -> Bars:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn
            from rich.table import Column

            forced = os.environ.get("EXPLORER_PROGRESS", "").strip() == "1"
            self._progress = Progress(
                TextColumn("{task.description}", table_column=Column(
                    max_width=48, no_wrap=True, overflow="ellipsis")),
                BarColumn(bar_width=24),
                TextColumn("{task.completed:>9,.0f} {task.fields[unit]}"), _rate_column(),
                TextColumn("{task.fields[failures]} failure(s)"), _left_column(),
                console=Console(stderr=True, force_terminal=forced or None),
                refresh_per_second=5)
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def start(self, description: str, *, total: int | None = None,
              seconds: float | None = None, keep: bool = True) -> None:
        """A bar for the next piece of work; ``keep=False`` removes the previous one."""
        if self._progress is None:
            return
        if self._task is not None:
            if keep:
                self._progress.stop_task(self._task)
            else:
                self._progress.remove_task(self._task)
        deadline = time.monotonic() + seconds if seconds is not None else None
        self._task = self._progress.add_task(description, total=total, unit="schedules",
                                             failures=self.failures, deadline=deadline)

    def overall(self, description: str, *, total: int, done: int, seconds: float) -> None:
        """A bar above the others for a whole job (the nightly run's slices)."""
        if self._progress is not None:
            self._overall = self._progress.add_task(
                description, total=total, completed=done, failures=self.failures,
                deadline=time.monotonic() + seconds, unit="slices")

    def step_overall(self) -> None:
        if self._progress is not None and self._overall is not None:
            self._progress.update(self._overall, advance=1, failures=self.failures)

    def advance(self, schedules: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=schedules, failures=self.failures)

    def failed(self) -> None:
        self.failures += 1
        for task in (self._task, self._overall):
            if self._progress is not None and task is not None:
                self._progress.update(task, failures=self.failures)


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            if task.fields.get("unit") != "schedules":
                return Text("")
            elapsed = task.finished_time if task.finished else task.elapsed
            speed = task.completed / elapsed if elapsed else None
            return Text(f"{speed:>8,.0f}/s" if speed else "       -/s")

    return RateColumn()


def _left_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class LeftColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            deadline = task.fields.get("deadline")
            if task.finished:
                return Text("done")
            if deadline is not None:
                left: float | None = max(0.0, deadline - time.monotonic())
            else:
                left = task.time_remaining
            return Text("" if left is None else f"{left:,.0f}s left")

    return LeftColumn()


@contextmanager
def _warnings_to_stderr(collected: list[str]) -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    collected += [str(w.message) for w in caught]


def _schedule(text: str) -> tuple[Schedule, str | None]:
    """The schedule, and the runtime it was recorded under when ``text`` is a corpus entry."""
    path = Path(text)
    if text.endswith(".json") and path.exists() and not path.is_file():
        raise CliError(f"{text} is {_kind_of(path.stat().st_mode)}, not a corpus entry "
                       "file; give the entry's .json file or a schedule string like "
                       "'v1:3=1,7=2'")
    if text.endswith(".json") and path.is_file():
        entry = Corpus(path.parent).load(path)
        return entry.schedule, entry.runtime
    return Schedule.parse(text), None


def _check_runtime(runtime: str | None, source: str = "--runtime") -> None:
    from explorer._engine import RUNTIMES

    if runtime is not None and runtime not in RUNTIMES:
        raise CliError(f"{source}: unknown runtime {runtime!r}; available runtimes: "
                       f"{', '.join(RUNTIMES)}")


def _check_workers(workers: int | None, cluster: str | None) -> None:
    """Refuse more local worker processes than the machine can usefully run: each is a
    whole interpreter, and starting thousands of them only exhausts the machine (on a
    cluster, --workers counts tasks, which the scheduler queues)."""
    limit = max(8, 4 * (os.cpu_count() or 1))
    if workers is not None and cluster is None and workers > limit:
        raise CliError(f"--workers {workers}: this machine has {os.cpu_count()} CPU(s), so "
                       f"more than {limit} worker processes only slow it down; use at most "
                       f"--workers {limit} (for more, run on a cluster with --cluster)")


# --------------------------------------------------------------------------- explore


StrategyOpt = Annotated[str | None, typer.Option(
    "--strategy", "-s", help=f"One of {', '.join(_strategies.names())} (default: the "
    "target's marker, else portfolio, as for explorer.explore()).")]
MaxSchedulesOpt = Annotated[int | None, typer.Option(
    "--max-schedules", "-n", min=1, help="At most this many schedules (default 1000).")]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Seed of a seeded strategy (default: a fresh one, reported).")]
MaxStepsOpt = Annotated[int | None, typer.Option(
    "--max-steps", min=1, help="Steps in stock order after a run's last deviation before "
    "it counts as a livelock (default 20000).")]
BoundOpt = Annotated[int | None, typer.Option(
    "--deviation-bound", "-d", min=0, help="Systematic: cover every schedule with at most "
    "this many deviations.")]
CorpusOpt = Annotated[Path | None, typer.Option(
    "--corpus", help="Corpus directory (default: [tool.explorer] corpus, else corpus/ at "
    "the project root).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", "-w", min=1, help="Explore in N worker processes (or N tasks on --cluster).")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="Run on the Dask scheduler at this address (tcp://host:8786).")]
ShardOpt = Annotated[str | None, typer.Option(
    "--shard", help="Run only shard i of n (1-based, as in a CI matrix): --shard 2/4.")]
RuntimeOpt = Annotated[str | None, typer.Option(
    "--runtime", help="asyncio or trio (default: the target's runtime setting; trio for a "
    "test marked trio; else asyncio).", show_default=False)]
RunTimeoutOpt = Annotated[float | None, typer.Option(
    "--run-timeout", min=0.0, metavar="SECONDS", help="Stop a run that takes longer than "
    "this much real time and report it as a hang (default: the target's run_timeout, else "
    "5; 0 disables).", show_default=False)]


@app.command("explore")
def explore_command(
    targets: Annotated[list[str], typer.Argument(
        help="path/to/file.py::function, package.module:function, a pytest node id of a "
             "test marked @pytest.mark.explore, or a file (all its marked tests). Default: "
             "[tool.explorer] targets.", show_default=False)] = [],  # noqa: B006 - typer's idiom
    strategy: StrategyOpt = None, max_schedules: MaxSchedulesOpt = None,
    seed: SeedOpt = None, max_steps: MaxStepsOpt = None, deviation_bound: BoundOpt = None,
    max_time: Annotated[str | None, typer.Option(
        "--max-time", help="Stop each target after this long (90s, 10m, 2h).")] = None,
    timer_races: Annotated[bool | None, typer.Option(
        "--timer-races/--no-timer-races", help="Also race timers against ready work.")
    ] = None,
    shrink: Annotated[bool, typer.Option("--shrink/--no-shrink",
                                         help="Shrink failing schedules.")] = True,
    corpus: CorpusOpt = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not save failures in the "
                                                            "corpus.")] = False,
    runtime: RuntimeOpt = None, run_timeout: RunTimeoutOpt = None,
    workers: WorkersOpt = None, cluster: ClusterOpt = None, shard: ShardOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explore schedules of each TARGET until it fails or the budget runs out."""
    from explorer._engine import DEFAULT_MAX_SCHEDULES
    from explorer._nightly import parse_duration
    from explorer._parallel import executor_for, explore_target

    _check_runtime(runtime)
    _check_workers(workers, cluster)
    config = _config()
    refs = _targets(config, targets)
    if not refs:
        raise CliError("nothing to explore: no target given, none marked "
                       "@pytest.mark.explore in the given files, and no [tool.explorer] "
                       "targets in pyproject.toml", NOTHING)
    seconds = parse_duration(max_time) if max_time is not None else None
    overrides = {"strategy": strategy, "max_schedules": max_schedules, "seed": seed,
                 "max_steps": max_steps, "deviation_bound": deviation_bound,
                 "timer_races": timer_races, "shrink": shrink, "max_time": seconds,
                 "runtime": runtime, "run_timeout": run_timeout}
    store = None if no_save else _corpus_store(config, corpus)
    results: list[Any] = []
    with _interruptible(results), \
            executor_for(workers=workers, cluster=cluster, shard=shard) as executor, \
            Bars() as bars:
        for ref in refs:
            total = max_schedules or ref.options.get("max_schedules") or DEFAULT_MAX_SCHEDULES
            bars.start(ref.spec, total=None if seconds else total, seconds=seconds)
            result = explore_target(ref, overrides, executor, on_schedules=bars.advance)
            if result.failure is not None:
                bars.failed()
                if store is not None:
                    path = store.directory / _entry_name(result.failure)
                    result.new_in_corpus = not path.exists()
                    result.failure.saved_to(store.save(result.failure))
                    result.corpus_path = str(result.failure.corpus_path)
            results.append(result)
    code = FAILURES if any(r.failure for r in results) else OK
    if as_json:
        _json({"command": "explore", "exit_code": code,
               "results": [r.to_json() for r in results]})
    else:
        for result in results:
            _print_result(result)
        failed = sum(1 for r in results if r.failure)
        _out(f"{failed} of {len(results)} target(s) failed" if failed else
             f"all {len(results)} target(s) passed")
    raise typer.Exit(code)


@contextmanager
def _interruptible(results: Sequence[Any] = (), then: str = "") -> Iterator[None]:
    """Turn a real Ctrl-C into one line (typer would turn it into a silent exit 130):
    what the exploration had run and found, what the targets explored before it found
    (their failures are in the corpus already), and ``then``."""
    from explorer._interrupts import ExplorationInterrupted

    try:
        yield
    except KeyboardInterrupt as err:
        line = str(err) if isinstance(err, ExplorationInterrupted) else "interrupted"
        if results:
            failed = sum(1 for r in results if r.failure)
            line += (f"; {len(results)} earlier target(s) finished, {failed} of them "
                     "failed")
        raise Interrupted(line + then) from None


def _entry_name(failure: ScheduleFailure) -> str:
    from explorer._corpus import entry_name

    return entry_name(failure.scenario, failure.runtime, failure.schedule)


def _print_result(result: Any) -> None:
    for warning in result.warnings:
        _err(f"warning: {warning}")
    took = f"{result.schedules:,} schedules in {result.elapsed:.2f}s ({result.rate:,.0f}/s)"
    runtime = result.settings.runtime
    target = result.target + (f" ({runtime})" if runtime != "asyncio" else "")
    if result.failure is None:
        _out(f"ok    {target}: {took}; covered {result.coverage}")
        return
    failure = result.failure
    where = f" at {failure.location.short}" if failure.location else ""
    saved = (f"; saved {result.corpus_path}" + ("" if result.new_in_corpus else
                                                " (already in the corpus)")
             if result.corpus_path else "")
    _out(f"FAIL  {target}: {failure.kind}{where} after {took}{saved}")
    _out("")
    _out(str(failure))
    _out("")


# --------------------------------------------------------------------------- replay, shrink


@app.command("replay")
def replay_command(
    target: Annotated[str, typer.Argument(help="The scenario (any target form, or the "
                                               "dotted name a corpus entry records).")],
    schedule: Annotated[str, typer.Argument(help="A schedule string like 'v1:0=1,3=2', or "
                                                 "a corpus entry file.")],
    tolerant: Annotated[bool, typer.Option(
        "--tolerant", help="Where the schedule no longer fits, continue with the default "
        "choice instead of stopping.")] = False,
    max_steps: MaxStepsOpt = None, runtime: RuntimeOpt = None,
    run_timeout: RunTimeoutOpt = None, as_json: JsonOpt = False,
) -> None:
    """Replay one SCHEDULE of TARGET exactly (strict: stop where the code has drifted).

    A corpus entry replays under the runtime it recorded."""
    from explorer._engine import run

    resolved, sched, steps, chosen = _target_schedule(target, schedule, max_steps, runtime)
    try:
        with _interruptible(then=f" while replaying {sched} on {resolved.name}"):
            result = run(resolved.fn, schedule=sched, runtime=chosen, strict=not tolerant,
                         max_steps=steps, run_timeout=_run_timeout(resolved, run_timeout))
    except ReplayDivergence as err:
        if as_json:
            _json({"command": "replay", "status": "diverged", "detail": _drifted(err),
                   "point": err.point, "expected": err.expected, "available": err.available,
                   "runtime": chosen, "exit_code": NOT_REPRODUCED})
            raise typer.Exit(NOT_REPRODUCED) from None
        raise CliError(f"did not reproduce: {_drifted(err)}", NOT_REPRODUCED) from None
    drift = [f"at scheduling point {p} the schedule asked for candidate {c}, but "
             f"{n} were ready; took the default" for p, c, n in result.divergences]
    if not result.outcome.failed:
        message = (f"did not reproduce: {resolved.name} passes under {sched}; the bug is "
                   "fixed or the code changed")
        if as_json:
            _json({"command": "replay", "status": "passed", "detail": message,
                   "divergences": drift, "runtime": chosen, "exit_code": NOT_REPRODUCED})
            raise typer.Exit(NOT_REPRODUCED)
        for line in drift:
            _err(f"warning: {line}")
        raise CliError(message, NOT_REPRODUCED)
    failure = ScheduleFailure(result.outcome, result.schedule, result.trace,
                              scenario=resolved.name, strategy={"name": "replay"},
                              runtime=chosen)
    if as_json:
        _json({"command": "replay", "status": "fails", "divergences": drift,
               "runtime": chosen, "failure": failure.to_json(), "message": str(failure),
               "exit_code": FAILURES})
    else:
        for line in drift:
            _err(f"warning: {line}")
        _out(str(failure))
    raise typer.Exit(FAILURES)


def _drifted(err: ReplayDivergence) -> str:
    """A divergence in command-line terms (the API's advice names strict=False)."""
    return (f"the schedule no longer fits the code: {err.reason}; the code or the scenario "
            "changed since the schedule was recorded ('explorer replay --tolerant' continues "
            "with the default choice from there)")


def _target_schedule(target: str, schedule: str, max_steps: int | None,
                     runtime: str | None) -> tuple[Resolved, Schedule, int, str]:
    """The resolved scenario, the parsed schedule, the step bound and the runtime of
    replay/shrink.

    The runtime is ``--runtime``, else the one a corpus entry recorded, else the target's
    (its marker's ``runtime``, or trio for a test marked trio), else asyncio. A corpus
    entry replays only under its own runtime.
    """
    from explorer._engine import DEFAULT_MAX_STEPS

    _check_runtime(runtime)
    _config()
    resolved = resolve(parse_target(target))
    steps = max_steps or int(resolved.options.get("max_steps", DEFAULT_MAX_STEPS))
    sched, recorded = _schedule(schedule)
    if recorded is not None and runtime is not None and runtime != recorded:
        raise CliError(f"{schedule} was recorded under the {recorded} runtime, and a corpus "
                       f"entry replays only under its own; drop --runtime {runtime}")
    chosen = runtime or recorded or str(resolved.options.get("runtime", "asyncio"))
    _check_runtime(chosen, schedule if recorded else f"target {target!r}")
    return resolved, sched, steps, chosen


def _run_timeout(resolved: Resolved, option: float | None) -> float | None:
    """``--run-timeout``, else the target's ``run_timeout`` option, else the default."""
    from explorer._engine import DEFAULT_RUN_TIMEOUT, check_run_timeout

    if option is not None:
        return option
    return check_run_timeout(resolved.options.get("run_timeout", DEFAULT_RUN_TIMEOUT))


@app.command("shrink")
def shrink_command(
    target: Annotated[str, typer.Argument(help="The scenario (any target form).")],
    schedule: Annotated[str, typer.Argument(help="A failing schedule string, or a corpus "
                                                 "entry file.")],
    max_steps: MaxStepsOpt = None,
    corpus: Annotated[Path | None, typer.Option(
        "--corpus", help="Also save the shrunk failure into this corpus directory.")] = None,
    runtime: RuntimeOpt = None, run_timeout: RunTimeoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Shrink a failing SCHEDULE of TARGET to the fewest deviations that fail the same way.

    A corpus entry is shrunk under the runtime it recorded. Each candidate run of a hang
    takes up to --run-timeout; shrinking stops within its 10 s budget plus one run."""
    from explorer import strategies
    from explorer._engine import explore, run

    resolved, sched, steps, chosen = _target_schedule(target, schedule, max_steps, runtime)
    if corpus is not None:  # refused before the shrinking, not after it
        _corpus_store(load_config(), corpus)
    limit = _run_timeout(resolved, run_timeout)
    try:
        with _interruptible(then=f" while replaying {sched} on {resolved.name}"):
            first = run(resolved.fn, schedule=sched, runtime=chosen, max_steps=steps,
                        run_timeout=limit)
    except ReplayDivergence as err:
        raise CliError(f"did not reproduce: {_drifted(err)}", NOT_REPRODUCED) from None
    if not first.outcome.failed:
        raise CliError(f"did not reproduce: {resolved.name} passes under {sched}, so there "
                       "is nothing to shrink", NOT_REPRODUCED)
    collected: list[str] = []
    with _warnings_to_stderr(collected), _interruptible(
            then=f" while shrinking {sched} on {resolved.name}; nothing was saved"):
        result = explore(resolved.fn, runtime=chosen,
                         strategy=strategies.Fixed(sched.decisions()),
                         max_schedules=1, max_steps=steps, timer_races=sched.timers,
                         raise_on_failure=False, shrink=True,
                         corpus=str(corpus) if corpus else None, run_timeout=limit)
    failure = result.failure
    if failure is None:  # the replay above failed, so this means the scenario is flaky
        raise CliError(f"{resolved.name} failed under {sched} once and passed the second "
                       "time: it is nondeterministic; see the guide's determinism section",
                       NOT_REPRODUCED)
    if as_json:
        _json({"command": "shrink", "original": str(sched), "shrunk": str(failure.schedule),
               "runtime": chosen, "failure": failure.to_json(), "message": str(failure),
               "corpus_path": str(failure.corpus_path) if failure.corpus_path else None,
               "exit_code": FAILURES})
    else:
        _out(f"shrunk {sched} ({sched.deviation_count} deviation(s)) to {failure.schedule} "
             f"({failure.deviations} deviation(s))")
        _out("")
        _out(str(failure))
    raise typer.Exit(FAILURES)


# --------------------------------------------------------------------------- corpus


def _entry_row(item: CorpusEntry | CorpusError) -> dict[str, Any]:
    if isinstance(item, CorpusError):
        return {"path": str(item.path), "status": item.status, "detail": str(item)}
    loc = item.failure.get("location") or {}
    return {"path": str(item.path), "scenario": item.scenario, "runtime": item.runtime,
            "kind": item.kind,
            "location": f"{loc.get('file')}:{loc.get('line')}" if loc else "",
            "schedule": str(item.schedule), "deviations": item.schedule.deviation_count,
            "version": item.data.get("version")}


def _find_entries(store: Corpus, names: Sequence[str]) -> list[Path]:
    paths = store.paths()
    found: list[Path] = []
    for name in names:
        direct = Path(name)
        if direct.is_file():
            found.append(direct)
            continue
        matches = [p for p in paths if p.name == name or p.name.startswith(name)
                   or p.stem.rsplit("-", 1)[-1].startswith(name)]
        if len(matches) != 1:
            problem = "no entry" if not matches else f"{len(matches)} entries"
            raise CliError(f"{problem} in {store.directory} match {name!r}; give the file "
                           "name (see 'explorer corpus list')")
        found.append(matches[0])
    return found


def _corpus_store(config: ProjectConfig, option: Path | None) -> Corpus:
    """The corpus of a corpus command; a path that exists but is not a directory is a
    usage error (a corpus is a directory of JSON files)."""
    directory = _corpus_dir(config, option)
    if directory.exists() and not directory.is_dir():
        raise CliError(f"--corpus {directory} is a file, not a directory; a corpus is the "
                       "directory that holds the entries: give that directory (for one "
                       "entry, use 'explorer corpus show FILE')")
    return Corpus(directory)


CollectOpt = Annotated[bool, typer.Option(
    "--collect/--no-collect", help="Also match entries to the tests marked "
    "@pytest.mark.explore that pytest collects.")]
ScenarioTargetsArg = Annotated[list[str], typer.Argument(
    help="Scenarios entries may replay (any target form), besides [tool.explorer] targets "
         "and collected marked tests. Entries are matched to them by name; nothing a corpus "
         "file names is ever imported.", show_default=False)]


def _scenarios(config: ProjectConfig, targets: Sequence[str], collect: bool,
               quiet: bool = False) -> Scenarios:
    from explorer._nightly import configured_scenarios

    scenarios, problems = configured_scenarios(config, targets, collect=collect)
    for problem in problems if not quiet else ():
        _err(f"warning: {problem}")
    return scenarios


@corpus_app.command("list")
def corpus_list(corpus: CorpusOpt = None, as_json: JsonOpt = False) -> None:
    """List the corpus entries: scenario, failure kind and place, schedule (nothing is
    imported or run)."""
    store = _corpus_store(_config(), corpus)
    rows = [_entry_row(item) for item in store.entries()]
    if as_json:
        _json({"command": "corpus list", "corpus": str(store.directory), "entries": rows})
        raise typer.Exit(OK if rows else NOTHING)
    if not rows:
        raise CliError(f"the corpus {store.directory} is empty", NOTHING)
    for row in rows:
        name = Path(row["path"]).name
        if "scenario" not in row:
            _out(_printable(f"{name}  {row['status'].upper()}: {row['detail']}"))
        else:
            where = f" at {row['location']}" if row["location"] else ""
            _out(_printable(f"{name}  {row['scenario']} ({row['runtime']})  {row['kind']}"
                            f"{where}  {row['schedule']}"))
    _out(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'} in {store.directory}")


@corpus_app.command("show")
def corpus_show(
    entry: Annotated[str, typer.Argument(help="File name, path, or a unique prefix of the "
                                              "name or of its hash.")],
    corpus: CorpusOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show one entry as saved (nothing is imported or run)."""
    store = _corpus_store(_config(), corpus)
    path = _find_entries(store, [entry])[0]
    # A file named directly is read as an entry of its own directory: still only a regular
    # file there, never a link leading out of it.
    loaded = Corpus(path.parent).load(path)
    if as_json:
        _json(loaded.data)
        return
    failure = loaded.failure
    found = loaded.found
    _out(f"{path}")
    _out(f"  scenario:   {loaded.scenario} ({loaded.runtime})")
    where = _entry_row(loaded)["location"]
    _out(f"  failure:    {loaded.kind}" + (f" at {where}" if where else "")
         + (f" ({failure.get('exc_type')})" if failure.get("exc_type") else ""))
    _out(f"  schedule:   {loaded.schedule} ({loaded.schedule.deviation_count} deviation(s))")
    how = dict(found.get("strategy") or {})
    name = how.pop("name", "?")
    params = ", ".join(f"{k} {v}" for k, v in sorted(how.items()) if v is not None)
    _out(f"  found:      by {name}{f' ({params})' if params else ''} search after "
         f"{found.get('found_after')} "
         f"schedule(s), explorer {found.get('explorer') or '?'}, "
         f"Python {found.get('python') or '?'}")
    _out(f"  shrunk:     {'yes' if loaded.shrunk else 'no'}")
    runtime = f" --runtime {loaded.runtime}" if loaded.runtime != "asyncio" else ""
    _out(f"  replay:     explorer replay {loaded.scenario} '{loaded.schedule}'{runtime}")
    _out("")
    for line in _printable(str(failure.get("message", ""))).splitlines():
        _out(f"  {line}")


def _printable(text: str) -> str:
    """``text`` with control characters escaped (but newlines and tabs): a corpus file is
    untrusted, and terminal escape sequences in it must not reach the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_STATUS_ORDER: Final = STATUSES


@corpus_app.command("verify")
def corpus_verify(
    targets: ScenarioTargetsArg = [],  # noqa: B006 - typer's idiom
    corpus: CorpusOpt = None,
    tolerant: Annotated[bool, typer.Option("--tolerant", help="Continue past drift with "
                                                              "default choices.")] = False,
    collect: CollectOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Replay every entry against the scenario of its name and print its one status:
    fails, diverged, error, unknown-scenario, unreadable, newer-format or fixed. Exit 1 if
    any still fails, 4 if none fails but some are not fixed, 0 if all are fixed."""
    from explorer._regressions import replay_one

    config = _config()
    store = _corpus_store(config, corpus)
    if not store.paths():
        raise CliError(f"nothing to verify: the corpus {store.directory} is empty", NOTHING)
    scenarios = _scenarios(config, targets, collect, quiet=as_json)
    reports = [replay_one(item, scenarios, strict=not tolerant) for item in store.entries()]
    code = _verify_code({r.status for r in reports})
    if as_json:
        _json({"command": "corpus verify", "exit_code": code, "entries": [
            {"path": str(r.path), "status": r.status, "detail": r.detail, "same": r.same,
             "scenario": r.entry.scenario if r.entry else None,
             "runtime": r.entry.runtime if r.entry else None} for r in reports]})
    else:
        width = max(len(s) for s in _STATUS_ORDER)
        for report in reports:
            _out(f"{report.status:<{width}}  {_printable(report.path.name)}  "
                 f"{_printable(report.detail)}")
        counts = {s: sum(1 for r in reports if r.status == s) for s in _STATUS_ORDER}
        _out(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    raise typer.Exit(code)


def _verify_code(statuses: set[str]) -> int:
    """The exit code of the worst status (see ``_STATUS_ORDER``)."""
    if "fails" in statuses:
        return FAILURES
    return NOT_REPRODUCED if statuses - {"fixed"} else OK


@corpus_app.command("gc")
def corpus_gc(
    targets: ScenarioTargetsArg = [],  # noqa: B006 - typer's idiom
    corpus: CorpusOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be "
                                                            "deleted.")] = False,
    prune_unknown: Annotated[bool, typer.Option(
        "--prune-unknown", help="Also delete entries no configured scenario is named as "
        "(kept by default: a target left out of the command line would lose them).")
    ] = False,
    collect: CollectOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Delete entries whose bug is fixed, and temporary files of interrupted writes.

    Entries that match no configured scenario (unknown-scenario) are kept with a warning
    unless --prune-unknown; unreadable and erroring entries are always kept."""
    from explorer._regressions import FIXED, UNKNOWN_SCENARIO, replay_one

    config = _config()
    store = _corpus_store(config, corpus)
    scenarios = _scenarios(config, targets, collect, quiet=as_json)
    doomed: list[tuple[Path, str]] = []
    kept: list[tuple[Path, str]] = []
    for item in store.entries():
        report = replay_one(item, scenarios)
        if report.status == FIXED:
            doomed.append((report.path, "fixed"))
        elif report.status == UNKNOWN_SCENARIO and prune_unknown:
            doomed.append((report.path, "unknown scenario"))
        elif report.status == UNKNOWN_SCENARIO:
            kept.append((report.path, f"kept: {report.detail}; or pass --prune-unknown to "
                                      "delete such entries"))
        elif report.status not in ("fails", "diverged"):
            kept.append((report.path, f"kept ({report.status}): {report.detail}"))
    temporary = sorted(store.directory.glob(".tmp-*.json")) if store.directory.is_dir() else []
    if not dry_run:
        for path, _ in doomed:
            path.unlink(missing_ok=True)
        for path in temporary:
            path.unlink(missing_ok=True)
    verb = "would delete" if dry_run else "deleted"
    if as_json:
        _json({"command": "corpus gc", "dry_run": dry_run,
               "deleted": [{"path": str(p), "reason": r} for p, r in doomed],
               "kept": [{"path": str(p), "reason": r} for p, r in kept],
               "temporary": [str(p) for p in temporary]})
        return
    for path, reason in doomed:
        _out(f"{verb} {_printable(path.name)} ({reason})")
    for path, reason in kept:
        _err(f"warning: {_printable(path.name)}: {_printable(reason)}")
    for path in temporary:
        _out(f"{verb} {_printable(path.name)} (left by an interrupted write)")
    _out(f"{verb} {len(doomed)} entr{'y' if len(doomed) == 1 else 'ies'}")


@corpus_app.command("rm")
def corpus_rm(
    entries: Annotated[list[str], typer.Argument(help="Entries to delete (file names, "
                                                      "paths or unique prefixes).")],
    corpus: CorpusOpt = None,
) -> None:
    """Delete the given entries."""
    store = _corpus_store(_config(), corpus)
    for path in _find_entries(store, entries):
        path.unlink()
        _out(f"deleted {path.name}")


# Rewrites from format version N to N + 1, applied in order. Version 1 is the first, so
# there is nothing to rewrite yet; a new format adds its step here.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@corpus_app.command("migrate")
def corpus_migrate(
    corpus: CorpusOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be "
                                                            "rewritten.")] = False,
) -> None:
    """Rewrite entries of older format versions to the current one (atomically)."""
    from explorer._files import write_atomically

    store = _corpus_store(_config(), corpus)
    migrated = current = 0
    for path in store.paths():
        try:
            data = store.load_json(path)
            if data["version"] == CORPUS_VERSION:
                store.load(path)  # checked field by field, like every other reader
                current += 1
                continue
            data = _migrated(path, data)
        except CorpusError as err:
            _err(f"warning: skipped {_printable(str(err))}")
            continue
        if not dry_run:
            write_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        migrated += 1
        _out(f"{'would migrate' if dry_run else 'migrated'} {_printable(path.name)} to "
             f"format version {CORPUS_VERSION}")
    _out(f"{migrated} entr{'y' if migrated == 1 else 'ies'} "
         f"{'to migrate' if dry_run else 'migrated'}; {current} already at format version "
         f"{CORPUS_VERSION}")


def _migrated(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` rewritten step by step to the current format, and checked against it; a
    :class:`CorpusError` naming ``path`` if that cannot be done."""
    from explorer._corpus import decode

    version = int(data["version"])
    while version < CORPUS_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise CorpusError(path, f"has format version {version}, which no explorer "
                                    "wrote; it cannot be migrated: remove it")
        try:
            data = step(dict(data))
        except Exception as exc:  # noqa: BLE001 - a damaged old entry must not stop the rest
            raise CorpusError(path, f"cannot be migrated from format version {version} "
                                    f"({type(exc).__name__}: {exc}); remove it") from None
        version += 1
    data["version"] = CORPUS_VERSION
    decode(path, data)
    return data


# --------------------------------------------------------------------------- nightly, report


class _NightlyBars(NightlyProgress):
    """Adapts the nightly job's progress events to :class:`Bars`."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars

    def slice_started(self, number: int, total: int, label: str, seconds: float | None
                      ) -> None:
        self.bars.start(f"[{number}/{total}] {label}", seconds=seconds, keep=False)

    def schedules(self, count: int) -> None:
        self.bars.advance(count)

    def slice_finished(self, result: Mapping[str, Any]) -> None:
        if result.get("failure") and result.get("kind") == "explore":
            self.bars.failed()
        self.bars.step_overall()


@app.command("nightly")
def nightly_command(
    targets: Annotated[list[str], typer.Argument(
        help="Extra targets, besides [tool.explorer] targets and the marked tests pytest "
             "collects.", show_default=False)] = [],  # noqa: B006 - typer's idiom
    budget: Annotated[str, typer.Option("--budget", "-b", help="Total time: 90s, 10m, 2h.")
                      ] = "10m",
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for the state "
                                         "file and the summaries.")] = Path("explorer-nightly"),
    corpus: CorpusOpt = None, seed: SeedOpt = None, max_steps: MaxStepsOpt = None,
    strategy: Annotated[list[str] | None, typer.Option(
        "--strategy", "-s", help="Strategies to run per scenario (repeat; default: "
        f"{' and '.join(DEFAULT_STRATEGIES)}; any of {', '.join(_strategies.names())}).")
    ] = None,
    collect: Annotated[bool, typer.Option("--collect/--no-collect", help="Discover tests "
                                          "marked @pytest.mark.explore with pytest.")] = True,
    fresh: Annotated[bool, typer.Option("--fresh", help="Forget an interrupted run in "
                                                        "--output and start over.")] = False,
    run_timeout: RunTimeoutOpt = None,
    workers: WorkersOpt = None, cluster: ClusterOpt = None, shard: ShardOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explore every scenario of the project within --budget; resumable after a crash.

    Saves new failures (shrunk) into the corpus, re-verifies existing entries, and writes
    summary.json, summary.md and report.html into --output."""
    from explorer._nightly import (
        NightlyOptions,
        execute,
        format_duration,
        parse_duration,
        prepare,
    )
    from explorer._parallel import executor_for

    _check_workers(workers, cluster)
    config = _config()
    chosen = tuple(strategy or DEFAULT_STRATEGIES)
    unknown = [s for s in chosen if s not in _strategies.names()]
    if unknown:
        raise CliError(f"unknown strategy {unknown[0]!r}; use one of: "
                       f"{', '.join(_strategies.names())}")
    if output.exists() and not output.is_dir():
        raise CliError(f"--output {output} is a file, not a directory; the nightly job "
                       "writes state.json and its summaries into a directory: give a new "
                       "or existing directory")
    options = NightlyOptions(parse_duration(budget), output,
                             _corpus_store(config, corpus).directory,
                             chosen, tuple(targets), collect, seed, shard, max_steps,
                             run_timeout)
    run = prepare(options, config, fresh=fresh)
    if not run.state["plan"]:
        problems = "; ".join(run.state.get("problems", []))
        raise CliError("nothing to explore: no targets given, none in [tool.explorer] "
                       "targets, no test marked @pytest.mark.explore, and an empty corpus"
                       + (f" ({problems})" if problems else ""), NOTHING)
    if run.resumed and not as_json:
        _err(f"resuming the run in {output}: {run.finished_before} of "
             f"{len(run.state['plan'])} slices already finished")
    for problem in run.state.get("problems", []):
        _err(f"warning: {problem}")
    resume = (f"; the finished slices are kept in {output}: run the same command again to "
              "resume")
    with _interruptible(then=resume), \
            executor_for(workers=workers, cluster=cluster, shard=shard) as executor, \
            Bars() as bars:
        spent = sum(float(r.get("elapsed", 0.0)) for r in run.state["results"].values())
        bars.overall(f"nightly ({executor.describe()})", total=len(run.state["plan"]),
                     done=run.finished_before, seconds=max(0.0, options.budget - spent))
        summary = execute(run, executor, _NightlyBars(bars))
    code = int(summary["exit_code"])
    if as_json:
        _json(summary)
        raise typer.Exit(code)
    for failure in summary["failures"]:
        saved = f"; saved {failure['corpus_path']}" if failure["corpus_path"] else ""
        where = f" at {failure['location']}" if failure["location"] else ""
        _out(f"FAIL  {failure['scenario']}: {failure['kind']}{where} "
             f"under {failure['schedule']} ({failure['source']}"
             f"{', new' if failure['new'] else ''}){saved}")
    for row in summary["scenarios"]:
        if not row["failures"] and row["status"] == "passed":
            _out(f"ok    {row['target']}: {row['schedules']:,} schedules")
    for error in summary["errors"]:
        _err(f"error: {error}")
    _out(f"{len(summary['failures'])} failure(s) in {len(summary['scenarios'])} scenario(s) "
         f"and {len(summary['corpus'])} corpus entries; spent "
         f"{format_duration(summary['spent'])}; report: {output / 'report.html'}")
    raise typer.Exit(code)


@app.command("report")
def report_command(
    summaries: Annotated[list[Path], typer.Argument(
        help="summary.json files written by 'explorer nightly' (several are merged, e.g. "
             "one per CI shard).", show_default=False)] = [],  # noqa: B006 - typer's idiom
    corpus: Annotated[Path | None, typer.Option(
        "--corpus", help="Report on this corpus instead: replay each entry to draw its "
        "failure.")] = None,
    scenario_targets: Annotated[list[str] | None, typer.Option(
        "--target", help="With --corpus: a scenario entries may replay (repeat; any target "
        "form), besides [tool.explorer] targets and collected marked tests.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")
                      ] = Path("report.html"),
    title: Annotated[str, typer.Option("--title")] = "Schedule exploration report",
) -> None:
    """Write one self-contained HTML report from nightly summaries or a corpus."""
    from explorer._files import write_atomically
    from explorer._html import distinct_failures, render_report
    from explorer._nightly import SUMMARY_FORMAT

    if not summaries and corpus is None:
        raise CliError("give summary.json files or --corpus DIR to report on")
    # Bytes that were not UTF-8 on the command line arrive as lone surrogates, which the
    # UTF-8 page cannot hold: show them as replacement characters.
    title = title.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    loaded: list[dict[str, Any]] = []
    for path in summaries:
        data = _read_summary(path)
        if not isinstance(data, dict) or data.get("format") != SUMMARY_FORMAT:
            raise CliError(f"{path} is not a nightly summary (no \"format\": "
                           f"\"{SUMMARY_FORMAT}\"); give the summary.json 'explorer "
                           "nightly' wrote")
        loaded.append(data)
    if corpus is not None:
        loaded.append(_corpus_summary(_config(), corpus, scenario_targets or []))
    write_atomically(output, render_report(loaded, title=title))
    _out(f"wrote {output} ({len(distinct_failures(loaded)[0])} failure(s))")


MAX_SUMMARY_BYTES: Final = 256 * 1024 * 1024
"""A nightly summary keeps trace excerpts only; anything larger is not one."""


def _read_summary(path: Path) -> object:
    """The JSON of a summary file: only a regular file (a FIFO would block the read, a
    device never end), read up to :data:`MAX_SUMMARY_BYTES`."""
    fix = "give the summary.json an 'explorer nightly' run wrote"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CliError(f"{path} is not a regular file ({_kind_of(info.st_mode)}); {fix}")
        if info.st_size > MAX_SUMMARY_BYTES:
            raise CliError(f"{path} is {info.st_size:,} bytes, more than a summary holds "
                           f"(at most {MAX_SUMMARY_BYTES:,}); {fix}")
        with path.open("rb") as file:
            raw = file.read(MAX_SUMMARY_BYTES + 1)
        if len(raw) > MAX_SUMMARY_BYTES:
            raise CliError(f"{path} grew past {MAX_SUMMARY_BYTES:,} bytes while being read; "
                           f"{fix}")
        return json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CliError(f"{path}: cannot be read as JSON ({problem}); {fix}") from None


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _corpus_summary(config: ProjectConfig, directory: Path, targets: Sequence[str]
                    ) -> dict[str, Any]:
    from explorer._nightly import STATE_FORMAT, plan_slices, summarize
    from explorer._nightly import _verify as verify_slice

    store = _corpus_store(config, directory)
    if not store.directory.exists():  # a report names its corpus: a typo is not "empty"
        raise CliError(f"--corpus {directory} does not exist; give the corpus directory "
                       "(by default corpus/ at the project root)")
    if not store.paths():
        raise CliError(f"nothing to report: the corpus {directory} is empty", NOTHING)
    plan = plan_slices([], store, ())
    scenarios = _scenarios(config, targets, collect=True)
    results = {item["id"]: verify_slice(item, store, scenarios) for item in plan}
    state = {"format": STATE_FORMAT, "plan": plan, "results": results, "budget": 0,
             "seed": None}
    return summarize(state)


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code (see :data:`EXIT_CODES`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="explorer", standalone_mode=False)
    except Interrupted as err:
        _err(f"explorer: {err}")
        return err.code
    except CliError as err:
        _err(f"explorer: error: {err}")
        return err.code
    except typer.TyperException as err:  # the command line itself is wrong
        context = getattr(err, "ctx", None)
        where = getattr(context, "command_path", "explorer")
        if type(err).__name__ == "NoArgsIsHelpError":
            # 'explorer' or 'explorer corpus' alone: typer has printed the help, which
            # says everything; an empty "error:" line after it would only confuse.
            return USAGE
        _err(f"explorer: error: {err.format_message()} (see '{where} --help')")
        return USAGE
    except (TargetError, InvalidScheduleError, CorpusError, UsageError, StateMismatch) as err:
        _err(f"explorer: error: {err}")
        return USAGE
    except DidNotReproduce as err:
        _err(f"explorer: did not reproduce: {err}")
        return NOT_REPRODUCED
    except ScheduleFailure as err:  # a target decorated with @explorer.reproduce
        _out(str(err))
        return FAILURES
    except typer.Abort:
        _err("explorer: aborted")
        return USAGE
    except KeyboardInterrupt:  # outside a command (typer makes one in a command exit 130)
        _err("explorer: interrupted")
        return INTERRUPTED
    except OSError as err:
        # Scenario code's errors are outcomes and never reach here: an OSError here comes
        # from a path or address the user gave (a corpus under a file, an unwritable
        # output, a full disk), which the message names.
        _err(f"explorer: error: {_os_problem(err)}")
        return USAGE
    except Exception as err:  # noqa: BLE001 - the one place that reports internal errors
        return _internal(err)
    return code if isinstance(code, int) else OK


def _os_problem(err: OSError) -> str:
    what = err.strerror or str(err) or type(err).__name__
    if err.filename is None:
        return f"{what}; check the paths and addresses given"
    where = f"{err.filename}" + (f" -> {err.filename2}" if err.filename2 else "")
    return (f"{where}: {what}; check that the path is right, that its parent is a "
            "directory, and that it can be read and written")


def _internal(err: BaseException) -> int:
    traceback.print_exception(err)
    _err(f"explorer: internal error: {type(err).__name__}: {err}. This is a bug of the "
         "explorer; please report it with the traceback above.")
    return INTERNAL


if __name__ == "__main__":
    sys.exit(main())
