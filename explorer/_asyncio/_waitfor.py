"""Deadlock analysis: the wait-for graph of the blocked tasks, its cycle, its orphans.

Nodes are task ids and resource names. An edge ``task -> resource`` means the task waits
on it; ``resource -> task`` means the task holds it (locks, semaphores) or will complete it
(an awaited task). A cycle is a lock-order deadlock; a blocked task whose wait leads to no
task at all is a lost wake-up: nothing left can ever wake it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer._asyncio._inspect import coroutine_frames, user_location, waiting_on
from explorer._asyncio._tracking import Holders
from explorer._runtime import Location, display_task

if TYPE_CHECKING:
    import networkx as nx

    from explorer._asyncio._loop import ControlledLoop

_HOLDABLE = (asyncio.Lock, asyncio.Semaphore)


@dataclass(slots=True)
class Wait:
    task: str
    operation: str | None
    resource: str | None
    location: Location | None
    holdable: bool = False
    leaf: bool = True


@dataclass(slots=True)
class DeadlockReport:
    graph: nx.DiGraph[str]
    waits: list[Wait]
    cycle: list[str]
    orphans: list[Wait]
    holders_known: bool

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
                    f"lost wake-up: {display_task(wait.task)} waits on {wait.resource} "
                    f"({wait.operation}) at {_short(wait.location)}, and no task is left "
                    "that could wake it"
                )
        lines.append("blocked tasks:")
        for wait in self.waits:
            held = self._held_by(wait.task)
            holding = f"; holds {', '.join(held)}" if held else ""
            what = _waiting_text(wait)
            lines.append(f"  {display_task(wait.task)}: {what} at "
                         f"{_short(wait.location)}{holding}")
        if not self.holders_known:
            lines.append("(lock holders are recorded in traced replays only)")
        return "\n".join(lines)

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
                via += f", held by {display_task(nxt)}"
            else:
                via += f", which needs {display_task(nxt)}"
            links.append(f"{display_task(task)} {via}")
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


def analyse(loop: ControlledLoop, holders: Holders | None) -> DeadlockReport:
    """Build the wait-for graph of every blocked task of the current run."""
    import networkx as nx  # only when a deadlock is analysed: it is slow to import

    graph: nx.DiGraph[str] = nx.DiGraph()
    waits: list[Wait] = []
    blocked = sorted((t for t in loop.tasks if not t.done()), key=loop.task_id)
    for task in blocked:
        tid = loop.task_id(task)
        op, res = waiting_on(task)
        name = loop.resource_name(res) if res is not None else None
        is_leaf = res is not None and not isinstance(res, asyncio.Task) \
            and not getattr(res, "_children", None)
        wait = Wait(tid, op, name, user_location(coroutine_frames(task)),
                    isinstance(res, _HOLDABLE), is_leaf)
        waits.append(wait)
        graph.add_node(tid, kind="task")
        if res is None or name is None:
            continue
        if isinstance(res, asyncio.Task):
            graph.add_edge(tid, loop.task_id(res), label="awaits")
            continue
        graph.add_node(name, kind="resource", label=name)
        graph.add_edge(tid, name, label=op or "waits")
        for child in getattr(res, "_children", ()) or ():  # gather's future
            if not child.done():
                graph.add_edge(name, loop.task_id(child), label="completes")
        if holders is not None and isinstance(res, _HOLDABLE):
            for owner in holders.of(res):
                graph.add_edge(name, loop.task_id(owner), label="held by")
        if holders is not None:
            for held in holders.held_by(task):
                hname = loop.resource_name(held)
                graph.add_node(hname, kind="resource", label=hname)
                graph.add_edge(hname, tid, label="held by")
    cycle = _find_cycle(graph)
    orphans = [w for w in waits if w.resource is not None and _is_orphan(graph, w)
               and (holders is not None or not w.holdable)]
    return DeadlockReport(graph, waits, cycle, orphans, holders is not None)


def _short(location: Location | None) -> str:
    return location.short if location is not None else "?"


def _waiting_text(wait: Wait) -> str:
    if wait.operation and wait.resource:
        if wait.operation == "await":
            return f"await {display_task(wait.resource)}"
        return f"{wait.operation} {wait.resource}"
    return wait.operation or "waiting"


def _find_cycle(graph: nx.DiGraph[str]) -> list[str]:
    import networkx as nx

    try:
        edges = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return []
    tasks = [a for a, _b in edges if graph.nodes[a].get("kind") == "task"]
    if not tasks:
        return []
    start = tasks.index(min(tasks))
    return tasks[start:] + tasks[:start]


def _is_orphan(graph: nx.DiGraph[str], wait: Wait) -> bool:
    """A waiter whose resource leads to no task: nothing can complete or release it."""
    if wait.resource is None or wait.resource not in graph:
        return False
    return not any(graph.nodes[n].get("kind") == "task" for n in graph.successors(wait.resource))
