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
``rff``, ``rff-auto``
    Reads-from fuzzing: keeps the runs that show a read observing a write it never
    observed before, and steers new runs toward unseen reads-from pairs; from declared
    footprints, or from automatic ones (Python 3.12+); see :class:`RFF`.
``portfolio``
    The default of :func:`explorer.explore`: rotates the strategies above across schedules.
``dpor``, ``dpor-declared``, ``dpor-auto``
    Dynamic partial-order reduction: one schedule per class of equivalent interleavings,
    with task code treated as touching anything, as promised to touch only declared shared
    state, or with its accesses recorded automatically (Python 3.12+); see :class:`DPOR`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from explorer.strategies._rff import RFF
    from explorer.strategies._surw import SURW
    from explorer.strategies._symmetric import SymmetricWalk
    from explorer.strategies._systematic import Systematic

__all__ = ["DPOR", "PCT", "POS", "SURW", "CoverageGuided", "Fixed", "LibraryCalls", "Portfolio",
           "PreemptionBounded", "RFF", "RandomWalk", "Splitting", "Strategy", "SymmetricWalk",
           "Systematic", "make_strategy", "names", "splitting"]

# Each class is imported on first use, so that a run of one strategy (the first explore()
# call of a process above all) does not pay for importing every other one.
_WHERE: dict[str, str] = {
    "CoverageGuided": "_coverage", "DPOR": "_dpor", "Fixed": "_fixed",
    "LibraryCalls": "_coarse", "PCT": "_pct", "POS": "_pos", "Portfolio": "_portfolio",
    "PreemptionBounded": "_preemption", "RFF": "_rff", "RandomWalk": "_random",
    "SURW": "_surw", "Splitting": "_base", "Strategy": "_base", "SymmetricWalk": "_symmetric",
    "Systematic": "_systematic",
}

# Strategy name -> the class that implements it.
_BY_NAME: dict[str, str] = {"dpor": "DPOR", "dpor-declared": "DPOR", "dpor-auto": "DPOR",
                            "random": "RandomWalk", "rff-auto": "RFF",
                            "systematic": "Systematic"}
# The seeded samplers, built from a name with a seed (None: drawn from the global random
# module, as for "random").
_SEEDED: dict[str, str] = {
    "coarse": "LibraryCalls", "coverage": "CoverageGuided", "pct": "PCT",
    "portfolio": "Portfolio", "pos": "POS", "rff": "RFF", "surw": "SURW",
    "symmetric": "SymmetricWalk",
}
_BY_NAME.update(_SEEDED)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'explorer.strategies' has no attribute {name!r}")
    # Not cached on the package: a name always comes from the module now in sys.modules,
    # as for the names of the ``explorer`` package itself.
    return getattr(importlib.import_module(f"explorer.strategies.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


def _class(name: str) -> type[Strategy]:
    chosen: type[Strategy] = __getattr__(name)
    return chosen


def splitting(name: str) -> Splitting:
    """How the parallel job shares the work of the strategy called ``name`` among workers
    (see :data:`~explorer.strategies._base.Splitting`); ``whole`` for an unknown name."""
    chosen = _BY_NAME.get(name)
    return _class(chosen).splitting if chosen is not None else "whole"


def names() -> list[str]:
    """The strategy names :func:`make_strategy` accepts."""
    return sorted(_BY_NAME)


def make_strategy(spec: str | Strategy, *, seed: int | None = None,
                  deviation_bound: int | None = None,
                  preemption_bound: int | None = None) -> Strategy:
    """Build a strategy from its name (or pass an instance through unchanged).

    ``systematic`` with a ``preemption_bound`` is the search ordered and bounded by
    switches (:class:`PreemptionBounded`); with both bounds, the switch bound decides."""
    from explorer.strategies import _base

    if isinstance(spec, _base.Strategy):
        return spec
    if spec == "random":
        from explorer.strategies._random import RandomWalk

        return RandomWalk(seed)
    if spec == "systematic":
        if preemption_bound is not None:
            from explorer.strategies._preemption import PreemptionBounded

            return PreemptionBounded(preemption_bound)
        from explorer.strategies._systematic import Systematic

        return Systematic(deviation_bound)
    if spec in _SEEDED:
        seeded: Callable[..., Strategy] = _class(_SEEDED[spec])
        return seeded(seed=seed)
    if spec in ("dpor", "dpor-declared", "dpor-auto"):
        from explorer.strategies._dpor import DPOR

        if spec == "dpor":
            return DPOR(deviation_bound)
        return DPOR(deviation_bound, footprints=spec.partition("-")[2])
    if spec == "rff-auto":
        from explorer.strategies._rff import RFF

        return RFF(seed, footprints="auto")
    from explorer._errors import UsageError

    raise UsageError(
        f"unknown strategy {spec!r}; use one of: {', '.join(names())}, or pass a "
        "strategies.Strategy instance"
    )
