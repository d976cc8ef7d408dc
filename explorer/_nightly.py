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
import re
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from explorer._corpus import Corpus, CorpusEntry, CorpusError
from explorer._errors import ExplorerError, UsageError
from explorer._files import write_atomically
from explorer._parallel import Executor, explore_target
from explorer._regressions import UNKNOWN_SCENARIO, Scenarios, replay_one
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
)

STATE_FORMAT: Final = "explorer-nightly-state"
SUMMARY_FORMAT: Final = "explorer-nightly"
VERSION: Final = 1
DEFAULT_STRATEGIES: Final = ("systematic", "portfolio")
MIN_SLICE: Final = 0.2  # seconds: even an overspent budget gives each slice a look
STATE_NAME: Final = "state.json"

_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_DURATION: Final = 366 * 86400.0  # budgets and --max-time are below a year


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1h30m`` or plain seconds -> seconds."""
    cleaned = text.strip().lower()
    total = 0.0
    position = 0
    for match in _DURATION.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match["value"]) * _UNITS[match["unit"] or "s"]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise UsageError(f"{text!r} is not a duration; write for example 90s, 10m, 2h or "
                         "1h30m")
    if not 0 < total < _MAX_DURATION:  # a thousand-digit number of hours is infinite
        raise UsageError(f"{text!r} is not a usable duration: it must be more than 0 and "
                         "less than a year; write for example 90s, 10m, 2h or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


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

    def fingerprint(self) -> dict[str, Any]:
        return {"budget": self.budget, "corpus": str(self.corpus.resolve()),
                "strategies": list(self.strategies), "targets": list(self.targets),
                "collect": self.collect, "seed": self.seed, "shard": self.shard,
                "max_steps": self.max_steps}


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
            try:
                resolve(ref)
            except TargetError as err:  # a test with fixtures is for pytest to explore
                problems.append(f"skipped {ref.spec}: {err}")
            else:
                found.append(ref)
    unique: dict[str, TargetRef] = {}
    for ref in found:
        unique.setdefault(ref.canonical, ref)
    return Discovery(list(unique.values()), problems)


def plan_slices(targets: Sequence[TargetRef], corpus: Corpus,
                strategies: Sequence[str]) -> list[dict[str, Any]]:
    slices: list[dict[str, Any]] = [
        {"id": f"verify:{path.name}", "kind": "verify", "path": str(path)}
        for path in corpus.paths()]
    for ref in targets:
        chosen = ref.options.get("strategy")
        for strategy in [chosen] if chosen else strategies:
            slices.append({"id": f"explore:{ref.canonical}:{strategy}", "kind": "explore",
                           "target": ref.to_json(), "strategy": strategy})
    return slices


# --------------------------------------------------------------------------- state


class StateMismatch(ExplorerError, ValueError):
    """The output directory holds a nightly run with other arguments."""


def load_state(path: Path) -> dict[str, Any] | None:
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
    return data


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    write_atomically(path, json.dumps(state, indent=1, sort_keys=True) + "\n")


# --------------------------------------------------------------------------- running


class Progress:
    """What the nightly job tells its caller as it goes (the CLI draws a progress bar)."""

    def slice_started(self, number: int, total: int, label: str, seconds: float | None
                      ) -> None:
        """A slice starts; ``seconds`` is its time share (None for a verification)."""

    def schedules(self, count: int) -> None:
        """``count`` more schedules ran."""

    def slice_finished(self, result: Mapping[str, Any]) -> None:
        """A slice finished with ``result``."""


@dataclass
class NightlyRun:
    options: NightlyOptions
    config: ProjectConfig
    state: dict[str, Any]
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
                  *options.corpus.glob(".*.json.*.tmp")]:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    state = load_state(state_path)
    if state is not None and state.get("finished"):
        state = None  # that run completed: this is a new one
    if state is not None:
        if state["fingerprint"] != options.fingerprint():
            differ = sorted(k for k, v in options.fingerprint().items()
                            if state["fingerprint"].get(k) != v)
            raise StateMismatch(
                f"{options.output} holds a nightly run started with other arguments "
                f"({', '.join(differ)} differ); restart it with the same arguments to resume, "
                "pass --fresh to start over, or choose another --output")
        return NightlyRun(options, config, state, True, len(state["results"]))
    discovery = discover(config, options)
    seed = options.seed
    if seed is None:
        import random

        seed = random.SystemRandom().getrandbits(32)
    state = {
        "format": STATE_FORMAT, "version": VERSION, "fingerprint": options.fingerprint(),
        "seed": seed, "budget": options.budget, "started": _now(),
        "root": str(config.root), "problems": discovery.problems,
        "plan": plan_slices(discovery.targets, Corpus(options.corpus), options.strategies),
        "results": {},
    }
    if state["plan"]:
        save_state(state_path, state)
    return NightlyRun(options, config, state, False, 0)


def execute(run: NightlyRun, executor: Executor, progress: Progress | None = None
            ) -> dict[str, Any]:
    """Run every slice not finished yet; write the summaries; return the summary."""
    progress = progress or Progress()
    state = run.state
    state_path = run.options.output / STATE_NAME
    plan = state["plan"]
    corpus = Corpus(run.options.corpus)
    results: dict[str, Any] = state["results"]
    # Entries replay only the scenarios this run explores (the targets it discovered),
    # matched by name: never a module or function a corpus file names.
    verifying = any(i["kind"] == "verify" and i["id"] not in results for i in plan)
    scenarios = scenarios_of(planned_targets(plan)) if verifying else Scenarios()
    for number, item in enumerate(plan, 1):
        if item["id"] in results:
            continue
        if item["kind"] == "verify":
            progress.slice_started(number, len(plan), f"verify {Path(item['path']).name}",
                                   None)
            result = _verify(item, corpus, scenarios)
        else:
            seconds = _share(run.options.budget, plan, results)
            label = f"{TargetRef.from_json(item['target']).spec} ({item['strategy']})"
            progress.slice_started(number, len(plan), label, seconds)
            result = _explore(item, run, executor, corpus, seconds, progress.schedules)
        result.update({"id": item["id"], "kind": item["kind"], "pid": os.getpid(),
                       "finished_at": _now()})
        results[item["id"]] = result
        save_state(state_path, state)
        progress.slice_finished(result)
    state.setdefault("finished", _now())
    save_state(state_path, state)
    summary = summarize(state)
    write_outputs(run.options.output, summary)
    return summary


def _share(budget: float, plan: Sequence[Mapping[str, Any]],
           results: Mapping[str, Mapping[str, Any]]) -> float:
    spent = sum(float(r.get("elapsed", 0.0)) for r in results.values())
    left = sum(1 for item in plan if item["kind"] == "explore" and item["id"] not in results)
    return max(MIN_SLICE, (budget - spent) / max(left, 1))


def planned_targets(plan: Iterable[Mapping[str, Any]]) -> list[TargetRef]:
    """The targets of a plan's explore slices, once each."""
    refs: dict[str, TargetRef] = {}
    for item in plan:
        if item["kind"] == "explore":
            ref = TargetRef.from_json(item["target"])
            refs.setdefault(ref.canonical, ref)
    return list(refs.values())


