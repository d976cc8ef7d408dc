"""The HTML report: one self-contained file a person reads in a browser.

Invariant: every piece of text from a summary, a trace or a corpus entry goes through
:func:`html.escape` before it reaches the page, and the page needs nothing else to be read:
inline CSS, inline SVG, no script, no external asset.

The input is one or more nightly summaries (:class:`explorer._summary.Summary`, as read
back from ``summary.json``) whose ``failure_details`` hold failures as typed records
(:class:`~explorer._failure_record.FailureReport`); a deadlock's wait-for graph is drawn from
its :class:`~explorer._failure_record.WaitFor`.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from explorer._explain import lanes
from explorer._failure_record import (
    FailureRecord,
    FailureReport,
    SavedStep,
    WaitFor,
)
from explorer._summary import (
    CorpusRow,
    FailureRow,
    ScenarioRow,
    Summary,
    distinct_failures,
    merge_scenarios,
)
from explorer._targets import replay_command
from explorer._trace import Trace

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#1d2327;background:#fff}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}
h3{margin:0 0 .5em}.muted{color:#646970}
table{border-collapse:collapse;margin:.6em 0;width:100%}
th,td{border:1px solid #dcdcde;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f7f7}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.lane{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:12.5px}pre{background:#f6f7f7;padding:.6em;overflow-x:auto;white-space:pre-wrap}
.failure{border:1px solid #dcdcde;border-left:5px solid #d63638;padding:1em;margin:1.2em 0}
.status-failed,.status-fails,.status-error{color:#b32d2e;font-weight:600}
.status-passed,.status-fixed{color:#00750f;font-weight:600}
.status-diverged,.status-missing,.status-unreadable,.status-newer-format{color:#996800;
font-weight:600}
table.timeline td{white-space:nowrap}table.timeline td.step{color:#646970;text-align:right}
tr.deviation td{background:#fcf0f1}tr.deviation td.step{color:#b32d2e;font-weight:700}
td.ran{background:#e7f0fa}tr.deviation td.ran{background:#f7c9cc}
tr.switch td.step{font-weight:700}
.why li{margin:.2em 0}.cycle{color:#b32d2e;font-weight:600}
.legend{font-size:12px;color:#646970}svg text{font:12px ui-monospace,monospace}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_report(summaries: Sequence[Summary], *,
                  title: str = "Schedule exploration report") -> str:
    """One HTML page for the given summaries (usually one; several shards are merged)."""
    scenarios = merge_scenarios(row for s in summaries for row in s.scenarios)
    corpus = list({row.path: row for s in summaries for row in s.corpus}.values())
    failures, details = distinct_failures(summaries)
    errors = list(dict.fromkeys(e for s in summaries for e in s.errors))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(_headline(summaries, scenarios, corpus, failures))}</p>',
    ]
    if failures:
        parts += ["<h2>Failures</h2>", _failure_table(failures)]
    if scenarios:
        parts += ["<h2>Scenarios</h2>", _scenario_table(scenarios)]
    if corpus:
        parts += ["<h2>Corpus</h2>", _corpus_table(corpus)]
    if errors:
        parts += ["<h2>Problems</h2>", "<ul>",
                  *(f"<li>{_e(e)}</li>" for e in errors), "</ul>"]
    root = next((Path(s.root) for s in summaries if s.root), None)
    for number, (row, detail) in enumerate(zip(failures, details, strict=True), 1):
        parts.append(render_failure(detail, anchor=f"failure-{number}", command=row.command,
                                    root=root))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _headline(summaries: Sequence[Summary], scenarios: Sequence[ScenarioRow],
              corpus: Sequence[CorpusRow], failures: Sequence[FailureRow]) -> str:
    started = ", ".join(s.started for s in summaries if s.started)
    incomplete = any(not s.complete for s in summaries)
    return (f"{len(scenarios)} scenario(s), {len(corpus)} corpus entr"
            f"{'y' if len(corpus) == 1 else 'ies'}, {len(failures)} failure(s)"
            + (f"; started {started}" if started else "")
            + ("; INCOMPLETE: a run was interrupted" if incomplete else ""))


def _status(text: object) -> str:
    return f'<span class="status-{_e(text)}">{_e(text)}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(row) + "</tr>" for row in rows]
    out.append("</tbody></table>")
    return "".join(out)


def _failure_table(failures: Sequence[FailureRow]) -> str:
    return _table(
        ("#", "scenario", "kind", "at", "schedule", "found by", "corpus"),
        ([f'<td><a href="#failure-{i}">{i}</a></td>', f"<td>{_e(f.scenario)}</td>",
          f"<td>{_e(f.kind)}</td>", f"<td>{_e(f.location)}</td>",
          f"<td><code>{_e(f.schedule)}</code></td>", f"<td>{_e(f.source)}</td>",
          f"<td>{_e(f.corpus_path or '')}{' (new)' if f.new else ''}</td>"]
         for i, f in enumerate(failures, 1)))


def _scenario_table(rows: Sequence[ScenarioRow]) -> str:
    def strategies(row: ScenarioRow) -> str:
        return "<br>".join(f"<b>{_e(s.strategy)}</b>: {_e(s.coverage)}"
                           for s in row.strategies)

    return _table(
        ("target", "status", "schedules", "rate", "strategies (coverage)",
         "distinct interleavings", "failures"),
        ([f"<td>{_e(r.target)}<br><span class='muted'>{_e(r.scenario)}</span>"
          "</td>", f"<td>{_status(r.status)}</td>",
          f"<td class='num'>{r.schedules:,}</td>",
          f"<td class='num'>{r.rate:,.0f}/s</td>",
          f"<td>{strategies(r)}</td>",
          f"<td class='num'>{r.distinct:,}</td>",
          f"<td class='num'>{len(r.failures)}</td>"] for r in rows))


def _corpus_table(rows: Sequence[CorpusRow]) -> str:
    return _table(
        ("entry", "scenario", "schedule", "status", "detail"),
        ([f"<td>{_e(os.path.basename(r.path))}</td>",
          f"<td>{_e(r.scenario)}</td>", f"<td><code>{_e(r.schedule)}</code></td>",
          f"<td>{_status(r.status)}</td>", f"<td>{_e(r.detail)}</td>"]
         for r in rows))


# --------------------------------------------------------------------------- one failure


def render_failure(failure: FailureReport, *, anchor: str = "failure",
                   command: str | None = None, root: Path | None = None) -> str:
    """A failure (its record, replay line and corpus entry) as a section. ``command`` is
    the ``explorer replay`` line; without it, one is made naming the test by its node id
    under the project ``root`` (see :func:`explorer._targets.replay_command`)."""
    record = failure.record
    outcome = record.outcome
    line = command or replay_command(record.scenario, str(record.schedule), record.runtime,
                                     root=root)
    where = f" at {outcome.location.short}" if outcome.location else ""
    parts = [f'<section class="failure" id="{_e(anchor)}">',
             f"<h3>{_e(record.scenario)}: {_e(outcome.kind)}{_e(where)}</h3>",
             f"<p>{_e(_found(record))}</p>",
             f"<pre>{_e(_story(failure))}</pre>"]
    why = record.explanation
    if why:
        parts += ["<h4>Why: what ran out of turn to make it fail</h4>",
                  '<ol class="why">', *(f"<li>{_e(line)}</li>" for line in why), "</ol>"]
    graph = outcome.wait_for
    if outcome.kind == "deadlock" and graph is not None:
        parts += ["<h4>Wait-for graph</h4>", wait_for_svg(graph), wait_for_table(graph)]
    trace = record.steps
    if trace:
        parts += ["<h4>Timeline (one lane per task, library tasks folded into the task they "
                  "serve; highlighted rows are deviations from the stock order)</h4>",
                  timeline(trace, labels=record.labels)]
    parts += [
        "<table>",
        f"<tr><th>Schedule</th><td><code>{_e(record.schedule)}</code></td></tr>",
        f"<tr><th>Replay</th><td><code>{_e(failure.replay)}</code></td></tr>",
        f"<tr><th>Command line</th><td><code>{_e(line)}</code></td></tr>",
        *([f"<tr><th>Corpus</th><td>{_e(failure.corpus_path)}</td></tr>"]
          if failure.corpus_path else []),
        "</table></section>",
    ]
    return "\n".join(parts)


def _story(failure: FailureReport) -> str:
    """The outcome's message; for a failure without a trace (one pytest found, whose
    trace stayed in pytest's process), the whole story pytest printed."""
    record = failure.record
    if failure.message and record.trace is None:
        return failure.message
    return record.outcome.message


