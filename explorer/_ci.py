"""What a nightly run tells a CI system: JUnit XML, SARIF 2.1.0, a GitHub job summary and
``file:line`` annotations, and one progress line per slice for logs that are not terminals.

Invariant: everything here is rendered from a :class:`~explorer._summary.Summary` (plus the
project root to find files in), never by re-running anything, and names files relative to
the project root, as CI systems show them next to the code. JUnit has one ``testcase`` per
explored scenario (and one per scenario only the corpus knows); a failure carries its
story (the outcome, why it happened, the schedule) and the ``explorer replay`` line that
reproduces it from the project root. SARIF has one result per distinct failure, at the file
and line the failure happened (when that file is found in the project).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import IO, Final
from xml.etree import ElementTree

from explorer._failure_record import FailureReport
from explorer._nightly import Progress, render_markdown
from explorer._summary import FailureRow, SliceResult, Summary, is_new
from explorer._targets import locate, project_files
from explorer._version import __version__

SARIF_SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION: Final = "2.1.0"


# --------------------------------------------------------------------------- files


def source_file(row: FailureRow, root: Path | None) -> str | None:
    """The project-relative path of the file a failure happened in: the test's own file
    when its name matches, else the one file of that name in the project (None when
    there is none, or several)."""
    if root is None or not row.location:
        return None
    name = row.location.rpartition(":")[0]
    if not name:
        return None
    test = locate(row.scenario, root)
    if test is not None and test.file is not None and PurePath(test.file).name == name:
        return _relative(Path(test.file), root)
    found = list(project_files(root, name))
    return _relative(found[0], root) if len(found) == 1 else None


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def _line(row: FailureRow) -> int | None:
    text = row.location.rpartition(":")[2]
    return int(text) if text.isdigit() and int(text) > 0 else None


def _root(summary: Summary) -> Path | None:
    return Path(summary.root) if summary.root else None


# --------------------------------------------------------------------------- the story


def story(row: FailureRow, detail: FailureReport | None) -> str:
    """A failure told in plain text: what failed where, why, the schedule and the line
    that replays it."""
    lines = [f"{row.scenario}: {row.kind}" + (f" at {row.location}" if row.location else "")
             + f" under {row.schedule} (found by {row.source}"
             + ("" if is_new(row) else ", already in the corpus") + ")"]
    if detail is not None and detail.message:  # the whole story, as pytest printed it
        lines += ["", *(f"  {line}" for line in detail.message.splitlines())]
    elif detail is not None:
        outcome = detail.record.outcome
        if outcome.message:
            lines += ["", *(f"  {line}" for line in outcome.message.splitlines())]
        if detail.record.explanation:
            lines += ["", "Why: what ran out of turn to make it fail:",
                      *(f"  {line}" for line in detail.record.explanation)]
    lines += ["", f"Schedule: {row.schedule}"]
    if row.command:
        lines.append(f"Replay:   {row.command}")
    if row.corpus_path:
        lines.append(f"Corpus:   {row.corpus_path}")
    return "\n".join(lines)


def _details(summary: Summary) -> list[tuple[FailureRow, FailureReport | None]]:
    details: list[FailureReport | None] = list(summary.failure_details)
    details += [None] * (len(summary.failures) - len(details))
    return list(zip(summary.failures, details, strict=False))


# --------------------------------------------------------------------------- JUnit XML


def render_junit(summary: Summary, *, name: str = "explorer nightly") -> str:
    """JUnit XML: a ``testcase`` per scenario, failing with each of its failures' stories;
    a slice that could not run is an ``error``."""
    root = _root(summary)
    failures = _details(summary)
    cases: list[ElementTree.Element] = []
    covered: set[str] = set()
    for row in summary.scenarios:
        scenario = row.scenario or row.target
        covered.add(scenario)
        case = ElementTree.Element("testcase", classname="explorer", name=row.target,
                                   time=f"{row.elapsed:.3f}")
        mine = [(f, d) for f, d in failures if f.scenario == scenario]
        _annotate(case, mine, root)
        if row.status == "error":
            problem = next((e for e in summary.errors if e.startswith(f"{row.target}:")),
                           "the scenario could not be explored")
            ElementTree.SubElement(case, "error", message=problem[:200]).text = problem
        out = ElementTree.SubElement(case, "system-out")
        out.text = (f"{row.schedules} schedule(s), {row.distinct} distinct interleaving(s); "
                    + "; ".join(f"{s.strategy}: {s.coverage}" for s in row.strategies))
        cases.append(case)
    for failure, _ in failures:  # failures only the corpus knows the scenario of
        if failure.scenario in covered:
            continue
        covered.add(failure.scenario)
        case = ElementTree.Element("testcase", classname="explorer.corpus",
                                   name=failure.scenario, time="0.000")
        _annotate(case, [(f, d) for f, d in failures if f.scenario == failure.scenario],
                  root)
        cases.append(case)
    failed = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    suite = ElementTree.Element("testsuite", name=name, tests=str(len(cases)),
                                failures=str(failed), errors=str(errors), skipped="0",
                                time=f"{summary.spent:.3f}")
    if summary.started:
        suite.set("timestamp", summary.started)
    suite.extend(cases)
    suites = ElementTree.Element("testsuites", name=name, tests=str(len(cases)),
                                 failures=str(failed), errors=str(errors),
                                 time=f"{summary.spent:.3f}")
    suites.append(suite)
    ElementTree.indent(suites)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            + ElementTree.tostring(suites, encoding="unicode") + "\n")


def _annotate(case: ElementTree.Element,
              failures: Sequence[tuple[FailureRow, FailureReport | None]],
              root: Path | None) -> None:
    """The first failure of a test case is its ``failure`` (JUnit allows one); the file
    and line go on the case, as pytest's JUnit XML has them."""
    if not failures:
        return
    row = failures[0][0]
    where = source_file(row, root)
    if where is not None:
        case.set("file", where)
        line = _line(row)
        if line is not None:
            case.set("line", str(line))
    message = "; ".join(f"{f.kind} at {f.location}" if f.location else f.kind
                        for f, _ in failures)
    element = ElementTree.SubElement(case, "failure", message=message, type=row.kind)
    element.text = "\n\n".join(story(f, d) for f, d in failures)


