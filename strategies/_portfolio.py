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

- ``surw`` seven turns: the selectively uniform random walk, the one member that keeps its
  power when tasks are created one by one, as the C originals of the SCTBench programs
  create their threads (a walk over tasks lets the early writers finish before the checker
  exists; SURW's creator carries the weight of the tasks it has not created yet). On those
  ports (``benchmarks/sctbench``, ``reorder_c_*`` and ``twostage_c_*``) every other member
  missed reorder_c_9+1 in most of 10 seeds at 300 schedules, where SURW alone takes a
  median of 17; it is also the member that learns (its estimates improve run after run),
  so one instance takes all seven turns;
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
  deviations (its probe runs take a turn but are not counted as schedules);
- ``rff`` (reads-from feedback, declared footprints) one turn, taken from SURW: for a
  read that must observe one particular write. On the whole set (SCTBench both shapes,
  the gallery, the library stacks; seeds 0-19) the turn brought reorder_c_9+1 from a
  median of 36 to 24 and reorder_c_49+1 from 117.5 with two seeds missing at 500 to 46.5
  with none, and left every other median within a couple of schedules (two turns cost
  the twostage_c ports a quarter more; an added fourteenth turn slows the systematic
  member, the polite livelock 169 -> 182). It is the one member that records footprints,
  and only its own runs record them (:meth:`run_footprints`); runs that inject faults
  record none, and its turns are then its random-priority walk.

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
standalone search with that seed. A member's footprint needs are its own too: before each
run the engine asks :meth:`run_footprints`, which answers for the member whose turn it is,
and hands the run's step records to that member's :meth:`observe` only.

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

import importlib
import random
from collections.abc import Callable, Iterator, Mapping, Sequence

from explorer._footprint import StepRecord
from explorer._runtime import PointView
from explorer.strategies._base import Parameter, Statistic, Strategy
from explorer.strategies._coarse import LibraryCalls
from explorer.strategies._features import derive_seed
from explorer.strategies._fixed import Fixed
from explorer.strategies._pct import PCT
from explorer.strategies._surw import SURW
from explorer.strategies._symmetric import SymmetricWalk
from explorer.strategies._systematic import Systematic

Factory = Callable[[int], Strategy]


class _OnFirstUse:
    """The factory of a member built at its first turn, not with the portfolio: its module
    is imported then, so that an exploration does not pay for importing members it never
    runs, or runs only later (coverage and rff cost a first call about 2.5 ms; rff's first
    turn is the eleventh run). What the engine must know before the first run, the
    footprint models the member may ask for, is declared here (a test checks it against
    the built member); a lazily built member is never the systematic opener."""

    __slots__ = ("footprint_models", "module", "name")

    def __init__(self, module: str, name: str,
                 footprint_models: frozenset[str] = frozenset()) -> None:
        self.module = module
        self.name = name
        self.footprint_models = footprint_models

    def __call__(self, seed: int) -> Strategy:
        made: Factory = getattr(importlib.import_module(f"explorer.strategies.{self.module}"),
                                self.name)
        return made(seed)


def _on_first_use(module: str, name: str,
                  footprint_models: frozenset[str] = frozenset()) -> Factory:
    return _OnFirstUse(module, name, footprint_models)


class _Members(Mapping[str, Strategy]):
    """A portfolio's members by label, each built by its factory on first access (at once
    for plain factories, at its first turn for :class:`_OnFirstUse` ones)."""

    def __init__(self, factories: Mapping[str, Factory], seed: int) -> None:
        self._factories = dict(factories)
        self._seed = seed
        self._built: dict[str, Strategy] = {}
        for label, factory in self._factories.items():
            if not isinstance(factory, _OnFirstUse):
                self._built[label] = factory(derive_seed(seed, label))

    def __getitem__(self, label: str) -> Strategy:
        member = self._built.get(label)
        if member is None:
            factory = self._factories[label]  # KeyError for an unknown label, as a dict
            member = self._built[label] = factory(derive_seed(self._seed, label))
        return member

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)

    def add(self, label: str, member: Strategy) -> None:
        self._factories[label] = lambda seed: member
        self._built[label] = member

    def built(self, label: str) -> Strategy | None:
        """The member if it is built already (None: not yet, and this does not build it)."""
        return self._built.get(label)

    def footprint_models(self, label: str) -> frozenset[str]:
        member = self._built.get(label)
        if member is not None:
            return member.footprint_models
        factory = self._factories[label]
        assert isinstance(factory, _OnFirstUse)  # every other member is built at once
        return factory.footprint_models


MEMBERS: dict[str, Factory] = {
    "random": _on_first_use("_random", "RandomWalk"),
    "symmetric": SymmetricWalk,
    "pos": _on_first_use("_pos", "POS"),
    "surw": SURW,
    "pct-d3": lambda seed: PCT(3, seed),
    "coverage": _on_first_use("_coverage", "CoverageGuided"),
    "pct-kind-d3": lambda seed: PCT(3, seed, group="kind"),
    "systematic": lambda seed: Systematic(),
    "coarse-symmetric": lambda seed: LibraryCalls(SymmetricWalk(seed)),
    "rff": _on_first_use("_rff", "RFF", frozenset({"declared"})),
}
"""The default members: label -> factory taking the member's seed."""

ROTATION: tuple[str, ...] = (
    "surw", "symmetric", "surw", "coarse-symmetric", "surw", "surw", "pct-d3", "surw",
    "coarse-symmetric", "rff", "surw", "surw", "systematic",
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
        self.members = _Members({label: chosen[label] for label in self.labels}, self.seed)
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

    @property
    def footprint_models(self) -> frozenset[str]:
        # Declared by the members not built yet, so that asking does not build them.
        members = self.members
        return frozenset().union(*(members.footprint_models(label) for label in members))

    def run_footprints(self) -> str | None:
        # The member whose turn it is says what its run records: the others' runs record
        # nothing and cost nothing more than they would alone.
        return None if self._current is None else self._member.run_footprints()

    def observe(self, steps: Sequence[StepRecord]) -> None:
        self._member.observe(steps)  # only the member that asked learns from the record

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
        members = {label: self.members[label].statistics() for label in self.labels
                   if self.runs[label]}  # those that ran: built, so nothing is built here
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
            member = self.members.built(label)  # one built at its first turn never opens
            # Round 0 of an unpartitioned (or worker 0's) systematic search is the stock
            # schedule: opening with it costs nothing, since it runs no schedule twice.
            if isinstance(member, Systematic) and member.index == 0:
                return label
        self.members.add(STOCK, _Stock())
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
