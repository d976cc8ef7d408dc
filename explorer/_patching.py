"""Replacing attributes for an exploration session, and patching a module only once it is
imported.

:class:`Patches` records every replacement a session makes and undoes them all, in reverse
order, when the session ends; a class attribute that was only inherited is deleted again
rather than copied onto the class.

Invariant of :func:`when_imported`: nothing here imports the watched module. It patches
a module that is already imported at once; otherwise it puts a finder at the front of
``sys.meta_path`` that lets the import system load the module as usual and patches it
the moment its code has run, before the importer sees it. The finder is itself recorded as a
patch (its ``enabled`` attribute), so the session that installed it removes it when it
restores everything else.

Runtimes use this for optional libraries (anyio's backends): a scenario that never uses
the library never imports it, and one that imports it halfway through a run is still
patched before its first use.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

Patch = Callable[[Any, str, Any], None]
"""``patch(owner, name, value)``: set an attribute and record the old one for restoring."""

_ABSENT: Any = object()  # the owner (a class) did not define the attribute itself


class Patches:
    """The replacements of one session: call it as a :data:`Patch`, then :meth:`restore`."""

    __slots__ = ("_saved",)

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def __call__(self, owner: Any, name: str, value: Any) -> None:
        original = vars(owner).get(name, _ABSENT) if isinstance(owner, type) else \
            getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, value)

    def restore(self) -> None:
        """Undo every replacement, newest first (including those made on a later import)."""
        while self._saved:
            owner, name, original = self._saved.pop()
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def when_imported(name: str, apply: Callable[[ModuleType], None], patch: Patch) -> None:
    """Run ``apply`` on module ``name`` now if it is imported, else right after its import."""
    module = sys.modules.get(name)
    if module is not None:
        apply(module)
    else:
        patch(_PatchOnImport(name, apply), "enabled", True)


class _PatchOnImport:  # a meta path finder (duck-typed: importlib.abc costs an import)
    """Finds nothing itself: wraps the loader of one module so that ``apply`` runs after it."""

    def __init__(self, name: str, apply: Callable[[ModuleType], None]) -> None:
        self.name = name
        self.apply = apply
        self._enabled = False
        self._searching = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        if value and not self._enabled:
            sys.meta_path.insert(0, self)
        elif not value and self._enabled:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self)
        self._enabled = value

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname != self.name or self._searching:
            return None
        # Another watcher of the same module asks every finder but itself, so it asks this
        # one: answering None while searching lets both apply, the innermost first, where
        # two watchers asking each other would recurse without end.
        self._searching = True
        try:
            for finder in sys.meta_path:  # the spec the import would have found without us
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec: ModuleSpec | None = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
        finally:
            self._searching = False
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            # A Loader by its methods (importlib.abc would cost the import it saves).
            spec.loader = _ThenApply(spec.loader, self.apply)  # type: ignore[assignment]
        return spec


class _ThenApply:  # a loader, duck-typed as _PatchOnImport
    """The module's own loader, then ``apply``; anything else is asked of the real loader
    (``get_source`` for tracebacks, ``get_resource_reader``, ...)."""

    def __init__(self, loader: Any, apply: Callable[[ModuleType], None]) -> None:
        self._loader = loader
        self._apply = apply

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        self._apply(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)
