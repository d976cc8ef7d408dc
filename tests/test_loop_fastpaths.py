"""The controlled loop's shortcuts around asyncio's Python-level calls keep asyncio's
behaviour: get_debug follows set_debug, create_future makes a plain future of this loop,
tasks name their parent, the network registry resets only what a run changed, and the
methods that would leave the controlled world are refused, each with its fix."""

from __future__ import annotations

import asyncio
import inspect

import pytest

import explorer
from explorer._asyncio._loop import ControlledLoop
from explorer._asyncio._refused import FD_FIX, NETWORK_FIX, PROC_FIX, REFUSED
from explorer._network import FIRST_EPHEMERAL, FIRST_PORT, Network


def test_get_debug_follows_set_debug() -> None:
    loop = ControlledLoop()
    try:
        assert loop.get_debug() is False
        loop.set_debug(True)
        assert loop.get_debug() is True
        assert loop._debug is True
        loop.set_debug(False)
        assert loop.get_debug() is False
    finally:
        loop.close()


def test_create_future_makes_a_plain_future_of_the_loop() -> None:
    loop = ControlledLoop()
    try:
        future = loop.create_future()
        assert type(future) is asyncio.Future
        assert future.get_loop() is loop
        assert not future.done()
    finally:
        loop.close()


def test_locks_and_task_names_under_the_shortcuts() -> None:
    """A contended lock (futures from create_future, wake-ups) and tasks started by tasks:
    the same names and the same result in every schedule."""
    seen: set[tuple[str, ...]] = set()

    async def scenario() -> None:
        lock = asyncio.Lock()
        names: list[str] = []

        async def inner() -> None:
            names.append(asyncio.current_task().get_name())  # type: ignore[union-attr]

        async def holder(tag: str) -> None:
            async with lock:
                await asyncio.sleep(0)
                await asyncio.create_task(inner())
                names.append(tag)

        await asyncio.gather(holder("a"), holder("b"))
        assert sorted(names) == ["a", "b", "main/holder#1/inner#1", "main/holder#2/inner#1"]
        seen.add(tuple(sorted(names)))

    result = explorer.explore(scenario, strategy="random", seed=3, max_schedules=40)
    assert result.failure is None and result.schedules == 40
    assert len(seen) == 1


def _pristine(network: Network[str]) -> bool:
    return network.pristine  # read afresh (an attribute test would be narrowed by mypy)


def test_network_reset_forgets_only_what_a_run_changed() -> None:
    network: Network[str] = Network()
    assert _pristine(network)
    network.reset()  # a run that used no network: nothing to forget
    assert _pristine(network)
    network.listen("127.0.0.1", 0, "server")
    network.ephemeral()
    assert not _pristine(network)
    network.reset()
    assert _pristine(network)
    assert network.listen("127.0.0.1", 0, "server").port == FIRST_PORT
    assert network.ephemeral().port == FIRST_EPHEMERAL


def test_a_closed_address_alone_is_state_to_forget() -> None:
    network: Network[str] = Network()
    address = network.listen("127.0.0.1", 0, "server")
    network.unlisten(address)
    assert not _pristine(network)  # the run still knows something listened there
    network.reset()
    assert _pristine(network) and not network.lookup("127.0.0.1", address.port).closed


@pytest.mark.parametrize(("name", "fix"), [("sock_recv", NETWORK_FIX), ("add_reader", FD_FIX),
                                           ("subprocess_exec", PROC_FIX)])
def test_unsimulated_methods_are_refused_with_their_fix(name: str, fix: str) -> None:
    assert REFUSED[name] == fix
    assert inspect.getattr_static(ControlledLoop, name).__name__ == name

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        method = getattr(loop, name)
        method(0, 0) if name != "subprocess_exec" else await method(asyncio.Protocol, "x")

    result = explorer.explore(scenario, max_schedules=1, raise_on_failure=False)
    assert result.failure is not None and result.failure.kind == "escape"
    assert f"loop.{name}()" in result.failure.outcome.message
    assert fix in result.failure.outcome.message
