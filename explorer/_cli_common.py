"""What every ``explorer`` command shares: exit codes, the one-line error, output, the
project's configuration and its corpus.

Invariant: a command ends with one of :data:`EXIT_CODES`; an expected problem is a
:class:`CliError` (one line naming the problem and the fix, and the exit code), which
:func:`explorer.cli.main` prints. Human-readable results go to stdout (:func:`out`),
warnings to stderr (:func:`err`); text that comes from a corpus file goes through
:func:`printable` first, since the file is untrusted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from explorer._corpus import Corpus
from explorer._targets import ProjectConfig, add_paths, load_config

if TYPE_CHECKING:
    from explorer._regressions import Scenarios

OK: Final = 0
FAILURES: Final = 1
USAGE: Final = 2
INTERNAL: Final = 3
NOT_REPRODUCED: Final = 4
NOTHING: Final = 5
INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report a Ctrl-C
EXIT_CODES: Final = {
    OK: "ok: nothing failed",
    FAILURES: "failures found (or a replayed schedule still fails)",
    USAGE: "usage error: bad option, target, file or schedule",
    INTERNAL: "internal error of the explorer (with a traceback)",
    NOT_REPRODUCED: "did not reproduce: the schedule passes or no longer fits the code",
    NOTHING: "nothing to explore: no targets, or an empty corpus",
    INTERRUPTED: "interrupted by Ctrl-C (one line says what was run and found so far)",
}


class CliError(Exception):
    """Stop the command with a one-line message and an exit code."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(CliError):
    """A real Ctrl-C stopped the command; the message says what was run and found."""

    def __init__(self, message: str) -> None:
        super().__init__(message, INTERRUPTED)


CorpusOpt = Annotated[Path | None, typer.Option(
    "--corpus", help="Corpus directory (default: [tool.explorer] corpus, else corpus/ at "
    "the project root).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def out(text: str = "") -> None:
    typer.echo(text)


def err(text: str) -> None:
    typer.echo(text, err=True)


def emit_json(data: object) -> None:
    """``data`` as one JSON document on stdout (what ``--json`` promises)."""
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def project_config() -> ProjectConfig:
    """The project's ``[tool.explorer]`` configuration, its directories importable."""
    config = load_config()
    # Like ``python -m``: the working directory, then the project's own directories.
    add_paths([os.getcwd(), str(config.root), *config.pythonpath])
    return config


def corpus_dir(config: ProjectConfig, option: Path | None) -> Path:
    """``--corpus``, else ``[tool.explorer] corpus``, else ``corpus/`` at the root."""
    if option is not None:
        return option
    return config.corpus or config.root / "corpus"


def corpus_store(config: ProjectConfig, option: Path | None) -> Corpus:
    """The corpus of a command; a path that exists but is not a directory is a usage
    error (a corpus is a directory of JSON files)."""
    directory = corpus_dir(config, option)
    if directory.exists() and not directory.is_dir():
        raise CliError(f"--corpus {directory} is a file, not a directory; a corpus is the "
                       "directory that holds the entries: give that directory (for one "
                       "entry, use 'explorer corpus show FILE')")
    return Corpus(directory)


def configured_scenarios(config: ProjectConfig, targets: Sequence[str], collect: bool,
                         quiet: bool = False) -> Scenarios:
    """The scenarios corpus entries may replay (see
    :func:`explorer._nightly.configured_scenarios`); problems met are warnings."""
    from explorer._nightly import configured_scenarios as configured

    scenarios, problems = configured(config, targets, collect=collect)
    for problem in problems if not quiet else ():
        err(f"warning: {problem}")
    return scenarios


def printable(text: str) -> str:
    """``text`` with control characters escaped (but newlines and tabs): a corpus file is
    untrusted, and terminal escape sequences in it must not reach the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
