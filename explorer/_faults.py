"""Injected network faults: their kinds, how a fault site asks for one, how each reads.

Contract: a fault is a *decision*, never chance. A fault site (a connection attempt, a
delivery of bytes, a server's response, in a runtime's simulated network) calls
:func:`fault_at`, which offers the run's chooser the options "no fault" (index 0, the stock
behaviour) and each enabled kind that fits the site. Index 0 first means that a run with
every decision at 0 injects no fault, that every injected fault counts as one deviation,
and so that shrinking, which minimises deviations, keeps only the faults a failure needs.
With faults off (the default) a site asks nothing: no scheduling point is added, and every
schedule recorded without faults replays unchanged.

The kinds (the ``faults`` setting takes True for all of them, or a selection):

``refused``
    a connection attempt is refused (``ConnectionRefusedError`` in the client);
``reset``
    an established connection is reset while bytes are delivered
    (``ConnectionResetError`` on both ends);
``dropped``
    the server processed the request but its response is lost, and the connection is then
    reset: the client cannot tell whether the request took effect;
``unanswered``
    the server's response never arrives: its bytes are held forever, so the client waits
    until its own timeout fires (virtual time gets there at once).

A site offers at most one decision per event, so the number of scheduling points stays
small: ``connect`` offers ``refused``, ``deliver`` offers ``reset``, ``respond`` offers
``dropped`` and ``unanswered``.

This module is runtime-neutral: it imports only the neutral floor. A runtime's decider
(the controlled asyncio loop, the trio scheduler) implements :class:`Decider`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from types import FrameType
from typing import Final, Literal, Protocol, TypeAlias, runtime_checkable

from explorer._errors import UsageError
from explorer._locations import Location, frame_location, is_user_file
from explorer._runtime import Candidate, active_run

KINDS: Final = ("refused", "reset", "dropped", "unanswered")
"""Every fault kind, in the order sites offer them (after "no fault") and names list them."""

Site: TypeAlias = Literal["connect", "deliver", "respond"]
"""Where in a connection's life a fault may be injected."""

SITE_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "connect": ("refused",),
    "deliver": ("reset",),
    "respond": ("dropped", "unanswered"),
}
"""Which kinds each site offers."""

NO_FAULT: Final = "no fault"
"""The operation of option 0 at a fault point: the stock behaviour."""

FAULT_KIND: Final = "fault"
"""The :attr:`~explorer._runtime.Candidate.kind` of every option at a fault point."""

NONE: Final[frozenset[str]] = frozenset()
ALL: Final[frozenset[str]] = frozenset(KINDS)

_SENTENCES: Final = {
    "refused": "the connection to {resource} was refused",
    "reset": "the connection to {resource} was reset",
    "unanswered": "the response from {resource} never came",
    "dropped": "the response from {resource} was dropped after the server processed "
               "the request",
}


@runtime_checkable
class Decider(Protocol):
    """What a fault site needs of the run in progress: the enabled kinds, and a
    controlled choice among described options (index 0 is the stock behaviour)."""

    @property
    def faults(self) -> frozenset[str]:
        """The fault kinds this run may inject (empty: none)."""
        ...

    def decide(self, options: Sequence[Candidate]) -> int:
        """Let the run's chooser pick one of ``options``; 0 when it cannot decide now."""
        ...


def fault_at(decider: Decider, site: Site, resource: str) -> str | None:
    """Ask whether a fault happens at ``site`` of the connection named ``resource``
    (``db.internal:5432``): the kind chosen, or None for none (always None with faults
    off, without a scheduling point)."""
    enabled = decider.faults
    if not enabled:
        return None
    kinds = [kind for kind in SITE_KINDS[site] if kind in enabled]
    if not kinds:
        return None
    options = [Candidate(None, FAULT_KIND, None, NO_FAULT, resource)]
    options += [Candidate(None, FAULT_KIND, None, kind, resource) for kind in kinds]
    chosen = decider.decide(options)
    return kinds[chosen - 1] if chosen else None


