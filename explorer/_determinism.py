"""The determinism contract, checked at run time.

A schedule is replayed traced, twice; both replays must make the same decisions, take the
same number of steps and end the same way as the run being checked, and their traces must
have the same hash. Any difference is a ``nondeterminism`` outcome that shows the first
step where the runs parted.
"""

from __future__ import annotations

from collections.abc import Callable

from explorer import _outcome as oc
from explorer._errors import ReplayDivergence
from explorer._outcome import Outcome
from explorer._runtime import RunRecord
from explorer._trace import Trace

Replay = Callable[[], RunRecord]

# The code did not change between these runs, so the advice for drifted code (a tolerant
# replay) would hide the problem: say what makes a run nondeterministic, and how to look.
_ADVICE = (
    "The same schedule must give the same run; this scenario depends on something the "
    "schedule does not control. Usual causes:\n"
    "  - unseeded randomness (random, uuid4, secrets): use a random.Random(seed) created "
    "inside the scenario;\n"
    "  - wall-clock reads (time.time(), datetime.now(), time.monotonic()): use the loop's "
    "clock (loop.time(), trio.current_time()), which is virtual;\n"
    "  - iteration over a set, or a dict built from one, of objects hashed by address "
    "(default __hash__, id()), whose order changes from run to run (of strings: from "
    "process to process, unless PYTHONHASHSEED is set): sort by a stable key;\n"
    "  - state kept between runs in module globals, class attributes, caches "
    "(functools.cache) or fixtures shared by the schedules: create it inside the scenario, "
    "or reset it at its start;\n"
    "  - threads or real I/O that finish in their own time.\n"
    "To see which step differed, replay the schedule twice (explorer.replay, or 'explorer "
    "replay TARGET SCHEDULE') and compare the two traces step by step; tolerant replay "
    "(strict=False, --tolerant) is for code that changed since a schedule was saved and "
    "does not help here.")


def same_run(a: RunRecord, b: RunRecord) -> bool:
    return (a.decisions == b.decisions and a.stats.steps == b.stats.steps
            and a.outcome.signature() == b.outcome.signature())


def first_difference(a: Trace, b: Trace) -> str:
    """Where two traces of the same schedule part, in words."""
    for left, right in zip(a.steps, b.steps, strict=False):
        if left.to_json() != right.to_json():
            return (f"first difference at step {left.index}:\n"
                    f"  first run:  {left.describe().strip()}\n"
                    f"  second run: {right.describe().strip()}")
    if len(a) != len(b):
        longer, which = (a, "first") if len(a) > len(b) else (b, "second")
        extra = longer.steps[min(len(a), len(b))]
        return (f"the runs agree for {min(len(a), len(b))} steps, then only the {which} "
                f"run continues: {extra.describe().strip()}")
    return "the traces are identical; the outcomes differ"


def _nondeterministic(message: str, location: object, details: dict[str, object]) -> Outcome:
    return Outcome(oc.NONDETERMINISM, f"{message}\n{_ADVICE}", location,  # type: ignore[arg-type]
                   details=details)


def _summary(record: RunRecord) -> str:
    return (f"{record.outcome.kind} after {record.stats.steps} steps and "
            f"{len(record.decisions)} decisions")


def verify(record: RunRecord, replay: Replay) -> tuple[RunRecord | None, Outcome | None]:
    """Replay ``record``'s schedule traced twice; return (a traced replay, None) when all
    agree, else (the replay if any, a nondeterminism outcome)."""
    replays: list[RunRecord] = []
    for attempt in ("first", "second"):
        try:
            replays.append(replay())
        except ReplayDivergence as err:
            return (replays[0] if replays else None), _nondeterministic(
                f"the same schedule did not fit the {attempt} traced replay of the same "
                f"code: {err.reason}",
                record.outcome.location, {"point": err.point, "expected": err.expected,
                                          "available": err.available})
    first, second = replays
    one, two = first.traced(), second.traced()  # the replays are traced
    if not same_run(record, first):
        # The run being checked was not traced; the two replays were: where they part is
        # the one step that can be shown, and their agreement is a clue in itself.
        where = (first_difference(one, two)
                 if one.hash() != two.hash() else
                 "the two traced replays agree with each other, so an earlier run left "
                 "something behind that changed the later ones (look for state kept "
                 "between runs first)")
        return first, _nondeterministic(
            f"the same schedule gave different results when replayed: the run ended "
            f"{_summary(record)}, its replay {_summary(first)}; {where}",
            record.outcome.location,
            {"first": record.outcome.to_json(), "second": first.outcome.to_json()})
    if one.hash() != two.hash():
        return first, _nondeterministic(
            f"two traced replays of the same schedule differ; "
            f"{first_difference(one, two)}",
            record.outcome.location,
            {"first_hash": one.hash(), "second_hash": two.hash()})
    return first, None
