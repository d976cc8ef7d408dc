"""Race explanation: which conflicting pairs' order decided a failure, by replaying each
pair reversed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import explorer
from examples import bank, counter
from explorer._deciding import Guided, reversed_order
from explorer._footprint import StepRecord
from explorer._happens_before import RunAnalysis
from explorer.strategies import DPOR


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance


async def _double_spend() -> None:
    """The gallery's double spend (examples/bank.py) with the account declared."""
    account = explorer.shared(Account(100), "account")

    async def withdraw(amount: int) -> None:
        if account.balance < amount:
            return
        await asyncio.sleep(0)  # the ledger write
        account.balance -= amount

    async def mobile_withdrawal(amount: int) -> None:
        await asyncio.sleep(0)  # authentication
        await withdraw(amount)

    await asyncio.gather(withdraw(80), mobile_withdrawal(80))
    assert account.balance >= 0, f"balance went negative: {account.balance}"


class Users:
    def __init__(self) -> None:
        self.count = 0


async def _lost_update() -> None:
    """The gallery's lost update (examples/counter.py), two users, the counter declared."""
    users = explorer.shared(Users(), "users")

    async def sign_in() -> None:
        current = users.count
        await asyncio.sleep(0)  # the metrics call
        users.count = current + 1

    await asyncio.gather(sign_in(), sign_in())
    assert users.count == 2, f"lost update: {users.count} active users, expected 2"


def _failure(scenario: object, *, shrink: bool = True) -> explorer.ScheduleFailure:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(scenario, strategy=DPOR(declared=True),  # type: ignore[arg-type]
                         shrink=shrink)
    return info.value


def _line(marker: str) -> str:
    """``test_races.py:N`` for the line of this file ending with ``marker``."""
    lines = Path(__file__).read_text().splitlines()
    (number,) = [n for n, line in enumerate(lines, 1) if line.rstrip().endswith(marker)]
    return f"test_races.py:{number}"


def test_double_spend_is_decided_by_the_second_check_before_the_first_debit() -> None:
    failure = _failure(_double_spend)
    # Shrunk to one switch: the ATM checked, then the phone ran ahead through its
    # authentication, its check and its debit. The ATM's check ran before the phone's
    # debit: reversed, the ATM sees the debited balance and declines.
    assert failure.switches == 1
    assert [c.describe() for c in failure.deciding] == [
        f"withdraw#1 (from {_line('def withdraw(amount: int) -> None:')} to "
        f"{_line('# the ledger write')}) reads account.balance, then mobile_withdrawal#1 "
        f"(from {_line('# the ledger write')}) writes account.balance"]
    assert failure.deciding[0].reversed == "passes"
    text = str(failure)
    assert text.index("Why:") < text.index("Decided by (run the other way round") < \
        text.index("Also conflicting") < text.index("Swimlanes")
    assert "writes account.balance; reversed, the run passes" in text


def test_lost_update_is_decided_by_a_read_before_the_other_write() -> None:
    failure = _failure(_lost_update)
    deciding = failure.deciding
    assert len(deciding) == 1
    (pair,) = deciding
    assert pair.first_access == "reads users.count"
    assert pair.second_access == "writes users.count"
    assert pair.first.task != pair.second.task
    assert pair.reversed == "passes"
    # The two writes conflict too, but their order does not matter: both lose the update.
    others = [c for c in failure.conflicts if not c.decides]
    assert [(c.first_access, c.second_access) for c in others] == [
        ("writes users.count", "writes users.count")]
    assert others[0].reversed == "fails the same way"
    assert "Also conflicting (reversed, it still fails the same way):" in str(failure)


def test_a_three_way_lost_update_has_no_single_deciding_pair() -> None:
    async def three_users() -> None:
        users = explorer.shared(Users(), "users")

        async def sign_in() -> None:
            current = users.count
            await asyncio.sleep(0)
            users.count = current + 1

        await asyncio.gather(*(sign_in() for _ in range(3)))
        assert users.count == 3

    # The stock schedule, unshrunk: all three read before any writes, so undoing one
    # read-before-write, or moving one task's write earlier, still loses an update.
    failure = _failure(three_users, shrink=False)
    assert failure.deciding == []
    assert failure.conflicts
    assert all(c.decides is False for c in failure.conflicts)
    assert "Decided by: no single pair" in str(failure)


