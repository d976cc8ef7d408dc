"""Automatic footprints (Python 3.12+): what user code reads and writes, for reduction.

``explorer.strategies.DPOR(footprints="auto")`` records, for every step, the attribute, item,
global and closure-variable accesses of the scenario's own code, with ``sys.monitoring``
(PEP 669), so that steps touching different state are recognised as independent without
declaring anything with :func:`explorer.shared`.

Which code is watched
    Code objects are classified once, by file: the explorer, its strategies and asyncio
    are *trusted* (what they do is recorded by the runtime: primitives, task completion,
    callbacks); ``enum``, ``abc``, ``typing``, ``_collections_abc``, ``contextlib`` and
    ``re`` are transparent *helpers*; ``json`` and ``inspect.getblock`` (with the
    tokenizer code only it runs) are *modelled* (rules describe their calls);
    the rest of the standard library and the web stack's packages (httpx, Starlette,
    FastAPI, anyio, pydantic, ...) are *library* code; other installed packages are
    *foreign*; everything else is *user* code. User and library code get instruction and
    call events (library code once it runs in a precisely recorded step or is called from
    watched code), and only at the instructions that can touch shared state (the others
    are switched off the first time they run), so trusted and foreign code run at full
    speed.

The memory model
    * attributes of Python objects: ``(object, name)``; module globals:
      ``(module.__dict__, name)``; closure variables: ``(cell, name)`` (``_cells``; by
      name where the cell cannot be read);
    * items of the builtin containers (``list``, ``dict``, ``set``, ``deque``,
      ``bytearray``, ``defaultdict``, ``OrderedDict``): ``(container, key)``, the whole
      container for size, iteration and structural changes, and a separate *insertion
      order* location written by every insertion of a new key;
    * asyncio futures and tasks: ``(future, whole)``;
    * storing into a plain instance attribute (or slot, or existing ``dict`` item) the
      very object it holds, or an equal ``int``/``str``/``bytes``, is a read (a *silent
      store*; a value the analysis does not know is compared after the store, at the
      step's next event); asyncio's registries of tasks and async generators, and the
      web stack's pure caches, are not recorded; every object whose id a footprint holds is kept
      alive until the run ends, so an id names one object for the whole run;
    * any other C-level state (objects of extension types): reading it adds a read of one
      sentinel location, and writing it (through a call this package does not model, an
      item or attribute assignment) makes the step's footprint UNKNOWN.

Why it is sound
    A step is recorded precisely only if every instruction it ran in user code is
    modelled, with its operands identified, and every call it made leaves user code only
    for code whose effects are modelled; anything else adds :data:`UNKNOWN`, which is
    dependent on every step that touches anything. Operands are identified without
    reading the value stack: a per-code-object data-flow analysis of the bytecode says, for
    each operand of an instruction that needs one, whether it is a constant, a local
    variable (read back from the frame), or the output of an earlier instrumented
    instruction (computed there, before it ran, only when that is free of side effects,
    and kept per frame); an operand that is none of these makes the step UNKNOWN. Foreign
    Python code entered from user code (directly, or from C code user code called) makes
    the step UNKNOWN, and so does modelled code entered other than through its rule; C
    functions and methods called from watched code are looked up in a
    table of modelled builtins, and any other makes the step UNKNOWN.

    Assumptions, stated in docs/reduction.md: ``__hash__`` and ``__eq__`` of dictionary
    keys and set elements defined outside user code do not touch shared state; callables
    that asyncio calls on a task's behalf (``Condition.wait_for`` predicates) are user
    code or do not touch shared state; futures and tasks are asyncio's C implementation.

The package
    ``_session`` (activate, deactivate) -> ``_hooks`` (the callbacks) -> ``_calls`` (calls
    from user code) -> ``_handlers`` (per-instruction handlers) -> ``_builtins`` (the table
    of modelled builtins) -> ``_memory`` (recording accesses) -> ``_categories`` (how the C
    level treats a type) -> ``_places`` (which code is watched) -> ``_state`` (the one
    session state object, :data:`STATE`) -> ``_dataflow`` (the pure bytecode analysis) ->
    ``_values`` (value marks). Each module imports only modules to its right; none imports
    the strategies or a runtime package, and only ``_session`` and ``_hooks`` use
    ``sys.monitoring`` (``_calls`` reads its MISSING constant).

    For tuning: set ``STATE.debug`` to a ``collections.Counter`` and it counts why steps
    became UNKNOWN, by site.
"""

from __future__ import annotations

from explorer._footprint import require_auto
from explorer._monitoring._dataflow import CallPlan, CodePlan, SitePlan, analyse
from explorer._monitoring._places import FOREIGN, HELPER, TRUSTED, USER, code_kind
from explorer._monitoring._session import SUPPORTED, activate, deactivate
from explorer._monitoring._state import STATE, MonitoringState

__all__ = [
    "FOREIGN", "HELPER", "STATE", "SUPPORTED", "TRUSTED", "USER", "CallPlan", "CodePlan",
    "MonitoringState", "SitePlan", "activate", "analyse", "code_kind", "deactivate",
    "require_auto",
]
