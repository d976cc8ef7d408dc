"""A corpus is untrusted input: hostile files never run code, hang, crash or hide the others.

Every corpus command (list, show, verify, gc, gc --dry-run, migrate), the nightly job's
verify slices and ``replay_corpus`` are run over files that name modules with side effects
and ``os.abort``, FIFOs, links to ``/dev/zero`` and out of the directory, deeply nested
JSON, wrongly typed fields, huge indices, path-like names, unknown runtimes and scenarios
that cannot run. Commands that could hang or die run in a subprocess under a timeout.
Also: ``corpus/format/entry.schema.json`` and the hand-written decoder agree on valid and invalid
samples.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import explorer
from explorer import cli
from explorer._corpus import MAX_BYTES, RUNTIMES, Corpus, CorpusError, decode, parse
from tests.conftest import ROOT, cli_project, run_cli

SOURCE = textwrap.dedent('''
    import asyncio


    async def _withdraw(account, amount):
        if account["balance"] >= amount:
            await asyncio.sleep(0)
            account["balance"] -= amount


    async def buggy():
        account = {"balance": 100}
        await asyncio.gather(_withdraw(account, 80), _withdraw(account, 80))
        assert account["balance"] >= 0, "double spend"


    def not_async():
        return None
''')

SIDE_EFFECT = textwrap.dedent('''
    import pathlib

    pathlib.Path({marker!r}).write_text("imported")


    async def scenario():
        pathlib.Path({marker!r}).write_text("called")
''')

TIMEOUT = 120  # seconds for one command: a hang fails the test instead of blocking it
ON_LINUX = pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(),
                              reason="needs FIFOs and /dev/zero")

# --------------------------------------------------------------------------- building a corpus


def _valid(scenario: str = "pkg.mod.scenario") -> dict[str, Any]:
    return {
        "format": "explorer-corpus", "version": 1, "scenario": scenario,
        "runtime": "asyncio", "schedule": "v1:0=1,1=1",
        "failure": {"kind": "assertion", "message": "AssertionError: boom",
                    "location": {"file": "bank.py", "line": 12, "function": "f"},
                    "exc_type": "AssertionError"},
        "found": {"strategy": {"name": "systematic", "deviation_bound": None},
                  "found_after": 7, "explorer": "0.1.0", "python": "3.11.7"},
        "shrunk": True, "shrink": {"runs": 8}, "deviations": 2,
        "expected": [{"point": 0, "choice": 1, "task": "a#1", "kind": "start"},
                     {"point": 1, "choice": 1, "task": None, "kind": "callback"}],
        "trace_hash": "0" * 64,
    }


def _with(change: Callable[[dict[str, Any]], None], base: Mapping[str, Any] | None = None
          ) -> dict[str, Any]:
    data = copy.deepcopy(dict(base or _valid()))
    change(data)
    return data


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A change that sets a dotted path (``failure.location.line``, ``expected.0.point``)."""
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        obj: Any = data
        for part in parents:
            obj = obj[int(part)] if isinstance(obj, list) else obj[part]
        if isinstance(obj, list):
            obj[int(last)] = value
        else:
            obj[last] = value
    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.pop(key)


