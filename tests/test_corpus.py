"""The corpus, replay statuses, @reproduce/@pin, readable failures, determinism reports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import explorer
from examples import bank, counter
from tests.conftest import ROOT


def _found(fn: object, **kwargs: object) -> explorer.ScheduleFailure:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(fn, strategy="systematic", **kwargs)  # type: ignore[arg-type]
    return info.value


def test_save_is_content_addressed_and_idempotent(tmp_path: Path) -> None:
    failure = _found(bank.double_spend, corpus=tmp_path)
    assert failure.corpus_path is not None
    assert failure.corpus_path.parent == tmp_path
    assert failure.corpus_path.name.startswith("double_spend-")
    assert f"Saved:    {failure.corpus_path}" in str(failure)
    again = _found(bank.double_spend, corpus=tmp_path)
    assert again.corpus_path == failure.corpus_path
    assert [p.name for p in tmp_path.iterdir()] == [failure.corpus_path.name]
    data = json.loads(failure.corpus_path.read_text())
    assert data["format"] == "explorer-corpus"
    assert data["version"] == 1
    assert data["scenario"] == "examples.bank.double_spend"
    assert data["runtime"] == "asyncio"
    assert data["schedule"] == str(failure.schedule)
    assert data["failure"]["kind"] == "assertion"
    assert data["failure"]["location"]["file"] == "bank.py"
    assert data["found"]["strategy"]["name"] == "systematic"
    assert data["shrunk"] is True
    # The shrunk schedule: the phone's withdrawal runs ahead through its three steps (one
    # switch, a deviation at each step).
    assert [e["task"] for e in data["expected"]] == ["mobile_withdrawal#1"] * 3


def test_round_trip_replays_in_a_fresh_process(tmp_path: Path) -> None:
    _found(bank.double_spend, corpus=tmp_path)
    _found(counter.lost_update, corpus=tmp_path)
    code = ("import json, sys, explorer\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from examples import bank, counter\n"
            "reports = explorer.replay_corpus(sys.argv[1], scenarios=[bank.double_spend, "
            "counter.lost_update])\n"
            "print(json.dumps([[r.path.name, r.status, r.same] for r in reports]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    rows = json.loads(proc.stdout)
    assert len(rows) == 2
    assert all(status == "fails" and same for _name, status, same in rows)


async def _spend(*, fixed: bool) -> None:
    account = {"balance": 100}

    async def withdraw(amount: int) -> None:
        if account["balance"] >= amount:
            await asyncio.sleep(0)
            if fixed and account["balance"] < amount:
                return  # re-checked after the await: the same interleavings, no overdraft
            account["balance"] -= amount

    await asyncio.gather(withdraw(80), withdraw(80))
    assert account["balance"] >= 0


async def spend_buggy() -> None:
    await _spend(fixed=False)


async def spend_fixed() -> None:
    await _spend(fixed=True)


def test_fixed_diverged_and_unknown_scenario_statuses(tmp_path: Path) -> None:
    from explorer._regressions import replay_entry

    path = _found(spend_buggy, corpus=tmp_path).corpus_path
    assert path is not None
    entry = explorer.Corpus(tmp_path).load(path)
    assert replay_entry(entry, spend_buggy).status == "fails"
    fixed = replay_entry(entry, spend_fixed)
    assert fixed.status == "fixed"
    assert "passes now" in fixed.detail
    bank_path = _found(bank.double_spend, corpus=tmp_path).corpus_path
    assert bank_path is not None
    bank_entry = explorer.Corpus(tmp_path).load(bank_path)
    changed = replay_entry(bank_entry, bank.double_spend_fixed)  # the fix moved the awaits
    assert changed.status == "diverged"
    path.unlink()
    path = bank_path
    data = json.loads(path.read_text())
    data["expected"][0]["task"] = "somebody_else#1"
    path.write_text(json.dumps(data))
    report = explorer.replay_corpus(tmp_path, scenarios=[bank.double_spend])[0]
    assert report.status == "diverged"
    assert "which was somebody_else#1 when the schedule was saved, but is now " \
           "mobile_withdrawal#1" in report.detail
    data["scenario"] = "examples.bank.no_such_scenario"
    path.write_text(json.dumps(data))
    report = explorer.replay_corpus(tmp_path, scenarios=[bank.double_spend])[0]
    assert report.status == "unknown-scenario"
    assert "no scenario named examples.bank.no_such_scenario was given" in report.detail


@pytest.mark.parametrize(("content", "status", "message"), [
    (b"{not json", "unreadable", "is not valid JSON (Expecting property name"),
    (b'{"format": "explorer-corpus", "version": 1, "scen', "unreadable",
     "corrupt or truncated"),
    (b"\xff\xfe\x00", "unreadable", "is not UTF-8 text"),
    (b'{"format": "something-else"}', "unreadable", "is JSON but not a corpus entry"),
    (b'{"format": "explorer-corpus", "version": 1}', "unreadable",
     'field "scenario" is missing'),
    (b'{"format": "explorer-corpus", "version": 99}', "newer-format",
     "written by a newer explorer (format version 99; this one reads up to 1)"),
    (b" " * 1_000_001, "unreadable", "more than the 1,000,000 bytes a corpus entry may have"),
])
def test_bad_files_are_named_and_the_rest_still_run(tmp_path: Path, content: bytes,
                                                    status: str, message: str) -> None:
    _found(bank.double_spend, corpus=tmp_path)
    bad = tmp_path / "aaa-bad.json"
    bad.write_bytes(content)
    reports = explorer.replay_corpus(tmp_path, scenarios=[bank.double_spend])
    assert [r.status for r in reports] == [status, "fails"]
    assert str(bad) in reports[0].detail
    assert message in reports[0].detail
    with pytest.raises(explorer.CorpusError, match=r"aaa-bad\.json"):
        explorer.Corpus(tmp_path).load(bad)


def test_an_interrupted_write_leaves_no_broken_file(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    failure = _found(bank.double_spend)

    def crash(src: str, dst: str) -> None:
        raise KeyboardInterrupt  # the process is interrupted between write and rename

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        explorer.Corpus(tmp_path).save(failure)
    assert list(tmp_path.iterdir()) == []


@explorer.reproduce("v1:0=1,1=1")
async def _reproduced() -> None:
    await bank.double_spend()


@explorer.reproduce("v1:")
async def _no_longer_fails() -> None:
    await bank.double_spend()


def test_reproduce_runs_exactly_that_schedule() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_reproduced, max_schedules=500)
    assert str(info.value.schedule) == "v1:0=1,1=1"
    assert info.value.strategy == {"name": "reproduce"}
    quiet = explorer.explore(_reproduced, raise_on_failure=False)
    assert quiet.failure is not None and quiet.schedules == 1
    with pytest.raises(explorer.DidNotReproduce, match=r"no longer makes .* fail"):
        explorer.explore(_no_longer_fails)


@explorer.pin("v1:", "v1:0=1,1=1")
async def _pinned() -> None:
    await bank.double_spend()


@explorer.pin("v1:0=1,1=1")
async def _pinned_fixed() -> None:
    await bank.double_spend_fixed()


def test_pinned_schedules_run_first() -> None:
    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(_pinned, strategy="random", seed=0, max_schedules=1)
    assert info.value.found_after == 2
    assert info.value.strategy == {"name": "pinned"}
    result = explorer.explore(_pinned_fixed, max_schedules=3, seed=0)
    assert result.ok
    assert result.schedules == 3


def test_pin_needs_a_schedule() -> None:
    with pytest.raises(explorer.UsageError, match="at least one schedule"):
        explorer.pin()


def test_failure_explains_its_deviations_on_source_lines() -> None:
    failure = _found(bank.double_spend)
    text = str(failure)
    assert "Why: what ran out of turn to make it fail:" in text
    # One item for the run-ahead of the phone's withdrawal, at the scenario's lines.
    [item] = failure.to_json()["explanation"]
    assert isinstance(item, str) and item in text
    assert item.startswith("steps ") and ": mobile_withdrawal 1 ran from bank.py:" in item
    assert "`await asyncio.sleep(0)  # token lookup`" in item
    assert "withdraw 1 " in item and "bank.py:26" in item  # where the ATM stood
    assert "Swimlanes" in text
    header = next(line for line in text.splitlines() if line.startswith("step   main"))
    assert "mobile_withdrawal" in header and "withdraw#1" in header


def test_determinism_report_shows_the_first_differing_step() -> None:
    runs = {"n": 0}

    async def drifting() -> None:
        runs["n"] += 1

        async def worker() -> None:
            if runs["n"] % 3 == 2:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0)

        await asyncio.gather(worker(), worker())

    with pytest.raises(explorer.ScheduleFailure) as info:
        explorer.explore(drifting, strategy="systematic")
    failure = info.value
    assert failure.kind == "nondeterminism"
    assert "two traced replays of the same schedule differ; first difference at step" \
        in str(failure)
    assert "first run:" in str(failure) and "second run:" in str(failure)


# --------------------------------------------------------------------------- the Corpus API


def _twin(failure: explorer.ScheduleFailure, schedule: str, *,
          shrunk: bool) -> explorer.ScheduleFailure:
    """The same failure (scenario, runtime, outcome) under another schedule."""
    return explorer.ScheduleFailure(
        failure.outcome, explorer.Schedule.parse(schedule), failure.trace,
        scenario=failure.scenario, runtime=failure.runtime,
        shrink=failure.shrink if shrunk else None)


def test_save_keeps_one_entry_per_failure(tmp_path: Path) -> None:
    corpus = explorer.Corpus(tmp_path)
    failure = _found(bank.double_spend)
    first = corpus.save(failure)
    assert (first.status, first.new, first.added) == ("new", True, True)
    again = corpus.save(failure)
    assert (again.status, again.path, again.new) == ("kept", first.path, False)
    # The same bug under another schedule is the same entry, kept as it is.
    other = corpus.save(_twin(failure, "v1:0=1,2=1,5=1", shrunk=True))
    assert (other.status, other.path) == ("kept", first.path)
    assert corpus.paths() == [first.path]
    # Another runtime is another entry.
    trio = explorer.ScheduleFailure(failure.outcome, failure.schedule, failure.trace,
                                    scenario=failure.scenario, runtime="trio")
    assert corpus.save(trio).status == "new" and len(corpus.paths()) == 2


def test_save_keeps_the_simplest_schedule_of_a_bug_whatever_the_order(tmp_path: Path) -> None:
    failure = _found(bank.double_spend)
    longer = _twin(failure, f"{failure.schedule},90=1", shrunk=True)
    assert longer.deviations == failure.deviations + 1
    # Saved first, the longer schedule gives way to the simpler one found later...
    first = explorer.Corpus(tmp_path / "a")
    assert first.save(longer).status == "new"
    simpler = first.save(failure)
    assert simpler.status == "replaced" and first.paths() == [simpler.path]
    # ... and saved second, it is not kept: either order leaves the same single entry.
    second = explorer.Corpus(tmp_path / "b")
    second.save(failure)
    assert second.save(longer).status == "kept"
    assert [p.name for p in second.paths()] == [simpler.path.name]


def test_a_deadlock_found_with_other_task_numbers_is_the_same_entry(tmp_path: Path) -> None:
    import dataclasses

    from examples import transfer

    failure = _found(transfer.abba)
    assert failure.kind == "deadlock"
    corpus = explorer.Corpus(tmp_path)
    first = corpus.save(failure)
    # The same cycle, attributed to another task (another spawn numbering): another
    # location, so another plain signature, but the same stable one.
    assert failure.outcome.location is not None
    moved = dataclasses.replace(failure.outcome, location=dataclasses.replace(
        failure.outcome.location, lineno=failure.outcome.location.lineno + 1))
    assert moved.signature() != failure.outcome.signature()
    assert moved.stable_signature() == failure.outcome.stable_signature()
    twin = explorer.ScheduleFailure(moved, explorer.Schedule.parse(f"{failure.schedule},90=1"),
                                    failure.trace, scenario=failure.scenario,
                                    runtime=failure.runtime, shrink=failure.shrink)
    assert (corpus.save(twin).status, corpus.paths()) == ("kept", [first.path])


def test_workers_saving_one_bug_at_once_leave_one_entry(tmp_path: Path) -> None:
    import threading

    failure = _found(bank.double_spend)
    variants = [_twin(failure, f"{failure.schedule},{90 + n}=1", shrunk=True)
                for n in range(6)]
    corpus = explorer.Corpus(tmp_path)
    start = threading.Barrier(len(variants))

    def save(variant: explorer.ScheduleFailure) -> None:
        start.wait()
        explorer.Corpus(tmp_path).save(variant)

    threads = [threading.Thread(target=save, args=(v,)) for v in variants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(corpus.paths()) == 1


def test_save_refreshes_a_stale_entry_and_a_shrunk_failure_replaces_an_unshrunk_one(
        tmp_path: Path) -> None:
    corpus = explorer.Corpus(tmp_path)
    failure = _found(bank.double_spend)
    unshrunk = corpus.save(_twin(failure, "v1:0=1,2=1,5=1", shrunk=False))
    assert unshrunk.status == "new"
    replaced = corpus.save(failure)
    assert (replaced.status, replaced.replaced, replaced.new) == ("replaced", unshrunk.path,
                                                                 False)
    assert corpus.paths() == [replaced.path] and not unshrunk.path.exists()
    # The file at the failure's own name records something else now: rewritten.
    data = json.loads(replaced.path.read_text())
    data["expected"][0]["task"] = "somebody_else#1"
    replaced.path.write_text(json.dumps(data))
    refreshed = corpus.save(failure)
    assert (refreshed.status, refreshed.path) == ("refreshed", replaced.path)
    first = failure.schedule.deviations[0][0]
    assert corpus.load(replaced.path).expected_tasks()[first] == "mobile_withdrawal#1"
    # A newer explorer's file is never overwritten by this one.
    newer = b'{"format": "explorer-corpus", "version": 99}'
    replaced.path.write_bytes(newer)
    assert corpus.save(failure).status == "kept" and replaced.path.read_bytes() == newer


def test_a_saved_hang_has_the_signature_of_its_replay(tmp_path: Path) -> None:
    from explorer._locations import Location

    hang = explorer.Outcome("hang", "ran too long", Location("/src/app.py", 12, "spin"))
    failure = explorer.ScheduleFailure(hang, explorer.Schedule.parse("v1:0=1"), None,
                                       scenario="app.spin")
    entry = explorer.Corpus(tmp_path).load(explorer.Corpus(tmp_path).save(failure).path)
    assert entry.signature() == hang.signature()
    # Stopped at another line of the same busy loop: the same hang, one entry.
    later = explorer.Outcome("hang", "ran too long", Location("/src/app.py", 14, "spin"))
    again = explorer.ScheduleFailure(later, explorer.Schedule.parse("v1:0=2"), None,
                                     scenario="app.spin")
    assert explorer.Corpus(tmp_path).save(again).status == "kept"


def test_gc_plans_what_it_deletes_and_why(tmp_path: Path) -> None:
    from explorer._regressions import Scenarios, replay_one

    corpus = explorer.Corpus(tmp_path)
    saved = corpus.save(_found(spend_buggy)).path
    data = json.loads(saved.read_text())
    duplicate = tmp_path / "spend_buggy-0000000000000000.json"  # sorts first: it is kept
    duplicate.write_text(saved.read_text())
    fixed = tmp_path / "spend_fixed-1111111111111111.json"
    fixed.write_text(json.dumps({**data, "scenario": f"{__name__}.spend_fixed"}))
    unknown = tmp_path / "gone-2222222222222222.json"
    unknown.write_text(json.dumps({**data, "scenario": "app.gone"}))
    broken = tmp_path / "zz-broken.json"
    broken.write_text("{not json")
    leftover = tmp_path / f".{saved.name}.abc123.tmp"
    leftover.write_text("{")
    scenarios = Scenarios.of([spend_buggy, spend_fixed])

    plan = corpus.gc(lambda item: replay_one(item, scenarios))
    assert {(i.path.name, i.reason) for i in plan.remove} == {
        (saved.name, "duplicate"), (fixed.name, "fixed")}
    assert f"fails as {duplicate.name} does" in next(
        i.detail for i in plan.remove if i.reason == "duplicate")
    assert {(i.path.name, i.reason) for i in plan.keep} == {
        (unknown.name, "unknown scenario"), (broken.name, "unreadable")}
    assert plan.temporary == (leftover,)
    assert all(p.exists() for p in (saved, fixed, leftover))  # a plan deletes nothing
    pruning = corpus.gc(lambda item: replay_one(item, scenarios), prune_unknown=True)
    assert (unknown, "unknown scenario") in {(i.path, i.reason) for i in pruning.remove}
    corpus.apply(plan)
    assert corpus.paths() == [unknown, duplicate, broken] and not leftover.exists()


def test_find_and_delete(tmp_path: Path) -> None:
    from explorer._corpus import EntryNotFound

    corpus = explorer.Corpus(tmp_path)
    spend = corpus.save(_found(spend_buggy)).path
    double = corpus.save(_found(bank.double_spend)).path
    digest = spend.stem.rsplit("-", 1)[1]
    assert corpus.find(digest[:6]) == spend == corpus.find(spend.name)
    with pytest.raises(EntryNotFound, match=r"2 entries in .* match ''"):
        corpus.delete([spend.name, ""])
    assert spend.exists()  # a bad name deletes nothing, not even the good ones before it
    with pytest.raises(LookupError, match="no entry"):
        corpus.find("nothing-like-it")
    assert corpus.delete(["spend", "double"]) == [spend, double] and not corpus.paths()


def test_migration_plan_follows_the_table(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from explorer import _corpus

    corpus = explorer.Corpus(tmp_path)
    current = corpus.save(_found(bank.double_spend)).path
    old = tmp_path / "old-3333333333333333.json"
    old.write_text(json.dumps({**json.loads(current.read_text()), "version": 0,
                               "legacy": True}))
    plan = corpus.migration()
    assert plan.rewrites == () and plan.current == (current,)
    assert [e.path for e in plan.skipped] == [old]
    assert "format version 0, which no explorer wrote" in str(plan.skipped[0])

    monkeypatch.setitem(_corpus.MIGRATIONS, 0,
                        lambda data: {k: v for k, v in data.items() if k != "legacy"})
    plan = corpus.migration()
    [rewrite] = plan.rewrites
    assert rewrite.path == old and rewrite.data["version"] == 1
    assert "legacy" not in rewrite.data and json.loads(old.read_text())["version"] == 0
    corpus.apply(plan)
    assert corpus.load(old).schedule == corpus.load(current).schedule
    assert "legacy" not in json.loads(old.read_text())
