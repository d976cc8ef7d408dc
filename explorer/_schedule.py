"""Schedules: the decisions of one run, and their short versioned string form.

A schedule is the list of candidate indices chosen at each scheduling point (a moment
where two or more units of work were ready). Index 0 is always what the stock runtime
would have run next, so a schedule is stored as its deviations only: the positions and
values of the non-zero decisions. Trailing default decisions are implied.

String form (version 1)::

    v1:                      the stock schedule (no deviations)
    v1:3=1,7=2               at scheduling point 3 take candidate 1, at point 7 candidate 2
    v1+timers:3=1            the same, with timer-firing choices enabled while running
    v1+faults:3=1            with injected network faults offered (every kind)
    v1+faults=reset.dropped:3=1   with only the faults of those kinds offered

A flag changes what the indices mean (a timer candidate, a fault point), so it is part of
the string; a string without it reads exactly as before the flag existed.

The string is what failure messages print and what ``explorer.replay`` accepts. Points and
choices are plain ASCII digits below :data:`MAX_INDEX`: a run reaches its step bound (20,000
steps by default) long before a million scheduling points, and no scheduling point offers a
million ready candidates, so a larger number is a damaged or hand-edited string and is refused
instead of being expanded into a list of that length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from explorer._errors import InvalidScheduleError
from explorer._faults import ALL, KINDS

FORMAT_VERSION = 1
_FLAGS = ("timers",)
# Patterns, not compiled ones: re compiles and caches them on first use, so importing the
# module (every exploration does) compiles nothing; only parsing a schedule string needs them.
_HEADER = r"v(?P<version>[0-9]{1,9})(?P<flags>(?:\+[a-z]+(?:=[a-z.]+)?)*)"
# ASCII digits only: ``\d`` would also accept the digits of other scripts (fullwidth ones).
_ENTRY = r"(?P<point>[0-9]+)=(?P<choice>[0-9]+)"
MAX_INDEX = 1_000_000
"""Scheduling points and candidate indices in a schedule string are below this."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """An immutable schedule: ``deviations`` maps scheduling point -> chosen index (> 0).

    ``timers`` records whether the run offered "fire the next timer now" as an extra
    candidate at scheduling points, which changes what each index means; ``faults`` the
    network fault kinds offered at fault points (:mod:`explorer._faults`; empty: none,
    and then no fault point exists).
    """

    deviations: tuple[tuple[int, int], ...] = ()
    timers: bool = False
    faults: frozenset[str] = frozenset()

    @classmethod
    def from_decisions(cls, decisions: Iterable[int], *, timers: bool = False,
                       faults: frozenset[str] = frozenset()) -> Schedule:
        """Build a schedule from the full list of decisions of a run."""
        return cls(tuple((i, d) for i, d in enumerate(decisions) if d), timers, faults)

    @classmethod
    def parse(cls, text: str) -> Schedule:
        """Parse the string form; raise :class:`InvalidScheduleError` naming the problem."""
        if not isinstance(text, str):
            raise InvalidScheduleError(
                f"a schedule must be a string like 'v1:3=1,7=2', got {type(text).__name__}"
            )
        head, sep, body = text.strip().partition(":")
        match = re.fullmatch(_HEADER, head)
        if not sep or match is None:
            raise InvalidScheduleError(
                f"{_clip(text)!r} is not a schedule string: it should look like 'v1:3=1,7=2' "
                "(copy it whole from the failure message)"
            )
        version = int(match["version"])
        if version != FORMAT_VERSION:
            raise InvalidScheduleError(
                f"schedule {_clip(text)!r} has format version {version}, but this version "
                f"of the explorer reads version {FORMAT_VERSION}; upgrade the explorer to replay it"
            )
        flags = [f for f in match["flags"].split("+") if f]
        faults = _faults_flag(text, flags)
        flags = [f for f in flags if f != "faults" and not f.startswith("faults=")]
        unknown = [f for f in flags if f not in _FLAGS]
        if unknown:
            raise InvalidScheduleError(
                f"schedule {_clip(text)!r} uses unknown option(s) {', '.join(unknown)}; "
                f"known options are: {', '.join(_FLAGS)}, faults"
            )
        deviations: list[tuple[int, int]] = []
        for raw in filter(None, body.split(",")):
            entry = re.fullmatch(_ENTRY, raw.strip())
            if entry is None:
                raise InvalidScheduleError(
                    f"schedule {_clip(text)!r}: {_clip(raw)!r} is not a 'point=choice' pair "
                    "of integers"
                )
            point = _index(text, raw, entry["point"], "scheduling point")
            choice = _index(text, raw, entry["choice"], "candidate index")
            if choice == 0:
                raise InvalidScheduleError(
                    f"schedule {_clip(text)!r}: {raw!r} records a default choice; only "
                    "deviations (choice >= 1) are written"
                )
            if deviations and point <= deviations[-1][0]:
                raise InvalidScheduleError(
                    f"schedule {_clip(text)!r}: scheduling points must increase, "
                    f"but {point} follows {deviations[-1][0]}"
                )
            deviations.append((point, choice))
        return cls(tuple(deviations), "timers" in flags, faults)

    @classmethod
    def coerce(cls, value: Schedule | str) -> Schedule:
        """Accept a :class:`Schedule` or its string form."""
        return value if isinstance(value, Schedule) else cls.parse(value)

    def decisions(self) -> list[int]:
        """The explicit decisions up to and including the last deviation."""
        if not self.deviations:
            return []
        out = [0] * (self.deviations[-1][0] + 1)
        for point, choice in self.deviations:
            out[point] = choice
        return out

    @property
    def deviation_count(self) -> int:
        """How many decisions differ from the stock schedule."""
        return len(self.deviations)

    def __str__(self) -> str:
        flags = "+timers" if self.timers else ""
        if self.faults:
            flags += "+faults" if self.faults >= ALL else \
                "+faults=" + ".".join(k for k in KINDS if k in self.faults)
        body = ",".join(f"{p}={c}" for p, c in self.deviations)
        return f"v{FORMAT_VERSION}{flags}:{body}"


def _faults_flag(text: str, flags: list[str]) -> frozenset[str]:
    """The fault kinds a header's ``faults`` flag names (``faults``: all of them)."""
    found = [f for f in flags if f == "faults" or f.startswith("faults=")]
    if not found:
        return frozenset()
    if len(found) > 1:
        raise InvalidScheduleError(f"schedule {_clip(text)!r} names the faults option twice; "
                                   "copy the string whole from the failure message")
    kinds = found[0].partition("=")[2]
    if not kinds:
        return ALL
    chosen = frozenset(kinds.split("."))
    unknown = sorted(chosen - ALL)
    if unknown or "" in chosen:
        raise InvalidScheduleError(
            f"schedule {_clip(text)!r} names unknown fault kind(s) "
            f"{', '.join(map(repr, unknown)) or repr('')}; the kinds are "
            f"{', '.join(KINDS)} (written as +faults=reset.dropped)")
    return chosen


def _index(text: str, raw: str, digits: str, what: str) -> int:
    # Compare lengths before int(): int() of a few thousand digits raises ValueError
    # ("exceeds the limit"), and a bound checked on the digits never builds a huge number.
    if len(digits.lstrip("0")) > len(str(MAX_INDEX)) or int(digits) >= MAX_INDEX:
        shown = digits if len(digits) <= 24 else f"{digits[:12]}...({len(digits)} digits)"
        raise InvalidScheduleError(
            f"schedule {_clip(text)!r}: {_clip(raw)!r} has {what} {shown}, beyond any run "
            f"(at most {MAX_INDEX - 1:,}); the string is damaged: copy it whole from the "
            "failure message or the corpus entry")
    return int(digits)


def _clip(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} characters)"


def count_deviations(decisions: Sequence[int]) -> int:
    """Number of non-default decisions in a decision list."""
    return sum(1 for d in decisions if d)
