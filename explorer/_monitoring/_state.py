"""The session state of automatic footprints, in one object.

Everything the hooks, the per-type caches and the code classification share lives on
:data:`STATE`, the one :class:`MonitoringState` of the process: a session (one
:func:`explorer._monitoring.activate` ... :func:`explorer._monitoring.deactivate`) starts
from a clean one, each run starts with :meth:`MonitoringState.start_run`, and
:meth:`MonitoringState.reset` ends the session. The hooks run on every watched
instruction, so they reach the state through this one module-level reference, and its
fields are slots (the cheapest attribute the interpreter has).

Also here: :class:`Site`, the record the instruction hooks dispatch on.
"""

from __future__ import annotations

import collections
import types
from collections.abc import Callable
from typing import Any, Final

from explorer._monitoring._dataflow import CodePlan

Footprint = set[Any]
"""A step's footprint (accesses ``(id(object), item, mode)``; see explorer._footprint)."""

CACHE_LIMIT: Final = 4096  # type caches grow with the classes each run makes


class Site:
    """An instruction of user code the hooks act on: the analysis's plan for it
    (:class:`explorer._monitoring._dataflow.SitePlan`) with its handler.

    ``first``, ``second`` and ``third`` are the plan's operands (what each kind of site
    holds is listed on :class:`~explorer._monitoring._dataflow.SitePlan`); ``capture``
    says whether a later instruction uses this one's output (then the handler stores it in
    :attr:`MonitoringState.values`)."""

    __slots__ = ("capture", "first", "handler", "offset", "second", "third", "where")

    def __init__(self, handler: Handler, offset: int, capture: bool, where: str,
                 first: Any = None, second: Any = None, third: Any = None) -> None:
        self.handler = handler
        self.offset = offset
        self.capture = capture
        self.where = where
        self.first = first
        self.second = second
        self.third = third

    def __repr__(self) -> str:
        return f"Site({self.handler.__name__}, {self.offset}, {self.where!r})"


Handler = Callable[[types.FrameType, Site, Footprint], bool]
"""Records what one site does in the running step; False when it cannot be modelled."""

ValueKey = tuple[int, int]  # (id(frame), offset of the instruction whose output it is)


