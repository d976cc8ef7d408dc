"""``make bench``: throughput and search quality, written to BENCHMARKS.md.

Sections:

1. Throughput — schedules/s and steps/s under the ``random`` strategy for the 3 x 3 locked
   counter and for one ASGI scenario, each beside the same scenario run uncontrolled on one
   reused stock asyncio loop in the same command (alternating rounds, medians), and
   the locked counter beside the fastest Python peer in the same rounds, when ``make
   bench`` has installed it (:mod:`benchmarks.peer`).
2. Search quality — for each buggy gallery example, schedules until the first failure:
   ``random`` over many seeds (median, min-max), ``systematic`` exact; and the naive
   baseline (stock asyncio with random ``sleep(0)`` jitter).
3. Proof cost — schedules the systematic search runs to pass each fixed example within its
   deviation bound.
4. Partial-order reduction — schedules to cover small programs with and without it, and
   the per-run cost of recording footprints.
5. SCTBench ports — schedules until the first bug per strategy (random, pct, pos, surw,
   coverage, symmetric and the default portfolio) on asyncio ports of SCTBench's CS
   programs, over ``--seeds`` seeds with cap ``--cap``, on two worker processes
   (``--only sctbench``; :mod:`benchmarks.sctbench.section`).
6. Services — schedules/s of a FastAPI + SQLAlchemy (aiosqlite) scenario and of a
   two-client streams scenario under the explorer, beside the same scenarios on a stock
   loop with aiosqlite's real threads and real loopback sockets (``--only services``;
   :mod:`benchmarks.services`).

7. Library stacks — schedules until the first failure of check-then-act races whose awaits
   pass through redis-py (over fakeredis) and FastAPI over ``httpx.ASGITransport``, for the
   default portfolio, ``random`` and ``coarse``, and what the shrinker makes of the
   default's failure: switches, deviations, runs, proof, story items (``--only libstacks``).

8. Linearizability — schedules and seconds until the first failure of gallery races written
   as objects and apps with no assertion, beside the hand-written scenarios; the checker's
   cost per run (`--only linearizability`; :mod:`benchmarks.linearizability`).

Numbers are measurements of this machine; no test asserts them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import explorer
from benchmarks import baseline, linearizability, peer, reduction, search, services, throughput
from benchmarks.scenarios import locked_counter, trio_locked_counter
from benchmarks.sctbench import section as sctbench
from examples.gallery import Example, all_examples, trio_examples, web_examples


def machine() -> str:
    return (f"CPython {platform.python_version()} on {platform.machine()} "
            f"({platform.system()} {platform.release()}), {os.cpu_count()} CPUs")


def throughput_section(args: argparse.Namespace) -> list[str]:
    with_peer = peer.installed(args.peer)
    rows = [throughput.measure(
        "locked counter, 3 tasks x 3 increments", locked_counter, args.schedules,
        args.rounds, peer=(lambda runs, seed: peer.peer_rate(runs, seed, args.peer))
        if with_peer else None)]
    web = web_examples()
    if web:
        asgi = web[0]
        rows.append(throughput.measure(f"ASGI: {asgi.name} (fixed app)", asgi.fixed,
                                       max(50, args.schedules // 20), args.rounds))
    trio_row = throughput.measure("trio: locked counter, 3 tasks x 3 increments",
                                  trio_locked_counter, max(100, args.schedules // 5),
                                  args.rounds, runtime="trio")
    lines = [
        "## Throughput",
        "",
        f"Random strategy; {args.rounds} alternating rounds, median. Stock means the same "
        "scenario without the explorer: asyncio on one reused loop, or one `trio.run` per "
        "run (trio has no reusable loop).",
        "",
        "| scenario | schedules/s | steps/s | stock runs/s | controlled / stock |",
        "|---|---:|---:|---:|---:|",
    ]
    rows.append(trio_row)
    lines += [f"| {t.scenario} | {t.schedules_per_second:,.0f} | {t.steps_per_second:,.0f} "
              f"| {t.stock_runs_per_second:,.0f} | {t.ratio:.2f}x |" for t in rows]
    lines += ["", *peer_lines(rows[0], args.peer)]
    return [*lines, "", *scale_section(args)]


def peer_lines(counter: throughput.Throughput, directory: Path) -> list[str]:
    """The locked counter beside the fastest Python peer, measured in the same rounds."""
    theirs = counter.peer_schedules_per_second
    if theirs is None:
        return [f"Versus the fastest Python peer: not measured (`{peer.PEER}` is not "
                f"installed in `{directory}`; `make bench` installs it there)."]
    return [f"Locked counter versus the fastest Python peer, {peer.peer_version(directory)}, "
            "side by side in the same rounds (random walk on both, no shrinking, the peer "
            f"in a child process; median): {theirs:,.0f} schedules/s against "
            f"{counter.schedules_per_second:,.0f}: "
            f"**{counter.schedules_per_second / theirs:.1f}x**."]


def scale_section(args: argparse.Namespace) -> list[str]:
    """Cost per step from 2 to 500 tasks, each strategy's throughput at 20 and 100 tasks,
    the first call's cost, and the gallery's per-run cost, all against stock."""
    rounds = max(3, args.rounds)
    lines = ["### At scale", "",
             f"`fan_out(N)`: N tasks started by `gather`, each awaiting `sleep(0)` "
             f"{throughput.SCALE_AWAITS} times. Random strategy through `explore()` "
             "(determinism checks included; at least "
             f"{throughput.STEP_COST_SCHEDULES} schedules per round, so that the first "
             "schedule's check, which every exploration makes, weighs as in an exploration "
             "rather than in a handful of runs) against the same scenario on one reused stock "
             f"loop; {rounds} alternating rounds, median. The last column is the same "
             "ratio for the runs alone (no determinism check, no per-exploration setup): "
             "what the schedules between checks cost.", "",
             "| tasks | steps per run | controlled µs/step | stock µs/step "
             "| controlled / stock | runs alone / stock |", "|---:|---:|---:|---:|---:|---:|"]
    for tasks in throughput.SCALE_TASKS:
        cost = throughput.step_cost(tasks, rounds)
        lines.append(f"| {tasks} | {cost.steps_per_run:,.0f} | {cost.controlled_us:.1f} "
                     f"| {cost.stock_us:.1f} | {cost.ratio:.2f}x | {cost.unchecked:.2f}x |")
        print(f"  step cost at {tasks} tasks", file=sys.stderr)
    lines += ["", "Each strategy's steps per second relative to random's on the same "
              f"scenario ({rounds} rounds, median):", "",
              "| strategy | 20 tasks | 100 tasks |", "|---|---:|---:|"]
    at20 = throughput.strategy_rates(20, rounds)
    at100 = throughput.strategy_rates(100, rounds)
    lines += [f"| {name} | {at20[name]:.2f}x | {at100[name]:.2f}x |" for name in at20]
    first = throughput.first_call_parts()
    lines += ["", "First call in a fresh process with bytecode cached (`import asyncio` and "
              "`explorer`, then `explore()` of the locked counter, 10 schedules; median of "
              f"5): **{first.total * 1000:.0f} ms**, of which the explorer's own part "
              f"(after asyncio is imported) **{first.explorer * 1000:.0f} ms**; importing "
              f"asyncio and one stock `asyncio.run` there: {first.stock * 1000:.0f} ms.",
              "", "Gallery, fixed forms, per run: stock time / controlled time (random, "
              f"{rounds} rounds, median):", "", "| example | controlled / stock |",
              "|---|---:|"]
    for example in all_examples():
        if example.network or example.faults or example.runtime != "asyncio":
            continue  # needs the simulated network (or injected faults) to run at all
        ratio = throughput.per_run_cost(example.fixed, 40, rounds)
        lines.append(f"| {example.name} | {ratio:.2f}x |")
    return lines


def _baseline_cell(example: Example, seeds: int, cap: int) -> str:
    if example.network:
        return "n/a (needs the simulated network)"
    found: list[int] = []
    misses = 0
    for seed in range(seeds):
        outcome = baseline.runs_to_failure(example.buggy, seed, cap)
        if outcome == "n/a":
            return "n/a (needs the controlled runtime)"
        if isinstance(outcome, int):
            found.append(outcome)
        else:
            misses += 1
    if not found:
        return f"not found in {cap}"
    text = f"{statistics.median(found):g} ({min(found)}-{max(found)})"
    return text + (f", {misses} missed" if misses else "")


def search_section(args: argparse.Namespace, examples: list[Example]) -> list[str]:
    lines = [
        "## Search quality: schedules until the first failure",
        "",
        f"`random`: median (min-max) over {args.seeds} seeds, cap {args.cap} schedules per "
        f"seed. `systematic`: exact, within the example's deviation bound. Naive baseline: "
        f"stock asyncio with random `sleep(0)` jitter, runs until failure over {args.seeds} "
        f"seeds, cap {args.baseline_cap}.",
        "",
        "| example | kind | random | systematic (bound) | naive jitter baseline |",
        "|---|---|---:|---:|---:|",
    ]
    for example in examples:
        rnd = search.find(example, "random", args.seeds, args.cap)
        sysm = search.find(example, "systematic", 1, args.cap)
        base = _baseline_cell(example, args.seeds, args.baseline_cap)
        lines.append(f"| {example.name} | {example.kind} | {rnd.cell()} | "
                     f"{sysm.cell()} ({example.bound}) | {base} |")
        print(f"  searched {example.name}", file=sys.stderr)
    return lines


def proof_section(args: argparse.Namespace, examples: list[Example]) -> list[str]:
    auto = sys.version_info >= (3, 12)
    lines = [
        "## Proof cost: fixed examples, every schedule within the bound",
        "",
        "`systematic` runs every schedule within the bound; `dpor` (conservative: task code "
        "may touch anything) and `dpor-auto` (accesses recorded with sys.monitoring, "
        "Python 3.12+) run one schedule per class of equivalent interleavings reachable "
        "within it. The shared state of these examples is not declared, so `dpor-declared` "
        "does not apply.",
        "",
        "| example | bound | systematic | exhausted | passed | seconds | dpor | dpor-auto |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for example in examples:
        proof = search.prove(example, args.proof_cap)
        reduced = _reduced_proof(example, args.proof_cap, "dpor")
        automatic = (_reduced_proof(example, args.proof_cap, "dpor-auto")
                     if auto and example.runtime == "asyncio" else "n/a")
        lines.append(f"| {proof.example} | {proof.bound} | {proof.schedules:,} | "
                     f"{'yes' if proof.exhausted else 'no (cap)'} | "
                     f"{'yes' if proof.passed else 'NO'} | {proof.seconds:.2f} | "
                     f"{reduced} | {automatic} |")
    if not auto:
        lines += ["", f"`dpor-auto` needs Python 3.12+; this is {platform.python_version()}."]
    return lines


def _reduced_proof(example: Example, cap: int, strategy: str) -> str:
    if example.faults:
        return "n/a (faults)"  # dpor refuses faults: a fault decision has no footprint
    proof = search.prove(example, cap, strategy)
    if not proof.passed:
        return "FAILED"
    return f"{proof.schedules:,}" + ("" if proof.exhausted else " (cap)")


def library_stacks_section(args: argparse.Namespace) -> list[str]:
    seeds = min(args.seeds, 10)
    lines = [
        "## Library stacks: races through redis-py and FastAPI",
        "",
        f"Schedules until the first failure, median (min-max) over {seeds} seeds, cap "
        f"{args.cap}; then the default strategy's failure for seed 0 as shrunk: switches "
        "and deviations, shrinking runs, whether it is proven minimal, and how many items "
        "its story has (`python -m benchmarks.run --only libstacks`; the held-out bar is "
        "`python -m benchmarks.heldout.userterms`).",
        "",
        "| program | portfolio | random | coarse | shrunk (seed 0) | runs | proven | items |",
        "|---|---:|---:|---:|---|---:|---|---:|",
    ]
    for name, scenario in search.LIBRARY_STACKS.items():
        cells = [search.find_in_stack(name, strategy, seeds, args.cap).cell()
                 for strategy in ("portfolio", "random", "coarse")]
        result = explorer.explore(scenario, seed=0, max_schedules=args.cap,
                                  raise_on_failure=False)
        failure = result.failure
        if failure is None:
            tail = "not found | | |"
        else:
            shrink = failure.shrink
            items = failure.to_json()["explanation"]
            tail = (f"{failure.simplicity()} | {shrink.runs if shrink else '-'} | "
                    f"{'yes' if shrink and shrink.proven_minimal else 'no'} | "
                    f"{len(items) if isinstance(items, list) else '-'}")
        lines.append(f"| {name} | {' | '.join(cells)} | {tail} |")
        print(f"  searched {name}", file=sys.stderr)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=5000,
                        help="schedules per throughput round (locked counter)")
    parser.add_argument("--rounds", type=int, default=5, help="throughput rounds")
    parser.add_argument("--seeds", type=int, default=20, help="seeds for random searches")
    parser.add_argument("--cap", type=int, default=2000, help="schedule cap per search")
    parser.add_argument("--baseline-cap", type=int, default=500,
                        help="run cap per seed for the naive baseline")
    parser.add_argument("--proof-cap", type=int, default=50_000,
                        help="schedule cap when proving fixed examples")
    parser.add_argument("--only", choices=["throughput", "search", "proof", "reduction",
                                           "sctbench", "services", "libstacks",
                                           "linearizability"],
                        help="run one section")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--peer", type=Path, default=peer.PEER_DIR,
                        help="where the peer tool is installed (make bench installs it)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    examples = all_examples()
    sections: list[list[str]] = []
    if args.only in (None, "throughput"):
        sections.append(throughput_section(args))
    if args.only in (None, "search"):
        sections.append(search_section(args, examples))
    if args.only in (None, "proof"):
        sections.append(proof_section(args, examples + trio_examples()))
    if args.only in (None, "reduction"):
        sections.append([*reduction.section(), "", *reduction.automatic_footprints_section()])
    if args.only in (None, "sctbench"):
        sections.append(sctbench.section(args.seeds, args.cap))
    if args.only in (None, "services"):
        sections.append(services.section(max(20, args.schedules // 25), args.rounds))
    if args.only in (None, "libstacks"):
        sections.append(library_stacks_section(args))
    if args.only in (None, "linearizability"):
        sections.append(linearizability.section(args.seeds, args.cap, args.rounds))
    body = "\n".join(line for section in sections for line in [*section, ""])
    print(body)
    if args.only is not None and args.output.exists():
        # One section: it replaces the chunks of the same headings in the file, the
        # others are kept as they were measured.
        text = splice(args.output.read_text(), body)
    else:
        header = ["# Benchmarks", "",
                  f"Generated by `make bench` on {machine()} in "
                  f"{time.perf_counter() - start:.0f} s.", ""]
        text = "\n".join(header) + "\n" + body
    args.output.write_text(text)
    print(f"(written to {args.output})", file=sys.stderr)
    return 0


def _chunks(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``text`` as its preamble and its ``## `` sections, each (heading line, text)."""
    preamble: list[str] = []
    chunks: list[tuple[str, list[str]]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            chunks.append((line.rstrip("\n"), [line]))
        elif chunks:
            chunks[-1][1].append(line)
        else:
            preamble.append(line)
    return "".join(preamble), [(heading, "".join(lines)) for heading, lines in chunks]


def splice(old: str, new: str) -> str:
    """``old`` with each ``## `` section of ``new`` in place of the section of the same
    heading (appended when ``old`` has none); the rest of ``old`` is kept."""
    preamble, kept = _chunks(old)
    _, fresh = _chunks(new)
    replaced = dict(fresh)
    out = [replaced.pop(heading, chunk) for heading, chunk in kept]
    out += [chunk for heading, chunk in fresh if heading in replaced]
    return preamble + "".join(chunk if chunk.endswith("\n\n") else chunk.rstrip("\n") + "\n\n"
                              for chunk in out).rstrip("\n") + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