# Files whose every reader must report them as unreadable, naming the field or problem.
BAD_FIELDS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("typed-line", _set("failure.location.line", "12"), '"failure.location.line"'),
    ("typed-found", _set("found", []), '"found"'),
    ("typed-hash", _set("trace_hash", 5), '"trace_hash"'),
    ("typed-shrunk", _set("shrunk", 1), '"shrunk"'),
    ("typed-task", _set("expected.0.task", 7), '"expected[0].task"'),
    ("typed-expected", _set("expected", {"point": 0}), '"expected"'),
    ("missing-failure", _drop("failure"), '"failure" is missing'),
    ("huge-point", _set("schedule", f"v1:{10**30}=1"), '"schedule"'),
    ("huge-expected", _set("expected.0.point", 10**30), '"expected[0].point"'),
    ("huge-line", _set("failure.location.line", 10**30), '"failure.location.line"'),
    ("dotdot", _set("scenario", "../../etc/passwd"), '"scenario"'),
    ("dotted-dots", _set("scenario", "..os.abort"), '"scenario"'),
    ("runtime", _set("runtime", "curio"), '"runtime"'),
    ("bool-version", _set("version", True), '"version"'),
    # A linearizability check's scenario: data only, its shape checked before any replay.
    ("lin-typed", _set("linearizability", []), '"linearizability"'),
    ("lin-no-scenario", _set("linearizability", {}), '"linearizability.scenario" is missing'),
    ("lin-typed-tasks", _set("linearizability", {"scenario": {"tasks": "pay"}}),
     '"linearizability.scenario.tasks"'),
    ("lin-typed-call", _set("linearizability", {"scenario": {"tasks": [["pay"]]}}),
     '"linearizability.scenario.tasks[0][0]"'),
    ("lin-typed-op", _set("linearizability", {"scenario": {"tasks": [[{"op": 7}]]}}),
     '"linearizability.scenario.tasks[0][0].op"'),
    ("lin-typed-args", _set("linearizability",
                            {"scenario": {"tasks": [[{"op": "pay", "args": "5"}]]}}),
     '"linearizability.scenario.tasks[0][0].args"'),
    ("lin-typed-suffix", _set("linearizability", {"scenario": {"tasks": [[]], "suffix": {}}}),
     '"linearizability.scenario.suffix"'),
]


def _write(directory: Path, name: str, data: object) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


def _specials(corpus: Path, outside: Path) -> list[str]:
    """A FIFO, links to /dev/zero and out of the directory, a directory, deep nesting."""
    os.mkfifo(corpus / "fifo.json")
    (corpus / "zero.json").symlink_to("/dev/zero")
    outside.write_text(json.dumps(_valid()))
    (corpus / "outside.json").symlink_to(outside)
    (corpus / "dir.json").mkdir()
    (corpus / "nested.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    (corpus / "bigint.json").write_bytes(b'{"format": "explorer-corpus", "version": '
                                         + b"9" * 5000 + b"}")
    return ["fifo", "zero", "outside", "dir", "nested", "bigint"]


# --------------------------------------------------------------------------- reading


@ON_LINUX
def test_only_regular_files_inside_the_directory_are_read(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = _specials(corpus, tmp_path / "elsewhere.json")
    _write(corpus, "good", _valid())
    (corpus / "inside-link.json").symlink_to(corpus / "good.json")
    problems = {"fifo": "is a FIFO (named pipe), not a regular file",
                "zero": "leads to /dev/zero, outside the corpus directory",
                "outside": "outside the corpus directory",
                "dir": "is a directory, not a regular file",
                "nested": "nests brackets 100,000 levels deep, more than the 32",
                "bigint": "cannot be parsed as JSON"}
    items = {Path(getattr(i, "path", "")).stem: i for i in Corpus(corpus).entries()}
    assert set(items) == {*names, "good", "inside-link"}
    for name in names:
        item = items[name]
        assert isinstance(item, CorpusError) and item.status == "unreadable"
        assert f"{name}.json" in str(item) and problems[name] in str(item)
    assert not isinstance(items["good"], CorpusError)
    assert not isinstance(items["inside-link"], CorpusError)  # a link that stays inside


def test_reading_never_trusts_the_reported_size(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_BYTES + 10))
    reads: list[int] = []
    real_read = os.read

    def read(fd: int, n: int) -> bytes:
        reads.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", read)
    with pytest.raises(CorpusError, match="more than the 1,000,000 bytes"):
        Corpus(tmp_path).load(big)
    assert sum(reads) <= MAX_BYTES + 1  # what was asked for: never more than one byte past


@pytest.mark.parametrize(("name", "change", "words"), BAD_FIELDS,
                         ids=[name for name, _, _ in BAD_FIELDS])