class MonitoringState:
    """What one session of automatic footprints knows.

    Per run (cleared by :meth:`start_run`):
        ``values``: per frame, the outputs of instrumented instructions that later ones use
        as operands. An instruction whose output is used always writes its entry before
        the instruction that uses it can run (the analysis only links an operand to an
        instruction that produced it on every path), so an entry is never stale.
        ``expect``: the code object whose return value is that instruction's output (a
        call of a Python function, an await of a coroutine), set before the instruction
        runs. ``tainted``: frames awaiting something this package cannot see into, by id:
        every step resuming them is UNKNOWN (the id of a frame that returned is removed).

    Per session (cleared by :meth:`reset`):
        ``codes`` and ``sites``: the analysed code objects of user code, by id (``sites``
        is ``codes[id].sites`` with handlers); ``enabled``: those with local events set;
        ``kinds``: code classification by id, with ``keep`` holding the code objects so
        that their ids stay theirs; ``categories`` and ``attributes``: per-type caches;
        ``tool``: the ``sys.monitoring`` tool id held, ``unavailable``: none was free.

    ``debug``: when a Counter, why steps became UNKNOWN (site descriptions), for tuning and
    tests; it survives :meth:`reset`.
    """

    __slots__ = ("approved", "attributes", "categories", "codes", "debug", "enabled",
                 "expect", "held", "keep", "kept", "kinds", "package_precise", "package_step",
                 "package_steps", "packaged", "packages_off", "pending", "records",
                 "registries", "runs", "sites", "tainted", "tool", "unavailable", "values",
                 "yields")

    def __init__(self) -> None:
        self.values: dict[ValueKey, object] = {}
        self.expect: dict[ValueKey, types.CodeType | None] = {}
        # The next(generator) calls among those: the generator yields their output.
        self.yields: set[ValueKey] = set()
        self.tainted: set[int] = set()
        # The code of a modelled function whose call a rule has just described: it may
        # start (once) without making the step UNKNOWN.
        self.approved: types.CodeType | None = None
        # Thread locks taken in the running step, by id: [its footprint, depth, pinned]
        # (see explorer._monitoring._memory.lock_taken).
        self.held: dict[int, list[Any]] = {}
        # A store of a value the analysis does not know, into an instance attribute or
        # a dict item, recorded as a write: (its footprint, where it stores (the instance
        # dict, a slot's descriptor, the dict), the object, the name or key, the value
        # held before), until the step's next event (explorer._monitoring._hooks.settle).
        self.pending: tuple[Footprint, Any, object, Any, object] | None = None
        # Every object whose id the run's footprints hold, kept alive until the run ends:
        # an id names one object only while it lives, and a temporary freed in one step
        # would hand its id to a new object of another step, making the two steps
        # conflict over objects neither shares (see explorer._monitoring._memory.keep).
        self.kept: dict[int, object] = {}
        # asyncio's registries of tasks and async generators met this run, with the
        # containers inside them, by id (explorer._monitoring._memory._registry).
        self.registries: set[int] = set()
        # Classes of immutable records, the keys of pure caches, whose attributes are
        # set once by their constructor (explorer._monitoring._memory.add_pure_caches).
        self.records: set[type] = set()
        self.codes: dict[int, CodePlan] = {}
        self.sites: dict[int, dict[int, Site]] = {}
        self.enabled: list[types.CodeType] = []
        self.kinds: dict[int, int] = {}
        self.keep: list[types.CodeType] = []
        self.categories: dict[type, int] = {}
        # (type, name) -> how to read the attribute without running code (see
        # explorer._monitoring._categories.plain_value).
        self.attributes: dict[tuple[type, str], tuple[str, Any] | None] = {}
        self.tool: int | None = None
        self.unavailable = False
        self.debug: collections.Counter[str] | None = None
        # Whether watching the installed web-stack packages pays (see
        # explorer._monitoring._hooks.end_of_run): ``packaged``, the ids of their code
        # objects classified so far; ``package_step``, the footprint of the latest step
        # that ran their code; ``package_steps`` and ``package_precise``, how many such
        # steps ended and how many of those were recorded precisely; ``packages_off``,
        # their code is foreign for the rest of the session; ``runs``, runs ended.
        self.packaged: set[int] = set()
        self.package_step: Footprint | None = None
        self.package_steps = 0
        self.package_precise = 0
        self.packages_off = False
        self.runs = 0

    def start_run(self) -> None:
        """Forget the previous run's values (and the type caches once they are large)."""
        self.values.clear()
        self.expect.clear()
        self.yields.clear()
        self.tainted.clear()
        self.approved = None
        self.held.clear()
        self.pending = None
        self.kept.clear()
        self.registries.clear()
        if len(self.categories) > CACHE_LIMIT:  # classes made by each run would pile up
            self.categories.clear()
            self.attributes.clear()

    def reset(self) -> None:
        """End of a session: forget everything but ``debug``."""
        self.values.clear()
        self.expect.clear()
        self.yields.clear()
        self.tainted.clear()
        self.approved = None
        self.held.clear()
        self.pending = None
        self.kept.clear()
        self.registries.clear()
        self.records.clear()
        self.codes.clear()
        self.sites.clear()
        self.enabled.clear()
        self.kinds.clear()
        self.keep.clear()
        self.categories.clear()
        self.attributes.clear()
        self.tool = None
        self.unavailable = False
        self.packaged.clear()
        self.package_step = None
        self.package_steps = self.package_precise = self.runs = 0
        self.packages_off = False


STATE: Final = MonitoringState()
