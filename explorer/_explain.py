"""Turning a failing trace into prose a developer reads in a minute.

:func:`explain` says, for each deviation from the stock order, which work ran early and
what it overtook, tied to source lines (with the line's text). :func:`swimlanes` draws the
run with one column per task.
"""

from __future__ import annotations

import linecache
import os
from collections import Counter

from explorer._faults import FAULT_KIND
from explorer._faults import describe as describe_fault
from explorer._runtime import Location
from explorer._trace import Step, Trace

_SOURCE_WIDTH = 48


def source(location: Location | None) -> str:
    """``bank.py:14 `if account.balance < amount:``` (the line's text when available)."""
    if location is None:
        return "?"
    text = linecache.getline(location.filename, location.lineno).strip()
    if len(text) > _SOURCE_WIDTH:
        text = text[: _SOURCE_WIDTH - 1] + "…"
    return f"{location.short} `{text}`" if text else location.short


def _neighbours(trace: Trace, step: Step) -> tuple[Step | None, Step | None]:
    """The preempted task's last step before ``step`` and first step after it."""
    before = after = None
    for other in trace.steps:
        if other.task != step.preempted:
            continue
        if other.index < step.index:
            before = other
        elif other.index > step.index:
            after = other
            break
    return before, after


def _span(step: Step) -> str:
    if step.end is None:
        return f"from {source(step.start)} to its end ({step.result or 'done'})"
    if step.start is not None and step.start == step.end:
        return f"at {source(step.start)}"
    return f"from {source(step.start)} to {source(step.end)}"


def explain(trace: Trace) -> list[str]:
    """One sentence per deviation from the stock order, oldest first."""
    lines: list[str] = []
    for step in trace.steps:
        if not step.deviated:
            continue
        if step.kind == FAULT_KIND:
            # A fault struck in a task's step (a connect) or in the network's own
            # callback (a delivery), which belongs to no task and has no line to show.
            where = f" at {source(step.start)}" if step.start is not None else ""
            during = f"while {step.task} ran{where}" if step.task != "loop" else \
                "in the network"
            lines.append(f"step {step.index}: fault injected {during}: "
                         f"{describe_fault(step.operation or '?', step.resource)}")
            continue
        if step.kind == "timer":
            lines.append(f"step {step.index}: time jumped to t={step.time:g} and timers "
                         f"fired before ready work ({step.preempted or 'a task'}) ran")
            continue
        who = step.task if step.task != "loop" else (step.operation or "a callback")
        ran = f"step {step.index}: {who} ran" + (f" {_span(step)}" if step.task != "loop"
                                                 else "")
        if step.preempted is None:
            lines.append(ran)
            continue
        before, after = _neighbours(trace, step)
        if step.preempted_at is None or (before is None and after is None):
            lines.append(f"{ran} ahead of {step.preempted}")
            continue
        where = source(step.preempted_at)
        if before is None:
            lines.append(f"{ran} before {step.preempted} started ({where})")
        elif after is not None:
            lines.append(f"{ran} between {step.preempted}'s step {_span(before)} and its "
                         f"next step {_span(after)}")
        else:
            lines.append(f"{ran} while {step.preempted} was ready to resume at {where}")
    return lines


def swimlanes(trace: Trace, *, width: int = 18) -> str:
    """The run with one column per task: each cell is where that task ran in that step."""
    tasks = list(dict.fromkeys(s.task for s in trace.steps if s.task not in ("loop", "clock")))
    files = Counter(loc.filename for s in trace.steps for loc in (s.start, s.end) if loc)
    home = files.most_common(1)[0][0] if files else ""
    columns = [t if len(t) <= width else t[: width - 1] + "…" for t in tasks]
    others = {s.task for s in trace.steps if s.task in ("loop", "clock")}
    # Callbacks and timer firings share the last column ("loop"; "clock" when only the
    # clock appears, as under trio); without either, there is no such column.
    tail = " loop" if "loop" in others else (" clock" if others else "")
    header = "step   " + " ".join(f"{c:<{width}}" for c in columns) + tail
    lines = [f"(lines in {os.path.basename(home)} unless named)" if home else "", header]
    for step in trace.steps:
        if step.kind == FAULT_KIND and not step.deviated:
            continue  # a fault point where no fault was injected: nothing happened
        mark = "*" if step.deviated else " "
        cells = [""] * len(tasks)
        loop_cell = ""
        if step.task in ("loop", "clock"):
            loop_cell = _cell(step, home) if step.kind == FAULT_KIND else \
                (step.operation or step.kind).replace("callback ", "")
        else:
            cells[tasks.index(step.task)] = _cell(step, home)
        lines.append(f"{step.index:>4}{mark}  " + " ".join(f"{c:<{width}}" for c in cells)
                     + f" {loop_cell}".rstrip())
    return "\n".join(line.rstrip() for line in lines if line is not None)


def _where(location: Location | None, home: str) -> str:
    if location is None:
        return "?"
    if location.filename == home:
        return str(location.lineno)
    return location.short


def _cell(step: Step, home: str) -> str:
    if step.kind == FAULT_KIND:  # the fault itself, where the task reached its site
        return f"fault {step.operation}"
    start = _where(step.start, home)
    if step.end is None:
        return f"{start}→{step.result or 'done'}"
    end = _where(step.end, home)
    return start if start == end else f"{start}→{end}"
