"""One settings model for every front end: what to search, how long, under which runtime.

Invariant: a :class:`Settings` is validated when it is built, here and nowhere else. Every
front end (:func:`explorer.explore`, :func:`explorer.run`, :func:`explorer.replay`,
``@explored``, ``@pytest.mark.explore`` and the plugin's options, ``[tool.explorer]`` in
``pyproject.toml``, the ``explorer`` command and its nightly job, the worker processes of
the parallel job) builds one through :meth:`Settings.merged` or the constructor, so a
mistake is reported the same way wherever it is made, and the defaults are the same
everywhere.

Layers, lowest precedence first (:meth:`Settings.merged`): the defaults below, the
``default`` profile, a chosen profile, then each front end's own layers (for pytest: the
ini file, the marker, the command line). In a layer given as a mapping, ``None`` means
"not set here"; a ``profile`` key in a layer puts that profile's values just below the
layer's own. A layer given as a :class:`Settings` is complete: all its values count.

Profiles (:func:`register_profile` adds more; ``parent`` defaults to ``default``, and
registering ``default`` itself changes the defaults of every front end)::

    default   the defaults: portfolio, 1,000 schedules, a fresh seed (reported)
    quick     200 schedules: a fast local check
    ci        2,000 schedules from seed 0: bounded, and the same schedules on every run
    nightly   20,000 schedules: a long unattended search

Durations: ``max_time`` and ``run_timeout`` accept seconds or a duration string
(:func:`parse_duration`: ``"90s"``, ``"5m"``, ``"1h30m"``). A ``run_timeout`` of 0 or
None disables the limit.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

from explorer._errors import UsageError
from explorer._faults import fault_kinds
from explorer._faults import spell as spell_faults
from explorer._records import FrozenRecord, defaults

if TYPE_CHECKING:
    from explorer.strategies import Strategy

DEFAULT_STRATEGY: Final = "portfolio"
DEFAULT_MAX_SCHEDULES: Final = 1000
DEFAULT_MAX_STEPS: Final = 20_000
DEFAULT_RUN_TIMEOUT: Final = 5.0
"""Seconds of real time one run may take before it is stopped as a ``hang``. The longest
legitimate run, max_steps=20,000 steps traced, takes well under a second; five seconds
leave room for a loaded CI machine while a task that never awaits is caught quickly."""
DEFAULT_RUNTIME: Final = "asyncio"
RUNTIMES: Final = ("asyncio", "trio")

SettingValue: TypeAlias = "str | int | float | bool | frozenset[str] | Strategy | None"
"""A value a settings layer may hold (:meth:`Settings.merged` checks each one)."""
Layer: TypeAlias = "Settings | Mapping[str, object]"

# Compiled on first use (re caches it): most processes never parse a duration.
_DURATION: Final = r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?"
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_MAX_DURATION: Final = 366 * 86400.0  # budgets and max_time are below a year


class SettingsError(UsageError):
    """A setting with a value it cannot take. ``str()`` names the setting; :meth:`at`
    names where the value was written instead (a command-line option, an ini key)."""

    def __init__(self, name: str, value: object, message: str, *,
                 requirement: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.value = value
        self.requirement = requirement
        self.detail = detail

    def at(self, source: str) -> str:
        """The message with the setting named as ``source`` spells it (``--max-time``,
        ``explore_seed in the ini file``)."""
        if self.requirement is not None:
            return f"{source} = {self.value!r} {self.requirement}"
        return f"{source}: {self.detail or self}"

    def within(self, where: str) -> SettingsError:
        """The same error, prefixed with ``where`` (the test or target it belongs to)."""
        return SettingsError(self.name, self.value, f"{where}: {self}",
                             requirement=self.requirement, detail=self.detail or str(self))


# --------------------------------------------------------------------------- durations


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1h30m``, ``250ms`` or plain seconds -> seconds."""
    cleaned = text.strip().lower()
    total = 0.0
    position = 0
    for match in re.finditer(_DURATION, cleaned):
        if match.start() != position:
            break
        total += float(match["value"]) * _UNITS[match["unit"] or "s"]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise UsageError(f"{text!r} is not a duration; write for example 90s, 10m, 2h or "
                         "1h30m")
    if not 0 < total < _MAX_DURATION:  # a thousand-digit number of hours is infinite
        raise UsageError(f"{text!r} is not a usable duration: it must be more than 0 and "
                         "less than a year; write for example 90s, 10m, 2h or 1h30m")
    return total


