"""The parts of automatic footprints that need no ``sys.monitoring``, on every Python:
value marks, type categories, the memory model, the table of modelled builtins, code
classification by file and the session state object."""

from __future__ import annotations

import array
import asyncio
import collections
import json
import math
import os
import re
import subprocess
import sys
import types
from typing import Any

import pytest

import explorer
from explorer._footprint import Label
from explorer._monitoring._builtins import RULES
from explorer._monitoring._categories import (
    ATOM,
    BAD,
    FUT,
    IMM,
    ITER,
    MUT,
    PY,
    VIEW,
    atom_key,
    category_of,
    plain_value,
)
from explorer._monitoring._memory import attribute_access, item_access, shallow
from explorer._monitoring._places import (
    FOREIGN,
    HELPER,
    LIBRARY,
    MODELLED,
    TRUSTED,
    USER,
    Places,
    classify,
    places,
)
from explorer._monitoring._state import STATE, MonitoringState
from explorer._monitoring._values import (
    OPAQUE,
    ORDER,
    PURE,
    TUPLES,
    Fresh,
    Iter,
    Mark,
    atom,
    known,
    private,
    python_callable,
)

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class Account:
    def __init__(self) -> None:
        self.balance = 10

    @property
    def doubled(self) -> int:
        return self.balance * 2


class Ledger(list[int]):
    pass


# ---------------------------------------------------------------------------- marks


def test_marks_say_what_is_known_without_holding_the_object() -> None:
    assert known(PURE) and not known(OPAQUE) and not known(TUPLES)
    assert known(3) and known([1])
    assert private(PURE) and private(Fresh((), None)) and private(Iter(None, (), OPAQUE))
    assert not private([1]) and not private(Account())
    assert atom(PURE) and atom(3) and atom("s") and not atom((1,)) and not atom(OPAQUE)
    assert python_callable(test_marks_say_what_is_known_without_holding_the_object)
    assert not python_callable(len) and not python_callable(Mark("x"))


# ---------------------------------------------------------------------------- categories


def test_types_are_categorised_by_what_their_c_level_can_touch() -> None:
    assert category_of(int) == ATOM and category_of(str) == ATOM
    assert category_of(tuple) == IMM and category_of(frozenset) == IMM
    assert category_of(list) == MUT and category_of(collections.defaultdict) == MUT
    assert category_of(type({}.keys())) == VIEW
    assert category_of(type(iter([]))) == ITER
    assert category_of(asyncio.Future) == FUT
    assert category_of(Account) == PY
    assert category_of(Ledger) == MUT  # a Python subclass of a builtin container
    assert category_of(array.array) == BAD  # C-level state this package does not model


def test_keys_are_kept_only_when_comparing_them_runs_no_code() -> None:
    assert atom_key(1) and atom_key("k") and atom_key((1, "k"))
    assert not atom_key(math.nan)  # not equal to itself
    assert atom_key(Account())  # identity hash and equality
    assert not atom_key([1])


def test_plain_values_are_read_without_running_code() -> None:
    account = Account()
    assert plain_value(account, "balance") == 10
    assert plain_value(account, "doubled") is OPAQUE  # a property would run code
    assert plain_value(json, "dumps") is json.dumps


# ---------------------------------------------------------------------------- memory model


def test_item_accesses_record_the_key_and_insertions_the_order() -> None:
    table = {"a": 1}
    fp: set[Any] = set()
    assert item_access(table, "a", "r", fp)
    assert fp == {(id(table), "a", "r")}
    fp.clear()
    assert item_access(table, "new", "w", fp, inserting=True)
    assert fp == {(id(table), "new", "w"), (id(table), ORDER, "w")}


def test_attribute_accesses_record_object_and_name() -> None:
    account = Account()
    fp: set[Any] = set()
    assert attribute_access(account, "balance", "w", fp)
    assert fp == {(id(account), "balance", "w")}
    fp.clear()
    assert attribute_access([], "append", "r", fp) and not fp  # builtin methods never change
    assert not attribute_access(Account, "balance", "w", set())  # a class attribute


def test_reading_a_container_as_a_whole_and_c_state() -> None:
    items = [1, 2]
    fp: set[Any] = set()
    assert shallow(items, fp) and fp == {(id(items), None, "r")}
    fp.clear()
    assert shallow(array.array("i"), fp) and len(fp) == 1  # the one C-state location
    assert not shallow(OPAQUE, set())


# ---------------------------------------------------------------------------- builtins


