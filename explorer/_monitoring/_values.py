"""Value marks: what automatic footprints know about a value without holding the object.

The data-flow analysis locates the operands of the instructions it watches; when an
operand is not a real object this package may look at (the result of an unmodelled call,
a container a builtin made in this step, an iterator over shared containers), the hooks
carry one of these stand-ins instead. Every operation on a mark that is not ``known`` makes
the step UNKNOWN; marks never run user code and never leave the package.

Pure: no ``sys.monitoring``, no session state; importable on every supported Python.
"""

from __future__ import annotations

import types
from typing import Any, Final

# Code object flags (``inspect.CO_*``), for telling generators and coroutines apart.
GENERATOR_FLAGS: Final = 0x20 | 0x200  # CO_GENERATOR | CO_ASYNC_GENERATOR
COROUTINE_FLAGS: Final = 0x80 | 0x100  # CO_COROUTINE | CO_ITERABLE_COROUTINE
ASYNC_GENERATOR_FLAG: Final = 0x200  # CO_ASYNC_GENERATOR


class Mark:
    """A value this package knows something about without having the object itself.
    Marks that are not ``known`` stand for any object at all."""

    __slots__ = ("known", "name")

    def __init__(self, name: str, *, known: bool = True) -> None:
        self.name = name
        self.known = known

    def __repr__(self) -> str:
        return self.name


OPAQUE: Final = Mark("<unknown value>", known=False)
# What trusted code (the explorer, asyncio) returned: any object, but safe to await (a
# coroutine or future of theirs).
TRUSTED_RESULT: Final = Mark("<result of asyncio or explorer code>", known=False)
PURE: Final = Mark("<immutable value>")        # an atom: operations on it read nothing
SAFE: Final = Mark("<coroutine or future>")    # awaiting it runs only watched code
CELLS: Final = Mark("closure variables")       # footprint object for closure cells
ORDER: Final = Mark("<insertion order>")       # footprint item: a dict's or set's order
C_STATE: Final = Mark("C-level state")         # footprint object read for C state


class Coro(Mark):
    """A coroutine or generator of Python code ``code``: awaiting it runs watched code,
    and its return value is what the await gives."""

    __slots__ = ("code",)

    def __init__(self, code: types.CodeType) -> None:
        super().__init__("<coroutine>")
        self.code = code


class Fresh:
    """A container a builtin created in step ``step``, holding elements of ``sources``:
    only that step can reach it (later steps cannot know where it went)."""

    __slots__ = ("sources", "step")

    def __init__(self, sources: tuple[Any, ...], step: object) -> None:
        self.sources = sources
        self.step = step


class New(Mark):
    """A new instance of ``cls`` (a defaultdict's default for a missing key): already
    in the dict, so any object for every purpose but telling its class."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        super().__init__("<new instance>", known=False)
        self.cls = cls


class Iter:
    """An iterator (or view): advancing it writes ``obj`` (when it is reachable from
    elsewhere) and reads ``reads`` as a whole; ``elements`` is what it produces."""

    __slots__ = ("elements", "obj", "reads")

    def __init__(self, obj: object, reads: tuple[Any, ...], elements: object) -> None:
        self.obj = obj
        self.reads = reads
        self.elements = elements


class Await:
    """An awaitable over a future: each resumption reads the future."""

    __slots__ = ("future",)

    def __init__(self, future: object) -> None:
        self.future = future


# Elements of items(), enumerate(), zip(), or of a container of tuples and atoms:
# unpacking them reads nothing shared. Any other use: unknown.
TUPLES: Final = Mark("<tuples>", known=False)
# Elements of enumerate() or zip() over lists and tuples only: tuples of their elements.
# Where a loop takes one (FOR_ITER), it is PURE when every source holds only atoms and
# tuples of atoms at that moment (checked at each element), TUPLES otherwise.
ZIPPED: Final = Mark("<tuples of the sources' elements>", known=False)
# Elements of a list whose elements are all instances of Python classes that iterate in
# watched code (their __iter__ is watched Python code): unpacking one is recorded there.
# Any other use: unknown.
WATCHED_ITERABLES: Final = Mark("<objects iterated by watched code>", known=False)
FUNCTION: Final = Mark("<a Python function made here>")  # its code runs watched

# Iterating over something only this step can reach, or over atoms.
PRIVATE_ITER: Final = Iter(None, (), OPAQUE)
ATOM_ITER: Final = Iter(None, (), PURE)

ATOMS: Final = frozenset({int, str, bytes, float, bool, type(None), complex})


def python_callable(value: object) -> bool:
    """A Python function or method (or one made here): calling it runs watched code."""
    return value is FUNCTION or isinstance(value, (types.FunctionType, types.MethodType))


def known(value: object) -> bool:
    """False for a value that may be any object (an unknown mark)."""
    return not isinstance(value, Mark) or value.known


def private(value: object) -> bool:
    """A mark or a fresh container: not a real object this package can look at."""
    return isinstance(value, (Mark, Fresh, Iter))


def atom(value: object) -> bool:
    """An immutable scalar (or the mark for one): operations on it read nothing."""
    return type(value) in ATOMS or value is PURE
