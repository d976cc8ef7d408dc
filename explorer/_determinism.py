"""The determinism contract, checked at run time.

A replay of the schedule must make the same decisions, take the same number of steps, end
the same way and have the same fingerprint (the candidate counts at every point and the
tasks created: :attr:`~explorer._runtime.RunStats.fingerprint`) as the run being checked.
A failing run is replayed traced, twice, since its trace is reported, and the two traces
must also have the same hash. A passing run is checked untraced (a traced run costs
several times an untraced one, and most checks find nothing), by replays that hash every
step (``RunMode(hashed=True)``): one replay when the run was hashed itself, whose step hash
must equal the run's, else two that must agree. Only when they differ are traced replays
made, to show the first step where the runs parted. Any difference is a
``nondeterminism`` outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from explorer import _outcome as oc
from explorer._errors import ReplayDivergence
from explorer._outcome import Outcome
from explorer._runtime import RunRecord

if TYPE_CHECKING:  # traces are compared only after a traced replay, which loads the module
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
    # A fingerprint of 0 was not computed (a run neither hashed nor traced): not compared.
    fingerprints = a.stats.fingerprint, b.stats.fingerprint
    return (a.decisions == b.decisions and a.stats.steps == b.stats.steps
            and (0 in fingerprints or fingerprints[0] == fingerprints[1])
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


def verify(record: RunRecord, replay: Replay,
           untraced: Replay | None = None) -> tuple[RunRecord | None, Outcome | None]:
    """Replay ``record``'s schedule traced twice; return (a traced replay, None) when all
    agree, else (the replay if any, a nondeterminism outcome).

    With ``untraced`` (the same replay, untraced and hashed: ``RunMode(hashed=True)``),
    the two replays are untraced: when they agree with ``record`` and their step hashes
    with each other, the result is (None, None) and nothing was traced; otherwise the
    traced replays are made as above to explain the difference. A runtime that does not
    hash its steps gets the traced replays."""
    quick = _agrees_untraced(record, untraced) if untraced is not None else _UNHASHED
    if quick is None:
        return None, None
    if quick is not _UNHASHED:
        # A difference that comes and goes may miss one pair of traced replays: a few
        # pairs are tried (only here, once nondeterminism is certain) to show the step.
        for _ in range(_EXPLAIN_ATTEMPTS):
            traced, problem = verify(record, replay)
            if problem is not None:
                break
        if problem is None:  # the traced replays agreed: report what the quick ones saw
            return traced, _nondeterministic(
                f"the same schedule gave different results when replayed untraced: "
                f"{quick}; two traced replays then agreed with the run, so the difference "
                f"comes and goes from run to run",
                record.outcome.location, {"first": record.outcome.to_json()})
        return traced, problem
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


_UNHASHED: Final = "the runtime does not hash its steps"
_EXPLAIN_ATTEMPTS: Final = 3  # pairs of traced replays made to show a difference


def _agrees_untraced(record: RunRecord, untraced: Replay) -> str | None:
    """None when untraced, hashed replays of ``record``'s schedule agree with it and their
    step hashes with its own (one replay) or, when ``record`` was not hashed, with each
    other (two replays); else what differed, in words (the traced replays then show
    where), or :data:`_UNHASHED`."""
    hashed = record.stats.step_hash is not None
    replays: list[RunRecord] = []
    for attempt in ("first",) if hashed else ("first", "second"):
        try:
            replays.append(untraced())
        except ReplayDivergence as err:
            return f"the schedule did not fit the {attempt} replay: {err.reason}"
        if replays[-1].stats.step_hash is None:
            return _UNHASHED
    for attempt, replayed in zip(("first", "second"), replays, strict=False):
        if not same_run(record, replayed):
            if _summary(record) == _summary(replayed):
                return (f"the run and its {attempt} replay both ended {_summary(record)}, "
                        "but with different numbers of candidates at their scheduling "
                        "points or different tasks created")
            return (f"the run ended {_summary(record)}, its {attempt} replay "
                    f"{_summary(replayed)}")
    if len({run.stats.step_hash for run in [record, *replays] if hashed or run is not record}) > 1:
        return ("the runs ended alike but ran a step differently (another task, or a task "
                "stopped at another line)")
    return None
