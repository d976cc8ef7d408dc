"""Operations and generated scenarios of a linearizability check, as data.

An :class:`Operation` is an async callable ``fn(obj, *args)`` with one Hypothesis strategy
per extra argument. A :class:`LinScenario` is what one check runs: a sequential prefix,
the calls of each concurrent task, a sequential suffix; each :class:`Call` names its
operation and holds its arguments as JSON data, so that a scenario can be saved in a
corpus entry and read back without importing or calling anything from the file.

Scenarios are generated deterministically from a seed: the shape (which operation each
call runs) from a :class:`random.Random`, the arguments from the operations' Hypothesis
strategies drawn through a ``ConjectureData`` fed by a seeded :class:`random.Random`.
That is Hypothesis's own drawing machinery without its search: no database, no health
checks, no shrinking, and the same values for the same seed (``strategy.example()`` is
random and warns, so it is never used).
"""

from __future__ import annotations

import inspect
import json
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from explorer._errors import UsageError
from explorer._locations import Location, caller_location

JsonValue = Any  # JSON data: None, bool, int, float, str, lists and string-keyed objects


@dataclass(frozen=True)
class Operation:
    """One operation of the object under test: ``fn(obj, *args)``, awaited. ``declared``
    is the user's line that declared it (where a story places a call of an operation
    whose function is not the user's own, such as an HTTP request)."""

    fn: Callable[..., Any]
    strategies: tuple[st.SearchStrategy[Any], ...]
    name: str
    declared: Location | None = field(default=None, compare=False)


def operation(fn: Callable[..., Any], *strategies: st.SearchStrategy[Any],
              name: str | None = None) -> Operation:
    """Declare an operation: ``fn(obj, *args)`` with one Hypothesis strategy per argument."""
    if isinstance(fn, Operation):
        raise UsageError(f"operation() got an Operation ({fn.name!r}) instead of a function; "
                         "pass the async function itself: operation(fn, *strategies)")
    if not callable(fn):
        raise UsageError(f"operation() needs an async function fn(obj, *args), got "
                         f"{type(fn).__name__} {fn!r}; pass the function itself")
    if not inspect.iscoroutinefunction(fn):
        raise UsageError(
            f"operation {getattr(fn, '__name__', fn)!r} is not an async function (got "
            f"{type(fn).__name__}); operations are awaited on the object under test: "
            "write it as `async def op(obj, ...)`, or wrap a sync call in one")
    for s in strategies:
        if not isinstance(s, st.SearchStrategy):
            raise UsageError(
                f"operation {getattr(fn, '__name__', fn)!r}: argument strategy {s!r} "
                f"({type(s).__name__}) is not a Hypothesis strategy; pass one per argument, "
                "for example operation(deposit, st.integers(1, 5))")
    _check_arity(fn, len(strategies))
    return Operation(fn, tuple(strategies), name or str(getattr(fn, "__name__", repr(fn))),
                     caller_location(2))


def _check_arity(fn: Callable[..., Any], count: int) -> None:
    """Refuse an operation whose function cannot take the object and ``count`` drawn
    arguments: every call would raise TypeError, in the concurrent runs and the sequential
    ones alike, so every history would be linearizable and the check would pass having
    tested nothing."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (a C callable): trust it
        return
    try:
        signature.bind(None, *range(count))
    except TypeError as exc:
        params = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][1:]
        wanted = ", ".join(p.name for p in params) or "none"
        raise UsageError(
            f"operation {getattr(fn, '__name__', fn)!r} is given {count} argument "
            f"strateg{'y' if count == 1 else 'ies'}, but it cannot be called as "
            f"fn(obj{', arg' * count}) ({exc}); its arguments after "
            f"the object: {wanted}. Pass one Hypothesis strategy per argument: "
            f"operation({getattr(fn, '__name__', 'fn')}"
            f"{''.join(f', <strategy of {p.name}>' for p in params)})") from None


def as_operations(operations: Iterable[Operation | Callable[..., Any]]
                  ) -> tuple[Operation, ...]:
    """``operations`` as :class:`Operation`s (a bare async function takes no arguments);
    a :class:`UsageError` for an empty list or two operations of one name."""
    ops = tuple(op if isinstance(op, Operation) else operation(op) for op in operations)
    if not ops:
        raise UsageError("check_linearizable() got no operations; pass a list of async "
                         "functions fn(obj, ...) or explorer.operation(fn, *strategies)")
    names = [op.name for op in ops]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"two operations are named {dupes[0]!r}; give them distinct "
                         "names: explorer.operation(fn, name='...')")
    return ops


@dataclass(frozen=True)
class Call:
    """One call of a scenario: the operation's name and its arguments (JSON data)."""

    op: str
    args: tuple[JsonValue, ...] = ()

    def to_json(self) -> dict[str, JsonValue]:
        return {"op": self.op, "args": list(self.args)}

    def __str__(self) -> str:
        return f"{self.op}({', '.join(map(repr, self.args))})"


