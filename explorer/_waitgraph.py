"""Deadlock analysis shared by the runtimes: the wait-for graph, its cycle, its orphans.

Each runtime builds the graph of the tasks blocked when its run could not move (see
``explorer._asyncio._waitfor`` and ``explorer._trio._waitfor``); everything after that is
runtime-neutral and lives here.

The graph's nodes are task ids (attribute ``kind="task"``) and resource names
(``kind="resource"``). An edge ``task -> resource`` means the task waits on it;
``resource -> task`` means the task holds it (label ``"held by"``: locks, semaphores,
conditions, capacity limiters) or must finish for it to complete (an awaited task, a
gather's child, a nursery's child). A cycle is a lock-order deadlock; a blocked task whose
resource leads to no task at all is a lost wake-up: nothing left can ever wake it.

networkx is imported only when a deadlock is analysed: it is slow to import.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from explorer._runtime import Location, display_task

if TYPE_CHECKING:
    import networkx as nx

_IMPORTING = threading.Lock()


def networkx() -> ModuleType:
    """networkx, imported on first use under a lock: explorations running in threads of
    one process (a Dask worker's) can otherwise meet its package half-initialised."""
    with _IMPORTING:
        import networkx as nx

    return nx


@dataclass(slots=True)
class Wait:
    """One blocked task: what it waits on, where, and whether the resource can be held
    (``holdable``) and is a resource rather than another task (``leaf``)."""

    task: str
    operation: str | None
    resource: str | None
    location: Location | None
    holdable: bool = False
    leaf: bool = True


@dataclass(slots=True)
class DeadlockReport:
    """The wait-for graph of a deadlocked run, explained. ``labels`` (a traced run's
    ``Trace.labels``) says what tasks are, such as the HTTP request a task carries."""

    graph: nx.DiGraph[str]
    waits: list[Wait]
    cycle: list[str]
    orphans: list[Wait]
    holders_known: bool
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def blame(self) -> Wait | None:
        """The wait the failure is attributed to.

        It must not depend on holder information (known in traced runs only), so that an
        untraced run and its traced replay agree: the first blocked task, by id, whose wait
        is on a resource rather than on another task.
        """
        pool = [w for w in self.waits if w.leaf] or self.waits
        return min(pool, key=lambda w: w.task) if pool else None

    def explain(self) -> str:
        lines: list[str] = []
        if self.cycle:
            lines.append("wait-for cycle:")
            lines += [f"  {link}" for link in self._cycle_links()]
        for wait in self.orphans:
            if wait.task not in self.cycle:
                lines.append(
                    f"lost wake-up: {self._name(wait.task)} waits on {wait.resource} "
                    f"({wait.operation}) at {_short(wait.location)}, and no task is left "
                    "that could wake it"
                )
        lines.append("blocked tasks:")
        for wait in self.waits:
            held = self._held_by(wait.task)
            holding = f"; holds {', '.join(held)}" if held else ""
            what = _waiting_text(wait)
            lines.append(f"  {self._name(wait.task)}: {what} at "
                         f"{_short(wait.location)}{holding}")
        if not self.holders_known:
            lines.append("(lock holders are recorded in traced replays only)")
        return "\n".join(lines)

    def _name(self, task: str) -> str:
        return labelled(task, self.labels)

    def _held_by(self, task: str) -> list[str]:
        return [r for r in self.graph.predecessors(task)
                if self.graph.edges[r, task].get("label") == "held by"]

    def _cycle_links(self) -> list[str]:
        by_task = {w.task: w for w in self.waits}
        links = []
        for i, task in enumerate(self.cycle):
            nxt = self.cycle[(i + 1) % len(self.cycle)]
            wait = by_task[task]
            via = f"waits on {wait.resource} ({wait.operation}) at {_short(wait.location)}"
            if wait.resource is not None and self.graph.has_edge(wait.resource, nxt) \
                    and self.graph.edges[wait.resource, nxt].get("label") == "held by":
                via += f", held by {self._name(nxt)}"
            else:
                via += f", which needs {self._name(nxt)}"
            links.append(f"{self._name(task)} {via}")
        return links

    def to_json(self) -> dict[str, Any]:
        return {
            "cycle": self.cycle,
            "edges": [[a, b, d.get("label", "")] for a, b, d in self.graph.edges(data=True)],
            "waits": [{"task": w.task, "operation": w.operation, "resource": w.resource,
                       "location": w.location.to_json() if w.location else None}
                      for w in self.waits],
            "lost_wakeups": [w.task for w in self.orphans],
        }


def labelled(task: str, labels: Mapping[str, str]) -> str:
    """A task id as messages show it: ``AsyncClient.post#2 (POST /redeem/A #2 → redeem)``
    when ``labels`` (keyed by display name) says what the task is."""
    shown = display_task(task)
    label = labels.get(shown)
    return f"{shown} ({label})" if label and label != shown else shown


def new_graph() -> nx.DiGraph[str]:
    """An empty wait-for graph (networkx is imported here, on the first deadlock)."""
    graph: nx.DiGraph[str] = networkx().DiGraph()
    return graph


def find_cycle(graph: nx.DiGraph[str]) -> list[str]:
    """The tasks of a wait-for cycle, starting from the smallest id; [] if none."""
    nx = networkx()
    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []
    tasks = [a for a, _b in edges if graph.nodes[a].get("kind") == "task"]
    if not tasks:
        return []
    start = tasks.index(min(tasks))
    return tasks[start:] + tasks[:start]


def is_orphan(graph: nx.DiGraph[str], wait: Wait) -> bool:
    """A waiter whose resource leads to no task: nothing can complete or release it."""
    if wait.resource is None or wait.resource not in graph:
        return False
    return not any(graph.nodes[n].get("kind") == "task" for n in graph.successors(wait.resource))


def _short(location: Location | None) -> str:
    return location.short if location is not None else "?"


def _waiting_text(wait: Wait) -> str:
    if wait.operation and wait.resource:
        if wait.operation == "await":
            return f"await {display_task(wait.resource)}"
        return f"{wait.operation} {wait.resource}"
    return wait.operation or "waiting"
