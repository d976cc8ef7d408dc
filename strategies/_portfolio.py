"""``portfolio``: several strategies taking turns, the default of :func:`explorer.explore`.

Every search strategy has programs it is bad at: a random walk almost never delays one task
for long (PCT does), PCT never interleaves two tasks finely (a random walk does), a
systematic search drowns in long runs, and none of them knows in advance which kind of bug
a scenario hides. The portfolio runs its members in a fixed rotation, one schedule each, so
the search finds a bug at roughly the pace of the member best suited to it, slowed down by
the number of turns per rotation — and no single weakness dominates.

The first schedule, for every seed, is the stock schedule (candidate 0 at every point,
what plain asyncio or trio would run): a scenario that fails in stock order fails at
schedule 1. That opening run is the systematic member's first schedule (its round 0) taken
out of turn, so no schedule runs twice; a portfolio without an unpartitioned systematic
member opens with a one-run ``stock`` member instead. The rotation then starts at its
first turn.

The rotation (:data:`ROTATION`, 13 turns) gives:

- ``surw`` eight turns: the selectively uniform random walk, the one member that keeps its
  power when tasks are created one by one, as the C originals of the SCTBench programs
  create their threads (a walk over tasks lets the early writers finish before the checker
  exists; SURW's creator carries the weight of the tasks it has not created yet). On those
  ports (``benchmarks/sctbench``, ``reorder_c_*`` and ``twostage_c_*``) every other member
  missed reorder_c_9+1 in most of 10 seeds at 300 schedules, where SURW alone takes a
  median of 17; it is also the member that learns (its estimates improve run after run),
  so one instance takes all eight turns;
- the symmetric walk three turns: the walk over code sites and task kinds, whose chance
  per run does not fall with the number of identical tasks started together (many
  handlers, many workers: the gather ports, where it is the fastest member). One turn is
  ``symmetric`` at full granularity and two ``coarse-symmetric``, the same walk with each
  call into a library run as one step (:class:`LibraryCalls`): on a program whose awaits
  are all the user's own the two are the same walk; through a library stack (redis-py,
  httpx over ASGI) the coarse turns find a check-then-act across two library calls several
  times faster, while a race inside a library call is left to the full-granularity turns;
- ``pct`` at depth 3 with per-task priorities, one turn (a task starved or delayed for
  long);
- ``systematic`` without a bound, one turn: every schedule with 0, 1, 2... deviations from
  the stock order, for bugs such as livelocks that need the stock order plus a couple of
  deviations (its probe runs take a turn but are not counted as schedules).

``random``, ``pos``, ``coverage`` and ``pct`` with per-kind priorities stay in
:data:`MEMBERS` for custom rotations but have no turn: on the whole SCTBench set (both
shapes), where one of them was the fastest member on a bug that took more than a handful of
schedules, a member that keeps its turns came close (random walk 17.5 on
bluetooth_driver, PCT 19.5, SURW 41.5), and none of them finds the C-shaped bugs, so their
turns went to SURW. The shares were chosen on that whole set, the gallery and the library
stacks (``python -m benchmarks.run --only sctbench``; docs/strategies.md gives the
figures), never on one program.

Each member has its own seed, derived from the portfolio's, and learns only from its own
runs, so member ``m``'s i-th run is the same schedule it would make as the i-th run of a
standalone search with that seed.

Guarantee: reproducible from ``seed``. The portfolio samples; :meth:`coverage` says so,
unless its systematic member ran out of schedules, which proves that every schedule of the
scenario ran (then :attr:`exhausted` is true). Use it when you do not know what kind of bug
to expect — which is almost always; pick a single strategy when you do.

:meth:`describe` describes the member that made the current run, so a failure records
which strategy found it: ``{"name": "pct", "depth": 3, ..., "via": "portfolio", "member":
"pct-d3", "seed": <the portfolio's seed>, "member_seed": <the member's>}``. ``seed`` stays
the one to pass to :func:`explorer.explore` to repeat the search. :meth:`statistics` counts
the schedules each member made.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._coarse import LibraryCalls
from explorer.strategies._coverage import CoverageGuided
from explorer.strategies._features import derive_seed
from explorer.strategies._fixed import Fixed
from explorer.strategies._pct import PCT
from explorer.strategies._pos import POS
from explorer.strategies._random import RandomWalk
from explorer.strategies._surw import SURW
from explorer.strategies._symmetric import SymmetricWalk
from explorer.strategies._systematic import Systematic

Factory = Callable[[int], Strategy]

MEMBERS: dict[str, Factory] = {
    "random": RandomWalk,
    "symmetric": SymmetricWalk,
    "pos": POS,
    "surw": SURW,
    "pct-d3": lambda seed: PCT(3, seed),
    "coverage": CoverageGuided,
    "pct-kind-d3": lambda seed: PCT(3, seed, group="kind"),
    "systematic": lambda seed: Systematic(),
    "coarse-symmetric": lambda seed: LibraryCalls(SymmetricWalk(seed)),
}
"""The default members: label -> factory taking the member's seed."""