def test_every_field_is_type_checked(tmp_path: Path, name: str,
                                     change: Callable[[dict[str, Any]], None],
                                     words: str) -> None:
    path = _write(tmp_path, name, _with(change))
    with pytest.raises(CorpusError) as info:
        Corpus(tmp_path).load(path)
    assert info.value.status == "unreadable"
    assert str(path) in str(info.value) and words in str(info.value)
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 600


def _lin(scenario: object) -> Callable[[dict[str, Any]], None]:
    return _set("linearizability", {"scenario": scenario})


PAY = {"op": "pay", "args": [5]}
# Beyond the schema's types: the decoder also refuses keys it does not read and sizes no
# saved (shrunk) scenario has, so nothing of such a file reaches a replay.
BAD_SCENARIOS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("extra-key", _lin({"tasks": [[PAY]], "run": "import os"}),
     '"linearizability.scenario.run" is not part of the format'),
    ("extra-call-key", _lin({"tasks": [[{**PAY, "module": "os"}]]}),
     '"linearizability.scenario.tasks[0][0].module" is not part of the format'),
    ("extra-top-key", _set("linearizability", {"scenario": {"tasks": [[PAY]]}, "code": ""}),
     '"linearizability.code" is not part of the format'),
    ("no-tasks", _lin({"tasks": []}), "it must have 1 to 64"),
    ("many-tasks", _lin({"tasks": [[PAY]] * 65}), "65 tasks; it must have 1 to 64"),
    ("many-calls", _lin({"tasks": [[PAY] * 600, [PAY] * 600]}), "more than 1,000 calls"),
    ("many-prefix-calls", _lin({"tasks": [[PAY]], "prefix": [PAY] * 1001}),
     "more than 1,000 calls"),
    ("long-op", _lin({"tasks": [[{"op": "x" * 5000}]]}), "5,000 characters"),
]


@pytest.mark.parametrize(("name", "change", "words"), BAD_SCENARIOS,
                         ids=[name for name, _, _ in BAD_SCENARIOS])
def test_a_tampered_linearizability_scenario_is_unreadable(
        tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None],
        words: str) -> None:
    path = _write(tmp_path, name, _with(change))
    with pytest.raises(CorpusError) as info:
        Corpus(tmp_path).load(path)
    assert info.value.status == "unreadable"
    assert words in str(info.value) and "delete it" in str(info.value)
    assert len(str(info.value)) < 600


def test_a_valid_entry_decodes_into_its_fields(tmp_path: Path) -> None:
    entry = decode(tmp_path / "x.json", _valid())
    assert entry.scenario == "pkg.mod.scenario" and entry.runtime == "asyncio"
    assert str(entry.schedule) == "v1:0=1,1=1"
    assert entry.signature() == ("assertion", "bank.py:12", 12, "AssertionError")
    assert entry.expected_tasks() == {0: "a#1", 1: "None"}


# --------------------------------------------------------------------------- the schema


SCHEMA = json.loads((ROOT / "corpus" / "format" / "entry.schema.json").read_text())
KEYWORDS = {"$schema", "$id", "title", "description", "type", "required", "properties",
            "const", "enum", "maxLength", "pattern", "minimum", "maximum", "items"}
JSON_TYPES: dict[str, Callable[[object], bool]] = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
}


