"""Deadlock analysis for trio: the wait-for graph of the blocked tasks.

The graph has the shape described in :mod:`explorer._waitgraph`, which also finds its
cycle and orphans: ``task -> resource`` for a wait, ``resource -> task``
for a holder (locks, conditions, capacity limiters) or for a child a nursery waits on.
trio records lock owners itself, so holders are known in every run, traced or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trio.lowlevel import Task

from explorer._trio._inspect import Names, holders, is_holdable, task_location, waiting_on
from explorer._waitgraph import DeadlockReport, Wait, find_cycle, is_orphan, new_graph

if TYPE_CHECKING:
    import networkx as nx


def analyse(blocked: list[Task], names: Names) -> DeadlockReport:
    """Build the wait-for graph of ``blocked``, the user tasks of a run that cannot move."""
    graph: nx.DiGraph[str] = new_graph()
    waits: list[Wait] = []
    for task in sorted(blocked, key=names.task_id):
        tid = names.task_id(task)
        op, res = waiting_on(task)
        name = names.resource(res) if res is not None else None
        children = _children(res)
        wait = Wait(tid, op, name, task_location(task), is_holdable(res),
                    res is not None and children is None)
        waits.append(wait)
        graph.add_node(tid, kind="task")
        if res is None or name is None:
            continue
        graph.add_node(name, kind="resource", label=name)
        graph.add_edge(tid, name, label=op or "waits")
        for child in children or ():
            graph.add_edge(name, names.task_id(child), label="completes")
        for owner in holders(res):
            graph.add_edge(name, names.task_id(owner), label="held by")
    cycle = find_cycle(graph)
    orphans = [w for w in waits if w.resource is not None and is_orphan(graph, w)]
    return DeadlockReport(graph, waits, cycle, orphans, True)


def _children(resource: object) -> list[Task] | None:
    """The unfinished child tasks a nursery waits on; None for anything else."""
    if type(resource).__name__ != "Nursery":
        return None
    found = getattr(resource, "child_tasks", ())
    return sorted((t for t in found if isinstance(t, Task)),
                  key=lambda t: t._counter)
