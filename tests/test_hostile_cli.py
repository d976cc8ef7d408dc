"""Hostile input to the ``explorer`` command: every bad argument ends in one line on stderr
and exit 2 (never a traceback, never exit 3, never a hang), and what the command says is
true (the default strategy, the advice of a nondeterminism report, a drifted replay)."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from pathlib import Path
from typing import Any

import pytest

import explorer
from explorer import cli
from explorer._parallel import CONNECT_TIMEOUT, DaskExecutor
from explorer._schedule import MAX_INDEX
from tests.conftest import cli_project, run_cli

SCENARIOS = textwrap.dedent('''
    import asyncio

    runs = 0


    async def _withdraw(account, amount):
        if account["balance"] >= amount:
            await asyncio.sleep(0)  # ledger write
            account["balance"] -= amount


    async def buggy():
        account = {"balance": 100}
        await asyncio.gather(_withdraw(account, 80), _withdraw(account, 80))
        assert account["balance"] >= 0, "double spend"


    async def _work(n):
        for _ in range(n):
            await asyncio.sleep(0)


    async def remembers():
        # State kept across runs: each run does a little more work than the one before.
        global runs
        runs += 1
        await asyncio.gather(_work(1 + runs % 3), _work(2))
        assert False, "always fails, so the failing schedule is checked for determinism"


    async def shrinks():
        # The first run starts four workers, every later run one: a replay of the first
        # run's schedule no longer fits, although the code did not change.
        global runs
        runs += 1
        await asyncio.gather(*(_work(2) for _ in range(4 if runs == 1 else 1)))
        assert False, "always fails"
''')

HUGE = "1" + "0" * 30
FAILING = "v1:0=1"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
            ) -> tuple[Path, str]:
    return cli_project(tmp_path, monkeypatch, request, "hostile_", SCENARIOS)


def usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run the command; check it is refused with exit 2 and one line; return that line."""
    code, out, err = run_cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == cli.USAGE, (args, code, out, err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("explorer: error: "), err
    return lines[0]


# --------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(("schedule", "words"), [
    (f"v1:{HUGE}=1", "scheduling point 100000000000...(31 digits), beyond any run"),
    (f"v1:1={HUGE}", "candidate index 100000000000...(31 digits), beyond any run"),
    (f"v1:{'9' * 5000}=1", "(5000 digits)"),  # int() alone would refuse > 4300 digits
    (f"v1:{MAX_INDEX}=1", f"at most {MAX_INDEX - 1:,}"),
    ("v1:\uff11=1", "is not a 'point=choice' pair"),  # a fullwidth digit one
    (f"v{'9' * 50}:1=1", "is not a schedule string"),
    ("", "is not a schedule string"),
    ("v1:\udcff", "is not a 'point=choice' pair"),  # a non-UTF-8 byte from the shell
])
@pytest.mark.parametrize("command", ["replay", "shrink"])
def test_bad_schedules_are_one_line_usage_errors(
        project: tuple[Path, str], capsys: pytest.CaptureFixture[str], command: str,
        schedule: str, words: str) -> None:
    _, name = project
    line = usage_error(capsys, command, f"{name}:buggy", schedule)
    assert words in line
    assert len(line) < 400  # a huge string is clipped in the message, not echoed whole


def test_largest_index_is_accepted() -> None:
    last = MAX_INDEX - 1
    schedule = explorer.Schedule.parse(f"v1:{last}={last}")
    assert schedule.deviations == ((last, last),)
    assert len(schedule.decisions()) == MAX_INDEX


@pytest.mark.parametrize("what", ["a directory", "a missing .json", "a regular non-json"])
def test_paths_given_as_schedules(project: tuple[Path, str], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], what: str) -> None:
    _, name = project
    (tmp_path / "notes.txt").write_text("hello")
    path = {"a directory": tmp_path, "a missing .json": tmp_path / "gone.json",
            "a regular non-json": tmp_path / "notes.txt"}[what]
    assert "is not a schedule string" in usage_error(capsys, "replay", f"{name}:buggy",
                                                     str(path))


@pytest.mark.parametrize(("kind", "words"), [
    ("fifo", "is a FIFO, not a corpus entry file"),
    ("zero", "is a character device, not a corpus entry file"),
    ("directory", "is a directory, not a corpus entry file"),
    ("nested", "levels deep"),
])
@pytest.mark.parametrize("command", ["replay", "shrink"])
def test_special_files_given_as_corpus_entries(
        project: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        command: str, kind: str, words: str) -> None:
    _, name = project
    path = tmp_path / f"{kind}.json"
    if kind == "fifo":
        os.mkfifo(path)  # nothing ever writes: a plain read would wait forever
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    line = usage_error(capsys, command, f"{name}:buggy", str(path))
    assert str(path) in line and words in line


