"""The ``explorer`` command: explore, replay, shrink, the corpus, the nightly job, reports.

Invariant: every way out of a command goes through :func:`main`, which turns it into one of
the documented exit codes (see :data:`EXIT_CODES` and ``docs/cli.md``). Expected problems
(a bad option, a target that does not import, an unreadable file) print one line naming the
problem and the fix; only an internal error prints a traceback.

Human-readable results go to stdout, progress bars and warnings to stderr; ``--json``
puts one JSON document on stdout instead of the human-readable results. The commands parse,
call the library and present: the ``corpus`` subcommands are in :mod:`explorer._cli_corpus`,
what all commands share (exit codes, output, the project's corpus) in
:mod:`explorer._cli_common`, progress bars in :mod:`explorer._progress`.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final

import typer

import explorer.strategies as _strategies
from explorer._cli_common import EXIT_CODES as EXIT_CODES
from explorer._cli_common import FAILURES as FAILURES
from explorer._cli_common import INTERNAL as INTERNAL
from explorer._cli_common import INTERRUPTED as INTERRUPTED
from explorer._cli_common import NOT_REPRODUCED as NOT_REPRODUCED
from explorer._cli_common import NOTHING as NOTHING
from explorer._cli_common import OK as OK
from explorer._cli_common import USAGE as USAGE
from explorer._cli_common import CliError as CliError
from explorer._cli_common import CorpusOpt, Interrupted, JsonOpt
from explorer._cli_common import configured_scenarios as _scenarios
from explorer._cli_common import corpus_store as _corpus_store
from explorer._cli_common import emit_json as _json
from explorer._cli_common import err as _err
from explorer._cli_common import out as _out
from explorer._cli_common import project_config as _config
from explorer._cli_corpus import corpus_app
from explorer._corpus import Corpus, CorpusError, EntryNotFound
from explorer._errors import (
    DidNotReproduce,
    InvalidScheduleError,
    ReplayDivergence,
    UsageError,
)
from explorer._failure import ScheduleFailure
from explorer._files import file_kind, write_atomically
from explorer._nightly import DEFAULT_STRATEGIES, StateMismatch, early_finish
from explorer._nightly import Progress as NightlyProgress
from explorer._progress import Bars, NightlyBars, progress_enabled
from explorer._schedule import Schedule
from explorer._settings import (
    DEFAULT_MAX_SCHEDULES,
    DEFAULT_MAX_STEPS,
    DEFAULT_RUNTIME,
    DEFAULT_STRATEGY,
    Settings,
    SettingsError,
    format_duration,
    parse_duration,
    profile_names,
)
from explorer._summary import Summary, SummaryError, is_new
from explorer._targets import (
    ProjectConfig,
    Resolved,
    TargetError,
    TargetRef,
    expand,
    load_config,
    needs_pytest,
    parse_target,
    resolve,
)
from explorer._targets import replay_command as _replay_line

app = typer.Typer(
    name="explorer", no_args_is_help=True, add_completion=False,
    # Plain help: Rich markup would read "[tool.explorer]" in a help text as a style tag
    # and drop it.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Explore the interleavings of async Python scenarios, replay and shrink failing "
         "schedules, keep them in a corpus, and run the nightly exploration job. "
         "Exit codes: 0 ok, 1 failures found, 2 usage error, 3 internal error, "
         "4 did not reproduce, 5 nothing to explore.")
app.add_typer(corpus_app, name="corpus")


# --------------------------------------------------------------------------- helpers


def _targets(config: ProjectConfig, specs: Sequence[str]) -> list[TargetRef]:
    refs: list[TargetRef] = []
    for spec in specs:
        refs += expand(parse_target(spec))
    if not specs:
        refs = list(config.targets)
    return refs


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
        raise CliError(f"{text} is {file_kind(path.stat().st_mode)}, not a corpus entry "
                       "file; give the entry's .json file or a schedule string like "
                       "'v1:3=1,7=2'")
    if text.endswith(".json") and path.is_file():
        entry = Corpus(path.parent).load(path)
        return entry.schedule, entry.runtime
    return Schedule.parse(text), None


def _check_runtime(runtime: str | None, source: str = "--runtime") -> None:
    if runtime is not None:
        _settings({"runtime": runtime}, sources={"runtime": source})


OPTIONS: Final = {"strategy": "--strategy", "max_schedules": "--max-schedules",
                  "seed": "--seed", "deviation_bound": "--deviation-bound",
                  "max_steps": "--max-steps", "timer_races": "--timer-races",
                  "shrink": "--shrink", "max_time": "--max-time", "runtime": "--runtime",
                  "run_timeout": "--run-timeout", "profile": "--profile",
                  "faults": "--faults", "preemption_bound": "--preemption-bound"}
"""The command-line option of each setting (for messages)."""


def _settings(*layers: Mapping[str, object] | None,
              sources: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``layers`` (lowest first), checked by the settings model; a mistake
    is a usage error naming the option (or the ``sources`` entry) it came from."""
    try:
        return Settings.merged(*layers)
    except SettingsError as err:
        source = (sources or {}).get(err.name) or OPTIONS.get(err.name, err.name)
        raise CliError(err.at(source)) from None


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
    f"target's marker, else the profile's, else {DEFAULT_STRATEGY}, as for "
    "explorer.explore()).")]