def test_modelled_builtins_record_what_they_read_and_write() -> None:
    items = [1, 2]
    fp: set[Any] = set()
    assert RULES[len]([items], None, fp) is PURE
    assert fp == {(id(items), None, "r")}
    fp.clear()
    assert RULES[list.append]([items, 3], None, fp) is OPAQUE
    assert (id(items), None, "w") in fp
    table = {"a": 7}
    fp.clear()
    assert RULES[dict.get]([table, "a"], None, fp) == 7
    assert fp == {(id(table), "a", "r")}


def test_a_c_key_function_is_not_modelled() -> None:
    assert RULES[sorted]([[3, 1]], {"key": abs}, set()) is None
    assert isinstance(RULES[sorted]([[3, 1]], {"key": lambda x: x}, set()), Fresh)


def test_unmodelled_c_functions_are_absent_from_the_table() -> None:
    assert os.getcwd not in RULES and print not in RULES
    assert RULES[isinstance] is RULES[id]


# ---------------------------------------------------------------------------- which code


def test_code_is_classified_by_the_file_it_comes_from() -> None:
    where = places()

    def kind(function: Any) -> int:
        code = function.__code__
        return classify(code.co_filename, code.co_qualname, where)

    assert kind(test_code_is_classified_by_the_file_it_comes_from) == USER
    assert kind(asyncio.sleep) == TRUSTED
    assert kind(explorer.explore) == TRUSTED
    assert kind(explorer.strategies.DPOR.__init__) == TRUSTED
    assert kind(json.dumps) == MODELLED  # its rule says what it reads
    assert kind(re.compile) == HELPER  # its only state is a cache of compiled patterns
    assert kind(types.new_class) == LIBRARY  # the standard library is watched
    assert kind(collections.namedtuple) == LIBRARY
    assert kind(pytest.importorskip) == FOREIGN  # installed, outside the web stack
    import enum

    assert kind(enum.Enum.__new__) == HELPER


def test_the_strategies_directory_is_found_by_its_real_path() -> None:
    strategies = os.path.join(ROOT, "strategies") + os.sep
    assert strategies in places().trusted


def test_special_file_names() -> None:
    where = Places((), (), frozenset({"<frozen abc>"}))
    assert classify("<frozen abc>", "ABCMeta.__new__", where) == HELPER
    assert classify("<frozen os>", "walk", where) == FOREIGN
    assert classify("<string>", "scenario", where) == USER


def test_finding_the_directories_imports_no_strategy() -> None:
    probe = ("import sys; from explorer._monitoring._places import places; places(); "
             "print(sorted(m for m in sys.modules if m.startswith('explorer.strateg')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- state


def _hold_tool(state: MonitoringState, tool: int) -> None:
    state.tool = tool


def test_a_run_forgets_values_and_a_session_forgets_everything_but_debug() -> None:
    state = MonitoringState()
    state.values[(1, 2)] = 3
    state.tainted.add(1)
    state.kinds[5] = USER
    state.debug = collections.Counter({"x": 1})
    state.start_run()
    assert not state.values and not state.tainted and state.kinds == {5: USER}
    _hold_tool(state, 3)
    state.reset()
    assert state.kinds == {} and state.tool is None and state.debug == {"x": 1}
    assert STATE is not state and isinstance(STATE, MonitoringState)


def test_recorded_objects_are_named_for_race_explanations() -> None:
    from explorer import _footprint

    account = Account()
    seen: dict[int, object] = {}
    previous, _footprint.seen = _footprint.seen, seen
    try:
        assert attribute_access(account, "balance", "r", set())
    finally:
        _footprint.seen = previous
    label = seen[id(account)]
    assert isinstance(label, Label) and label.name == "Account"


def test_a_code_objects_plan_is_analysed_once_per_process() -> None:
    from explorer._monitoring import _hooks

    def sample(box: dict[str, int]) -> None:
        box["n"] = box["n"] + 1

    plan = _hooks._plan(sample.__code__)
    assert plan.sites  # reads and writes an item
    assert _hooks._plan(sample.__code__) is plan


def test_a_footprint_holding_unknown_is_indexed_as_unknown_alone() -> None:
    from explorer._footprint import UNKNOWN, conflicts, index

    busy = {UNKNOWN, *((n, "field", "r") for n in range(1, 50))}
    assert index(busy) == {0: [(None, "w")]}
    assert conflicts(index(busy), index({(7, "other", "r")}))
    assert not conflicts(index(busy), index(set()))
