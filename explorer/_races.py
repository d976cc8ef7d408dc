"""Race explanation: the conflicting accesses of a failing run, and its happens-before graph.

Available when the failure was found by a strategy that records footprints (``dpor``): the
failing schedule is replayed once more with footprints on, and every pair of steps of
different tasks that touched the same location (one writing) with nothing else ordering
them is listed, in the order they ran. :mod:`explorer._deciding` then replays each pair
reversed to tell the pairs whose order decided the failure from those that merely
conflicted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from explorer._failure_record import RaceRecord
from explorer._footprint import INSERTION_ORDER, UNKNOWN, Access, StepRecord
from explorer._happens_before import LOOP, RunAnalysis
from explorer._runtime import display_task
from explorer._trace import Step, Trace

if TYPE_CHECKING:
    import networkx as nx

_MAX_LINES = 12


def _where(step: Step, name: str | None = None) -> str:
    """The step by its task (``name``: its label, when the trace has one) and the lines
    of the task's own code it ran between (the handler's line above a helper module)."""
    who = name or step.task
    start, end = step.start, step.site or step.end
    if start is None:
        return who
    if end is None or end == start:
        return f"{who} (from {start.short})"
    return f"{who} (from {start.short} to {end.short})"


@dataclass(frozen=True)
class Conflict:
    """Two steps of different tasks whose accesses conflict, ``first`` ran first.

    ``first_access``/``second_access`` say what each step did to the shared location
    (``None`` when it is not recorded: undeclared task code). ``pair`` is the steps'
    indices in the run's step records. ``decides`` is ``True`` when running the pair the
    other way round made the failure go away or change, ``False`` when the run still
    failed the same way, ``None`` when that was not checked; ``reversed`` says what the
    reversed run did. ``names`` are what the trace calls the two tasks (their labels:
    an HTTP request by method and path), when they have one.
    """

    first: Step
    second: Step
    first_access: str | None
    second_access: str | None
    pair: tuple[int, int] = (-1, -1)
    decides: bool | None = None
    reversed: str = ""
    names: tuple[str | None, str | None] = (None, None)

    def judged(self, decides: bool, reversed_: str) -> Conflict:
        """This conflict with the verdict of its reversed replay."""
        return dataclasses.replace(self, decides=decides, reversed=reversed_)

    def describe(self) -> str:
        first, second = _where(self.first, self.names[0]), _where(self.second, self.names[1])
        if self.first_access is None or self.second_access is None:
            return f"{first}, then {second} (what their code touches is not declared)"
        return f"{first} {self.first_access}, then {second} {self.second_access}"

    def record(self) -> RaceRecord:
        """The pair as saved in a failure's record: step indices, sentence, verdict."""
        return RaceRecord(self.first.index, self.second.index, self.describe(), self.decides,
                          self.reversed or None)

    def to_json(self) -> dict[str, object]:
        return self.record().to_json()


def _verb(mode: str) -> str:
    return "writes" if mode == "w" else "reads"


def _location(names: dict[int, str], obj: int, item: object) -> str:
    name = names.get(obj, "an object")
    if item is None:
        return name
    if item is INSERTION_ORDER:
        return f"the key order of {name}"
    if name.startswith("."):  # an attribute of a shared object
        return f"{name[1:]}.{item}"
    return f"{name}[{item!r}]"


def _access_pairs(a: set[Access], b: set[Access],
                  names: dict[int, str]) -> tuple[str, str] | None:
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


def labels_of(trace: Trace, first: Step, second: Step) -> tuple[str | None, str | None]:
    """What ``trace`` calls the tasks of two steps, where it has a label for them."""
    return trace.labels.get(first.task), trace.labels.get(second.task)


def describe_pair(records: Sequence[StepRecord], i: int, j: int,
                  names: dict[int, str]) -> tuple[str | None, str | None]:
    """What steps ``i`` and ``j`` did to a location both touched (one writing), readably;
    ``(None, None)`` when no recorded access of theirs conflicts by name."""
    pair = _access_pairs(records[i].footprint, records[j].footprint, names)
    return pair if pair is not None else (None, None)


def conflicts(records: Sequence[StepRecord], trace: Trace, names: dict[int, str], *,
              analysis: RunAnalysis | None = None) -> list[Conflict]:
    """The races of a run (see :class:`explorer._happens_before.RunAnalysis`) whose accesses
    are recorded, readably, in the order the run ran them."""
    steps = [s for s in trace.steps if s.kind != "timer"]
    if len(steps) != len(records):
        return []
    if analysis is None:
        analysis = RunAnalysis(records)
    found = []
    for i, j in analysis.races:
        pair = _access_pairs(records[i].footprint, records[j].footprint, names)
        if pair is not None:
            found.append(Conflict(steps[i], steps[j], *pair, pair=(i, j),
                                  names=labels_of(trace, steps[i], steps[j])))
    return found


def happens_before(records: Sequence[StepRecord], trace: Trace, *,
                   analysis: RunAnalysis | None = None) -> nx.DiGraph[int]:
    """The happens-before relation of a run (:mod:`explorer._happens_before`) for display:
    steps as nodes, labelled with their task and location in ``trace``; edges for program
    order, scheduling, and races (the ordered conflicts no other path orders)."""
    from explorer._waitgraph import networkx

    networkx()  # slow to import, so only when a graph is asked for (and under a lock)
    import networkx as nx

    steps = [s for s in trace.steps if s.kind != "timer"]
    graph: nx.DiGraph[int] = nx.DiGraph()
    last: dict[str, int] = {}
    for index, record in enumerate(records):
        step = steps[index] if index < len(steps) else None
        task = display_task(record.process) if record.process != LOOP else LOOP
        label = f"{index}: {task}"
        where = None if step is None else step.end or step.start
        if where is not None:
            label += f" {where.short}"
        graph.add_node(index, label=label)
        if record.process in last:
            graph.add_edge(last[record.process], index, kind="program order")
        if record.enabler is not None:
            graph.add_edge(record.enabler, index, kind="scheduled")
        last[record.process] = index
    if analysis is None:
        analysis = RunAnalysis(records)
    for i, j in analysis.races:
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
    """The lines a failure message shows for its races: those whose order decided it,
    then the others that conflicted, at most a dozen each."""
    deciding = [c for c in found if c.decides]
    others = [c for c in found if not c.decides]
    checked = any(c.decides is not None for c in found)
    lines: list[str] = []
    if deciding:
        lines.append("Decided by (run the other way round, the failure goes away or "
                     "changes):")
        lines += _listed(deciding, checked)
    elif checked:
        lines.append("Decided by: no single pair (each one reversed still fails the same "
                     "way).")
    if others:
        lines.append("Also conflicting (reversed, it still fails the same way):" if checked
                     else "Conflicting accesses, in the order this schedule ran them:")
        lines += _listed(others, checked)
    return lines


def _listed(found: list[Conflict], checked: bool) -> list[str]:
    lines = []
    for c in found[:_MAX_LINES]:
        text = c.describe()
        if c.decides:
            text += f"; reversed, the run {c.reversed}"
        elif checked and c.decides is None:
            text += " (not replayed)"
        elif checked and c.reversed == "could not be reversed":
            text += " (could not be reversed)"
        lines.append(f"  {text}")
    if len(found) > _MAX_LINES:
        lines.append(f"  ... and {len(found) - _MAX_LINES} more")
    return lines
