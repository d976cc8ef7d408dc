"""What importing the explorer, and a first plain asyncio exploration, load.

The package is imported by the pytest plugin's entry point in every test session, and a
first ``explore()`` in a process pays for every module it loads: both must load only what
they use. Each check runs in a fresh interpreter and compares module names, never times.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import explorer.strategies as strategies
from explorer.strategies._portfolio import ROTATION

# Libraries a plain asyncio exploration never needs; the explorer patches some of them
# when they are imported, which must not import them itself.
OPTIONAL_LIBRARIES = ("anyio", "trio", "hypothesis", "httpx", "starlette", "fastapi",
                      "sqlalchemy", "aiohttp", "redis", "fakeredis", "uvicorn", "pytest",
                      "typer", "click", "pydantic", "networkx", "numpy", "dask")
# Standard-library modules that asyncio does not import and a plain exploration does not
# need: hashing a trace (json, hashlib), sysconfig's data (stdlib paths are found without
# it), a served host's address (zlib), dataclasses and its copy (records are
# explorer._records classes; dataclasses is imported when one is asked for its fields).
UNUSED_STDLIB = ("json", "hashlib", "sysconfig", "zlib", "ctypes", "dataclasses", "copy")
# Portfolio members outside the default rotation (label -> module).
PORTFOLIO_EXTRAS = {"coverage": "explorer.strategies._coverage",
                    "pos": "explorer.strategies._pos", "rff": "explorer.strategies._rff"}


def loaded_after(code: str) -> set[str]:
    """The names in ``sys.modules`` after ``code`` runs in a fresh interpreter."""
    # The names are taken before json is imported to print them.
    script = textwrap.dedent(code) + ("\nimport sys\nloaded = sorted(sys.modules)\n"
                                      "import json\nprint(json.dumps(loaded))\n")
    out = subprocess.run([sys.executable, "-W", "error", "-c", script], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_importing_the_package_loads_only_its_version() -> None:
    loaded = loaded_after("import explorer")
    assert sorted(m for m in loaded if m.startswith("explorer")) == ["explorer",
                                                                    "explorer._version"]
    assert "asyncio" not in loaded  # no runtime until one is used
    assert not top_level(loaded) & set(OPTIONAL_LIBRARIES)


FIRST_EXPLORATION = """
import asyncio
import explorer

async def tally_three():
    guard = asyncio.Lock()
    count = 0
    async def bump():
        nonlocal count
        async with guard:
            before = count
            await asyncio.sleep(0)
            count = before + 1
    await asyncio.gather(bump(), bump(), bump())
    assert count == 3

result = explorer.explore(tally_three, max_schedules=10{keywords})
assert result.failure is None and result.schedules == 10, result
"""


@pytest.mark.parametrize("keywords", ["", ", strategy='random'"], ids=["default", "random"])
def test_a_first_plain_exploration_loads_no_unused_part(keywords: str) -> None:
    loaded = loaded_after(FIRST_EXPLORATION.format(keywords=keywords))
    unused = {
        "explorer._trio",  # another runtime
        "explorer._shrink", "explorer._switches",  # only a failure is shrunk
        "explorer._failure",  # only a failure is reported
        "explorer._asyncio._tracer", "explorer._requests",  # only a traced run
        "explorer._trace",  # only a traced run builds or compares a trace
        "explorer._schedule",  # only a failure, a pin or a replay makes a schedule
        "explorer._asyncio._waitfor", "explorer._waitgraph",  # only a hang or deadlock
        "explorer.strategies._dpor",  # not in the run
        "explorer.strategies._preemption",
        "explorer._monitoring", "explorer._corpus", "explorer.cli",
        "explorer._anyio_primitives",  # only once the scenario imports anyio
    }
    # Members the portfolio's rotation leaves out are imported when first built.
    unused |= {module for label, module in PORTFOLIO_EXTRAS.items()
               if keywords or label not in ROTATION}
    assert not unused & loaded
    assert not top_level(loaded) & set(OPTIONAL_LIBRARIES)
    assert not top_level(loaded) & set(UNUSED_STDLIB)
    if keywords:  # one named strategy: no other strategy's module
        assert not {m for m in loaded if m.startswith("explorer.strategies._")} - {
            "explorer.strategies._base", "explorer.strategies._features",
            "explorer.strategies._random", "explorer.strategies._fixed"}


def test_a_first_failing_exploration_still_shrinks_and_reports() -> None:
    loaded = loaded_after(FIRST_EXPLORATION.format(keywords=", strategy='random'")
                          .replace("async with guard:", "if True:")
                          .replace("max_schedules=10", "max_schedules=10, raise_on_failure=False")
                          .replace("assert result.failure is None and result.schedules == 10",
                                   "assert result.failure is not None and "
                                   "result.failure.shrink is not None"))
    assert {"explorer._shrink", "explorer._failure"} <= loaded


def test_the_first_call_benchmark_separates_the_explorers_part() -> None:
    from benchmarks.throughput import first_call_parts

    parts = first_call_parts(rounds=1)
    assert 0 < parts.explorer < parts.total
    assert parts.stock > 0


def test_the_registry_builds_every_strategy_by_name() -> None:
    for name in strategies.names():
        if name.endswith("-auto") and sys.version_info < (3, 12):
            continue  # automatic footprints need sys.monitoring (refused with a UsageError)
        built = strategies.make_strategy(name, seed=1)
        assert isinstance(built, strategies.Strategy)
        assert strategies.splitting(name) == type(built).splitting
    assert strategies.splitting("no-such-strategy") == "whole"


def test_the_registry_exports_every_name_it_lists() -> None:
    for name in strategies.__all__:
        assert getattr(strategies, name) is not None
    assert set(strategies.__all__) <= set(dir(strategies))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        strategies.Nope  # noqa: B018  # the attribute access is what is tested


def test_user_code_is_told_apart_without_sysconfig_as_with_it() -> None:
    import os
    import sysconfig

    from explorer import _locations

    paths = sysconfig.get_paths()
    assert os.path.abspath(paths["stdlib"]) == _locations.STDLIB_DIR
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        inside = os.path.join(paths[key], "some_module.py")
        assert not _locations.is_user_file(inside), (key, inside)
    assert _locations.is_user_file(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                "test_imports.py"))
    assert _locations._package(os.__file__) == "os"
    assert _locations._package(os.path.join(paths["stdlib"], "asyncio", "locks.py")) == "asyncio"
