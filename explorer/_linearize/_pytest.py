"""The ``linearizability`` pytest fixture: a linearizability check with the plugin's settings.

A test takes the fixture and calls :meth:`LinearizabilityCheck.check` with what
:func:`explorer.check_linearizable` takes; it is a plain ``def`` test (a check runs
explorations of its own, which cannot start inside a running event loop).

Contract of :meth:`LinearizabilityCheck.check`:

- Settings, lowest precedence first: the profile, the ini file, ``@pytest.mark.explore(...)``
  on the test, the keywords given to ``check()``, the command line (``--explore-seed``,
  ``--explore-strategy``, ``--explore-max-time``, ``--explore-run-timeout``). Of the
  explorer's settings a check uses ``seed`` (None: 0, a check is always reproducible),
  ``strategy``, ``max_time`` (the whole check), ``runtime``, ``max_steps`` and
  ``run_timeout``; its own budget is ``max_scenarios`` x ``schedules_per_scenario``.
- First the check replays the corpus entries saved for its scenario (the factory's name,
  ``<module>.<factory>.linearizability``): one that still fails fails the test at once with
  its story, and nothing is explored; one that passes now is listed as FIXED in the corpus
  summary; one that no longer fits the operations is listed as DIVERGED. With
  ``--explore-replay-only`` nothing else runs.
- Then the check explores. A violation fails the test with the failure's story, printed
  once, is saved to the project corpus (unless ``--explore-no-save``) and listed as SAVED.
- ``--explore-replay SCHEDULE`` replays the corpus entry of the scenario with that schedule
  (the entry holds the scenario the schedule belongs to) and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from explorer._corpus_format import CorpusEntry
from explorer._errors import UsageError
from explorer._failure import ScheduleFailure
from explorer._linearize._model import Operation
from explorer._linearize._runner import (
    LinearizabilityResult,
    _scenario_name,
    check_linearizable,
    replay_linearizability,
)
from explorer._settings import Settings

#: The explorer's settings a check takes (the other keywords are the check's own).
SHARED: tuple[str, ...] = ("seed", "strategy", "max_time", "runtime", "max_steps",
                           "run_timeout")


@dataclass
class Session:
    """What the plugin hands a check: the corpus options and the summary's lists.

    ``settings(layer)`` merges the profile, the ini file, the test's explore marker,
    ``layer`` and the command line into one :class:`Settings` (a ``pytest.fail`` naming
    the test when a value is wrong)."""

    settings: Callable[[dict[str, object]], Settings]
    corpus: Path
    rootdir: Path
    save: bool = True
    replay_only: bool = False
    replay: str | None = None
    statistics: bool = False
    fixed: list[str] = field(default_factory=list)
    diverged: list[str] = field(default_factory=list)
    saved: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)


class LinearizabilityCheck:
    """The value of the ``linearizability`` fixture: :meth:`check` runs a check of one
    object's operations under the session's settings and corpus."""

    def __init__(self, item: pytest.Item, session: Session) -> None:
        self._item = item
        self._session = session

    def check(self, factory: Callable[[], Any],
              operations: Iterable[Operation | Callable[..., Any]],
              **options: Any) -> LinearizabilityResult:
        """:func:`explorer.check_linearizable` with the plugin's settings and corpus;
        fails the test (the story once) on a violation. ``options`` are
        ``check_linearizable``'s keywords but ``raise_on_failure`` and ``corpus`` (the
        project corpus is used)."""
        __tracebackhide__ = True
        try:
            return self._check(factory, operations, options)
        except UsageError as err:  # a mistake in the test: its message, not a traceback
            pytest.fail(f"{self._item.nodeid}: {err}", pytrace=False)

    def _check(self, factory: Callable[[], Any],
               operations: Iterable[Operation | Callable[..., Any]],
               options: dict[str, Any]) -> LinearizabilityResult:
        __tracebackhide__ = True
        for refused in ("raise_on_failure", "corpus"):
            if refused in options:
                raise UsageError(
                    f"linearizability.check({refused}=...): the fixture sets it (a failure "
                    "fails the test; the corpus is the project's, --explore-corpus); call "
                    f"explorer.check_linearizable directly to choose {refused} yourself")
        ops = list(operations)
        session = self._session
        settings = session.settings({k: options.pop(k) for k in SHARED if k in options})
        common: dict[str, Any] = {
            "model": options.get("model"), "normalize": options.get("normalize"),
            "runtime": settings.runtime, "max_steps": settings.max_steps,
            "run_timeout": settings.run_timeout}
        name = _scenario_name(factory)
        entries = self._entries(name)
        if session.replay is not None:
            return self._replay_schedule(name, entries, factory, ops, common)
        for entry in entries:
            self._replay(entry, factory, ops, common)
        if session.replay_only:
            return LinearizabilityResult(
                True, None, 0, 0, 0, 0, f"--explore-replay-only: {len(entries)} corpus "
                f"entr{'y' if len(entries) == 1 else 'ies'} of {name} replayed, nothing "
                "explored")
        strategy = settings.strategy
        if not isinstance(strategy, str):
            raise UsageError(f"a linearizability check takes a "
                             f"strategy by name, got the instance {strategy!r}; write its "
                             "name, like strategy='pct'")
        result = check_linearizable(
            factory, ops, seed=settings.seed, max_time=settings.max_time, strategy=strategy,
            raise_on_failure=False, **options,
            **{k: v for k, v in common.items() if k not in options})
        self._statistics(result)
        failure = result.failure
        if failure is None:
            self._item.add_report_section("call", "explorer", f"linearizable: covered "
                                                              f"{result.coverage}")
            return result
        lines = [f"not linearizable: {result.coverage}" if failure.kind == "not_linearizable"
                 else f"the check failed: {result.coverage}"]
        if session.save:
            from explorer._corpus import save_for_test

            shown, added = save_for_test(session.corpus, failure, self._item.nodeid,
                                         session.rootdir)
            if added is not None:
                session.saved.append(added)
            lines.append(f"Saved to {shown}: the next run of "
                         f"{self._item.nodeid} replays it first.")
            if failure.kind == "not_linearizable":
                lines.append(f"To run just this schedule: pytest {self._item.nodeid} "
                             f"--explore-replay '{failure.schedule}'")
        self._fail(failure, "\n".join(lines))

    # -- the corpus ----------------------------------------------------------------------

    def _entries(self, name: str) -> list[CorpusEntry]:
        """The saved not_linearizable entries of the scenario ``name``, oldest name first."""
        from explorer._corpus import Corpus, CorpusError

        directory = self._session.corpus
        if not directory.is_dir():
            return []
        out: list[CorpusEntry] = []
        for entry in Corpus(directory).entries():
            if isinstance(entry, CorpusEntry):
                if entry.scenario == name and "linearizability" in entry.data:
                    out.append(entry)
            elif isinstance(entry, CorpusError) and \
                    entry.path.name.startswith("linearizability-"):
                # A check's entry that cannot be read (damaged, edited): nothing in it ran;
                # said once, since whose check it was cannot be known.
                shown = self._shown(entry.path)
                if not any(f" {shown} " in line for line in self._session.diverged):
                    self._session.diverged.append(
                        f"{self._item.nodeid}: {shown} cannot be read, so it was not "
                        f"replayed: {entry}")
        return out

    def _replay(self, entry: CorpusEntry, factory: Callable[[], Any], ops: list[Any],
                common: dict[str, Any]) -> None:
        __tracebackhide__ = True
        shown = self._shown(entry.path)
        if entry.runtime != common["runtime"]:
            self._diverged(entry, f"it was recorded under the {entry.runtime} runtime, but "
                                  f"the check now runs under {common['runtime']}")
            return
        try:
            failure = replay_linearizability(factory, ops, entry, **common)
        except UsageError as err:  # operations renamed or their arguments changed
            self._diverged(entry, str(err))
            return
        if failure is None:
            self._session.fixed.append(
                f"{self._item.nodeid} {shown}: passes now: the not_linearizable history "
                f"it recorded is linearizable; delete {shown}")
            return
        failure.strategy = {"name": "corpus"}  # what the story says found it
        same = failure.kind == entry.kind
        self._fail(failure, f"Corpus entry {shown}: "
                            f"{'still fails as saved' if same else 'fails differently'} "
                            f"(nothing explored: fix this one first).")

    def _replay_schedule(self, name: str, entries: list[CorpusEntry],
                         factory: Callable[[], Any], ops: list[Any],
                         common: dict[str, Any]) -> LinearizabilityResult:
        __tracebackhide__ = True
        wanted = self._session.replay
        entry = next((e for e in entries if str(e.schedule) == wanted), None)
        if entry is None:
            pytest.fail(
                f"{self._item.nodeid}: --explore-replay {wanted}: a linearizability check "
                f"replays a schedule together with the scenario it was found with, which "
                f"its corpus entry holds, and no entry of {name} in "
                f"{self._shown(self._session.corpus)} has this schedule. Run the test "
                "without --explore-replay (it replays its saved entries first), or replay "
                "the failure's JSON: explorer.replay_linearizability(factory, operations, "
                "failure_json)", pytrace=False)
        failure = replay_linearizability(factory, ops, entry, **common)
        if failure is None:
            self._item.add_report_section("call", "explorer", f"the schedule {wanted} of "
                                          f"{self._shown(entry.path)} gives a linearizable "
                                          "history now")
            return LinearizabilityResult(True, None, 1, 1, 1, 0,
                                         f"--explore-replay: {self._shown(entry.path)} "
                                         "replayed, linearizable now")
        failure.strategy = {"name": "reproduce"}
        self._fail(failure, f"--explore-replay {wanted} ({self._shown(entry.path)}): the "
                            "schedule fails.")

    def _diverged(self, entry: CorpusEntry, detail: str) -> None:
        shown = self._shown(entry.path)
        self._session.diverged.append(
            f"{self._item.nodeid}: {shown} no longer fits the operations ({detail}); delete "
            "it (checking saves the failure again if it still exists)")

    # -- reporting -----------------------------------------------------------------------

    def _statistics(self, result: LinearizabilityResult) -> None:
        """``--explore-show-statistics``: the block explored tests print, for a check."""
        if not self._session.statistics:
            return
        self._session.blocks.append("\n".join([
            f"{self._item.nodeid}:",
            f"  - {result.schedules} schedule(s), {result.histories} distinct histories, "
            f"{result.scenarios} scenario(s), {result.sequential_runs} sequential "
            "execution(s)",
            f"  - {'failed: ' + result.failure.kind if result.failure else 'passed'}; "
            f"covered {result.coverage}"]))

    def _fail(self, failure: ScheduleFailure, header: str) -> NoReturn:
        __tracebackhide__ = True
        self._item.add_report_section("call", "explorer",
                                      f"Full trace of the failing schedule "
                                      f"({len(failure.trace.steps)} steps):\n{failure.trace}")
        pytest.fail(f"{header}\n\n{failure.render()}", pytrace=False)

    def _shown(self, path: str | os.PathLike[str]) -> str:
        from explorer._corpus import shown_path

        return shown_path(path, self._session.rootdir)