def _verify(item: Mapping[str, Any], corpus: Corpus, scenarios: Scenarios
            ) -> dict[str, Any]:
    """Replay one entry; whatever the entry holds, a result with one status."""
    path = Path(item["path"])
    start = time.perf_counter()
    out: dict[str, Any] = {"path": str(path), "scenario": None, "failure": None,
                           "same": False}
    try:
        entry = corpus.load(path)
    except CorpusError as err:
        status = "newer-format" if err.status == "newer-format" else "unreadable"
        if not path.exists():
            status = "removed"
        return {**out, "status": status, "detail": str(err),
                "elapsed": time.perf_counter() - start}
    out["scenario"] = entry.scenario
    out["runtime"] = entry.runtime  # replay_entry replays under the runtime it recorded
    out["schedule"] = str(entry.schedule)
    out["saved"] = entry.failure
    report = replay_one(entry, scenarios)  # a broken scenario must not stop the night
    if report.status == UNKNOWN_SCENARIO:
        report = dataclasses.replace(report, detail=(
            f"no target of this run is named {entry.scenario}, so nothing was run (the "
            "corpus never imports what its files name): add it to [tool.explorer] "
            "targets, mark its test @pytest.mark.explore, or pass it as a target"))
    out.update(status=report.status, detail=report.detail, same=report.same)
    if report.failure is not None:
        report.failure.saved_to(entry.path)
        data = report.failure.to_json()
        data["trace"] = excerpt(data["trace"])
        out["failure"] = {**data, "replay": report.failure.replay_line(),
                          "corpus_path": str(entry.path), "new_in_corpus": False}
    out["elapsed"] = time.perf_counter() - start
    return out