def format_duration(seconds: float) -> str:
    """``1.2s``, ``1m30s``, ``2h01m``: how long, to the precision a person reads."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


# --------------------------------------------------------------------------- the record


class Settings(FrozenRecord):
    """How to explore a scenario; immutable, validated when built.

    ``strategy`` is a strategy name (:func:`explorer.strategies.names`) or a
    :class:`~explorer.strategies.Strategy` instance (not sent to worker processes);
    ``max_schedules`` None means no schedule budget (the nightly job bounds by time);
    ``seed`` None means a fresh one; ``deviation_bound`` limits systematic search and DPOR;
    ``max_time`` and ``run_timeout`` are seconds (``run_timeout`` None: no limit);
    ``faults`` the network fault kinds to inject as decisions (:mod:`explorer._faults`:
    given as True for all, False for none, a set of kinds or ``"reset,dropped"``; held as
    a frozenset, empty by default); ``preemption_bound`` makes the systematic search
    count switches instead of deviations and bounds it (None: the deviation search).

    A frozen record; ``dataclasses.replace`` and ``dataclasses.fields`` accept it
    (:mod:`explorer._records`).
    """

    __slots__ = ("deviation_bound", "faults", "max_schedules", "max_steps", "max_time",
                 "preemption_bound", "run_timeout", "runtime", "seed", "shrink", "strategy",
                 "timer_races")

    strategy: str | Strategy
    max_schedules: int | None
    seed: int | None
    deviation_bound: int | None
    max_steps: int
    timer_races: bool
    shrink: bool
    max_time: float | None
    runtime: str
    run_timeout: float | None
    faults: frozenset[str]
    preemption_bound: int | None

    def __init__(self, strategy: str | Strategy = DEFAULT_STRATEGY,
                 max_schedules: int | None = DEFAULT_MAX_SCHEDULES, seed: int | None = None,
                 deviation_bound: int | None = None, max_steps: int = DEFAULT_MAX_STEPS,
                 timer_races: bool = False, shrink: bool = True,
                 max_time: float | None = None, runtime: str = DEFAULT_RUNTIME,
                 run_timeout: float | None = DEFAULT_RUN_TIMEOUT,
                 faults: frozenset[str] = frozenset(),
                 preemption_bound: int | None = None) -> None:
        set_field = object.__setattr__
        set_field(self, "strategy", strategy)
        set_field(self, "max_schedules", max_schedules)
        set_field(self, "seed", seed)
        set_field(self, "deviation_bound", deviation_bound)
        set_field(self, "max_steps", max_steps)
        set_field(self, "timer_races", timer_races)
        set_field(self, "shrink", shrink)
        set_field(self, "runtime", runtime)
        set_field(self, "preemption_bound", preemption_bound)
        # Durations given as text become seconds here, so equal settings compare equal
        # whichever front end spelled them.
        set_field(self, "max_time", _max_time(max_time))
        set_field(self, "run_timeout", _run_timeout(run_timeout))
        # Likewise the fault kinds: True, "reset,dropped" or a set become one frozenset.
        set_field(self, "faults", _faults(faults))
        _check_strategy(self.strategy)
        if self.runtime not in RUNTIMES:
            raise SettingsError("runtime", self.runtime,
                                f"unknown runtime {self.runtime!r}; available runtimes: "
                                f"{', '.join(RUNTIMES)}")
        _check_int("max_schedules", self.max_schedules, minimum=1, optional=True)
        _check_int("max_steps", self.max_steps, minimum=1, optional=False)
        _check_int("deviation_bound", self.deviation_bound, minimum=0, optional=True)
        _check_int("preemption_bound", self.preemption_bound, minimum=0, optional=True)
        _check_int("seed", self.seed, minimum=None, optional=True)
        for name in ("timer_races", "shrink"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise SettingsError(name, value, f"{name} must be True or False, got "
                                    f"{value!r}", requirement="must be true or false")

    # -- building ---------------------------------------------------------------------

    @classmethod
    def merged(cls, *layers: Layer | None, where: str | None = None) -> Settings:
        """The ``default`` profile overridden by each layer in turn (later layers win).

        A mapping layer's ``None`` values do not override; its ``profile`` key puts that
        profile's values just below the layer's own. An unknown key is an error (named
        with ``where``, the test or target the layers belong to, when given).
        """
        values: dict[str, object] = dict(_PROFILES["default"])
        try:
            for layer in layers:
                if isinstance(layer, Settings):
                    values.update(layer.values())
                elif layer is not None:
                    values.update(_expanded(layer))
            return cls(**values)  # type: ignore[arg-type]  # each value is checked there
        except SettingsError as err:
            raise (err.within(where) if where else err) from None

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated like a new one."""
        values: dict[str, Any] = {**self.values(), **changes}  # each is checked there
        return type(self)(**values)

    def with_seed(self) -> Settings:
        """A seeded strategy's seed fixed now, so every worker and report agrees on it."""
        from explorer.strategies import splitting

        if self.seed is not None or not isinstance(self.strategy, str) or \
                splitting(self.strategy) != "seeded":
            return self
        return self.replace(seed=random.SystemRandom().getrandbits(32))

    # -- reading ----------------------------------------------------------------------

    def values(self) -> dict[str, SettingValue]:
        """Every setting by name, in declaration order."""
        return {name: getattr(self, name) for name in NAMES}

    @property
    def strategy_name(self) -> str:
        """The strategy's name, for reports (an instance's ``name`` attribute)."""
        return self.strategy if isinstance(self.strategy, str) else self.strategy.name

    def to_json(self) -> dict[str, str | int | float | bool | None]:
        """Plain data, for worker processes and reports; a strategy given as an instance
        cannot be sent, only a strategy name."""
        if not isinstance(self.strategy, str):
            raise UsageError(f"the settings name a strategy instance ({self.strategy!r}); "
                             "only a strategy name can be sent to another process: give "
                             f"strategy= one of the names ({_strategy_names()})")
        data: dict[str, str | int | float | bool | None] = {"strategy": self.strategy}
        for name in NAMES[1:]:
            data[name] = getattr(self, name)
        data["faults"] = spell_faults(self.faults)  # a set is no JSON; the text reads back
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Settings:
        """The settings :meth:`to_json` wrote, validated again (they crossed a process)."""
        unknown = sorted(set(data) - set(NAMES))
        if unknown:
            raise _unknown(unknown)
        return cls(**data)  # type: ignore[arg-type]  # each value is checked there


