"""The bytecode data-flow analysis behind automatic footprints: one plan per code object.

Input: a code object. Output: a :class:`CodePlan`, which says for each instruction that
can touch shared state what it is (an attribute read, an item write, a global read, a
call, an await, ...) and where its operands come from, without ever reading the value
stack at run time. An operand is located as an abstract *source*:

    ``("c", index, value)``  a constant          ``("l", name)``   a local variable
    ``("o", offset)``        the output of the instrumented instruction at ``offset``
    ``("f", sources)``       a container just built from those sources (fresh, unshared)
    ``("p",)``               an immutable value (the result of a pure operation)
    ``("j", sources)``       one of those, depending on the path taken (known only when
                             every one of them is an atom: a conditional expression)
    ``("F",)``               a Python function made here     ``("m", name)``  a method slot
    ``("w", offset, async)`` the ``__exit__`` of the with block entered at ``offset - 1``
                             (its manager, as the with site kept it under ``offset``)
    ``None``                 unknown: the hooks then make the step UNKNOWN

A fixpoint over the control-flow graph (exception handlers included) joins the abstract
stacks; a source survives a join only when every path agrees on it, so an ``("o", offset)``
operand is always computed before the instruction that uses it runs (where paths disagree,
``("j", ...)`` holds the choices: the one taken is current, the others may be stale, so it
stands for an atom only when all of them are atoms). An instruction the
analysis does not model makes its own outputs unknown; a code object it cannot analyse at
all gets an "unknown" site at every instruction.

Pure: no ``sys.monitoring``, no state; the same code object always gives the same plan.
The opcode semantics are those of CPython 3.12 and 3.13.
"""

from __future__ import annotations

import dis
import sys
import types
from collections.abc import Callable
from typing import Any, Final, NamedTuple

_PY313: Final = sys.version_info >= (3, 13)

Source = Any  # one of the tuples above, or None
"""Where an operand comes from (see the module docstring)."""


class SitePlan(NamedTuple):
    """What the hooks do at one instruction.

    ``kind`` names the handler; ``capture`` says a later instruction uses this one's output;
    ``where`` is ``file:line kind`` for diagnostics. The operands by kind:
    ``attr_r``: receiver source, name, method load?; ``attr_w``: receiver source, name,
    source of the value stored (None for a deletion); ``super``: receiver
    source, name; ``glob_r``, ``glob_w``: name; ``cell_r``, ``cell_w``: name, index of
    the cell among the frame's fast locals; ``item_r``, ``item_w``, ``item_d``: container
    source, key source; ``slice_r``, ``slice_w``,
    ``truth``, ``unary``, ``iter``, ``next``, ``aiter``, ``with``, ``format``, ``extend``,
    ``unpack``: operand source; ``binop``: left, right, operator; ``compare``: left,
    right, result made a bool (3.13); ``contains``: item, container; ``await``,
    ``anext``: awaitable source, offset of its SEND, whether the SEND's result is used;
    ``callpre``: callee source, ``*args`` source or None; ``unknown``: why.
    """

    kind: str
    offset: int
    capture: bool
    where: str
    first: Any = None
    second: Any = None
    third: Any = None


class CallPlan(NamedTuple):
    """A call instruction: how to find its arguments when the call event fires.

    ``method``: the name when it calls ``obj.method(...)``; ``sources``: the argument
    sources (for ``f(*args, **kwargs)``, the one source of the ``args`` tuple);
    ``kwnames``: keyword names (a tuple, "?" when unknown, or None);
    ``star``: ``f(*args)``; ``self_mode``: whether a ``self`` is among the arguments
    ("none", "yes", "maybe" or "unknown")."""

    offset: int
    capture: bool
    method: str | None
    sources: tuple[Source, ...]
    kwnames: Any
    star: bool
    where: str
    self_mode: str


