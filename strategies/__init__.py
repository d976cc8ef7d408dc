"""Search strategies: which candidate runs at each scheduling point, across runs.

``random``
    Seeded uniform random walk; reproducible from its seed.
``systematic``
    Every schedule by increasing number of deviations from the stock order, optionally up
    to a deviation bound; says honestly what it covered.
"""

from __future__ import annotations

from strategies._base import Strategy
from strategies._fixed import Fixed
from strategies._random import RandomWalk
from strategies._systematic import Systematic

__all__ = ["Fixed", "RandomWalk", "Strategy", "Systematic", "make_strategy", "names"]

_BY_NAME: dict[str, type[Strategy]] = {"random": RandomWalk, "systematic": Systematic}


def names() -> list[str]:
    """The strategy names :func:`make_strategy` accepts."""
    return sorted(_BY_NAME)


def make_strategy(spec: str | Strategy, *, seed: int | None = None,
                  deviation_bound: int | None = None) -> Strategy:
    """Build a strategy from its name (or pass an instance through unchanged)."""
    if isinstance(spec, Strategy):
        return spec
    if spec == "random":
        return RandomWalk(seed)
    if spec == "systematic":
        return Systematic(deviation_bound)
    from explorer._errors import UsageError

    raise UsageError(
        f"unknown strategy {spec!r}; use one of: {', '.join(names())}, or pass a "
        "strategies.Strategy instance"
    )
