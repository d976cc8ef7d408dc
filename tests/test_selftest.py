"""The self-test guards the private asyncio internals the controlled loop relies on."""

from __future__ import annotations

from asyncio import base_events

import pytest

import explorer
from explorer._asyncio._selftest import self_test


def test_self_test_passes_on_this_interpreter() -> None:
    self_test.__wrapped__()


def test_a_changed_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    original = base_events.BaseEventLoop.__init__

    def changed(self: base_events.BaseEventLoop) -> None:
        original(self)
        self._ready = list(self._ready)  # type: ignore[attr-defined]

    monkeypatch.setattr(base_events.BaseEventLoop, "__init__", changed)
    with pytest.raises(explorer.RuntimeSelfTestError,
                       match=r"BaseEventLoop._ready is no longer a deque.*3.11 to 3.13"):
        self_test.__wrapped__()
