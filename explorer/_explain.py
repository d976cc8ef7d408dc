"""Turning a failing trace into prose a developer reads in a minute, in the user's terms.

Contract: a story counts what a person counts. :func:`explain` writes one item per
*run-ahead* — a stretch of one user-level task's steps that departs from the stock order —
however many library-internal steps, callbacks and deviations it took; one item per
injected fault and per early timer. Steps are attributed to user frames: a task is named
by what it is (``Trace.label``: an HTTP request by method, path and handler; else
``buyer 2`` for ``buyer#2``), each position is a line of the user's code (the handler's
line when the step stopped in a helper module, with the helper as a detail), the library
call it was inside is a detail (``inside Redis.execute_command (redis)``), and a task a
library spawned (no user frame of its own) is folded into the user-level task it serves
(:func:`owners`). The full trace keeps every step and deviation.

:func:`swimlanes` (and the HTML report, through :func:`lanes`) draws the run with one lane
per user-level task, with the same attribution.
"""

from __future__ import annotations

import linecache
import os
import re
from collections import Counter
from dataclasses import dataclass

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


_LOOP = ("loop", "clock")


def _is_task_step(step: Step) -> bool:
    return step.task not in _LOOP and step.kind != FAULT_KIND


def owners(trace: Trace) -> dict[str, str]:
    """Each task of ``trace`` -> the user-level task its steps are attributed to.

    A task with a step in the user's code is user-level and owns itself. A task whose
    steps all ran in library code (redis-py's ``_send_packed_command`` tasks) is folded
    into its nearest ancestor by id (``buyer#2/...`` into ``buyer#2``; a name without a
    parent into ``main``, whose prefix traces leave out) that is user-level; with none, it
    owns itself."""
    tasks = list(dict.fromkeys(s.task for s in trace.steps if _is_task_step(s)))
    user = {s.task for s in trace.steps if _is_task_step(s) and not s.foreign}
    found: dict[str, str] = {}
    for task in tasks:
        owner = task
        if task not in user:
            parts = task.split("/")
            ancestors = ["/".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
            owner = next((a for a in [*ancestors, "main"] if a in user), task)
        found[task] = owner
    return found


def readable(trace: Trace, task: str) -> str:
    """What a story calls ``task``: its label (an HTTP request), else its name, with a
    plain ``name#2`` read as ``name 2``."""
    label = trace.label(task)
    if label != task:
        return label
    return task.replace("#", " ") if _SIMPLE.fullmatch(task) else task


_SIMPLE = re.compile(r"[\w.<>]+#\d+")


@dataclass(frozen=True, slots=True)
class _Segment:
    """Consecutive steps of one user-level task (``owner``; None before any task ran),
    with the callbacks, timer firings and fault points that ran among them."""

    owner: str | None
    steps: tuple[Step, ...]


def _segments(trace: Trace, owner: dict[str, str]) -> list[_Segment]:
    found: list[_Segment] = []
    current: str | None = None
    run: list[Step] = []
    for step in trace.steps:
        if _is_task_step(step) and owner[step.task] != current and run:
            found.append(_Segment(current, tuple(run)))
            run = []
        if _is_task_step(step):
            current = owner[step.task]
        run.append(step)
    if run:
        found.append(_Segment(current, tuple(run)))
    return found


def explain(trace: Trace) -> list[str]:
    """The story of a run in the user's terms, oldest first: one item per run-ahead (a
    stretch of one user-level task's steps, with the library work and callbacks it waited
    on, that contains deviations from the stock order), naming the task by what it is,
    where in the user's code it ran, the library call it was inside, and where the task
    it overtook stood; one item per injected fault and per early timer. Run-aheads that
    move no task's own code past another user-level task (a callback run early, library
    work reordered) are told only when nothing else is. The deviation detail stays in
    the full trace."""
    owner = owners(trace)
    kept_going = _continuations(trace, owner)
    # (the step an item starts at, whether it moves one user-level task's code ahead of
    # another's, the item)
    items: list[tuple[int, bool, str]] = []
    for segment in _segments(trace, owner):
        deviations: list[Step] = []
        for step in segment.steps:
            if not step.deviated:
                continue
            if step.kind == FAULT_KIND:
                items.append((step.index, True, _fault(trace, step)))
            elif step.kind == "timer":
                items.append((step.index, True, f"step {step.index}: time jumped to "
                              f"t={step.time:g} and timers fired before ready work "
                              f"({_name(trace, step.preempted)}) ran"))
            else:
                deviations.append(step)
        if not deviations:
            continue
        if segment.owner is None:
            items += [(step.index, False, _callback(trace, step)) for step in deviations]
        else:
            moves = (_moves(trace, owner, segment, deviations)
                     and not all(step.index in kept_going for step in deviations))
            items.append((deviations[0].index, moves,
                          _run_ahead(trace, owner, segment, deviations)))
    items.sort(key=lambda item: item[0])
    # Reorderings that move no task's code past another's (a callback run earlier, a
    # task's library work run before another task started) stay in the full trace when
    # the story has switches between user-level tasks to tell.
    told = [text for _, moves, text in items if moves]
    return told or [text for _, _, text in items]


def _continuations(trace: Trace, owner: dict[str, str]) -> set[int]:
    """The deviations that only kept the task that ran last going (no switch): the stock
    order would have rotated to other work there, but a person does not count a task
    carrying on as running out of turn. A run-ahead made only of them is told only when
    nothing else is (what set it going is another item, or the stock order)."""
    kept: set[int] = set()
    last: str | None = None
    for step in trace.steps:
        if not _is_task_step(step):
            continue
        line = owner.get(step.task, step.task)
        if step.deviated and not step.switch and line == last:
            kept.add(step.index)
        last = line
    return kept


def _moves(trace: Trace, owner: dict[str, str], segment: _Segment,
           deviations: list[Step]) -> bool:
    """Whether a run-ahead moved its task's own code ahead of another user-level task."""
    assert segment.owner is not None
    if _overtaken(owner, segment, deviations) is None:
        return False
    first, end = deviations[0].index, segment.steps[-1].index
    return any(first <= s.index <= end for s in _own(trace, owner, segment.owner))


def _name(trace: Trace, task: str | None) -> str:
    return readable(trace, task) if task is not None else "a task"


def _fault(trace: Trace, step: Step) -> str:
    # A fault struck in a task's step (a connect) or in the network's own callback (a
    # delivery), which belongs to no task and has no line to show.
    where = f" at {source(step.start)}" if step.start is not None else ""
    during = f"while {readable(trace, step.task)} ran{where}" if step.task != "loop" else \
        "in the network"
    return (f"step {step.index}: fault injected {during}: "
            f"{describe_fault(step.operation or '?', step.resource)}")


def _callback(trace: Trace, step: Step) -> str:
    who = step.operation or "a callback"
    ahead = f" ahead of {_name(trace, step.preempted)}" if step.preempted else ""
    return f"step {step.index}: {who} ran{ahead}"


def _own(trace: Trace, owner: dict[str, str], task: str) -> list[Step]:
    """The steps of user-level task ``task`` that ran in its user code."""
    return [s for s in trace.steps
            if _is_task_step(s) and owner[s.task] == task and not s.foreign]


def _run_ahead(trace: Trace, owner: dict[str, str], segment: _Segment,
               deviations: list[Step]) -> str:
    first, last = deviations[0], deviations[-1]
    assert segment.owner is not None
    who = readable(trace, segment.owner)
    steps = f"step {first.index}" if first is last else f"steps {first.index}-{last.index}"
    own = _own(trace, owner, segment.owner)
    before = [s for s in own if s.index < first.index]
    ran = [s for s in own if first.index <= s.index <= segment.steps[-1].index]
    text = f"{steps}: {who} ran {_where_ran(before, ran, segment)}"
    other = _overtaken(owner, segment, deviations)
    if other is None:
        ahead = next((s.preempted for s in deviations if s.preempted), None)
        if ahead is not None and owner.get(ahead) == segment.owner:
            return f"{text} ahead of work it had started itself ({_function(ahead)})"
        return text + (f" ahead of {_name(trace, ahead)}" if ahead else "")
    theirs = _own(trace, owner, other)
    prior = [s for s in theirs if s.index < first.index]
    later = [s for s in theirs if s.index > segment.steps[-1].index]
    name = readable(trace, other)
    if not prior:
        if not later:
            return f"{text} before {name} started"
        starts = _user_start(later[0])
        return f"{text} before {name} started ({source(starts)})" if starts else \
            f"{text} before {name} reached {source(_position(later[0]))}"
    paused = _position(prior[-1])
    if prior[-1].end is None:
        return f"{text} after {name} ended"
    where = f"{source(paused)} in {paused.function.rpartition('<locals>.')[2]}" \
        if paused else "?"
    if not later:
        return f"{text} while {name} was paused at {where}"
    return f"{text} while {name} was paused at {where} (it next ran " \
           f"{_short_span(later[0])})"


def _user_start(step: Step) -> Location | None:
    """Where the first step of a task started, when that is the user's code: the start of
    a task whose coroutine is a library's (``client.post(...)``) is the library's line,
    which a saved trace cannot tell by its file name; the step's own end tells."""
    start, end = step.site or step.start, _position(step)
    if start is None or end is None or step.foreign:
        return None
    return start if start.filename == end.filename else None


def _overtaken(owner: dict[str, str], segment: _Segment, deviations: list[Step]
               ) -> str | None:
    """The user-level task the stock order would have run instead: the first deviation's
    preempted work that belongs to another user-level task."""
    for step in deviations:
        other = owner.get(step.preempted) if step.preempted else None
        if other is not None and other != segment.owner:
            return other
    return None


def _position(step: Step) -> Location | None:
    """Where a step left its task in the user's terms: the line in the task's own file
    when the step ended inside a helper module, else its deepest user line."""
    return step.site or step.end


def _where_ran(before: list[Step], ran: list[Step], segment: _Segment) -> str:
    """``from A to B`` (or ``at A``) in the task's own code, then the helper line and the
    library call it was inside, as details."""
    start = _position(before[-1]) if before and before[-1].end is not None else \
        _user_start(ran[0]) if ran else None
    if not ran:
        calls = [s.call for s in segment.steps if s.call]
        inside = f", inside {calls[0]}" if calls else ""
        return f"its library work at {source(start)}{inside}" if start else \
            f"its library work{inside}"
    final = ran[-1]
    origin = f"from {source(start)} " if start is not None else ""
    if final.end is None:
        # The last line it stood at before it ended says how far the stretch went.
        through = _position(ran[-2]) if len(ran) > 1 else None
        via_line = f"through {source(through)} " if through and through != start else ""
        span = f"{origin}{via_line}to its end ({final.result or 'done'})"
    elif start == _position(final):
        span = f"at {source(start)}"
    else:
        span = f"{origin}to {source(_position(final))}"
    helpers = list(dict.fromkeys(s.end.short for s in ran if s.site is not None and s.end))
    via = f" (via {', '.join(helpers[:2])})" if helpers else ""
    calls = list(dict.fromkeys(s.call for s in ran if s.call)) or \
        list(dict.fromkeys(s.call for s in segment.steps if s.call))
    inside = f", inside {calls[0]}" if calls else ""
    return span + via + inside


def _short_span(step: Step) -> str:
    start, end = step.site or step.start, _position(step)
    if end is None:
        return f"{start.short if start else '?'} → {step.result or 'done'}"
    a, b = start.short if start else "?", end.short
    if a == b:
        return a
    if start is not None and start.filename == end.filename:
        return f"{a} → {end.lineno}"
    return f"{a} → {b}"


# --------------------------------------------------------------------------- swimlanes


@dataclass(frozen=True, slots=True)
class Row:
    """One step as a swimlane row: ``mark`` is ``*`` at a switch between user-level tasks,
    ``+`` at another deviation from the stock order, else blank; ``column`` the lane the
    step is drawn in (None for the loop's callbacks and the clock), ``cell`` its text."""

    step: Step
    mark: str
    column: int | None
    cell: str


@dataclass(frozen=True, slots=True)
class Lanes:
    """A run drawn with one lane per user-level task: ``tasks`` the lanes' task names,
    ``headers`` what they are called (labels), ``folded`` a note on the tasks library code
    started that are drawn in other lanes, ``home`` the file whose lines are shown bare."""

    tasks: tuple[str, ...]
    headers: tuple[str, ...]
    folded: tuple[str, ...]
    home: str
    rows: tuple[Row, ...]


def lanes(trace: Trace) -> Lanes:
    """The rows and lanes :func:`swimlanes` and the HTML report draw."""
    owner = owners(trace)
    tasks = list(dict.fromkeys(owner[s.task] for s in trace.steps if _is_task_step(s)))
    files = Counter(loc.filename for s in trace.steps if not s.foreign
                    for loc in (s.site or s.start, _position(s)) if loc)
    home = os.path.basename(files.most_common(1)[0][0]) if files else ""
    folded = Counter(_function(task) for task, into in owner.items() if task != into)
    notes = (("tasks library code started, drawn ↳ in the lane of the task they serve: "
              + ", ".join(f"{name} x{n}" if n > 1 else name for name, n in folded.items()),)
             if folded else ())
    rows: list[Row] = []
    current: str | None = None
    # Where each task stands, in its own file's terms (a step starts where the task's
    # previous step left it: at the handler's line when that step stopped in a helper).
    at: dict[str, Location | None] = {}
    for step in trace.steps:
        if step.kind == FAULT_KIND and not step.deviated:
            continue  # a fault point where no fault was injected: nothing happened
        mine = owner.get(step.task) if _is_task_step(step) else None
        switch = step.switch and (mine is None or mine != current)
        mark = "*" if switch else ("+" if step.deviated else " ")
        if step.task in _LOOP:
            cell = _cell(step, home) if step.kind == FAULT_KIND else \
                (step.operation or step.kind).replace("callback ", "")
            rows.append(Row(step, mark, None, cell))
            continue
        into = owner.get(step.task, step.task)
        if into not in tasks:
            tasks.append(into)
        start = at.get(step.task) or step.start
        at[step.task] = _position(step)
        rows.append(Row(step, mark, tasks.index(into),
                        _cell(step, home, step.task != into, start)))
        if mine is not None:
            current = mine
    return Lanes(tuple(tasks), tuple(trace.label(t) for t in tasks), notes,
                 home, tuple(rows))


def swimlanes(trace: Trace, *, width: int = 18) -> str:
    """The run with one column per user-level task (library-spawned tasks folded into the
    task they serve): each cell is where that task ran in that step, at user lines."""
    drawn = lanes(trace)
    # A lane is as wide as its name (a request's label) up to twice the cell width.
    widths = [max(width, min(len(h), 2 * width)) for h in drawn.headers]
    columns = [h if len(h) <= w else h[: w - 1] + "…" for h, w in zip(drawn.headers, widths,
                                                                     strict=True)]
    others = {s.task for s in trace.steps if s.task in _LOOP}
    # Callbacks and timer firings share the last column ("loop"; "clock" when only the
    # clock appears, as under trio); without either, there is no such column.
    tail = " loop" if "loop" in others else (" clock" if others else "")
    header = "step   " + " ".join(f"{c:<{w}}" for c, w in zip(columns, widths, strict=True)
                                  ) + tail
    lines = [f"(lines in {drawn.home} unless named)" if drawn.home else "",
             *(f"({note})" for note in drawn.folded), header]
    for row in drawn.rows:
        cells = [""] * len(drawn.tasks)
        loop_cell = ""
        if row.column is None:
            loop_cell = row.cell
        else:
            cells[row.column] = row.cell
        lines.append(f"{row.step.index:>4}{row.mark}  "
                     + " ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
                     + f" {loop_cell}".rstrip())
    return "\n".join(line.rstrip() for line in lines if line)


def _function(task: str) -> str:
    """A library-spawned task's function: ``buyer#2/Conn._send#3`` -> ``Conn._send``."""
    return task.rsplit("/", 1)[-1].split("#", 1)[0]


def _where(location: Location | None, home: str) -> str:
    if location is None:
        return "?"
    if os.path.basename(location.filename) == home:
        return str(location.lineno)
    return location.short


def _cell(step: Step, home: str, folded: bool = False,
          begin: Location | None = None) -> str:
    if step.kind == FAULT_KIND:  # the fault itself, where the task reached its site
        return f"fault {step.operation}"
    if folded:  # a library-spawned task's step, drawn in the lane of the task it serves
        name = _function(step.task).rsplit(".", 1)[-1]
        return f"↳{name}" + ("→done" if step.end is None else "")
    if step.foreign:
        return f"({_where(step.end or step.start, home)})"
    start = _where(begin or step.start, home)
    if step.end is None:
        return f"{start}→{step.result or 'done'}"
    end = _where(_position(step), home)
    return start if start == end else f"{start}→{end}"