MaxSchedulesOpt = Annotated[int | None, typer.Option(
    "--max-schedules", "-n", min=1, help="At most this many schedules (default: the "
    f"target's marker, else the profile's, else {DEFAULT_MAX_SCHEDULES}).")]
ProfileOpt = Annotated[str | None, typer.Option(
    "--profile", "-p", help=f"Settings profile: {', '.join(profile_names())} (default: "
    "[tool.explorer] profile, else default); the target's marker and the other options "
    "override it.", show_default=False)]
SeedOpt = Annotated[int | None, typer.Option(
    "--seed", help="Seed of a seeded strategy (default: a fresh one, reported).")]
MaxStepsOpt = Annotated[int | None, typer.Option(
    "--max-steps", min=1, help="Steps in stock order after a run's last deviation before "
    f"it counts as a livelock (default {DEFAULT_MAX_STEPS}).")]
BoundOpt = Annotated[int | None, typer.Option(
    "--deviation-bound", "-d", min=0, help="Systematic: cover every schedule with at most "
    "this many deviations.")]
PreemptionBoundOpt = Annotated[int | None, typer.Option(
    "--preemption-bound", min=0, help="Systematic: count switches (a task set aside while "
    "it could continue) instead of deviations, and cover every schedule with at most this "
    "many.")]
WorkersOpt = Annotated[int | None, typer.Option(
    "--workers", "-w", min=1, help="Explore in N worker processes (or N tasks on --cluster).")]
ClusterOpt = Annotated[str | None, typer.Option(
    "--cluster", help="Run on the Dask scheduler at this address (tcp://host:8786).")]
ShardOpt = Annotated[str | None, typer.Option(
    "--shard", help="Run only shard i of n (1-based, as in a CI matrix): --shard 2/4.")]
RuntimeOpt = Annotated[str | None, typer.Option(
    "--runtime", help="asyncio or trio (default: the target's runtime setting; trio for a "
    "test marked trio; else asyncio).", show_default=False)]
RunTimeoutOpt = Annotated[str | None, typer.Option(
    "--run-timeout", metavar="SECONDS", help="Stop a run that takes longer than this much "
    "real time (seconds, or 30s, 2m) and report it as a hang (default: the target's "
    "run_timeout, else 5; 0 disables).", show_default=False)]
FaultsOpt = Annotated[str | None, typer.Option(
    "--faults", metavar="KINDS", help="Let the simulated network inject faults, each as a "
    "decision counted like a deviation: 'all', or kinds among refused, reset, dropped, "
    "unanswered, comma-separated ('none' turns a target's faults off).", show_default=False)]