ROTATION: tuple[str, ...] = (
    "surw", "symmetric", "surw", "coarse-symmetric", "surw", "surw", "pct-d3", "surw",
    "coarse-symmetric", "surw", "surw", "surw", "systematic",
)
"""One turn per entry, in this order, over and over (13 turns per rotation)."""

STOCK = "stock"
"""The label of the opening run when no member starts with the stock schedule (reserved)."""


class _Stock(Fixed):
    """One run, the stock schedule: a replay of no decisions, so candidate 0 at every
    scheduling point."""

    name = STOCK

    def __init__(self) -> None:
        super().__init__(())


class Portfolio(Strategy):
    """Rotate the members across schedules; report which one made each."""

    name = "portfolio"
    splitting = "seeded"

    def __init__(self, seed: int | None = None,
                 members: Mapping[str, Factory] | None = None,
                 rotation: Sequence[str] | None = None) -> None:
        self.seed = seed if seed is not None else random.getrandbits(32)
        chosen = dict(members) if members is not None else dict(MEMBERS)
        if not chosen:
            raise ValueError("a portfolio needs at least one member")
        if rotation is None:
            rotation = ROTATION if members is None else tuple(chosen)
        unknown = sorted(set(rotation) - set(chosen))
        if unknown or not rotation:
            raise ValueError(f"the rotation must name members, got {list(rotation)!r}")
        if STOCK in chosen:
            raise ValueError(f"the member label {STOCK!r} is reserved for the portfolio's "
                             f"opening run (the stock schedule); rename that member")
        self.labels = [label for label in chosen if label in rotation]
        self.members = {label: chosen[label](derive_seed(self.seed, label))
                        for label in self.labels}
        self.rotation = tuple(rotation)
        self.runs = dict.fromkeys(self.labels, 0)
        self.probes = dict.fromkeys(self.labels, 0)
        self._finished: set[str] = set()
        self._turn = -1
        self._current: str | None = None
        self._choose: Callable[[int, PointView], int] = self._not_started
        self._whole_space = False
        # The first run, before the rotation: the stock schedule. Many bugs already show in
        # stock order, and a search should never report them later than plain asyncio would.
        self._opening: str | None = self._opener()

    # ------------------------------------------------------------------ Strategy

    def start_run(self) -> bool:
        if self._whole_space:
            return False
        opening, self._opening = self._opening, None
        if opening is not None and self._start(opening):
            return True
        for _ in range(len(self.rotation)):
            self._turn = (self._turn + 1) % len(self.rotation)
            label = self.rotation[self._turn]
            if label in self._finished:
                continue
            if self._start(label):
                return True
            if self.exhausted:  # the member that had no run left proved everything
                return False
        return False

    def choose(self, count: int, view: PointView) -> int:
        return self._choose(count, view)

    def end_run(self, decisions: Sequence[int], failed: bool) -> None:
        member = self._member
        label = self._current
        assert label is not None
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

    def describe(self) -> dict[str, Parameter]:
        if self._current is None:
            return {"name": self.name, "seed": self.seed}
        member = self._member.describe()
        about = {**member, "seed": self.seed, "via": self.name, "member": self._current}
        if "seed" in member:
            about["member_seed"] = member["seed"]
        return about

    def statistics(self) -> dict[str, Statistic]:
        stats: dict[str, Statistic] = {"schedules": {k: v for k, v in self.runs.items() if v}}
        probes = {k: v for k, v in self.probes.items() if v}
        if probes:
            stats["probes"] = probes
        members = {label: member.statistics() for label, member in self.members.items()
                   if self.runs[label]}
        stats["members"] = {k: v for k, v in members.items() if v}
        return stats

    # ------------------------------------------------------------------ helpers

    @property
    def _member(self) -> Strategy:
        assert self._current is not None, "start_run() first"
        return self.members[self._current]

    def _start(self, label: str) -> bool:
        """Start the next run of member ``label``; False (and remember it) if it has none."""
        member = self.members[label]
        if member.start_run():
            self._current = label
            self._choose = member.choose
            return True
        self._finished.add(label)
        if self._proves_everything(member):
            self._whole_space = True
        return False

    def _opener(self) -> str:
        """The member whose first run is the stock schedule, added if none is."""
        for label in self.labels:
            member = self.members[label]
            # Round 0 of an unpartitioned (or worker 0's) systematic search is the stock
            # schedule: opening with it costs nothing, since it runs no schedule twice.
            if isinstance(member, Systematic) and member.index == 0:
                return label
        self.members[STOCK] = _Stock()
        self.labels.append(STOCK)
        self.runs[STOCK] = self.probes[STOCK] = 0
        return STOCK

    @staticmethod
    def _not_started(count: int, view: PointView) -> int:
        raise RuntimeError("Portfolio.choose() before start_run()")

    @staticmethod
    def _proves_everything(member: Strategy) -> bool:
        return (isinstance(member, Systematic) and member.deviation_bound is None
                and member.exhausted)
