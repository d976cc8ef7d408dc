"""Linearizability checking of async objects: declare operations, get concurrent
scenarios generated, explored and judged against one-at-a-time executions.

:func:`check_linearizable` generates scenarios from a seed (:mod:`._model`), explores
each under the controlled scheduler and judges every run's history with the Wing-Gong /
Lowe search (:mod:`._checker`), executing sequential orders on fresh objects as controlled
runs of their own (:mod:`._runner`). A violation is a failure of kind
``not_linearizable`` whose ``outcome.details`` hold the scenario (JSON data), the history
and the closest sequential orders; :func:`replay_linearizability` replays one.
"""

from __future__ import annotations

from explorer._linearize._model import (
    Call,
    LinScenario,
    Operation,
    operation,
    scenarios_strategy,
)
from explorer._linearize._runner import (
    LinearizabilityResult,
    check_linearizable,
    replay_linearizability,
    scenario_of,
)

linearizability_scenarios = scenarios_strategy

__all__ = ["Call", "LinScenario", "LinearizabilityResult", "Operation", "check_linearizable",
           "linearizability_scenarios", "operation", "replay_linearizability", "scenario_of"]
