"""Race explanation: the conflicting accesses of a failing run, and its happens-before graph.

Available when the failure was found by a strategy that records footprints (``dpor``): the
failing schedule is replayed once more with footprints on, and every pair of steps of
different tasks that touched the same location (one writing) with nothing else ordering
them is listed, in the order they ran — the accesses whose order the schedule decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer._footprint import UNKNOWN
from explorer._runtime import display_task
from explorer._trace import Step, Trace

if TYPE_CHECKING:
    import networkx as nx

_MAX_LINES = 12


@dataclass(frozen=True)
class Conflict:
    """Two steps of different tasks whose accesses conflict, ``first`` ran first."""

    first: Step
    second: Step
    first_access: str
    second_access: str

    def describe(self) -> str:
        def where(step: Step) -> str:
            start, end = step.start, step.end
            if start is None:
                return step.task
            if end is None or end == start:
                return f"{step.task} (from {start.short})"
            return f"{step.task} (from {start.short} to {end.short})"

        return (f"{where(self.first)} {self.first_access}, then {where(self.second)} "
                f"{self.second_access}")


def _verb(mode: str) -> str:
    return "writes" if mode == "w" else "reads"


def _location(names: dict[int, str], obj: int, item: object) -> str:
    name = names.get(obj, "an object")
    if item is None:
        return name
    if name.startswith("."):  # an attribute of a shared object
        return f"{name[1:]}.{item}"
    return f"{name}[{item!r}]"


def _access_pairs(a: set[Any], b: set[Any], names: dict[int, str]) -> tuple[str, str] | None:
    for obj, item, mode in sorted(a, key=repr):
        if (obj, item, mode) == UNKNOWN:
            continue
        for other_obj, other_item, other_mode in sorted(b, key=repr):
            if other_obj != obj or (mode != "w" and other_mode != "w"):
                continue
            if item is None or other_item is None or item == other_item:
                return (f"{_verb(mode)} {_location(names, obj, item)}",
                        f"{_verb(other_mode)} {_location(names, other_obj, other_item)}")
    return None


def conflicts(records: Sequence[Any], trace: Trace, names: dict[int, str]) -> list[Conflict]:
    """The races of a run (see :func:`strategies._dpor.races`) with readable accesses."""
    from strategies._dpor import races

    steps = [s for s in trace.steps if s.kind != "timer"]
    if len(steps) != len(records):
        return []
    found = []
    for i, j in races(records):
        pair = _access_pairs(records[i].footprint, records[j].footprint, names)
        if pair is not None:
            found.append(Conflict(steps[i], steps[j], *pair))
    return found


def happens_before(records: Sequence[Any], trace: Trace) -> nx.DiGraph[int]:
    """Steps as nodes; edges for program order, scheduling and ordered conflicts."""
    import networkx as nx

    from strategies._dpor import races

    steps = [s for s in trace.steps if s.kind != "timer"]
    graph: nx.DiGraph[int] = nx.DiGraph()
    last: dict[str, int] = {}
    for index, record in enumerate(records):
        step = steps[index] if index < len(steps) else None
        label = f"{index}: {display_task(record.process) if record.process != 'loop' else 'loop'}"
        if step is not None and (step.end or step.start):
            label += f" {(step.end or step.start).short}"  # type: ignore[union-attr]
        graph.add_node(index, label=label)
        if record.process in last:
            graph.add_edge(last[record.process], index, kind="program order")
        if record.enabler is not None:
            graph.add_edge(record.enabler, index, kind="scheduled")
        last[record.process] = index
    for i, j in races(records):
        graph.add_edge(i, j, kind="conflict")
    return graph


def to_dot(graph: nx.DiGraph[int]) -> str:
    """The graph in Graphviz DOT form."""
    lines = ["digraph happens_before {", "  node [shape=box, fontname=monospace];"]
    for node, data in graph.nodes(data=True):
        label = str(data.get("label", node)).replace('"', '\\"')
        lines.append(f'  {node} [label="{label}"];')
    styles = {"conflict": ' [color=red, label="conflict"]', "scheduled": " [style=dashed]",
              "program order": ""}
    for a, b, data in graph.edges(data=True):
        lines.append(f"  {a} -> {b}{styles.get(data.get('kind', ''), '')};")
    lines.append("}")
    return "\n".join(lines)


def render(found: list[Conflict]) -> list[str]:
    lines = [c.describe() for c in found[:_MAX_LINES]]
    if len(found) > _MAX_LINES:
        lines.append(f"... and {len(found) - _MAX_LINES} more")
    return lines
