"""Record classes that cost nothing to define: the behaviour of a slotted ``@dataclass``
without its import-time work.

Contract: a subclass of :class:`Record` (mutable) or :class:`FrozenRecord` writes its own
``__init__``, whose positional parameters are its fields, in order, each stored under
its own name in a slot of ``__slots__``. The base gives it what
``@dataclass(slots=True)`` (with ``frozen=True`` for :class:`FrozenRecord`) would:

- ``repr`` in the dataclass form, over ``_shown`` (default: every field);
- equality over ``_compared`` (default: every field), with instances of the same class
  only; a frozen record hashes as the tuple of its compared fields, a mutable one is
  unhashable;
- ``dataclasses.FrozenInstanceError`` on assigning or deleting a frozen record's field;
- ``__match_args__``, copying and pickling by the fields;
- ``dataclasses.fields``, ``replace``, ``asdict``, ``astuple`` and ``is_dataclass``: the
  ``__dataclass_fields__`` and ``__dataclass_params__`` they read are made the first time
  one is asked for (:func:`dataclass_view`), from the fields, ``__init__``'s defaults and
  ``_factories`` (fields whose dataclass default is a ``default_factory``: ``__init__``
  takes None for them and calls the factory).

A frozen record's ``__init__`` sets its fields with ``object.__setattr__``, as the
dataclass's does. Why not ``@dataclass``: it compiles its generated methods from source
when the class is defined, about 0.4 ms per class, which every process paid for each
record on its first exploration, whether or not anything asked a record for its fields.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

if TYPE_CHECKING:
    from dataclasses import Field
    from types import CodeType

Factories = tuple[tuple[str, Callable[[], object]], ...]
"""``(field, factory)`` pairs: the fields whose default is made anew for each record."""


def _as_tuple(get: Callable[[Any], object], record: object) -> tuple[Any, ...]:
    return (get(record),)


def _nothing(record: object) -> tuple[Any, ...]:
    return ()


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The values of ``names`` of a record, as a tuple. Neither attrgetter nor partial is a
    descriptor, so the result is stored on the class as it is and called through an
    instance unbound (C all the way: hashing and comparing a record stay as cheap as a
    dataclass's)."""
    if len(names) != 1:
        return attrgetter(*names) if names else partial(_nothing)
    # attrgetter returns a bare value for one name: keep a tuple, so that a record hashes
    # as the dataclass it replaces did (hash of the tuple of its compared fields).
    return partial(_as_tuple, attrgetter(names[0]))


def _parameters(cls: type) -> tuple[str, ...]:
    code: CodeType = cls.__dict__["__init__"].__code__
    return code.co_varnames[1:code.co_argcount]


def defaults(cls: type[Record]) -> dict[str, object]:
    """The fields of ``cls`` that have a default, and their defaults (as ``__init__``
    declares them: None for a field made by a factory)."""
    init = cls.__init__
    names = init.__code__.co_varnames[1:init.__code__.co_argcount]
    given = init.__defaults__ or ()
    return dict(zip(names[len(names) - len(given):], given, strict=True))


class _DataclassView:
    """``__dataclass_fields__`` or ``__dataclass_params__`` of a record class, made on first
    access (:func:`dataclass_view`), then stored on the class itself."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def __get__(self, instance: object, owner: type[Record]) -> object:
        if not owner.__match_args__:  # Record and FrozenRecord themselves: no dataclass
            raise AttributeError(self.attribute)
        view = dataclass_view(owner)
        for attribute in ("__dataclass_fields__", "__dataclass_params__"):
            setattr(owner, attribute, getattr(view, attribute))
        return getattr(view, self.attribute)


def dataclass_view(cls: type[Record]) -> type:
    """The dataclass ``cls`` stands for: a class of the same name, fields (with their
    defaults, factories and ``repr``/``compare`` flags) and options, whose
    ``__dataclass_fields__`` and ``__dataclass_params__`` are those of ``cls``."""
    import dataclasses

    given = defaults(cls)
    factories = dict(cls._factories)
    namespace: dict[str, object] = {
        "__annotations__": {name: cls.__annotations__.get(name, Any)
                            for name in cls.__match_args__},
        "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    for name in cls.__match_args__:
        shown, compared = name in cls._shown, name in cls._compared
        if name in factories:
            namespace[name] = dataclasses.field(default_factory=factories[name],
                                                repr=shown, compare=compared)
        elif name in given:
            namespace[name] = dataclasses.field(default=given[name], repr=shown,
                                                compare=compared)
        else:
            namespace[name] = dataclasses.field(repr=shown, compare=compared)
    view = type(cls.__name__, (), namespace)
    return dataclasses.dataclass(frozen=issubclass(cls, FrozenRecord), slots=True)(view)


class Record:
    """A mutable slotted record: ``@dataclass(slots=True)`` without the definition cost."""

    __slots__ = ()
    __match_args__: ClassVar[tuple[str, ...]] = ()
    _shown: ClassVar[tuple[str, ...]] = ()
    _compared: ClassVar[tuple[str, ...]] = ()
    _factories: ClassVar[Factories] = ()
    if TYPE_CHECKING:
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

        # Set for each class by __init_subclass__: its fields' values, its compared ones'.
        @staticmethod
        def _values(record: Any) -> tuple[Any, ...]: ...

        @staticmethod
        def _compared_values(record: Any) -> tuple[Any, ...]: ...
    else:
        __dataclass_fields__ = _DataclassView("__dataclass_fields__")
        __dataclass_params__ = _DataclassView("__dataclass_params__")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return  # a base of records, or a record's subclass that adds no field
        fields = _parameters(cls)
        slots = {slot for klass in cls.__mro__ for slot in klass.__dict__.get("__slots__", ())}
        if set(fields) - slots or cls.__dict__.get("__slots__") is None:
            raise TypeError(f"record {cls.__qualname__}: __init__ takes {fields}, but the "
                            f"slots are {tuple(sorted(slots))}; declare __slots__ with a "
                            "slot for each parameter of __init__ (the record's fields)")
        cls.__match_args__ = fields  # type: ignore[misc]  # each record's own fields
        cls._shown = cls.__dict__.get("_shown", fields)
        cls._compared = cls.__dict__.get("_compared", fields)
        cls._values = _getter(fields)  # type: ignore[method-assign,assignment]
        cls._compared_values = _getter(cls._compared)  # type: ignore[method-assign,assignment]

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
        return f"{type(self).__qualname__}({shown})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._compared_values(self) == self._compared_values(other)
        return NotImplemented

    # No __hash__: a class that defines __eq__ alone is unhashable, as a mutable record
    # (an eq=True dataclass) is.

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        return type(self), self._values(self)


class FrozenRecord(Record):
    """An immutable slotted record: ``@dataclass(frozen=True, slots=True)`` without the
    definition cost."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._compared_values(self))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")
