"""``explorer corpus``: list, show, verify, clean and migrate the saved failures.

Invariant: these commands present what :class:`explorer._corpus.Corpus` and
:mod:`explorer._regressions` return, and decide nothing about the corpus themselves (what
is a duplicate, what gc deletes, how a format migrates: the corpus's rules). Nothing a
corpus file names is imported; text from a file is printed through :func:`printable`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final

import typer

from explorer._cli_common import (
    FAILURES,
    NOT_REPRODUCED,
    NOTHING,
    OK,
    CliError,
    CorpusOpt,
    JsonOpt,
    configured_scenarios,
    corpus_store,
    emit_json,
    err,
    out,
    printable,
    project_config,
)
from explorer._corpus import (
    GC_DUPLICATE,
    GC_UNKNOWN,
    STATUSES,
    Corpus,
    CorpusEntry,
    CorpusError,
)
from explorer._corpus import VERSION as CORPUS_VERSION
from explorer._regressions import replay_one
from explorer._targets import replay_command

corpus_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                         help="List, show, verify, clean and migrate the saved failures.")


def _entry_row(item: CorpusEntry | CorpusError) -> dict[str, Any]:
    if isinstance(item, CorpusError):
        return {"path": str(item.path), "status": item.status, "detail": str(item)}
    loc = item.failure.get("location") or {}
    return {"path": str(item.path), "scenario": item.scenario, "runtime": item.runtime,
            "kind": item.kind,
            "location": f"{loc.get('file')}:{loc.get('line')}" if loc else "",
            "schedule": str(item.schedule), "deviations": item.schedule.deviation_count,
            "version": item.data.get("version")}


CollectOpt = Annotated[bool, typer.Option(
    "--collect/--no-collect", help="Also match entries to the tests marked "
    "@pytest.mark.explore that pytest collects.")]
ScenarioTargetsArg = Annotated[list[str], typer.Argument(
    help="Scenarios entries may replay (any target form), besides [tool.explorer] targets "
         "and collected marked tests. Entries are matched to them by name; nothing a corpus "
         "file names is ever imported.", show_default=False)]


@corpus_app.command("list")
def corpus_list(corpus: CorpusOpt = None, as_json: JsonOpt = False) -> None:
    """List the corpus entries: scenario, failure kind and place, schedule (nothing is
    imported or run)."""
    store = corpus_store(project_config(), corpus)
    rows = [_entry_row(item) for item in store.entries()]
    if as_json:
        emit_json({"command": "corpus list", "corpus": str(store.directory), "entries": rows})
        raise typer.Exit(OK if rows else NOTHING)
    if not rows:
        raise CliError(f"the corpus {store.directory} is empty", NOTHING)
    for row in rows:
        name = Path(row["path"]).name
        if "scenario" not in row:
            out(printable(f"{name}  {row['status'].upper()}: {row['detail']}"))
        else:
            where = f" at {row['location']}" if row["location"] else ""
            out(printable(f"{name}  {row['scenario']} ({row['runtime']})  {row['kind']}"
                          f"{where}  {row['schedule']}"))
    out(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'} in {store.directory}")


@corpus_app.command("show")
def corpus_show(
    entry: Annotated[str, typer.Argument(help="File name, path, or a unique prefix of the "
                                              "name or of its hash.")],
    corpus: CorpusOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show one entry as saved (nothing is imported or run)."""
    config = project_config()
    store = corpus_store(config, corpus)
    path = store.find(entry)
    # A file named directly is read as an entry of its own directory: still only a regular
    # file there, never a link leading out of it.
    loaded = Corpus(path.parent).load(path)
    if as_json:
        emit_json(loaded.data)
        return
    failure = loaded.failure
    found = loaded.found
    out(f"{path}")
    out(f"  scenario:   {loaded.scenario} ({loaded.runtime})")
    where = _entry_row(loaded)["location"]
    out(f"  failure:    {loaded.kind}" + (f" at {where}" if where else "")
        + (f" ({failure.get('exc_type')})" if failure.get("exc_type") else ""))
    out(f"  schedule:   {loaded.schedule} ({loaded.schedule.deviation_count} deviation(s))")
    how = dict(found.get("strategy") or {})
    name = how.pop("name", "?")
    params = ", ".join(f"{k} {v}" for k, v in sorted(how.items()) if v is not None)
    out(f"  found:      by {name}{f' ({params})' if params else ''} search after "
        f"{found.get('found_after')} "
        f"schedule(s), explorer {found.get('explorer') or '?'}, "
        f"Python {found.get('python') or '?'}")
    out(f"  shrunk:     {'yes' if loaded.shrunk else 'no'}")
    # Found from the files of the project (nothing is imported): the node id works from
    # the project root whether or not the tests directory is a package.
    node = found.get("node_id")
    line = replay_command(loaded.scenario, str(loaded.schedule), loaded.runtime,
                          root=config.root, node=node if isinstance(node, str) else None)
    out(printable(f"  replay:     {line}"))
    out("")
    for line in printable(str(failure.get("message", ""))).splitlines():
        out(f"  {line}")


_STATUS_ORDER: Final = STATUSES