NAMES: Final = Settings.__match_args__
"""The settings, in the order messages list them."""
_DEFAULTS: Final[Mapping[str, object]] = defaults(Settings)


def from_keywords(keywords: Mapping[str, object], *, settings: Settings | None = None,
                  profile: str | None = None) -> Settings:
    """The settings of an API call such as :func:`explorer.explore`: its ``keywords`` over
    ``profile`` over ``settings`` (else the ``default`` profile).

    A keyword equal to its built-in default counts as not given, so that a profile or
    ``settings`` decides it (the functions' signatures keep their defaults visible); an
    explicit ``run_timeout=None`` disables the limit, as it always did.
    """
    given = {k: v for k, v in keywords.items() if not _same(v, _DEFAULTS[k])}
    if "run_timeout" in keywords and keywords["run_timeout"] is None:
        given["run_timeout"] = 0  # None would read as "not set" in a layer
    return Settings.merged(settings, {"profile": profile}, given)


def _same(value: object, default: object) -> bool:
    return value is default or (type(value) is type(default) and value == default)


def coerce_text(name: str, raw: str) -> object:
    """The value of setting ``name`` written as text (an ini file, an environment): an
    integer, a boolean, or the text itself (durations and names are checked by
    :class:`Settings`). Raises :class:`SettingsError` for text that is no such value."""
    if name not in NAMES and name != "profile":
        raise _unknown([name])
    kind = _TEXT_KINDS.get(name)
    text = raw.strip()
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise SettingsError(name, raw, f"{name} must be an integer, got {raw!r}",
                                requirement="must be an integer") from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise SettingsError(name, raw, f"{name} must be true or false, got {raw!r}",
                            requirement="must be true or false")
    return text