def test_drifted_replay_gives_command_line_advice(project: tuple[Path, str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, _, err = run_cli(capsys, "replay", f"{name}:buggy", "v1:1=99")
    assert code == cli.NOT_REPRODUCED
    assert "asks for candidate 99, but only 2 candidate(s) were ready" in err
    assert "'explorer replay --tolerant' continues" in err and "strict=False" not in err


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize(("target", "words"), [
    ("", "empty target"),
    ("\udcff\udcfe", "is not a target"),
    ("nofile.py::f", "no file"),
    (".", "is not a target"),
    ("os:getcwd", "is not an async function"),
])
def test_bad_targets(project: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                     target: str, words: str) -> None:
    assert words in usage_error(capsys, "replay", target, FAILING)
    assert words in usage_error(capsys, "explore", target, "--no-save")


@pytest.mark.parametrize(("toml", "words"), [
    ('[tool.explorer]\ntargets = "{name}:buggy"\n', "targets must be a list, got"),
    ("[tool.explorer]\ntargets = [{{notarget = 1}}]\n", "got {{'notarget': 1}}"),
    ("tool = 5\n", "[tool.explorer] must be a table"),
    ("[tool.explorer\n", "cannot be read as TOML"),
    ('[tool.explorer]\ntargets = [{{target = "{name}:buggy", max_time = [10]}}]\n',
     "max_time"),
    ('[tool.explorer]\ntargets = [{{target = "{name}:buggy", max_schedules = 0}}]\n',
     "max_schedules must be a positive integer, got 0"),
])
def test_bad_project_configuration(project: tuple[Path, str],
                                   capsys: pytest.CaptureFixture[str], toml: str,
                                   words: str) -> None:
    root, name = project
    (root / "pyproject.toml").write_text(toml.format(name=name))
    assert words.format() in usage_error(capsys, "explore", "--no-save")


def test_odd_but_valid_pytest_configuration(project: tuple[Path, str],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    (root / "pyproject.toml").write_text(
        '[tool]\npytest = 5\n[tool.explorer]\ntargets = ["' + name + ':buggy"]\n')
    code, _, err = run_cli(capsys, "explore", "--no-save", "-s", "systematic")
    assert code == cli.FAILURES, err


# --------------------------------------------------------------------------- numbers, names


@pytest.mark.parametrize(("options", "words"), [
    (["-n", "0"], "--max-schedules"),
    (["-n", "-1"], "--max-schedules"),
    (["--max-steps", "0"], "--max-steps"),
    (["-d", "-1"], "--deviation-bound"),
    (["--seed", "nan"], "--seed"),
    (["--seed", "1.5"], "--seed"),
    (["-w", "0"], "--workers"),
    (["-w", str(10**6)], "use at most --workers"),
    (["--max-time", "0s"], "must be more than 0"),
    (["--max-time", "-5s"], "is not a duration"),
    (["--max-time", "nan"], "is not a duration"),
    (["--max-time", ""], "is not a duration"),
    (["--max-time", "400d"], "less than a year"),
    (["--max-time", "9" * 400 + "h"], "less than a year"),
    (["--run-timeout", "-1"], "--run-timeout"),
    (["--run-timeout", "nan"], "--run-timeout"),
    (["-s", "nosuch"], "unknown strategy 'nosuch'"),
    (["-s", ""], "unknown strategy ''"),
    (["--runtime", "curio"], "unknown runtime 'curio'"),
    (["--runtime", ""], "unknown runtime ''"),
    (["--shard", "0/4"], "between 1 and 4"),
    (["--shard", "1/0"], "count must be >= 1"),
    (["--shard", ""], "is not i/n"),
    (["--shard", "-1/2"], "is not i/n"),
    (["--shard", "1/2", "-w", "2"], "cannot be combined"),
])
def test_bad_explore_options(project: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                             options: list[str], words: str) -> None:
    _, name = project
    assert words in usage_error(capsys, "explore", f"{name}:buggy", "--no-save", *options)


@pytest.mark.parametrize(("options", "words"), [
    (["--budget", "0s"], "must be more than 0"),
    (["--budget", "soon"], "is not a duration"),
    (["-s", "nosuch"], "unknown strategy 'nosuch'"),
    (["--max-steps", "0"], "--max-steps"),
    (["-w", str(10**6)], "use at most --workers"),
])
def test_bad_nightly_options(project: tuple[Path, str], capsys: pytest.CaptureFixture[str],
                             options: list[str], words: str) -> None:
    _, name = project
    assert words in usage_error(capsys, "nightly", f"{name}:buggy", "--no-collect",
                                *options)


def test_workers_limit_is_relative_to_the_machine() -> None:
    limit = max(8, 4 * (os.cpu_count() or 1))
    cli._check_workers(limit, None)
    cli._check_workers(limit * 100, "tcp://scheduler:8786")  # a cluster queues its tasks
    with pytest.raises(cli.CliError, match=f"use at most --workers {limit}"):
        cli._check_workers(limit + 1, None)


# --------------------------------------------------------------------------- paths


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-directory"
    path.write_text("a regular file\n")
    return path


@pytest.mark.parametrize("command", [
    ["explore", "{name}:buggy"], ["shrink", "{name}:buggy", FAILING],
    ["nightly", "{name}:buggy", "--no-collect"], ["report"],
    ["corpus", "list"], ["corpus", "verify"], ["corpus", "gc"], ["corpus", "migrate"],
])
def test_corpus_naming_a_regular_file(project: tuple[Path, str], a_file: Path,
                                      capsys: pytest.CaptureFixture[str],
                                      command: list[str]) -> None:
    _, name = project
    args = [part.format(name=name) for part in command]
    line = usage_error(capsys, *args, "--corpus", str(a_file))
    assert f"--corpus {a_file} is a file, not a directory" in line
    assert a_file.read_text() == "a regular file\n"


def test_report_on_a_missing_corpus(project: tuple[Path, str], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    line = usage_error(capsys, "report", "--corpus", str(tmp_path / "typo"))
    assert f"--corpus {tmp_path / 'typo'} does not exist" in line


@pytest.mark.parametrize("args", [[], ["corpus"]])
def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str],
                                    args: list[str]) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == cli.USAGE
    assert "Usage: explorer" in out and "error" not in err


@pytest.mark.parametrize("args", [["nosuch"], ["explore", "--nosuch"], ["replay"],
                                  ["corpus", "nosuch"], ["explore", "-n"]])
def test_malformed_command_lines(capsys: pytest.CaptureFixture[str], args: list[str]
                                 ) -> None:
    assert "--help" in usage_error(capsys, *args)


def test_corpus_under_a_regular_file(project: tuple[Path, str], a_file: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    line = usage_error(capsys, "explore", f"{name}:buggy", "-s", "systematic",
                       "--corpus", str(a_file / "corpus"))
    assert f"{a_file / 'corpus'}: Not a directory" in line


def test_nightly_output_naming_a_regular_file(project: tuple[Path, str], a_file: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    line = usage_error(capsys, "nightly", f"{name}:buggy", "--no-collect", "-o", str(a_file))
    assert f"--output {a_file} is a file, not a directory" in line


def _nested(tmp_path: Path) -> Path:
    path = tmp_path / "nested.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "summary.json"
    os.mkfifo(path)  # nothing ever writes: a plain read would wait forever
    return path


def _zero(tmp_path: Path) -> Path:
    path = tmp_path / "zero.json"
    path.symlink_to("/dev/zero")  # a read would never end
    return path


def _binary(tmp_path: Path) -> Path:
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe{}")
    return path


@pytest.mark.parametrize(("make", "words"), [
    (_nested, "nested too deeply"),
    (_fifo, "is not a regular file (a FIFO)"),
    (_zero, "is not a regular file (a character device)"),
    (_binary, "cannot be read as JSON"),
    (lambda tmp: tmp, "is not a regular file (a directory)"),
    (lambda tmp: tmp / "missing.json", "No such file or directory"),
])
def test_report_refuses_what_is_not_a_summary(project: tuple[Path, str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              make: Any, words: str) -> None:
    path = make(tmp_path)
    line = usage_error(capsys, "report", str(path), "-o", str(tmp_path / "r.html"))
    assert str(path) in line and words in line
    assert not (tmp_path / "r.html").exists()


def test_report_title_that_is_not_utf8(project: tuple[Path, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root, name = project
    code, _, _ = run_cli(capsys, "explore", f"{name}:buggy", "-s", "systematic")
    assert code == cli.FAILURES  # and saved in corpus/
    code, out, err = run_cli(capsys, "report", "--corpus", "corpus", "--target",
                             f"{name}:buggy", "--title", "bank \udcff", "-o", "r.html")
    assert code == cli.OK, err
    assert "wrote r.html (1 failure(s))" in out
    assert "<title>bank \ufffd" in (root / "r.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- clusters


@pytest.mark.parametrize(("address", "words"), [
    ("foo://bar", "unknown address scheme 'foo'"),
    ("", "is empty"),
    ("   ", "is empty"),
    ("tcp://", "is not host:port"),
    ("tcp://127.0.0.1:99999", "is not host:port"),
    ("tcp://127.0.0.1:port", "is not host:port"),
])
def test_malformed_cluster_addresses(project: tuple[Path, str],
                                     capsys: pytest.CaptureFixture[str],
                                     address: str, words: str) -> None:
    pytest.importorskip("distributed")
    _, name = project
    line = usage_error(capsys, "explore", f"{name}:buggy", "--no-save", "--cluster", address)
    assert words in line and "--cluster tcp://scheduler:8786" in line


def _closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_closed_cluster_port_fails_at_once(project: tuple[Path, str],
                                           capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    clients: list[Any] = []
    monkeypatch.setattr(distributed, "Client", lambda *a, **k: clients.append((a, k)))
    _, name = project
    port = _closed_port()
    line = usage_error(capsys, "explore", f"{name}:buggy", "--no-save",
                       "--cluster", f"tcp://127.0.0.1:{port}")
    assert f"cannot connect to the Dask scheduler at tcp://127.0.0.1:{port}" in line
    assert "refused" in line.lower()
    # The refusal comes from the probe: Dask's client, which retries a refused connection
    # until its timeout, was never started.
    assert clients == []


def test_cluster_waits_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe and the client's handshake each wait at most CONNECT_TIMEOUT (together
    within 5 s), whatever Dask's own configured timeout is."""
    distributed = pytest.importorskip("distributed")
    probes: list[float | None] = []
    handshakes: list[Any] = []

    class Connection:
        def close(self) -> None:
            pass

    def connect(address: tuple[str, int], timeout: float | None = None) -> Connection:
        probes.append(timeout)
        return Connection()

    def client(address: str, timeout: Any = None) -> Any:
        handshakes.append(timeout)
        raise OSError(f"Timed out trying to connect to {address} after {timeout}")

    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(distributed, "Client", client)
    with pytest.raises(explorer.UsageError, match="cannot connect to the Dask scheduler"):
        DaskExecutor("tcp://scheduler.example:8786")
    assert probes == [CONNECT_TIMEOUT] and handshakes == [f"{CONNECT_TIMEOUT}s"]
    assert 2 * CONNECT_TIMEOUT <= 5


# --------------------------------------------------------------------------- defaults, advice


def test_default_strategy_is_the_portfolio(project: tuple[Path, str],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}:buggy", "--json", "--no-save",
                           "-n", "50")
    [result] = json.loads(out)["results"]
    assert code == cli.FAILURES
    assert result["settings"]["strategy"] == "portfolio"
    assert isinstance(result["settings"]["seed"], int)  # fixed once, and reported
    assert result["strategy"]["via"] == "portfolio"


def test_help_lists_every_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "explore", "--help")
    assert code == cli.OK
    flat = " ".join(out.replace("│", " ").split())
    for name in explorer.strategies.names():
        assert name in flat
    assert "else portfolio" in flat


def test_nondeterminism_advice(project: tuple[Path, str],
                               capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}:remembers", "--no-save",
                           "-s", "systematic", "--json")
    [result] = json.loads(out)["results"]
    assert code == cli.FAILURES
    assert result["failure"]["outcome"]["kind"] == "nondeterminism"
    message = result["failure"]["message"]
    for cause in ("unseeded randomness", "wall-clock reads", "hashed by address",
                  "state kept between runs", "replay the schedule twice"):
        assert cause in message
    # Not the advice for code that drifted since a schedule was saved:
    assert "replay with strict=False to continue" not in message
    assert "no longer fits the code" not in message


def test_nondeterminism_that_looks_like_drift(project: tuple[Path, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project
    code, out, _ = run_cli(capsys, "explore", f"{name}:shrinks", "--no-save", "-s", "random",
                           "--seed", "1", "--json")
    [result] = json.loads(out)["results"]
    assert code == cli.FAILURES
    message = result["failure"]["message"]
    assert result["failure"]["outcome"]["kind"] == "nondeterminism"
    assert "did not fit the first traced replay of the same code" in message
    assert "the code or the scenario changed" not in message
    assert "replay with strict=False to continue" not in message
    assert "state kept between runs" in message