class CodePlan(NamedTuple):
    """The analysis of one code object: the sites of instruction events and of call
    events (both by offset), and ``aliases``: where an await stands while suspended
    (its YIELD_VALUE), or a cache entry of an instruction -> that instruction."""

    sites: dict[int, SitePlan]
    calls: dict[int, CallPlan]
    aliases: dict[int, int]

_JUMPS: Final = frozenset(getattr(dis, "hasjump", [*dis.hasjrel, *dis.hasjabs]))
_NO_FALLTHROUGH: Final = frozenset({
    "RETURN_VALUE", "RETURN_CONST", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD",
    "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT",
    "INTERPRETER_EXIT"})
# Instructions with no effect on shared state whose stack effect is only popping.
_POPPING: Final = frozenset({
    "POP_TOP", "END_FOR", "POP_EXCEPT", "RETURN_VALUE", "RAISE_VARARGS", "RERAISE",
    "POP_JUMP_IF_NONE", "POP_JUMP_IF_NOT_NONE",
    "END_ASYNC_FOR", "EXIT_INIT_CHECK"})
_NOTHING: Final = frozenset({
    "NOP", "RESUME", "CACHE", "EXTENDED_ARG", "JUMP_FORWARD", "JUMP_BACKWARD",
    "JUMP_BACKWARD_NO_INTERRUPT", "JUMP", "JUMP_NO_INTERRUPT", "KW_NAMES",
    "COPY_FREE_VARS", "MAKE_CELL", "RETURN_CONST", "SETUP_FINALLY", "SETUP_CLEANUP",
    "SETUP_WITH", "POP_BLOCK", "ENTER_EXECUTOR"})
# Instructions that pop their inputs and push opaque outputs, touching nothing shared.
_OPAQUE_OUTPUTS: Final = frozenset({
    "YIELD_VALUE",
    "CLEANUP_THROW", "PUSH_EXC_INFO", "CHECK_EG_MATCH", "CALL_INTRINSIC_2",
    "LOAD_BUILD_CLASS", "LOAD_CLOSURE"})
_PURE_OUTPUTS: Final = frozenset({
    "BUILD_STRING", "BUILD_SLICE", "IS_OP", "LOAD_ASSERTION_ERROR", "CHECK_EXC_MATCH"})
_PURE_INTRINSICS: Final = frozenset({
    "INTRINSIC_STOPITERATION_ERROR", "INTRINSIC_ASYNC_GEN_WRAP", "INTRINSIC_LIST_TO_TUPLE",
    "INTRINSIC_TYPEVAR", "INTRINSIC_PARAMSPEC", "INTRINSIC_TYPEVARTUPLE",
    "INTRINSIC_SUBSCRIPT_GENERIC", "INTRINSIC_TYPEALIAS"})
_BUILDS: Final[dict[str, Callable[[int], int]]] = {
    "BUILD_TUPLE": lambda n: n, "BUILD_LIST": lambda n: n, "BUILD_SET": lambda n: n,
    "BUILD_MAP": lambda n: 2 * n, "BUILD_CONST_KEY_MAP": lambda n: n + 1}
_NULL: Final = ("n",)
_FUNCTION_SRC: Final = ("F",)
_PURE_SRC: Final = ("p",)


class _Unmodelled(Exception):
    """An instruction this analysis does not model: it invalidates the stack."""


def _pure_source(src: Any) -> bool:
    if src is None:
        return False
    if src[0] == "f":
        return all(_pure_source(part) for part in src[1])
    return src[0] in ("c", "p")


def _mentions(src: Any, name: str) -> bool:
    """True when an abstract value is (or holds) the local variable ``name``."""
    if src[0] == "l":
        return bool(src[1] == name)
    if src[0] in ("f", "j"):
        return any(part is not None and _mentions(part, name) for part in src[1])
    return False