@app.command("explore")
def explore_command(
    targets: Annotated[list[str], typer.Argument(
        help="path/to/file.py::function, package.module:function, a pytest node id of a "
             "test marked @pytest.mark.explore, or a file (all its marked tests). Default: "
             "[tool.explorer] targets.", show_default=False)] = [],  # noqa: B006 - typer's idiom
    strategy: StrategyOpt = None, max_schedules: MaxSchedulesOpt = None,
    seed: SeedOpt = None, max_steps: MaxStepsOpt = None, deviation_bound: BoundOpt = None,
    preemption_bound: PreemptionBoundOpt = None,
    max_time: Annotated[str | None, typer.Option(
        "--max-time", help="Stop each target after this long (90s, 10m, 2h).")] = None,
    timer_races: Annotated[bool | None, typer.Option(
        "--timer-races/--no-timer-races", help="Also race timers against ready work.")
    ] = None,
    shrink: Annotated[bool | None, typer.Option(
        "--shrink/--no-shrink", help="Shrink failing schedules (default: yes).",
        show_default=False)] = None,
    corpus: CorpusOpt = None,
    no_save: Annotated[bool, typer.Option("--no-save", help="Do not save failures in the "
                                                            "corpus.")] = False,
    runtime: RuntimeOpt = None, run_timeout: RunTimeoutOpt = None, faults: FaultsOpt = None,
    profile: ProfileOpt = None,
    workers: WorkersOpt = None, cluster: ClusterOpt = None, shard: ShardOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explore schedules of each TARGET until it fails or the budget runs out.

    Settings, lowest precedence first: the profile, the target's own (its marker or its
    [tool.explorer] entry), the options given here."""
    from explorer._parallel import executor_for, explore_target

    overrides: dict[str, object] = {
        "strategy": strategy, "max_schedules": max_schedules, "seed": seed,
        "max_steps": max_steps, "deviation_bound": deviation_bound,
        "timer_races": timer_races, "shrink": shrink, "max_time": max_time,
        "runtime": runtime, "run_timeout": run_timeout, "faults": faults,
        "preemption_bound": preemption_bound}
    _settings({"profile": profile}, overrides)
    _check_workers(workers, cluster)
    config = _config()
    chosen_profile = profile or config.profile
    checked = _settings({"profile": chosen_profile}, overrides,
                        sources={"profile": "[tool.explorer] profile" if profile is None
                                 else "--profile"})
    refs = _targets(config, targets)
    if not refs:
        raise CliError("nothing to explore: no target given, none marked "
                       "@pytest.mark.explore in the given files, and no [tool.explorer] "
                       "targets in pyproject.toml", NOTHING)
    seconds = checked.max_time if max_time is not None else None
    store = None if no_save else _corpus_store(config, corpus)
    results: list[Any] = []
    with _interruptible(results), \
            executor_for(workers=workers, cluster=cluster, shard=shard) as executor, \
            Bars() as bars:
        for ref in refs:
            total = (max_schedules or ref.options.get("max_schedules")
                     or checked.max_schedules)
            bars.start(ref.spec, total=None if seconds else total, seconds=seconds)
            result = explore_target(ref, overrides, executor, on_schedules=bars.advance,
                                    profile=chosen_profile)
            if result.failure is not None:
                bars.failed()
                if store is not None:
                    saved = store.save(result.failure)
                    result.new_in_corpus = saved.new
                    result.failure.saved_to(saved.path)
                    result.corpus_path = str(saved.path)
            results.append(result)
    code = FAILURES if any(r.failure for r in results) else OK
    if as_json:
        _json({"command": "explore", "exit_code": code,
               "results": [r.to_json() for r in results]})
    else:
        for result in results:
            _print_result(result, config.root)
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


def _print_result(result: Any, root: Path | None = None) -> None:
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
    line = _replay_line(failure.scenario, str(failure.schedule), runtime, root=root)
    _out(f"Command line: {line}")
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

    A corpus entry replays under the runtime it recorded. A pytest node id of a test that
    takes fixtures (or sits under a conftest.py) is replayed by pytest, in this process,
    with the project's rootdir, conftest files and fixtures."""
    from explorer._engine import run

    _config()
    ref = parse_target(target)
    if needs_pytest(ref):
        if as_json or tolerant or max_steps is not None:
            raise CliError(f"{target} takes fixtures (or sits under a conftest.py), so "
                           "pytest replays it (under the runtime its marker gives), and "
                           "--json, --tolerant and --max-steps do not apply; drop them, or "
                           "give pytest its own options: pytest TEST --explore-replay "
                           "SCHEDULE")
        raise typer.Exit(_replay_in_pytest(ref, schedule, run_timeout))
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


