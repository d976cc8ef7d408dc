"""``Fixed``: replay one recorded list of decisions (used by replay and confirmation)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from explorer._errors import ReplayDivergence
from explorer._runtime import PointView, display_task
from explorer.strategies._base import Strategy


class Fixed(Strategy):
    """Make exactly the recorded decisions; default (0) after the last recorded one.

    Strict (the default): a decision that does not fit (index >= candidates) raises
    :class:`ReplayDivergence`. Tolerant: it takes the default choice instead and records
    the divergence in :attr:`divergences`.
    """

    name = "replay"

    def __init__(self, decisions: Sequence[int], *, strict: bool = True,
                 expected: Mapping[int, str] | None = None) -> None:
        self.decisions = list(decisions)
        self.strict = strict
        self.expected = dict(expected or {})
        self.position = 0
        self.divergences: list[tuple[int, int, int]] = []
        self._ran = False

    def start_run(self) -> bool:
        if self._ran:
            return False
        self._ran = True
        self.position = 0
        return True

    def choose(self, count: int, view: PointView) -> int:
        k = self.position
        self.position = k + 1
        decisions = self.decisions
        choice = decisions[k] if k < len(decisions) else 0
        if choice < count:
            wanted = self.expected.get(k)
            if wanted is None:
                return choice
            candidate = view.candidate(choice)
            found = display_task(candidate.task, candidate.kind)
            if found == wanted:
                return choice
            return self._diverged(
                k, choice, count,
                f"at scheduling point {k} it picks candidate {choice}, which was {wanted} "
                f"when the schedule was saved, but is now {found}", "since")
        return self._diverged(
            k, choice, count,
            f"at scheduling point {k} it asks for candidate {choice}, but only {count} "
            "candidate(s) were ready", "since the schedule was recorded")

    def _diverged(self, point: int, choice: int, count: int, reason: str, since: str) -> int:
        if self.strict:
            # The message keeps the advice for the usual cause (the code changed); the
            # reason alone lets the determinism check and the command line give theirs.
            message = (f"the schedule no longer fits the code: {reason}; the code or the "
                       f"scenario changed {since} (replay with strict=False to continue "
                       "with default choices from there)")
            raise ReplayDivergence(message, point=point, expected=choice, available=count,
                                   reason=reason)
        self.divergences.append((point, choice, count))
        return 0

    def check_complete(self) -> None:
        """Strict replays must reach every recorded deviation."""
        last = max((i for i, d in enumerate(self.decisions) if d), default=-1)
        if self.position <= last:
            reason = (f"the run ended after {self.position} scheduling point(s), but the "
                      f"schedule records a decision at point {last}")
            if self.strict:
                raise ReplayDivergence(f"the schedule no longer fits the code: {reason}",
                                       point=self.position, expected=self.decisions[last],
                                       available=0, reason=reason)
            self.divergences.append((self.position, self.decisions[last], 0))
