"""The plugin under pytest-xdist: the workers' corpus summaries are printed once, by the
controller, and workers saving the same bug leave one corpus entry."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

pytest.importorskip("xdist")

# Two explored tests with the same lost update (read, await, write back), one per
# parameter, so that two workers each find and save a failure.
LOST_UPDATE = '''
import asyncio

import pytest


async def add(store, amount):
    seen = store["total"]
    await asyncio.sleep(0)  # the cache round trip
    store["total"] = seen + amount


@pytest.mark.parametrize("amount", [1, 2, 3, 4])
@pytest.mark.explore(strategy="systematic")
async def test_totals(amount):
    store = {"total": 0}
    await asyncio.gather(add(store, amount), add(store, amount))
    assert store["total"] == 2 * amount
'''


def _stories(out: str) -> int:
    """How many stories the failures section tells."""
    failures = out.split("short test summary info")[0]
    return failures.count("Why: what ran out of turn to make it fail:")


@pytest.mark.slow  # two pytest processes with two workers each
def test_corpus_summary_is_printed_once_by_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_totals=LOST_UPDATE)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:asyncio", "-p", "no:trio",
                                           "-p", "no:randomly", "--explore-show-statistics")
    result.assert_outcomes(failed=4)
    out = result.stdout.str()
    assert out.count("= explorer corpus =") == 1, out
    saved = [line for line in result.outlines if line.startswith("SAVED ")]
    entries = sorted(p.name for p in (pytester.path / "corpus").glob("*.json"))
    assert len(saved) == len(entries) == 4, out
    for n in (1, 2, 3, 4):
        [line] = [s for s in saved if s.startswith(f"SAVED test_totals.py::test_totals[{n}]: ")]
        assert line.rpartition("saved corpus/")[2] in entries
    assert out.count("= explorer statistics =") == 1
    assert sum(line.startswith("test_totals.py::test_totals[") for line in result.outlines) == 4
    # Rerun: each entry replays (on whichever worker) and tells its story; the explored
    # tests that find the same bugs again say so in one line, so each story shows once.
    again = pytester.runpytest_subprocess("-n", "2", "-p", "no:asyncio", "-p", "no:trio",
                                          "-p", "no:randomly")
    again.assert_outcomes(failed=8)
    # (Counted above pytest's short summary, which repeats whole messages on CI.)
    assert _stories(again.stdout.str()) == 4
    assert "SAVED" not in again.stdout.str()
