"""The fastest Python peer, measured side by side with the explorer on the locked counter.

The peer is ``detangle`` (:data:`PEER`), a deterministic-simulation tester for asyncio that
explores schedules with its own event loop. ``make bench`` installs it into its own
directory (:data:`PEER_DIR`, outside the project's environment: its pytest plugin must
not load in the project's test runs), and each throughput round runs it in a child
process right after the stock loop's runs and the explorer's, so that machine noise hits
all three alike. Without the directory (``python -m benchmarks.run`` run by hand) the
comparison is left out and the section says so; no figure measured elsewhere stands in.

Both sides run the same scenario (:func:`benchmarks.scenarios.locked_counter`) under a
random walk, without shrinking and without a failure database; each side's rate is timed
inside its own process, after a warm-up, so neither pays for starting an interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Final

PEER: Final = "detangle==0.1.0"
"""The peer's package, as ``make bench`` installs it."""
PEER_DIR: Final = Path(".bench-peer")
"""Where ``make bench`` installs it (``pip install --target``), from the repository root."""

_WARM_UP: Final = 100

# Run in the child process: the peer's schedules per second on the locked counter.
_SCRIPT: Final = """
import sys, time
import detangle
from benchmarks.scenarios import locked_counter

runs, seed, warm = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
options = dict(strategy="random", shrink=False, database=False)
detangle.explore(locked_counter, runs=warm, seed=seed, **options)
start = time.perf_counter()
detangle.explore(locked_counter, runs=runs, seed=seed, **options)
print(runs / (time.perf_counter() - start))
"""


def installed(directory: Path = PEER_DIR) -> bool:
    """Whether the peer is installed in ``directory``."""
    return (directory / "detangle" / "__init__.py").is_file()


def peer_version(directory: Path = PEER_DIR) -> str:
    """The installed peer's name and version, as its distribution metadata gives them."""
    for info in sorted(directory.glob("detangle-*.dist-info")):
        return info.name.removesuffix(".dist-info").replace("-", " ")
    return "detangle"


def peer_rate(runs: int, seed: int, directory: Path = PEER_DIR) -> float:
    """The peer's schedules per second on the locked counter (``runs`` schedules after a
    warm-up), measured in a child process that sees the peer and this repository."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(directory.resolve()), str(root), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(runs), str(seed), str(_WARM_UP)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the peer's run failed (exit {done.returncode}):\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])