def _schema_errors(schema: Mapping[str, Any], value: object, where: str = "") -> list[str]:
    """A validator for the draft 2020-12 keywords the schema uses (:data:`KEYWORDS`; a test
    checks it uses no other). jsonschema is used instead when it is installed."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        allowed = [types] if isinstance(types, str) else types
        if not any(JSON_TYPES[t](value) for t in allowed):
            return [f"{where}: not {types}"]
    if "const" in schema and (value != schema["const"] or type(value) is not type(
            schema["const"])):
        errors.append(f"{where}: not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: too long")
        # ECMA-262's "$" matches only at the very end; Python's also before a last "\n".
        pattern = re.sub(r"\$$", r"\\Z", schema.get("pattern", ""))
        if "pattern" in schema and not re.search(pattern, value):
            errors.append(f"{where}: does not match")
    if isinstance(value, int) and not isinstance(value, bool) and not (
            schema.get("minimum", value) <= value <= schema.get("maximum", value)):
        errors.append(f"{where}: out of range")
    if isinstance(value, dict):
        errors += [f"{where}.{k}: missing" for k in schema.get("required", ()) if k not in value]
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                errors += _schema_errors(sub, value[key], f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += _schema_errors(schema["items"], item, f"{where}[{index}]")
    return errors


def _schema_accepts(value: object) -> bool:
    try:
        import jsonschema  # type: ignore[import-untyped]
    except ImportError:
        return not _schema_errors(SCHEMA, value)
    return bool(jsonschema.Draft202012Validator(SCHEMA).is_valid(value))


def _schema_keywords(schema: object) -> set[str]:
    if isinstance(schema, list):
        return set().union(*(_schema_keywords(s) for s in schema))
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, sub in schema.items():
        if key == "properties":
            found |= set().union(*(_schema_keywords(s) for s in sub.values()))
        elif key == "items":
            found |= _schema_keywords(sub)
    return found


def test_the_schema_uses_only_keywords_the_check_knows() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert _schema_keywords(SCHEMA) <= KEYWORDS


VALID_SAMPLES: list[dict[str, Any]] = [
    _valid(),
    _with(_set("scenario", "tests.test_x.test_y[1-a b]")),
    _with(_set("scenario", "tests.test_x.test_y.<locals>.inner")),
    _with(_set("scenario", "tests.test_x.<lambda>")),
    _with(_set("runtime", "trio")),
    _with(_set("schedule", "v1:")),
    _with(_set("schedule", "v1+timers:3=2,999999=99999")),
    _with(_set("failure.location", None)),
    _with(_set("failure.exc_type", None)),
    _with(_set("found", {})),
    _with(_set("trace_hash", None)),
    _with(_set("shrink", None)),
    _with(_drop("expected")),
    _with(_drop("trace_hash")),
    _with(_set("unknown_field", {"anything": [1, 2]})),
    _with(_set("linearizability", {"scenario": {
        "prefix": [{"op": "open", "args": []}],
        "tasks": [[{"op": "POST /tabs/{id}/pay", "args": [{"amount": 5}, None]}],
                  [{"op": "close"}]],
        "suffix": []}})),
]
INVALID_SAMPLES: list[object] = [
    [], "text", {"format": "explorer-corpus"},
    *(_with(change) for _, change, _ in BAD_FIELDS),
    _with(_set("schedule", "v1:0=0")),
    _with(_set("schedule", "v1:3=1,,4=1")),
    _with(_set("schedule", " v1:3=1")),
    _with(_set("schedule", "v1:1000000=1")),
    _with(_set("schedule", "v2:1=1")),
    _with(_set("scenario", "a.b\n")),
    _with(_set("scenario", "a/b")),
    _with(_set("scenario", "")),
    _with(_set("failure.message", None)),
    _with(_set("failure.location", {"file": "x.py", "line": -1, "function": "f"})),
    _with(_set("found.found_after", "7")),
    _with(_set("found.strategy", "random")),
    _with(_set("expected.0.choice", 0)),
    _with(_set("deviations", -1)),
    _with(_set("trace_hash", "ABC")),
    _with(_set("format", "explorer-corpus-2")),
]


@pytest.mark.parametrize("sample", VALID_SAMPLES)
def test_schema_and_decoder_accept_the_same_valid_samples(tmp_path: Path,
                                                          sample: dict[str, Any]) -> None:
    assert _schema_accepts(sample)
    decode(tmp_path / "x.json", sample)


@pytest.mark.parametrize("sample", INVALID_SAMPLES)
def test_schema_and_decoder_refuse_the_same_invalid_samples(tmp_path: Path,
                                                            sample: object) -> None:
    assert not _schema_accepts(sample)
    with pytest.raises(CorpusError):
        decode(tmp_path / "x.json", sample)


def test_the_schema_knows_the_engine_s_runtimes() -> None:
    from explorer._engine import RUNTIMES as ENGINE_RUNTIMES

    assert tuple(RUNTIMES) == tuple(ENGINE_RUNTIMES)
    assert SCHEMA["properties"]["runtime"]["enum"] == list(RUNTIMES)


def test_the_schema_and_the_decoder_share_their_patterns() -> None:
    from explorer import _corpus_format as _corpus

    properties = SCHEMA["properties"]
    assert properties["scenario"]["pattern"] == _corpus.SCENARIO_PATTERN
    assert properties["schedule"]["pattern"] == _corpus._SCHEDULE.pattern
    assert properties["trace_hash"]["pattern"] == _corpus._HASH.pattern
    assert properties["expected"]["items"]["properties"]["point"]["maximum"] == \
        _corpus.MAX_POINT


def test_an_entry_explore_saves_fits_the_schema(tmp_path: Path) -> None:
    from examples import bank

    failure = explorer.explore(bank.double_spend, strategy="systematic", corpus=tmp_path,
                               raise_on_failure=False).failure
    assert failure is not None and failure.corpus_path is not None
    data = json.loads(failure.corpus_path.read_text())
    assert _schema_accepts(data)
    assert parse(failure.corpus_path, failure.corpus_path.read_bytes()).scenario == \
        "examples.bank.double_spend"


# --------------------------------------------------------------------------- replay_corpus


def test_replay_corpus_runs_only_the_scenarios_it_is_given(tmp_path: Path) -> None:
    from examples import bank

    marker = tmp_path / "marker"
    (tmp_path / "sidefx_replay_api.py").write_text(SIDE_EFFECT.format(marker=str(marker)))
    sys.path.insert(0, str(tmp_path))
    try:
        corpus = tmp_path / "corpus"
        explorer.explore(bank.double_spend, strategy="systematic", corpus=corpus,
                         raise_on_failure=False)
        _write(corpus, "abort", _valid("os.abort"))
        _write(corpus, "sidefx", _valid("sidefx_replay_api.scenario"))
        reports = explorer.replay_corpus(corpus, scenarios=[bank.double_spend])
        by_name = {r.path.stem: r for r in reports}
        assert by_name["abort"].status == by_name["sidefx"].status == "unknown-scenario"
        assert [r.status for r in reports if r.path.stem.startswith("double_spend")] == \
            ["fails"]
        mapped = explorer.replay_corpus(
            corpus, scenarios={"examples.bank.double_spend": bank.double_spend})
        assert [r.status for r in mapped] == [r.status for r in reports]
        assert not marker.exists() and "sidefx_replay_api" not in sys.modules
    finally:
        sys.path.remove(str(tmp_path))


@pytest.mark.parametrize(("scenarios", "words"), [
    ("examples.bank.double_spend", "one name"),
    (print, "one function"),
    ({"x": 1}, "must map scenario names to functions"),
    ([1], "is not a function"),
])
def test_replay_corpus_says_what_scenarios_must_be(tmp_path: Path, scenarios: Any,
                                                   words: str) -> None:
    with pytest.raises(explorer.UsageError, match=words):
        explorer.replay_corpus(tmp_path, scenarios=scenarios)


def test_a_scenario_that_cannot_run_is_that_entry_s_status(tmp_path: Path) -> None:
    from examples import bank

    explorer.explore(bank.double_spend, strategy="systematic", corpus=tmp_path,
                     raise_on_failure=False)

    def not_async() -> None:
        return None

    [report] = explorer.replay_corpus(
        tmp_path, scenarios={"examples.bank.double_spend": not_async})
    assert report.status == "error" and "is not an async function" in report.detail


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A project whose corpus holds one real failure and every kind of hostile file."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "hostile_bank.py").write_text(SOURCE)
    marker = root / "imported-marker"
    (root / "sidefx_module.py").write_text(SIDE_EFFECT.format(marker=str(marker)))
    (root / "pyproject.toml").write_text(
        "[project]\nname = 'hostile'\n[tool.explorer]\n"
        "targets = ['hostile_bank:buggy', 'hostile_bank:not_async']\n")
    done = _cli(root, "explore", "hostile_bank:buggy", "-s", "systematic")
    assert done.returncode == cli.FAILURES, done.stderr
    corpus = root / "corpus"
    [genuine] = corpus.glob("buggy-*.json")
    base = json.loads(genuine.read_text())
    base["expected"] = base["expected"] or _valid()["expected"]  # for the fields to spoil
    for name, change, _ in BAD_FIELDS:
        _write(corpus, name, _with(change, base))
    _write(corpus, "abort", _with(_set("scenario", "os.abort"), base))
    _write(corpus, "sidefx", _with(_set("scenario", "sidefx_module.scenario"), base))
    _write(corpus, "not-async", _with(_set("scenario", "hostile_bank.not_async"), base))
    if hasattr(os, "mkfifo") and Path("/dev/zero").exists():
        _specials(corpus, root / "elsewhere.json")
    yield root
    assert not marker.exists(), "a module a corpus file named was imported"


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXPLORER_PROGRESS": "0", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], cwd=root,
                          capture_output=True, text=True, timeout=TIMEOUT, env=env,
                          check=False)


def _hostile_names(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "corpus").glob("*.json")
                  if not p.name.startswith("buggy-"))


UNREADABLE = {name for name, _, _ in BAD_FIELDS} | {"fifo", "zero", "outside", "dir",
                                                    "nested", "bigint"}


def _clean(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode >= 0, f"killed by signal {-done.returncode}"
    assert done.returncode != cli.INTERNAL and "Traceback" not in done.stderr + done.stdout
    return done.stdout + done.stderr


def test_list_names_every_file(hostile: Path) -> None:
    output = _clean(done := _cli(hostile, "corpus", "list"))
    assert done.returncode == cli.OK
    for name in _hostile_names(hostile):
        assert f"{name}.json" in output
    rows = json.loads(_cli(hostile, "corpus", "list", "--json").stdout)["entries"]
    statuses = {Path(r["path"]).stem: r.get("status", "entry") for r in rows}
    assert {n for n, s in statuses.items() if s == "unreadable"} == \
        UNREADABLE & set(_hostile_names(hostile))


def test_verify_gives_each_entry_one_status(hostile: Path) -> None:
    done = _cli(hostile, "corpus", "verify", "--no-collect", "--json")
    _clean(done)
    rows = json.loads(done.stdout)["entries"]
    statuses = {Path(r["path"]).stem: r["status"] for r in rows}
    names = _hostile_names(hostile)
    assert len(rows) == len(names) + 1
    expected = {n: "unreadable" for n in UNREADABLE if n in names}
    expected |= {"abort": "unknown-scenario", "sidefx": "unknown-scenario",
                 "not-async": "error"}
    assert {n: statuses[n] for n in names} == expected
    [genuine] = [s for n, s in statuses.items() if n.startswith("buggy-")]
    assert genuine == "fails" and done.returncode == cli.FAILURES  # the worst status
    details = {Path(r["path"]).stem: r["detail"] for r in rows}
    assert "not an async function" in details["not-async"]
    assert "no scenario named os.abort was given" in details["abort"]
    assert '"runtime"' in details["runtime"] and "curio" in details["runtime"]
    text = _clean(_cli(hostile, "corpus", "verify", "--no-collect"))
    for name in names:
        assert f"{name}.json" in text


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "gc"])
def test_gc_keeps_and_names_what_it_cannot_judge(hostile: Path, dry_run: bool) -> None:
    before = sorted(p.name for p in (hostile / "corpus").iterdir())
    done = _cli(hostile, "corpus", "gc", "--no-collect", *(["--dry-run"] if dry_run else []))
    output = _clean(done)
    assert done.returncode == cli.OK
    for name in _hostile_names(hostile):
        assert f"{name}.json" in output
    assert sorted(p.name for p in (hostile / "corpus").iterdir()) == before
    assert "deleted 0 entries" in output or "would delete 0 entries" in output


def test_migrate_skips_and_names_unreadable_files(hostile: Path) -> None:
    before = {p.name: p.read_bytes() for p in (hostile / "corpus").glob("*.json")
              if p.is_file() and not p.is_symlink()}
    done = _cli(hostile, "corpus", "migrate")
    output = _clean(done)
    assert done.returncode == cli.OK
    for name in UNREADABLE & set(_hostile_names(hostile)):
        assert f"{name}.json" in output
    assert "0 entries migrated; 4 already at format version 1" in output
    assert {p.name: p.read_bytes() for p in (hostile / "corpus").glob("*.json")
            if p.is_file() and not p.is_symlink()} == before


@pytest.mark.slow
def test_show_of_each_file_is_one_line_or_the_entry(hostile: Path) -> None:
    for name in _hostile_names(hostile):
        done = _cli(hostile, "corpus", "show", f"{name}.json")
        _clean(done)
        if name in UNREADABLE:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            assert done.returncode == cli.USAGE and len(lines) == 1, done.stderr
            assert f"{name}.json" in lines[0]
        else:
            assert done.returncode == cli.OK and f"{name}.json" in done.stdout


def test_nightly_verify_slices_survive_a_hostile_corpus(hostile: Path,
                                                        tmp_path: Path) -> None:
    done = _cli(hostile, "nightly", "--budget", "2s", "--no-collect", "--seed", "0",
                "--output", str(tmp_path / "out"), "--strategy", "systematic")
    _clean(done)
    assert done.returncode in (cli.FAILURES, cli.USAGE), done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["complete"] is True
    statuses = {Path(r["path"]).stem: r["status"] for r in summary["corpus"]}
    assert statuses["abort"] == statuses["sidefx"] == "unknown-scenario"
    assert statuses["not-async"] == "error"
    assert all(statuses[n] == "unreadable" for n in UNREADABLE if n in statuses)
    assert [s for n, s in statuses.items() if n.startswith("buggy-")] == ["fails"]


@pytest.mark.slow
def test_os_abort_named_in_a_file_kills_nothing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'abort'\n")
    _write(corpus, "abort", _valid("os.abort"))
    _write(corpus, "kill", _valid("os.kill"))
    for args in (["list"], ["show", "abort.json"], ["verify", "--no-collect"],
                 ["gc", "--no-collect"], ["gc", "--dry-run", "--no-collect"], ["migrate"]):
        done = _cli(tmp_path, "corpus", *args)
        assert done.returncode != -signal.SIGABRT
        _clean(done)
        assert done.returncode in (cli.OK, cli.NOT_REPRODUCED), (args, done.stderr)
    assert (corpus / "abort.json").exists() and (corpus / "kill.json").exists()


def test_a_module_named_in_a_file_is_never_imported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    root, name = cli_project(tmp_path, monkeypatch, request, "hostile_", SOURCE)
    marker = root / "marker"
    module = f"sidefx_{name}"
    (root / f"{module}.py").write_text(SIDE_EFFECT.format(marker=str(marker)))
    corpus = root / "corpus"
    corpus.mkdir()
    _write(corpus, "sidefx", _valid(f"{module}.scenario"))
    _write(corpus, "sidefx-package", _valid(f"{module}.sub.scenario"))
    for args in (["list"], ["show", "sidefx"], ["verify", f"{name}:buggy", "--no-collect"],
                 ["gc", "--no-collect"], ["gc", "--dry-run", "--no-collect"], ["migrate"]):
        code, out, err = run_cli(capsys, "corpus", *args)
        assert "Traceback" not in out + err and code != cli.INTERNAL
    code, out, _ = run_cli(capsys, "report", "--corpus", str(corpus), "-o",
                           str(root / "r.html"))
    assert code == cli.OK
    assert not marker.exists() and module not in sys.modules


def test_corpus_option_naming_a_file_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = cli_project(tmp_path, monkeypatch, request, "hostile_", SOURCE)
    (root / "entry.json").write_text("{}")
    for command in ("list", "verify", "gc", "migrate"):
        code, _, err = run_cli(capsys, "corpus", command, "--corpus", "entry.json")
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == cli.USAGE and len(lines) == 1 and "is a file, not a directory" in err