@dataclass(frozen=True)
class LinScenario:
    """A generated scenario: ``prefix`` calls, then ``tasks`` running concurrently (each
    its calls in order), then ``suffix`` calls."""

    prefix: tuple[Call, ...]
    tasks: tuple[tuple[Call, ...], ...]
    suffix: tuple[Call, ...]

    def calls(self) -> list[tuple[int | None, Call]]:
        """Every call in index order with its task (None for the prefix and suffix)."""
        out: list[tuple[int | None, Call]] = [(None, c) for c in self.prefix]
        for i, task in enumerate(self.tasks):
            out.extend((i, c) for c in task)
        out.extend((None, c) for c in self.suffix)
        return out

    @property
    def size(self) -> int:
        return len(self.prefix) + sum(map(len, self.tasks)) + len(self.suffix)

    def to_json(self) -> dict[str, JsonValue]:
        return {"prefix": [c.to_json() for c in self.prefix],
                "tasks": [[c.to_json() for c in t] for t in self.tasks],
                "suffix": [c.to_json() for c in self.suffix]}

    def __str__(self) -> str:
        parts = [f"prefix [{', '.join(map(str, self.prefix))}]"] if self.prefix else []
        parts += [f"task {i}: [{', '.join(map(str, t))}]" for i, t in enumerate(self.tasks)]
        if self.suffix:
            parts.append(f"suffix [{', '.join(map(str, self.suffix))}]")
        return "; ".join(parts)

    @classmethod
    def from_json(cls, data: object, operations: Sequence[Operation]) -> LinScenario:
        """Read a scenario back from JSON data (a failure's details, a corpus entry):
        checked against ``operations`` by name and arity; nothing in it is called."""
        known = {op.name: op for op in operations}

        def calls(value: object, where: str) -> tuple[Call, ...]:
            if not isinstance(value, list):
                raise UsageError(f"scenario {where} is {type(value).__name__}, not a list of "
                                 'calls {"op": name, "args": [...]}')
            out = []
            for item in value:
                if not (isinstance(item, dict) and isinstance(item.get("op"), str)
                        and isinstance(item.get("args", []), list)):
                    raise UsageError(f"scenario {where}: {item!r} is not a call "
                                     '{"op": name, "args": [...]}')
                op = known.get(item["op"])
                if op is None:
                    raise UsageError(
                        f"scenario {where} calls {item['op']!r}, which is not among the "
                        f"operations given ({', '.join(sorted(known))}); pass the same "
                        "operations the failure was found with")
                args = tuple(item.get("args", []))
                if len(args) != len(op.strategies):
                    raise UsageError(
                        f"scenario {where}: {op.name} has {len(args)} arguments, but the "
                        f"operation takes {len(op.strategies)}; pass the same operations "
                        "the failure was found with")
                json.dumps(args)  # JSON data only: a TypeError for anything else
                out.append(Call(op.name, args))
            return tuple(out)

        if not isinstance(data, Mapping):
            raise UsageError(f"a scenario is a JSON object with prefix, tasks and suffix, "
                             f"got {type(data).__name__}")
        tasks = data.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise UsageError(f"scenario tasks are {tasks!r}; expected a non-empty list of "
                             "lists of calls")
        return cls(calls(data.get("prefix", []), "prefix"),
                   tuple(calls(t, f"task {i}") for i, t in enumerate(tasks)),
                   calls(data.get("suffix", []), "suffix"))


def _drawer(seed: int) -> Callable[[st.SearchStrategy[Any]], Any]:
    """Draw values from strategies deterministically: a ``ConjectureData`` whose choices
    come from ``random.Random(seed)``, with no prefix (so nothing is replayed)."""
    from hypothesis.control import BuildContext
    from hypothesis.internal.conjecture.data import ConjectureData

    data = ConjectureData(random=random.Random(seed), prefix=None)
    # Strategies such as fixed_dictionaries, builds and composite ones look up the build
    # context @given normally sets up; outside @given there is none, so one is made here
    # (wrapped_test, which only names the test in Hypothesis's output, exists from 6.1xx).
    context: dict[str, Any] = {"is_final": False}
    if "wrapped_test" in inspect.signature(BuildContext).parameters:
        context["wrapped_test"] = draw_call

    def draw(strategy: st.SearchStrategy[Any]) -> Any:
        with BuildContext(data, **context):
            return data.draw(strategy)

    return draw