def _transfer(ins: dis.Instruction, st: list[Any], prev: dis.Instruction | None,
              cleanups: dict[int, int] | None = None) -> tuple[Any, ...] | None:
    """Apply ``ins`` to the abstract stack ``st``; return the site it needs, if any."""
    op = ins.opname
    arg = ins.arg or 0
    off = ins.offset

    def pop(n: int) -> list[Any]:
        if n > len(st):
            raise _Unmodelled(op)
        if n == 0:
            return []
        taken = st[-n:]
        del st[-n:]
        return taken

    def kill(name: str) -> None:
        for i, src in enumerate(st):
            if src is not None and _mentions(src, name):
                st[i] = None

    if op in _NOTHING:
        return None
    if op in _POPPING:
        pop(-dis.stack_effect(ins.opcode, ins.arg, jump=False) if ins.opcode >= dis.HAVE_ARGUMENT
            else -dis.stack_effect(ins.opcode, jump=False))
        return None
    if op == "CLEANUP_THROW" and cleanups and off in cleanups:
        pop(3)  # a throw() into an awaited coroutine that returned: the await's result
        st.extend([None, ("o", cleanups[off])])
        return None
    if op in _OPAQUE_OUTPUTS or op in _PURE_OUTPUTS:
        effect = (dis.stack_effect(ins.opcode, ins.arg, jump=False)
                  if ins.opcode >= dis.HAVE_ARGUMENT else dis.stack_effect(ins.opcode, jump=False))
        pops = {"BUILD_TUPLE": arg, "BUILD_LIST": arg, "BUILD_SET": arg, "BUILD_MAP": 2 * arg,
                "BUILD_CONST_KEY_MAP": arg + 1, "BUILD_STRING": arg, "BUILD_SLICE": arg,
                "IS_OP": 2, "YIELD_VALUE": 1, "CLEANUP_THROW": 3,
                "PUSH_EXC_INFO": 1, "CHECK_EG_MATCH": 2, "CHECK_EXC_MATCH": 2,
                "CALL_INTRINSIC_2": 2, "LOAD_BUILD_CLASS": 0,
                "LOAD_CLOSURE": 0, "LOAD_ASSERTION_ERROR": 0,
                "SET_FUNCTION_ATTRIBUTE": 2}.get(op, 1 - effect if op == "MAKE_FUNCTION" else -1)
        if pops < 0:
            raise _Unmodelled(op)
        taken = pop(pops)
        pushes = pops + effect
        if op == "CHECK_EXC_MATCH":
            st.append(taken[0])
            st.append(_PURE_SRC)
        else:
            st.extend([_PURE_SRC if op in _PURE_OUTPUTS else None] * pushes)
        return None
    if op == "PUSH_NULL":
        st.append(_NULL)
        return None
    if op in _BUILDS:  # a new container holding what it pops
        parts = pop(_BUILDS[op](arg))
        # Fresh even when some parts are unknown: the container is this frame's own
        # (shallow uses read nothing shared); a deep read of an unknown part is UNKNOWN.
        st.append(("f", tuple(parts)))
        return None
    if op in ("LIST_APPEND", "SET_ADD", "MAP_ADD", "LIST_EXTEND", "SET_UPDATE",
              "DICT_UPDATE", "DICT_MERGE"):
        parts = pop(2 if op == "MAP_ADD" else 1)
        if arg > len(st):
            raise _Unmodelled(op)
        target = st[-arg]
        if target is not None and target[0] == "f":
            st[-arg] = ("f", (*target[1], *parts))  # the join bounds this in loops
        else:
            st[-arg] = None
        if op in ("LIST_APPEND", "SET_ADD", "MAP_ADD"):
            return None
        (iterable,) = parts
        return None if _pure_source(iterable) else ("extend", iterable)
    if op in ("MAKE_FUNCTION", "SET_FUNCTION_ATTRIBUTE"):  # a new Python function
        pop(2 if op == "SET_FUNCTION_ATTRIBUTE" else 1 - _effect(ins, jump=False))
        st.append(_FUNCTION_SRC)
        return None
    if op == "RETURN_GENERATOR":
        st.append(None)  # the value sent by the first send(), popped at once
        return None
    if op == "LOAD_CONST":
        st.append(("c", arg, ins.argval))
        return None
    if op in ("LOAD_FAST", "LOAD_FAST_CHECK"):
        st.append(("l", ins.argval))
        return None
    if op == "LOAD_FAST_AND_CLEAR":
        kill(ins.argval)
        st.append(None)
        return None
    if op == "LOAD_FAST_LOAD_FAST":
        first, second = ins.argval
        st.append(("l", first))
        st.append(("l", second))
        return None
    if op in ("STORE_FAST", "STORE_FAST_MAYBE_NULL"):
        pop(1)
        kill(ins.argval)
        return None
    if op == "DELETE_FAST":
        kill(ins.argval)
        return None
    if op == "STORE_FAST_LOAD_FAST":
        stored, loaded = ins.argval
        pop(1)
        kill(stored)
        st.append(("l", loaded))
        return None
    if op == "STORE_FAST_STORE_FAST":
        first, second = ins.argval
        pop(2)
        kill(first)
        kill(second)
        return None
    if op == "COPY":
        if arg > len(st):
            raise _Unmodelled(op)
        st.append(st[-arg])
        return None
    if op == "SWAP":
        if arg > len(st):
            raise _Unmodelled(op)
        st[-1], st[-arg] = st[-arg], st[-1]
        return None
    if op == "LOAD_GLOBAL":
        if arg & 1 and not _PY313:
            st.append(_NULL)
        st.append(("o", off))
        if arg & 1 and _PY313:
            st.append(_NULL)
        return ("glob_r", ins.argval)
    if op in ("STORE_GLOBAL", "DELETE_GLOBAL"):
        if op == "STORE_GLOBAL":
            pop(1)
        return ("glob_w", ins.argval)
    if op == "LOAD_DEREF":
        st.append(("o", off))
        return ("cell_r", ins.argval, ins.arg)  # the cell's index among the fast locals
    if op in ("STORE_DEREF", "DELETE_DEREF"):
        if op == "STORE_DEREF":
            pop(1)
        return ("cell_w", ins.argval, ins.arg)
    if op == "LOAD_ATTR":
        (receiver,) = pop(1)
        if arg & 1:
            st.extend([("m", ins.argval), ("m", ins.argval)])
            return ("attr_r", receiver, ins.argval, True)
        st.append(("o", off))
        return ("attr_r", receiver, ins.argval, False)
    if op == "STORE_ATTR":
        value, receiver = pop(2)
        return ("attr_w", receiver, ins.argval, value)
    if op == "IMPORT_NAME":  # import x (a function-level import): sys.modules["x"]
        level, fromlist = pop(2)
        st.append(("o", off))
        return ("import", ins.argval, fromlist, level)
    if op == "IMPORT_FROM":  # from x import y: an attribute of the module, left below
        module = st[-1] if st else None
        st.append(("o", off))
        return ("attr_r", module, ins.argval, False)
    if op == "DELETE_ATTR":
        (receiver,) = pop(1)
        return ("attr_w", receiver, ins.argval)
    if op == "LOAD_SUPER_ATTR":
        _super, _cls, receiver = pop(3)
        st.extend([("m", ins.argval), ("m", ins.argval)] if arg & 1 else [None])
        return ("super", receiver, ins.argval)
    if op == "BINARY_SUBSCR":
        container, key = pop(2)
        st.append(("o", off))
        return ("item_r", container, key)
    if op == "STORE_SUBSCR":
        _value, container, key = pop(3)
        return ("item_w", container, key)
    if op == "DELETE_SUBSCR":
        container, key = pop(2)
        return ("item_d", container, key)
    if op == "BINARY_SLICE":
        container, _start, _stop = pop(3)
        st.append(("o", off))
        return ("slice_r", container)
    if op == "STORE_SLICE":
        _value, container, _start, _stop = pop(4)
        return ("slice_w", container)
    if op == "BINARY_OP":
        lhs, rhs = pop(2)
        if _pure_source(lhs) and _pure_source(rhs):
            st.append(_PURE_SRC)
            return None
        st.append(("o", off))
        return ("binop", lhs, rhs, arg)
    if op in ("UNARY_NEGATIVE", "UNARY_INVERT"):
        (operand,) = pop(1)
        if _pure_source(operand):
            st.append(_PURE_SRC)
            return None
        st.append(("o", off))
        return ("unary", operand)
    if op == "UNARY_NOT" or op == "TO_BOOL":
        (operand,) = pop(1)
        st.append(_PURE_SRC)
        if _pure_source(operand) or (op == "UNARY_NOT" and _PY313):
            return None
        return ("truth", operand)
    if op in ("POP_JUMP_IF_TRUE", "POP_JUMP_IF_FALSE"):
        (operand,) = pop(1)
        if _PY313 or _pure_source(operand):
            return None  # 3.13: the operand is a bool (TO_BOOL or COMPARE_OP made it)
        return ("truth", operand)
    if op == "COMPARE_OP":
        lhs, rhs = pop(2)
        if _pure_source(lhs) and _pure_source(rhs):
            st.append(_PURE_SRC)
            return None
        st.append(("o", off))
        return ("compare", lhs, rhs, bool(_PY313 and arg & 16))
    if op == "CONTAINS_OP":
        item, container = pop(2)
        st.append(_PURE_SRC)
        if _pure_source(container) and _pure_source(item):
            return None
        return ("contains", item, container)
    if op in ("GET_ITER", "GET_YIELD_FROM_ITER"):
        (iterable,) = pop(1)
        st.append(("o", off))
        return ("iter", iterable)
    if op == "FOR_ITER":
        if not st:
            raise _Unmodelled(op)
        iterator = st[-1]
        st.append(("o", off))
        return ("next", iterator)
    if op == "GET_AWAITABLE":
        (awaitable,) = pop(1)
        st.append(("o", off))
        return ("await", awaitable)
    if op == "SEND":
        receiver, _value = pop(2)
        st.extend([receiver, ("o", off)])  # the value sent back, or the await's result
        return ("send", receiver)
    if op == "END_SEND":
        _receiver, result = pop(2)
        st.append(result)
        return None
    if op == "GET_AITER":
        (iterable,) = pop(1)
        st.append(("o", off))
        return ("aiter", iterable)
    if op == "GET_ANEXT":
        if not st:
            raise _Unmodelled(op)
        iterator = st[-1]
        st.append(("o", off))
        return ("anext", iterator)
    if op in ("BEFORE_WITH", "BEFORE_ASYNC_WITH"):
        (manager,) = pop(1)
        # [__exit__, what __enter__ returned]: the with site keeps its manager under
        # offset + 1 (never an instruction's offset) for an exception leaving the block.
        st.extend([("w", off + 1, op == "BEFORE_ASYNC_WITH"),
                   ("o", off) if op == "BEFORE_ASYNC_WITH" else None])
        return ("with", manager)
    if op in ("FORMAT_VALUE", "FORMAT_SIMPLE", "FORMAT_WITH_SPEC", "CONVERT_VALUE"):
        if (op == "FORMAT_VALUE" and arg & 4) or op == "FORMAT_WITH_SPEC":
            value, _spec = pop(2)
        else:
            (value,) = pop(1)
        st.append(_PURE_SRC)
        return None if _pure_source(value) else ("format", value)
    if op in ("UNPACK_SEQUENCE", "UNPACK_EX"):
        (sequence,) = pop(1)
        count = arg if op == "UNPACK_SEQUENCE" else (arg & 0xFF) + (arg >> 8) + 1
        if _pure_source(sequence):
            st.extend([_PURE_SRC] * count)
            return None
        st.extend([("o", off)] * count)  # PURE parts of a PURE value, else unknown
        return ("unpack", sequence)
    if op == "CALL_INTRINSIC_1":
        (operand,) = pop(1)
        name = ins.argrepr
        if name in _PURE_INTRINSICS:
            st.append(None)
            return None
        if name == "INTRINSIC_UNARY_POSITIVE":
            st.append(("o", off))
            return ("unary", operand)
        raise _Unmodelled(op)
    if op in ("CALL", "CALL_KW"):
        kwnames: Any = None
        if op == "CALL_KW":
            (names,) = pop(1)
            kwnames = names[2] if names is not None and names[0] == "c" else "?"
        elif prev is not None and prev.opname == "KW_NAMES":
            kwnames = prev.argval
        taken = pop(arg + 2)
        method = next((s[1] for s in taken[:2] if s is not None and s[0] == "m"), None)
        callee, self_mode = _callee(taken[0], taken[1])
        st.append(("o", off))
        return ("call", method, tuple(taken[2:]), kwnames, False, callee, self_mode)
    if op == "CALL_FUNCTION_EX":
        effect = dis.stack_effect(ins.opcode, ins.arg, jump=False)
        taken = pop(1 - effect)
        callee, _mode = _callee(taken[0], taken[1])
        st.append(("o", off))
        # f(*args): the call turns ``args`` into a tuple, iterating over it.
        return ("call", None, (taken[2],), None, True, callee, "unknown", taken[2])
    if op == "WITH_EXCEPT_START":  # calls __exit__ with the exception (no call event)
        exit_slot = st[-4] if len(st) >= 4 else None
        if exit_slot is not None and exit_slot[0] == "w":
            st.append(("o", off))  # what __exit__ returns, tested next
            return ("with_exit", ("o", exit_slot[1]), exit_slot[2])
        st.append(None)
        return ("unknown", "an exception leaving a with block")
    raise _Unmodelled(op)


