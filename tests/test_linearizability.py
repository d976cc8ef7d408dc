"""Linearizability checking: generated scenarios, the checker, shrinking, replay, corpus."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explorer
from explorer import (
    LinScenario,
    ScheduleFailure,
    UsageError,
    check_linearizable,
    linearizability_scenarios,
    operation,
    replay_linearizability,
)
from explorer._explain import explain
from explorer._linearize._checker import Event, PrefixResults, check
from explorer._linearize._model import Call, as_operations, generate

# --------------------------------------------------------------------------- objects


class TallyRacy:
    """bump() reads, awaits, writes: two bumps can both read the same value."""

    def __init__(self) -> None:
        self.value = 0

    async def bump(self) -> int:
        seen = self.value
        await asyncio.sleep(0)
        self.value = seen + 1
        return self.value


class TallyFixed(TallyRacy):
    def __init__(self) -> None:
        super().__init__()
        self.lock = asyncio.Lock()

    async def bump(self) -> int:
        async with self.lock:
            return await super().bump()


async def bump(t: TallyRacy) -> int:
    return await t.bump()


async def peek(t: TallyRacy) -> int:
    return t.value


class Empty(Exception):
    pass


class PurseRacy:
    """spend() checks the funds, awaits an audit, then debits; raises when short."""

    def __init__(self) -> None:
        self.funds = 6

    async def spend(self, amount: int) -> int:
        if self.funds < amount:
            raise Empty(f"only {self.funds} left")
        await asyncio.sleep(0)
        self.funds -= amount
        return self.funds


class PurseFixed(PurseRacy):
    def __init__(self) -> None:
        super().__init__()
        self.lock = asyncio.Lock()

    async def spend(self, amount: int) -> int:
        async with self.lock:
            return await super().spend(amount)


async def spend(p: PurseRacy, amount: int) -> int:
    return await p.spend(amount)


PURSE_OPS = [operation(spend, st.integers(4, 5))]
TALLY_OPS = [bump, peek]


# --------------------------------------------------------------------------- finding


def test_a_racy_tally_is_not_linearizable_and_replays() -> None:
    result = check_linearizable(TallyRacy, TALLY_OPS, seed=3, raise_on_failure=False)
    assert not result and result.failure is not None
    failure = result.failure
    assert failure.kind == "not_linearizable"
    details = failure.details
    assert details is failure.outcome.details
    assert {"scenario", "history", "closest"} <= set(details)
    assert "explorer.replay_linearizability(TallyRacy, operations, failure" in str(failure)
    assert [c["op"] for t in details["scenario"]["tasks"] for c in t] == ["bump", "bump"]
    assert [h["result"] for h in details["history"]] == ["1", "1"]
    assert details["closest"] and all(c["first_mismatch"] == 1 for c in details["closest"])
    again = replay_linearizability(TallyRacy, TALLY_OPS, failure)
    assert again is not None and again.kind == "not_linearizable"
    assert again.outcome.details["history"] == details["history"]
    # The fixed object passes the replay of the same schedule and scenario.
    assert replay_linearizability(TallyFixed, TALLY_OPS, failure) is None


def test_the_failure_is_located_at_the_operation_whose_result_no_order_explains() -> None:
    result = check_linearizable(TallyRacy, TALLY_OPS, seed=3, raise_on_failure=False)
    assert result.failure is not None
    where = result.failure.outcome.location
    assert where is not None and where.filename == __file__
    assert where.lineno == bump.__code__.co_firstlineno


class Ledger:
    """Entries keyed by their "ref"; an entry is accepted once."""

    def __init__(self) -> None:
        self.refs: set[str] = set()

    async def post(self, entry: dict[str, Any]) -> bool:
        if entry["ref"] in self.refs:
            return False
        await asyncio.sleep(0)  # the check and the insert straddle an await
        self.refs.add(entry["ref"])
        return True


async def post(ledger: Ledger, entry: dict[str, Any]) -> bool:
    return await ledger.post(entry)


def test_arguments_drawn_as_dictionaries_by_composite_strategies() -> None:
    # fixed_dictionaries needs Hypothesis's build context, and a dict argument makes the
    # scenario unhashable: both must work outside @given.
    entries = st.fixed_dictionaries({"ref": st.sampled_from(["a"]),
                                     "amount": st.integers(1, 3)})
    ops = [operation(post, entries)]
    scenarios = generate(as_operations(ops), 5, 4, tasks=2, ops_per_task=1, prefix=0,
                         suffix=0)
    assert scenarios and all(isinstance(c.args[0], dict) for sc in scenarios
                             for t in sc.tasks for c in t)
    assert scenarios == generate(as_operations(ops), 5, 4, tasks=2, ops_per_task=1,
                                 prefix=0, suffix=0)
    result = check_linearizable(Ledger, ops, seed=1, max_scenarios=4, ops_per_task=1,
                                raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "not_linearizable"


def test_the_fixed_tally_passes_with_honest_coverage() -> None:
    result = check_linearizable(TallyFixed, TALLY_OPS, seed=3, max_scenarios=6,
                                schedules_per_scenario=20)
    assert result.ok and result.failure is None and bool(result)
    assert result.scenarios == 6 and result.schedules >= 6
    assert result.histories >= 6 and result.sequential_runs >= 6
    assert "6 scenarios of 2 task(s) x 2 call(s)" in result.coverage
    assert "Not covered" in result.coverage


def test_max_time_bounds_the_whole_check_and_coverage_says_so() -> None:
    result = check_linearizable(TallyFixed, TALLY_OPS, seed=3, max_time=0.0)
    assert result.ok and result.scenarios == 0
    assert "max_time ran out after 0 of" in result.coverage


class Vault:
    """Two locks taken in opposite orders: each operation alone returns, two deadlock."""

    def __init__(self) -> None:
        self.left, self.right = asyncio.Lock(), asyncio.Lock()

    async def both(self, first: asyncio.Lock, second: asyncio.Lock) -> str:
        async with first:
            await asyncio.sleep(0)
            async with second:
                return "moved"


async def left_right(v: Vault) -> str:
    return await v.both(v.left, v.right)


async def right_left(v: Vault) -> str:
    return await v.both(v.right, v.left)


def test_another_failure_found_on_the_way_is_reported_as_it_is() -> None:
    result = check_linearizable(Vault, [left_right, right_left], ops_per_task=1, seed=2,
                                raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "deadlock"
    assert not result.ok


def test_raise_on_failure_raises_the_schedule_failure() -> None:
    with pytest.raises(ScheduleFailure) as info:
        check_linearizable(TallyRacy, TALLY_OPS, seed=3)
    assert info.value.kind == "not_linearizable"
    assert "not linearizable" in str(info.value)


def test_exceptions_are_compared_by_type_and_message() -> None:
    result = check_linearizable(PurseRacy, PURSE_OPS, seed=1, raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "not_linearizable"
    # Sequentially the second spend must raise Empty; both succeeded concurrently.
    closest = result.failure.outcome.details["closest"][0]
    assert any(r.startswith("raised Empty(") for r in closest["results"])
    fixed = check_linearizable(PurseFixed, PURSE_OPS, seed=1, max_scenarios=8)
    assert fixed.ok


def test_the_scenario_is_shrunk_to_the_fewest_calls() -> None:
    result = check_linearizable(TallyRacy, TALLY_OPS, tasks=3, ops_per_task=3, prefix=1,
                                seed=5, raise_on_failure=False)
    assert result.failure is not None and result.scenario is not None
    shrunk = result.scenario
    assert shrunk.prefix == () and shrunk.suffix == ()
    assert [len(t) for t in shrunk.tasks] == [1, 1]
    assert result.failure.outcome.details["scenario"] == shrunk.to_json()
    assert result.failure.shrink is not None  # the schedule was shrunk too


def test_the_same_seed_gives_the_same_scenarios_and_result() -> None:
    ops = as_operations(PURSE_OPS + TALLY_OPS[:0])
    assert generate(ops, 9, 5, tasks=2, ops_per_task=2, prefix=1, suffix=1) == \
        generate(ops, 9, 5, tasks=2, ops_per_task=2, prefix=1, suffix=1)
    first = check_linearizable(PurseRacy, PURSE_OPS, seed=4, raise_on_failure=False)
    second = check_linearizable(PurseRacy, PURSE_OPS, seed=4, raise_on_failure=False)
    assert first.failure is not None and second.failure is not None
    assert str(first.failure.schedule) == str(second.failure.schedule)
    assert first.failure.outcome.details == second.failure.outcome.details
    assert (first.scenarios, first.schedules, first.histories) == \
        (second.scenarios, second.schedules, second.histories)


# --------------------------------------------------------------------------- the checker


def _events(*rows: tuple[int, int | None, Any, int, int]) -> list[Event]:
    return [Event(i, task, ("ok", value), start, end) for i, task, value, start, end in rows]


def _tally_orders(order: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """Sequential results of calls 0 and 1 = bump, 2 = peek on a fresh tally."""
    value, out = 0, []
    for index in order:
        if index in (0, 1):
            value += 1
        out.append(("ok", value))
    return out


def test_real_time_order_is_respected() -> None:
    # peek (call 2) ended before bump (call 0) started, yet saw 1: only the order
    # bump, peek explains it, and real time forbids it.
    history = _events((2, 1, 1, 1, 2), (0, 0, 1, 3, 4))
    assert check(history, PrefixResults(_tally_orders)).ok is False
    overlapping = _events((2, 1, 1, 1, 4), (0, 0, 1, 2, 3))
    verdict = check(overlapping, PrefixResults(_tally_orders))
    assert verdict.ok is True and verdict.order == [0, 2]


def test_prefix_results_are_memoised_and_frozen_means_unknown() -> None:
    runs: list[tuple[int, ...]] = []

    def execute(order: tuple[int, ...]) -> list[tuple[Any, ...]]:
        runs.append(order)
        return _tally_orders(order)

    results = PrefixResults(execute)
    history = _events((0, 0, 1, 1, 4), (1, 1, 2, 2, 3))
    assert check(history, results).ok is True
    assert check(history, results).ok is True
    assert runs == [(0,), (0, 1)] and results.runs == 2  # the second check ran none
    results.frozen = True
    other = _events((1, 1, 1, 1, 2), (0, 0, 2, 3, 4))
    assert check(other, results).ok is None  # (1,) was never executed


# --------------------------------------------------------------------------- model, normalize


class Names:
    """register(name) answers whether the name was new and an id; racy across an await."""

    ids = itertools.count(1000)

    def __init__(self) -> None:
        self.names: set[str] = set()

    async def register(self, name: str) -> dict[str, Any]:
        new = name not in self.names
        await asyncio.sleep(0)
        self.names.add(name)
        return {"new": new, "id": next(self.ids)}


async def register(n: Names, name: str) -> dict[str, Any]:
    return await n.register(name)


class NamesModel:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def register(self, name: str) -> dict[str, Any]:
        new = name not in self.names
        self.names.add(name)
        return {"new": new, "id": 0}


def _no_id(op: str, result: Any) -> Any:
    return {k: v for k, v in result.items() if k != "id"} if op == "register" else result


NAME_OPS = [operation(register, st.sampled_from(["ann", "bob"]))]


def test_normalize_hides_generated_ids_and_the_race_is_still_found() -> None:
    # Without normalize, ids drawn from a process-wide counter never match a sequential run.
    result = check_linearizable(Names, NAME_OPS, seed=2, normalize=_no_id,
                                raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "not_linearizable"
    assert all("'id'" not in h["result"] for h in result.failure.outcome.details["history"])


def test_a_model_is_the_sequential_specification() -> None:
    result = check_linearizable(Names, NAME_OPS, seed=2, normalize=_no_id, model=NamesModel,
                                raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "not_linearizable"

    class Lenient(NamesModel):  # a specification that allows two "new" answers
        def register(self, name: str) -> dict[str, Any]:
            return {"new": True, "id": 0}

    class AlwaysNew(Names):
        async def register(self, name: str) -> dict[str, Any]:
            await asyncio.sleep(0)
            return {"new": True, "id": 1}

    assert check_linearizable(AlwaysNew, NAME_OPS, seed=2, normalize=_no_id, model=Lenient,
                              max_scenarios=5).ok


# --------------------------------------------------------------------------- corpus


def test_a_failure_is_saved_with_its_scenario_and_replayed_from_the_corpus(
        tmp_path: Path) -> None:
    result = check_linearizable(TallyRacy, TALLY_OPS, seed=3, corpus=tmp_path,
                                raise_on_failure=False)
    assert result.failure is not None
    entries = list(explorer.Corpus(tmp_path).entries())
    assert len(entries) == 1
    entry = entries[0]
    assert entry.kind == "not_linearizable"
    saved = json.loads(entry.path.read_text())
    assert saved["linearizability"]["scenario"] == result.failure.outcome.details["scenario"]
    again = replay_linearizability(TallyRacy, TALLY_OPS, entry)
    assert again is not None and again.kind == "not_linearizable"
    assert replay_linearizability(TallyFixed, TALLY_OPS, entry) is None
    # The failure's JSON replays the same way.
    from_json = replay_linearizability(TallyRacy, TALLY_OPS, result.failure.to_json())
    assert from_json is not None and from_json.kind == "not_linearizable"


def test_a_scenario_naming_an_unknown_operation_is_refused() -> None:
    data = {"prefix": [], "tasks": [[{"op": "os.system", "args": ["rm"]}]], "suffix": []}
    with pytest.raises(UsageError, match=r"'os\.system', which is not among the operations"):
        LinScenario.from_json(data, as_operations(TALLY_OPS))
    wrong_arity = {"tasks": [[{"op": "bump", "args": [1]}]]}
    with pytest.raises(UsageError, match="bump has 1 arguments, but the operation takes 0"):
        LinScenario.from_json(wrong_arity, as_operations(TALLY_OPS))


# --------------------------------------------------------------------------- a real library


class Gate:
    """A ticket counter guarded (or not) by an anyio lock around an anyio checkpoint."""

    def __init__(self, locked: bool) -> None:
        self.lock = anyio.Lock() if locked else None
        self.sold = 0

    async def sell(self) -> str:
        if self.lock is not None:
            async with self.lock:
                return await self._sell()
        return await self._sell()

    async def _sell(self) -> str:
        if self.sold >= 1:
            return "sold out"
        await anyio.sleep(0)
        self.sold += 1
        return f"ticket {self.sold}"


async def sell(g: Gate) -> str:
    return await g.sell()


def test_an_anyio_object_is_checked_on_both_runtimes() -> None:
    racy = check_linearizable(lambda: Gate(False), [sell], seed=1, raise_on_failure=False)
    assert racy.failure is not None and racy.failure.kind == "not_linearizable"
    assert check_linearizable(lambda: Gate(True), [sell], seed=1, max_scenarios=3).ok
    on_trio = check_linearizable(lambda: Gate(False), [sell], seed=1, runtime="trio",
                                 raise_on_failure=False)
    assert on_trio.failure is not None and on_trio.failure.kind == "not_linearizable"


# --------------------------------------------------------------------------- Hypothesis


@settings(max_examples=4, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(linearizability_scenarios(PURSE_OPS, tasks=2, ops_per_task=1, prefix=1))
def test_scenarios_drawn_by_hypothesis_are_checked(scenario: LinScenario) -> None:
    assert len(scenario.prefix) == 1 and [len(t) for t in scenario.tasks] == [1, 1]
    assert all(c.op == "spend" and c.args[0] in (4, 5) for _, c in scenario.calls())
    result = check_linearizable(PurseFixed, PURSE_OPS, scenarios=[scenario],
                                schedules_per_scenario=10)
    assert result.ok and result.scenarios == 1


# --------------------------------------------------------------------------- bad input


def test_a_sync_operation_is_refused() -> None:
    def grab(t: TallyRacy) -> int:
        return t.value

    with pytest.raises(UsageError, match="'grab' is not an async function"):
        check_linearizable(TallyRacy, [grab])


def test_a_factory_that_raises_is_reported() -> None:
    def broken() -> TallyRacy:
        raise OSError("no database")

    with pytest.raises(UsageError, match=r"factory .*broken raised OSError: no database"):
        check_linearizable(broken, TALLY_OPS, max_scenarios=1)


def test_an_operation_that_never_returns_is_reported() -> None:
    async def wait_forever(t: TallyRacy) -> None:
        await asyncio.Event().wait()

    with pytest.raises(UsageError, match=r"did not complete at wait_forever\(\): it ended "
                                         r"as deadlock"):
        check_linearizable(TallyRacy, [wait_forever], max_scenarios=1)


def test_calling_inside_a_running_loop_is_refused() -> None:
    async def inside() -> None:
        check_linearizable(TallyRacy, TALLY_OPS)

    with pytest.raises(UsageError, match="inside a running event loop"):
        asyncio.run(inside())


def test_a_call_prints_as_its_operation_and_arguments() -> None:
    assert str(Call("spend", (4,))) == "spend(4)"


# --------------------------------------------------------------------------- the story


class Seats:
    """reserve() checks the seats left, awaits a payment hold, then takes them."""

    def __init__(self) -> None:
        self.left = 5

    async def reserve(self, n: int) -> bool:
        if self.left < n:
            return False
        await anyio.sleep(0)
        self.left -= n
        return True


async def reserve(s: Seats, n: int) -> bool:
    return await s.reserve(n)


RESERVE_OPS = [operation(reserve, st.sampled_from([2, 3]))]


def _story_failure(runtime: str) -> ScheduleFailure:
    scenario = LinScenario((), ((Call("reserve", (3,)), Call("reserve", (2,))),
                                (Call("reserve", (3,)),)), ())
    result = check_linearizable(Seats, RESERVE_OPS, scenarios=[scenario],
                                shrink_scenario=False, runtime=runtime,
                                raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "not_linearizable"
    return result.failure


@pytest.mark.parametrize("runtime", ["asyncio", "trio"])
def test_the_story_names_tasks_by_their_calls_at_the_users_lines(runtime: str) -> None:
    failure = _story_failure(runtime)
    text = str(failure)
    # Tasks are named by their calls, in the swimlanes and in the explanation.
    assert set(failure.trace.labels.values()) >= {"task 0: reserve(3), reserve(2)",
                                                  "task 1: reserve(3)"}
    why = explain(failure.trace)
    assert why and all("caller" not in item for item in why)
    assert any("task 1: reserve(3)" in item or "task 0: reserve(3), reserve(2)" in item
               for item in why)
    # The check's own frames (its callers, its scenario, the runtime under them) never
    # stand for a position: a caller's first step starts at the user's operation.
    assert "_runner.py" not in text and "caller#" not in text and "_traps.py" not in text
    defined = (__file__, reserve.__code__.co_firstlineno)
    firsts = {}
    for step in failure.trace.steps:
        if step.task.startswith("caller") and step.task not in firsts:
            firsts[step.task] = step
    assert len(firsts) == 2
    for step in firsts.values():
        assert step.start is not None
        assert (step.start.filename, step.start.lineno) == defined
    # The scenario's own task stands at the line that asked for the check.
    mains = [s for s in failure.trace.steps if s.task == "main" and s.end is not None]
    assert mains and all(s.end.filename == __file__ for s in mains if s.end is not None)


def test_the_message_names_the_closest_order_and_where_it_first_differs() -> None:
    failure = _story_failure("asyncio")
    text = str(failure)
    assert "Closest one-at-a-time order: " in text
    assert "one at a time, task " in text and " would return False, but it returned True" \
        in text
    closest = failure.details["closest"][0]
    assert closest["results"][closest["first_mismatch"]] == "False"
    # An exception the one-at-a-time order would raise is said as such.
    purse = check_linearizable(PurseRacy, PURSE_OPS, seed=0, raise_on_failure=False)
    assert purse.failure is not None
    assert "would have raised Empty('only 1 left'), but it returned -4" in str(purse.failure)


def test_the_story_labels_replays_and_corpus_entries_alike(tmp_path: Path) -> None:
    failure = _story_failure("asyncio")
    again = replay_linearizability(Seats, RESERVE_OPS, failure)
    assert again is not None
    assert again.trace.labels == failure.trace.labels
    result = check_linearizable(Seats, RESERVE_OPS, seed=1, corpus=tmp_path,
                                raise_on_failure=False)
    assert result.failure is not None and result.failure.corpus_path is not None
    assert "task 0: reserve(" in str(result.failure)
    assert len(list(explorer.Corpus(tmp_path).entries())) == 1


# --------------------------------------------------------------------------- the cost


def test_search_and_shrinking_are_counted_apart_and_an_early_violation_is_cheap() -> None:
    # Before the budgets were laddered, the failing scenario alone ran its whole budget
    # (200 here) before the shrinking explored each smaller scenario to its budget too.
    result = check_linearizable(Seats, RESERVE_OPS, seed=1, schedules_per_scenario=200,
                                raise_on_failure=False)
    assert result.failure is not None and result.scenario is not None
    assert result.schedules == result.search_schedules + result.shrink_runs
    assert 0 < result.search_schedules <= 10  # met within the first, small budget
    assert 0 < result.shrink_runs < 200
    assert result.schedules < 200
    assert f"{result.search_schedules} schedules searched, then {result.shrink_runs} runs " \
        "shrinking" in result.coverage
    # 1-minimal: no task or call fewer violates (two reservations of 2 both fit: the
    # violation needs the 3 after one of them).
    assert result.scenario == LinScenario(
        (), ((Call("reserve", (2,)),), (Call("reserve", (2,)), Call("reserve", (3,)))), ())


def test_a_passing_check_counts_only_its_search() -> None:
    result = check_linearizable(TallyFixed, TALLY_OPS, seed=2, max_scenarios=3,
                                schedules_per_scenario=30)
    assert result.ok and result.shrink_runs == 0
    assert result.schedules == result.search_schedules > 0
    assert f": {result.search_schedules} schedules (" in result.coverage


def test_budgets_ladder_from_a_small_one_to_the_whole() -> None:
    from explorer._linearize._runner import _ladder

    assert _ladder(200) == [10, 200]
    assert _ladder(20) == [4, 20]
    assert _ladder(3) == [3]
    assert _ladder(5) == [1, 5]


# --------------------------------------------------------------------------- shapes drawn


@settings(max_examples=25, deadline=None, database=None)
@given(linearizability_scenarios(TALLY_OPS, tasks=3, ops_per_task=2, min_tasks=1,
                                 min_ops_per_task=1))
def test_drawn_shapes_range_from_the_minima_to_the_maxima(scenario: LinScenario) -> None:
    assert 1 <= len(scenario.tasks) <= 3
    assert all(1 <= len(task) <= 2 for task in scenario.tasks)


def test_hypothesis_shrinks_the_shape_only_when_minima_are_given() -> None:
    from hypothesis import find

    def peeks(s: LinScenario) -> bool:
        return any(c.op == "peek" for _, c in s.calls())

    quiet = settings(database=None, max_examples=200)
    ranged = find(linearizability_scenarios(TALLY_OPS, tasks=3, ops_per_task=3,
                                            min_tasks=1, min_ops_per_task=1), peeks,
                  settings=quiet)
    assert ranged == LinScenario((), ((Call("peek"),),), ())
    fixed = find(linearizability_scenarios(TALLY_OPS, tasks=3, ops_per_task=3), peeks,
                 settings=quiet)
    assert [len(t) for t in fixed.tasks] == [3, 3, 3]  # the exact shape, as before


@pytest.mark.parametrize(("keywords", "words"), [
    ({"min_tasks": 3}, r"min_tasks=3\) is more than the maximum tasks=2"),
    ({"min_ops_per_task": 0}, r"min_ops_per_task=0\): expected an integer >= 1"),
    ({"tasks": 0}, r"tasks=0\): expected an integer >= 1"),
    ({"prefix": "1"}, r"prefix='1'\): expected an integer >= 0"),
])
def test_the_drawn_shape_s_bounds_are_checked(keywords: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words):
        linearizability_scenarios(TALLY_OPS, **keywords)


# --------------------------------------------------------------------------- review fixes


async def deposit(t: TallyRacy, amount: int) -> int:
    t.value += amount
    return t.value


@pytest.mark.parametrize(("op", "words"), [
    (lambda: operation(bump, st.integers()),
     r"'bump' is given 1 argument strategy, but it cannot be called as fn\(obj, arg\) "
     r"\(too many positional arguments\); its arguments after the object: none\. .*"
     r"operation\(bump\)$"),
    (lambda: operation(deposit),
     r"'deposit' is given 0 argument strategies, .*missing a required argument: 'amount'"
     r".*operation\(deposit, <strategy of amount>\)$"),
    (lambda: as_operations([deposit]), r"'deposit' is given 0 argument strategies"),
])
def test_an_operation_whose_strategies_do_not_fit_its_parameters_is_refused(
        op: Any, words: str) -> None:
    # Unrefused, every call would raise TypeError in every run, sequential ones too: all
    # histories linearizable, a check passing having tested nothing.
    with pytest.raises(UsageError, match=words):
        op()


def test_an_operation_with_default_or_variable_parameters_is_accepted() -> None:
    async def topup(t: TallyRacy, amount: int = 1, *more: int) -> int:
        return await deposit(t, amount + sum(more))

    assert operation(topup).strategies == ()
    assert len(operation(topup, st.just(1), st.just(2)).strategies) == 2


def test_a_normalize_that_raises_is_named_as_the_mistake() -> None:
    def keep_ints(op: str, result: Any) -> Any:
        raise KeyError(op)

    with pytest.raises(UsageError, match=r"normalize\('(bump|peek)', [01]\) raised "
                                         r"KeyError: '\1'; normalize is called with every"):
        check_linearizable(TallyFixed, TALLY_OPS, normalize=keep_ints, max_scenarios=1)


TICKETS = itertools.count(1)  # shared by every object: each answers with a new number


class Dispenser:
    async def take(self) -> int:
        await asyncio.sleep(0)
        return next(TICKETS)


async def take(d: Dispenser) -> int:
    return await d.take()


def test_results_that_differ_in_the_only_order_allowed_are_called_non_deterministic(
) -> None:
    result = check_linearizable(Dispenser, [take], max_scenarios=1, raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "not_linearizable"
    message = result.failure.outcome.message
    assert "no two calls overlapped, so that order was the only one allowed" in message
    assert "randomness, the time, generated ids, state shared between objects" in message


def test_a_real_race_is_not_called_non_deterministic() -> None:
    result = check_linearizable(TallyRacy, TALLY_OPS, seed=1, raise_on_failure=False)
    assert result.failure is not None
    assert "no two calls overlapped" not in result.failure.outcome.message


def test_the_fixture_s_type_and_the_result_types_are_exported() -> None:
    from explorer._linearize._http import HttpResult
    from explorer._linearize._model import Operation
    from explorer._linearize._pytest import LinearizabilityCheck
    from explorer._linearize._runner import LinearizabilityResult

    for name, value in [("LinearizabilityCheck", LinearizabilityCheck),
                        ("LinearizabilityResult", LinearizabilityResult),
                        ("HttpResult", HttpResult), ("Operation", Operation)]:
        assert name in explorer.__all__ and name in dir(explorer)
        assert getattr(explorer, name) is value
