"""Deadlock analysis for asyncio: the wait-for graph of the blocked tasks of a run.

The graph's shape and its analysis (cycle, lost wake-ups) are runtime-neutral, in
:mod:`explorer._waitgraph`; this module reads the asyncio side: what each blocked task
awaits, and (in traced runs only, see :mod:`explorer._asyncio._tracking`) who holds which
lock or semaphore. An awaited task or a gather's child is an edge ``resource -> task``
("completes"); without holder information a holdable resource is never called orphaned.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from explorer._asyncio._inspect import coroutine_frames, waiting_on
from explorer._asyncio._tracking import Holders
from explorer._locations import user_location
from explorer._waitgraph import DeadlockReport, Wait, find_cycle, is_orphan, new_graph

if TYPE_CHECKING:
    import networkx as nx

    from explorer._asyncio._loop import ControlledLoop

_HOLDABLE = (asyncio.Lock, asyncio.Semaphore)


def analyse(loop: ControlledLoop, holders: Holders | None) -> DeadlockReport:
    """Build the wait-for graph of every blocked task of the current run."""
    graph: nx.DiGraph[str] = new_graph()
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
    cycle = find_cycle(graph)
    orphans = [w for w in waits if w.resource is not None and is_orphan(graph, w)
               and (holders is not None or not w.holdable)]
    return DeadlockReport(graph, waits, cycle, orphans, holders is not None)