def _replay_in_pytest(ref: TargetRef, schedule: str, run_timeout: str | None) -> int:
    """Run pytest on the node id ``ref`` with ``--explore-replay``; its exit code in the
    command's terms (a failing replay 1, a passing one 4)."""
    import pytest

    sched, _ = _schedule(schedule)
    args = [ref.spec, "--explore-replay", str(sched), "-p", "no:cacheprovider",
            "--no-header", "-q"]
    if run_timeout is not None:
        args += ["--explore-run-timeout", run_timeout]
    code = int(pytest.main(args))
    if code == pytest.ExitCode.TESTS_FAILED:
        return FAILURES
    if code == pytest.ExitCode.OK:
        raise CliError(f"did not reproduce: {ref.spec} passes under {sched}; the bug is "
                       "fixed or the code changed", NOT_REPRODUCED)
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise CliError(f"pytest collected no test {ref.spec}; check the node id (run "
                       "'pytest --collect-only -q' from the project root)")
    if code == pytest.ExitCode.INTERRUPTED:
        raise Interrupted(f"interrupted while pytest replayed {sched} on {ref.spec}")
    raise CliError(f"pytest could not replay {ref.spec} (exit code {code}, see its output "
                   "above)", USAGE if code == pytest.ExitCode.USAGE_ERROR else INTERNAL)


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
    _check_runtime(runtime)
    _config()
    resolved = resolve(parse_target(target))
    steps = _target_settings(resolved, {"max_steps": max_steps}).max_steps
    sched, recorded = _schedule(schedule)
    if recorded is not None and runtime is not None and runtime != recorded:
        raise CliError(f"{schedule} was recorded under the {recorded} runtime, and a corpus "
                       f"entry replays only under its own; drop --runtime {runtime}")
    chosen = runtime or recorded or str(resolved.options.get("runtime", DEFAULT_RUNTIME))
    _check_runtime(chosen, schedule if recorded else f"target {target!r}")
    return resolved, sched, steps, chosen


def _target_settings(resolved: Resolved, options: Mapping[str, object]) -> Settings:
    """The target's own settings (its marker, its ``[tool.explorer]`` entry) overridden by
    the command line's ``options``; a mistake names the target or the option."""
    try:
        Settings.merged(resolved.options, where=f"target {resolved.ref.spec!r}")
    except SettingsError as err:
        raise CliError(str(err)) from None
    return _settings(resolved.options, options)


def _run_timeout(resolved: Resolved, option: str | None) -> float | None:
    """``--run-timeout``, else the target's ``run_timeout`` option, else the default."""
    return _target_settings(resolved, {"run_timeout": option}).run_timeout


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
                         faults=sched.faults,
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