def _explore(item: Mapping[str, Any], run: NightlyRun, executor: Executor, corpus: Corpus,
             seconds: float, on_schedules: Callable[[int], None]) -> dict[str, Any]:
    ref = TargetRef.from_json(item["target"])
    overrides: dict[str, Any] = {"strategy": item["strategy"], "max_time": seconds,
                                 "seed": run.state["seed"],
                                 "max_steps": run.options.max_steps,
                                 "run_timeout": run.options.run_timeout}
    start = time.perf_counter()
    try:
        result = explore_target(ref, overrides, executor, on_schedules=on_schedules,
                                unbounded=True)
    except (TargetError, UsageError) as err:  # UsageError: a bad option (a runtime, ...)
        return {"target": ref.spec, "status": "error", "error": str(err), "failure": None,
                "elapsed": time.perf_counter() - start, "schedules": 0}
    except Exception as exc:  # noqa: BLE001 - recorded in the summary; the night goes on
        return {"target": ref.spec, "status": "error", "failure": None,
                "error": f"internal error: {type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
                "elapsed": time.perf_counter() - start, "schedules": 0}
    if result.failure is not None:
        known = known_entry(corpus, result.failure)
        result.new_in_corpus = known is None
        result.failure.saved_to(known or corpus.save(result.failure))
        result.corpus_path = str(result.failure.corpus_path)
    data = result.to_json()
    if data["failure"] is not None:
        # The rendered message repeats the outcome, the explanation and the swimlanes of
        # the whole run: the report rebuilds it from the parts, kept small here.
        data["failure"].pop("message", None)
        data["failure"]["trace"] = excerpt(data["failure"]["trace"])
    data["elapsed"] = time.perf_counter() - start
    return data


def known_entry(corpus: Corpus, failure: Any) -> Path | None:
    """An entry of the corpus that records the same failure (same scenario, runtime, kind,
    line and exception type), under this schedule or another: the nightly job keeps one per
    bug."""
    signature = tuple(failure.outcome.signature())
    for item in corpus.entries():
        if isinstance(item, CorpusEntry) and item.scenario == failure.scenario and \
                item.runtime == failure.runtime and tuple(item.signature()) == signature:
            return item.path
    return None


EXCERPT: Final = 200