@corpus_app.command("verify")
def corpus_verify(
    targets: ScenarioTargetsArg = [],  # noqa: B006 - typer's idiom
    corpus: CorpusOpt = None,
    tolerant: Annotated[bool, typer.Option("--tolerant", help="Continue past drift with "
                                                              "default choices.")] = False,
    collect: CollectOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Replay every entry against the scenario of its name and print its one status:
    fails, diverged, error, unknown-scenario, unreadable, newer-format or fixed. Exit 1 if
    any still fails, 4 if none fails but some are not fixed, 0 if all are fixed."""

    config = project_config()
    store = corpus_store(config, corpus)
    if not store.paths():
        raise CliError(f"nothing to verify: the corpus {store.directory} is empty", NOTHING)
    scenarios = configured_scenarios(config, targets, collect, quiet=as_json)
    reports = [replay_one(item, scenarios, strict=not tolerant) for item in store.entries()]
    code = _verify_code({r.status for r in reports})
    if as_json:
        emit_json({"command": "corpus verify", "exit_code": code, "entries": [
            {"path": str(r.path), "status": r.status, "detail": r.detail, "same": r.same,
             "scenario": r.entry.scenario if r.entry else None,
             "runtime": r.entry.runtime if r.entry else None} for r in reports]})
    else:
        width = max(len(s) for s in _STATUS_ORDER)
        for report in reports:
            out(f"{report.status:<{width}}  {printable(report.path.name)}  "
                f"{printable(report.detail)}")
        counts = {s: sum(1 for r in reports if r.status == s) for s in _STATUS_ORDER}
        out(", ".join(f"{n} {s}" for s, n in counts.items() if n))
    raise typer.Exit(code)


def _verify_code(statuses: set[str]) -> int:
    """The exit code of the worst status (see ``_STATUS_ORDER``)."""
    if "fails" in statuses:
        return FAILURES
    return NOT_REPRODUCED if statuses - {"fixed"} else OK


@corpus_app.command("gc")
def corpus_gc(
    targets: ScenarioTargetsArg = [],  # noqa: B006 - typer's idiom
    corpus: CorpusOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be "
                                                            "deleted.")] = False,
    prune_unknown: Annotated[bool, typer.Option(
        "--prune-unknown", help="Also delete entries no configured scenario is named as "
        "(kept by default: a target left out of the command line would lose them).")
    ] = False,
    collect: CollectOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Delete entries whose bug is fixed, duplicates (an entry that fails as saved exactly
    as another one does), and temporary files of interrupted writes.

    Entries that match no configured scenario (unknown-scenario) are kept with a warning
    unless --prune-unknown; unreadable and erroring entries are always kept."""

    config = project_config()
    store = corpus_store(config, corpus)
    scenarios = configured_scenarios(config, targets, collect, quiet=as_json)
    plan = store.gc(lambda item: replay_one(item, scenarios), prune_unknown=prune_unknown)
    if not dry_run:
        store.apply(plan)
    verb = "would delete" if dry_run else "deleted"
    kept = [(item.path, f"kept: {item.detail}; or pass --prune-unknown to delete such "
                        "entries" if item.reason == GC_UNKNOWN else
             f"kept ({item.reason}): {item.detail}") for item in plan.keep]
    if as_json:
        emit_json({"command": "corpus gc", "dry_run": dry_run,
                  "deleted": [item.to_json() for item in plan.remove],
                  "kept": [{"path": str(p), "reason": r} for p, r in kept],
                  "temporary": [str(p) for p in plan.temporary]})
        return
    for item in plan.remove:
        why = f"{item.reason}: {item.detail}" if item.reason == GC_DUPLICATE else item.reason
        out(f"{verb} {printable(item.path.name)} ({printable(why)})")
    for path, reason in kept:
        err(f"warning: {printable(path.name)}: {printable(reason)}")
    for path in plan.temporary:
        out(f"{verb} {printable(path.name)} (left by an interrupted write)")
    out(f"{verb} {len(plan.remove)} entr{'y' if len(plan.remove) == 1 else 'ies'}")


@corpus_app.command("rm")
def corpus_rm(
    entries: Annotated[list[str], typer.Argument(help="Entries to delete (file names, "
                                                      "paths or unique prefixes).")],
    corpus: CorpusOpt = None,
) -> None:
    """Delete the given entries."""
    for path in corpus_store(project_config(), corpus).delete(entries):
        out(f"deleted {path.name}")


@corpus_app.command("migrate")
def corpus_migrate(
    corpus: CorpusOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be "
                                                            "rewritten.")] = False,
) -> None:
    """Rewrite entries of older format versions to the current one (atomically)."""
    store = corpus_store(project_config(), corpus)
    plan = store.migration()
    if not dry_run:
        store.apply(plan)
    for problem in plan.skipped:
        err(f"warning: skipped {printable(str(problem))}")
    for rewrite in plan.rewrites:
        out(f"{'would migrate' if dry_run else 'migrated'} {printable(rewrite.path.name)} "
            f"to format version {CORPUS_VERSION}")
    count = len(plan.rewrites)
    out(f"{count} entr{'y' if count == 1 else 'ies'} "
        f"{'to migrate' if dry_run else 'migrated'}; {len(plan.current)} already at format "
        f"version {CORPUS_VERSION}")
