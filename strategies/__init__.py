"""Search strategies: which candidate runs at each scheduling point, across runs.

``random``
    Seeded uniform random walk; reproducible from its seed.
``systematic``
    Every schedule by increasing number of deviations from the stock order, optionally up
    to a deviation bound; says honestly what it covered. With a ``preemption_bound``, by
    increasing number of switches instead (:class:`PreemptionBounded`).
``pct``
    Probabilistic concurrency testing: random task priorities and ``depth - 1`` priority
    change points (depth 3 by name); finds bugs that need a task delayed for long.
``pos``
    Partial order sampling: random priorities per pending event, re-drawn for the events
    that conflict with the one that ran.
``surw``
    Selectively uniform random walk: tasks weighted by their estimated remaining events.
``coverage``
    Coverage-guided fuzzing of schedules, on context-switch pairs of code sites.
``symmetric``
    A random walk over code sites and task kinds instead of tasks: identical tasks are
    folded together, so its power does not fall with their number.
``coarse``
    The symmetric walk at the granularity of the user's code: a call into a library
    (redis-py, httpx, an ORM) runs as one step, so a run-ahead through library internals
    is one decision; it cannot see races inside a library (see :class:`LibraryCalls`).
``portfolio``
    The default of :func:`explorer.explore`: rotates the strategies above across schedules.
``dpor``, ``dpor-declared``, ``dpor-auto``
    Dynamic partial-order reduction: one schedule per class of equivalent interleavings,
    with task code treated as touching anything, as promised to touch only declared shared
    state, or with its accesses recorded automatically (Python 3.12+); see :class:`DPOR`.
"""

from __future__ import annotations

from explorer.strategies._base import Splitting, Strategy
from explorer.strategies._coarse import LibraryCalls
from explorer.strategies._coverage import CoverageGuided
from explorer.strategies._dpor import DPOR
from explorer.strategies._fixed import Fixed
from explorer.strategies._pct import PCT
from explorer.strategies._portfolio import Portfolio
from explorer.strategies._pos import POS
from explorer.strategies._preemption import PreemptionBounded
from explorer.strategies._random import RandomWalk
from explorer.strategies._surw import SURW
from explorer.strategies._symmetric import SymmetricWalk
from explorer.strategies._systematic import Systematic

__all__ = ["DPOR", "PCT", "POS", "SURW", "CoverageGuided", "Fixed", "LibraryCalls", "Portfolio",
           "PreemptionBounded", "RandomWalk", "Splitting", "Strategy", "SymmetricWalk",
           "Systematic", "make_strategy", "names", "splitting"]

_BY_NAME: dict[str, type[Strategy]] = {"dpor": DPOR, "dpor-declared": DPOR,
                                        "dpor-auto": DPOR, "random": RandomWalk,
                                        "systematic": Systematic}
# The seeded samplers, built from a name with a seed (None: drawn from the global random
# module, as for "random").
_SEEDED: dict[str, type[PCT | POS | SURW | CoverageGuided | SymmetricWalk | Portfolio
                         | LibraryCalls]] = {
    "coarse": LibraryCalls, "coverage": CoverageGuided, "pct": PCT, "portfolio": Portfolio,
    "pos": POS, "surw": SURW, "symmetric": SymmetricWalk,
}
_BY_NAME.update(_SEEDED)


def splitting(name: str) -> Splitting:
    """How the parallel job shares the work of the strategy called ``name`` among workers
    (see :data:`~explorer.strategies._base.Splitting`); ``whole`` for an unknown name."""
    chosen = _BY_NAME.get(name)
    return chosen.splitting if chosen is not None else "whole"


def names() -> list[str]:
    """The strategy names :func:`make_strategy` accepts."""
    return sorted(_BY_NAME)


def make_strategy(spec: str | Strategy, *, seed: int | None = None,
                  deviation_bound: int | None = None,
                  preemption_bound: int | None = None) -> Strategy:
    """Build a strategy from its name (or pass an instance through unchanged).

    ``systematic`` with a ``preemption_bound`` is the search ordered and bounded by
    switches (:class:`PreemptionBounded`); with both bounds, the switch bound decides."""
    if isinstance(spec, Strategy):
        return spec
    if spec == "random":
        return RandomWalk(seed)
    if spec == "systematic":
        if preemption_bound is not None:
            return PreemptionBounded(preemption_bound)
        return Systematic(deviation_bound)
    if spec in _SEEDED:
        return _SEEDED[spec](seed=seed)
    if spec == "dpor":
        return DPOR(deviation_bound)
    if spec in ("dpor-declared", "dpor-auto"):
        return DPOR(deviation_bound, footprints=spec.partition("-")[2])
    from explorer._errors import UsageError

    raise UsageError(
        f"unknown strategy {spec!r}; use one of: {', '.join(names())}, or pass a "
        "strategies.Strategy instance"
    )