# --------------------------------------------------------------------------- SARIF


_RULES: Final = {
    "assertion": "An assert of the scenario failed under some interleaving.",
    "exception": "The scenario raised an unexpected exception under some interleaving.",
    "deadlock": "Tasks wait for each other and none can go on.",
    "livelock": "The scenario ran past its step bound without finishing.",
    "leaked-task": "A task was still running when the scenario ended.",
    "nondeterminism": "The same schedule gave different traces.",
    "escape": "The scenario used real I/O, threads or wall-clock time.",
    "hang": "A run exceeded its real-time limit.",
    "not_linearizable": "Concurrent calls returned results no one-at-a-time order explains.",
}


def render_sarif(summary: Summary) -> str:
    """SARIF 2.1.0: one result per distinct failure, at its file and line when the file
    is found in the project (else at the scenario's own file, else without a location)."""
    root = _root(summary)
    kinds = sorted({row.kind for row in summary.failures})
    rules = [{"id": f"explorer/{kind}", "name": _camel(kind),
              "shortDescription": {"text": _RULES.get(kind, f"A {kind} failure.")}}
             for kind in kinds]
    results = []
    for row, detail in _details(summary):
        result: dict[str, object] = {
            "ruleId": f"explorer/{row.kind}", "ruleIndex": kinds.index(row.kind),
            "level": "error",  # a known bug is still a bug; "new" is in the properties
            "message": {"text": story(row, detail)},
            "partialFingerprints": {"explorerFailure/v1": _fingerprint(row)},
            "properties": {"scenario": row.scenario, "schedule": row.schedule,
                           "replay": row.command, "corpus": row.corpus_path,
                           "new": is_new(row)},
        }
        location = _location(row, root)
        if location is not None:
            result["locations"] = [location]
        results.append(result)
    log = {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [{
        "tool": {"driver": {"name": "explorer", "version": __version__,
                            "rules": rules}},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }]}
    return json.dumps(log, indent=1, sort_keys=True) + "\n"


def _camel(kind: str) -> str:
    return "".join(part.capitalize() for part in kind.replace("_", "-").split("-"))


def _fingerprint(row: FailureRow) -> str:
    """Stable across nights for one bug (scenario, kind, place), whatever the schedule."""
    text = f"{row.scenario}\0{row.kind}\0{row.location}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _location(row: FailureRow, root: Path | None) -> dict[str, object] | None:
    where = source_file(row, root)
    line = _line(row)
    if where is None and root is not None:  # at least the test, at its first line
        test = locate(row.scenario, root)
        if test is None or test.file is None:
            return None
        where, line = _relative(Path(test.file), root), None
    if where is None:
        return None
    physical: dict[str, object] = {"artifactLocation": {"uri": where,
                                                        "uriBaseId": "%SRCROOT%"}}
    if line is not None:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


# --------------------------------------------------------------------------- GitHub


def github_step_summary(summary: Summary, environ: Mapping[str, str] | None = None
                        ) -> Path | None:
    """Append the summary's markdown to the file ``GITHUB_STEP_SUMMARY`` names (GitHub
    Actions shows it on the job's page); the path, or None when it is not set."""
    environ = os.environ if environ is None else environ
    target = environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as file:
        file.write(render_markdown(summary) + "\n")
    return path


def github_annotations(summary: Summary) -> list[str]:
    """GitHub Actions workflow commands that put each failure on its file and line in the
    pull request's diff (``::error file=...,line=...::...``)."""
    root = _root(summary)
    lines = []
    for row in summary.failures:
        where = source_file(row, root)
        line = _line(row)
        place = (f" file={_escape_property(where)}" if where else "") + (
            f",line={line}" if where and line else "")
        level = "error" if is_new(row) else "warning"
        title = f"{row.kind} in {row.scenario}"
        message = (f"{row.kind} under schedule {row.schedule}"
                   + (f"; replay: {row.command}" if row.command else ""))
        lines.append(f"::{level}{place}{',' if place else ' '}title="
                     f"{_escape_property(title)}::{_escape_data(message)}")
    return lines


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# --------------------------------------------------------------------------- logs


class SliceLines(Progress):
    """Progress for a log that is not a terminal: one line per slice when it finishes
    (a bar there would print nothing until the end, or pages of redraws)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.label = ""
        self.number = 0
        self.total = 0

    def slice_started(self, number: int, total: int, label: str, seconds: float | None
                      ) -> None:
        self.number, self.total, self.label = number, total, label

    def slice_finished(self, result: SliceResult) -> None:
        found = ""
        if result.failure is not None:
            outcome = result.failure.record.outcome
            where = f" at {outcome.location.short}" if outcome.location else ""
            found = f": {outcome.kind}{where}"
        counted = f", {result.schedules:,} schedules" if result.kind == "explore" else ""
        self.stream.write(f"[{self.number}/{self.total}] {self.label}: {result.status}"
                          f"{found}{counted} in {result.elapsed:.1f}s\n")
        self.stream.flush()
