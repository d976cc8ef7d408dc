"""The bytecode data-flow analysis of automatic footprints, on small functions.

``explorer._monitoring._dataflow.analyse`` is pure: a code object in, a plan out (which
instructions read or write attributes, items, globals and closure variables, which are
calls and awaits, and where each operand comes from). The opcodes it models are those of
CPython 3.12 and later, so these tests skip on 3.11.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from typing import Any

import pytest

from explorer._monitoring._dataflow import CodePlan, SitePlan, analyse, unknown_plan
from explorer._monitoring._state import STATE

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="the analysis models the bytecode of Python 3.12 and later (sys.monitoring)")

COUNTER = 0


class Box:
    value = 0


def plan_of(function: Callable[..., Any]) -> CodePlan:
    code = function.__code__
    assert isinstance(code, types.CodeType)
    return analyse(code)


def sites(function: Callable[..., Any]) -> list[SitePlan]:
    """The sites in instruction order."""
    plan = plan_of(function)
    return [plan.sites[offset] for offset in sorted(plan.sites)]


def summary(function: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    return [(site.kind, site.first, site.second) for site in sites(function)]


def test_attribute_reads_and_writes_name_the_receiver_and_the_attribute() -> None:
    def bump(box: Box) -> None:
        box.value = box.value + 1

    found = summary(bump)
    assert ("attr_r", ("l", "box"), "value") in found
    assert ("attr_w", ("l", "box"), "value") in found
    assert [kind for kind, _, _ in found] == ["attr_r", "binop", "attr_w"]


def test_an_output_used_later_is_captured_and_linked_by_offset() -> None:
    def bump(box: Box) -> int:
        return box.value + 1

    read, add = sites(bump)
    assert read.kind == "attr_r" and read.capture
    assert add.kind == "binop" and add.first == ("o", read.offset)
    assert add.second[0] == "c"  # the constant 1, known without running anything


def test_item_reads_writes_and_deletes_locate_container_and_key() -> None:
    def move(table: dict[str, int], key: str) -> None:
        table[key] = table[key]
        del table["old"]

    found = summary(move)
    assert ("item_r", ("l", "table"), ("l", "key")) in found
    assert ("item_w", ("l", "table"), ("l", "key")) in found
    kind, container, key = found[-1]
    assert (kind, container, key[0], key[2]) == ("item_d", ("l", "table"), "c", "old")


def test_global_reads_and_writes_are_sites_with_the_name() -> None:
    def count() -> None:
        global COUNTER
        COUNTER = COUNTER + 1

    read, add, write = sites(count)
    assert (read.kind, read.first, read.capture) == ("glob_r", "COUNTER", True)
    assert add.first == ("o", read.offset)
    assert (write.kind, write.first) == ("glob_w", "COUNTER")


def test_closure_variables_are_read_and_written_with_their_cell_index() -> None:
    # The plan names the variable and the index of its cell among the frame's cells, by
    # which the handlers find the cell object itself (two calls of one function have
    # different cells: different locations).
    def outer() -> Callable[[], None]:
        hits = 0

        def inner() -> None:
            nonlocal hits
            hits += 1

        return inner

    kinds = summary(outer())
    assert kinds[0] == ("cell_r", "hits", 0)
    assert kinds[-1] == ("cell_w", "hits", 0)


def test_calls_are_planned_with_their_argument_sources() -> None:
    def size(items: list[int]) -> int:
        items.append(3)
        return len(items)

    plan = plan_of(size)
    calls = [plan.calls[offset] for offset in sorted(plan.calls)]
    append, length = calls
    assert append.method == "append" and append.self_mode == "maybe"
    assert append.sources[0][0] == "c" and not append.star
    assert length.method is None and length.self_mode == "none"
    assert length.sources == (("l", "items"),)
    # The callee of len() is a global read whose output the call uses.
    assert ("glob_r", "len", None) in summary(size)


def test_star_arguments_are_iterated_before_the_call() -> None:
    def spread(function: Callable[..., None], args: list[int]) -> None:
        function(*args)

    plan = plan_of(spread)
    (call,) = plan.calls.values()
    assert call.star and call.self_mode == "unknown"
    before = plan.sites[call.offset]
    assert before.kind == "callpre" and before.second == ("l", "args")


def test_containers_built_here_are_fresh_and_pure_results_need_no_site() -> None:
    def first(a: object) -> object:
        return [a, 1][0]

    (read,) = sites(first)
    assert read.kind == "item_r"
    tag, parts = read.first
    assert tag == "f" and parts[0] == ("l", "a")  # a new list: no other task can reach it

    def same(a: object, b: object) -> int:
        return (a is b) + 1  # an identity test gives a bool: adding to it reads nothing

    assert sites(same) == []


def test_iteration_is_a_pair_of_sites_over_the_same_iterator() -> None:
    def walk(table: dict[str, int]) -> None:
        for _key in table:
            pass

    start, step = sites(walk)
    assert (start.kind, start.first, start.capture) == ("iter", ("l", "table"), True)
    assert (step.kind, step.first) == ("next", ("o", start.offset))


def test_an_await_is_planned_once_with_its_send() -> None:
    async def pause() -> None:
        await asyncio.sleep(0)

    plan = plan_of(pause)
    awaits = [site for site in plan.sites.values() if site.kind == "await"]
    (wait,) = awaits
    send = wait.second
    assert isinstance(send, int) and send > wait.offset
    assert all(site.kind != "send" for site in plan.sites.values())  # folded into await
    # While suspended the frame stands at the YIELD_VALUE after the SEND: an alias.
    assert send in plan.aliases.values()


def test_an_exception_leaving_a_with_block_calls_the_managers_exit() -> None:
    async def locked(lock: asyncio.Lock) -> None:
        async with lock:
            pass

    kinds = {site.kind: site for site in sites(locked)}
    assert kinds["with"].first == ("l", "lock")
    # The exit is modelled from the manager the with site kept (not an unknown step):
    # the __aexit__ of the manager entered at the with site, called with the exception.
    plan = plan_of(locked)
    with_offset = next(off for off, site in plan.sites.items() if site.kind == "with")
    exit_site = kinds["with_exit"]
    assert exit_site.first == ("o", with_offset + 1)
    assert "unknown" not in kinds


def test_the_analysis_is_pure_and_deterministic() -> None:
    def bump(box: Box) -> None:
        box.value += 1

    before = (dict(STATE.codes), dict(STATE.values), dict(STATE.kinds))
    first, second = plan_of(bump), plan_of(bump)
    assert first == second
    assert (dict(STATE.codes), dict(STATE.values), dict(STATE.kinds)) == before


def test_an_unknown_plan_covers_every_instruction() -> None:
    def anything(box: Box) -> int:
        return box.value

    code = anything.__code__
    plan = unknown_plan(code, "broken")
    assert plan.calls == {} and plan.aliases == {}
    assert {site.kind for site in plan.sites.values()} == {"unknown"}
    assert {site.where for site in plan.sites.values()} == {"broken"}  # the reason given
    assert len(unknown_plan(code, "x", skip_resume=True).sites) == len(plan.sites) - 1
