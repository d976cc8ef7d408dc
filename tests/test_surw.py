"""SURW as published: the spawn tree in the estimates, the weighting of interesting events,
reproducibility from the seed.

The weighting is checked on a small fake runtime (tasks as scripts of steps, a fake
:class:`~explorer._runtime.PointView`) so that the probabilities can be computed by hand.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import explorer
from benchmarks.sctbench import by_name
from explorer._locations import Location
from explorer._runtime import Candidate, PointView
from explorer.strategies import SURW, RandomWalk, Strategy
from explorer.strategies._surw import parent_of, subtree_estimates


@dataclass(frozen=True)
class Step:
    kind: str  # "start" or "step" (resuming from a bare yield)
    line: int
    creates: str | None = None


def _worker(line: int) -> list[Step]:
    return [Step("start", line), Step("step", line + 1), Step("step", line + 2)]


# main creates three workers one by one (a scheduling point after each creation) and
# has no interesting step of its own; each worker has two interesting steps.
SCRIPTS: dict[str, list[Step]] = {
    "main": [Step("start", 1, "main/w#1"), Step("step", 2, "main/w#2"),
             Step("step", 3, "main/w#3")],
    "main/w#1": _worker(10),
    "main/w#2": _worker(10),
    "main/w#3": _worker(10),
}


class FakeView:
    """The candidates of one scheduling point of the fake runtime."""

    def __init__(self, ready: list[str], position: dict[str, int], current: str | None):
        self._ready, self._position, self._current = ready, position, current

    def candidate(self, index: int) -> Candidate:
        task = self._ready[index]
        step = SCRIPTS[task][self._position[task]]
        return Candidate(task, step.kind, Location("fake.py", step.line, task))

    def candidates(self, count: int) -> list[Candidate]:
        return [self.candidate(i) for i in range(count)]

    def process(self, index: int) -> str:
        return self._ready[index]

    def processes(self, count: int) -> list[str]:
        return self._ready[:count]

    def recorded_steps(self) -> None:
        return None

    def current(self) -> str | None:
        return self._current

    def current_call(self) -> None:
        return None


def run_once(strategy: Strategy) -> list[tuple[str, int]]:
    """One run of the fake program: like the controlled runtimes, ask the strategy only
    where two candidates or more are ready. Returns the steps in the order they ran."""
    assert strategy.start_run()
    ready, position, current = ["main"], {"main": 0}, None
    ran: list[tuple[str, int]] = []
    decisions: list[int] = []
    while ready:
        index = 0
        if len(ready) > 1:
            index = strategy.choose(len(ready), FakeView(ready, position, current))
            decisions.append(index)
        task = ready.pop(index)
        step = SCRIPTS[task][position[task]]
        position[task] += 1
        ran.append((task, step.line))
        current = task
        if step.creates is not None:
            ready.append(step.creates)
            position[step.creates] = 0
        if position[task] < len(SCRIPTS[task]):
            ready.append(task)
    strategy.end_run(decisions, False)
    return ran


def first_interesting(ran: Sequence[tuple[str, int]]) -> str:
    return next(task for task, line in ran if line == 11)


def test_parent_and_subtree_estimates_follow_task_ids() -> None:
    assert parent_of("main/worker#3/fetch#1") == "main/worker#3"
    assert parent_of("main") is None
    counts = {"main": 1, "main/a#1": 2, "main/a#1/b#1": 3, "main/c#1": 4}
    assert subtree_estimates(counts) == {"main": 10, "main/a#1": 5, "main/a#1/b#1": 3,
                                         "main/c#1": 4}


def test_the_creator_carries_the_events_of_the_tasks_it_will_create() -> None:
    surw = SURW(seed=3)
    for _ in range(30):
        run_once(surw)
    # main's own steps all create a task: they are not interesting events.
    assert surw.estimates() == {"main": 6, "main/w#1": 2, "main/w#2": 2, "main/w#3": 2}


def test_interesting_events_are_drawn_in_proportion_to_events_left() -> None:
    # With main weighing its future workers, the three workers' interesting events are
    # interleaved uniformly: the last-created worker makes the first one with probability
    # 1/3 (its share of the events). A random walk lets the early workers run ahead.
    def share_of_last_worker(strategy: Strategy, runs: int) -> float:
        run_once(strategy)  # SURW: the profiling run
        firsts = [first_interesting(run_once(strategy)) for _ in range(runs)]
        return firsts.count("main/w#3") / runs

    surw = share_of_last_worker(SURW(seed=11), 3000)
    walk = share_of_last_worker(RandomWalk(seed=11), 3000)
    assert abs(surw - 1 / 3) < 0.03, surw
    assert walk < 0.2, walk


def test_profiling_run_is_a_uniform_random_walk() -> None:
    surw = SURW(seed=1)
    first = run_once(surw)
    rng = random.Random(1)
    ready, position, expected = ["main"], {"main": 0}, []
    while ready:
        index = rng.randrange(len(ready)) if len(ready) > 1 else 0
        task = ready.pop(index)
        step = SCRIPTS[task][position[task]]
        position[task] += 1
        expected.append((task, step.line))
        if step.creates is not None:
            ready.append(step.creates)
            position[step.creates] = 0
        if position[task] < len(SCRIPTS[task]):
            ready.append(task)
    assert first == expected


def test_surw_is_reproducible_from_its_seed() -> None:
    def runs(seed: int) -> list[list[tuple[str, int]]]:
        surw = SURW(seed=seed)
        return [run_once(surw) for _ in range(12)]

    assert runs(7) == runs(7)
    assert runs(7) != runs(8)


def test_surw_finds_the_c_shaped_reorder_bug_the_same_way_for_a_seed() -> None:
    def search(seed: int) -> tuple[int, str]:
        result = explorer.explore(by_name("reorder_c_10+10").buggy, strategy="surw",
                                  seed=seed, max_schedules=200, raise_on_failure=False,
                                  shrink=False)
        assert result.failure is not None
        assert result.failure.strategy["name"] == "surw"
        return result.failure.found_after, str(result.failure.schedule)

    assert search(0) == search(0)


class _ByProposals(SURW):
    """SURW deciding every point by repeated proposals, never in one pass: no shortcut
    by draw (:meth:`SURW._draw_step`, :meth:`SURW._draw_next`), no one-pass walk, nothing
    carried from one point to the next (:meth:`SURW._walk_pending`)."""

    def _draw_step(self, ids: Sequence[str], cands: Sequence[Candidate],
                   judged: list[bool] | None = None) -> int:
        return -1

    def _draw_next(self, cands: Sequence[Candidate], kept: int) -> int:
        return -1

    def _walk_pending(self, cands: Sequence[Candidate], kept: int, view: PointView) -> int:
        return -1

    def _walk(self, count: int, ids: Sequence[str], view: PointView) -> int:
        return self._walk_any(count, ids, view)

    def _walk_first(self, ids: Sequence[str], cands: Sequence[Candidate],
                    view: PointView) -> int:
        return self._walk_any(len(ids), ids, view)


def _decisions(strategy: SURW, scenario: Callable[[], Awaitable[None]]) -> list[tuple[int, ...]]:
    runs: list[tuple[int, ...]] = []
    end_run = strategy.end_run

    def record(decisions: Sequence[int], failed: bool) -> None:
        runs.append(tuple(decisions))
        end_run(decisions, failed)

    strategy.end_run = record  # type: ignore[method-assign]
    explorer.explore(scenario, strategy=strategy, max_schedules=25, raise_on_failure=False,
                     shrink=False)
    return runs


def test_the_one_pass_walk_decides_as_the_proposals_do() -> None:
    # The one-pass walk is a shortcut for the common point where every candidate is a
    # task's step: it must make the same decisions with the same random draws.
    scenarios = [by_name("reorder_c_9+1").buggy, by_name("twostage_c_10+10").buggy,
                 by_name("twostage_20").buggy, by_name("account").buggy, _kitchen]
    for scenario in scenarios:
        for seed in range(3):
            assert _decisions(SURW(seed=seed), scenario) == \
                _decisions(_ByProposals(seed=seed), scenario)


async def _kitchen() -> None:
    """Cooks of different stamina gathered at once, each taking and putting back a shared
    tally in several yields: points of many task steps (the shortcut by draw, points
    after points), of tasks' first steps (not interesting), and of gather's callbacks
    queued as cooks finish (candidates of no task, drawing afresh at each proposal)."""
    tally = {"dishes": 0}

    async def cook(rounds: int) -> None:
        for _ in range(rounds):
            seen = tally["dishes"]
            await asyncio.sleep(0)
            tally["dishes"] = seen + 1
            await asyncio.sleep(0)

    await asyncio.gather(*(cook(rounds) for rounds in (1, 4, 2, 6, 3, 5, 2, 4)))


def test_the_draws_skip_tasks_with_no_events_left_at_the_very_top_of_the_draw() -> None:
    # The target's draw reads every candidate's events left in C and searches the sums
    # with the used up ones among them; a draw that lands on the total (the upper bound
    # of the search) must still pick a task with events left, as the draw among those
    # alone does. random() never returns 1.0; a fake stream does, to reach that case.
    class Top(random.Random):
        def random(self) -> float:
            return 1.0

    surw = SURW(seed=0)
    surw._rng = Top()
    surw._left = {"main/a#1": 2, "main/b#1": 3, "main/c#1": 0}
    ids = ["main/a#1", "loop", "main/b#1", "main/c#1"]
    assert surw._draw_target([0, 1, 2, 3], ids) == "main/b#1"
    assert surw._draw_target([0, 1, 3], ids) == "main/a#1"
    surw._rng = random.Random(5)
    drawn = [surw._draw_target([0, 1, 2, 3], ids) for _ in range(400)]
    assert set(drawn) == {"main/a#1", "main/b#1"}
    assert 0.3 < drawn.count("main/a#1") / len(drawn) < 0.5  # 2 of 5


class _Queue:
    """A fake runtime's ready queue that the strategy does not always see change one
    step at a time: between points, steps run undecided (from the head, as the fair
    runtimes force, or from the middle), and a new step may be queued at the head, or
    a plain callback (no task) at the end."""

    def __init__(self, turns: random.Random) -> None:
        self.turns = turns
        self.ready: list[Candidate] = []
        self.now: str | None = None

    def candidates(self, count: int) -> list[Candidate]:
        return self.ready[:count]

    def candidate(self, index: int) -> Candidate:
        return self.ready[index]

    def processes(self, count: int) -> list[str]:
        return [c.task or "loop" for c in self.ready[:count]]

    def process(self, index: int) -> str:
        return self.ready[index].task or "loop"

    def recorded_steps(self) -> None:
        return None

    def current(self) -> str | None:
        return self.now

    def current_call(self) -> None:
        return None


def _perturbed_runs(strategy: SURW, seed: int) -> list[list[int]]:
    turns = random.Random(seed)
    queue = _Queue(turns)
    clerks = [f"main/clerk#{k}" for k in range(1, 7)]
    runs = []
    for _ in range(15):
        assert strategy.start_run()
        left = {clerk: turns.randint(2, 6) for clerk in clerks}
        queue.ready = [Candidate(clerk, "start", Location("bank.py", 1, "clerk"))
                       for clerk in clerks]
        decisions: list[int] = []
        while queue.ready:
            count = len(queue.ready)
            if count > 1 and turns.random() < 0.85:
                index = strategy.choose(count, queue)
                decisions.append(index)
            else:  # undecided: the head, or a step the strategy never saw go
                index = 0 if turns.random() < 0.5 else turns.randrange(count)
            ran = queue.ready.pop(index)
            if ran.task is None:
                continue
            queue.now = ran.task
            left[ran.task] -= 1
            if left[ran.task] > 0:
                step = Candidate(ran.task, "step", Location("bank.py", 2 + left[ran.task] % 2,
                                                            "clerk"), "sleep")
                at = 0 if turns.random() < 0.1 else len(queue.ready)
                queue.ready.insert(at, step)
            elif turns.random() < 0.5:
                queue.ready.append(Candidate(None, "callback", None, "_done_callback"))
        strategy.end_run(decisions, False)
        runs.append(decisions)
    return runs


class _Carried(SURW):
    """SURW counting the points it decides from what the walk's last decision left of its
    point (:meth:`SURW._walk_pending`), by whether a target was pending."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.carried: Counter[str] = Counter()

    def _walk_pending(self, cands: Sequence[Candidate], kept: int, view: PointView) -> int:
        state = "free" if self._target is None else "pending"
        index = super()._walk_pending(cands, kept, view)
        if index >= 0:
            self.carried[state] += 1
        return index


def test_the_shortcuts_decide_as_the_proposals_do_when_the_queue_changes_unseen() -> None:
    # The shortcut by draw, and the walk carrying a point over to the next (a target
    # pending or not), reuse what they read at the last point when the point starts with
    # the same candidates; steps that run undecided, or are queued at the head, must send
    # them back to the full path with the same decisions.
    carried: Counter[str] = Counter()
    for seed in range(40):
        surw = _Carried(seed)
        assert _perturbed_runs(surw, seed) == _perturbed_runs(_ByProposals(seed=seed), seed)
        carried.update(surw.carried)
    assert carried["free"] > 0 and carried["pending"] > 0  # both reached