def _callee(first: Any, second: Any) -> tuple[Any, str]:
    """The source of the called object, from the two slots under a call's arguments, and
    whether a ``self`` argument is among them: "none", "yes", "maybe" (a method looked up
    with LOAD_ATTR: known when called) or "unknown"."""
    if first is not None and first[0] == "w":
        first = None  # a with block's __exit__, called on the way out: as before
    if _PY313:  # [callable, NULL or self]
        callable_slot, self_slot = first, second
    elif first == _NULL:  # 3.12: [NULL, callable]
        return (None if second is None or second[0] == "m" else second), "none"
    else:  # 3.12: [method, self], or unknown
        callable_slot, self_slot = first, second if first is not None else None
    if self_slot == _NULL:
        mode = "none"
    elif self_slot is None:
        mode = "unknown"
    else:
        mode = "maybe" if self_slot[0] == "m" or (callable_slot is not None and \
            callable_slot[0] == "m") else "yes"
    if callable_slot is None or callable_slot[0] in ("n", "m"):
        return None, mode
    return callable_slot, mode


def _state_join(a: tuple[Any, ...] | None, b: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if a is None:
        return b
    if len(a) != len(b):
        raise _Unmodelled("stack depth")
    return tuple(_source_join(x, y) for x, y in zip(a, b, strict=True))


def _source_join(x: Any, y: Any) -> Any:
    """What an operand is on both paths: the same source, a container built on both
    (fresh either way, its parts joined), or unknown."""
    if x == y:
        return x
    if x is not None and y is not None and x[0] == "f" and y[0] == "f":
        if len(x[1]) == len(y[1]):
            return ("f", tuple(_source_join(p, q) for p, q in zip(x[1], y[1], strict=True)))
        return _FRESH_UNKNOWN  # filled in a loop: fresh, holding what is not known here
    if x is None or y is None:
        return None
    choices = {*(x[1] if x[0] == "j" else (x,)), *(y[1] if y[0] == "j" else (y,))}
    if len(choices) > _MAX_CHOICES:
        return None
    return ("j", tuple(sorted(choices, key=repr)))


_MAX_CHOICES: Final = 4


_FRESH_UNKNOWN: Final = ("f", (None,))


def analyse(code: types.CodeType) -> CodePlan:
    """Sites of ``code``'s instructions that touch shared state, with their operands."""
    try:
        return _analyse(code)
    except _Unmodelled as exc:  # an instruction this analysis does not know: all unknown
        return unknown_plan(code, f"unanalysable ({exc})", skip_resume=True)


def unknown_plan(code: types.CodeType, why: str, *, skip_resume: bool = False) -> CodePlan:
    """A plan that makes every instruction of ``code`` UNKNOWN."""
    return CodePlan({ins.offset: SitePlan("unknown", ins.offset, False, why)
                     for ins in dis.get_instructions(code)
                     if not (skip_resume and ins.opname == "RESUME")}, {}, {})


def _analyse(code: types.CodeType) -> CodePlan:
    instructions = list(dis.get_instructions(code))
    position = {ins.offset: i for i, ins in enumerate(instructions)}
    states: list[tuple[Any, ...] | None] = [None] * len(instructions)
    states[0] = ()
    work = [0]
    # The handler of each instruction's exceptions: (its index, depth, pushes lasti).
    handlers: dict[int, tuple[int, int, bool]] = {}
    bytecode: Any = dis.Bytecode(code)  # exception_entries: not in the 3.11 stubs
    for entry in bytecode.exception_entries:
        for offset in range(entry.start, entry.end, 2):
            if offset in position:
                handlers[position[offset]] = (position[entry.target], entry.depth,
                                              bool(entry.lasti))
    # An await's loop: SEND, YIELD_VALUE, and the CLEANUP_THROW that catches the
    # coroutine's return when an exception thrown into it was handled there.
    aliases: dict[int, int] = {}
    cleanups: dict[int, int] = {}
    for i, ins in enumerate(instructions):
        # f_lasti of a caller may point at a cache entry of its instruction (3.12).
        end = instructions[i + 1].offset if i + 1 < len(instructions) else ins.offset + 2
        for cache in range(ins.offset + 2, end, 2):
            aliases[cache] = ins.offset
        if ins.opname == "YIELD_VALUE" and i and instructions[i - 1].opname == "SEND":
            send = instructions[i - 1].offset
            aliases[ins.offset] = send
            handler = handlers.get(i)
            if handler is not None and instructions[handler[0]].opname == "CLEANUP_THROW":
                cleanups[instructions[handler[0]].offset] = send
    unmodelled: dict[int, str] = {}
    while work:
        i = work.pop()
        state = states[i]
        assert state is not None
        ins = instructions[i]
        stack = list(state)
        try:
            _transfer(ins, stack, instructions[i - 1] if i else None, cleanups)
            expected = len(state) + _effect(ins, jump=False)
            if ins.opname == "RETURN_GENERATOR":
                expected = len(state) + 1  # 3.12 counts the value it leaves as 0
            if len(stack) != expected:
                raise _Unmodelled(f"{ins.opname} stack effect")
        except _Unmodelled as exc:
            unmodelled[ins.offset] = str(exc)
            stack = [None] * (len(state) + _effect(ins, jump=False))
        out = tuple(stack)
        successors: list[tuple[int, tuple[Any, ...]]] = []
        if ins.opname not in _NO_FALLTHROUGH and i + 1 < len(instructions):
            successors.append((i + 1, out))
        if ins.opcode in _JUMPS:
            jump = len(state) + _effect(ins, jump=True)
            target = out if jump == len(out) else (None,) * jump
            successors.append((position[ins.argval], target))
        if i in handlers:  # what is below the handler's depth stays as it was
            index, depth, lasti = handlers[i]
            kept = state[:depth] if len(state) >= depth else (None,) * depth
            successors.append((index, kept + (None,) * (2 if lasti else 1)))
        for j, incoming in successors:
            joined = _state_join(states[j], incoming)
            if joined != states[j]:
                states[j] = joined
                work.append(j)
    # Second pass: the sites, with the operands as the fixpoint has them.
    specs: dict[int, tuple[Any, ...]] = {}
    for i, ins in enumerate(instructions):
        state = states[i]
        if state is None:
            continue  # unreachable
        if ins.offset in unmodelled:
            if ins.opname not in _NOTHING:
                specs[ins.offset] = ("unknown", f"{ins.opname} not modelled")
            continue
        spec = _transfer(ins, list(state), instructions[i - 1] if i else None, cleanups)
        if spec is not None:
            specs[ins.offset] = spec
    # An await's SEND is handled by the instruction that made the awaitable (once per
    # await, instead of at every resumption): it says what the await's result will be,
    # and marks the frame while it awaits something unknown (see _started).
    owners: dict[int, tuple[int, int]] = {}  # GET_AWAITABLE / GET_ANEXT -> its SEND
    for offset, spec in list(specs.items()):
        receiver = spec[1] if spec[0] == "send" else None
        if receiver is not None and receiver[0] == "o" and \
                specs.get(receiver[1], ("",))[0] in ("await", "anext"):
            owners[receiver[1]] = (offset, 0)
            del specs[offset]
    used = _used_outputs(specs)
    for owner, (send, _) in owners.items():
        owners[owner] = (send, 1 if send in used else 0)
    sites: dict[int, SitePlan] = {}
    calls: dict[int, CallPlan] = {}
    lines = {ins.offset: ins.positions.lineno if ins.positions else None
             for ins in instructions}
    for offset, spec in specs.items():
        where = f"{code.co_filename}:{lines.get(offset)} {spec[0]}"
        capture = offset in used
        if spec[0] == "call":
            calls[offset] = CallPlan(offset, capture, spec[1], spec[2], spec[3], spec[4],
                                     where, spec[6])
            if capture or spec[4]:  # also before the call (3.12 has no call event for
                # a Python f(*args)), and the iteration over f(*args)'s arguments
                sites[offset] = SitePlan("callpre", offset, capture, where, spec[5],
                                         spec[7] if spec[4] else None)
        elif offset in owners:  # an await: (awaitable, its SEND, the SEND's result used)
            send, result_used = owners[offset]
            sites[offset] = SitePlan(spec[0], offset, True, where, spec[1], send,
                                     bool(result_used))
        else:
            sites[offset] = SitePlan(spec[0], offset, capture, where, *spec[1:4])
    return CodePlan(sites, calls, aliases)


def _effect(ins: dis.Instruction, *, jump: bool) -> int:
    if ins.opcode >= dis.HAVE_ARGUMENT:
        return dis.stack_effect(ins.opcode, ins.arg, jump=jump)
    return dis.stack_effect(ins.opcode, jump=jump)


def _used_outputs(specs: dict[int, tuple[Any, ...]]) -> set[int]:
    used: set[int] = set()

    def note(src: Any) -> None:
        if len(src) == 2 and src[0] == "o" and type(src[1]) is int:
            used.add(src[1])
        elif len(src) == 2 and src[0] in ("f", "j") and isinstance(src[1], tuple):
            for part in src[1]:
                if isinstance(part, tuple) and part:
                    note(part)

    for spec in specs.values():
        for part in spec[1:]:
            if isinstance(part, tuple) and part and isinstance(part[0], str):
                note(part)
            elif isinstance(part, tuple):
                for src in part:
                    if isinstance(src, tuple) and src:
                        note(src)
    return used

