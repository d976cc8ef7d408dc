"""Every ```python block of README.md and docs/*.md runs, and prints what the page shows.

Each block runs in a fresh directory, in its own interpreter: as a script, or with pytest
when it defines tests (``def test_...``). The file is named by a first-line comment
(``# tests/test_cart.py``), else ``example.py``. A block must exit with status 0, unless
the page says it fails.

What the page shows it prints is the plain fenced block that follows it directly (or one
marked ``output`` further down). The printed text must contain it, compared after
normalising what changes from run to run: durations and rates become ``<t>``, ``...`` in
the page matches anything on its line, and trailing spaces are ignored.

A page steers its examples with an HTML comment (invisible once rendered) on the line just
before a block::

    <!-- docs-example: skip (a fragment: Account is defined above) -->
    <!-- docs-example: fails -->            the example exits with status 1 (a failure found)
    <!-- docs-example: file=app.py -->      the file name (line numbers in the output)
    <!-- docs-example: output -->           this plain block is the previous example's output

A skip names its reason: a fragment that cannot run alone, or a block another test runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
PAGES: Final = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
FENCE: Final = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER: Final = re.compile(r"<!--\s*docs-example:\s*(.*?)\s*-->\s*$")
FILE_COMMENT: Final = re.compile(r"\A#\s*([\w./-]+\.py)\s*$", re.M)
TESTS: Final = re.compile(r"^\s*(async\s+)?def\s+test_", re.M)


@dataclass(frozen=True)
class Example:
    """One ```python block: where it is, its code, what the page says about it."""

    page: str
    line: int
    code: str
    directives: dict[str, str] = field(default_factory=dict)
    output: str | None = None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def filename(self) -> str:
        named = FILE_COMMENT.match(self.code)
        return self.directives.get("file") or (named.group(1) if named else "example.py")

    @property
    def with_pytest(self) -> bool:
        return bool(TESTS.search(self.code))


@dataclass(frozen=True)
class _Block:
    lang: str
    body: str
    line: int
    marker: dict[str, str]
    follows: bool  # nothing but blank lines between the previous block and this one


def _directives(text: str) -> dict[str, str]:
    """``skip (why)``, ``fails``, ``file=app.py``, ``output`` -> a mapping."""
    found: dict[str, str] = {}
    for match in re.finditer(r"(\w+)(?:=(\S+)|\s*\(([^)]*)\))?", text):
        found[match.group(1)] = match.group(2) or match.group(3) or ""
    return found


def _blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    end = 0
    for match in FENCE.finditer(text):
        between = text[end:match.start()]
        lines = [line for line in between.splitlines() if line.strip()]
        marker = MARKER.match(lines[-1].strip()) if lines else None
        blocks.append(_Block(match.group(1), match.group(2),
                             text.count("\n", 0, match.start()) + 1,
                             _directives(marker.group(1)) if marker else {},
                             bool(blocks) and not lines))
        end = match.end()
    return blocks


def examples(pages: tuple[Path, ...] = PAGES) -> list[Example]:
    """The python blocks of ``pages``, each with its directives and shown output."""
    found: list[Example] = []
    for page in pages:
        blocks = _blocks(page.read_text(encoding="utf-8"))
        for index, block in enumerate(blocks):
            if block.lang != "python":
                continue
            output = None
            for after in blocks[index + 1:]:
                if after.lang == "python":
                    break
                if after.lang in ("", "text") and ("output" in after.marker or after.follows):
                    output = after.body
                    break
                if not after.follows:
                    break
            name = page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name
            found.append(Example(name, block.line, block.body,
                                 block.marker, output))
    return found


_DURATION: Final = re.compile(r"\b\d[\d,]*(\.\d+)?(ms|s|/s)\b")


def normalised(text: str) -> str:
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return _DURATION.sub("<t>", "\n".join(lines))


def shown_in(expected: str, printed: str) -> bool:
    """Whether ``printed`` contains ``expected`` (both normalised; ``...`` in
    ``expected`` matches anything within its line)."""
    pattern = "\n".join(
        ".*?".join(re.escape(part) for part in line.split("..."))
        for line in normalised(expected).splitlines())
    return re.search(pattern.replace(".*?", "[^\n]*?"), normalised(printed)) is not None


def run(example: Example, directory: Path) -> subprocess.CompletedProcess[str]:
    path = directory / example.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.code, encoding="utf-8")
    (directory / "pyproject.toml").write_text("[project]\nname = 'docs-example'\n")
    command = ([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "no:randomly", example.filename] if example.with_pytest
               else [sys.executable, example.filename])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EXPLORER_PROGRESS": "0",
           "COLUMNS": "100", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(command, cwd=directory, env=env, text=True, capture_output=True,
                          timeout=300, check=False)


ALL: Final = examples()


def test_every_page_with_python_has_examples_found() -> None:
    pages = {p.relative_to(ROOT).as_posix() for p in PAGES if "```python" in p.read_text()}
    assert pages == {example.page for example in ALL}
    skipped = [example.id for example in ALL if "skip" in example.directives
               and not example.directives["skip"]]
    assert not skipped, f"a skip names its reason: {skipped}"


def test_the_extractor_reads_directives_and_output(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "intro\n\n<!-- docs-example: file=app.py fails -->\n```python\nprint(1)\n```\n\n"
        "```\n1\n```\n\n<!-- docs-example: skip (a fragment) -->\n```python\nx\n```\n\n"
        "text\n\n```\nnot output\n```\n")
    first, second = examples((page,))
    assert first.directives == {"file": "app.py", "fails": ""} and first.output == "1\n"
    assert first.filename == "app.py" and first.line == 4
    assert second.directives == {"skip": "a fragment"} and second.output is None
    assert shown_in("took 3.0s (seed ...)\nok", "x took 1.25s (seed 42)\nok\n")
    assert not shown_in("took 1s\nfailed", "took 2s\nok")


@pytest.mark.slow
@pytest.mark.parametrize("example", [e for e in ALL if "skip" not in e.directives],
                         ids=lambda e: e.id)
def test_example_runs_and_prints_what_the_page_shows(example: Example, tmp_path: Path
                                                     ) -> None:
    done = run(example, tmp_path)
    printed = done.stdout + done.stderr
    for directory in {str(tmp_path.resolve()), str(tmp_path)}:  # shown as the page shows it
        printed = printed.replace(directory + os.sep, "")
    expected = 1 if "fails" in example.directives else 0
    assert done.returncode == expected, (
        f"{example.id} exited with {done.returncode}, the page implies {expected}:\n"
        f"{printed[-3000:]}")
    if example.output is not None:
        assert shown_in(example.output, printed), (
            f"{example.id}: the output the page shows is not what it prints; it printed:\n"
            f"{printed[-4000:]}")