# --------------------------------------------------------------------------- nightly, report


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
    run_timeout: RunTimeoutOpt = None, profile: ProfileOpt = None,
    workers: WorkersOpt = None, cluster: ClusterOpt = None, shard: ShardOpt = None,
    junit_xml: Annotated[Path | None, typer.Option(
        "--junit-xml", metavar="PATH", help="Also write JUnit XML: a testcase per scenario, "
        "each failure with its story and replay line.", show_default=False)] = None,
    sarif: Annotated[Path | None, typer.Option(
        "--sarif", metavar="PATH", help="Also write SARIF 2.1.0: each failure at its file "
        "and line (for code scanning).", show_default=False)] = None,
    fail_on: Annotated[str, typer.Option(
        "--fail-on", metavar="any|new", help="Exit 1 on any failure, or only on failures "
        "new to the corpus (known ones still fail in the reports).")] = "any",
    as_json: JsonOpt = False,
) -> None:
    """Explore every scenario of the project within --budget; resumable after a crash.

    Saves new failures (shrunk) into the corpus, re-verifies existing entries, and writes
    summary.json, summary.md and report.html into --output. Under GitHub Actions it also
    appends summary.md to the job summary and annotates each failure's file and line.
    Without a terminal, it prints one progress line per slice."""
    from explorer._nightly import NightlyOptions, execute, prepare
    from explorer._parallel import executor_for
    from explorer._summary import FAIL_ON

    if fail_on not in FAIL_ON:
        raise CliError(f"--fail-on {fail_on!r} is not one of {', '.join(FAIL_ON)}; use "
                       "--fail-on new to fail only on failures the corpus does not hold "
                       "yet")
    for path, flag in ((junit_xml, "--junit-xml"), (sarif, "--sarif")):
        if path is not None and path.is_dir():
            raise CliError(f"{flag} {path} is a directory; give the file to write, like "
                           f"{path / ('junit.xml' if flag == '--junit-xml' else 'explorer.sarif')}")
    _check_workers(workers, cluster)
    try:
        seconds = parse_duration(budget)
    except UsageError as err:
        raise CliError(f"--budget: {err}") from None
    checked = _settings({"profile": profile, "seed": seed, "max_steps": max_steps,
                         "run_timeout": run_timeout})
    chosen = tuple(strategy or DEFAULT_STRATEGIES)
    for name in chosen:
        _settings({"strategy": name})
    config = _config()
    chosen_profile = profile or config.profile
    _settings({"profile": chosen_profile}, sources={
        "profile": "[tool.explorer] profile" if profile is None else "--profile"})
    if output.exists() and not output.is_dir():
        raise CliError(f"--output {output} is a file, not a directory; the nightly job "
                       "writes state.json and its summaries into a directory: give a new "
                       "or existing directory")
    # A run_timeout of 0 (no limit) is kept as 0: None would mean "not given".
    limit = None if run_timeout is None else checked.run_timeout or 0.0
    options = NightlyOptions(seconds, output, _corpus_store(config, corpus).directory,
                             chosen, tuple(targets), collect, seed, shard, max_steps,
                             limit, chosen_profile, fail_on)
    run = prepare(options, config, fresh=fresh)
    if not run.state.plan:
        problems = "; ".join(run.state.problems)
        raise CliError("nothing to explore: no targets given, none in [tool.explorer] "
                       "targets, no test marked @pytest.mark.explore, and an empty corpus"
                       + (f" ({problems})" if problems else ""), NOTHING)
    if run.resumed and not as_json:
        _err(f"resuming the run in {output}: {run.finished_before} of "
             f"{len(run.state.plan)} slices already finished")
    for problem in run.state.problems:
        _err(f"warning: {problem}")
    resume = (f"; the finished slices are kept in {output}: run the same command again to "
              "resume")
    with _interruptible(then=resume), \
            executor_for(workers=workers, cluster=cluster, shard=shard) as executor, \
            Bars() as bars:
        spent = run.state.spent
        bars.overall(f"nightly ({executor.describe()})", total=len(run.state.plan),
                     done=run.finished_before, seconds=max(0.0, options.budget - spent))
        summary = execute(run, executor, _nightly_progress(bars))
    code = summary.exit_code
    _ci_outputs(summary, junit_xml, sarif)
    if as_json:
        _json(summary.to_json())
        raise typer.Exit(code)
    for failure in summary.failures:
        saved = f"; saved {failure.corpus_path}" if failure.corpus_path else ""
        where = f" at {failure.location}" if failure.location else ""
        known = "new" if is_new(failure) else "known"
        _out(f"FAIL  {failure.scenario}: {failure.kind}{where} under {failure.schedule} "
             f"({failure.source}, {known}){saved}")
        if failure.command:
            _out(f"      replay: {failure.command}")
    for row in summary.scenarios:
        if not row.failures and row.status == "passed":
            _out(f"ok    {row.target}: {row.schedules:,} schedules")
    for error in summary.errors:
        _err(f"error: {error}")
    _out(f"{len(summary.failures)} failure(s) in {len(summary.scenarios)} scenario(s) "
         f"and {len(summary.corpus)} corpus entries; spent "
         f"{format_duration(summary.spent)}; report: {output / 'report.html'}")
    early = early_finish(run.state)
    if early:
        _out(early)
    if fail_on == "new" and summary.failures and code != FAILURES:
        _out("every failure is already in the corpus (--fail-on new): not failing the job")
    raise typer.Exit(code)