def _found(record: FailureRecord) -> str:
    strategy = record.strategy
    text = (f"Found after {record.found_after} schedule(s) of "
            f"{strategy.get('name', '?')} search")
    if strategy.get("seed") is not None:
        text += f" (seed {strategy['seed']})"
    text += f"; {record.deviations} deviation(s) from the stock schedule"
    shrink = record.shrink
    if shrink:
        text += (f"; shrunk from {shrink.original_deviations} deviation(s)"
                 + (", proven minimal" if shrink.proven_minimal else ""))
    return text + "."


def timeline(steps: Sequence[SavedStep], *, labels: Mapping[str, str] | None = None,
             limit: int = 600) -> str:
    """The run as a table: a row per step, a lane (column) per user-level task named by
    its label, plus the loop; the same lanes and attribution as the text swimlanes
    (:func:`explorer._explain.lanes`)."""
    drawn = lanes(Trace([s.step() for s in steps], dict(labels or {})))
    rows = drawn.rows
    shown = list(rows) if len(rows) <= limit else [*rows[: limit // 2], *rows[-limit // 2:]]
    head = ["step", *drawn.headers, "loop"]
    legend = (f"Lines are in {_e(drawn.home)} unless named; " if drawn.home else "") + (
        "a cell shows where the task ran from and to in its code, and what it waits on "
        "next; * marks a switch (the task that ran last could have continued), "
        "highlighted rows are deviations from the stock order.")
    out = [f'<p class="legend">{legend}</p>',
           *(f'<p class="legend">{_e(note)}</p>' for note in drawn.folded),
           '<table class="timeline lane"><thead><tr>',
           *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    previous = None
    for row in shown:
        step = row.step
        if previous is not None and step.index != previous + 1:
            out.append(f'<tr><td colspan="{len(head)}" class="muted">… '
                       f"{step.index - previous - 1} steps elided …</td></tr>")
        previous = step.index
        decision = step.decision
        mark = (f"{step.index}{'*' if row.mark == '*' else ''}"
                + (f" [{decision[0]}/{decision[1]}]" if decision else ""))
        cells = [""] * len(drawn.tasks)
        loop = ""
        if row.column is None:
            loop = _e(row.cell)
        else:
            waits = " ".join(str(x) for x in (step.operation, step.resource) if x)
            cells[row.column] = _e(f"{row.cell} {waits}".strip() if not step.foreign
                                   else row.cell)
        row_class = ' class="deviation"' if step.deviated else \
            ' class="switch"' if row.mark == "*" else ""
        out.append(f"<tr{row_class}><td class='step'>{_e(mark)}</td>"
                   + "".join(f"<td class='ran'>{c}</td>" if c else "<td></td>" for c in cells)
                   + f"<td>{loop}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def cycle_edges(graph: WaitFor) -> set[tuple[str, str]]:
    """The edges on the wait-for cycle: task -> resource it waits on -> task holding it."""
    cycle = graph.cycle
    pairs = {(e.source, e.target) for e in graph.edges}
    hot: set[tuple[str, str]] = set()
    for i, task in enumerate(cycle):
        after = cycle[(i + 1) % len(cycle)]
        if (task, after) in pairs:
            hot.add((task, after))
        for a, b in pairs:
            if a == task and (b, after) in pairs:
                hot |= {(a, b), (b, after)}
    return hot


def wait_for_table(graph: WaitFor) -> str:
    hot = cycle_edges(graph)
    rows = []
    for edge in graph.edges:
        mark = " class=cycle" if (edge.source, edge.target) in hot else ""
        rows.append([f"<td{mark}>{_e(edge.source)}</td>", f"<td{mark}>{_e(edge.label)}</td>",
                     f"<td{mark}>{_e(edge.target)}</td>"])
    caption = ("cycle: " + " → ".join(graph.cycle) if graph.cycle else
               "no cycle: " + ", ".join(graph.lost_wakeups) +
               " wait(s) for something nothing will do (lost wake-up)")
    return f"<p>{_e(caption)}</p>" + _table(("from", "relation", "to"), rows)


def wait_for_svg(graph: WaitFor) -> str:
    """The wait-for graph drawn as inline SVG: nodes on a circle, labelled arrows."""
    edges = [(e.source, e.target, e.label) for e in graph.edges]
    hot_edges = cycle_edges(graph)
    nodes = list(dict.fromkeys(n for a, b, _ in edges for n in (a, b)))
    cycle = set(graph.cycle)
    count = max(len(nodes), 1)
    radius = 60 + 28 * count
    width = 2 * radius + 260
    height = 2 * radius + 60
    cx, cy = width / 2, height / 2
    pos = {n: (cx + radius * math.cos(2 * math.pi * i / count - math.pi / 2),
               cy + radius * math.sin(2 * math.pi * i / count - math.pi / 2))
           for i, n in enumerate(nodes)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
           'aria-label="wait-for graph">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
           'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
           '<path d="M0,0 L10,5 L0,10 z" fill="#50575e"/></marker></defs>']
    for a, b, label in edges:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        dx, dy = x2 - x1, y2 - y1
        length = math.hypot(dx, dy) or 1.0
        shrink = 14 / length
        sx, sy = x1 + dx * shrink, y1 + dy * shrink
        ex, ey = x2 - dx * shrink, y2 - dy * shrink
        color = "#d63638" if (a, b) in hot_edges else "#50575e"
        out.append(f'<line x1="{sx:.1f}" y1="{sy:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" '
                   f'stroke="{color}" stroke-width="1.5" marker-end="url(#arrow)"/>')
        out.append(f'<text x="{(sx + ex) / 2:.1f}" y="{(sy + ey) / 2 - 4:.1f}" '
                   f'text-anchor="middle" fill="#646970">{_e(label)}</text>')
    tasks = {w.task for w in graph.waits if w.task is not None} | cycle
    for name, (x, y) in pos.items():
        fill = "#f7c9cc" if name in cycle else ("#e7f0fa" if name in tasks else "#f6f7f7")
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="12" fill="{fill}" '
                   'stroke="#50575e"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 27:.1f}" text-anchor="middle">'
                   f"{_e(name)}</text>")
    out.append("</svg>")
    return "".join(out)
