"""The progress bars: each bar counts its own failures, the overall bar all of them."""

from __future__ import annotations

import pytest

from explorer._progress import Bars, progress_enabled


def _fields(bars: Bars) -> list[tuple[str, int]]:
    progress = bars._progress  # the rich Progress the bars draw with
    assert progress is not None
    return [(task.description, task.fields["failures"]) for task in progress.tasks]


def test_a_new_bar_does_not_carry_the_previous_failures(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPLORER_PROGRESS", "0")  # drawn on the captured stderr, plainly
    with Bars(enabled=True) as bars:
        bars.overall("nightly", total=3, done=0, seconds=60.0)
        bars.start("first target", total=10)
        bars.advance(4)
        bars.failed()
        bars.start("second target", total=10)
        bars.advance(2)
        assert _fields(bars) == [("nightly", 1), ("first target", 1), ("second target", 0)]
        bars.failed()
        bars.step_overall()
        assert _fields(bars) == [("nightly", 2), ("first target", 1), ("second target", 1)]
        assert bars.failures == 2


def test_disabled_bars_draw_nothing_and_still_count() -> None:
    with Bars(enabled=False) as bars:
        bars.start("target", total=5)
        bars.failed()
        bars.start("next", total=5)
        assert bars.failures == 1 and bars._progress is None


@pytest.mark.parametrize(("setting", "expected"), [("1", True), ("yes", True), ("0", False),
                                                   ("off", False)])
def test_the_environment_decides_whether_bars_are_drawn(
        monkeypatch: pytest.MonkeyPatch, setting: str, expected: bool) -> None:
    monkeypatch.setenv("EXPLORER_PROGRESS", setting)
    assert progress_enabled() is expected