_TEXT_KINDS: Final[dict[str, Literal["int", "bool"]]] = {
    "max_schedules": "int", "seed": "int", "deviation_bound": "int", "max_steps": "int",
    "timer_races": "bool", "shrink": "bool", "preemption_bound": "int",
}


# --------------------------------------------------------------------------- profiles


_BUILTIN_PROFILES: Final[dict[str, dict[str, object]]] = {
    "default": {},
    "quick": {"max_schedules": 200},
    "ci": {"max_schedules": 2_000, "seed": 0},
    "nightly": {"max_schedules": 20_000},
}
_PROFILES: dict[str, dict[str, object]] = {k: dict(v) for k, v in _BUILTIN_PROFILES.items()}


def register_profile(name: str, *, parent: str = "default", **values: object) -> Settings:
    """Register (or redefine) the profile ``name``: ``parent``'s values overridden by
    ``values``, checked now. Returns the settings the profile gives.

    Select it with ``explore(..., profile=name)``, ``@pytest.mark.explore(profile=name)``,
    ``pytest --explore-profile name``, ``explorer explore --profile name`` or
    ``[tool.explorer] profile = "name"``. Redefining ``default`` changes the defaults of
    every front end; register profiles in a module every run imports (``conftest.py``).
    """
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"a profile name must be a non-empty string, got {name!r}; for "
                         'example register_profile("thorough", max_schedules=50_000)')
    if "profile" in values:
        raise UsageError(f"register_profile({name!r}) got profile=; a profile builds on "
                         "another with parent=, for example parent=\"ci\"")
    combined = {**_profile_values(parent), **{k: v for k, v in values.items()
                                              if v is not None}}
    settings = Settings.merged(Settings(), combined, where=f"profile {name!r}")
    _PROFILES[name] = combined
    return settings


def register_profiles(table: Mapping[str, object], *, where: str) -> list[str]:
    """Register the profiles a configuration file defines: ``table`` maps each name to its
    settings (a mapping; ``parent`` names the profile it builds on, which may be another
    one of ``table``, defined before or after it). Returns the names, in the order they
    were registered. Mistakes raise :class:`SettingsError` naming ``where`` (the file and
    section, as in ``pyproject.toml [tool.explorer.profiles]``)."""
    pending: dict[str, dict[str, object]] = {}
    for name, values in table.items():
        if not isinstance(values, Mapping):
            raise SettingsError("profile", values, f"{where}: profile {name!r} must be a "
                                "table of settings, like max_schedules = 5000, got "
                                f"{values!r}")
        pending[str(name)] = dict(values)
    done: list[str] = []
    while pending:
        ready = [name for name, values in pending.items()
                 if str(values.get("parent", "default")) not in pending
                 or values.get("parent") == name]
        if not ready:
            raise SettingsError("profile", sorted(pending), f"{where}: the profiles "
                                f"{', '.join(sorted(pending))} name each other as parent; "
                                "one of them must build on a profile outside the cycle")
        for name in ready:
            values = pending.pop(name)
            parent = str(values.pop("parent", "default"))
            try:
                register_profile(name, parent=parent, **values)
            except SettingsError as err:
                raise err.within(f"{where}: profile {name!r}") from None
            done.append(name)
    return done


def get_profile(name: str) -> Settings:
    """The settings the profile ``name`` gives (over the built-in defaults)."""
    return Settings.merged(Settings(), _profile_values(name))


def profile_names() -> list[str]:
    """The registered profiles, built-in ones first."""
    return [*_BUILTIN_PROFILES, *sorted(set(_PROFILES) - set(_BUILTIN_PROFILES))]


def _profile_values(name: object) -> dict[str, object]:
    if not isinstance(name, str) or name not in _PROFILES:
        raise SettingsError("profile", name, f"unknown explorer profile {name!r}; the "
                            f"profiles are {', '.join(profile_names())} (add one with "
                            "explorer.register_profile)")
    return _PROFILES[name]


