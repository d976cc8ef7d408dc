"""The HTML report: self-contained, escaped, and showing what a person needs per failure."""

from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

import explorer
from examples import bank, transfer
from explorer import cli
from explorer._failure_record import WaitFor
from explorer._html import cycle_edges
from explorer._html import render_report as render_summaries
from explorer._summary import Summary

CHROMIUM = Path("/usr/bin/chromium")


class Page(HTMLParser):
    """The parsed page: tags with their attributes, text, and rows per table class."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(1 for t, a in self.tags if t == tag and all(
            a.get(k.rstrip("_")) == v for k, v in attrs.items()))

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def _failure(fn: Any) -> dict[str, Any]:
    result = explorer.explore(fn, strategy="systematic", raise_on_failure=False)
    assert result.failure is not None
    failure = result.failure
    return {**failure.to_json(), "replay": failure.replay_line(), "corpus_path": None}


def _summary(*details: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "explorer-nightly", "version": 1, "started": "2024-01-01T00:00:00+00:00",
        "complete": True, "errors": [],
        "scenarios": [{"target": d["scenario"], "scenario": d["scenario"], "status": "failed",
                       "schedules": 7, "rate": 123.4, "distinct": 7,
                       "strategies": [{"strategy": "systematic", "coverage": "all schedules "
                                       "with at most 1 deviation(s) (7 schedules)"}],
                       "failures": [{}]} for d in details],
        "corpus": [], "failure_details": list(details),
        "failures": [{"scenario": d["scenario"], "kind": d["outcome"]["kind"],
                      "location": "x.py:1", "schedule": d["schedule"], "source": "explore",
                      "corpus_path": None, "new": True} for d in details],
    }


def render_report(summaries: list[dict[str, Any]], *, title: str | None = None) -> str:
    """The page of summaries as summary.json holds them (read back as the CLI does)."""
    loaded = [Summary.from_json(s) for s in summaries]
    return render_summaries(loaded) if title is None else render_summaries(loaded,
                                                                           title=title)


def test_summary_round_trips_through_json() -> None:
    summary = _summary(_failure(bank.double_spend))
    loaded = Summary.from_json(summary)
    again = Summary.from_json(json.loads(json.dumps(loaded.to_json())))
    assert again == loaded and again.failures[0].kind == "assertion"
    assert again.scenarios[0].strategies[0].strategy == "systematic"
    broken = {**summary, "scenarios": [{"target": 7}]}
    with pytest.raises(explorer.ExplorerError, match='field "target" is int'):
        Summary.from_json(broken)


def test_failures_have_timeline_why_graph_and_replay() -> None:
    spend, abba = _failure(bank.double_spend), _failure(transfer.abba)
    page = Page(render_report([_summary(spend, abba)]))
    text = page.all_text
    assert page.count("section", class_="failure") == 2
    assert page.count("script") == page.count("link") == page.count("img") == 0
    # The timeline: a lane per task, the deviations highlighted.
    assert page.count("tr", class_="deviation") == spend["deviations"] + abba["deviations"]
    assert "mobile_withdrawal#1" in text and "withdraw#1" in text
    assert "46→21 sleep" in text  # where the task ran from and to, and what it waits on
    # The explanation, the schedule and the replay line.
    for line in spend["explanation"] + abba["explanation"]:
        assert line in text
    assert spend["schedule"] in text and "explorer.replay(double_spend, " in text
    assert f"explorer replay examples.bank.double_spend '{spend['schedule']}'" in text
    # The wait-for graph of the deadlock, drawn and tabulated, cycle highlighted.
    assert page.count("svg") == 1 and page.count("line") == len(abba["outcome"]["details"][
        "edges"])
    assert "cycle: main/checked_transfer#1 → main/transfer#1" in text
    assert len(cycle_edges(WaitFor.from_details(abba["outcome"]["details"]))) == 4
    assert page.count("td", class_="cycle") == 4 * 3
    # The summary table per scenario.
    assert "distinct interleavings" in text and "123/s" in text


def test_summaries_of_shards_are_merged() -> None:
    summary = _summary(_failure(bank.double_spend))
    page = Page(render_report([summary, summary]))
    assert page.count("section", class_="failure") == 1  # found by both shards, shown once
    assert "14" in page.all_text  # 7 schedules in each shard


def test_all_text_is_escaped() -> None:
    evil = "<script>alert('x')</script>"
    detail = _failure(bank.double_spend)
    detail["scenario"] = evil
    detail["outcome"]["message"] = f"AssertionError: {evil} & <b>bold</b>"
    detail["explanation"] = [evil]
    detail["trace"][1]["task"] = evil
    summary = _summary(detail)
    summary["errors"] = [evil]
    html = render_report([summary], title=evil)
    page = Page(html)
    assert page.count("script") == 0 and "<b>bold" not in html
    assert evil in page.all_text and "& <b>bold</b>" in page.all_text
    assert "&lt;script&gt;" in html


def test_report_command_from_summaries_and_from_a_corpus(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "summary.json").write_text(json.dumps(_summary(_failure(transfer.abba))))
    assert cli.main(["report", "summary.json", "-o", "from-summary.html"]) == cli.OK
    assert Page((tmp_path / "from-summary.html").read_text()).count("svg") == 1

    corpus = tmp_path / "corpus"
    for fn in (bank.double_spend, transfer.abba):
        explorer.explore(fn, strategy="systematic", raise_on_failure=False, corpus=corpus)
    assert cli.main(["report", "--corpus", str(corpus), "-o", "corpus.html", "--target",
                     "examples.bank:double_spend", "--target", "examples.transfer:abba"]
                    ) == cli.OK
    page = Page((tmp_path / "corpus.html").read_text())
    assert page.count("section", class_="failure") == 2  # replayed to draw each failure
    assert "still fails as saved" in page.all_text

    (tmp_path / "bad.json").write_text("{}")
    capsys.readouterr()
    assert cli.main(["report", "bad.json"]) == cli.USAGE
    assert "is not a nightly summary" in capsys.readouterr().err


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium to render with")
def test_chromium_renders_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    report.write_text(render_report([_summary(_failure(transfer.abba),
                                              _failure(bank.double_spend))]))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,1600", f"--screenshot={shot}", report.as_uri()],
        check=False, capture_output=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    assert shot.exists() and shot.stat().st_size > 10_000


def test_a_failure_pytest_found_shows_its_story_and_node_id(tmp_path: Path) -> None:
    """A failure found under pytest has no trace here: the page shows the story pytest
    printed, and the replay line names the test by its node id under the project root."""
    import html

    from explorer._failure_record import FailureRecord, FailureReport, OutcomeRecord
    from explorer._html import render_failure

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_html_story.py").write_text("async def test_pair(db): ...\n")
    story = "test_html_story.test_pair failed\n\n  AssertionError: assert [1, 1] == [1, 2]"
    record = FailureRecord("test_html_story.test_pair", "asyncio", "v1:2=1", 3, 1, {},
                           OutcomeRecord("assertion", "AssertionError"), None, "")
    page = html.unescape(render_failure(FailureReport(record, message=story),
                                        root=tmp_path))
    assert "assert [1, 1] == [1, 2]" in page
    assert "explorer replay tests/test_html_story.py::test_pair 'v1:2=1'" in page