def describe(kind: str, resource: str | None) -> str:
    """How a fault reads in a story: ``the connection to db.internal:5432 was reset``."""
    sentence = _SENTENCES.get(kind)
    if sentence is None:
        return f"fault {kind} at {resource or 'an unnamed connection'}"
    return sentence.format(resource=resource or "an unnamed connection")


def fault_kinds(value: object) -> frozenset[str]:
    """The kinds a ``faults`` setting enables: False, None or "" for none; True,
    ``"all"`` or ``"true"`` for every kind; or a selection, as an iterable of kinds or a
    comma-separated string (``"reset,dropped"``). Raises :class:`UsageError` naming the
    unknown kind otherwise."""
    if value is None or value is False:
        return NONE
    if value is True:
        return ALL
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("", "false", "no", "off", "0", "none"):
            return NONE
        if text in ("true", "yes", "on", "1", "all"):
            return ALL
        parts: Iterable[object] = [p.strip() for p in text.split(",") if p.strip()]
    elif isinstance(value, Iterable):
        parts = list(value)
    else:
        raise UsageError(_expected(value))
    kinds = frozenset(parts)
    unknown = sorted(repr(k) for k in kinds if k not in KINDS)
    if unknown:
        raise UsageError(f"unknown fault kind(s) {', '.join(unknown)} in faults={value!r}; "
                         f"the kinds are {', '.join(KINDS)} (or faults=True for all)")
    return frozenset(str(k) for k in kinds)


def _expected(value: object) -> str:
    return (f"faults must be True, False or a selection of the kinds {', '.join(KINDS)}, "
            f"got {value!r}; for example faults=True or faults={{'reset', 'dropped'}}")


def spell(kinds: frozenset[str]) -> str:
    """The kinds as text: ``""`` for none, ``"all"``, or the kinds in :data:`KINDS`
    order joined by commas (settings sent to another process, messages)."""
    if not kinds:
        return ""
    if kinds == ALL:
        return "all"
    return ",".join(kind for kind in KINDS if kind in kinds)


def fault_here(site: Site, resource: str) -> str | None:
    """:func:`fault_at` for the run being driven on this thread, found through the
    active-run hook of :mod:`explorer._runtime`: for a fault site that holds no runtime
    object. None outside a run, or under a runtime that makes no such choice."""
    run: object = active_run()  # a run that also decides faults, if its runtime does
    if not isinstance(run, Decider):
        return None
    return fault_at(run, site, resource)


class OptionsView:
    """The :class:`~explorer._runtime.PointView` of a controlled choice made inside a
    step (a runtime's ``decide``): its options, described up front (they are few, and
    built only where such a choice is enabled). Options of no task belong to their kind
    (``fault``), as the timer candidate belongs to ``clock``."""

    __slots__ = ("_options",)

    def __init__(self, options: Sequence[Candidate]) -> None:
        self._options = options

    def candidate(self, index: int) -> Candidate:
        return self._options[index]

    def process(self, index: int) -> str:
        option = self._options[index]
        return option.task if option.task is not None else option.kind

    def candidates(self, count: int) -> Sequence[Candidate]:
        return self._options[:count]

    def processes(self, count: int) -> list[str]:
        return [self.process(i) for i in range(count)]

    def recorded_steps(self) -> None:
        return None  # faults are refused while footprints are recorded (RunMode)

    def current(self) -> None:
        return None  # the options belong to no task: choosing one is never a switch

    def current_call(self) -> None:
        return None  # no current task (see current)


def site_location(top: FrameType | None) -> Location | None:
    """Where the running task reached a fault site: the innermost frame of user code on
    the current call stack between the caller and ``top``, the task's outermost
    coroutine frame. None when the step is no task's (a network callback) or no user
    frame is on that part of the stack (frames beyond ``top`` belong to the runtime and
    to whoever started the exploration, never to the step)."""
    if top is None:
        return None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if is_user_file(frame.f_code.co_filename):
            return frame_location(frame)
        if frame is top:
            return None
        frame = frame.f_back
    return None