# --------------------------------------------------------------------------- checks


def _expanded(layer: Mapping[str, object]) -> dict[str, object]:
    """A mapping layer's settings, its profile's values first; ``None`` values dropped."""
    unknown = sorted(k for k in layer if k not in NAMES and k != "profile")
    if unknown:
        raise _unknown(unknown)
    out: dict[str, object] = {}
    profile = layer.get("profile")
    if profile is not None:
        out.update(_profile_values(profile))
    out.update({k: v for k, v in layer.items() if k != "profile" and v is not None})
    return out


def _unknown(names: list[str]) -> SettingsError:
    return SettingsError(names[0], None,
                         f"unknown explorer setting(s) {', '.join(names)}; the settings "
                         f"are {', '.join(NAMES)} (and profile)")


def _strategy_names() -> str:
    from explorer.strategies import names  # lazily: the strategies import the runtimes' model

    return ", ".join(names())


def _check_strategy(value: object) -> None:
    if value == DEFAULT_STRATEGY:
        # Known good: checking settings that name no strategy (the pytest plugin does it
        # in every session) must not import the strategies, which import the engine's model.
        return
    from explorer.strategies import Strategy, names

    if isinstance(value, Strategy):
        return
    if not isinstance(value, str) or value not in names():
        raise SettingsError("strategy", value, f"unknown strategy {value!r}; use one of: "
                            f"{', '.join(names())}, or pass a strategies.Strategy instance")


def _check_int(name: str, value: object, *, minimum: int | None, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, int) and not isinstance(value, bool) and (
            minimum is None or value >= minimum):
        return
    need = {None: "an integer", 0: "0 or a positive integer",
            1: "a positive integer"}[minimum]
    raise SettingsError(name, value, f"{name} must be {need}, got {value!r}; for example "
                        f"{name}={max(minimum or 0, 1) * 100}", requirement=f"must be {need}")


def _seconds(name: str, value: object) -> float:
    """A duration in seconds: a number, or text (plain seconds or :func:`parse_duration`)."""
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                return parse_duration(text)
            except UsageError as err:
                raise SettingsError(name, value, f"{name}: {err}", detail=str(err)) from None
        if math.isfinite(number):
            return number
        problem = f"{value!r} is not a duration; write for example 90s, 10m, 2h or 1h30m"
        raise SettingsError(name, value, f"{name}: {problem}", detail=problem)
    if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
        return float(value)
    raise SettingsError(name, value, f"{name} must be a number of seconds or a duration "
                        f"such as '90s', got {value!r}",
                        requirement="must be a number of seconds or a duration such as 90s")


def _max_time(value: object) -> float | None:
    if value is None:
        return None
    seconds = _seconds("max_time", value)
    if seconds < 0:  # 0 is allowed: the first run is made, then time is up
        raise SettingsError("max_time", value, f"max_time must be 0 or more seconds, got "
                            f"{value!r}; for example max_time=60 or max_time='10m' (None: "
                            "no time limit)", requirement="must be 0 or more seconds")
    return seconds


def _faults(value: object) -> frozenset[str]:
    """The fault kinds a ``faults`` value enables (see :func:`explorer._faults.fault_kinds`)."""
    try:
        return fault_kinds(value)
    except UsageError as err:
        raise SettingsError("faults", value, str(err), detail=str(err)) from None


def _run_timeout(value: object) -> float | None:
    """Seconds, or None when disabled (None, 0 or infinity)."""
    requirement = ("must be a number of seconds (0 or None disables it), for example "
                   "10 or '30s'")
    if value is None:
        return None
    try:
        seconds = _seconds("run_timeout", value)
    except SettingsError:
        raise SettingsError("run_timeout", value, f"run_timeout must be a number of seconds "
                            f"(0 or None disables it), got {value!r}; for example "
                            "run_timeout=10", requirement=requirement) from None
    if seconds < 0:
        raise SettingsError("run_timeout", value, f"run_timeout must be a number of seconds "
                            f"(0 or None disables it), got {value!r}; for example "
                            "run_timeout=10", requirement=requirement)
    return seconds if 0 < seconds < math.inf else None