def excerpt(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A long trace cut to its first and last :data:`EXCERPT` steps and every deviation
    (the state, the summary and the report stay small; step indices show the gaps)."""
    if len(steps) <= 2 * EXCERPT:
        return steps
    keep = {s["index"] for s in steps[:EXCERPT]} | {s["index"] for s in steps[-EXCERPT:]}
    keep |= {s["index"] for s in steps if s.get("decision") and s["decision"][0]}
    return [s for s in steps if s["index"] in keep]


# --------------------------------------------------------------------------- summary


def _signature(failure: Mapping[str, Any]) -> tuple[str, str, str]:
    outcome = failure.get("outcome") or {}
    loc = outcome.get("location") or {}
    where = f"{loc.get('file')}:{loc.get('line')}" if loc else ""
    return (str(outcome.get("kind", "?")), where, str(outcome.get("exc_type")))


def _failure_row(scenario: str, failure: Mapping[str, Any], source: str) -> dict[str, Any]:
    kind, where, _ = _signature(failure)
    return {"scenario": scenario, "runtime": failure.get("runtime", "asyncio"),
            "kind": kind, "location": where,
            "schedule": failure.get("schedule"), "deviations": failure.get("deviations"),
            "corpus_path": failure.get("corpus_path"), "new": bool(failure.get("new_in_corpus")),
            "source": source, "replay": failure.get("replay")}


def summarize(state: Mapping[str, Any]) -> dict[str, Any]:
    """The run's summary: per scenario, per corpus entry, and every distinct failure."""
    results: Mapping[str, Mapping[str, Any]] = state["results"]
    scenarios: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    errors: list[str] = list(state.get("problems", []))
    seen: set[tuple[str, tuple[str, str, str]]] = set()
    for item in state["plan"]:
        result = results.get(item["id"])
        if result is None or item["kind"] != "explore":
            continue
        target = TargetRef.from_json(item["target"]).spec
        row = scenarios.setdefault(target, {
            "target": target, "scenario": result.get("scenario"),
            "runtime": result.get("runtime", "asyncio"), "schedules": 0,
            "elapsed": 0.0, "distinct": 0, "strategies": [], "failures": [],
            "status": "passed"})
        row["scenario"] = row["scenario"] or result.get("scenario")
        row["runtime"] = result.get("runtime", row["runtime"])
        row["schedules"] += int(result.get("schedules", 0))
        row["elapsed"] += float(result.get("elapsed", 0.0))
        row["distinct"] += int(result.get("distinct", 0))
        row["strategies"].append({"strategy": item["strategy"],
                                  "schedules": result.get("schedules", 0),
                                  "coverage": result.get("coverage", ""),
                                  "status": result.get("status")})
        if result.get("status") == "error":
            row["status"] = "error"
            errors.append(f"{target}: {result.get('error')}")
        failure = result.get("failure")
        if failure:
            row["status"] = "failed"
            key = (str(result.get("scenario")), _signature(failure))
            if key not in seen:
                seen.add(key)
                row["failures"].append(_failure_row(str(result.get("scenario")), failure,
                                                    f"explore ({item['strategy']})"))
                failures.append(row["failures"][-1])
                details.append(failure)
    for row in scenarios.values():
        row["rate"] = row["schedules"] / row["elapsed"] if row["elapsed"] > 0 else 0.0
    corpus_rows: list[dict[str, Any]] = []
    for item in state["plan"]:
        result = results.get(item["id"])
        if result is None or item["kind"] != "verify":
            continue
        corpus_rows.append({k: result.get(k) for k in
                            ("path", "scenario", "runtime", "schedule", "status", "detail",
                             "same")})
        failure = result.get("failure")
        if result.get("status") == "fails" and failure:
            key = (str(result.get("scenario")), _signature(failure))
            if key not in seen:
                seen.add(key)
                failures.append(_failure_row(str(result.get("scenario")), failure,
                                             "corpus"))
                details.append(failure)
    finished = len(results) == len(state["plan"])
    spent = sum(float(r.get("elapsed", 0.0)) for r in results.values())
    exit_code = _exit_code(failures, scenarios.values(), results.values(), state)
    return {
        "format": SUMMARY_FORMAT, "version": VERSION, "started": state.get("started"),
        "finished": state.get("finished"), "complete": finished,
        "budget": state.get("budget"), "spent": spent, "seed": state.get("seed"),
        "root": state.get("root"), "scenarios": list(scenarios.values()),
        "corpus": corpus_rows, "failures": failures, "failure_details": details,
        "errors": errors, "exit_code": exit_code,
    }


def _exit_code(failures: Sequence[Any], scenarios: Iterable[Mapping[str, Any]],
               results: Iterable[Mapping[str, Any]], state: Mapping[str, Any]) -> int:
    if failures:
        return 1
    results = list(results)
    if any(str(r.get("error", "")).startswith("internal error") for r in results):
        return 3
    if any(r.get("status") == "error" for r in results):
        return 2
    if not state["plan"]:
        return 5
    return 0


def write_outputs(directory: Path, summary: Mapping[str, Any]) -> None:
    from explorer._html import render_report

    write_atomically(directory / "summary.json",
                     json.dumps(summary, indent=1, sort_keys=True) + "\n")
    write_atomically(directory / "summary.md", render_markdown(summary))
    write_atomically(directory / "report.html", render_report([summary]))


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: Mapping[str, Any]) -> str:
    """The summary as GitHub-flavoured markdown (fit for a job summary or an issue)."""
    failures = summary["failures"]
    lines = [
        "# Nightly schedule exploration",
        "",
        f"{len(summary['scenarios'])} scenario(s), {len(summary['corpus'])} corpus "
        f"entr{'y' if len(summary['corpus']) == 1 else 'ies'} re-verified, "
        f"**{len(failures)} failure(s)**; spent {format_duration(summary['spent'])} of a "
        f"{format_duration(float(summary['budget'] or 0))} budget (seed {summary['seed']})."
        + ("" if summary["complete"] else " **Incomplete: the run was interrupted.**"),
        "",
    ]
    if failures:
        lines += ["## Failures", "", "| scenario | kind | at | schedule | found by | corpus |",
                  "|---|---|---|---|---|---|"]
        for f in failures:
            saved = (f"{f['corpus_path']}" + (" (new)" if f["new"] else "")
                     if f["corpus_path"] else "")
            lines.append(f"| {_md(f['scenario'])} | {f['kind']} | {_md(f['location'])} | "
                         f"`{f['schedule']}` | {f['source']} | {_md(saved)} |")
        lines.append("")
    lines += ["## Scenarios", "", "| target | status | schedules | rate | strategies | "
              "distinct interleavings | failures |", "|---|---|---:|---:|---|---:|---:|"]
    for row in summary["scenarios"]:
        strategies = "; ".join(f"{s['strategy']}: {s['coverage']}" for s in row["strategies"])
        lines.append(f"| {_md(row['target'])} | {row['status']} | {row['schedules']:,} | "
                     f"{row['rate']:,.0f}/s | {_md(strategies)} | {row['distinct']:,} | "
                     f"{len(row['failures'])} |")
    if summary["corpus"]:
        lines += ["", "## Corpus", "", "| entry | scenario | status | detail |",
                  "|---|---|---|---|"]
        for row in summary["corpus"]:
            lines.append(f"| {_md(Path(str(row['path'])).name)} | {_md(row['scenario'])} | "
                         f"{row['status']} | {_md(row['detail'])} |")
    if summary["errors"]:
        lines += ["", "## Problems", "", *(f"- {_md(e)}" for e in summary["errors"])]
    return "\n".join(lines) + "\n"