def test_undeclared_races_are_named_by_their_steps_when_they_decide() -> None:
    # The gallery's own lost update, in the default (conservative) mode: what the tasks
    # touch is not recorded, but reversing their steps shows which order mattered.
    result = explorer.explore(counter.lost_update, strategy="dpor", deviation_bound=2,
                              raise_on_failure=False)
    failure = result.failure
    assert failure is not None
    assert failure.deciding
    for pair in failure.deciding:
        assert pair.first_access is None
        assert "(what their code touches is not declared)" in pair.describe()
        assert pair.reversed == "passes"
        assert {pair.first.task, pair.second.task} <= {
            "staggered#1", "staggered#2", "staggered#3"}


def test_the_gallery_double_spend_names_a_deciding_pair() -> None:
    result = explorer.explore(bank.double_spend, strategy="dpor", deviation_bound=2,
                              raise_on_failure=False)
    assert result.failure is not None
    assert result.failure.deciding
    assert "Decided by (run the other way round" in str(result.failure)


def test_the_json_form_lists_deciding_pairs_and_every_verdict() -> None:
    failure = _failure(_lost_update)
    data = failure.to_json()
    assert data["deciding"] == [c.describe() for c in failure.deciding]
    assert len(data["conflicts"]) == len(data["races"]) == 2
    assert {r["decides"] for r in data["races"]} == {True, False}
    assert {r["reversed"] for r in data["races"]} == {"passes", "fails the same way"}


def test_explanations_are_deterministic() -> None:
    first, second = _failure(_double_spend), _failure(_double_spend)
    assert [c.to_json() for c in first.conflicts] == [c.to_json() for c in second.conflicts]


def _records(*steps: tuple[str, list[tuple[int, object, str]], int | None, int | None]
             ) -> list[StepRecord]:
    return [StepRecord(p, set(fp), enabler, point) for p, fp, enabler, point in steps]


def test_the_reversed_order_moves_the_later_step_and_what_it_needs() -> None:
    x, y = (1, "x", "w"), (1, "y", "w")
    steps = _records(
        ("a", [x], None, 0),  # 0: races with 3
        ("b", [y], None, 1),  # 1: independent of 0: moves along
        ("c", [x], 0, None),  # 2: scheduled by 0: stays after it
        ("b", [x], 1, 2),     # 3
    )
    analysis = RunAnalysis(steps)
    assert (0, 3) not in analysis.races  # 2 orders them: (0, 2) (2, 3) are the races
    assert (2, 3) in analysis.races
    assert reversed_order(analysis, 2, 3) == ["a", "b", "b", "c"]
    assert reversed_order(RunAnalysis([*steps[:2], steps[3]._replace(enabler=1)]),
                          0, 2) == ["b", "b", "a"]


class _View:
    def __init__(self, processes: list[str], recorded: list[tuple[str, set[object]]]) -> None:
        self.processes = processes
        self.recorded = recorded

    def process(self, index: int) -> str:
        return self.processes[index]

    def recorded_steps(self) -> list[tuple[str, set[object]]]:
        return self.recorded


def test_the_guided_chooser_follows_the_order_and_strikes_out_what_ran() -> None:
    chooser = Guided(["b", "a", "b", "a"])
    recorded: list[tuple[str, set[object]]] = []
    view = _View(["a", "b"], recorded)
    assert chooser(2, view) == 1  # b first
    recorded.append(("b", set()))
    assert chooser(2, view) == 0  # then a
    recorded.append(("a", set()))
    recorded.append(("b", set()))  # a step that ran with no choice
    view.processes = ["c", "a"]
    assert chooser(2, view) == 1  # a is next; c is not in the order at all
