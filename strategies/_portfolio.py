"""``portfolio``: several strategies taking turns, the default of :func:`explorer.explore`.

Every search strategy has programs it is bad at: a random walk almost never delays one task
for long (PCT does), PCT never interleaves two tasks finely (a random walk does), a
systematic search drowns in long runs, and none of them knows in advance which kind of bug
a scenario hides. The portfolio runs its members in a fixed rotation, one schedule each, so
the search finds a bug at roughly the pace of the member best suited to it, slowed down by
the number of turns per rotation — and no single weakness dominates.

Members (one turn each per rotation unless listed twice):

- ``random`` — uniform random walk (shallow races);
- ``pct`` at depths 1, 2 and 3, with per-task priorities;
- ``pct`` at depths 2 and 3 with per-kind priorities (symmetric tasks folded together: the
  deep ordering bugs of many identical tasks);
- ``pos`` (partial order sampling), ``surw`` (selectively uniform random walk);
- ``coverage`` (coverage-guided fuzzing of context-switch pairs);
- ``systematic`` without a bound: every schedule with 0, 1, 2... deviations from the
  stock order (bugs, such as livelocks, that need the stock order plus a few deviations;
  its probe runs are not counted as schedules).

Each member has its own seed, derived from the portfolio's, and learns only from its own
runs, so member ``m``'s i-th run is the same schedule it would make as the i-th run of a
standalone search with that seed.

Guarantee: reproducible from ``seed``. The portfolio samples; :meth:`coverage` says so,
unless its systematic member ran out of schedules, which proves that every schedule of the
scenario ran (then :attr:`exhausted` is true).

:meth:`describe` names the member that made the current run (so a failure records which
strategy found it, with the portfolio's seed under ``"portfolio"``), and
:meth:`statistics` counts the schedules each member made.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from strategies._base import Strategy
from strategies._coverage import CoverageGuided
from strategies._features import derive_seed
from strategies._pct import PCT
from strategies._pos import POS
from strategies._random import RandomWalk
from strategies._surw import SURW
from strategies._systematic import Systematic

Factory = Callable[[int], Strategy]

MEMBERS: tuple[tuple[str, Factory], ...] = (
    ("random", RandomWalk),
    ("pct-kind-d2", lambda seed: PCT(2, seed, group="kind")),
    ("pct-d1", lambda seed: PCT(1, seed)),
    ("coverage", CoverageGuided),
    ("pct-d2", lambda seed: PCT(2, seed)),
    ("pos", POS),
    ("pct-kind-d3", lambda seed: PCT(3, seed, group="kind")),
    ("surw", SURW),
    ("pct-d3", lambda seed: PCT(3, seed)),
    ("systematic", lambda seed: Systematic()),
)
"""The default members in rotation order: (label, factory taking the member's seed)."""


class Portfolio(Strategy):
    """Rotate the members across schedules; report which one made each."""

    name = "portfolio"

    def __init__(self, seed: int | None = None,
                 members: Sequence[tuple[str, Factory]] | None = None) -> None:
        self.seed = seed if seed is not None else random.getrandbits(32)
        chosen = list(members) if members is not None else list(MEMBERS)
        if not chosen:
            raise ValueError("a portfolio needs at least one member")
        labels = [label for label, _ in chosen]
        if len(set(labels)) != len(labels):
            raise ValueError(f"member labels must be unique, got {labels}")
        self.labels = labels
        self.members = [factory(derive_seed(self.seed, label)) for label, factory in chosen]
        self.runs = dict.fromkeys(labels, 0)
        self.probes = dict.fromkeys(labels, 0)
        self._finished = [False] * len(self.members)
        self._turn = -1
        self._current: int | None = None
        self._choose: Callable[[int, Any], int] = self._not_started
        self._whole_space = False

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        if self._whole_space:
            return False
        for _ in range(len(self.members)):
            self._turn = (self._turn + 1) % len(self.members)
            index = self._turn
            if self._finished[index]:
                continue
            if self.members[index].start_run():
                self._current = index
                self._choose = self.members[index].choose
                return True
            self._finished[index] = True
            if self._proves_everything(self.members[index]):
                self._whole_space = True
                return False
        return False

    def choose(self, count: int, view: Any) -> int:
        return self._choose(count, view)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        member = self._member
        label = self.labels[self._turn]
        if member.counts_as_schedule:
            self.runs[label] += 1
        else:
            self.probes[label] += 1
        member.end_run(decisions, failed)
        if member.exhausted and self._proves_everything(member):
            self._whole_space = True

    @property
    def counts_as_schedule(self) -> bool:
        return self._current is None or self._member.counts_as_schedule

    @property
    def exhausted(self) -> bool:
        return self._whole_space

    def coverage(self) -> str:
        total = sum(self.runs.values())
        shares = ", ".join(f"{label} {n}" for label, n in self.runs.items() if n)
        if self._whole_space:
            return (f"all schedules (the whole space): the portfolio's systematic member ran "
                    f"out of schedules; {total} schedules in all ({shares})")
        return (f"a sample of {total} schedules from a portfolio (seed {self.seed}): "
                f"{shares or 'none yet'}; not exhaustive")

    def describe(self) -> dict[str, Any]:
        about = {"name": self.name, "seed": self.seed}
        if self._current is None:
            return about
        return {**self._member.describe(),
                "portfolio": {**about, "member": self.labels[self._current]}}

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"schedules": {k: v for k, v in self.runs.items() if v}}
        probes = {k: v for k, v in self.probes.items() if v}
        if probes:
            stats["probes"] = probes
        members = {label: member.statistics() for label, member
                   in zip(self.labels, self.members, strict=True) if self.runs[label]}
        stats["members"] = {k: v for k, v in members.items() if v}
        return stats

    # ------------------------------------------------------------------ helpers

    @property
    def _member(self) -> Strategy:
        assert self._current is not None, "start_run() first"
        return self.members[self._current]

    @staticmethod
    def _not_started(count: int, view: Any) -> int:
        raise RuntimeError("Portfolio.choose() before start_run()")

    @staticmethod
    def _proves_everything(member: Strategy) -> bool:
        return (isinstance(member, Systematic) and member.deviation_bound is None
                and member.exhausted)
