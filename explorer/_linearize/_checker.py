"""Is one observed history linearizable? The Wing-Gong / Lowe search.

A history is one run's calls, each with its result and the positions of its start and end
on the run's event counter. It is linearizable when some sequential order of the same calls
(1) keeps each task's order and the real-time order (a call that ended before another
started comes first) and (2) gives, executed one at a time on a fresh object, the results
observed. The search extends an order one call at a time (any call whose real-time
predecessors are all placed), asks the sequential result of that prefix, and backtracks at
the first mismatch. Sequential results come from a :class:`PrefixResults` trie: a prefix
is executed once per scenario, however many histories and orders need it.

This module runs nothing itself: the caller gives a function that executes an order of
calls on a fresh object and returns their results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# An observed or sequential result: ("ok", value) or ("raised", "Type", "message").
Result = tuple[Any, ...]


def same(a: Result, b: Result) -> bool:
    """Results compare by value (==) or by exception type and message."""
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - an == that raises compares unequal rather than failing the check
        return False


def show(result: Result) -> str:
    if result[0] == "ok":
        return repr(result[1])
    return f"raised {result[1]}({result[2]!r})" if result[2] else f"raised {result[1]}"


@dataclass(frozen=True)
class Event:
    """One call of a history: its index in the scenario, task, result and its start and
    end positions on the run's event counter."""

    index: int
    task: int | None
    result: Result
    start: int
    end: int


class PrefixResults:
    """Sequential results of call orders, memoised in a trie of order prefixes.

    ``execute(order)`` runs the calls of ``order`` one at a time on a fresh object and
    returns their results; each result is stored at its prefix, so a later order that
    shares a prefix executes nothing for it. With ``frozen`` set nothing is executed:
    an order not stored yet is unknown (None)."""

    def __init__(self, execute: Callable[[tuple[int, ...]], list[Result]]) -> None:
        self._execute = execute
        self._trie: dict[tuple[int, ...], Result] = {}
        self.runs = 0
        self.frozen = False

    def result(self, order: tuple[int, ...]) -> Result | None:
        """The result of the last call of ``order`` run after the calls before it."""
        found = self._trie.get(order)
        if found is not None or self.frozen:
            return found
        results = self._execute(order)
        self.runs += 1
        for n in range(1, len(order) + 1):
            self._trie[order[:n]] = results[n - 1]
        return self._trie[order]


@dataclass
class Closest:
    """A sequential order that explained the longest prefix of the history."""

    order: list[int]
    results: list[str]
    first_mismatch: int

    def to_json(self) -> dict[str, object]:
        return {"order": list(self.order), "results": list(self.results),
                "first_mismatch": self.first_mismatch}


@dataclass
class Verdict:
    """``ok`` True (an order found: ``order``), False (none exists) or None (unknown:
    some order needs a sequential result not executed, with a frozen trie)."""

    ok: bool | None
    order: list[int] = field(default_factory=list)
    closest: list[Closest] = field(default_factory=list)


def check(history: Sequence[Event], results: PrefixResults,
          limit_closest: int = 3) -> Verdict:
    """Search an order of ``history`` that sequential execution explains."""
    events = sorted(history, key=lambda e: e.start)
    by_index = {e.index: e for e in events}
    # Real-time order: every event that ended before this one started must come first.
    preds = {e.index: frozenset(p.index for p in events if p.end < e.start) for e in events}
    best: list[Closest] = []
    unknown = False
    placed: list[int] = []
    done: set[int] = set()

    def note(order: list[int], mismatch: Result | None) -> None:
        shown = [show(results.result(tuple(order[:n + 1])) or ("ok", "?"))
                 for n in range(len(order))]
        entry = Closest(list(order), shown, len(order) - 1 if mismatch is not None else
                        len(order))
        best.append(entry)
        best.sort(key=lambda c: -c.first_mismatch)
        del best[limit_closest:]

    def search() -> bool:
        nonlocal unknown
        if len(placed) == len(events):
            return True
        for e in events:
            if e.index in done or not preds[e.index] <= done:
                continue
            order = (*placed, e.index)
            got = results.result(order)
            if got is None:
                unknown = True
                continue
            if not same(got, by_index[e.index].result):
                if len(order) >= (best[-1].first_mismatch + 1 if len(best) >= limit_closest
                                  else 0):
                    note(list(order), got)
                continue
            placed.append(e.index)
            done.add(e.index)
            if search():
                return True
            placed.pop()
            done.discard(e.index)
        return False

    if search():
        return Verdict(True, list(placed))
    return Verdict(None if unknown else False, [], best)