def _nightly_progress(bars: Bars) -> NightlyProgress:
    """Bars on a terminal; one line per finished slice in a log (a CI job's), where bars
    would print nothing until the end; nothing when ``EXPLORER_PROGRESS`` turns it off."""
    from explorer._ci import SliceLines

    if progress_enabled():
        return NightlyBars(bars)
    if os.environ.get("EXPLORER_PROGRESS", "").strip().lower() in ("0", "false", "no", "off"):
        return NightlyProgress()
    return SliceLines(sys.stderr)


def _ci_outputs(summary: Summary, junit_xml: Path | None, sarif: Path | None) -> None:
    """JUnit XML and SARIF where asked; under GitHub Actions, the job summary and an
    annotation per failure (workflow commands on stdout)."""
    from explorer._ci import (
        github_annotations,
        github_step_summary,
        render_junit,
        render_sarif,
    )

    if junit_xml is not None:
        write_atomically(junit_xml, render_junit(summary))
    if sarif is not None:
        write_atomically(sarif, render_sarif(summary))
    github_step_summary(summary)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(summary):
            _out(line)


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
    from explorer._html import render_report
    from explorer._summary import distinct_failures, read_summary

    if not summaries and corpus is None:
        raise CliError("give summary.json files or --corpus DIR to report on")
    # Bytes that were not UTF-8 on the command line arrive as lone surrogates, which the
    # UTF-8 page cannot hold: show them as replacement characters.
    title = title.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    loaded = [read_summary(path) for path in summaries]
    if corpus is not None:
        loaded.append(_corpus_summary(_config(), corpus, scenario_targets or []))
    write_atomically(output, render_report(loaded, title=title))
    _out(f"wrote {output} ({len(distinct_failures(loaded)[0])} failure(s))")


def _corpus_summary(config: ProjectConfig, directory: Path, targets: Sequence[str]
                    ) -> Summary:
    from explorer._nightly import corpus_summary

    store = _corpus_store(config, directory)
    if not store.directory.exists():  # a report names its corpus: a typo is not "empty"
        raise CliError(f"--corpus {directory} does not exist; give the corpus directory "
                       "(by default corpus/ at the project root)")
    if not store.paths():
        raise CliError(f"nothing to report: the corpus {directory} is empty", NOTHING)
    return corpus_summary(store, _scenarios(config, targets, collect=True), root=config.root)


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
            # 'explorer' or 'explorer corpus' alone: the help says everything; an empty
            # "error:" line after it would only confuse.
            if context is not None:
                _out(context.get_help())
            return USAGE
        _err(f"explorer: error: {err.format_message()} (see '{where} --help')")
        return USAGE
    except (TargetError, InvalidScheduleError, CorpusError, EntryNotFound, SummaryError,
            UsageError, StateMismatch) as err:
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