def _jsonable(op: Operation, value: Any) -> JsonValue:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"operation {op.name!r} drew the argument {value!r} ({type(value).__name__}), "
            "which is not JSON data; scenarios are saved and replayed as JSON, so draw "
            "arguments as ints, floats, strings, booleans, None, lists or dicts "
            "(st.integers(), st.text(), st.sampled_from([...]))") from exc


def draw_call(op: Operation, draw: Callable[[st.SearchStrategy[Any]], Any]) -> Call:
    return Call(op.name, tuple(_jsonable(op, draw(s)) for s in op.strategies))


def generate(operations: Sequence[Operation], seed: int, count: int, *, tasks: int,
             ops_per_task: int, prefix: int, suffix: int) -> list[LinScenario]:
    """``count`` distinct scenarios (fewer when there are not that many), the same ones for
    the same seed: the shape from one RNG, each scenario's arguments from its own."""
    rng = random.Random(seed)
    out: list[LinScenario] = []
    seen: set[str] = set()  # by canonical JSON: arguments may be dicts (request bodies)
    attempts = 0
    while len(out) < count and attempts < count * 10:
        attempts += 1
        draw = _drawer(rng.getrandbits(64))

        def calls(n: int, draw: Callable[[st.SearchStrategy[Any]], Any] = draw
                  ) -> tuple[Call, ...]:
            return tuple(draw_call(rng.choice(operations), draw) for _ in range(n))

        scenario = LinScenario(calls(prefix), tuple(calls(ops_per_task) for _ in range(tasks)),
                               calls(suffix))
        key = json.dumps(scenario.to_json(), sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(scenario)
    return out


def scenarios_strategy(operations: Iterable[Operation | Callable[..., Any]], *,
                       tasks: int = 2, ops_per_task: int = 2, prefix: int = 0,
                       suffix: int = 0, min_tasks: int | None = None,
                       min_ops_per_task: int | None = None
                       ) -> st.SearchStrategy[LinScenario]:
    """A Hypothesis strategy of :class:`LinScenario` for ``@given``: each call's
    operation sampled from ``operations``, its arguments from the operation's strategies
    (Hypothesis shrinks them as usual).

    The shape is exactly ``tasks`` x ``ops_per_task`` unless ``min_tasks`` or
    ``min_ops_per_task`` is given: then each scenario has ``min_tasks`` to ``tasks`` tasks,
    each of ``min_ops_per_task`` to ``ops_per_task`` calls (drawn as lists, so Hypothesis
    shrinks the shape too: a task or a call fewer at a time)."""
    ops = as_operations(operations)
    low_tasks = tasks if min_tasks is None else min_tasks
    low_ops = ops_per_task if min_ops_per_task is None else min_ops_per_task
    for what, value, low in (("tasks", tasks, 1), ("ops_per_task", ops_per_task, 1),
                             ("prefix", prefix, 0), ("suffix", suffix, 0),
                             ("min_tasks", low_tasks, 1),
                             ("min_ops_per_task", low_ops, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UsageError(f"linearizability_scenarios({what}={value!r}): expected an "
                             f"integer >= {low}")
    for what, value, high in (("min_tasks", low_tasks, tasks),
                              ("min_ops_per_task", low_ops, ops_per_task)):
        if value > high:
            raise UsageError(f"linearizability_scenarios({what}={value}) is more than the "
                             f"maximum {what[4:]}={high}; give {what} <= {what[4:]}")

    @st.composite
    def one_call(draw: st.DrawFn) -> Call:
        return draw_call(draw(st.sampled_from(ops)), draw)

    @st.composite
    def scenarios(draw: st.DrawFn) -> LinScenario:
        def calls(n: int) -> tuple[Call, ...]:
            return tuple(draw_call(draw(st.sampled_from(ops)), draw) for _ in range(n))

        before = calls(prefix)  # drawn in scenario order: prefix, tasks, suffix
        if (low_tasks, low_ops) == (tasks, ops_per_task):  # the fixed shape, drawn as ever
            drawn = tuple(calls(ops_per_task) for _ in range(tasks))
        else:
            task = st.lists(one_call(), min_size=low_ops, max_size=ops_per_task).map(tuple)
            drawn = tuple(draw(st.lists(task, min_size=low_tasks, max_size=tasks)))
        return LinScenario(before, drawn, calls(suffix))

    return scenarios()
