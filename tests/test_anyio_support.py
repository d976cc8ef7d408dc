"""anyio is patched only for scenarios that use it, on anyio 3.x and 4.x.

The import checks run in fresh interpreters: this test process has imported anyio long
before these tests run.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import types
from typing import Any

import pytest

import explorer
from explorer._asyncio._loop import ControlledLoop
from explorer._asyncio._patches import _patch_anyio_backend

pytest.importorskip("anyio")


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_plain_asyncio_scenario_never_imports_anyio() -> None:
    out = _fresh("""
        import asyncio, sys
        import explorer

        async def counter():
            box = [0]
            async def bump():
                value = box[0]
                await asyncio.sleep(0)
                box[0] = value + 1
            await asyncio.gather(bump(), bump())
            assert box[0] == 2

        result = explorer.explore(counter, strategy="random", max_schedules=20, seed=1,
                                  raise_on_failure=False)
        assert result.failure is not None, "the lost update should be found"
        print(sorted(m for m in sys.modules if m == "anyio" or m.startswith("anyio.")))
    """)
    assert out.splitlines() == ["[]"]


def test_anyio_imported_inside_the_first_run_is_patched_before_its_first_use() -> None:
    # anyio imports its asyncio backend on the first call that needs it: here, inside a
    # run, where the worker thread of to_thread.run_sync must already run inline.
    out = _fresh("""
        import explorer

        async def scenario():
            import anyio
            import anyio.to_thread
            results = []
            async with anyio.create_task_group() as tg:
                for n in range(2):
                    tg.start_soon(lambda n=n: anyio.to_thread.run_sync(results.append, n))
            assert sorted(results) == [0, 1]

        result = explorer.explore(scenario, strategy="systematic", deviation_bound=2)
        print(result.schedules > 1, result.failure is None)
    """)
    assert out.split() == ["True", "True"]


def test_the_patches_are_undone_when_the_session_ends() -> None:
    import anyio._backends._asyncio as backend

    before = (backend.AsyncIOBackend.__dict__["run_sync_in_worker_thread"],
              backend.CancelScope.__dict__.get("__hash__"))

    async def scenario() -> None:
        import anyio.to_thread

        assert await asyncio.gather(anyio.to_thread.run_sync(lambda: 7),
                                    anyio.to_thread.run_sync(lambda: 8)) == [7, 8]

    explorer.explore(scenario, strategy="random", max_schedules=3, seed=0)
    after = (backend.AsyncIOBackend.__dict__["run_sync_in_worker_thread"],
             backend.CancelScope.__dict__.get("__hash__"))
    assert after == before


def _anyio3_backend() -> types.ModuleType:
    """The shape of anyio 3.x's asyncio backend: module-level functions, no backend class."""
    backend = types.ModuleType("anyio._backends._asyncio")
    calls: list[str] = []

    async def checkpoint() -> None:
        calls.append("checkpoint")

    async def run_sync_in_worker_thread(func: Any, *args: Any, cancellable: bool = False,
                                        limiter: Any = None) -> Any:
        calls.append("thread")
        return func(*args)

    class CancelScope:
        _host_task = None

    backend.checkpoint = checkpoint  # type: ignore[attr-defined]
    backend.run_sync_in_worker_thread = run_sync_in_worker_thread  # type: ignore[attr-defined]
    backend.CancelScope = CancelScope  # type: ignore[attr-defined]
    backend.calls = calls  # type: ignore[attr-defined]
    return backend


def test_the_anyio_3_backend_shape_runs_worker_threads_inline() -> None:
    backend = _anyio3_backend()
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ControlledLoop)
        _patch_anyio_backend(loop, backend, patch)
        assert await backend.run_sync_in_worker_thread(lambda x: x + 1, 41) == 42

    try:
        result = explorer.run(scenario)
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
    assert not result.outcome.failed
    assert [name for _, name, _ in saved] == ["run_sync_in_worker_thread"]
    assert backend.calls == ["checkpoint"]  # anyio's checkpoint, then inline: no thread


def test_an_unknown_anyio_backend_is_refused_as_an_escape_naming_the_range() -> None:
    backend = types.ModuleType("anyio._backends._asyncio")  # neither 3.x nor 4.x

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, ControlledLoop)
        _patch_anyio_backend(loop, backend, lambda owner, name, value: None)

    result = explorer.run(scenario)
    assert result.outcome.kind == "escape"
    assert "anyio 3.x and 4.x" in result.outcome.message
