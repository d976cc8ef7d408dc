"""The nightly job's explore slice of a test only pytest can set up: it takes fixtures, or
a ``conftest.py`` may hold autouse fixtures or hooks (see
:func:`explorer._targets.needs_pytest`).

Invariant: such a test is explored by pytest, in a subprocess run in the project root with
the explorer's pytest plugin (fixtures set up for every schedule, the corpus entries of the
test replayed first), never by importing it here. What the slice reports comes from what
that run leaves: its JUnit XML (whether the test failed, and the story pytest printed), the
plugin's statistics (schedules, distinct interleavings, coverage) and the corpus entry of
the failure (kind, place, schedule). A failure is *new* when its signature was not in the
corpus before the slice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from xml.etree import ElementTree

from explorer._corpus import Corpus, CorpusEntry
from explorer._failure_record import (
    FailureRecord,
    FailureReport,
    OutcomeRecord,
    SavedLocation,
)
from explorer._targets import TargetRef

GRACE: Final = 120.0
"""Seconds the pytest run may take beyond its exploration time (start-up, collection,
the corpus entries it replays first, shrinking)."""


@dataclass(frozen=True)
class PytestSlice:
    """What exploring one test under pytest found."""

    status: str  # passed, failed or error
    schedules: int = 0
    distinct: int = 0
    coverage: str = ""
    exhausted: bool = False
    failure: FailureReport | None = None
    error: str | None = None


def _signatures(entries: Iterable[CorpusEntry]) -> set[tuple[str, tuple[object, ...]]]:
    return {(entry.scenario, entry.signature()) for entry in entries}


def _entries(corpus: Corpus) -> list[CorpusEntry]:
    return [e for e in corpus.entries() if isinstance(e, CorpusEntry)]


def explore_in_pytest(ref: TargetRef, root: Path, corpus: Corpus, *, strategy: str,
                      seed: int | None, seconds: float, max_steps: int | None = None,
                      run_timeout: float | None = None, profile: str | None = None
                      ) -> PytestSlice:
    """Explore the test ``ref`` (a node id) for ``seconds`` with pytest; save its failure
    into ``corpus``."""
    scenario = f"{ref.module}.{ref.attr}"
    before = _signatures(_entries(corpus))
    with tempfile.TemporaryDirectory(prefix="explorer-nightly-") as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [sys.executable, "-m", "pytest", ref.spec, "-p", "no:cacheprovider",
                   "-q", "--no-header", f"--junitxml={junit}", "--explore-show-statistics",
                   f"--explore-corpus={corpus.directory}", "--explore-save",
                   f"--explore-strategy={strategy}", f"--explore-max-time={seconds:.3f}",
                   "--explore-max-schedules=1000000000"]
        command += [f"--explore-seed={seed}"] if seed is not None else []
        command += [f"--explore-profile={profile}"] if profile else []
        command += [f"--explore-run-timeout={run_timeout:g}"] if run_timeout is not None \
            else []
        # max_steps has no pytest option: the test's marker or profile gives it.
        env = {**os.environ, "EXPLORER_PROGRESS": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            done = subprocess.run(command, cwd=root, env=env, text=True, capture_output=True,
                                  timeout=seconds + GRACE, check=False)
        except subprocess.TimeoutExpired:
            return PytestSlice("error", error=f"pytest did not finish exploring {ref.spec} "
                                              f"within {seconds + GRACE:.0f}s")
        cases = _cases(junit) if junit.is_file() else []
    schedules, distinct, coverage = _statistics(done.stdout, ref.spec)
    failed = [text for name, text in cases if text is not None]
    if done.returncode not in (0, 1) or not cases:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        return PytestSlice("error", error=f"pytest could not explore {ref.spec} (exit code "
                                          f"{done.returncode}): " + " | ".join(tail))
    if not failed:
        return PytestSlice("passed", schedules, distinct, coverage,
                           exhausted="(space exhausted)" in done.stdout)
    failure = _failure(scenario, corpus, before, "\n\n".join(failed))
    return PytestSlice("failed", schedules, distinct, coverage, failure=failure)


def _cases(junit: Path) -> list[tuple[str, str | None]]:
    """Each test case of a JUnit file: its name and, if it failed, pytest's story."""
    cases: list[tuple[str, str | None]] = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        text = None if problem is None else (problem.text or problem.get("message") or "")
        cases.append((case.get("name", ""), text))
    return cases


def _statistics(stdout: str, node: str) -> tuple[int, int, str]:
    """Schedules, distinct interleavings and coverage from ``--explore-show-statistics``."""
    block = stdout.partition(f"{node}:\n")[2]
    counts = re.search(r"(\d+) schedule\(s\), (\d+) distinct", block)
    covered = re.search(r"covered (.+)", block)
    return (int(counts.group(1)) if counts else 0, int(counts.group(2)) if counts else 0,
            covered.group(1).strip() if covered else "explored under pytest")


def _failure(scenario: str, corpus: Corpus, before: set[tuple[str, tuple[object, ...]]],
             story: str) -> FailureReport:
    """The failure as the corpus recorded it (the newest entry of ``scenario``, a new one
    first), with pytest's ``story`` as its message."""
    # A linearizability check (the ``linearizability`` fixture) saves under its factory's
    # name, not the test's; its story names the entry it saved or replayed ("Saved to
    # <path>", "Corpus entry <path>"), relative to the test's rootdir: matched by file name
    # (content-addressed, so one name is one entry).
    mine = [e for e in _entries(corpus) if e.scenario == scenario or e.path.name in story]
    mine.sort(key=lambda e: ((e.scenario, e.signature()) not in before,
                             _mtime(e.path)), reverse=True)
    if not mine:  # not saved (a read-only corpus, say): the story alone
        return FailureReport(FailureRecord(scenario, "asyncio", "", 0, 0, {},
                                           OutcomeRecord("exception", story), None, ""),
                             message=story, new_in_corpus=True)
    entry = mine[0]
    saved = entry.saved
    location = (SavedLocation(saved.location.file, saved.location.line,
                              saved.location.function) if saved.location else None)
    found = entry.found
    strategy = found.get("strategy")
    record = FailureRecord(
        entry.scenario, entry.runtime, str(entry.schedule), int(found.get("found_after") or 0),
        entry.schedule.deviation_count, dict(strategy) if isinstance(strategy, dict) else {},
        OutcomeRecord(saved.kind, saved.message, location, saved.exc_type), None,
        entry.trace_hash or "")
    return FailureReport(record, corpus_path=str(entry.path), message=story,
                         new_in_corpus=(entry.scenario, entry.signature()) not in before)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
